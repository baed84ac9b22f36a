//! The changelog's compact form of an event: a version byte, the event's kind, its numbers as
//! fixed-width little-endian integers and its names as length-prefixed UTF-8. The changelog
//! is silkroute's own state, read whole by every instance that starts: its canonical JSON
//! cost 4.2k instructions per record to read back (the scanner and the field checks of input
//! parsing), two thirds of a restore (issue 17). Reading this form takes the numbers as they
//! lie and checks only the rules the engine relies on, which are the input's rules: a value
//! that would not have passed as input does not pass here either.
//!
//! Layout, version 1 (`u16` string lengths, integers little-endian):
//!
//! | kind | bytes after `[1, kind]` |
//! |---|---|
//! | 1 trade | flags `u8` (bits 0–1 flow, 2 basis ytd, 3 `value_usd` present, 4 `member` present), period `u32`, revision `u32`, `value_cny` `i64` fen, [`value_usd` `i64` fen], region, dimension, [member] |
//! | 2 freight | flags `u8` (bit 2 basis ytd), period `u32`, revision `u32`, trains `u32`, port, service |
//! | 3 fx | period `u32`, revision `u32`, `cny_per_unit` `i64` millionths, currency |
//!
//! A period is `year * 12 + month - 1`. A changelog value that starts with `{` is the
//! canonical JSON of earlier versions, and is read as such by [`super::parse_stored`].

use std::borrow::Cow;

use crate::money::{Hundredths, Micros, MAX_MONEY_HUNDREDTHS, MAX_RATE_MICROS};
use crate::period::Period;

use super::{
    check_currency, check_dimension, check_member, check_period, check_port_name, check_region,
    max_trains, Basis, Event, Flow, FreightEvent, FxEvent, ParseRules, TradeEvent, Unreadable,
    TOTAL_DIMENSION,
};

/// The first byte of every compact value; never `{`, which starts the canonical JSON.
pub const VERSION: u8 = 1;

const TRADE: u8 = 1;
const FREIGHT: u8 = 2;
const FX: u8 = 3;

const FLOW_BITS: u8 = 0b11;
const YTD: u8 = 1 << 2;
const USD: u8 = 1 << 3;
const MEMBER: u8 = 1 << 4;

pub(super) fn write(e: &Event<'_>, out: &mut Vec<u8>) {
    out.push(VERSION);
    match e {
        Event::Trade(t) => {
            out.push(TRADE);
            let mut flags = t.flow as u8;
            if t.basis == Basis::Ytd {
                flags |= YTD;
            }
            if t.value_usd.is_some() {
                flags |= USD;
            }
            if t.member.is_some() {
                flags |= MEMBER;
            }
            out.push(flags);
            out.extend_from_slice(&t.period.0.to_le_bytes());
            out.extend_from_slice(&t.revision.to_le_bytes());
            out.extend_from_slice(&t.value_cny.0.to_le_bytes());
            if let Some(usd) = t.value_usd {
                out.extend_from_slice(&usd.0.to_le_bytes());
            }
            text(out, &t.region);
            text(out, &t.dimension);
            if let Some(m) = &t.member {
                text(out, m);
            }
        }
        Event::Freight(f) => {
            out.push(FREIGHT);
            out.push(if f.basis == Basis::Ytd { YTD } else { 0 });
            out.extend_from_slice(&f.period.0.to_le_bytes());
            out.extend_from_slice(&f.revision.to_le_bytes());
            out.extend_from_slice(&f.trains.to_le_bytes());
            text(out, &f.port);
            text(out, &f.service);
        }
        Event::Fx(x) => {
            out.push(FX);
            out.extend_from_slice(&x.period.0.to_le_bytes());
            out.extend_from_slice(&x.revision.to_le_bytes());
            out.extend_from_slice(&x.cny_per_unit.0.to_le_bytes());
            text(out, &x.currency);
        }
    }
}

/// Names are at most 64 characters (256 bytes) once parsed, so their length fits a `u16`.
fn text(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).expect("a parsed name is at most 256 bytes");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads a compact value (its first byte [`VERSION`]) back into the event it was written from.
pub(super) fn read<'a>(bytes: &'a [u8], rules: &ParseRules) -> Result<Event<'a>, Unreadable> {
    // `parse_stored` hands over only values whose first byte is `VERSION`.
    let mut r = Reader { rest: &bytes[1..] };
    let event = match r.u8()? {
        TRADE => Event::Trade(trade(&mut r, rules)?),
        FREIGHT => Event::Freight(freight(&mut r, rules)?),
        FX => Event::Fx(fx(&mut r, rules)?),
        other => return Err(Unreadable(format!("unknown event kind {other}"))),
    };
    if !r.rest.is_empty() {
        return Err(Unreadable(format!(
            "{} bytes after the event",
            r.rest.len()
        )));
    }
    Ok(event)
}

