//! Settings: `config/default.toml` (compiled in), then `--config FILE`, then
//! `SILKROUTE__SECTION__KEY` environment variables.
//!
//! Loading either yields a complete, checked [`Settings`] or one line naming the offending key,
//! before anything connects anywhere.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::engine::EngineSettings;

/// The checked-in defaults, built into the binary so that it runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: TopicSettings,
    pub http: HttpSettings,
    pub freight: FreightSettings,
    pub ranking: RankingSettings,
    pub limits: LimitSettings,
    pub processing: ProcessingSettings,
    pub log: LogSettings,
    pub shutdown: ShutdownSettings,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub client_id: String,
    pub instance_id: String,
    #[serde(rename = "session_timeout_ms", deserialize_with = "millis")]
    pub session_timeout: Duration,
    pub sasl_username: String,
    pub sasl_password: Secret,
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

/// A credential: read from the configuration like a string, handed to librdkafka with
/// [`Secret::expose`], and never shown: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that must pass it on (the Kafka client config).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// librdkafka options whose values are credentials (`sasl.password`, `ssl.key.password`,
/// `sasl.jaas.config`, `sasl.oauthbearer.client.secret`, ...): redacted in `Debug`.
fn is_sensitive_option(key: &str) -> bool {
    ["password", "secret", "jaas", "ssl.key.pem", "credentials"]
        .iter()
        .any(|word| key.contains(word))
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let librdkafka: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                let shown = if is_sensitive_option(k) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("client_id", &self.client_id)
            .field("instance_id", &self.instance_id)
            .field("session_timeout", &self.session_timeout)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password)
            .field("librdkafka", &librdkafka)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    pub trade: String,
    pub freight: String,
    pub fx: String,
    pub indicators: String,
    pub dead_letter: String,
    pub changelog: String,
    pub create: bool,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl TopicSettings {
    pub fn inputs(&self) -> [&str; 3] {
        [&self.trade, &self.freight, &self.fx]
    }
}

impl KafkaSettings {
    /// This instance's name within the group, part of its transactional id: `instance_id`, or
    /// the host name and process id. A restarted instance that keeps its name (a pod keeps its
    /// host name across container restarts) fences its predecessor's open transaction at once.
    pub fn instance(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|| "silkroute".into());
        format!("{host}-{}", std::process::id())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreightSettings {
    pub streak_threshold: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankingSettings {
    pub exclude_regions: Vec<String>,
    pub top_n: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_message_bytes: usize,
    /// A dead letter keeps at most this many bytes of its value (contract §2).
    pub dead_letter_max_bytes: usize,
}

/// A dead letter keeps at most this many bytes of its key (contract §2).
pub const DEAD_LETTER_KEY_MAX_BYTES: usize = 1024;
/// Room for a dead letter's headers: names, reason, a detail line (bounded by the pipeline),
/// the source topic (≤ 249), partition, offset, and the original's length and SHA-256.
pub const DEAD_LETTER_HEADERS_MAX_BYTES: usize = 2048;
/// Room per `trade_leaders` entry (two lists of `ranking.top_n` members, each member up to 64
/// characters, JSON-escaped) and for every other record silkroute writes (changelog records
/// are at most [`crate::event::CANONICAL_MAX_BYTES`] plus key and header).
const RECORD_PER_LEADER_BYTES: usize = 1024;
const SMALL_RECORD_BYTES: usize = 4096;
/// Kafka's record batch framing around one record.
const RECORD_OVERHEAD_BYTES: usize = 1024;
/// librdkafka's largest `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000_000;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Offsets stored after the batch's records are acknowledged; a crash may repeat a batch.
    AtLeastOnce,
    /// The batch's records, dead letters and offsets commit in one Kafka transaction.
    ExactlyOnce,
}

/// How the changelog's values are written. Both forms are read, whatever this says.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangelogFormat {
    /// A version byte, fixed-width numbers, length-prefixed names (`event/compact.rs`).
    Compact,
    /// Each event's canonical JSON, the only form versions before the compact one read: for
    /// the first roll of a rolling upgrade from such a version (docs/operations.md).
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingSettings {
    pub guarantee: Guarantee,
    pub batch_max_messages: usize,
    #[serde(rename = "batch_max_wait_ms", deserialize_with = "millis")]
    pub batch_max_wait: Duration,
    pub changelog_format: ChangelogFormat,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    #[serde(rename = "timeout_ms", deserialize_with = "millis")]
    pub timeout: Duration,
}

/// A `*_ms` key: whole milliseconds, held as the `Duration` every use wants.
fn millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// `http.listen`: parsed once here, so that binding cannot meet a bad address.
fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!("{text:?} is not an address such as 0.0.0.0:9464"))
    })
}

