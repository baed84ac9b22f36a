//! The same-I/O pipe: the backfill's Kafka traffic with none of silkroute's code, the ceiling
//! silkroute's drain is measured against (issue 17).
//!
//! Per input event silkroute consumes it, writes a changelog record, reads that record back
//! (the changelog reader of `changelog::Table`) and, per batch, publishes the indicator records
//! the batch changed. The pipe does the same on the wire, from silkroute's own client settings
//! (`consumer_config`, `table_config`, `producer_config`, built from the same `Settings`) and
//! with the same loop shape as `Processor::run`: a biased select over the group consumer and
//! the changelog reader; batches cut at `processing.batch_max_messages` inputs or changelog
//! records, or `processing.batch_max_wait_ms`; every delivery acknowledged before the offsets
//! are stored (at least once) or sent to the batch's transaction (exactly once, one
//! transaction per batch, empty ones included, as silkroute does).
//!
//! What it writes is a replay of what silkroute wrote in its reference drain of the same data
//! set (the first drain), read back from that drain's changelog and indicators topics before
//! the clock starts: the changelog records' keys, values and partitions in the order silkroute
//! received their events (their timestamps), each with a `silkroute.session` header of its
//! own; the indicator records' keys and values (partitioned by librdkafka from the key, as
//! silkroute's are), each sent with the batch that brings the pipe's input count to the number
//! of changelog records silkroute had written when it produced that record. So the pipe writes
//! the same records, bytes and partitions, spread over its batches as silkroute spread them,
//! without parsing an event or deriving anything. [`wire`] counts what both left in their
//! output topics, so the table shows the replay is faithful.
//!
//! Timed as silkroute's drain is (first event consumed → the group's committed offsets at the
//! end), and again until the pipe has read back every changelog record it wrote: the biased
//! select serves the inputs first, so how much of the changelog is read back by the first end
//! varies, and silkroute's share is not visible from outside.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use silkroute::config::{Guarantee, Settings};

use super::{
    client_config, cpu_by_thread, end_offsets, offsets_committed, service_env, thread_cpu, Args,
    BrokerCpu, Topics, Usage, OUTPUT_PARTITIONS,
};

/// silkroute's changelog header (`changelog::SESSION_HEADER`): 8 bytes naming the session.
const SESSION_HEADER: &str = "silkroute.session";

// ------------------------------------------------------------------------------------------
// Output topics: where a drain wrote, and what it left there.

/// One output topic of a drain and its end offsets when the drain was over.
pub struct OutputTopic {
    /// "changelog", "indicators" or "dead_letter".
    pub role: String,
    pub topic: String,
    pub ends: Vec<(i32, i64)>,
    /// Bytes in the broker's log segments of the topic at that moment, if its data directory
    /// is known.
    pub disk_bytes: Option<u64>,
}

/// The end offsets of a drain's output topics and the bytes they take in the broker's log
/// (given its data directory), taken when the drain is over, as its JSON result records them.
pub fn output_ends(
    args: &Args,
    consumer: &BaseConsumer,
    outputs: &[(&str, &str)],
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (role, topic) in outputs {
        let ends = end_offsets(consumer, &[(topic, OUTPUT_PARTITIONS)])?;
        let disk = args
            .broker_data_dir
            .as_deref()
            .map(|dir| log_bytes(dir, topic));
        out.push(json!({
            "role": role,
            "topic": topic,
            "ends": ends.iter().map(|(_, p, hi)| json!([p, hi])).collect::<Vec<_>>(),
            "disk_bytes": disk,
        }));
    }
    Ok(out)
}

/// The output topics recorded in a drain's (or pipe run's) JSON result.
pub fn outputs_of(result: &Value) -> anyhow::Result<Vec<OutputTopic>> {
    let list = result["outputs"]
        .as_array()
        .context("the result names no output topics")?;
    list.iter()
        .map(|o| {
            let ends = o["ends"]
                .as_array()
                .context("ends")?
                .iter()
                .map(|e| {
                    (
                        e[0].as_i64().unwrap_or(0) as i32,
                        e[1].as_i64().unwrap_or(0),
                    )
                })
                .collect();
            Ok(OutputTopic {
                role: o["role"].as_str().context("role")?.to_string(),
                topic: o["topic"].as_str().context("topic")?.to_string(),
                ends,
                disk_bytes: o["disk_bytes"].as_u64(),
            })
        })
        .collect()
}

