//! Input events: raw message bytes in, a typed and validated [`Event`] or a [`Rejection`] out.
//!
//! This is the only place raw input is looked at ("parse, don't validate"): the engine never
//! sees a value that breaks a rule of the contract (§2). Money fields are read from their JSON
//! text, never through `f64`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::money::{self, Hundredths, Micros};
use crate::period::{Period, FIRST_YEAR};

mod compact;
mod scan;

/// Why an event was not applied; the value of the `silkroute.error.reason` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    InvalidUtf8,
    MalformedJson,
    NotAnObject,
    TooLarge,
    UnknownType,
    MissingField,
    InvalidField,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::InvalidUtf8,
        Reason::MalformedJson,
        Reason::NotAnObject,
        Reason::TooLarge,
        Reason::UnknownType,
        Reason::MissingField,
        Reason::InvalidField,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::MalformedJson => "malformed_json",
            Reason::NotAnObject => "not_an_object",
            Reason::TooLarge => "too_large",
            Reason::UnknownType => "unknown_type",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event: the reason code and one human-readable line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: Reason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }

    fn field(name: &str, problem: impl fmt::Display) -> Rejection {
        Rejection::new(Reason::InvalidField, format!("field `{name}` {problem}"))
    }

    fn missing(name: &str) -> Rejection {
        Rejection::new(Reason::MissingField, format!("field `{name}` is required"))
    }
}

/// Why a changelog value was not applied: the value is silkroute's own, so there is no
/// dead-letter reason for it, only a line for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

