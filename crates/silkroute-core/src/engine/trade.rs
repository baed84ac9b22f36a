//! Trade cells and the records derived from them: `trade` (§3) per series and month, the
//! national YoY ranks between regions, and `trade_leaders` per breakdown.
//!
//! Cells live in lines: one line per (region, dimension, member) holding, month by month and
//! per basis, the import, export and explicit total cells. Month-basis and ytd-basis cells
//! are two separate runs of months, so a line published only monthly (or only cumulatively)
//! pays for one run alone. A line's total flow is derived on read, for each basis separately
//! (explicit total, else import + export), so a correction to either side re-derives it for
//! free. Year-to-date, months and dollars are derived on read too (`derive`), a year of one
//! series at a time.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::derive::{self, Inputs, Past, Year};
use super::fx::UsdRates;
use super::months::{Dirty, MonthVec};
use super::record::{LeadersRecord, Record, ShareLeader, TradeRecord, YoyLeader};
use super::{revise, Outcome, SeriesSlot};
use crate::event::{Basis, Flow, TradeEvent, TOTAL_DIMENSION};
use crate::money::{self, Hundredths};
use crate::period::Period;

pub type RegionId = u32;
pub type LineId = u32;
pub type GroupId = u32;

/// How far a change to month M (of either basis) reaches: that year's later YTDs and derived
/// months, the TTMs that hold M (a TTM from cumulatives reads the whole previous year), and
/// the next year's prior YTDs: at most to December of the next year, within M … M+23.
pub const REACH_MONTHS: u32 = 23;

const NO_USD: i64 = i64::MIN;

/// (YTD, prior YTD) in fen: the two sides of a year-on-year growth.
type YoyParts = (i64, i64);

#[derive(Clone, Copy, Debug, Default)]
pub struct Cell {
    fen: i64,
    usd: i64,
    revision: u32,
    present: bool,
}

/// One month's cells of one basis: import, export and the explicit total.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cells([Cell; 3]);

impl Cells {
    /// The month's (fen, dollars if known) for `flow`; the total is derived when not explicit.
    fn value(&self, flow: Flow) -> Option<(i64, Option<i64>)> {
        let usd = |c: &Cell| (c.usd != NO_USD).then_some(c.usd);
        match flow {
            Flow::Import | Flow::Export => {
                let c = &self.0[flow.index()];
                c.present.then(|| (c.fen, usd(c)))
            }
            Flow::Total => {
                let t = &self.0[Flow::Total.index()];
                if t.present {
                    return Some((t.fen, usd(t)));
                }
                let (i, e) = (&self.0[0], &self.0[1]);
                (i.present && e.present).then(|| {
                    let dollars = match (usd(i), usd(e)) {
                        (Some(a), Some(b)) => Some(a + b),
                        _ => None,
                    };
                    (i.fen + e.fen, dollars)
                })
            }
        }
    }
}

pub struct Line {
    region: RegionId,
    dimension: Arc<str>,
    /// `None` for the region's total line.
    member: Option<Arc<str>>,
    group: Option<GroupId>,
    /// Month-basis cells; empty for a line published only cumulatively.
    month: MonthVec<Cells>,
    /// Ytd-basis cells; empty for a line that never had a cumulative figure.
    ytd: MonthVec<Cells>,
    /// Per month and flow, what the last flush published and derived. It spans every month
    /// with a cell of either basis: the line's span.
    published: MonthVec<Published>,
    dirty: Option<Dirty>,
}

/// One month of a line as its last flush left it, per flow: the fingerprint of the record
/// published (0 = never), and the year to date in yuan and dollars it derived.
///
/// The stored year to date is what a later record reads as its year before, and what leaders
/// and ranks compare, so that a flush derives the line's current year only: re-deriving the
/// year before for every record, and two years of every member for every leaders record, was
/// half the engine's time (issue 17). It is current whenever the line is not dirty: a cell
/// change re-derives (and stores) every month it can move, `REACH_MONTHS`, and a month
/// without cells derives to unknown, which the default holds.
#[derive(Clone, Copy, Debug)]
struct Published {
    fingerprint: [u64; 3],
    ytd: [i64; 3],
    ytd_usd: [i64; 3],
}

/// An unknown stored year to date.
const UNKNOWN: i64 = i64::MIN;

impl Default for Published {
    fn default() -> Published {
        Published {
            fingerprint: [0; 3],
            ytd: [UNKNOWN; 3],
            ytd_usd: [UNKNOWN; 3],
        }
    }
}

