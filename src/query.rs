//! Questions to the processing loop from outside it (HTTP, the page, the handle's callers):
//! which records, and where the answer goes. The loop answers between batches; nothing here
//! knows how the question arrived.

use serde::Deserialize;
use tokio::sync::oneshot;

use crate::engine::record::{Record, RecordKind};
use crate::engine::Selection;
use crate::period::Period;

/// Which records `/v1/indicators` returns; every given parameter must match.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub kind: Option<String>,
    pub region: Option<String>,
    pub port: Option<String>,
    pub period: Option<String>,
}

impl Filter {
    /// The engine selection this filter names, or why it names none (HTTP 400).
    pub fn selection(&self) -> Result<Selection<'_>, String> {
        let kind = match self.kind.as_deref() {
            None => None,
            Some(k) => Some(
                RecordKind::ALL
                    .into_iter()
                    .find(|x| x.as_str() == k)
                    .ok_or_else(|| {
                        format!("kind must be trade, trade_leaders or freight, got {k:?}")
                    })?,
            ),
        };
        let period = match self.period.as_deref() {
            None => None,
            Some(p) => {
                Some(Period::parse(p).ok_or_else(|| format!("period must be YYYY-MM, got {p:?}"))?)
            }
        };
        Ok(Selection {
            kind,
            region: self.region.as_deref(),
            port: self.port.as_deref(),
            period,
        })
    }
}

/// A request for records, answered by the processing loop.
pub struct RecordQuery {
    pub filter: Filter,
    pub reply: oneshot::Sender<Vec<Record>>,
}
