//! HTTP (§4): metrics, probes and the current records of this instance.
//!
//! `/v1/indicators` asks the processing loop for records through a channel rather than keeping
//! a second copy of every record here: the engine derives them on demand between batches.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::engine::record::Record;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;

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
    pub fn matches(&self, r: &Record) -> bool {
        let (region, port) = match r {
            Record::Trade(t) => (Some(&*t.region), None),
            Record::Leaders(l) => (Some(&*l.region), None),
            Record::Freight(f) => (None, Some(&*f.port)),
        };
        self.kind.as_deref().is_none_or(|k| k == r.kind().as_str())
            && self.region.as_deref().is_none_or(|x| region == Some(x))
            && self.port.as_deref().is_none_or(|x| port == Some(x))
            && self
                .period
                .as_deref()
                .is_none_or(|x| r.period().to_string() == x)
    }
}

/// A request for records, answered by the processing loop.
pub struct RecordQuery {
    pub filter: Filter,
    pub reply: oneshot::Sender<Vec<Record>>,
}

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub lifecycle: Arc<Lifecycle>,
    pub queries: mpsc::Sender<RecordQuery>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/indicators", get(indicators))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    if s.lifecycle.is_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not alive: {:?}\n", s.lifecycle.state()),
        )
            .into_response()
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.lifecycle.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {:?}\n", s.lifecycle.state()),
        )
            .into_response()
    }
}

async fn indicators(
    State(s): State<AppState>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return (
            StatusCode::BAD_REQUEST,
            "query parameters are kind, region, port and period\n",
        )
            .into_response();
    };
    let (reply, answer) = oneshot::channel();
    if s.queries.send(RecordQuery { filter, reply }).await.is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the processing loop is not running\n",
        )
            .into_response();
    }
    match answer.await {
        Ok(records) => {
            let body = serde_json::to_vec(&records).expect("records serialize");
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the processing loop stopped\n",
        )
            .into_response(),
    }
}
