//! The life of one message, at least once.
//!
//! A message is consumed, parsed, and either applied to the engine (or ignored as stale or
//! duplicate) or produced unchanged to the dead-letter topic with its reason. At the end of a
//! batch the engine's changed records are produced to the indicators topic; once Kafka has
//! acknowledged every record of the batch (dead letters included), the batch's offsets are
//! stored, and the consumer commits stored offsets. A crash before that point replays the
//! batch; the engine's change-only emission keeps the replay from publishing anything new.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{Guarantee, Settings};
use crate::engine::record::{Output, RecordKind};
use crate::engine::{Engine, Outcome};
use crate::event::{self, ParseRules, Rejection};
use crate::http::RecordQuery;
use crate::kafka::ServiceContext;
use crate::lifecycle::{Lifecycle, State};
use crate::metrics::Metrics;
use crate::period;

/// A batch's transaction was aborted: the engine is ahead of what Kafka committed and must be
/// restored before processing goes on.
#[derive(Debug, thiserror::Error)]
#[error("transaction aborted")]
pub struct TransactionAborted;

/// A dead letter kept until Kafka acknowledges it, so that it can be sent again.
struct DeadLetter {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    rejection: Rejection,
    topic: String,
    partition: i32,
    offset: i64,
}

/// Highest offset taken from one (topic, partition) in a batch, with the topic's consumed
/// counter, so that neither costs an allocation or a label lookup per message.
struct Taken {
    topic: String,
    partition: i32,
    offset: i64,
    consumed: prometheus::IntCounter,
}

#[derive(Default)]
struct Batch {
    /// Per (topic, partition): a batch spans a handful, so a short list beats a map keyed by an
    /// owned topic name.
    offsets: Vec<Taken>,
    received: Vec<Instant>,
    dead: Vec<DeadLetter>,
}

pub struct Processor {
    pub settings: Settings,
    pub engine: Engine,
    pub producer: FutureProducer,
    pub metrics: Arc<Metrics>,
    pub lifecycle: Arc<Lifecycle>,
    /// Offsets still to reach, per partition, before the instance counts as caught up with
    /// what was in the inputs at start.
    pub catch_up: HashMap<(String, i32), i64>,
}

/// How often a produce that Kafka refused is tried again before the service gives up (and
/// exits, so that a restart replays from the last committed offsets).
const PRODUCE_ATTEMPTS: u32 = 5;

impl Processor {
    fn rules(&self) -> ParseRules {
        ParseRules {
            max_message_bytes: self.settings.limits.max_message_bytes,
            current_month: period::current_utc_month(),
        }
    }

