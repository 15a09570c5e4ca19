//! The configuration file as written (serde, unknown keys rejected) and the validated
//! model the runtime uses.

use super::cidr::{Cidr4, Cidr6};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub eal: EalConfig,
    #[serde(default)]
    pub port: Vec<PortConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// CPU of the management (main) lcore.
    #[serde(default)]
    pub main_cpu: u32,
    /// One CPU per worker lcore; a CPU may repeat to share it between workers.
    pub worker_cpus: Vec<u32>,
    /// Use hugepages; `false` runs with `--no-huge`.
    #[serde(default)]
    pub hugepages: bool,
    /// Memory for DPDK in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Runtime-file prefix; without it the EAL runs `--in-memory` and leaves no files.
    #[serde(default)]
    pub file_prefix: Option<String>,
    /// Mbufs in the packet pool.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    /// DPDK log level (`--log-level`), e.g. "notice" or "lib.eal:debug".
    #[serde(default)]
    pub log_level: Option<String>,
    /// Further EAL arguments, passed as they are.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

fn default_memory_mb() -> u32 {
    256
}
fn default_mbufs() -> u32 {
    8191
}
fn default_desc() -> u16 {
    1024
}
fn default_mtu() -> u16 {
    1500
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub name: String,
    /// A DPDK virtual device (`net_af_packet0,iface=eth1`, `net_tap0`, ...).
    #[serde(default)]
    pub device: Option<String>,
    /// A PCI device bound to vfio-pci (`0000:03:00.0`).
    #[serde(default)]
    pub pci: Option<String>,
    /// Workers polling this port (one RX queue each); default: all workers.
    #[serde(default)]
    pub workers: Option<u32>,
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    #[serde(default)]
    pub promiscuous: bool,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    #[serde(default)]
    pub vlan: Option<u16>,
    /// The appliance's own IPv4 addresses on this port, `ADDR/PREFIX`.
    #[serde(default)]
    pub ipv4: Vec<String>,
    /// The appliance's own IPv6 addresses on this port, `ADDR/PREFIX`.
    #[serde(default)]
    pub ipv6: Vec<String>,
    /// Name of the TAP interface that carries this port's addresses to the kernel.
    #[serde(default)]
    pub host_interface: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub eal: Eal,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone)]
pub struct Eal {
    pub main_cpu: u32,
    pub worker_cpus: Vec<u32>,
    pub hugepages: bool,
    pub memory_mb: u32,
    pub file_prefix: Option<String>,
    pub mbufs: u32,
    pub log_level: Option<String>,
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A vdev argument; `dpdk_name` is the part before the first comma.
    Vdev {
        args: String,
        dpdk_name: String,
    },
    Pci(String),
}

impl Device {
    pub fn dpdk_name(&self) -> &str {
        match self {
            Device::Vdev { dpdk_name, .. } => dpdk_name,
            Device::Pci(addr) => addr,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub device: Device,
    pub workers: u32,
    pub mtu: u16,
    pub promiscuous: bool,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub vlan: Option<u16>,
    pub ipv4: Vec<Cidr4>,
    pub ipv6: Vec<Cidr6>,
    pub host_interface: Option<String>,
}

impl Config {
    pub fn workers(&self) -> usize {
        self.eal.worker_cpus.len()
    }
}