fn known(x: i64) -> Option<i64> {
    (x != UNKNOWN).then_some(x)
}

impl Line {
    fn span(&self) -> Option<(Period, Period)> {
        self.published.span()
    }

    /// Months 1..=`upto` of `year` of the series `flow`, derived from both bases; dollars
    /// only when `usd` is given.
    fn year(&self, year: u32, upto: u32, flow: Flow, usd: Option<&UsdRates>) -> Year {
        let (first, last) = (Period::new(year, 1), Period::new(year, upto));
        match self.span() {
            Some((a, b)) if a <= last && b >= first => {}
            _ => return Year::default(),
        }
        derive::year(upto, usd.is_some(), self.inputs(year, flow, usd))
    }

    /// Month `m` of `year` of the series `flow`, as the derivation reads it.
    fn inputs<'a>(
        &'a self,
        year: u32,
        flow: Flow,
        usd: Option<&'a UsdRates>,
    ) -> impl Fn(u32) -> Inputs + 'a {
        move |m| {
            let q = Period::new(year, m);
            Inputs {
                month: self.month.get(q).and_then(|c| c.value(flow)),
                ytd: self.ytd.get(q).and_then(|c| c.value(flow)),
                rate: usd.and_then(|u| u.rate(q)),
            }
        }
    }

    /// `Y` and `Yusd` of month `p` as the last flush stored them (see [`Published`]).
    fn stored(&self, p: Period, flow: Flow) -> Past {
        match self.published.get(p) {
            Some(s) => Past {
                y: known(s.ytd[flow.index()]),
                y_usd: known(s.ytd_usd[flow.index()]),
            },
            None => Past::default(),
        }
    }

    /// Months `start..=upto` of `year` with dollars into `this`, for a flush whose earliest
    /// change is at `start`: derived from the stored month before when its year to date is
    /// known, else from January (`This::start` says which). Months outside the derived ones
    /// keep what an earlier line left there, and nothing reads them.
    fn this_year(
        &self,
        year: u32,
        start: u32,
        upto: u32,
        flow: Flow,
        usd: &UsdRates,
        this: &mut This,
    ) {
        let before = match start {
            1 => None,
            _ => Some(self.stored(Period::new(year, start - 1), flow)).filter(|b| b.y.is_some()),
        };
        let Some(before) = before else {
            this.months = self.year(year, upto, flow, Some(usd));
            this.start = 1;
            return;
        };
        derive::fill_months(
            &mut this.months,
            start,
            before,
            upto,
            true,
            self.inputs(year, flow, Some(usd)),
        );
        this.start = start;
    }

    /// Stores months `this.start..=upto` of `year`, as just derived, where the line has
    /// months.
    fn store(&mut self, year: u32, upto: u32, flow: Flow, this: &This) {
        let derived = &this.months;
        for m in this.start..=upto {
            if let Some(s) = self.published.get_mut(Period::new(year, m)) {
                let d = &derived[m as usize - 1];
                s.ytd[flow.index()] = d.y.unwrap_or(UNKNOWN);
                s.ytd_usd[flow.index()] = d.y_usd.unwrap_or(UNKNOWN);
            }
        }
    }

    /// `Y(p)` and `Y(p − 12)` in yuan: what shares, ranks and leaders compare. Stored when
    /// the line is clean, derived when it has changes not yet flushed.
    fn ytds_at(&self, p: Period, flow: Flow) -> (Option<i64>, Option<i64>) {
        let before = p.minus(12);
        if self.dirty.is_none() {
            let prior = before.and_then(|q| self.stored(q, flow).y);
            return (self.stored(p, flow).y, prior);
        }
        let i = p.month() as usize - 1;
        let this = self.year(p.year(), p.month(), flow, None)[i].y;
        let prior = before.and_then(|q| self.year(q.year(), q.month(), flow, None)[i].y);
        (this, prior)
    }

    /// The year before `year` as a record reads it: stored, unless the line has changes
    /// not yet flushed (a query between an apply and its flush), then derived.
    fn year_before(&self, year: u32, flow: Flow, usd: &UsdRates) -> Before<'_> {
        Before {
            line: self,
            year: year.saturating_sub(1),
            flow,
            derived: self
                .dirty
                .is_some()
                .then(|| self.year(year.saturating_sub(1), 12, flow, Some(usd))),
        }
    }
}

/// A line's months of one year as a flush derives them: from `start` on (see
/// [`Line::this_year`]).
struct This {
    months: Year,
    start: u32,
}

