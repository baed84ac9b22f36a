//! A fuzz test of the event parser (issue 14): arbitrary bytes and structure-aware mutations of
//! valid events, seeded and reproducible.
//!
//! For every input it shows that the parser does not panic, that the outcome is a valid event or
//! a rejection with one of the contract's reasons and a one-line detail, that the same bytes
//! always get the same outcome, and that a valid event survives serialise → parse unchanged
//! (its canonical JSON parses back to the same event, and its compact form, which the
//! changelog stores, reads back to it; both within the changelog's size bound).
//!
//! `SILKROUTE_FUZZ_CASES` (default 1,000,000) and `SILKROUTE_FUZZ_SEED` (default fixed) choose
//! the run; a failure prints the seed, the case number and the input, so `SILKROUTE_FUZZ_SEED=…`
//! replays it. The counts are printed and written to `target/fuzz-event-summary.txt`.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};

use silkroute::event::{self, Event, ParseRules, Reason, CANONICAL_MAX_BYTES};
use silkroute::period::Period;

/// xorshift64*: small, fast and the same on every platform, so a seed names a run exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The default `limits.max_message_bytes`, so that the 100,000-deep document is parsed, not
/// refused for its size.
const MAX_MESSAGE_BYTES: usize = 1_048_576;

fn rules() -> ParseRules {
    ParseRules {
        max_message_bytes: MAX_MESSAGE_BYTES,
        current_month: Period::new(2024, 10),
    }
}

/// Valid events of every type and shape: the seeds of the structure-aware mutations.
const VALID: &[&str] = &[
    r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"total","dimension":"total","value_cny":"322390000000.00","value_usd":"44170000000.00","basis":"ytd","source":"reconstruction"}"#,
    r#"{"type":"customs_trade","region":"XJ","period":"2024-02","flow":"import","dimension":"partner_group","member":"belt_and_road","value_cny":297850000000,"basis":"ytd","revision":1}"#,
    r#"{"type":"customs_trade","region":"CN","period":"2023-01","flow":"export","dimension":"total","member":null,"value_cny":"1637391029964.12"}"#,
    r#"{"type":"customs_trade","region":"gd-1_x","period":"1990-01","flow":"import","dimension":"commodity","member":"caf\u00e9 \"hs\" 8471/30","value_cny":0.5,"basis":"month"}"#,
    r#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":702,"source":"reconstruction"}"#,
    r#"{"type":"freight_trains","port":"alashankou","service":"china_central_asia","period":"2024-09","trains":6269,"basis":"ytd","revision":2}"#,
    r#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.1012"}"#,
    r#"{"type":"fx_rate","currency":"EUR","period":"2024-01","cny_per_unit":7.8,"revision":0}"#,
];

/// Values that sit on or across a rule's edge, or that parsers get wrong.
const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "1e2",
    "1E+2",
    "1.5",
    "1.005",
    "100.00",
    "1e400",
    "-1e-400",
    "18446744073709551616",
    "4294967296",
    "1000000",
    "1000001",
    "12000000",
    "12000001",
    "1000000000000000",
    "1000000000000000.01",
    "\"\"",
    "\"NaN\"",
    "\"Infinity\"",
    "\"-Infinity\"",
    "\"1.5\"",
    "\"1.234\"",
    "\"-5\"",
    "\" 1\"",
    "\"1e2\"",
    "\"0x10\"",
    "\"2024-09\"",
    "\"2024-13\"",
    "\"1989-12\"",
    "\"2024-11\"",
    "\"2024-9\"",
    "\"99999-01\"",
    "\"month\"",
    "\"ytd\"",
    "\"YTD\"",
    "\"total\"",
    "\"import\"",
    "\"export\"",
    "\"XJ\"",
    "\"khorgos\"",
    "\"Khorgos\"",
    "\"a b\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\u00e9\"",
    "\"customs_trade\"",
    "\"freight_trains\"",
    "\"fx_rate\"",
    "\"weather\"",
    "[]",
    "{}",
    "[1,2]",
    "{\"a\":1}",
    "\"USD\"",
    "\"usd\"",
];

const FIELDS: &[&str] = &[
    "type",
    "region",
    "period",
    "flow",
    "dimension",
    "member",
    "value_cny",
    "value_usd",
    "basis",
    "revision",
    "source",
    "port",
    "service",
    "trains",
    "currency",
    "cny_per_unit",
    "extra",
];

