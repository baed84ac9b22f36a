//! Backfill benchmark against a real Kafka broker (issues 7 and 17). Prints ratios; asserts
//! nothing about time.
//!
//! ```text
//! scripts/bench.sh            # starts a broker on 127.0.0.1:19092 if none, runs, stops it
//! scripts/bench.sh --quick    # ~29k and ~57k events, one drain each: well under a minute
//! cargo run --release --example backfill_bench -- --bootstrap 127.0.0.1:19092 [--quick]
//! ```
//!
//! For each of two data sets (A, and B twice A's size), in this order:
//!
//! 1. Load: a realistic customs backfill — 31 regions × N months × import/export × (region
//!    total + 97 HS chapters (`commodity`, "01".."97") + 200 partners (`partner_country`,
//!    "P001".."P200")), plus one USD rate a month — in chronological order into fresh topics:
//!    trade (6 partitions, keyed by region), fx (1 partition, keyed by currency), and an empty
//!    freight topic (6 partitions). A = 24 months (2022-10 … 2024-09, 443,448 events),
//!    B = 48 months (2020-10 … 2024-09, 886,896 events): same members, twice the months, so
//!    twice the cells. `--quick`: 2 regions (28,632 and 57,264 events). The data comes from
//!    the deterministic generator in `benches/support`, shared with the engine benchmark.
//! 2. Raw reads of the same trade topic (all events but the 24 or 48 rates), for orientation
//!    (they do a fraction of silkroute's I/O; the ceiling is step 4), best of three runs each:
//!    a minimal rdkafka `BaseConsumer` (assign, poll, touch the payload, nothing
//!    else; librdkafka defaults but for the queue backoff, see `raw_consumer_config`), a
//!    `StreamConsumer` doing the same
//!    through tokio (silkroute's consumer type), and kcat
//!    (`kcat -C -e -q -o beginning -f '%o\n' | wc -l`, timed with process start).
//! 3. Before data set A's measured drains, up to `--warm-up` unmeasured pairs of a drain and a
//!    pipe (default 8; drains alone with `--no-pipe`), until the broker's JIT compiler took
//!    under 0.3 CPU s in a pair: after a start it went on compiling for six pairs at least
//!    once and more than eight exactly once, up to 4.5 CPU s in a pair, on the cores both
//!    sides share with it, and moved the ratio by more than the gap to its target. Each
//!    drain's and pipe's JSON gives the broker's CPU by kind of thread (`requests`,
//!    `JIT compiler`, `GC`, `other`), and so does the table.
//!
//!    silkroute's drain, in a fresh process (this example re-executed with `--drain-only`),
//!    `--repeat` times (default 3; the table shows medians and ranges):
//!    `silkroute::service::start` with a fresh group and indicators topic (created by the
//!    service: 6 partitions, replication 1); events/s from the first event consumed until every
//!    event's outcome is acknowledged (`acked`) and until the group's committed offsets reach
//!    the end offsets (`drain`, the headline; the service auto-commits stored offsets every
//!    second, so this adds up to 1 s). After each drain, what it wrote up to then is counted from
//!    its output topics: records and bytes (key + value + headers) and, with `--broker-data-dir`
//!    (bench.sh passes it), the bytes of the broker's log segments (compressed, as written).
//! 4. The ceiling: the same-I/O pipe (`backfill_bench/pipe.rs`), `--repeat` times, each in a
//!    fresh process (`--pipe-only`) with a fresh group, changelog and indicators topic, each
//!    right after a drain (drain, pipe, drain, pipe, ...: both meet the broker's JVM as warm;
//!    the restores of step 3's first drain follow the last pair). A minimal
//!    rdkafka program with silkroute's client settings (`consumer_config`, `table_config`,
//!    `producer_config` from the same `Settings`) and `Processor::run`'s loop shape, that per
//!    input event does what silkroute does on the wire and nothing else: consumes it, writes a
//!    changelog record, reads the changelog back, and with each batch produces the indicator
//!    records silkroute produced with the batch that reached the same input count; each batch
//!    acknowledged, then its offsets stored (at least once) or committed in the batch's
//!    transaction (exactly once, batches cut as silkroute cuts them). What it writes is the
//!    first drain's output replayed (same keys, values, partitions, headers), so it parses and
//!    derives nothing. Timed like the drain; `drain/pipe` is what silkroute's own code costs.
//!    How much of the changelog either has read back when the offsets are committed varies
//!    (silkroute's share is not visible from outside), so the pipe is also timed until it has
//!    read back all it wrote (`pipe+rb`): the fair ceiling lies between the two.
//!    The table shows both sides' records and bytes per input event (they should match) and the
//!    CPU seconds of the process and of the broker (`--broker-pid`). `--no-pipe` skips it.
//! 5. Peak RSS (VmHWM) of that process at the end of the drain, state cells, indicator records
//!    published; peak RSS growth per cell between A and B. After A's last drain, the same
//!    service (holding A's state) gets freight events at a steady rate (default 5,000/s for
//!    20 s), each for a distinct port (in a freight topic of that drain's own, so that the
//!    pipe's runs read the same inputs as the drains); a consumer on the indicators topic times each event from
//!    just before `send` to its `freight/{port}/china_europe/2024-09` record being read. The
//!    record's timestamp (set when the service produced it, ms) splits that time in two: sent →
//!    the service's produce call, and produce call → readable. `--latency-split` splits the
//!    first part again, at the broker's append time of the event and at the service's receipt
//!    (the timestamp of the event's changelog copy); the reader then reads those topics too.
//!    Exactly once, the floor under that latency follows: the bare transaction cycle of this
//!    broker with silkroute's producer settings (`--txn-cycle` runs only that; see
//!    `backfill_bench/txn_cycle.rs`).
//!
//! Run-to-run variation: the fx topic is consumed alongside the trade topic, and how many trade
//! events librdkafka has queued before the first USD rate arrives decides how many trade records
//! are published twice (once without, once with `ytd_usd`). Each drain reports that number
//! (`trade_events_consumed_before_first_fx`) with its records published.
//!
//! The mode measured is `SILKROUTE__PROCESSING__GUARANTEE` (default at_least_once); run it
//! again with `exactly_once` for that mode's target (drain ≥ 80 % of the pipe at least once,
//! ≥ 70 % exactly once; reported, never asserted). Any `SILKROUTE__*` variable in the environment is passed to the service under test
//! (for example `SILKROUTE__PROCESSING__BATCH_MAX_WAIT_MS=5`), and `--service-config FILE` is
//! given to it as its config file (e.g. `[kafka.librdkafka]` options); both are recorded in the
//! JSON. `BENCH_DRAIN_WRAPPER="perf record -g -o perf.data"` (or heaptrack, valgrind) runs each
//! drain process under a profiler; `BENCH_PIPE_WRAPPER` does the same for the pipe's runs.
//!
//! The table goes to stdout, the JSON to `target/bench/backfill.json` (`--quick`:
//! `backfill-quick.json`), and one line per run is appended to
//! `target/bench/backfill-history.jsonl`, for comparison across commits.

// The blocking boundary (clippy.toml, src/blocking.rs) is the service's rule; tests and
// benchmarks drive it from outside, on threads of their own.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer,
};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::{json, Value};

use silkroute::config::Settings;
use silkroute::engine::record::RecordKind;
use silkroute::period::Period;

// The service's allocator (src/main.rs): the drain runs the service inside this process, and
// glibc malloc showed as a tenth of its profile.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The customs backfill generator, shared with `benches/engine.rs`.
#[path = "../benches/support/mod.rs"]
mod support;

/// The same-I/O pipe: the ceiling.
#[path = "backfill_bench/pipe.rs"]
mod pipe;
/// A new instance restoring a drain's changelog.
#[path = "backfill_bench/restore.rs"]
mod restore;
/// The bare transaction cycle: the floor under the exactly-once latency.
#[path = "backfill_bench/txn_cycle.rs"]
mod txn_cycle;

// Targets of issue 17 (drain against the same-I/O pipe, growth per cell) and issue 7 (the rest).
const TARGET_PIPE_RATIO: f64 = 0.80;
const TARGET_PIPE_RATIO_EXACTLY_ONCE: f64 = 0.70;
const TARGET_BYTES_PER_CELL: f64 = 150.0;
const TARGET_PEAK_RSS_MIB: f64 = 256.0;
const TARGET_P99_MS: f64 = 50.0;
const TARGET_RESTORE_RATIO: f64 = 0.60;
const TARGET_READY_S: f64 = 3.0;

const TRADE_PARTITIONS: i32 = 6;
/// Runs of each raw reference (BaseConsumer, StreamConsumer, kcat); the best counts.
const RAW_RUNS: u32 = 3;
/// Exit code of a drain process whose service stopped before consuming anything.
const EXIT_STARTUP_FAILED: i32 = 3;
/// Start-up failures of the service retried per drain (each is recorded in the JSON).
const STARTUP_RETRIES: u32 = 2;
const FREIGHT_PARTITIONS: i32 = 6;
/// Partitions of the output topics (changelog, indicators, dead letters) of every drain.
const OUTPUT_PARTITIONS: i32 = 6;
/// Run numbers of the broker's warm-up pairs, clear of the measured runs' (0..) and their
/// retries' (100, 200, ...).
const WARM_UP_RUNS: u32 = 1000;
/// The broker counts as warm after a pair in which its JIT compiler took less than this.
const WARM_JIT_CPU_S: f64 = 0.3;

#[derive(Parser, Debug, Clone)]
#[command(about = "silkroute backfill benchmark against a real Kafka broker")]
struct Args {
    /// Kafka bootstrap servers of the broker to benchmark against.
    #[arg(long, env = "BENCH_BOOTSTRAP", default_value = "127.0.0.1:19092")]
    bootstrap: String,
    /// Small smoke run: 2 regions instead of 31 (~30k and ~57k events), 5 s of latency.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON report (default target/bench/backfill.json, or
    /// backfill-quick.json with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds of the paced latency run after data set A's drain (0 = skip).
    #[arg(long)]
    latency_secs: Option<u64>,
    /// Events per second of the paced latency run.
    #[arg(long, default_value_t = 5000)]
    latency_rate: u64,
    /// Only data set A (no memory growth per cell).
    #[arg(long)]
    only_a: bool,
    /// Split the latency run's trip to the service further, at the broker and at the
    /// service's receipt: input topics get broker append timestamps and the latency reader
    /// also reads the freight events and their changelog copies (more load while measuring).
    #[arg(long)]
    latency_split: bool,
    /// Keep the benchmark's topics on the broker afterwards.
    #[arg(long)]
    keep_topics: bool,
    /// A TOML file passed to the service under test as its `--config` (e.g. to try
    /// `[kafka.librdkafka]` options); recorded in the JSON.
    #[arg(long)]
    service_config: Option<PathBuf>,
    /// PID of the broker, to report its CPU time during each drain.
    #[arg(long, env = "BENCH_BROKER_PID")]
    broker_pid: Option<u32>,
    /// The broker's data directory (its log.dirs), to report the bytes each drain's output
    /// topics take in the broker's log segments (compressed, as written).
    #[arg(long, env = "BENCH_BROKER_DATA_DIR")]
    broker_data_dir: Option<PathBuf>,
    /// Skip the same-I/O pipe (no drain/pipe ratio).
    #[arg(long)]
    no_pipe: bool,
    /// Only the bare transaction cycle (silkroute's producer settings, none of its code):
    /// 200 transactions writing one record to each of 12 partitions, then 200 writing 2,
    /// on topics of their own; prints the percentiles of each step as JSON.
    #[arg(long)]
    txn_cycle: bool,