/// The year before the one a record is in: see [`Line::year_before`].
struct Before<'a> {
    line: &'a Line,
    year: u32,
    flow: Flow,
    derived: Option<Year>,
}

impl Before<'_> {
    /// Month `m` (1..=12).
    fn at(&self, m: u32) -> Past {
        match &self.derived {
            Some(year) => Past::from(&year[m as usize - 1]),
            None => self.line.stored(Period::new(self.year, m), self.flow),
        }
    }

    /// The TTM at month `m` of the year after: from year-to-dates when they are known, else
    /// from the months of both years (the year before then derived, in yuan only).
    fn ttm(&self, this: &This, m: u32) -> Option<i64> {
        let i = m as usize - 1;
        derive::ttm_of_ytds(this.months[i].y, self.at(12).y, self.at(m).y, m).or_else(|| {
            // A month without a cell has no `v`: the sum is unknown, and deriving two years
            // to find that out was a tenth of a backfill's time (its first year has no year
            // before).
            let line = self.line;
            let after = Period::new(self.year, 12).plus(m);
            let twelve = (after.0.saturating_sub(11)..=after.0).map(Period);
            // Every month with a month-basis figure: each `v` is that figure (§3), so the sum
            // needs no derivation. The usual case where a backfill's first year leaves the
            // year-to-dates unknown; deriving two years for it was 4 % of a backfill.
            let month_figures: Option<i64> = twelve
                .clone()
                .map(|q| {
                    let cells = line.month.get(q)?;
                    cells.value(self.flow).map(|(fen, _)| fen)
                })
                .sum();
            if month_figures.is_some() {
                return month_figures;
            }
            let has_cell = |q: Period| {
                let has = |cells: &MonthVec<Cells>| {
                    cells.get(q).and_then(|c| c.value(self.flow)).is_some()
                };
                has(&line.month) || has(&line.ytd)
            };
            if !twelve.clone().all(has_cell) {
                return None;
            }
            let before = match &self.derived {
                Some(year) => *year,
                None => self.line.year(self.year, 12, self.flow, None),
            };
            // The sum reads every month of this year up to `m`.
            let whole = (this.start > 1).then(|| self.line.year(self.year + 1, m, self.flow, None));
            derive::ttm_of_months(whole.as_ref().unwrap_or(&this.months), &before, m)
        })
    }
}

pub struct Group {
    region: RegionId,
    dimension: Arc<str>,
    members: Vec<LineId>,
    index: FxHashMap<Arc<str>, LineId>,
    published: MonthVec<[u64; 3]>,
    dirty: Option<Dirty>,
}

struct Region {
    name: Arc<str>,
    excluded: bool,
    total_line: Option<LineId>,
    groups: Vec<GroupId>,
    dims: FxHashMap<Arc<str>, GroupId>,
    /// Months at which the total line changed since the last flush: every member's share
    /// and every leaders record of the region depend on it.
    total_dirty: Option<Dirty>,
}

/// National ranks of one period: per flow, (region, rank) sorted by region, and how many ranked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RankTable {
    flows: [(Vec<(RegionId, u32)>, u32); 3],
}

/// Region totals' complete, positive YTD sums by (region, month, flow): the denominators of
/// shares. Memoized only while one batch of records is derived (cells do not change
/// meanwhile), since every member's record and every leaders record of a region divides by
/// the same few totals.
#[derive(Default)]
pub struct Denominators(RefCell<FxHashMap<(RegionId, Period, Flow), Option<i64>>>);

pub struct TradeBook {
    regions: Vec<Region>,
    region_index: FxHashMap<Arc<str>, RegionId>,
    lines: Vec<Line>,
    groups: Vec<Group>,
    dirty_lines: Vec<LineId>,
    dirty_groups: Vec<GroupId>,
    dirty_totals: Vec<RegionId>,
    rank_dirty: Option<Dirty>,
    ranks: FxHashMap<Period, RankTable>,
    excluded: Vec<String>,
    total_dimension: Arc<str>,
    cells: u64,
    /// The group of the last event with a member. Customs publish a region's breakdown as
    /// one table, so events come in runs of one region and dimension, and finding the
    /// group was two of an event's three hash lookups (issue 17).
    last_group: Option<GroupId>,
}

