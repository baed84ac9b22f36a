//! Contract §3 "Deriving months and year-to-date": one series' year, month by month, from its
//! month-basis figures `m(M)` and cumulative (ytd-basis) figures `c(M)` together.
//!
//! The rules, with `Y(0) = 0` and `Yusd(0) = 0`:
//! - `Y(M)` is `c(M)` if present, else `Y(M−1) + m(M)` when both are known;
//! - `v(M)` is `m(M)` if present, else `Y(M) − Y(M−1)` when both are known (negative after a
//!   revision is possible);
//! - `vusd(M)`: without a `c(M)`, `m(M)`'s dollars if given, else `m(M)` at the month's rate;
//!   with a `c(M)`, `Y(M) − Y(M−1)` at the month's rate; half-to-even to the cent;
//! - `Yusd(M)` is `c(M)`'s dollars if given, else `Yusd(M−1) + vusd(M)`;
//! - when `Y(M)` is unknown the year-to-date is *partial*: `Y(k)` at the latest known k < M
//!   plus every `m(i)` of k < i ≤ M (and the same months' dollars).
//!
//! Everything here is a pure function of one series' cells in one year (and, for the TTM, the
//! year before), so a change to month M reaches only that year's later months and the next
//! year: what `REACH_MONTHS` in the books bounds.
//!
//! Money is integer fen (or whole trains, with no dollars); no value here goes through
//! floating point.

use super::record::YtdBasis;
use crate::money::{self, Hundredths, Micros};

/// One month's figures of one series, as the cells give them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// `m(M)` and its `value_usd`.
    pub month: Option<(i64, Option<i64>)>,
    /// `c(M)` and its `value_usd`.
    pub ytd: Option<(i64, Option<i64>)>,
    /// The month's yuan per US dollar, when dollars are wanted.
    pub rate: Option<Micros>,
}

/// How the year-to-date at a month is known (`ytd_basis`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Known {
    /// `Y(M)` is `c(M)`.
    Reported,
    /// `Y(M)` is `Y(M−1) + m(M)`.
    Derived,
    /// `Y(M)` is unknown: the year-to-date is the partial sum.
    #[default]
    Partial,
}

impl Known {
    /// How a record states it.
    pub fn basis(self) -> YtdBasis {
        match self {
            Known::Reported => YtdBasis::Reported,
            Known::Derived => YtdBasis::Derived,
            Known::Partial => YtdBasis::Partial,
        }
    }
}

/// The year-on-year rule, for trade and freight alike: a year to date against the same
/// period a year before, defined when both are known (complete) and the prior is above zero.
/// Returns (YTD, prior YTD), which rank exactly by cross-multiplying.
pub fn growth(ytd: Option<i64>, prior: Option<i64>) -> Option<(i64, i64)> {
    match (ytd, prior) {
        (Some(y), Some(prior)) if prior > 0 => Some((y, prior)),
        _ => None,
    }
}

/// A [`growth`] in percent, exact to six decimals.
pub fn growth_pct((ytd, prior): (i64, i64)) -> f64 {
    money::percent(i128::from(ytd) - i128::from(prior), i128::from(prior))
}

/// What one month of a series derives to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Month {
    /// The series has a value of either basis here: it has a record.
    pub present: bool,
    /// `Y(M)`.
    pub y: Option<i64>,
    /// `v(M)`.
    pub v: Option<i64>,
    pub known: Known,
    /// `c(M) − (Y(M−1) + m(M))` when all three are known.
    pub gap: Option<i64>,
    /// `Yusd(M)`.
    pub y_usd: Option<i64>,
    /// `ytd_cny`: `Y(M)`, or the partial sum when it is unknown.
    pub ytd: i64,
    /// `months_in_ytd`.
    pub months: u32,
    /// `ytd_usd`: `Yusd(M)` when `Y(M)` is known, else the partial dollars.
    pub ytd_usd: Option<i64>,
}

/// A series' twelve months of one year (index 0 is January). A year with no cells derives
/// to twelve absent months.
pub type Year = [Month; 12];

