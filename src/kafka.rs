//! Kafka clients as silkroute configures them: client settings, the consumer context that
//! feeds lag and rebalance metrics, topic creation and the wait for input topics.

use std::sync::Arc;
use std::time::Duration;

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

use crate::config::{Guarantee, Settings};
use crate::metrics::Metrics;
use crate::ownership::SharedAssignment;

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
    let refused = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            let answered = probe
                .client()
                .fetch_metadata(None, Duration::from_secs(3))
                .is_ok();
            probe.poll(Duration::from_millis(100));
            let refused = probe.context().refused.lock().expect("probe lock").take();
            if refused.is_some() || answered {
                return refused;
            }
        }
        None
    })
    .await
    .context("the start-up check panicked")?;
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
            settings.kafka.session_timeout_ms.to_string(),
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
    c.set("group.id", format!("{}-reader", settings.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    c
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

pub fn producer_config(settings: &Settings) -> ClientConfig {
    let mut c = base_config(settings);
    if settings.processing.guarantee == Guarantee::ExactlyOnce {
        // One transactional id per instance: zombies of another member are fenced by the
        // group generation sent with the offsets (KIP-447), a restarted instance's predecessor
        // by the id it reuses. An instance that vanishes for good leaves its open transaction
        // to the broker's timeout, during which read_committed readers wait: keep it short.
        c.set(
            "transactional.id",
            format!(
                "silkroute-{}-{}",
                settings.kafka.group_id,
                settings.kafka.instance()
            ),
        )
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
        .set(
            "message.max.bytes",
            (settings.limits.max_message_bytes + 65_536)
                .max(1_000_000)
                .to_string(),
        );
    c
}

/// Feeds librdkafka's statistics (lag per partition) into the metrics, and rebalances into the
/// metrics and the assignment the processing loop reads ownership from.
pub struct ServiceContext {
    pub metrics: Arc<Metrics>,
    pub input_topics: Vec<String>,
    pub assignment: SharedAssignment,
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
            // Runs inside the loop's poll, between two batches: the loop drops what it holds of
            // these partitions before its next commit.
            self.assignment
                .lock()
                .expect("assignment lock")
                .revoke(partitions_of(tpl));
            self.metrics.rebalances.with_label_values(&["revoke"]).inc();
            for e in tpl.elements() {
                let _ = self
                    .metrics
                    .consumer_lag
                    .remove_label_values(&[e.topic(), &e.partition().to_string()]);
                info!(
                    topic = e.topic(),
                    partition = e.partition(),
                    "Partition revoked."
                );
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.assignment
                    .lock()
                    .expect("assignment lock")
                    .assign(partitions_of(tpl));
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                for e in tpl.elements() {
                    info!(
                        topic = e.topic(),
                        partition = e.partition(),
                        "Partition assigned."
                    );
                }
            }
            Rebalance::Error(e) => warn!(error = %e, "Rebalance failed."),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // "No offset stored" is the normal answer of an idle auto-commit.
            if !matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) {
                warn!(error = %e, "Offset commit failed; it is retried at the next commit.");
            }
        }
    }
}

