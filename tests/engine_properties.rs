//! The engine's laws, on small random sets of events over a few regions, breakdown members,
//! flows, months, ports and exchange rates:
//!
//! - order independence: any permutation, and any split into flushed batches, ends in the
//!   same records and the same last-published value per key;
//! - idempotence: an event applied twice is a duplicate and publishes nothing;
//! - revisions: the highest revision of a cell wins whatever the order;
//! - replaying the whole stream after a flush publishes nothing;
//! - the last value published for each key is that key's current record;
//! - a restart seeded with what was published re-publishes only what differs.
//!
//! Events mix both bases (§2 `basis`): month figures and cumulative (ytd) figures, as whole
//! series and scattered, so every law above holds for mixed-basis data too. Further laws of
//! contract v2, at the end of the file:
//!
//! - replacing any lines of a month-basis data set by their cumulative figures leaves every
//!   v1 field of every record unchanged;
//! - a restatement of either basis publishes exactly the records whose content changed.
//!
//! Generated events never give one cell two different values under the same revision: that
//! is the one case where the contract makes log order matter.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;

use silkroute::engine::record::fingerprint;
use silkroute::engine::{Engine, EngineSettings, Outcome};
use silkroute::event::{self, ParseRules};
use silkroute::period::Period;

const REGIONS: [&str; 3] = ["AA", "BB", "CN"];
/// (dimension, member) lines of a region.
const LINES: [(&str, Option<&str>); 4] = [
    ("total", None),
    ("commodity", Some("m1")),
    ("commodity", Some("m2")),
    ("partner_group", Some("x")),
];
const FLOWS: [&str; 3] = ["import", "export", "total"];
/// Few months, so that YTD and prior windows are often complete.
const TRADE_PERIODS: [&str; 6] = [
    "2023-01", "2023-02", "2023-03", "2024-01", "2024-02", "2024-03",
];
/// Yuan in fen: small values so that ties in ranks and leaders happen.
const CNY: [i64; 6] = [0, 100, 250, 10_000, 10_001, 700];
const USD: [Option<i64>; 4] = [None, None, Some(100), Some(330)];
const RATES: [&str; 3] = ["7", "7.3", "8"];
const PORTS: [&str; 2] = ["p1", "p2"];
/// Around the default threshold of 600.
const TRAINS: [u32; 5] = [0, 599, 600, 601, 700];

#[derive(Clone, Debug)]
enum Ev {
    Trade {
        region: usize,
        line: usize,
        flow: usize,
        period: usize,
        cny: usize,
        usd: usize,
        /// A cumulative (`basis: "ytd"`) figure rather than a month's.
        ytd: bool,
        revision: u32,
    },
    Freight {
        port: usize,
        /// Month index from 2023-01, over fifteen months (streaks need runs).
        month: u32,
        trains: usize,
        ytd: bool,
        revision: u32,
    },
    Fx {
        period: usize,
        rate: usize,
        revision: u32,
    },
}

fn freight_period(month: u32) -> String {
    Period(Period::new(2023, 1).0 + month).to_string()
}

impl Ev {
    /// Cell identity (§2) and revision.
    fn cell(&self) -> (String, u32) {
        match *self {
            Ev::Trade {
                region,
                line,
                flow,
                period,
                ytd,
                revision,
                ..
            } => (format!("t/{region}/{line}/{flow}/{period}/{ytd}"), revision),
            Ev::Freight {
                port,
                month,
                ytd,
                revision,
                ..
            } => (format!("f/{port}/{month}/{ytd}"), revision),
            Ev::Fx {
                period, revision, ..
            } => (format!("x/{period}"), revision),
        }
    }

    fn value(&self) -> (usize, usize) {
        match *self {
            Ev::Trade { cny, usd, .. } => (cny, usd),
            Ev::Freight { trains, .. } => (trains, 0),
            Ev::Fx { rate, .. } => (rate, 0),
        }
    }

    fn with_value(&mut self, (a, b): (usize, usize)) {
        match self {
            Ev::Trade { cny, usd, .. } => (*cny, *usd) = (a, b),
            Ev::Freight { trains, .. } => *trains = a,
            Ev::Fx { rate, .. } => *rate = a,
        }
    }

    fn json(&self) -> String {
        match *self {
            Ev::Trade {
                region,
                line,
                flow,
                period,
                cny,
                usd,
                ytd,
                revision,
            } => trade_json(
                region,
                line,
                flow,
                TRADE_PERIODS[period],
                CNY[cny],
                USD[usd],
                ytd,
                revision,
            ),
            Ev::Freight {
                port,
                month,
                trains,
                ytd,
                revision,
            } => freight_json(port, month, TRAINS[trains] as u64, ytd, revision),
            Ev::Fx {
                period,
                rate,
                revision,
            } => format!(
                "{{\"type\":\"fx_rate\",\"currency\":\"USD\",\"period\":\"{}\",\"cny_per_unit\":\"{}\",\"revision\":{revision}}}",
                TRADE_PERIODS[period], RATES[rate]
            ),
        }
    }

