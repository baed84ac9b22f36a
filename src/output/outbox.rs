//! A batch's indicator records sent to Kafka from a second thread while the loop's thread
//! derives the next ones: librdkafka's `producev` (its copy of the message, the partitioner,
//! the queue's lock) was 0.74 s of the loop thread's 2.76 s in a drain of the 443k backfill,
//! and the loop's thread is the drain's critical path (docs/performance.md, issue 17).
//!
//! A flush of fewer records than one chunk (a live batch) is sent on the loop's thread, as
//! before: no thread is started for it.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use rdkafka::producer::BaseRecord;

use super::{send, OutputProducer, Unsent};
use crate::blocking::Blocking;

/// Records per chunk: enough that handing one over costs nothing per record, few enough
/// that the thread starts sending soon after the flush does.
const CHUNK_RECORDS: usize = 512;

/// Chunks the flush may run ahead of the sends.
const CHUNKS_AHEAD: usize = 8;

/// Copied records, one after another.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// Per record: where its key ends, where its value ends (in `bytes`), its delivery tag.
    records: Vec<(usize, usize, usize)>,
}

impl Chunk {
    fn each(
        &self,
        mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), Unsent>,
    ) -> Result<(), Unsent> {
        let mut start = 0;
        for &(key_end, end, tag) in &self.records {
            f(&self.bytes[start..key_end], &self.bytes[key_end..end], tag)?;
            start = end;
        }
        Ok(())
    }
}

/// Where one batch's indicator records go: into chunks, sent by a scoped thread once the
/// first chunk is full.
pub(super) struct Outbox<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    b: &'env Blocking,
    producer: &'env OutputProducer,
    topic: &'env str,
    chunk: Chunk,
    chunks: Option<SyncSender<Chunk>>,
    received: Option<Receiver<Chunk>>,
    sending: Option<ScopedJoinHandle<'scope, Result<(), Unsent>>>,
}

impl<'scope, 'env> Outbox<'scope, 'env> {
    pub(super) fn new(
        scope: &'scope Scope<'scope, 'env>,
        b: &'env Blocking,
        producer: &'env OutputProducer,
        topic: &'env str,
    ) -> Self {
        let (chunks, received) = mpsc::sync_channel(CHUNKS_AHEAD);
        Outbox {
            scope,
            b,
            producer,
            topic,
            chunk: Chunk::default(),
            chunks: Some(chunks),
            received: Some(received),
            sending: None,
        }
    }

    /// Queues one record; false once the thread has stopped on a refusal (`finish` says
    /// which), so that the flush stops too.
    pub(super) fn push(&mut self, key: &str, json: &[u8], tag: usize) -> bool {
        let chunk = &mut self.chunk;
        chunk.bytes.extend_from_slice(key.as_bytes());
        let key_end = chunk.bytes.len();
        chunk.bytes.extend_from_slice(json);
        chunk.records.push((key_end, chunk.bytes.len(), tag));
        if chunk.records.len() < CHUNK_RECORDS {
            return true;
        }
        let full = std::mem::take(&mut self.chunk);
        if let Some(received) = self.received.take() {
            let (b, producer, topic) = (self.b, self.producer, self.topic);
            self.sending = Some(self.scope.spawn(move || {
                for chunk in received {
                    chunk.each(|key, json, tag| send_one(b, producer, topic, key, json, tag))?;
                }
                Ok(())
            }));
        }
        let chunks = self.chunks.as_ref().expect("open until finish");
        chunks.send(full).is_ok()
    }

    /// Sends what is left and waits for the thread: every record queued has been handed to
    /// librdkafka, or the first refusal is returned.
    pub(super) fn finish(mut self) -> Result<(), Unsent> {
        let last = std::mem::take(&mut self.chunk);
        drop(self.chunks.take());
        let sent = match self.sending.take() {
            Some(thread) => thread.join().expect("the indicator sender does not panic"),
            None => Ok(()),
        };
        sent?;
        last.each(|key, json, tag| send_one(self.b, self.producer, self.topic, key, json, tag))
    }
}

fn send_one(
    b: &Blocking,
    producer: &OutputProducer,
    topic: &str,
    key: &[u8],
    json: &[u8],
    tag: usize,
) -> Result<(), Unsent> {
    send(
        b,
        producer,
        BaseRecord::with_opaque_to(topic, tag)
            .key(key)
            .payload(json),
    )
}
