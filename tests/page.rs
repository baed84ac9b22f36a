//! The page and `silkroute report`: the report made from `data/sample/` shows the bulletin's
//! 13 statements as they were published (typed here from shared/bulletin.md, not taken from
//! the engine), needs nothing but itself, and fails as `replay` does; the live page's
//! routes answer from the records of a running processing loop and change when they do.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use tokio::sync::mpsc;

use silkroute::clock;
use silkroute::engine::{Engine, EngineSettings};
use silkroute::event::{self, ParseRules};
use silkroute::http::{self, AppState};
use silkroute::lifecycle::Lifecycle;
use silkroute::metrics::Metrics;
use silkroute::page::Choice;
use silkroute::period::Period;
use silkroute::query::RecordQuery;
use silkroute::{replay, report};

fn sample_files() -> Vec<PathBuf> {
    ["freight.jsonl", "fx.jsonl", "trade.jsonl"]
        .iter()
        .map(|f| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("data/sample")
                .join(f)
        })
        .collect()
}

fn rules() -> ParseRules {
    ParseRules {
        max_message_bytes: 1_048_576,
        current_month: clock::current_utc_month(),
    }
}

/// `report::run` over the sample for `choice`: (HTML, stderr) or the error.
fn run_report(files: &[PathBuf], choice: &Choice) -> (anyhow::Result<String>, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = report::run(
        files,
        EngineSettings::default(),
        &rules(),
        choice,
        &mut out,
        &mut err,
    );
    (
        result.map(|_| String::from_utf8(out).expect("UTF-8 HTML")),
        String::from_utf8(err).unwrap(),
    )
}

fn sample_report() -> &'static str {
    static REPORT: OnceLock<String> = OnceLock::new();
    REPORT.get_or_init(|| {
        let (html, _) = run_report(&sample_files(), &Choice::default());
        html.expect("the sample makes a report")
    })
}

/// The visible text of the element that starts at the first `marker` at or after `from`,
/// up to the first `end` after it: tags removed, entities decoded, spaces collapsed.
fn text_at(html: &str, from: usize, marker: &str, end: &str) -> String {
    let start = from
        + html[from..]
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in the page"));
    let stop = start + html[start..].find(end).expect("element closes");
    let mut text = String::new();
    // A marker inside a tag (an attribute) starts in that tag.
    let mut in_tag = !marker.starts_with('<');
    for c in html[start..stop].chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn figure(html: &str, name: &str) -> String {
    text_at(html, 0, &format!("data-figure=\"{name}\""), "</span>")
}

/// The row of `member` in the breakdown table of `flow/dimension`.
fn member_row(html: &str, breakdown: &str, member: &str) -> String {
    let block = html
        .find(&format!("data-breakdown=\"{breakdown}\""))
        .unwrap_or_else(|| panic!("no breakdown {breakdown}"));
    text_at(
        html,
        block,
        &format!("<tr data-member=\"{member}\""),
        "</tr>",
    )
}

/// The items of a leaders list, in order.
fn leaders(html: &str, list: &str) -> Vec<String> {
    let text = text_at(html, 0, &format!("data-leaders=\"{list}\""), "</ol>");
    text.split(" %")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| format!("{s} %"))
        .collect()
}

fn contains_all(text: &str, figures: &[&str]) {
    for f in figures {
        assert!(text.contains(f), "{f:?} not in {text:?}");
    }
}

