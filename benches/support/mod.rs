//! A deterministic, realistic customs backfill, shared by the engine benchmark
//! (`benches/engine.rs`, `mod support;`) and the Kafka backfill benchmark
//! (`examples/backfill_bench.rs`, through `#[path]`).
//!
//! Provincial regions × months × import/export × (the region total, 97 HS chapters under
//! `commodity`, 200 partners under `partner_country`), plus one USD rate per month, in
//! chronological order: a month's rate first, then every trade figure of that month, region by
//! region. Values are invented (fixed-seed PRNG), shaped like the real thing: region totals from
//! a few hundred million to a few hundred billion yuan a month, a skewed split over chapters and
//! partners, seasonal swings and growth. Messages look like the bundled sample
//! (`data/sample/trade.jsonl`): decimal strings and a `source`.
//!
//! [`backfill`] is the engine benchmark's data: all of it in one log, 24 months (2022-10 …
//! 2024-09). [`generate`] is the general form (any first month and number of months) that the
//! Kafka benchmark uses, with its messages handed out one by one, trade keyed by region.
//!
//! Both benchmarks keep their history across commits, so what they are given must not change:
//! the only difference between them is the USD rate's drift ([`USD_DRIFT_ENGINE`],
//! [`USD_DRIFT_KAFKA`]).
//!
//! [`backfill_cumulative`] is the same series shaped as customs publish them (contract v2):
//! no January release, a combined January–February cumulative figure, then every month's
//! cumulative January-to-month figure; breakdowns cumulative only, region totals with their
//! month figures too (from March) and dollars on both. The values are those of [`backfill`]
//! summed: the same random draws, in the same order. A backfill that starts mid-year (2022-10)
//! has its first year's cumulative figures count from its first month.

// Each of the two benchmarks uses only part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;

use silkroute::period::Period;

/// The 31 provincial-level regions of mainland China (the national aggregate is left out, so
/// every region takes part in the ranking).
pub const REGIONS: [&str; 31] = [
    "BJ", "TJ", "HE", "SX", "NM", "LN", "JL", "HL", "SH", "JS", "ZJ", "AH", "FJ", "JX", "SD", "HA",
    "HB", "HN", "GD", "GX", "HI", "CQ", "SC", "GZ", "YN", "XZ", "SN", "GS", "QH", "NX", "XJ",
];

pub const FIRST_MONTH: (u32, u32) = (2022, 10);
pub const MONTHS: u32 = 24;
pub const COMMODITIES: usize = 97;
pub const PARTNERS: usize = 200;
pub const FLOWS: [&str; 2] = ["import", "export"];

/// How much the USD rate rises a month, in yuan per dollar (before its wobble), in the engine
/// benchmark's data ([`backfill`]) and in the Kafka benchmark's (`examples/backfill_bench.rs`).
pub const USD_DRIFT_ENGINE: f64 = 0.006;
pub const USD_DRIFT_KAFKA: f64 = 0.003;

/// Events per region and month: per flow, the total plus every member.
pub const PER_REGION_MONTH: usize = FLOWS.len() * (1 + COMMODITIES + PARTNERS);

pub fn first_period() -> Period {
    Period::new(FIRST_MONTH.0, FIRST_MONTH.1)
}

/// xorshift64* — small, fast and good enough for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that neighbouring seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// The fixed shape of one region: its size and how its trade splits over members.
struct RegionShape {
    rng: Rng,
    /// Monthly yuan of each flow in the first month.
    base_yuan: [f64; 2],
    /// Year-on-year growth factor per flow.
    growth: [f64; 2],
    /// Per flow: member weights summing to 1 (commodities, then partners).
    commodity_weights: [Vec<f64>; 2],
    partner_weights: [Vec<f64>; 2],
}

fn weights(rng: &mut Rng, n: usize) -> Vec<f64> {
    // Cubing a uniform gives the usual few-large-many-small split.
    let raw: Vec<f64> = (0..n).map(|_| rng.unit().powi(3) + 1e-4).collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / sum).collect()
}