/// Yuan (possibly negative: a derived month after a revision) to dollars at `rate`, half to
/// even to the cent; half-to-even is symmetric, so a negative amount rounds as its magnitude.
fn to_usd(fen: i64, rate: Micros) -> Option<i64> {
    let magnitude = money::cny_to_usd(Hundredths(fen.checked_abs()?), rate)?.0;
    Some(if fen < 0 { -magnitude } else { magnitude })
}

/// Derives months 1..=`upto` of a year from `inputs(M)` (M = 1..=12); later months stay
/// absent. Dollars are derived only when `dollars` is set (freight has none).
pub fn year(upto: u32, dollars: bool, inputs: impl FnMut(u32) -> Inputs) -> Year {
    let mut out = [Month::default(); 12];
    let before = Past {
        y: Some(0),
        y_usd: Some(0),
    };
    fill_months(&mut out, 1, before, upto, dollars, inputs);
    out
}

/// Derives months `start..=upto` of a year into `out`, `before` being `Y` and `Yusd` of month
/// `start − 1`, which must be known (`Y(0) = 0`): then months before `start` cannot change
/// what follows. Months outside `start..=upto` are left as they are. What a flush uses when
/// only the months from a change onwards can have moved, into one buffer per flush: a fresh
/// year returned by value was two copies of a kilobyte for every line and flow flushed
/// (issue 17).
pub fn fill_months(
    out: &mut Year,
    start: u32,
    before: Past,
    upto: u32,
    dollars: bool,
    mut inputs: impl FnMut(u32) -> Inputs,
) {
    debug_assert!(before.y.is_some(), "a known year to date to start from");
    // Y(M−1), Yusd(M−1), and the (partial) year-to-date of M−1 with its months and dollars:
    // with Y(M−1) known, the year to date is Y(M−1) itself, over M−1 months.
    let (mut y_prev, mut y_usd_prev) = (before.y, before.y_usd);
    let (mut ytd_prev, mut months_prev, mut ytd_usd_prev) =
        (before.y.unwrap_or(0), start - 1, before.y_usd);
    for m in start..=upto.min(12) {
        let Inputs { month, ytd, rate } = inputs(m);
        let month_fen = month.map(|(fen, _)| fen);
        let y = match (ytd, y_prev, month_fen) {
            (Some((c, _)), _, _) => Some(c),
            (None, Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        let known = match (ytd, y) {
            (Some(_), _) => Known::Reported,
            (None, Some(_)) => Known::Derived,
            (None, None) => Known::Partial,
        };
        let v = month_fen.or_else(|| Some(y? - y_prev?));
        let gap = match (ytd, y_prev, month_fen) {
            (Some((c, _)), Some(before), Some(this)) => Some(c - (before + this)),
            _ => None,
        };
        let (mut y_usd, mut ytd_usd) = (None, None);
        if dollars {
            let v_usd = match (ytd, month) {
                // With a reported cumulative, dollars follow it.
                (Some(_), _) => (|| to_usd(y? - y_prev?, rate?))(),
                (None, Some((_, Some(usd)))) => Some(usd),
                (None, Some((fen, None))) => rate.and_then(|r| to_usd(fen, r)),
                (None, None) => None,
            };
            y_usd = match ytd {
                Some((_, Some(usd))) => Some(usd),
                // Past i64 cents (only at absurd rates) the sum is null, never wrapped.
                _ => (|| y_usd_prev?.checked_add(v_usd?))(),
            };
            ytd_usd = if y.is_some() {
                y_usd
            } else if month.is_some() {
                (|| ytd_usd_prev?.checked_add(v_usd?))()
            } else {
                ytd_usd_prev
            };
        }
        let (ytd_now, months_now) = match y {
            Some(y) => (y, m),
            None => (
                ytd_prev + month_fen.unwrap_or(0),
                months_prev + u32::from(month.is_some()),
            ),
        };
        out[m as usize - 1] = Month {
            present: month.is_some() || ytd.is_some(),
            y,
            v,
            known,
            gap,
            y_usd,
            ytd: ytd_now,
            months: months_now,
            ytd_usd,
        };
        (y_prev, y_usd_prev) = (y, y_usd);
        (ytd_prev, months_prev, ytd_usd_prev) = (ytd_now, months_now, ytd_usd);
    }
}

/// What a record reads of the same month a year before: `Y` and `Yusd`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Past {
    pub y: Option<i64>,
    pub y_usd: Option<i64>,
}

impl From<&Month> for Past {
    fn from(m: &Month) -> Past {
        Past {
            y: m.y,
            y_usd: m.y_usd,
        }
    }
}

/// The TTM at month `m` (1..=12) of `this` year, `before` being the year before: `Y(M) +
/// Y_prev(12) − Y_prev(M)` (for December simply `Y(12)`) when those are known, else the sum
/// of the twelve months' `v` when all are known.
pub fn ttm(this: &Year, before: &Year, m: u32) -> Option<i64> {
    let i = m as usize - 1;
    ttm_of_ytds(this[i].y, before[11].y, before[i].y, m).or_else(|| ttm_of_months(this, before, m))
}

/// The TTM from year-to-dates alone: `Y(M) + Y_prev(12) − Y_prev(M)`, or `Y(12)` in December
/// (`full` = `Y_prev(12)`, `part` = `Y_prev(M)`). `None` when one is unknown: then
/// [`ttm_of_months`] decides.
pub fn ttm_of_ytds(y: Option<i64>, full: Option<i64>, part: Option<i64>, m: u32) -> Option<i64> {
    if m == 12 {
        y
    } else {
        Some(y? + full? - part?)
    }
}

/// The TTM as the sum of the twelve months' `v`, when all are known.
pub fn ttm_of_months(this: &Year, before: &Year, m: u32) -> Option<i64> {
    let i = m as usize - 1;
    let mut sum = 0;
    for month in before[i + 1..].iter().chain(&this[..=i]) {
        sum += month.v?;
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(months: &[(Option<i64>, Option<i64>)]) -> impl FnMut(u32) -> Inputs + '_ {
        |m| {
            let (month, ytd) = months.get(m as usize - 1).copied().unwrap_or_default();
            Inputs {
                month: month.map(|v| (v, None)),
                ytd: ytd.map(|v| (v, None)),
                rate: None,
            }
        }
    }

    #[test]
    fn a_combined_january_february_leaves_january_unknown() {
        let y = year(
            3,
            false,
            inputs(&[(None, None), (None, Some(30)), (Some(5), None)]),
        );
        assert!(!y[0].present);
        assert_eq!(
            (y[1].y, y[1].v, y[1].known),
            (Some(30), None, Known::Reported)
        );
        assert_eq!(
            (y[2].y, y[2].v, y[2].known),
            (Some(35), Some(5), Known::Derived)
        );
        assert_eq!((y[2].ytd, y[2].months), (35, 3));
    }

    #[test]
    fn a_partial_year_adds_the_months_after_the_last_known_ytd() {
        let y = year(
            4,
            false,
            inputs(&[
                (Some(1), None),
                (None, None),
                (Some(4), None),
                (Some(8), None),
            ]),
        );
        assert_eq!((y[3].ytd, y[3].months, y[3].known), (13, 3, Known::Partial));
        assert_eq!(y[3].v, Some(8));
    }

    #[test]
    fn the_ttm_falls_back_to_the_months_when_a_ytd_is_unknown() {
        let before = year(12, false, |_| Inputs {
            month: Some((1, None)),
            ..Inputs::default()
        });
        let this = year(12, false, inputs(&[(None, None), (None, Some(10))]));
        // Y(2) + Y_prev(12) − Y_prev(2) = 10 + 12 − 2
        assert_eq!(ttm(&this, &before, 2), Some(20));
        // January: Y(1) unknown, and v(1) too: no sum of months either.
        assert_eq!(ttm(&this, &before, 1), None);
    }
}
