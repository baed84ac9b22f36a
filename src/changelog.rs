//! The changelog: silkroute's durable state, and how every instance reads it back.
//!
//! Each valid input event is written, unchanged, to the changelog topic: keyed by its cell and
//! revision, on the partition of its region (port, currency). The topic is compacted: per key
//! Kafka keeps the last event, which is the one the revision rule keeps (a higher revision has
//! another key; the same revision later in the log replaces the earlier). So the topic holds
//! every cell's current event and a few stale ones the engine ignores again, whatever the
//! retention of the inputs.
//!
//! Every instance reads the whole changelog, as a global table: the cells of every region, so
//! that national ranks (which compare all regions) are the same on every instance, whichever
//! instance a region's events were consumed by. It is read with `read_committed`, so under
//! exactly-once another instance's cell counts only once the transaction that forwarded it
//! committed. The instance that forwarded an event applied it when it consumed it; the copy it
//! wrote carries its session in a header, and that session skips it on the way back: known
//! by the offset its delivery report gave ([`Written`]), or by that header while the report has
//! not arrived.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::blocking::{self, Blocking};
use crate::config::Settings;
use crate::engine::{Engine, Outcome};
use crate::event::{self, Basis, Event, ParseRules};
use crate::kafka::{self, Due, LogEnds, Undecided};
use crate::metrics::Metrics;
use crate::period::Period;
use crate::retry::{ErrorReports, OperatorError, ERROR_PAUSE};
use crate::timeouts;

mod applier;

/// The changelog key of an event: its cell identity and revision. The member, the only part
/// that may hold `/`, comes last, so that keys never collide.
pub fn key(event: &Event<'_>) -> String {
    // Built by hand rather than with `format!`: one key per event consumed, and the formatting
    // machinery was ~2 % of a backfill's samples.
    let mut k = String::with_capacity(96);
    let part = |k: &mut String, s: &str| {
        k.push_str(s);
        k.push('/');
    };
    let period = |k: &mut String, p| {
        Period::push_to(p, k);
        k.push('/');
    };
    // itoa rather than `write!`: the formatting machinery was 30 % of the key's
    // instructions (issue 17).
    let revision = |k: &mut String, r: u32| k.push_str(itoa::Buffer::new().format(r));
    match event {
        // A cumulative cell is another cell than the month's (§2): its keys start apart. Month
        // keys keep the v1 spelling, so that compaction keeps matching older records.
        Event::Trade(e) => {
            part(
                &mut k,
                if e.basis == Basis::Ytd {
                    "trade-ytd"
                } else {
                    "trade"
                },
            );
            part(&mut k, &e.region);
            period(&mut k, e.period);
            part(&mut k, e.flow.as_str());
            part(&mut k, &e.dimension);
            revision(&mut k, e.revision);
            k.push('/');
            k.push_str(e.member.as_deref().unwrap_or("-"));
        }
        Event::Freight(e) => {
            part(
                &mut k,
                if e.basis == Basis::Ytd {
                    "freight-ytd"
                } else {
                    "freight"
                },
            );
            part(&mut k, &e.port);
            part(&mut k, &e.service);
            period(&mut k, e.period);
            revision(&mut k, e.revision);
        }
        Event::Fx(e) => {
            part(&mut k, "fx");
            part(&mut k, &e.currency);
            period(&mut k, e.period);
            revision(&mut k, e.revision);
        }
    }
    k
}

/// The header that marks a changelog record with the session that wrote it.
pub const SESSION_HEADER: &str = "silkroute.session";

/// The [`SESSION_HEADER`] of the records a session writes.
pub fn session_header(session: u64) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(1).insert(Header {
        key: SESSION_HEADER,
        value: Some(&session.to_be_bytes()),
    })
}