    /// Consumes until `shutdown` flips, answering record queries between batches.
    pub async fn run(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        queries: &mut mpsc::Receiver<RecordQuery>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        self.check_caught_up().await?;
        let wait = Duration::from_millis(self.settings.processing.batch_max_wait_ms);
        let max = self.settings.processing.batch_max_messages;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            self.lifecycle.beat();
            if *shutdown.borrow() {
                return Ok(());
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => return Ok(()),
                Some(q) = queries.recv() => {
                    let records = q.filter.selection().map(|sel| self.engine.select(&sel)).unwrap_or_default();
                    let _ = q.reply.send(records);
                }
                first = consumer.recv() => {
                    let first = match first {
                        Ok(m) => m,
                        // Broker outages and the like surface here; librdkafka reconnects by
                        // itself, so the loop waits rather than ending the service.
                        Err(e) => {
                            warn!(error = %e, "Consumer error; retrying.");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                    let rules = self.rules();
                    let mut batch = Batch::default();
                    self.take(&first, &mut batch, &rules);
                    let deadline = tokio::time::Instant::now() + wait;
                    while batch.received.len() < max {
                        match tokio::time::timeout_at(deadline, consumer.recv()).await {
                            Ok(Ok(m)) => self.take(&m, &mut batch, &rules),
                            Ok(Err(e)) => { warn!(error = %e, "Consumer error; retrying."); break }
                            Err(_) => break,
                        }
                    }
                    self.finish(consumer, batch).await?;
                }
                _ = tick.tick() => {}
            }
        }
    }

    /// Applies or dead-letters one message.
    fn take(&mut self, m: &BorrowedMessage<'_>, batch: &mut Batch, rules: &ParseRules) {
        let m_topic = m.topic();
        let (partition, offset) = (m.partition(), m.offset());
        match batch
            .offsets
            .iter_mut()
            .find(|t| t.partition == partition && t.topic == m_topic)
        {
            Some(t) => {
                t.offset = t.offset.max(offset);
                t.consumed.inc();
            }
            None => {
                let consumed = self.metrics.events_consumed.with_label_values(&[m_topic]);
                consumed.inc();
                batch.offsets.push(Taken {
                    topic: m_topic.to_string(),
                    partition,
                    offset,
                    consumed,
                });
            }
        }
        if let Some(ms) = m.timestamp().to_millis() {
            self.metrics.last_event_timestamp.set(ms as f64 / 1000.0);
        }
        batch.received.push(Instant::now());
        match event::parse(m.payload().unwrap_or_default(), rules) {
            Ok(e) => match self.engine.apply(&e) {
                Outcome::Applied => {}
                Outcome::Stale => self
                    .metrics
                    .events_ignored
                    .with_label_values(&["stale"])
                    .inc(),
                Outcome::Duplicate => self
                    .metrics
                    .events_ignored
                    .with_label_values(&["duplicate"])
                    .inc(),
            },
            Err(rejection) => {
                self.metrics
                    .events_rejected
                    .with_label_values(&[rejection.reason.as_str()])
                    .inc();
                warn!(topic = m_topic, partition = m.partition(), offset = m.offset(), reason = %rejection.reason, detail = %rejection.detail, "Event dead-lettered.");
                batch.dead.push(DeadLetter {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    rejection,
                    topic: m_topic.to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                });
            }
        }
    }

    /// Publishes the batch's changed records and dead letters, waits for Kafka's
    /// acknowledgement of all of them, then stores the batch's offsets.
    async fn finish(
        &mut self,
        consumer: &StreamConsumer<ServiceContext>,
        batch: Batch,
    ) -> anyhow::Result<()> {
        let outputs = self.engine.flush();
        if self.exactly_once() {
            self.in_transaction(&outputs, &batch.dead, Some((consumer, &batch.offsets)))
                .await?;
        } else {
            self.publish(&outputs, &batch.dead).await?;
        }
        let acked = Instant::now();
        for t in &batch.received {
            self.metrics
                .processing_duration
                .observe(acked.duration_since(*t).as_secs_f64());
        }
        for Taken {
            topic,
            partition,
            offset,
            ..
        } in &batch.offsets
        {
            if self.exactly_once() {
                // Committed with the transaction already.
            } else if let Err(e) = consumer.store_offset(topic, *partition, *offset) {
                // The partition moved to another member, which will process it from the last
                // commit: at least once.
                warn!(error = %e, topic = %topic, partition, "Offset not stored.");
            }
            if let Some(&end) = self.catch_up.get(&(topic.clone(), *partition)) {
                if offset + 1 >= end {
                    self.catch_up.remove(&(topic.clone(), *partition));
                }
            }
        }
        self.metrics.state_cells.set(self.engine.cells() as i64);
        self.check_caught_up().await
    }

    /// Once every partition reached the offsets it had at start, re-derives all records
    /// once (settings may have changed since the last run) and turns ready.
    async fn check_caught_up(&mut self) -> anyhow::Result<()> {
        if self.lifecycle.state() != State::CatchingUp || !self.catch_up.is_empty() {
            return Ok(());
        }
        let outputs = self.engine.reconcile();
        if self.exactly_once() {
            self.in_transaction(&outputs, &[], None).await?;
        } else {
            self.publish(&outputs, &[]).await?;
        }
        self.metrics.state_cells.set(self.engine.cells() as i64);
        info!(
            cells = self.engine.cells(),
            republished = outputs.len(),
            "Caught up with the inputs; ready."
        );
        self.lifecycle.set(State::Ready);
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        self.settings.processing.guarantee == Guarantee::ExactlyOnce
    }

    /// Exactly once: the batch's records, dead letters and consumer offsets commit in one
    /// Kafka transaction. Any failure aborts it and returns [`TransactionAborted`]: the engine
    /// has already applied the batch, so the service rebuilds it, with fresh clients, from the
    /// last committed transaction (abort and rewind).
    async fn in_transaction(
        &self,
        outputs: &[Output],
        dead: &[DeadLetter],
        offsets: Option<(&StreamConsumer<ServiceContext>, &[Taken])>,
    ) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(60);
        let result: anyhow::Result<()> = async {
            self.producer
                .begin_transaction()
                .context("beginning a transaction")?;
            self.publish(outputs, dead).await?;
            if let Some((consumer, taken)) = offsets {
                let mut tpl = TopicPartitionList::new();
                for t in taken {
                    tpl.add_partition_offset(&t.topic, t.partition, Offset::Offset(t.offset + 1))?;
                }
                let group = consumer
                    .group_metadata()
                    .context("the consumer has no group metadata")?;
                let producer = &self.producer;
                tokio::task::block_in_place(|| {
                    producer.send_offsets_to_transaction(&tpl, &group, timeout)
                })
                .context("adding the batch's offsets to the transaction")?;
            }
            let producer = &self.producer;
            tokio::task::block_in_place(|| producer.commit_transaction(timeout))
                .context("committing the transaction")?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                self.metrics
                    .transactions
                    .with_label_values(&["commit"])
                    .inc();
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .transactions
                    .with_label_values(&["abort"])
                    .inc();
                let producer = &self.producer;
                if let Err(abort) =
                    tokio::task::block_in_place(|| producer.abort_transaction(timeout))
                {
                    warn!(error = %abort, "Aborting the transaction failed.");
                }
                Err(e.context(TransactionAborted))
            }
        }
    }

    async fn publish(&self, outputs: &[Output], dead: &[DeadLetter]) -> anyhow::Result<()> {
        let published = RecordKind::ALL.map(|k| {
            self.metrics
                .indicators_published
                .with_label_values(&[k.as_str()])
        });
        let mut pending: Vec<usize> = (0..outputs.len() + dead.len()).collect();
        let attempts = if self.exactly_once() {
            1
        } else {
            PRODUCE_ATTEMPTS
        };
        for attempt in 1..=attempts {
            let mut futures: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(pending.len());
            for &i in &pending {
                let future = if i < outputs.len() {
                    let o = &outputs[i];
                    self.send(
                        FutureRecord::to(&self.settings.topics.indicators)
                            .key(&o.key)
                            .payload(&o.json),
                    )
                    .await?
                } else {
                    let d = &dead[i - outputs.len()];
                    let (partition, offset) = (d.partition.to_string(), d.offset.to_string());
                    let headers = OwnedHeaders::new()
                        .insert(Header {
                            key: "silkroute.error.reason",
                            value: Some(d.rejection.reason.as_str()),
                        })
                        .insert(Header {
                            key: "silkroute.error.detail",
                            value: Some(d.rejection.detail.as_str()),
                        })
                        .insert(Header {
                            key: "silkroute.source.topic",
                            value: Some(d.topic.as_str()),
                        })
                        .insert(Header {
                            key: "silkroute.source.partition",
                            value: Some(partition.as_str()),
                        })
                        .insert(Header {
                            key: "silkroute.source.offset",
                            value: Some(offset.as_str()),
                        });
                    let mut record: FutureRecord<'_, [u8], [u8]> =
                        FutureRecord::to(&self.settings.topics.dead_letter).headers(headers);
                    if let Some(k) = &d.key {
                        record = record.key(k.as_slice());
                    }
                    if let Some(v) = &d.value {
                        record = record.payload(v.as_slice());
                    }
                    self.send(record).await?
                };
                futures.push((i, future));
            }
            // Awaited in order rather than through join_all, which allocates a task per future:
            // deliveries are acknowledged in bulk, so most are complete when their turn comes.
            let mut failed = Vec::new();
            for (i, future) in futures {
                let result = future.await;
                let topic = if i < outputs.len() {
                    &self.settings.topics.indicators
                } else {
                    &self.settings.topics.dead_letter
                };
                match result {
                    Ok(Ok(_)) => {
                        if i < outputs.len() {
                            let kind = outputs[i].record.kind();
                            if let Some(k) = RecordKind::ALL.iter().position(|&x| x == kind) {
                                published[k].inc();
                            }
                            // Outputs are sorted by key and a key ends in its period, so the
                            // last output of a series is its latest: only that one can move
                            // the series' gauges.
                            let series = |o: &Output| {
                                o.key.rsplit_once('/').map(|(s, _)| s.len()).unwrap_or(0)
                            };
                            let last_of_series = outputs.get(i + 1).is_none_or(|next| {
                                let (a, b) = (series(&outputs[i]), series(next));
                                a != b || outputs[i].key[..a] != next.key[..b]
                            });
                            if last_of_series {
                                self.metrics.observe(&outputs[i].record);
                            }
                        }
                    }
                    Ok(Err((e, _))) => {
                        self.metrics
                            .produce_errors
                            .with_label_values(&[topic])
                            .inc();
                        warn!(error = %e, topic = %topic, attempt, "Kafka refused a record; sending it again.");
                        failed.push(i);
                    }
                    Err(_) => {
                        self.metrics
                            .produce_errors
                            .with_label_values(&[topic])
                            .inc();
                        failed.push(i);
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            pending = failed;
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        anyhow::bail!("{} records were refused by Kafka {attempts} times; stopping so that a restart replays them", pending.len())
    }

    /// Enqueues one record, waiting while librdkafka's local queue is full.
    async fn send<'a>(
        &self,
        mut record: FutureRecord<
            'a,
            impl rdkafka::message::ToBytes + ?Sized,
            impl rdkafka::message::ToBytes + ?Sized,
        >,
    ) -> anyhow::Result<DeliveryFuture> {
        loop {
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => anyhow::bail!("cannot produce to Kafka: {e}"),
            }
        }
    }

    /// The last steps of a graceful stop: everything produced is acknowledged already; commit
    /// the stored offsets synchronously.
    pub fn commit(&self, consumer: &StreamConsumer<ServiceContext>) {
        match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => info!("Offsets committed."),
            Err(e) if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) => {
                info!("No new offsets to commit.")
            }
            Err(e) => warn!(error = %e, "Final offset commit failed."),
        }
    }
}
