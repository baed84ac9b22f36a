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

pub mod config;
pub mod engine;
pub mod event;
pub mod money;
pub mod period;
pub mod replay;