/// A number for one session (one life of the clients and the engine) that no other session,
/// here or in another instance, will have: `RandomState`'s keys come from the OS's random
/// source, and change with every call.
fn new_session() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// Where this session's own changelog records landed, from their delivery reports: read back,
/// a record at one of these offsets is known to be the session's own without reading its
/// headers (librdkafka builds a header list per message for that: 8 % of a drain's
/// processing, issue 17). A record whose report has not arrived yet is checked by its
/// header as before, so this only saves work; it never takes another writer's record for
/// ours, since Kafka gives each offset of a partition to one record (acknowledged records
/// are not truncated: `acks=all`, idempotence, no unclean leader election).
#[derive(Default)]
pub struct Written(Mutex<Vec<VecDeque<Range<i64>>>>);

impl Written {
    /// Runs kept per partition: one per batch (or transaction) until the reader passes it;
    /// beyond this the oldest is forgotten (its records are then checked by their headers).
    const RUNS_MAX: usize = 4096;

    /// A changelog record of this session was acknowledged at `offset`.
    pub fn delivered(&self, partition: i32, offset: i64) {
        let Ok(p) = usize::try_from(partition) else {
            return;
        };
        let mut all = self.0.lock().expect("written lock");
        if all.len() <= p {
            all.resize_with(p + 1, VecDeque::new);
        }
        let runs = &mut all[p];
        match runs.back_mut() {
            Some(run) if run.end == offset => run.end += 1,
            _ => {
                if runs.len() == Self::RUNS_MAX {
                    runs.pop_front();
                }
                runs.push_back(offset..offset + 1);
            }
        }
    }

    /// Whether the record at `offset` is one of this session's, by its report. The reader
    /// reads each partition in order, so the runs it has passed are dropped.
    fn holds(&self, partition: i32, offset: i64) -> bool {
        let mut all = self.0.lock().expect("written lock");
        let Some(runs) = usize::try_from(partition).ok().and_then(|p| all.get_mut(p)) else {
            return false;
        };
        while runs.front().is_some_and(|run| run.end <= offset) {
            runs.pop_front();
        }
        runs.front().is_some_and(|run| run.contains(&offset))
    }
}

/// Reads every partition of the changelog, from the beginning, outside any group.
pub struct Table {
    pub consumer: StreamConsumer,
    pub topic: String,
    pub partitions: i32,
    rules: ParseRules,
    /// This session's mark: the events it forwards, it applied when it consumed them, so
    /// their copies coming back from the changelog are skipped. (A restore, which starts a
    /// new session, applies them like any other.)
    pub session: u64,
    /// The offsets of those records, as far as their reports have told them.
    written: Arc<Written>,
    /// Where the logs end (the changelog's here, the indicators topic's at a takeover).
    pub log_ends: Arc<LogEnds>,
    /// Per partition, the offset at which a read gave up waiting for an undecided
    /// transaction: the reads after it do not wait there again.
    given_up: Mutex<HashMap<i32, i64>>,
}

impl Table {
    /// Opens the reader at the changelog's start; also returns where its log ends as of
    /// opening, up to which a restore reads (see [`Table::catch_up`]).
    pub fn open(
        b: &Blocking,
        settings: &Settings,
        partitions: i32,
        rules: ParseRules,
        written: Arc<Written>,
    ) -> anyhow::Result<(Table, Vec<(i32, i64)>)> {
        let topic = settings.changelog_topic();
        let consumer: StreamConsumer = kafka::table_config(settings)
            .create()
            .context("creating the changelog reader")?;
        // From each partition's first offset as the broker gives it, not Offset::Beginning:
        // assigned on a client not yet connected, a logical offset is looked up again only
        // after librdkafka's retry interval, which held every restore back by 500 ms.
        let log_ends = LogEnds::new(settings)?;
        let marks = log_ends.of(b, &topic, partitions, timeouts::WATERMARKS)?;
        let mut tpl = TopicPartitionList::new();
        for &(_, p, low, _) in &marks {
            tpl.add_partition_offset(&topic, p, Offset::Offset(low))?;
        }
        consumer
            .assign(&tpl)
            .context("assigning the changelog partitions")?;
        let ends = marks.into_iter().map(|(_, p, _, hi)| (p, hi)).collect();
        let table = Table {
            consumer,
            topic,
            partitions,
            rules,
            session: new_session(),
            written,
            log_ends,
            given_up: Mutex::default(),
        };
        Ok((table, ends))
    }

