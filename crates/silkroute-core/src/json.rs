//! JSON written byte for byte as serde_json writes it (compact), without its `Serialize`
//! machinery: the hot paths that write JSON (indicator records, the changelog's canonical
//! events) are a fifth of the engine's work, and serde's per-field escaping checks and
//! `fmt::Display` calls were most of that (issue 17). Tests in `engine::record` and `event` pin
//! each writer to serde_json's bytes.

use serde_json::ser::{CompactFormatter, Formatter};

use crate::money::Hundredths;
use crate::period::Period;

/// 0 for bytes written as they are; otherwise the letter of their short escape, or `u`
/// for a `\u00XX` escape. As serde_json: control bytes, the quote and the backslash are
/// escaped; `/` and DEL are not.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string: quoted, escaped only where a byte needs it.
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Record strings are short and rarely need an escape.
    if bytes.iter().any(|&b| ESCAPE[b as usize] != 0) {
        escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

#[cold]
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xF) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[inline]
pub fn key(out: &mut Vec<u8>, k: &[u8]) {
    out.extend_from_slice(k);
}

#[inline]
pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

#[inline]
pub fn u32(out: &mut Vec<u8>, v: u32) {
    CompactFormatter
        .write_u32(out, v)
        .expect("writing to a Vec cannot fail");
}

#[inline]
pub fn u64(out: &mut Vec<u8>, v: u64) {
    CompactFormatter
        .write_u64(out, v)
        .expect("writing to a Vec cannot fail");
}

#[inline]
pub fn i64(out: &mut Vec<u8>, v: i64) {
    CompactFormatter
        .write_i64(out, v)
        .expect("writing to a Vec cannot fail");
}

/// As serde_json's `serialize_f64`: `null` when not finite, else its own formatting.
#[inline]
pub fn f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        CompactFormatter
            .write_f64(out, v)
            .expect("writing to a Vec cannot fail");
    } else {
        null(out);
    }
}

#[inline]
pub fn opt<T: Copy>(out: &mut Vec<u8>, v: Option<T>, write: fn(&mut Vec<u8>, T)) {
    match v {
        Some(v) => write(out, v),
        None => null(out),
    }
}

/// Money as its quoted decimal text (digits, `-` and `.`: nothing to escape).
#[inline]
pub fn money(out: &mut Vec<u8>, v: Hundredths) {
    // Quotes and digits built on the stack, then copied once.
    let mut buf = [b'"'; Hundredths::TEXT_MAX + 2];
    let start = v.write_text(&mut buf, Hundredths::TEXT_MAX + 1) - 1;
    buf[start] = b'"';
    out.extend_from_slice(&buf[start..]);
}

#[inline]
pub fn period(out: &mut Vec<u8>, p: Period) {
    match p.ascii() {
        Some(b) => {
            out.push(b'"');
            out.extend_from_slice(&b);
            out.push(b'"');
        }
        // Digits and `-` only, as `collect_str` would write them.
        None => string(out, &p.to_string()),
    }
}
