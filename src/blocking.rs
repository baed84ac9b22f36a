//! The one boundary between async code and the shell's blocking work.
//!
//! librdkafka's transactions, flushes, offset commits, metadata and watermark queries hold the
//! calling thread for up to a minute, and so do our pauses between their retries. Every
//! function of ours that makes such a call, or sleeps, takes a [`Blocking`] as its first
//! argument, and a `Blocking` comes from one of three places only:
//!
//! - [`run`], async code's way in: `tokio::task::block_in_place`, which hands this worker's
//!   other tasks (the HTTP probes, `/metrics`) to another thread while the closure blocks.
//! - [`on_pool`]: the same work on tokio's blocking pool, awaited (the start-up credential
//!   check, which must not hold up a stop; a `/metrics` render).
//! - [`Blocking::own_thread`]: a thread of our own that no runtime runs on (the indicators
//!   topic's prefetch; tests).
//!
//! So none of our blocking functions can be called from async code without passing through
//! here (it does not compile), and each place an `async fn` may hold a worker thread reads
//! `blocking::run`. `clippy.toml` disallows `block_in_place`, `spawn_blocking` and
//! `thread::sleep` everywhere else, and CI runs clippy with `-D warnings`. What neither can
//! see: librdkafka's own blocking methods (`flush`, `commit_transaction`, `fetch_watermarks`,
//! ...) are plain methods, so calling one only inside a function that takes a `Blocking`, or
//! inside a `run` closure, is a rule that review keeps. (A processor on a thread of its own behind a channel was
//! the alternative: on this project's two-core target the drain is CPU-bound with both cores
//! busy, docs/performance.md, so it would buy no throughput for a second copy of the loop.)

use std::time::Duration;

/// Leave to block the current thread: held only inside [`run`], [`on_pool`] or on a thread
/// that no async runtime drives (see the module's doc).
pub struct Blocking(());

impl Blocking {
    /// For a thread that is not a tokio worker: one the caller spawned itself, or a test's.
    pub fn own_thread() -> Blocking {
        Blocking(())
    }

    /// Pauses this thread: the only sleep in the shell outside async timers.
    pub fn sleep(&self, pause: Duration) {
        #[allow(clippy::disallowed_methods)] // the one door
        std::thread::sleep(pause)
    }
}

/// Runs blocking work from async code, on this worker thread, after handing its other tasks
/// to another worker. Needs the multi-threaded runtime (the service's; tests that reach it
/// use `flavor = "multi_thread"`).
pub fn run<R>(work: impl FnOnce(&Blocking) -> R) -> R {
    #[allow(clippy::disallowed_methods)] // the one door
    tokio::task::block_in_place(|| work(&Blocking(())))
}

/// Runs blocking work on tokio's blocking pool and waits for it without holding a worker.
pub async fn on_pool<R: Send + 'static>(
    work: impl FnOnce(&Blocking) -> R + Send + 'static,
) -> anyhow::Result<R> {
    #[allow(clippy::disallowed_methods)] // the one door
    let handle = tokio::task::spawn_blocking(move || work(&Blocking(())));
    handle
        .await
        .map_err(|e| anyhow::anyhow!("blocking work failed: {e}"))
}
