//! Kafka clients as silkroute configures them: client settings, the consumer context that
//! feeds lag and rebalance metrics, topic creation and the wait for input topics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;
use tracing::{debug, info, warn};

use crate::blocking::{self, Blocking};
use crate::config::{Guarantee, Settings};
use crate::metrics::{Metrics, Rebalanced};
use crate::ownership::SharedAssignment;
use crate::retry::{Backoff, Cause, OperatorError};
use crate::shutdown::Shutdown;
use crate::timeouts;

/// Settings every client shares: brokers, client id, credentials, pass-through options.
pub fn base_config(settings: &Settings) -> ClientConfig {
    let k = &settings.kafka;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set("client.id", &k.client_id);
    for (key, value) in &k.librdkafka {
        c.set(key, value);
    }
    if !k.sasl_username.is_empty() {
        c.set("sasl.username", &k.sasl_username);
    }
    if !k.sasl_password.is_empty() {
        c.set("sasl.password", k.sasl_password.expose());
    }
    c
}

/// Records what a probe client's connection attempts ended in (authentication or TLS refused),
/// and keeps librdkafka's own reports of them out of the log: the start-up check says it once.
#[derive(Default)]
struct Probe {
    refused: std::sync::Mutex<Option<String>>,
}

impl rdkafka::producer::ProducerContext for Probe {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

impl ClientContext for Probe {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        debug!(?level, fac, message, "librdkafka (start-up check)");
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let what = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => "authentication failed",
            Some(RDKafkaErrorCode::SSL) => "TLS failed",
            _ => return,
        };
        let mut refused = self.refused.lock().expect("probe lock");
        refused.get_or_insert_with(|| format!("{what}: {reason}"));
    }
}

/// Kafka accepts silkroute's credentials and TLS settings: on a cluster with SASL or TLS, one
/// metadata request before anything else, so that a wrong password or CA stops the start with
/// one line (an unreachable cluster does not: the service waits for it further on).
pub async fn check_credentials(settings: &Settings) -> anyhow::Result<()> {
    let protocol = settings
        .kafka
        .librdkafka
        .get("security.protocol")
        .map(|p| p.to_ascii_lowercase())
        .unwrap_or_default();
    if !(protocol.starts_with("sasl") || protocol == "ssl") {
        return Ok(());
    }
    // A producer: its poll serves librdkafka's error events to the context.
    let probe: BaseProducer<Probe> = base_config(settings)
        .create_with_context(Probe::default())
        .context("creating a Kafka client")?;
    let refused = blocking::on_pool(move |_| {
        let started = std::time::Instant::now();
        while started.elapsed() < timeouts::CREDENTIAL_CHECK {
            let answered = probe
                .client()
                .fetch_metadata(None, timeouts::CREDENTIAL_PROBE)
                .is_ok();
            probe.poll(timeouts::CREDENTIAL_POLL);
            let refused = probe.context().refused.lock().expect("probe lock").take();
            if refused.is_some() || answered {
                return refused;
            }
        }
        None
    })
    .await
    .context("the start-up credential check")?;
    match refused {
        None => Ok(()),
        Some(reason) => anyhow::bail!(
            "Kafka refused the connection of kafka.sasl_username = {:?} ({reason}); check kafka.sasl_username, kafka.sasl_password and kafka.librdkafka",
            settings.kafka.sasl_username
        ),
    }
}

/// The group consumer of the input topics. Offsets are stored by the pipeline only after a
/// message's outcome is acknowledged, and committed from the stored ones.
pub fn consumer_config(settings: &Settings) -> ClientConfig {
    let mut c = base_config(settings);
    let exactly_once = settings.processing.guarantee == Guarantee::ExactlyOnce;
    c.set("group.id", &settings.kafka.group_id)
        // Exactly once commits offsets inside each transaction; at least once lets librdkafka
        // commit the offsets the pipeline stored after the acknowledgements.
        .set(
            "enable.auto.commit",
            if exactly_once { "false" } else { "true" },
        )
        // Never read what a transactional producer (upstream, or our own restore source) aborted.
        .set("isolation.level", "read_committed")
        .set("auto.commit.interval.ms", "250")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            settings.kafka.session_timeout.as_millis().to_string(),
        )
        .set("statistics.interval.ms", "5000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Bounded read-ahead: librdkafka's default prefetch (up to 64 MiB per partition) holds
        // a backfill in memory and lets one topic run far ahead of another (trade before fx).
        .set("queued.max.messages.kbytes", "4096")
        .set("queued.min.messages", "10000")
        // Once that bound is reached librdkafka postpones the next fetch by this much (1 s by
        // default): a backfill then stalls a second at every refill.
        .set("fetch.queue.backoff.ms", "5")
        // The bound is checked before a fetch, and one fetch may bring 1 MiB per partition,
        // compressed: small JSON events decompress several-fold. Smaller fetches keep the
        // read-ahead near its bound.
        .set("max.partition.fetch.bytes", "262144")
        .set("fetch.max.bytes", "1048576");
    c
}