/// Reads `topic` from the beginning up to `ends` (read_committed, as silkroute's readers), and
/// hands every message to `each`.
fn read_to_ends(
    bootstrap: &str,
    out: &OutputTopic,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    if out.ends.iter().all(|&(_, hi)| hi == 0) {
        return Ok(());
    }
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", format!("bench-tally-{}", super::unique()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.queue.backoff.ms", "5")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for &(p, _) in &out.ends {
        tpl.add_partition_offset(&out.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    // Transaction markers hold offsets no message has: the position, not the last message
    // read, says when a partition is done (as `Table::reached` does).
    let reached = |c: &BaseConsumer| {
        let Ok(pos) = c.position() else { return false };
        out.ends.iter().all(|&(p, end)| {
            end == 0
                || matches!(pos.find_partition(&out.topic, p).map(|e| e.offset()),
                    Some(Offset::Offset(o)) if o >= end)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut n = 0u64;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                // Only what was there at the end: a later run (the latency run) wrote more.
                let end = out.ends.iter().find(|e| e.0 == m.partition()).map(|e| e.1);
                if end.is_some_and(|end| m.offset() < end) {
                    each(&m);
                    n += 1;
                }
                if n % 1000 == 0 && reached(&consumer) {
                    return Ok(());
                }
            }
            Some(Err(e)) => eprintln!("reading {}: {e}", out.topic),
            None => {
                if reached(&consumer) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("reading {} timed out after {n} records", out.topic);
                }
            }
        }
    }
}

fn message_bytes(m: &BorrowedMessage<'_>) -> u64 {
    let headers = m.headers().map_or(0, |hs| {
        hs.iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum()
    });
    (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len) + headers) as u64
}

/// What a drain wrote to Kafka: records and bytes (key + value + header keys and values, as
/// produced, before compression) per output topic, read back from the topics up to the ends
/// the drain recorded; and, given the broker's data directory, the bytes its log segments held
/// then (compressed, with batch headers and transaction markers): what the broker wrote.
pub fn wire(args: &Args, result: &Value) -> anyhow::Result<Value> {
    let mut by_role = serde_json::Map::new();
    let (mut records, mut bytes, mut disk) = (0u64, 0u64, Some(0u64));
    for out in outputs_of(result)? {
        let (mut r, mut b) = (0u64, 0u64);
        read_to_ends(&args.bootstrap, &out, |m| {
            r += 1;
            b += message_bytes(m);
        })?;
        let d = out.disk_bytes;
        disk = disk.zip(d).map(|(a, b)| a + b);
        records += r;
        bytes += b;
        by_role.insert(
            out.role.clone(),
            json!({"topic": out.topic, "records": r, "bytes": b, "disk_bytes": d}),
        );
    }
    Ok(json!({
        "records": records,
        "bytes": bytes,
        "disk_bytes": disk,
        "by_topic": by_role,
    }))
}