    /// The key of the record showing this cell's value, the field, and that value as JSON: a
    /// month figure is the month's `v`, a cumulative one the year-to-date (both prevail).
    fn month_field(&self) -> Option<(String, &'static str, serde_json::Value)> {
        match *self {
            Ev::Trade {
                region,
                line,
                flow,
                period,
                cny,
                ytd,
                ..
            } => {
                let (dimension, member) = LINES[line];
                let fen = CNY[cny];
                Some((
                    format!(
                        "trade/{}/{}/{dimension}/{}/{}",
                        REGIONS[region],
                        FLOWS[flow],
                        member.unwrap_or("-"),
                        TRADE_PERIODS[period]
                    ),
                    if ytd { "ytd_cny" } else { "month_cny" },
                    serde_json::json!(format!("{}.{:02}", fen / 100, fen % 100)),
                ))
            }
            Ev::Freight {
                port,
                month,
                trains,
                ytd,
                ..
            } => Some((
                format!(
                    "freight/{}/china_europe/{}",
                    PORTS[port],
                    freight_period(month)
                ),
                if ytd { "ytd_trains" } else { "month_trains" },
                serde_json::json!(TRAINS[trains]),
            )),
            Ev::Fx { .. } => None,
        }
    }
}

/// One `customs_trade` event's text (a cell: its identity, values, basis and revision).
#[allow(clippy::too_many_arguments)]
fn trade_json(
    region: usize,
    line: usize,
    flow: usize,
    period: &str,
    fen: i64,
    cents: Option<i64>,
    ytd: bool,
    revision: u32,
) -> String {
    let money = |fen: i64| format!("\"{}.{:02}\"", fen / 100, fen % 100);
    let (dimension, member) = LINES[line];
    let member = member.map_or(String::new(), |m| format!(",\"member\":\"{m}\""));
    let usd = cents.map_or(String::new(), |u| format!(",\"value_usd\":{}", money(u)));
    let basis = if ytd { ",\"basis\":\"ytd\"" } else { "" };
    format!(
        "{{\"type\":\"customs_trade\",\"region\":\"{}\",\"period\":\"{period}\",\"flow\":\"{}\",\"dimension\":\"{dimension}\"{member},\"value_cny\":{}{usd}{basis},\"revision\":{revision}}}",
        REGIONS[region], FLOWS[flow], money(fen)
    )
}

fn freight_json(port: usize, month: u32, trains: u64, ytd: bool, revision: u32) -> String {
    let basis = if ytd { ",\"basis\":\"ytd\"" } else { "" };
    format!(
        "{{\"type\":\"freight_trains\",\"port\":\"{}\",\"period\":\"{}\",\"trains\":{trains}{basis},\"revision\":{revision}}}",
        PORTS[port],
        freight_period(month),
    )
}

/// Cumulative figures a quarter of the time when `mixed`, never otherwise.
fn a_basis(mixed: bool) -> impl Strategy<Value = bool> {
    prop::bool::weighted(if mixed { 0.25 } else { 0.0 })
}

fn an_event(mixed: bool) -> impl Strategy<Value = Ev> {
    let revision = 0u32..4;
    prop_oneof![
        4 => (0..REGIONS.len(), 0..LINES.len(), 0..FLOWS.len(), 0..TRADE_PERIODS.len(),
              0..CNY.len(), 0..USD.len(), a_basis(mixed), revision.clone())
            .prop_map(|(region, line, flow, period, cny, usd, ytd, revision)| Ev::Trade {
                region, line, flow, period, cny, usd, ytd, revision,
            }),
        1 => (0..PORTS.len(), 0u32..15, 0..TRAINS.len(), a_basis(mixed), revision.clone())
            .prop_map(|(port, month, trains, ytd, revision)| {
                Ev::Freight { port, month, trains, ytd, revision }
            }),
        1 => (0..TRADE_PERIODS.len(), 0..RATES.len(), revision)
            .prop_map(|(period, rate, revision)| Ev::Fx { period, rate, revision }),
    ]
}

/// A whole trade series (region, line, flow) over the months, maybe missing one, so that
/// windows are often complete and growth, shares, ranks and leaders get computed; of one
/// basis (cumulative values are drawn as freely as month values, so derived months may be
/// negative).
fn a_series(mixed: bool) -> impl Strategy<Value = Vec<Ev>> {
    (
        0..REGIONS.len(),
        // the region totals half the time: ranks need several regions with growth
        prop::sample::select(vec![0usize, 0, 0, 1, 2, 3]),
        0..FLOWS.len(),
        prop::collection::vec(0..CNY.len(), TRADE_PERIODS.len()),
        0..USD.len(),
        prop::option::weighted(0.3, 0..TRADE_PERIODS.len()),
        a_basis(mixed),
    )
        .prop_map(|(region, line, flow, cny, usd, gap, ytd)| {
            (0..TRADE_PERIODS.len())
                .filter(|&p| Some(p) != gap)
                .map(|period| Ev::Trade {
                    region,
                    line,
                    flow,
                    period,
                    cny: cny[period],
                    usd,
                    ytd,
                    revision: 0,
                })
                .collect()
        })
}

