//! What Kafka already holds on the indicators topic: read back whole when this instance takes
//! over partitions (at start, and after a rebalance), so that it publishes only what differs.
//! The cells themselves are restored from the changelog ([`crate::changelog::Table`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::blocking::Blocking;
use crate::config::Settings;
use crate::engine::record::Published;
use crate::kafka::{self, LogEnds, ReaderContext, Undecided};
use crate::metrics::Metrics;
use crate::retry::{Cause, ErrorReports, OperatorError, ERROR_PAUSE};
use crate::timeouts;

/// Reads `ranges` (topic, partition, from, to-exclusive) with `reader` and hands each message
/// to `each`.
fn read_ranges(
    b: &Blocking,
    reader: &Reader,
    ranges: &[(String, i32, i64, i64)],
    what: &'static str,
    cancel: &AtomicBool,
    mut each: impl FnMut(&[u8], Option<&[u8]>),
) -> anyhow::Result<u64> {
    let ranges: Vec<_> = ranges.iter().filter(|r| r.3 > r.2).cloned().collect();
    if ranges.is_empty() {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    // (topic, partition) → end, and the position (the start until the reader tells one);
    // a handful of entries, searched without allocating.
    let mut remaining: Vec<(&str, i32, i64, i64)> = Vec::with_capacity(ranges.len());
    for (topic, p, from, to) in &ranges {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*from))?;
        remaining.push((topic, *p, *to, *from));
    }
    let find = |remaining: &[(&str, i32, i64, i64)], topic: &str, p: i32| {
        remaining.iter().position(|r| r.1 == p && r.0 == topic)
    };
    reader
        .assign(&tpl)
        .context("assigning restore partitions")?;
    let total: i64 = ranges.iter().map(|r| r.3 - r.2).sum();
    let (mut read, mut last_log) = (0u64, Instant::now());
    let mut errors = ErrorReports::default();
    let mut undecided = Undecided::new(what);
    while !remaining.is_empty() {
        if cancel.load(Ordering::Relaxed) {
            anyhow::bail!("reading {what} was cancelled");
        }
        match reader.poll(timeouts::RESTORE_POLL) {
            Some(Ok(m)) => {
                let Some(i) = find(&remaining, m.topic(), m.partition()) else {
                    continue;
                };
                if m.offset() < remaining[i].2 {
                    each(m.key().unwrap_or_default(), m.payload());
                    read += 1;
                }
                if m.offset() + 1 >= remaining[i].2 {
                    remaining.swap_remove(i);
                }
            }
            // At a partition's end, or idle: positions tell which ranges are done even when
            // the last offsets hold no message (transaction markers, compacted records).
            Some(Err(KafkaError::PartitionEOF(_))) | None => {
                if let Ok(positions) = reader.position() {
                    for e in positions.elements() {
                        let (Offset::Offset(pos), Some(i)) =
                            (e.offset(), find(&remaining, e.topic(), e.partition()))
                        else {
                            continue;
                        };
                        if pos >= remaining[i].2 {
                            remaining.swap_remove(i);
                        } else {
                            remaining[i].3 = pos;
                        }
                    }
                }
                let moved = read + (ranges.len() - remaining.len()) as u64;
                let given_up = undecided.due(moved).is_some_and(|due| {
                    let short: Vec<_> = remaining.iter().map(|r| (r.1, r.3)).collect();
                    undecided.give_up(b, due, reader, &ranges[0].0, &short)
                });
                if given_up {
                    break;
                }
            }
            Some(Err(e)) => {
                if let Some(op) = e
                    .rdkafka_error_code()
                    .and_then(|c| OperatorError::of_code(c, &ranges[0].0))
                {
                    return Err(anyhow::Error::new(e).context(op));
                }
                errors.warn("Error while restoring", &e);
                b.sleep(ERROR_PAUSE);
            }
        }
        if last_log.elapsed() > timeouts::PROGRESS_LOG {
            info!(what, read, total, "Restoring…");
            last_log = Instant::now();
        }
    }
    Ok(read)
}

/// The client that reads the indicators topic.
type Reader = BaseConsumer<ReaderContext>;

/// What the indicators topic held when it was last read: each key's fingerprint, and where
/// the read ended, so that a later read only adds what was published since (with the same
/// client: a new one costs a connection, and closing one 100 ms).
#[derive(Default)]
pub struct Held {
    published: Published,
    /// Per partition, the offset the read ended at (exclusive).
    ends: Vec<(i32, i64)>,
    reader: Option<Reader>,
}

