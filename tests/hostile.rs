//! Hostile input against the real broker, in the mode SILKROUTE_TEST_GUARANTEE names
//! (scripts/ci/hostile.sh runs both): every kind of message a careless or hostile producer
//! can send, each followed by a good event on the same partition. Each ends dead-lettered
//! with its reason (cut, with the original's length and SHA-256, where it is too long) or
//! applied where the contract says so, once; the event after it is processed; every offset is
//! accounted for (applied + ignored + dead-lettered = consumed, and committed);
//! `silkroute_events_rejected_total` counts each dead letter once; and no transaction is
//! aborted and no restore happens. Prints one summary line with the counts.

mod common;

use std::collections::BTreeMap;

use common::*;
use sha2::{Digest, Sha256};
use silkroute::event::Reason;

/// What the contract says becomes of a message.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Dead(&'static str),
    /// Applied: the record with this key shows this field at this value.
    Applied(String, &'static str, serde_json::Value),
}

struct Case {
    name: &'static str,
    message: Raw,
    expect: Expect,
}

const LIMIT: usize = 1_048_576;
const DEAD_LETTER_MAX: usize = 1_000_000;

fn trade(region: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"customs_trade","region":"{region}","period":"2024-01","flow":"import","dimension":"total","value_cny":"3.00"{extra}}}"#
    )
}

fn applied_trade(region: &str) -> Expect {
    Expect::Applied(
        format!("trade/{region}/import/total/-/2024-01"),
        "ytd_cny",
        "3.00".into(),
    )
}