/// The longest wait between two attempts at something an operator must fix (an ACL).
const OPERATOR_BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Creates the output topics when missing: indicators and changelog compacted, dead letters
/// plain. A topic this user may not create (no CREATE ACL) is an operator's to fix: one line
/// per attempt names it, with exponential backoff, until it is granted or `stop` says so.
pub async fn create_output_topics(
    settings: &Settings,
    mut stop: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let t = &settings.topics;
    let changelog = settings.changelog_topic();
    let topics = [
        (t.indicators.as_str(), true),
        (t.dead_letter.as_str(), false),
        (changelog.as_str(), true),
    ];
    let mut backoff = Duration::from_secs(1);
    loop {
        let refused = try_create_topics(settings, &topics).await?;
        let Some((name, code)) = refused.first() else {
            return Ok(());
        };
        let authorization = refused.iter().all(|(_, code)| {
            matches!(
                code,
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
            )
        });
        if !authorization {
            anyhow::bail!("cannot create topic {name}: {code} (create it yourself or set topics.create = false)");
        }
        for (name, _) in &refused {
            warn!(cause = "topic_authorization", operation = "CREATE", topic = %name, retry_in_s = backoff.as_secs(), "Not authorized to create the topic: grant CREATE on it, or create it and set topics.create = false; retrying.");
        }
        let until = tokio::time::Instant::now() + backoff;
        while tokio::time::Instant::now() < until {
            if stop() {
                anyhow::bail!("stopped while waiting to create the output topics");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        backoff = (backoff * 2).min(OPERATOR_BACKOFF_CAP);
    }
}

/// Creates `topics` (name, compacted) when missing, with `topics.partitions` and
/// `topics.replication_factor`.
pub async fn create_topics(settings: &Settings, topics: &[(&str, bool)]) -> anyhow::Result<()> {
    match try_create_topics(settings, topics).await?.first() {
        None => Ok(()),
        Some((name, code)) => anyhow::bail!(
            "cannot create topic {name}: {code} (create it yourself or set topics.create = false)"
        ),
    }
}

/// As [`create_topics`]; the topics Kafka refused to create, with the reason.
async fn try_create_topics(
    settings: &Settings,
    topics: &[(&str, bool)],
) -> anyhow::Result<Vec<(String, RDKafkaErrorCode)>> {
    let admin: AdminClient<DefaultClientContext> = base_config(settings)
        .create()
        .context("creating the Kafka admin client")?;
    let t = &settings.topics;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, compact)| {
            let topic = NewTopic::new(
                name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            );
            if *compact {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .context("creating topics")?;
    let mut refused = Vec::new();
    for result in results {
        match result {
            Ok(name) => info!(topic = %name, "Topic created."),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(topic = %name, "Topic exists.")
            }
            Err((name, code)) => refused.push((name, code)),
        }
    }
    Ok(refused)
}

/// Partition counts of `topics`, waiting (with a log line every so often) while any is missing.
pub async fn wait_for_topics(
    settings: &Settings,
    topics: &[&str],
    mut stop: impl FnMut() -> bool,
) -> anyhow::Result<Vec<(String, i32)>> {
    let client: BaseConsumer = reader_config(settings)
        .create()
        .context("creating a metadata client")?;
    let mut waited = 0u32;
    loop {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let mut denied = Vec::new();
        for topic in topics {
            let md = tokio::task::block_in_place(|| {
                client.fetch_metadata(Some(topic), Duration::from_secs(10))
            });
            match md {
                Ok(md) => match md.topics().first() {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        found.push((topic.to_string(), t.partitions().len() as i32))
                    }
                    Some(t)
                        if t.error().map(RDKafkaErrorCode::from)
                            == Some(RDKafkaErrorCode::TopicAuthorizationFailed) =>
                    {
                        denied.push(*topic)
                    }
                    _ => missing.push(*topic),
                },
                Err(e) => {
                    if waited % 10 == 0 {
                        warn!(error = %e, brokers = %settings.kafka.bootstrap_servers, "Kafka is not reachable yet; retrying.");
                    }
                    missing.push(*topic);
                }
            }
        }
        if missing.is_empty() && denied.is_empty() {
            return Ok(found);
        }
        if waited % 10 == 0 {
            for topic in &denied {
                warn!(cause = "topic_authorization", operation = "DESCRIBE", topic = %topic, "Not authorized to describe the topic: grant READ on it (READ includes DESCRIBE); waiting.");
            }
            if !missing.is_empty() {
                warn!(topics = ?missing, "Input topic does not exist yet; waiting for it (create it, or publish to it).");
            }
        }
        waited += 1;
        if stop() {
            anyhow::bail!("stopped while waiting for input topics");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `topic` has `partitions`: the list of all of them at `offset`.
pub fn all_partitions(topics: &[(String, i32)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (topic, n) in topics {
        for p in 0..*n {
            tpl.add_partition(topic, p);
        }
    }
    tpl
}

/// Low and high watermarks of every partition.
pub fn watermarks<C: Consumer<X>, X: ConsumerContext>(
    client: &C,
    topics: &[(String, i32)],
) -> anyhow::Result<Vec<(String, i32, i64, i64)>> {
    let mut out = Vec::new();
    for (topic, n) in topics {
        for p in 0..*n {
            // Right after a topic is created its partitions may not have a leader yet
            // (NotLeaderForPartition): retry for a while before giving up.
            let mut attempt = 0;
            let (lo, hi) = loop {
                match client.fetch_watermarks(topic, p, Duration::from_secs(30)) {
                    Ok(marks) => break marks,
                    Err(e) if attempt < 20 => {
                        attempt += 1;
                        debug!(error = %e, topic = %topic, partition = p, attempt, "End offsets not available yet; retrying.");
                        std::thread::sleep(Duration::from_millis(250));
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
