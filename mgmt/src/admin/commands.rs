//! The admin commands: a keyword table `{words, usage, help, handler}` in the
//! spirit of HAProxy's `cli.c`. Every handler returns text for people and JSON for
//! machines; every change is audited with who, what, before and after.

use super::change::{add_server, del_server, disable_health, enable_health, reload, set_server};
use super::show_conns::{show_conns, show_flow};
use super::show_info::show_info;
use super::show_servers::show_servers;
use super::show_stat::show_stat;
use crate::manager::{Manager, Who};
use serde_json::{json, Value};
use std::fmt::Write;

pub struct Reply {
    pub text: String,
    pub json: Value,
}

type Handler = fn(&mut Manager, &[&str], &Who) -> Result<Reply, String>;

pub struct Cmd {
    pub words: &'static [&'static str],
    pub usage: &'static str,
    pub help: &'static str,
    handler: Handler,
}

pub const COMMANDS: &[Cmd] = &[
    Cmd {
        words: &["help"],
        usage: "help",
        help: "list the commands",
        handler: help,
    },
    Cmd {
        words: &["show", "info"],
        usage: "show info",
        help: "version, uptime, cores, ports and links",
        handler: show_info,
    },
    Cmd {
        words: &["show", "stat"],
        usage: "show stat",
        help: "services, backends and cores: traffic, flows, drops",
        handler: show_stat,
    },
    Cmd {
        words: &["show", "servers"],
        usage: "show servers",
        help: "backends: state, weight, health, last check",
        handler: show_servers,
    },
    Cmd {
        words: &["show", "health"],
        usage: "show health",
        help: "same as show servers",
        handler: show_servers,
    },
    Cmd {
        words: &["show", "conns"],
        usage: "show conns [SERVICE]",
        help: "connections in the workers' tables (first 1000)",
        handler: show_conns,
    },
    Cmd {
        words: &["show", "flow"],
        usage: "show flow tcp|udp SRC SPORT DST DPORT",
        help: "which core, entry and backend a flow uses, and why",
        handler: show_flow,
    },
    Cmd {
        words: &["set", "server"],
        usage: "set server POOL/NAME weight N | state ready|drain|maint",
        help: "change a backend's weight or state",
        handler: set_server,
    },
    Cmd {
        words: &["add", "server"],
        usage: "add server POOL NAME ADDR:PORT [weight N]",
        help: "add a backend to a pool",
        handler: add_server,
    },
    Cmd {
        words: &["del", "server"],
        usage: "del server POOL/NAME",
        help: "remove a backend (its connections run out)",
        handler: del_server,
    },
    Cmd {
        words: &["enable", "health"],
        usage: "enable health POOL/NAME",
        help: "check this backend again",
        handler: enable_health,
    },
    Cmd {
        words: &["disable", "health"],
        usage: "disable health POOL/NAME",
        help: "stop checking this backend (it counts as up)",
        handler: disable_health,
    },
    Cmd {
        words: &["reload"],
        usage: "reload",
        help: "re-read the configuration file and apply it",
        handler: reload,
    },
];

/// Longest accepted command line.
pub const MAX_LINE: usize = 4096;

/// Runs one command line. `Err` text is sent as `error: ...`.
pub fn dispatch(m: &mut Manager, line: &str, who: &Who) -> Result<Reply, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() {
        return Err("empty command; try help".into());
    }
    let cmd = COMMANDS
        .iter()
        .filter(|c| words.len() >= c.words.len() && c.words.iter().zip(&words).all(|(a, b)| a == b))
        .max_by_key(|c| c.words.len())
        .ok_or_else(|| format!("unknown command {:?}; try help", words.join(" ")))?;
    (cmd.handler)(m, &words[cmd.words.len()..], who)
        .map_err(|e| format!("{e} (usage: {})", cmd.usage))
}

pub(super) fn no_args(args: &[&str]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("unexpected {:?}", args.join(" ")))
    }
}

fn help(_: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    no_args(args)?;
    let mut text = String::new();
    for c in COMMANDS {
        let _ = writeln!(text, "  {:<58} {}", c.usage, c.help);
    }
    let json = json!(COMMANDS
        .iter()
        .map(|c| json!({"usage": c.usage, "help": c.help}))
        .collect::<Vec<_>>());
    Ok(Reply { text, json })
}