    /// Where every partition's log ends now (see [`LogEnds`]), asked within `within`.
    pub fn ends(&self, b: &Blocking, within: Duration) -> anyhow::Result<Vec<(i32, i64)>> {
        let marks = self.log_ends.of(b, &self.topic, self.partitions, within)?;
        Ok(marks.into_iter().map(|(_, p, _, hi)| (p, hi)).collect())
    }

    /// True when the reader's position is at or past `ends` on every partition, or has stood
    /// still at an undecided transaction for [`Undecided::GIVE_UP`]. Offsets without a
    /// message (transaction markers, compacted records) count as read.
    pub fn reached(&self, b: &Blocking, ends: &[(i32, i64)], undecided: &mut Undecided) -> bool {
        let progress = self.progress_to(ends);
        progress.done()
            || undecided
                .due(progress.moved())
                .is_some_and(|due| self.give_up(b, &progress, due, undecided))
    }

    /// A read's progress toward `ends`, from the reader's positions. A partition still where
    /// an earlier read gave up counts as at its end (a partition without a position yet is
    /// at offset 0, as [`Progress`] counts it).
    fn progress_to(&self, ends: &[(i32, i64)]) -> Progress {
        let positions = self.positions();
        let given_up = self.given_up.lock().expect("given-up lock");
        let ends: Vec<_> = ends
            .iter()
            .map(|&(p, end)| {
                let now = positions.get(&p).copied().unwrap_or(0);
                match given_up.get(&p) {
                    Some(&at) if now <= at => (p, end.min(at)),
                    _ => (p, end),
                }
            })
            .collect();
        let mut progress = Progress::new(&ends);
        progress.positions(positions);
        progress
    }

    /// Whether the wait for `progress`'s partitions is given up now (`due`, and they stand
    /// at the last stable offset); if so, where is noted.
    fn give_up(
        &self,
        b: &Blocking,
        progress: &Progress,
        due: Due,
        undecided: &mut Undecided,
    ) -> bool {
        let short = progress.short();
        if !undecided.give_up(b, due, &self.consumer, &self.topic, &short) {
            return false;
        }
        self.given_up
            .lock()
            .expect("given-up lock")
            .extend(short.iter().copied());
        true
    }

    /// The reader's next offset per changelog partition. A round trip to librdkafka's thread
    /// (about 34 µs), so not to be asked per message.
    fn positions(&self) -> HashMap<i32, i64> {
        let Ok(positions) = self.consumer.position() else {
            return HashMap::new();
        };
        positions
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }

