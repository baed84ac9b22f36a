//! The 13 published statements of the bulletin (shared/bulletin.md), reproduced from both
//! reconstructed sample sets — `data/sample/` (month by month) and `data/releases/` (as customs
//! publish: cumulative figures, January and February together, flash then formal) — and
//! compared as they were published (322.39 billion, 29 %, ...). Also checks the `replay`
//! command end to end through the real binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use silkroute::clock;
use silkroute::engine::EngineSettings;
use silkroute::event::ParseRules;
use silkroute::replay::{self, Tally};

#[path = "common/bulletin.rs"]
mod statements;
use statements::{key_of, pct, XJ_TOTAL};

/// The two bundled reconstructions of the bulletin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    Monthly,
    Releases,
}

impl Set {
    fn dir(self) -> &'static str {
        match self {
            Set::Monthly => "data/sample",
            Set::Releases => "data/releases",
        }
    }

    /// The set's files in the order a shell expands `DIR/*.jsonl`.
    fn files(self) -> Vec<PathBuf> {
        ["freight.jsonl", "fx.jsonl", "trade.jsonl"]
            .iter()
            .map(|f| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(self.dir())
                    .join(f)
            })
            .collect()
    }
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/sample")
        .join(name)
}

fn sample_files() -> Vec<PathBuf> {
    Set::Monthly.files()
}

struct Replayed {
    stdout: Vec<u8>,
    records: BTreeMap<String, Value>,
    tally: Tally,
    stderr: String,
}

/// A whole set through `replay::run` with the default settings, once per test binary.
fn replayed_set(set: Set) -> &'static Replayed {
    static MONTHLY: OnceLock<Replayed> = OnceLock::new();
    static RELEASES: OnceLock<Replayed> = OnceLock::new();
    let once = match set {
        Set::Monthly => &MONTHLY,
        Set::Releases => &RELEASES,
    };
    once.get_or_init(|| {
        let rules = ParseRules {
            max_message_bytes: 1_048_576,
            current_month: clock::current_utc_month(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let tally = replay::run(
            &set.files(),
            EngineSettings::default(),
            &rules,
            &mut out,
            &mut err,
        )
        .expect("replay of the sample runs");
        let mut records = BTreeMap::new();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).expect("each line is JSON");
            let key = key_of(&v);
            assert!(records.insert(key.clone(), v).is_none(), "{key} twice");
        }
        Replayed {
            stdout: out,
            records,
            tally,
            stderr: String::from_utf8(err).unwrap(),
        }
    })
}

/// The monthly set: what the tests of the binary compare with.
fn replayed() -> &'static Replayed {
    replayed_set(Set::Monthly)
}

fn record_of(set: Set, key: &str) -> &'static Value {
    replayed_set(set)
        .records
        .get(key)
        .unwrap_or_else(|| panic!("no record {key}"))
}