impl TradeBook {
    pub fn new(excluded: &[String]) -> TradeBook {
        TradeBook {
            regions: Vec::new(),
            region_index: FxHashMap::default(),
            lines: Vec::new(),
            groups: Vec::new(),
            dirty_lines: Vec::new(),
            dirty_groups: Vec::new(),
            dirty_totals: Vec::new(),
            rank_dirty: None,
            ranks: FxHashMap::default(),
            excluded: excluded.to_vec(),
            total_dimension: Arc::from(TOTAL_DIMENSION),
            cells: 0,
            last_group: None,
        }
    }

    pub fn cells(&self) -> u64 {
        self.cells
    }

    pub fn approx_bytes(&self) -> usize {
        self.lines
            .iter()
            .map(|l| {
                l.month.capacity_bytes()
                    + l.ytd.capacity_bytes()
                    + l.published.capacity_bytes()
                    + std::mem::size_of::<Line>()
            })
            .sum::<usize>()
            + self
                .groups
                .iter()
                .map(|g| {
                    g.published.capacity_bytes()
                        + g.members.capacity() * 4
                        + g.index.capacity() * 24
                })
                .sum::<usize>()
    }

    fn region_id(&mut self, name: &str) -> RegionId {
        if let Some(&id) = self.region_index.get(name) {
            return id;
        }
        let id = self.regions.len() as RegionId;
        let name: Arc<str> = Arc::from(name);
        self.regions.push(Region {
            name: name.clone(),
            excluded: self.excluded.iter().any(|x| **x == *name),
            total_line: None,
            groups: Vec::new(),
            dims: FxHashMap::default(),
            total_dirty: None,
        });
        self.region_index.insert(name, id);
        id
    }

    fn new_line(
        &mut self,
        region: RegionId,
        dimension: Arc<str>,
        member: Option<Arc<str>>,
        group: Option<GroupId>,
    ) -> LineId {
        let id = self.lines.len() as LineId;
        self.lines.push(Line {
            region,
            dimension,
            member,
            group,
            month: MonthVec::new(),
            ytd: MonthVec::new(),
            published: MonthVec::new(),
            dirty: None,
        });
        id
    }

    fn line_id(&mut self, e: &TradeEvent<'_>) -> LineId {
        if let (Some(member), Some(g)) = (e.member.as_deref(), self.last_group) {
            let group = &self.groups[g as usize];
            if *group.dimension == *e.dimension
                && *self.regions[group.region as usize].name == *e.region
            {
                if let Some(&id) = group.index.get(member) {
                    return id;
                }
            }
        }
        let r = self.region_id(&e.region);
        let Some(member) = e.member.as_deref() else {
            if let Some(id) = self.regions[r as usize].total_line {
                return id;
            }
            let id = self.new_line(r, self.total_dimension.clone(), None, None);
            self.regions[r as usize].total_line = Some(id);
            return id;
        };
        let group = match self.regions[r as usize].dims.get(e.dimension.as_ref()) {
            Some(&g) => g,
            None => {
                let g = self.groups.len() as GroupId;
                let dimension: Arc<str> = Arc::from(e.dimension.as_ref());
                self.groups.push(Group {
                    region: r,
                    dimension: dimension.clone(),
                    members: Vec::new(),
                    index: FxHashMap::default(),
                    published: MonthVec::new(),
                    dirty: None,
                });
                let region = &mut self.regions[r as usize];
                region.dims.insert(dimension, g);
                region.groups.push(g);
                g
            }
        };
        self.last_group = Some(group);
        if let Some(&id) = self.groups[group as usize].index.get(member) {
            return id;
        }
        let member: Arc<str> = Arc::from(member);
        let dimension = self.groups[group as usize].dimension.clone();
        let id = self.new_line(r, dimension, Some(member.clone()), Some(group));
        let g = &mut self.groups[group as usize];
        g.members.push(id);
        g.index.insert(member, id);
        id
    }

    pub fn apply(&mut self, e: &TradeEvent<'_>) -> Outcome {
        let id = self.line_id(e);
        let line = &mut self.lines[id as usize];
        line.published.slot(e.period);
        let cells = match e.basis {
            Basis::Month => &mut line.month,
            Basis::Ytd => &mut line.ytd,
        };
        let cell = &mut cells.slot(e.period).0[e.flow.index()];
        let usd = e.value_usd.map_or(NO_USD, |u| u.0);
        let outcome = revise(
            cell.present,
            cell.revision,
            &(cell.fen, cell.usd),
            e.revision,
            &(e.value_cny.0, usd),
        );
        if outcome != Outcome::Applied {
            return outcome;
        }
        if !cell.present {
            self.cells += 1;
        }
        *cell = Cell {
            fen: e.value_cny.0,
            usd,
            revision: e.revision,
            present: true,
        };
        self.mark_line(id, e.period, e.period);
        let line = &self.lines[id as usize];
        match line.group {
            Some(g) => self.mark_group(g, e.period, e.period),
            None => {
                let r = line.region;
                if Dirty::merge(
                    &mut self.regions[r as usize].total_dirty,
                    e.period,
                    e.period,
                ) {
                    self.dirty_totals.push(r);
                }
                Dirty::merge(&mut self.rank_dirty, e.period, e.period);
            }
        }
        Outcome::Applied
    }