/// One structure-aware mutation of a valid event's text.
fn mutate(rng: &mut Rng, valid: &str) -> Vec<u8> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(valid).expect("seed events are JSON objects");
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        match rng.below(6) {
            // Replace or add a field with an edge value.
            0 | 1 => {
                let field = *rng.pick(FIELDS);
                let text: &str = rng.pick::<&str>(VALUES);
                let value = serde_json::from_str(text).unwrap_or_default();
                map.insert(field.to_string(), value);
            }
            // Drop a field.
            2 => {
                let keys: Vec<String> = map.keys().cloned().collect();
                if !keys.is_empty() {
                    map.remove(rng.pick(&keys));
                }
            }
            // Long or odd strings where names go.
            3 => {
                let field = *rng.pick(&["region", "member", "port", "dimension", "source"]);
                let len = *rng.pick(&[0usize, 1, 31, 32, 33, 63, 64, 65, 128, 129]);
                let c = *rng.pick(&['a', 'Z', '9', '_', '-', 'é', '中', '/', '"', '\u{1}']);
                map.insert(
                    field.to_string(),
                    std::iter::repeat_n(c, len).collect::<String>().into(),
                );
            }
            // Unknown fields padding the event.
            4 => {
                let n = rng.below(200);
                map.insert(format!("pad{}", rng.next() % 1000), "x".repeat(n).into());
            }
            // Nesting where a value goes.
            _ => {
                let depth = *rng.pick(&[1usize, 127, 128, 129, 1000]);
                let field = *rng.pick(FIELDS);
                let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                map.insert(
                    field.to_string(),
                    serde_json::from_str(&text).unwrap_or_default(),
                );
            }
        }
    }
    let mut bytes = serde_json::to_vec(&map).expect("a map serialises");
    // Then, sometimes, damage the text itself.
    match rng.below(8) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if !bytes.is_empty() => {
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
        }
        2 => bytes.splice(0..0, [0xEF, 0xBB, 0xBF]).for_each(drop),
        3 if bytes.len() > 2 => {
            // A duplicated key: the first field again, before the closing brace.
            let first_field = bytes.iter().position(|&b| b == b',').unwrap_or(1);
            let dup = bytes[1..first_field].to_vec();
            let end = bytes.len() - 1;
            bytes
                .splice(end..end, [b','].into_iter().chain(dup))
                .for_each(drop);
        }
        4 => {
            let i = rng.below(bytes.len() + 1);
            let junk = *rng.pick(&[&b"\xff"[..], b"\x00", b"\\", b"\"", b",", b"}", b"{", b" "]);
            bytes.splice(i..i, junk.iter().copied()).for_each(drop);
        }
        _ => {}
    }
    bytes
}

/// Arbitrary bytes, biased towards JSON's alphabet so that some get past the first byte.
fn arbitrary(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"{}[]\":,0123456789.-+eE truefalsnul\\abcxyz_";
    let len = rng.below(80);
    (0..len)
        .map(|_| {
            if rng.chance(24) {
                rng.next() as u8
            } else {
                *rng.pick(ALPHABET)
            }
        })
        .collect()
}

/// Inputs no generator above reaches by chance: the hostile cases of issue 14, at the parser.
fn hostile() -> Vec<Vec<u8>> {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    let mut deep_field =
        br#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.1","x":"#
            .to_vec();
    deep_field.extend(deep(100_000));
    deep_field.push(b'}');
    vec![
        Vec::new(),
        b"null".to_vec(),
        deep(100_000),
        deep_field,
        vec![b' '; MAX_MESSAGE_BYTES + 1],
        b"\xEF\xBB\xBF{\"type\":\"fx_rate\",\"currency\":\"USD\",\"period\":\"2024-09\",\"cny_per_unit\":\"7.1\"}".to_vec(),
        br#"{"type":"fx_rate","type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.1"}"#.to_vec(),
    ]
}