/// Every statement, once per sample set.
macro_rules! for_both_sets {
    ($($statement:ident),* $(,)?) => {
        mod monthly {
            $(#[test] fn $statement() { super::statements::$statement(&super::replayed_set(super::Set::Monthly).records) })*
        }
        mod releases {
            $(#[test] fn $statement() { super::statements::$statement(&super::replayed_set(super::Set::Releases).records) })*
        }
    };
}

for_both_sets!(
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
);

#[test]
fn the_sample_has_one_stale_event_and_nothing_rejected() {
    let t = replayed().tally;
    // 1874 trade + 42 freight + 21 fx events.
    assert_eq!(t.events, 1937);
    assert_eq!(t.stale, 1);
    assert_eq!(t.duplicate, 0);
    assert_eq!(t.rejected, 0);
    assert_eq!(t.applied, 1936);
    assert_eq!(
        replayed().stderr,
        "1937 events: applied 1936, stale 1, duplicate 0, rejected 0\n"
    );
    // The stale replay of a preliminary figure did not undo its revision.
    assert_eq!(
        record_of(Set::Monthly, "trade/XJ/import/total/-/2024-07")["month_cny"],
        "7431213703.13"
    );
    assert_eq!(
        record_of(
            Set::Monthly,
            "trade/XJ/total/enterprise_type/private/2024-08"
        )["month_cny"],
        "35446316274.60"
    );
}

#[test]
fn the_release_set_has_one_stale_event_and_nothing_rejected() {
    let t = replayed_set(Set::Releases).tally;
    // 2803 trade + 49 freight + 21 fx events (data/releases/README.md).
    assert_eq!(t.events, 2873);
    assert_eq!((t.stale, t.duplicate, t.rejected), (1, 0, 0));
    assert_eq!(t.applied, 2872);
}

#[test]
fn the_release_set_reads_as_customs_publish_it() {
    let rec = |k: &str| record_of(Set::Releases, k);
    let has = |k: &str| replayed_set(Set::Releases).records.contains_key(k);
    let total = rec(XJ_TOTAL);
    // The September cumulative is the one reported; its month agrees with it.
    assert_eq!(total["ytd_basis"], "reported");
    assert_eq!(total["ytd_gap_cny"], "0.00");
    // Growth in dollar terms, as data/releases/README.md (and scripts/check_releases.py)
    // work it out: 44,169,742,501.60 against 35,466,083,250.13 dollars.
    assert_eq!(total["ytd_usd"], "44169742501.60");
    assert_eq!(total["prior_ytd_usd"], "35466083250.13");
    assert_eq!(pct(&total["ytd_usd_yoy_pct"], 1), 245);
    // January and February come out together: no January record, and February's month is
    // unknown although its year to date is reported.
    assert!(!has("trade/XJ/total/total/-/2024-01"));
    let feb = rec("trade/XJ/total/total/-/2024-02");
    assert_eq!(feb["month_cny"], Value::Null);
    assert_eq!(feb["ytd_basis"], "reported");
    assert_eq!(feb["months_in_ytd"], 2);
    // A release whose month disagrees with its cumulative by rounding (the README's list).
    assert_eq!(
        rec("trade/XJ/export/total/-/2024-06")["ytd_gap_cny"],
        "380.00"
    );
    assert_eq!(
        rec("trade/GD/export/total/-/2023-05")["ytd_gap_cny"],
        "-300.00"
    );
    // Breakdowns are cumulative only: their months are derived, never gapped.
    let private = rec("trade/XJ/total/enterprise_type/private/2024-09");
    assert_eq!(private["ytd_basis"], "reported");
    assert_eq!(private["ytd_gap_cny"], Value::Null);
    assert!(private["month_cny"].is_string());
}

// ---------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------

/// The binary with no configuration from this process's environment.
fn silkroute() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_silkroute"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SILKROUTE__") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stderr.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Parses `N events: applied A, stale S, duplicate D, rejected R`.
fn summary(line: &str) -> [u64; 5] {
    let (n, rest) = line
        .split_once(" events: applied ")
        .unwrap_or_else(|| panic!("not a summary line: {line:?}"));
    let (a, rest) = rest.split_once(", stale ").expect(line);
    let (s, rest) = rest.split_once(", duplicate ").expect(line);
    let (d, r) = rest.split_once(", rejected ").expect(line);
    [n, a, s, d, r].map(|x| x.parse().unwrap_or_else(|_| panic!("{line:?}")))
}

#[test]
fn the_binary_replays_the_sample_as_json_lines_sorted_by_key() {
    let out = silkroute()
        .arg("replay")
        .args(sample_files())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let keys: Vec<String> = stdout
        .lines()
        .map(|l| key_of(&serde_json::from_str(l).expect("each line is JSON")))
        .collect();
    assert!(!keys.is_empty());
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "stdout must be sorted by key, each key once"
    );
    let errors = stderr_lines(&out);
    assert_eq!(summary(errors.last().unwrap()), [1937, 1936, 1, 0, 0]);
    // The binary prints what the library computes.
    assert_eq!(out.stdout, replayed().stdout);
    assert!(keys.contains(&XJ_TOTAL.to_string()));
}

#[test]
fn a_bad_line_is_reported_with_its_file_and_line_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":700}"#,
            "\n",
            r#"{"type":"weather","period":"2024-01"}"#,
            "\n",
            "\n",
            "this is not json\n",
            r#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":700}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = silkroute().arg("replay").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let errors = stderr_lines(&out);
    let name = path.display().to_string();
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (line, (number, reason)) in errors
        .iter()
        .zip([(2, "unknown_type"), (4, "malformed_json")])
    {
        let prefix = format!("{name}:{number}: {reason}: ");
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
        assert!(line.len() > prefix.len(), "a detail follows: {line:?}");
    }
    assert_eq!(summary(&errors[2]), [4, 1, 0, 1, 2]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    let r: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(key_of(&r), "freight/khorgos/china_europe/2024-01");
    assert_eq!(r["month_trains"], 700);
}

#[test]
fn an_unknown_configuration_key_exits_with_code_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[freight]\nstreak_treshold = 500\n").unwrap();
    let out = silkroute()
        .arg("--config")
        .arg(&config)
        .arg("replay")
        .arg(sample("fx.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let errors = stderr_lines(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("freight.streak_treshold"), "{errors:?}");
    assert!(out.stdout.is_empty());
}