    // Internal: one drain in a fresh process.
    #[arg(long, hide = true)]
    drain_only: bool,
    // Internal: one run of the same-I/O pipe in a fresh process, replaying the output of the
    // silkroute drain described by `reference` (its JSON result's `outputs`).
    #[arg(long, hide = true)]
    pipe_only: bool,
    // Internal: a new instance restoring the changelog of the drain `--prefix`/`--run`.
    #[arg(long, hide = true)]
    restore_only: bool,
    #[arg(long, hide = true)]
    reference: Option<String>,
    #[arg(long, hide = true)]
    prefix: Option<String>,
    #[arg(long, hide = true)]
    events: Option<u64>,
    #[arg(long, hide = true, default_value_t = 0)]
    run: u32,
    /// Drains per data set, each in a fresh process with a fresh group and output topics
    /// (default 3, or 1 with --quick); the table shows medians.
    #[arg(long)]
    repeat: Option<u32>,
    /// Most unmeasured pairs of a drain and a pipe of data set A before the measured ones, to
    /// warm the broker's JVM: they stop at the first pair in which the broker's JIT compiler
    /// took under 0.3 CPU s (with --broker-pid; without it, all of them run). Default 8, or 0
    /// with --quick.
    #[arg(long)]
    warm_up: Option<u32>,
}

/// One data set: which regions and months.
#[derive(Clone, Debug)]
struct DataSet {
    label: &'static str,
    regions: usize,
    first: (u32, u32),
    months: u32,
}

impl DataSet {
    fn describe(&self) -> String {
        let first = Period::new(self.first.0, self.first.1);
        let last = first.plus(self.months - 1);
        format!(
            "{} regions x {} months ({first}..{last}) x 2 flows x (1 + {} + {})",
            self.regions,
            self.months,
            support::COMMODITIES,
            support::PARTNERS
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    silkroute::telemetry::init(silkroute::config::LogFormat::Text);
    if args.drain_only {
        let result = drain_main(&args).await?;
        println!("{result}");
        return Ok(());
    }
    if args.pipe_only {
        let result = pipe::pipe_main(&args).await?;
        println!("{result}");
        return Ok(());
    }
    if args.txn_cycle {
        let result = txn_cycle::measure(&args.bootstrap, 12).await?;
        println!("{result:#}");
        return Ok(());
    }
    if args.restore_only {
        let result = restore::restore_main(&args).await?;
        println!("{result}");
        return Ok(());
    }
    orchestrate(args).await
}

// ------------------------------------------------------------------------------------------
// Data: the deterministic customs backfill of benches/support (shared with the engine
// benchmark), its months configurable.

/// Generated messages: trade keyed by region, fx keyed by currency, both in log order.
struct Messages {
    trade: Vec<(&'static str, Vec<u8>)>,
    fx: Vec<Vec<u8>>,
}

impl Messages {
    fn len(&self) -> u64 {
        (self.trade.len() + self.fx.len()) as u64
    }
}

fn generate(set: &DataSet) -> Messages {
    let regions: Vec<usize> = (0..set.regions).collect();
    let mut out = Messages {
        trade: Vec::with_capacity(set.months as usize * set.regions * support::PER_REGION_MONTH),
        fx: Vec::with_capacity(set.months as usize),
    };
    support::generate(
        &regions,
        Period::new(set.first.0, set.first.1),
        set.months,
        support::USD_DRIFT_KAFKA,
        |message| match message {
            support::Message::Fx(m) => out.fx.push(m.to_vec()),
            support::Message::Trade(region, m) => out.trade.push((region, m.to_vec())),
        },
    );
    out
}

// ------------------------------------------------------------------------------------------
// Kafka helpers.

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// A data set's input topics, and the output topics and group of one drain (`run`: each drain
/// of the same inputs starts from nothing).
struct Topics {
    prefix: String,
    run: u32,
    /// "" for silkroute's drains, "pipe-" for the same-I/O pipe's runs.
    role: &'static str,
    trade: String,
    fx: String,
    freight: String,
}

impl Topics {
    fn new(prefix: String, run: u32) -> Topics {
        Topics {
            trade: format!("{prefix}-trade"),
            fx: format!("{prefix}-fx"),
            freight: format!("{prefix}-freight"),
            prefix,
            run,
            role: "",
        }
    }
    /// The pipe's output topics and group: its own, fresh for each run.
    fn pipe(prefix: String, run: u32) -> Topics {
        Topics {
            role: "pipe-",
            ..Topics::new(prefix, run)
        }
    }
    /// The freight topic of the drain that ends with the latency run, empty like the shared
    /// one: the latency run's events stay out of the inputs the later drains and the pipe read.
    fn latency_freight(prefix: &str) -> String {
        format!("{prefix}-freight-latency")
    }
    fn indicators(&self) -> String {
        format!("{}-{}indicators-{}", self.prefix, self.role, self.run)
    }
    fn dead_letter(&self) -> String {
        format!("{}-{}dlq-{}", self.prefix, self.role, self.run)
    }
    /// The input topics and their partition counts.
    fn inputs(&self) -> [(&str, i32); 3] {
        [
            (self.trade.as_str(), TRADE_PARTITIONS),
            (self.fx.as_str(), 1),
            (self.freight.as_str(), FREIGHT_PARTITIONS),
        ]
    }

    /// The group; the changelog is `<group>-cells-changelog` (`Settings::changelog_topic`).
    fn group(&self) -> String {
        format!("{}-{}group-{}", self.prefix, self.role, self.run)
    }
}

async fn create_topics(
    bootstrap: &str,
    topics: &[(&str, i32)],
    append_time: bool,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| {
            let topic = NewTopic::new(t, *p, TopicReplication::Fixed(1));
            // With --latency-split the broker stamps each record with its append time: the
            // latency run reads the freight events' timestamps to split the trip there.
            if append_time {
                topic.set("message.timestamp.type", "LogAppendTime")
            } else {
                topic
            }
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

/// Deletes every topic whose name starts with `prefix`.
async fn delete_topics(bootstrap: &str, prefix: &str) {
    let Ok(admin) = client_config(bootstrap).create::<AdminClient<DefaultClientContext>>() else {
        return;
    };
    let Ok(probe) = client_config(bootstrap).create::<BaseConsumer>() else {
        return;
    };
    let Ok(md) =
        tokio::task::block_in_place(|| probe.fetch_metadata(None, Duration::from_secs(10)))
    else {
        return;
    };
    let names: Vec<&str> = md
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|n| n.starts_with(prefix))
        .collect();
    if names.is_empty() {
        return;
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let _ = admin.delete_topics(&names, &opts).await;
}

/// Loads messages with a throughput-minded producer (lz4, 20 ms linger, idempotent so that
/// each partition keeps log order). Returns seconds taken.
async fn produce_all(bootstrap: &str, topics: &Topics, msgs: &Messages) -> anyhow::Result<f64> {
    let producer: FutureProducer = client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let t0 = Instant::now();
    let fx = msgs.fx.iter().map(|v| {
        producer.send(
            FutureRecord::to(&topics.fx)
                .key("USD")
                .payload(v.as_slice()),
            Duration::from_secs(60),
        )
    });
    for r in futures::future::join_all(fx).await {
        r.map_err(|(e, _)| e).context("producing fx")?;
    }
    for chunk in msgs.trade.chunks(50_000) {
        let futures = chunk.iter().map(|(k, v)| {
            producer.send(
                FutureRecord::to(&topics.trade)
                    .key(*k)
                    .payload(v.as_slice()),
                Duration::from_secs(60),
            )
        });
        for r in futures::future::join_all(futures).await {
            r.map_err(|(e, _)| e).context("producing trade")?;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(t0.elapsed().as_secs_f64())
}

/// The input topics of a drain (or of the pipe replaying one) and what it must reach: a
/// consumer of the drain's group to read its committed offsets, the end offsets (which must
/// hold `events` messages), and those partitions as a list to ask about.
struct Inputs {
    checker: BaseConsumer,
    ends: Vec<(String, i32, i64)>,
    tpl: TopicPartitionList,
}

impl Inputs {
    fn check(args: &Args, topics: &Topics, events: u64) -> anyhow::Result<Inputs> {
        let checker: BaseConsumer = client_config(&args.bootstrap)
            .set("group.id", topics.group())
            .set("enable.auto.commit", "false")
            .create()?;
        let ends = tokio::task::block_in_place(|| end_offsets(&checker, &topics.inputs()))?;
        let ends_total: i64 = ends.iter().map(|e| e.2).sum();
        if ends_total as u64 != events {
            bail!("the input topics hold {ends_total} messages, expected {events}");
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, _) in &ends {
            tpl.add_partition(t, *p);
        }
        Ok(Inputs { checker, ends, tpl })
    }
}

/// (topic, partition, high watermark) of every partition of `topics`.
fn end_offsets(
    consumer: &BaseConsumer,
    topics: &[(&str, i32)],
) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let mut out = Vec::new();
    for (t, n) in topics {
        for p in 0..*n {
            let (_, hi) = consumer.fetch_watermarks(t, p, Duration::from_secs(30))?;
            out.push((t.to_string(), p, hi));
        }
    }
    Ok(out)
}

/// Whether the group's committed offsets (asked through `checker`, a consumer of the group)
/// reach `ends` on every non-empty partition: the end of a drain, silkroute's or the pipe's.
fn offsets_committed(
    checker: &BaseConsumer,
    tpl: &TopicPartitionList,
    ends: &[(String, i32, i64)],
) -> anyhow::Result<bool> {
    let committed = tokio::task::block_in_place(|| {
        checker.committed_offsets(tpl.clone(), Duration::from_secs(5))
    })?;
    Ok(ends.iter().all(|(t, p, hi)| {
        *hi == 0
            || matches!(
                committed.find_partition(t, *p).map(|e| e.offset()),
                Some(Offset::Offset(o)) if o >= *hi
            )
    }))
}

fn assign_from_beginning(topics: &[(&str, i32)]) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (t, n) in topics {
        for p in 0..*n {
            tpl.add_partition_offset(t, p, Offset::Beginning)?;
        }
    }
    Ok(tpl)
}

fn raw_consumer_config(bootstrap: &str) -> ClientConfig {
    // librdkafka's defaults, but for one: once its read-ahead reaches its bound (64 MiB by
    // default, about data set A's size) it waits fetch.queue.backoff.ms (1 s) before the next
    // fetch. Whether a read hit that bound varied from run to run, so the ceiling measured
    // either ~2M/s or ~0.37M/s (1.2 s for A), which made the ratios swing fivefold. silkroute's
    // consumer sets the same 5 ms.
    let mut c = client_config(bootstrap);
    c.set("group.id", format!("bench-raw-{}", unique()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.queue.backoff.ms", "5");
    c
}

/// A timed read of every message: (messages, seconds from the first message to the last).
struct Read {
    messages: u64,
    secs: f64,
}

impl Read {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.secs.max(1e-9)
    }
}

/// Repeated reads of the same topic, and the best rate among them.
struct Reads {
    runs: Vec<Read>,
    best: f64,
}

impl Reads {
    fn rate(&self) -> f64 {
        self.best
    }
    fn json(&self) -> Value {
        json!({
            "events_per_s": self.best,
            "messages": self.runs.first().map(|r| r.messages),
            "runs_secs": self.runs.iter().map(|r| r.secs).collect::<Vec<_>>(),
            "runs_events_per_s": self.runs.iter().map(Read::rate).collect::<Vec<_>>(),
        })
    }
}

/// The minimal consumer: BaseConsumer, assign from the beginning, poll, touch the payload.
fn raw_base(bootstrap: &str, topics: &[(&str, i32)], total: u64) -> anyhow::Result<Read> {
    let consumer: BaseConsumer = raw_consumer_config(bootstrap).create()?;
    consumer.assign(&assign_from_beginning(topics)?)?;
    let (mut n, mut bytes, mut first, mut last) = (0u64, 0usize, None, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < total {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                bytes += m.payload().map_or(0, <[u8]>::len);
                n += 1;
                last = Instant::now();
                first.get_or_insert(last);
            }
            Some(Err(e)) => eprintln!("raw consumer: {e}"),
            None if Instant::now() > deadline => bail!("raw consumer read {n} of {total}"),
            None => {}
        }
    }
    std::hint::black_box(bytes);
    Ok(Read {
        messages: n,
        secs: (last - first.unwrap_or(last)).as_secs_f64(),
    })
}

/// The same through tokio's StreamConsumer (silkroute's consumer type).
async fn raw_stream(bootstrap: &str, topics: &[(&str, i32)], total: u64) -> anyhow::Result<Read> {
    let consumer: StreamConsumer = raw_consumer_config(bootstrap).create()?;
    consumer.assign(&assign_from_beginning(topics)?)?;
    let (mut n, mut bytes, mut first, mut last) = (0u64, 0usize, None, Instant::now());
    while n < total {
        match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await {
            Ok(Ok(m)) => {
                bytes += m.payload().map_or(0, <[u8]>::len);
                n += 1;
                last = Instant::now();
                first.get_or_insert(last);
            }
            Ok(Err(e)) => eprintln!("stream consumer: {e}"),
            Err(_) => bail!("stream consumer read {n} of {total}"),
        }
    }
    std::hint::black_box(bytes);
    Ok(Read {
        messages: n,
        secs: (last - first.unwrap_or(last)).as_secs_f64(),
    })
}

/// kcat reading one topic to its end, timed including process start.
fn kcat(bootstrap: &str, topic: &str) -> anyhow::Result<Read> {
    let t0 = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "kcat -C -b '{bootstrap}' -t '{topic}' -e -q -o beginning -f '%o\\n' | wc -l"
        ))
        .stderr(Stdio::inherit())
        .output()
        .context("running kcat")?;
    let secs = t0.elapsed().as_secs_f64();
    let messages: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("kcat's line count")?;
    Ok(Read { messages, secs })
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{}-{}", nanos, std::process::id())
}

// ------------------------------------------------------------------------------------------
// Process measurements.

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) of another process (the broker).
fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's CPU seconds and minor page faults, from one read of its stat line. A minor
/// fault is a page the kernel mapped and zeroed on first touch; memory that an allocator gives
/// back to the system and takes again faults once per page each time (issue 17: librdkafka's
/// messages, allocated by glibc's malloc).
#[derive(Clone, Copy)]
struct Usage {
    cpu_s: f64,
    minor_faults: f64,
}

impl Usage {
    fn now() -> Option<Usage> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(Usage {
            cpu_s: stat_cpu_secs(&stat)?,
            minor_faults: stat_field(&stat, 10)?,
        })
    }

    /// What the process used between `before` and now; `None` if either reading failed.
    fn since(before: Option<Usage>) -> Option<Usage> {
        let (before, after) = before.zip(Usage::now())?;
        Some(Usage {
            cpu_s: after.cpu_s - before.cpu_s,
            minor_faults: after.minor_faults - before.minor_faults,
        })
    }
}

/// The CPU seconds in a `/proc/.../stat` line (a process's or a thread's).
fn stat_cpu_secs(stat: &str) -> Option<f64> {
    let ticks: f64 = stat_field(stat, 14)? + stat_field(stat, 15)?; // utime and stime
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Field `n` (numbered from 1, as in proc(5)) of a `/proc/.../stat` line, from 3 on: those
/// after the ")" that closes the command name, which may hold spaces.
fn stat_field(stat: &str, n: usize) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

/// CPU seconds of each live thread of a process (`None`: this one), by thread id, with its
/// name.
fn thread_cpu(pid: Option<u32>) -> BTreeMap<u32, (String, f64)> {
    let mut threads = BTreeMap::new();
    let tasks = pid.map_or("/proc/self/task".to_string(), |p| format!("/proc/{p}/task"));
    let Ok(dir) = std::fs::read_dir(tasks) else {
        return threads;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let name = stat
            .find('(')
            .zip(stat.rfind(')'))
            .map(|(open, close)| stat[open + 1..close].to_string());
        if let (Some(name), Some(cpu)) = (name, stat_cpu_secs(&stat)) {
            threads.insert(tid, (name, cpu));
        }
    }
    threads
}

/// Where a process's CPU went between two [`thread_cpu`] readings, summed by thread name;
/// `process_s` is the whole process's, and what no live thread accounts for is put under
/// "(threads that ended)" (a batch's outbox thread, an exactly-once commit's thread).
fn cpu_by_thread(
    before: &BTreeMap<u32, (String, f64)>,
    after: &BTreeMap<u32, (String, f64)>,
    process_s: Option<f64>,
) -> Value {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for (tid, (name, cpu)) in after {
        let earlier = before.get(tid).map_or(0.0, |(_, c)| *c);
        *by_name.entry(name.clone()).or_default() += cpu - earlier;
    }
    if let Some(total) = process_s {
        let live: f64 = by_name.values().sum();
        by_name.insert("(threads that ended)".to_string(), (total - live).max(0.0));
    }
    json!(by_name)
}

/// The broker's threads by kind, the JIT compiler's apart: it kept compiling for several
/// drains after a start (see [`warm_up_broker`]), on the two cores the drain and the pipe
/// share with it.
fn broker_thread_kind(name: &str) -> &'static str {
    if name.starts_with("C1 Compiler") || name.starts_with("C2 Compiler") {
        "JIT compiler"
    } else if name.starts_with("GC Thread") || name.starts_with("G1 ") || name == "VM Thread" {
        "GC"
    } else if name.starts_with("data-plane-kafk") {
        // Linux keeps 15 characters of a thread's name: request handlers and network threads.
        "requests"
    } else {
        "other"
    }
}

/// The broker's CPU (`--broker-pid`), whole and by thread, as it was before a drain or a pipe
/// run.
struct BrokerCpu {
    pid: u32,
    total: Option<f64>,
    threads: BTreeMap<u32, (String, f64)>,
}

impl BrokerCpu {
    fn read(pid: Option<u32>) -> Option<BrokerCpu> {
        pid.map(|pid| BrokerCpu {
            pid,
            total: cpu_secs(pid),
            threads: thread_cpu(Some(pid)),
        })
    }