impl From<Rejection> for Unreadable {
    fn from(r: Rejection) -> Unreadable {
        Unreadable(r.to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flow {
    Import = 0,
    Export = 1,
    Total = 2,
}

impl Flow {
    pub const ALL: [Flow; 3] = [Flow::Import, Flow::Export, Flow::Total];

    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Import => "import",
            Flow::Export => "export",
            Flow::Total => "total",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a trade or freight figure covers (§2 `basis`): the month `period` alone, or the
/// cumulative total from January through `period` (the form customs publish). Part of the
/// cell identity: a month figure and a cumulative figure of the same period are two cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Basis {
    #[default]
    Month = 0,
    Ytd = 1,
}

impl Basis {
    pub const ALL: [Basis; 2] = [Basis::Month, Basis::Ytd];

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Month => "month",
            Basis::Ytd => "ytd",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The dimension name meaning "the region's whole trade".
pub const TOTAL_DIMENSION: &str = "total";
/// The port service used when an event names none.
pub const DEFAULT_SERVICE: &str = "china_europe";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeEvent<'a> {
    pub region: Cow<'a, str>,
    pub period: Period,
    pub flow: Flow,
    /// `"total"` or a breakdown name.
    pub dimension: Cow<'a, str>,
    /// `None` exactly when the dimension is `"total"`.
    pub member: Option<Cow<'a, str>>,
    pub value_cny: Hundredths,
    pub value_usd: Option<Hundredths>,
    pub basis: Basis,
    pub revision: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreightEvent<'a> {
    pub port: Cow<'a, str>,
    pub service: Cow<'a, str>,
    pub period: Period,
    pub trains: u32,
    pub basis: Basis,
    pub revision: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FxEvent<'a> {
    pub currency: Cow<'a, str>,
    pub period: Period,
    pub cny_per_unit: Micros,
    pub revision: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Trade(TradeEvent<'a>),
    Freight(FreightEvent<'a>),
    Fx(FxEvent<'a>),
}

impl Event<'_> {
    /// The key producers should use (§2), which `publish` uses.
    pub fn partition_key(&self) -> &str {
        match self {
            Event::Trade(e) => &e.region,
            Event::Freight(e) => &e.port,
            Event::Fx(e) => &e.currency,
        }
    }

    /// The event's canonical JSON: the fields the engine uses, compact, in a fixed order, with
    /// `member`, `value_usd` and `basis` left out when absent or default; unknown fields and
    /// `source` dropped. [`parse`] gives back the same event, and whatever a producer pads an
    /// event with, its canonical form stays under [`CANONICAL_MAX_BYTES`]. The changelog held
    /// this form until the compact one ([`Event::to_compact`]) replaced it; [`parse_stored`]
    /// still reads it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Field names and punctuation as literals, values through the writers that the
        // records use (byte for byte serde_json's): the changelog's copy of each event was
        // 8 % of a backfill's processing when written through serde_json and `fmt` (issue 17).
        use crate::json::{key, money, period, string, u32};
        match self {
            Event::Trade(e) => {
                key(out, b"{\"type\":\"customs_trade\",\"region\":");
                string(out, &e.region);
                key(out, b",\"period\":");
                period(out, e.period);
                key(out, b",\"flow\":");
                string(out, e.flow.as_str());
                key(out, b",\"dimension\":");
                string(out, &e.dimension);
                if let Some(m) = &e.member {
                    key(out, b",\"member\":");
                    string(out, m);
                }
                key(out, b",\"value_cny\":");
                money(out, e.value_cny);
                if let Some(usd) = e.value_usd {
                    key(out, b",\"value_usd\":");
                    money(out, usd);
                }
                if e.basis != Basis::Month {
                    key(out, b",\"basis\":");
                    string(out, e.basis.as_str());
                }
                key(out, b",\"revision\":");
                u32(out, e.revision);
            }
            Event::Freight(e) => {
                key(out, b"{\"type\":\"freight_trains\",\"port\":");
                string(out, &e.port);
                key(out, b",\"service\":");
                string(out, &e.service);
                key(out, b",\"period\":");
                period(out, e.period);
                key(out, b",\"trains\":");
                u32(out, e.trains);
                if e.basis != Basis::Month {
                    key(out, b",\"basis\":");
                    string(out, e.basis.as_str());
                }
                key(out, b",\"revision\":");
                u32(out, e.revision);
            }
            Event::Fx(e) => {
                key(out, b"{\"type\":\"fx_rate\",\"currency\":");
                string(out, &e.currency);
                key(out, b",\"period\":");
                period(out, e.period);
                // One event a month and currency: `Display` is fast enough.
                key(out, b",\"cny_per_unit\":");
                string(out, &e.cny_per_unit.to_string());
                key(out, b",\"revision\":");
                u32(out, e.revision);
            }
        }
        out.push(b'}');
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(192);
        self.write_json(&mut out);
        out
    }

    /// The event as the changelog stores it (the compact form of `event/compact.rs`);
    /// [`parse_stored`] gives back the same event.
    pub fn to_compact(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        compact::write(self, &mut out);
        out
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Event::Trade(_) => EventKind::Trade,
            Event::Freight(_) => EventKind::Freight,
            Event::Fx(_) => EventKind::Fx,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Trade,
    Freight,
    Fx,
}

/// The longest canonical form ([`Event::write_json`]) of any valid event: a member of 64
/// characters each escaped as `\u00XX` (6 bytes), the longest names and amounts, and the
/// field names. A changelog record is never larger, whatever the input message's size.
pub const CANONICAL_MAX_BYTES: usize = 1024;

/// What parsing needs from outside: the size limit and the current month (the engine has
/// no clock).
#[derive(Clone, Copy, Debug)]
pub struct ParseRules {
    pub max_message_bytes: usize,
    pub current_month: Period,
}

/// One field's value as JSON text, as it stands in the message (a string with its quotes).
#[derive(Clone, Copy, Debug)]
struct Raw<'a> {
    text: &'a str,
    /// Found by the scanner, which takes only strings without escapes: a string's value is
    /// then the text between its quotes, with no need to look for a backslash (a tenth of
    /// parsing, issue 17).
    plain: bool,
}

impl<'a> Raw<'a> {
    /// A value as serde_json found it.
    fn new(text: &'a str) -> Raw<'a> {
        Raw { text, plain: false }
    }

    /// A value as the scanner found it: if a string, one without escapes.
    fn plain(text: &'a str) -> Raw<'a> {
        Raw { text, plain: true }
    }

    fn get(self) -> &'a str {
        self.text
    }
}

/// The same text is the same value, whoever found it: the scanner's fields are held equal to
/// serde's by this.
impl PartialEq for Raw<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Raw<'_> {}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Raw<'a>, D::Error> {
        <&'a RawValue>::deserialize(d).map(|raw| Raw::new(raw.get()))
    }
}

/// Every field any event type may carry. Values stay raw JSON text until their event type is
/// known; unknown fields are skipped (by `scan` or serde). A null field is absent.
#[derive(Deserialize, Default, Debug, PartialEq, Eq)]
struct RawFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Raw<'a>>,
    #[serde(borrow)]
    region: Option<Raw<'a>>,
    #[serde(borrow)]
    period: Option<Raw<'a>>,
    #[serde(borrow)]
    flow: Option<Raw<'a>>,
    #[serde(borrow)]
    dimension: Option<Raw<'a>>,
    #[serde(borrow)]
    member: Option<Raw<'a>>,
    #[serde(borrow)]
    value_cny: Option<Raw<'a>>,
    #[serde(borrow)]
    value_usd: Option<Raw<'a>>,
    #[serde(borrow)]
    basis: Option<Raw<'a>>,
    #[serde(borrow)]
    revision: Option<Raw<'a>>,
    #[serde(borrow)]
    source: Option<Raw<'a>>,
    #[serde(borrow)]
    port: Option<Raw<'a>>,
    #[serde(borrow)]
    service: Option<Raw<'a>>,
    #[serde(borrow)]
    trains: Option<Raw<'a>>,
    #[serde(borrow)]
    currency: Option<Raw<'a>>,
    #[serde(borrow)]
    cny_per_unit: Option<Raw<'a>>,
}

/// Parses one message value into a validated event.
pub fn parse<'a>(bytes: &'a [u8], rules: &ParseRules) -> Result<Event<'a>, Rejection> {
    if bytes.len() > rules.max_message_bytes {
        return Err(Rejection::new(
            Reason::TooLarge,
            format!(
                "message is {} bytes, the limit (limits.max_message_bytes) is {}",
                bytes.len(),
                rules.max_message_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            Reason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    // The shape producers send, found by a scanner; anything else (and every error) as
    // serde_json reads it.
    let mut raw = RawFields::default();
    if scan::fields_into(text, &mut raw).is_none() {
        raw = serde_json::from_str(text).map_err(|e| classify_json_error(text, e))?;
    }
    // serde also fills a struct from an array of as many elements as it has fields.
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object());
    }
    let kind = string(raw.kind, "type")?.ok_or_else(|| Rejection::missing("type"))?;
    match kind.as_ref() {
        "customs_trade" => parse_trade(&raw, rules).map(Event::Trade),
        "freight_trains" => parse_freight(&raw, rules).map(Event::Freight),
        "fx_rate" => parse_fx(&raw, rules).map(Event::Fx),
        other => Err(Rejection::new(
            Reason::UnknownType,
            format!(
                "unknown event type {:?}; expected customs_trade, freight_trains or fx_rate",
                truncate(other)
            ),
        )),
    }
}

/// Reads a changelog value back into its event: the compact form ([`Event::to_compact`]), or
/// the canonical JSON ([`Event::to_json`]) that versions before it wrote. The input's rules
/// hold for both: what would be rejected as input is not applied from the changelog either.
pub fn parse_stored<'a>(bytes: &'a [u8], rules: &ParseRules) -> Result<Event<'a>, Unreadable> {
    if bytes.first() == Some(&compact::VERSION) {
        compact::read(bytes, rules)
    } else {
        parse(bytes, rules).map_err(Unreadable::from)
    }
}

fn classify_json_error(text: &str, e: serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data if !text.trim_start().starts_with('{') => not_an_object(),
        // Only a duplicated key reaches here: every field is taken as raw JSON.
        Category::Data => Rejection::new(Reason::InvalidField, e.to_string()),
        _ => Rejection::new(Reason::MalformedJson, e.to_string()),
    }
}