impl RegionShape {
    fn new(index: usize) -> RegionShape {
        let mut rng = Rng::new(0x5111_0000 + index as u64);
        // Log-uniform between 0.3 and 400 billion yuan a month.
        let size = (0.3e9f64).ln() + rng.unit() * ((400e9f64).ln() - (0.3e9f64).ln());
        let size = size.exp();
        let import_share = rng.range(0.25, 0.6);
        let base_yuan = [size * import_share, size * (1.0 - import_share)];
        let growth = [rng.range(0.85, 1.30), rng.range(0.85, 1.30)];
        let commodity_weights = [
            weights(&mut rng, COMMODITIES),
            weights(&mut rng, COMMODITIES),
        ];
        let partner_weights = [weights(&mut rng, PARTNERS), weights(&mut rng, PARTNERS)];
        RegionShape {
            rng,
            base_yuan,
            growth,
            commodity_weights,
            partner_weights,
        }
    }
}

/// Yuan to whole fen, kept within the contract's bounds.
fn fen(yuan: f64) -> i64 {
    (yuan * 100.0).round().clamp(1.0, 1e17) as i64
}

fn push_money(out: &mut String, fen: i64) {
    let _ = write!(out, "{}.{:02}", fen / 100, fen % 100);
}

/// The USD rate of month `m` (0-based from the first month), in millionths.
fn usd_micros(m: u32, drift: f64) -> i64 {
    // Starts at about 7.10 and drifts up by `drift` a month, with a wobble; four decimals, like
    // the PBoC's figure.
    let x = m as f64;
    let rate = 7.10 + drift * x + 0.02 * (x * 0.9).sin();
    (rate * 10_000.0).round() as i64 * 100
}

/// One generated message.
pub enum Message<'a> {
    /// A month's USD rate.
    Fx(&'a [u8]),
    /// A trade figure of a region (its key on Kafka).
    Trade(&'static str, &'a [u8]),
}

/// The messages of a backfill of `regions` (indexes into [`REGIONS`]), in log order. A region's
/// values do not depend on which other regions are generated.
pub fn backfill(regions: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(MONTHS as usize * (1 + regions.len() * PER_REGION_MONTH));
    generate(
        regions,
        first_period(),
        MONTHS,
        USD_DRIFT_ENGINE,
        |message| match message {
            Message::Fx(m) | Message::Trade(_, m) => out.push(m.to_vec()),
        },
    );
    out
}

/// [`backfill`]'s series as customs publish them (see the module comment), in log order.
pub fn backfill_cumulative(regions: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(MONTHS as usize * (1 + regions.len() * PER_REGION_MONTH));
    generate_shaped(
        Shape::Cumulative,
        regions,
        first_period(),
        MONTHS,
        USD_DRIFT_ENGINE,
        |message| match message {
            Message::Fx(m) | Message::Trade(_, m) => out.push(m.to_vec()),
        },
    );
    out
}

/// How the generated figures are published.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every figure as its month's (`basis` absent), as in v1.
    Months,
    /// As customs publish: see [`backfill_cumulative`].
    Cumulative,
}

