//! A deterministic, realistic customs backfill for the engine benchmark.
//!
//! 31 provincial regions × 24 months (2022-10 … 2024-09) × import/export × (the region total,
//! 97 HS chapters under `commodity`, 200 partners under `partner_country`), plus one USD rate
//! per month, in chronological order: a month's rate first, then every trade figure of that
//! month, region by region. Values are invented (fixed-seed PRNG), shaped like the real thing:
//! region totals from a few hundred million to a few hundred billion yuan a month, a skewed
//! split over chapters and partners, seasonal swings and growth. Messages look like the
//! bundled sample (`data/sample/trade.jsonl`): decimal strings and a `source`.

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
fn usd_micros(m: u32) -> i64 {
    // Drifts from about 7.10 to 7.25, with a wobble; four decimals, like the PBoC's figure.
    let x = m as f64;
    let rate = 7.10 + 0.006 * x + 0.02 * (x * 0.9).sin();
    (rate * 10_000.0).round() as i64 * 100
}

/// The messages of a backfill of `regions` (indexes into [`REGIONS`]), in log order. A region's
/// values do not depend on which other regions are generated.
pub fn backfill(regions: &[usize]) -> Vec<Vec<u8>> {
    let mut shapes: Vec<(usize, RegionShape)> =
        regions.iter().map(|&r| (r, RegionShape::new(r))).collect();
    let mut out = Vec::with_capacity(MONTHS as usize * (1 + regions.len() * PER_REGION_MONTH));
    let mut line = String::with_capacity(256);
    let first = first_period();
    for m in 0..MONTHS {
        let period = Period(first.0 + m);
        let micros = usd_micros(m);
        line.clear();
        let _ = write!(
            line,
            r#"{{"type":"fx_rate","currency":"USD","period":"{period}","cny_per_unit":"{}.{:06}","source":"pboc"}}"#,
            micros / 1_000_000,
            micros % 1_000_000
        );
        out.push(line.as_bytes().to_vec());
        // Chinese New Year dips January and February; December peaks.
        let season = match period.month() {
            1 => 0.85,
            2 => 0.75,
            12 => 1.15,
            _ => 1.0,
        };
        for (r, shape) in shapes.iter_mut() {
            let region = REGIONS[*r];
            for (f, flow) in FLOWS.iter().enumerate() {
                let trend = shape.growth[f].powf(m as f64 / 12.0);
                let total_yuan = shape.base_yuan[f] * season * trend * shape.rng.range(0.9, 1.1);
                let total_fen = fen(total_yuan);
                let usd_cents = (total_fen as i128 * 1_000_000 / micros as i128) as i64;
                line.clear();
                let _ = write!(
                    line,
                    r#"{{"type":"customs_trade","region":"{region}","period":"{period}","flow":"{flow}","dimension":"total","value_cny":""#
                );
                push_money(&mut line, total_fen);
                line.push_str(r#"","value_usd":""#);
                push_money(&mut line, usd_cents);
                line.push_str(r#"","source":"customs.gov.cn"}"#);
                out.push(line.as_bytes().to_vec());
                for c in 0..COMMODITIES {
                    let w = shape.commodity_weights[f][c];
                    let v = fen(total_yuan * w * shape.rng.range(0.8, 1.2));
                    line.clear();
                    let _ = write!(
                        line,
                        r#"{{"type":"customs_trade","region":"{region}","period":"{period}","flow":"{flow}","dimension":"commodity","member":"{:02}","value_cny":""#,
                        c + 1
                    );
                    push_money(&mut line, v);
                    line.push_str(r#"","source":"customs.gov.cn"}"#);
                    out.push(line.as_bytes().to_vec());
                }
                for p in 0..PARTNERS {
                    let w = shape.partner_weights[f][p];
                    let v = fen(total_yuan * w * shape.rng.range(0.8, 1.2));
                    line.clear();
                    let _ = write!(
                        line,
                        r#"{{"type":"customs_trade","region":"{region}","period":"{period}","flow":"{flow}","dimension":"partner_country","member":"P{:03}","value_cny":""#,
                        p + 1
                    );
                    push_money(&mut line, v);
                    line.push_str(r#"","source":"customs.gov.cn"}"#);
                    out.push(line.as_bytes().to_vec());
                }
            }
        }
    }
    out
}
