//! Freight-train cells per (port, service) and the `freight` records (§3) derived from them.
//!
//! Trains follow the trade rules of "Deriving months and year-to-date" (`derive`), in whole
//! trains and without dollars; streaks run over the derived month `v`. A streak can run back
//! indefinitely, so a change to month M (of either basis) re-derives every later month of its
//! line (freight lines are few and short; this stays cheap).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::derive::{self, Inputs, Year};
use super::months::{Dirty, MonthVec};
use super::record::FreightRecord;
use super::{revise, Outcome, SeriesSlot};
use crate::event::{Basis, FreightEvent};
use crate::period::Period;

#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    trains: u32,
    revision: u32,
    present: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The month-basis and the ytd-basis cell (`Basis as usize`).
    cells: [Cell; 2],
    published: u64,
}

struct Line {
    port: Arc<str>,
    service: Arc<str>,
    months: MonthVec<Slot>,
    dirty: Option<Dirty>,
}

pub struct FreightBook {
    threshold: u32,
    lines: Vec<Line>,
    index: FxHashMap<Arc<str>, FxHashMap<Arc<str>, usize>>,
    dirty: Vec<usize>,
    cells: u64,
}

impl FreightBook {
    pub fn new(threshold: u32) -> FreightBook {
        FreightBook {
            threshold,
            lines: Vec::new(),
            index: FxHashMap::default(),
            dirty: Vec::new(),
            cells: 0,
        }
    }

    pub fn cells(&self) -> u64 {
        self.cells
    }

    fn line_id(&mut self, port: &str, service: &str) -> usize {
        if let Some(&id) = self.index.get(port).and_then(|s| s.get(service)) {
            return id;
        }
        let id = self.lines.len();
        let (port, service): (Arc<str>, Arc<str>) = (Arc::from(port), Arc::from(service));
        self.lines.push(Line {
            port: port.clone(),
            service: service.clone(),
            months: MonthVec::new(),
            dirty: None,
        });
        self.index.entry(port).or_default().insert(service, id);
        id
    }

    pub fn apply(&mut self, e: &FreightEvent<'_>) -> Outcome {
        let id = self.line_id(&e.port, &e.service);
        let line = &mut self.lines[id];
        let cell = &mut line.months.slot(e.period).cells[e.basis as usize];
        let outcome = revise(
            cell.present,
            cell.revision,
            &cell.trains,
            e.revision,
            &e.trains,
        );
        if outcome == Outcome::Applied {
            if !cell.present {
                self.cells += 1;
            }
            *cell = Cell {
                trains: e.trains,
                revision: e.revision,
                present: true,
            };
            if Dirty::merge(&mut line.dirty, e.period, e.period) {
                self.dirty.push(id);
            }
        }
        outcome
    }

    pub fn mark_all(&mut self) {
        for id in 0..self.lines.len() {
            if let Some((first, last)) = self.lines[id].months.span() {
                if Dirty::merge(&mut self.lines[id].dirty, first, last) {
                    self.dirty.push(id);
                }
            }
        }
    }

    /// Takes what was marked since the last flush without deriving its records (freight
    /// stores nothing derived).
    pub fn forget_changes(&mut self) {
        for id in std::mem::take(&mut self.dirty) {
            self.lines[id].dirty = None;
        }
    }

    /// Derives the marked records and hands each to `emit` with its fingerprint slot and its
    /// series' slot.
    pub fn flush(&mut self, mut emit: impl FnMut(FreightRecord, &mut u64, SeriesSlot)) {
        for id in std::mem::take(&mut self.dirty) {
            let Some(d) = self.lines[id].dirty.take() else {
                continue;
            };
            let Some((_, last)) = self.lines[id].months.span() else {
                continue;
            };
            for (p, record) in self.records(id, d.from, last) {
                let slot = self.lines[id].months.get_mut(p).expect("inside span");
                emit(record, &mut slot.published, SeriesSlot::Freight(id as u32));
            }
        }
    }

    /// The line's records at `from..=to` (within its span), derived year by year from the
    /// line's first month: a streak may reach back that far.
    fn records(&self, id: usize, from: Period, to: Period) -> Vec<(Period, FreightRecord)> {
        let line = &self.lines[id];
        let Some((first, last)) = line.months.span() else {
            return Vec::new();
        };
        let to = to.min(last);
        let year_of = |y: u32| -> Year {
            derive::year(12, false, |m| {
                let slot = line.months.get(Period::new(y, m));
                let cell = |b: Basis| {
                    slot.map(|s| s.cells[b as usize])
                        .filter(|c| c.present)
                        .map(|c| (i64::from(c.trains), None))
                };
                Inputs {
                    month: cell(Basis::Month),
                    ytd: cell(Basis::Ytd),
                    rate: None,
                }
            })
        };
        let mut out = Vec::new();
        let mut before = Year::default();
        let mut streak = 0u32;
        for y in first.year()..=to.year() {
            let this = year_of(y);
            for m in 1..=12 {
                let p = Period::new(y, m);
                if p < first || p > to {
                    continue;
                }
                let i = m as usize - 1;
                let now = &this[i];
                // A month whose `v` is unknown (or at or below the threshold) ends a streak.
                streak = match now.v {
                    Some(v) if v > i64::from(self.threshold) => streak + 1,
                    _ => 0,
                };
                if p < from || !now.present {
                    continue;
                }
                let prior = &before[i];
                let yoy = derive::growth(now.y, prior.y).map(derive::growth_pct);
                out.push((
                    p,
                    FreightRecord {
                        kind: "freight",
                        port: line.port.clone(),
                        service: line.service.clone(),
                        period: p,
                        month_trains: now.v,
                        // Cumulative and month cells are ≥ 0, so every YTD (partial or not) is.
                        ytd_trains: now.ytd.max(0) as u64,
                        months_in_ytd: now.months,
                        ytd_basis: now.known.basis(),
                        ytd_gap_trains: now.gap,
                        prior_ytd_trains: prior.y.map(|t| t.max(0) as u64),
                        ytd_yoy_pct: yoy,
                        ttm_trains: derive::ttm(&this, &before, m),
                        streak_months: streak,
                        streak_threshold: self.threshold,
                    },
                ));
            }
            before = this;
        }
        out
    }

    /// Every record that `select` admits.
    pub fn all_records(&self, select: &super::Selection<'_>, mut each: impl FnMut(FreightRecord)) {
        if select.region.is_some()
            || select
                .kind
                .is_some_and(|k| k != super::record::RecordKind::Freight)
        {
            return;
        }
        for id in 0..self.lines.len() {
            if select.port.is_some_and(|p| *self.lines[id].port != *p) {
                continue;
            }
            let Some((first, last)) = self.lines[id].months.span() else {
                continue;
            };
            let (lo, hi) = match select.period {
                Some(p) => (p.max(first), p.min(last)),
                None => (first, last),
            };
            if lo <= hi {
                for (_, r) in self.records(id, lo, hi) {
                    each(r);
                }
            }
        }
    }
}
