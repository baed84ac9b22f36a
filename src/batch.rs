//! One batch as the pipeline gathers it: the input offsets taken, the valid events on their
//! way to the changelog, the dead letters (cut to the contract's limits) and the receipt times
//! whose acknowledgement ends their processing. Plain data: built by the pipeline, sent by
//! [`crate::output`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::DEAD_LETTER_KEY_MAX_BYTES;
use crate::event::Rejection;
use crate::ownership::Owned;

/// A dead letter kept until Kafka acknowledges it, so that it can be sent again: key and
/// value as the message had them, cut to their limits.
pub(crate) struct DeadLetter {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    /// The original value, when the key or the value was cut.
    pub(crate) original: Option<Original>,
    pub(crate) rejection: Rejection,
    /// Index of its input partition in [`Batch::offsets`].
    pub(crate) source: usize,
    pub(crate) offset: i64,
}

/// What a cut dead letter tells of the value it came from.
pub(crate) struct Original {
    pub(crate) bytes: usize,
    pub(crate) sha256: String,
}

/// The longest `silkroute.error.detail` (and logged detail): one line, whatever the input.
pub(crate) const DETAIL_MAX_BYTES: usize = 256;

/// Input messages (topic, partition, offset) whose dead letter Kafka refused as too large
/// (an output topic whose `max.message.bytes` is below what the producer is sized for): the
/// batch is processed again, and their dead letters carry their headers only. Outlives a
/// session, since the retry is a restore.
pub type HeadersOnly = Arc<std::sync::Mutex<std::collections::HashSet<(String, i32, i64)>>>;

/// `detail` as one line of at most [`DETAIL_MAX_BYTES`]: control characters (line breaks
/// included) become spaces, and a longer one is cut at a character boundary.
pub(crate) fn one_line(detail: &str) -> String {
    let mut line = String::with_capacity(detail.len().min(DETAIL_MAX_BYTES));
    for c in detail.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if line.len() + c.len_utf8() > DETAIL_MAX_BYTES - '…'.len_utf8() {
            line.push('…');
            break;
        }
        line.push(c);
    }
    line
}

/// A dead letter's key and value as the contract keeps them: the value cut to `value_max`
/// bytes and the key to [`DEAD_LETTER_KEY_MAX_BYTES`], with the original value's length and
/// SHA-256 when either was cut. A null stays null.
pub(crate) fn cut(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    value_max: usize,
) -> (Option<Vec<u8>>, Option<Vec<u8>>, Option<Original>) {
    let key_cut = key.is_some_and(|k| k.len() > DEAD_LETTER_KEY_MAX_BYTES);
    let value_cut = value.is_some_and(|v| v.len() > value_max);
    let original = (key_cut || value_cut).then(|| {
        let v = value.unwrap_or_default();
        Original {
            bytes: v.len(),
            sha256: Sha256::digest(v)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    });
    (
        key.map(|k| k[..k.len().min(DEAD_LETTER_KEY_MAX_BYTES)].to_vec()),
        value.map(|v| v[..v.len().min(value_max)].to_vec()),
        original,
    )
}

/// A valid event on its way to the changelog.
pub(crate) struct Forward {
    pub(crate) key: String,
    pub(crate) partition: i32,
    pub(crate) value: Vec<u8>,
    /// Wall-clock milliseconds at receipt, the changelog record's timestamp: the start of the
    /// processing-duration measurement.
    pub(crate) received_ms: i64,
}

/// Highest offset taken from one (topic, partition) in a batch, with the topic's consumed
/// counter, so that neither costs an allocation or a label lookup per message.
pub(crate) struct Taken {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) consumed: prometheus::IntCounter,
}

#[derive(Default)]
pub(crate) struct Batch {
    /// Per input (topic, partition): a batch spans a handful, so a short list beats a map
    /// keyed by an owned topic name.
    pub(crate) offsets: Vec<Taken>,
    pub(crate) forwards: Vec<Forward>,
    pub(crate) dead: Vec<DeadLetter>,
    /// Changelog records applied.
    pub(crate) cells: usize,
    /// Receipt times (wall-clock ms) of the dead letters and of the changelog records whose
    /// indicators are ours: the batch's acknowledgement ends their processing.
    pub(crate) received_ms: Vec<i64>,
}

impl Batch {
    pub(crate) fn inputs(&self) -> usize {
        self.forwards.len() + self.dead.len()
    }

    /// Drops the offsets and dead letters of input partitions this instance no longer holds:
    /// their new holder consumes them again from the last commit. Their events are forwarded
    /// all the same: the engine applied them already, and a second copy in the changelog (the
    /// new holder's) is a duplicate that every reader ignores.
    pub(crate) fn keep_held(&mut self, owned: &Owned) {
        let held: Vec<bool> = self
            .offsets
            .iter()
            .map(|t| owned.holds(&t.topic, t.partition))
            .collect();
        if held.iter().all(|&h| h) {
            return;
        }
        let mut index = Vec::with_capacity(held.len());
        let mut kept = 0;
        for &h in &held {
            index.push(kept);
            kept += usize::from(h);
        }
        self.dead.retain(|d| held[d.source]);
        for d in &mut self.dead {
            d.source = index[d.source];
        }
        let mut i = 0;
        self.offsets.retain(|_| {
            i += 1;
            held[i - 1]
        });
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_and_a_long_key_are_cut_with_the_originals_length_and_sha256() {
        let value = vec![b'v'; 5000];
        let key = vec![b'k'; 2000];
        let (k, v, original) = cut(Some(&key), Some(&value), 1000);
        assert_eq!(k.as_deref(), Some(&key[..DEAD_LETTER_KEY_MAX_BYTES]));
        assert_eq!(v.as_deref(), Some(&value[..1000]));
        let original = original.expect("cut");
        assert_eq!(original.bytes, 5000);
        // `printf 'v%.0s' $(seq 1 5000) | sha256sum`, outside the code under test.
        assert_eq!(
            original.sha256,
            "917a40db715a90af25bfa24eec0d26fb090c9d89104a2e7abc9bc2900f670ddd"
        );
    }

    #[test]
    fn what_fits_is_kept_whole_and_a_null_stays_null() {
        let (k, v, original) = cut(Some(b"XJ"), None, 1000);
        assert_eq!(k.as_deref(), Some(&b"XJ"[..]));
        assert_eq!(v, None);
        assert!(original.is_none());
        let (_, v, original) = cut(None, Some(&[b'x'; 1000]), 1000);
        assert_eq!(v.map(|v| v.len()), Some(1000));
        assert!(original.is_none());
    }

    #[test]
    fn a_detail_is_one_bounded_line() {
        let detail = format!("line one\nline two\r\t{}", "é".repeat(500));
        let line = one_line(&detail);
        assert!(!line.contains(['\n', '\r', '\t']), "{line}");
        assert!(line.len() <= DETAIL_MAX_BYTES, "{}", line.len());
        assert!(line.starts_with("line one line two"));
        assert!(line.ends_with('…'));
        assert_eq!(one_line("short"), "short");
    }
}
