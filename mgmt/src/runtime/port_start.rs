//! Starting a configured port: its device (and, for af_packet, the kernel
//! interface's MTU), its host interface, and what the workers need to know of
//! it (its addresses, MAC, MTU).

use crate::config::model::Port as PortCfg;
use crate::eal_args;
use crate::hostif;
use crate::kernel_ring::RingDrops;
use crate::log;
use crate::manager::PortView;
use dataplane::dpdk::error::DpdkError;
use dataplane::dpdk::port::PortStats;
use dataplane::dpdk::{Mempool, Port, PortSpec};
use dataplane::pipeline::local::LocalAddrs;
use dataplane::wire::ethernet::format_mac;
use std::sync::Arc;

/// A configured port with its host interface.
pub(super) struct PortState {
    pub(super) phys: Port,
    pub(super) host: Option<Port>,
    pub(super) local: LocalAddrs,
    pub(super) workers: u32,
    /// For an af_packet port: its kernel rings' drops.
    ring_drops: Option<Arc<RingDrops>>,
}

impl PortState {
    /// The device's counters, with what its kernel rings dropped counted as
    /// `missed` (on a NIC the device counts that itself).
    pub(super) fn stats(&self) -> impl Fn() -> PortStats + Send + 'static {
        let (id, ring) = (self.phys.id(), self.ring_drops.clone());
        move || {
            let mut s = Port::stats_of(id);
            if let Some(r) = &ring {
                s.rx_missed += r.drops();
            }
            s
        }
    }

    /// What the manager reads of the port (configured as `c`): its name,
    /// driver, MAC, link and counters.
    pub(super) fn view(&self, c: &PortCfg) -> PortView {
        let id = self.phys.id();
        // A device on a kernel interface (af_packet, af_xdp, pcap) says its
        // link is up from start to stop: the interface tells the truth.
        let iface = c.device.kernel_iface().map(str::to_string);
        PortView {
            name: c.name.clone(),
            driver: self.phys.driver(),
            mac: self.local.mac,
            link: Box::new(move || {
                let l = Port::link_of(id);
                let kernel = iface.as_deref().and_then(|i| hostif::link_up(i).ok());
                (l.up && kernel.unwrap_or(true), l.speed_mbps)
            }),
            stats: Box::new(self.stats()),
        }
    }
}

/// DPDK 22.11's af_packet says it takes 1500 bytes at most (its frames hold
/// more, see `Device::eal_arg`): for a larger MTU the device is given its limit
/// and the kernel interface, which decides what the socket sends and receives,
/// the port's MTU. `Some((interface, device MTU))` when that is needed.
fn af_packet_kernel_mtu<'a>(p: &'a PortCfg, phys: &Port) -> Result<Option<(&'a str, u16)>, String> {
    let max = phys.max_mtu().map_err(|e| e.to_string())?;
    match p.device.kernel_iface() {
        Some(iface) if p.device.is_af_packet() && p.mtu > max => Ok(Some((iface, max))),
        _ => Ok(None),
    }
}

/// For an af_packet port, what reads its kernel rings' drops (logged when
/// nothing can).
fn kernel_ring_drops(p: &PortCfg) -> Option<Arc<RingDrops>> {
    let iface = p
        .device
        .kernel_iface()
        .filter(|_| p.device.is_af_packet())?;
    match RingDrops::find(iface) {
        Ok(r) if r.sockets() > 0 => Some(Arc::new(r)),
        found => {
            log!(
                "port {}: the kernel's drops on {iface} cannot be read ({}); missed stays 0",
                p.name,
                found
                    .err()
                    .map_or("no packet socket".into(), |e| e.to_string())
            );
            None
        }
    }
}