/// Generates `months` months from `first` of `regions` (indexes into [`REGIONS`]), with a USD
/// rate rising by `usd_drift` a month, and hands each message to `emit`, in log order. A
/// region's values do not depend on which other regions are generated, nor on the number of
/// months; they do depend on the first month (its season and the start of its growth).
pub fn generate(
    regions: &[usize],
    first: Period,
    months: u32,
    usd_drift: f64,
    emit: impl FnMut(Message<'_>),
) {
    generate_shaped(Shape::Months, regions, first, months, usd_drift, emit)
}

/// One trade figure's text: the month's figure, or (`cumulative`) the year-to-date one.
#[allow(clippy::too_many_arguments)]
fn trade_line(
    line: &mut String,
    region: &str,
    period: Period,
    flow: &str,
    member: Option<(&str, String)>,
    fen: i64,
    cents: Option<i64>,
    cumulative: bool,
) {
    line.clear();
    let _ = write!(
        line,
        r#"{{"type":"customs_trade","region":"{region}","period":"{period}","flow":"{flow}","dimension":""#
    );
    match member {
        None => line.push_str(r#"total","value_cny":""#),
        Some((dimension, member)) => {
            let _ = write!(line, r#"{dimension}","member":"{member}","value_cny":""#);
        }
    }
    push_money(line, fen);
    if let Some(cents) = cents {
        line.push_str(r#"","value_usd":""#);
        push_money(line, cents);
    }
    if cumulative {
        line.push_str(r#"","basis":"ytd"#);
    }
    line.push_str(r#"","source":"customs.gov.cn"}"#);
}

/// [`generate`] with the figures published as `shape` says. The random draws do not depend on
/// the shape, so both shapes carry the same series.
pub fn generate_shaped(
    shape: Shape,
    regions: &[usize],
    first: Period,
    months: u32,
    usd_drift: f64,
    mut emit: impl FnMut(Message<'_>),
) {
    let cumulative = shape == Shape::Cumulative;
    // Per region and flow: the year's running (fen, cents) of the total, then of every
    // member (commodities, then partners).
    let members = 1 + COMMODITIES + PARTNERS;
    let mut sums: Vec<[Vec<(i64, i64)>; 2]> = regions
        .iter()
        .map(|_| [vec![(0, 0); members], vec![(0, 0); members]])
        .collect();
    let mut shapes: Vec<(usize, RegionShape)> =
        regions.iter().map(|&r| (r, RegionShape::new(r))).collect();
    let mut line = String::with_capacity(256);
    for m in 0..months {
        let period = first.plus(m);
        let micros = usd_micros(m, usd_drift);
        line.clear();
        let _ = write!(
            line,
            r#"{{"type":"fx_rate","currency":"USD","period":"{period}","cny_per_unit":"{}.{:06}","source":"pboc"}}"#,
            micros / 1_000_000,
            micros % 1_000_000
        );
        emit(Message::Fx(line.as_bytes()));
        // Chinese New Year dips January and February; December peaks.
        let season = match period.month() {
            1 => 0.85,
            2 => 0.75,
            12 => 1.15,
            _ => 1.0,
        };
        // January has no release of its own: it comes out with February.
        let released = !cumulative || period.month() != 1;
        if period.month() == 1 || m == 0 {
            for flows in sums.iter_mut() {
                for s in flows.iter_mut() {
                    s.fill((0, 0));
                }
            }
        }
        for (ri, (r, shape)) in shapes.iter_mut().enumerate() {
            let region = REGIONS[*r];
            for (f, flow) in FLOWS.iter().enumerate() {
                let trend = shape.growth[f].powf(m as f64 / 12.0);
                let total_yuan = shape.base_yuan[f] * season * trend * shape.rng.range(0.9, 1.1);
                let total_fen = fen(total_yuan);
                let usd_cents = (total_fen as i128 * 1_000_000 / micros as i128) as i64;
                let sum = &mut sums[ri][f];
                sum[0].0 += total_fen;
                sum[0].1 += usd_cents;
                // The month's own figure: always in v1's shape, from March when cumulative
                // (January and February have none of their own).
                if !cumulative || period.month() > 2 {
                    trade_line(
                        &mut line,
                        region,
                        period,
                        flow,
                        None,
                        total_fen,
                        Some(usd_cents),
                        false,
                    );
                    emit(Message::Trade(region, line.as_bytes()));
                }
                if cumulative && released {
                    let (cny, usd) = sum[0];
                    trade_line(&mut line, region, period, flow, None, cny, Some(usd), true);
                    emit(Message::Trade(region, line.as_bytes()));
                }
                for c in 0..COMMODITIES {
                    let w = shape.commodity_weights[f][c];
                    let v = fen(total_yuan * w * shape.rng.range(0.8, 1.2));
                    sum[1 + c].0 += v;
                    if released {
                        let value = if cumulative { sum[1 + c].0 } else { v };
                        let member = Some(("commodity", format!("{:02}", c + 1)));
                        trade_line(
                            &mut line, region, period, flow, member, value, None, cumulative,
                        );
                        emit(Message::Trade(region, line.as_bytes()));
                    }
                }
                for p in 0..PARTNERS {
                    let w = shape.partner_weights[f][p];
                    let v = fen(total_yuan * w * shape.rng.range(0.8, 1.2));
                    sum[1 + COMMODITIES + p].0 += v;
                    if released {
                        let value = if cumulative {
                            sum[1 + COMMODITIES + p].0
                        } else {
                            v
                        };
                        let member = Some(("partner_country", format!("P{:03}", p + 1)));
                        trade_line(
                            &mut line, region, period, flow, member, value, None, cumulative,
                        );
                        emit(Message::Trade(region, line.as_bytes()));
                    }
                }
            }
        }
    }
}