    fn mark_line(&mut self, id: LineId, from: Period, to: Period) {
        if Dirty::merge(&mut self.lines[id as usize].dirty, from, to) {
            self.dirty_lines.push(id);
        }
    }

    fn mark_group(&mut self, id: GroupId, from: Period, to: Period) {
        if Dirty::merge(&mut self.groups[id as usize].dirty, from, to) {
            self.dirty_groups.push(id);
        }
    }

    /// Marks every line and group whole, so the next flush re-derives every record.
    pub fn mark_all(&mut self) {
        for id in 0..self.lines.len() as LineId {
            if let Some((first, last)) = self.lines[id as usize].span() {
                self.mark_line(id, first, last);
            }
        }
        for g in 0..self.groups.len() as GroupId {
            if let Some((first, last)) = self.group_span(g) {
                self.mark_group(g, first, last);
            }
        }
        if let Some((first, last)) = self.total_span() {
            Dirty::merge(&mut self.rank_dirty, first, last);
        }
    }

    /// The USD rate of some months changed: every line's dollar YTDs there may too.
    pub fn mark_usd_changed(&mut self, d: Dirty) {
        for id in 0..self.lines.len() as LineId {
            self.mark_line(id, d.from, d.to);
        }
    }

    /// Re-derives everything marked since the last call; `emit` sees every record that may
    /// have changed together with its fingerprint slot and, for a series' record (not a
    /// leaders record), the series' slot. By reference: a trade record is a quarter of a
    /// kilobyte, and handing it over by value moved it three times (issue 17).
    pub fn flush(
        &mut self,
        usd: &UsdRates,
        top_n: usize,
        emit: impl FnMut(&Record, &mut u64, Option<SeriesSlot>),
    ) {
        self.take_changes(usd, Some((top_n, emit)));
    }

    /// Takes what was marked since the last flush without deriving its records: the derived
    /// years the next flush reads are stored as a flush stores them. After a restore, building
    /// every record only to drop it took 150–250 ms of the 443k backfill's restore (issue 17).
    pub fn forget_changes(&mut self, usd: &UsdRates) {
        self.take_changes(
            usd,
            None::<(usize, fn(&Record, &mut u64, Option<SeriesSlot>))>,
        );
    }

