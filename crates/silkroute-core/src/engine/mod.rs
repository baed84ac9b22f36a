//! The indicator engine: validated events in, changed indicator records out.
//!
//! Pure and synchronous: no I/O, no clock, no async. [`Engine::apply`] folds one event into
//! the cell store under the revision rules (§2) and marks what it affects; [`Engine::flush`]
//! re-derives only the marked records and returns those whose JSON differs from what was last
//! returned for their key. Records are a pure function of the current cells, so any order of
//! the same events (without same-revision conflicts) ends in the same records.
//!
//! Month and cumulative (`basis: "ytd"`) figures are separate cells (§2); every window is
//! derived from both together by the rules of §3 "Deriving months and year-to-date"
//! ([`derive`]). A change to month M of either basis reaches at most December of the next
//! year (and, for a freight streak, the line's later months), whatever else is stored.

pub mod derive;
mod freight;
mod fx;
pub mod months;
pub mod record;
mod trade;

use crate::event::Event;
use record::{fingerprint, Output, Published, Record};

/// What the engine needs from the configuration.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// `freight.streak_threshold`: a month counts towards a streak when strictly above it.
    pub streak_threshold: u32,
    /// `ranking.exclude_regions`: regions never ranked (the national aggregate).
    pub exclude_regions: Vec<String>,
    /// `ranking.top_n`: length of the leaders lists.
    pub top_n: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            streak_threshold: 600,
            exclude_regions: vec!["CN".to_string()],
            top_n: 10,
        }
    }
}

/// What became of one event (§2 "Revisions, duplicates, order").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Applied,
    /// Lower revision than the cell's current one.
    Stale,
    /// Same revision and the same values as the current one.
    Duplicate,
}

/// The revision rule for one cell: a higher revision wins; an equal one with different values
/// wins too (later in log order); an equal one with equal values is a duplicate.
pub(crate) fn revise<V: PartialEq>(
    present: bool,
    current: u32,
    current_value: &V,
    revision: u32,
    value: &V,
) -> Outcome {
    if !present || revision > current {
        Outcome::Applied
    } else if revision < current {
        Outcome::Stale
    } else if current_value == value {
        Outcome::Duplicate
    } else {
        Outcome::Applied
    }
}

/// Sorts outputs by key, stably. An output is a few hundred bytes and a flush may return
/// thousands, so this sorts (key, index) pairs and then moves the outputs into place within
/// the same vector, following the permutation's cycles: no second vector of outputs to
/// allocate (and fault in) per flush.
fn sort_by_key(mut out: Vec<Output>) -> Vec<Output> {
    if out.len() < 2 {
        return out;
    }
    let mut order: Vec<u32> = {
        let mut keyed: Vec<(&str, u32)> = out
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key.as_str(), i as u32))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(b.0));
        keyed.into_iter().map(|(_, i)| i).collect()
    };
    // Position `j` takes the output now at `order[j]`; a placed position is marked by
    // pointing at itself.
    for start in 0..out.len() {
        let mut j = start;
        loop {
            let k = order[j] as usize;
            order[j] = j as u32;
            if k == start || k == j {
                break;
            }
            out.swap(j, k);
            j = k;
        }
    }
    out
}

/// Where a flush hands each changed record: key, JSON, record and its series' slot; false if
/// it was not taken.
type Sink<'a> = dyn FnMut(&str, &[u8], &Record, Option<SeriesSlot>) -> bool + 'a;

/// A series' place in one engine ([`Engine::generation`]): dense, given when the engine first
/// holds the series and never given to another, so that a caller keeping something per series
/// (the service's gauges) can index a vector by it instead of hashing the series' key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesSlot {
    /// A trade line's flow: the line's number times the number of flows (import, export and
    /// their total), plus the flow's index.
    Trade(u32),
    /// A freight line's number.
    Freight(u32),
}

