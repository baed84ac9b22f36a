//! When an instance turns ready (`/readyz` 200): the group assigned it its partitions, those
//! reached the end offsets they had when assigned, and the changelog was read past what
//! processing them produced. Before that, an instance answers 503 so that a rolling update
//! waits for it.

use std::collections::HashMap;

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::info;

use crate::blocking::Blocking;
use crate::changelog::Table;
use crate::kafka::{ServiceContext, Undecided};
use crate::lifecycle::{Lifecycle, State};
use crate::ownership::Owned;
use crate::timeouts;

/// What is left to reach before the instance counts as caught up.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Whether the group has assigned this instance its partitions yet.
    joined: bool,
    /// Input partitions to reach (end offset at assignment).
    catch_up: HashMap<(String, i32), i64>,
    /// Once the inputs are caught up: the changelog ends to read, and how long the read has
    /// stood still short of them.
    ready_at: Option<(Vec<(i32, i64)>, Undecided)>,
}

impl Readiness {
    /// The group's assignment changed: partitions moved away no longer need reaching.
    pub fn assigned(&mut self, joined: bool, owned: &Owned) {
        self.joined = joined;
        self.catch_up.retain(|(t, p), _| owned.holds(t, *p));
    }

    /// Newly assigned input partitions that still hold unprocessed messages: their end
    /// offsets are to be reached.
    ///
    /// Asked through the changelog reader (`table`), which has the group's id but never
    /// joins: the group consumer keeps a fetch waiting at each broker for up to
    /// fetch.wait.max.ms (500 ms) once its partitions are read to the end, and a query sent on
    /// that connection is answered after it, which made 13 partitions' end offsets take 6 s
    /// of a restarted instance's time to ready (issue 17). The reader's fetches wait 10 ms.
    pub fn add_targets(
        &mut self,
        _: &Blocking,
        table: &Table,
        gained: &[(String, i32)],
    ) -> anyhow::Result<()> {
        let reader = &table.consumer;
        let mut tpl = TopicPartitionList::new();
        for (t, p) in gained {
            tpl.add_partition(t, *p);
        }
        let committed = reader
            .committed_offsets(tpl, timeouts::KAFKA_REQUEST)
            .context("reading the group's committed offsets")?;
        for (t, p) in gained {
            let (lo, hi) = reader
                .fetch_watermarks(t, *p, timeouts::KAFKA_REQUEST)
                .with_context(|| format!("reading the end offsets of {t}/{p}"))?;
            let from = match committed.find_partition(t, *p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => lo,
            };
            if from < hi {
                self.catch_up.insert((t.clone(), *p), hi);
            }
        }
        Ok(())
    }

    /// Turns `lifecycle` ready when everything is reached. Blocks on the changelog's end
    /// offsets once.
    pub fn check(
        &mut self,
        b: &Blocking,
        lifecycle: &Lifecycle,
        consumer: &StreamConsumer<ServiceContext>,
        table: &Table,
        cells: u64,
    ) -> anyhow::Result<()> {
        if lifecycle.state() != State::CatchingUp || !self.joined {
            return Ok(());
        }
        if !self.catch_up.is_empty() {
            // The consumer's position counts what was taken (even before an at-least-once
            // commit records it).
            if let Ok(positions) = consumer.position() {
                self.catch_up.retain(|(t, p), end| {
                    !matches!(
                        positions.find_partition(t, *p).map(|e| e.offset()),
                        Some(Offset::Offset(pos)) if pos >= *end
                    )
                });
            }
            if !self.catch_up.is_empty() {
                return Ok(());
            }
        }
        if self.ready_at.is_none() {
            let ends = table.ends(b, timeouts::WATERMARKS)?;
            self.ready_at = Some((ends, Undecided::new("changelog")));
        }
        if self
            .ready_at
            .as_mut()
            .is_some_and(|(ends, undecided)| table.reached(b, ends, undecided))
        {
            info!(cells, "Caught up with the inputs; ready.");
            lifecycle.set(State::Ready);
        }
        Ok(())
    }
}
