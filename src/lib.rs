//! silkroute: official trade statistics in, live indicators out.
//!
//! The crate is the imperative shell around a functional core, the `silkroute-core` crate
//! (`crates/silkroute-core`), which cannot name Kafka, tokio or the clock and is re-exported
//! here under its own module names:
//!
//! - [`money`], [`period`]: exact amounts (integer fen, cents, rate millionths) and months.
//! - [`event`]: raw message bytes → a validated [`event::Event`] or a [`event::Rejection`]
//!   with the contract's reason code. The only place raw input is inspected.
//! - [`engine`]: the pure indicator engine. Cells under the revision rules, and the `trade`,
//!   `trade_leaders` and `freight` records derived from them, emitted only when changed.
//!
//! Built on the core, and kept in this crate because only the shell's commands use them:
//!
//! - [`replay`]: the offline command: JSONL files through the engine to stdout.
//! - [`page`]: the page of one region and period, built from records and rendered as HTML
//!   (live at `/`, offline by [`report`] as one self-contained file).
//!
//! The shell. Public: what the binary, the tests and the benchmarks call.
//!
//! - [`clock`]: the current month, read once per batch and passed into parsing.
//! - [`config`]: layered settings, parsed into types once at start.
//! - [`service`]: start-up, the lifecycle ([`lifecycle`]) and graceful shutdown.
//! - [`http`], [`query`], [`metrics`], [`telemetry`]: probes, records and the page; questions
//!   to the processing loop; Prometheus metrics; logs.
//! - [`publish`], [`demo`]: loading events into Kafka; the embedded-broker demo.
//!
//! Private to the crate (see docs/architecture.md for the life of one message through them):
//!
//! - `pipeline`: the life of one batch (consume → apply and forward to the changelog, or
//!   dead-letter; other instances' changelog records → engine; publish what this instance
//!   owns; commit), exactly or at least once. `batch`: what one batch gathers; `output`: what
//!   it sends and its commit; `delivery`: the producer's delivery reports.
//! - `changelog`: the durable state every instance reads whole; `ownership`: which instance
//!   publishes which records; `restore`: what the indicators topic already holds;
//!   `readiness`: when an instance turns ready.
//! - `kafka`: client settings, topic creation, lag and rebalance metrics.
//! - `retry`: backoff, and the failures only an operator can cure.
//! - `shutdown`: the one stop signal; `timeouts`: every fixed wait, named; `blocking`: the
//!   one door from async code to blocking Kafka calls and sleeps; `packed`: borrowed bytes
//!   copied in chunks for a second thread.

mod batch;
mod blocking;
mod changelog;
pub mod clock;
pub mod config;
mod delivery;
pub mod demo;
pub mod http;
mod kafka;
#[doc(hidden)]
pub use kafka::{consumer_config, producer_config, table_config}; // the backfill bench's same-I/O pipe
pub mod lifecycle;
pub mod metrics;
mod output;
mod ownership;
mod packed;
pub mod page;
mod pipeline;
pub mod publish;
pub mod query;
mod readiness;
pub mod replay;
pub mod report;
mod restore;
mod retry;
pub mod service;
mod shutdown;
pub mod telemetry;
mod timeouts;

pub use silkroute_core::{engine, event, money, period};
