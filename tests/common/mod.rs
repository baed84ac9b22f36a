//! Test harness: a broker (librdkafka's mock cluster, or the real Kafka named by
//! SILKROUTE_TEST_BOOTSTRAP), fresh topic and group names per test, and helpers to produce,
//! read topics to their end, and wait for the service.
#![allow(dead_code)]

pub mod bulletin;
// Drives the binary from threads of its own: the blocking boundary (clippy.toml) is the
// service's rule.
#[allow(clippy::disallowed_methods)]
pub mod process;
#[allow(unused_imports)]
pub use bulletin::{assert_bulletin, key_of};
#[allow(unused_imports)]
pub use process::ServiceProcess;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::Value;
use silkroute::config::Settings;

pub struct Broker {
    pub bootstrap: String,
    /// librdkafka options of the test's own clients (admin, producers, readers): the
    /// `key=value` lines of the file SILKROUTE_TEST_KAFKA_CONFIG names (a secure broker's admin
    /// credentials, scripts/kafka.sh writes them), applied after `bootstrap.servers`.
    pub options: Vec<(String, String)>,
    /// Kept alive for the test's duration; not Send, so tests hold it on their own thread.
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

/// `key=value` lines (blank lines and `#` comments skipped).
pub fn read_properties(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{path}: {l}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

impl Broker {
    pub fn start() -> Broker {
        if std::env::var("TEST_LOG").is_ok() {
            silkroute::telemetry::init(silkroute::config::LogFormat::Text);
        }
        match std::env::var("SILKROUTE_TEST_BOOTSTRAP") {
            Ok(b) if !b.is_empty() => Broker {
                bootstrap: b,
                options: match std::env::var("SILKROUTE_TEST_KAFKA_CONFIG") {
                    Ok(path) if !path.is_empty() => read_properties(&path)
                        .into_iter()
                        .filter(|(k, _)| k != "bootstrap.servers")
                        .collect(),
                    _ => Vec::new(),
                },
                mock: None,
            },
            _ => {
                let mock = MockCluster::new(1).expect("mock cluster");
                Broker {
                    bootstrap: mock.bootstrap_servers(),
                    options: Vec::new(),
                    mock: Some(mock),
                }
            }
        }
    }

    pub fn is_real(&self) -> bool {
        self.mock.is_none()
    }

    /// Creates topics (the mock only supports its own call; the real broker gets CreateTopics).
    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        match &self.mock {
            Some(m) => {
                for (t, p) in topics {
                    m.create_topic(t, *p, 1).expect("mock topic");
                }
            }
            None => {
                let admin: AdminClient<DefaultClientContext> =
                    self.config().create().expect("admin");
                let new: Vec<NewTopic> = topics
                    .iter()
                    .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
                    .collect();
                for r in admin
                    .create_topics(&new, &AdminOptions::new())
                    .await
                    .expect("create topics")
                {
                    r.expect("topic created");
                }
            }
        }
    }

    /// [`Broker::create_topics`] with topic configs such as `max.message.bytes` (the mock
    /// takes none: it enforces no size limit of its own).
    pub async fn create_topics_with(&self, topics: &[(&str, i32)], config: &[(&str, &str)]) {
        if self.mock.is_some() {
            return self.create_topics(topics).await;
        }
        let admin: AdminClient<DefaultClientContext> = self.config().create().expect("admin");
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(t, p)| {
                config.iter().fold(
                    NewTopic::new(t, *p, TopicReplication::Fixed(1)),
                    |topic, (k, v)| topic.set(k, v),
                )
            })
            .collect();
        for r in admin
            .create_topics(&new, &AdminOptions::new())
            .await
            .expect("create topics")
        {
            r.expect("topic created");
        }
    }