/// Numbers the engines of this process, for [`Engine::generation`].
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct Engine {
    settings: EngineSettings,
    trade: trade::TradeBook,
    freight: freight::FreightBook,
    fx: fx::FxBook,
    /// After [`Engine::reconcile_against`], until the next flush: what Kafka holds, replacing
    /// the engine's own idea of what was published.
    published: Option<Published>,
    /// Reused serialization buffer: most re-derived records turn out unchanged, and those
    /// need no allocation.
    scratch: Vec<u8>,
    /// Reused key buffer: the key of each record handed over is written here rather than
    /// into a `String` of its own.
    key: String,
    /// This engine among the process's: its [`SeriesSlot`]s mean nothing to another.
    generation: u64,
}

impl Engine {
    pub fn new(settings: EngineSettings) -> Engine {
        Engine {
            trade: trade::TradeBook::new(&settings.exclude_regions),
            freight: freight::FreightBook::new(settings.streak_threshold),
            fx: fx::FxBook::default(),
            settings,
            published: None,
            scratch: Vec::with_capacity(1024),
            key: String::with_capacity(128),
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Which engine of this process this is: the [`SeriesSlot`]s a flush hands over hold for
    /// this engine only (a restore builds a new one, whose slots are given afresh).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    pub fn apply(&mut self, event: &Event<'_>) -> Outcome {
        match event {
            Event::Trade(e) => self.trade.apply(e),
            Event::Freight(e) => self.freight.apply(e),
            Event::Fx(e) => self.fx.apply(e),
        }
    }

    /// Cells held (trade, freight and exchange-rate cells).
    pub fn cells(&self) -> u64 {
        self.trade.cells() + self.freight.cells() + self.fx.cells()
    }

    /// Rough heap bytes of the cell store, for the memory benchmark.
    pub fn approx_bytes(&self) -> usize {
        self.trade.approx_bytes()
    }

    /// Re-derives every record the events since the last flush may have changed and returns,
    /// sorted by key, those whose content differs from what was last returned for the key.
    pub fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        let collected: Result<(), std::convert::Infallible> =
            self.flush_each(|key, json, record| {
                out.push(Output {
                    key: key.to_string(),
                    json: json.to_vec(),
                    record: record.clone(),
                });
                Ok(())
            });
        let Ok(()) = collected;
        sort_by_key(out)
    }

    /// [`Engine::flush`] without collecting: hands each changed record to `sink` (key, JSON,
    /// record) as it is derived, in no particular order, so that a flush that changes every
    /// record (late exchange rates, a takeover) never holds them all at once. The first error
    /// `sink` returns ends the handing over and is returned; the records not handed over count
    /// as not returned, which only matters to a caller that goes on with this engine (the
    /// service rebuilds it from the changelog instead).
    pub fn flush_each<E>(
        &mut self,
        mut sink: impl FnMut(&str, &[u8], &Record) -> Result<(), E>,
    ) -> Result<(), E> {
        self.flush_each_noting(|key, json, record, _| sink(key, json, record), |_, _, _| {})
    }

    /// [`Engine::flush_each`] that also hands over each record's [`SeriesSlot`] (none for a
    /// leaders record), and hands `held` (key, record, slot) each re-derived record found
    /// equal to what Kafka holds (after [`Engine::reconcile_against`], which re-derives them
    /// all): a takeover sets the gauges of every series it now publishes from the same flush,
    /// rather than deriving every record a second time.
    pub fn flush_each_noting<E>(
        &mut self,
        mut sink: impl FnMut(&str, &[u8], &Record, Option<SeriesSlot>) -> Result<(), E>,
        mut held: impl FnMut(&str, &Record, Option<SeriesSlot>),
    ) -> Result<(), E> {
        let mut failed = None;
        self.flush_with(
            &mut |key: &str, json: &[u8], record: &Record, slot: Option<SeriesSlot>| {
                if failed.is_none() {
                    failed = sink(key, json, record, slot).err();
                }
                failed.is_none()
            },
            &mut held,
        );
        self.published = None;
        failed.map_or(Ok(()), Err)
    }

