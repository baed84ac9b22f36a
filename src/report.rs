//! `silkroute report`: the page of [`crate::page`] from event files, offline, as one
//! self-contained HTML file (style inline, charts as inline SVG, no script).
//!
//! Loading and its errors are `replay`'s: files applied in order (`-` is standard input),
//! bad lines reported as `FILE:LINE: reason: detail` on the error stream without stopping the
//! run, the summary line last; a file that cannot be opened stops it. A region or period with
//! no figures is an error too, and then nothing is written.

use std::io::Write;
use std::path::Path;

use crate::engine::record::RecordKind;
use crate::engine::{Engine, EngineSettings, Selection};
use crate::event::ParseRules;
use crate::page::html::{self, Mode};
use crate::page::{resolve, Choice, View};
use crate::replay::{self, Tally};

/// The report of `choice` from what `engine` holds, or why there is none.
pub fn render(engine: &Engine, choice: &Choice) -> anyhow::Result<String> {
    let trade = engine.select(&Selection {
        kind: Some(RecordKind::Trade),
        ..Selection::default()
    });
    let Some((region, period)) = resolve(&trade, choice) else {
        match &choice.region {
            Some(r) => anyhow::bail!("no trade records for region {r}: nothing to report"),
            None => anyhow::bail!("no trade records with a total: nothing to report"),
        }
    };
    let leaders = engine.select(&Selection {
        kind: Some(RecordKind::Leaders),
        region: Some(&*region),
        period: Some(period),
        port: None,
    });
    let freight = engine.select(&Selection {
        kind: Some(RecordKind::Freight),
        ..Selection::default()
    });
    let view = View::build(&trade, &leaders, &freight, region, period);
    anyhow::ensure!(
        view.headline.is_some(),
        "region {} has no total figure at {}: nothing to report (its periods: {})",
        view.region,
        view.period,
        view.periods
            .iter()
            .rev()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let fragment = html::fragment(&view, Mode::Report);
    Ok(html::document(
        &html::title(&view),
        &fragment,
        "",
        Mode::Report,
    ))
}

/// Runs the whole command: the report goes to `out` only when complete; returns the tally
/// (already printed as the last line on `errors`).
pub fn run(
    files: &[impl AsRef<Path>],
    settings: EngineSettings,
    rules: &ParseRules,
    choice: &Choice,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> anyhow::Result<Tally> {
    let (engine, tally) = replay::load(files, settings, rules, errors)?;
    writeln!(errors, "{tally}")?;
    let page = render(&engine, choice)?;
    out.write_all(page.as_bytes())?;
    out.flush()?;
    Ok(tally)
}
