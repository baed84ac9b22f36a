//! The shell's one reading of the calendar: the core has no clock, so the current month (the
//! upper bound of a valid event's `period`) is read here and passed into parsing.

use crate::period::{self, Period};

/// The current UTC month.
pub fn current_utc_month() -> Period {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    period::of_unix_days((secs / 86_400) as i64)
}
