//! How long the management core takes to publish a snapshot for a large pool:
//! the first one (every ring table built whole), after one backend's weight
//! changes (its ring updated), and with nothing changed; and how long freeing
//! a replaced snapshot takes, the stall a worker would have had if the last
//! reference to it had been its own (see `manager/retired.rs`). A benchmark, not a
//! test: it asserts nothing and is ignored unless asked for:
//!
//! `PUBLISH_BACKENDS=4000 cargo test --release -p mgmt publish_timing -- --ignored --nocapture`

use crate::manager_tests::{manager, EXAMPLE};
use std::time::Instant;

/// The example configuration with a service over a pool of `n` backends.
fn with_large_pool(n: usize) -> String {
    let members: String = (0..n)
        .map(|i| {
            format!(
                "[[pool.backend]]\nname = \"x{i}\"\naddress = \"198.18.{}.{}\"\n",
                2 + i / 250,
                i % 250
            )
        })
        .collect();
    EXAMPLE
        .replace("198.18.0.1/24", "198.18.0.1/16")
        .replace(
            "[[pool]]\nname = \"web6\"",
            &format!("[[pool]]\nname = \"big\"\n{members}[[pool]]\nname = \"web6\""),
        )
        .replace(
            "[admin]",
            "[[service]]\nname = \"big\"\nvip = \"198.18.0.150\"\nport = 80\nprotocol = \"tcp\"\npool = \"big\"\n\n[admin]",
        )
}

#[test]
#[ignore]
fn publish_timing() {
    let n: usize = std::env::var("PUBLISH_BACKENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (mut m, _health) = manager(&with_large_pool(n));
    let t = Instant::now();
    m.publish();
    let first = t.elapsed().as_secs_f64();
    println!("{n} backends: first publish {:.1} ms", first * 1e3);
    let b = m.backend_id("big/x17").expect("x17") as usize;
    for w in [0, 1, 5] {
        m.backends[b].weight = w;
        let t = Instant::now();
        m.publish();
        let s = t.elapsed().as_secs_f64();
        println!(
            "{n} backends: publish after x17's weight -> {w}: {:.2} ms ({:.4} of the first)",
            s * 1e3,
            s / first
        );
    }
    let t = Instant::now();
    m.publish();
    println!(
        "{n} backends: publish with nothing changed: {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    // A worker's guard across a publish that changes a ring, then the tick
    // that frees what it held.
    let worker = m.snapshot.load();
    m.backends[b].weight = 2;
    m.publish();
    drop(worker);
    let t = Instant::now();
    m.tick(Instant::now());
    println!(
        "{n} backends: the tick that frees a replaced snapshot: {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    m.tick(Instant::now());
    println!(
        "{n} backends: a tick with nothing to free: {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
