//! The life of a message.
//!
//! An input message is consumed and parsed. A valid event is applied to the engine and
//! forwarded, unchanged, to the changelog (see [`crate::changelog`]); a bad one goes to the
//! dead-letter topic with its reason. The changelog, read back by every instance, brings the
//! events other instances consumed (this session's own copies are skipped). At the end of each
//! batch the engine's changed records that this instance owns (see [`crate::ownership`]) are
//! published to the indicators topic, streamed from the flush to the producer.
//!
//! What one batch gathers is a [`Batch`] (`batch.rs`); what it sends (changelog records, dead
//! letters, indicator records) commits with the batch's input offsets through [`Output`]
//! (`output.rs`): in one Kafka transaction under `exactly_once`, or by storing the offsets
//! only after Kafka acknowledged everything under `at_least_once` (a crash then sends the
//! batch again; the changelog's duplicates are ignored, and change-only emission keeps
//! indicators from repeating except for the records of the batch in flight). The next batch
//! is taken while Kafka acknowledges the last (exactly once: while a full batch's transaction
//! commits): that one stays in flight until the next one ends or no message waits. `finish`
//! is the end of one batch, step by step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::batch::{cut, now_ms, one_line, Batch, DeadLetter, Forward, HeadersOnly, Taken};
use crate::blocking::{self, Blocking};
use crate::changelog::{self, Table};
use crate::config::{ChangelogFormat, Settings};
use crate::engine::{Engine, Outcome};
use crate::event::{self, ParseRules, Rejection};
use crate::kafka::ServiceContext;
use crate::lifecycle::{Lifecycle, State};
use crate::metrics::Metrics;
use crate::output::{Indicators, Output, OutputProducer};
use crate::ownership::{self, Owned, SharedAssignment};
use crate::query::RecordQuery;
use crate::readiness::Readiness;
use crate::retry::{Cause, ErrorReports, OperatorError, ERROR_PAUSE};
use crate::shutdown::Shutdown;
use crate::timeouts;
use crate::{clock, restore};

/// What became of a changelog event is counted by the instance that owns its records, so that
/// a group counts each event once; its receipt time waits in `batch` for the acknowledgement.
fn note_cell(
    owned: &Owned,
    metrics: &Metrics,
    batch: &mut Batch,
    e: &crate::event::Event<'_>,
    outcome: Outcome,
    received_ms: Option<i64>,
) {
    if !owned.owns_event(e) {
        return;
    }
    batch.received_ms.extend(received_ms);
    match outcome {
        Outcome::Applied => {}
        Outcome::Stale => metrics.events_ignored.with_label_values(&["stale"]).inc(),
        Outcome::Duplicate => metrics
            .events_ignored
            .with_label_values(&["duplicate"])
            .inc(),
    }
}

/// The latency of each event of a committed batch, from receipt to `acked` (now, unless
/// the batch was acknowledged earlier).
fn observe_processed(metrics: &Metrics, batch: &Batch, acked: Option<Instant>) {
    let acked = now_ms() - acked.map_or(0, |at| at.elapsed().as_millis() as i64);
    for ms in &batch.received_ms {
        metrics
            .processing_duration
            .observe((acked - ms).max(0) as f64 / 1000.0);
    }
}

/// What a session hands the processor when it starts.
pub struct Parts {
    pub settings: Settings,
    /// Restored from the changelog, its changes discarded.
    pub engine: Engine,
    pub producer: OutputProducer,
    pub metrics: Arc<Metrics>,
    pub lifecycle: Arc<Lifecycle>,
    /// Written by the consumer's rebalance callbacks.
    pub assignment: SharedAssignment,
    pub inputs: Vec<(String, i32)>,
    pub changelog_partitions: i32,
    /// This session's mark on the changelog records it writes (see [`Table::apply`]).
    pub session: u64,
    /// Kept across sessions (see [`HeadersOnly`]).
    pub headers_only: HeadersOnly,
    /// The indicators topic, being read for the first takeover.
    pub prefetch: restore::Prefetch,
}

