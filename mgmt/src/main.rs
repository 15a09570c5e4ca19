//! `weir`: the appliance binary. `run` starts it in the foreground, `check` validates
//! a configuration file.

mod config;
mod eal_args;
mod hostif;
mod log;
mod neigh;
mod runtime;
mod signals;
mod snapshot;
mod stats;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "weir", version, about = "Weir: a DPDK L4/L7 load balancer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance in the foreground; logs go to stderr, the final counters to
    /// stdout as JSON.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and say what it describes.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match config::load(&config) {
            Ok(cfg) => {
                println!(
                    "{}: OK: {} worker(s), {} port(s): {}",
                    config.display(),
                    cfg.workers(),
                    cfg.ports.len(),
                    cfg.ports
                        .iter()
                        .map(|p| format!("{} ({})", p.name, p.device.dpdk_name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("weir: invalid configuration: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("weir: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime::run(&cfg) {
                Ok(summary) => {
                    for l in summary.lines() {
                        log!("{l}");
                    }
                    println!("{}", summary.to_json());
                    log!("stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    log!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