/// A consumer that reads partitions by assignment, outside any group (restores).
pub fn reader_config(settings: &Settings) -> ClientConfig {
    let mut c = base_config(settings);
    // librdkafka needs a group.id to assign() and looks up that group's coordinator even
    // though a reader never joins or commits. The service's own group, whose Read ACL it has
    // already, costs no ACL of its own: a separate one needed Describe on it, and without it
    // logged GroupAuthorizationFailed while everything worked.
    c.set("group.id", &settings.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    c
}

/// The context of a reader that reads to each partition's end (`enable.partition.eof`):
/// librdkafka also reports every end reached as a client error, which rust-rdkafka's default
/// context logs at ERROR level. Reaching the end is what the reader is for.
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::PartitionEOF) => debug!(reason, "End of a partition."),
            _ => tracing::error!("librdkafka: {error}: {reason}"),
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// Where each partition's log ends: its high watermark, asked by a client that reads
/// uncommitted. A `read_committed` client is told the last stable offset instead, and Kafka
/// answers a transaction's commit once the decision is logged, writing the markers that make
/// its records readable some tens of milliseconds later (20-34 ms measured on 2026-12-06).
/// Read to the LSO, a takeover missed a transaction its previous owner had committed: its
/// events were missing from the state and its records from what Kafka holds, and the
/// takeover published again. Read to the high watermark by a `read_committed` reader, every
/// transaction written by then is waited for: committed, its records are read; aborted,
/// skipped (see [`Undecided`]).
pub struct LogEnds(BaseConsumer);

impl LogEnds {
    pub fn new(settings: &Settings) -> anyhow::Result<Arc<LogEnds>> {
        let client = base_config(settings)
            .set("isolation.level", "read_uncommitted")
            .create()
            .context("creating the client that asks where logs end")?;
        Ok(Arc::new(LogEnds(client)))
    }

    /// Low watermark and log end of every partition of `topic`, all within `within`.
    pub fn of(
        &self,
        b: &Blocking,
        topic: &str,
        partitions: i32,
        within: Duration,
    ) -> anyhow::Result<Vec<(String, i32, i64, i64)>> {
        watermarks(b, &self.0, &[(topic.to_string(), partitions)], within)
    }
}

/// Whether every `(partition, position)` of a `read_committed` reader of `topic` is at the
/// last stable offset it is told: there it waits for a transaction to be decided, not for a
/// broker to answer. A query that fails counts as no.
fn at_last_stable<C: Consumer<X>, X: ConsumerContext>(
    _: &Blocking,
    reader: &C,
    topic: &str,
    positions: &[(i32, i64)],
) -> bool {
    positions.iter().all(|&(p, at)| {
        matches!(reader.fetch_watermarks(topic, p, timeouts::LSO_CHECK), Ok((_, lso)) if at >= lso)
    })
}

/// A read to [`LogEnds`] that has stopped moving short of them. If its `read_committed`
/// reader stands at the last stable offset, it waits for a transaction: another instance's
/// is decided within its batch, the markers of a committed one follow within milliseconds,
/// and the open transaction of a producer that vanished is aborted by the broker after its
/// `transaction.timeout.ms` (15 s for ours, found by a check every 10 s by default). Past
/// [`Undecided::GIVE_UP`] such a read ends where it is, as a read to the last stable offset
/// would have. A reader short of the last stable offset waits for the broker instead, as
/// long as it takes: ending that read would leave the state incomplete.
#[derive(Debug)]
pub struct Undecided {
    what: &'static str,
    moved: u64,
    since: Instant,
    warned: bool,
}

/// What an idle read that has stood still is due to look at (see [`Undecided::due`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Long enough to say so, if a transaction is what it waits for.
    Warn,
    /// Long enough to give up, if a transaction is what it waits for.
    GiveUp,
}

