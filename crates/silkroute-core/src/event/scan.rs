//! The fast path of [`super::parse`]: the shape producers send, one flat JSON object whose
//! values are strings without escapes, numbers, `true`, `false` or `null`, read in one pass
//! without serde's per-field machinery (issue 17: serde's derive was a third of the engine's
//! time on a backfill).
//!
//! It finds each known field's raw text exactly as serde_json would, or gives up: on an
//! escape or a control character in a string, a nested value, a field given twice, or
//! anything that is not well-formed JSON. Then serde_json parses the message, and its answer
//! (and its error message) decides. So the scanner never accepts what serde would refuse,
//! nor reads a field differently; a property test in `super::tests` holds the two equal.

use super::{Raw, RawFields};

/// The known fields of `text`, or `None` for serde_json to decide.
#[cfg(test)]
fn fields(text: &str) -> Option<RawFields<'_>> {
    let mut fields = RawFields::default();
    fields_into(text, &mut fields)?;
    Some(fields)
}

/// The known fields of `text` into `fields`, which must start all absent, or `None` for
/// serde_json to decide (then `fields` holds whatever was found before the scanner gave
/// up). The parser's own `RawFields` is filled in place: a third of a kilobyte returned by
/// value was two copies per event (issue 17).
pub(super) fn fields_into<'a>(text: &'a str, fields: &mut RawFields<'a>) -> Option<()> {
    let b = text.as_bytes();
    // Which known fields were seen, null or not: serde refuses a second one either way.
    let mut seen = 0u32;
    let mut i = whitespace(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = whitespace(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, after) = string(b, i)?;
            i = whitespace(b, after);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = whitespace(b, i + 1);
            let (value, after) = value(text, i)?;
            if let Some((bit, slot)) = slot(fields, &text[key]) {
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                *slot = value;
            }
            i = whitespace(b, after);
            match b.get(i) {
                Some(b',') => i = whitespace(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (whitespace(b, i) == b.len()).then_some(())
}

/// JSON's whitespace from `i` on: the index of the next other byte.
#[inline(always)]
fn whitespace(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// A string without escapes or control characters at `i`: the range of its contents, and
/// the index after its closing quote.
#[inline(always)]
fn string(b: &[u8], i: usize) -> Option<(std::ops::Range<usize>, usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let end = string_end(b, start)?;
    (b[end] == b'"').then_some((start..end, end + 1))
}

/// The index of the first quote, backslash or control character at or after `i`: where a
/// string without escapes ends, or where the scanner gives up. Eight bytes at a time, since
/// finding string ends byte by byte was a third of the scanner's time (issue 17).
#[inline(always)]
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// Flags each byte of `y` below `n` (n ≤ 0x80) with its high bit. The lowest flag is
    /// exact; flags above it may be false (a borrow): only the lowest is read.
    fn below(y: u64, n: u8) -> u64 {
        y.wrapping_sub(ONES * u64::from(n)) & !y & HIGH
    }
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // A byte equal to c is a zero byte of x ^ c…c, and a zero byte is one below 1.
        let found = below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            | below(x, 0x20);
        if found != 0 {
            // Little-endian: the lowest flagged byte is the first in the text.
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    let n = b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(i + n)
}

/// A value at `i` that is not an object or an array: its raw text (`None` for `null`, which
/// serde reads as an absent field), and the index after it.
#[inline(always)]
fn value(text: &str, i: usize) -> Option<(Option<Raw<'_>>, usize)> {
    let b = text.as_bytes();
    let end = match *b.get(i)? {
        b'"' => string(b, i)?.1,
        b'n' => return b[i..].starts_with(b"null").then_some((None, i + 4)),
        b't' => literal(b, i, b"true")?,
        b'f' => literal(b, i, b"false")?,
        b'-' | b'0'..=b'9' => number(b, i)?,
        _ => return None,
    };
    Some((Some(Raw::plain(&text[i..end])), end))
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// A JSON number at `i` (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`): the index
/// after it. What follows is for the caller to check.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i += digits(i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

/// The field named `key` (as serde names them) and its bit in `seen`; `None` for a field no
/// event has, which is skipped.
fn slot<'f, 'a>(f: &'f mut RawFields<'a>, key: &str) -> Option<(u32, &'f mut Option<Raw<'a>>)> {
    let slot = match key {
        "type" => (1, &mut f.kind),
        "region" => (1 << 1, &mut f.region),
        "period" => (1 << 2, &mut f.period),
        "flow" => (1 << 3, &mut f.flow),
        "dimension" => (1 << 4, &mut f.dimension),
        "member" => (1 << 5, &mut f.member),
        "value_cny" => (1 << 6, &mut f.value_cny),
        "value_usd" => (1 << 7, &mut f.value_usd),
        "basis" => (1 << 8, &mut f.basis),
        "revision" => (1 << 9, &mut f.revision),
        "source" => (1 << 10, &mut f.source),
        "port" => (1 << 11, &mut f.port),
        "service" => (1 << 12, &mut f.service),
        "trains" => (1 << 13, &mut f.trains),
        "currency" => (1 << 14, &mut f.currency),
        "cny_per_unit" => (1 << 15, &mut f.cny_per_unit),
        _ => return None,
    };
    Some(slot)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::RawFields;
    use super::fields;

    #[test]
    fn string_ends_are_found_eight_bytes_at_a_time_as_one_at_a_time() {
        let naive = |b: &[u8], i: usize| {
            b[i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .map(|n| i + n)
        };
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xe4, 0xff, b'0',
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut y = x;
            let text: Vec<u8> = (0..len)
                .map(|k| {
                    // Mostly plain bytes, so that ends fall anywhere in a word.
                    y = y.rotate_left(7) ^ (k as u64);
                    if y % 5 == 0 {
                        alphabet[(y >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (y >> 16) as u8 % 26
                    }
                })
                .collect();
            for i in 0..=len {
                assert_eq!(super::string_end(&text, i), naive(&text, i), "{text:?} {i}");
            }
        }
    }

    /// serde_json's reading, the reference.
    fn serde(text: &str) -> Option<RawFields<'_>> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn the_shape_producers_send_is_scanned_as_serde_reads_it() {
        for text in [
            r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"total","value_cny":"30000000000.00","revision":2}"#,
            r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"import","dimension":"commodity","member":"01","value_cny":12.5,"basis":"ytd","source":"customs.gov.cn"}"#,
            r#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.1","source":"pboc"}"#,
            r#" { "type" : "freight_trains" , "port":"khorgos","trains":1e2,"member":null, "extra":true } "#,
            "{}",
        ] {
            let scanned = fields(text);
            assert!(scanned.is_some(), "not scanned: {text}");
            assert_eq!(scanned, serde(text), "{text}");
        }
    }

    /// The fields serde's derive knows, as it hands them to `deserialize_struct`.
    fn serde_fields() -> &'static [&'static str] {
        use serde::de::{self, Visitor};
        struct Fields;
        #[derive(Debug)]
        struct Found(&'static [&'static str]);
        impl std::fmt::Display for Found {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Found {}
        impl de::Error for Found {
            fn custom<T: std::fmt::Display>(_: T) -> Found {
                Found(&[])
            }
        }
        impl<'de> de::Deserializer<'de> for Fields {
            type Error = Found;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
                Err(Found(&[]))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Found> {
                Err(Found(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        match <RawFields<'_> as serde::Deserialize>::deserialize(Fields) {
            Err(Found(fields)) => fields,
            Ok(_) => unreachable!("no value to deserialize"),
        }
    }

    #[test]
    fn the_scanner_knows_every_field_serde_knows() {
        // A field added to `RawFields` and not to `slot` would be skipped by the scanner:
        // read as absent where serde reads it.
        let names = serde_fields();
        assert_eq!(names.len(), 16, "{names:?}");
        for name in names {
            let text = format!(r#"{{"{name}":"x"}}"#);
            let scanned = fields(&text).unwrap_or_else(|| panic!("not scanned: {text}"));
            assert_ne!(
                scanned,
                RawFields::default(),
                "{name} skipped by the scanner"
            );
            assert_eq!(Some(scanned), serde(&text), "{name}");
        }
    }

    #[test]
    fn what_the_scanner_leaves_to_serde() {
        for text in [
            r#"{"region":"X\"J"}"#,             // an escape
            r#"{"region":"XJ","region":"GD"}"#, // twice
            r#"{"member":null,"member":"a"}"#,  // twice, the first null
            r#"{"extra":{"a":1}}"#,             // nested
            r#"{"trains":01}"#,                 // not JSON
            r#"{"trains":1.}"#,
            r#"{"trains":-}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"[1,2]"#,
            "{\"region\":\"X\tJ\"}", // a control character
        ] {
            assert_eq!(fields(text), None, "{text}");
        }
    }

    /// Pieces of JSON, valid and not, that the scanner meets.
    fn a_value() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => "[a-zA-Z0-9 ._:-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            1 => r#""[a-z]{0,3}\\[n"\\/u][a-z0-9]{0,4}""#.prop_map(|s| s),
            6 => r#"-?(0|[1-9][0-9]{0,3})(\.[0-9]{0,3})?([eE][+-]?[0-9]{0,2})?"#.prop_map(|s| s),
            1 => "[0-9.eE+-]{1,5}",
            2 => Just("null".to_string()),
            1 => Just("true".to_string()),
            1 => Just("false".to_string()),
            1 => Just("nul".to_string()),
            1 => Just("{}".to_string()),
            1 => Just("[1]".to_string()),
            1 => Just("\"\u{7}\"".to_string()),
            2 => Just("\"é€\"".to_string()),
        ]
    }

    fn a_key() -> impl Strategy<Value = String> {
        prop_oneof![
            20 => prop::sample::select(vec![
                "type", "region", "period", "flow", "dimension", "member", "value_cny",
                "value_usd", "basis", "revision", "source", "port", "service", "trains",
                "currency", "cny_per_unit", "extra", "Type", "type ",
            ])
            .prop_map(|k| format!("\"{k}\"")),
            1 => Just(r#""ty\u0070e""#.to_string()),
            1 => Just("type".to_string()),
        ]
    }

    fn whitespace() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", "", "", "", " ", "\n", "\t ", "\r\n", "\u{a0}"])
            .prop_map(String::from)
    }

    fn an_object() -> impl Strategy<Value = String> {
        let member = (whitespace(), a_key(), whitespace(), a_value(), whitespace());
        (
            whitespace(),
            prop::collection::vec(member, 0..6),
            prop::sample::select(vec![",", ",", ",", ",", ",", ",", ", ", ";", ",,"]),
            prop::sample::select(vec!["}", "}", "}", "}", "}", "} ", "}x", "", "},"]),
        )
            .prop_map(|(lead, members, comma, close)| {
                let body: Vec<String> = members
                    .into_iter()
                    .map(|(a, k, b, v, c)| format!("{a}{k}{b}:{c}{v}"))
                    .collect();
                format!("{lead}{{{}{close}", body.join(comma))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn whatever_the_scanner_accepts_serde_reads_the_same(text in an_object()) {
            if let Some(scanned) = fields(&text) {
                prop_assert_eq!(Some(scanned), serde(&text), "{}", text);
            }
        }

        #[test]
        fn every_plain_object_serde_reads_is_scanned(text in an_object()) {
            // Without escapes, nesting or control characters, what serde reads the scanner
            // must read too: the fast path is not silently bypassed.
            let plain = !text.contains('\\')
                && !text.contains("{}")
                && !text.contains("[1]")
                && !text.contains('\u{7}');
            if plain && serde(&text).is_some() {
                prop_assert!(fields(&text).is_some(), "{}", text);
            }
        }
    }
}