#[test]
fn the_report_of_the_sample_shows_the_thirteen_statements_as_published() {
    let html = sample_report();
    // By default: Xinjiang (the region with the most series), January–September 2024.
    assert!(
        html.contains("<title>Foreign trade of Xinjiang, January–September 2024</title>"),
        "{}",
        &html[..400]
    );
    // 1–4: 322.39 billion yuan, $44.17 billion, up 29 %, first nationwide.
    assert_eq!(figure(html, "ytd_cny"), "322.39 bn yuan");
    assert_eq!(figure(html, "ytd_usd"), "$44.17 bn");
    assert_eq!(figure(html, "ytd_yoy_pct"), "+29.0 %");
    assert_eq!(figure(html, "yoy_rank"), "1");
    // Growth in dollar terms (not in the bulletin; the reconstruction's 24.54 %, stated in
    // data/releases/README.md).
    assert_eq!(figure(html, "ytd_usd_yoy_pct"), "+24.5 %");
    let province = text_at(html, 0, "<tr data-region=\"XJ\" class=\"chosen\"", "</tr>");
    assert_eq!(province, "1 Xinjiang +29.0 %");
    // 5: Belt and Road partners, 297.85 bn, +25.8 %, 92.4 % of the total.
    let bri = member_row(html, "total/partner_group", "belt_and_road");
    contains_all(&bri, &["Belt and Road", "297.85 bn", "+25.8 %", "92.4 %"]);
    // 6: Central and Eastern Europe led partner growth at 437.1 %.
    let by_yoy = leaders(html, "total/partner_region/by_yoy");
    assert_eq!(by_yoy[0], "Central and Eastern Europe +437.1 %");
    // 7–9: private 298.35 bn +28.2 % 92.5 %; state-owned 21.68 bn +42.6 %; foreign-invested
    // 1.87 bn +19.4 %.
    let private = member_row(html, "total/enterprise_type", "private");
    contains_all(&private, &["Private", "298.35 bn", "+28.2 %", "92.5 %"]);
    let state = member_row(html, "total/enterprise_type", "state_owned");
    contains_all(&state, &["State-owned", "21.68 bn", "+42.6 %"]);
    let foreign = member_row(html, "total/enterprise_type", "foreign_invested");
    contains_all(&foreign, &["Foreign-invested", "1.87 bn", "+19.4 %"]);
    // 10: exports led by labour-intensive and electromechanical products.
    let exports = leaders(html, "export/commodity/by_share");
    assert!(exports[0].starts_with("Labour-intensive"), "{exports:?}");
    assert!(exports[1].starts_with("Electromechanical"), "{exports:?}");
    // 11: imports dominated by bulk commodities.
    let imports = leaders(html, "import/commodity/by_share");
    assert!(imports[0].starts_with("Bulk commodities"), "{imports:?}");
    // 12–13: 6,269 trains through Khorgos, up 8.1 %; above 600 for 12 consecutive months.
    let khorgos = text_at(html, 0, "data-port=\"khorgos/china_europe\"", "</p>");
    contains_all(
        &khorgos,
        &[
            "Khorgos",
            "6,269 trains",
            "+8.1 %",
            "12 consecutive months above 600",
        ],
    );
}

#[test]
fn the_report_needs_nothing_but_itself() {
    let html = sample_report();
    assert!(!html.contains("<script"), "a report runs no script");
    assert!(!html.contains("<form"), "a report has no chooser");
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "{external}");
    }
    // Every chart is inline SVG with a text alternative; the sample has a year-to-date
    // chart, six breakdown charts (partner group, partner region, enterprise type, and
    // commodity for exports, imports and, where a member has both, their total), the
    // provinces and two ports.
    let charts = html.matches("<svg ").count();
    assert_eq!(charts, 10, "charts");
    assert_eq!(
        html.matches("<svg class=\"chart\" role=\"img\" aria-label=\"")
            .count(),
        charts
    );
    // The provinces' chart describes every province with its figure.
    assert!(html.contains("1. Xinjiang +29.0 %"));
}

#[test]
fn region_and_period_can_be_chosen() {
    let choice = Choice {
        region: Some("GD".into()),
        period: Some(Period::new(2023, 12)),
    };
    let (html, _) = run_report(&sample_files(), &choice);
    let html = html.unwrap();
    assert!(html.contains("<title>Foreign trade of Guangdong, January–December 2023</title>"));
    // A province without breakdowns: no composition, and no growth (no 2022 data).
    assert!(!html.contains("id=\"composition\""));
    assert_eq!(figure(&html, "ytd_yoy_pct"), "n/a");
}

#[test]
fn bad_input_is_reported_as_replay_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"type\":\"customs_trade\"}\nnot json\n").unwrap();
    let mut files = sample_files();
    files.push(bad.clone());
    let (html, stderr) = run_report(&files, &Choice::default());
    // Bad lines are named and counted; the report is still made.
    assert!(html.unwrap().contains("322.39 bn yuan"));
    let name = bad.display().to_string();
    assert!(
        stderr.contains(&format!("{name}:1: missing_field: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{name}:2: malformed_json: ")),
        "{stderr}"
    );
    assert!(stderr.ends_with(", rejected 2\n"), "{stderr}");

    // A file that cannot be opened stops the run, as in replay.
    let (result, _) = run_report(&[dir.path().join("missing.jsonl")], &Choice::default());
    let error = format!("{:#}", result.unwrap_err());
    assert!(error.starts_with("cannot open "), "{error}");

    // Nothing to report: an unknown region, a period without figures, no events at all.
    let unknown = Choice {
        region: Some("ZZ".into()),
        period: None,
    };
    let error = run_report(&sample_files(), &unknown)
        .0
        .unwrap_err()
        .to_string();
    assert!(error.contains("no trade records for region ZZ"), "{error}");
    let future = Choice {
        region: Some("XJ".into()),
        period: Some(Period::new(2030, 1)),
    };
    let error = run_report(&sample_files(), &future)
        .0
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("XJ has no total figure at 2030-01"),
        "{error}"
    );
    let (result, _) = run_report(&[bad], &Choice::default());
    assert!(result.is_err());
}

