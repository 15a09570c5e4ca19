//! Ethernet ports: look-up by name, configuration with N RX/TX queues (RSS where the
//! device has it), MTU, promiscuous mode, link status, start/stop/close.

mod rss;

pub use rss::RssTable;

use super::burst::{RxQueue, TxQueue};
use super::error::DpdkError;
use super::mempool::Mempool;
use crate::lb::rss_key;
use crate::lb::rss_steer::KEY_LEN;
use rss::{rss_key_for, RSS_WANTED};
use std::ffi::CString;

/// How to bring a port up.
#[derive(Debug, Clone)]
pub struct PortSpec {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: Option<u16>,
    pub promiscuous: bool,
}

impl PortSpec {
    /// `queues` RX and as many TX queues of `desc` descriptors each, the
    /// device's MTU, not promiscuous: what tests and benchmarks start ports with.
    pub fn queues(queues: u16, desc: u16) -> PortSpec {
        PortSpec {
            rx_queues: queues,
            tx_queues: queues,
            rx_desc: desc,
            tx_desc: desc,
            mtu: None,
            promiscuous: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// What the device itself counted (`rte_eth_stats`): packets and bytes, and
/// the packets it lost before a worker saw them, which the workers' own
/// counters cannot show. Drivers that do not count a field report zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the device: its RX queue was full (the workers fell behind).
    pub rx_missed: u64,
    /// Received in error (bad frames).
    pub rx_errors: u64,
    /// RX failed for want of an mbuf (the pool ran dry).
    pub rx_no_mbuf: u64,
    /// Failed to transmit.
    pub tx_errors: u64,
}

/// `RTE_ETH_RX_OFFLOAD_IPV4_CKSUM` (a macro bindgen cannot evaluate).
const RX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;

/// A probed port. Dropping it stops and closes it.
pub struct Port {
    id: u16,
    name: String,
    started: bool,
    rx_queues: u16,
    tx_queues: u16,
    taken_rx: Vec<bool>,
    taken_tx: Vec<bool>,
    rss: bool,
    rx_ip_checksum: bool,
}

impl Port {
    /// The port DPDK created for device `dpdk_name` (a vdev name such as
    /// `net_af_packet0`, or a PCI address). `label` names it in errors.
    pub fn open(dpdk_name: &str, label: &str) -> Result<Port, DpdkError> {
        let c = CString::new(dpdk_name).map_err(|_| DpdkError {
            op: format!("port {label}: device name {dpdk_name:?}"),
            code: libc::EINVAL,
        })?;
        let mut id = 0u16;
        // SAFETY: c is a valid C string; id is written on success.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(DpdkError::from_ret(
                format!(
                    "port {label}: no DPDK device named {dpdk_name} (did the driver probe it?)"
                ),
                ret,
            ));
        }
        Ok(Port {
            id,
            name: label.to_string(),
            started: false,
            rx_queues: 0,
            tx_queues: 0,
            taken_rx: Vec::new(),
            taken_tx: Vec::new(),
            rss: false,
            rx_ip_checksum: false,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether RSS spreads flows over the RX queues.
    pub fn rss(&self) -> bool {
        self.rss
    }

    /// Whether the NIC verifies IPv4 header checksums on receive.
    pub fn rx_ip_checksum(&self) -> bool {
        self.rx_ip_checksum
    }

    pub fn socket(&self) -> i32 {
        // SAFETY: valid port id.
        unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) }
    }

    /// The device's driver name (e.g. `net_af_packet`).
    pub fn driver(&self) -> String {
        match self.info() {
            Ok(info) if !info.driver_name.is_null() => {
                // SAFETY: driver_name points at a static string of the driver.
                unsafe { std::ffi::CStr::from_ptr(info.driver_name) }
                    .to_string_lossy()
                    .into_owned()
            }
            _ => String::from("unknown"),
        }
    }