    /// The broker's CPU seconds since `read`, and the same by [`broker_thread_kind`].
    fn since(&self) -> (Option<f64>, Value) {
        let total = self.total.zip(cpu_secs(self.pid)).map(|(a, b)| b - a);
        let by_kind = |threads: &BTreeMap<u32, (String, f64)>| {
            threads
                .iter()
                .map(|(&tid, (name, cpu))| (tid, (broker_thread_kind(name).to_string(), *cpu)))
                .collect::<BTreeMap<_, _>>()
        };
        let after = thread_cpu(Some(self.pid));
        let by_thread = cpu_by_thread(&by_kind(&self.threads), &by_kind(&after), total);
        (total, by_thread)
    }
}

// ------------------------------------------------------------------------------------------
// The drain, in a fresh process.

/// Settings as environment pairs: the service's, and the caller's own `SILKROUTE__*` overrides.
type EnvPairs = Vec<(String, String)>;

fn service_env(args: &Args, topics: &Topics) -> (EnvPairs, EnvPairs) {
    let overrides: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SILKROUTE__"))
        .collect();
    let mut env = overrides.clone();
    env.push((
        "SILKROUTE__PROCESSING__GUARANTEE".into(),
        guarantee_under_test(),
    ));
    let fixed = [
        (
            "SILKROUTE__KAFKA__BOOTSTRAP_SERVERS",
            args.bootstrap.clone(),
        ),
        ("SILKROUTE__KAFKA__GROUP_ID", topics.group()),
        ("SILKROUTE__TOPICS__TRADE", topics.trade.clone()),
        ("SILKROUTE__TOPICS__FREIGHT", topics.freight.clone()),
        ("SILKROUTE__TOPICS__FX", topics.fx.clone()),
        ("SILKROUTE__TOPICS__INDICATORS", topics.indicators()),
        ("SILKROUTE__TOPICS__DEAD_LETTER", topics.dead_letter()),
        ("SILKROUTE__TOPICS__CREATE", "true".into()),
        ("SILKROUTE__TOPICS__PARTITIONS", "6".into()),
        ("SILKROUTE__TOPICS__REPLICATION_FACTOR", "1".into()),
        ("SILKROUTE__HTTP__LISTEN", "127.0.0.1:0".into()),
        ("SILKROUTE__SHUTDOWN__TIMEOUT_MS", "30000".into()),
    ];
    env.extend(fixed.into_iter().map(|(k, v)| (k.to_string(), v)));
    (env, overrides)
}

/// The processing mode measured: SILKROUTE__PROCESSING__GUARANTEE if the caller set it, else
/// at_least_once (drain ≥ 80 % of the pipe; run again with exactly_once for the 70 % target).
fn guarantee_under_test() -> String {
    std::env::var("SILKROUTE__PROCESSING__GUARANTEE").unwrap_or_else(|_| "at_least_once".into())
}

async fn drain_main(args: &Args) -> anyhow::Result<Value> {
    let prefix = args.prefix.clone().context("--prefix")?;
    let events = args.events.context("--events")?;
    let mut topics = Topics::new(prefix, args.run);
    if args.latency_secs.unwrap_or(0) > 0 {
        topics.freight = Topics::latency_freight(&topics.prefix);
    }
    let (env, _) = service_env(args, &topics);
    let settings = Settings::load_from(args.service_config.as_deref(), env)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let changelog = settings.changelog_topic();
    let batch = json!({
        "batch_max_messages": settings.processing.batch_max_messages,
        "batch_max_wait_ms": settings.processing.batch_max_wait.as_millis() as u64,
    });

    let inputs = topics.inputs();
    let Inputs { checker, ends, tpl } = Inputs::check(args, &topics, events)?;

    let rss_before = proc_status_kib("VmRSS:").unwrap_or(0);
    let usage0 = Usage::now();
    let threads0 = thread_cpu(None);
    let broker0 = BrokerCpu::read(args.broker_pid);
    let t_start = Instant::now();
    let handle = silkroute::service::start(settings).await?;
    let m = handle.metrics.clone();
    let consumed = || -> u64 {
        inputs
            .iter()
            .map(|(t, _)| m.events_consumed.with_label_values(&[t]).get())
            .sum()
    };
    let (mut t_first, mut t_processed, mut t_committed, mut t_ready) = (None, None, None, None);
    let mut last_check = Instant::now() - Duration::from_secs(1);
    let mut last_log = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(1200);
    let published_now = || -> u64 {
        RecordKind::ALL
            .iter()
            .map(|k| {
                m.indicators_published
                    .with_label_values(&[k.as_str()])
                    .get()
            })
            .sum()
    };
    // Records are counted as Kafka acknowledges a batch's publication, so a jump between two
    // samples (1 ms apart) is about one batch's output.
    let (mut last_published, mut max_published_step) = (0u64, 0u64);
    let (mut last_rss_sample, mut max_rss, mut processed_at_max_rss) = (Instant::now(), 0u64, 0u64);
    // Trade events consumed before the first USD rate: records derived before it are published
    // again with `ytd_usd` once it arrives, so this is the main source of run-to-run variation.
    let mut trade_before_fx = None;
    while t_committed.is_none() || t_ready.is_none() {
        let now = Instant::now();
        if trade_before_fx.is_none() && m.events_consumed.with_label_values(&[&topics.fx]).get() > 0
        {
            trade_before_fx = Some(m.events_consumed.with_label_values(&[&topics.trade]).get());
        }
        let published = published_now();
        max_published_step = max_published_step.max(published - last_published);
        last_published = published;
        if now - last_rss_sample >= Duration::from_millis(50) {
            last_rss_sample = now;
            let rss = proc_status_kib("VmRSS:").unwrap_or(0) * 1024;
            if rss > max_rss {
                max_rss = rss;
                processed_at_max_rss = m.processing_duration.get_sample_count();
            }
        }
        if t_first.is_none() && consumed() > 0 {
            t_first = Some(now);
        }
        if t_ready.is_none() && handle.lifecycle.is_ready() {
            t_ready = Some(now);
        }
        let processed = m.processing_duration.get_sample_count();
        if t_processed.is_none() && processed >= events {
            t_processed = Some(now);
        }
        if t_processed.is_some()
            && t_committed.is_none()
            && now - last_check >= Duration::from_millis(20)
        {
            last_check = now;
            if offsets_committed(&checker, &tpl, &ends)? {
                t_committed = Some(Instant::now());
            }
        }
        if handle.is_finished() {
            if t_first.is_none() {
                // Stopped before consuming anything: a start-up failure (logged above), which
                // the orchestrator retries with fresh output topics and group.
                eprintln!("the service stopped during start-up");
                std::process::exit(EXIT_STARTUP_FAILED);
            }
            bail!("the service stopped during the drain");
        }
        if now > deadline {
            bail!("drain timed out: {processed} of {events} processed");
        }
        if now - last_log > Duration::from_secs(10) {
            eprintln!("  … drain: {processed} / {events} processed");
            last_log = now;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let usage = Usage::since(usage0);
    let (cpu, faults) = (usage.map(|u| u.cpu_s), usage.map(|u| u.minor_faults));
    let threads_cpu = cpu_by_thread(&threads0, &thread_cpu(None), cpu);
    let (broker_cpu, broker_threads_cpu) = broker0.as_ref().map(BrokerCpu::since).unzip();
    let broker_cpu = broker_cpu.flatten();
    // Where the drain wrote, up to here (the latency run writes more): what the orchestrator
    // counts as its bytes and records, and what the same-I/O pipe replays.
    let outputs = tokio::task::block_in_place(|| {
        pipe::output_ends(
            args,
            &checker,
            &[
                ("changelog", &changelog),
                ("indicators", &topics.indicators()),
                ("dead_letter", &topics.dead_letter()),
            ],
        )
    })?;
    let vmhwm = proc_status_kib("VmHWM:").unwrap_or(0) * 1024;
    let vmrss = proc_status_kib("VmRSS:").unwrap_or(0) * 1024;
    let cells = m.state_cells.get();
    let mut published = serde_json::Map::new();
    let mut published_total = 0;
    for k in RecordKind::ALL {
        let n = m
            .indicators_published
            .with_label_values(&[k.as_str()])
            .get();
        published_total += n;
        published.insert(k.as_str().to_string(), json!(n));
    }
    published.insert("total".into(), json!(published_total));
    let rejected: u64 = silkroute::event::Reason::ALL
        .iter()
        .map(|r| m.events_rejected.with_label_values(&[r.as_str()]).get())
        .sum();
    let first = t_first.context("no event consumed")?;
    let processed_secs = (t_processed.unwrap() - first).as_secs_f64();
    let committed_secs = (t_committed.unwrap() - first).as_secs_f64();

    let latency = match args.latency_secs.unwrap_or(0) {
        0 => Value::Null,
        secs => latency_run(args, &topics, &changelog, secs, args.latency_rate).await?,
    };
    let stop = Instant::now();
    handle.stop().await?;
    Ok(json!({
        "events": events,
        "startup_s": (first - t_start).as_secs_f64(),
        "drain_processed_s": processed_secs,
        "drain_committed_s": committed_secs,
        "drain_processed_events_per_s": events as f64 / processed_secs,
        "drain_committed_events_per_s": events as f64 / committed_secs,
        "ready_after_first_event_s": t_ready.map(|r| r.saturating_duration_since(first).as_secs_f64()),
        "process_cpu_s": cpu,
        "process_cpu_s_by_thread": threads_cpu,
        "process_minor_faults": faults,
        "broker_cpu_s": broker_cpu,
        "broker_cpu_s_by_thread": broker_threads_cpu,
        "rss_before_start_bytes": rss_before * 1024,
        "peak_rss_bytes": vmhwm,
        "rss_after_drain_bytes": vmrss,
        "state_cells": cells,
        "largest_publication_step_records": max_published_step,
        "trade_events_consumed_before_first_fx": trade_before_fx,
        "sampled_rss_max_bytes": max_rss,
        "processed_events_at_sampled_rss_max": processed_at_max_rss,
        "indicators_published": published,
        "events_rejected": rejected,
        "batch": batch,
        "latency": latency,
        "stop_s": stop.elapsed().as_secs_f64(),
        "outputs": outputs,
    }))
}

/// Freight events for distinct ports at a steady rate; each timed from just before `send` to
/// its record being read from the indicators topic.
/// The `p` quantile (nearest rank) of ascending `sorted`.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

/// Rounded to 0.1 (ms), for the per-second and per-stage figures.
fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn latency_run(
    args: &Args,
    topics: &Topics,
    changelog: &str,
    secs: u64,
    rate: u64,
) -> anyhow::Result<Value> {
    let n = (secs * rate) as usize;
    let indicators = topics.indicators();
    let base = Instant::now();
    let base_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64() * 1e3;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    // Each indicator record's timestamp: when the service handed it to its producer (ms, wall
    // clock). It splits the latency in two: up to the service's produce call (the input's trip,
    // batching, processing) and from there until readable (acks, the broker, the reader).
    let produced_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    // The changelog copy of each event carries the time the service received it (ms, wall
    // clock): it splits the first part again, into the trip to the service and the wait there.
    let received_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    // And the input event's own timestamp: when the broker appended it.
    let appended_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let freight = topics.freight.clone();
    let changelog = changelog.to_string();
    let stop = Arc::new(AtomicBool::new(false));

    // The reader, at the current end of every indicators and changelog partition.
    let reader: BaseConsumer = client_config(&args.bootstrap)
        .set("group.id", format!("bench-latency-{}", unique()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let split = [&changelog, &freight];
    let extra: &[&String] = if args.latency_split { &split } else { &[] };
    for topic in std::iter::once(&indicators).chain(extra.iter().copied()) {
        let md = tokio::task::block_in_place(|| {
            reader.fetch_metadata(Some(topic), Duration::from_secs(10))
        })?;
        let partitions = md.topics()[0].partitions().len() as i32;
        for p in 0..partitions {
            let (_, hi) = tokio::task::block_in_place(|| {
                reader.fetch_watermarks(topic, p, Duration::from_secs(10))
            })?;
            tpl.add_partition_offset(topic, p, Offset::Offset(hi))?;
        }
    }
    reader.assign(&tpl)?;
    let reader_thread = {
        let (seen, produced_at, received_at, appended_at, stop) = (
            seen.clone(),
            produced_at.clone(),
            received_at.clone(),
            appended_at.clone(),
            stop.clone(),
        );
        let (changelog, freight) = (changelog.clone(), freight.clone());
        std::thread::spawn(move || {
            let mut got = 0usize;
            while !stop.load(Ordering::Relaxed) && got < seen.len() {
                if let Some(Ok(m)) = reader.poll(Duration::from_millis(50)) {
                    let now = base.elapsed().as_nanos() as u64;
                    let idx = m
                        .key()
                        // Records and changelog copies: freight/lat0000042/…; events: lat0000042.
                        .map(|k| k.strip_prefix(b"freight/").unwrap_or(k))
                        .and_then(|k| k.strip_prefix(b"lat"))
                        .and_then(|k| k.get(..7))
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .and_then(|s| s.parse::<usize>().ok());
                    let Some(i) = idx.filter(|&i| i < seen.len()) else {
                        continue;
                    };
                    if m.topic() == changelog || m.topic() == freight {
                        let at = if m.topic() == freight {
                            &appended_at
                        } else {
                            &received_at
                        };
                        if let Some(ts) = m.timestamp().to_millis() {
                            at[i].store(ts.max(1) as u64, Ordering::Relaxed);
                        }
                        continue;
                    }
                    if seen[i].load(Ordering::Relaxed) == 0 {
                        seen[i].store(now.max(1), Ordering::Relaxed);
                        if let Some(ts) = m.timestamp().to_millis() {
                            produced_at[i].store(ts.max(1) as u64, Ordering::Relaxed);
                        }
                        got += 1;
                    }
                }
            }
        })
    };
    // Give the reader its first fetch before producing.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let producer: ThreadedProducer<DefaultProducerContext> = client_config(&args.bootstrap)
        .set("linger.ms", "0")
        .set("enable.idempotence", "true")
        .create()?;
    let freight = topics.freight.clone();
    // Warm the producer up (metadata, connection, idempotent producer id) with one event whose
    // port the reader ignores, so that the timed events measure the service, not the client's
    // start.
    let warmup = r#"{"type":"freight_trains","port":"warmup","period":"2024-09","trains":1}"#;
    producer
        .send(BaseRecord::to(&freight).key("warmup").payload(warmup))
        .map_err(|(e, _)| e)?;
    tokio::task::block_in_place(|| producer.flush(Duration::from_secs(30)))?;
    let writer = {
        let sent = sent.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let t0 = Instant::now();
            for i in 0..n {
                let target = t0 + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
                let now = Instant::now();
                if target > now {
                    std::thread::sleep(target - now);
                }
                let port = format!("lat{i:07}");
                let value = format!(
                    r#"{{"type":"freight_trains","port":"{port}","period":"2024-09","trains":{}}}"#,
                    500 + i % 400
                );
                sent[i].store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let mut record = BaseRecord::to(&freight).key(&port).payload(&value);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            record = r;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err((e, _)) => bail!("latency producer: {e}"),
                    }
                }
            }
            producer.flush(Duration::from_secs(30))?;
            Ok(())
        })
    };
    let produced = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("latency writer panicked"))?;
    produced?;
    let wait_until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < wait_until && seen.iter().any(|s| s.load(Ordering::Relaxed) == 0) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || reader_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("latency reader panicked"))?;
    // An event's latency in ms, if its record was seen.
    let latency_ms = |i: usize| {
        let (s, r) = (
            sent[i].load(Ordering::Relaxed),
            seen[i].load(Ordering::Relaxed),
        );
        (r != 0).then(|| r.saturating_sub(s) as f64 / 1e6)
    };
    let mut ms: Vec<f64> = (0..n).filter_map(latency_ms).collect();
    // The second half alone: the first seconds after the backfill's drain often run slower
    // (in some runs p50 fell from ~25 to ~12 ms over ~10 s, also after a 15 s pause), so this
    // tells a start-up tail from stalls all along. The target is judged on the whole run.
    let mut second_half: Vec<f64> = (n / 2..n).filter_map(latency_ms).collect();
    second_half.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let second_half_p99 = percentile(&second_half, 0.99);
    // p99 and max per second of sending: a start-up transient, a periodic stall, or steady.
    let per_second: Vec<Value> = (0..secs as usize)
        .map(|w| {
            let lo = w * rate as usize;
            let hi = ((w + 1) * rate as usize).min(n);
            let mut v: Vec<f64> = (lo..hi).filter_map(latency_ms).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let at = |p| percentile(&v, p).map(tenths);
            json!([at(0.5), at(0.99), at(1.0)])
        })
        .collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p| percentile(&ms, p);
    // The two stages, in ms (the record timestamp has ms resolution).
    let (mut to_produce, mut to_readable) = (Vec::new(), Vec::new());
    let (mut to_service, mut in_service) = (Vec::new(), Vec::new());
    let (mut to_broker, mut broker_to_service) = (Vec::new(), Vec::new());
    for i in 0..n {
        let a = appended_at[i].load(Ordering::Relaxed) as f64 - base_unix_ms;
        let (s, r, p, c) = (
            sent[i].load(Ordering::Relaxed) as f64 / 1e6,
            seen[i].load(Ordering::Relaxed) as f64 / 1e6,
            produced_at[i].load(Ordering::Relaxed) as f64 - base_unix_ms,
            received_at[i].load(Ordering::Relaxed) as f64 - base_unix_ms,
        );
        if r > 0.0 && p > 0.0 {
            to_produce.push(p - s);
            to_readable.push(r - p);
            if c > 0.0 {
                to_service.push(c - s);
                in_service.push(p - c);
                if a > 0.0 {
                    to_broker.push(a - s);
                    broker_to_service.push(c - a);
                }
            }
        }
    }
    let stage = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let at = |p| percentile(v, p).map(tenths);
        json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)})
    };
    Ok(json!({
        "rate_per_s": rate,
        "secs": secs,
        "events": n,
        "matched": ms.len(),
        "missing": n - ms.len(),
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "second_half_p99_ms": second_half_p99,
        "max_ms": q(1.0),
        "per_second_p50_p99_max_ms": per_second,
        "mean_ms": (!ms.is_empty()).then(|| ms.iter().sum::<f64>() / ms.len() as f64),
        "sent_to_produced": stage(&mut to_produce),
        "sent_to_received": stage(&mut to_service),
        "sent_to_appended": stage(&mut to_broker),
        "appended_to_received": stage(&mut broker_to_service),
        "received_to_produced": stage(&mut in_service),
        "produced_to_readable": stage(&mut to_readable),
    }))
}