/// Bytes in the `.log` segments of every partition of `topic` under the broker's data dir.
fn log_bytes(dir: &std::path::Path, topic: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let prefix = format!("{topic}-");
    let mut total = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for seg in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if seg.path().extension().is_some_and(|x| x == "log") {
                total += seg.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

// ------------------------------------------------------------------------------------------
// The plan: what silkroute wrote, to write again.

struct ChangelogRecord {
    partition: i32,
    key: Vec<u8>,
    value: Vec<u8>,
}

struct IndicatorRecord {
    /// Sent with the batch whose input count reaches this (silkroute's changelog records
    /// written before it produced this record).
    after_inputs: u64,
    key: Vec<u8>,
    value: Vec<u8>,
}

struct Plan {
    changelog: Vec<ChangelogRecord>,
    indicators: Vec<IndicatorRecord>,
    dead_letters: u64,
}

impl Plan {
    fn load(args: &Args, reference: &Value, events: u64) -> anyhow::Result<Plan> {
        let mut changelog: Vec<(i64, ChangelogRecord)> = Vec::new();
        let mut indicators: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut dead_letters = 0;
        for out in outputs_of(reference)? {
            read_to_ends(&args.bootstrap, &out, |m| {
                let ts = m.timestamp().to_millis().unwrap_or(0);
                let (key, value) = (
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                );
                match out.role.as_str() {
                    "changelog" => changelog.push((
                        ts,
                        ChangelogRecord {
                            partition: m.partition(),
                            key,
                            value,
                        },
                    )),
                    "indicators" => indicators.push((ts, key, value)),
                    _ => dead_letters += 1,
                }
            })?;
        }
        // A changelog record's timestamp is when silkroute received its event; an indicator
        // record's, when silkroute produced it (after every receipt of its batch).
        changelog.sort_by_key(|(ts, _)| *ts);
        indicators.sort_by_key(|(ts, _, _)| *ts);
        let mut i = 0usize;
        let indicators = indicators
            .into_iter()
            .map(|(ts, key, value)| {
                while i < changelog.len() && changelog[i].0 <= ts {
                    i += 1;
                }
                IndicatorRecord {
                    after_inputs: (i as u64).clamp(1, events),
                    key,
                    value,
                }
            })
            .collect();
        Ok(Plan {
            changelog: changelog.into_iter().map(|(_, r)| r).collect(),
            indicators,
            dead_letters,
        })
    }
}

// ------------------------------------------------------------------------------------------
// The producer's context: delivery reports counted, as silkroute's `Deliveries` does.

#[derive(Default)]
struct Acks {
    outstanding: AtomicUsize,
    failed: AtomicU64,
    settled: (Mutex<()>, Condvar),
}

impl Acks {
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &self.settled;
        let mut guard = lock.lock().expect("acks lock");
        while self.outstanding.load(Ordering::Acquire) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = cvar.wait_timeout(guard, left).expect("acks lock").0;
        }
        true
    }

    fn reported(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = self.settled.0.lock().expect("acks lock");
            self.settled.1.notify_all();
        }
    }
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.reported();
    }
}

type PipeProducer = ThreadedProducer<Acks>;

