//! `silkroute publish`: JSONL events into the input topics, keyed as the contract asks
//! (trade by region, freight by port, fx by currency).
//!
//! Every line is validated before anything is sent, so a bad file publishes nothing; `--raw`
//! skips validation and sends lines as they are (to exercise the dead-letter path).

use std::path::Path;

use anyhow::Context as _;
use futures::future::join_all;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::Settings;
use crate::event::{self, EventKind, ParseRules};
use crate::timeouts;

/// One message to send.
pub struct Message {
    pub topic: String,
    pub key: Option<String>,
    pub value: Vec<u8>,
}

/// Validates `text` (named `name` in errors) into messages; errors are `NAME:LINE: reason: detail`.
pub fn plan(
    name: &str,
    text: &[u8],
    settings: &Settings,
    rules: &ParseRules,
    raw_topic: Option<&str>,
    out: &mut Vec<Message>,
    errors: &mut Vec<String>,
) {
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(topic) = raw_topic {
            out.push(Message {
                topic: topic.to_string(),
                key: None,
                value: line.to_vec(),
            });
            continue;
        }
        match event::parse(line, rules) {
            Ok(e) => {
                let topic = match e.kind() {
                    EventKind::Trade => &settings.topics.trade,
                    EventKind::Freight => &settings.topics.freight,
                    EventKind::Fx => &settings.topics.fx,
                };
                out.push(Message {
                    topic: topic.clone(),
                    key: Some(e.partition_key().to_string()),
                    value: line.to_vec(),
                });
            }
            Err(r) => errors.push(format!("{name}:{}: {}: {}", i + 1, r.reason, r.detail)),
        }
    }
}

/// Sends `messages` in order, showing a progress bar on a terminal; returns how many.
pub async fn send(
    settings: &Settings,
    messages: &[Message],
    progress: bool,
) -> anyhow::Result<usize> {
    // Loading events is not part of the service's transactions.
    let mut config = crate::kafka::producer_config(settings);
    config.remove("transactional.id");
    config.remove("transaction.timeout.ms");
    let producer: FutureProducer = config.create().context("creating the Kafka producer")?;
    let bar = if progress {
        ProgressBar::new(messages.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec}")
            .expect("valid template"),
    );
    for chunk in messages.chunks(5_000) {
        let futures = chunk.iter().map(|m| {
            let mut record: FutureRecord<'_, str, [u8]> =
                FutureRecord::to(&m.topic).payload(m.value.as_slice());
            if let Some(k) = &m.key {
                record = record.key(k.as_str());
            }
            producer.send(record, timeouts::KAFKA_REQUEST)
        });
        for (result, m) in join_all(futures).await.into_iter().zip(chunk) {
            result.map_err(|(e, _)| {
                anyhow::anyhow!("Kafka refused a message for {}: {e}", m.topic)
            })?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(messages.len())
}

/// The whole command; returns the exit code.
pub async fn run(settings: &Settings, files: &[impl AsRef<Path>], raw: bool) -> anyhow::Result<u8> {
    let rules = ParseRules {
        max_message_bytes: settings.limits.max_message_bytes,
        current_month: crate::clock::current_utc_month(),
    };
    let (mut messages, mut errors) = (Vec::new(), Vec::new());
    for path in files {
        let path = path.as_ref();
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        plan(
            &path.display().to_string(),
            &text,
            settings,
            &rules,
            raw.then_some(settings.topics.trade.as_str()),
            &mut messages,
            &mut errors,
        );
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("silkroute: {} invalid lines; nothing was published (fix them, or use --raw to send lines unchecked)", errors.len());
        return Ok(1);
    }
    if settings.topics.create {
        let t = &settings.topics;
        let mut wanted: Vec<(&str, bool)> = Vec::new();
        for m in &messages {
            if !wanted.iter().any(|(name, _)| *name == m.topic) {
                wanted.push((m.topic.as_str(), false));
            }
        }
        debug_assert!(wanted.iter().all(|(name, _)| *name != t.indicators));
        crate::kafka::create_topics(settings, &wanted).await?;
    }
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let n = send(settings, &messages, progress).await?;
    let count = |t: &str| messages.iter().filter(|m| m.topic == t).count();
    eprintln!(
        "published {n} events to {}: {} {}, {} {}, {} {}",
        settings.kafka.bootstrap_servers,
        count(&settings.topics.trade),
        settings.topics.trade,
        count(&settings.topics.freight),
        settings.topics.freight,
        count(&settings.topics.fx),
        settings.topics.fx
    );
    Ok(0)
}