// ------------------------------------------------------------------------------------------
// The orchestrator.

struct SetResult {
    set: DataSet,
    events: u64,
    produce_s: f64,
    raw_base: Reads,
    raw_stream: Reads,
    kcat: Reads,
    /// The unmeasured pairs that warmed the broker first (data set A).
    warm_up: Vec<Value>,
    /// One result per drain; the last holds the latency run (data set A).
    drains: Vec<Value>,
    /// One result per run of the same-I/O pipe (replaying the first drain's output).
    pipes: Vec<Value>,
    /// New instances restoring the first drain's changelog, one per `--repeat`, each in a
    /// fresh process with its own raw read just before.
    restores: Vec<Value>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn each_of(results: &[Value], key: &str) -> Vec<f64> {
    results
        .iter()
        .map(|d| d.pointer(key).and_then(Value::as_f64).unwrap_or(f64::NAN))
        .collect()
}

impl SetResult {
    fn each(&self, key: &str) -> Vec<f64> {
        each_of(&self.drains, key)
    }
    fn median(&self, key: &str) -> f64 {
        median(self.each(key))
    }
    /// The median of `key` over the pipe's runs.
    fn pipe_median(&self, key: &str) -> f64 {
        median(each_of(&self.pipes, key))
    }
    /// Each restore's rate over its raw read of the changelog, both timed from the start of
    /// the client that reads (the target's measure).
    fn restore_ratios(&self) -> Vec<f64> {
        self.restore_ratios_to("raw_read_from_creation_records_per_s")
    }
    /// Each restore's rate over its raw read's rate `key`.
    fn restore_ratios_to(&self, key: &str) -> Vec<f64> {
        self.restores
            .iter()
            .map(|x| {
                let f = |k: &str| x[k].as_f64().unwrap_or(f64::NAN);
                f("restore_records_per_s") / f(key)
            })
            .collect()
    }
    /// The restore whose ratio to its raw read is the median one (the lower middle of an
    /// even number).
    fn median_restore(&self) -> &Value {
        let ratios = self.restore_ratios();
        let mut order: Vec<usize> = (0..ratios.len()).collect();
        order.sort_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
        &self.restores[order[(order.len() - 1) / 2]]
    }
    /// silkroute's drain rate over the pipe's (medians), if the pipe ran.
    fn pipe_ratio(&self) -> Option<f64> {
        self.pipe_ratio_to("/drain_committed_events_per_s")
    }
    /// silkroute's drain rate over the pipe's rate `key` (medians), if the pipe ran.
    fn pipe_ratio_to(&self, key: &str) -> Option<f64> {
        let pipe = self.pipe_median(key);
        pipe.is_finite()
            .then(|| self.median("/drain_committed_events_per_s") / pipe)
    }
    /// "lo–hi" over the drains (one value if there is one drain), scaled, with `places`.
    fn range(&self, key: &str, scale: f64, places: usize) -> String {
        let v: Vec<f64> = self
            .each(key)
            .into_iter()
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            return "n/a".into();
        }
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min) / scale;
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max) / scale;
        if self.drains.len() == 1 || lo == hi {
            format!("{lo:.places$}")
        } else {
            format!("{lo:.places$}–{hi:.places$}")
        }
    }
}

