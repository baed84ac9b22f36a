//! Everything one batch sends, and its commit: changelog records, dead letters, the
//! engine's changed indicator records this instance owns, and the batch's input offsets, in
//! one Kafka transaction under `exactly_once`, or offsets stored only after Kafka
//! acknowledged everything under `at_least_once`. Blocking throughout: each entry takes a
//! [`Blocking`], so the pipeline calls it through [`crate::blocking::run`].

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, ConsumerGroupMetadata, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::batch::{Batch, DeadLetter, Forward, HeadersOnly};
use crate::blocking::Blocking;
use crate::changelog;
use crate::config::{Guarantee, Settings};
use crate::delivery::{Deliveries, Refused, Sent};
use crate::engine::Engine;
use crate::kafka::ServiceContext;
use crate::metrics::Metrics;
use crate::ownership::{Committing, Owned};
use crate::retry::{Cause, OperatorError};
use crate::timeouts;

mod outbox;

/// The producer of everything the pipeline sends: changelog, dead letters, indicators.
pub type OutputProducer = ThreadedProducer<Deliveries>;

/// Which indicator records a batch's commit publishes.
pub enum Indicators<'a> {
    /// Those the engine's flush returns as changed and this instance owns (after
    /// [`Engine::reconcile_against`]: those that differ from what Kafka holds, the gauges
    /// following every owned record).
    Changed {
        engine: &'a mut Engine,
        owned: &'a Owned,
    },
    /// None: partitions were gained, and the takeover after the commit publishes every owned
    /// record that differs from what Kafka holds (the engine's changes were discarded).
    ByTakeover,
}

/// How often a produce that Kafka refused is tried again before the batch fails (and the
/// instance restores and replays from the last committed offsets, after a backoff).
const PRODUCE_ATTEMPTS: u32 = 5;

/// The topics a batch writes.
struct Topics {
    changelog: String,
    dead_letter: String,
    indicators: String,
}

/// The producer and what it needs to send one batch after another.
pub struct Output {
    producer: Arc<OutputProducer>,
    guarantee: Guarantee,
    topics: Topics,
    metrics: Arc<Metrics>,
    /// This session's mark on the changelog records it writes.
    session: u64,
    /// Dead letters to send with their headers only (see [`HeadersOnly`]).
    headers_only: HeadersOnly,
    /// A transaction was aborted: the engine is ahead of what Kafka committed and must be
    /// restored before processing goes on (the session's end says so, see [`Output::aborted`]).
    aborted: bool,
    /// Exactly once: the last batch's transaction, committing on a thread of its own while
    /// the next batch is taken; [`Output::settle`] waits for it.
    committing: Option<JoinHandle<anyhow::Result<Instant>>>,
    /// Held while that transaction commits, for a revocation to wait on.
    gate: Committing,
}

impl Output {
    pub fn new(
        settings: &Settings,
        producer: OutputProducer,
        metrics: Arc<Metrics>,
        session: u64,
        headers_only: HeadersOnly,
        gate: Committing,
    ) -> Output {
        Output {
            producer: Arc::new(producer),
            guarantee: settings.processing.guarantee,
            topics: Topics {
                changelog: settings.changelog_topic(),
                dead_letter: settings.topics.dead_letter.clone(),
                indicators: settings.topics.indicators.clone(),
            },
            metrics,
            session,
            headers_only,
            aborted: false,
            committing: None,
            gate,
        }
    }

    /// Whether a transaction of this session was aborted.
    pub fn aborted(&self) -> bool {
        self.aborted
    }

    fn exactly_once(&self) -> bool {
        self.guarantee == Guarantee::ExactlyOnce
    }

