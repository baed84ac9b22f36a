//! Exact money and rates, parsed from their decimal text.
//!
//! Yuan and US dollars are held as integer hundredths (fen, cents) in `i64`; exchange rates as
//! integer millionths. Nothing here goes through floating point, so a figure read as
//! `123456789012.34` is written back as exactly `"123456789012.34"`.

use std::fmt;

use serde::{Serialize, Serializer};

/// An amount in hundredths of a currency unit (fen for yuan, cents for dollars).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hundredths(pub i64);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// `00`, `01`, … `99`: two digits per division.
static PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

fn pair(n: u64) -> [u8; 2] {
    let i = n as usize * 2;
    [PAIRS[i], PAIRS[i + 1]]
}

impl Hundredths {
    /// Room for `-` and the digits of any `i64`, a point and two decimals.
    pub const TEXT_MAX: usize = 24;

    /// Writes the amount's text, as [`Display`](fmt::Display) writes it, into `buf` so that it
    /// ends just before `end`; returns where it starts. `buf[..end]` must have room for
    /// [`Hundredths::TEXT_MAX`] bytes. The one fast formatter of money: every derived record
    /// is serialized to compare fingerprints, and the formatting machinery was most of a
    /// flush's cost.
    pub fn write_text(self, buf: &mut [u8], end: usize) -> usize {
        let mut abs = self.0.unsigned_abs();
        let mut i = end - 3;
        buf[i] = b'.';
        buf[i + 1..end].copy_from_slice(&pair(abs % 100));
        abs /= 100;
        while abs >= 100 {
            i -= 2;
            buf[i..i + 2].copy_from_slice(&pair(abs % 100));
            abs /= 100;
        }
        if abs >= 10 {
            i -= 2;
            buf[i..i + 2].copy_from_slice(&pair(abs));
        } else {
            i -= 1;
            buf[i] = b'0' + abs as u8;
        }
        if self.0 < 0 {
            i -= 1;
            buf[i] = b'-';
        }
        i
    }

    /// The amount's text in `buf`.
    pub fn text(self, buf: &mut [u8; Hundredths::TEXT_MAX]) -> &str {
        let start = self.write_text(buf, Hundredths::TEXT_MAX);
        std::str::from_utf8(&buf[start..]).expect("ASCII digits")
    }
}

impl Serialize for Hundredths {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text(&mut [0; Hundredths::TEXT_MAX]))
    }
}

/// Why a decimal text was refused; the caller turns it into a field-naming detail line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    NotANumber,
    Negative,
    TooManyDecimals(u32),
    TooLarge,
    NotPositive,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecimalError::NotANumber => f.write_str("is not a decimal number"),
            DecimalError::Negative => f.write_str("must not be negative"),
            DecimalError::TooManyDecimals(n) => write!(f, "has more than {n} decimal places"),
            DecimalError::TooLarge => f.write_str("is too large"),
            DecimalError::NotPositive => f.write_str("must be greater than zero"),
        }
    }
}