fn send(producer: &PipeProducer, mut record: BaseRecord<'_, [u8], [u8]>) -> anyhow::Result<()> {
    loop {
        producer
            .context()
            .outstanding
            .fetch_add(1, Ordering::AcqRel);
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.context().reported();
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => {
                producer.context().reported();
                bail!("pipe producer: {e}");
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------
// The loop.

#[derive(Default)]
struct Batch {
    /// (topic, partition, highest offset) of the inputs taken.
    offsets: Vec<(String, i32, i64)>,
    /// Receipt time of each input, the timestamp of its changelog record.
    received_ms: Vec<i64>,
    cells: usize,
}

/// Counters the drain is timed by, shared with the watcher.
#[derive(Default)]
struct Progress {
    consumed: AtomicU64,
    processed: AtomicU64,
    batches: AtomicU64,
    changelog_sent: AtomicU64,
    cells_read: AtomicU64,
}

struct Pipe {
    producer: PipeProducer,
    exactly_once: bool,
    changelog: String,
    indicators: String,
    plan: Plan,
    session: OwnedHeaders,
    /// Next changelog and indicator record of the plan.
    next_changelog: usize,
    next_indicator: usize,
    progress: Arc<Progress>,
}

impl Pipe {
    fn take(&self, m: &BorrowedMessage<'_>, batch: &mut Batch) {
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        match batch
            .offsets
            .iter_mut()
            .find(|(t, p, _)| *p == partition && t == topic)
        {
            Some(t) => t.2 = t.2.max(offset),
            None => batch.offsets.push((topic.to_string(), partition, offset)),
        }
        std::hint::black_box(m.payload().map_or(0, <[u8]>::len));
        batch.received_ms.push(now_ms());
        self.progress.consumed.fetch_add(1, Ordering::Relaxed);
    }

    fn take_cell(&self, m: &BorrowedMessage<'_>, batch: &mut Batch) {
        batch.cells += 1;
        // silkroute knows its own copies by the offsets its delivery reports gave
        // (`changelog::Written`) and reads a record's headers only when its report has not
        // arrived yet; the pipe, the only writer of its changelog, checks nothing, so that
        // the ceiling is never slower than silkroute's way.
        std::hint::black_box(m.offset());
        self.progress.cells_read.fetch_add(1, Ordering::Relaxed);
    }

    /// One batch's output and commit (blocking, like `Output::commit`).
    fn finish(&mut self, consumer: &StreamConsumer, batch: &Batch) -> anyhow::Result<()> {
        if self.exactly_once {
            self.producer.begin_transaction()?;
        }
        for &ms in &batch.received_ms {
            let Some(r) = self.plan.changelog.get(self.next_changelog) else {
                break;
            };
            self.next_changelog += 1;
            self.progress.changelog_sent.fetch_add(1, Ordering::Relaxed);
            send(
                &self.producer,
                BaseRecord::to(&self.changelog)
                    .headers(self.session.clone())
                    .partition(r.partition)
                    .timestamp(ms)
                    .key(r.key.as_slice())
                    .payload(r.value.as_slice()),
            )?;
        }
        let inputs_so_far =
            self.progress.processed.load(Ordering::Relaxed) + batch.received_ms.len() as u64;
        while let Some(r) = self.plan.indicators.get(self.next_indicator) {
            if r.after_inputs > inputs_so_far {
                break;
            }
            self.next_indicator += 1;
            send(
                &self.producer,
                BaseRecord::to(&self.indicators)
                    .key(r.key.as_slice())
                    .payload(r.value.as_slice()),
            )?;
        }
        if !self.producer.context().wait(Duration::from_secs(120)) {
            bail!("Kafka did not acknowledge the pipe's batch within 120 s");
        }
        let failed = self.producer.context().failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            bail!("Kafka refused {failed} of the pipe's records");
        }
        if self.exactly_once {
            if !batch.offsets.is_empty() {
                let mut tpl = TopicPartitionList::new();
                for (t, p, o) in &batch.offsets {
                    tpl.add_partition_offset(t, *p, Offset::Offset(o + 1))?;
                }
                let group = consumer.group_metadata().context("no group metadata")?;
                self.producer
                    .send_offsets_to_transaction(&tpl, &group, Duration::from_secs(60))?;
            }
            // As silkroute: librdkafka drops the last reports from its count just after
            // serving them, and its commit (a flush) would otherwise poll for 100 ms.
            let settle = Instant::now();
            while self.producer.in_flight_count() > 0 && settle.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_micros(50));
            }
            self.producer.commit_transaction(Duration::from_secs(60))?;
        } else {
            for (t, p, o) in &batch.offsets {
                if let Err(e) = consumer.store_offset(t, *p, *o) {
                    eprintln!("pipe: offset not stored: {e}");
                }
            }
        }
        self.progress.batches.fetch_add(1, Ordering::Relaxed);
        self.progress
            .processed
            .fetch_add(batch.received_ms.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// `Processor::run`'s loop shape: a batch opens with the first message and fills until
    /// `max` inputs or changelog records or `wait`; an idle tick commits an empty batch.
    async fn run(
        &mut self,
        consumer: &StreamConsumer,
        table: &StreamConsumer,
        settings: &Settings,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let wait = settings.processing.batch_max_wait;
        let max = settings.processing.batch_max_messages;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // As silkroute: one stream per consumer, not one per `recv()`.
        let (mut inputs, mut cells) = (consumer.stream(), table.stream());
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let mut batch = Batch::default();
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                m = inputs.next() => match m.expect("Kafka streams never end") {
                    Ok(m) => self.take(&m, &mut batch),
                    Err(e) => { eprintln!("pipe consumer: {e}"); continue }
                },
                m = cells.next() => match m.expect("Kafka streams never end") {
                    Ok(m) => self.take_cell(&m, &mut batch),
                    Err(e) => { eprintln!("pipe changelog reader: {e}"); continue }
                },
                _ = tick.tick() => {}
            }
            if !batch.received_ms.is_empty() || batch.cells > 0 {
                let deadline = tokio::time::sleep(wait);
                tokio::pin!(deadline);
                while batch.received_ms.len() < max && batch.cells < max {
                    tokio::select! {
                        biased;
                        m = inputs.next() => match m.expect("Kafka streams never end") {
                            Ok(m) => self.take(&m, &mut batch),
                            Err(e) => { eprintln!("pipe consumer: {e}"); break }
                        },
                        m = cells.next() => match m.expect("Kafka streams never end") {
                            Ok(m) => self.take_cell(&m, &mut batch),
                            Err(e) => { eprintln!("pipe changelog reader: {e}"); break }
                        },
                        _ = &mut deadline => break,
                    }
                }
            }
            tokio::task::block_in_place(|| self.finish(consumer, &batch))?;
        }
    }
}