    /// Sends the batch's changelog records and dead letters and, unless the takeover publishes
    /// them, this instance's changed indicator records (streamed from the engine's flush), and commits
    /// the batch's input offsets with them. Returns the indicator records sent.
    pub fn commit(
        &mut self,
        b: &Blocking,
        consumer: &StreamConsumer<ServiceContext>,
        batch: &Batch,
        indicators: Indicators<'_>,
    ) -> anyhow::Result<usize> {
        if !self.exactly_once() {
            let sent = self.enqueue(b, batch, indicators)?;
            self.settle(b, consumer, batch)?;
            return Ok(sent);
        }
        // Exactly once, the transaction commits on this thread (a thread of its own would be
        // joined at once), held for a revocation to wait on as `send_batch`'s is.
        let _held = self.gate.hold();
        let committed = self
            .begin(b, consumer, batch, indicators)
            .and_then(|(sent, offsets)| {
                finish_transaction(b, &self.producer, &self.headers_only, offsets).map(|_| sent)
            });
        self.concluded(committed)
    }

    /// Whether a batch that caught up with the input is sent and settled later too, as a full
    /// one is: at least once, yes (the acknowledgements overlap the next batch's wait). Exactly
    /// once, no: the next transaction would begin the moment this one's commit returns, while
    /// the broker still writes its markers, and librdkafka answers the coordinator's
    /// CONCURRENT_TRANSACTIONS with a fixed 20 ms pause before adding the partitions again
    /// (its `rdkafka_txnmgr.c`). That took the p99 at 5,000 events/s from 66 to 110 ms;
    /// committing at once leaves the batch's wait (5 ms) between the two, as before. A full
    /// batch's successor takes longer to gather than a commit.
    pub fn settles_later_when_caught_up(&self) -> bool {
        !self.exactly_once()
    }

    /// The first half of [`Output::commit`]: hands the batch's records to librdkafka and
    /// returns without waiting for Kafka, so that the next batch is taken meanwhile;
    /// [`Output::settle`] is the second half. Exactly once, the records go in a transaction
    /// begun here, whose acknowledgements, offsets and commit run on a thread of their own
    /// (the loop waited 7–11 ms a batch for the broker's commit, docs/performance.md). Returns
    /// the indicator records sent.
    pub fn send_batch(
        &mut self,
        b: &Blocking,
        consumer: &StreamConsumer<ServiceContext>,
        batch: &Batch,
        indicators: Indicators<'_>,
    ) -> anyhow::Result<usize> {
        if !self.exactly_once() {
            return self.enqueue(b, batch, indicators);
        }
        let begun = self
            .begin(b, consumer, batch, indicators)
            .and_then(|(sent, offsets)| {
                let (producer, headers_only) = (self.producer.clone(), self.headers_only.clone());
                let held = self.gate.hold();
                let committing = std::thread::Builder::new()
                    .name("silkroute-commit".into())
                    .spawn(move || {
                        let _held = held;
                        let b = Blocking::own_thread();
                        finish_transaction(&b, &producer, &headers_only, offsets)
                    })
                    .context("starting the transaction's commit")?;
                Ok((sent, committing))
            });
        match begun {
            Ok((sent, committing)) => {
                self.committing = Some(committing);
                Ok(sent)
            }
            Err(e) => self.concluded(Err(e)),
        }
    }

    /// Exactly once: begins the batch's transaction and hands its records over; returns the
    /// indicator records sent and the offsets to commit with them.
    fn begin(
        &mut self,
        b: &Blocking,
        consumer: &StreamConsumer<ServiceContext>,
        batch: &Batch,
        indicators: Indicators<'_>,
    ) -> anyhow::Result<(usize, TransactionOffsets)> {
        debug_assert!(self.committing.is_none(), "one transaction at a time");
        self.producer.context().take_txn_refusal();
        self.producer
            .begin_transaction()
            .context("beginning a transaction")?;
        let sent = self.enqueue(b, batch, indicators)?;
        Ok((sent, transaction_offsets(consumer, batch)?))
    }

