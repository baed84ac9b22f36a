//! `silkroute demo`: the whole service on an embedded broker (librdkafka's mock cluster) with
//! bundled sample data, the bulletin's headline figures printed, HTTP served until Ctrl-C.
//!
//! Two reconstructions of the same bulletin are bundled: [`RELEASES`], shaped as customs publish
//! (cumulative figures, January and February together, flash then formal), the default; and
//! [`SAMPLE`], the same figures as plain monthly values (`demo --monthly`).

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::mocking::MockCluster;

use crate::config::Settings;
use crate::engine::record::Record;
use crate::event::ParseRules;
use crate::lifecycle::State;
use crate::query::Filter;
use crate::{clock, publish, service};

/// The bundled sample (a reconstruction; see data/sample/README.md).
pub const SAMPLE: [(&str, &str); 3] = [
    (
        "data/sample/fx.jsonl",
        include_str!("../data/sample/fx.jsonl"),
    ),
    (
        "data/sample/freight.jsonl",
        include_str!("../data/sample/freight.jsonl"),
    ),
    (
        "data/sample/trade.jsonl",
        include_str!("../data/sample/trade.jsonl"),
    ),
];

/// The bundled release-shaped set (a reconstruction; see data/releases/README.md).
pub const RELEASES: [(&str, &str); 3] = [
    (
        "data/releases/fx.jsonl",
        include_str!("../data/releases/fx.jsonl"),
    ),
    (
        "data/releases/freight.jsonl",
        include_str!("../data/releases/freight.jsonl"),
    ),
    (
        "data/releases/trade.jsonl",
        include_str!("../data/releases/trade.jsonl"),
    ),
];

/// Which bundled set the demo loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSet {
    /// [`RELEASES`]: as customs publish.
    Releases,
    /// [`SAMPLE`]: month by month.
    Monthly,
}

impl DataSet {
    pub fn files(self) -> [(&'static str, &'static str); 3] {
        match self {
            DataSet::Releases => RELEASES,
            DataSet::Monthly => SAMPLE,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            DataSet::Releases => {
                "release-shaped sample data: cumulative figures, January–February combined"
            }
            DataSet::Monthly => "monthly sample data",
        }
    }
}

/// Runs the demo on `data`; `until` decides when to stop serving (Ctrl-C for the command).
pub fn run(
    mut settings: Settings,
    data: DataSet,
    until: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // The mock cluster is not Send: it lives on this thread for the whole demo.
    let cluster =
        MockCluster::new(1).context("starting the embedded Kafka (librdkafka mock cluster)")?;
    let t = &settings.topics;
    let changelog = settings.changelog_topic();
    for topic in [
        &t.trade,
        &t.freight,
        &t.fx,
        &t.indicators,
        &t.dead_letter,
        &changelog,
    ] {
        cluster
            .create_topic(topic, 1, 1)
            .with_context(|| format!("creating topic {topic}"))?;
    }
    settings.kafka.bootstrap_servers = cluster.bootstrap_servers();
    // The mock cluster answers no CreateTopics request; the topics exist already.
    settings.topics.create = false;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        let rules = ParseRules { max_message_bytes: settings.limits.max_message_bytes, current_month: clock::current_utc_month() };
        let (mut messages, mut errors) = (Vec::new(), Vec::new());
        for (name, text) in data.files() {
            publish::plan(name, text.as_bytes(), &settings, &rules, None, &mut messages, &mut errors);
        }
        anyhow::ensure!(errors.is_empty(), "bundled sample has bad lines: {errors:?}");
        let sent = publish::send(&settings, &messages, false).await?;
        eprintln!("demo: embedded Kafka at {}; published {sent} events ({})", settings.kafka.bootstrap_servers, data.describe());
        let handle = service::start(settings).await?;
        while handle.lifecycle.state() != State::Ready {
            anyhow::ensure!(!handle.is_finished(), "the service stopped before it was ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let records = handle.records(Filter { period: Some("2024-09".into()), ..Filter::default() }).await?;
        print!("{}", headline_table(&records));
        println!("\nLive page: http://{}/ (the figures of the region with the most series; region and period selectable)", page_address(handle.http_addr));
        println!("\nServing http://{0}/metrics, /healthz, /readyz and /v1/indicators?region=XJ&period=2024-09 — Ctrl-C to stop.", handle.http_addr);
        until.await;
        handle.stop().await
    });
    drop(cluster);
    result
}

