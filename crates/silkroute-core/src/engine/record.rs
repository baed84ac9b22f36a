//! Indicator records as published (§3): their keys, JSON and fingerprints.
//!
//! A record is the whole current state of one key, never a delta. The fingerprint (XXH3 of
//! the JSON bytes) is what "changed since last published" compares, so the engine need not
//! keep a copy of every record it sent.

use std::sync::Arc;

use serde::Serialize;

use crate::money::Hundredths;
use crate::period::Period;

/// `ytd_basis` (§3): how the year-to-date at the record's month is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum YtdBasis {
    /// `Y(M)` is the reported cumulative figure `c(M)`.
    Reported,
    /// `Y(M)` is `Y(M−1) + m(M)`.
    Derived,
    /// `Y(M)` is unknown: the figures are the partial sum.
    Partial,
}

impl YtdBasis {
    pub const ALL: [YtdBasis; 3] = [YtdBasis::Reported, YtdBasis::Derived, YtdBasis::Partial];

    pub fn as_str(self) -> &'static str {
        match self {
            YtdBasis::Reported => "reported",
            YtdBasis::Derived => "derived",
            YtdBasis::Partial => "partial",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradeRecord {
    pub kind: &'static str,
    pub region: Arc<str>,
    pub flow: &'static str,
    pub dimension: Arc<str>,
    pub member: Option<Arc<str>>,
    pub period: Period,
    /// `v(M)`: null when unknown (January and February of a combined release).
    pub month_cny: Option<Hundredths>,
    pub ytd_cny: Hundredths,
    pub months_in_ytd: u32,
    pub ytd_basis: YtdBasis,
    /// A release's cumulative against its month: `c(M) − (Y(M−1) + m(M))`.
    pub ytd_gap_cny: Option<Hundredths>,
    pub prior_ytd_cny: Option<Hundredths>,
    pub ytd_yoy_pct: Option<f64>,
    pub ytd_usd: Option<Hundredths>,
    pub prior_ytd_usd: Option<Hundredths>,
    pub ytd_usd_yoy_pct: Option<f64>,
    pub ttm_cny: Option<Hundredths>,
    pub share_pct: Option<f64>,
    pub yoy_rank: Option<u32>,
    pub yoy_rank_of: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShareLeader {
    pub member: Arc<str>,
    pub ytd_cny: Hundredths,
    pub share_pct: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct YoyLeader {
    pub member: Arc<str>,
    pub ytd_yoy_pct: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeadersRecord {
    pub kind: &'static str,
    pub region: Arc<str>,
    pub flow: &'static str,
    pub dimension: Arc<str>,
    pub period: Period,
    pub members_ranked: u32,
    pub by_share: Vec<ShareLeader>,
    pub by_yoy: Vec<YoyLeader>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FreightRecord {
    pub kind: &'static str,
    pub port: Arc<str>,
    pub service: Arc<str>,
    pub period: Period,
    /// `v(M)` in trains: null when unknown, negative only after a revised cumulative.
    pub month_trains: Option<i64>,
    pub ytd_trains: u64,
    pub months_in_ytd: u32,
    pub ytd_basis: YtdBasis,
    pub ytd_gap_trains: Option<i64>,
    pub prior_ytd_trains: Option<u64>,
    pub ytd_yoy_pct: Option<f64>,
    /// Signed: a TTM from cumulatives can fall below zero after a revision.
    pub ttm_trains: Option<i64>,
    pub streak_months: u32,
    pub streak_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Record {
    Trade(TradeRecord),
    Leaders(LeadersRecord),
    Freight(FreightRecord),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Trade,
    Leaders,
    Freight,
}

impl RecordKind {
    pub const ALL: [RecordKind; 3] = [RecordKind::Trade, RecordKind::Leaders, RecordKind::Freight];

    /// The record's `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Trade => "trade",
            RecordKind::Leaders => "trade_leaders",
            RecordKind::Freight => "freight",
        }
    }
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Trade(_) => RecordKind::Trade,
            Record::Leaders(_) => RecordKind::Leaders,
            Record::Freight(_) => RecordKind::Freight,
        }
    }

    pub fn period(&self) -> Period {
        match self {
            Record::Trade(r) => r.period,
            Record::Leaders(r) => r.period,
            Record::Freight(r) => r.period,
        }
    }

    /// The record's series: what its key names apart from the period, the same from one
    /// period to the next. Records, gauges and the pipeline's bookkeeping all name a series
    /// by it.
    pub fn series(&self) -> SeriesKey {
        // Room for the `/YYYY-MM` the key adds: one allocation, no slack.
        let mut k = String::with_capacity(self.series_len() + 8);
        self.push_series(&mut k);
        SeriesKey(k)
    }

    /// The parts of the series, in order (`/` goes between them), and how many there are.
    fn series_parts(&self) -> ([&str; 5], usize) {
        match self {
            Record::Trade(r) => (
                [
                    "trade",
                    &r.region,
                    r.flow,
                    &r.dimension,
                    r.member.as_deref().unwrap_or("-"),
                ],
                5,
            ),
            Record::Leaders(r) => (["leaders", &r.region, r.flow, &r.dimension, ""], 4),
            Record::Freight(r) => (["freight", &r.port, &r.service, "", ""], 3),
        }
    }

    fn series_len(&self) -> usize {
        let (parts, n) = self.series_parts();
        parts[..n].iter().map(|part| part.len() + 1).sum::<usize>() - 1
    }

    /// Appends the series to `k`. Built by hand rather than with `write!`: a backfill derives
    /// a key per published record, and the formatting machinery was a visible share of a
    /// flush.
    fn push_series(&self, k: &mut String) {
        let (parts, n) = self.series_parts();
        for (i, part) in parts[..n].iter().enumerate() {
            if i > 0 {
                k.push('/');
            }
            k.push_str(part);
        }
    }

    /// The Kafka key (§3): the series and the period ([`SeriesKey::of_key`] takes it back).
    pub fn key(&self) -> String {
        let mut k = String::with_capacity(self.series_len() + 8);
        self.write_key(&mut k);
        k
    }

    /// Replaces `k`'s contents with the record's [`Record::key`]: a flush writes the key of
    /// every record it hands over into one reused buffer, where a `String` apiece was an
    /// allocation and a free per published record (issue 17).
    pub fn write_key(&self, k: &mut String) {
        k.clear();
        self.push_series(k);
        k.push('/');
        self.period().push_to(k);
    }

    /// The record's JSON: exactly the bytes `serde_json::to_vec(self)` gives (pinned by a
    /// property test), written by hand.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    /// Appends the record's JSON to `out`: the same bytes as `serde_json::to_writer`, without
    /// the serializer machinery. Every re-derived record is written to compare fingerprints,
    /// so this is the bulk of a flush.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Record::Trade(r) => json::trade(out, r),
            Record::Leaders(r) => json::leaders(out, r),
            Record::Freight(r) => json::freight(out, r),
        }
    }
}

/// A JSON writer for the three record kinds that writes exactly what the `Serialize` derives
/// give through `serde_json` (compact): fields in declaration order, `null` for `None` and
/// for non-finite floats, floats and integers through serde_json's own formatter, strings
/// escaped as serde_json escapes them. The derives stay (HTTP serves records through them);
/// `tests::hand_written_json_is_serde_json_byte_for_byte` pins the two together.
mod json {
    use super::*;
    use crate::json::{f64, i64, key, money, null, opt, period, string, u32, u64};