    /// Applies one changelog message and hands the event and its outcome to `then`; `None`
    /// for a record this session wrote (applied already) or one that does not parse (only a
    /// foreign writer could have put it there).
    pub fn apply<R>(
        &self,
        m: &BorrowedMessage<'_>,
        engine: &mut Engine,
        then: impl FnOnce(&Event<'_>, Outcome) -> R,
    ) -> Option<R> {
        if self.written.holds(m.partition(), m.offset()) || self.written_here(m) {
            return None;
        }
        let value = m.payload().unwrap_or_default();
        apply_value(engine, &self.rules, value, m.partition(), m.offset(), then)
    }

    fn written_here(&self, m: &BorrowedMessage<'_>) -> bool {
        m.headers().is_some_and(|hs| {
            hs.iter().any(|h| {
                h.key == SESSION_HEADER && h.value == Some(&self.session.to_be_bytes()[..])
            })
        })
    }

    /// The session's first read: everything up to `ends` (from [`Table::open`]) applied, on a
    /// thread of its own while this task reads on (`applier`). Nothing in it can be this
    /// session's own (it has sent nothing yet), so no record's headers are read: librdkafka
    /// builds a header list per message for that, 4 % of a restore's time. Returns the
    /// engine and the number of records read.
    pub async fn restore(
        &self,
        engine: Engine,
        ends: &[(i32, i64)],
        metrics: &Metrics,
    ) -> anyhow::Result<(Engine, u64)> {
        let mut applier = applier::Applier::start(engine, self.rules)?;
        // On an error the applier is dropped: its thread ends, and the engine with it.
        let read = self.read_to(ends, metrics, |m| applier.take(m)).await?;
        let engine = applier.finish().await?;
        metrics.state_cells.set(engine.cells() as i64);
        Ok((engine, read))
    }

    /// Reads and applies until the position reaches `ends` (from [`Table::ends`]) or stands
    /// at an undecided transaction for [`Undecided::GIVE_UP`], this session's own records
    /// skipped, logging progress every few seconds; `each` sees every event applied, its
    /// outcome and the record's timestamp. Returns the number of records read.
    pub async fn catch_up(
        &self,
        engine: &mut Engine,
        ends: &[(i32, i64)],
        metrics: &Metrics,
        mut each: impl FnMut(&Event<'_>, Outcome, Option<i64>),
    ) -> anyhow::Result<u64> {
        let read = self
            .read_to(ends, metrics, |m| {
                let at = m.timestamp().to_millis();
                self.apply(m, engine, |e, outcome| each(e, outcome, at));
            })
            .await?;
        metrics.state_cells.set(engine.cells() as i64);
        Ok(read)
    }

    /// A progress line every few seconds of a long read.
    fn progress(read: u64, total: i64, last_log: &mut Instant) {
        if last_log.elapsed() > timeouts::PROGRESS_LOG {
            info!(read, of_about = total, "Restoring from the changelog…");
            *last_log = Instant::now();
        }
    }

    /// Reads until the position reaches `ends` or a read gives up (see [`Table::catch_up`]),
    /// handing each message to `take`; returns the number read.
    async fn read_to(
        &self,
        ends: &[(i32, i64)],
        metrics: &Metrics,
        mut take: impl FnMut(&BorrowedMessage<'_>),
    ) -> anyhow::Result<u64> {
        use futures::StreamExt as _;
        let total: i64 = ends.iter().map(|e| e.1).sum();
        let (mut read, mut last_log) = (0u64, Instant::now());
        let mut errors = ErrorReports::default();
        // The next offset per partition: the reader's positions once, then each message's
        // own. Asked after every message, the positions were 97 % of a restore's time (issue
        // 17); they are asked again at a partition's end and at each tick, for offsets that
        // hold no message (transaction markers, compacted records). One stream and one
        // ticking timer for the whole read: a timeout around each message was 5 % of a
        // restore's time.
        let mut progress = self.progress_to(ends);
        let mut undecided = Undecided::new("changelog");
        let mut messages = self.consumer.stream();
        let mut tick = tokio::time::interval(timeouts::CATCH_UP_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        while !progress.done() {
            let m = tokio::select! {
                biased;
                m = messages.next() => m.expect("Kafka streams never end"),
                _ = tick.tick() => {
                    progress.positions(self.positions());
                    Self::progress(read, total, &mut last_log);
                    let given_up = undecided.due(progress.moved()).is_some_and(|due| {
                        blocking::run(|b| self.give_up(b, &progress, due, &mut undecided))
                    });
                    if given_up {
                        break;
                    }
                    continue;
                }
            };
            match m {
                Ok(m) => {
                    progress.advance(m.partition(), m.offset() + 1);
                    take(&m);
                    read += 1;
                }
                Err(KafkaError::PartitionEOF(_)) => progress.positions(self.positions()),
                Err(e) => {
                    // A missing ACL or a deleted topic ends the session, to be reported and
                    // retried with backoff by the service; anything else is waited out here.
                    if let Some(op) = e
                        .rdkafka_error_code()
                        .and_then(|c| OperatorError::of_code(c, &self.topic))
                    {
                        return Err(anyhow::Error::new(e)
                            .context(op)
                            .context("reading the changelog"));
                    }
                    errors.warn("Error while reading the changelog", &e);
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
            // Looked at every thousand records or so: a clock read per record is measurable.
            if read % 1024 == 0 {
                Self::progress(read, total, &mut last_log);
            }
        }
        metrics
            .restore_records
            .with_label_values(&["changelog"])
            .inc_by(read);
        Ok(read)
    }
}

/// Reads one changelog value and applies it; `None` (and a log line) for one that does not
/// parse, which only a foreign writer could have put there.
fn apply_value<R>(
    engine: &mut Engine,
    rules: &ParseRules,
    value: &[u8],
    partition: i32,
    offset: i64,
    then: impl FnOnce(&Event<'_>, Outcome) -> R,
) -> Option<R> {
    match event::parse_stored(value, rules) {
        Ok(e) => {
            let outcome = engine.apply(&e);
            Some(then(&e, outcome))
        }
        Err(why) => {
            warn!(partition, offset, %why, "Skipping an unreadable changelog record.");
            None
        }
    }
}

/// How far a read has come: per partition, the next offset and the end to reach. Asked after
/// every message, so it counts the partitions still short of their end rather than looking
/// each one up: a hash map's lookups per partition and message were 5 % of the instructions
/// of a session restoring the 443k backfill (callgrind, issue 17).
struct Progress {
    next: Vec<i64>,
    end: Vec<i64>,
    short: usize,
}

impl Progress {
    fn new(ends: &[(i32, i64)]) -> Progress {
        let n = ends.iter().map(|&(p, _)| p as usize + 1).max().unwrap_or(0);
        let mut end = vec![0; n];
        for &(p, e) in ends {
            end[p as usize] = e;
        }
        let short = end.iter().filter(|&&e| e > 0).count();
        Progress {
            next: vec![0; n],
            end,
            short,
        }
    }

    /// `partition`'s next offset is at least `next` (a message read, or its position).
    fn advance(&mut self, partition: i32, next: i64) {
        let Some(n) = self.next.get_mut(partition as usize) else {
            return;
        };
        let end = self.end[partition as usize];
        if *n < end && next >= end {
            self.short -= 1;
        }
        *n = (*n).max(next);
    }

    /// The reader's positions: offsets that hold no message (transaction markers, compacted
    /// records) count as read.
    fn positions(&mut self, positions: HashMap<i32, i64>) {
        for (p, next) in positions {
            self.advance(p, next);
        }
    }

    fn done(&self) -> bool {
        self.short == 0
    }

    /// Grows with every message read and every position passed short of the ends: what is
    /// read past them (new records on partitions already done) does not count.
    fn moved(&self) -> u64 {
        self.next
            .iter()
            .zip(&self.end)
            .map(|(&next, &end)| next.min(end))
            .sum::<i64>() as u64
    }

    /// The partitions not at their end yet, and their next offsets.
    fn short(&self) -> Vec<(i32, i64)> {
        (0..self.next.len())
            .filter(|&p| self.next[p] < self.end[p])
            .map(|p| (p as i32, self.next[p]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ParseRules {
        ParseRules {
            max_message_bytes: 4096,
            current_month: Period::new(2030, 1),
        }
    }

    /// The contract's spelling of a key, with the formatting machinery.
    fn spelled(e: &Event<'_>) -> String {
        match e {
            Event::Trade(e) => format!(
                "trade/{}/{}/{}/{}/{}/{}",
                e.region,
                e.period,
                e.flow.as_str(),
                e.dimension,
                e.revision,
                e.member.as_deref().unwrap_or("-")
            ),
            Event::Freight(e) => {
                format!(
                    "freight/{}/{}/{}/{}",
                    e.port, e.service, e.period, e.revision
                )
            }
            Event::Fx(e) => format!("fx/{}/{}/{}", e.currency, e.period, e.revision),
        }
    }

    #[test]
    fn a_read_is_done_when_every_partition_with_records_reached_its_end() {
        // Partition 1 is empty; 0 and 2 end at 3 and 2.
        let mut progress = Progress::new(&[(0, 3), (1, 0), (2, 2)]);
        assert!(!progress.done());
        progress.advance(0, 3);
        progress.advance(0, 3); // the same message again changes nothing
        progress.advance(2, 1);
        assert!(!progress.done(), "partition 2 is one short");
        progress.advance(7, 9); // not a partition of the read
        assert!(!progress.done());
        assert_eq!(progress.short(), vec![(2, 1)]);
        let moved = progress.moved();
        progress.advance(0, 10);
        assert_eq!(
            progress.moved(),
            moved,
            "read past its end, a partition does not move"
        );
        // The last offset holds a transaction marker: only the position shows it read.
        progress.positions(HashMap::from([(0, 3), (2, 2)]));
        assert!(progress.done());
        assert!(progress.short().is_empty());
        assert!(
            progress.moved() > moved,
            "a position passed counts as moving"
        );
        // Nothing to read at all.
        assert!(Progress::new(&[(0, 0)]).done());
        assert!(Progress::new(&[]).done());
    }

    #[test]
    fn a_record_is_ours_by_offset_only_where_our_reports_put_one() {
        let w = Written::default();
        // This session's records: 10..13 on partition 0 (one batch), 20 (the next), 5 on 2.
        for o in [10, 11, 12, 20] {
            w.delivered(0, o);
        }
        w.delivered(2, 5);
        // Another writer's records in between, and partitions we wrote nothing to, are not.
        let read = |p, o| w.holds(p, o);
        assert!(!read(0, 9));
        assert!(read(0, 10) && read(0, 11) && read(0, 12));
        assert!(!read(0, 13) && !read(0, 19));
        assert!(read(0, 20));
        assert!(!read(0, 21));
        assert!(!read(1, 10));
        assert!(read(2, 5));
        // Passed runs are dropped: a reader rewound to them checks headers instead.
        assert!(!read(0, 11));
    }

    #[test]
    fn reports_out_of_order_or_beyond_the_bound_never_claim_another_record() {
        let w = Written::default();
        w.delivered(0, 7);
        w.delivered(0, 3);
        assert!(!w.holds(0, 4));
        assert!(!w.holds(0, 6));
        let w = Written::default();
        for o in 0..(Written::RUNS_MAX as i64 + 10) {
            // Every other offset: one run each, more runs than are kept.
            w.delivered(0, 2 * o);
        }
        assert!(
            !w.holds(0, 1),
            "an offset between two of ours is another writer's"
        );
        let last = 2 * (Written::RUNS_MAX as i64 + 9);
        assert!(w.holds(0, last));
    }

    #[test]
    fn keys_name_the_cell_and_revision_with_the_member_last() {
        let events = [
            r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"commodity","member":"84/85","revision":12,"value_cny":"1.00"}"#,
            r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"import","dimension":"total","value_cny":"1.00"}"#,
            r#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":650,"revision":3}"#,
            r#"{"type":"fx_rate","currency":"USD","period":"2024-01","cny_per_unit":"7.1"}"#,
        ];
        for json in events {
            let e =
                event::parse(json.as_bytes(), &rules()).unwrap_or_else(|r| panic!("{json}: {r:?}"));
            assert_eq!(key(&e), spelled(&e), "{json}");
        }
        let e = event::parse(events[0].as_bytes(), &rules()).unwrap();
        assert_eq!(key(&e), "trade/XJ/2024-09/export/commodity/12/84/85");
    }
}
