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
    pub revision: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreightEvent<'a> {
    pub port: Cow<'a, str>,
    pub service: Cow<'a, str>,
    pub period: Period,
    pub trains: u32,
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

/// What parsing needs from outside: the size limit and the current month (the engine has
/// no clock).
#[derive(Clone, Copy, Debug)]
pub struct ParseRules {
    pub max_message_bytes: usize,
    pub current_month: Period,
}

/// Every field any event type may carry. Values stay raw JSON text until their event type is
/// known; unknown fields are skipped by serde.
#[derive(Deserialize)]
struct RawFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    region: Option<&'a RawValue>,
    #[serde(borrow)]
    period: Option<&'a RawValue>,
    #[serde(borrow)]
    flow: Option<&'a RawValue>,
    #[serde(borrow)]
    dimension: Option<&'a RawValue>,
    #[serde(borrow)]
    member: Option<&'a RawValue>,
    #[serde(borrow)]
    value_cny: Option<&'a RawValue>,
    #[serde(borrow)]
    value_usd: Option<&'a RawValue>,
    #[serde(borrow)]
    revision: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    port: Option<&'a RawValue>,
    #[serde(borrow)]
    service: Option<&'a RawValue>,
    #[serde(borrow)]
    trains: Option<&'a RawValue>,
    #[serde(borrow)]
    currency: Option<&'a RawValue>,
    #[serde(borrow)]
    cny_per_unit: Option<&'a RawValue>,
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
    let raw: RawFields<'_> =
        serde_json::from_str(text).map_err(|e| classify_json_error(text, e))?;
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
fn string<'a>(raw: Option<&'a RawValue>, name: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if !text.starts_with('"') {
        return Err(Rejection::field(name, "must be a string"));
    }
    // The parser has checked the raw string (no control characters, valid escapes), so
    // without a backslash its value is the text between the quotes.
    if let Some(inner) = text[1..].strip_suffix('"') {
        if !inner.contains('\\') {
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

fn required_string<'a>(raw: Option<&'a RawValue>, name: &str) -> Result<Cow<'a, str>, Rejection> {
    string(raw, name)?.ok_or_else(|| Rejection::missing(name))
}

fn check_name(
    value: &str,
    name: &str,
    max: usize,
    allowed: fn(u8) -> bool,
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

fn region_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn port_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

fn dimension_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

fn period(raw: Option<&RawValue>, rules: &ParseRules) -> Result<Period, Rejection> {
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
fn decimal_text<'a>(raw: &'a RawValue, name: &str) -> Result<Cow<'a, str>, Rejection> {
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

fn money_field(raw: Option<&RawValue>, name: &str) -> Result<Option<Hundredths>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = decimal_text(raw, name)?;
    money::parse_money(&text)
        .map(Some)
        .map_err(|e| Rejection::field(name, format!("{e} (got {})", truncate(&text))))
}

fn integer(raw: Option<&RawValue>, name: &str, max: u64) -> Result<Option<u64>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    match text.parse::<u64>() {
        Ok(v) if v <= max => Ok(Some(v)),
        Ok(_) => Err(Rejection::field(
            name,
            format!("must be at most {max}, got {}", truncate(text)),
        )),
        Err(_) if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) => {
            Err(Rejection::field(
                name,
                format!("must not be negative, got {}", truncate(text)),
            ))
        }
        Err(_) => Err(Rejection::field(
            name,
            format!("must be a whole number, got {}", truncate(text)),
        )),
    }
}

/// Revisions are held in 32 bits; four billion restatements of one month is plenty.
const MAX_REVISION: u64 = u32::MAX as u64;

fn revision(raw: Option<&RawValue>) -> Result<u32, Rejection> {
    Ok(integer(raw, "revision", MAX_REVISION)?.unwrap_or(0) as u32)
}

fn parse_trade<'a>(raw: &RawFields<'a>, rules: &ParseRules) -> Result<TradeEvent<'a>, Rejection> {
    let region = required_string(raw.region, "region")?;
    check_name(&region, "region", 32, region_char, "A-Z a-z 0-9 _ -")?;
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
    check_name(&dimension, "dimension", 32, dimension_char, "a-z 0-9 _")?;
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
            let chars = m.chars().count();
            if !(1..=64).contains(&chars) {
                return Err(Rejection::field(
                    "member",
                    format!("must be 1–64 characters, got {chars}"),
                ));
            }
            Some(m)
        }
    };
    let value_cny =
        money_field(raw.value_cny, "value_cny")?.ok_or_else(|| Rejection::missing("value_cny"))?;
    let value_usd = money_field(raw.value_usd, "value_usd")?;
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
        revision,
    })
}

fn check_source(raw: Option<&RawValue>) -> Result<(), Rejection> {
    if let Some(source) = string(raw, "source")? {
        if source.chars().count() > 128 {
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
    check_name(&port, "port", 32, port_char, "a-z 0-9 _ -")?;
    let service = string(raw.service, "service")?.unwrap_or(Cow::Borrowed(DEFAULT_SERVICE));
    check_name(&service, "service", 32, port_char, "a-z 0-9 _ -")?;
    let period = period(raw.period, rules)?;
    let trains = integer(raw.trains, "trains", 1_000_000)?
        .ok_or_else(|| Rejection::missing("trains"))? as u32;
    let revision = revision(raw.revision)?;
    check_source(raw.source)?;
    Ok(FreightEvent {
        port,
        service,
        period,
        trains,
        revision,
    })
}

fn parse_fx<'a>(raw: &RawFields<'a>, rules: &ParseRules) -> Result<FxEvent<'a>, Rejection> {
    let currency = required_string(raw.currency, "currency")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::field(
            "currency",
            format!(
                "must be a three-letter code such as USD, got {:?}",
                truncate(&currency)
            ),
        ));
    }
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

    fn rules() -> ParseRules {
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
}