/// Parses a plain or exponent-form decimal (`"12.5"`, `"1.25e1"`) into an integer count of
/// `10^-scale` units. Trailing zeros beyond `scale` are accepted (`"1.500"` is 1.50), any other
/// digit beyond it is refused rather than rounded. `max_units` bounds the result.
pub fn parse_scaled(text: &str, scale: u32, max_units: u128) -> Result<i64, DecimalError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut digits: u128 = 0;
    let mut frac_digits: i64 = 0;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut overflow = false;
    // Digits past 38 significant ones cannot matter for values bounded by `max_units`
    // unless they are non-zero fractional digits, which we still must refuse.
    let mut dropped_nonzero = false;
    let mut dropped_int_digits: i64 = 0;
    while i < bytes.len() {
        match bytes[i] {
            b @ b'0'..=b'9' => {
                seen_digit = true;
                let d = (b - b'0') as u128;
                if !overflow {
                    match digits.checked_mul(10).and_then(|v| v.checked_add(d)) {
                        Some(v) => digits = v,
                        None => overflow = true,
                    }
                }
                if overflow {
                    if seen_point {
                        dropped_nonzero |= d != 0;
                    } else {
                        dropped_int_digits += 1;
                    }
                } else if seen_point {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return Err(DecimalError::NotANumber),
        }
        i += 1;
    }
    if !seen_digit {
        return Err(DecimalError::NotANumber);
    }
    let mut exponent: i64 = 0;
    if i < bytes.len() {
        let exp_text = &text[i + 1..];
        exponent = exp_text
            .parse::<i64>()
            .map_err(|_| DecimalError::NotANumber)?;
        if exponent.abs() > 1000 {
            return Err(if exponent > 0 && digits != 0 {
                DecimalError::TooLarge
            } else {
                DecimalError::NotANumber
            });
        }
    }
    if dropped_int_digits > 0 && digits != 0 {
        return Err(DecimalError::TooLarge);
    }
    // value = digits * 10^(exponent - frac_digits); we want value * 10^scale.
    let mut shift = exponent - frac_digits + scale as i64;
    let mut units = digits;
    if dropped_nonzero {
        return Err(DecimalError::TooManyDecimals(scale));
    }
    while shift < 0 {
        if units % 10 != 0 {
            return Err(DecimalError::TooManyDecimals(scale));
        }
        units /= 10;
        shift += 1;
    }
    while shift > 0 && units != 0 {
        units = units.checked_mul(10).ok_or(DecimalError::TooLarge)?;
        if units > max_units {
            return Err(DecimalError::TooLarge);
        }
        shift -= 1;
    }
    if negative && units != 0 {
        return Err(DecimalError::Negative);
    }
    if units > max_units {
        return Err(DecimalError::TooLarge);
    }
    Ok(units as i64)
}

/// The largest money value the contract allows: 10^15 units, in hundredths.
pub const MAX_MONEY_HUNDREDTHS: u128 = 100_000_000_000_000_000;

/// Parses a money amount (≥ 0, at most two decimals, at most 10^15).
pub fn parse_money(text: &str) -> Result<Hundredths, DecimalError> {
    match plain_money(text.as_bytes()) {
        Some(fen) => Ok(Hundredths(fen)),
        None => parse_scaled(text, 2, MAX_MONEY_HUNDREDTHS).map(Hundredths),
    }
}

/// The form amounts are sent in, `123` or `123.4` or `123.45` (1–15 digits before the
/// point), read in 64 bits: what [`parse_scaled`] gives for it, without its 128-bit general
/// case (a tenth of parsing an event, issue 17). `None` for any other form, which
/// [`parse_scaled`] then reads or refuses.
fn plain_money(b: &[u8]) -> Option<i64> {
    let point = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
    let (int, frac) = (&b[..point], b.get(point + 1..).unwrap_or_default());
    if int.is_empty() || int.len() > 15 || (point < b.len() && !(1..=2).contains(&frac.len())) {
        return None;
    }
    let mut fen: i64 = 0;
    for &c in int.iter().chain(frac) {
        if !c.is_ascii_digit() {
            return None;
        }
        fen = fen * 10 + i64::from(c - b'0');
    }
    // Scaled to hundredths: 15 digits and two decimals stay below 10^17, the bound.
    Some(fen * [100, 10, 1][frac.len()])
}

/// A rate in millionths (`cny_per_unit` has at most six decimals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub i64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }
}

/// The largest exchange rate, in millionths: a rate above a million yuan per unit is not a
/// rate, and the bound keeps products in i128.
pub const MAX_RATE_MICROS: u128 = 1_000_000_000_000;

/// Parses an exchange rate: > 0, at most six decimals.
pub fn parse_rate(text: &str) -> Result<Micros, DecimalError> {
    let units = parse_scaled(text, 6, MAX_RATE_MICROS)?;
    if units == 0 {
        return Err(DecimalError::NotPositive);
    }
    Ok(Micros(units))
}