async fn create_outputs(settings: &Settings, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(&settings.kafka.bootstrap_servers).create()?;
    // As silkroute creates its output topics: compacted, room for its largest record.
    let max = silkroute::producer_config(settings)
        .get("message.max.bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1_000_000)
        .max(1_048_588)
        .to_string();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            NewTopic::new(t, OUTPUT_PARTITIONS, TopicReplication::Fixed(1))
                .set("max.message.bytes", &max)
                .set("cleanup.policy", "compact")
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics(&new, &opts).await? {
        if let Err((name, code)) = r {
            bail!("cannot create topic {name}: {code}");
        }
    }
    Ok(())
}

/// One pipe run in this (fresh) process: `--pipe-only`.
pub async fn pipe_main(args: &Args) -> anyhow::Result<Value> {
    let prefix = args.prefix.clone().context("--prefix")?;
    let events = args.events.context("--events")?;
    let reference: Value = serde_json::from_str(args.reference.as_deref().context("--reference")?)?;
    let topics = Topics::pipe(prefix, args.run);
    let (env, _) = service_env(args, &topics);
    let settings = Settings::load_from(args.service_config.as_deref(), env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let changelog = settings.changelog_topic();
    let indicators = topics.indicators();
    let exactly_once = settings.processing.guarantee == Guarantee::ExactlyOnce;

    let loaded = Instant::now();
    let plan = Plan::load(args, &reference, events)?;
    let load_s = loaded.elapsed().as_secs_f64();
    let planned = json!({
        "changelog_records": plan.changelog.len(),
        "indicator_records": plan.indicators.len(),
        "reference_dead_letters": plan.dead_letters,
        "load_s": load_s,
    });
    if plan.changelog.len() as u64 != events {
        eprintln!(
            "pipe: the reference changelog holds {} records for {events} events",
            plan.changelog.len()
        );
    }

    let super::Inputs { checker, ends, tpl } = super::Inputs::check(args, &topics, events)?;

    let usage0 = Usage::now();
    let threads0 = thread_cpu(None);
    let broker0 = BrokerCpu::read(args.broker_pid);
    let t_start = Instant::now();
    // What silkroute's start does before consuming: output topics, clients, transactions.
    create_outputs(&settings, &[&changelog, &indicators]).await?;
    let producer: PipeProducer =
        silkroute::producer_config(&settings).create_with_context(Acks::default())?;
    if exactly_once {
        tokio::task::block_in_place(|| producer.init_transactions(Duration::from_secs(30)))?;
    }
    let table: StreamConsumer = silkroute::table_config(&settings).create()?;
    let mut assign = TopicPartitionList::new();
    for p in 0..OUTPUT_PARTITIONS {
        assign.add_partition_offset(&changelog, p, Offset::Beginning)?;
    }
    table.assign(&assign)?;
    let consumer: StreamConsumer = silkroute::consumer_config(&settings).create()?;
    consumer.subscribe(&settings.topics.inputs())?;

    let session: u64 = rand_session();
    let progress = Arc::new(Progress::default());
    let mut pipe = Pipe {
        producer,
        exactly_once,
        changelog: changelog.clone(),
        indicators: indicators.clone(),
        plan,
        session: OwnedHeaders::new_with_capacity(1).insert(Header {
            key: SESSION_HEADER,
            value: Some(&session.to_be_bytes()),
        }),
        next_changelog: 0,
        next_indicator: 0,
        progress: progress.clone(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = {
        let settings = settings.clone();
        tokio::spawn(async move {
            let result = pipe.run(&consumer, &table, &settings, stop_rx).await;
            (result, pipe, consumer)
        })
    };

    // Timed as `drain_main` times silkroute: first event consumed; every event's batch
    // acknowledged and committed (processed); the group's committed offsets at the end.
    let (mut t_first, mut t_processed, mut t_committed) = (None, None, None);
    let mut last_check = Instant::now() - Duration::from_secs(1);
    let mut last_log = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(1200);
    while t_committed.is_none() {
        let now = Instant::now();
        if t_first.is_none() && progress.consumed.load(Ordering::Relaxed) > 0 {
            t_first = Some(now);
        }
        let processed = progress.processed.load(Ordering::Relaxed);
        if t_processed.is_none() && processed >= events {
            t_processed = Some(now);
        }
        if t_processed.is_some() && now - last_check >= Duration::from_millis(20) {
            last_check = now;
            if offsets_committed(&checker, &tpl, &ends)? {
                t_committed = Some(Instant::now());
            }
        }
        if task.is_finished() {
            bail!("the pipe stopped during the drain ({processed} of {events} processed)");
        }
        if now > deadline {
            bail!("pipe timed out: {processed} of {events} processed");
        }
        if now - last_log > Duration::from_secs(10) {
            eprintln!("  … pipe: {processed} / {events} processed");
            last_log = now;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let usage = Usage::since(usage0);
    let (cpu, faults) = (usage.map(|u| u.cpu_s), usage.map(|u| u.minor_faults));
    let threads_cpu = cpu_by_thread(&threads0, &thread_cpu(None), cpu);
    let (broker_cpu, broker_threads_cpu) = broker0.as_ref().map(BrokerCpu::since).unzip();
    let broker_cpu = broker_cpu.flatten();
    let read_back_at_committed = progress.cells_read.load(Ordering::Relaxed);
    let outputs = tokio::task::block_in_place(|| {
        output_ends(
            args,
            &checker,
            &[("changelog", &changelog), ("indicators", &indicators)],
        )
    })?;
    // How much of the changelog is read back when the offsets are committed varies from run to
    // run (the biased select serves the inputs first), and silkroute's share is not visible
    // from outside. So also: until the pipe has read back every changelog record it wrote.
    let read_back_deadline = Instant::now() + Duration::from_secs(60);
    let t_read_back = loop {
        let sent = progress.changelog_sent.load(Ordering::Relaxed);
        if progress.cells_read.load(Ordering::Relaxed) >= sent {
            break Some(Instant::now());
        }
        if Instant::now() > read_back_deadline || task.is_finished() {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let _ = stop_tx.send(true);
    let (result, pipe, consumer) = task.await?;
    result?;
    drop(consumer);
    let first = t_first.context("no event consumed")?;
    let processed_secs = (t_processed.unwrap() - first).as_secs_f64();
    let committed_secs = (t_committed.unwrap() - first).as_secs_f64();
    let read_back_secs = t_read_back.map(|t| (t - first).as_secs_f64());
    Ok(json!({
        "events": events,
        "startup_s": (first - t_start).as_secs_f64(),
        "drain_processed_s": processed_secs,
        "drain_committed_s": committed_secs,
        "drain_processed_events_per_s": events as f64 / processed_secs,
        "drain_committed_events_per_s": events as f64 / committed_secs,
        "drain_read_back_s": read_back_secs,
        "drain_read_back_events_per_s": read_back_secs.map(|s| events as f64 / s),
        "process_cpu_s": cpu,
        "process_cpu_s_by_thread": threads_cpu,
        "process_minor_faults": faults,
        "broker_cpu_s": broker_cpu,
        "broker_cpu_s_by_thread": broker_threads_cpu,
        "batches": progress.batches.load(Ordering::Relaxed),
        "changelog_records_read_back_at_committed": read_back_at_committed,
        "changelog_records_read_back": progress.cells_read.load(Ordering::Relaxed),
        "changelog_records_sent": pipe.next_changelog,
        "indicator_records_sent": pipe.next_indicator,
        "indicator_records_planned": pipe.plan.indicators.len(),
        "plan": planned,
        "outputs": outputs,
    }))
}

/// A session number no other run has (as silkroute's `new_session`).
fn rand_session() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}