fn trade<'a>(r: &mut Reader<'a>, rules: &ParseRules) -> Result<TradeEvent<'a>, Unreadable> {
    let flags = r.u8()?;
    let flow = match flags & FLOW_BITS {
        0 => Flow::Import,
        1 => Flow::Export,
        2 => Flow::Total,
        _ => return Err(Unreadable("flow bits 3".into())),
    };
    let period = check_period(Period(r.u32()?), rules)?;
    let revision = r.u32()?;
    let value_cny = money(r.i64()?, "value_cny")?;
    let value_usd = if flags & USD != 0 {
        Some(money(r.i64()?, "value_usd")?)
    } else {
        None
    };
    let region = r.text()?;
    check_region(region)?;
    let dimension = r.text()?;
    check_dimension(dimension)?;
    let member = if flags & MEMBER != 0 {
        let m = r.text()?;
        check_member(m)?;
        Some(Cow::Borrowed(m))
    } else {
        None
    };
    if member.is_none() != (dimension == TOTAL_DIMENSION) {
        return Err(Unreadable(
            "a member exactly when the dimension is not \"total\"".into(),
        ));
    }
    Ok(TradeEvent {
        region: Cow::Borrowed(region),
        period,
        flow,
        dimension: Cow::Borrowed(dimension),
        member,
        value_cny,
        value_usd,
        basis: basis(flags),
        revision,
    })
}

fn freight<'a>(r: &mut Reader<'a>, rules: &ParseRules) -> Result<FreightEvent<'a>, Unreadable> {
    let basis = basis(r.u8()?);
    let period = check_period(Period(r.u32()?), rules)?;
    let revision = r.u32()?;
    let trains = r.u32()?;
    if u64::from(trains) > max_trains(basis) {
        return Err(Unreadable(format!("{trains} trains")));
    }
    let port = r.text()?;
    check_port_name("port", port)?;
    let service = r.text()?;
    check_port_name("service", service)?;
    Ok(FreightEvent {
        port: Cow::Borrowed(port),
        service: Cow::Borrowed(service),
        period,
        trains,
        basis,
        revision,
    })
}

fn fx<'a>(r: &mut Reader<'a>, rules: &ParseRules) -> Result<FxEvent<'a>, Unreadable> {
    let period = check_period(Period(r.u32()?), rules)?;
    let revision = r.u32()?;
    let rate = r.i64()?;
    if rate < 1 || rate as u128 > MAX_RATE_MICROS {
        return Err(Unreadable(format!("cny_per_unit of {rate} millionths")));
    }
    let currency = r.text()?;
    check_currency(currency)?;
    Ok(FxEvent {
        currency: Cow::Borrowed(currency),
        period,
        cny_per_unit: Micros(rate),
        revision,
    })
}

fn basis(flags: u8) -> Basis {
    if flags & YTD != 0 {
        Basis::Ytd
    } else {
        Basis::Month
    }
}

fn money(fen: i64, name: &str) -> Result<Hundredths, Unreadable> {
    if fen < 0 || fen as u128 > MAX_MONEY_HUNDREDTHS {
        return Err(Unreadable(format!("{name} of {fen} fen")));
    }
    Ok(Hundredths(fen))
}