/// Opens and starts port `index` as `p` configures it, with queues for
/// `workers`, and its host interface when it has one.
pub(super) fn start_port(
    index: usize,
    p: &PortCfg,
    workers: u16,
    pool: &Mempool,
    mbufs: u32,
) -> Result<PortState, String> {
    // A queue that cannot fill its ring says "cannot allocate memory": say
    // which setting holds the mbufs.
    let started = |e: DpdkError| {
        if e.code == libc::ENOMEM {
            format!("{e} (RX queues fill their rings from the packet pool, eal.mbufs = {mbufs})")
        } else {
            e.to_string()
        }
    };
    // Every worker may transmit on every port (balanced traffic leaves by the
    // backend's port); only `p.workers` of them poll it.
    let mut phys = Port::open(p.device.dpdk_name(), &p.name).map_err(|e| e.to_string())?;
    let kernel_mtu = af_packet_kernel_mtu(p, &phys)?;
    let spec = PortSpec {
        rx_queues: p.workers as u16,
        tx_queues: workers,
        rx_desc: p.rx_desc,
        tx_desc: p.tx_desc,
        mtu: Some(kernel_mtu.map_or(p.mtu, |(_, device)| device)),
        promiscuous: p.promiscuous,
    };
    phys.start(&spec, pool).map_err(started)?;
    if let Some((iface, _)) = kernel_mtu {
        hostif::set_mtu(iface, p.mtu).map_err(|e| format!("port {}: {e}", p.name))?;
    }
    let mac = phys.mac();
    let link = phys.link();
    log!(
        "port {}: {} driver {}, MAC {}, {} queue pair(s), RSS {}, IPv4 checksum offload {}, link {}",
        p.name,
        p.device.dpdk_name(),
        phys.driver(),
        format_mac(&mac),
        p.workers,
        if phys.rss() { "on" } else { "off" },
        if phys.rx_ip_checksum() { "on" } else { "off" },
        if link.up { "up" } else { "down" }
    );
    let mut host_mtu = 0;
    let host = match &p.host_interface {
        None => None,
        Some(ifname) => {
            if let Some(kif) = p.device.kernel_iface() {
                hostif::quiet_kernel_on(kif).map_err(|e| e.to_string())?;
            }
            let label = format!("{}-host", p.name);
            let mut tap =
                Port::open(&eal_args::host_tap_name(index), &label).map_err(|e| e.to_string())?;
            // DPDK 22.11's TAP takes at most a 1500-byte-class MTU: with a jumbo
            // port the host interface (management traffic only) runs smaller, and
            // TCP's MSS keeps the kernel's own connections within it.
            let tap_mtu = p.mtu.min(tap.max_mtu().map_err(|e| e.to_string())?);
            if tap_mtu < p.mtu {
                log!(
                    "port {}: host interface {ifname} MTU {tap_mtu} (the TAP's limit; the port runs {})",
                    p.name,
                    p.mtu
                );
            }
            let tap_spec = PortSpec {
                promiscuous: false,
                tx_queues: p.workers as u16,
                mtu: Some(tap_mtu),
                ..spec.clone()
            };
            tap.start(&tap_spec, pool).map_err(started)?;
            tap.set_mac(mac).map_err(|e| e.to_string())?;
            hostif::configure(ifname, tap_mtu, &p.ipv4, &p.ipv6).map_err(|e| e.to_string())?;
            host_mtu = tap_mtu;
            log!(
                "port {}: host interface {ifname} carries {}",
                p.name,
                p.ipv4
                    .iter()
                    .map(|a| a.to_string())
                    .chain(p.ipv6.iter().map(|a| a.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(tap)
        }
    };
    let local = LocalAddrs {
        mac,
        vlan: p.vlan,
        mtu: p.mtu,
        ipv4: p.ipv4.iter().map(|c| c.addr).collect(),
        ipv6: p.ipv6.iter().map(|c| c.addr).collect(),
        host_interface: host.is_some(),
        host_mtu,
        // The kernel cuts a longer frame to the frame's size without saying so:
        // only a frame shorter than that is known whole.
        reassembled_len: p.device.reassembled_len(p.mtu).map_or(0, |n| n - 1),
    };
    let ring_drops = kernel_ring_drops(p);
    Ok(PortState {
        phys,
        host,
        local,
        workers: p.workers,
        ring_drops,
    })
}