impl Undecided {
    /// Long enough for the broker to abort a vanished producer's transaction (15 + 10 s),
    /// well short of the loop's liveness limit (`Lifecycle::STALL`).
    pub const GIVE_UP: Duration = Duration::from_secs(30);
    /// A wait longer than this is logged, with the partitions it is on.
    const WARN: Duration = Duration::from_secs(2);

    pub fn new(what: &'static str) -> Undecided {
        Undecided {
            what,
            moved: 0,
            since: Instant::now(),
            warned: false,
        }
    }

    /// Called when the read is idle, with a count that grows with each message read or
    /// position passed: what is due, if anything (then ask [`Undecided::give_up`]).
    pub fn due(&mut self, moved: u64) -> Option<Due> {
        self.due_at(Instant::now(), moved)
    }

    fn due_at(&mut self, now: Instant, moved: u64) -> Option<Due> {
        if moved != self.moved {
            (self.moved, self.since, self.warned) = (moved, now, false);
            return None;
        }
        let waited = now.saturating_duration_since(self.since);
        if waited >= Self::GIVE_UP {
            Some(Due::GiveUp)
        } else if waited >= Self::WARN && !self.warned {
            self.warned = true;
            Some(Due::Warn)
        } else {
            None
        }
    }

    /// After [`Undecided::due`]: true when the read gives up on `short` (its partitions and
    /// positions), which it does only where `reader` stands at the last stable offset.
    pub fn give_up<C: Consumer<X>, X: ConsumerContext>(
        &mut self,
        b: &Blocking,
        due: Due,
        reader: &C,
        topic: &str,
        short: &[(i32, i64)],
    ) -> bool {
        let held = at_last_stable(b, reader, topic, short);
        self.decide(due, held, short)
    }

    /// True when the read gives up on `short`, which `held` says stand at the last stable
    /// offset. Not held, the wait starts over.
    fn decide(&mut self, due: Due, held: bool, short: &[(i32, i64)]) -> bool {
        let partitions: Vec<i32> = short.iter().map(|s| s.0).collect();
        match (due, held) {
            (Due::Warn, true) => {
                warn!(what = self.what, ?partitions, "Waiting for a transaction on these partitions to be decided (a producer that stopped mid-transaction is aborted by the broker after its transaction.timeout.ms).");
                false
            }
            (Due::GiveUp, true) => {
                warn!(what = self.what, ?partitions, waited_s = Self::GIVE_UP.as_secs(), "A transaction on these partitions is still undecided; reading on without it. If it commits, its records are read then (find it with kafka-transactions.sh find-hanging).");
                true
            }
            (Due::Warn, false) => false,
            (Due::GiveUp, false) => {
                debug!(what = self.what, ?partitions, "A read stands still short of the last stable offset; waiting on for the broker.");
                (self.since, self.warned) = (Instant::now(), false);
                false
            }
        }
    }
}

/// The changelog reader: every partition by assignment, read_committed, bounded read-ahead.
pub fn table_config(settings: &Settings) -> ClientConfig {
    let mut c = reader_config(settings);
    c.set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", "8192")
        .set("queued.min.messages", "20000")
        .set("fetch.queue.backoff.ms", "5")
        // A fetch waits at the broker for data up to this long, and librdkafka keeps one fetch
        // in flight per broker: a long wait on quiet partitions delays the busy ones (seen at
        // 0.5-3 s in the backfill benchmark). The changelog is what indicators wait for.
        .set("fetch.wait.max.ms", "10")
        .set("max.partition.fetch.bytes", "262144")
        .set("fetch.max.bytes", "1048576");
    c
}

/// The output producer's transactional id under `exactly_once`.
pub fn transactional_id(settings: &Settings) -> String {
    format!(
        "silkroute-{}-{}",
        settings.kafka.group_id,
        settings.kafka.instance()
    )
}

