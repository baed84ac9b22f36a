//! Calendar months as the indicators count them.

use std::fmt;

use serde::{Serialize, Serializer};

/// A calendar month, stored as `year * 12 + (month - 1)` so that windows are ranges of integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(pub u32);

/// The earliest year the contract accepts.
pub const FIRST_YEAR: u32 = 1990;

impl Period {
    pub fn new(year: u32, month: u32) -> Period {
        debug_assert!((1..=12).contains(&month));
        Period(year * 12 + month - 1)
    }

    pub fn year(self) -> u32 {
        self.0 / 12
    }

    /// 1 for January.
    pub fn month(self) -> u32 {
        self.0 % 12 + 1
    }

    /// January of the same year.
    pub fn year_start(self) -> Period {
        Period(self.0 - self.0 % 12)
    }

    pub fn plus(self, months: u32) -> Period {
        Period(self.0 + months)
    }

    /// `None` before the first representable month.
    pub fn minus(self, months: u32) -> Option<Period> {
        self.0.checked_sub(months).map(Period)
    }

    /// Parses `YYYY-MM` (month 01–12). Range rules (year ≥ 1990, not in the future) are the
    /// caller's, since the current month comes from outside the engine.
    pub fn parse(text: &str) -> Option<Period> {
        let b = text.as_bytes();
        if b.len() != 7
            || b[4] != b'-'
            || !b
                .iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit())
        {
            return None;
        }
        let year: u32 = text[..4].parse().ok()?;
        let month: u32 = text[5..].parse().ok()?;
        (1..=12).contains(&month).then(|| Period::new(year, month))
    }

    /// `YYYY-MM` as ASCII, for four-digit years (every year the contract admits); `None`
    /// after 9999, which only [`Display`](fmt::Display) writes. The one formatter of a month:
    /// record keys, changelog keys and JSON are built from it, without the formatting
    /// machinery, since every derived record is serialized to compare fingerprints.
    pub fn ascii(self) -> Option<[u8; 7]> {
        let (year, month) = (self.year(), self.month());
        if year > 9999 {
            return None;
        }
        let digit = |n: u32| b'0' + (n % 10) as u8;
        Some([
            digit(year / 1000),
            digit(year / 100),
            digit(year / 10),
            digit(year),
            b'-',
            digit(month / 10),
            digit(month),
        ])
    }

    /// Appends the month's text, as [`Display`](fmt::Display) writes it.
    pub fn push_to(self, out: &mut String) {
        match self.ascii() {
            // ASCII: pushed as they are, without validating them as UTF-8.
            Some(b) => b.into_iter().for_each(|c| out.push(char::from(c))),
            None => {
                use fmt::Write as _;
                let _ = write!(out, "{self}");
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.ascii() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => s.collect_str(self),
        }
    }
}

/// The month (UTC) holding a moment given as whole days since 1970-01-01: the shell reads
/// the clock and passes the current month into parsing, since the core has no clock.
pub fn of_unix_days(days: i64) -> Period {
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
    Period::new(year, month)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_count_falls_in_its_calendar_month_across_leap_days_and_year_ends() {
        // Day numbers from Python's datetime: (date - date(1970, 1, 1)).days.
        for (days, month) in [
            (0, "1970-01"),
            (11_016, "2000-02"), // 2000-02-29, a leap day of a century year
            (19_722, "2023-12"), // 2023-12-31
            (19_782, "2024-02"), // 2024-02-29
            (19_783, "2024-03"), // 2024-03-01
        ] {
            assert_eq!(of_unix_days(days).to_string(), month, "day {days}");
        }
    }

    #[test]
    fn periods_round_trip_through_text() {
        let p = Period::parse("2024-09").unwrap();
        assert_eq!((p.year(), p.month()), (2024, 9));
        assert_eq!(p.to_string(), "2024-09");
        assert_eq!(p.year_start().to_string(), "2024-01");
        assert_eq!(p.minus(11).unwrap().to_string(), "2023-10");
    }

    #[test]
    fn every_month_reads_the_same_in_every_form() {
        for p in (0..130_000).chain([u32::MAX - 1, u32::MAX]).map(Period) {
            let shown = format!("{:04}-{:02}", p.year(), p.month());
            let mut pushed = String::new();
            p.push_to(&mut pushed);
            assert_eq!(pushed, shown, "{p:?}");
            assert_eq!(p.to_string(), shown, "{p:?}");
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{shown}\""),
                "{p:?}"
            );
            if p.year() <= 9999 {
                assert_eq!(p.ascii().map(|b| b.to_vec()), Some(shown.into_bytes()));
            } else {
                assert_eq!(p.ascii(), None);
            }
        }
    }

    #[test]
    fn malformed_periods_are_refused() {
        for text in [
            "2024-13",
            "2024-00",
            "2024-9",
            "24-09",
            "2024/09",
            "2024-09-01",
            "abcd-ef",
            "2024-+9",
        ] {
            assert!(Period::parse(text).is_none(), "{text}");
        }
    }
}
