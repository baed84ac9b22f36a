//! How figures and names read on the page: amounts in billions to two decimals (integer
//! arithmetic, so an amount reads as the bulletin prints it), signed growth to one decimal,
//! and plain-language names for the codes the contract uses.

use crate::money::Hundredths;
use crate::period::Period;

/// `322.39 bn`, `537.10 m`, `12,345.67`: an amount in hundredths (fen or cents), rounded half
/// away from zero at the unit shown.
pub fn amount(v: Hundredths) -> String {
    let abs = v.0.unsigned_abs();
    let sign = if v.0 < 0 { "-" } else { "" };
    // Hundredths per 0.01 of the unit shown.
    let (step, unit) = if abs >= 100_000_000_000 {
        (1_000_000_000, " bn")
    } else if abs >= 100_000_000 {
        (1_000_000, " m")
    } else {
        (1, "")
    };
    let scaled = (abs + step / 2) / step;
    format!("{sign}{}.{:02}{unit}", grouped(scaled / 100), scaled % 100)
}

/// `322.39 bn yuan`.
pub fn yuan(v: Hundredths) -> String {
    format!("{} yuan", amount(v))
}

/// `$44.17 bn`.
pub fn dollars(v: Hundredths) -> String {
    let text = amount(v);
    match text.strip_prefix('-') {
        Some(rest) => format!("-${rest}"),
        None => format!("${text}"),
    }
}

/// `6,269`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `6,269`, `-12`.
pub fn count(n: i64) -> String {
    let text = grouped(n.unsigned_abs());
    if n < 0 {
        format!("-{text}")
    } else {
        text
    }
}

/// `+29.0 %`, `-3.2 %`; `n/a` when the growth cannot be computed.
pub fn growth(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let text = format!("{v:+.1} %");
            // -0.04 rounds to "-0.0": no sign on a zero.
            if text == "-0.0 %" || text == "+0.0 %" {
                "0.0 %".into()
            } else {
                text
            }
        }
        _ => "n/a".into(),
    }
}

/// `92.4 %`; `n/a` when unknown.
pub fn share(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1} %"),
        _ => "n/a".into(),
    }
}

pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub fn short_month(month: u32) -> &'static str {
    &MONTHS[(month - 1) as usize][..3]
}

/// `January–September 2024` (the year-to-date window of `p`).
pub fn ytd_window(p: Period) -> String {
    match p.month() {
        1 => format!("January {}", p.year()),
        m => format!("January–{} {}", MONTHS[(m - 1) as usize], p.year()),
    }
}

/// `September 2024`.
pub fn month_name(p: Period) -> String {
    format!("{} {}", MONTHS[(p.month() - 1) as usize], p.year())
}

/// A province's name from its code (the codes of the sample, GB/T 2260 letters); the code
/// itself for any other region.
pub fn region(code: &str) -> String {
    let name = match code {
        "CN" => "China (national)",
        "BJ" => "Beijing",
        "TJ" => "Tianjin",
        "HE" => "Hebei",
        "SX" => "Shanxi",
        "NM" => "Inner Mongolia",
        "LN" => "Liaoning",
        "JL" => "Jilin",
        "HL" => "Heilongjiang",
        "SH" => "Shanghai",
        "JS" => "Jiangsu",
        "ZJ" => "Zhejiang",
        "AH" => "Anhui",
        "FJ" => "Fujian",
        "JX" => "Jiangxi",
        "SD" => "Shandong",
        "HA" => "Henan",
        "HB" => "Hubei",
        "HN" => "Hunan",
        "GD" => "Guangdong",
        "GX" => "Guangxi",
        "HI" => "Hainan",
        "CQ" => "Chongqing",
        "SC" => "Sichuan",
        "GZ" => "Guizhou",
        "YN" => "Yunnan",
        "XZ" => "Xizang",
        "SN" => "Shaanxi",
        "GS" => "Gansu",
        "QH" => "Qinghai",
        "NX" => "Ningxia",
        "XJ" => "Xinjiang",
        other => return other.to_string(),
    };
    name.to_string()
}

/// A breakdown member's name: the members the sample uses by name, any other code with its
/// underscores as spaces.
pub fn member(code: &str) -> String {
    let name = match code {
        "belt_and_road" => "Belt and Road partners",
        "other" => "Other",
        "central_asia" => "Central Asia",
        "russia" => "Russia",
        "central_eastern_europe" => "Central and Eastern Europe",
        "european_union" => "European Union",
        "middle_east" => "Middle East",
        "asean" => "ASEAN",
        "africa" => "Africa",
        "latin_america" => "Latin America",
        "private" => "Private enterprises",
        "state_owned" => "State-owned enterprises",
        "foreign_invested" => "Foreign-invested enterprises",
        "labour_intensive" => "Labour-intensive products",
        "electromechanical" => "Electromechanical products",
        "agricultural" => "Agricultural products",
        "steel" => "Steel",
        "bulk_commodities" => "Bulk commodities",
        other => return humane(other),
    };
    name.to_string()
}

/// `by partner group`.
pub fn dimension(code: &str) -> String {
    humane(code).to_lowercase()
}

/// `imports and exports`, `exports`, `imports`.
pub fn flow(code: &str) -> &str {
    match code {
        "total" => "imports and exports",
        "export" => "exports",
        "import" => "imports",
        other => other,
    }
}

pub fn port(code: &str) -> String {
    humane(code)
}

pub fn service(code: &str) -> String {
    match code {
        "china_europe" => "China–Europe".into(),
        other => humane(other),
    }
}

/// `state_owned` → `State owned`.
fn humane(code: &str) -> String {
    let text = code.replace('_', " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// Text made safe for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_the_bulletin_prints_them() {
        assert_eq!(yuan(Hundredths(32_239_000_000_000)), "322.39 bn yuan");
        assert_eq!(dollars(Hundredths(4_416_999_999_999)), "$44.17 bn");
        assert_eq!(amount(Hundredths(187_000_000_000)), "1.87 bn");
        assert_eq!(amount(Hundredths(53_710_000_000)), "537.10 m");
        assert_eq!(amount(Hundredths(1_234_567)), "12,345.67");
        assert_eq!(amount(Hundredths(-150_000_000_000_000)), "-1,500.00 bn");
        assert_eq!(dollars(Hundredths(-5)), "-$0.05");
        // Half a hundredth of a billion rounds up.
        assert_eq!(amount(Hundredths(100_500_000_000)), "1.01 bn");
        assert_eq!(amount(Hundredths(100_499_999_999)), "1.00 bn");
    }

    #[test]
    fn growth_carries_its_sign_and_zero_none() {
        assert_eq!(growth(Some(29.0)), "+29.0 %");
        assert_eq!(growth(Some(437.0999)), "+437.1 %");
        assert_eq!(growth(Some(-3.25)), "-3.2 %");
        assert_eq!(growth(Some(-0.04)), "0.0 %");
        assert_eq!(growth(None), "n/a");
        assert_eq!(share(Some(92.44)), "92.4 %");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(6269), "6,269");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn windows_and_names() {
        assert_eq!(ytd_window(Period::new(2024, 9)), "January–September 2024");
        assert_eq!(ytd_window(Period::new(2024, 1)), "January 2024");
        assert_eq!(member("some_new_member"), "Some new member");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
