//! The 13 published statements of ../shared/bulletin.md, written once and checked on records by
//! key: tests/bulletin.rs asserts each on both sample sets' replay, and the service suites
//! (mock, real broker, secure) assert all of them on what the service published. Figures are
//! compared as the bulletin rounds them (322.39 billion, 29 %), in integers.

#![allow(dead_code)] // each test binary uses its part

use std::collections::BTreeMap;

use serde_json::Value;

/// Records by Kafka key (contract §3).
pub type Records = BTreeMap<String, Value>;

/// Every statement, in the bulletin's order.
pub const STATEMENTS: [fn(&Records); 13] = [
    statement_1_xinjiang_trade_was_322_39_billion_yuan,
    statement_2_which_is_44_17_billion_dollars,
    statement_3_up_29_percent_year_on_year,
    statement_4_first_nationwide_in_growth,
    statement_5_belt_and_road_partners_297_85_billion_up_25_8_share_92_4,
    statement_6_central_and_eastern_europe_led_partner_growth_at_437_1,
    statement_7_private_enterprises_298_35_billion_up_28_2_share_92_5,
    statement_8_state_owned_enterprises_21_68_billion_up_42_6,
    statement_9_foreign_invested_enterprises_1_87_billion_up_19_4,
    statement_10_exports_led_by_labour_intensive_then_electromechanical_products,
    statement_11_imports_dominated_by_bulk_commodities,
    statement_12_khorgos_6269_trains_up_8_1,
    statement_13_khorgos_above_600_for_12_consecutive_months,
];

/// All 13 statements (a failure's location names the statement's function).
pub fn assert_bulletin(records: &Records) {
    for statement in STATEMENTS {
        statement(records);
    }
}

fn record_of<'a>(records: &'a Records, key: &str) -> &'a Value {
    records
        .get(key)
        .unwrap_or_else(|| panic!("no record {key}"))
}

/// The Kafka key of a record, computed from its fields as contract §3 defines it.
pub fn key_of(v: &Value) -> String {
    let s = |f: &str| -> &str {
        v[f].as_str()
            .unwrap_or_else(|| panic!("{f} is not a string in {v}"))
    };
    match s("kind") {
        "trade" => format!(
            "trade/{}/{}/{}/{}/{}",
            s("region"),
            s("flow"),
            s("dimension"),
            v["member"].as_str().unwrap_or("-"),
            s("period")
        ),
        "trade_leaders" => format!(
            "leaders/{}/{}/{}/{}",
            s("region"),
            s("flow"),
            s("dimension"),
            s("period")
        ),
        "freight" => format!("freight/{}/{}/{}", s("port"), s("service"), s("period")),
        other => panic!("unknown kind {other}"),
    }
}

/// A money string (`"322390000000.00"`, exactly two decimals) in hundredths.
fn hundredths(v: &Value) -> i128 {
    let text = v
        .as_str()
        .unwrap_or_else(|| panic!("money must be a string, got {v}"));
    let (units, cents) = text.split_once('.').expect("two decimals");
    assert_eq!(cents.len(), 2, "{text}");
    units.parse::<i128>().unwrap() * 100 + cents.parse::<i128>().unwrap()
}

/// Billions to two decimals, as the bulletin rounds them: round(value / 1e9, 2), in
/// hundredths of a billion (322.39 bn -> 32239).
fn billions_2dp(v: &Value) -> i128 {
    let h = hundredths(v);
    // one hundredth of a billion = 10^7 units = 10^9 hundredths; round half up
    (h + 500_000_000) / 1_000_000_000
}

/// A percentage rounded to `dp` decimals, in units of 10^-dp (25.8 % -> 258 with dp 1).
pub fn pct(v: &Value, dp: i32) -> i64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("percentage must be a number, got {v}"));
    (x * 10f64.powi(dp)).round() as i64
}

pub const XJ_TOTAL: &str = "trade/XJ/total/total/-/2024-09";

pub fn statement_1_xinjiang_trade_was_322_39_billion_yuan(records: &Records) {
    let r = record_of(records, XJ_TOTAL);
    assert_eq!(billions_2dp(&r["ytd_cny"]), 32239);
    assert_eq!(r["months_in_ytd"], 9);
}

pub fn statement_2_which_is_44_17_billion_dollars(records: &Records) {
    assert_eq!(billions_2dp(&record_of(records, XJ_TOTAL)["ytd_usd"]), 4417);
}

pub fn statement_3_up_29_percent_year_on_year(records: &Records) {
    let r = record_of(records, XJ_TOTAL);
    assert_eq!(pct(&r["ytd_yoy_pct"], 0), 29);
    // The 2023 figure the growth implies: 322.39 / 1.29 = 249.9 bn.
    assert_eq!((billions_2dp(&r["prior_ytd_cny"]) + 5) / 10, 2499);
}