async fn run_set(
    args: &Args,
    set: &DataSet,
    run: &str,
    latency_secs: u64,
    repeat: u32,
    warm_up: u32,
) -> anyhow::Result<SetResult> {
    eprintln!("[{}] generating {}", set.label, set.describe());
    let msgs = generate(set);
    let events = msgs.len();
    let topics = Topics::new(format!("bench-{run}-{}", set.label.to_lowercase()), 0);
    let latency_freight = Topics::latency_freight(&topics.prefix);
    let mut inputs = vec![
        (topics.trade.as_str(), TRADE_PARTITIONS),
        (topics.fx.as_str(), 1),
        (topics.freight.as_str(), FREIGHT_PARTITIONS),
    ];
    if latency_secs > 0 {
        inputs.push((&latency_freight, FREIGHT_PARTITIONS));
    }
    create_topics(&args.bootstrap, &inputs, args.latency_split).await?;
    eprintln!(
        "[{}] producing {events} events to {}",
        set.label, topics.trade
    );
    let produce_s = produce_all(&args.bootstrap, &topics, &msgs).await?;
    let trade_events = msgs.trade.len() as u64;
    drop(msgs);

    // The raw references read the trade topic (all but 24 or 48 of the events): the fx
    // partition's first fetch can start a second late, which would time the consumer's
    // start-up rather than its throughput. Best of three runs each (orientation: the ceiling is
    // the same-I/O pipe below).
    let trade_only = [(topics.trade.as_str(), TRADE_PARTITIONS)];
    let mut raw_base_runs = Vec::new();
    let mut raw_stream_runs = Vec::new();
    let mut kcat_runs = Vec::new();
    for attempt in 1..=RAW_RUNS {
        eprintln!(
            "[{}] raw read {attempt}/{RAW_RUNS}: BaseConsumer, StreamConsumer, kcat",
            set.label
        );
        let bootstrap = args.bootstrap.clone();
        let trade = topics.trade.clone();
        raw_base_runs.push(
            tokio::task::spawn_blocking(move || {
                raw_base(
                    &bootstrap,
                    &[(trade.as_str(), TRADE_PARTITIONS)],
                    trade_events,
                )
            })
            .await??,
        );
        raw_stream_runs.push(raw_stream(&args.bootstrap, &trade_only, trade_events).await?);
        let k = kcat(&args.bootstrap, &topics.trade)?;
        if k.messages != trade_events {
            bail!("kcat read {} messages of {trade_events}", k.messages);
        }
        kcat_runs.push(k);
    }
    let best = |runs: Vec<Read>| -> Reads {
        let best = runs.iter().map(Read::rate).fold(0.0, f64::max);
        Reads { runs, best }
    };
    let (raw_base, raw_stream, kcat) =
        (best(raw_base_runs), best(raw_stream_runs), best(kcat_runs));

    let warm_up = warm_up_broker(args, set, &topics, events, warm_up)?;

    // Drains and pipes alternate (drain 1, pipe 1, drain 2, ...): run all the drains first
    // and the pipes met a broker whose JVM the drains had warmed (on 2026-12-06 a drain on a
    // fresh broker cost it 3.9-5.9 CPU s, on a long-running one 0.9-1.2 s), which bent the
    // ratio against silkroute. Each pipe replays the first drain's records, so a drain leads.
    let mut drains: Vec<Value> = Vec::new();
    let mut pipes = Vec::new();
    for r in 0..repeat {
        eprintln!(
            "[{}] silkroute drain {}/{repeat} (fresh process)",
            set.label,
            r + 1
        );
        // The last drain; its freight input is a topic of its own (see `latency_freight`).
        let lat = if r + 1 == repeat { latency_secs } else { 0 };
        let mut failures = Vec::new();
        let mut drain = loop {
            // A retry gets fresh output topics and group (run numbers 100, 200, ...).
            let tag = r + 100 * failures.len() as u32;
            match drain_process(args, &topics, events, tag, lat)? {
                Some(mut d) => {
                    d["run_tag"] = json!(tag);
                    break d;
                }
                None if (failures.len() as u32) < STARTUP_RETRIES => {
                    eprintln!("[{}] the service failed to start; retrying", set.label);
                    failures.push(tag);
                }
                None => bail!("the service failed to start {} times", failures.len() + 1),
            }
        };
        drain["startup_failures_retried"] = json!(failures.len());
        drain["wire"] = tokio::task::block_in_place(|| pipe::wire(args, &drain))?;
        drains.push(drain);

        // The ceiling: the same Kafka I/O as the first drain, without silkroute's code.
        if !args.no_pipe {
            eprintln!(
                "[{}] same-I/O pipe {}/{repeat} (fresh process)",
                set.label,
                r + 1
            );
            let reference = json!({"outputs": drains[0]["outputs"]});
            let mut p = pipe_process(args, &topics, events, r, &reference)?;
            p["wire"] = tokio::task::block_in_place(|| pipe::wire(args, &p))?;
            pipes.push(p);
        }
    }

    // New instances joining the first drain's group, one after another: its changelog holds
    // the set. One restore of A moved from 0.35 to 0.66 s between runs of the same code, so
    // the restore is repeated as the drain is, and the table shows the median.
    let tag = drains[0]["run_tag"].as_u64().unwrap_or(0) as u32;
    let mut restores = Vec::new();
    for r in 0..repeat {
        eprintln!(
            "[{}] restore {}/{repeat}: a new instance joins the first drain's group",
            set.label,
            r + 1
        );
        restores.push(restore_process(args, &topics, tag)?);
    }

    Ok(SetResult {
        set: set.clone(),
        events,
        produce_s,
        raw_base,
        raw_stream,
        kcat,
        warm_up,
        drains,
        pipes,
        restores,
    })
}

