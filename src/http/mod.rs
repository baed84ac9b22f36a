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
use tokio::sync::{mpsc, oneshot};

use crate::blocking;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::query::{Filter, RecordQuery};

mod page;

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
        .route("/", get(page::page))
        .route("/v1/page", get(page::fragment))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    // Off the runtime's threads: a render waits for a batch's flush to let go of the gauges'
    // records (up to a second for a takeover's), and then sets the gauges of every series
    // that moved, while /readyz and /healthz must answer at once.
    let metrics = s.metrics.clone();
    let body = blocking::on_pool(move |_| metrics.render())
        .await
        .expect("rendering the metrics does not panic");
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
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

/// Ready once caught up, and not while an operator error persists or processing has stalled
/// with lag (a loop that makes no progress must not look healthy).
async fn readyz(State(s): State<AppState>) -> Response {
    let unready = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    if !s.lifecycle.is_ready() {
        return unready(format!("not ready: {:?}\n", s.lifecycle.state()));
    }
    if s.metrics.operator_error_active() {
        return unready(
            "not ready: an operator error persists (silkroute_operator_error)\n".into(),
        );
    }
    if s.metrics.stalled() {
        return unready(format!(
            "not ready: no progress for {} s with consumer lag\n",
            s.metrics.stalled_for().as_secs()
        ));
    }
    (StatusCode::OK, "ready\n").into_response()
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
    if let Err(why) = filter.selection() {
        return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
    }
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
