//! Every rule and every null case of contract §3 (and the revision rules of §2), each on a
//! small hand-written set of events whose expected figures are worked out by hand in the
//! test. The engine is driven exactly as the service drives it: raw JSON through
//! `event::parse`, then `Engine::apply` and `Engine::flush`.

// The blocking boundary (clippy.toml, src/blocking.rs) is the service's rule; tests and
// benchmarks drive it from outside, on threads of their own.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;

use serde_json::{json, Value};

use silkroute::engine::{Engine, EngineSettings, Outcome};
use silkroute::event::{self, ParseRules, Reason, Rejection};
use silkroute::period::Period;

fn rules() -> ParseRules {
    ParseRules {
        max_message_bytes: 1 << 20,
        current_month: Period::new(2025, 12),
    }
}

/// An engine with helpers to send JSON events and read records back.
struct Book {
    engine: Engine,
}

impl Book {
    fn new() -> Book {
        Book::with(EngineSettings::default())
    }

    fn with(settings: EngineSettings) -> Book {
        Book {
            engine: Engine::new(settings),
        }
    }

    fn send_text(&mut self, text: &str) -> Outcome {
        let event = event::parse(text.as_bytes(), &rules())
            .unwrap_or_else(|r| panic!("{text} was rejected: {r}"));
        self.engine.apply(&event)
    }

    fn send(&mut self, event: Value) -> Outcome {
        self.send_text(&event.to_string())
    }

    fn send_all(&mut self, events: impl IntoIterator<Item = Value>) {
        for e in events {
            assert_eq!(self.send(e.clone()), Outcome::Applied, "{e}");
        }
    }

    /// The keys a flush publishes, checking they come sorted.
    fn flush_keys(&mut self) -> Vec<String> {
        let keys: Vec<String> = self.engine.flush().into_iter().map(|o| o.key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "flush output must be sorted by key");
        keys
    }

    /// Publishes what is pending, then returns the current record of `key`, if any.
    fn record(&mut self, key: &str) -> Option<Value> {
        self.engine.flush();
        self.engine
            .records()
            .into_iter()
            .find(|r| r.key() == key)
            .map(|r| serde_json::from_slice(&r.to_json()).unwrap())
    }

    fn get(&mut self, key: &str) -> Value {
        self.record(key)
            .unwrap_or_else(|| panic!("no record {key}; have {:?}", self.keys()))
    }

    fn keys(&mut self) -> Vec<String> {
        self.engine.flush();
        self.engine.records().iter().map(|r| r.key()).collect()
    }
}

/// A `customs_trade` event for the region's whole trade.
fn trade(region: &str, period: &str, flow: &str, cny: &str) -> Value {
    json!({"type": "customs_trade", "region": region, "period": period, "flow": flow,
           "dimension": "total", "value_cny": cny})
}

/// A `customs_trade` event for one member of a breakdown.
fn part(region: &str, period: &str, flow: &str, dim: &str, member: &str, cny: &str) -> Value {
    json!({"type": "customs_trade", "region": region, "period": period, "flow": flow,
           "dimension": dim, "member": member, "value_cny": cny})
}

fn fx(period: &str, rate: &str) -> Value {
    json!({"type": "fx_rate", "currency": "USD", "period": period, "cny_per_unit": rate})
}

fn trains(port: &str, period: &str, n: u32) -> Value {
    json!({"type": "freight_trains", "port": port, "period": period, "trains": n})
}

fn with(mut event: Value, field: &str, value: Value) -> Value {
    event[field] = value;
    event
}

fn rev(event: Value, revision: u32) -> Value {
    with(event, "revision", json!(revision))
}

/// `YYYY-MM` for every month from `from` to `to` inclusive.
fn months(from: (u32, u32), to: (u32, u32)) -> Vec<String> {
    let (a, b) = (Period::new(from.0, from.1).0, Period::new(to.0, to.1).0);
    (a..=b).map(|p| Period(p).to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// YTD, prior YTD, growth, TTM
// ---------------------------------------------------------------------------------------

#[test]
fn ytd_sums_the_months_present_and_an_incomplete_ytd_has_no_prior_growth_or_share() {
    let mut b = Book::new();
    b.send_all([
        // a complete prior year window, so only the current YTD is incomplete
        trade("XJ", "2023-01", "export", "100.00"),
        trade("XJ", "2023-02", "export", "100.00"),
        trade("XJ", "2023-03", "export", "100.00"),
        trade("XJ", "2024-01", "export", "10.50"),
        // 2024-02 missing
        trade("XJ", "2024-03", "export", "20.25"),
        part("XJ", "2024-01", "export", "commodity", "steel", "1.00"),
        part("XJ", "2024-03", "export", "commodity", "steel", "1.00"),
    ]);
    let r = b.get("trade/XJ/export/total/-/2024-03");
    assert_eq!(r["month_cny"], "20.25");
    assert_eq!(r["ytd_cny"], "30.75"); // 10.50 + 20.25
    assert_eq!(r["months_in_ytd"], 2);
    // The prior window 2023-01..03 is complete, so its sum is known...
    assert_eq!(r["prior_ytd_cny"], "300.00");
    // ...but growth needs both windows complete.
    assert_eq!(r["ytd_yoy_pct"], Value::Null);
    assert_eq!(r["yoy_rank"], Value::Null);
    let steel = b.get("trade/XJ/export/commodity/steel/2024-03");
    assert_eq!(steel["months_in_ytd"], 2);
    assert_eq!(steel["share_pct"], Value::Null);
    // A month with no value has no record at all.
    assert_eq!(b.record("trade/XJ/export/total/-/2024-02"), None);
}

#[test]
fn an_incomplete_prior_window_gives_null_prior_and_growth() {
    let mut b = Book::new();
    b.send_all([
        // 2023-01 missing
        trade("XJ", "2023-02", "import", "100.00"),
        trade("XJ", "2024-01", "import", "100.00"),
        trade("XJ", "2024-02", "import", "100.00"),
    ]);
    for key in [
        "trade/XJ/import/total/-/2024-01",
        "trade/XJ/import/total/-/2024-02",
    ] {
        let r = b.get(key);
        assert_eq!(r["prior_ytd_cny"], Value::Null, "{key}");
        assert_eq!(r["ytd_yoy_pct"], Value::Null, "{key}");
    }
    assert_eq!(b.get("trade/XJ/import/total/-/2024-02")["months_in_ytd"], 2);
}

#[test]
fn growth_is_ytd_over_prior_ytd_minus_one_times_100() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2023-01", "export", "100.00"),
        trade("XJ", "2023-02", "export", "100.00"),
        trade("XJ", "2024-01", "export", "120.00"),
        trade("XJ", "2024-02", "export", "138.00"),
    ]);
    let jan = b.get("trade/XJ/export/total/-/2024-01");
    assert_eq!(jan["prior_ytd_cny"], "100.00");
    assert_eq!(jan["ytd_yoy_pct"], 20.0); // 120 / 100
    let feb = b.get("trade/XJ/export/total/-/2024-02");
    assert_eq!(feb["ytd_cny"], "258.00");
    assert_eq!(feb["prior_ytd_cny"], "200.00");
    assert_eq!(feb["ytd_yoy_pct"], 29.0); // 258 / 200
                                          // A fall is a negative percentage, and 1/3 is cut at six decimals.
    b.send_all([
        trade("TJ", "2023-01", "export", "300.00"),
        trade("TJ", "2024-01", "export", "200.00"),
    ]);
    assert_eq!(
        b.get("trade/TJ/export/total/-/2024-01")["ytd_yoy_pct"],
        -33.333333
    );
}

#[test]
fn a_prior_of_zero_gives_null_growth() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2023-01", "export", "0"),
        trade("XJ", "2024-01", "export", "5.00"),
    ]);
    let r = b.get("trade/XJ/export/total/-/2024-01");
    assert_eq!(r["prior_ytd_cny"], "0.00");
    assert_eq!(r["ytd_yoy_pct"], Value::Null);
    assert_eq!(r["yoy_rank"], Value::Null);
    assert_eq!(r["yoy_rank_of"], Value::Null);
}

#[test]
fn ttm_is_null_unless_all_twelve_months_are_present() {
    let mut b = Book::new();
    // 2023-02 .. 2024-01: twelve months valued 1 .. 12 yuan.
    for (i, p) in months((2023, 2), (2024, 1)).iter().enumerate() {
        b.send(trade("XJ", p, "export", &format!("{}.00", i + 1)));
    }
    // 1 + 2 + ... + 12 = 78, across the year boundary.
    assert_eq!(b.get("trade/XJ/export/total/-/2024-01")["ttm_cny"], "78.00");
    // 2023-12 would need 2023-01.
    assert_eq!(
        b.get("trade/XJ/export/total/-/2023-12")["ttm_cny"],
        Value::Null
    );
    // 2024-03 arrives without 2024-02: its window has 10 months.
    b.send(trade("XJ", "2024-03", "export", "1.00"));
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-03")["ttm_cny"],
        Value::Null
    );
    // Filling 2024-02 completes 2023-04 .. 2024-03: (3+...+12) + 7 + 1 = 75 + 8 = 83.
    b.send(trade("XJ", "2024-02", "export", "7.00"));
    assert_eq!(b.get("trade/XJ/export/total/-/2024-03")["ttm_cny"], "83.00");
}

// ---------------------------------------------------------------------------------------
// Dollars
// ---------------------------------------------------------------------------------------

#[test]
fn ytd_usd_converts_each_month_at_its_own_rate() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-01", "7.0"),
        fx("2024-02", "7.3"),
        trade("XJ", "2024-01", "export", "700.00"),
        trade("XJ", "2024-02", "export", "730.00"),
    ]);
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-01")["ytd_usd"],
        "100.00"
    );
    // 700 / 7.0 + 730 / 7.3 = 100 + 100
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-02")["ytd_usd"],
        "200.00"
    );
}