    pub fn trade(out: &mut Vec<u8>, r: &TradeRecord) {
        key(out, b"{\"kind\":");
        string(out, r.kind);
        key(out, b",\"region\":");
        string(out, &r.region);
        key(out, b",\"flow\":");
        string(out, r.flow);
        key(out, b",\"dimension\":");
        string(out, &r.dimension);
        key(out, b",\"member\":");
        match &r.member {
            Some(m) => string(out, m),
            None => null(out),
        }
        key(out, b",\"period\":");
        period(out, r.period);
        key(out, b",\"month_cny\":");
        opt(out, r.month_cny, money);
        key(out, b",\"ytd_cny\":");
        money(out, r.ytd_cny);
        key(out, b",\"months_in_ytd\":");
        u32(out, r.months_in_ytd);
        key(out, b",\"ytd_basis\":");
        string(out, r.ytd_basis.as_str());
        key(out, b",\"ytd_gap_cny\":");
        opt(out, r.ytd_gap_cny, money);
        key(out, b",\"prior_ytd_cny\":");
        opt(out, r.prior_ytd_cny, money);
        key(out, b",\"ytd_yoy_pct\":");
        opt(out, r.ytd_yoy_pct, f64);
        key(out, b",\"ytd_usd\":");
        opt(out, r.ytd_usd, money);
        key(out, b",\"prior_ytd_usd\":");
        opt(out, r.prior_ytd_usd, money);
        key(out, b",\"ytd_usd_yoy_pct\":");
        opt(out, r.ytd_usd_yoy_pct, f64);
        key(out, b",\"ttm_cny\":");
        opt(out, r.ttm_cny, money);
        key(out, b",\"share_pct\":");
        opt(out, r.share_pct, f64);
        key(out, b",\"yoy_rank\":");
        opt(out, r.yoy_rank, u32);
        key(out, b",\"yoy_rank_of\":");
        opt(out, r.yoy_rank_of, u32);
        out.push(b'}');
    }

