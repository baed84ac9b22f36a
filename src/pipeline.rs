//! The life of a message.
//!
//! An input message is consumed and parsed. A valid event is applied to the engine and
//! forwarded, unchanged, to the changelog (see [`crate::changelog`]); a bad one goes to the
//! dead-letter topic with its reason. The changelog, read back by every instance, brings the
//! events other instances consumed (this session's own copies are skipped). At the end of each
//! batch the engine's changed records that this instance owns (see [`crate::ownership`]) are
//! published to the indicators topic, streamed from the flush to the producer.
//!
//! What one batch sends (changelog records, dead letters, indicator records) commits with the
//! batch's input offsets: in one Kafka transaction under `exactly_once`, or by storing the
//! offsets only after Kafka acknowledged everything under `at_least_once` (a crash then sends
//! the batch again; the changelog's duplicates are ignored, and change-only emission keeps
//! indicators from repeating except for the records of the batch in flight).

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::changelog::{self, Table};
use crate::config::{Guarantee, Settings, DEAD_LETTER_KEY_MAX_BYTES};
use crate::delivery::{Deliveries, Refused, Sent};
use crate::engine::record::{Record, SeriesKey};
use crate::engine::{Engine, Outcome, Selection};
use crate::event::{self, ParseRules, Rejection};
use crate::kafka::ServiceContext;
use crate::lifecycle::{Lifecycle, State};
use crate::metrics::Metrics;
use crate::ownership::{self, Owned, SharedAssignment};
use crate::query::RecordQuery;
use crate::readiness::Readiness;
use crate::retry::{Cause, ErrorReports, OperatorError, ERROR_PAUSE};
use crate::shutdown::Shutdown;
use crate::timeouts;
use crate::{period, restore};
use sha2::{Digest, Sha256};

/// A batch's transaction was aborted: the engine is ahead of what Kafka committed and must be
/// restored before processing goes on.
#[derive(Debug, thiserror::Error)]
#[error("transaction aborted")]
pub struct TransactionAborted;

/// Which indicator records a batch's commit publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Indicators {
    /// Those the engine's flush returns as changed and this instance owns.
    Changed,
    /// None: partitions were gained, and the takeover after the commit publishes every owned
    /// record that differs from what Kafka holds (the engine's changes were discarded).
    ByTakeover,
}

/// A dead letter kept until Kafka acknowledges it, so that it can be sent again: key and
/// value as the message had them, cut to their limits.
struct DeadLetter {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// The original value, when the key or the value was cut.
    original: Option<Original>,
    rejection: Rejection,
    /// Index of its input partition in [`Batch::offsets`].
    source: usize,
    offset: i64,
}

/// What a cut dead letter tells of the value it came from.
struct Original {
    bytes: usize,
    sha256: String,
}

/// The longest `silkroute.error.detail` (and logged detail): one line, whatever the input.
const DETAIL_MAX_BYTES: usize = 256;

/// Input messages (topic, partition, offset) whose dead letter Kafka refused as too large
/// (an output topic whose `max.message.bytes` is below what the producer is sized for): the
/// batch is processed again, and their dead letters carry their headers only. Outlives a
/// session, since the retry is a restore.
pub type HeadersOnly = Arc<std::sync::Mutex<std::collections::HashSet<(String, i32, i64)>>>;

/// `detail` as one line of at most [`DETAIL_MAX_BYTES`]: control characters (line breaks
/// included) become spaces, and a longer one is cut at a character boundary.
fn one_line(detail: &str) -> String {
    let mut line = String::with_capacity(detail.len().min(DETAIL_MAX_BYTES));
    for c in detail.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if line.len() + c.len_utf8() > DETAIL_MAX_BYTES - '…'.len_utf8() {
            line.push('…');
            break;
        }
        line.push(c);
    }
    line
}