fn not_an_object() -> Rejection {
    Rejection::new(
        Reason::NotAnObject,
        "the event is valid JSON but not an object",
    )
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A JSON string field; `None` when absent or null.
fn string<'a>(raw: Option<Raw<'a>>, name: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if !text.starts_with('"') {
        return Err(Rejection::field(name, "must be a string"));
    }
    // The parser has checked the raw string (no control characters, valid escapes), so
    // without a backslash its value is the text between the quotes.
    if let Some(inner) = text[1..].strip_suffix('"') {
        if raw.plain || !inner.contains('\\') {
            return Ok(Some(Cow::Borrowed(inner)));
        }
    }
    if let Ok(s) = serde_json::from_str::<&'a str>(text) {
        return Ok(Some(Cow::Borrowed(s)));
    }
    // Escapes need an owned copy.
    serde_json::from_str::<String>(text)
        .map(|s| Some(Cow::Owned(s)))
        .map_err(|_| Rejection::field(name, "must be a string"))
}

fn required_string<'a>(raw: Option<Raw<'a>>, name: &str) -> Result<Cow<'a, str>, Rejection> {
    string(raw, name)?.ok_or_else(|| Rejection::missing(name))
}

/// Generic in `allowed`, not a `fn` pointer, so that the byte class is inlined into the loop:
/// reading the 443k backfill's compact changelog, the name checks took 154M instructions
/// through the pointer, 92M inlined (callgrind, issue 17).
fn check_name(
    value: &str,
    name: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
    charset: &str,
) -> Result<(), Rejection> {
    if value.is_empty() || value.len() > max || !value.bytes().all(allowed) {
        return Err(Rejection::field(
            name,
            format!("must be 1–{max} of {charset}, got {:?}", truncate(value)),
        ));
    }
    Ok(())
}

/// The name rules, for every form an event arrives in.
fn check_region(region: &str) -> Result<(), Rejection> {
    check_name(region, "region", 32, region_char, "A-Z a-z 0-9 _ -")
}

fn check_dimension(dimension: &str) -> Result<(), Rejection> {
    check_name(dimension, "dimension", 32, dimension_char, "a-z 0-9 _")
}

/// A port's name or its service's.
fn check_port_name(name: &str, value: &str) -> Result<(), Rejection> {
    check_name(value, name, 32, port_char, "a-z 0-9 _ -")
}

fn region_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn port_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

fn dimension_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