    pub fn leaders(out: &mut Vec<u8>, r: &LeadersRecord) {
        key(out, b"{\"kind\":");
        string(out, r.kind);
        key(out, b",\"region\":");
        string(out, &r.region);
        key(out, b",\"flow\":");
        string(out, r.flow);
        key(out, b",\"dimension\":");
        string(out, &r.dimension);
        key(out, b",\"period\":");
        period(out, r.period);
        key(out, b",\"members_ranked\":");
        u32(out, r.members_ranked);
        key(out, b",\"by_share\":[");
        for (i, l) in r.by_share.iter().enumerate() {
            key(
                out,
                if i == 0 {
                    b"{\"member\":"
                } else {
                    b",{\"member\":"
                },
            );
            string(out, &l.member);
            key(out, b",\"ytd_cny\":");
            money(out, l.ytd_cny);
            key(out, b",\"share_pct\":");
            opt(out, l.share_pct, f64);
            out.push(b'}');
        }
        key(out, b"],\"by_yoy\":[");
        for (i, l) in r.by_yoy.iter().enumerate() {
            key(
                out,
                if i == 0 {
                    b"{\"member\":"
                } else {
                    b",{\"member\":"
                },
            );
            string(out, &l.member);
            key(out, b",\"ytd_yoy_pct\":");
            f64(out, l.ytd_yoy_pct);
            out.push(b'}');
        }
        key(out, b"]}");
    }

    pub fn freight(out: &mut Vec<u8>, r: &FreightRecord) {
        key(out, b"{\"kind\":");
        string(out, r.kind);
        key(out, b",\"port\":");
        string(out, &r.port);
        key(out, b",\"service\":");
        string(out, &r.service);
        key(out, b",\"period\":");
        period(out, r.period);
        key(out, b",\"month_trains\":");
        opt(out, r.month_trains, i64);
        key(out, b",\"ytd_trains\":");
        u64(out, r.ytd_trains);
        key(out, b",\"months_in_ytd\":");
        u32(out, r.months_in_ytd);
        key(out, b",\"ytd_basis\":");
        string(out, r.ytd_basis.as_str());
        key(out, b",\"ytd_gap_trains\":");
        opt(out, r.ytd_gap_trains, i64);
        key(out, b",\"prior_ytd_trains\":");
        opt(out, r.prior_ytd_trains, u64);
        key(out, b",\"ytd_yoy_pct\":");
        opt(out, r.ytd_yoy_pct, f64);
        key(out, b",\"ttm_trains\":");
        opt(out, r.ttm_trains, i64);
        key(out, b",\"streak_months\":");
        u32(out, r.streak_months);
        key(out, b",\"streak_threshold\":");
        u32(out, r.streak_threshold);
        out.push(b'}');
    }
}

/// A series (see [`Record::series`]): a record key without its period.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(String);

impl SeriesKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The series a record key names, without building it again: the key less its period.
    pub fn of_key(key: &str) -> &str {
        key.rsplit_once('/').map_or(key, |(series, _)| series)
    }
}