/// Pairs of a drain and a pipe (drains alone with `--no-pipe`), unmeasured, until the broker's
/// JIT compiler is quiet. After a start it went on compiling for six pairs of A at least once
/// (2.8, 2.4, 1.6, 0.9, 0.35, then 0.24 CPU s a pair on 2026-12-08) and more than eight
/// exactly once (4.5 down to 0.33), and whichever side it fell on lost as much on the two
/// cores both share with the broker: it moved the ratio by more than the gap to its target.
/// What each pair saw goes in the JSON.
fn warm_up_broker(
    args: &Args,
    set: &DataSet,
    topics: &Topics,
    events: u64,
    pairs: u32,
) -> anyhow::Result<Vec<Value>> {
    let mut seen = Vec::new();
    for w in 0..pairs {
        let what = if args.no_pipe {
            "drain"
        } else {
            "drain and pipe"
        };
        eprintln!(
            "[{}] warming the broker: {what} {}/{pairs}, not measured",
            set.label,
            w + 1
        );
        // Run numbers of their own: the measured runs use 0.. and their retries 100, 200, ...
        let run = WARM_UP_RUNS + w;
        let Some(drain) = drain_process(args, topics, events, run, 0)? else {
            eprintln!("[{}] the service failed to start; next pair", set.label);
            continue;
        };
        // With --no-pipe (bench.sh's own warm-up), drains alone.
        let pipe = if args.no_pipe {
            Value::Null
        } else {
            let reference = json!({"outputs": drain["outputs"]});
            pipe_process(args, topics, events, run, &reference)?
        };
        let jit = |x: &Value| x.pointer("/broker_cpu_s_by_thread/JIT compiler")?.as_f64();
        let jit_s = jit(&drain).map(|d| d + jit(&pipe).unwrap_or(0.0));
        let rate = |x: &Value| x["drain_committed_events_per_s"].as_f64();
        let ratio = rate(&drain).zip(rate(&pipe)).map(|(a, b)| a / b);
        eprintln!(
            "[{}]   the broker's JIT compiler took {} CPU s; drain / pipe {}",
            set.label,
            jit_s.map_or("n/a".into(), |s| format!("{s:.2}")),
            ratio.map_or("n/a".into(), pct),
        );
        seen.push(json!({"broker_jit_cpu_s": jit_s, "ratio_drain_to_pipe": ratio}));
        if jit_s.is_some_and(|s| s < WARM_JIT_CPU_S) {
            break;
        }
    }
    Ok(seen)
}

/// One restore in a fresh process (this program with --restore-only): its JSON result.
fn restore_process(args: &Args, topics: &Topics, run: u32) -> anyhow::Result<Value> {
    let mut cmd = Command::new(std::env::current_exe()?);
    child_args(&mut cmd, "--restore-only", args, topics, run);
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("the restore process failed ({})", out.status);
    }
    result_of(&out, "restore")
}

/// What every child process (this program in one of its internal modes) is told: which
/// broker, which drain's topics and group, and the options that hold for the whole run.
fn child_args(cmd: &mut Command, mode: &str, args: &Args, topics: &Topics, run: u32) {
    cmd.arg(mode)
        .arg("--bootstrap")
        .arg(&args.bootstrap)
        .arg("--prefix")
        .arg(&topics.prefix)
        .arg("--run")
        .arg(run.to_string());
    if let Some(pid) = args.broker_pid {
        cmd.arg("--broker-pid").arg(pid.to_string());
    }
    if let Some(dir) = &args.broker_data_dir {
        cmd.arg("--broker-data-dir").arg(dir);
    }
    if let Some(c) = &args.service_config {
        cmd.arg("--service-config").arg(c);
    }
}

/// The JSON result a child process (`--drain-only`, `--pipe-only`, `--restore-only`) printed
/// as its last line starting with `{`.
fn result_of(out: &std::process::Output, what: &str) -> anyhow::Result<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no result from the {what} process"))?;
    Ok(serde_json::from_str(line)?)
}

/// One run of the same-I/O pipe in a fresh process (this program with --pipe-only).
fn pipe_process(
    args: &Args,
    topics: &Topics,
    events: u64,
    run: u32,
    reference: &Value,
) -> anyhow::Result<Value> {
    let mut cmd = wrapped("BENCH_PIPE_WRAPPER")?;
    child_args(&mut cmd, "--pipe-only", args, topics, run);
    cmd.arg("--events")
        .arg(events.to_string())
        .arg("--reference")
        .arg(reference.to_string());
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("the pipe process failed ({})", out.status);
    }
    result_of(&out, "pipe")
}

/// This program as a child process, run under the command in the environment variable
/// `var` if it is set: `BENCH_DRAIN_WRAPPER` for the drains, `BENCH_PIPE_WRAPPER` for the
/// pipe's runs (e.g. "heaptrack -o /tmp/ht" or "perf record -g -o /tmp/p.data"), so that
/// both sides of the ratio can be profiled the same way.
fn wrapped(var: &str) -> anyhow::Result<Command> {
    let exe = std::env::current_exe()?;
    let wrapper: Vec<String> = std::env::var(var)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    Ok(match wrapper.split_first() {
        Some((tool, rest)) => {
            let mut c = Command::new(tool);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    })
}

/// One drain in a fresh process (this program with --drain-only): its JSON result.
fn drain_process(
    args: &Args,
    topics: &Topics,
    events: u64,
    run: u32,
    latency_secs: u64,
) -> anyhow::Result<Option<Value>> {
    let mut cmd = wrapped("BENCH_DRAIN_WRAPPER")?;
    child_args(&mut cmd, "--drain-only", args, topics, run);
    cmd.arg("--events")
        .arg(events.to_string())
        .arg("--latency-secs")
        .arg(latency_secs.to_string())
        .arg("--latency-rate")
        .arg(args.latency_rate.to_string());
    if args.latency_split {
        cmd.arg("--latency-split");
    }
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if out.status.code() == Some(EXIT_STARTUP_FAILED) {
        return Ok(None);
    }
    if !out.status.success() {
        bail!("the drain process failed ({})", out.status);
    }
    result_of(&out, "drain").map(Some)
}

fn git_commit() -> Option<String> {
    let head = std::fs::read_to_string(".git/HEAD").ok()?;
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref: ") else {
        return Some(head.to_string());
    };
    if let Ok(c) = std::fs::read_to_string(Path::new(".git").join(r)) {
        return Some(c.trim().to_string());
    }
    let packed = std::fs::read_to_string(".git/packed-refs").ok()?;
    packed
        .lines()
        .find(|l| l.ends_with(r))
        .and_then(|l| l.split_whitespace().next())
        .map(String::from)
}

/// Records and bytes written to Kafka per input event (medians over `runs`).
fn per_event(r: &SetResult, runs: &[Value]) -> Value {
    let per = |key: &str| median(each_of(runs, key)) / r.events as f64;
    let finite = |x: f64| x.is_finite().then_some(x);
    json!({
        "records": per("/wire/records"),
        "bytes": per("/wire/bytes"),
        "disk_bytes": finite(per("/wire/disk_bytes")),
        "changelog_records": per("/wire/by_topic/changelog/records"),
        "indicator_records": per("/wire/by_topic/indicators/records"),
    })
}