fn period(raw: Option<Raw<'_>>, rules: &ParseRules) -> Result<Period, Rejection> {
    let text = required_string(raw, "period")?;
    let p = Period::parse(&text).ok_or_else(|| {
        Rejection::field(
            "period",
            format!(
                "must be YYYY-MM with month 01–12, got {:?}",
                truncate(&text)
            ),
        )
    })?;
    check_period(p, rules)
}

/// The rules on a period beyond its spelling, for every form an event arrives in.
fn check_period(p: Period, rules: &ParseRules) -> Result<Period, Rejection> {
    if p.year() < FIRST_YEAR {
        return Err(Rejection::field(
            "period",
            format!("must be {FIRST_YEAR}-01 or later, got {p}"),
        ));
    }
    if p > rules.current_month {
        return Err(Rejection::field(
            "period",
            format!("{p} is after the current month {}", rules.current_month),
        ));
    }
    Ok(p)
}

/// A decimal given as a JSON number or a decimal string.
fn decimal_text<'a>(raw: Raw<'a>, name: &str) -> Result<Cow<'a, str>, Rejection> {
    let text = raw.get();
    if text.starts_with('"') {
        string(Some(raw), name).map(|s| s.expect("present"))
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(Cow::Borrowed(text))
    } else {
        Err(Rejection::field(
            name,
            "must be a decimal number or a decimal string",
        ))
    }
}

fn money_field(raw: Option<Raw<'_>>, name: &str) -> Result<Option<Hundredths>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = decimal_text(raw, name)?;
    money::parse_money(&text)
        .map(Some)
        .map_err(|e| Rejection::field(name, format!("{e} (got {})", truncate(&text))))
}

fn integer(raw: Option<Raw<'_>>, name: &str, max: u64) -> Result<Option<u64>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    match json_integer(text) {
        Some(Ok(v)) if v <= max => Ok(Some(v)),
        Some(Ok(_)) | Some(Err(Magnitude::Huge)) => Err(Rejection::field(
            name,
            format!("must be at most {max}, got {}", truncate(text)),
        )),
        Some(Err(Magnitude::Negative)) => Err(Rejection::field(
            name,
            format!("must not be negative, got {}", truncate(text)),
        )),
        Some(Err(Magnitude::Fraction)) | None => Err(Rejection::field(
            name,
            format!("must be a whole number, got {}", truncate(text)),
        )),
    }
}

/// Why a JSON number is not a `u64`.
#[derive(Debug, PartialEq, Eq)]
enum Magnitude {
    Negative,
    Fraction,
    Huge,
}

/// The exact value of a JSON number that is a whole number: `100`, `1e2`, `100.0` and `-0`
/// all mean the same integer, as in JSON Schema's `integer`. `None` when the text is not a
/// JSON number at all (a string, `true`, …). Never rounds: `1.5` is a fraction, `1e30` huge.
fn json_integer(text: &str) -> Option<Result<u64, Magnitude>> {
    let b = text.as_bytes();
    let (negative, rest) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'0'..=b'9' => (false, b),
        _ => return None,
    };
    let int_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let (int, rest) = rest.split_at(int_len);
    let (frac, rest) = match rest.split_first() {
        Some((b'.', r)) => {
            let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
            r.split_at(n)
        }
        _ => (&rest[..0], rest),
    };
    let exp: i64 = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', r)) => {
            let (sign, digits) = match r.split_first() {
                Some((b'-', d)) => (-1, d),
                Some((b'+', d)) => (1, d),
                _ => (1, r),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // Past 40 digits of exponent nothing but zero stays a u64; clamp before parsing.
            let e = std::str::from_utf8(digits)
                .ok()?
                .parse::<i64>()
                .unwrap_or(i64::MAX / 2);
            sign * e.min(1 << 40)
        }
        Some(_) => return None,
    };
    if int.is_empty() {
        return None;
    }
    // All significant digits, and the power of ten that scales them.
    let digits: Vec<u8> = int.iter().chain(frac).copied().collect();
    let Some(first) = digits.iter().position(|&d| d != b'0') else {
        return Some(Ok(0)); // zero, however written: `-0`, `0.0e7`
    };
    if negative {
        return Some(Err(Magnitude::Negative));
    }
    let digits = &digits[first..];
    let scale = exp - frac.len() as i64;
    let (kept, dropped) = if scale >= 0 {
        (digits, &digits[..0])
    } else {
        let cut = digits.len() as i64 + scale;
        if cut <= 0 {
            return Some(Err(Magnitude::Fraction));
        }
        digits.split_at(cut as usize)
    };
    if dropped.iter().any(|&d| d != b'0') {
        return Some(Err(Magnitude::Fraction));
    }
    if kept.len() as i64 + scale.max(0) > 20 {
        return Some(Err(Magnitude::Huge));
    }
    let mut v: u64 = 0;
    for &d in kept {
        v = match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            Some(v) => v,
            None => return Some(Err(Magnitude::Huge)),
        };
    }
    for _ in 0..scale.max(0) {
        v = match v.checked_mul(10) {
            Some(v) => v,
            None => return Some(Err(Magnitude::Huge)),
        };
    }
    Some(Ok(v))
}