fn freight(port: &str, trains: &str) -> String {
    format!(r#"{{"type":"freight_trains","port":"{port}","period":"2024-01","trains":{trains}}}"#)
}

fn applied_freight(port: &str, trains: u64) -> Expect {
    Expect::Applied(
        format!("freight/{port}/china_europe/2024-01"),
        "month_trains",
        trains.into(),
    )
}

fn cases() -> Vec<Case> {
    let case = |name, message, expect| Case {
        name,
        message,
        expect,
    };
    let key = |name: &str| name.as_bytes().to_vec();
    let raw = |name: &str, value: Vec<u8>| Raw::value(&key(name), value);
    // A valid event of exactly `size` bytes, padded with an unknown field.
    let padded = |region: &str, size: usize| {
        let mut v = trade(region, r#","pad":""#).into_bytes();
        v.truncate(v.len() - 1);
        let tail = b"\"}";
        v.resize(size - tail.len(), b'x');
        v.extend_from_slice(tail);
        assert_eq!(v.len(), size);
        v
    };
    let mut nested = br#"{"type":"customs_trade","x":"#.to_vec();
    nested.extend(std::iter::repeat_n(b'[', 100_000));
    nested.extend(std::iter::repeat_n(b']', 100_000));
    nested.push(b'}');
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(trade("BO", "").as_bytes());
    let many_headers = |name: &str, value: String| Raw {
        key: Some(key(name)),
        value: Some(value.into_bytes()),
        headers: (0..1000)
            .map(|i| (format!("h{i}"), format!("v{i}").into_bytes()))
            .collect(),
    };
    vec![
        // The existing dead-letter test's messages.
        case(
            "invalid_utf8",
            raw("invalid_utf8", b"{\"type\":\"fx_rate\xff\"}".to_vec()),
            Expect::Dead("invalid_utf8"),
        ),
        case(
            "malformed_json",
            raw("malformed_json", b"{\"type\": ".to_vec()),
            Expect::Dead("malformed_json"),
        ),
        case(
            "not_an_object",
            raw("not_an_object", b"[1,2,3]".to_vec()),
            Expect::Dead("not_an_object"),
        ),
        case(
            "unknown_type",
            raw("unknown_type", br#"{"type":"weather","region":"XJ"}"#.to_vec()),
            Expect::Dead("unknown_type"),
        ),
        case(
            "missing_field",
            raw(
                "missing_field",
                br#"{"type":"freight_trains","period":"2024-01","trains":5}"#.to_vec(),
            ),
            Expect::Dead("missing_field"),
        ),
        case(
            "invalid_field",
            raw(
                "invalid_field",
                br#"{"type":"freight_trains","port":"khorgos","period":"2024-13","trains":5}"#
                    .to_vec(),
            ),
            Expect::Dead("invalid_field"),
        ),
        // Valid JSON, 3 MB: too large, and its dead letter cut.
        case(
            "three_megabytes",
            raw("three_megabytes", padded("TM", 3_000_000)),
            Expect::Dead("too_large"),
        ),
        case(
            "one_over_the_limit",
            raw("one_over_the_limit", padded("OV", LIMIT + 1)),
            Expect::Dead("too_large"),
        ),
        // One byte under the limit: applied, and its changelog record is small.
        case(
            "one_under_the_limit",
            raw("one_under_the_limit", padded("UN", LIMIT - 1)),
            applied_trade("UN"),
        ),
        case(
            "tombstone",
            Raw {
                key: Some(key("tombstone")),
                ..Raw::default()
            },
            Expect::Dead("malformed_json"),
        ),
        case("empty", raw("empty", Vec::new()), Expect::Dead("malformed_json")),
        case(
            "non_utf8_key_valid",
            Raw::value(b"\xff\xfe-key", trade("NK", "")),
            applied_trade("NK"),
        ),
        case(
            "non_utf8_key_bad",
            Raw::value(b"\xff\xfe-bad", b"not json".to_vec()),
            Expect::Dead("malformed_json"),
        ),
        case(
            "long_key_bad",
            Raw::value(&[b'k'; 2000], b"{\"type\":\"weather\"}".to_vec()),
            Expect::Dead("unknown_type"),
        ),
        case(
            "long_key_valid",
            Raw::value(&[b'k'; 2000], trade("LK", "").into_bytes()),
            applied_trade("LK"),
        ),
        // Valid JSON: the parser skips the unknown field without recursing (no stack
        // overflow), and the event lacks its required fields.
        case(
            "nested_100000_deep",
            raw("nested_100000_deep", nested),
            Expect::Dead("missing_field"),
        ),
        case(
            "duplicate_type",
            raw(
                "duplicate_type",
                br#"{"type":"customs_trade","type":"fx_rate","currency":"USD","period":"2024-01","cny_per_unit":"7.1"}"#.to_vec(),
            ),
            Expect::Dead("invalid_field"),
        ),
        case("utf8_bom", raw("utf8_bom", bom), Expect::Dead("malformed_json")),
        case(
            "trains_1e2",
            raw("trains_1e2", freight("hostile-e", "1e2").into_bytes()),
            applied_freight("hostile-e", 100),
        ),
        case(
            "trains_minus_zero",
            raw("trains_minus_zero", freight("hostile-z", "-0").into_bytes()),
            applied_freight("hostile-z", 0),
        ),
        case(
            "value_cny_nan",
            raw(
                "value_cny_nan",
                br#"{"type":"customs_trade","region":"NA","period":"2024-01","flow":"import","dimension":"total","value_cny":"NaN"}"#.to_vec(),
            ),
            Expect::Dead("invalid_field"),
        ),
        case(
            "value_usd_infinity",
            raw(
                "value_usd_infinity",
                br#"{"type":"customs_trade","region":"IN","period":"2024-01","flow":"import","dimension":"total","value_cny":"1.00","value_usd":"Infinity"}"#.to_vec(),
            ),
            Expect::Dead("invalid_field"),
        ),
        case(
            "a_thousand_headers_valid",
            many_headers("a_thousand_headers_valid", trade("TH", "")),
            applied_trade("TH"),
        ),
        case(
            "a_thousand_headers_bad",
            many_headers("a_thousand_headers_bad", "[]".into()),
            Expect::Dead("not_an_object"),
        ),
    ]
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_message_ends_dead_lettered_or_applied_once_and_the_next_event_is_processed()
{
    let broker = Broker::start();
    assert!(broker.is_real(), "needs SILKROUTE_TEST_BOOTSTRAP");
    let names = Names::fresh();
    // One partition: every case is followed by a good event that must come through.
    broker
        .create_topics_with(&[(&names.trade, 1)], &[("max.message.bytes", "4194304")])
        .await;
    broker
        .create_topics(&[(&names.freight, 1), (&names.fx, 1)])
        .await;
    let cases = cases();
    let mut messages = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        messages.push(c.message.clone());
        messages.push(Raw::value(
            b"after",
            freight(&format!("after-{i}"), &i.to_string()).into_bytes(),
        ));
    }
    broker.produce_raw(&names.trade, &messages).await;

    let svc = TestService::start_on(broker, names, &[]).await;
    let (broker, names, handle) = (&svc.broker, &svc.names, &svc.handle);
    let expected_dead = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Dead(_)))
        .count();
    let consumed = || {
        handle
            .metrics
            .events_consumed
            .with_label_values(&[&names.trade])
            .get()
    };
    eventually("every message consumed and processed", 120, || {
        consumed() == messages.len() as u64 && svc.processed() >= messages.len() as u64
    })
    .await;
    let mut records = BTreeMap::new();
    eventually("the last good event's record", 60, || {
        records = compact(&broker.read_all(&names.indicators)).0;
        records.contains_key(&format!(
            "freight/after-{}/china_europe/2024-01",
            cases.len() - 1
        ))
    })
    .await;

    // Each good event after a hostile one was processed.
    for (i, case) in cases.iter().enumerate() {
        let key = format!("freight/after-{i}/china_europe/2024-01");
        assert_eq!(
            records.get(&key).map(|r| r["month_trains"].clone()),
            Some(i.into()),
            "the event after {}",
            case.name
        );
    }
    let dead = broker.read_all(&names.dead_letter);
    let trade_offset = |name: &str| 2 * cases.iter().position(|c| c.name == name).unwrap() as i64;
    let mut applied = 0;
    for (i, c) in cases.iter().enumerate() {
        let offset = 2 * i as i64;
        let letters: Vec<&Msg> = dead
            .iter()
            .filter(|d| d.header("silkroute.source.offset") == Some(offset.to_string().as_str()))
            .collect();
        match &c.expect {
            Expect::Dead(reason) => {
                assert_eq!(letters.len(), 1, "{}: one dead letter", c.name);
                let d = letters[0];
                assert_eq!(
                    d.header("silkroute.error.reason"),
                    Some(*reason),
                    "{}",
                    c.name
                );
                assert_eq!(
                    d.header("silkroute.source.topic"),
                    Some(names.trade.as_str())
                );
                assert_eq!(d.header("silkroute.source.partition"), Some("0"));
                let detail = d.header("silkroute.error.detail").unwrap_or_default();
                assert!(
                    !detail.is_empty() && !detail.contains('\n') && detail.len() <= 256,
                    "{}: one bounded line of detail: {detail:?}",
                    c.name
                );
                let (key, value) = (c.message.key.as_deref(), c.message.value.as_deref());
                let cut = key.is_some_and(|k| k.len() > 1024)
                    || value.is_some_and(|v| v.len() > DEAD_LETTER_MAX);
                assert_eq!(
                    d.key.as_deref(),
                    key.map(|k| &k[..k.len().min(1024)]),
                    "{}: the key, cut to 1,024 bytes",
                    c.name
                );
                assert_eq!(
                    d.value.as_deref(),
                    value.map(|v| &v[..v.len().min(DEAD_LETTER_MAX)]),
                    "{}: the value, cut to limits.dead_letter_max_bytes",
                    c.name
                );
                if cut {
                    let v = value.unwrap_or_default();
                    assert_eq!(
                        d.header("silkroute.error.original_bytes"),
                        Some(v.len().to_string().as_str()),
                        "{}",
                        c.name
                    );
                    assert_eq!(
                        d.header("silkroute.error.original_sha256"),
                        Some(sha256(v).as_str()),
                        "{}",
                        c.name
                    );
                } else {
                    assert_eq!(d.header("silkroute.error.original_bytes"), None);
                    assert_eq!(d.header("silkroute.error.original_sha256"), None);
                }
            }
            Expect::Applied(key, field, value) => {
                assert!(letters.is_empty(), "{}: not dead-lettered", c.name);
                assert_eq!(
                    records.get(key).map(|r| r[*field].clone()),
                    Some(value.clone()),
                    "{}: applied as {key}",
                    c.name
                );
                applied += 1;
            }
        }
    }
    assert_eq!(
        dead.len(),
        expected_dead,
        "each dead letter once, nothing else"
    );
    assert!(
        dead.iter().any(|d| d.header("silkroute.source.offset")
            == Some(trade_offset("tombstone").to_string().as_str())
            && d.value.is_none()),
        "a tombstone's dead letter has a null value"
    );

    // The padded event's changelog record is its compact form, not the producer's bytes.
    let changelog = broker.read_all(&format!("{}-cells-changelog", names.group));
    let padded = changelog
        .iter()
        .find(|m| m.key_str().starts_with("trade/UN/"))
        .expect("the padded event's changelog record");
    assert!(
        padded.value.as_ref().unwrap().len() <= silkroute::event::CANONICAL_MAX_BYTES,
        "the changelog record of a padded event is small"
    );
    assert!(changelog
        .iter()
        .all(|m| m.value.as_ref().map_or(0, Vec::len) <= silkroute::event::CANONICAL_MAX_BYTES));

    // Every offset is accounted for.
    let good = cases.len();
    let ignored: u64 = ["stale", "duplicate"]
        .iter()
        .map(|r| handle.metrics.events_ignored.with_label_values(&[r]).get())
        .sum();
    let rejected: BTreeMap<&str, u64> = Reason::ALL
        .iter()
        .map(|r| {
            (
                r.as_str(),
                handle
                    .metrics
                    .events_rejected
                    .with_label_values(&[r.as_str()])
                    .get(),
            )
        })
        .collect();
    let rejected_total: u64 = rejected.values().sum();
    for reason in Reason::ALL {
        let expected = cases
            .iter()
            .filter(|c| c.expect == Expect::Dead(reason.as_str()))
            .count() as u64;
        assert_eq!(rejected[reason.as_str()], expected, "rejected {reason}");
    }
    assert_eq!(rejected_total, expected_dead as u64);
    assert_eq!(ignored, 0);
    assert_eq!(
        (applied + good) as u64 + ignored + rejected_total,
        consumed(),
        "applied + ignored + dead-lettered = consumed"
    );
    eventually("every offset committed", 30, || {
        committed_offset(broker, &names.group, &names.trade, 0) == messages.len() as i64
    })
    .await;
    let aborts = handle
        .metrics
        .transactions
        .with_label_values(&["abort"])
        .get();
    assert_eq!(aborts, 0, "no transaction aborted");
    assert_eq!(handle.metrics.restores.get(), 0, "never restored");
    println!(
        "hostile[{}]: consumed={} applied={} ignored={} dead_lettered={} rejected_total={} cases={} aborts={} restores={}",
        guarantee(broker),
        consumed(),
        applied + good,
        ignored,
        dead.len(),
        rejected_total,
        cases.len(),
        aborts,
        handle.metrics.restores.get()
    );
    svc.stop().await;
}