    fn info(&self) -> Result<dpdk_sys::rte_eth_dev_info, DpdkError> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) };
        self.check(ret, "device info")?;
        Ok(info)
    }

    /// `Err` naming the port and `what` when a DPDK call returned `ret` < 0.
    fn check(&self, ret: i32, what: &str) -> Result<(), DpdkError> {
        if ret < 0 {
            return Err(DpdkError::from_ret(
                format!("port {}: {what}", self.name),
                ret,
            ));
        }
        Ok(())
    }

    /// The largest MTU the device takes.
    pub fn max_mtu(&self) -> Result<u16, DpdkError> {
        self.info().map(|i| mtu_limit(&i))
    }

    /// Configures queues, MTU and offloads, starts the port, and sets promiscuous mode.
    pub fn start(&mut self, spec: &PortSpec, pool: &Mempool) -> Result<(), DpdkError> {
        let name = self.name.clone();
        let err = |what: &str, ret: i32| DpdkError::from_ret(format!("port {name}: {what}"), ret);
        let info = self.info()?;
        if spec.rx_queues > info.max_rx_queues || spec.tx_queues > info.max_tx_queues {
            return Err(DpdkError {
                op: format!(
                    "port {name}: {} RX / {} TX queues wanted, device has at most {} / {}",
                    spec.rx_queues, spec.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
                code: libc::EINVAL,
            });
        }
        if let Some(mtu) = spec.mtu {
            let max = mtu_limit(&info);
            if mtu < info.min_mtu || mtu > max {
                return Err(DpdkError {
                    op: format!(
                        "port {name}: MTU {mtu} is outside what the device takes ({}..={})",
                        info.min_mtu, max
                    ),
                    code: libc::EINVAL,
                });
            }
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        let rss_hf = info.flow_type_rss_offloads & RSS_WANTED;
        self.rss = spec.rx_queues > 1 && rss_hf != 0;
        let mut key_bytes = rss_key_for(rss_key::process(), info.hash_key_size);
        if self.rss {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            // Drivers that say their key is 40 bytes or more take ours now;
            // `steer_by_rss` checks, and offers it again to those that did not.
            if info.hash_key_size as usize >= KEY_LEN {
                // DPDK only reads the key (the pointer is *mut for historical reasons).
                conf.rx_adv_conf.rss_conf.rss_key = key_bytes.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = key_bytes.len() as u8;
            }
        }
        if let Some(mtu) = spec.mtu {
            conf.rxmode.mtu = mtu as u32;
        }
        // Let the NIC verify IPv4 header checksums where it can (mbuf flags).
        self.rx_ip_checksum = info.rx_offload_capa & RX_OFFLOAD_IPV4_CKSUM != 0;
        if self.rx_ip_checksum {
            conf.rxmode.offloads |= RX_OFFLOAD_IPV4_CKSUM;
        }
        // SAFETY: conf is a valid, initialised configuration for this port.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_configure(self.id, spec.rx_queues, spec.tx_queues, &conf)
        };
        if ret < 0 {
            return Err(err("configure", ret));
        }
        let (mut rxd, mut txd) = (spec.rx_desc, spec.tx_desc);
        // SAFETY: valid out-parameters.
        let ret =
            unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rxd, &mut txd) };
        if ret < 0 {
            return Err(err("adjust descriptors", ret));
        }
        let socket = self.socket().max(0) as u32;
        for q in 0..spec.rx_queues {
            // SAFETY: configured port, valid pool; NULL rx_conf means driver defaults.
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rxd,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if ret < 0 {
                return Err(err(&format!("RX queue {q} setup"), ret));
            }
        }
        for q in 0..spec.tx_queues {
            // SAFETY: configured port; NULL tx_conf means driver defaults.
            let ret = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(self.id, q, txd, socket, std::ptr::null())
            };
            if ret < 0 {
                return Err(err(&format!("TX queue {q} setup"), ret));
            }
        }
        if let Some(mtu) = spec.mtu {
            // SAFETY: valid port. Some virtual devices do not support it: not fatal.
            let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu) };
            if ret < 0 && ret != -libc::ENOTSUP {
                return Err(err(&format!("set MTU {mtu}"), ret));
            }
        }
        // SAFETY: all queues are set up.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        if ret < 0 {
            return Err(err("start", ret));
        }
        self.started = true;
        // SAFETY: started port.
        let ret = unsafe {
            if spec.promiscuous {
                dpdk_sys::rte_eth_promiscuous_enable(self.id)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        if ret < 0 && ret != -libc::ENOTSUP {
            return Err(err("promiscuous mode", ret));
        }
        // IPv6 neighbour discovery needs solicited-node multicast groups.
        // SAFETY: started port.
        let ret = unsafe { dpdk_sys::rte_eth_allmulticast_enable(self.id) };
        if ret < 0 && ret != -libc::ENOTSUP {
            return Err(err("all-multicast mode", ret));
        }
        self.rx_queues = spec.rx_queues;
        self.tx_queues = spec.tx_queues;
        self.taken_rx = vec![false; spec.rx_queues as usize];
        self.taken_tx = vec![false; spec.tx_queues as usize];
        Ok(())
    }

    /// Hands out RX queue `q` once; the receiver is its only user.
    pub fn take_rx_queue(&mut self, q: u16) -> Option<RxQueue> {
        let slot = self.taken_rx.get_mut(q as usize)?;
        if std::mem::replace(slot, true) {
            return None;
        }
        Some(RxQueue {
            port: self.id,
            queue: q,
        })
    }

    /// Hands out TX queue `q` once.
    pub fn take_tx_queue(&mut self, q: u16) -> Option<TxQueue> {
        let slot = self.taken_tx.get_mut(q as usize)?;
        if std::mem::replace(slot, true) {
            return None;
        }
        Some(TxQueue {
            port: self.id,
            queue: q,
        })
    }

    pub fn mac(&self) -> [u8; 6] {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid out-parameter.
        unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut a) };
        a.addr_bytes
    }

    /// Sets the port's MAC (for a TAP port, the kernel interface's MAC too).
    pub fn set_mac(&mut self, mac: [u8; 6]) -> Result<(), DpdkError> {
        let mut a = dpdk_sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: valid port and address.
        let ret = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut a) };
        self.check(ret, "set MAC")
    }

    pub fn link(&self) -> LinkStatus {
        Self::link_of(self.id)
    }

    /// Link status of port `id` (for the management core, which holds no `Port`).
    pub fn link_of(id: u16) -> LinkStatus {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid out-parameter; nowait never blocks; an unknown id leaves the
        // zeroed value (link down).
        unsafe { dpdk_sys::rte_eth_link_get_nowait(id, &mut l) };
        LinkStatus {
            up: l.link_status() as u32 == dpdk_sys::RTE_ETH_LINK_UP,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() == 1,
        }
    }

    /// The device's counters of port `id` (for the management core, which holds
    /// no `Port`); zero for an unknown id.
    pub fn stats_of(id: u16) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid out-parameter; the call only reads the driver's counters
        // (an unknown id returns an error and leaves the zeroed value).
        unsafe { dpdk_sys::rte_eth_stats_get(id, &mut s) };
        PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            rx_no_mbuf: s.rx_nombuf,
            tx_errors: s.oerrors,
        }
    }

    /// Stops the port (idempotent). Workers must no longer poll it.
    pub fn stop(&mut self) {
        if self.started {
            // SAFETY: valid started port; no lcore uses its queues any more.
            unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
            self.started = false;
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: the port is stopped and no queue handle is in use.
        unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
    }
}

/// ethdev checks the frame (MTU + Ethernet header + CRC) against max_rx_pktlen as
/// well as the MTU against max_mtu.
fn mtu_limit(info: &dpdk_sys::rte_eth_dev_info) -> u16 {
    (info.max_mtu as u32).min(info.max_rx_pktlen.saturating_sub(18)) as u16
}
