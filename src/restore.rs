//! What Kafka already holds on the indicators topic: read back whole when this instance takes
//! over partitions (at start, and after a rebalance), so that it publishes only what differs.
//! The cells themselves are restored from the changelog ([`crate::changelog::Table`]).

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::config::Settings;
use crate::engine::record::fingerprint;
use crate::kafka;
use crate::metrics::Metrics;
use crate::retry::{Cause, ErrorReports, OperatorError, ERROR_PAUSE};
use crate::timeouts;

/// Reads `ranges` (topic, partition, from, to-exclusive) with `reader` and hands each message
/// to `each`.
fn read_ranges(
    reader: &BaseConsumer,
    ranges: &[(String, i32, i64, i64)],
    what: &str,
    mut each: impl FnMut(&[u8], Option<&[u8]>),
) -> anyhow::Result<u64> {
    let ranges: Vec<_> = ranges.iter().filter(|r| r.3 > r.2).cloned().collect();
    if ranges.is_empty() {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    let mut remaining: HashMap<(String, i32), i64> = HashMap::new();
    for (topic, p, from, to) in &ranges {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*from))?;
        remaining.insert((topic.clone(), *p), *to);
    }
    reader
        .assign(&tpl)
        .context("assigning restore partitions")?;
    let total: i64 = ranges.iter().map(|r| r.3 - r.2).sum();
    let (mut read, mut last_log) = (0u64, Instant::now());
    let mut errors = ErrorReports::default();
    while !remaining.is_empty() {
        match reader.poll(timeouts::RESTORE_POLL) {
            Some(Ok(m)) => {
                let key = (m.topic().to_string(), m.partition());
                let Some(&end) = remaining.get(&key) else {
                    continue;
                };
                if m.offset() < end {
                    each(m.key().unwrap_or_default(), m.payload());
                    read += 1;
                }
                if m.offset() + 1 >= end {
                    remaining.remove(&key);
                }
            }
            // At a partition's end, or idle: positions tell which ranges are done even when
            // the last offsets hold no message (transaction markers, compacted records).
            Some(Err(KafkaError::PartitionEOF(_))) | None => {
                if let Ok(positions) = reader.position() {
                    for e in positions.elements() {
                        if let (Offset::Offset(pos), Some(&end)) = (
                            e.offset(),
                            remaining.get(&(e.topic().to_string(), e.partition())),
                        ) {
                            if pos >= end {
                                remaining.remove(&(e.topic().to_string(), e.partition()));
                            }
                        }
                    }
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
                std::thread::sleep(ERROR_PAUSE);
            }
        }
        if last_log.elapsed() > timeouts::PROGRESS_LOG {
            info!(what, read, total, "Restoring…");
            last_log = Instant::now();
        }
    }
    Ok(read)
}

/// Fingerprints of the records on the indicators topic, last value per key (read_committed,
/// to the end offsets as of the call).
pub fn published(settings: &Settings, metrics: &Metrics) -> anyhow::Result<HashMap<String, u64>> {
    let client: BaseConsumer = kafka::reader_config(settings)
        .create()
        .context("creating a restore reader")?;
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
        return Ok(HashMap::new());
    }
    let ranges = kafka::watermarks(
        &client,
        &[(topic.clone(), partitions)],
        timeouts::WATERMARKS,
    )?;
    let mut held: HashMap<String, u64> = HashMap::new();
    // The client that read the metadata and end offsets reads the records too.
    let read = read_ranges(&client, &ranges, "indicators", |key, value| {
        let key = String::from_utf8_lossy(key).into_owned();
        match value {
            Some(v) if !v.is_empty() => held.insert(key, fingerprint(v)),
            _ => held.remove(&key),
        };
    })?;
    metrics
        .restore_records
        .with_label_values(&["indicators"])
        .inc_by(read);
    Ok(held)
}
