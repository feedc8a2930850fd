//! The command line: argument parsing, configuration loading with readable
//! diagnostics, dispatch to the commands, and exit codes.

mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::exit::Exit;

/// baton: blue-green switchovers for primary/standby server pairs.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about, long_about = None)]
pub struct Cli {
    /// The settings file; pair files are read from `pairs/` beside it.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "BATON_CONFIG",
        default_value = "baton.toml"
    )]
    pub config: PathBuf,
    /// Machine-readable output (see the README for the schema).
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v: info, -vv: debug).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration offline; every problem with file, line,
    /// column and fix.
    Check {
        /// Pairs to check (all when none).
        pairs: Vec<String>,
    },
    /// Live view of each pair: who holds traffic, roles, reachability,
    /// health, versions, drift. Non-zero exit when something is wrong.
    Status {
        /// Pairs to show (all when none).
        pairs: Vec<String>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let exit = run(cli);
    ExitCode::from(exit.code())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn run(cli: Cli) -> Exit {
    match &cli.command {
        Command::Check { pairs } => check(&cli, pairs),
        Command::Status { pairs } => {
            let Some(config) = load(&cli, pairs) else {
                return Exit::Config;
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("baton: cannot start the async runtime: {e}");
                    return Exit::Internal;
                }
            };
            runtime.block_on(status::run(&config, cli.json))
        }
    }
}

/// Loads and validates the configuration for the named pairs, printing
/// every problem; `None` when it is unusable.
fn load(cli: &Cli, pairs: &[String]) -> Option<Config> {
    match config::load(&cli.config).select(pairs) {
        Ok((config, warnings)) => {
            for w in &warnings {
                eprintln!("warning (another pair): {w}");
            }
            Some(config)
        }
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!(
                "baton: {} configuration problem(s); nothing was done",
                diags.0.len()
            );
            None
        }
    }
}

fn check(cli: &Cli, pairs: &[String]) -> Exit {
    let loaded = config::load(&cli.config);
    match loaded.select(pairs) {
        Ok((config, warnings)) => {
            for w in &warnings {
                eprintln!("warning (another pair): {w}");
            }
            if cli.json {
                let names: Vec<&String> = config.pairs.keys().collect();
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "pairs": names, "problems": []})
                );
            } else {
                println!(
                    "{}: configuration is valid ({} pair{}: {})",
                    config.file.display(),
                    config.pairs.len(),
                    if config.pairs.len() == 1 { "" } else { "s" },
                    config.pairs.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            Exit::Ok
        }
        Err(diags) => {
            if cli.json {
                let problems: Vec<_> = diags
                    .0
                    .iter()
                    .map(|d| serde_json::json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message, "fix": d.fix}))
                    .collect();
                println!("{}", serde_json::json!({"ok": false, "problems": problems}));
            } else {
                println!("{diags}");
                println!(
                    "{} problem{} found",
                    diags.0.len(),
                    if diags.0.len() == 1 { "" } else { "s" }
                );
            }
            Exit::Config
        }
    }
}