    /// The second half of [`Output::commit`]; returns when the batch's records were published.
    /// At least once: waits until Kafka acknowledged every record sent (refused ones sent
    /// again where that can help), then stores the batch's input offsets for the next commit.
    /// Exactly once: waits for the transaction's commit (see [`Output::concluded`]); returns
    /// when it committed.
    pub fn settle(
        &mut self,
        b: &Blocking,
        consumer: &StreamConsumer<ServiceContext>,
        batch: &Batch,
    ) -> anyhow::Result<Instant> {
        if self.exactly_once() {
            return self.joined_commit().expect("settle follows send_batch");
        }
        let acknowledged =
            acknowledged_or_resent(b, &self.producer, &self.headers_only, self.guarantee)?;
        for t in &batch.offsets {
            if let Err(e) = consumer.store_offset(&t.topic, t.partition, t.offset) {
                // The partition moved to another member, which will process it from the last
                // commit: at least once.
                warn!(error = %e, topic = %t.topic, partition = t.partition, "Offset not stored.");
            }
        }
        Ok(acknowledged)
    }

    /// Exactly once: waits for the transaction committing on its own thread, if one is, and
    /// concludes it.
    fn joined_commit(&mut self) -> Option<anyhow::Result<Instant>> {
        let committing = self.committing.take()?;
        let committed = committing
            .join()
            .expect("the transaction's commit does not panic");
        Some(self.concluded(committed))
    }