pub fn statement_4_first_nationwide_in_growth(records: &Records) {
    let r = record_of(records, XJ_TOTAL);
    assert_eq!(r["yoy_rank"], 1);
    // 31 provinces; the national aggregate is not one of them.
    assert_eq!(r["yoy_rank_of"], 31);
    let cn = record_of(records, "trade/CN/total/total/-/2024-09");
    assert_eq!(cn["yoy_rank"], Value::Null);
    assert_eq!(cn["yoy_rank_of"], Value::Null);
    assert!(cn["ytd_yoy_pct"].is_number());
    // Every other province grew less, and ranks run from 1 to 31 with XJ alone at 1.
    let mut ranked = 0;
    for (key, r) in records {
        if key.starts_with("trade/")
            && key.ends_with("/total/total/-/2024-09")
            && !key.starts_with("trade/CN/")
        {
            ranked += 1;
            if key != XJ_TOTAL {
                assert!(r["ytd_yoy_pct"].as_f64().unwrap() < 29.0, "{key}");
                assert!(r["yoy_rank"].as_u64().unwrap() > 1, "{key}");
                assert_eq!(r["yoy_rank_of"], 31, "{key}");
            }
        }
    }
    assert_eq!(ranked, 31);
}

pub fn statement_5_belt_and_road_partners_297_85_billion_up_25_8_share_92_4(records: &Records) {
    let r = record_of(
        records,
        "trade/XJ/total/partner_group/belt_and_road/2024-09",
    );
    assert_eq!(billions_2dp(&r["ytd_cny"]), 29785);
    assert_eq!(pct(&r["ytd_yoy_pct"], 1), 258);
    assert_eq!(pct(&r["share_pct"], 1), 924);
}

pub fn statement_6_central_and_eastern_europe_led_partner_growth_at_437_1(records: &Records) {
    let l = record_of(records, "leaders/XJ/total/partner_region/2024-09");
    let first = &l["by_yoy"][0];
    assert_eq!(first["member"], "central_eastern_europe");
    assert_eq!(pct(&first["ytd_yoy_pct"], 1), 4371);
    // All nine partner regions have complete windows.
    assert_eq!(l["members_ranked"], 9);
}

pub fn statement_7_private_enterprises_298_35_billion_up_28_2_share_92_5(records: &Records) {
    let r = record_of(records, "trade/XJ/total/enterprise_type/private/2024-09");
    assert_eq!(billions_2dp(&r["ytd_cny"]), 29835);
    assert_eq!(pct(&r["ytd_yoy_pct"], 1), 282);
    assert_eq!(pct(&r["share_pct"], 1), 925);
}

pub fn statement_8_state_owned_enterprises_21_68_billion_up_42_6(records: &Records) {
    let r = record_of(
        records,
        "trade/XJ/total/enterprise_type/state_owned/2024-09",
    );
    assert_eq!(billions_2dp(&r["ytd_cny"]), 2168);
    assert_eq!(pct(&r["ytd_yoy_pct"], 1), 426);
}

pub fn statement_9_foreign_invested_enterprises_1_87_billion_up_19_4(records: &Records) {
    let r = record_of(
        records,
        "trade/XJ/total/enterprise_type/foreign_invested/2024-09",
    );
    assert_eq!(billions_2dp(&r["ytd_cny"]), 187);
    assert_eq!(pct(&r["ytd_yoy_pct"], 1), 194);
}

pub fn statement_10_exports_led_by_labour_intensive_then_electromechanical_products(
    records: &Records,
) {
    let l = record_of(records, "leaders/XJ/export/commodity/2024-09");
    assert_eq!(l["by_share"][0]["member"], "labour_intensive");
    assert_eq!(l["by_share"][1]["member"], "electromechanical");
}

pub fn statement_11_imports_dominated_by_bulk_commodities(records: &Records) {
    let l = record_of(records, "leaders/XJ/import/commodity/2024-09");
    assert_eq!(l["by_share"][0]["member"], "bulk_commodities");
}

pub fn statement_12_khorgos_6269_trains_up_8_1(records: &Records) {
    let r = record_of(records, "freight/khorgos/china_europe/2024-09");
    assert_eq!(r["ytd_trains"], 6269);
    assert_eq!(r["months_in_ytd"], 9);
    assert_eq!(r["prior_ytd_trains"], 5799);
    assert_eq!(pct(&r["ytd_yoy_pct"], 1), 81);
}

pub fn statement_13_khorgos_above_600_for_12_consecutive_months(records: &Records) {
    let r = record_of(records, "freight/khorgos/china_europe/2024-09");
    assert_eq!(r["streak_months"], 12);
    assert_eq!(r["streak_threshold"], 600);
    // September 2023 was not above 600, so the streak then was 0.
    assert_eq!(
        record_of(records, "freight/khorgos/china_europe/2023-09")["streak_months"],
        0
    );
}