/// The address to open in a browser: `localhost` for a wildcard listen address.
fn page_address(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn billions(fen: i64) -> String {
    format!("{:.2} bn", fen as f64 / 1e11)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1} %"))
}

/// The bulletin's statements as read from the records of 2024-09.
pub fn headline_table(records: &[Record]) -> String {
    let trade = |flow: &str, dim: &str, member: Option<&str>| {
        records.iter().find_map(|r| match r {
            Record::Trade(t)
                if &*t.region == "XJ"
                    && t.flow == flow
                    && &*t.dimension == dim
                    && t.member.as_deref() == member =>
            {
                Some(t)
            }
            _ => None,
        })
    };
    let leaders = |flow: &str, dim: &str| {
        records.iter().find_map(|r| match r {
            Record::Leaders(l) if &*l.region == "XJ" && l.flow == flow && &*l.dimension == dim => {
                Some(l)
            }
            _ => None,
        })
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Some(t) = trade("total", "total", None) {
        rows.push((
            "Xinjiang imports and exports, Jan–Sep 2024".into(),
            format!("{} yuan", billions(t.ytd_cny.0)),
        ));
        rows.push((
            "  in US dollars".into(),
            t.ytd_usd
                .map_or("n/a".into(), |u| format!("$ {}", billions(u.0))),
        ));
        rows.push(("  year on year".into(), pct(t.ytd_yoy_pct)));
        rows.push((
            "  year on year in dollar terms".into(),
            pct(t.ytd_usd_yoy_pct),
        ));
        rows.push((
            "  national rank by growth".into(),
            t.yoy_rank.map_or("n/a".into(), |r| {
                format!("{r} of {}", t.yoy_rank_of.unwrap_or(0))
            }),
        ));
    }
    for (dim, member, label) in [
        ("partner_group", "belt_and_road", "Belt and Road partners"),
        ("enterprise_type", "private", "Private enterprises"),
        ("enterprise_type", "state_owned", "State-owned enterprises"),
        (
            "enterprise_type",
            "foreign_invested",
            "Foreign-invested enterprises",
        ),
    ] {
        if let Some(t) = trade("total", dim, Some(member)) {
            rows.push((
                label.into(),
                format!(
                    "{} yuan, {} y/y, {} of total",
                    billions(t.ytd_cny.0),
                    pct(t.ytd_yoy_pct),
                    pct(t.share_pct)
                ),
            ));
        }
    }
    if let Some(first) = leaders("total", "partner_region").and_then(|l| l.by_yoy.first()) {
        rows.push((
            "Fastest-growing partner region".into(),
            format!("{} {}", first.member, pct(Some(first.ytd_yoy_pct))),
        ));
    }
    if let Some(l) = leaders("export", "commodity") {
        rows.push((
            "Leading exports".into(),
            l.by_share
                .iter()
                .take(2)
                .map(|m| m.member.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(l) = leaders("import", "commodity") {
        rows.push((
            "Leading imports".into(),
            l.by_share
                .first()
                .map_or("n/a".into(), |m| m.member.to_string()),
        ));
    }
    for r in records {
        if let Record::Freight(f) = r {
            if &*f.port == "khorgos" {
                rows.push((
                    "China–Europe trains via Khorgos, Jan–Sep".into(),
                    format!("{} trains, {} y/y", f.ytd_trains, pct(f.ytd_yoy_pct)),
                ));
                rows.push((
                    format!("  consecutive months above {}", f.streak_threshold),
                    f.streak_months.to_string(),
                ));
            }
        }
    }
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let mut out =
        String::from("\nHeadline indicators, period 2024-09 (reconstructed sample data)\n\n");
    for (label, value) in rows {
        out.push_str(&format!("  {label:<width$}  {value}\n"));
    }
    out
}