/// silkroute's drain against the same-I/O pipe: rates, what each wrote per input event (the
/// pipe is faithful when these match), and CPU of the service process and of the broker.
fn pipe_table(t: &mut String, results: &[SetResult], repeat: u32) {
    let _ = writeln!(
        t,
        "\nagainst the same-I/O pipe: silkroute's Kafka I/O, none of its code (medians of {repeat})\n\
         pipe+rb = the pipe until it has also read back its whole changelog (silkroute's drain does not\n\
         wait for that, and how much silkroute has read back by then is not visible from outside)\n\
         each pair is silkroute|pipe: records and bytes (key + value + headers) written per input event\n\
         and bytes the broker's log took per input event (silkroute: the drain the pipe replays, the\n\
         first), CPU seconds of the process and of the broker (medians)"
    );
    let _ = writeln!(
        t,
        "{:<3} {:>9} {:>9} {:>10} {:>9} {:>12} {:>15} {:>13} {:>13} {:>13} {:>13}",
        "set",
        "drain",
        "pipe",
        "drain/pipe",
        "pipe+rb",
        "drain/(+rb)",
        "records/event",
        "bytes/event",
        "log B/event",
        "CPU s",
        "broker CPU s"
    );
    for r in results {
        if r.pipes.is_empty() {
            continue;
        }
        // The pipe replays the first drain: its output is what the pipe's should match.
        let (s, p) = (per_event(r, &r.drains[..1]), per_event(r, &r.pipes));
        let pair = |key: &str, places: usize| match (s[key].as_f64(), p[key].as_f64()) {
            (Some(a), Some(b)) => format!("{a:.places$}|{b:.places$}"),
            _ => "n/a".into(),
        };
        let cpu = |key: &str| {
            let (a, b) = (r.median(key), r.pipe_median(key));
            if a.is_finite() && b.is_finite() {
                format!("{a:.1}|{b:.1}")
            } else {
                "n/a".into()
            }
        };
        let _ = writeln!(
            t,
            "{:<3} {:>9} {:>9} {:>10} {:>9} {:>12} {:>15} {:>13} {:>13} {:>13} {:>13}",
            r.set.label,
            rate(r.median("/drain_committed_events_per_s")),
            rate(r.pipe_median("/drain_committed_events_per_s")),
            r.pipe_ratio().map_or("n/a".into(), pct),
            rate(r.pipe_median("/drain_read_back_events_per_s")),
            r.pipe_ratio_to("/drain_read_back_events_per_s")
                .map_or("n/a".into(), pct),
            pair("records", 3),
            pair("bytes", 0),
            pair("disk_bytes", 0),
            cpu("/process_cpu_s"),
            cpu("/broker_cpu_s"),
        );
        // Which threads spend the process's CPU (the drain's ratio follows it on two cores),
        // and the broker's.
        for (key, what) in [
            ("process_cpu_s_by_thread", "CPU s by thread"),
            ("broker_cpu_s_by_thread", "broker CPU s by thread"),
        ] {
            if let Some(line) = by_thread_line(r, key) {
                let _ = writeln!(t, "    {what}: {line}");
            }
        }
        let (a, b) = (
            r.median("/process_minor_faults"),
            r.pipe_median("/process_minor_faults"),
        );
        if a.is_finite() && b.is_finite() {
            let _ = writeln!(t, "    minor page faults: {a:.0}|{b:.0}");
        }
    }
}

/// "name silkroute|pipe" for each thread name under `key` in the drains' and the pipe's
/// runs (medians), or `None` when neither side has any.
fn by_thread_line(r: &SetResult, key: &str) -> Option<String> {
    let mut names: Vec<&String> = r
        .drains
        .iter()
        .chain(&r.pipes)
        .filter_map(|x| x[key].as_object())
        .flat_map(|threads| threads.keys())
        .collect();
    names.sort();
    names.dedup();
    let by_thread: Vec<String> = names
        .into_iter()
        .map(|name| {
            // A thread only one side has counts as 0 s on the other.
            let pointer = format!("/{key}/{name}");
            let seconds = |x: f64| if x.is_finite() { x } else { 0.0 };
            let (a, b) = (
                seconds(r.median(&pointer)),
                seconds(r.pipe_median(&pointer)),
            );
            format!("{name} {a:.2}|{b:.2}")
        })
        .filter(|line| !line.ends_with(" 0.00|0.00"))
        .collect();
    (!by_thread.is_empty()).then(|| by_thread.join(", "))
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn rate(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0}k/s", x / 1000.0)
    } else {
        format!("{x:.0}/s")
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "ok",
        Some(false) => "MISSED",
        None => "n/a",
    }
}