/// Maps keyed by series can be asked with [`SeriesKey::of_key`]'s slice, allocating nothing.
impl std::borrow::Borrow<str> for SeriesKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of a record's JSON. Zero is reserved for "never published".
pub fn fingerprint(json: &[u8]) -> u64 {
    match xxhash_rust::xxh3::xxh3_64(json) {
        0 => 1,
        h => h,
    }
}

/// What Kafka holds on the indicators topic: each record key's [`fingerprint`], last value per
/// key. Keys are held by their 64-bit hash rather than as strings: a takeover reads every
/// record of the topic (717k for the 443k-event backfill), and a string per key was most of
/// that read's allocations and memory. Two keys with the same hash (about one chance in 10^8
/// for a million keys) would only make a record look changed or unpublished: it would be
/// published again, never held back, because a record's JSON names its key and so its
/// fingerprint cannot match another key's.
#[derive(Clone, Debug, Default)]
pub struct Published(rustc_hash::FxHashMap<u64, u64>);

impl Published {
    /// One record read from the topic: a value replaces the key's fingerprint, a tombstone
    /// (no value, or an empty one) removes it.
    pub fn read(&mut self, key: &[u8], value: Option<&[u8]>) {
        match value {
            Some(v) if !v.is_empty() => self.0.insert(key_hash(key), fingerprint(v)),
            _ => self.0.remove(&key_hash(key)),
        };
    }

    /// The fingerprint of what Kafka holds for `key`, if anything.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.0.get(&key_hash(key.as_bytes())).copied()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, u64)> for Published {
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(pairs: I) -> Published {
        Published(
            pairs
                .into_iter()
                .map(|(key, fp)| (key_hash(key.as_bytes()), fp))
                .collect(),
        )
    }
}

fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// One record to publish: key, value bytes and the typed record (for gauges and HTTP).
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub key: String,
    pub json: Vec<u8>,
    pub record: Record,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Strings heavy in what JSON escapes: quotes, backslashes, every control byte, DEL, `/`,
    /// multi-byte characters, mixed with arbitrary Unicode.
    fn text() -> impl Strategy<Value = String> {
        let special = prop_oneof![
            (0u8..0x20).prop_map(char::from),
            prop::sample::select(vec!['"', '\\', '/', '\u{7f}', 'é', '中', '\u{2028}', '😀']),
            any::<char>(),
            prop::char::range('a', 'z'),
        ];
        prop::collection::vec(special, 0..24).prop_map(String::from_iter)
    }

    fn arc_text() -> impl Strategy<Value = Arc<str>> {
        text().prop_map(Arc::from)
    }

    /// `kind` and `flow` are `&'static str`: the real ones and a few that need escaping.
    fn static_text() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "trade",
            "trade_leaders",
            "freight",
            "import",
            "export",
            "total",
            "",
            "q\"uo\\te\n\u{1}\u{1f}\u{7f}/é",
        ])
    }

    /// Every kind of f64: special classes (NaN, ±inf, subnormals, ±0), plain ranges, and
    /// arbitrary bit patterns.
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            -1e4..1e4f64,
            -1e-3..1e-3f64,
            any::<u64>().prop_map(f64::from_bits),
            prop::sample::select(vec![
                0.0,
                -0.0,
                1.0,
                -1.0,
                0.1,
                100.0,
                1e15,
                1e16,
                1e17,
                1e21,
                1e22,
                -1e-7,
                1e-6,
                5e-324,
                f64::MAX,
                f64::MIN,
                f64::MIN_POSITIVE,
                f64::EPSILON,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ]),
        ]
    }

    fn money() -> impl Strategy<Value = Hundredths> {
        prop_oneof![any::<i64>(), -100_000i64..100_000].prop_map(Hundredths)
    }

    fn period() -> impl Strategy<Value = Period> {
        // Past year 9999 the text takes `Display`'s path.
        prop_oneof![23_880u32..24_400, 0u32..200_000, any::<u32>()].prop_map(Period)
    }

    fn ytd_basis() -> impl Strategy<Value = YtdBasis> {
        prop::sample::select(YtdBasis::ALL.to_vec())
    }

    fn trade() -> impl Strategy<Value = TradeRecord> {
        (
            (
                static_text(),
                arc_text(),
                static_text(),
                arc_text(),
                proptest::option::of(arc_text()),
                period(),
            ),
            (
                proptest::option::of(money()),
                money(),
                any::<u32>(),
                ytd_basis(),
                proptest::option::of(money()),
                proptest::option::of(money()),
            ),
            (
                proptest::option::of(float()),
                proptest::option::of(money()),
                proptest::option::of(money()),
                proptest::option::of(float()),
                proptest::option::of(money()),
            ),
            (
                proptest::option::of(float()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
            ),
        )
            .prop_map(
                |(
                    (kind, region, flow, dimension, member, period),
                    (month_cny, ytd_cny, months_in_ytd, ytd_basis, ytd_gap_cny, prior_ytd_cny),
                    (ytd_yoy_pct, ytd_usd, prior_ytd_usd, ytd_usd_yoy_pct, ttm_cny),
                    (share_pct, yoy_rank, yoy_rank_of),
                )| TradeRecord {
                    kind,
                    region,
                    flow,
                    dimension,
                    member,
                    period,
                    month_cny,
                    ytd_cny,
                    months_in_ytd,
                    ytd_basis,
                    ytd_gap_cny,
                    prior_ytd_cny,
                    ytd_yoy_pct,
                    ytd_usd,
                    prior_ytd_usd,
                    ytd_usd_yoy_pct,
                    ttm_cny,
                    share_pct,
                    yoy_rank,
                    yoy_rank_of,
                },
            )
    }

    fn leaders() -> impl Strategy<Value = LeadersRecord> {
        let share = (arc_text(), money(), proptest::option::of(float())).prop_map(
            |(member, ytd_cny, share_pct)| ShareLeader {
                member,
                ytd_cny,
                share_pct,
            },
        );
        let yoy = (arc_text(), float()).prop_map(|(member, ytd_yoy_pct)| YoyLeader {
            member,
            ytd_yoy_pct,
        });
        (
            static_text(),
            arc_text(),
            static_text(),
            arc_text(),
            period(),
            any::<u32>(),
            prop::collection::vec(share, 0..4),
            prop::collection::vec(yoy, 0..4),
        )
            .prop_map(
                |(kind, region, flow, dimension, period, members_ranked, by_share, by_yoy)| {
                    LeadersRecord {
                        kind,
                        region,
                        flow,
                        dimension,
                        period,
                        members_ranked,
                        by_share,
                        by_yoy,
                    }
                },
            )
    }

    fn freight() -> impl Strategy<Value = FreightRecord> {
        let count = || prop_oneof![any::<u64>(), 0u64..10_000];
        let signed = || prop_oneof![any::<i64>(), -10_000i64..10_000];
        (
            (static_text(), arc_text(), arc_text(), period()),
            (
                proptest::option::of(signed()),
                count(),
                any::<u32>(),
                ytd_basis(),
                proptest::option::of(signed()),
                proptest::option::of(count()),
            ),
            (
                proptest::option::of(float()),
                proptest::option::of(signed()),
                any::<u32>(),
                any::<u32>(),
            ),
        )
            .prop_map(
                |(
                    (kind, port, service, period),
                    (
                        month_trains,
                        ytd_trains,
                        months_in_ytd,
                        ytd_basis,
                        ytd_gap_trains,
                        prior_ytd_trains,
                    ),
                    (ytd_yoy_pct, ttm_trains, streak_months, streak_threshold),
                )| FreightRecord {
                    kind,
                    port,
                    service,
                    period,
                    month_trains,
                    ytd_trains,
                    months_in_ytd,
                    ytd_basis,
                    ytd_gap_trains,
                    prior_ytd_trains,
                    ytd_yoy_pct,
                    ttm_trains,
                    streak_months,
                    streak_threshold,
                },
            )
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            trade().prop_map(Record::Trade),
            leaders().prop_map(Record::Leaders),
            freight().prop_map(Record::Freight),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn hand_written_json_is_serde_json_byte_for_byte(record in record()) {
            let expected = serde_json::to_vec(&record).unwrap();
            let written = record.to_json();
            prop_assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&expected)
            );
            prop_assert_eq!(&written, &expected);
            // Appending after earlier bytes, as the engine's reused buffer does.
            let mut buf = b"xyz".to_vec();
            record.write_json(&mut buf);
            prop_assert_eq!(&buf[..3], b"xyz");
            prop_assert_eq!(&buf[3..], &expected[..]);
        }
    }

    #[test]
    fn every_single_character_is_escaped_as_serde_json_escapes_it() {
        let mut chars: Vec<char> = (0u32..0x800).filter_map(char::from_u32).collect();
        chars.extend([
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{fffd}',
            '\u{10ffff}',
            '😀',
        ]);
        for c in chars {
            for s in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}b"),
                format!("x{c}{c}y"),
            ] {
                let mut fast = Vec::new();
                crate::json::string(&mut fast, &s);
                assert_eq!(fast, serde_json::to_vec(&s).unwrap(), "{:?}", s);
            }
        }
    }

    #[test]
    fn keys_follow_the_contract() {
        let trade = |member: Option<&str>| {
            Record::Trade(TradeRecord {
                kind: "trade",
                region: Arc::from("XJ"),
                flow: "import",
                dimension: Arc::from(if member.is_some() {
                    "commodity"
                } else {
                    "total"
                }),
                member: member.map(Arc::from),
                period: Period::new(2024, 9),
                month_cny: Some(Hundredths(1)),
                ytd_cny: Hundredths(1),
                months_in_ytd: 9,
                ytd_basis: YtdBasis::Derived,
                ytd_gap_cny: None,
                prior_ytd_cny: None,
                ytd_yoy_pct: None,
                ytd_usd: None,
                prior_ytd_usd: None,
                ytd_usd_yoy_pct: None,
                ttm_cny: None,
                share_pct: None,
                yoy_rank: None,
                yoy_rank_of: None,
            })
        };
        assert_eq!(trade(None).key(), "trade/XJ/import/total/-/2024-09");
        assert_eq!(
            trade(Some("85")).key(),
            "trade/XJ/import/commodity/85/2024-09"
        );
        let leaders = Record::Leaders(LeadersRecord {
            kind: "trade_leaders",
            region: Arc::from("XJ"),
            flow: "total",
            dimension: Arc::from("partner_region"),
            period: Period::new(1990, 1),
            members_ranked: 0,
            by_share: Vec::new(),
            by_yoy: Vec::new(),
        });
        assert_eq!(leaders.key(), "leaders/XJ/total/partner_region/1990-01");
        let freight = Record::Freight(FreightRecord {
            kind: "freight",
            port: Arc::from("khorgos"),
            service: Arc::from("china_europe"),
            period: Period::new(2023, 12),
            month_trains: Some(0),
            ytd_trains: 0,
            months_in_ytd: 0,
            ytd_basis: YtdBasis::Derived,
            ytd_gap_trains: None,
            prior_ytd_trains: None,
            ytd_yoy_pct: None,
            ttm_trains: None,
            streak_months: 0,
            streak_threshold: 600,
        });
        assert_eq!(freight.key(), "freight/khorgos/china_europe/2023-12");
    }
}