/// One session's processing: batches in, their output committed.
pub struct Processor {
    settings: Settings,
    engine: Engine,
    /// Where each batch goes, and its commit.
    output: Output,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    assignment: SharedAssignment,
    owned: Owned,
    changelog_partitions: i32,
    readiness: Readiness,
    /// Input partitions gained and not yet taken over.
    gained: Vec<(String, i32)>,
    /// Dead letters to send with their headers only (see [`HeadersOnly`]).
    headers_only: HeadersOnly,
    /// The log lines about transient consumer errors; reset by a committed batch.
    fetch_errors: ErrorReports,
    /// Taken by the first takeover; later ones read the indicators topic afresh.
    prefetch: Option<restore::Prefetch>,
    /// The last batch, sent and not yet settled (see [`Output::settle`]). The next batch is
    /// taken while Kafka acknowledges it (exactly once: while a full batch's transaction
    /// commits): a drain of the 443k backfill waited 5 ms a batch for acknowledgements at
    /// least once, about a fifth of its time, and exactly once for each commit (the broker's
    /// bare cycle alone takes 7–11 ms), with nothing else to do (issue 17).
    in_flight: Option<InFlight>,
}

/// A batch whose records librdkafka has, waiting to be settled.
struct InFlight {
    batch: Batch,
    /// Indicator records it sent.
    sent: usize,
    /// When its `finish` began.
    started: Instant,
    /// When its sends ended: an acknowledgement that arrived before then was an earlier
    /// batch's (this one sent nothing).
    sent_at: Instant,
}

impl Processor {
    pub fn new(parts: Parts) -> Processor {
        let Parts {
            settings,
            engine,
            producer,
            metrics,
            lifecycle,
            assignment,
            inputs,
            changelog_partitions,
            session,
            headers_only,
            prefetch,
        } = parts;
        let output = Output::new(
            &settings,
            producer,
            metrics.clone(),
            session,
            headers_only.clone(),
            assignment.committing.clone(),
        );
        Processor {
            settings,
            engine,
            output,
            metrics,
            lifecycle,
            assignment,
            owned: Owned::new(&inputs),
            changelog_partitions,
            readiness: Readiness::default(),
            gained: Vec::new(),
            headers_only,
            fetch_errors: ErrorReports::default(),
            prefetch: Some(prefetch),
            in_flight: None,
        }
    }

    fn rules(&self) -> ParseRules {
        ParseRules {
            max_message_bytes: self.settings.limits.max_message_bytes,
            current_month: clock::current_utc_month(),
        }
    }