#[test]
fn a_missing_fx_month_makes_ytd_usd_null() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-01", "7.0"),
        trade("XJ", "2024-01", "export", "700.00"),
        trade("XJ", "2024-02", "export", "700.00"),
    ]);
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-01")["ytd_usd"],
        "100.00"
    );
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-02")["ytd_usd"],
        Value::Null
    );
    // The rate arriving late fills it in.
    b.send(fx("2024-02", "8.0"));
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-02")["ytd_usd"],
        "187.50"
    );
    // A rate of another currency is kept but is not a dollar rate.
    b.send(trade("XJ", "2024-03", "export", "1.00"));
    b.send(
        json!({"type": "fx_rate", "currency": "EUR", "period": "2024-03", "cny_per_unit": "7.8"}),
    );
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-03")["ytd_usd"],
        Value::Null
    );
}

#[test]
fn a_given_value_usd_beats_conversion() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-01", "7.0"),
        // 700 yuan at 7.0 would be 100 dollars; the producer says 99.99.
        with(
            trade("XJ", "2024-01", "export", "700.00"),
            "value_usd",
            json!("99.99"),
        ),
        // No rate for February, but the month carries its dollars.
        with(
            trade("XJ", "2024-02", "export", "700.00"),
            "value_usd",
            json!("50.01"),
        ),
    ]);
    assert_eq!(b.get("trade/XJ/export/total/-/2024-01")["ytd_usd"], "99.99");
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-02")["ytd_usd"],
        "150.00"
    );
    // A present month with neither dollars nor a rate makes the sum unknown.
    b.send(trade("XJ", "2024-03", "export", "1.00"));
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-03")["ytd_usd"],
        Value::Null
    );
}

#[test]
fn conversion_rounds_half_to_even_to_the_cent_month_by_month() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-01", "8"),
        fx("2024-02", "8"),
        // 1.00 / 8 = 0.125 -> 0.12 (2 is even)
        trade("AA", "2024-01", "export", "1.00"),
        // 3.00 / 8 = 0.375 -> 0.38 (8 is even)
        trade("BB", "2024-01", "export", "3.00"),
        // 0.20 / 8 = 0.025 -> 0.02;  0.60 / 8 = 0.075 -> 0.08
        trade("CC", "2024-01", "export", "0.20"),
        trade("DD", "2024-01", "export", "0.60"),
        // Each month is rounded before summing: 0.12 + 0.12 = 0.24, not round(0.25).
        trade("AA", "2024-02", "export", "1.00"),
    ]);
    assert_eq!(b.get("trade/AA/export/total/-/2024-01")["ytd_usd"], "0.12");
    assert_eq!(b.get("trade/BB/export/total/-/2024-01")["ytd_usd"], "0.38");
    assert_eq!(b.get("trade/CC/export/total/-/2024-01")["ytd_usd"], "0.02");
    assert_eq!(b.get("trade/DD/export/total/-/2024-01")["ytd_usd"], "0.08");
    assert_eq!(b.get("trade/AA/export/total/-/2024-02")["ytd_usd"], "0.24");
}

#[test]
fn a_revised_rate_republishes_the_dollar_figures_it_changes() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-01", "7.0"),
        fx("2024-02", "7.0"),
        trade("XJ", "2024-01", "export", "700.00"),
        trade("XJ", "2024-02", "export", "700.00"),
        trade("XJ", "2023-12", "export", "700.00"),
    ]);
    b.flush_keys();
    assert_eq!(b.send(rev(fx("2024-02", "3.5"), 1)), Outcome::Applied);
    // Only February's YTD in dollars moves: 100 + 200.
    assert_eq!(b.flush_keys(), ["trade/XJ/export/total/-/2024-02"]);
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-02")["ytd_usd"],
        "300.00"
    );
}

// ---------------------------------------------------------------------------------------
// The total flow
// ---------------------------------------------------------------------------------------

#[test]
fn the_total_flow_is_import_plus_export_when_not_given() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "import", "100.10"),
        trade("XJ", "2024-01", "export", "50.05"),
    ]);
    let t = b.get("trade/XJ/total/total/-/2024-01");
    assert_eq!(t["flow"], "total");
    assert_eq!(t["month_cny"], "150.15");
    assert_eq!(t["ytd_cny"], "150.15");
}

#[test]
fn an_explicit_total_beats_import_plus_export() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "import", "100.00"),
        trade("XJ", "2024-01", "export", "50.00"),
        trade("XJ", "2024-01", "total", "160.00"),
        trade("XJ", "2024-02", "import", "1.00"),
        trade("XJ", "2024-02", "export", "2.00"),
    ]);
    assert_eq!(
        b.get("trade/XJ/total/total/-/2024-01")["month_cny"],
        "160.00"
    );
    // February has no explicit total: derived there, and the YTD mixes both: 160 + 3.
    assert_eq!(b.get("trade/XJ/total/total/-/2024-02")["month_cny"], "3.00");
    assert_eq!(b.get("trade/XJ/total/total/-/2024-02")["ytd_cny"], "163.00");
    // The sides keep their own records.
    assert_eq!(
        b.get("trade/XJ/import/total/-/2024-01")["month_cny"],
        "100.00"
    );
}

#[test]
fn a_derived_total_needs_both_import_and_export() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "import", "100.00"),
        trade("XJ", "2024-01", "export", "50.00"),
        trade("XJ", "2024-02", "import", "100.00"),
    ]);
    assert!(b.record("trade/XJ/import/total/-/2024-02").is_some());
    assert_eq!(b.record("trade/XJ/total/total/-/2024-02"), None);
    // January's derived total stands on its own.
    assert_eq!(b.get("trade/XJ/total/total/-/2024-01")["months_in_ytd"], 1);
    // Once the export side arrives the total appears, and only then.
    b.flush_keys();
    b.send(trade("XJ", "2024-02", "export", "1.00"));
    assert_eq!(
        b.flush_keys(),
        [
            "trade/XJ/export/total/-/2024-02",
            "trade/XJ/total/total/-/2024-02"
        ]
    );
    let t = b.get("trade/XJ/total/total/-/2024-02");
    assert_eq!(
        (t["ytd_cny"].as_str(), t["months_in_ytd"].as_u64()),
        (Some("251.00"), Some(2))
    );
}

#[test]
fn a_derived_total_carries_dollars_only_when_both_sides_do() {
    let mut b = Book::new();
    b.send_all([
        with(
            trade("AA", "2024-01", "import", "700.00"),
            "value_usd",
            json!("90.00"),
        ),
        with(
            trade("AA", "2024-01", "export", "700.00"),
            "value_usd",
            json!("10.00"),
        ),
        with(
            trade("BB", "2024-01", "import", "700.00"),
            "value_usd",
            json!("90.00"),
        ),
        trade("BB", "2024-01", "export", "700.00"),
    ]);
    // Both sides carry dollars: 90 + 10.
    assert_eq!(b.get("trade/AA/total/total/-/2024-01")["ytd_usd"], "100.00");
    // Only one side does, and there is no rate: unknown.
    assert_eq!(
        b.get("trade/BB/total/total/-/2024-01")["ytd_usd"],
        Value::Null
    );
    // With a rate, the derived total is converted from its yuan: 1400 / 7 = 200, not 90 + 100.
    b.send(fx("2024-01", "7"));
    assert_eq!(b.get("trade/BB/total/total/-/2024-01")["ytd_usd"], "200.00");
    assert_eq!(b.get("trade/BB/import/total/-/2024-01")["ytd_usd"], "90.00");
    assert_eq!(
        b.get("trade/BB/export/total/-/2024-01")["ytd_usd"],
        "100.00"
    );
}

// ---------------------------------------------------------------------------------------
// Shares
// ---------------------------------------------------------------------------------------

#[test]
fn share_is_the_member_ytd_over_the_region_total_ytd() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "total", "400.00"),
        trade("XJ", "2024-02", "total", "400.00"),
        part(
            "XJ",
            "2024-01",
            "total",
            "enterprise_type",
            "private",
            "100.00",
        ),
        part(
            "XJ",
            "2024-02",
            "total",
            "enterprise_type",
            "private",
            "200.00",
        ),
    ]);
    assert_eq!(
        b.get("trade/XJ/total/enterprise_type/private/2024-01")["share_pct"],
        25.0
    );
    // (100 + 200) / (400 + 400)
    assert_eq!(
        b.get("trade/XJ/total/enterprise_type/private/2024-02")["share_pct"],
        37.5
    );
    // The share is against the same flow's total: there is no import total.
    b.send(part(
        "XJ",
        "2024-01",
        "import",
        "enterprise_type",
        "private",
        "1.00",
    ));
    assert_eq!(
        b.get("trade/XJ/import/enterprise_type/private/2024-01")["share_pct"],
        Value::Null
    );
}

#[test]
fn share_is_null_for_the_dimension_total() {
    let mut b = Book::new();
    b.send(trade("XJ", "2024-01", "total", "400.00"));
    assert_eq!(
        b.get("trade/XJ/total/total/-/2024-01")["share_pct"],
        Value::Null
    );
}

#[test]
fn share_is_null_when_either_ytd_window_is_incomplete() {
    let mut b = Book::new();
    b.send_all([
        // the member misses January
        trade("AA", "2024-01", "total", "400.00"),
        trade("AA", "2024-02", "total", "400.00"),
        part(
            "AA",
            "2024-02",
            "total",
            "partner_group",
            "belt_and_road",
            "100.00",
        ),
        // the total misses January
        trade("BB", "2024-02", "total", "400.00"),
        part(
            "BB",
            "2024-01",
            "total",
            "partner_group",
            "belt_and_road",
            "100.00",
        ),
        part(
            "BB",
            "2024-02",
            "total",
            "partner_group",
            "belt_and_road",
            "100.00",
        ),
    ]);
    assert_eq!(
        b.get("trade/AA/total/partner_group/belt_and_road/2024-02")["share_pct"],
        Value::Null
    );
    assert_eq!(
        b.get("trade/BB/total/partner_group/belt_and_road/2024-02")["share_pct"],
        Value::Null
    );
    assert_eq!(
        b.get("trade/BB/total/partner_group/belt_and_road/2024-01")["share_pct"],
        Value::Null,
        "no total at all"
    );
}

#[test]
fn share_is_null_when_the_total_is_zero() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "export", "0.00"),
        part("XJ", "2024-01", "export", "commodity", "steel", "0.00"),
    ]);
    let r = b.get("trade/XJ/export/commodity/steel/2024-01");
    assert_eq!(r["share_pct"], Value::Null);
    assert_eq!(r["ytd_cny"], "0.00");
}

