//! silkroute: official trade statistics in, live indicators out.
//!
//! The crate is a functional core inside an imperative shell:
//!
//! - [`money`], [`period`]: exact amounts (integer fen, cents, rate millionths) and months.
//! - [`event`]: raw message bytes → a validated [`event::Event`] or a [`event::Rejection`]
//!   with the contract's reason code. The only place raw input is inspected.
//! - [`engine`]: the pure indicator engine. Cells under the revision rules, and the `trade`,
//!   `trade_leaders` and `freight` records derived from them, emitted only when changed.
//! - [`replay`]: the offline command: JSONL files through the engine to stdout.
//! - [`page`]: the page of one region and period, built from records and rendered as HTML
//!   (live at `/`, offline by [`report`] as one self-contained file).
//!
//! The shell around it:
//!
//! - [`config`]: layered settings, checked once at start.
//! - [`pipeline`]: the life of one message (consume → apply and forward to the changelog, or
//!   dead-letter; other instances' changelog records → engine; publish what this instance
//!   owns; commit), exactly or at least once. [`delivery`]: the producer's delivery reports.
//! - [`changelog`]: the durable state every instance reads whole; [`ownership`]: which instance
//!   publishes which records; [`restore`]: what the indicators topic already holds.
//! - [`kafka`]: client settings, topic creation, lag and rebalance metrics.
//! - [`service`]: start-up, the lifecycle ([`lifecycle`]) and graceful shutdown.
//! - [`retry`]: backoff, and the failures only an operator can cure.
//! - [`http`], [`metrics`], [`telemetry`]: probes and records, Prometheus metrics, logs.
//! - [`publish`], [`demo`]: loading events into Kafka; the embedded-broker demo.
//! - [`shutdown`]: the one stop signal; [`query`]: questions to the processing loop.

pub mod changelog;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod engine;
pub mod event;
pub mod http;
pub mod kafka;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod ownership;
pub mod page;
pub mod period;
pub mod pipeline;
pub mod publish;
pub mod query;
pub mod readiness;
pub mod replay;
pub mod report;
pub mod restore;
pub mod retry;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod timeouts;