/// The bytes not read yet; every read checks that they are there.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unreadable> {
        if self.rest.len() < n {
            return Err(Unreadable("cut short".into()));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Unreadable> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, Unreadable> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Unreadable> {
        self.array().map(u32::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, Unreadable> {
        self.array().map(i64::from_le_bytes)
    }

    fn text(&mut self) -> Result<&'a str, Unreadable> {
        let len = self.array().map(u16::from_le_bytes)?;
        std::str::from_utf8(self.take(usize::from(len))?)
            .map_err(|e| Unreadable(format!("a name of invalid UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rules;
    use super::super::{parse, parse_stored, CANONICAL_MAX_BYTES};
    use super::*;

    /// One of each shape the engine meets: every flag on and off, escapes and non-ASCII in a
    /// member, the largest revision and amounts.
    const EVENTS: [&str; 6] = [
        r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"total","value_cny":123456789012.34}"#,
        r#"{"type":"customs_trade","region":"XJ-1_b","period":"1990-01","flow":"import","dimension":"partner_region","member":"caf\u00e9 \"Z\"/中亚","value_cny":"0","value_usd":"1000000000000000","basis":"ytd","revision":4294967295}"#,
        r#"{"type":"customs_trade","region":"CN","period":"2024-10","flow":"total","dimension":"enterprise_type","member":"private","value_cny":"5.5","source":"ignored","extra":[1]}"#,
        r#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":1000000,"revision":2}"#,
        r#"{"type":"freight_trains","port":"alashankou","service":"china_asia","period":"2024-09","trains":12000000,"basis":"ytd"}"#,
        r#"{"type":"fx_rate","currency":"USD","period":"2024-09","cny_per_unit":"7.1234","revision":1}"#,
    ];

    #[test]
    fn the_compact_form_reads_back_to_the_same_event() {
        for json in EVENTS {
            let e = parse(json.as_bytes(), &rules()).unwrap();
            let compact = e.to_compact();
            assert_eq!(compact[0], VERSION);
            assert!(
                compact.len() < e.to_json().len(),
                "{json}: {} bytes",
                compact.len()
            );
            assert_eq!(parse_stored(&compact, &rules()), Ok(e), "{json}");
        }
    }

    #[test]
    fn canonical_json_from_earlier_versions_is_still_read() {
        for json in EVENTS {
            let e = parse(json.as_bytes(), &rules()).unwrap();
            assert_eq!(parse_stored(&e.to_json(), &rules()), Ok(e), "{json}");
        }
    }

    #[test]
    fn a_damaged_value_is_refused_not_misread() {
        for json in EVENTS {
            let compact = parse(json.as_bytes(), &rules()).unwrap().to_compact();
            for cut in 1..compact.len() {
                assert!(
                    parse_stored(&compact[..cut], &rules()).is_err(),
                    "{json} cut at {cut}"
                );
            }
            let mut longer = compact.clone();
            longer.push(0);
            assert!(parse_stored(&longer, &rules()).is_err(), "{json} + 1 byte");
        }
        let e = parse(EVENTS[0].as_bytes(), &rules()).unwrap();
        let mut unknown_kind = e.to_compact();
        unknown_kind[1] = 9;
        assert!(parse_stored(&unknown_kind, &rules()).is_err());
        let mut bad_flow = e.to_compact();
        bad_flow[2] |= FLOW_BITS;
        assert!(parse_stored(&bad_flow, &rules()).is_err());
        let mut bad_utf8 = e.to_compact();
        let n = bad_utf8.len();
        bad_utf8[n - 1] = 0xff; // the last byte of the dimension, "total"
        assert!(parse_stored(&bad_utf8, &rules()).is_err());
    }

    /// The compact form is checked by the input's rules: an event written with a value the
    /// input would refuse is refused when read back.
    #[test]
    fn what_the_input_refuses_the_changelog_refuses() {
        let Event::Trade(good) = parse(EVENTS[1].as_bytes(), &rules()).unwrap() else {
            panic!()
        };
        let refused =
            |t: TradeEvent<'_>| parse_stored(&Event::Trade(t).to_compact(), &rules()).map(drop);
        assert!(refused(TradeEvent {
            region: "X/J".into(),
            ..good.clone()
        })
        .is_err_and(|u| u.0.contains("region")));
        assert!(refused(TradeEvent {
            period: Period::new(2024, 11),
            ..good.clone()
        })
        .is_err_and(|u| u.0.contains("after the current month")));
        assert!(refused(TradeEvent {
            period: Period::new(1989, 12),
            ..good.clone()
        })
        .is_err());
        assert!(refused(TradeEvent {
            member: Some("m".repeat(65).into()),
            ..good.clone()
        })
        .is_err_and(|u| u.0.contains("member")));
        assert!(refused(TradeEvent {
            dimension: TOTAL_DIMENSION.into(),
            ..good.clone()
        })
        .is_err());
        assert!(refused(TradeEvent {
            value_cny: Hundredths(-1),
            ..good.clone()
        })
        .is_err());
        assert!(refused(TradeEvent {
            value_usd: Some(Hundredths(MAX_MONEY_HUNDREDTHS as i64 + 1)),
            ..good.clone()
        })
        .is_err());
        let Event::Freight(port) = parse(EVENTS[3].as_bytes(), &rules()).unwrap() else {
            panic!()
        };
        let freight =
            |f: FreightEvent<'_>| parse_stored(&Event::Freight(f).to_compact(), &rules()).map(drop);
        assert!(freight(FreightEvent {
            trains: 1_000_001,
            ..port.clone()
        })
        .is_err());
        assert!(freight(FreightEvent {
            service: "China".into(),
            ..port.clone()
        })
        .is_err());
        let Event::Fx(rate) = parse(EVENTS[5].as_bytes(), &rules()).unwrap() else {
            panic!()
        };
        let fx = |x: FxEvent<'_>| parse_stored(&Event::Fx(x).to_compact(), &rules()).map(drop);
        assert!(fx(FxEvent {
            cny_per_unit: Micros(0),
            ..rate.clone()
        })
        .is_err());
        assert!(fx(FxEvent {
            currency: "usd".into(),
            ..rate.clone()
        })
        .is_err());
    }

    #[test]
    fn the_longest_event_fits_the_changelog_bound() {
        let member = "\u{10FFFF}".repeat(64);
        let json = format!(
            r#"{{"type":"customs_trade","region":"{r}","period":"2024-09","flow":"export","dimension":"{d}","member":"{member}","value_cny":"1000000000000000","value_usd":"1000000000000000","basis":"ytd","revision":4294967295}}"#,
            r = "R".repeat(32),
            d = "d".repeat(32),
        );
        let e = parse(json.as_bytes(), &rules()).unwrap();
        let compact = e.to_compact();
        assert!(compact.len() <= CANONICAL_MAX_BYTES, "{}", compact.len());
        assert_eq!(parse_stored(&compact, &rules()), Ok(e));
    }
}