// ---------------------------------------------------------------------------------------
// Freight
// ---------------------------------------------------------------------------------------

#[test]
fn freight_windows_follow_the_trade_rules_in_trains() {
    let mut b = Book::new();
    b.send_all([
        trains("khorgos", "2023-01", 500),
        trains("khorgos", "2023-02", 550),
        trains("khorgos", "2024-01", 600),
        trains("khorgos", "2024-02", 605),
    ]);
    let r = b.get("freight/khorgos/china_europe/2024-02");
    assert_eq!(r["month_trains"], 605);
    assert_eq!(r["ytd_trains"], 1205);
    assert_eq!(r["months_in_ytd"], 2);
    assert_eq!(r["prior_ytd_trains"], 1050);
    // 1205 / 1050 = 1.147619047... -> 14.761905 at six decimals
    assert_eq!(r["ytd_yoy_pct"], 14.761905);
    assert_eq!(r["ttm_trains"], Value::Null);
    // 2023-02 has no prior year at all.
    let early = b.get("freight/khorgos/china_europe/2023-02");
    assert_eq!(early["prior_ytd_trains"], Value::Null);
    assert_eq!(early["ytd_yoy_pct"], Value::Null);
}

#[test]
fn freight_ttm_needs_twelve_months() {
    let mut b = Book::new();
    for p in months((2023, 1), (2023, 12)) {
        b.send(trains("khorgos", &p, 700));
    }
    assert_eq!(
        b.get("freight/khorgos/china_europe/2023-12")["ttm_trains"],
        8400
    );
    assert_eq!(
        b.get("freight/khorgos/china_europe/2023-11")["ttm_trains"],
        Value::Null
    );
}

#[test]
fn a_streak_counts_consecutive_months_strictly_above_the_threshold() {
    let mut b = Book::new();
    b.send_all([
        trains("khorgos", "2024-01", 700),
        trains("khorgos", "2024-02", 601),
        trains("khorgos", "2024-03", 650),
    ]);
    let r = b.get("freight/khorgos/china_europe/2024-03");
    assert_eq!(r["streak_months"], 3);
    assert_eq!(r["streak_threshold"], 600);
}

#[test]
fn a_month_at_exactly_the_threshold_is_not_above_it() {
    let mut b = Book::new();
    b.send_all([
        trains("khorgos", "2024-01", 601),
        trains("khorgos", "2024-02", 600),
        trains("khorgos", "2024-03", 601),
    ]);
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-01")["streak_months"],
        1
    );
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-02")["streak_months"],
        0
    );
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-03")["streak_months"],
        1
    );
}

#[test]
fn a_missing_month_ends_a_streak() {
    let mut b = Book::new();
    b.send_all([
        trains("khorgos", "2024-01", 700),
        // 2024-02 missing
        trains("khorgos", "2024-03", 700),
        trains("khorgos", "2024-04", 700),
    ]);
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-04")["streak_months"],
        2
    );
    // Filling the gap joins the runs, and every later month is republished.
    b.flush_keys();
    b.send(trains("khorgos", "2024-02", 700));
    assert_eq!(
        b.flush_keys(),
        [
            "freight/khorgos/china_europe/2024-02",
            "freight/khorgos/china_europe/2024-03",
            "freight/khorgos/china_europe/2024-04",
        ]
    );
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-04")["streak_months"],
        4
    );
}

#[test]
fn the_streak_threshold_comes_from_the_settings() {
    let mut b = Book::with(EngineSettings {
        streak_threshold: 500,
        ..EngineSettings::default()
    });
    b.send_all([
        trains("khorgos", "2024-01", 501),
        trains("khorgos", "2024-02", 550),
    ]);
    let r = b.get("freight/khorgos/china_europe/2024-02");
    assert_eq!(r["streak_months"], 2);
    assert_eq!(r["streak_threshold"], 500);
}

// ---------------------------------------------------------------------------------------
// National ranks
// ---------------------------------------------------------------------------------------

/// Regions with export growth in January 2024 of 30, 20, 20 and 10 %, plus the national
/// aggregate at 50 % and a region without a prior year.
fn ranked_book() -> Book {
    let mut b = Book::new();
    for (region, now) in [
        ("R4", "110.00"),
        ("R2", "120.00"),
        ("R1", "130.00"),
        ("R3", "120.00"),
        ("CN", "150.00"),
    ] {
        b.send(trade(region, "2023-01", "export", "100.00"));
        b.send(trade(region, "2024-01", "export", now));
    }
    b.send(trade("R5", "2024-01", "export", "500.00"));
    b
}

#[test]
fn ranks_share_the_best_place_on_ties() {
    let mut b = ranked_book();
    for (region, rank) in [("R1", 1), ("R2", 2), ("R3", 2), ("R4", 4)] {
        let r = b.get(&format!("trade/{region}/export/total/-/2024-01"));
        assert_eq!(r["yoy_rank"], rank, "{region}");
        assert_eq!(r["yoy_rank_of"], 4, "{region}");
    }
}

#[test]
fn excluded_regions_are_not_ranked_nor_counted() {
    let mut b = ranked_book();
    let cn = b.get("trade/CN/export/total/-/2024-01");
    assert_eq!(cn["ytd_yoy_pct"], 50.0);
    assert_eq!(cn["yoy_rank"], Value::Null);
    assert_eq!(cn["yoy_rank_of"], Value::Null);
    // CN's 50 % would otherwise be first.
    assert_eq!(b.get("trade/R1/export/total/-/2024-01")["yoy_rank"], 1);

    let mut all = Book::with(EngineSettings {
        exclude_regions: vec![],
        ..EngineSettings::default()
    });
    for (region, now) in [("R1", "130.00"), ("CN", "150.00")] {
        all.send(trade(region, "2023-01", "export", "100.00"));
        all.send(trade(region, "2024-01", "export", now));
    }
    let cn = all.get("trade/CN/export/total/-/2024-01");
    assert_eq!(
        (cn["yoy_rank"].as_u64(), cn["yoy_rank_of"].as_u64()),
        (Some(1), Some(2))
    );
}

#[test]
fn a_region_without_growth_has_no_rank_and_is_not_counted() {
    let mut b = ranked_book();
    let r5 = b.get("trade/R5/export/total/-/2024-01");
    assert_eq!(r5["ytd_yoy_pct"], Value::Null);
    assert_eq!(r5["yoy_rank"], Value::Null);
    assert_eq!(r5["yoy_rank_of"], Value::Null);
    assert_eq!(b.get("trade/R4/export/total/-/2024-01")["yoy_rank_of"], 4);
}

#[test]
fn ranks_are_per_flow_and_only_on_the_dimension_total() {
    let mut b = Book::new();
    for (region, export, import) in [("AA", "130.00", "101.00"), ("BB", "110.00", "150.00")] {
        b.send(trade(region, "2023-01", "export", "100.00"));
        b.send(trade(region, "2024-01", "export", export));
        b.send(trade(region, "2023-01", "import", "100.00"));
        b.send(trade(region, "2024-01", "import", import));
        b.send(part(
            region,
            "2023-01",
            "export",
            "commodity",
            "steel",
            "1.00",
        ));
        b.send(part(
            region,
            "2024-01",
            "export",
            "commodity",
            "steel",
            "2.00",
        ));
    }
    assert_eq!(b.get("trade/AA/export/total/-/2024-01")["yoy_rank"], 1);
    assert_eq!(b.get("trade/AA/import/total/-/2024-01")["yoy_rank"], 2);
    assert_eq!(b.get("trade/BB/import/total/-/2024-01")["yoy_rank"], 1);
    // total flow: AA 231/200 = +15.5 %, BB 260/200 = +30 %
    assert_eq!(b.get("trade/AA/total/total/-/2024-01")["yoy_rank"], 2);
    assert_eq!(b.get("trade/BB/total/total/-/2024-01")["yoy_rank"], 1);
    let steel = b.get("trade/AA/export/commodity/steel/2024-01");
    assert_eq!(steel["ytd_yoy_pct"], 100.0);
    assert_eq!(steel["yoy_rank"], Value::Null);
    assert_eq!(steel["yoy_rank_of"], Value::Null);
}

// ---------------------------------------------------------------------------------------
// Leaders
// ---------------------------------------------------------------------------------------

/// XJ export commodities in January: c 150 (+50 %), a 120 (+20 %), b 120 (+20 %),
/// d 60 (+20 %), sent in an order that is not alphabetical; the export total is 450.
fn leaders_book(top_n: usize) -> Book {
    let mut b = Book::with(EngineSettings {
        top_n,
        ..EngineSettings::default()
    });
    b.send_all([
        trade("XJ", "2023-01", "export", "350.00"),
        trade("XJ", "2024-01", "export", "450.00"),
    ]);
    for (member, before, now) in [
        ("b", "100.00", "120.00"),
        ("d", "50.00", "60.00"),
        ("a", "100.00", "120.00"),
        ("c", "100.00", "150.00"),
    ] {
        b.send(part("XJ", "2023-01", "export", "commodity", member, before));
        b.send(part("XJ", "2024-01", "export", "commodity", member, now));
    }
    b
}

#[test]
fn leaders_rank_highest_first_and_break_ties_by_member_ascending() {
    let mut b = leaders_book(10);
    let l = b.get("leaders/XJ/export/commodity/2024-01");
    assert_eq!(l["kind"], "trade_leaders");
    assert_eq!(l["members_ranked"], 4);
    assert_eq!(
        l["by_share"],
        json!([
            {"member": "c", "ytd_cny": "150.00", "share_pct": 33.333333},
            {"member": "a", "ytd_cny": "120.00", "share_pct": 26.666667},
            {"member": "b", "ytd_cny": "120.00", "share_pct": 26.666667},
            {"member": "d", "ytd_cny": "60.00", "share_pct": 13.333333},
        ])
    );
    assert_eq!(
        l["by_yoy"],
        json!([
            {"member": "c", "ytd_yoy_pct": 50.0},
            {"member": "a", "ytd_yoy_pct": 20.0},
            {"member": "b", "ytd_yoy_pct": 20.0},
            {"member": "d", "ytd_yoy_pct": 20.0},
        ])
    );
}

