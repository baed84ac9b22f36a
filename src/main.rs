//! The `silkroute` command line: parse arguments, load configuration, set up logging, and
//! hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use silkroute::config::Settings;
use silkroute::event::ParseRules;
use silkroute::period;

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
    /// Run the engine offline: read JSONL events from FILEs (`-` = stdin), print the final
    /// indicator records as JSONL sorted by key; bad lines and a summary go to stderr.
    Replay {
        /// Event files, applied in the order given.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
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
    let result = match cli.command {
        Command::Replay { files } => {
            let rules = ParseRules {
                max_message_bytes: settings.limits.max_message_bytes,
                current_month: period::current_utc_month(),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("silkroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}
