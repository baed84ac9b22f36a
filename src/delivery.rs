//! The output producer's delivery reports, counted as they arrive rather than awaited one by
//! one.
//!
//! A batch sends a changelog record per event and, after a flush, one to several indicator
//! records per event; a future per record (and a `Vec` of them) cost more than the send.
//! Instead every record carries a small tag, librdkafka's delivery report counts it, and a
//! refused record is copied aside so that at least once can send it again. The batch then
//! waits until every report of the batch has arrived (in both modes; exactly once, before its
//! transaction commits).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext};
use tracing::{debug, error, info, warn};

use crate::changelog::Written;
use crate::engine::record::RecordKind;
use crate::metrics::Metrics;

/// What a record sent by the pipeline is, as its delivery report tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Changelog,
    DeadLetter,
    Indicator(RecordKind),
}

impl Sent {
    pub fn tag(self) -> usize {
        match self {
            Sent::Changelog => 0,
            Sent::DeadLetter => 1,
            Sent::Indicator(k) => 2 + RecordKind::ALL.iter().position(|&x| x == k).unwrap_or(0),
        }
    }

    pub fn from_tag(tag: usize) -> Sent {
        match tag {
            0 => Sent::Changelog,
            1 => Sent::DeadLetter,
            t => Sent::Indicator(RecordKind::ALL[(t - 2).min(RecordKind::ALL.len() - 1)]),
        }
    }
}

/// A record Kafka refused (after librdkafka's own retries), copied out of its report.
pub struct Refused {
    pub topic: String,
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
    pub timestamp: Option<i64>,
    pub tag: usize,
    /// Why Kafka refused it: the code decides whether retrying can help.
    pub code: Option<RDKafkaErrorCode>,
    pub error: String,
}

impl Refused {
    /// The input message a refused dead letter stands for, from its source headers.
    pub fn dead_letter_source(&self) -> Option<(String, i32, i64)> {
        let headers = self.headers.as_ref()?;
        let get = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        Some((
            get("silkroute.source.topic")?.to_string(),
            get("silkroute.source.partition")?.parse().ok()?,
            get("silkroute.source.offset")?.parse().ok()?,
        ))
    }

    /// The record to send again, as it was first sent.
    pub fn record(&self) -> BaseRecord<'_, [u8], [u8], usize> {
        let mut r = BaseRecord::with_opaque_to(&self.topic, self.tag).partition(self.partition);
        if let Some(k) = &self.key {
            r = r.key(k.as_slice());
        }
        if let Some(p) = &self.payload {
            r = r.payload(p.as_slice());
        }
        if let Some(h) = &self.headers {
            r = r.headers(h.clone());
        }
        if let Some(t) = self.timestamp {
            r = r.timestamp(t);
        }
        r
    }
}

/// The producer's context: counts acknowledged indicator records, keeps refused records.
pub struct Deliveries {
    published: [prometheus::IntCounter; 3],
    produce_errors: prometheus::IntCounterVec,
    refused: Mutex<Vec<Refused>>,
    /// Records sent whose report has not arrived, and the wake-up for [`Deliveries::wait`].
    /// (librdkafka's own flush polls in 100 ms steps while the producer's thread serves the
    /// reports: a stall per batch.)
    outstanding: AtomicUsize,
    /// When the last report that left none outstanding arrived.
    settled: (Mutex<Instant>, Condvar),
    /// The first partition the transaction coordinator refused to add to the current
    /// transaction, with the refusal (see [`refused_partition`]).
    txn_refusal: Mutex<Option<(String, RDKafkaErrorCode)>>,
    /// Where the changelog records landed, for the changelog's reader.
    written: Arc<Written>,
}

impl Deliveries {
    pub fn new(metrics: &Metrics, written: Arc<Written>) -> Deliveries {
        Deliveries {
            published: RecordKind::ALL.map(|k| {
                metrics
                    .indicators_published
                    .with_label_values(&[k.as_str()])
            }),
            produce_errors: metrics.produce_errors.clone(),
            refused: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            settled: (Mutex::new(Instant::now()), Condvar::new()),
            txn_refusal: Mutex::new(None),
            written,
        }
    }

    /// The topic and refusal of the first partition the current transaction could not add,
    /// if any, forgotten by the call. A refused AddPartitionsToTxn fails the transaction
    /// with the bare code (librdkafka's transaction error names no topic), and its records
    /// are then purged, not refused: this is the only place that says which topic it was.
    pub fn take_txn_refusal(&self) -> Option<(String, RDKafkaErrorCode)> {
        self.txn_refusal.lock().expect("refusal lock").take()
    }

