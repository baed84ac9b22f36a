//! Freight-train cells per (port, service) and the `freight` records (§3) derived from them.
//!
//! A streak can run back indefinitely, so a change to month M re-derives every later month of
//! its line (freight lines are few and short; this stays cheap).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::months::{Dirty, MonthVec};
use super::record::FreightRecord;
use super::{revise, Outcome};
use crate::event::FreightEvent;
use crate::money;
use crate::period::Period;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    trains: u32,
    revision: u32,
    present: bool,
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
        let cell = line.months.slot(e.period);
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
            cell.trains = e.trains;
            cell.revision = e.revision;
            cell.present = true;
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

    pub fn flush(&mut self, mut emit: impl FnMut(FreightRecord, &mut u64)) {
        for id in std::mem::take(&mut self.dirty) {
            let Some(d) = self.lines[id].dirty.take() else {
                continue;
            };
            let Some((_, last)) = self.lines[id].months.span() else {
                continue;
            };
            for p in (d.from.0..=last.0).map(Period) {
                let Some(record) = self.record(id, p) else {
                    continue;
                };
                let slot = self.lines[id].months.get_mut(p).expect("inside span");
                emit(record, &mut slot.published);
            }
        }
    }

    fn trains(line: &Line, p: Period) -> Option<u64> {
        line.months
            .get(p)
            .filter(|s| s.present)
            .map(|s| s.trains as u64)
    }

    /// (sum, months present) over `from..=to`.
    fn window(line: &Line, from: Period, to: Period) -> (u64, u32) {
        line.months
            .window(from, to)
            .iter()
            .filter(|s| s.present)
            .fold((0, 0), |(sum, n), s| (sum + s.trains as u64, n + 1))
    }

    fn record(&self, id: usize, p: Period) -> Option<FreightRecord> {
        let line = &self.lines[id];
        let month = Self::trains(line, p)?;
        let (ytd, months) = Self::window(line, p.year_start(), p);
        let prior = p
            .minus(12)
            .map(|q| Self::window(line, q.year_start(), q))
            .filter(|w| w.1 == p.month())
            .map(|w| w.0);
        let yoy = match prior {
            Some(pr) if pr > 0 && months == p.month() => {
                Some(money::percent(ytd as i128 - pr as i128, pr as i128))
            }
            _ => None,
        };
        let ttm = p
            .minus(11)
            .map(|q| Self::window(line, q, p))
            .filter(|w| w.1 == 12)
            .map(|w| w.0);
        let mut streak = 0;
        let mut q = Some(p);
        while let Some(month) = q
            .and_then(|q| Self::trains(line, q))
            .filter(|&t| t > self.threshold as u64)
        {
            let _ = month;
            streak += 1;
            q = q.and_then(|q| q.minus(1));
        }
        Some(FreightRecord {
            kind: "freight",
            port: line.port.clone(),
            service: line.service.clone(),
            period: p,
            month_trains: month,
            ytd_trains: ytd,
            months_in_ytd: months,
            prior_ytd_trains: prior,
            ytd_yoy_pct: yoy,
            ttm_trains: ttm,
            streak_months: streak,
            streak_threshold: self.threshold,
        })
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
            for p in (lo.0..=hi.0).map(Period) {
                if let Some(r) = self.record(id, p) {
                    each(r);
                }
            }
        }
    }
}