/// Checks one input; returns the outcome's name for the tally, or what went wrong.
fn check(bytes: &[u8]) -> Result<&'static str, String> {
    let first = panic::catch_unwind(AssertUnwindSafe(|| event::parse(bytes, &rules())))
        .map_err(|_| "the parser panicked".to_string())?;
    let again = event::parse(bytes, &rules());
    if first != again {
        return Err(format!(
            "two outcomes for the same bytes: {first:?} / {again:?}"
        ));
    }
    match first {
        Err(r) => {
            if !Reason::ALL.contains(&r.reason) {
                return Err(format!("unknown reason {:?}", r.reason));
            }
            if r.detail.is_empty() || r.detail.contains('\n') || r.detail.len() > 512 {
                return Err(format!("detail is not one short line: {:?}", r.detail));
            }
            Ok(r.reason.as_str())
        }
        Ok(e) => {
            let canonical = e.to_json();
            if canonical.len() > CANONICAL_MAX_BYTES {
                return Err(format!("canonical form of {} bytes", canonical.len()));
            }
            let back: Event<'_> = event::parse(&canonical, &rules()).map_err(|r| {
                format!(
                    "canonical form {:?} rejected: {r}",
                    String::from_utf8_lossy(&canonical)
                )
            })?;
            if back != e {
                return Err(format!(
                    "serialise → parse changed the event: {e:?} → {back:?}"
                ));
            }
            if back.to_json() != canonical {
                return Err("the canonical form is not stable".into());
            }
            let compact = e.to_compact();
            if compact.len() > CANONICAL_MAX_BYTES {
                return Err(format!("compact form of {} bytes", compact.len()));
            }
            match event::parse_stored(&compact, &rules()) {
                Ok(stored) if stored == e => {}
                other => {
                    return Err(format!(
                        "the compact form {compact:?} read back as {other:?}, not {e:?}"
                    ))
                }
            }
            Ok("valid")
        }
    }
}

#[test]
fn the_parser_classifies_every_input_the_same_way_every_time() {
    let cases: u64 = std::env::var("SILKROUTE_FUZZ_CASES")
        .ok()
        .map(|v| v.parse().expect("SILKROUTE_FUZZ_CASES is a number"))
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("SILKROUTE_FUZZ_SEED")
        .ok()
        .map(|v| v.parse().expect("SILKROUTE_FUZZ_SEED is a number"))
        .unwrap_or(0x5EED_0000_2026_1202);
    let mut rng = Rng(seed | 1);
    let mut tally: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let fail = |kind: &str, case: u64, bytes: &[u8], why: String| -> ! {
        panic!(
            "{kind} case {case} (SILKROUTE_FUZZ_SEED={seed}): {why}\ninput ({} bytes): {:?}",
            bytes.len(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
        )
    };
    for (i, bytes) in hostile().iter().enumerate() {
        match check(bytes) {
            Ok(outcome) => *tally.entry(("hostile", outcome)).or_default() += 1,
            Err(why) => fail("hostile", i as u64, bytes, why),
        }
    }
    for valid in VALID {
        assert_eq!(check(valid.as_bytes()), Ok("valid"), "{valid}");
    }
    for case in 0..cases {
        let (kind, bytes) = if case % 4 == 0 {
            ("arbitrary", arbitrary(&mut rng))
        } else {
            let valid = *rng.pick(VALID);
            ("mutated", mutate(&mut rng, valid))
        };
        match check(&bytes) {
            Ok(outcome) => *tally.entry((kind, outcome)).or_default() += 1,
            Err(why) => fail(kind, case, &bytes, why),
        }
    }
    let total: u64 = tally.values().sum();
    let mut summary = format!("fuzz event parser: {total} inputs, seed {seed}\n");
    for ((kind, outcome), n) in &tally {
        summary.push_str(&format!("  {kind:<9} {outcome:<15} {n}\n"));
    }
    print!("{summary}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("fuzz-event-summary.txt"), &summary);
    assert!(total >= cases, "every case was checked");
    // The mutations must reach both sides, or the run shows nothing.
    let valid: u64 = tally
        .iter()
        .filter(|((k, o), _)| *k == "mutated" && *o == "valid")
        .map(|(_, n)| n)
        .sum();
    assert!(
        valid > cases / 50,
        "too few mutated inputs stayed valid: {valid}"
    );
    for reason in Reason::ALL {
        assert!(
            tally.keys().any(|(_, o)| *o == reason.as_str()),
            "no input was rejected as {reason}: the generators miss a rule"
        );
    }
}