    /// `emit`, with the number of leaders a record lists, when records are wanted.
    fn take_changes(
        &mut self,
        usd: &UsdRates,
        mut emit: Option<(usize, impl FnMut(&Record, &mut u64, Option<SeriesSlot>))>,
    ) {
        // A region total moved: shares and leaders of all its breakdowns follow.
        for r in std::mem::take(&mut self.dirty_totals) {
            let Some(d) = self.regions[r as usize].total_dirty.take() else {
                continue;
            };
            for gi in 0..self.regions[r as usize].groups.len() {
                let g = self.regions[r as usize].groups[gi];
                self.mark_group(g, d.from, d.to);
                for mi in 0..self.groups[g as usize].members.len() {
                    let id = self.groups[g as usize].members[mi];
                    self.mark_line(id, d.from, d.to);
                }
            }
        }
        if let Some(d) = self.rank_dirty.take() {
            self.rerank(d);
        }
        let denominators = Denominators::default();
        let mut this = This {
            months: Year::default(),
            start: 1,
        };
        for id in std::mem::take(&mut self.dirty_lines) {
            let Some(d) = self.lines[id as usize].dirty.take() else {
                continue;
            };
            let Some((first, last)) = self.lines[id as usize].span() else {
                continue;
            };
            let from = d.from.max(first);
            let to = d.to.plus(REACH_MONTHS).min(last);
            if from > to {
                // Marked past its last month (a USD rate for a month it has no cell in yet).
                continue;
            }
            for flow in Flow::ALL {
                // Year by year: the months up to `to` derived and stored, so that the next
                // year's records read this one as their year before.
                for year in from.year()..=to.year() {
                    let upto = if year == to.year() { to.month() } else { 12 };
                    let first = if year == from.year() { from.month() } else { 1 };
                    self.lines[id as usize].this_year(year, first, upto, flow, usd, &mut this);
                    self.lines[id as usize].store(year, upto, flow, &this);
                    let Some((_, emit)) = emit.as_mut() else {
                        continue;
                    };
                    for m in first..=upto {
                        let p = Period::new(year, m);
                        let before = Before {
                            line: &self.lines[id as usize],
                            year: year.saturating_sub(1),
                            flow,
                            derived: None,
                        };
                        let record = self.trade_record(id, p, flow, &this, &before, &denominators);
                        let Some(record) = &record else {
                            continue;
                        };
                        let published = self.lines[id as usize]
                            .published
                            .get_mut(p)
                            .expect("inside span");
                        let series =
                            SeriesSlot::Trade(id * Flow::ALL.len() as u32 + flow.index() as u32);
                        emit(
                            record,
                            &mut published.fingerprint[flow.index()],
                            Some(series),
                        );
                    }
                }
            }
        }
        for g in std::mem::take(&mut self.dirty_groups) {
            let Some(d) = self.groups[g as usize].dirty.take() else {
                continue;
            };
            let Some((top_n, emit)) = emit.as_mut() else {
                continue;
            };
            let top_n = *top_n;
            let Some((first, last)) = self.group_span(g) else {
                continue;
            };
            let from = d.from.max(first);
            let to = d.to.plus(REACH_MONTHS).min(last);
            for p in (from.0..=to.0).map(Period) {
                for flow in Flow::ALL {
                    let Some(record) = self.leaders_record(g, p, flow, top_n, &denominators) else {
                        continue;
                    };
                    let fps = self.groups[g as usize].published.slot(p);
                    emit(&Record::Leaders(record), &mut fps[flow.index()], None);
                }
            }
        }
    }