/// A configuration problem, always one line naming the key where there is one.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads defaults, the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (tests need not touch the process's).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SILKROUTE__"))
            .collect();
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("SILKROUTE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("ranking.exclude_regions")
                .source(Some(env)),
        );
        let merged = builder.build().map_err(one_line)?;
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(at_key)?;
        settings.check()?;
        Ok(settings)
    }

    /// Rules across or inside fields that types alone do not express.
    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        if self
            .kafka
            .bootstrap_servers
            .split(',')
            .all(|s| s.trim().is_empty())
        {
            return bad(
                "kafka.bootstrap_servers",
                "must list at least one host:port",
            );
        }
        if let Some(s) = self
            .kafka
            .bootstrap_servers
            .split(',')
            .find(|s| !s.trim().contains(':'))
        {
            return bad(
                "kafka.bootstrap_servers",
                &format!("{:?} is not host:port", s.trim()),
            );
        }
        if self.kafka.group_id.trim().is_empty() {
            return bad("kafka.group_id", "must not be empty");
        }
        let topics = [
            ("topics.trade", &self.topics.trade),
            ("topics.freight", &self.topics.freight),
            ("topics.fx", &self.topics.fx),
            ("topics.indicators", &self.topics.indicators),
            ("topics.dead_letter", &self.topics.dead_letter),
            ("topics.changelog", &self.changelog_topic()),
        ];
        for (key, name) in topics {
            let valid = !name.is_empty()
                && name.len() <= 249
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                return bad(key, &format!("{name:?} is not a valid Kafka topic name"));
            }
        }
        for (key, name) in &topics[3..] {
            if self.topics.inputs().contains(&name.as_str()) {
                return bad(key, "must differ from the input topics");
            }
        }
        if self.topics.indicators == self.topics.dead_letter {
            return bad("topics.dead_letter", "must differ from topics.indicators");
        }
        if [&self.topics.indicators, &self.topics.dead_letter].contains(&&self.changelog_topic()) {
            return bad(
                "topics.changelog",
                "must differ from topics.indicators and topics.dead_letter",
            );
        }
        if !self
            .kafka
            .instance_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return bad("kafka.instance_id", "may hold only A-Z a-z 0-9 . _ -");
        }
        if self.topics.partitions == 0 || self.topics.partitions < -1 {
            return bad(
                "topics.partitions",
                "must be positive, or -1 for the broker default",
            );
        }
        if self.topics.replication_factor == 0 || self.topics.replication_factor < -1 {
            return bad(
                "topics.replication_factor",
                "must be positive, or -1 for the broker default",
            );
        }
        if self.ranking.top_n == 0 {
            return bad("ranking.top_n", "must be at least 1");
        }
        if self.limits.max_message_bytes == 0 {
            return bad("limits.max_message_bytes", "must be at least 1");
        }
        let limit = LIBRDKAFKA_MESSAGE_MAX_BYTES - RECORD_OVERHEAD_BYTES;
        if self.limits.dead_letter_max_bytes
            > limit - DEAD_LETTER_KEY_MAX_BYTES - DEAD_LETTER_HEADERS_MAX_BYTES
        {
            return bad(
                "limits.dead_letter_max_bytes",
                &format!("with its key and headers a dead letter must fit Kafka's largest record ({LIBRDKAFKA_MESSAGE_MAX_BYTES} bytes)"),
            );
        }
        if self.ranking.top_n > limit / RECORD_PER_LEADER_BYTES - 1 {
            return bad(
                "ranking.top_n",
                &format!("a trade_leaders record of that many members cannot fit Kafka's largest record ({LIBRDKAFKA_MESSAGE_MAX_BYTES} bytes)"),
            );
        }
        if let Some(v) = self.kafka.librdkafka.get("message.max.bytes") {
            if v.trim()
                .parse::<usize>()
                .map_or(true, |n| n < self.record_max_bytes())
            {
                return bad(
                    "kafka.librdkafka.\"message.max.bytes\"",
                    &format!(
                        "must be at least {} so that every record silkroute writes fits (limits.dead_letter_max_bytes and ranking.top_n decide it); leave it out to let silkroute size it",
                        self.record_max_bytes()
                    ),
                );
            }
        }
        if self.processing.batch_max_messages == 0 {
            return bad("processing.batch_max_messages", "must be at least 1");
        }
        if self.shutdown.timeout < Duration::from_millis(1000) {
            return bad("shutdown.timeout_ms", "must be at least 1000");
        }
        for key in self.kafka.librdkafka.keys() {
            if matches!(
                key.as_str(),
                "bootstrap.servers"
                    | "group.id"
                    | "enable.auto.commit"
                    | "enable.auto.offset.store"
                    | "transactional.id"
            ) {
                return bad(
                    &format!("kafka.librdkafka.\"{key}\""),
                    "is managed by silkroute; use the typed setting",
                );
            }
        }
        Ok(())
    }

    /// The largest record silkroute writes, with its framing: a dead letter cut to
    /// `limits.dead_letter_max_bytes` with a key of [`DEAD_LETTER_KEY_MAX_BYTES`] and its
    /// headers, or a `trade_leaders` record of `ranking.top_n` members, whichever is larger.
    /// The producer's `message.max.bytes` and the output topics' `max.message.bytes` must be at
    /// least this.
    pub fn record_max_bytes(&self) -> usize {
        let dead_letter = self.limits.dead_letter_max_bytes
            + DEAD_LETTER_KEY_MAX_BYTES
            + DEAD_LETTER_HEADERS_MAX_BYTES;
        let leaders = RECORD_PER_LEADER_BYTES * (self.ranking.top_n + 1);
        dead_letter.max(leaders).max(SMALL_RECORD_BYTES) + RECORD_OVERHEAD_BYTES
    }

    /// The changelog topic: `topics.changelog`, or `<group_id>-cells-changelog`.
    pub fn changelog_topic(&self) -> String {
        if self.topics.changelog.is_empty() {
            format!("{}-cells-changelog", self.kafka.group_id)
        } else {
            self.topics.changelog.clone()
        }
    }

    pub fn engine(&self) -> EngineSettings {
        EngineSettings {
            streak_threshold: self.freight.streak_threshold,
            exclude_regions: self
                .ranking
                .exclude_regions
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            top_n: self.ranking.top_n,
        }
    }
}