/// A run of consecutive months of one port, so that streaks and windows build up.
fn a_freight_run(mixed: bool) -> impl Strategy<Value = Vec<Ev>> {
    (
        0..PORTS.len(),
        0u32..4,
        // Up to fifteen months: sometimes a whole year, so that TTMs get computed.
        prop::collection::vec(prop::sample::select(vec![0usize, 3, 4, 4, 4, 2, 1]), 4..16),
        a_basis(mixed),
    )
        .prop_map(|(port, start, trains, ytd)| {
            trains
                .into_iter()
                .enumerate()
                .map(|(i, trains)| Ev::Freight {
                    port,
                    month: start + i as u32,
                    trains,
                    ytd,
                    revision: 0,
                })
                .collect()
        })
}

/// Events of both bases in random order where a cell's revision always carries one value
/// (repeats become duplicates): dense series and runs, overlaid with scattered events,
/// revisions and repeats.
fn events() -> impl Strategy<Value = Vec<Ev>> {
    events_of(true)
}

/// As [`events`], month figures only: the v1 data sets.
fn month_events() -> impl Strategy<Value = Vec<Ev>> {
    events_of(false)
}

fn events_of(mixed: bool) -> impl Strategy<Value = Vec<Ev>> {
    (
        prop::collection::vec(a_series(mixed), 0..10),
        prop::collection::vec(a_freight_run(mixed), 0..2),
        prop::collection::vec(an_event(mixed), 1..30),
    )
        .prop_map(|(series, runs, scattered)| {
            let mut evs: Vec<Ev> = series.into_iter().chain(runs).flatten().collect();
            evs.extend(scattered);
            evs
        })
        .prop_shuffle()
        .prop_map(|mut evs| {
            let mut seen: BTreeMap<(String, u32), (usize, usize)> = BTreeMap::new();
            for e in &mut evs {
                let v = *seen.entry(e.cell()).or_insert_with(|| e.value());
                e.with_value(v);
            }
            evs
        })
}

/// The events and a permutation of them.
fn events_and_shuffle() -> impl Strategy<Value = (Vec<Ev>, Vec<Ev>)> {
    events().prop_flat_map(|evs| (Just(evs.clone()), Just(evs).prop_shuffle()))
}

fn rules() -> ParseRules {
    ParseRules {
        max_message_bytes: 1 << 20,
        current_month: Period::new(2024, 12),
    }
}

fn settings() -> EngineSettings {
    EngineSettings {
        top_n: 2,
        ..EngineSettings::default()
    }
}

fn apply(engine: &mut Engine, e: &Ev) -> Outcome {
    let text = e.json();
    let event = event::parse(text.as_bytes(), &rules()).unwrap_or_else(|r| panic!("{text}: {r}"));
    engine.apply(&event)
}

/// Every current record as key -> JSON.
fn records(engine: &Engine) -> BTreeMap<String, Vec<u8>> {
    engine
        .records()
        .into_iter()
        .map(|r| (r.key(), r.to_json()))
        .collect()
}

/// Re-derives every record against the engine's current ones: what differs.
fn rederived(engine: &mut Engine) -> Vec<String> {
    let current = records(engine);
    engine.reconcile_against(
        current
            .iter()
            .map(|(k, json)| (k.clone(), fingerprint(json)))
            .collect(),
    );
    engine.flush().into_iter().map(|o| o.key).collect()
}

/// Flushes into `published` (key -> last JSON published), returning how many came out.
fn publish(engine: &mut Engine, published: &mut BTreeMap<String, Vec<u8>>) -> usize {
    let out = engine.flush();
    let n = out.len();
    for o in out {
        assert_eq!(o.json, o.record.to_json(), "{}", o.key);
        published.insert(o.key, o.json);
    }
    n
}

/// Applies every event, flushing after those whose flag is set and at the end.
fn run(evs: &[Ev], flush_after: &[bool]) -> (Engine, BTreeMap<String, Vec<u8>>) {
    let mut engine = Engine::new(settings());
    let mut published = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        apply(&mut engine, e);
        if flush_after.get(i).copied().unwrap_or(false) {
            publish(&mut engine, &mut published);
        }
    }
    publish(&mut engine, &mut published);
    (engine, published)
}