    fn group_span(&self, g: GroupId) -> Option<(Period, Period)> {
        self.groups[g as usize]
            .members
            .iter()
            .filter_map(|&id| self.lines[id as usize].span())
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Recomputes national ranks for every period a total changed could reach, and marks the
    /// total lines whose rank moved.
    fn rerank(&mut self, d: Dirty) {
        let Some((first, last)) = self.total_span() else {
            return;
        };
        let from = d.from.max(first);
        let to = d.to.plus(REACH_MONTHS).min(last);
        for p in (from.0..=to.0).map(Period) {
            let table = RankTable {
                flows: Flow::ALL.map(|flow| self.rank_flow(p, flow)),
            };
            let old = self.ranks.get(&p);
            if old == Some(&table) || (old.is_none() && table == RankTable::default()) {
                continue;
            }
            let mut touched: Vec<RegionId> = table
                .flows
                .iter()
                .flat_map(|(v, _)| v.iter().map(|&(r, _)| r))
                .collect();
            if let Some(old) = old {
                touched.extend(
                    old.flows
                        .iter()
                        .flat_map(|(v, _)| v.iter().map(|&(r, _)| r)),
                );
            }
            touched.sort_unstable();
            touched.dedup();
            self.ranks.insert(p, table);
            for r in touched {
                if let Some(id) = self.regions[r as usize].total_line {
                    self.mark_line(id, p, p);
                }
            }
        }
    }

    fn total_span(&self) -> Option<(Period, Period)> {
        self.regions
            .iter()
            .filter_map(|r| r.total_line)
            .filter_map(|id| self.lines[id as usize].span())
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    fn rank_flow(&self, p: Period, flow: Flow) -> (Vec<(RegionId, u32)>, u32) {
        let mut entries: Vec<(RegionId, i64, i64)> = Vec::new();
        for (r, region) in self.regions.iter().enumerate() {
            let Some(id) = region.total_line.filter(|_| !region.excluded) else {
                continue;
            };
            if let Some((ytd, prior)) = self.yoy_parts(&self.lines[id as usize], p, flow) {
                entries.push((r as RegionId, ytd, prior));
            }
        }
        entries.sort_by(|a, b| compare_growth((b.1, b.2), (a.1, a.2)));
        let mut ranked: Vec<(RegionId, u32)> = Vec::with_capacity(entries.len());
        for i in 0..entries.len() {
            let rank = if i > 0
                && compare_growth(
                    (entries[i].1, entries[i].2),
                    (entries[i - 1].1, entries[i - 1].2),
                ) == Ordering::Equal
            {
                ranked[i - 1].1
            } else {
                i as u32 + 1
            };
            ranked.push((entries[i].0, rank));
        }
        let of = ranked.len() as u32;
        ranked.sort_unstable();
        (ranked, of)
    }

    /// (YTD, prior YTD) when the year-on-year growth is defined: both known and the prior
    /// above zero.
    fn yoy_parts(&self, line: &Line, p: Period, flow: Flow) -> Option<YoyParts> {
        let (this, before) = line.ytds_at(p, flow);
        derive::growth(this, before)
    }

    fn share(
        &self,
        region: RegionId,
        member_ytd: Option<i64>,
        p: Period,
        flow: Flow,
        denominators: &Denominators,
    ) -> Option<f64> {
        let member_ytd = member_ytd?;
        let total = *denominators
            .0
            .borrow_mut()
            .entry((region, p, flow))
            .or_insert_with(|| self.share_denominator(region, p, flow));
        total.map(|t| money::percent(member_ytd as i128, t as i128))
    }

    /// The region total's YTD when it is known (complete) and above zero.
    fn share_denominator(&self, region: RegionId, p: Period, flow: Flow) -> Option<i64> {
        let total = &self.lines[self.regions[region as usize].total_line? as usize];
        total.ytds_at(p, flow).0.filter(|&t| t > 0)
    }

    /// The trade record of series (`id`, `flow`) at `p`, from the derived months of its year
    /// (`this`) and of the year before (`before`). Built as a [`Record`], in place: the flush
    /// hands it over by reference.
    fn trade_record(
        &self,
        id: LineId,
        p: Period,
        flow: Flow,
        this: &This,
        before: &Before<'_>,
        denominators: &Denominators,
    ) -> Option<Record> {
        let line = &self.lines[id as usize];
        let i = p.month() as usize - 1;
        let now = &this.months[i];
        if !now.present {
            return None;
        }
        let prior = before.at(p.month());
        let yoy = derive::growth(now.y, prior.y).map(derive::growth_pct);
        // In dollars only where the yuan growth is defined by its knowns too.
        let usd_yoy = now
            .y
            .and(prior.y)
            .and(derive::growth(now.y_usd, prior.y_usd))
            .map(derive::growth_pct);
        let region = &self.regions[line.region as usize];
        let (share, rank) = match line.member {
            Some(_) => (self.share(line.region, now.y, p, flow, denominators), None),
            None => {
                let rank = self.ranks.get(&p).and_then(|t| {
                    let (v, of) = &t.flows[flow.index()];
                    v.binary_search_by_key(&line.region, |e| e.0)
                        .ok()
                        .map(|i| (v[i].1, *of))
                });
                (None, rank.filter(|_| yoy.is_some() && !region.excluded))
            }
        };
        Some(Record::Trade(TradeRecord {
            kind: "trade",
            region: region.name.clone(),
            flow: flow.as_str(),
            dimension: line.dimension.clone(),
            member: line.member.clone(),
            period: p,
            month_cny: now.v.map(Hundredths),
            ytd_cny: Hundredths(now.ytd),
            months_in_ytd: now.months,
            ytd_basis: now.known.basis(),
            ytd_gap_cny: now.gap.map(Hundredths),
            prior_ytd_cny: prior.y.map(Hundredths),
            ytd_yoy_pct: yoy,
            ytd_usd: now.ytd_usd.map(Hundredths),
            prior_ytd_usd: prior.y_usd.map(Hundredths),
            ytd_usd_yoy_pct: usd_yoy,
            ttm_cny: before.ttm(this, p.month()).map(Hundredths),
            share_pct: share,
            yoy_rank: rank.map(|r| r.0),
            yoy_rank_of: rank.map(|r| r.1),
        }))
    }

    pub fn leaders_record(
        &self,
        g: GroupId,
        p: Period,
        flow: Flow,
        top_n: usize,
        denominators: &Denominators,
    ) -> Option<LeadersRecord> {
        let group = &self.groups[g as usize];
        let mut any = false;
        let mut complete: Vec<(&Arc<str>, i64, Option<YoyParts>)> = Vec::new();
        for &id in &group.members {
            let line = &self.lines[id as usize];
            let has_cell =
                |cells: &MonthVec<Cells>| cells.get(p).and_then(|c| c.value(flow)).is_some();
            if !has_cell(&line.month) && !has_cell(&line.ytd) {
                continue;
            }
            any = true;
            let (this, before) = line.ytds_at(p, flow);
            if let Some(ytd) = this {
                let member = line.member.as_ref().expect("group lines have members");
                complete.push((member, ytd, derive::growth(this, before)));
            }
        }
        if !any {
            return None;
        }
        let by_share = top(&mut complete, top_n, |a, b| {
            b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0))
        })
        .iter()
        .map(|(m, ytd, _)| ShareLeader {
            member: (*m).clone(),
            ytd_cny: Hundredths(*ytd),
            share_pct: self.share(group.region, Some(*ytd), p, flow, denominators),
        })
        .collect();
        let mut growing: Vec<_> = complete
            .iter()
            .filter_map(|(m, _, yoy)| yoy.map(|g| (*m, g)))
            .collect();
        let by_yoy = top(&mut growing, top_n, |a, b| {
            compare_growth(b.1, a.1).then_with(|| a.0.cmp(b.0))
        })
        .iter()
        .map(|(m, (y, pr))| YoyLeader {
            member: (*m).clone(),
            ytd_yoy_pct: derive::growth_pct((*y, *pr)),
        })
        .collect();
        Some(LeadersRecord {
            kind: "trade_leaders",
            region: self.regions[group.region as usize].name.clone(),
            flow: flow.as_str(),
            dimension: group.dimension.clone(),
            period: p,
            members_ranked: complete.len() as u32,
            by_share,
            by_yoy,
        })
    }

