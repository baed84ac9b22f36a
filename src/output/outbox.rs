//! A batch's records sent to Kafka from a second thread while the loop's thread derives the
//! indicator records: librdkafka's `producev` (its copy of the message, the partitioner, the
//! queue's lock) was 0.74 s of the loop thread's 2.76 s in a drain of the 443k backfill, and
//! the loop's thread is the drain's critical path (docs/performance.md, issue 17).
//!
//! The thread first sends the batch's changelog records (owned by the batch: nothing to
//! copy), then the indicator records the flush copies into chunks, in order. It starts at
//! once when the batch forwards at least a chunk's worth of events, otherwise when the first
//! chunk of indicator records fills. A smaller batch (a live one) is sent on the loop's
//! thread, as before, and no thread is started for it. Its indicator records are still copied
//! first, since a flush cannot say beforehand how many records it will hand over: about 70 ns
//! a record (0.05 s of the loop thread's 2.05 s in a drain), where sending every flush's first
//! chunk directly would put about 7 % of a drain's sends (one chunk of some fourteen per
//! batch) back on the loop's thread.

use std::sync::mpsc::{self, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use rdkafka::producer::BaseRecord;

use super::{send, send_forwards, OutputProducer, Unsent};
use crate::batch::Forward;
use crate::blocking::Blocking;
use crate::packed::Packed;

/// Records per chunk: enough that handing one over costs nothing per record, few enough
/// that the thread starts sending soon after the flush does. Also the fewest changelog
/// records worth starting the thread for.
const CHUNK_RECORDS: usize = 512;

/// Chunks the flush may run ahead of the sends.
const CHUNKS_AHEAD: usize = 8;

/// Copied records: per record, its key and JSON together, with the key's length and the
/// record's delivery tag.
type Chunk = Packed<(usize, usize)>;

/// Where one batch's records go: its changelog records, then its indicator records in
/// chunks, sent by a scoped thread once there are enough of them.
pub(super) struct Outbox<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    b: &'env Blocking,
    producer: &'env OutputProducer,
    topic: &'env str,
    chunk: Chunk,
    /// To the thread, once started: a batch that sends few records (a live one, an idle
    /// tick's empty one) makes no channel.
    chunks: Option<SyncSender<Chunk>>,
    sending: Option<ScopedJoinHandle<'scope, Result<(), Unsent>>>,
}

impl<'scope, 'env> Outbox<'scope, 'env> {
    pub(super) fn new(
        scope: &'scope Scope<'scope, 'env>,
        b: &'env Blocking,
        producer: &'env OutputProducer,
        topic: &'env str,
    ) -> Self {
        Outbox {
            scope,
            b,
            producer,
            topic,
            chunk: Chunk::with_capacity(CHUNK_RECORDS),
            chunks: None,
            sending: None,
        }
    }

    /// Sends the batch's changelog records: from the thread, started now, when there are a
    /// chunk's worth; here otherwise.
    pub(super) fn forward(
        &mut self,
        forwards: &'env [Forward],
        topic: &'env str,
        session: u64,
    ) -> Result<(), Unsent> {
        if forwards.len() < CHUNK_RECORDS {
            return send_forwards(self.b, self.producer, topic, session, forwards);
        }
        self.start(move |b, producer| send_forwards(b, producer, topic, session, forwards));
        Ok(())
    }

    /// Queues one indicator record; false once the thread has stopped on a refusal (`finish`
    /// says which), so that the flush stops too.
    pub(super) fn push(&mut self, key: &str, json: &[u8], tag: usize) -> bool {
        self.chunk.push(&[key.as_bytes(), json], (key.len(), tag));
        if self.chunk.len() < CHUNK_RECORDS {
            return true;
        }
        let full = self.chunk.take();
        if self.sending.is_none() {
            self.start(|_, _| Ok(()));
        }
        let chunks = self.chunks.as_ref().expect("made by start");
        chunks.send(full).is_ok()
    }

    /// Starts the thread: `first`, then every chunk handed over, until the first refusal.
    fn start(
        &mut self,
        first: impl FnOnce(&Blocking, &OutputProducer) -> Result<(), Unsent> + Send + 'scope,
    ) {
        debug_assert!(self.sending.is_none(), "the thread starts once");
        let (chunks, received) = mpsc::sync_channel(CHUNKS_AHEAD);
        self.chunks = Some(chunks);
        let (b, producer, topic) = (self.b, self.producer, self.topic);
        self.sending = Some(self.scope.spawn(move || {
            first(b, producer)?;
            received
                .iter()
                .try_for_each(|chunk| send_all(b, producer, topic, &chunk))
        }));
    }

    /// Sends what is left and waits for the thread: every record forwarded or queued has been
    /// handed to librdkafka, or the first refusal is returned.
    pub(super) fn finish(mut self) -> Result<(), Unsent> {
        drop(self.chunks.take());
        let sent = match self.sending.take() {
            Some(thread) => thread.join().expect("the outbox's sender does not panic"),
            None => Ok(()),
        };
        sent?;
        send_all(self.b, self.producer, self.topic, &self.chunk)
    }
}

fn send_all(
    b: &Blocking,
    producer: &OutputProducer,
    topic: &str,
    chunk: &Chunk,
) -> Result<(), Unsent> {
    chunk.iter().try_for_each(|(record, &(key_len, tag))| {
        let (key, json) = record.split_at(key_len);
        send(
            b,
            producer,
            BaseRecord::with_opaque_to(topic, tag)
                .key(key)
                .payload(json),
        )
    })
}