    /// Consumes until `shutdown` flips, answering record queries between batches.
    pub async fn run(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
        queries: &mut mpsc::Receiver<RecordQuery>,
        shutdown: &mut Shutdown,
    ) -> anyhow::Result<()> {
        let wait = self.settings.processing.batch_max_wait;
        let max = self.settings.processing.batch_max_messages;
        let mut tick = tokio::time::interval(timeouts::IDLE_TICK);
        // One stream per consumer for the session: `recv()` builds one per call, and each
        // registers and removes a waker under a lock, twice per message in these selects.
        let (mut inputs, mut cells) = (consumer.stream(), table.consumer.stream());
        loop {
            self.lifecycle.beat();
            if shutdown.is_shutdown() {
                return self.drain(consumer, table).await;
            }
            let rules = self.rules();
            let mut batch = Batch::default();
            tokio::select! {
                biased;
                _ = shutdown.recv() => return self.drain(consumer, table).await,
                Some(q) = queries.recv() => {
                    let records = q.filter.selection().map(|sel| self.engine.select(&sel)).unwrap_or_default();
                    let _ = q.reply.send(records);
                    continue;
                }
                m = inputs.next() => match m.expect("Kafka streams never end") {
                    Ok(m) => self.take(&m, &mut batch, &rules),
                    // Broker outages and the like surface here; librdkafka reconnects by
                    // itself, so the loop waits rather than ending the service.
                    Err(e) => {
                        let topics = self.settings.topics.inputs().join(",");
                        self.fetch_failed(e, "Consumer error", &topics, shutdown).await?;
                        continue;
                    }
                },
                m = cells.next() => match m.expect("Kafka streams never end") {
                    Ok(m) => self.take_cell(table, &m, &mut batch),
                    Err(e) => {
                        let topic = table.topic.clone();
                        self.fetch_failed(e, "Changelog reader error", &topic, shutdown).await?;
                        continue;
                    }
                },
                // No message waits: the batch in flight is settled now rather than with the
                // next one, so that an idle input does not hold its offsets and readiness.
                () = std::future::ready(()), if self.in_flight.is_some() => {
                    self.settle_in_flight(consumer, table).await?;
                    continue;
                }
                // Rebalances arrive inside the input stream's poll without a message: the
                // callbacks wake the loop to act on them. The tick serves readiness when the
                // inputs are idle.
                () = self.assignment.changed() => {}
                _ = tick.tick() => {}
            }
            if batch.inputs() > 0 || batch.cells > 0 {
                // One timer for the whole batch: a timer per message (created and dropped by
                // each select) showed in the profile as clock reads and timer-wheel locking.
                let deadline = tokio::time::sleep(wait);
                tokio::pin!(deadline);
                while batch.inputs() < max && batch.cells < max {
                    tokio::select! {
                        biased;
                        m = inputs.next() => match m.expect("Kafka streams never end") {
                            Ok(m) => self.take(&m, &mut batch, &rules),
                            Err(e) => { warn!(error = %e, "Consumer error; the batch ends here."); break }
                        },
                        m = cells.next() => match m.expect("Kafka streams never end") {
                            Ok(m) => self.take_cell(table, &m, &mut batch),
                            Err(e) => { warn!(error = %e, "Changelog reader error; the batch ends here."); break }
                        },
                        _ = &mut deadline => break,
                    }
                }
            }
            // A full batch leaves more waiting; a shorter one ended at its deadline.
            let then = if batch.inputs() >= max || batch.cells >= max {
                Then::More
            } else {
                Then::CaughtUp
            };
            self.finish(consumer, table, batch, then).await?;
        }
    }

    /// A consumer error: an operator's (a missing ACL, a deleted topic) ends the session, to be
    /// reported and retried with backoff; anything else gets a short pause and a log line
    /// spaced by the backoff.
    async fn fetch_failed(
        &mut self,
        e: KafkaError,
        what: &str,
        topics: &str,
        shutdown: &mut Shutdown,
    ) -> anyhow::Result<()> {
        if let Some(code) = e.rdkafka_error_code() {
            let resource = match Cause::of_code(code) {
                Some(Cause::GroupAuthorization) => self.settings.kafka.group_id.as_str(),
                _ => topics,
            };
            if let Some(op) = OperatorError::of_code(code, resource) {
                if op.cause != Cause::RecordTooLarge {
                    return Err(anyhow::Error::new(e).context(op));
                }
            }
        }
        // librdkafka recovers from it by itself; a wait per error would serve a queue of
        // them long after the broker is back (see `ErrorReports`).
        self.fetch_errors.warn(what, &e);
        // A stop does not wait for the pause: the loop sees the signal at its next turn.
        tokio::select! {
            _ = tokio::time::sleep(ERROR_PAUSE) => {}
            _ = shutdown.recv() => {}
        }
        Ok(())
    }

