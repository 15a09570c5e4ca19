//! The configuration file as written (serde, unknown keys rejected) and the validated
//! model the runtime uses.

pub use super::device::Device;

use super::cidr::{Cidr4, Cidr6};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub eal: EalConfig,
    #[serde(default)]
    pub port: Vec<PortConfig>,
    #[serde(default)]
    pub conn_table: ConnTableConfig,
    #[serde(default)]
    pub pool: Vec<PoolConfig>,
    #[serde(default)]
    pub service: Vec<ServiceConfig>,
    #[serde(default)]
    pub admin: AdminConfig,
}

/// The admin socket and the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Unix socket of the admin CLI (mode 0600, owned by the running user).
    #[serde(default = "default_socket")]
    pub socket: String,
    /// Prometheus text endpoint, `ADDR:PORT`; empty to disable.
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Audit log file (one line per change); the log on stderr always gets them.
    #[serde(default)]
    pub audit_log: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: default_socket(),
            metrics: default_metrics(),
            audit_log: None,
        }
    }
}

fn default_socket() -> String {
    "/run/weir/admin.sock".into()
}
fn default_metrics() -> String {
    "127.0.0.1:9100".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// No active check: backends count as up.
    #[default]
    None,
    Tcp,
    Http,
}

/// Active health check of a pool's backends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default)]
    pub kind: CheckKind,
    #[serde(default = "default_interval")]
    pub interval_ms: u32,
    #[serde(default = "default_check_timeout")]
    pub timeout_ms: u32,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Each interval is shortened or lengthened by up to this much, at random.
    #[serde(default)]
    pub jitter_ms: u32,
    /// Port to check; default: the backend's port.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_path")]
    pub http_path: String,
    /// Host header; default: the backend's address.
    #[serde(default)]
    pub http_host: Option<String>,
    #[serde(default = "default_status")]
    pub http_status: Vec<u16>,
    /// The body must contain this.
    #[serde(default)]
    pub http_body: Option<String>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            kind: CheckKind::None,
            interval_ms: default_interval(),
            timeout_ms: default_check_timeout(),
            rise: default_rise(),
            fall: default_fall(),
            jitter_ms: 0,
            port: None,
            http_path: default_path(),
            http_host: None,
            http_status: default_status(),
            http_body: None,
        }
    }
}

fn default_interval() -> u32 {
    2000
}
fn default_check_timeout() -> u32 {
    1000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_path() -> String {
    "/".into()
}
fn default_status() -> Vec<u16> {
    vec![200]
}
fn default_drain() -> u32 {
    300
}

/// Per-worker connection table: size and timeouts (seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnTableConfig {
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    #[serde(default = "default_syn")]
    pub tcp_syn_timeout: u32,
    #[serde(default = "default_established")]
    pub tcp_established_timeout: u32,
    #[serde(default = "default_fin")]
    pub tcp_fin_timeout: u32,
    #[serde(default = "default_close")]
    pub tcp_close_timeout: u32,
    #[serde(default = "default_udp")]
    pub udp_timeout: u32,
    #[serde(default = "default_tcp_idle_reclaim")]
    pub tcp_idle_reclaim: u32,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        ConnTableConfig {
            capacity: default_capacity(),
            tcp_syn_timeout: default_syn(),
            tcp_established_timeout: default_established(),
            tcp_fin_timeout: default_fin(),
            tcp_close_timeout: default_close(),
            udp_timeout: default_udp(),
            tcp_idle_reclaim: default_tcp_idle_reclaim(),
        }
    }
}

fn default_capacity() -> u32 {
    262_144
}
fn default_syn() -> u32 {
    30
}
fn default_established() -> u32 {
    900
}
fn default_tcp_idle_reclaim() -> u32 {
    300
}
fn default_fin() -> u32 {
    120
}
fn default_close() -> u32 {
    10
}
fn default_udp() -> u32 {
    300
}
fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    #[serde(default)]
    pub backend: Vec<BackendConfig>,
    #[serde(default)]
    pub health: HealthConfig,
    /// Seconds a draining backend keeps its existing connections.
    #[serde(default = "default_drain")]
    pub drain_timeout: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    pub address: String,
    /// Defaults to the service's port.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModeConfig {
    #[default]
    Fullnat,
    Dr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerConfig {
    #[default]
    RingHash,
    RoundRobin,
    WeightedRoundRobin,
    LeastConn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HashKeyConfig {
    #[default]
    FiveTuple,
    Source,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    pub vip: String,
    pub port: u16,
    pub protocol: Protocol,
    #[serde(default)]
    pub mode: ModeConfig,
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub hash_key: HashKeyConfig,
    /// Keys the flow hash that picks backends (give both appliances of a pair
    /// the same); without it, the published seed, which lets clients choose
    /// flows that all land on one backend.
    #[serde(default)]
    pub hash_secret: Option<String>,
    pub pool: String,
    /// Forward fragments by a (source, destination, protocol) hash (`dr` only).
    #[serde(default)]
    pub fragments: bool,
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
    /// Microseconds an idle worker sleeps after a run of empty polls; 0 (the
    /// default) polls without pause.
    #[serde(default)]
    pub idle_sleep_us: u32,
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
    /// FullNAT source addresses on this port (plain addresses, on-link).
    #[serde(default)]
    pub local_ipv4: Vec<String>,
    #[serde(default)]
    pub local_ipv6: Vec<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub eal: Eal,
    pub ports: Vec<Port>,
    pub conn_table: ConnTableConfig,
    pub pools: Vec<Pool>,
    pub services: Vec<Service>,
    pub admin: AdminConfig,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub backends: Vec<Backend>,
    pub health: HealthConfig,
    pub drain_timeout: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub addr: std::net::IpAddr,
    pub port: Option<u16>,
    pub weight: u32,
    /// The port whose prefix holds the address.
    pub port_index: usize,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub vip: std::net::IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: ModeConfig,
    pub scheduler: SchedulerConfig,
    pub hash_key: HashKeyConfig,
    /// Seed of the flow hash (from `hash_secret`, or the published one).
    pub hash_seed: u64,
    /// Index into `Config::pools`.
    pub pool: usize,
    pub fragments: bool,
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
    pub idle_sleep_us: u32,
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
    pub local_ipv4: Vec<std::net::Ipv4Addr>,
    pub local_ipv6: Vec<std::net::Ipv6Addr>,
}

impl Config {
    pub fn workers(&self) -> usize {
        self.eal.worker_cpus.len()
    }
}
