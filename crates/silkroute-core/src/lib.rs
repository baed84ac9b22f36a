//! silkroute's functional core: message bytes in, validated events, changed indicator records
//! out. Pure synchronous Rust: this crate's dependencies are serde, serde_json, thiserror and
//! two hashers, so it cannot reach Kafka, tokio, metrics, logs or the clock; the service crate
//! (`silkroute`) is the shell that does all I/O around it.
//!
//! - [`money`], [`period`]: exact amounts (integer fen, cents, rate millionths) and months.
//! - [`event`]: raw message bytes → a validated [`event::Event`] or a [`event::Rejection`]
//!   with the contract's reason code. The only place raw input is inspected.
//! - [`engine`]: the indicator engine. Cells under the revision rules, and the `trade`,
//!   `trade_leaders` and `freight` records derived from them, emitted only when changed.

pub mod engine;
pub mod event;
mod json;
pub mod money;
pub mod period;