/// A dead letter's key and value as the contract keeps them: the value cut to `value_max`
/// bytes and the key to [`DEAD_LETTER_KEY_MAX_BYTES`], with the original value's length and
/// SHA-256 when either was cut. A null stays null.
fn cut(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    value_max: usize,
) -> (Option<Vec<u8>>, Option<Vec<u8>>, Option<Original>) {
    let key_cut = key.is_some_and(|k| k.len() > DEAD_LETTER_KEY_MAX_BYTES);
    let value_cut = value.is_some_and(|v| v.len() > value_max);
    let original = (key_cut || value_cut).then(|| {
        let v = value.unwrap_or_default();
        Original {
            bytes: v.len(),
            sha256: Sha256::digest(v)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    });
    (
        key.map(|k| k[..k.len().min(DEAD_LETTER_KEY_MAX_BYTES)].to_vec()),
        value.map(|v| v[..v.len().min(value_max)].to_vec()),
        original,
    )
}

/// A valid event on its way to the changelog.
struct Forward {
    key: String,
    partition: i32,
    value: Vec<u8>,
    /// Wall-clock milliseconds at receipt, the changelog record's timestamp: the start of the
    /// processing-duration measurement.
    received_ms: i64,
}

/// Highest offset taken from one (topic, partition) in a batch, with the topic's consumed
/// counter, so that neither costs an allocation or a label lookup per message.
struct Taken {
    topic: String,
    partition: i32,
    offset: i64,
    consumed: prometheus::IntCounter,
}

#[derive(Default)]
struct Batch {
    /// Per input (topic, partition): a batch spans a handful, so a short list beats a map
    /// keyed by an owned topic name.
    offsets: Vec<Taken>,
    forwards: Vec<Forward>,
    dead: Vec<DeadLetter>,
    /// Changelog records applied. Receipt times (wall-clock ms) of the dead letters and of
    /// the changelog records whose indicators are ours: the batch's acknowledgement ends their
    /// processing.
    cells: usize,
    received_ms: Vec<i64>,
}

impl Batch {
    fn inputs(&self) -> usize {
        self.forwards.len() + self.dead.len()
    }

    /// Drops the offsets and dead letters of input partitions this instance no longer holds:
    /// their new holder consumes them again from the last commit. Their events are forwarded
    /// all the same: the engine applied them already, and a second copy in the changelog (the
    /// new holder's) is a duplicate that every reader ignores.
    fn keep_held(&mut self, owned: &Owned) {
        let held: Vec<bool> = self
            .offsets
            .iter()
            .map(|t| owned.holds(&t.topic, t.partition))
            .collect();
        if held.iter().all(|&h| h) {
            return;
        }
        let mut index = Vec::with_capacity(held.len());
        let mut kept = 0;
        for &h in &held {
            index.push(kept);
            kept += usize::from(h);
        }
        self.dead.retain(|d| held[d.source]);
        for d in &mut self.dead {
            d.source = index[d.source];
        }
        let mut i = 0;
        self.offsets.retain(|_| {
            i += 1;
            held[i - 1]
        });
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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

/// The producer of everything the pipeline sends: changelog, dead letters, indicators.
pub type OutputProducer = ThreadedProducer<Deliveries>;

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
}

/// One session's processing: batches in, their output committed.
pub struct Processor {
    settings: Settings,
    engine: Engine,
    producer: OutputProducer,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    assignment: SharedAssignment,
    owned: Owned,
    changelog_partitions: i32,
    /// This session's mark on the changelog records it writes (see [`Table::apply`]).
    session: u64,
    readiness: Readiness,
    /// Input partitions gained and not yet taken over.
    gained: Vec<(String, i32)>,
    /// Dead letters to send with their headers only (see [`HeadersOnly`]).
    headers_only: HeadersOnly,
    /// The log lines about transient consumer errors; reset by a committed batch.
    fetch_errors: ErrorReports,
}

/// How often a produce that Kafka refused is tried again before the batch fails (and the
/// instance restores and replays from the last committed offsets, after a backoff).
const PRODUCE_ATTEMPTS: u32 = 5;

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
        } = parts;
        Processor {
            settings,
            engine,
            producer,
            metrics,
            lifecycle,
            assignment,
            owned: Owned::new(&inputs),
            changelog_partitions,
            session,
            readiness: Readiness::default(),
            gained: Vec::new(),
            headers_only,
            fetch_errors: ErrorReports::default(),
        }
    }

    fn rules(&self) -> ParseRules {
        ParseRules {
            max_message_bytes: self.settings.limits.max_message_bytes,
            current_month: period::current_utc_month(),
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
                m = consumer.recv() => match m {
                    Ok(m) => self.take(&m, &mut batch, &rules),
                    // Broker outages and the like surface here; librdkafka reconnects by
                    // itself, so the loop waits rather than ending the service.
                    Err(e) => {
                        let topics = self.settings.topics.inputs().join(",");
                        self.fetch_failed(e, "Consumer error", &topics, shutdown).await?;
                        continue;
                    }
                },
                m = table.consumer.recv() => match m {
                    Ok(m) => self.take_cell(table, &m, &mut batch),
                    Err(e) => {
                        let topic = table.topic.clone();
                        self.fetch_failed(e, "Changelog reader error", &topic, shutdown).await?;
                        continue;
                    }
                },
                // Rebalances arrive inside recv() without a message; the tick lets the loop
                // act on them (and on readiness) when the inputs are idle.
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
                        m = consumer.recv() => match m {
                            Ok(m) => self.take(&m, &mut batch, &rules),
                            Err(e) => { warn!(error = %e, "Consumer error; the batch ends here."); break }
                        },
                        m = table.consumer.recv() => match m {
                            Ok(m) => self.take_cell(table, &m, &mut batch),
                            Err(e) => { warn!(error = %e, "Changelog reader error; the batch ends here."); break }
                        },
                        _ = &mut deadline => break,
                    }
                }
            }
            self.finish(consumer, table, batch).await?;
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
            self.finish(consumer, table, batch).await
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
                    // The canonical form, not the producer's bytes: smaller, and bounded
                    // whatever the input was padded with (it always fits the changelog).
                    value: e.to_json(),
                    received_ms,
                });
            }
            Err(mut rejection) => {
                rejection.detail = one_line(&rejection.detail);
                self.metrics
                    .events_rejected
                    .with_label_values(&[rejection.reason.as_str()])
                    .inc();
                warn!(topic = m_topic, partition, offset, reason = %rejection.reason, detail = %rejection.detail, "Event dead-lettered.");
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
        self.metrics.retain_series(|r| owned.owns(r));
        self.gained.append(&mut a.gained);
    }

    /// The end of one batch, in the order it happens.
    async fn finish(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
        mut batch: Batch,
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        // 1. Ownership as the group's last rebalance left it; what this instance no longer
        //    holds leaves the batch (its new owner processes it again).
        self.refresh_ownership();
        let gained = std::mem::take(&mut self.gained);
        batch.keep_held(&self.owned);
        // 2. Which indicator records go out with the commit: the engine's changes, unless
        //    partitions were gained, whose records another instance published last; the
        //    takeover (5) compares those with what Kafka holds instead, for every key.
        let indicators = if gained.is_empty() {
            Indicators::Changed
        } else {
            self.engine.discard_changes();
            Indicators::ByTakeover
        };
        // 3. Changelog forwards, dead letters, indicator records and input offsets: sent,
        //    acknowledged and committed together (one transaction exactly once).
        let sent = tokio::task::block_in_place(|| self.commit(consumer, &batch, indicators))?;
        // 4. Progress, for the no-progress alarm and the spacing of error log lines.
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
        // 5. Gained partitions taken over.
        if !gained.is_empty() {
            self.take_over(consumer, table, &gained).await?;
        }
        // 6. Only now are the batch's records published: their latency is observed.
        self.observe_processed(&batch);
        self.metrics.state_cells.set(self.engine.cells() as i64);
        // 7. Ready once caught up.
        let (readiness, lifecycle, cells) =
            (&mut self.readiness, &self.lifecycle, self.engine.cells());
        tokio::task::block_in_place(|| readiness.check(lifecycle, consumer, table, cells))
    }

    /// Applies the changelog up to its current end; the batch holds what became of the
    /// events this instance owns, for the next commit to acknowledge.
    async fn read_changelog_to_end(
        &mut self,
        table: &Table,
        within: Duration,
    ) -> anyhow::Result<Batch> {
        let ends = tokio::task::block_in_place(|| table.ends(within))?;
        let mut batch = Batch::default();
        let (owned, metrics) = (&self.owned, &self.metrics);
        table
            .catch_up(&mut self.engine, &ends, metrics, |e, outcome, at| {
                note_cell(owned, metrics, &mut batch, e, outcome, at)
            })
            .await?;
        Ok(batch)
    }

    fn observe_processed(&self, batch: &Batch) {
        let acked = now_ms();
        for ms in &batch.received_ms {
            self.metrics
                .processing_duration
                .observe((acked - ms).max(0) as f64 / 1000.0);
        }
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
        let batch = self
            .read_changelog_to_end(table, timeouts::WATERMARKS)
            .await?;
        let (metrics, settings) = (&self.metrics, &self.settings);
        let held = tokio::task::block_in_place(|| restore::published(settings, metrics))?;
        let keys = held.len();
        self.engine.reconcile_against(held);
        let republished =
            tokio::task::block_in_place(|| self.commit(consumer, &batch, Indicators::Changed))?;
        // The commit observed only the records that differed from Kafka's; the gauges of the
        // gained series follow every record this instance now publishes.
        let (owned, metrics) = (&self.owned, &self.metrics);
        self.engine.select_each(&Selection::default(), |r| {
            if owned.owns(&r) {
                metrics.observe(&r);
            }
        });
        self.observe_processed(&batch);
        if self.lifecycle.state() != State::Ready {
            tokio::task::block_in_place(|| self.readiness.add_targets(consumer, gained))?;
        }
        info!(
            partitions = gained.len(),
            published_keys = keys,
            republished,
            "Took over assigned partitions."
        );
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        self.settings.processing.guarantee == Guarantee::ExactlyOnce
    }

    /// Sends the batch's changelog records and dead letters and, unless the takeover publishes
    /// them, this instance's changed indicator records (streamed from the engine's flush), and commits
    /// the batch's input offsets with them. Returns the indicator records sent. Blocks: called
    /// through `block_in_place`.
    fn commit(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        batch: &Batch,
        indicators: Indicators,
    ) -> anyhow::Result<usize> {
        if self.exactly_once() {
            return self.in_transaction(consumer, batch, indicators);
        }
        let sent = self.publish(batch, indicators)?;
        for t in &batch.offsets {
            if let Err(e) = consumer.store_offset(&t.topic, t.partition, t.offset) {
                // The partition moved to another member, which will process it from the last
                // commit: at least once.
                warn!(error = %e, topic = %t.topic, partition = t.partition, "Offset not stored.");
            }
        }
        Ok(sent)
    }

    /// Exactly once: the batch's records, dead letters and consumer offsets commit in one
    /// Kafka transaction. Any failure aborts it and returns [`TransactionAborted`]: the engine
    /// has already applied the batch, so the service rebuilds it, with fresh clients, from the
    /// last committed transaction (abort and rewind).
    fn in_transaction(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        batch: &Batch,
        indicators: Indicators,
    ) -> anyhow::Result<usize> {
        let timeout = timeouts::TRANSACTION;
        self.producer.context().take_txn_refusal();
        let result: anyhow::Result<usize> = (|| {
            self.producer
                .begin_transaction()
                .context("beginning a transaction")?;
            let sent = self.publish(batch, indicators)?;
            if !batch.offsets.is_empty() {
                let mut tpl = TopicPartitionList::new();
                for t in &batch.offsets {
                    tpl.add_partition_offset(&t.topic, t.partition, Offset::Offset(t.offset + 1))?;
                }
                let group = consumer
                    .group_metadata()
                    .context("the consumer has no group metadata")?;
                self.producer
                    .send_offsets_to_transaction(&tpl, &group, timeout)
                    .context("adding the batch's offsets to the transaction")?;
            }
            // Every report is in (publish waited: sending the offsets while the records were
            // still in flight measured slower); librdkafka drops the last ones from its queue count just
            // after serving them, and its commit (a flush) would otherwise poll for 100 ms.
            let settle = std::time::Instant::now();
            while self.producer.in_flight_count() > 0
                && settle.elapsed() < timeouts::IN_FLIGHT_SETTLE
            {
                std::thread::sleep(timeouts::IN_FLIGHT_SPIN);
            }
            self.producer
                .commit_transaction(timeout)
                .context("committing the transaction")?;
            Ok(sent)
        })();
        let outcome = if result.is_ok() { "commit" } else { "abort" };
        self.metrics
            .transactions
            .with_label_values(&[outcome])
            .inc();
        result.map_err(|e| {
            if let Err(abort) = self.producer.abort_transaction(timeout) {
                warn!(error = %abort, "Aborting the transaction failed.");
            }
            // A partition the coordinator refused to add (a missing Write ACL, a deleted
            // topic) fails the transaction with an "erroneous state" or purged records that
            // name neither; the refusal names the topic, an operator's matter.
            let refusal = self.producer.context().take_txn_refusal();
            let e = match refusal.and_then(|(topic, code)| OperatorError::of_code(code, &topic)) {
                Some(op) => e.context(op),
                None => e,
            };
            e.context(TransactionAborted)
        })
    }

    /// Produces the batch's changelog records and dead letters and, unless the takeover
    /// publishes them, the engine's changed records this instance owns, and waits until Kafka acknowledged every
    /// one; at least once, refused ones are sent again a few times. (Exactly once, the
    /// transaction's commit does the waiting and fails if anything was refused.)
    fn publish(&mut self, batch: &Batch, indicators: Indicators) -> anyhow::Result<usize> {
        let changelog = self.settings.changelog_topic();
        let Processor {
            engine,
            producer,
            owned,
            metrics,
            settings,
            ..
        } = self;
        let session = changelog::session_header(self.session);
        for f in &batch.forwards {
            send(
                producer,
                BaseRecord::with_opaque_to(&changelog, Sent::Changelog.tag())
                    .headers(session.clone())
                    .partition(f.partition)
                    .timestamp(f.received_ms)
                    .key(&f.key)
                    .payload(&f.value),
            )?;
        }
        for d in &batch.dead {
            let sent = send(
                producer,
                dead_letter(&settings.topics.dead_letter, d, batch),
            );
            if let Err(e) = sent {
                if record_too_large(&e) && d.value.as_ref().is_some_and(|v| !v.is_empty()) {
                    let source = &batch.offsets[d.source];
                    headers_only(
                        &self.headers_only,
                        (source.topic.clone(), source.partition, d.offset),
                    );
                    return Err(e.context("a dead letter is too large for the producer; the batch is processed again with its headers only"));
                }
                return Err(e);
            }
        }
        let mut sent = 0;
        if indicators == Indicators::Changed {
            let topic = settings.topics.indicators.as_str();
            // The gauges follow each series' latest record of the batch, not every record.
            let mut latest: FxHashMap<SeriesKey, Record> = FxHashMap::default();
            engine.flush_each(|key, json, record| {
                if !owned.owns(record) {
                    return Ok(());
                }
                let tag = Sent::Indicator(record.kind()).tag();
                send(
                    producer,
                    BaseRecord::with_opaque_to(topic, tag)
                        .key(key)
                        .payload(json),
                )?;
                sent += 1;
                match latest.entry(record.series()) {
                    Entry::Occupied(r) if r.get().period() >= record.period() => {}
                    Entry::Occupied(mut r) => *r.get_mut() = record.clone(),
                    Entry::Vacant(r) => {
                        r.insert(record.clone());
                    }
                }
                anyhow::Ok(())
            })?;
            for record in latest.values() {
                metrics.observe(record);
            }
        }
        for attempt in 1..=PRODUCE_ATTEMPTS {
            self.acknowledged()?;
            let refused = self.producer.context().take_refused();
            if refused.is_empty() {
                return Ok(sent);
            }
            // What retrying the same records cannot cure ends the batch at once.
            judge(&refused, &self.headers_only)?;
            if self.exactly_once() {
                anyhow::bail!(
                    "Kafka refused {} records of the transaction (first: {})",
                    refused.len(),
                    refused[0].error
                );
            }
            if attempt == PRODUCE_ATTEMPTS {
                anyhow::bail!("{} records were refused by Kafka {attempt} times (first: {} on {}); stopping so that a restart replays them", refused.len(), refused[0].error, refused[0].topic);
            }
            warn!(
                records = refused.len(),
                topic = %refused[0].topic,
                error = %refused[0].error,
                attempt,
                "Kafka refused records; sending them again."
            );
            std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            for r in &refused {
                send(&self.producer, r.record())?;
            }
        }
        Ok(sent)
    }

    /// Waits until Kafka answered for every record sent.
    fn acknowledged(&self) -> anyhow::Result<()> {
        // Each delivery ends within message.timeout.ms (or the transaction timeout), far
        // below this.
        if !self.producer.context().wait(timeouts::ACKNOWLEDGED) {
            anyhow::bail!(
                "Kafka did not acknowledge the batch within {} s",
                timeouts::ACKNOWLEDGED.as_secs()
            );
        }
        Ok(())
    }

    /// After the last batch (a stop, or a failure before restoring): what the producer still
    /// holds is flushed within `budget`, and at least once the stored offsets are committed.
    pub fn wind_down(&self, consumer: &StreamConsumer<ServiceContext>, budget: Duration) {
        if let Err(e) = self.producer.flush(budget) {
            tracing::error!(error = %e, "Producer flush failed.");
        }
        if !self.exactly_once() {
            self.commit_stored(consumer);
        }
    }

    /// Everything produced is acknowledged already: commit the stored offsets synchronously.
    fn commit_stored(&self, consumer: &StreamConsumer<ServiceContext>) {
        match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => info!("Offsets committed."),
            Err(e) if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) => {
                info!("No new offsets to commit.")
            }
            Err(e) => warn!(error = %e, "Final offset commit failed."),
        }
    }
}

