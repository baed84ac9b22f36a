//! The `silkroute` command line: parse arguments, load configuration, set up logging, and
//! hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use silkroute::config::Settings;
use silkroute::event::ParseRules;
use silkroute::{clock, period};

// jemalloc: the backfill returns memory to the OS and fragments less than glibc malloc (see
// Cargo.toml). The program's choice, not the library's: tests and embedders keep their own.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Official trade statistics in, live indicators out.
///
/// silkroute consumes customs trade, freight-train and exchange-rate events (JSON) from Kafka,
/// keeps year-to-date, prior-year and trailing-twelve-month aggregates exact to the fen, and
/// publishes indicator records (growth, shares, national ranks, leaders, streaks) to a
/// compacted Kafka topic, with Prometheus metrics on HTTP.
///
/// Configuration: config/default.toml (built in), then --config FILE, then environment
/// variables SILKROUTE__SECTION__KEY (e.g. SILKROUTE__KAFKA__BOOTSTRAP_SERVERS).
#[derive(Parser)]
#[command(name = "silkroute", version, about, long_about)]
struct Cli {
    /// A TOML file overriding config/default.toml (environment variables override both).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: consume the input topics, publish changed indicators and dead
    /// letters, serve /metrics, /healthz, /readyz and /v1/indicators on http.listen. Stops
    /// gracefully on SIGTERM or SIGINT.
    Run,
    /// Start an embedded Kafka (librdkafka's mock cluster), load the bundled sample data, run
    /// the service on it, print the headline indicators and serve HTTP until Ctrl-C. Needs no
    /// broker. The data is shaped as customs publish it (data/releases: cumulative figures,
    /// January and February together, flash figures then formal ones).
    Demo {
        /// Load the month-by-month sample instead (data/sample: the same bulletin).
        #[arg(long)]
        monthly: bool,
    },
    /// Load JSONL events from FILEs into the input topics (trade keyed by region, freight by
    /// port, fx by currency). Every line is validated first; any bad line publishes nothing.
    Publish {
        /// Event files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Send lines unchecked and unkeyed to --topic (default: topics.trade), e.g. to test
        /// the dead-letter topic.
        #[arg(long)]
        raw: bool,
        /// Target topic for --raw.
        #[arg(long, requires = "raw", value_name = "TOPIC")]
        topic: Option<String>,
    },
    /// Run the engine offline: read JSONL events from FILEs (`-` = stdin), print the final
    /// indicator records as JSONL sorted by key; bad lines and a summary go to stderr.
    Replay {
        /// Event files, applied in the order given.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run the engine offline, as replay does, and write the page of one region and period
    /// as one self-contained HTML file (style inline, charts as inline SVG, no script): the
    /// headline figures, the year to date against last year, every breakdown with shares,
    /// the leaders, every province's growth ranked and each port's trains. Bad lines and the
    /// summary go to stderr as in replay; a file that cannot be opened, or a region or period
    /// without figures, writes nothing and exits 1.
    Report {
        /// Event files, applied in the order given (`-` = stdin).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Region code (e.g. XJ). Default: the region with the most series at its latest
        /// complete period (the latest whose year to date is known from January).
        #[arg(long, value_name = "R")]
        region: Option<String>,
        /// Period YYYY-MM. Default: the region's latest complete period.
        #[arg(long, value_name = "P", value_parser = parse_period)]
        period: Option<period::Period>,
        /// Where to write the HTML: a file (replaced only once the report is complete), or
        /// `-` for stdout.
        #[arg(long, short, value_name = "FILE", default_value = "-")]
        output: PathBuf,
    },
}

fn parse_period(text: &str) -> Result<period::Period, String> {
    period::Period::parse(text).ok_or_else(|| format!("expected YYYY-MM, got {text:?}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("silkroute: {e}");
            return ExitCode::from(2);
        }
    };
    silkroute::telemetry::init(settings.log.format);
    let result = match cli.command {
        Command::Run => {
            runtime().and_then(|rt| rt.block_on(silkroute::service::run_until_signal(settings)))
        }
        Command::Demo { monthly } => {
            let until = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let data = if monthly {
                silkroute::demo::DataSet::Monthly
            } else {
                silkroute::demo::DataSet::Releases
            };
            silkroute::demo::run(settings, data, until)
        }
        Command::Publish { files, raw, topic } => {
            let mut settings = settings;
            if let Some(t) = topic {
                settings.topics.trade = t;
            }
            match runtime()
                .and_then(|rt| rt.block_on(silkroute::publish::run(&settings, &files, raw)))
            {
                Ok(0) => Ok(()),
                Ok(code) => return ExitCode::from(code),
                Err(e) => Err(e),
            }
        }
        Command::Replay { files } => {
            let rules = ParseRules {
                max_message_bytes: settings.limits.max_message_bytes,
                current_month: clock::current_utc_month(),
            };
            silkroute::replay::run(
                &files,
                settings.engine(),
                &rules,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
            .map(|_| ())
        }
        Command::Report {
            files,
            region,
            period,
            output,
        } => {
            let rules = ParseRules {
                max_message_bytes: settings.limits.max_message_bytes,
                current_month: clock::current_utc_month(),
            };
            let choice = silkroute::page::Choice { region, period };
            let mut page = Vec::new();
            silkroute::report::run(
                &files,
                settings.engine(),
                &rules,
                &choice,
                &mut page,
                &mut std::io::stderr().lock(),
            )
            .and_then(|_| {
                use std::io::Write as _;
                if output.as_os_str() == "-" {
                    std::io::stdout().lock().write_all(&page)?;
                } else {
                    std::fs::write(&output, &page)
                        .with_context(|| format!("cannot write {}", output.display()))?;
                }
                Ok(())
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("silkroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}
