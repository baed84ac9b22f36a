//! Monthly exchange rates. Only the US dollar feeds an indicator (`ytd_usd`); other
//! currencies are kept, so that adding an indicator for them needs no replay.

use rustc_hash::FxHashMap;

use super::months::{Dirty, MonthVec};
use super::{revise, Outcome};
use crate::event::FxEvent;
use crate::money::Micros;
use crate::period::Period;

#[derive(Clone, Copy, Debug, Default)]
struct RateCell {
    micros: i64,
    revision: u32,
    present: bool,
}

/// Yuan per US dollar by month.
#[derive(Default)]
pub struct UsdRates {
    months: MonthVec<RateCell>,
}

impl UsdRates {
    pub fn rate(&self, p: Period) -> Option<Micros> {
        self.months
            .get(p)
            .filter(|c| c.present)
            .map(|c| Micros(c.micros))
    }
}

#[derive(Default)]
pub struct FxBook {
    pub usd: UsdRates,
    others: FxHashMap<Box<str>, MonthVec<RateCell>>,
    cells: u64,
    /// Months whose dollar rate changed since the last flush.
    pub usd_dirty: Option<Dirty>,
}

impl FxBook {
    pub fn cells(&self) -> u64 {
        self.cells
    }

    pub fn apply(&mut self, e: &FxEvent<'_>) -> Outcome {
        let is_usd = e.currency == "USD";
        let months = if is_usd {
            &mut self.usd.months
        } else {
            self.others
                .entry(Box::from(e.currency.as_ref()))
                .or_default()
        };
        let cell = months.slot(e.period);
        let outcome = revise(
            cell.present,
            cell.revision,
            &cell.micros,
            e.revision,
            &e.cny_per_unit.0,
        );
        if outcome == Outcome::Applied {
            if !cell.present {
                self.cells += 1;
            }
            *cell = RateCell {
                micros: e.cny_per_unit.0,
                revision: e.revision,
                present: true,
            };
            if is_usd {
                Dirty::merge(&mut self.usd_dirty, e.period, e.period);
            }
        }
        outcome
    }
}
