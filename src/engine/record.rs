//! Indicator records as published (§3): their keys, JSON and fingerprints.
//!
//! A record is the whole current state of one key, never a delta. The fingerprint (XXH3 of
//! the JSON bytes) is what "changed since last published" compares, so the engine need not
//! keep a copy of every record it sent.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::money::Hundredths;
use crate::period::Period;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradeRecord {
    pub kind: &'static str,
    pub region: Arc<str>,
    pub flow: &'static str,
    pub dimension: Arc<str>,
    pub member: Option<Arc<str>>,
    #[serde(serialize_with = "text::period")]
    pub period: Period,
    #[serde(serialize_with = "text::money")]
    pub month_cny: Hundredths,
    #[serde(serialize_with = "text::money")]
    pub ytd_cny: Hundredths,
    pub months_in_ytd: u32,
    #[serde(serialize_with = "text::opt_money")]
    pub prior_ytd_cny: Option<Hundredths>,
    pub ytd_yoy_pct: Option<f64>,
    #[serde(serialize_with = "text::opt_money")]
    pub ytd_usd: Option<Hundredths>,
    #[serde(serialize_with = "text::opt_money")]
    pub ttm_cny: Option<Hundredths>,
    pub share_pct: Option<f64>,
    pub yoy_rank: Option<u32>,
    pub yoy_rank_of: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShareLeader {
    pub member: Arc<str>,
    #[serde(serialize_with = "text::money")]
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
    #[serde(serialize_with = "text::period")]
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
    #[serde(serialize_with = "text::period")]
    pub period: Period,
    pub month_trains: u64,
    pub ytd_trains: u64,
    pub months_in_ytd: u32,
    pub prior_ytd_trains: Option<u64>,
    pub ytd_yoy_pct: Option<f64>,
    pub ttm_trains: Option<u64>,
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

    /// The Kafka key (§3).
    pub fn key(&self) -> String {
        // Built by hand rather than with `write!`: a backfill derives a key per published
        // record, and the formatting machinery was a visible share of a flush.
        let (parts, period): (&[&str], Period) = match self {
            Record::Trade(r) => (
                &[
                    "trade",
                    &r.region,
                    r.flow,
                    &r.dimension,
                    r.member.as_deref().unwrap_or("-"),
                ],
                r.period,
            ),
            Record::Leaders(r) => (&["leaders", &r.region, r.flow, &r.dimension], r.period),
            Record::Freight(r) => (&["freight", &r.port, &r.service], r.period),
        };
        let mut k = String::with_capacity(64);
        for part in parts {
            k.push_str(part);
            k.push('/');
        }
        text::push_period(&mut k, period);
        k
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records always serialize")
    }
}

/// Money and months written as their `Display` writes them (`"-1234.56"`, `"2024-09"`), but
/// without `collect_str` and the formatting machinery: every derived record is serialized to
/// compare fingerprints, and that text is most of a flush's cost.
mod text {
    use super::*;

    /// Room for `-` and the digits of any `i64`, a point and two decimals.
    const MONEY_MAX: usize = 24;

    fn money_text(fen: i64, buf: &mut [u8; MONEY_MAX]) -> &str {
        let mut abs = fen.unsigned_abs();
        let mut i = MONEY_MAX;
        for _ in 0..2 {
            i -= 1;
            buf[i] = b'0' + (abs % 10) as u8;
            abs /= 10;
        }
        i -= 1;
        buf[i] = b'.';
        loop {
            i -= 1;
            buf[i] = b'0' + (abs % 10) as u8;
            abs /= 10;
            if abs == 0 {
                break;
            }
        }
        if fen < 0 {
            i -= 1;
            buf[i] = b'-';
        }
        std::str::from_utf8(&buf[i..]).expect("ASCII digits")
    }

    pub fn money<S: Serializer>(v: &Hundredths, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(money_text(v.0, &mut [0; MONEY_MAX]))
    }

    pub fn opt_money<S: Serializer>(v: &Option<Hundredths>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => money(v, s),
            None => s.serialize_none(),
        }
    }

    /// `YYYY-MM` for four-digit years; `None` for others, which take `Display`.
    fn period_text(p: Period) -> Option<[u8; 7]> {
        let (year, month) = (p.year(), p.month());
        if year > 9999 {
            return None;
        }
        let d = |n: u32| b'0' + (n % 10) as u8;
        Some([
            d(year / 1000),
            d(year / 100),
            d(year / 10),
            d(year),
            b'-',
            d(month / 10),
            d(month),
        ])
    }

    pub fn period<S: Serializer>(p: &Period, s: S) -> Result<S::Ok, S::Error> {
        match period_text(*p) {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => s.collect_str(p),
        }
    }

    pub fn push_period(out: &mut String, p: Period) {
        match period_text(p) {
            Some(b) => out.push_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => {
                let _ = write!(out, "{p}");
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn money_and_months_read_exactly_as_their_display() {
            let mut fens = vec![0, 1, 9, 10, 99, 100, 101, 12_345, 32_239_000_000_000];
            fens.extend([i64::MAX, i64::MIN, i64::MIN + 1, -1, -99, -100, -12_345]);
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                fens.push((x >> (x % 60)) as i64);
            }
            for fen in fens {
                let h = Hundredths(fen);
                let mut fast = Vec::new();
                money(&h, &mut serde_json::Serializer::new(&mut fast)).unwrap();
                assert_eq!(fast, serde_json::to_vec(&h).unwrap(), "{fen}");
                let mut fast = Vec::new();
                opt_money(&Some(h), &mut serde_json::Serializer::new(&mut fast)).unwrap();
                assert_eq!(fast, serde_json::to_vec(&Some(h)).unwrap(), "{fen}");
            }
            let mut none = Vec::new();
            opt_money(&None, &mut serde_json::Serializer::new(&mut none)).unwrap();
            assert_eq!(none, b"null");
            for p in (0..130_000).chain([u32::MAX - 1, u32::MAX]).map(Period) {
                let mut fast = Vec::new();
                period(&p, &mut serde_json::Serializer::new(&mut fast)).unwrap();
                assert_eq!(fast, serde_json::to_vec(&p).unwrap(), "{p:?}");
                let mut key = String::new();
                push_period(&mut key, p);
                assert_eq!(key, p.to_string());
            }
        }
    }
}

/// The fingerprint of a record's JSON. Zero is reserved for "never published".
pub fn fingerprint(json: &[u8]) -> u64 {
    match xxhash_rust::xxh3::xxh3_64(json) {
        0 => 1,
        h => h,
    }
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
                month_cny: Hundredths(1),
                ytd_cny: Hundredths(1),
                months_in_ytd: 9,
                prior_ytd_cny: None,
                ytd_yoy_pct: None,
                ytd_usd: None,
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
            month_trains: 0,
            ytd_trains: 0,
            months_in_ytd: 0,
            prior_ytd_trains: None,
            ytd_yoy_pct: None,
            ttm_trains: None,
            streak_months: 0,
            streak_threshold: 600,
        });
        assert_eq!(freight.key(), "freight/khorgos/china_europe/2023-12");
    }
}
