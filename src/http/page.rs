//! `GET /` and `GET /v1/page` on `http.listen`: the page of the records this instance holds,
//! asked from the processing loop the way `/v1/indicators` asks (three selections per view:
//! every trade record, the chosen region's leaders at the period, every freight record).
//!
//! `/` is the whole document; `/v1/page` (same parameters, `region` and `period`, both
//! optional) the fragment inside it, with an `ETag`, answered `304` when unchanged, which the
//! page's script fetches every few seconds.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::AppState;
use crate::engine::record::Record;
use crate::page::html::{self, Mode};
use crate::page::{resolve, Choice, View};
use crate::period::Period;
use crate::query::{Filter, RecordQuery};

/// The page's query parameters; an empty value is the default.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageQuery {
    pub region: Option<String>,
    pub period: Option<String>,
}

impl PageQuery {
    fn choice(&self) -> Result<Choice, String> {
        let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let period = match given(&self.period) {
            None => None,
            Some(p) => Some(
                Period::parse(&p).ok_or_else(|| format!("period must be YYYY-MM, got {p:?}"))?,
            ),
        };
        Ok(Choice {
            region: given(&self.region),
            period,
        })
    }
}

async fn ask(state: &AppState, filter: Filter) -> Result<Vec<Record>, Response> {
    let unavailable =
        |why: &str| (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
    let (reply, answer) = oneshot::channel();
    state
        .queries
        .send(RecordQuery { filter, reply })
        .await
        .map_err(|_| unavailable("the processing loop is not running"))?;
    answer
        .await
        .map_err(|_| unavailable("the processing loop stopped"))
}

/// The fragment for `choice` and the document's title.
async fn render(state: &AppState, choice: &Choice) -> Result<(String, String), Response> {
    let of_kind = |kind: &str| Filter {
        kind: Some(kind.into()),
        ..Filter::default()
    };
    let trade = ask(state, of_kind("trade")).await?;
    let Some((region, period)) = resolve(&trade, choice) else {
        return Ok((html::waiting(choice.region.as_deref()), "silkroute".into()));
    };
    let leaders = ask(
        state,
        Filter {
            region: Some(region.to_string()),
            period: Some(period.to_string()),
            ..of_kind("trade_leaders")
        },
    )
    .await?;
    let freight = ask(state, of_kind("freight")).await?;
    let view = View::build(&trade, &leaders, &freight, region, period);
    Ok((html::fragment(&view, Mode::Live), html::title(&view)))
}

fn etag(fragment: &str) -> String {
    format!(
        "\"{:016x}\"",
        xxhash_rust::xxh3::xxh3_64(fragment.as_bytes())
    )
}

fn bad_request(why: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
}

// The error is the response to send, as axum handlers return it.
#[allow(clippy::result_large_err)]
fn parse(query: Result<Query<PageQuery>, QueryRejection>) -> Result<Choice, Response> {
    let Ok(Query(query)) = query else {
        return Err(bad_request("query parameters are region and period".into()));
    };
    query.choice().map_err(bad_request)
}

const HTML: &str = "text/html; charset=utf-8";

/// What both routes serve for a query: the fragment, the title and the fragment's ETag.
// The error is the response to send, as axum handlers return it.
#[allow(clippy::result_large_err)]
async fn rendered(
    state: &AppState,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<(String, String, String), Response> {
    let choice = parse(query)?;
    let (fragment, title) = render(state, &choice).await?;
    let tag = etag(&fragment);
    Ok((fragment, title, tag))
}

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    match rendered(&state, query).await {
        Ok((fragment, title, tag)) => {
            let body = html::document(&title, &fragment, &tag, Mode::Live);
            (
                [
                    (header::CONTENT_TYPE, HTML),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
                .into_response()
        }
        Err(r) => r,
    }
}

/// `GET /v1/page`.
pub async fn fragment(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    match rendered(&state, query).await {
        Ok((fragment, _, tag)) => {
            let seen = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == tag);
            let head = [
                (header::CONTENT_TYPE, HTML.to_string()),
                (header::CACHE_CONTROL, "no-cache".to_string()),
                (header::ETAG, tag),
            ];
            if seen {
                (StatusCode::NOT_MODIFIED, head).into_response()
            } else {
                (head, fragment).into_response()
            }
        }
        Err(r) => r,
    }
}
