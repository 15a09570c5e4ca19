//! A driver that refuses Weir's RSS key. DPDK's TAP driver (`net_tap`) says it
//! spreads packets over its queues by IP addresses and TCP/UDP ports, but its
//! key is fixed: `rte_eth_dev_rss_hash_update` with a key fails (EINVAL), and
//! it cannot read its key back. `steer_by_rss` must then refuse to steer flows
//! by RSS, with an error that names the port and the step, which the runtime
//! logs as the reason flows follow Weir's own hash instead (see
//! `mgmt/src/rss_rule.rs`). Before the key was read back, Weir trusted the key
//! given at configure and would have steered flows by a hash the device does
//! not compute.
//!
//! The TAP device is a kernel interface this test creates (and DPDK removes at
//! close), so the test needs root, as `scripts/test.sh` runs.

use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{Mempool, Port, PortSpec};
use std::path::Path;

#[test]
fn a_driver_that_refuses_the_key_does_not_steer_flows() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "creating a TAP device needs root (run scripts/test.sh)"
    );
    // Interface names stay under 16 bytes; the process id keeps runs apart.
    let iface = format!("wrss{}", std::process::id() % 1_000_000);
    let vdev = format!("net_tap0,iface={iface}");
    let sys = format!("/sys/class/net/{iface}");
    let eal = ScratchEal::start("weir-rss-refused", 64, &[&vdev]).expect("EAL");
    let pool = Mempool::new("refused", 1023, 0, 2176, 0).expect("mempool");

    let mut port = Port::open("net_tap0", "tap").expect("open");
    port.start(&PortSpec::queues(2, 256), &pool).expect("start");
    assert!(Path::new(&sys).exists(), "{iface} made by the TAP driver");
    assert!(port.rss(), "net_tap says it spreads by addresses and ports");

    let err = port
        .steer_by_rss()
        .expect_err("a device that keeps its own key must not steer flows");
    assert_eq!(err.op, "port tap: set Weir's RSS key");
    assert_eq!(err.code, libc::EINVAL);
    // Asked again (a restart of the workers), the same answer: nothing was
    // half-applied in between.
    let again = port.steer_by_rss().expect_err("still refused");
    assert_eq!((again.op.as_str(), again.code), (err.op.as_str(), err.code));
    // The port keeps working: it stops and starts as before.
    port.stop();
    port.start(&PortSpec::queues(2, 256), &pool)
        .expect("restart after the refusal");

    drop(port);
    drop(pool);
    drop(eal);
    assert!(!Path::new(&sys).exists(), "{iface} removed at close");
}
