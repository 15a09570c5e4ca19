//! `weir-perf`: cycles per packet of Weir's worker on its L4 path, measured against
//! a bare receive-and-transmit loop on the same DPDK queues in the same run.
//!
//! The port is a `net_ring` vdev, so no traffic leaves the process; its queue 0 and
//! queue 1 are two rings. The loop under test (the bare forwarder, or a real
//! `Worker` polled exactly as its `run` loop polls) receives on queue 0 and
//! transmits on queue 1. A traffic source on the same core takes what comes out of
//! queue 1, restores each packet from its template (a 64-byte copy) and sends it
//! into queue 0 again. Both loops pay the same source; 2048 packets circulate.
//! Cycles are TSC ticks over the whole measured loop divided by packets.
//!
//! Each scenario's ratio is taken against a bare loop run just before it; with
//! `--rounds R`, an established-flow scenario alternates R bare runs and R runs of
//! the worker (on the same table) and reports the medians, so that the machine's
//! drift during a run touches both sides alike.
//!
//! With `--veth A,B` (see `perf/veth_ports.sh`), the loop under test and the
//! source own an af_packet port each, on the two ends of a veth pair, instead.
//!
//!     weir-perf [--seconds S] [--rounds R] [--large N] [--only TEXT] [--in-flight N]
//!               [--packets N] [--no-huge] [--veth A,B]

mod bench;
mod conns_scan;
mod expiry;
mod frames;
mod lab;
mod least_conn_publish;
mod loops;
mod reference;
mod ring_build;
mod scenarios;
mod wiring;

use bench::{Bench, Opts};
use dataplane::dpdk::{Eal, Mempool};
use dataplane::wire::tcp;
use frames::{flow, frame, FRAME_LEN};
use lab::VIP_DR;
use serde_json::json;
use wiring::{vdevs, wire};

/// Packets circulating by default (`--in-flight N`).
const IN_FLIGHT: usize = 2048;

/// Free 2 MiB hugepages, in MiB.
fn free_hugepages_mib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:") * field("Hugepagesize:") / 1024
}

/// The sizes given after `flag` (`N,N,...`), `default` when none are; `None`
/// without the flag.
fn sizes_after<T: std::str::FromStr + Copy>(
    args: &[String],
    flag: &str,
    default: &[T],
) -> Option<Vec<T>> {
    let i = args.iter().position(|a| a == flag)?;
    let given: Vec<T> = (args.get(i + 1).into_iter())
        .flat_map(|v| v.split(','))
        .filter_map(|n| n.parse().ok())
        .collect();
    Some(if given.is_empty() {
        default.to_vec()
    } else {
        given
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // `--ring N,N,...`: the management core's ring-table builds and updates
    // for pools of those sizes, instead of the packet loops (no DPDK).
    if let Some(sizes) = sizes_after(&args, "--ring", &[3, 100, 1000]) {
        println!("{:#}", ring_build::run(&sizes));
        return;
    }
    // `--conns-scan N,N,...`: what a `show conns` costs a worker over tables
    // of those capacities, read in one go and a slice a tick (no DPDK).
    if let Some(caps) = sizes_after(&args, "--conns-scan", &[262_144, 4_194_304]) {
        println!("{:#}", conns_scan::run(&caps));
        return;
    }
    // `--expiry N,N,...`: expiring tables of N entries all due in one tick,
    // in one call and in bounded calls (no DPDK).
    if let Some(sizes) = sizes_after(&args, "--expiry", &[65_536, 1_048_576]) {
        println!("{:#}", expiry::run(&sizes));
        return;
    }
    // `--least-conn-publish N,N,...`: a worker's first least_conn pick after
    // a publish, with a pool of N backends (no DPDK).
    if let Some(sizes) = sizes_after(&args, "--least-conn-publish", &[100, 1000, 4000]) {
        println!("{:#}", least_conn_publish::run(&sizes));
        return;
    }
    let seconds = arg("--seconds", 1.0);
    let large = arg("--large", 1_000_000.0) as usize;
    // `--only TEXT` runs the scenarios whose label contains TEXT (and the bare loop).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    // Hugepages as in production when the machine has them free (512 MiB for the
    // pool; the 4 KiB fallback adds a TLB miss per mbuf to both loops).
    let huge = !args.iter().any(|a| a == "--no-huge") && free_hugepages_mib() >= 512;
    let memory: &[&str] = if huge {
        &["--in-memory", "-m", "512"]
    } else {
        &["--no-huge", "-m", "512", "--no-shconf"]
    };
    // `--veth A,B`: two af_packet ports on the two ends of a veth pair (which
    // perf/veth_ports.sh creates in a namespace of its own) instead of net_ring.
    let veth = args
        .iter()
        .position(|a| a == "--veth")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split_once(',').expect("--veth A,B"));
    let eal_args: Vec<String> = ["weir-perf", "-l", "0"]
        .iter()
        .chain(memory)
        .chain(&["--no-telemetry", "--no-pci", "--log-level=warning"])
        .map(|s| s.to_string())
        .chain(
            vdevs(veth)
                .into_iter()
                .flat_map(|v| ["--vdev".to_string(), v]),
        )
        .collect();
    let eal = Eal::init(&eal_args).expect("EAL");
    let pool = Mempool::new("perf", 8191, 256, 2176, 0).expect("mempool");
    let (ports, src_rx, src_tx, fwd) = wire(veth.is_some(), &pool);
    let mut b = Bench {
        in_flight: (arg("--in-flight", IN_FLIGHT as f64) as usize).clamp(32, 4096),
        pool,
        src_rx,
        src_tx,
        fwd: Some(fwd),
        tsc_hz: eal.tsc_hz(),
    };
    let mut results = Vec::new();

    let templates: Vec<[u8; FRAME_LEN]> = (0..1000)
        .map(|i| {
            let (s, p) = flow(i);
            frame(s, p, VIP_DR, tcp::flags::ACK)
        })
        .collect();
    // `--packets N` stops each established-flow run after N packets (for
    // instruction counts under callgrind, where time means nothing).
    let cap = arg("--packets", f64::INFINITY).min(usize::MAX as f64) as usize;
    let rounds = (arg("--rounds", 1.0) as usize).max(1);
    let (first_bare, n) = b.bare(&templates, seconds, cap);
    results.push(
        json!({"scenario": "bare rx/tx loop", "cycles_per_packet": first_bare, "packets": n}),
    );
    let opts = Opts {
        seconds,
        rounds,
        cap,
        first_bare,
        large,
        only,
    };
    scenarios::established_v4(&mut b, &opts, &mut results);
    scenarios::worker_of_two(&mut b, &opts, &mut results);
    scenarios::handing_over(&mut b, &opts, &mut results);
    scenarios::references(&mut b, &opts, &mut results);
    scenarios::established_v6(&mut b, &opts, &mut results);
    scenarios::new_flows(&mut b, &opts, &templates, &mut results);
    scenarios::hash_flood(&mut b, &opts, &mut results);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "tsc_mhz": b.tsc_hz / 1_000_000,
            "hugepages": huge,
            "results": results,
        }))
        .unwrap()
    );
    drop(ports);
}