    /// Every record this book currently defines that `select` admits, in no particular order.
    pub fn all_records(
        &self,
        usd: &UsdRates,
        top_n: usize,
        select: &super::Selection<'_>,
        mut each: impl FnMut(super::record::Record),
    ) {
        use super::record::RecordKind;
        if select.port.is_some() {
            return;
        }
        let denominators = Denominators::default();
        let region_ok = |r: RegionId| {
            select
                .region
                .is_none_or(|x| *self.regions[r as usize].name == *x)
        };
        let periods = |first: Period, last: Period| {
            let (lo, hi) = match select.period {
                Some(p) => (p.max(first), p.min(last)),
                None => (first, last),
            };
            (lo.0..=hi.0).map(Period)
        };
        if select.kind.is_none_or(|k| k == RecordKind::Trade) {
            for id in 0..self.lines.len() as LineId {
                if !region_ok(self.lines[id as usize].region) {
                    continue;
                }
                let line = &self.lines[id as usize];
                let Some((first, last)) = line.span() else {
                    continue;
                };
                for flow in Flow::ALL {
                    let mut years: Option<(u32, This, Before<'_>)> = None;
                    for p in periods(first, last) {
                        if years.as_ref().is_none_or(|(y, _, _)| *y != p.year()) {
                            let this = This {
                                months: line.year(p.year(), 12, flow, Some(usd)),
                                start: 1,
                            };
                            years = Some((p.year(), this, line.year_before(p.year(), flow, usd)));
                        }
                        let (_, this, before) = years.as_ref().expect("derived above");
                        if let Some(r) = self.trade_record(id, p, flow, this, before, &denominators)
                        {
                            each(r);
                        }
                    }
                }
            }
        }
        if select.kind.is_none_or(|k| k == RecordKind::Leaders) {
            for g in 0..self.groups.len() as GroupId {
                if !region_ok(self.groups[g as usize].region) {
                    continue;
                }
                let Some((first, last)) = self.group_span(g) else {
                    continue;
                };
                for p in periods(first, last) {
                    for flow in Flow::ALL {
                        if let Some(r) = self.leaders_record(g, p, flow, top_n, &denominators) {
                            each(super::record::Record::Leaders(r));
                        }
                    }
                }
            }
        }
    }
}

/// The first `n` of `v` in `order`, sorted; the rest of `v` is left in no particular order.
/// `order` must be total (leaders break ties by member, unique in a group), so that the
/// result is what a full sort would give: a leaders record lists ten of up to a few hundred
/// members, and sorting them all was most of its cost (issue 17).
fn top<T>(v: &mut [T], n: usize, mut order: impl FnMut(&T, &T) -> Ordering) -> &[T] {
    if n == 0 {
        return &[];
    }
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, &mut order);
    }
    let n = n.min(v.len());
    let first = &mut v[..n];
    first.sort_unstable_by(order);
    first
}

/// Orders growth ratios ytd/prior exactly (prior > 0), by cross-multiplying in 128 bits.
fn compare_growth(a: (i64, i64), b: (i64, i64)) -> Ordering {
    (a.0 as i128 * b.1 as i128).cmp(&(b.0 as i128 * a.1 as i128))
}