    /// The last batch of a graceful stop: what the changelog holds by now (this instance's own
    /// last forwards included) is applied and this instance's changed records published, so
    /// that a stop leaves nothing for the next owner to catch up. Bounded by half the shutdown
    /// budget; what it cannot finish, the next owner's takeover publishes.
    async fn drain(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
    ) -> anyhow::Result<()> {
        let budget = self.settings.shutdown.timeout / 2;
        // The batch in flight first: its offsets are stored (or committed) whatever the drain
        // manages.
        self.settle_in_flight(consumer, table).await?;
        let drained = tokio::time::timeout(budget, async {
            // The end offsets are a blocking query, which the timeout around this cannot cut
            // short: it gets the budget itself, and not knowing the end within it is the
            // same as not draining in time (the next owner publishes the rest), not a
            // failed stop.
            let batch = match self.read_changelog_to_end(table, budget).await {
                Ok(batch) => batch,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "The changelog's end could not be read for the drain; the next owner publishes the rest.");
                    return Ok(());
                }
            };
            self.finish(consumer, table, batch, Then::Stop).await
        })
        .await;
        match drained {
            Ok(result) => result,
            Err(_) => {
                warn!(budget_ms = budget.as_millis() as u64, "The changelog could not be drained in time; the next owner publishes the rest.");
                Ok(())
            }
        }
    }

    /// Forwards or dead-letters one input message.
    fn take(&mut self, m: &BorrowedMessage<'_>, batch: &mut Batch, rules: &ParseRules) {
        let m_topic = m.topic();
        let (partition, offset) = (m.partition(), m.offset());
        let source = match batch
            .offsets
            .iter_mut()
            .position(|t| t.partition == partition && t.topic == m_topic)
        {
            Some(i) => {
                let t = &mut batch.offsets[i];
                t.offset = t.offset.max(offset);
                t.consumed.inc();
                i
            }
            None => {
                if !self.owned.holds(m_topic, partition) {
                    // Assigned during this batch: who owns what decides what is counted.
                    self.refresh_ownership();
                }
                let consumed = self.metrics.events_consumed.with_label_values(&[m_topic]);
                consumed.inc();
                batch.offsets.push(Taken {
                    topic: m_topic.to_string(),
                    partition,
                    offset,
                    consumed,
                });
                batch.offsets.len() - 1
            }
        };
        if let Some(ms) = m.timestamp().to_millis() {
            self.metrics.last_event_timestamp.set(ms as f64 / 1000.0);
        }
        let parsed = match m.payload() {
            Some(payload) => event::parse(payload, rules),
            None => Err(Rejection {
                reason: event::Reason::MalformedJson,
                detail: "the message has no value (a tombstone)".into(),
            }),
        };
        match parsed {
            Ok(e) => {
                // Applied now rather than when the changelog brings it back (which this
                // session then skips): one parse and one Kafka round trip fewer per event.
                let received_ms = now_ms();
                let outcome = self.engine.apply(&e);
                note_cell(
                    &self.owned,
                    &self.metrics,
                    batch,
                    &e,
                    outcome,
                    Some(received_ms),
                );
                batch.forwards.push(Forward {
                    key: changelog::key(&e),
                    partition: ownership::shard(e.partition_key(), self.changelog_partitions),
                    // A form of our own, not the producer's bytes: bounded whatever the input
                    // was padded with (it always fits the changelog). The compact one is read
                    // back by every instance that starts at a fifth of a JSON parse's
                    // instructions; the JSON one is for a rolling upgrade.
                    value: match self.settings.processing.changelog_format {
                        ChangelogFormat::Compact => e.to_compact(),
                        ChangelogFormat::Json => e.to_json(),
                    },
                    received_ms,
                });
            }
            Err(mut rejection) => {
                rejection.detail = one_line(&rejection.detail);
                self.metrics.dead_lettered(
                    m_topic,
                    partition,
                    offset,
                    rejection.reason,
                    &rejection.detail,
                );
                batch.received_ms.push(now_ms());
                let headers_only = self
                    .headers_only
                    .lock()
                    .expect("headers-only lock")
                    .contains(&(m_topic.to_string(), partition, offset));
                let value_max = if headers_only {
                    0
                } else {
                    self.settings.limits.dead_letter_max_bytes
                };
                let (key, value, original) = cut(m.key(), m.payload(), value_max);
                batch.dead.push(DeadLetter {
                    key,
                    value,
                    original,
                    rejection,
                    source,
                    offset,
                });
            }
        }
    }

    /// Applies one changelog record.
    fn take_cell(&mut self, table: &Table, m: &BorrowedMessage<'_>, batch: &mut Batch) {
        batch.cells += 1;
        let (owned, metrics) = (&self.owned, &self.metrics);
        let at = m.timestamp().to_millis();
        table.apply(m, &mut self.engine, |e, outcome| {
            note_cell(owned, metrics, batch, e, outcome, at)
        });
    }

    /// Brings the ownership snapshot up to date; the input partitions gained since the last
    /// look wait in `self.gained` for the end of the batch.
    fn refresh_ownership(&mut self) {
        let mut a = self.assignment.lock().expect("assignment lock");
        if a.generation == self.owned.generation {
            return;
        }
        self.owned.refresh(&a);
        self.readiness.assigned(a.joined, &self.owned);
        let owned = &self.owned;
        self.metrics.retain_series(
            |region| owned.owns_region(region),
            |port| owned.owns_port(port),
        );
        self.gained.append(&mut a.gained);
    }

    /// Ownership brought up to date, and what this instance no longer holds dropped from
    /// `batch` (its new holder processes those events again).
    fn keep_held(&mut self, batch: &mut Batch) {
        self.refresh_ownership();
        batch.keep_held(&self.owned);
    }

    /// The end of one batch, in the order it happens.
    async fn finish(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
        mut batch: Batch,
        then: Then,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        // 0. The batch before, if it is still in flight, settled: one batch in flight at most.
        self.settle_in_flight(consumer, table).await?;
        // 1. Ownership as the group's last rebalance left it; what this instance no longer
        //    holds leaves the batch (its new owner processes it again).
        self.keep_held(&mut batch);
        let gained = std::mem::take(&mut self.gained);
        // 2. Which indicator records go out with the commit: the engine's changes, unless
        //    partitions were gained, whose records another instance published last; the
        //    takeover (5) compares those with what Kafka holds instead, for every key.
        let indicators = if gained.is_empty() {
            Indicators::Changed {
                engine: &mut self.engine,
                owned: &self.owned,
            }
        } else {
            self.engine.discard_changes();
            Indicators::ByTakeover
        };
        // 3. Changelog forwards, dead letters, indicator records and input offsets: sent,
        //    acknowledged and committed together (one transaction exactly once). A batch
        //    with no takeover to follow and more to come is only sent here (exactly once, its
        //    transaction commits on a thread of its own, and only a full batch's: see
        //    `Output::settles_later_when_caught_up`): `settle_in_flight` does the rest when
        //    the next batch ends, or as soon as no message waits.
        let output = &mut self.output;
        let later = match then {
            Then::More => true,
            Then::CaughtUp => output.settles_later_when_caught_up(),
            Then::Stop => false,
        };
        if gained.is_empty() && later {
            let sent = blocking::run(|b| output.send_batch(b, consumer, &batch, indicators))?;
            self.in_flight = Some(InFlight {
                batch,
                sent,
                started,
                sent_at: Instant::now(),
            });
            return Ok(());
        }
        let sent = blocking::run(|b| output.commit(b, consumer, &batch, indicators))?;
        self.progressed(&batch, sent, started);
        // 5. Gained partitions taken over.
        if !gained.is_empty() {
            self.take_over(consumer, table, &gained).await?;
        }
        self.published(consumer, table, &batch, None)
    }

    /// Settles the batch in flight, if any: acknowledged by Kafka and its offsets stored (or
    /// its transaction committed), then its steps 4, 6 and 7 of [`Processor::finish`].
    async fn settle_in_flight(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
    ) -> anyhow::Result<()> {
        let Some(mut f) = self.in_flight.take() else {
            return Ok(());
        };
        // A rebalance while it was in flight: the offsets of partitions no longer held are not
        // stored, as in step 1. (Exactly once, they went with the transaction, in the
        // generation the batch was read in: if the group has moved on, the commit fails and
        // the session restores.)
        self.keep_held(&mut f.batch);
        let output = &mut self.output;
        let acknowledged = blocking::run(|b| output.settle(b, consumer, &f.batch))?;
        self.progressed(&f.batch, f.sent, f.started);
        self.published(consumer, table, &f.batch, Some(acknowledged.max(f.sent_at)))
    }

    /// Step 4 of [`Processor::finish`]: progress, for the no-progress alarm and the spacing
    /// of error log lines.
    fn progressed(&mut self, batch: &Batch, sent: usize, started: Instant) {
        if !batch.offsets.is_empty() {
            self.metrics.progressed();
            self.fetch_errors.reset();
        }
        tracing::debug!(
            inputs = batch.inputs(),
            cells = batch.cells,
            outputs = sent,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "Batch committed."
        );
    }

    /// Steps 6 and 7 of [`Processor::finish`], once the batch's records are published
    /// (`acked`: when they were, if not just now: the last acknowledgement, or the commit).
    fn published(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
        batch: &Batch,
        acked: Option<Instant>,
    ) -> anyhow::Result<()> {
        // 6. Only now are the batch's records published: their latency is observed.
        observe_processed(&self.metrics, batch, acked);
        self.metrics.state_cells.set(self.engine.cells() as i64);
        // 7. Ready once caught up, and not while partitions gained wait for their takeover: a
        //    batch settled while no message waits learns of an assignment that only the
        //    next batch's end takes over (ready then, a restored instance answered 200 about
        //    a second before its takeover ended).
        if !self.gained.is_empty() {
            return Ok(());
        }
        let (readiness, lifecycle, cells) =
            (&mut self.readiness, &self.lifecycle, self.engine.cells());
        blocking::run(|b| readiness.check(b, lifecycle, consumer, table, cells))
    }

    /// Applies the changelog up to its current end; the batch holds what became of the
    /// events this instance owns, for the next commit to acknowledge.
    async fn read_changelog_to_end(
        &mut self,
        table: &Table,
        within: Duration,
    ) -> anyhow::Result<Batch> {
        let ends = blocking::run(|b| table.ends(b, within))?;
        let mut batch = Batch::default();
        let (owned, metrics) = (&self.owned, &self.metrics);
        table
            .catch_up(&mut self.engine, &ends, metrics, |e, outcome, at| {
                note_cell(owned, metrics, &mut batch, e, outcome, at)
            })
            .await?;
        Ok(batch)
    }

    /// Partitions were assigned to this instance: read the changelog to its end, learn what
    /// Kafka holds for every key, and publish this instance's records that differ (the
    /// previous owner may have stopped mid-way; after a restart, settings may have changed).
    async fn take_over(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
        gained: &[(String, i32)],
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let batch = self
            .read_changelog_to_end(table, timeouts::WATERMARKS)
            .await?;
        let changelog_ms = started.elapsed().as_millis() as u64;
        // The rest blocks throughout: what Kafka holds, the commit of what differs from it,
        // and (not yet ready) the gained partitions' end offsets, in one crossing.
        let Processor {
            settings,
            metrics,
            engine,
            output,
            owned,
            lifecycle,
            readiness,
            prefetch,
            ..
        } = self;
        let (keys, republished, read_ms) = blocking::run(|b| {
            let held = match prefetch.take() {
                Some(prefetch) => prefetch.finish(b, settings, &table.log_ends, metrics),
                None => restore::read_whole(b, settings, &table.log_ends, metrics),
            }?;
            let read_ms = started.elapsed().as_millis() as u64 - changelog_ms;
            let published = held.into_published();
            let keys = published.len();
            engine.reconcile_against(published);
            let republished =
                output.commit(b, consumer, &batch, Indicators::Changed { engine, owned })?;
            observe_processed(metrics, &batch, None);
            if lifecycle.state() != State::Ready {
                readiness.add_targets(b, table, gained)?;
            }
            anyhow::Ok((keys, republished, read_ms))
        })?;
        info!(
            partitions = gained.len(),
            published_keys = keys,
            republished,
            changelog_ms,
            read_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "Took over assigned partitions."
        );
        Ok(())
    }

    /// After the last batch (a stop, or a failure before restoring): what the producer still
    /// holds is flushed within `budget`, and at least once the stored offsets are committed.
    pub fn wind_down(
        &mut self,
        b: &Blocking,
        consumer: &StreamConsumer<ServiceContext>,
        budget: Duration,
    ) {
        self.output.wind_down(b, consumer, budget);
    }

    /// Whether the session ended on an aborted transaction (abort and rewind).
    pub fn aborted(&self) -> bool {
        self.output.aborted()
    }
}

/// What follows a batch, for `finish` to judge whether it is settled while the next one is
/// taken.
#[derive(Clone, Copy)]
enum Then {
    /// The batch filled up: more input waits.
    More,
    /// The batch ended at its deadline, or on an idle tick.
    CaughtUp,
    /// Nothing: a graceful stop's last batch, settled before `finish` returns.
    Stop,
}