pub fn producer_config(settings: &Settings) -> ClientConfig {
    let mut c = base_config(settings);
    if settings.processing.guarantee == Guarantee::ExactlyOnce {
        // One transactional id per instance: zombies of another member are fenced by the
        // group generation sent with the offsets (KIP-447), a restarted instance's predecessor
        // by the id it reuses. An instance that vanishes for good leaves its open transaction
        // to the broker's timeout, during which read_committed readers wait: keep it short.
        c.set("transactional.id", transactional_id(settings))
            .set("transaction.timeout.ms", "15000");
    } else {
        // A record not delivered in 30 s counts as failed and is sent again by the pipeline (up
        // to five times): a batch never blocks the poll loop for max.poll.interval.ms (5 min),
        // which librdkafka's default of 5 min per delivery could.
        c.set("message.timeout.ms", "30000");
    }
    c.set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .set("compression.type", "lz4")
        // Every record the pipeline writes fits (the largest is a dead letter cut to
        // limits.dead_letter_max_bytes): a record our own producer refuses would otherwise
        // stop the batch for good.
        .set(
            "message.max.bytes",
            producer_message_max_bytes(settings).to_string(),
        );
    c
}

/// The producer's `message.max.bytes`: room for the largest record silkroute writes, and no
/// less than librdkafka's default.
pub fn producer_message_max_bytes(settings: &Settings) -> usize {
    settings.record_max_bytes().max(1_000_000)
}

/// The `max.message.bytes` of the output topics silkroute creates: what the producer may send,
/// and no less than the broker's default (1 MiB + 12).
pub fn topic_max_message_bytes(settings: &Settings) -> usize {
    producer_message_max_bytes(settings).max(1_048_588)
}

/// Feeds librdkafka's statistics (lag per partition) into the metrics, and rebalances into the
/// metrics and the assignment the processing loop reads ownership from.
pub struct ServiceContext {
    pub metrics: Arc<Metrics>,
    pub input_topics: Vec<String>,
    pub assignment: SharedAssignment,
    /// Set when this session's consumer leaves the group to be replaced by the next session's
    /// (a restore): its partitions' lag stays exported meanwhile, so that a service that keeps
    /// restarting still shows its lag.
    pub leaving: std::sync::atomic::AtomicBool,
    /// The group, named by a group authorization failure of an offset commit.
    pub group: String,
}

/// `topic/partition` pairs, comma separated: one log line per rebalance, not one per
/// partition (a restore that repeats under a backoff repeats them all).
fn spelled(tpl: &TopicPartitionList) -> String {
    let parts: Vec<String> = tpl
        .elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect();
    parts.join(",")
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for ServiceContext {
    fn stats(&self, stats: Statistics) {
        // librdkafka keeps reporting partitions this member gave up in a rebalance, with the
        // offsets it had: their lag would show on two instances (and alert on a stale one).
        let held = self
            .assignment
            .lock()
            .expect("assignment lock")
            .partitions
            .clone();
        for (name, topic) in &stats.topics {
            if !self.input_topics.contains(name) {
                continue;
            }
            for (id, p) in &topic.partitions {
                if !held.iter().any(|(t, h)| t == name && h == id) {
                    continue;
                }
                // librdkafka's own lag counts from the consumer's committed offset, which it does
                // not know when offsets are committed through transactions (exactly_once): then
                // count from the position to the last stable offset (what read_committed can read).
                let lag = if p.consumer_lag >= 0 {
                    p.consumer_lag
                } else if p.app_offset >= 0 && p.ls_offset >= 0 {
                    (p.ls_offset - p.app_offset).max(0)
                } else {
                    continue;
                };
                self.metrics
                    .consumer_lag
                    .with_label_values(&[name, &id.to_string()])
                    .set(lag);
            }
        }
    }
}

impl ConsumerContext for ServiceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Exactly once, the batch before may still be committing on its own thread: what
            // it published of these partitions is committed before they go (see
            // `Committing`). The loop's thread would wait for that commit next anyway.
            if !self.assignment.committing.wait(timeouts::TRANSACTION) {
                warn!("A transaction was still committing when its partitions were revoked.");
            }
            // Runs inside the loop's poll, while a batch is taken (at least once, perhaps with
            // the one before in flight): the loop drops what it holds of these partitions
            // before it commits or settles either.
            self.assignment
                .lock()
                .expect("assignment lock")
                .revoke(partitions_of(tpl));
            self.assignment.notify();
            let leaving = self.leaving.load(std::sync::atomic::Ordering::SeqCst);
            for e in tpl.elements() {
                if !leaving {
                    let _ = self
                        .metrics
                        .consumer_lag
                        .remove_label_values(&[e.topic(), &e.partition().to_string()]);
                }
            }
            self.metrics.rebalanced(Rebalanced::Revoke, &spelled(tpl));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut a = self.assignment.lock().expect("assignment lock");
                a.assign(partitions_of(tpl));
                // The first assignment of a session: lag kept from the previous session for
                // partitions that went elsewhere is no longer this instance's.
                let held = a.partitions.clone();
                drop(a);
                self.assignment.notify();
                self.metrics
                    .retain_lag(|t, p| held.iter().any(|(ht, hp)| ht == t && *hp == p));
                self.metrics.rebalanced(Rebalanced::Assign, &spelled(tpl));
            }
            Rebalance::Error(e) => warn!(error = %e, "Rebalance failed."),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // "No offset stored" is the normal answer of an idle auto-commit.
            match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::NoOffset) => {}
                Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {
                    self.metrics.operator_error(
                        &OperatorError::new(Cause::GroupAuthorization, &self.group),
                        0,
                        // Retried at the next commit: the first backoff's delay, as reported.
                        crate::retry::BACKOFF_INITIAL,
                    );
                }
                _ => warn!(error = %e, "Offset commit failed; it is retried at the next commit."),
            }
        }
    }
}

