//! Indicator records as published (§3): their keys, JSON and fingerprints.
//!
//! A record is the whole current state of one key, never a delta. The fingerprint (XXH3 of
//! the JSON bytes) is what "changed since last published" compares, so the engine need not
//! keep a copy of every record it sent.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::money::Hundredths;
use crate::period::Period;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradeRecord {
    pub kind: &'static str,
    pub region: Arc<str>,
    pub flow: &'static str,
    pub dimension: Arc<str>,
    pub member: Option<Arc<str>>,
    pub period: Period,
    pub month_cny: Hundredths,
    pub ytd_cny: Hundredths,
    pub months_in_ytd: u32,
    pub prior_ytd_cny: Option<Hundredths>,
    pub ytd_yoy_pct: Option<f64>,
    pub ytd_usd: Option<Hundredths>,
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
        let mut k = String::with_capacity(64);
        match self {
            Record::Trade(r) => {
                let member = r.member.as_deref().unwrap_or("-");
                let _ = write!(
                    k,
                    "trade/{}/{}/{}/{}/{}",
                    r.region, r.flow, r.dimension, member, r.period
                );
            }
            Record::Leaders(r) => {
                let _ = write!(
                    k,
                    "leaders/{}/{}/{}/{}",
                    r.region, r.flow, r.dimension, r.period
                );
            }
            Record::Freight(r) => {
                let _ = write!(k, "freight/{}/{}/{}", r.port, r.service, r.period);
            }
        }
        k
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records always serialize")
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