#[test]
fn leaders_lists_are_cut_at_top_n() {
    let mut b = leaders_book(2);
    let l = b.get("leaders/XJ/export/commodity/2024-01");
    assert_eq!(l["members_ranked"], 4);
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e["member"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&l["by_share"]), ["c", "a"]);
    assert_eq!(names(&l["by_yoy"]), ["c", "a"]);
}

#[test]
fn members_ranked_counts_only_members_with_a_complete_ytd() {
    let mut b = Book::new();
    b.send_all([
        part(
            "XJ",
            "2024-01",
            "total",
            "partner_region",
            "russia",
            "10.00",
        ),
        part(
            "XJ",
            "2024-02",
            "total",
            "partner_region",
            "russia",
            "10.00",
        ),
        // complete, but no prior year: in by_share, not in by_yoy
        part("XJ", "2024-01", "total", "partner_region", "asean", "1.00"),
        part("XJ", "2024-02", "total", "partner_region", "asean", "1.00"),
        // only February: not ranked at 2024-02
        part(
            "XJ",
            "2024-02",
            "total",
            "partner_region",
            "africa",
            "99.00",
        ),
        part(
            "XJ",
            "2023-01",
            "total",
            "partner_region",
            "russia",
            "10.00",
        ),
        part(
            "XJ",
            "2023-02",
            "total",
            "partner_region",
            "russia",
            "10.00",
        ),
    ]);
    let l = b.get("leaders/XJ/total/partner_region/2024-02");
    assert_eq!(l["members_ranked"], 2);
    // No region total: shares are unknown.
    assert_eq!(
        l["by_share"],
        json!([
            {"member": "russia", "ytd_cny": "20.00", "share_pct": null},
            {"member": "asean", "ytd_cny": "2.00", "share_pct": null},
        ])
    );
    assert_eq!(
        l["by_yoy"],
        json!([{"member": "russia", "ytd_yoy_pct": 0.0}])
    );

    // A group whose only member has an incomplete YTD still has its record, with empty lists.
    b.send(part(
        "XJ",
        "2024-03",
        "total",
        "enterprise_type",
        "private",
        "5.00",
    ));
    let e = b.get("leaders/XJ/total/enterprise_type/2024-03");
    assert_eq!(e["members_ranked"], 0);
    assert_eq!(e["by_share"], json!([]));
    assert_eq!(e["by_yoy"], json!([]));
}

#[test]
fn leaders_exist_only_where_some_member_has_a_value() {
    let mut b = Book::new();
    b.send_all([
        part("XJ", "2024-01", "export", "commodity", "steel", "1.00"),
        part("XJ", "2024-03", "export", "commodity", "steel", "1.00"),
        trade("XJ", "2024-02", "export", "5.00"),
    ]);
    let keys = b.keys();
    assert!(keys.contains(&"leaders/XJ/export/commodity/2024-01".to_string()));
    assert!(keys.contains(&"leaders/XJ/export/commodity/2024-03".to_string()));
    assert!(!keys.contains(&"leaders/XJ/export/commodity/2024-02".to_string()));
    // No leaders for the dimension total, nor for flows no member has.
    assert!(!keys
        .iter()
        .any(|k| k.starts_with("leaders/XJ/export/total/")));
    assert!(!keys.iter().any(|k| k.starts_with("leaders/XJ/import/")));
}

// ---------------------------------------------------------------------------------------
// Formats and keys
// ---------------------------------------------------------------------------------------