impl Held {
    /// What was read, the client closed off the caller's thread.
    pub fn into_published(mut self) -> Published {
        std::mem::take(&mut self.published)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = kafka::close_detached(reader);
        }
    }
}

/// The indicators topic read on a thread of its own, started with the session so that it
/// overlaps the changelog's restore: the takeover that follows the first assignment needs it,
/// and reading 717k records took as long as restoring the 443k cells.
/// Dropped unfinished (the session ended first), it tells the thread to stop: a read that
/// retries while the broker is away must not outlive its session.
pub struct Prefetch {
    thread: Option<std::thread::JoinHandle<anyhow::Result<Held>>>,
    cancel: Arc<AtomicBool>,
}

impl Prefetch {
    pub fn start(
        settings: &Settings,
        metrics: &Arc<Metrics>,
        log_ends: &Arc<LogEnds>,
    ) -> anyhow::Result<Prefetch> {
        let (settings, metrics, log_ends) = (settings.clone(), metrics.clone(), log_ends.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        let cancelled = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("indicators-read".into())
            .spawn(move || {
                let b = Blocking::own_thread();
                published(
                    &b,
                    &settings,
                    &log_ends,
                    &metrics,
                    Held::default(),
                    &cancelled,
                )
            })
            .context("starting the thread that reads the indicators topic")?;
        Ok(Prefetch {
            thread: Some(thread),
            cancel,
        })
    }

    /// Waits for the read (blocking) and brings it up to the topic's current end.
    pub fn finish(
        mut self,
        b: &Blocking,
        settings: &Settings,
        log_ends: &LogEnds,
        metrics: &Metrics,
    ) -> anyhow::Result<Held> {
        let thread = self.thread.take().expect("a prefetch is finished once");
        let held = thread
            .join()
            .map_err(|_| anyhow::anyhow!("the thread reading the indicators topic panicked"))??;
        published(b, settings, log_ends, metrics, held, &self.cancel)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The indicators topic read whole, now, on the caller's thread (a takeover after the first).
pub fn read_whole(
    b: &Blocking,
    settings: &Settings,
    log_ends: &LogEnds,
    metrics: &Metrics,
) -> anyhow::Result<Held> {
    published(
        b,
        settings,
        log_ends,
        metrics,
        Held::default(),
        &AtomicBool::new(false),
    )
}

/// Fingerprints of the records on the indicators topic, last value per key (read_committed,
/// to where the logs end as of the call, see [`LogEnds`]): `since` plus what was published
/// after it.
/// `cancel` ends the read early, with an error.
pub fn published(
    b: &Blocking,
    settings: &Settings,
    log_ends: &LogEnds,
    metrics: &Metrics,
    mut since: Held,
    cancel: &AtomicBool,
) -> anyhow::Result<Held> {
    let client = match since.reader.take() {
        Some(reader) => reader,
        // The changelog reader's settings: with librdkafka's defaults (a fetch waits up to
        // 500 ms at the broker) the read of the 443k backfill's 717k records took 3.5 s, not 1.1.
        None => kafka::table_config(settings)
            .set("enable.partition.eof", "true")
            .create_with_context(ReaderContext)
            .context("creating a restore reader")?,
    };
    let topic = &settings.topics.indicators;
    let md = client
        .fetch_metadata(Some(topic), timeouts::KAFKA_REQUEST)
        .context("reading indicators topic metadata")?;
    // Refused is not missing: assuming nothing was published would publish everything again.
    if let Some(op) = md
        .topics()
        .first()
        .and_then(|t| t.error())
        .map(rdkafka::types::RDKafkaErrorCode::from)
        .and_then(|c| OperatorError::of_code(c, topic))
        .filter(|op| op.cause != Cause::UnknownTopic)
    {
        return Err(anyhow::Error::new(op).context("reading what the indicators topic holds"));
    }
    let partitions = md
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .unwrap_or(0);
    if partitions == 0 {
        warn!(topic = %topic, "Indicators topic not found; assuming nothing was published yet.");
        let _ = kafka::close_detached(client);
        return Ok(Held::default());
    }
    let mut ranges = log_ends.of(b, topic, partitions, timeouts::WATERMARKS)?;
    let ended_at = |p: i32| since.ends.iter().find(|e| e.0 == p).map(|e| e.1);
    // A partition whose end moved back (the topic deleted and created again) is read whole:
    // what `since` holds for it is then not what the topic holds.
    let moved_back = ranges
        .iter()
        .any(|r| ended_at(r.1).is_some_and(|end| end > r.3));
    let mut held = if moved_back {
        Held::default()
    } else {
        for r in &mut ranges {
            if let Some(end) = ended_at(r.1) {
                r.2 = r.2.max(end);
            }
        }
        since
    };
    // The client that read the metadata reads the records too.
    let published = &mut held.published;
    let read = read_ranges(b, &client, &ranges, "indicators", cancel, |key, value| {
        published.read(key, value)
    })?;
    held.ends = ranges.iter().map(|r| (r.1, r.3)).collect();
    held.reader = Some(client);
    metrics
        .restore_records
        .with_label_values(&["indicators"])
        .inc_by(read);
    Ok(held)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::*;
    use crate::engine::record::fingerprint;

    /// A mock cluster whose indicators topic, "held", has `partitions`; settings pointing at
    /// it, and a producer.
    fn held_topic(
        partitions: i32,
    ) -> (
        MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        Settings,
        BaseProducer,
    ) {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("held", partitions, 1).expect("topic");
        let settings = Settings::load_from(
            None,
            [
                (
                    "SILKROUTE__KAFKA__BOOTSTRAP_SERVERS",
                    cluster.bootstrap_servers(),
                ),
                ("SILKROUTE__TOPICS__INDICATORS", "held".to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        )
        .expect("settings");
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .expect("producer");
        (cluster, settings, producer)
    }

    /// Sends `(partition, key, value)` records, a `None` value as a tombstone, and waits.
    fn send(producer: &BaseProducer, records: &[(i32, &str, Option<&str>)]) {
        for &(partition, key, value) in records {
            let record = BaseRecord::<str, str>::to("held")
                .partition(partition)
                .key(key);
            let record = match value {
                Some(v) => record.payload(v),
                None => record,
            };
            producer.send(record).expect("queued");
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");
    }

    /// A top-up reads only what was published after the first read, and ends equal to a
    /// whole read: the prefetch started with the session depends on it.
    #[test]
    fn a_read_since_an_earlier_one_adds_only_the_records_published_after_it() {
        let (_cluster, settings, producer) = held_topic(2);
        send(&producer, &[(0, "a", Some("1")), (1, "b", Some("2"))]);
        let (metrics, never) = (Metrics::new(), AtomicBool::new(false));
        let read = |m: &Metrics| m.restore_records.with_label_values(&["indicators"]).get();

        let b = Blocking::own_thread();
        let log_ends = LogEnds::new(&settings).expect("client");
        let since = |held| published(&b, &settings, &log_ends, &metrics, held, &never);
        let first = since(Held::default()).expect("read");
        assert_eq!(first.published.len(), 2);
        assert_eq!(read(&metrics), 2);

        // A new value, a tombstone, and a key new to the topic.
        send(
            &producer,
            &[(0, "a", Some("3")), (1, "b", None), (1, "c", Some("4"))],
        );
        let topped = since(first).expect("top-up");
        assert_eq!(read(&metrics), 2 + 3, "only the three new records are read");
        assert_eq!(topped.published.get("a"), Some(fingerprint(b"3")));
        assert_eq!(topped.published.get("b"), None);
        assert_eq!(topped.published.get("c"), Some(fingerprint(b"4")));

        let whole = since(Held::default()).expect("read");
        assert_eq!(whole.published.len(), topped.published.len());
        for key in ["a", "b", "c"] {
            assert_eq!(whole.published.get(key), topped.published.get(key), "{key}");
        }
    }

    #[test]
    fn a_cancelled_read_ends_with_an_error() {
        let (_cluster, settings, producer) = held_topic(1);
        send(&producer, &[(0, "a", Some("1"))]);
        let cancelled = AtomicBool::new(true);
        let b = Blocking::own_thread();
        let e = published(
            &b,
            &settings,
            &LogEnds::new(&settings).expect("client"),
            &Metrics::new(),
            Held::default(),
            &cancelled,
        )
        .err()
        .expect("a cancelled read fails");
        assert!(e.to_string().contains("cancelled"), "{e}");
    }
}
