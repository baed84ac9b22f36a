//! `silkroute replay`: JSONL events through the engine, offline, final records to stdout.
//!
//! Reads each file in order (`-` is standard input), applies every line, and writes every
//! current record as JSONL sorted by key. Bad lines are reported on the error stream as
//! `FILE:LINE: reason: detail` and do not stop the run.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use anyhow::Context;

use crate::engine::{Engine, EngineSettings, Outcome};
use crate::event::{self, ParseRules};

/// Counts for the closing summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    pub applied: u64,
    pub stale: u64,
    pub duplicate: u64,
    pub rejected: u64,
}

impl Tally {
    pub fn count(&mut self, outcome: Outcome) {
        self.events += 1;
        match outcome {
            Outcome::Applied => self.applied += 1,
            Outcome::Stale => self.stale += 1,
            Outcome::Duplicate => self.duplicate += 1,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events: applied {}, stale {}, duplicate {}, rejected {}",
            self.events, self.applied, self.stale, self.duplicate, self.rejected
        )
    }
}

/// Feeds every line of `input` (named `name` in messages) into `engine`.
pub fn feed(
    engine: &mut Engine,
    name: &str,
    input: impl BufRead,
    rules: &ParseRules,
    tally: &mut Tally,
    errors: &mut impl Write,
) -> anyhow::Result<()> {
    for (index, line) in input.split(b'\n').enumerate() {
        let mut line = line.with_context(|| format!("reading {name}"))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match event::parse(&line, rules) {
            Ok(e) => tally.count(engine.apply(&e)),
            Err(rejection) => {
                tally.events += 1;
                tally.rejected += 1;
                writeln!(
                    errors,
                    "{name}:{}: {}: {}",
                    index + 1,
                    rejection.reason,
                    rejection.detail
                )?;
            }
        }
    }
    Ok(())
}

/// Applies every line of `files` in order (`-` is standard input) to a new engine, bad lines
/// reported on `errors`; the engine's changes are taken as seen, so that its records are the
/// final ones. Shared by `replay` and `report`.
pub fn load(
    files: &[impl AsRef<Path>],
    settings: EngineSettings,
    rules: &ParseRules,
    errors: &mut impl Write,
) -> anyhow::Result<(Engine, Tally)> {
    let mut engine = Engine::new(settings);
    let mut tally = Tally::default();
    for path in files {
        let path = path.as_ref();
        let name = path.display().to_string();
        if name == "-" {
            feed(
                &mut engine,
                "-",
                io::stdin().lock(),
                rules,
                &mut tally,
                errors,
            )?;
        } else {
            let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
            feed(
                &mut engine,
                &name,
                BufReader::new(file),
                rules,
                &mut tally,
                errors,
            )?;
        }
    }
    engine.discard_changes();
    Ok((engine, tally))
}

/// Runs the whole command; returns the tally (already printed as the last stderr line).
pub fn run(
    files: &[impl AsRef<Path>],
    settings: EngineSettings,
    rules: &ParseRules,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> anyhow::Result<Tally> {
    let (engine, tally) = load(files, settings, rules, errors)?;
    for record in engine.records() {
        out.write_all(&record.to_json())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    writeln!(errors, "{tally}")?;
    Ok(tally)
}