/// Enqueues one record, waiting while librdkafka's local queue is full (its delivery reports
/// are served by the producer's own thread meanwhile).
fn send<K, P>(
    producer: &OutputProducer,
    mut record: BaseRecord<'_, K, P, usize>,
) -> anyhow::Result<()>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        // Counted before the send: its report may arrive before send returns.
        producer.context().sent();
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.context().unsent();
                record = r;
                std::thread::sleep(timeouts::QUEUE_FULL_PAUSE);
            }
            Err((e, r)) => {
                producer.context().unsent();
                let op = e
                    .rdkafka_error_code()
                    .and_then(|c| OperatorError::of_code(c, r.topic));
                let e = anyhow::Error::new(e).context(format!("cannot produce to {}", r.topic));
                return Err(match op {
                    Some(op) if op.cause != Cause::RecordTooLarge => e.context(op),
                    _ => e,
                });
            }
        }
    }
}

/// Whether `e` is a record refused as too large (by the producer, or a broker's topic).
fn record_too_large(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<KafkaError>()
            .and_then(KafkaError::rdkafka_error_code)
            .is_some_and(|code| Cause::of_code(code) == Some(Cause::RecordTooLarge))
    })
}

/// Notes that the dead letter of `source` must go with its headers only.
fn headers_only(set: &HeadersOnly, source: (String, i32, i64)) {
    warn!(topic = %source.0, partition = source.1, offset = source.2, "A dead letter was refused as too large; it is sent again with its headers only (raise the dead-letter topic's max.message.bytes, see docs/operations.md).");
    set.lock().expect("headers-only lock").insert(source);
}