    /// Exactly once, a transaction's end: counted, and any failure aborts it, marks
    /// [`Output::aborted`] and is returned. The engine has already applied the batch (and
    /// perhaps the next), so the service rebuilds it, with fresh clients, from the last
    /// committed transaction (abort and rewind).
    fn concluded<T>(&mut self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        let outcome = if result.is_ok() { "commit" } else { "abort" };
        self.metrics
            .transactions
            .with_label_values(&[outcome])
            .inc();
        result.map_err(|e| {
            if let Err(abort) = self.producer.abort_transaction(timeouts::TRANSACTION) {
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
            self.aborted = true;
            e.context("transaction aborted")
        })
    }

    /// Hands the batch's records to librdkafka: its changelog records, its dead letters and,
    /// unless the takeover publishes them, the engine's changed records this instance owns.
    /// Returns the indicator records sent.
    fn enqueue(
        &mut self,
        b: &Blocking,
        batch: &Batch,
        indicators: Indicators<'_>,
    ) -> anyhow::Result<usize> {
        let this = &*self;
        std::thread::scope(|scope| {
            let mut outbox = outbox::Outbox::new(scope, b, &this.producer, &this.topics.indicators);
            // 1. The batch's forwards to the changelog, from the outbox's thread when there
            //    are many, so that their sends overlap the flush.
            outbox.forward(&batch.forwards, &this.topics.changelog, this.session)?;
            // 2. Its dead letters.
            this.send_dead(b, batch)?;
            // 3. The indicator records, streamed from the engine's flush into the outbox.
            let sent = match indicators {
                Indicators::Changed { engine, owned } => {
                    this.send_indicators(&mut outbox, engine, owned)
                }
                Indicators::ByTakeover => 0,
            };
            // 4. Every record handed to librdkafka, or the first refusal.
            outbox.finish()?;
            Ok(sent)
        })
    }

    /// Enqueues the batch's dead letters.
    fn send_dead(&self, b: &Blocking, batch: &Batch) -> anyhow::Result<()> {
        for d in &batch.dead {
            let sent = send(
                b,
                &self.producer,
                dead_letter(&self.topics.dead_letter, d, batch),
            );
            if let Err(e) = sent {
                if e.cause() == Some(Cause::RecordTooLarge)
                    && d.value.as_ref().is_some_and(|v| !v.is_empty())
                {
                    let source = &batch.offsets[d.source];
                    headers_only(
                        &self.headers_only,
                        (source.topic.clone(), source.partition, d.offset),
                    );
                    return Err(anyhow::Error::from(e).context("a dead letter is too large for the producer; the batch is processed again with its headers only"));
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Hands the engine's changed records that this instance owns to `outbox` as the flush
    /// derives them; returns how many.
    fn send_indicators(
        &self,
        outbox: &mut outbox::Outbox<'_, '_>,
        engine: &mut Engine,
        owned: &Owned,
    ) -> usize {
        let mut sent = 0;
        // The gauges follow each series' latest record.
        let observer = std::cell::RefCell::new(self.metrics.observer(engine.generation()));
        // Err only when the outbox's thread stopped on a refusal, which `finish` returns.
        let _ = engine.flush_each_noting(
            |key, json, record, slot| {
                if !owned.owns(record) {
                    return Ok(());
                }
                observer.borrow_mut().note(key, record, slot);
                sent += 1;
                match outbox.push(key, json, Sent::Indicator(record.kind()).tag()) {
                    true => Ok(()),
                    false => Err(()),
                }
            },
            // After a takeover's `reconcile_against`, the records equal to what Kafka
            // holds: not sent, but the gauges of the series gained follow them too.
            |key, record, slot| {
                if owned.owns(record) {
                    observer.borrow_mut().note(key, record, slot);
                }
            },
        );
        sent
    }

    /// After the last batch (a stop, or a failure before restoring): what the producer still
    /// holds is flushed within `budget`, and at least once the stored offsets are committed.
    pub fn wind_down(
        &mut self,
        _: &Blocking,
        consumer: &StreamConsumer<ServiceContext>,
        budget: Duration,
    ) {
        // A session that failed with a transaction committing: its end decides whether the
        // next session restores (an abort) or goes on from it.
        if let Some(Err(e)) = self.joined_commit() {
            warn!(error = %format!("{e:#}"), "The last transaction did not commit.");
        }
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

/// A record librdkafka would not take, and why. What the pipeline decides on (a dead letter
/// too large goes again with its headers only) it reads from here, before the value becomes
/// an `anyhow::Error` for the session's report; deliberately not a `std::error::Error`, so
/// that `?` converts it through the `From` below and keeps the operator's cause.
struct Unsent {
    topic: String,
    error: KafkaError,
}

impl Unsent {
    fn cause(&self) -> Option<Cause> {
        self.error.rdkafka_error_code().and_then(Cause::of_code)
    }
}

impl From<Unsent> for anyhow::Error {
    fn from(u: Unsent) -> anyhow::Error {
        let cause = u.cause();
        let e = anyhow::Error::new(u.error).context(format!("cannot produce to {}", u.topic));
        match cause {
            // A record too large is the message's matter (or the topic's limit, which
            // `judge` names when the broker refuses it), not an operator error of the send.
            Some(c) if c != Cause::RecordTooLarge => e.context(OperatorError::new(c, u.topic)),
            _ => e,
        }
    }
}

/// Waits for every delivery report, and says when the last arrived; at least once, what
/// Kafka refused and may accept later is sent again, a few times with growing pauses.
fn acknowledged_or_resent(
    b: &Blocking,
    producer: &OutputProducer,
    headers_only: &HeadersOnly,
    guarantee: Guarantee,
) -> anyhow::Result<Instant> {
    let mut attempt = 1;
    loop {
        let acknowledged = acknowledged(producer)?;
        let refused = producer.context().take_refused();
        if refused.is_empty() {
            return Ok(acknowledged);
        }
        // What retrying the same records cannot cure ends the batch at once.
        judge(&refused, headers_only)?;
        if guarantee == Guarantee::ExactlyOnce {
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
        b.sleep(timeouts::RESEND_PAUSE * attempt);
        for r in &refused {
            send(b, producer, r.record())?;
        }
        attempt += 1;
    }
}

/// Waits until Kafka answered for every record sent; returns when the last answer came.
fn acknowledged(producer: &OutputProducer) -> anyhow::Result<Instant> {
    // Each delivery ends within message.timeout.ms (or the transaction timeout), far
    // below this.
    producer
        .context()
        .wait(timeouts::ACKNOWLEDGED)
        .with_context(|| {
            format!(
                "Kafka did not acknowledge the batch within {} s",
                timeouts::ACKNOWLEDGED.as_secs()
            )
        })
}

/// Exactly once: a batch's input offsets and the group's generation they were read in.
type TransactionOffsets = Option<(TopicPartitionList, ConsumerGroupMetadata)>;

/// Exactly once: the batch's input offsets to commit with its transaction (the next to
/// read, and the group's generation they were read in), if it has any.
fn transaction_offsets(
    consumer: &StreamConsumer<ServiceContext>,
    batch: &Batch,
) -> anyhow::Result<TransactionOffsets> {
    if batch.offsets.is_empty() {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    for t in &batch.offsets {
        tpl.add_partition_offset(&t.topic, t.partition, Offset::Offset(t.offset + 1))?;
    }
    let group = consumer
        .group_metadata()
        .context("the consumer has no group metadata")?;
    Ok(Some((tpl, group)))
}

/// Exactly once, on the transaction's own thread: every record acknowledged, the batch's
/// offsets added, the transaction committed; returns when it was (its records became
/// visible to `read_committed` readers then).
fn finish_transaction(
    b: &Blocking,
    producer: &OutputProducer,
    headers_only: &HeadersOnly,
    offsets: TransactionOffsets,
) -> anyhow::Result<Instant> {
    acknowledged_or_resent(b, producer, headers_only, Guarantee::ExactlyOnce)?;
    if let Some((tpl, group)) = offsets {
        producer
            .send_offsets_to_transaction(&tpl, &group, timeouts::TRANSACTION)
            .context("adding the batch's offsets to the transaction")?;
    }
    // Every report is in (waited for above: sending the offsets while the records were still
    // in flight measured slower); librdkafka drops the last ones from its queue count just
    // after serving them, and its commit (a flush) would otherwise poll for 100 ms.
    let settle = Instant::now();
    while producer.in_flight_count() > 0 && settle.elapsed() < timeouts::IN_FLIGHT_SETTLE {
        b.sleep(timeouts::IN_FLIGHT_SPIN);
    }
    producer
        .commit_transaction(timeouts::TRANSACTION)
        .context("committing the transaction")?;
    Ok(Instant::now())
}

/// Enqueues one record, waiting while librdkafka's local queue is full (its delivery reports
/// are served by the producer's own thread meanwhile).
fn send<K, P>(
    b: &Blocking,
    producer: &OutputProducer,
    mut record: BaseRecord<'_, K, P, usize>,
) -> Result<(), Unsent>
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
                b.sleep(timeouts::QUEUE_FULL_PAUSE);
            }
            Err((error, r)) => {
                producer.context().unsent();
                return Err(Unsent {
                    topic: r.topic.to_string(),
                    error,
                });
            }
        }
    }
}

/// Enqueues a batch's changelog records, each marked with `session`.
fn send_forwards(
    b: &Blocking,
    producer: &OutputProducer,
    topic: &str,
    session: u64,
    forwards: &[Forward],
) -> Result<(), Unsent> {
    let session = changelog::session_header(session);
    for f in forwards {
        send(
            b,
            producer,
            BaseRecord::with_opaque_to(topic, Sent::Changelog.tag())
                .headers(session.clone())
                .partition(f.partition)
                .timestamp(f.received_ms)
                .key(&f.key)
                .payload(&f.value),
        )?;
    }
    Ok(())
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

    fn unsent(code: RDKafkaErrorCode) -> Unsent {
        Unsent {
            topic: "silkroute.dead-letter".into(),
            error: KafkaError::MessageProduction(code),
        }
    }

    #[test]
    fn a_refused_send_is_reported_as_the_operators_matter_naming_its_topic_unless_too_large() {
        let denied = unsent(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert_eq!(denied.cause(), Some(Cause::TopicAuthorization));
        let report = anyhow::Error::from(denied);
        assert_eq!(
            OperatorError::find(&report, "g", "t"),
            Some(OperatorError::new(
                Cause::TopicAuthorization,
                "silkroute.dead-letter"
            ))
        );
        assert!(format!("{report:#}").contains("cannot produce to silkroute.dead-letter"));

        // Too large: the pipeline decides on it (headers only) and no operator is named.
        let large = unsent(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(large.cause(), Some(Cause::RecordTooLarge));
        assert_eq!(
            OperatorError::find(&anyhow::Error::from(large), "g", "t"),
            None
        );
    }
}
