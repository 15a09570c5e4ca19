//! How large the packet pool's mbufs are, and whether the pool has room left
//! for the workers once the ports' queues have filled their rings.

use crate::config::model::Config;
use dataplane::dpdk::mempool::PoolUse;

/// DPDK's headroom before a packet's data in every mbuf.
const HEADROOM: u16 = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;

/// The data room (headroom included) each mbuf needs: the largest frame of
/// any port (its MTU, Ethernet header, VLAN tag and FCS), or an af_packet
/// port's frame, which holds what its kernel reassembled; never less than
/// DPDK's default.
pub(super) fn data_room(cfg: &Config) -> u16 {
    let max_mtu = cfg.ports.iter().map(|p| p.mtu).max().unwrap_or(1500);
    let af_packet = cfg
        .ports
        .iter()
        .filter_map(|p| p.device.mbuf_data_len(p.mtu))
        .max()
        .unwrap_or(0);
    let frame = max_mtu as usize + 14 + 4 + 4;
    let room = HEADROOM as usize + frame.max(af_packet);
    (dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as usize)
        .max(room)
        .min(u16::MAX as usize) as u16
}

/// The least each worker needs to hold at once: its pool cache (up to 1.5
/// times the cache size, 256) and a burst in each of its stages. Hand-off rings
/// and kept fragments may take more under load.
pub(super) const MBUFS_PER_WORKER: u32 = 384 + 4 * 32;

/// Refuses to run when the devices' queues left too few mbufs for the workers
/// to take what they may hold: packets would be lost under load (af_packet
/// does not even count them).
pub(super) fn pool_room(u: PoolUse, workers: usize) -> Result<(), String> {
    let free = u.capacity - u.in_use;
    let want = MBUFS_PER_WORKER * workers as u32;
    if free < want {
        return Err(format!(
            "eal.mbufs = {}: the ports' queues took {}, leaving {free} for {workers} worker(s), \
             which need at least {want}; raise eal.mbufs to at least {}",
            u.capacity,
            u.in_use,
            u.in_use + want
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    /// The example configuration, its one port on `device` with `mtu`.
    fn example(device: &str, mtu: u16) -> Config {
        let src = include_str!("../../../examples/weir.toml")
            .replace("net_af_packet0,iface=wan0,qpairs=1", device)
            .replace("mtu = 1500", &format!("mtu = {mtu}"));
        config::parse(&src, std::path::Path::new("x")).expect("a valid config")
    }

    #[test]
    fn an_mtu_port_takes_the_default_room_until_its_frame_needs_more() {
        let default = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
        assert_eq!(data_room(&example("net_null0", 1500)), default);
        // The frame after the headroom: MTU, Ethernet header, VLAN tag, FCS.
        let jumbo = example("net_null0", 9000);
        assert_eq!(data_room(&jumbo), HEADROOM + 9000 + 14 + 4 + 4);
    }

    #[test]
    fn an_af_packet_port_takes_room_for_its_whole_kernel_frame() {
        let cfg = example("net_af_packet0,iface=wan0,qpairs=1", 1500);
        let frame = cfg.ports[0].device.mbuf_data_len(1500).expect("af_packet");
        assert!(
            frame > 1522,
            "a frame of {frame} bytes holds reassembled datagrams"
        );
        assert_eq!(data_room(&cfg) as usize, HEADROOM as usize + frame);
    }

    #[test]
    fn the_pool_must_leave_each_worker_what_it_may_hold() {
        // 512 a worker: a cache of up to 384 and four bursts of 32.
        let u = |capacity, in_use| PoolUse { capacity, in_use };
        assert_eq!(pool_room(u(8191, 8191 - 1024), 2), Ok(()));
        let short = pool_room(u(8191, 8191 - 1023), 2).unwrap_err();
        assert!(
            short.contains("leaving 1023 for 2 worker(s), which need at least 1024"),
            "{short}"
        );
        assert!(
            short.contains("raise eal.mbufs to at least 8192"),
            "{short}"
        );
        assert_eq!(pool_room(u(8191, 8191 - 512), 1), Ok(()));
        assert!(pool_room(u(8191, 8191 - 511), 1).is_err());
    }
}
