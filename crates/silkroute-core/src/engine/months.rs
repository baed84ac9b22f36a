//! A dense run of months for one series: the windows (YTD, prior YTD, TTM) are contiguous
//! slices, so computing one is a short loop with no hashing.

use crate::period::Period;

#[derive(Clone, Debug)]
pub struct MonthVec<T> {
    start: Period,
    items: Vec<T>,
}

impl<T: Default + Clone> MonthVec<T> {
    pub fn new() -> MonthVec<T> {
        MonthVec {
            start: Period(0),
            items: Vec::new(),
        }
    }

    pub fn get(&self, p: Period) -> Option<&T> {
        let i = p.0.checked_sub(self.start.0)? as usize;
        self.items.get(i)
    }

    pub fn get_mut(&mut self, p: Period) -> Option<&mut T> {
        let i = p.0.checked_sub(self.start.0)? as usize;
        self.items.get_mut(i)
    }

    /// The slot for `p`, growing the run at either end (new slots are default).
    pub fn slot(&mut self, p: Period) -> &mut T {
        if self.items.is_empty() {
            self.start = p;
            self.items.push(T::default());
        } else if p < self.start {
            let n = (self.start.0 - p.0) as usize;
            self.items
                .splice(0..0, std::iter::repeat_n(T::default(), n));
            self.start = p;
        } else {
            let i = (p.0 - self.start.0) as usize;
            if i >= self.items.len() {
                // Grow by whole years rather than doubling: a series is filled month by month,
                // and doubling left a 24-month backfill with room for 32 (a quarter of the
                // trade store unused).
                if i >= self.items.capacity() {
                    let room = (i + 1).next_multiple_of(12);
                    self.items.reserve_exact(room - self.items.len());
                }
                self.items.resize(i + 1, T::default());
            }
        }
        let i = (p.0 - self.start.0) as usize;
        &mut self.items[i]
    }

    /// First and last period covered, if any.
    pub fn span(&self) -> Option<(Period, Period)> {
        (!self.items.is_empty()).then(|| {
            (
                self.start,
                Period(self.start.0 + self.items.len() as u32 - 1),
            )
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (Period, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(move |(i, t)| (Period(self.start.0 + i as u32), t))
    }

    /// Slots for the months `from..=to` that exist (missing months at the edges are skipped).
    pub fn window(&self, from: Period, to: Period) -> &[T] {
        let Some((first, last)) = self.span() else {
            return &[];
        };
        let lo = from.max(first);
        let hi = to.min(last);
        if lo > hi {
            return &[];
        }
        &self.items[(lo.0 - first.0) as usize..=(hi.0 - first.0) as usize]
    }

    pub fn capacity_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<T>()
    }
}

impl<T: Default + Clone> Default for MonthVec<T> {
    fn default() -> Self {
        MonthVec::new()
    }
}

/// A range of months whose records must be re-derived at the next flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dirty {
    pub from: Period,
    pub to: Period,
}

impl Dirty {
    pub fn merge(slot: &mut Option<Dirty>, from: Period, to: Period) -> bool {
        match slot {
            Some(d) => {
                d.from = d.from.min(from);
                d.to = d.to.max(to);
                false
            }
            None => {
                *slot = Some(Dirty { from, to });
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_vec_grows_at_both_ends_and_keeps_values() {
        let mut v: MonthVec<u32> = MonthVec::new();
        *v.slot(Period(10)) = 1;
        *v.slot(Period(12)) = 3;
        *v.slot(Period(8)) = 7;
        assert_eq!(v.span(), Some((Period(8), Period(12))));
        assert_eq!(v.get(Period(10)), Some(&1));
        assert_eq!(v.get(Period(9)), Some(&0));
        assert_eq!(v.get(Period(13)), None);
        assert_eq!(v.window(Period(0), Period(9)), &[7, 0]);
        assert_eq!(v.window(Period(11), Period(20)), &[0, 3]);
    }

    #[test]
    fn a_month_vec_filled_month_by_month_keeps_room_for_whole_years_only() {
        let mut v: MonthVec<u64> = MonthVec::new();
        for m in 0..24 {
            *v.slot(Period(24_273 + m)) = u64::from(m);
        }
        assert_eq!(v.capacity_bytes(), 24 * 8);
        *v.slot(Period(24_273 + 24)) = 24;
        assert_eq!(v.capacity_bytes(), 36 * 8);
        let all: Vec<u64> = v.iter().map(|(_, &x)| x).collect();
        assert_eq!(all, (0..25).collect::<Vec<u64>>());
    }
}