fn one_line(e: config::ConfigError) -> ConfigError {
    ConfigError(e.to_string().replace('\n', " "))
}

/// One line naming the full key: `serde_path_to_error` knows the path down to the field
/// (`kafka.no_such_key`), where `config` names only the table around an unknown field.
/// Unknown keys are refused by `deny_unknown_fields` on every table; `kafka.librdkafka` is a
/// free-form map.
fn at_key(e: serde_path_to_error::Error<config::ConfigError>) -> ConfigError {
    let path = e.path().to_string();
    let (reason, origin) = unwrap_key(e.into_inner());
    let origin = origin.map(|o| format!(" (in {o})")).unwrap_or_default();
    ConfigError(format!("{path}: {reason}{origin}").replace('\n', " "))
}

/// The error without `config`'s own " for key `…`" suffix (the path already says it), and
/// where the value came from.
fn unwrap_key(e: config::ConfigError) -> (String, Option<String>) {
    match e {
        config::ConfigError::At { error, origin, .. } => {
            let (reason, inner) = unwrap_key(*error);
            (reason, inner.or(origin))
        }
        config::ConfigError::Type {
            origin,
            unexpected,
            expected,
            ..
        } => (
            format!("invalid type: {unexpected}, expected {expected}"),
            origin,
        ),
        other => (other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from(
            None,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn the_defaults_are_the_contracts() {
        let s = load_env(&[]).unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "localhost:9092");
        assert_eq!(s.kafka.group_id, "silkroute");
        assert_eq!(
            s.topics.inputs(),
            [
                "customs.trade.monthly",
                "freight.trains.monthly",
                "fx.rates.monthly"
            ]
        );
        assert_eq!(s.topics.indicators, "silkroute.indicators");
        assert_eq!(s.topics.dead_letter, "silkroute.dlq");
        assert_eq!(s.http.listen, "0.0.0.0:9464".parse().unwrap());
        assert_eq!(s.freight.streak_threshold, 600);
        assert_eq!(s.ranking.exclude_regions, vec!["CN"]);
        assert_eq!(s.ranking.top_n, 10);
        assert_eq!(s.limits.max_message_bytes, 1_048_576);
        assert_eq!(s.limits.dead_letter_max_bytes, 1_000_000);
        // A default dead letter fits a topic at the broker's default max.message.bytes.
        assert!(
            s.record_max_bytes() <= 1_048_588,
            "{}",
            s.record_max_bytes()
        );
    }

    #[test]
    fn limits_that_no_kafka_record_can_hold_are_refused_naming_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "SILKROUTE__LIMITS__DEAD_LETTER_MAX_BYTES",
                "2000000000",
                "limits.dead_letter_max_bytes",
            ),
            ("SILKROUTE__RANKING__TOP_N", "5000000", "ranking.top_n"),
        ];
        for (var, value, key) in cases {
            let err = load_env(&[(var, value)]).expect_err(var).to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka.librdkafka]\n\"message.max.bytes\" = \"100000\"\n",
        )
        .unwrap();
        let err = Settings::load_from(Some(&path), Vec::new())
            .expect_err("a producer too small for a dead letter")
            .to_string();
        assert!(
            err.contains("kafka.librdkafka.\"message.max.bytes\""),
            "{err}"
        );
        let bigger = load_env(&[("SILKROUTE__LIMITS__DEAD_LETTER_MAX_BYTES", "5000000")]).unwrap();
        assert!(bigger.record_max_bytes() > 5_000_000);
    }

    #[test]
    fn environment_variables_override_with_double_underscores() {
        let s = load_env(&[
            ("SILKROUTE__KAFKA__BOOTSTRAP_SERVERS", "a:1,b:2"),
            ("SILKROUTE__FREIGHT__STREAK_THRESHOLD", "700"),
            ("SILKROUTE__RANKING__EXCLUDE_REGIONS", "CN,HK"),
        ])
        .unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "a:1,b:2");
        assert_eq!(s.freight.streak_threshold, 700);
        assert_eq!(s.engine().exclude_regions, vec!["CN", "HK"]);
    }

    #[test]
    fn a_file_overrides_defaults_and_may_pass_librdkafka_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\ngroup_id = \"g2\"\n[kafka.librdkafka]\n\"security.protocol\" = \"SASL_SSL\"\n").unwrap();
        let s = Settings::load_from(Some(&path), Vec::new()).unwrap();
        assert_eq!(s.kafka.group_id, "g2");
        assert_eq!(
            s.kafka
                .librdkafka
                .get("security.protocol")
                .map(String::as_str),
            Some("SASL_SSL")
        );
    }

    #[test]
    fn credentials_never_show_in_debug_or_display() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka.librdkafka]\n\"ssl.key.password\" = \"key-pw-4711\"\n\"security.protocol\" = \"SASL_SSL\"\n",
        )
        .unwrap();
        let env = [
            ("SILKROUTE__KAFKA__SASL_USERNAME", "svc"),
            ("SILKROUTE__KAFKA__SASL_PASSWORD", "hunter2-0815"),
        ];
        let s = Settings::load_from(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(s.kafka.sasl_password.expose(), "hunter2-0815");
        let shown = format!("{s:?} {:#?} {}", s.kafka, s.kafka.sasl_password);
        assert!(!shown.contains("hunter2-0815"), "{shown}");
        assert!(!shown.contains("key-pw-4711"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("SASL_SSL"),
            "{shown}"
        );
        assert!(shown.contains("\"svc\""), "{shown}");
    }

    #[test]
    fn every_bad_setting_names_its_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "SILKROUTE__KAFKA__BOOTSTRAP_SERVERS",
                "",
                "kafka.bootstrap_servers",
            ),
            (
                "SILKROUTE__KAFKA__BOOTSTRAP_SERVERS",
                " , ",
                "kafka.bootstrap_servers",
            ),
            ("SILKROUTE__KAFKA__NO_SUCH_KEY", "1", "kafka.no_such_key"),
            ("SILKROUTE__NOPE__X", "1", "nope"),
            (
                "SILKROUTE__FREIGHT__STREAK_THRESHOLD",
                "many",
                "freight.streak_threshold",
            ),
            ("SILKROUTE__RANKING__TOP_N", "0", "ranking.top_n"),
            ("SILKROUTE__HTTP__LISTEN", "nowhere", "http.listen"),
            ("SILKROUTE__LOG__FORMAT", "xml", "log.format"),
            (
                "SILKROUTE__TOPICS__INDICATORS",
                "customs.trade.monthly",
                "topics.indicators",
            ),
            (
                "SILKROUTE__PROCESSING__GUARANTEE",
                "sometimes",
                "processing.guarantee",
            ),
            (
                "SILKROUTE__PROCESSING__CHANGELOG_FORMAT",
                "xml",
                "processing.changelog_format",
            ),
        ];
        for (var, value, key) in cases {
            let err = load_env(&[(var, value)]).expect_err(var).to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