/// A processing loop stand-in: answers record queries from an engine, and applies event
/// lines sent to it (then flushes), as the service does between batches.
fn spawn_loop(engine: Engine) -> (AppState, mpsc::Sender<String>) {
    let (queries, mut asked) = mpsc::channel::<RecordQuery>(16);
    let (lines, mut arriving) = mpsc::channel::<String>(16);
    tokio::spawn(async move {
        let mut engine = engine;
        loop {
            tokio::select! {
                Some(q) = asked.recv() => {
                    let records = q.filter.selection().map(|s| engine.select(&s)).unwrap_or_default();
                    let _ = q.reply.send(records);
                }
                Some(line) = arriving.recv() => {
                    let e = event::parse(line.as_bytes(), &rules()).expect("valid event");
                    engine.apply(&e);
                    engine.flush();
                }
                else => break,
            }
        }
    });
    let state = AppState {
        metrics: Arc::new(Metrics::new()),
        lifecycle: Arc::new(Lifecycle::new()),
        queries,
    };
    (state, lines)
}

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, http::router(state)).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_live_page_follows_the_records() {
    let (engine, _) = replay::load(
        &sample_files(),
        EngineSettings::default(),
        &rules(),
        &mut Vec::new(),
    )
    .unwrap();
    let (state, lines) = spawn_loop(engine);
    let base = serve(state).await;
    let client = reqwest::Client::new();

    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let page = page.text().await.unwrap();
    assert_eq!(figure(&page, "ytd_cny"), "322.39 bn yuan");
    assert!(page.contains("<script>"), "the live page polls");
    assert!(page.contains("<option value=\"XJ\" selected>Xinjiang (XJ)</option>"));
    assert!(page.contains("<option value=\"2024-09\" selected>September 2024</option>"));

    let fragment = client.get(format!("{base}/v1/page")).send().await.unwrap();
    assert_eq!(fragment.status(), StatusCode::OK);
    let etag = fragment.headers()["etag"].to_str().unwrap().to_string();
    let body = fragment.text().await.unwrap();
    assert!(!body.contains("<html"), "a fragment, not a document");
    assert!(page.contains(&format!("data-etag=\"{}\"", etag.replace('"', "&quot;"))));
    let again = client
        .get(format!("{base}/v1/page"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A restatement arrives: Khorgos's September 2024 revised up by 100 trains.
    lines
        .send(r#"{"type":"freight_trains","port":"khorgos","period":"2024-09","trains":800,"revision":5}"#.into())
        .await
        .unwrap();
    let mut changed = None;
    for _ in 0..50 {
        let r = client
            .get(format!("{base}/v1/page"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            changed = Some(r.text().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let changed = changed.expect("the fragment changes with the records");
    let khorgos = text_at(&changed, 0, "data-port=\"khorgos/china_europe\"", "</p>");
    assert_ne!(
        khorgos,
        text_at(&body, 0, "data-port=\"khorgos/china_europe\"", "</p>")
    );

    // Chosen region and period; bad parameters.
    let gd = client
        .get(format!("{base}/v1/page?region=GD&period=2024-06"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(gd.contains("Foreign trade of Guangdong<span class=\"when\">January–June 2024</span>"));
    let bad = client
        .get(format!("{base}/?period=2024-13"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let unknown = client
        .get(format!("{base}/v1/page?region=ZZ"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(unknown.contains("No figures for region ZZ"));
}

#[tokio::test]
async fn the_live_page_waits_for_records() {
    let (state, _lines) = spawn_loop(Engine::new(EngineSettings::default()));
    let base = serve(state).await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Waiting for figures"));
}