/// Refused records that retrying cannot cure: a dead letter refused as too large is noted to
/// go again with its headers only (a message's fault), and the batch is processed again; an
/// authorization failure, an unknown topic, or any other record refused as too large is an
/// operator's matter, named with its topic.
fn judge(refused: &[Refused], set: &HeadersOnly) -> anyhow::Result<()> {
    let mut cut_again = false;
    for r in refused {
        let Some(cause) = r.code.and_then(Cause::of_code) else {
            continue;
        };
        let dead_letter = Sent::from_tag(r.tag) == Sent::DeadLetter;
        let has_value = r.payload.as_ref().is_some_and(|p| !p.is_empty());
        if cause == Cause::RecordTooLarge && dead_letter && has_value {
            if let Some(source) = r.dead_letter_source() {
                headers_only(set, source);
                cut_again = true;
                continue;
            }
        }
        return Err(
            anyhow::anyhow!("Kafka refused a record for {}: {}", r.topic, r.error)
                .context(OperatorError::new(cause, r.topic.clone())),
        );
    }
    if cut_again {
        anyhow::bail!("Kafka refused dead letters as too large; the batch is processed again with their headers only");
    }
    Ok(())
}

/// A dead letter: the message as it came (cut to its limits), with the reason and its origin
/// in headers, and, when cut, the original's length and SHA-256.
fn dead_letter<'a>(
    topic: &'a str,
    d: &'a DeadLetter,
    batch: &'a Batch,
) -> BaseRecord<'a, [u8], [u8], usize> {
    let source = &batch.offsets[d.source];
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "silkroute.error.reason",
            value: Some(d.rejection.reason.as_str()),
        })
        .insert(Header {
            key: "silkroute.error.detail",
            value: Some(d.rejection.detail.as_str()),
        })
        .insert(Header {
            key: "silkroute.source.topic",
            value: Some(source.topic.as_str()),
        })
        .insert(Header {
            key: "silkroute.source.partition",
            value: Some(source.partition.to_string().as_str()),
        })
        .insert(Header {
            key: "silkroute.source.offset",
            value: Some(d.offset.to_string().as_str()),
        });
    let headers = match &d.original {
        Some(o) => headers
            .insert(Header {
                key: "silkroute.error.original_bytes",
                value: Some(o.bytes.to_string().as_str()),
            })
            .insert(Header {
                key: "silkroute.error.original_sha256",
                value: Some(o.sha256.as_str()),
            }),
        None => headers,
    };
    let mut record = BaseRecord::with_opaque_to(topic, Sent::DeadLetter.tag()).headers(headers);
    if let Some(k) = &d.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &d.value {
        record = record.payload(v.as_slice());
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_and_a_long_key_are_cut_with_the_originals_length_and_sha256() {
        let value = vec![b'v'; 5000];
        let key = vec![b'k'; 2000];
        let (k, v, original) = cut(Some(&key), Some(&value), 1000);
        assert_eq!(k.as_deref(), Some(&key[..DEAD_LETTER_KEY_MAX_BYTES]));
        assert_eq!(v.as_deref(), Some(&value[..1000]));
        let original = original.expect("cut");
        assert_eq!(original.bytes, 5000);
        // `printf 'v%.0s' $(seq 1 5000) | sha256sum`, outside the code under test.
        assert_eq!(
            original.sha256,
            "917a40db715a90af25bfa24eec0d26fb090c9d89104a2e7abc9bc2900f670ddd"
        );
    }

    #[test]
    fn what_fits_is_kept_whole_and_a_null_stays_null() {
        let (k, v, original) = cut(Some(b"XJ"), None, 1000);
        assert_eq!(k.as_deref(), Some(&b"XJ"[..]));
        assert_eq!(v, None);
        assert!(original.is_none());
        let (_, v, original) = cut(None, Some(&[b'x'; 1000]), 1000);
        assert_eq!(v.map(|v| v.len()), Some(1000));
        assert!(original.is_none());
    }

    #[test]
    fn a_detail_is_one_bounded_line() {
        let detail = format!("line one\nline two\r\t{}", "é".repeat(500));
        let line = one_line(&detail);
        assert!(!line.contains(['\n', '\r', '\t']), "{line}");
        assert!(line.len() <= DETAIL_MAX_BYTES, "{}", line.len());
        assert!(line.starts_with("line one line two"));
        assert!(line.ends_with('…'));
        assert_eq!(one_line("short"), "short");
    }
}