#[test]
fn money_is_written_with_exactly_two_decimals() {
    let mut b = Book::new();
    b.send_text(r#"{"type":"customs_trade","region":"AA","period":"2024-01","flow":"export","dimension":"total","value_cny":"0.05"}"#);
    b.send_text(r#"{"type":"customs_trade","region":"BB","period":"2024-01","flow":"export","dimension":"total","value_cny":322390000000}"#);
    b.send_text(r#"{"type":"customs_trade","region":"CC","period":"2024-01","flow":"export","dimension":"total","value_cny":"7.5"}"#);
    assert_eq!(
        b.get("trade/AA/export/total/-/2024-01")["month_cny"],
        "0.05"
    );
    assert_eq!(
        b.get("trade/BB/export/total/-/2024-01")["month_cny"],
        "322390000000.00"
    );
    assert_eq!(b.get("trade/CC/export/total/-/2024-01")["ytd_cny"], "7.50");
}

#[test]
fn json_numbers_keep_every_fen() {
    let mut b = Book::new();
    // As an f64 this is 123456789012.33999633789...; as money it must stay exact.
    b.send_text(r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":123456789012.34}"#);
    b.send_text(r#"{"type":"customs_trade","region":"XJ","period":"2024-02","flow":"export","dimension":"total","value_cny":0.01}"#);
    b.engine.flush();
    let record = b
        .engine
        .records()
        .into_iter()
        .find(|r| r.key() == "trade/XJ/export/total/-/2024-02")
        .unwrap();
    let json = String::from_utf8(record.to_json()).unwrap();
    assert!(json.contains(r#""month_cny":"0.01""#), "{json}");
    assert!(json.contains(r#""ytd_cny":"123456789012.35""#), "{json}");
}

#[test]
fn every_record_has_exactly_the_contract_fields_and_no_clock() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "export", "1.00"),
        part("XJ", "2024-01", "export", "commodity", "steel", "1.00"),
        trains("khorgos", "2024-01", 1),
    ]);
    let fields = |key: &str, b: &mut Book| -> BTreeSet<String> {
        b.get(key).as_object().unwrap().keys().cloned().collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|s| s.to_string()).collect() };
    let trade_fields = set(&[
        "kind",
        "region",
        "flow",
        "dimension",
        "member",
        "period",
        "month_cny",
        "ytd_cny",
        "months_in_ytd",
        "ytd_basis",
        "ytd_gap_cny",
        "prior_ytd_cny",
        "ytd_yoy_pct",
        "ytd_usd",
        "prior_ytd_usd",
        "ytd_usd_yoy_pct",
        "ttm_cny",
        "share_pct",
        "yoy_rank",
        "yoy_rank_of",
    ]);
    assert_eq!(
        fields("trade/XJ/export/total/-/2024-01", &mut b),
        trade_fields
    );
    assert_eq!(
        fields("trade/XJ/export/commodity/steel/2024-01", &mut b),
        trade_fields
    );
    assert_eq!(
        fields("leaders/XJ/export/commodity/2024-01", &mut b),
        set(&[
            "kind",
            "region",
            "flow",
            "dimension",
            "period",
            "members_ranked",
            "by_share",
            "by_yoy"
        ])
    );
    assert_eq!(
        fields("freight/khorgos/china_europe/2024-01", &mut b),
        set(&[
            "kind",
            "port",
            "service",
            "period",
            "month_trains",
            "ytd_trains",
            "months_in_ytd",
            "ytd_basis",
            "ytd_gap_trains",
            "prior_ytd_trains",
            "ytd_yoy_pct",
            "ttm_trains",
            "streak_months",
            "streak_threshold",
        ])
    );
    let t = b.get("trade/XJ/export/total/-/2024-01");
    assert_eq!(t["kind"], "trade");
    assert_eq!(t["member"], Value::Null);
    assert_eq!(t["period"], "2024-01");
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-01")["kind"],
        "freight"
    );

    // The same events at another moment give byte-identical records.
    let first: Vec<Vec<u8>> = b.engine.records().iter().map(|r| r.to_json()).collect();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut again = Book::new();
    again.send_all([
        trade("XJ", "2024-01", "export", "1.00"),
        part("XJ", "2024-01", "export", "commodity", "steel", "1.00"),
        trains("khorgos", "2024-01", 1),
    ]);
    again.engine.flush();
    let second: Vec<Vec<u8>> = again.engine.records().iter().map(|r| r.to_json()).collect();
    assert_eq!(first, second);
}

#[test]
fn keys_follow_the_contract_format() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "import", "1.00"),
        part(
            "XJ",
            "2024-01",
            "total",
            "partner_region",
            "central_asia",
            "1.00",
        ),
        trains("khorgos", "2024-01", 700),
        with(
            trains("alashankou", "2024-01", 700),
            "service",
            json!("domestic"),
        ),
    ]);
    assert_eq!(
        b.keys(),
        [
            "freight/alashankou/domestic/2024-01",
            "freight/khorgos/china_europe/2024-01",
            "leaders/XJ/total/partner_region/2024-01",
            "trade/XJ/import/total/-/2024-01",
            "trade/XJ/total/partner_region/central_asia/2024-01",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------

fn reject(bytes: &[u8]) -> Rejection {
    match event::parse(bytes, &rules()) {
        Ok(e) => panic!("{:?} was accepted as {e:?}", String::from_utf8_lossy(bytes)),
        Err(r) => r,
    }
}

fn assert_rejected(bytes: &[u8], reason: Reason, naming: &str) {
    let r = reject(bytes);
    let text = String::from_utf8_lossy(bytes);
    assert_eq!(r.reason, reason, "{text}: {}", r.detail);
    assert!(
        r.detail.contains(naming),
        "{text}: detail {:?} should name {naming}",
        r.detail
    );
    assert!(
        !r.detail.contains('\n'),
        "detail is one line: {:?}",
        r.detail
    );
}

#[test]
fn bytes_that_are_not_utf8_are_rejected_as_invalid_utf8() {
    assert_rejected(
        b"{\"type\":\"customs_trade\",\"region\":\"X\xffJ\"}",
        Reason::InvalidUtf8,
        "UTF-8",
    );
    assert_eq!(reject(&[0xc3, 0x28]).reason.as_str(), "invalid_utf8");
}

#[test]
fn text_that_is_not_json_is_rejected_as_malformed_json() {
    for text in [
        "",
        "{",
        "{\"type\":",
        "not json",
        "{\"type\":\"fx_rate\"} trailing",
        "{'a':1}",
    ] {
        assert_eq!(
            reject(text.as_bytes()).reason,
            Reason::MalformedJson,
            "{text:?}"
        );
    }
    assert_eq!(Reason::MalformedJson.as_str(), "malformed_json");
}

#[test]
fn json_that_is_not_an_object_is_rejected_as_not_an_object() {
    for text in ["[1,2]", "\"text\"", "42", "null", "true", "[]"] {
        assert_eq!(
            reject(text.as_bytes()).reason,
            Reason::NotAnObject,
            "{text:?}"
        );
    }
    assert_eq!(Reason::NotAnObject.as_str(), "not_an_object");
}

#[test]
fn an_array_in_the_order_of_the_fields_is_still_not_an_object() {
    // Fifteen elements: as many as the fields parsing looks at.
    let text = r#"["customs_trade","XJ","2024-01","export","total",null,"1.00",null,null,null,null,null,null,null,null]"#;
    assert_eq!(reject(text.as_bytes()).reason, Reason::NotAnObject);
}

#[test]
fn a_message_over_the_limit_is_rejected_as_too_large() {
    let small = ParseRules {
        max_message_bytes: 64,
        current_month: Period::new(2025, 12),
    };
    let text = br#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":700}"#;
    assert!(text.len() > 64);
    let r = event::parse(text, &small).unwrap_err();
    assert_eq!(r.reason, Reason::TooLarge);
    assert_eq!(r.reason.as_str(), "too_large");
    assert!(r.detail.contains("64"), "{}", r.detail);
    // At the limit exactly it is fine.
    let exact = ParseRules {
        max_message_bytes: text.len(),
        ..small
    };
    assert!(event::parse(text, &exact).is_ok());
}

#[test]
fn an_unknown_type_is_rejected_as_unknown_type() {
    assert_rejected(
        br#"{"type":"weather","period":"2024-01"}"#,
        Reason::UnknownType,
        "weather",
    );
    assert_eq!(Reason::UnknownType.as_str(), "unknown_type");
}

#[test]
fn a_missing_required_field_is_rejected_as_missing_field_naming_it() {
    let cases: &[(&str, &str)] = &[
        (r#"{"period":"2024-01"}"#, "type"),
        (
            r#"{"type":"customs_trade","period":"2024-01","flow":"export","dimension":"total","value_cny":1}"#,
            "region",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","flow":"export","dimension":"total","value_cny":1}"#,
            "period",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","period":"2024-01","dimension":"total","value_cny":1}"#,
            "flow",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","value_cny":1}"#,
            "dimension",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"commodity","value_cny":1}"#,
            "member",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"commodity","member":null,"value_cny":1}"#,
            "member",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total"}"#,
            "value_cny",
        ),
        (
            r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":null}"#,
            "value_cny",
        ),
        (
            r#"{"type":"freight_trains","period":"2024-01","trains":1}"#,
            "port",
        ),
        (
            r#"{"type":"freight_trains","port":"khorgos","period":"2024-01"}"#,
            "trains",
        ),
        (
            r#"{"type":"fx_rate","period":"2024-01","cny_per_unit":"7.1"}"#,
            "currency",
        ),
        (
            r#"{"type":"fx_rate","currency":"USD","period":"2024-01"}"#,
            "cny_per_unit",
        ),
    ];
    for (text, field) in cases {
        assert_rejected(text.as_bytes(), Reason::MissingField, field);
    }
    assert_eq!(Reason::MissingField.as_str(), "missing_field");
}

#[test]
fn a_field_breaking_its_rule_is_rejected_as_invalid_field_naming_it() {
    let t = |fields: &str| {
        format!(
            r#"{{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":"1.00",{fields}}}"#
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (r#"{"type":"customs_trade","region":"X.J","period":"2024-01","flow":"export","dimension":"total","value_cny":1}"#.into(), "region"),
        (format!(r#"{{"type":"customs_trade","region":"{}","period":"2024-01","flow":"export","dimension":"total","value_cny":1}}"#, "R".repeat(33)), "region"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-13","flow":"export","dimension":"total","value_cny":1}"#.into(), "period"),
        (r#"{"type":"customs_trade","region":"XJ","period":"1989-12","flow":"export","dimension":"total","value_cny":1}"#.into(), "period"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2026-01","flow":"export","dimension":"total","value_cny":1}"#.into(), "period"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"transit","dimension":"total","value_cny":1}"#.into(), "flow"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"HS-2","member":"01","value_cny":1}"#.into(), "dimension"),
        (format!(r#"{{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"hs","member":"{}","value_cny":1}}"#, "m".repeat(65)), "member"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"hs","member":"","value_cny":1}"#.into(), "member"),
        (t(r#""member":"steel""#), "member"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":"-1.00"}"#.into(), "value_cny"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":1.001}"#.into(), "value_cny"),
        (r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":"1000000000000000.01"}"#.into(), "value_cny"),
        (t(r#""value_usd":"abc""#), "value_usd"),
        (t(r#""revision":-1"#), "revision"),
        (t(r#""revision":"1""#), "revision"),
        (t(&format!(r#""source":"{}""#, "s".repeat(129))), "source"),
        (r#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":1000001}"#.into(), "trains"),
        (r#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":7.5}"#.into(), "trains"),
        (r#"{"type":"freight_trains","port":"khorgos","service":"China Europe","period":"2024-01","trains":7}"#.into(), "service"),
        (r#"{"type":"fx_rate","currency":"USD","period":"2024-01","cny_per_unit":"0"}"#.into(), "cny_per_unit"),
        (r#"{"type":"fx_rate","currency":"USD","period":"2024-01","cny_per_unit":"7.1234567"}"#.into(), "cny_per_unit"),
        (r#"{"type":5}"#.into(), "type"),
    ];
    for (text, field) in &cases {
        assert_rejected(text.as_bytes(), Reason::InvalidField, field);
    }
    assert_eq!(Reason::InvalidField.as_str(), "invalid_field");
    // The boundaries themselves are accepted.
    for ok in [
        format!(r#"{{"type":"customs_trade","region":"{}","period":"1990-01","flow":"export","dimension":"total","value_cny":"1000000000000000"}}"#, "R".repeat(32)),
        r#"{"type":"freight_trains","port":"khorgos","period":"2025-12","trains":1000000,"revision":4294967295}"#.to_string(),
        r#"{"type":"fx_rate","currency":"USD","period":"2024-01","cny_per_unit":"7.123456"}"#.to_string(),
    ] {
        assert!(event::parse(ok.as_bytes(), &rules()).is_ok(), "{ok}");
    }
}

// ---------------------------------------------------------------------------------------
// Revisions, duplicates and change-only emission
// ---------------------------------------------------------------------------------------

#[test]
fn a_higher_revision_replaces_the_value() {
    let mut b = Book::new();
    b.send(trade("XJ", "2024-01", "export", "100.00"));
    assert_eq!(
        b.send(rev(trade("XJ", "2024-01", "export", "120.00"), 2)),
        Outcome::Applied
    );
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-01")["month_cny"],
        "120.00"
    );
}

#[test]
fn a_stale_revision_is_ignored_and_emits_nothing() {
    let mut b = Book::new();
    b.send(rev(trade("XJ", "2024-01", "export", "120.00"), 2));
    b.send(rev(trains("khorgos", "2024-01", 700), 2));
    b.send(rev(fx("2024-01", "7.0"), 2));
    b.flush_keys();
    assert_eq!(
        b.send(rev(trade("XJ", "2024-01", "export", "100.00"), 1)),
        Outcome::Stale
    );
    // The default revision is 0.
    assert_eq!(
        b.send(trade("XJ", "2024-01", "export", "100.00")),
        Outcome::Stale
    );
    assert_eq!(
        b.send(rev(trains("khorgos", "2024-01", 1), 1)),
        Outcome::Stale
    );
    assert_eq!(b.send(rev(fx("2024-01", "1.0"), 1)), Outcome::Stale);
    assert_eq!(b.flush_keys(), Vec::<String>::new());
    let r = b.get("trade/XJ/export/total/-/2024-01");
    assert_eq!(r["month_cny"], "120.00");
    assert_eq!(r["ytd_usd"], "17.14"); // 120 / 7 = 17.142857
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-01")["month_trains"],
        700
    );
}

#[test]
fn the_same_event_again_is_a_duplicate_and_emits_nothing() {
    let mut b = Book::new();
    let events = [
        rev(trade("XJ", "2024-01", "export", "120.00"), 1),
        part("XJ", "2024-01", "export", "commodity", "steel", "20.00"),
        trains("khorgos", "2024-01", 700),
        fx("2024-01", "7.0"),
    ];
    for e in &events {
        assert_eq!(b.send(e.clone()), Outcome::Applied);
    }
    assert!(!b.flush_keys().is_empty());
    for e in &events {
        assert_eq!(b.send(e.clone()), Outcome::Duplicate, "{e}");
    }
    // The same value written differently is still the same value.
    assert_eq!(
        b.send_text(r#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":120,"revision":1,"source":"again"}"#),
        Outcome::Duplicate
    );
    assert_eq!(b.flush_keys(), Vec::<String>::new());
}

#[test]
fn the_same_revision_with_different_values_replaces_in_log_order() {
    let mut b = Book::new();
    b.send(rev(trade("XJ", "2024-01", "export", "100.00"), 1));
    b.flush_keys();
    assert_eq!(
        b.send(rev(trade("XJ", "2024-01", "export", "200.00"), 1)),
        Outcome::Applied
    );
    assert_eq!(b.flush_keys(), ["trade/XJ/export/total/-/2024-01"]);
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-01")["month_cny"],
        "200.00"
    );
    // Adding dollars to the same yuan is a different value too.
    let with_usd = with(
        rev(trade("XJ", "2024-01", "export", "200.00"), 1),
        "value_usd",
        json!("30.00"),
    );
    assert_eq!(b.send(with_usd), Outcome::Applied);
    assert_eq!(b.get("trade/XJ/export/total/-/2024-01")["ytd_usd"], "30.00");
    // Freight and rates follow the same rule.
    b.send(trains("khorgos", "2024-01", 700));
    assert_eq!(b.send(trains("khorgos", "2024-01", 701)), Outcome::Applied);
    assert_eq!(
        b.get("freight/khorgos/china_europe/2024-01")["month_trains"],
        701
    );
}

#[test]
fn a_second_flush_without_new_events_is_empty() {
    let mut b = leaders_book(10);
    let first = b.flush_keys();
    // Everything defined is published once: 2 periods × (total + 4 members + leaders).
    assert_eq!(first.len(), 12);
    assert_eq!(b.flush_keys(), Vec::<String>::new());
}

/// Regions A and B (explicit total flow, dimension total) and A's partner groups p and q,
/// every month from 2023-01 to 2025-01. A grows 10 % in 2024, B 5 %.
fn restatement_book() -> Book {
    let mut b = Book::new();
    for p in months((2023, 1), (2025, 1)) {
        let in_2024 = p.starts_with("2024");
        let (a, bb, mp, mq) = if in_2024 {
            ("110.00", "105.00", "66.00", "44.00")
        } else {
            ("100.00", "100.00", "60.00", "40.00")
        };
        b.send(trade("A", &p, "total", a));
        b.send(trade("B", &p, "total", bb));
        b.send(part("A", &p, "total", "partner_group", "p", mp));
        b.send(part("A", &p, "total", "partner_group", "q", mq));
    }
    b.flush_keys();
    b
}

fn keys_over(prefix: &str, from: (u32, u32), to: (u32, u32)) -> Vec<String> {
    months(from, to)
        .into_iter()
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

#[test]
fn restating_a_region_total_emits_exactly_the_records_it_changes() {
    let mut b = restatement_book();
    assert_eq!(b.get("trade/A/total/total/-/2024-06")["yoy_rank"], 1);
    assert_eq!(
        b.send(rev(trade("A", "2023-06", "total", "200.00"), 1)),
        Outcome::Applied
    );
    let mut expected: Vec<String> = Vec::new();
    // A: YTD 2023-06..12, TTM 2023-12..2024-05, prior YTD and growth 2024-06..12.
    expected.extend(keys_over("trade/A/total/total/-/", (2023, 6), (2024, 12)));
    // Shares of A's members, and the leaders that show them, over 2023-06..12.
    expected.extend(keys_over(
        "trade/A/total/partner_group/p/",
        (2023, 6),
        (2023, 12),
    ));
    expected.extend(keys_over(
        "trade/A/total/partner_group/q/",
        (2023, 6),
        (2023, 12),
    ));
    expected.extend(keys_over(
        "leaders/A/total/partner_group/",
        (2023, 6),
        (2023, 12),
    ));
    // A's growth at 2024-m falls to 110m / (100m + 100) - 1 < 5 %: B overtakes it.
    expected.extend(keys_over("trade/B/total/total/-/", (2024, 6), (2024, 12)));
    expected.sort();
    assert_eq!(b.flush_keys(), expected);

    let a = b.get("trade/A/total/total/-/2024-06");
    assert_eq!(a["prior_ytd_cny"], "700.00");
    assert_eq!(a["ytd_yoy_pct"], -5.714286); // 660 / 700 - 1
    assert_eq!(
        (a["yoy_rank"].as_u64(), a["yoy_rank_of"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(b.get("trade/B/total/total/-/2024-06")["yoy_rank"], 1);
    assert_eq!(b.get("trade/B/total/total/-/2024-05")["yoy_rank"], 2);
    // 2023-06: p is 360 of 700
    assert_eq!(
        b.get("trade/A/total/partner_group/p/2023-06")["share_pct"],
        51.428571
    );
}

#[test]
fn restating_a_member_emits_its_records_and_its_leaders_only() {
    let mut b = restatement_book();
    assert_eq!(
        b.send(rev(
            part("A", "2023-06", "total", "partner_group", "p", "70.00"),
            1
        )),
        Outcome::Applied
    );
    let mut expected: Vec<String> = Vec::new();
    expected.extend(keys_over(
        "trade/A/total/partner_group/p/",
        (2023, 6),
        (2024, 12),
    ));
    // by_share moves with p's 2023 YTD, by_yoy with its 2024 growth; 2024-01..05 neither.
    expected.extend(keys_over(
        "leaders/A/total/partner_group/",
        (2023, 6),
        (2023, 12),
    ));
    expected.extend(keys_over(
        "leaders/A/total/partner_group/",
        (2024, 6),
        (2024, 12),
    ));
    expected.sort();
    assert_eq!(b.flush_keys(), expected);
    // p: 66 * 6 / (60 * 6 + 10) - 1 = 396 / 370 - 1 = 7.027027 %, now behind q's 10 %.
    let l = b.get("leaders/A/total/partner_group/2024-06");
    assert_eq!(
        l["by_yoy"],
        json!([{"member": "q", "ytd_yoy_pct": 10.0}, {"member": "p", "ytd_yoy_pct": 7.027027}])
    );
}

#[test]
fn records_never_go_backwards_to_a_stale_value_across_flushes() {
    let mut b = Book::new();
    b.send(rev(trade("XJ", "2024-01", "export", "1.00"), 3));
    b.send(trade("XJ", "2024-01", "export", "2.00"));
    let out = b.engine.flush();
    assert_eq!(out.len(), 1);
    let json: Value = serde_json::from_slice(&out[0].json).unwrap();
    assert_eq!(json["month_cny"], "1.00");
    // The published bytes are the record's JSON.
    assert_eq!(out[0].json, out[0].record.to_json());
}

#[test]
fn dollars_of_huge_amounts_are_exact_or_null_never_wrapped() {
    let mut b = Book::new();
    // 10^15 yuan (the largest amount §2 accepts) at 0.011 yuan per dollar:
    // 10^23 fen * 10^6 / 11000 = 9090909090909090909.09... cents -> 9090909090909090909.
    b.send_all([
        fx("2024-01", "0.011"),
        trade("AA", "2024-01", "export", "1000000000000000"),
    ]);
    assert_eq!(
        b.get("trade/AA/export/total/-/2024-01")["ytd_usd"],
        "90909090909090909.09"
    );
    // At 0.000001 (> 0, six decimals: a valid rate) that is 10^21 dollars, more than a
    // record's money can hold (i64 cents, about 9.2 * 10^16 dollars): null, not a
    // wrapped-around figure. The second month's sum overflows the same way.
    b.send_all([
        fx("2024-02", "0.000001"),
        trade("BB", "2024-02", "export", "1000000000000000"),
        fx("2024-03", "0.011"),
        trade("AA", "2024-03", "export", "1000000000000000"),
    ]);
    assert_eq!(
        b.get("trade/BB/export/total/-/2024-02")["ytd_usd"],
        Value::Null
    );
    assert_eq!(
        b.get("trade/AA/export/total/-/2024-03")["ytd_usd"],
        Value::Null,
        "two months of 9.09 * 10^16 dollars overflow the sum"
    );
}

#[test]
fn restating_a_january_reaches_december_of_the_next_year_and_no_further() {
    let mut b = Book::new();
    for p in months((2023, 1), (2025, 1)) {
        b.send(trade("XJ", &p, "import", "100.00"));
    }
    b.flush_keys();
    b.send(rev(trade("XJ", "2023-01", "import", "50.00"), 1));
    // YTD 2023-01..12 (and the TTM of 2023-12), prior YTD 2024-01..12: 2024-12 is 23 months on.
    assert_eq!(
        b.flush_keys(),
        keys_over("trade/XJ/import/total/-/", (2023, 1), (2024, 12))
    );
    let dec = b.get("trade/XJ/import/total/-/2024-12");
    assert_eq!(dec["prior_ytd_cny"], "1150.00");
    // 1200 / 1150 - 1 = 4.347826...%
    assert_eq!(dec["ytd_yoy_pct"], 4.347826);
}

// ---------------------------------------------------------------------------------------
// Contract v2: "Deriving months and year-to-date" from month and cumulative figures
// ---------------------------------------------------------------------------------------

/// The same event as a cumulative (January-to-`period`) figure.
fn ytd(event: Value) -> Value {
    with(event, "basis", json!("ytd"))
}

fn usd(event: Value, dollars: &str) -> Value {
    with(event, "value_usd", json!(dollars))
}

#[test]
fn a_combined_january_february_release_has_no_january_and_reports_february() {
    let mut b = Book::new();
    b.send_all([
        ytd(trade("XJ", "2023-02", "export", "200.00")),
        ytd(trade("XJ", "2023-03", "export", "320.00")),
        ytd(trade("XJ", "2024-02", "export", "300.00")),
        trade("XJ", "2024-03", "export", "150.00"),
        ytd(trade("XJ", "2024-03", "export", "450.00")),
    ]);
    assert_eq!(b.record("trade/XJ/export/total/-/2024-01"), None);
    assert_eq!(b.record("trade/XJ/export/total/-/2023-01"), None);
    let feb = b.get("trade/XJ/export/total/-/2024-02");
    // Two months in one figure: no month value, but a complete year-to-date.
    assert_eq!(feb["month_cny"], Value::Null);
    assert_eq!(feb["ytd_cny"], "300.00");
    assert_eq!(feb["months_in_ytd"], 2);
    assert_eq!(feb["ytd_basis"], "reported");
    assert_eq!(feb["ytd_gap_cny"], Value::Null);
    assert_eq!(feb["prior_ytd_cny"], "200.00");
    assert_eq!(feb["ytd_yoy_pct"], 50.0); // 300 / 200
    let mar = b.get("trade/XJ/export/total/-/2024-03");
    assert_eq!(mar["month_cny"], "150.00");
    assert_eq!(mar["ytd_cny"], "450.00");
    assert_eq!(mar["months_in_ytd"], 3);
    assert_eq!(mar["ytd_basis"], "reported");
    assert_eq!(mar["ytd_gap_cny"], "0.00"); // 450 - (300 + 150)
    assert_eq!(mar["prior_ytd_cny"], "320.00");
    assert_eq!(mar["ytd_yoy_pct"], 40.625); // 450 / 320
                                            // 2023-03 has only its cumulative: its month is derived, 320 - 200.
    assert_eq!(
        b.get("trade/XJ/export/total/-/2023-03")["month_cny"],
        "120.00"
    );
}

#[test]
fn a_series_published_only_cumulatively_derives_its_months_shares_and_leaders() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "import", "100.00"),
        trade("XJ", "2024-02", "import", "100.00"),
        trade("XJ", "2024-03", "import", "100.00"),
        ytd(part(
            "XJ",
            "2024-01",
            "import",
            "commodity",
            "steel",
            "10.00",
        )),
        ytd(part(
            "XJ",
            "2024-02",
            "import",
            "commodity",
            "steel",
            "25.00",
        )),
        ytd(part(
            "XJ",
            "2024-03",
            "import",
            "commodity",
            "steel",
            "45.00",
        )),
    ]);
    for (month, v, y) in [
        (1, "10.00", "10.00"),
        (2, "15.00", "25.00"),
        (3, "20.00", "45.00"),
    ] {
        let r = b.get(&format!("trade/XJ/import/commodity/steel/2024-0{month}"));
        assert_eq!(r["month_cny"], v, "{month}");
        assert_eq!(r["ytd_cny"], y, "{month}");
        assert_eq!(r["months_in_ytd"], month, "{month}");
        assert_eq!(r["ytd_basis"], "reported", "{month}");
        assert_eq!(r["ytd_gap_cny"], Value::Null, "{month}");
    }
    // 45 of the total's 300
    let mar = b.get("trade/XJ/import/commodity/steel/2024-03");
    assert_eq!(mar["share_pct"], 15.0);
    let l = b.get("leaders/XJ/import/commodity/2024-03");
    assert_eq!(l["members_ranked"], 1);
    assert_eq!(
        l["by_share"],
        json!([{"member": "steel", "ytd_cny": "45.00", "share_pct": 15.0}])
    );
    // The month-basis total: every month derived, no gap to check.
    let total = b.get("trade/XJ/import/total/-/2024-03");
    assert_eq!(total["ytd_basis"], "derived");
    assert_eq!(total["ytd_gap_cny"], Value::Null);
}

#[test]
fn a_reported_cumulative_that_disagrees_with_its_month_prevails_and_shows_the_gap() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "export", "100.00"),
        ytd(trade("XJ", "2024-01", "export", "100.00")),
        trade("XJ", "2024-02", "export", "50.00"),
        ytd(trade("XJ", "2024-02", "export", "150.03")),
        trade("XJ", "2024-03", "export", "20.00"),
        trade("XJ", "2024-04", "export", "30.00"),
        ytd(trade("XJ", "2024-04", "export", "199.90")),
    ]);
    let jan = b.get("trade/XJ/export/total/-/2024-01");
    assert_eq!(jan["ytd_gap_cny"], "0.00"); // 100 - (0 + 100)
    let feb = b.get("trade/XJ/export/total/-/2024-02");
    // The month keeps its own figure; the year-to-date is the reported one.
    assert_eq!(feb["month_cny"], "50.00");
    assert_eq!(feb["ytd_cny"], "150.03");
    assert_eq!(feb["ytd_basis"], "reported");
    assert_eq!(feb["ytd_gap_cny"], "0.03"); // 150.03 - (100 + 50)
    let mar = b.get("trade/XJ/export/total/-/2024-03");
    // Built on the reported February: 150.03 + 20
    assert_eq!(mar["ytd_cny"], "170.03");
    assert_eq!(mar["ytd_basis"], "derived");
    assert_eq!(mar["ytd_gap_cny"], Value::Null);
    let apr = b.get("trade/XJ/export/total/-/2024-04");
    assert_eq!(apr["ytd_cny"], "199.90");
    assert_eq!(apr["month_cny"], "30.00");
    assert_eq!(apr["ytd_gap_cny"], "-0.13"); // 199.90 - (170.03 + 30)
}

#[test]
fn a_revised_cumulative_can_derive_a_negative_month_and_revisions_apply_per_cell() {
    let mut b = Book::new();
    b.send_all([
        rev(trade("XJ", "2024-01", "import", "90.00"), 5),
        ytd(trade("XJ", "2024-01", "import", "100.00")),
        ytd(trade("XJ", "2024-02", "import", "180.00")),
    ]);
    assert_eq!(
        b.get("trade/XJ/import/total/-/2024-02")["month_cny"],
        "80.00"
    );
    // The cumulative's revision 1 is not stale against the month cell's revision 5: they are
    // two cells.
    assert_eq!(
        b.send(rev(ytd(trade("XJ", "2024-01", "import", "200.00")), 1)),
        Outcome::Applied
    );
    assert_eq!(
        b.flush_keys(),
        [
            "trade/XJ/import/total/-/2024-01",
            "trade/XJ/import/total/-/2024-02"
        ]
    );
    let jan = b.get("trade/XJ/import/total/-/2024-01");
    assert_eq!(jan["month_cny"], "90.00"); // m(1) is present: it is the month
    assert_eq!(jan["ytd_cny"], "200.00");
    assert_eq!(jan["ytd_gap_cny"], "110.00"); // 200 - (0 + 90)
    let feb = b.get("trade/XJ/import/total/-/2024-02");
    assert_eq!(feb["month_cny"], "-20.00"); // 180 - 200
    assert_eq!(feb["ytd_cny"], "180.00");
    // A revised month figure, conversely, leaves the cumulative as it is.
    b.send(rev(trade("XJ", "2024-01", "import", "95.00"), 6));
    let jan = b.get("trade/XJ/import/total/-/2024-01");
    assert_eq!(jan["ytd_cny"], "200.00");
    assert_eq!(jan["ytd_gap_cny"], "105.00");
}

#[test]
fn a_ttm_from_cumulatives_crosses_a_combined_january_february() {
    let mut b = Book::new();
    b.send_all([
        ytd(trade("XJ", "2023-02", "total", "200.00")),
        ytd(trade("XJ", "2023-03", "total", "300.00")),
        ytd(trade("XJ", "2023-12", "total", "1300.00")),
        ytd(trade("XJ", "2024-02", "total", "220.00")),
        ytd(trade("XJ", "2024-03", "total", "330.00")),
        ytd(trade("XJ", "2024-04", "total", "440.00")),
    ]);
    // December: the year itself.
    assert_eq!(
        b.get("trade/XJ/total/total/-/2023-12")["ttm_cny"],
        "1300.00"
    );
    // Y(M) + Y_prev(12) - Y_prev(M)
    assert_eq!(
        b.get("trade/XJ/total/total/-/2024-02")["ttm_cny"],
        "1320.00"
    ); // 220 + 1300 - 200
    assert_eq!(
        b.get("trade/XJ/total/total/-/2024-03")["ttm_cny"],
        "1330.00"
    ); // 330 + 1300 - 300
       // No 2023-04 cumulative, and the twelve months' values are not all known either.
    assert_eq!(
        b.get("trade/XJ/total/total/-/2024-04")["ttm_cny"],
        Value::Null
    );
    assert_eq!(
        b.get("trade/XJ/total/total/-/2024-04")["month_cny"],
        "110.00"
    );
}

#[test]
fn a_ttm_sums_the_twelve_months_when_a_cumulative_is_missing() {
    let mut b = Book::new();
    // 2023-04 .. 2023-12 monthly (10 each), no 2023 cumulative at all; 2024 combined Jan-Feb
    // and a month for March: Y_prev(12) is unknown, and v(2024-01) too.
    for p in months((2023, 4), (2023, 12)) {
        b.send(trade("XJ", &p, "export", "10.00"));
    }
    b.send_all([
        ytd(trade("XJ", "2024-02", "export", "50.00")),
        trade("XJ", "2024-03", "export", "30.00"),
        ytd(trade("XJ", "2024-04", "export", "100.00")),
    ]);
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-03")["ttm_cny"],
        Value::Null
    );
    // At 2024-04 the window is 2023-05 .. 2024-04: months 10 × 8 + v(2024-01..04), with
    // v(2024-01) and v(2024-02) unknown: still null.
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-04")["ttm_cny"],
        Value::Null
    );
    // With monthly January and February the months are all known again: at 2024-04,
    // 8 × 10 (2023-05..12) + 20 + 30 + 30 + 20 (v(4) = 100 - 80).
    b.send_all([
        trade("XJ", "2024-01", "export", "20.00"),
        trade("XJ", "2024-02", "export", "30.00"),
    ]);
    let apr = b.get("trade/XJ/export/total/-/2024-04");
    assert_eq!(apr["month_cny"], "20.00");
    assert_eq!(apr["ttm_cny"], "180.00");
}

#[test]
fn a_partial_ytd_after_a_gap_adds_the_months_after_the_last_known_ytd() {
    let mut b = Book::new();
    for p in months((2023, 1), (2023, 5)) {
        b.send(trade("XJ", &p, "import", "50.00"));
    }
    b.send_all([
        fx("2024-04", "8"),
        fx("2024-05", "8"),
        usd(ytd(trade("XJ", "2024-02", "import", "200.00")), "28.00"),
        // 2024-03 missing
        trade("XJ", "2024-04", "import", "40.00"),
        trade("XJ", "2024-05", "import", "50.00"),
    ]);
    let r = b.get("trade/XJ/import/total/-/2024-05");
    assert_eq!(r["ytd_basis"], "partial");
    assert_eq!(r["ytd_cny"], "290.00"); // Y(2) + m(4) + m(5)
    assert_eq!(r["months_in_ytd"], 4); // 2 + 2
    assert_eq!(r["ytd_usd"], "39.25"); // 28.00 + 40 / 8 + 50 / 8
    assert_eq!(r["prior_ytd_cny"], "250.00");
    assert_eq!(r["ytd_yoy_pct"], Value::Null);
    assert_eq!(r["ytd_usd_yoy_pct"], Value::Null);
    assert_eq!(r["ttm_cny"], Value::Null);
    assert_eq!(r["month_cny"], "50.00");
    // Once March's cumulative arrives the year is complete again, and reported there.
    b.send(ytd(trade("XJ", "2024-03", "import", "290.00")));
    let r = b.get("trade/XJ/import/total/-/2024-05");
    assert_eq!(r["ytd_basis"], "derived");
    assert_eq!(r["ytd_cny"], "380.00"); // 290 + 40 + 50
    assert_eq!(r["months_in_ytd"], 5);
    assert_eq!(r["ytd_yoy_pct"], 52.0); // 380 / 250
    assert_eq!(
        b.get("trade/XJ/import/total/-/2024-03")["month_cny"],
        "90.00"
    );
}

#[test]
fn dollars_follow_a_reported_cumulative_half_to_even_to_the_cent() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-03", "8"),
        fx("2024-04", "8"),
        fx("2024-05", "8"),
        usd(ytd(trade("XJ", "2023-02", "export", "100.00")), "14.00"),
        usd(ytd(trade("XJ", "2023-03", "export", "150.00")), "21.00"),
        usd(ytd(trade("XJ", "2024-02", "export", "200.00")), "28.00"),
        // No dollars given: (300.04 - 200.00) / 8 = 12.505 -> 12.50 (half to even)
        ytd(trade("XJ", "2024-03", "export", "300.04")),
        // A month only: 100.12 / 8 = 12.515 -> 12.52
        trade("XJ", "2024-04", "export", "100.12"),
        // A cumulative with a month that carries dollars: dollars follow the cumulative,
        // (500.16 - 400.16) / 8 = 12.50, not the month's 99.99.
        ytd(trade("XJ", "2024-05", "export", "500.16")),
        usd(trade("XJ", "2024-05", "export", "100.00"), "99.99"),
    ]);
    assert_eq!(b.get("trade/XJ/export/total/-/2024-02")["ytd_usd"], "28.00");
    let mar = b.get("trade/XJ/export/total/-/2024-03");
    assert_eq!(mar["ytd_usd"], "40.50");
    assert_eq!(mar["prior_ytd_usd"], "21.00");
    // 40.50 / 21.00 - 1 = 92.857142857...%
    assert_eq!(mar["ytd_usd_yoy_pct"], 92.857143);
    let apr = b.get("trade/XJ/export/total/-/2024-04");
    assert_eq!(apr["ytd_cny"], "400.16");
    assert_eq!(apr["ytd_usd"], "53.02");
    assert_eq!(apr["prior_ytd_usd"], Value::Null);
    assert_eq!(b.get("trade/XJ/export/total/-/2024-05")["ytd_usd"], "65.52");
}

#[test]
fn a_combined_january_february_without_dollars_has_no_dollar_ytd() {
    let mut b = Book::new();
    b.send_all([
        fx("2024-01", "7"),
        fx("2024-02", "7"),
        fx("2024-03", "7"),
        ytd(trade("XJ", "2024-02", "import", "200.00")),
        ytd(trade("XJ", "2024-03", "import", "270.00")),
        trade("XJ", "2024-04", "import", "70.00"),
    ]);
    for key in [
        "trade/XJ/import/total/-/2024-02",
        "trade/XJ/import/total/-/2024-03",
        "trade/XJ/import/total/-/2024-04",
    ] {
        let r = b.get(key);
        assert_eq!(r["ytd_usd"], Value::Null, "{key}");
        assert_ne!(r["ytd_cny"], Value::Null, "{key}");
    }
    assert_eq!(
        b.get("trade/XJ/import/total/-/2024-04")["ytd_cny"],
        "340.00"
    );
}

#[test]
fn freight_trains_follow_the_same_rules_and_an_unknown_month_ends_a_streak() {
    let mut b = Book::new();
    for p in months((2023, 10), (2023, 12)) {
        b.send(trains("khorgos", &p, 700));
    }
    b.send_all([
        ytd(trains("khorgos", "2024-02", 1400)),
        trains("khorgos", "2024-03", 700),
        ytd(trains("khorgos", "2024-03", 2101)),
        ytd(trains("khorgos", "2024-04", 2801)),
    ]);
    assert_eq!(b.record("freight/khorgos/china_europe/2024-01"), None);
    assert_eq!(
        b.get("freight/khorgos/china_europe/2023-12")["streak_months"],
        3
    );
    let feb = b.get("freight/khorgos/china_europe/2024-02");
    assert_eq!(feb["month_trains"], Value::Null);
    assert_eq!(feb["ytd_trains"], 1400);
    assert_eq!(feb["ytd_basis"], "reported");
    // v(2) is unknown: the streak from 2023 ends.
    assert_eq!(feb["streak_months"], 0);
    let mar = b.get("freight/khorgos/china_europe/2024-03");
    assert_eq!(mar["month_trains"], 700);
    assert_eq!(mar["ytd_trains"], 2101);
    assert_eq!(mar["ytd_gap_trains"], 1); // 2101 - (1400 + 700)
    assert_eq!(mar["streak_months"], 1);
    let apr = b.get("freight/khorgos/china_europe/2024-04");
    assert_eq!(apr["month_trains"], 700); // 2801 - 2101, derived
    assert_eq!(apr["months_in_ytd"], 4);
    assert_eq!(apr["ytd_gap_trains"], Value::Null);
    assert_eq!(apr["streak_months"], 2);
    // A revised cumulative below the month before: a negative derived month, no streak.
    b.send(rev(ytd(trains("khorgos", "2024-04", 2000)), 1));
    let apr = b.get("freight/khorgos/china_europe/2024-04");
    assert_eq!(apr["month_trains"], -101);
    assert_eq!(apr["streak_months"], 0);
}

#[test]
fn the_total_flow_is_derived_per_basis_and_needs_a_shared_basis() {
    let mut b = Book::new();
    b.send_all([
        ytd(trade("XJ", "2024-02", "import", "200.00")),
        ytd(trade("XJ", "2024-02", "export", "110.00")),
        trade("XJ", "2024-03", "import", "100.00"),
        trade("XJ", "2024-03", "export", "50.00"),
        ytd(trade("XJ", "2024-03", "import", "300.00")),
        ytd(trade("XJ", "2024-03", "export", "160.00")),
        // No shared basis at 2024-04: import a month, export a cumulative.
        trade("XJ", "2024-04", "import", "10.00"),
        ytd(trade("XJ", "2024-04", "export", "170.00")),
        // An explicit cumulative total beats import + export of that basis.
        ytd(trade("XJ", "2024-05", "import", "400.00")),
        ytd(trade("XJ", "2024-05", "export", "200.00")),
        ytd(trade("XJ", "2024-05", "total", "650.00")),
    ]);
    let feb = b.get("trade/XJ/total/total/-/2024-02");
    assert_eq!(feb["ytd_cny"], "310.00"); // 200 + 110
    assert_eq!(feb["ytd_basis"], "reported");
    let mar = b.get("trade/XJ/total/total/-/2024-03");
    assert_eq!(mar["month_cny"], "150.00"); // 100 + 50, month basis
    assert_eq!(mar["ytd_cny"], "460.00"); // 300 + 160, ytd basis
    assert_eq!(mar["ytd_gap_cny"], "0.00"); // 460 - (310 + 150)
    assert_eq!(b.record("trade/XJ/total/total/-/2024-04"), None);
    // The sides have their records there all the same.
    assert_eq!(
        b.get("trade/XJ/import/total/-/2024-04")["ytd_cny"],
        "310.00"
    );
    assert_eq!(
        b.get("trade/XJ/export/total/-/2024-04")["month_cny"],
        "10.00"
    );
    let may = b.get("trade/XJ/total/total/-/2024-05");
    assert_eq!(may["ytd_cny"], "650.00");
    // v(5) = 650 - Y(4), and Y(4) of the total is unknown.
    assert_eq!(may["month_cny"], Value::Null);
}

#[test]
fn record_fields_come_in_the_contract_order() {
    let mut b = Book::new();
    b.send_all([
        trade("XJ", "2024-01", "export", "1.00"),
        trains("khorgos", "2024-01", 1),
    ]);
    b.engine.flush();
    let order = |key: &str, b: &mut Book, fields: &[&str]| {
        let record = b
            .engine
            .records()
            .into_iter()
            .find(|r| r.key() == key)
            .unwrap();
        let text = String::from_utf8(record.to_json()).unwrap();
        let at: Vec<usize> = fields
            .iter()
            .map(|f| {
                text.find(&format!("\"{f}\":"))
                    .unwrap_or_else(|| panic!("{f}"))
            })
            .collect();
        let mut sorted = at.clone();
        sorted.sort();
        assert_eq!(at, sorted, "{text}");
    };
    order(
        "trade/XJ/export/total/-/2024-01",
        &mut b,
        &[
            "kind",
            "region",
            "flow",
            "dimension",
            "member",
            "period",
            "month_cny",
            "ytd_cny",
            "months_in_ytd",
            "ytd_basis",
            "ytd_gap_cny",
            "prior_ytd_cny",
            "ytd_yoy_pct",
            "ytd_usd",
            "prior_ytd_usd",
            "ytd_usd_yoy_pct",
            "ttm_cny",
            "share_pct",
            "yoy_rank",
            "yoy_rank_of",
        ],
    );
    order(
        "freight/khorgos/china_europe/2024-01",
        &mut b,
        &[
            "kind",
            "port",
            "service",
            "period",
            "month_trains",
            "ytd_trains",
            "months_in_ytd",
            "ytd_basis",
            "ytd_gap_trains",
            "prior_ytd_trains",
            "ytd_yoy_pct",
            "ttm_trains",
            "streak_months",
            "streak_threshold",
        ],
    );
}

#[test]
fn ranks_and_leaders_use_the_year_to_date_from_cumulatives() {
    let mut b = Book::new();
    b.send_all([
        // AA: combined releases, +20 %; BB: months, +10 %.
        ytd(trade("AA", "2023-02", "export", "100.00")),
        ytd(trade("AA", "2024-02", "export", "120.00")),
        trade("BB", "2023-01", "export", "50.00"),
        trade("BB", "2023-02", "export", "50.00"),
        trade("BB", "2024-01", "export", "55.00"),
        trade("BB", "2024-02", "export", "55.00"),
        ytd(part("AA", "2023-02", "export", "commodity", "x", "10.00")),
        ytd(part("AA", "2024-02", "export", "commodity", "x", "15.00")),
        ytd(part("AA", "2024-02", "export", "commodity", "y", "30.00")),
    ]);
    let aa = b.get("trade/AA/export/total/-/2024-02");
    assert_eq!(aa["ytd_yoy_pct"], 20.0);
    assert_eq!(
        (aa["yoy_rank"].as_u64(), aa["yoy_rank_of"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(b.get("trade/BB/export/total/-/2024-02")["yoy_rank"], 2);
    let l = b.get("leaders/AA/export/commodity/2024-02");
    assert_eq!(l["members_ranked"], 2);
    assert_eq!(
        l["by_share"],
        json!([
            {"member": "y", "ytd_cny": "30.00", "share_pct": 25.0},
            {"member": "x", "ytd_cny": "15.00", "share_pct": 12.5}
        ])
    );
    assert_eq!(l["by_yoy"], json!([{"member": "x", "ytd_yoy_pct": 50.0}]));
}