/// Divides, rounding half to even: the rounding the contract prescribes for currency conversion.
pub fn div_round_half_even(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0 && numerator >= 0);
    // Within 64 bits, the same division without the 128-bit routine, which was most of
    // the cost of a percentage (a record has up to three).
    if let (Ok(n), Ok(d)) = (u64::try_from(numerator), u64::try_from(denominator)) {
        let (q, r) = (n / d, n % d);
        // 2r < 2d ≤ 2^65: compared as r against d − r, which cannot overflow.
        return match r.cmp(&(d - r)) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
        } as i128;
    }
    let q = numerator / denominator;
    let r = numerator % denominator;
    match (2 * r).cmp(&denominator) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Converts yuan to dollars at `rate` yuan per dollar, to the cent, half to even; `None` when
/// the dollars do not fit in an `i64` of cents (only at absurdly small rates: 10^15 yuan needs
/// a rate below 0.011 to get there).
pub fn cny_to_usd(cny: Hundredths, rate: Micros) -> Option<Hundredths> {
    // cents = fen / 100 / (micros / 10^6) * 100 = fen * 10^6 / micros
    let cents = div_round_half_even(cny.0 as i128 * 1_000_000, rate.0 as i128);
    i64::try_from(cents).ok().map(Hundredths)
}

/// A percentage `(numerator / denominator) * 100`, rounded half to even at six decimals,
/// computed on integers so that equal ratios always give equal numbers.
pub fn percent(numerator: i128, denominator: i128) -> f64 {
    debug_assert!(denominator > 0);
    let scaled = numerator * 100_000_000;
    let negative = scaled < 0;
    let magnitude = div_round_half_even(scaled.abs(), denominator);
    let signed = if negative { -magnitude } else { magnitude };
    signed as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_text_reads_exactly_as_display() {
        let mut fens = vec![0, 1, 9, 10, 99, 100, 101, 12_345, 32_239_000_000_000];
        fens.extend([i64::MAX, i64::MIN, i64::MIN + 1, -1, -99, -100, -12_345]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            fens.push((x >> (x % 60)) as i64);
        }
        for fen in fens {
            let h = Hundredths(fen);
            let shown = h.to_string();
            assert_eq!(h.text(&mut [0; Hundredths::TEXT_MAX]), shown, "{fen}");
            assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{shown}\""));
            assert_eq!(
                serde_json::to_string(&Some(h)).unwrap(),
                format!("\"{shown}\"")
            );
        }
        assert_eq!(serde_json::to_string(&None::<Hundredths>).unwrap(), "null");
    }

    #[test]
    fn the_plain_form_reads_as_the_general_parser_reads_it() {
        let mut texts: Vec<String> = [
            "0",
            "00",
            "007",
            "7.5",
            "7.05",
            "7.50",
            "123.",
            ".5",
            "1.234",
            "1.2.3",
            "-5",
            "+5",
            "1e5",
            "1.5e1",
            "",
            ".",
            "999999999999999.99",
            "1000000000000000",
            "12a",
            "1,5",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let int = x >> (x % 64);
            texts.push(match x % 4 {
                0 => format!("{int}"),
                1 => format!("{int}.{}", x % 10),
                2 => format!("{int}.{:02}", x % 100),
                _ => format!("{int}.{:03}", x % 1000),
            });
        }
        for t in &texts {
            if let Some(fen) = plain_money(t.as_bytes()) {
                assert_eq!(Ok(fen), parse_scaled(t, 2, MAX_MONEY_HUNDREDTHS), "{t:?}");
            }
            assert_eq!(
                parse_money(t),
                parse_scaled(t, 2, MAX_MONEY_HUNDREDTHS).map(Hundredths),
                "{t:?}"
            );
        }
        assert_eq!(plain_money(b"123.45"), Some(12_345));
    }

    #[test]
    fn percentages_round_half_to_even_past_64_bits_as_within() {
        for (n, d) in [
            (1i128, 3i128),
            (5, 10),
            (15, 10),
            (25, 10),
            (u64::MAX as i128, 2),
            (u64::MAX as i128 + 7, 2),
            (i128::from(i64::MAX) * 1000, 7),
        ]
        .into_iter()
        .chain((0..10_000u64).map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (i128::from(x >> (i % 64)), i128::from((x % 1_000_003) + 1))
        })) {
            let (q, r) = (n / d, n % d);
            let expected = match (2 * r).cmp(&d) {
                std::cmp::Ordering::Less => q,
                std::cmp::Ordering::Greater => q + 1,
                std::cmp::Ordering::Equal => q + (q & 1),
            };
            assert_eq!(div_round_half_even(n, d), expected, "{n} / {d}");
        }
    }

    #[test]
    fn money_keeps_every_fen_of_large_values() {
        assert_eq!(
            parse_money("123456789012.34").unwrap(),
            Hundredths(12_345_678_901_234)
        );
        assert_eq!(
            Hundredths(12_345_678_901_234).to_string(),
            "123456789012.34"
        );
    }

    #[test]
    fn money_is_written_with_exactly_two_decimals() {
        assert_eq!(Hundredths(0).to_string(), "0.00");
        assert_eq!(Hundredths(5).to_string(), "0.05");
        assert_eq!(
            Hundredths(32_239_000_000_000).to_string(),
            "322390000000.00"
        );
    }

    #[test]
    fn exponent_forms_and_trailing_zeros_are_exact() {
        assert_eq!(
            parse_money("3.2239e11").unwrap(),
            Hundredths(32_239_000_000_000)
        );
        assert_eq!(parse_money("1.500").unwrap(), Hundredths(150));
        assert_eq!(parse_money("12").unwrap(), Hundredths(1200));
        assert_eq!(parse_money("0.1E1").unwrap(), Hundredths(100));
    }

    #[test]
    fn a_third_decimal_is_refused_not_rounded() {
        assert_eq!(parse_money("1.005"), Err(DecimalError::TooManyDecimals(2)));
        assert_eq!(parse_money("1e-3"), Err(DecimalError::TooManyDecimals(2)));
    }

    #[test]
    fn negative_and_oversized_money_is_refused() {
        assert_eq!(parse_money("-1"), Err(DecimalError::Negative));
        assert_eq!(parse_money("-0.00").unwrap(), Hundredths(0));
        assert_eq!(
            parse_money("1000000000000000").unwrap(),
            Hundredths(100_000_000_000_000_000)
        );
        assert_eq!(
            parse_money("1000000000000000.01"),
            Err(DecimalError::TooLarge)
        );
        assert_eq!(parse_money("1e40"), Err(DecimalError::TooLarge));
        assert_eq!(
            parse_money("99999999999999999999999999999999999999999"),
            Err(DecimalError::TooLarge)
        );
    }

    #[test]
    fn malformed_decimals_are_refused() {
        for text in ["", "abc", "1.2.3", ".", "1e", "--1", "1,5", " 1"] {
            assert_eq!(parse_money(text), Err(DecimalError::NotANumber), "{text:?}");
        }
    }

    #[test]
    fn rates_take_six_decimals_and_must_be_positive() {
        assert_eq!(parse_rate("7.298945").unwrap(), Micros(7_298_945));
        assert_eq!(
            parse_rate("7.1234567"),
            Err(DecimalError::TooManyDecimals(6))
        );
        assert_eq!(parse_rate("0"), Err(DecimalError::NotPositive));
    }

    #[test]
    fn conversion_rounds_half_to_even_at_the_cent() {
        // 1.00 yuan at 8 yuan per dollar = 0.125 dollars -> 0.12 (2 is even)
        assert_eq!(
            cny_to_usd(Hundredths(100), Micros(8_000_000)),
            Some(Hundredths(12))
        );
        // 3.00 yuan at 8 = 0.375 -> 0.38
        assert_eq!(
            cny_to_usd(Hundredths(300), Micros(8_000_000)),
            Some(Hundredths(38))
        );
        assert_eq!(
            cny_to_usd(Hundredths(32_239_000_000_000), Micros(7_300_000)),
            Some(Hundredths(4_416_301_369_863))
        );
    }

    #[test]
    fn percentages_are_exact_to_six_decimals() {
        assert_eq!(percent(29, 100), 29.0);
        assert_eq!(percent(1, 3), 33.333333);
        assert_eq!(percent(-1, 8), -12.5);
    }
}