/// Drops a client on a thread of its own; the receiver hears when it has closed (`None`: no
/// thread could be had, and the client was dropped here). Closing takes librdkafka about
/// 100 ms (a consumer with a `group.id` shuts its group handler down), which a start or a
/// takeover should not wait for; and a close that hangs on a gone broker
/// (fede1024/rust-rdkafka#509) then holds only that thread.
pub fn close_detached<T: Send + 'static>(client: T) -> Option<tokio::sync::oneshot::Receiver<()>> {
    let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(client);
            let _ = closed.send(());
        });
    spawned.ok().map(|_| on_closed)
}

/// Creates the output topics when missing: indicators and changelog compacted, dead letters
/// plain.
pub async fn create_output_topics(settings: &Settings) -> anyhow::Result<()> {
    let t = &settings.topics;
    let changelog = settings.changelog_topic();
    create_topics(
        settings,
        &[
            (&t.indicators, true),
            (&t.dead_letter, false),
            (&changelog, true),
        ],
    )
    .await
}

/// Creates `topics` (name, compacted) when missing, with `topics.partitions` and
/// `topics.replication_factor`.
pub async fn create_topics(settings: &Settings, topics: &[(&str, bool)]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(settings)
        .create()
        .context("creating the Kafka admin client")?;
    let t = &settings.topics;
    let max_message_bytes = topic_max_message_bytes(settings).to_string();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, compact)| {
            let topic = NewTopic::new(
                name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            )
            // Every record silkroute writes fits, dead letters cut to their limit included.
            .set("max.message.bytes", &max_message_bytes);
            if *compact {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeouts::KAFKA_REQUEST))
        .request_timeout(Some(timeouts::KAFKA_REQUEST));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .context("creating topics")?;
    for result in results {
        match result {
            Ok(name) => info!(topic = %name, "Topic created."),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(topic = %name, "Topic exists.")
            }
            Err((name, code)) => {
                let e = anyhow::anyhow!("cannot create topic {name}: {code} (create it yourself or set topics.create = false)");
                let _ = close_detached(admin);
                return Err(match OperatorError::of_code(code, &name) {
                    Some(op) => e.context(op),
                    None => e,
                });
            }
        }
    }
    let _ = close_detached(admin);
    Ok(())
}