async fn orchestrate(args: Args) -> anyhow::Result<()> {
    let (regions, what) = if args.quick {
        (2, "quick")
    } else {
        (support::REGIONS.len(), "full")
    };
    let mut sets = vec![
        DataSet {
            label: "A",
            regions,
            first: (2022, 10),
            months: 24,
        },
        DataSet {
            label: "B",
            regions,
            first: (2020, 10),
            months: 48,
        },
    ];
    if args.only_a {
        sets.truncate(1);
    }
    let latency_secs = args.latency_secs.unwrap_or(if args.quick { 5 } else { 20 });
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let warm_up = args.warm_up.unwrap_or(if args.quick { 0 } else { 8 });
    let out_path = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.quick {
            "target/bench/backfill-quick.json"
        } else {
            "target/bench/backfill.json"
        })
    });

    // Is the broker there?
    let probe: BaseConsumer = client_config(&args.bootstrap).create()?;
    tokio::task::block_in_place(|| probe.fetch_metadata(None, Duration::from_secs(10)))
        .with_context(|| format!("no Kafka broker answers on {}", args.bootstrap))?;
    drop(probe);

    let run = unique();
    let started = Instant::now();
    let mut results: Vec<SetResult> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let lat = if i == 0 { latency_secs } else { 0 };
        // The first set warms the broker for both.
        let warm = if i == 0 { warm_up } else { 0 };
        let result = run_set(&args, set, &run, lat, repeat, warm).await;
        // Each set's topics go once it is measured (or failed), so that the broker does not
        // carry them into the next set.
        if !args.keep_topics {
            delete_topics(
                &args.bootstrap,
                &format!("bench-{run}-{}-", set.label.to_lowercase()),
            )
            .await;
        }
        results.push(result?);
    }
    let total_s = started.elapsed().as_secs_f64();

    // ---- derive (medians over the drains of each set)
    let a = &results[0];
    let per_cell = |key: &str| {
        results.get(1).map(|b| {
            (b.median(key) - a.median(key)) / (b.median("/state_cells") - a.median("/state_cells"))
        })
    };
    let growth = per_cell("/peak_rss_bytes");
    let growth_steady = per_cell("/rss_after_drain_bytes");
    let peak_a_mib = a.median("/peak_rss_bytes") / 1_048_576.0;
    let lat = &a.drains[a.drains.len() - 1]["latency"];
    let (p50, p99) = (lat["p50_ms"].as_f64(), lat["p99_ms"].as_f64());
    let drain = |r: &SetResult| r.median("/drain_committed_events_per_s");
    // Exactly once, the floor under the latency: the same broker's bare transaction cycle.
    let txn_cycle = if guarantee_under_test() == "exactly_once" && !lat.is_null() {
        eprintln!("[A] bare transaction cycle: 12 partitions, then 2");
        txn_cycle::measure(&args.bootstrap, 12).await?
    } else {
        Value::Null
    };

    // ---- table
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nsilkroute backfill benchmark — {what} run, broker {}, {} cores, load {}, {:.0} s total",
        args.bootstrap,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(String::from))
            .unwrap_or_default(),
        total_s
    );
    let _ = writeln!(
        t,
        "guarantee {} (the other mode: SILKROUTE__PROCESSING__GUARANTEE=... scripts/bench.sh)",
        guarantee_under_test()
    );
    let _ = writeln!(
        t,
        "drain = events/s from the first event consumed until the group's committed offsets reach the end \
         (median of {repeat}); acked = until every outcome is acknowledged"
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "{:<3} {:>8} {:>8} {:>9} {:>10} {:>8} {:>9} {:>13} {:>9} {:>10} {:>10}",
        "set",
        "events",
        "cells",
        "raw Base",
        "raw Stream",
        "kcat",
        "drain",
        "(acked)",
        "drain/raw",
        "drain/kcat",
        "drain/pipe"
    );
    for r in &results {
        let d = drain(r);
        let _ = writeln!(
            t,
            "{:<3} {:>8} {:>8} {:>9} {:>10} {:>8} {:>9} {:>13} {:>9} {:>10} {:>10}",
            r.set.label,
            r.events,
            r.median("/state_cells"),
            rate(r.raw_base.rate()),
            rate(r.raw_stream.rate()),
            rate(r.kcat.rate()),
            rate(d),
            format!("({})", rate(r.median("/drain_processed_events_per_s"))),
            pct(d / r.raw_base.rate()),
            pct(d / r.kcat.rate()),
            r.pipe_ratio().map_or("n/a".into(), pct)
        );
    }
    let _ = writeln!(t);
    for r in &results {
        let fx: Vec<String> = r
            .drains
            .iter()
            .map(|d| {
                d["trade_events_consumed_before_first_fx"]
                    .as_u64()
                    .map_or("?".into(), |n| n.to_string())
            })
            .collect();
        let _ = writeln!(
            t,
            "{}: {}\n   loaded in {:.1} s; per drain: {} s to committed, {} MiB peak RSS, {} indicator records \
             published, {} s silkroute CPU, {} s broker CPU; first USD rate consumed after {} trade events",
            r.set.label,
            r.set.describe(),
            r.produce_s,
            r.range("/drain_committed_s", 1.0, 2),
            r.range("/peak_rss_bytes", 1_048_576.0, 0),
            r.range("/indicators_published/total", 1.0, 0),
            r.range("/process_cpu_s", 1.0, 1),
            r.range("/broker_cpu_s", 1.0, 1),
            fx.join(", ")
        );
    }
    if results.iter().any(|r| !r.pipes.is_empty()) {
        pipe_table(&mut t, &results, repeat);
    }
    let _ = writeln!(
        t,
        "\nrestore: a new instance joins the first drain's group (its changelog holds the set), \
         timed from start to ready, against a raw read of that changelog just before, timed from its \
         consumer's creation as the restore is from the service's start (and from its assignment, \
         the read alone, as before 2026-12-07); the restore with the median ratio of {repeat}, then \
         each restore's ratio and time to ready"
    );
    for r in &results {
        let x = r.median_restore();
        let f = |k: &str| x[k].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            t,
            "{}: {} changelog records restored in {:.2} s from start, {} ({} of the raw read, {}; {} of the read alone, {}); ready in {:.2} s with {} cells; RSS {:.0} MiB after (peak {:.0} MiB)",
            r.set.label,
            x["changelog_records"],
            f("restored_s"),
            rate(f("restore_records_per_s")),
            pct(f("restore_records_per_s") / f("raw_read_from_creation_records_per_s")),
            rate(f("raw_read_from_creation_records_per_s")),
            pct(f("restore_records_per_s") / f("raw_read_records_per_s")),
            rate(f("raw_read_records_per_s")),
            f("ready_s"),
            x["cells"],
            f("rss_after_bytes") / 1_048_576.0,
            f("peak_rss_bytes") / 1_048_576.0,
        );
        let each: Vec<String> = r
            .restore_ratios()
            .iter()
            .zip(&r.restores)
            .map(|(ratio, x)| {
                format!(
                    "{} in {:.2} s",
                    pct(*ratio),
                    x["ready_s"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect();
        let _ = writeln!(t, "   each restore: {}", each.join(", "));
    }
    let _ = writeln!(t);
    let row = |t: &mut String, name: &str, value: String, goal: &str, ok: Option<bool>| {
        let _ = writeln!(t, "{name:<46} {value:>14} {goal:>10} {:>7}", verdict(ok));
    };
    let _ = writeln!(
        t,
        "{:<46} {:>14} {:>10} {:>7}",
        "target", "measured", "goal", ""
    );
    let mut targets = Vec::new();
    for r in &results {
        let ratio = r.pipe_ratio();
        let goal = if guarantee_under_test() == "exactly_once" {
            TARGET_PIPE_RATIO_EXACTLY_ONCE
        } else {
            TARGET_PIPE_RATIO
        };
        let name = format!(
            "drain / same-I/O pipe, {} ({})",
            guarantee_under_test(),
            r.set.label
        );
        let met = ratio.map(|x| x >= goal);
        row(
            &mut t,
            &name,
            ratio.map_or("n/a".into(), pct),
            &format!("≥ {:.0} %", goal * 100.0),
            met,
        );
        targets.push(json!({"name": name, "value": ratio, "goal": goal, "met": met}));
    }
    for r in &results {
        let ratio = Some(median(r.restore_ratios())).filter(|x| x.is_finite());
        let alone =
            Some(median(r.restore_ratios_to("raw_read_records_per_s"))).filter(|x| x.is_finite());
        let name = format!("restore / raw read of the changelog ({})", r.set.label);
        let met = ratio.map(|x| x >= TARGET_RESTORE_RATIO);
        row(
            &mut t,
            &name,
            ratio.map_or("n/a".into(), pct),
            &format!("≥ {:.0} %", TARGET_RESTORE_RATIO * 100.0),
            met,
        );
        row(
            &mut t,
            "  (against the read alone, from its assignment)",
            alone.map_or("n/a".into(), pct),
            "",
            None,
        );
        targets.push(json!({"name": name, "value": ratio, "value_against_read_alone": alone, "goal": TARGET_RESTORE_RATIO, "met": met}));
    }
    let ready = median(each_of(&a.restores, "/ready_s"));
    if ready.is_finite() {
        let name = format!(
            "time to ready, restoring data set A ({} cells)",
            a.median_restore()["cells"]
        );
        let met = ready <= TARGET_READY_S;
        row(
            &mut t,
            &name,
            format!("{ready:.2} s"),
            &format!("≤ {TARGET_READY_S:.0} s"),
            Some(met),
        );
        targets.push(json!({"name": name, "value_s": ready, "goal_s": TARGET_READY_S, "met": met}));
    }
    let g_ok = growth.map(|g| g <= TARGET_BYTES_PER_CELL);
    row(
        &mut t,
        "peak RSS growth per cell (A→B)",
        growth.map_or("n/a".into(), |g| format!("{g:.0} B/cell")),
        &format!("≤ {TARGET_BYTES_PER_CELL:.0} B"),
        g_ok,
    );
    targets.push(json!({"name": "memory growth per cell", "value": growth, "goal": TARGET_BYTES_PER_CELL, "met": g_ok}));
    row(
        &mut t,
        "  (RSS after the drain, A→B; for reference)",
        growth_steady.map_or("n/a".into(), |g| format!("{g:.0} B/cell")),
        "",
        None,
    );
    let rss_ok = peak_a_mib <= TARGET_PEAK_RSS_MIB;
    row(
        &mut t,
        &format!("peak RSS, data set A ({} events)", a.events),
        format!("{peak_a_mib:.0} MiB"),
        "≤ 256 MiB",
        Some(rss_ok),
    );
    targets.push(json!({"name": "peak RSS data set A", "value_mib": peak_a_mib, "goal_mib": TARGET_PEAK_RSS_MIB, "met": rss_ok}));
    // Exactly once, an event's records become readable when its batch's transaction commits:
    // the goal allows the batch's commit interval (processing.batch_max_wait_ms) on top.
    let p99_goal = if guarantee_under_test() == "exactly_once" {
        let wait = results
            .first()
            .and_then(|r| r.drains.first())
            .and_then(|d| d.pointer("/batch/batch_max_wait_ms"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        TARGET_P99_MS + wait
    } else {
        TARGET_P99_MS
    };
    let lat_ok = p99.map(|p| p <= p99_goal);
    row(
        &mut t,
        &format!(
            "end-to-end p99 at {}/s, {latency_secs} s",
            args.latency_rate
        ),
        p99.map_or("n/a".into(), |p| format!("{p:.1} ms")),
        &format!("≤ {p99_goal:.0} ms"),
        lat_ok,
    );
    row(
        &mut t,
        "end-to-end p50",
        p50.map_or("n/a".into(), |p| format!("{p:.1} ms")),
        "",
        None,
    );
    if let Some(p) = lat["second_half_p99_ms"].as_f64() {
        row(
            &mut t,
            "  p99, second half of the run (not the target)",
            format!("{p:.1} ms"),
            "",
            None,
        );
    }
    for (label, stage) in [
        (
            "  sent → service's produce call, p50 / p99",
            "sent_to_produced",
        ),
        ("    sent → received by the service", "sent_to_received"),
        ("      sent → appended by the broker", "sent_to_appended"),
        (
            "      appended → received by the service",
            "appended_to_received",
        ),
        ("    received → produce call", "received_to_produced"),
        (
            "  produce call → readable, p50 / p99",
            "produced_to_readable",
        ),
    ] {
        let (p50, p99) = (lat[stage]["p50_ms"].as_f64(), lat[stage]["p99_ms"].as_f64());
        if let (Some(p50), Some(p99)) = (p50, p99) {
            row(&mut t, label, format!("{p50:.0} / {p99:.0} ms"), "", None);
        }
    }
    for (label, n) in [
        ("  bare transaction cycle, 12 partitions", "partitions_12"),
        ("  bare transaction cycle, 2 partitions", "partitions_2"),
    ] {
        let total = &txn_cycle[n]["total"];
        if let (Some(p50), Some(p99)) = (total["p50_ms"].as_f64(), total["p99_ms"].as_f64()) {
            row(&mut t, label, format!("{p50:.0} / {p99:.0} ms"), "", None);
        }
    }
    targets.push(json!({"name": "end-to-end p99", "value_ms": p99, "p50_ms": p50, "goal_ms": p99_goal, "met": lat_ok}));
    if let Some(m) = lat["missing"].as_u64().filter(|&m| m > 0) {
        let _ = writeln!(
            t,
            "  ({m} latency events never seen on the indicators topic)"
        );
    }
    print!("{t}");

    // ---- JSON
    let (_, overrides) = service_env(&args, &Topics::new(String::new(), 0));
    let report = json!({
        "benchmark": "backfill",
        "quick": args.quick,
        "commit": git_commit(),
        "version": env!("CARGO_PKG_VERSION"),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "loadavg": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_string()),
        "librdkafka": rdkafka::util::get_rdkafka_version().1,
        "broker": args.bootstrap,
        "guarantee": guarantee_under_test(),
        "repeat": repeat,
        "service_config": args.service_config.as_ref().map(|p| std::fs::read_to_string(p).unwrap_or_default()),
        "service_overrides": overrides.into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
        "total_s": total_s,
        "sets": results.iter().map(|r| json!({
            "label": r.set.label,
            "description": r.set.describe(),
            "events": r.events,
            "produce_s": r.produce_s,
            "raw_topic": "trade (all events but the monthly USD rates)",
            "raw_base_consumer": r.raw_base.json(),
            "raw_stream_consumer": r.raw_stream.json(),
            "kcat": r.kcat.json(),
            "median": {
                "drain_committed_events_per_s": drain(r),
                "drain_processed_events_per_s": r.median("/drain_processed_events_per_s"),
                "peak_rss_bytes": r.median("/peak_rss_bytes"),
                "rss_after_drain_bytes": r.median("/rss_after_drain_bytes"),
                "indicators_published": r.median("/indicators_published/total"),
                "process_cpu_s": r.median("/process_cpu_s"),
                "state_cells": r.median("/state_cells"),
            },
            "pipe": (!r.pipes.is_empty()).then(|| json!({
                "what": "the same Kafka I/O as silkroute's first drain (its changelog and indicator records replayed), none of silkroute's code",
                "median": {
                    "drain_committed_events_per_s": r.pipe_median("/drain_committed_events_per_s"),
                    "drain_processed_events_per_s": r.pipe_median("/drain_processed_events_per_s"),
                    "drain_read_back_events_per_s": r.pipe_median("/drain_read_back_events_per_s"),
                    "process_cpu_s": r.pipe_median("/process_cpu_s"),
                    "broker_cpu_s": r.pipe_median("/broker_cpu_s"),
                },
                "runs": r.pipes,
            })),
            "ratio_drain_to_pipe": r.pipe_ratio(),
            "ratio_drain_to_pipe_read_back": r.pipe_ratio_to("/drain_read_back_events_per_s"),
            "wire_per_input_event": {
                "silkroute": per_event(r, &r.drains),
                "silkroute_replayed_drain": per_event(r, &r.drains[..1]),
                "pipe": (!r.pipes.is_empty()).then(|| per_event(r, &r.pipes)),
            },
            "cpu_s": {
                "silkroute": {"process": r.median("/process_cpu_s"), "broker": r.median("/broker_cpu_s")},
                "pipe": (!r.pipes.is_empty()).then(|| json!({"process": r.pipe_median("/process_cpu_s"), "broker": r.pipe_median("/broker_cpu_s")})),
            },
            "ratio_drain_to_raw": drain(r) / r.raw_base.rate(),
            "ratio_drain_acked_to_raw": r.median("/drain_processed_events_per_s") / r.raw_base.rate(),
            "ratio_drain_to_kcat": drain(r) / r.kcat.rate(),
            "warm_up": r.warm_up,
            "drains": r.drains,
            "restore": r.median_restore(),
            "restores": r.restores,
        })).collect::<Vec<_>>(),
        "memory_growth_bytes_per_cell": growth,
        "memory_growth_after_drain_bytes_per_cell": growth_steady,
        "latency": lat,
        "txn_cycle": txn_cycle,
        "targets": targets,
    });
    if let Some(dir) = out_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&report)?)?;
    let history = out_path.with_file_name("backfill-history.jsonl");
    let mut line = serde_json::to_string(&report)?;
    line.push('\n');
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&history)?
        .write_all(line.as_bytes())?;
    println!(
        "\nJSON: {} (history: {})",
        out_path.display(),
        history.display()
    );
    Ok(())
}