    fn flush_with(
        &mut self,
        sink: &mut Sink<'_>,
        held: &mut dyn FnMut(&str, &Record, Option<SeriesSlot>),
    ) {
        self.take_usd_changes();
        let authority = self.published.as_ref();
        let scratch = &mut self.scratch;
        let key = &mut self.key;
        let mut emit = |record: &Record, published: &mut u64, slot: Option<SeriesSlot>| {
            scratch.clear();
            record.write_json(scratch);
            let fp = fingerprint(scratch);
            match authority {
                // What Kafka holds overrides what this engine last returned (which may have
                // been returned but never published by this instance).
                Some(authority) => {
                    record.write_key(key);
                    if authority.get(key) == Some(fp) {
                        *published = fp;
                        held(key, record, slot);
                        return;
                    }
                }
                None if *published == fp => return,
                None => record.write_key(key),
            }
            if sink(key, scratch, record, slot) {
                *published = fp;
            }
        };
        self.trade
            .flush(&self.fx.usd, self.settings.top_n, &mut emit);
        self.freight
            .flush(|r, p, slot| emit(&Record::Freight(r), p, Some(slot)));
    }

    /// Forgets what the events applied since the last flush changed, without emitting it:
    /// used after rebuilding state, before [`Engine::reconcile_against`] compares it with
    /// what was published.
    pub fn discard_changes(&mut self) {
        self.take_usd_changes();
        self.trade.forget_changes(&self.fx.usd);
        self.freight.forget_changes();
    }

    /// A USD rate changed since the last flush: the dollar figures of those months may too.
    fn take_usd_changes(&mut self) {
        if let Some(d) = self.fx.usd_dirty.take() {
            self.trade.mark_usd_changed(d);
        }
    }

    /// Makes the next flush re-derive every record and return those whose fingerprint
    /// differs from `published` (record key → [`fingerprint`] of the JSON last published;
    /// absent = never), which becomes the engine's idea of what was published. Used after a
    /// restart, and whenever this instance takes over keys another one published.
    pub fn reconcile_against(&mut self, published: Published) {
        self.published = Some(published);
        self.trade.mark_all();
        self.freight.mark_all();
    }

    /// Every current record as of the last flush (national ranks are re-derived by
    /// [`Engine::flush`]), sorted by key: what `replay` prints and `/v1/indicators` serves.
    pub fn records(&self) -> Vec<Record> {
        self.select(&Selection::default())
    }

    /// The current records `selection` admits, sorted by key; only those are derived, so
    /// asking for one region or one period costs that region's or period's records.
    pub fn select(&self, selection: &Selection<'_>) -> Vec<Record> {
        let mut all = Vec::new();
        self.select_each(selection, |r| all.push(r));
        let mut keyed: Vec<(String, Record)> = all.into_iter().map(|r| (r.key(), r)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.into_iter().map(|(_, r)| r).collect()
    }

    /// [`Engine::select`] without collecting or sorting: hands each record to `each`.
    pub fn select_each(&self, selection: &Selection<'_>, mut each: impl FnMut(Record)) {
        self.trade
            .all_records(&self.fx.usd, self.settings.top_n, selection, &mut each);
        self.freight
            .all_records(selection, |r| each(Record::Freight(r)));
    }
}

/// Which records [`Engine::select`] returns; every given field must match. `region` selects
/// trade and leaders records, `port` freight records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    pub kind: Option<record::RecordKind>,
    pub region: Option<&'a str>,
    pub port: Option<&'a str>,
    pub period: Option<crate::period::Period>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::record::FreightRecord;
    use super::*;
    use crate::period::Period;

