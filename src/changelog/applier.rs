//! A restore's values applied on a thread of their own, while the reader's task polls the
//! next ones: librdkafka's work per message (about 1.1k instructions: popping its queue,
//! destroying the message) and ours (reading the value 0.8k, applying it 0.5k) then run on
//! both cores instead of one after the other (issue 17, docs/performance.md).
//!
//! Only the session's first read goes this way: nothing in it can be this session's own, so
//! no value needs its message's headers, and the values arrive in chunks of copied bytes.

use std::sync::mpsc::{self, SyncSender, TrySendError};

use anyhow::Context as _;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::oneshot;

use crate::blocking::{self, Blocking};
use crate::engine::Engine;
use crate::event::ParseRules;
use crate::packed::Packed;

/// Values per chunk: large enough that handing a chunk over costs nothing per value, small
/// enough that the thread starts applying at once.
const CHUNK_VALUES: usize = 2048;

/// Chunks in flight: the reader runs at most this far ahead of the thread, so a restore
/// holds at most six chunks of copies (these, the one being filled, the one being applied)
/// whatever the changelog's size.
const CHUNKS_AHEAD: usize = 4;

/// Copied values, each with its partition and offset.
type Chunk = Packed<(i32, i64)>;

/// The engine, on its thread for the length of a restore.
pub(super) struct Applier {
    chunk: Chunk,
    chunks: SyncSender<Chunk>,
    engine: oneshot::Receiver<Engine>,
}

impl Applier {
    /// Moves `engine` to a thread that applies what [`Applier::take`] hands it; back with
    /// [`Applier::finish`]. Dropped unfinished, the thread ends with the engine.
    pub(super) fn start(mut engine: Engine, rules: ParseRules) -> anyhow::Result<Applier> {
        let (chunks, received) = mpsc::sync_channel::<Chunk>(CHUNKS_AHEAD);
        let (done, engine_back) = oneshot::channel();
        std::thread::Builder::new()
            .name("silkroute-restore".into())
            .spawn(move || {
                for chunk in received {
                    for (value, &(partition, offset)) in chunk.iter() {
                        super::apply_value(
                            &mut engine,
                            &rules,
                            value,
                            partition,
                            offset,
                            |_, _| (),
                        );
                    }
                }
                let _ = done.send(engine);
            })
            .context("starting the restore's thread")?;
        Ok(Applier {
            chunk: Chunk::with_capacity(CHUNK_VALUES),
            chunks,
            engine: engine_back,
        })
    }

    /// Copies `m`'s value for the thread.
    pub(super) fn take(&mut self, m: &BorrowedMessage<'_>) {
        self.take_value(m.payload().unwrap_or_default(), m.partition(), m.offset());
    }

    fn take_value(&mut self, value: &[u8], partition: i32, offset: i64) {
        self.chunk.push(&[value], (partition, offset));
        if self.chunk.len() == CHUNK_VALUES {
            self.hand_over();
        }
    }

    /// Sends the chunk; waits (off the runtime's worker) only while the thread is behind.
    fn hand_over(&mut self) {
        let chunk = self.chunk.take();
        if let Err(TrySendError::Full(chunk)) = self.chunks.try_send(chunk) {
            // A closed channel (the thread panicked) is reported by `finish`.
            let _ = blocking::run(|_: &Blocking| self.chunks.send(chunk));
        }
    }

    /// The engine, once every value taken is applied.
    pub(super) async fn finish(mut self) -> anyhow::Result<Engine> {
        if !self.chunk.is_empty() {
            self.hand_over();
        }
        drop(self.chunks);
        self.engine
            .await
            .map_err(|_| anyhow::anyhow!("the restore's thread ended without its engine"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::event;
    use crate::period::Period;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_thread_applies_every_value_in_order_across_chunks_and_skips_an_unreadable_one() {
        let rules = ParseRules {
            max_message_bytes: 4096,
            current_month: Period::new(2030, 1),
        };
        let settings = Settings::load_from(None, Vec::<(String, String)>::new()).unwrap();
        let sample = [
            include_str!("../../data/sample/trade.jsonl"),
            include_str!("../../data/releases/trade.jsonl"),
            include_str!("../../data/sample/freight.jsonl"),
            include_str!("../../data/sample/fx.jsonl"),
        ]
        .concat();
        // Every event, an unreadable value, then every trade event again with the same
        // revision and another amount: the same revision later in the log replaces the
        // earlier, so the records show whether the values were applied in their order.
        let mut values = Vec::new();
        let mut restated = Vec::new();
        for line in sample.lines().filter(|l| !l.trim().is_empty()) {
            values.push(event::parse(line.as_bytes(), &rules).unwrap().to_compact());
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["type"] == "customs_trade" {
                v["value_cny"] = "1234.56".into();
                let again = serde_json::to_vec(&v).unwrap();
                restated.push(event::parse(&again, &rules).unwrap().to_compact());
            }
        }
        values.push(b"{not a changelog value".to_vec());
        values.extend(restated);
        assert!(
            values.len() > 2 * CHUNK_VALUES,
            "several chunks: {}",
            values.len()
        );

        let mut direct = Engine::new(settings.engine());
        for v in &values {
            if let Ok(e) = event::parse_stored(v, &rules) {
                direct.apply(&e);
            }
        }
        let mut applier = Applier::start(Engine::new(settings.engine()), rules).unwrap();
        for (offset, v) in values.iter().enumerate() {
            applier.take_value(v, 0, offset as i64);
        }
        let mut threaded = applier.finish().await.unwrap();

        assert_eq!(threaded.cells(), direct.cells());
        assert!(threaded.cells() > 0);
        let key = |o: &silkroute_core::engine::record::Output| o.key.clone();
        let (mut a, mut b) = (threaded.flush(), direct.flush());
        a.sort_by_key(key);
        b.sort_by_key(key);
        assert_eq!(a.len(), b.len());
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.key == y.key && x.json == y.json));
    }
}
