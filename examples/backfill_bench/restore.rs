//! Restore at read speed (issue 17): a new instance joins the group of a finished drain, whose
//! changelog holds the data set's cells and whose committed offsets are at the inputs' end, as
//! a pod replacing another one does. Timed from `service::start` to ready (`/readyz` 200), in a
//! fresh process, against a raw read of the same changelog in the same process just before.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use silkroute::config::Settings;
use silkroute::lifecycle::State;

use super::{proc_status_kib, service_env, Args, Topics};

/// How long a restore may take before the run is called failed.
const RESTORE_DEADLINE: Duration = Duration::from_secs(300);

/// One restore, in this (fresh) process: the raw read first, then the service.
pub async fn restore_main(args: &Args) -> anyhow::Result<Value> {
    let prefix = args.prefix.clone().context("--prefix")?;
    let topics = Topics::new(prefix, args.run);
    let (env, _) = service_env(args, &topics);
    let settings = Settings::load_from(args.service_config.as_deref(), env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let changelog = settings.changelog_topic();
    let raw = tokio::task::block_in_place(|| read_to_end(&settings, &changelog))?;

    let rss_before = proc_status_kib("VmRSS:").unwrap_or(0) * 1024;
    let started = Instant::now();
    let handle = silkroute::service::start(settings).await?;
    // Restored: the changelog read to its end and applied (the state moves on to catching
    // up); ready: also assigned, taken over and caught up with the inputs.
    let mut restored_s = None;
    while !handle.lifecycle.is_ready() {
        let state = handle.lifecycle.state();
        if restored_s.is_none() && !matches!(state, State::Starting | State::Restoring) {
            restored_s = Some(started.elapsed().as_secs_f64());
        }
        if handle.is_finished() {
            bail!("the service stopped while restoring");
        }
        if started.elapsed() > RESTORE_DEADLINE {
            bail!("not ready after {} s", RESTORE_DEADLINE.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready_s = started.elapsed().as_secs_f64();
    let restored_s = restored_s.unwrap_or(ready_s);
    let cells = handle.metrics.state_cells.get();
    let rss_after = proc_status_kib("VmRSS:").unwrap_or(0) * 1024;
    let peak = proc_status_kib("VmHWM:").unwrap_or(0) * 1024;
    handle.stop().await?;
    Ok(json!({
        "changelog": changelog,
        "changelog_records": raw.records,
        "raw_read_s": raw.from_assignment_s,
        "raw_read_records_per_s": raw.records as f64 / raw.from_assignment_s,
        "raw_read_from_creation_s": raw.from_creation_s,
        "raw_read_from_creation_records_per_s": raw.records as f64 / raw.from_creation_s,
        "ready_s": ready_s,
        "restored_s": restored_s,
        "cells": cells,
        "restore_records_per_s": raw.records as f64 / restored_s,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "peak_rss_bytes": peak,
    }))
}

/// The raw read of the changelog: how many records, and how long it took.
struct RawRead {
    records: u64,
    /// From the assignment to the last record: the read alone.
    from_assignment_s: f64,
    /// From the consumer's creation to the last record: also the client's start, the topic's
    /// metadata and its end offsets, which the restore, timed from the service's start, pays
    /// too.
    from_creation_s: f64,
}

/// A bare `BaseConsumer` with the service's changelog reader settings reading `topic` from
/// the beginning to the end offsets it has now (compaction and transaction markers leave
/// offsets without a message, so it goes by offsets, not by a count).
fn read_to_end(settings: &Settings, topic: &str) -> anyhow::Result<RawRead> {
    let created = Instant::now();
    // The service's changelog reader settings, not librdkafka's defaults: with those (a fetch
    // may wait 500 ms at the broker) the same read took 0.3 s in one run and 1.3 s in the next,
    // which made the ratio say more about the reference than about the restore.
    let consumer: BaseConsumer = silkroute::table_config(settings)
        .set("group.id", "bench-restore-raw")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    let mut tpl = TopicPartitionList::new();
    let mut left = Vec::new();
    for p in 0..partitions {
        let (lo, hi) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if hi > lo {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            left.push((p, hi));
        }
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let (mut n, mut last) = (0u64, started);
    while !left.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                n += 1;
                last = Instant::now();
                std::hint::black_box(m.payload());
                let (p, o) = (m.partition(), m.offset());
                left.retain(|&(q, hi)| q != p || o + 1 < hi);
            }
            Some(Err(e)) => eprintln!("restore raw read: {e}"),
            None if started.elapsed() > RESTORE_DEADLINE => bail!("raw read of {topic} stalled"),
            // Idle: offsets that hold no message (transaction markers) count as read.
            None => {
                let positions = consumer.position()?;
                left.retain(|&(p, hi)| {
                    !matches!(
                        positions.find_partition(topic, p).map(|e| e.offset()),
                        Some(Offset::Offset(pos)) if pos >= hi
                    )
                });
            }
        }
    }
    Ok(RawRead {
        records: n,
        from_assignment_s: (last - started).as_secs_f64(),
        from_creation_s: (last - created).as_secs_f64(),
    })
}