    #[test]
    fn a_flush_gives_each_series_one_slot_and_no_two_series_the_same() {
        use crate::event::{parse, ParseRules};
        let rules = ParseRules {
            max_message_bytes: 4096,
            current_month: Period::new(2024, 12),
        };
        let mut engine = Engine::new(EngineSettings::default());
        let mut lines = Vec::new();
        for (region, dimension, member) in [
            ("XJ", "total", None),
            ("XJ", "partner_country", Some("KZ")),
            ("XJ", "partner_country", Some("RU")),
            ("GS", "total", None),
        ] {
            for flow in ["export", "import"] {
                for month in 1..=3 {
                    let member = member.map_or(String::new(), |m| format!(r#","member":"{m}""#));
                    lines.push(format!(
                        r#"{{"type":"customs_trade","region":"{region}","period":"2024-0{month}","flow":"{flow}","dimension":"{dimension}"{member},"value_cny":"100.00"}}"#
                    ));
                }
            }
        }
        for port in ["khorgos", "alashankou"] {
            lines.push(format!(
                r#"{{"type":"freight_trains","port":"{port}","service":"china_europe","period":"2024-03","trains":620}}"#
            ));
        }
        let mut slots: std::collections::BTreeMap<String, SeriesSlot> = Default::default();
        for (i, line) in lines.iter().enumerate() {
            engine.apply(&parse(line.as_bytes(), &rules).unwrap());
            // Flushed now and then, so that a series' slot is seen in more than one flush.
            if i % 5 != 4 && i + 1 != lines.len() {
                continue;
            }
            let flushed: Result<(), ()> = engine.flush_each_noting(
                |_, _, record, slot| {
                    let series = record.series();
                    match (record, slot) {
                        (Record::Leaders(_), None) => {}
                        (Record::Leaders(_), Some(s)) => panic!("a leaders record got {s:?}"),
                        (_, None) => panic!("{series:?} got no slot"),
                        (_, Some(s)) => {
                            let seen = *slots.entry(format!("{series:?}")).or_insert(s);
                            assert_eq!(seen, s, "{series:?} changed slots");
                        }
                    }
                    Ok(())
                },
                |_, _, _| {},
            );
            flushed.unwrap();
        }
        // 4 trade lines × 3 flows (import, export, total), and 2 freight lines.
        assert_eq!(slots.len(), 14, "{slots:?}");
        let distinct: std::collections::BTreeSet<String> =
            slots.values().map(|s| format!("{s:?}")).collect();
        assert_eq!(distinct.len(), slots.len(), "{slots:?}");
    }

    #[test]
    fn outputs_are_sorted_by_key_and_equal_keys_keep_their_order() {
        let output = |key: &str, trains: u64| Output {
            key: key.to_string(),
            json: Vec::new(),
            record: Record::Freight(FreightRecord {
                kind: "freight",
                port: Arc::from("p"),
                service: Arc::from("s"),
                period: Period::new(2024, 1),
                month_trains: Some(trains as i64),
                ytd_trains: 0,
                months_in_ytd: 0,
                ytd_basis: super::record::YtdBasis::Derived,
                ytd_gap_trains: None,
                prior_ytd_trains: None,
                ytd_yoy_pct: None,
                ttm_trains: None,
                streak_months: 0,
                streak_threshold: 0,
            }),
        };
        let keys = ["b", "a/x", "a", "b", "", "a-", "a", "b"];
        let out: Vec<Output> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| output(k, i as u64))
            .collect();
        let sorted: Vec<(String, u64)> = sort_by_key(out)
            .into_iter()
            .map(|o| match o.record {
                Record::Freight(r) => (o.key, r.month_trains.unwrap() as u64),
                _ => unreachable!(),
            })
            .collect();
        let expected: Vec<(String, u64)> = [
            ("", 4),
            ("a", 2),
            ("a", 6),
            ("a-", 5),
            ("a/x", 1),
            ("b", 0),
            ("b", 3),
            ("b", 7),
        ]
        .into_iter()
        .map(|(k, i)| (k.to_string(), i))
        .collect();
        assert_eq!(sorted, expected);

        // Longer runs with many ties, against a plain stable sort.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for n in [2usize, 3, 17, 1000] {
            let out: Vec<Output> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    output(&format!("k{}", x % 37), i as u64)
                })
                .collect();
            let mut expected: Vec<(String, u64)> = out
                .iter()
                .map(|o| match &o.record {
                    Record::Freight(r) => (o.key.clone(), r.month_trains.unwrap() as u64),
                    _ => unreachable!(),
                })
                .collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let sorted: Vec<(String, u64)> = sort_by_key(out)
                .into_iter()
                .map(|o| match o.record {
                    Record::Freight(r) => (o.key, r.month_trains.unwrap() as u64),
                    _ => unreachable!(),
                })
                .collect();
            assert_eq!(sorted, expected, "{n}");
        }
    }
}