/// Partition counts of `topics`, waiting (with a log line every so often) while any is missing.
pub async fn wait_for_topics(
    settings: &Settings,
    topics: &[&str],
    metrics: &Metrics,
    shutdown: &Shutdown,
) -> anyhow::Result<Vec<(String, i32)>> {
    // A new client's first metadata request waits until librdkafka connects to a broker it
    // learned from the bootstrap one (librdkafka 2.12 drops the bootstrap connection once it
    // knows the cluster's brokers), a connect it holds back by half of reconnect.backoff.ms
    // after its last one: 53 ms of a start in most runs against the bench broker, with the
    // default 100 ms. At 10 ms the hold is librdkafka's floor of 11 ms; the backoff still
    // doubles up to reconnect.backoff.max.ms while Kafka is down.
    let client: BaseConsumer = reader_config(settings)
        .set("reconnect.backoff.ms", "10")
        .create()
        .context("creating a metadata client")?;
    let mut waited = 0u32;
    let mut backoff = Backoff::new();
    loop {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let mut refused = None;
        for topic in topics {
            let md =
                blocking::run(|_| client.fetch_metadata(Some(topic), timeouts::TOPIC_METADATA));
            match md {
                Ok(md) => match md.topics().first() {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        found.push((topic.to_string(), t.partitions().len() as i32))
                    }
                    Some(t) => {
                        let code = t.error().map(RDKafkaErrorCode::from);
                        if let Some(op) = code
                            .and_then(|c| OperatorError::of_code(c, topic))
                            .filter(|op| op.cause != Cause::UnknownTopic)
                        {
                            refused = Some(op);
                        }
                        missing.push(*topic)
                    }
                    None => missing.push(*topic),
                },
                Err(e) => {
                    if waited % 10 == 0 {
                        warn!(error = %e, brokers = %settings.kafka.bootstrap_servers, "Kafka is not reachable yet; retrying.");
                    }
                    missing.push(*topic);
                }
            }
        }
        if missing.is_empty() {
            let _ = close_detached(client);
            return Ok(found);
        }
        let delay = match refused {
            // Not missing: refused. Reported at every attempt, with backoff.
            Some(op) => {
                let delay = backoff.next_delay();
                metrics.operator_error(&op, backoff.attempt(), delay);
                delay
            }
            None => {
                if waited % 10 == 0 {
                    warn!(topics = ?missing, "Topic does not exist yet; waiting for it (create it, or publish to it).");
                }
                timeouts::TOPIC_POLL
            }
        };
        waited += 1;
        // A stop does not wait out the delay.
        let mut stopped = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped.recv() => {}
        }
        if shutdown.is_shutdown() {
            anyhow::bail!("stopped while waiting for topics");
        }
    }
}

/// Low and high watermarks of every partition, all within `within`.
pub fn watermarks<C: Consumer<X>, X: ConsumerContext>(
    b: &Blocking,
    client: &C,
    topics: &[(String, i32)],
    within: Duration,
) -> anyhow::Result<Vec<(String, i32, i64, i64)>> {
    // One deadline for every query and retry: a 30 s timeout per query, retried 20 times per
    // partition, let a drain block for many minutes on a broker that was gone, far past
    // shutdown.timeout_ms (a blocking call is not cut short by the drain's async timeout).
    let deadline = std::time::Instant::now() + within;
    let mut out = Vec::new();
    for (topic, n) in topics {
        for p in 0..*n {
            // Right after a topic is created its partitions may not have a leader yet
            // (NotLeaderForPartition): retry until the deadline before giving up.
            let mut attempt = 0;
            let (lo, hi) = loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match client.fetch_watermarks(topic, p, left.max(Duration::from_millis(1))) {
                    Ok(marks) => break marks,
                    Err(e) if left > timeouts::LEADER_WAIT => {
                        attempt += 1;
                        debug!(error = %e, topic = %topic, partition = p, attempt, "End offsets not available yet; retrying.");
                        b.sleep(timeouts::LEADER_WAIT);
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("reading the end offsets of {topic}/{p}"))
                    }
                }
            };
            out.push((topic.clone(), p, lo, hi));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_gives_up_only_after_standing_still_that_long_at_an_undecided_transaction() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut undecided = Undecided::new("changelog");
        let short = [(2, 40)];
        assert_eq!(undecided.due_at(at(0), 10), None, "it moved");
        assert_eq!(undecided.due_at(at(1), 10), None);
        assert_eq!(undecided.due_at(at(2), 10), Some(Due::Warn));
        assert_eq!(undecided.due_at(at(3), 10), None, "warned once");
        // Moving again starts the wait over.
        assert_eq!(undecided.due_at(at(29), 11), None);
        assert_eq!(undecided.due_at(at(58), 11), Some(Due::Warn));
        assert_eq!(undecided.due_at(at(59), 11), Some(Due::GiveUp));
        assert!(
            undecided.decide(Due::GiveUp, true, &short),
            "held by a transaction"
        );
    }

    #[test]
    fn a_read_short_of_the_last_stable_offset_never_gives_up() {
        let start = Instant::now();
        let mut undecided = Undecided::new("changelog");
        undecided.due_at(start, 10);
        let due = undecided.due_at(start + Undecided::GIVE_UP, 10);
        assert_eq!(due, Some(Due::GiveUp));
        // The broker is away: not a transaction, so the read waits on, its wait started over.
        assert!(!undecided.decide(Due::GiveUp, false, &[(2, 40)]));
        assert_eq!(
            undecided.due_at(Instant::now() + Duration::from_secs(1), 10),
            None
        );
    }
}