fn show(map: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

proptest! {
    #![proptest_config(Config { cases: 128, ..Config::default() })]

    #[test]
    fn any_order_and_any_batching_end_in_the_same_records(
        (evs, shuffled) in events_and_shuffle(),
        flush_after in prop::collection::vec(any::<bool>(), 120),
    ) {
        let (a, published_a) = run(&evs, &[]);
        let (b, published_b) = run(&shuffled, &[]);
        let (c, published_c) = run(&shuffled, &flush_after);
        let final_a = records(&a);
        prop_assert_eq!(show(&final_a), show(&records(&b)));
        prop_assert_eq!(show(&final_a), show(&records(&c)));
        prop_assert_eq!(show(&published_a), show(&published_b));
        prop_assert_eq!(show(&published_a), show(&published_c));
    }

    #[test]
    fn the_last_value_published_for_each_key_is_its_current_record(
        evs in events(),
        flush_after in prop::collection::vec(any::<bool>(), 120),
    ) {
        let (engine, published) = run(&evs, &flush_after);
        prop_assert_eq!(show(&published), show(&records(&engine)));
    }

    #[test]
    fn an_event_applied_twice_is_a_duplicate_and_publishes_nothing(evs in events()) {
        let (once, _) = run(&evs, &[]);
        let mut twice = Engine::new(settings());
        for e in &evs {
            let first = apply(&mut twice, e);
            twice.flush();
            // Again at once: a duplicate of itself (or as stale as the first time, when a
            // higher revision of the cell came earlier).
            let expected = if first == Outcome::Stale { Outcome::Stale } else { Outcome::Duplicate };
            prop_assert_eq!(apply(&mut twice, e), expected, "{}", e.json());
            let again = twice.flush();
            prop_assert!(again.is_empty(), "{} republished {:?}", e.json(),
                again.iter().map(|o| &o.key).collect::<Vec<_>>());
        }
        prop_assert_eq!(show(&records(&once)), show(&records(&twice)));
    }

    #[test]
    fn the_highest_revision_of_each_cell_wins_in_any_order(
        (evs, shuffled) in events_and_shuffle(),
    ) {
        // What each application must report, from the revision rule alone.
        let mut current: BTreeMap<String, (u32, (usize, usize))> = BTreeMap::new();
        let mut engine = Engine::new(settings());
        for e in &shuffled {
            let (cell, revision) = e.cell();
            let expected = match current.get(&cell) {
                None => Outcome::Applied,
                Some(&(r, _)) if revision > r => Outcome::Applied,
                Some(&(r, _)) if revision < r => Outcome::Stale,
                Some(&(_, v)) if v == e.value() => Outcome::Duplicate,
                Some(_) => Outcome::Applied,
            };
            if expected == Outcome::Applied {
                current.insert(cell, (revision, e.value()));
            }
            prop_assert_eq!(apply(&mut engine, e), expected, "{}", e.json());
        }
        engine.flush();
        let now = records(&engine);
        // The winner is the event of highest revision, whatever order they came in.
        let mut best: BTreeMap<String, &Ev> = BTreeMap::new();
        for e in &evs {
            let (cell, revision) = e.cell();
            let keep = best.get(&cell).is_some_and(|b| b.cell().1 >= revision);
            if !keep {
                best.insert(cell, e);
            }
        }
        for e in best.values() {
            let Some((key, field, value)) = e.month_field() else { continue };
            let record: serde_json::Value = serde_json::from_slice(
                now.get(&key).unwrap_or_else(|| panic!("no record {key}")),
            ).unwrap();
            prop_assert_eq!(&record[field], &value, "{}", key);
        }
    }

    #[test]
    fn replaying_the_whole_stream_after_a_flush_publishes_nothing(
        (evs, shuffled) in events_and_shuffle(),
    ) {
        let (mut engine, _) = run(&evs, &[]);
        let before = records(&engine);
        for e in &shuffled {
            let outcome = apply(&mut engine, e);
            prop_assert!(outcome != Outcome::Applied, "{} applied again", e.json());
        }
        let out = engine.flush();
        prop_assert!(out.is_empty(), "republished {:?}", out.iter().map(|o| &o.key).collect::<Vec<_>>());
        prop_assert_eq!(show(&before), show(&records(&engine)));
        // Re-deriving everything finds nothing new either.
        prop_assert!(rederived(&mut engine).is_empty());
    }

    #[test]
    fn changes_discarded_after_a_restore_leave_later_flushes_current(
        evs in events(),
        cut in 0usize..120,
    ) {
        // A restore applies the changelog and discards what it changed without deriving the
        // records; the events consumed after it flush as usual, and what they return must be
        // the current records, derived from the years the discard stored.
        let cut = cut.min(evs.len());
        let (fresh, _) = run(&evs, &[]);
        let current = records(&fresh);
        let mut engine = Engine::new(settings());
        for e in &evs[..cut] {
            apply(&mut engine, e);
        }
        engine.discard_changes();
        for e in &evs[cut..] {
            apply(&mut engine, e);
        }
        for o in engine.flush() {
            prop_assert_eq!(
                current.get(&o.key).map(|j| String::from_utf8_lossy(j).into_owned()),
                Some(String::from_utf8_lossy(&o.json).into_owned()),
                "{}", o.key
            );
        }
        prop_assert_eq!(show(&records(&engine)), show(&current));
    }

    #[test]
    fn reconciling_against_what_kafka_holds_publishes_exactly_the_difference(
        evs in events(),
        cut in 0usize..120,
        own_cut in 0usize..120,
        took_over in any::<bool>(),
    ) {
        // Kafka holds the records of a prefix of the stream (published by an earlier run, or by
        // the instance that owned these keys before).
        let cut = cut.min(evs.len());
        let (_, held) = run(&evs[..cut], &[]);
        // This engine applies the whole stream. After a restart it has returned nothing yet;
        // after a takeover it has returned its own view at another point of the stream, which
        // never reached Kafka.
        let mut engine = Engine::new(settings());
        let own_cut = own_cut.min(evs.len());
        for (i, e) in evs.iter().enumerate() {
            if took_over && i == own_cut {
                engine.flush();
            }
            apply(&mut engine, e);
        }
        if took_over {
            engine.flush();
        } else {
            engine.discard_changes();
        }
        engine.reconcile_against(
            held.iter()
                .map(|(k, json)| (k.clone(), fingerprint(json)))
                .collect(),
        );
        let out: BTreeMap<String, Vec<u8>> = engine
            .flush()
            .into_iter()
            .map(|o| (o.key, o.json))
            .collect();
        let expected: BTreeMap<String, Vec<u8>> = records(&engine)
            .into_iter()
            .filter(|(k, v)| held.get(k) != Some(v))
            .collect();
        prop_assert_eq!(show(&out), show(&expected));
        prop_assert!(engine.flush().is_empty());
        prop_assert!(rederived(&mut engine).is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// A reference model: contract §3 computed naively from the current cells
// ---------------------------------------------------------------------------------------

use serde_json::{json, Value};

type TradeCells = BTreeMap<(usize, usize, usize, u32), (i64, Option<i64>)>;

/// The current cells (highest revision wins), and every record §3 defines on them, computed
/// the slow, obvious way.
struct Model {
    /// (region, line, flow, period) -> (fen, cents if given); flow 2 is the explicit total.
    trade: TradeCells,
    /// period -> yuan per dollar in millionths
    usd: BTreeMap<u32, i64>,
    /// (port, period) -> trains
    freight: BTreeMap<(usize, u32), u64>,
}

fn period_of(text: &str) -> u32 {
    Period::parse(text).unwrap().0
}

fn money(fen: i64) -> Value {
    json!(format!("{}.{:02}", fen / 100, fen % 100))
}

fn growth(now: i64, before: i64) -> f64 {
    (now - before) as f64 * 100.0 / before as f64
}

fn half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 0 => q,
        std::cmp::Ordering::Equal => q + 1,
    }
}

impl Model {
    fn new(evs: &[Ev]) -> Model {
        let mut best: BTreeMap<String, &Ev> = BTreeMap::new();
        for e in evs {
            let (cell, revision) = e.cell();
            if best.get(&cell).is_none_or(|b| b.cell().1 < revision) {
                best.insert(cell, e);
            }
        }
        let mut m = Model {
            trade: BTreeMap::new(),
            usd: BTreeMap::new(),
            freight: BTreeMap::new(),
        };
        for e in best.values() {
            match **e {
                Ev::Trade {
                    region,
                    line,
                    flow,
                    period,
                    cny,
                    usd,
                    ..
                } => {
                    m.trade.insert(
                        (region, line, flow, period_of(TRADE_PERIODS[period])),
                        (CNY[cny], USD[usd]),
                    );
                }
                Ev::Fx { period, rate, .. } => {
                    let micros = (RATES[rate].parse::<f64>().unwrap() * 1e6).round() as i64;
                    m.usd.insert(period_of(TRADE_PERIODS[period]), micros);
                }
                Ev::Freight {
                    port,
                    month,
                    trains,
                    ..
                } => {
                    m.freight.insert(
                        (port, period_of(&freight_period(month))),
                        TRAINS[trains] as u64,
                    );
                }
            }
        }
        m
    }

    /// The month's value of a series: the explicit total, else import + export.
    fn month(&self, r: usize, l: usize, flow: usize, p: u32) -> Option<(i64, Option<i64>)> {
        if let Some(&v) = self.trade.get(&(r, l, flow, p)) {
            return Some(v);
        }
        if flow != 2 {
            return None;
        }
        let i = self.trade.get(&(r, l, 0, p))?;
        let e = self.trade.get(&(r, l, 1, p))?;
        let usd = match (i.1, e.1) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        Some((i.0 + e.0, usd))
    }

    /// (sum, months present) over `from..=to`.
    fn window(&self, r: usize, l: usize, flow: usize, from: u32, to: u32) -> (i64, u32) {
        (from..=to)
            .filter_map(|q| self.month(r, l, flow, q))
            .fold((0, 0), |(s, n), (v, _)| (s + v, n + 1))
    }

    fn ytd(&self, r: usize, l: usize, flow: usize, p: u32) -> (i64, u32) {
        self.window(r, l, flow, p - p % 12, p)
    }

    fn complete_ytd(&self, r: usize, l: usize, flow: usize, p: u32) -> Option<i64> {
        let (sum, n) = self.ytd(r, l, flow, p);
        (n == p % 12 + 1).then_some(sum)
    }

    fn prior(&self, r: usize, l: usize, flow: usize, p: u32) -> Option<i64> {
        self.complete_ytd(r, l, flow, p - 12)
    }

    fn yoy_parts(&self, r: usize, l: usize, flow: usize, p: u32) -> Option<(i64, i64)> {
        let now = self.complete_ytd(r, l, flow, p)?;
        let before = self.prior(r, l, flow, p).filter(|&v| v > 0)?;
        Some((now, before))
    }

    fn share(&self, r: usize, l: usize, flow: usize, p: u32) -> Option<f64> {
        let member = self.complete_ytd(r, l, flow, p)?;
        let total = self.complete_ytd(r, 0, flow, p).filter(|&t| t > 0)?;
        Some(member as f64 * 100.0 / total as f64)
    }

    fn ytd_usd(&self, r: usize, l: usize, flow: usize, p: u32) -> Option<i64> {
        let mut cents = 0i64;
        for q in p - p % 12..=p {
            if let Some((fen, usd)) = self.month(r, l, flow, q) {
                cents += match usd {
                    Some(c) => c,
                    None => half_even(fen as i128 * 1_000_000, *self.usd.get(&q)? as i128) as i64,
                };
            }
        }
        Some(cents)
    }

    /// (rank, ranked) of region `r` for (flow, p), regions other than CN competing.
    fn rank(&self, r: usize, flow: usize, p: u32) -> Option<(u64, u64)> {
        let excluded = |x: usize| REGIONS[x] == "CN";
        if excluded(r) {
            return None;
        }
        let (a, b) = self.yoy_parts(r, 0, flow, p)?;
        let others: Vec<(i64, i64)> = (0..REGIONS.len())
            .filter(|&x| !excluded(x))
            .filter_map(|x| self.yoy_parts(x, 0, flow, p))
            .collect();
        let above = others
            .iter()
            .filter(|&&(c, d)| c as i128 * b as i128 > a as i128 * d as i128)
            .count();
        Some((above as u64 + 1, others.len() as u64))
    }

    fn records(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let periods: Vec<u32> = TRADE_PERIODS.iter().map(|t| period_of(t)).collect();
        let text = |p: u32| Period(p).to_string();
        for (r, region) in REGIONS.iter().enumerate() {
            for (l, (dimension, member)) in LINES.iter().enumerate() {
                for (flow, flow_name) in FLOWS.iter().enumerate() {
                    for &p in &periods {
                        let Some((month, _)) = self.month(r, l, flow, p) else {
                            continue;
                        };
                        let (ytd, months) = self.ytd(r, l, flow, p);
                        let ttm = self.window(r, l, flow, p - 11, p);
                        let rank = if l == 0 { self.rank(r, flow, p) } else { None };
                        let complete = self.complete_ytd(r, l, flow, p);
                        let prior_usd = self
                            .prior(r, l, flow, p)
                            .and_then(|_| self.ytd_usd(r, l, flow, p - 12));
                        let usd_yoy = match (complete, self.ytd_usd(r, l, flow, p), prior_usd) {
                            (Some(_), Some(now), Some(before)) if before > 0 => {
                                Some(growth(now, before))
                            }
                            _ => None,
                        };
                        let v = json!({
                            "kind": "trade", "region": region, "flow": flow_name,
                            "dimension": dimension, "member": member, "period": text(p),
                            "month_cny": money(month), "ytd_cny": money(ytd),
                            "months_in_ytd": months,
                            "prior_ytd_cny": self.prior(r, l, flow, p).map(money),
                            "ytd_yoy_pct": self.yoy_parts(r, l, flow, p).map(|(a, b)| growth(a, b)),
                            "ytd_basis": complete.map_or("partial", |_| "derived"),
                            "ytd_gap_cny": null,
                            "ytd_usd": self.ytd_usd(r, l, flow, p).map(money),
                            "prior_ytd_usd": prior_usd.map(money),
                            "ytd_usd_yoy_pct": usd_yoy,
                            "ttm_cny": (ttm.1 == 12).then(|| money(ttm.0)),
                            "share_pct": if l == 0 { None } else { self.share(r, l, flow, p) },
                            "yoy_rank": rank.map(|x| x.0),
                            "yoy_rank_of": rank.map(|x| x.1),
                        });
                        out.insert(
                            format!(
                                "trade/{}/{flow_name}/{dimension}/{}/{}",
                                region,
                                member.unwrap_or("-"),
                                text(p)
                            ),
                            v,
                        );
                    }
                }
            }
            for dimension in ["commodity", "partner_group"] {
                let lines: Vec<usize> = (0..LINES.len())
                    .filter(|&l| LINES[l].0 == dimension)
                    .collect();
                for (flow, flow_name) in FLOWS.iter().enumerate() {
                    for &p in &periods {
                        if !lines.iter().any(|&l| self.month(r, l, flow, p).is_some()) {
                            continue;
                        }
                        let complete: Vec<usize> = lines
                            .iter()
                            .copied()
                            .filter(|&l| {
                                self.month(r, l, flow, p).is_some()
                                    && self.complete_ytd(r, l, flow, p).is_some()
                            })
                            .collect();
                        let name = |l: usize| LINES[l].1.unwrap();
                        let mut by_share = complete.clone();
                        by_share.sort_by(|&a, &b| {
                            self.complete_ytd(r, b, flow, p)
                                .cmp(&self.complete_ytd(r, a, flow, p))
                                .then(name(a).cmp(name(b)))
                        });
                        let mut by_yoy: Vec<(usize, (i64, i64))> = complete
                            .iter()
                            .filter_map(|&l| self.yoy_parts(r, l, flow, p).map(|g| (l, g)))
                            .collect();
                        by_yoy.sort_by(|(a, (a1, a2)), (b, (b1, b2))| {
                            (*b1 as i128 * *a2 as i128)
                                .cmp(&(*a1 as i128 * *b2 as i128))
                                .then(name(*a).cmp(name(*b)))
                        });
                        let top_n = settings().top_n;
                        let v = json!({
                            "kind": "trade_leaders", "region": region, "flow": flow_name,
                            "dimension": dimension, "period": text(p),
                            "members_ranked": complete.len(),
                            "by_share": by_share.iter().take(top_n).map(|&l| json!({
                                "member": name(l),
                                "ytd_cny": money(self.complete_ytd(r, l, flow, p).unwrap()),
                                "share_pct": self.share(r, l, flow, p),
                            })).collect::<Vec<_>>(),
                            "by_yoy": by_yoy.iter().take(top_n).map(|&(l, (a, b))| json!({
                                "member": name(l), "ytd_yoy_pct": growth(a, b),
                            })).collect::<Vec<_>>(),
                        });
                        out.insert(
                            format!("leaders/{}/{flow_name}/{dimension}/{}", region, text(p)),
                            v,
                        );
                    }
                }
            }
        }
        let threshold = settings().streak_threshold as u64;
        for (&(port, p), &trains) in &self.freight {
            let window = |from: u32, to: u32| {
                (from..=to)
                    .filter_map(|q| self.freight.get(&(port, q)))
                    .fold((0u64, 0u32), |(s, n), &t| (s + t, n + 1))
            };
            let (ytd, months) = window(p - p % 12, p);
            let prior = window(p - 12 - p % 12, p - 12);
            let prior = (prior.1 == p % 12 + 1).then_some(prior.0);
            let yoy = match prior {
                Some(b) if b > 0 && months == p % 12 + 1 => Some(growth(ytd as i64, b as i64)),
                _ => None,
            };
            let ttm = window(p - 11, p);
            let streak = (0..=p)
                .take_while(|&k| {
                    self.freight
                        .get(&(port, p - k))
                        .is_some_and(|&t| t > threshold)
                })
                .count();
            let v = json!({
                "kind": "freight", "port": PORTS[port], "service": "china_europe",
                "period": text(p), "month_trains": trains, "ytd_trains": ytd,
                "months_in_ytd": months,
                "ytd_basis": if months == p % 12 + 1 { "derived" } else { "partial" },
                "ytd_gap_trains": null,
                "prior_ytd_trains": prior, "ytd_yoy_pct": yoy,
                "ttm_trains": (ttm.1 == 12).then_some(ttm.0),
                "streak_months": streak, "streak_threshold": threshold,
            });
            out.insert(
                format!("freight/{}/china_europe/{}", PORTS[port], text(p)),
                v,
            );
        }
        out
    }
}

/// Equal, with percentages allowed the engine's rounding to six decimals.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1e-6
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(Config { cases: 128, ..Config::default() })]

    #[test]
    fn records_are_the_contract_definitions_applied_to_the_current_cells(evs in month_events()) {
        let (engine, _) = run(&evs, &[]);
        let got: BTreeMap<String, Value> = records(&engine)
            .into_iter()
            .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
            .collect();
        let want = Model::new(&evs).records();
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (key, w) in &want {
            let g = &got[key];
            prop_assert!(same(g, w), "{}:\n engine {}\n model  {}", key, g, w);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Contract v2: cumulative figures
// ---------------------------------------------------------------------------------------

/// Cents of one month's figure: its own dollars, else its yuan at the month's rate.
fn month_cents(model: &Model, value: (i64, Option<i64>), p: u32) -> Option<i64> {
    match value.1 {
        Some(c) => Some(c),
        None => Some(half_even(value.0 as i128 * 1_000_000, *model.usd.get(&p)? as i128) as i64),
    }
}

/// The largest k (≤ `months`) such that each series' presence is the same over months
/// 1..=k of the year starting at `first`: a prefix a cumulative release can replace without
/// giving a series a value of another basis than its partner's in some month. Always ≥ 1.
fn replaceable(present: impl Fn(u32) -> Vec<bool>, first: u32, months: u32) -> u32 {
    let january = present(first);
    (1..=months)
        .take_while(|&k| present(first + k - 1) == january)
        .last()
        .unwrap_or(0)
}

/// The month-basis data set of `model` as events (revision 0), with the trade lines whose
/// flag is set in `lines` (index region × 4 + line) and the ports set in `ports` given as
/// customs publish them: each year's first months as cumulative figures
/// (c(M) = Σ m(1..M), for each of import, export and the total flow, dollars likewise) and
/// no month figures there; later months as they were.
///
/// The replaced prefix of a year stops before the first month where some series of the line
/// appears or disappears (see [`replaceable`]); January is always replaced. The total flow
/// of a replaced month is given as an explicit cumulative total (the sum of the v1 totals,
/// explicit or import + export): its dollars then match v1's exactly, where a derived
/// cumulative total would add separately rounded import and export dollars.
fn as_cumulative(model: &Model, lines: &[bool], ports: &[bool]) -> Vec<String> {
    let mut out = Vec::new();
    for (&p, &micros) in &model.usd {
        out.push(format!(
            "{{\"type\":\"fx_rate\",\"currency\":\"USD\",\"period\":\"{}\",\"cny_per_unit\":\"{}.{:06}\"}}",
            Period(p), micros / 1_000_000, micros % 1_000_000
        ));
    }
    let years = [Period::new(2023, 1).0, Period::new(2024, 1).0];
    for r in 0..REGIONS.len() {
        for l in 0..LINES.len() {
            let cumulative = lines[r * LINES.len() + l];
            for first in years {
                let k = if cumulative {
                    replaceable(
                        |q| (0..3).map(|f| model.month(r, l, f, q).is_some()).collect(),
                        first,
                        3,
                    )
                } else {
                    0
                };
                for q in first..first + 3 {
                    let period = Period(q).to_string();
                    if q < first + k {
                        for f in 0..3 {
                            if model.month(r, l, f, q).is_none() {
                                continue;
                            }
                            let mut fen = 0;
                            let mut cents = Some(0);
                            for i in first..=q {
                                let v = model.month(r, l, f, i).expect("present all along");
                                fen += v.0;
                                cents = cents.and_then(|c| Some(c + month_cents(model, v, i)?));
                            }
                            out.push(trade_json(r, l, f, &period, fen, cents, true, 0));
                        }
                    } else {
                        for f in 0..3 {
                            if let Some(&(fen, cents)) = model.trade.get(&(r, l, f, q)) {
                                out.push(trade_json(r, l, f, &period, fen, cents, false, 0));
                            }
                        }
                    }
                }
            }
        }
    }
    let first_month = Period::new(2023, 1).0;
    for (port, &cumulative) in ports.iter().enumerate() {
        for (first, months) in [(first_month, 12), (first_month + 12, 12)] {
            let k = if cumulative {
                replaceable(
                    |q| vec![model.freight.contains_key(&(port, q))],
                    first,
                    months,
                )
            } else {
                0
            };
            for q in first..first + months {
                let month = q - first_month;
                let Some(&trains) = model.freight.get(&(port, q)) else {
                    continue;
                };
                if q < first + k {
                    let sum = (first..=q).map(|i| model.freight[&(port, i)]).sum();
                    out.push(freight_json(port, month, sum, true, 0));
                } else {
                    out.push(freight_json(port, month, trains, false, 0));
                }
            }
        }
    }
    out
}

/// Every current record of `engine`, parsed, with `ytd_basis` left out: the one field that
/// tells a reported cumulative from a derived one.
fn all_but_ytd_basis(engine: &Engine) -> BTreeMap<String, Value> {
    records(engine)
        .into_iter()
        .map(|(k, json)| {
            let mut v: Value = serde_json::from_slice(&json).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("ytd_basis");
            }
            (k, v)
        })
        .collect()
}

proptest! {
    #![proptest_config(Config { cases: 128, ..Config::default() })]

    /// Every record key, and every field of every record but `ytd_basis` (so every v1 field,
    /// and `ytd_gap_cny`, `prior_ytd_usd`, `ytd_usd_yoy_pct` too), is the same whether the
    /// chosen lines and ports come as month figures or as cumulative ones.
    #[test]
    fn cumulative_figures_in_place_of_months_leave_every_v1_field_unchanged(
        evs in month_events(),
        lines in prop::collection::vec(any::<bool>(), REGIONS.len() * LINES.len()),
        ports in prop::collection::vec(any::<bool>(), PORTS.len()),
    ) {
        let model = Model::new(&evs);
        let mut months = Engine::new(settings());
        let mut cumulative = Engine::new(settings());
        let none = vec![false; lines.len()];
        for (engine, lines, ports) in [
            (&mut months, &none[..], &[false, false][..]),
            (&mut cumulative, &lines[..], &ports[..]),
        ] {
            for text in as_cumulative(&model, lines, ports) {
                let event = event::parse(text.as_bytes(), &rules())
                    .unwrap_or_else(|r| panic!("{text}: {r}"));
                prop_assert_eq!(engine.apply(&event), Outcome::Applied, "{}", text);
            }
            engine.flush();
        }
        // The re-emitted month-basis set is the original one.
        prop_assert_eq!(show(&records(&months)), show(&records(&run(&evs, &[]).0)));
        let want = all_but_ytd_basis(&months);
        let got = all_but_ytd_basis(&cumulative);
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (key, w) in &want {
            prop_assert_eq!(&got[key], w, "{}", key);
        }
    }

    #[test]
    fn a_restatement_of_either_basis_publishes_exactly_the_records_whose_content_changed(
        evs in events(),
        flush_after in prop::collection::vec(any::<bool>(), 120),
        (restated, ytd, revision) in (an_event(true), any::<bool>(), 4u32..6),
    ) {
        let mut restated = restated;
        match &mut restated {
            Ev::Trade { ytd: b, revision: r, .. } | Ev::Freight { ytd: b, revision: r, .. } => {
                (*b, *r) = (ytd, revision);
            }
            Ev::Fx { revision: r, .. } => *r = revision,
        }
        let (mut engine, _) = run(&evs, &flush_after);
        let before = records(&engine);
        prop_assert_eq!(apply(&mut engine, &restated), Outcome::Applied);
        let out: BTreeMap<String, Vec<u8>> =
            engine.flush().into_iter().map(|o| (o.key, o.json)).collect();
        // A full re-derivation from scratch, with the restatement among the events.
        let mut all = evs.clone();
        all.push(restated.clone());
        let after = records(&run(&all, &[]).0);
        let changed: BTreeMap<String, Vec<u8>> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(show(&out), show(&changed), "{}", restated.json());
        prop_assert_eq!(show(&records(&engine)), show(&after));
    }
}