    /// One more record handed to the producer.
    pub fn sent(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// Waits until every record sent has its report, and says when the last one arrived (a
    /// batch that sent nothing gets an earlier batch's time); None if `timeout` passed first.
    pub fn wait(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &self.settled;
        let mut guard = lock.lock().expect("settled lock");
        while self.outstanding.load(Ordering::Acquire) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = cvar.wait_timeout(guard, left).expect("settled lock").0;
        }
        Some(*guard)
    }

    /// A record counted by [`Deliveries::sent`] that the producer did not take.
    pub fn unsent(&self) {
        self.reported();
    }

    fn reported(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock, so that a waiter between its check and its wait is not missed.
            *self.settled.0.lock().expect("settled lock") = Instant::now();
            self.settled.1.notify_all();
        }
    }

    /// The records refused since the last call.
    pub fn take_refused(&self) -> Vec<Refused> {
        std::mem::take(&mut *self.refused.lock().expect("refused lock"))
    }
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if let Some(refusal) = refused_partition(fac, message) {
            self.txn_refusal
                .lock()
                .expect("refusal lock")
                .get_or_insert(refusal);
        }
        // As rdkafka's default does.
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }
}

/// The refusals of AddPartitionsToTxn that name an operator's matter (a missing Write ACL, a
/// deleted topic); "Operation not attempted" is a partition skipped for another's refusal.
const PARTITION_REFUSALS: [RDKafkaErrorCode; 2] = [
    RDKafkaErrorCode::TopicAuthorizationFailed,
    RDKafkaErrorCode::UnknownTopicOrPartition,
];

/// The topic and code of librdkafka's log line for a partition the transaction coordinator
/// refused, `ADDPARTS ... Failed to add partition "<topic>" [<p>] to transaction: <reason>`
/// (rdkafka_txnmgr.c, librdkafka 2.12), whose reason is `rd_kafka_err2str` of the code.
fn refused_partition(fac: &str, message: &str) -> Option<(String, RDKafkaErrorCode)> {
    if fac != "ADDPARTS" {
        return None;
    }
    let (_, rest) = message.split_once("Failed to add partition \"")?;
    let (topic, rest) = rest.split_once("\" [")?;
    let (_, reason) = rest.split_once("] to transaction: ")?;
    // A code displays as `TopicAuthorizationFailed (Broker: Topic authorization failed)`.
    let code = PARTITION_REFUSALS
        .into_iter()
        .find(|c| format!("{c:?} ({})", reason.trim()) == c.to_string())?;
    Some((topic.to_string(), code))
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        match result {
            Ok(m) => match Sent::from_tag(tag) {
                Sent::Changelog => self.written.delivered(m.partition(), m.offset()),
                Sent::Indicator(k) => {
                    if let Some(i) = RecordKind::ALL.iter().position(|&x| x == k) {
                        self.published[i].inc();
                    }
                }
                Sent::DeadLetter => {}
            },
            Err((e, m)) => {
                self.produce_errors.with_label_values(&[m.topic()]).inc();
                // One line per record flooded the log (hundreds a second while an ACL was
                // missing); the batch reports its refused records once, by cause
                // (`pipeline::judge`, the operator error, or the retry's warning).
                debug!(error = %e, topic = m.topic(), "Kafka refused a record.");
                let refused = Refused {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec),
                    headers: m.headers().map(|h| h.detach()),
                    timestamp: m.timestamp().to_millis(),
                    tag,
                    code: e.rdkafka_error_code(),
                    error: e.to_string(),
                };
                self.refused.lock().expect("refused lock").push(refused);
            }
        }
        self.reported();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_partition_is_read_from_librdkafkas_line() {
        // As librdkafka 2.12 logged them against a broker without a Write ACL.
        let refused = "[thrd:main]: TxnCoordinator/1: Failed to add partition \"silkroute.indicators\" [1] to transaction: Broker: Topic authorization failed";
        assert_eq!(
            refused_partition("ADDPARTS", refused),
            Some((
                "silkroute.indicators".to_string(),
                RDKafkaErrorCode::TopicAuthorizationFailed
            ))
        );
        let skipped = "[thrd:main]: TxnCoordinator/1: Failed to add partition \"silkroute.dlq\" [0] to transaction: Broker: Operation not attempted";
        assert_eq!(refused_partition("ADDPARTS", skipped), None);
        assert_eq!(refused_partition("TXNERR", refused), None);
    }

    #[test]
    fn tags_survive_the_round_trip() {
        let all = [Sent::Changelog, Sent::DeadLetter]
            .into_iter()
            .chain(RecordKind::ALL.map(Sent::Indicator));
        for sent in all {
            assert_eq!(Sent::from_tag(sent.tag()), sent);
        }
    }
}