/// Revisions are held in 32 bits; four billion restatements of one month is plenty.
const MAX_REVISION: u64 = u32::MAX as u64;

fn revision(raw: Option<Raw<'_>>) -> Result<u32, Rejection> {
    Ok(integer(raw, "revision", MAX_REVISION)?.unwrap_or(0) as u32)
}

/// `basis`: absent or null is `"month"`, as in v1.
fn basis(raw: Option<Raw<'_>>) -> Result<Basis, Rejection> {
    match string(raw, "basis")?.as_deref() {
        None | Some("month") => Ok(Basis::Month),
        Some("ytd") => Ok(Basis::Ytd),
        Some(other) => Err(Rejection::field(
            "basis",
            format!("must be month or ytd, got {:?}", truncate(other)),
        )),
    }
}

/// The most trains one port can report: a month's, or (`"ytd"`) a year's.
fn max_trains(basis: Basis) -> u64 {
    match basis {
        Basis::Month => 1_000_000,
        Basis::Ytd => 12_000_000,
    }
}

fn parse_trade<'a>(raw: &RawFields<'a>, rules: &ParseRules) -> Result<TradeEvent<'a>, Rejection> {
    let region = required_string(raw.region, "region")?;
    check_region(&region)?;
    let period = period(raw.period, rules)?;
    let flow_text = required_string(raw.flow, "flow")?;
    let flow = match flow_text.as_ref() {
        "import" => Flow::Import,
        "export" => Flow::Export,
        "total" => Flow::Total,
        other => {
            return Err(Rejection::field(
                "flow",
                format!("must be import, export or total, got {:?}", truncate(other)),
            ))
        }
    };
    let dimension = required_string(raw.dimension, "dimension")?;
    check_dimension(&dimension)?;
    let member = string(raw.member, "member")?;
    let member = match (dimension.as_ref() == TOTAL_DIMENSION, member) {
        (true, None) => None,
        (true, Some(_)) => {
            return Err(Rejection::field(
                "member",
                "must be absent or null when dimension is \"total\"",
            ))
        }
        (false, None) => return Err(Rejection::missing("member")),
        (false, Some(m)) => {
            check_member(&m)?;
            Some(m)
        }
    };
    let value_cny =
        money_field(raw.value_cny, "value_cny")?.ok_or_else(|| Rejection::missing("value_cny"))?;
    let value_usd = money_field(raw.value_usd, "value_usd")?;
    let basis = basis(raw.basis)?;
    let revision = revision(raw.revision)?;
    check_source(raw.source)?;
    Ok(TradeEvent {
        region,
        period,
        flow,
        dimension,
        member,
        value_cny,
        value_usd,
        basis,
        revision,
    })
}

fn check_member(m: &str) -> Result<(), Rejection> {
    // At most 64 bytes are at most 64 characters: counted only when longer.
    let fits = !m.is_empty() && (m.len() <= 64 || m.chars().count() <= 64);
    if !fits {
        let chars = m.chars().count();
        return Err(Rejection::field(
            "member",
            format!("must be 1–64 characters, got {chars}"),
        ));
    }
    Ok(())
}

fn check_source(raw: Option<Raw<'_>>) -> Result<(), Rejection> {
    if let Some(source) = string(raw, "source")? {
        // Characters are counted only past 128 bytes, which they cannot exceed.
        if source.len() > 128 && source.chars().count() > 128 {
            return Err(Rejection::field("source", "must be at most 128 characters"));
        }
    }
    Ok(())
}

fn parse_freight<'a>(
    raw: &RawFields<'a>,
    rules: &ParseRules,
) -> Result<FreightEvent<'a>, Rejection> {
    let port = required_string(raw.port, "port")?;
    check_port_name("port", &port)?;
    let service = string(raw.service, "service")?.unwrap_or(Cow::Borrowed(DEFAULT_SERVICE));
    check_port_name("service", &service)?;
    let period = period(raw.period, rules)?;
    let basis = basis(raw.basis)?;
    let trains = integer(raw.trains, "trains", max_trains(basis))?
        .ok_or_else(|| Rejection::missing("trains"))? as u32;
    let revision = revision(raw.revision)?;
    check_source(raw.source)?;
    Ok(FreightEvent {
        port,
        service,
        period,
        trains,
        basis,
        revision,
    })
}

fn check_currency(currency: &str) -> Result<(), Rejection> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::field(
            "currency",
            format!(
                "must be a three-letter code such as USD, got {:?}",
                truncate(currency)
            ),
        ));
    }
    Ok(())
}

