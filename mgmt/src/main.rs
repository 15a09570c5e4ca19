//! `weir`: the appliance binary. `run` starts it in the foreground, `check` validates
//! a configuration file.

mod admin;
#[cfg(test)]
mod admin_property_tests;
mod announce;
mod config;
mod ctl;
mod eal_args;
mod health;
mod hostif;
mod kernel_ring;
#[cfg(test)]
mod lo_packet_socket;
mod log;
mod manager;
#[cfg(test)]
mod manager_audit_tests;
#[cfg(test)]
mod manager_health_tests;
#[cfg(test)]
mod manager_id_tests;
#[cfg(test)]
mod manager_tests;
#[cfg(test)]
mod manager_tick_tests;
mod memory_check;
mod metrics;
mod metrics_http;
mod neigh;
mod neigh_targets;
#[cfg(test)]
mod own_netns;
mod preflight;
#[cfg(test)]
mod publish_timing;
mod reload;
mod rss_rule;
mod runtime;
#[cfg(test)]
mod scratch_dir;
mod signals;
mod snapshot_build;
mod state;
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
    /// Send a command to a running weir's admin socket (`weir ctl help` lists them).
    Ctl {
        #[arg(long, short, default_value = "/run/weir/admin.sock")]
        socket: String,
        /// Ask for the JSON form.
        #[arg(long)]
        json: bool,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ctl {
            socket,
            json,
            words,
        } => ctl::run(&socket, json, &words),
        Command::Check { config } => match config::load(&config) {
            Ok(cfg) => {
                println!(
                    "{}: OK: {} worker(s), {} port(s): {}; connection tables {}",
                    config.display(),
                    cfg.workers(),
                    cfg.ports.len(),
                    cfg.ports
                        .iter()
                        .map(|p| format!("{} ({})", p.name, p.device.dpdk_name()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    memory_check::size(memory_check::tables_need(&cfg)),
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
            match runtime::run(&cfg, &config) {
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
