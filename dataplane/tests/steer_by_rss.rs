//! How a port programs its RSS key and redirection table, against a device that
//! keeps them. No NIC is here; DPDK's null device (`net_null`) is the nearest
//! thing: it stores what `rte_eth_dev_rss_hash_update` and
//! `rte_eth_dev_rss_reta_update` set and gives it back to
//! `rte_eth_dev_rss_hash_conf_get` and `rte_eth_dev_rss_reta_query`, through the
//! same ethdev calls a NIC's driver answers. It does not say how long its key
//! is, so it keeps its own (Microsoft's) at configure, and `steer_by_rss` gives
//! it this process's key afterwards.
//! It starts DPDK in the test process (`ScratchEal`); root is not needed.

use dataplane::dpdk::port::RssTable;
use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{Mempool, Port, PortSpec};
use dataplane::lb::rss_key;

/// The key the device hashes with, as it reads it back (its first 40 bytes).
fn device_key(port: &Port) -> [u8; 40] {
    let mut buf = [0u8; 256];
    let mut conf = dpdk_sys::rte_eth_rss_conf {
        rss_key: buf.as_mut_ptr(),
        rss_key_len: u8::MAX,
        ..Default::default()
    };
    // SAFETY: `buf` holds more than the 255 bytes `rss_key_len` allows.
    let ret = unsafe { dpdk_sys::rte_eth_dev_rss_hash_conf_get(port.id(), &mut conf) };
    assert_eq!(ret, 0, "read the RSS key of {}", port.name());
    buf[..40].try_into().unwrap()
}

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

#[test]
fn the_process_key_and_the_redirection_table_reach_the_device() {
    let _eal =
        ScratchEal::start("weir-rss", 64, &["net_null0", "net_null1", "net_null2"]).expect("EAL");
    let pool = Mempool::new("rss", 1023, 0, 2176, 0).expect("mempool");
    let ours = *rss_key::process();

    for (name, queues) in [("net_null0", 2u16), ("net_null1", 4)] {
        let mut port = Port::open(name, name).expect("open");
        port.start(&PortSpec::queues(queues, 256), &pool)
            .expect("start");
        assert!(port.rss(), "{name}: RSS over {queues} queues");
        // At start, the device's own key (it says nothing of its length, so
        // none was given at configure) and a table of zeros.
        let own = device_key(&port);
        assert_eq!(own[..2], [0x6d, 0x5a], "{name}: net_null's default key");
        assert_ne!(own, ours);
        assert_eq!(device_table(&port, 128), vec![0; 128], "{name}: at start");

        let expected: Vec<u16> = (0..128).map(|i| i % queues).collect();
        assert_eq!(
            port.steer_by_rss().expect("steer"),
            Some(RssTable {
                key: ours,
                reta: expected.clone()
            }),
            "{name}: the key and table Weir reports"
        );
        assert_eq!(device_key(&port), ours, "{name}: the key the device holds");
        assert_eq!(
            device_table(&port, 128),
            expected,
            "{name}: the table the device holds"
        );
        // Asked again (a restart of the workers), nothing changes.
        assert_eq!(
            port.steer_by_rss().expect("steer").map(|t| t.key),
            Some(ours)
        );
        port.stop();
    }
    // One queue: nothing to spread, so no RSS, no steering, and the device's
    // key is left alone.
    let mut one = Port::open("net_null2", "one queue").expect("open");
    one.start(&PortSpec::queues(1, 256), &pool).expect("start");
    assert!(!one.rss());
    assert_eq!(one.steer_by_rss().expect("steer"), None);
    assert_ne!(device_key(&one), ours);
    one.stop();
}