fn parse_fx<'a>(raw: &RawFields<'a>, rules: &ParseRules) -> Result<FxEvent<'a>, Rejection> {
    let currency = required_string(raw.currency, "currency")?;
    check_currency(&currency)?;
    let period = period(raw.period, rules)?;
    let raw_rate = raw
        .cny_per_unit
        .ok_or_else(|| Rejection::missing("cny_per_unit"))?;
    let text = decimal_text(raw_rate, "cny_per_unit")?;
    let cny_per_unit = money::parse_rate(&text)
        .map_err(|e| Rejection::field("cny_per_unit", format!("{e} (got {})", truncate(&text))))?;
    let revision = revision(raw.revision)?;
    check_source(raw.source)?;
    Ok(FxEvent {
        currency,
        period,
        cny_per_unit,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Also the rules of `compact`'s tests.
    pub(super) fn rules() -> ParseRules {
        ParseRules {
            max_message_bytes: 1024,
            current_month: Period::new(2024, 10),
        }
    }

    fn reject(text: &[u8]) -> Rejection {
        parse(text, &rules()).expect_err("should be rejected")
    }

    #[test]
    fn a_trade_number_keeps_its_exact_fen() {
        let e = parse(br#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"total","value_cny":123456789012.34}"#, &rules()).unwrap();
        let Event::Trade(t) = e else { panic!() };
        assert_eq!(t.value_cny, Hundredths(12_345_678_901_234));
        assert_eq!(t.member, None);
        assert_eq!(t.revision, 0);
    }

    #[test]
    fn unknown_fields_are_ignored_and_strings_may_escape() {
        let e = parse(br#"{"type":"customs_trade","extra":[1,2],"region":"XJ","period":"2024-09","flow":"total","dimension":"partner_region","member":"caf\u00e9","value_cny":"1.5","value_usd":"0.20","revision":3}"#, &rules()).unwrap();
        let Event::Trade(t) = e else { panic!() };
        assert_eq!(t.member.as_deref(), Some("café"));
        assert_eq!(t.value_usd, Some(Hundredths(20)));
        assert_eq!(t.revision, 3);
    }

    #[test]
    fn spacing_and_escapes_do_not_change_a_string() {
        let compact = parse(br#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"import","dimension":"partner_region","member":"a/b \"c\"","value_cny":"1.50"}"#, &rules()).unwrap();
        let spaced = parse(b"{ \"type\" : \"customs_trade\" ,\n \"region\":\t\"X\\u004a\" , \"period\" : \"2024-09\", \"flow\": \"import\" , \"dimension\" :\"partner_region\", \"member\" : \"a\\/b \\\"c\\\"\" , \"value_cny\" : \"1.50\" }", &rules()).unwrap();
        assert_eq!(compact, spaced);
        let Event::Trade(t) = compact else { panic!() };
        assert_eq!(t.member.as_deref(), Some("a/b \"c\""));
        assert!(matches!(t.region, Cow::Borrowed("XJ")));
    }

    #[test]
    fn freight_service_defaults_to_china_europe() {
        let e = parse(
            br#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":700}"#,
            &rules(),
        )
        .unwrap();
        let Event::Freight(f) = e else { panic!() };
        assert_eq!((f.service.as_ref(), f.trains), ("china_europe", 700));
    }

    #[test]
    fn each_rejection_reason_is_reported() {
        assert_eq!(
            reject(b"{\"type\":\"fx_rate\xff\"}").reason,
            Reason::InvalidUtf8
        );
        assert_eq!(reject(b"{\"type\":").reason, Reason::MalformedJson);
        assert_eq!(reject(b"[1,2]").reason, Reason::NotAnObject);
        assert_eq!(reject(b"\"text\"").reason, Reason::NotAnObject);
        assert_eq!(reject(&[b' '; 2000]).reason, Reason::TooLarge);
        assert_eq!(reject(br#"{"type":"weather"}"#).reason, Reason::UnknownType);
        assert_eq!(reject(br#"{"region":"XJ"}"#).reason, Reason::MissingField);
        let r =
            reject(br#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":-1}"#);
        assert_eq!(r.reason, Reason::InvalidField);
        assert!(r.detail.contains("`trains`"), "{}", r.detail);
    }

    #[test]
    fn field_rules_of_the_contract_are_enforced() {
        let base = r#""type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"total""#;
        let cases: &[(&str, Reason, &str)] = &[
            (r#""value_cny":"1.234""#, Reason::InvalidField, "value_cny"),
            (r#""value_cny":-5"#, Reason::InvalidField, "value_cny"),
            (r#""value_cny":true"#, Reason::InvalidField, "value_cny"),
            (
                r#""value_cny":"1","member":"x""#,
                Reason::InvalidField,
                "member",
            ),
            (
                r#""value_cny":"1","revision":1.5"#,
                Reason::InvalidField,
                "revision",
            ),
            (
                r#""value_cny":"1","revision":-1"#,
                Reason::InvalidField,
                "revision",
            ),
            (
                r#""value_cny":"1","source":5"#,
                Reason::InvalidField,
                "source",
            ),
            (r#""value_usd":"1""#, Reason::MissingField, "value_cny"),
        ];
        for (extra, reason, field) in cases {
            let text = format!("{{{base},{extra}}}");
            let r = reject(text.as_bytes());
            assert_eq!(r.reason, *reason, "{text}");
            assert!(r.detail.contains(field), "{text}: {}", r.detail);
        }
        let others: &[(&str, &str)] = &[
            (
                r#"{"type":"customs_trade","region":"X J","period":"2024-09","flow":"export","dimension":"total","value_cny":1}"#,
                "region",
            ),
            (
                r#"{"type":"customs_trade","region":"XJ","period":"1989-12","flow":"export","dimension":"total","value_cny":1}"#,
                "period",
            ),
            (
                r#"{"type":"customs_trade","region":"XJ","period":"2024-11","flow":"export","dimension":"total","value_cny":1}"#,
                "period",
            ),
            (
                r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"re-export","dimension":"total","value_cny":1}"#,
                "flow",
            ),
            (
                r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"Partner","member":"a","value_cny":1}"#,
                "dimension",
            ),
            (
                r#"{"type":"freight_trains","port":"Khorgos","period":"2024-09","trains":1}"#,
                "port",
            ),
            (
                r#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":1000001}"#,
                "trains",
            ),
            (
                r#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":0}"#,
                "cny_per_unit",
            ),
            (
                r#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.1234567"}"#,
                "cny_per_unit",
            ),
        ];
        for (text, field) in others {
            let r = reject(text.as_bytes());
            assert_eq!(r.reason, Reason::InvalidField, "{text}");
            assert!(r.detail.contains(field), "{text}: {}", r.detail);
        }
        let missing_member = reject(br#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"commodity","value_cny":1}"#);
        assert_eq!(missing_member.reason, Reason::MissingField);
    }

    #[test]
    fn a_null_member_is_the_same_as_no_member_for_totals() {
        let e = parse(br#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"total","member":null,"value_cny":1}"#, &rules());
        assert!(e.is_ok());
    }

    #[test]
    fn basis_defaults_to_month_and_is_checked() {
        let parsed = |extra: &str| {
            let text = format!(
                r#"{{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"total","dimension":"total","value_cny":1{extra}}}"#
            );
            parse(text.as_bytes(), &rules()).map(|e| match e {
                Event::Trade(t) => t.basis,
                _ => unreachable!(),
            })
        };
        assert_eq!(parsed(""), Ok(Basis::Month));
        assert_eq!(parsed(r#","basis":null"#), Ok(Basis::Month));
        assert_eq!(parsed(r#","basis":"month""#), Ok(Basis::Month));
        assert_eq!(parsed(r#","basis":"ytd""#), Ok(Basis::Ytd));
        let r = parsed(r#","basis":"quarter""#).unwrap_err();
        assert_eq!(r.reason, Reason::InvalidField);
        assert!(r.detail.contains("`basis`"), "{}", r.detail);
        assert_eq!(
            parsed(r#","basis":1"#).unwrap_err().reason,
            Reason::InvalidField
        );
    }

    #[test]
    fn a_cumulative_train_count_may_reach_twelve_million() {
        let trains = |n: u64, basis: &str| {
            let text = format!(
                r#"{{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":{n}{basis}}}"#
            );
            parse(text.as_bytes(), &rules()).map(|_| ())
        };
        assert!(trains(1_000_000, "").is_ok());
        assert!(trains(1_000_001, "").is_err());
        assert!(trains(12_000_000, r#","basis":"ytd""#).is_ok());
        assert!(trains(12_000_001, r#","basis":"ytd""#).is_err());
    }

    #[test]
    fn whole_numbers_are_read_by_value_however_written() {
        let ok = [
            ("0", 0),
            ("-0", 0),
            ("100", 100),
            ("1e2", 100),
            ("1E+2", 100),
            ("100.0", 100),
            ("1000e-1", 100),
            ("0.0e7", 0),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, v) in ok {
            assert_eq!(json_integer(text), Some(Ok(v)), "{text}");
        }
        let bad = [
            ("1.5", Magnitude::Fraction),
            ("15e-1", Magnitude::Fraction),
            ("1e-400", Magnitude::Fraction),
            ("-1", Magnitude::Negative),
            ("-0.5", Magnitude::Negative),
            ("1e20", Magnitude::Huge),
            ("18446744073709551616", Magnitude::Huge),
            ("1e999999999999999999999", Magnitude::Huge),
        ];
        for (text, m) in bad {
            assert_eq!(json_integer(text), Some(Err(m)), "{text}");
        }
        for text in ["\"1\"", "true", "null", "[1]", "{}"] {
            assert_eq!(json_integer(text), None, "{text}");
        }
        let e = parse(
            br#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":7e2,"revision":-0}"#,
            &rules(),
        )
        .unwrap();
        let Event::Freight(f) = e else { panic!() };
        assert_eq!((f.trains, f.revision), (700, 0));
    }

    #[test]
    fn the_canonical_form_parses_back_to_the_same_event() {
        let inputs: &[&[u8]] = &[
            br#"{"type":"customs_trade","extra":{"a":[1,2,3]},"region":"XJ","period":"2024-02","flow":"total","dimension":"partner_region","member":"caf\u00e9 \"\\ \n","value_cny":"1.5","value_usd":0.2,"basis":"ytd","revision":3,"source":"x"}"#,
            br#"{"type":"customs_trade","region":"CN","period":"1990-01","flow":"import","dimension":"total","value_cny":1000000000000000}"#,
            br#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":12000000,"basis":"ytd"}"#,
            br#"{"type":"freight_trains","port":"a-b_1","service":"x","period":"2024-09","trains":0,"revision":4294967295}"#,
            br#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.123456"}"#,
            br#"{"type":"fx_rate","currency":"EUR","period":"2024-09","cny_per_unit":0.000001,"revision":2}"#,
        ];
        for bytes in inputs {
            let e = parse(bytes, &rules()).unwrap();
            let canonical = e.to_json();
            assert!(
                canonical.len() <= CANONICAL_MAX_BYTES,
                "{}",
                String::from_utf8_lossy(&canonical)
            );
            assert_eq!(
                parse(&canonical, &rules()).unwrap(),
                e,
                "{}",
                String::from_utf8_lossy(&canonical)
            );
            assert_eq!(parse(&canonical, &rules()).unwrap().to_json(), canonical);
        }
    }

    /// The changelog holds these bytes: what an instance of an earlier version wrote, one of
    /// this version must write alike (written out by hand from the contract's field order).
    #[test]
    fn the_canonical_form_is_byte_for_byte_stable() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"type":"customs_trade","extra":{"a":[1]},"region":"XJ","period":"2024-02","flow":"import","dimension":"partner_region","member":"caf\u00e9 \"\\ \n\u0001","value_cny":"1.5","value_usd":0.2,"basis":"ytd","revision":3,"source":"x"}"#,
                "{\"type\":\"customs_trade\",\"region\":\"XJ\",\"period\":\"2024-02\",\"flow\":\"import\",\"dimension\":\"partner_region\",\"member\":\"caf\u{e9} \\\"\\\\ \\n\\u0001\",\"value_cny\":\"1.50\",\"value_usd\":\"0.20\",\"basis\":\"ytd\",\"revision\":3}",
            ),
            (
                br#"{"revision":0,"value_cny":0.01,"value_usd":1000000000000000,"dimension":"total","flow":"export","period":"1990-01","region":"CN","type":"customs_trade"}"#,
                r#"{"type":"customs_trade","region":"CN","period":"1990-01","flow":"export","dimension":"total","value_cny":"0.01","value_usd":"1000000000000000.00","revision":0}"#,
            ),
            (
                br#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":12000000,"basis":"ytd"}"#,
                r#"{"type":"freight_trains","port":"khorgos","service":"china_europe","period":"2024-09","trains":12000000,"basis":"ytd","revision":0}"#,
            ),
            (
                br#"{"type":"freight_trains","port":"a-b_1","service":"x","period":"2024-09","trains":0,"revision":4294967295}"#,
                r#"{"type":"freight_trains","port":"a-b_1","service":"x","period":"2024-09","trains":0,"revision":4294967295}"#,
            ),
            (
                br#"{"type":"fx_rate","currency":"EUR","period":"2024-09","cny_per_unit":0.000001,"revision":2}"#,
                r#"{"type":"fx_rate","currency":"EUR","period":"2024-09","cny_per_unit":"0.000001","revision":2}"#,
            ),
        ];
        for (input, canonical) in cases {
            let e = parse(input, &rules()).unwrap();
            assert_eq!(String::from_utf8(e.to_json()).unwrap(), *canonical);
        }
    }

    #[test]
    fn the_longest_canonical_form_fits_its_bound() {
        let member = r"\u0001".repeat(64);
        let name = "a".repeat(32);
        let text = format!(
            r#"{{"type":"customs_trade","region":"{}","period":"2024-09","flow":"import","dimension":"{name}","member":"{member}","value_cny":"1000000000000000.00","value_usd":"1000000000000000.00","basis":"ytd","revision":4294967295}}"#,
            name.to_uppercase()
        );
        let e = parse(text.as_bytes(), &rules()).unwrap();
        let n = e.to_json().len();
        assert!(n <= CANONICAL_MAX_BYTES, "{n}");
        assert!(
            n > 500,
            "the bound is not loose by an order of magnitude: {n}"
        );
    }
}