    /// Produces `messages` in order, as a hostile producer may: any key bytes, null values,
    /// headers, values up to 16 MiB.
    pub async fn produce_raw(&self, topic: &str, messages: &[Raw]) {
        let producer: FutureProducer = self
            .config()
            .set("message.max.bytes", (16 << 20).to_string())
            .create()
            .expect("producer");
        for m in messages {
            let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = &m.key {
                r = r.key(k.as_slice());
            }
            if let Some(v) = &m.value {
                r = r.payload(v.as_slice());
            }
            if !m.headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(m.headers.len());
                for (k, v) in &m.headers {
                    h = h.insert(Header {
                        key: k.as_str(),
                        value: Some(v.as_slice()),
                    });
                }
                r = r.headers(h);
            }
            producer
                .send(r, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .expect("produced");
        }
    }

    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }

    pub fn producer(&self) -> FutureProducer {
        self.config()
            .set("linger.ms", "5")
            .create()
            .expect("producer")
    }

    pub async fn produce(&self, topic: &str, messages: &[(Option<&str>, &[u8])]) {
        let producer = self.producer();
        for chunk in messages.chunks(2000) {
            let futures = chunk.iter().map(|(k, v)| {
                let mut r: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(v);
                if let Some(k) = k {
                    r = r.key(k);
                }
                producer.send(r, Duration::from_secs(30))
            });
            for r in futures::future::join_all(futures).await {
                r.expect("produced");
            }
        }
    }

    /// Every message of `topic` from the beginning to its current end, as a read_committed
    /// consumer sees it: what was written so far, its transactions decided (see `read_from`).
    pub fn read_all(&self, topic: &str) -> Vec<Msg> {
        self.read_from(topic, 0)
    }

    /// Messages of `topic` that are not in `seen` (an earlier read).
    pub fn read_after(&self, topic: &str, seen: &[Msg]) -> Vec<Msg> {
        let old: std::collections::HashSet<(i32, i64)> =
            seen.iter().map(|m| (m.partition, m.offset)).collect();
        self.read_all(topic)
            .into_iter()
            .filter(|m| !old.contains(&(m.partition, m.offset)))
            .collect()
    }

    /// Reads `topic` read_committed up to what was committed as of the call.
    ///
    /// A read_committed client is told the last stable offset (LSO) as a partition's end.
    /// Kafka answers a transaction's commit once the decision is logged and writes its markers
    /// to the partitions after that, so a transaction the service committed (and counted as
    /// processed) can hold the LSO back for tens of milliseconds (20-34 ms measured): a read to
    /// that LSO missed it whole, and the bulletin test found no record on whole partitions. So
    /// each partition's end is its LSO once that has reached the log end (the high watermark,
    /// asked by a read_uncommitted client) as of the call, waited for up to `MARKER_GRACE`.
    /// A transaction still open after that (a producer SIGKILLed mid-transaction, which only
    /// the broker's timeout aborts) is not committed, so the read ends before it, as a
    /// read_committed consumer would.
    #[allow(clippy::disallowed_methods)] // the test's own thread (clippy.toml is the service's rule)
    fn read_from(&self, topic: &str, skip: usize) -> Vec<Msg> {
        let reader: BaseConsumer = self
            .config()
            .set("group.id", format!("reader-{}", unique()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        // The end offsets, asked by a client that is told the high watermark.
        let log_ends: BaseConsumer = self
            .config()
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("end-offsets client");
        let md = reader
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = md.topics()[0].partitions().len() as i32;
        /// Far above the marker window (tens of ms), far below a transaction timeout (15 s).
        const MARKER_GRACE: Duration = Duration::from_secs(2);
        let mut tpl = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for p in 0..partitions {
            let (_, log_end) = log_ends
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            let grace = Instant::now() + MARKER_GRACE;
            let (lo, hi) = loop {
                let (lo, stable) = reader
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks");
                if stable >= log_end || Instant::now() >= grace {
                    break (lo, stable);
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if hi > lo {
                tpl.add_partition_offset(topic, p, Offset::Offset(lo))
                    .unwrap();
                ends.insert(p, hi);
            }
        }
        let mut out = Vec::new();
        if ends.is_empty() {
            return out;
        }
        reader.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ends.is_empty() && Instant::now() < deadline {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_string(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Msg {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                    partition: m.partition(),
                    offset: m.offset(),
                });
            }
            if let Ok(pos) = reader.position() {
                for e in pos.elements() {
                    if let (Offset::Offset(o), Some(&end)) = (e.offset(), ends.get(&e.partition()))
                    {
                        if o >= end {
                            ends.remove(&e.partition());
                        }
                    }
                }
            }
        }
        assert!(
            ends.is_empty(),
            "could not read {topic} to its end within 60 s (partitions {:?} left)",
            ends.keys().collect::<Vec<_>>()
        );
        out.sort_by_key(|m| (m.partition, m.offset));
        out.into_iter().skip(skip).collect()
    }
}

/// A message to produce as it is, whatever it holds.
#[derive(Clone, Debug, Default)]
pub struct Raw {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Raw {
    pub fn value(key: &[u8], value: impl Into<Vec<u8>>) -> Raw {
        Raw {
            key: Some(key.to_vec()),
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Msg {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub partition: i32,
    pub offset: i64,
}

impl Msg {
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(self.value.as_deref().expect("value")).expect("json value")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.0 == name)
            .map(|h| h.1.as_str())
    }
}

pub fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        Instant::now().elapsed().subsec_nanos()
    )
}

/// The processing mode under test: SILKROUTE_TEST_GUARANTEE on the real broker (default
/// exactly_once, the service's default); at_least_once on the mock cluster, which does not
/// return offsets committed inside transactions to OffsetFetch.
pub fn guarantee(broker: &Broker) -> &'static str {
    match (
        broker.is_real(),
        std::env::var("SILKROUTE_TEST_GUARANTEE").as_deref(),
    ) {
        (false, _) => "at_least_once",
        (true, Ok("at_least_once")) => "at_least_once",
        (true, _) => "exactly_once",
    }
}

/// Fresh topic and group names for one test.
#[derive(Clone, Debug)]
pub struct Names {
    pub trade: String,
    pub freight: String,
    pub fx: String,
    pub indicators: String,
    pub dead_letter: String,
    pub group: String,
}

impl Names {
    pub fn fresh() -> Names {
        let u = unique();
        Names {
            trade: format!("trade-{u}"),
            freight: format!("freight-{u}"),
            fx: format!("fx-{u}"),
            indicators: format!("indicators-{u}"),
            dead_letter: format!("dlq-{u}"),
            group: format!("group-{u}"),
        }
    }

    pub fn env(&self, broker: &Broker) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            (
                "SILKROUTE__KAFKA__BOOTSTRAP_SERVERS",
                broker.bootstrap.as_str(),
            ),
            ("SILKROUTE__KAFKA__GROUP_ID", &self.group),
            ("SILKROUTE__TOPICS__TRADE", &self.trade),
            ("SILKROUTE__TOPICS__FREIGHT", &self.freight),
            ("SILKROUTE__TOPICS__FX", &self.fx),
            ("SILKROUTE__TOPICS__INDICATORS", &self.indicators),
            ("SILKROUTE__TOPICS__DEAD_LETTER", &self.dead_letter),
            ("SILKROUTE__HTTP__LISTEN", "127.0.0.1:0"),
            ("SILKROUTE__SHUTDOWN__TIMEOUT_MS", "15000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        v.push((
            "SILKROUTE__PROCESSING__GUARANTEE".into(),
            guarantee(broker).into(),
        ));
        if !broker.is_real() {
            // The mock answers no CreateTopics: tests create every topic themselves.
            v.push(("SILKROUTE__TOPICS__CREATE".into(), "false".into()));
        } else {
            v.push(("SILKROUTE__TOPICS__PARTITIONS".into(), "3".into()));
            v.push(("SILKROUTE__TOPICS__REPLICATION_FACTOR".into(), "1".into()));
        }
        v
    }

    pub fn settings(&self, broker: &Broker, extra: &[(&str, &str)]) -> Settings {
        let mut env = self.env(broker);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Settings::load_from(None, env).expect("test settings")
    }

    /// Input topics (trade and freight 3 partitions, fx 1) and, on the mock, the outputs too.
    pub async fn create(&self, broker: &Broker) {
        self.create_sized(broker, [3, 3, 1]).await
    }

    /// [`Names::create`] with these partition counts for trade, freight and fx.
    pub async fn create_sized(&self, broker: &Broker, inputs: [i32; 3]) {
        let [trade, freight, fx] = inputs;
        broker
            .create_topics(&[
                (&self.trade, trade),
                (&self.freight, freight),
                (&self.fx, fx),
            ])
            .await;
        if !broker.is_real() {
            broker
                .create_topics(&[
                    (&self.indicators, 3),
                    (&self.dead_letter, 1),
                    (&format!("{}-cells-changelog", self.group), 3),
                ])
                .await;
        }
    }

    pub fn topic_for(&self, event: &Value) -> &str {
        match event["type"].as_str() {
            Some("freight_trains") => &self.freight,
            Some("fx_rate") => &self.fx,
            _ => &self.trade,
        }
    }
}

