//! How a port programs its RSS redirection table, against a device that keeps
//! one. No NIC is here; DPDK's null device (`net_null`) is the nearest thing:
//! it stores what `rte_eth_dev_rss_reta_update` sets and gives it back to
//! `rte_eth_dev_rss_reta_query`, through the same ethdev calls a NIC's driver
//! answers. It does not say how long its hash key is, so `steer_by_rss` (which
//! steers only by a key Weir gave the device) leaves it alone, as it must.
//! It starts DPDK in the test process (`ScratchEal`); root is not needed.

use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{Mempool, Port, PortSpec};

/// The device's redirection table, read back entry by entry.
fn device_table(port: &Port, size: usize) -> Vec<u16> {
    let group = dpdk_sys::RTE_ETH_RETA_GROUP_SIZE as usize;
    let mut conf: Vec<dpdk_sys::rte_eth_rss_reta_entry64> = (0..size / group)
        .map(|_| dpdk_sys::rte_eth_rss_reta_entry64 {
            mask: u64::MAX,
            ..Default::default()
        })
        .collect();
    // SAFETY: `conf` holds size / 64 groups, as many as `size` asks for.
    let ret =
        unsafe { dpdk_sys::rte_eth_dev_rss_reta_query(port.id(), conf.as_mut_ptr(), size as u16) };
    assert_eq!(ret, 0, "query the redirection table of {}", port.name());
    conf.iter().flat_map(|g| g.reta).collect()
}

fn spec(queues: u16) -> PortSpec {
    PortSpec {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: 256,
        tx_desc: 256,
        mtu: None,
        promiscuous: false,
    }
}

#[test]
fn the_redirection_table_reaches_the_device_and_only_weirs_key_steers() {
    let _eal =
        ScratchEal::start("weir-rss", 64, &["net_null0", "net_null1", "net_null2"]).expect("EAL");
    let pool = Mempool::new("rss", 1023, 0, 2176, 0).expect("mempool");

    for (name, queues) in [("net_null0", 2u16), ("net_null1", 4)] {
        let mut port = Port::open(name, name).expect("open");
        port.start(&spec(queues), &pool).expect("start");
        assert!(port.rss(), "{name}: RSS over {queues} queues");
        // Its key is not known to be Weir's: no steering by RSS.
        assert_eq!(port.steer_by_rss().expect("steer"), None, "{name}");
        // The table itself: net_null's has 128 entries, all 0 until set.
        assert_eq!(device_table(&port, 128), vec![0; 128], "{name}: at start");
        let reta = port
            .spread_reta()
            .expect("update the table")
            .expect("a device that keeps a table");
        let expected: Vec<u16> = (0..128).map(|i| i % queues).collect();
        assert_eq!(reta, expected, "{name}: the table Weir reports");
        assert_eq!(
            device_table(&port, reta.len()),
            expected,
            "{name}: the table the device holds"
        );
        port.stop();
    }
    // One queue: nothing to spread, so no RSS and no steering.
    let mut one = Port::open("net_null2", "one queue").expect("open");
    one.start(&spec(1), &pool).expect("start");
    assert!(!one.rss());
    assert_eq!(one.steer_by_rss().expect("steer"), None);
    one.stop();
}