/// The monthly sample events (as JSON lines), in file order.
pub fn sample_lines() -> Vec<String> {
    lines_of(silkroute::demo::SAMPLE)
}

/// The release-shaped sample events (data/releases), in file order.
pub fn release_lines() -> Vec<String> {
    lines_of(silkroute::demo::RELEASES)
}

fn lines_of(files: [(&str, &str); 3]) -> Vec<String> {
    let mut lines = Vec::new();
    for (_, text) in files {
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    lines
}

/// A deterministic shuffle (xorshift), so failures reproduce.
pub fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

/// A message to publish: optional key, value bytes.
type KeyedBytes = (Option<String>, Vec<u8>);

/// Opt-in samples for the contract check (`scripts/ci/contract.sh`): with
/// `SILKROUTE_CONTRACT_SAMPLES=<dir>`, appends each JSON line not written before by this
/// process to `<dir>/<file>.jsonl`, so that docs/schema/ can be checked against every event
/// the tests publish and every record (with its key) they read back or derive offline.
fn contract_samples(file: &str, lines: impl IntoIterator<Item = impl AsRef<[u8]>>) {
    let Some(dir) = std::env::var_os("SILKROUTE_CONTRACT_SAMPLES") else {
        return;
    };
    static SEEN: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Mutex::default).lock().unwrap();
    let mut out = Vec::new();
    for line in lines {
        let line = line.as_ref();
        let mut h = DefaultHasher::new();
        (file, line).hash(&mut h);
        if seen.insert(h.finish()) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    std::fs::create_dir_all(&dir).expect("contract samples dir");
    let path = std::path::Path::new(&dir).join(format!("{file}.jsonl"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&out))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A record line for [`contract_samples`]: `{"key":…,"record":…}`.
fn keyed_record(key: &str, record: &[u8]) -> Vec<u8> {
    let mut line = br#"{"key":"#.to_vec();
    line.extend_from_slice(&serde_json::to_vec(key).expect("a string"));
    line.extend_from_slice(br#","record":"#);
    line.extend_from_slice(record);
    line.push(b'}');
    line
}

pub fn parse_rules() -> silkroute::event::ParseRules {
    silkroute::event::ParseRules {
        max_message_bytes: 1 << 20,
        current_month: silkroute::clock::current_utc_month(),
    }
}

/// Publishes JSON lines to their input topics, keyed as the contract asks.
pub async fn publish_lines(broker: &Broker, names: &Names, lines: &[String]) {
    let (valid, refused): (Vec<&String>, Vec<&String>) = lines
        .iter()
        .partition(|l| silkroute::event::parse(l.as_bytes(), &parse_rules()).is_ok());
    contract_samples("events", &valid);
    contract_samples("refused-events", &refused);
    let mut by_topic: BTreeMap<String, Vec<KeyedBytes>> = BTreeMap::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("sample line");
        let key = ["region", "port", "currency"]
            .iter()
            .find_map(|f| v[*f].as_str())
            .map(String::from);
        by_topic
            .entry(names.topic_for(&v).to_string())
            .or_default()
            .push((key, line.as_bytes().to_vec()));
    }
    for (topic, msgs) in by_topic {
        let refs: Vec<(Option<&str>, &[u8])> = msgs
            .iter()
            .map(|(k, v)| (k.as_deref(), v.as_slice()))
            .collect();
        broker.produce(&topic, &refs).await;
    }
}

/// Waits until `cond` holds, or panics after `secs`.
pub async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages whose outcome (record, dead letter, or ignore) Kafka acknowledged.
pub fn processed(h: &silkroute::service::ServiceHandle) -> u64 {
    h.metrics.processing_duration.get_sample_count()
}

/// Last value per key, and the keys that were published twice in a row with equal content.
pub fn compact(msgs: &[Msg]) -> (BTreeMap<String, Value>, Vec<String>) {
    contract_samples(
        "records",
        msgs.iter()
            .filter_map(|m| Some(keyed_record(&m.key_str(), m.value.as_deref()?))),
    );
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    let mut repeats = Vec::new();
    for m in msgs {
        let v = m.json();
        let k = m.key_str();
        if last.get(&k) == Some(&v) {
            repeats.push(k.clone());
        }
        last.insert(k, v);
    }
    (last, repeats)
}

/// The offline engine (default settings) with the valid events of `lines` applied.
fn offline_engine(lines: &[String]) -> silkroute::engine::Engine {
    let mut engine = silkroute::engine::Engine::new(silkroute::engine::EngineSettings::default());
    let rules = parse_rules();
    for l in lines {
        if let Ok(e) = silkroute::event::parse(l.as_bytes(), &rules) {
            engine.apply(&e);
        }
    }
    engine
}

/// The records the offline engine derives from `lines`: each key and its value, byte for byte
/// as the service publishes it.
pub fn offline_record_bytes(lines: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut engine = offline_engine(lines);
    engine.discard_changes();
    engine
        .records()
        .into_iter()
        .map(|r| (r.key(), r.to_json()))
        .collect()
}

/// The records the offline engine derives from `lines`, by key (the reference a service run
/// must equal).
pub fn offline_records(lines: &[String]) -> BTreeMap<String, Value> {
    let json = offline_record_bytes(lines);
    contract_samples("records", json.iter().map(|(k, j)| keyed_record(k, j)));
    json.into_iter()
        .map(|(k, j)| (k, serde_json::from_slice(&j).unwrap()))
        .collect()
}

/// The number of cells the offline engine holds after `lines`.
pub fn offline_cells(lines: &[String]) -> i64 {
    offline_engine(lines).cells() as i64
}

/// Asserts two record sets are equal, reporting the first differing keys rather than both sets.
pub fn assert_same_records(
    actual: &BTreeMap<String, Value>,
    expected: &BTreeMap<String, Value>,
    what: &str,
) {
    let mut diffs = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!("missing {k}")),
            Some(a) if a != v => diffs.push(format!("{k}:\n  got      {a}\n  expected {v}")),
            _ => {}
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        diffs.push(format!("unexpected {k}"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences, first:\n{}",
        diffs.len(),
        diffs.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// 20 regions × 24 months × import/export × (total + 60 members) ≈ 58k events: about twice
/// what the mock cluster keeps per partition.
pub fn volume_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for month in 0..24 {
        let period = format!("{}-{:02}", 2023 + month / 12, month % 12 + 1);
        for r in 0..20 {
            for flow in ["import", "export"] {
                for m in 0..61 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let fen = 1_000_000 + seed % 9_000_000_000;
                    let value = format!("{}.{:02}", fen / 100, fen % 100);
                    let line = if m == 0 {
                        format!(
                            r#"{{"type":"customs_trade","region":"R{r:02}","period":"{period}","flow":"{flow}","dimension":"total","value_cny":"{value}"}}"#
                        )
                    } else {
                        format!(
                            r#"{{"type":"customs_trade","region":"R{r:02}","period":"{period}","flow":"{flow}","dimension":"partner_country","member":"P{m:03}","value_cny":"{value}"}}"#
                        )
                    };
                    lines.push(line);
                }
            }
        }
        lines.push(format!(
            r#"{{"type":"fx_rate","currency":"USD","period":"{period}","cny_per_unit":"7.{:04}"}}"#,
            1000 + month * 37
        ));
    }
    lines
}

/// The offset `group` committed on `topic`/`partition` (0 when none).
pub fn committed_offset(broker: &Broker, group: &str, topic: &str, partition: i32) -> i64 {
    let c: BaseConsumer = broker
        .config()
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let done = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    match done.elements().first().map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        _ => 0,
    }
}

/// True when the group's committed offsets reach the end of every input partition.
pub fn all_committed(broker: &Broker, names: &Names) -> bool {
    let c: BaseConsumer = broker
        .config()
        .set("group.id", &names.group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (t, n) in [(&names.trade, 3), (&names.freight, 3), (&names.fx, 1)] {
        for p in 0..n {
            tpl.add_partition(t, p);
        }
    }
    let Ok(done) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return false;
    };
    done.elements().iter().all(|e| {
        let hi = c
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
            .map(|w| w.1)
            .unwrap_or(i64::MAX);
        match e.offset() {
            Offset::Offset(o) => o >= hi,
            _ => hi == 0,
        }
    })
}

/// One service under test, with its broker and fresh topic names (zero-to-production's
/// `TestApp`): the set-up the end-to-end tests would otherwise each repeat.
pub struct TestService {
    pub broker: Broker,
    pub names: Names,
    pub handle: silkroute::service::ServiceHandle,
}

impl TestService {
    /// A broker (the mock cluster, or the real one the environment names) and fresh topics,
    /// created; the service not started yet.
    pub async fn topics() -> (Broker, Names) {
        let broker = Broker::start();
        let names = Names::fresh();
        names.create(&broker).await;
        (broker, names)
    }

    /// Fresh topics holding `lines`, then the service started on them with `extra` settings.
    pub async fn start(lines: &[String], extra: &[(&str, &str)]) -> TestService {
        let (broker, names) = TestService::topics().await;
        publish_lines(&broker, &names, lines).await;
        TestService::start_on(broker, names, extra).await
    }

    /// The service started on `names` as they are (created or not, holding what they hold).
    pub async fn start_on(broker: Broker, names: Names, extra: &[(&str, &str)]) -> TestService {
        let handle = silkroute::service::start(names.settings(&broker, extra))
            .await
            .expect("the service starts");
        TestService {
            broker,
            names,
            handle,
        }
    }

    /// Publishes JSON lines to their input topics, keyed as the contract asks.
    pub async fn publish(&self, lines: &[String]) {
        publish_lines(&self.broker, &self.names, lines).await;
    }

    /// Messages whose outcome Kafka acknowledged, since start.
    pub fn processed(&self) -> u64 {
        processed(&self.handle)
    }

    /// Waits until `n` messages were processed, or panics after `secs`.
    pub async fn wait_processed(&self, what: &str, n: u64, secs: u64) {
        eventually(what, secs, || self.processed() == n).await;
    }

    /// Waits until `n` messages were processed and the service is ready.
    pub async fn wait_ready_after(&self, what: &str, n: u64, secs: u64) {
        eventually(what, secs, || {
            self.processed() == n && self.handle.lifecycle.is_ready()
        })
        .await;
    }

    /// Everything on the indicators topic, in order.
    pub fn indicators(&self) -> Vec<Msg> {
        self.broker.read_all(&self.names.indicators)
    }

    /// The indicators topic compacted: last value per key, and the keys published twice in a
    /// row with equal content.
    pub fn compacted(&self) -> (BTreeMap<String, Value>, Vec<String>) {
        compact(&self.indicators())
    }

    /// What a Prometheus scrape of the service reads.
    pub fn scrape(&self) -> String {
        String::from_utf8(self.handle.metrics.render()).expect("the exposition is UTF-8")
    }

    /// Graceful stop, which must succeed; the broker and names stay for a restart.
    pub async fn stop(self) -> (Broker, Names) {
        self.handle.stop().await.expect("a graceful stop");
        (self.broker, self.names)
    }
}
