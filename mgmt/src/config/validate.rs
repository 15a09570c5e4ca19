//! Checks a parsed file and turns it into the runtime model, naming the field of
//! every problem.

use super::cidr::{Cidr4, Cidr6};
use super::error::{FieldPath, Invalid};
use super::model::*;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn invalid(path: FieldPath, message: impl Into<String>) -> Invalid {
    Invalid {
        path,
        message: message.into(),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn validate(f: FileConfig) -> Result<Config, Invalid> {
    let root = FieldPath::default();
    let eal = validate_eal(f.eal, &root.key("eal"))?;
    if f.port.is_empty() {
        return Err(invalid(
            root.key("port"),
            "at least one [[port]] is required",
        ));
    }
    let mut names = HashSet::new();
    let mut devices = HashSet::new();
    let mut hostifs = HashSet::new();
    let mut v4_seen = HashSet::new();
    let mut v6_seen = HashSet::new();
    let mut ports = Vec::new();
    for (i, p) in f.port.into_iter().enumerate() {
        let path = root.key("port").index(i);
        let port = validate_port(p, &path, eal.worker_cpus.len())?;
        if !names.insert(port.name.clone()) {
            return Err(invalid(
                path.key("name"),
                format!("port name {:?} is used twice", port.name),
            ));
        }
        if !devices.insert(port.device.dpdk_name().to_string()) {
            return Err(invalid(
                path.key("device"),
                format!("device {:?} is used by two ports", port.device.dpdk_name()),
            ));
        }
        if let Some(h) = &port.host_interface {
            if !hostifs.insert(h.clone()) {
                return Err(invalid(
                    path.key("host_interface"),
                    format!("host interface {h:?} is used by two ports"),
                ));
            }
        }
        for (j, a) in port.ipv4.iter().enumerate() {
            if !v4_seen.insert(a.addr) {
                return Err(invalid(
                    path.key("ipv4").index(j),
                    format!("address {} is configured twice", a.addr),
                ));
            }
        }
        for (j, a) in port.ipv6.iter().enumerate() {
            if !v6_seen.insert(a.addr) {
                return Err(invalid(
                    path.key("ipv6").index(j),
                    format!("address {} is configured twice", a.addr),
                ));
            }
        }
        ports.push(port);
    }
    for (i, p) in ports.iter().enumerate() {
        let path = root.key("port").index(i);
        for (j, a) in p.local_ipv4.iter().enumerate() {
            if !v4_seen.insert(*a) {
                return Err(invalid(
                    path.key("local_ipv4").index(j),
                    format!("address {a} is configured twice"),
                ));
            }
        }
        for (j, a) in p.local_ipv6.iter().enumerate() {
            if !v6_seen.insert(*a) {
                return Err(invalid(
                    path.key("local_ipv6").index(j),
                    format!("address {a} is configured twice"),
                ));
            }
        }
    }
    check_conn_table(&f.conn_table, &root.key("conn_table"))?;
    let pools = validate_pools(f.pool, &ports, &root)?;
    let services = validate_services(f.service, &pools, &ports, &v4_seen, &v6_seen, &root)?;
    check_admin(&f.admin, &root.key("admin"))?;
    Ok(Config {
        eal,
        ports,
        conn_table: f.conn_table,
        pools,
        services,
        admin: f.admin,
    })
}

fn check_admin(a: &AdminConfig, path: &FieldPath) -> Result<(), Invalid> {
    if a.socket.is_empty() || !a.socket.starts_with('/') || a.socket.len() > 100 {
        return Err(invalid(
            path.key("socket"),
            "an absolute path of at most 100 bytes",
        ));
    }
    if !a.metrics.is_empty() && a.metrics.parse::<std::net::SocketAddr>().is_err() {
        return Err(invalid(
            path.key("metrics"),
            format!("{:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9100)", a.metrics),
        ));
    }
    Ok(())
}

/// Validates a pool's health check.
pub fn check_health(h: &HealthConfig, path: &FieldPath) -> Result<(), Invalid> {
    if !(100..=3_600_000).contains(&h.interval_ms) {
        return Err(invalid(
            path.key("interval_ms"),
            "must be between 100 and 3600000",
        ));
    }
    if h.timeout_ms == 0 || h.timeout_ms > h.interval_ms {
        return Err(invalid(
            path.key("timeout_ms"),
            "must be between 1 and interval_ms",
        ));
    }
    if h.jitter_ms >= h.interval_ms {
        return Err(invalid(
            path.key("jitter_ms"),
            "must be less than interval_ms",
        ));
    }
    for (k, v) in [("rise", h.rise), ("fall", h.fall)] {
        if !(1..=100).contains(&v) {
            return Err(invalid(path.key(k), "must be between 1 and 100"));
        }
    }
    if !h.http_path.starts_with('/') || h.http_path.contains(char::is_whitespace) {
        return Err(invalid(
            path.key("http_path"),
            "an absolute path without spaces",
        ));
    }
    if h.http_status.is_empty() || h.http_status.iter().any(|s| !(100..=599).contains(s)) {
        return Err(invalid(
            path.key("http_status"),
            "status codes between 100 and 599",
        ));
    }
    if h.port == Some(0) {
        return Err(invalid(path.key("port"), "must be between 1 and 65535"));
    }
    Ok(())
}

fn check_conn_table(c: &ConnTableConfig, path: &FieldPath) -> Result<(), Invalid> {
    if !(16..=16_777_216).contains(&c.capacity) {
        return Err(invalid(
            path.key("capacity"),
            "must be between 16 and 16777216",
        ));
    }
    for (k, v) in [
        ("tcp_syn_timeout", c.tcp_syn_timeout),
        ("tcp_established_timeout", c.tcp_established_timeout),
        ("tcp_fin_timeout", c.tcp_fin_timeout),
        ("tcp_close_timeout", c.tcp_close_timeout),
        ("udp_timeout", c.udp_timeout),
    ] {
        if !(1..=86_400).contains(&v) {
            return Err(invalid(path.key(k), "must be between 1 and 86400 seconds"));
        }
    }
    if c.tcp_idle_reclaim > 86_400 {
        return Err(invalid(
            path.key("tcp_idle_reclaim"),
            "must be between 0 (never) and 86400 seconds",
        ));
    }
    Ok(())
}

/// The index of the port whose own prefix holds `a` (so it is reachable on-link).
pub fn port_for(a: IpAddr, ports: &[Port]) -> Option<usize> {
    ports.iter().position(|p| match a {
        IpAddr::V4(v4) => p.ipv4.iter().any(|c| in_prefix4(v4, c)),
        IpAddr::V6(v6) => p.ipv6.iter().any(|c| in_prefix6(v6, c)),
    })
}

pub fn in_prefix4(a: Ipv4Addr, c: &Cidr4) -> bool {
    let m = u32::from(c.netmask());
    u32::from(a) & m == u32::from(c.addr) & m
}

pub fn in_prefix6(a: Ipv6Addr, c: &Cidr6) -> bool {
    let bits = c.prefix as u32;
    let m = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    u128::from(a) & m == u128::from(c.addr) & m
}

fn validate_pools(
    pools: Vec<PoolConfig>,
    ports: &[Port],
    root: &FieldPath,
) -> Result<Vec<Pool>, Invalid> {
    let mut out: Vec<Pool> = Vec::new();
    let mut total = 0usize;
    for (i, p) in pools.into_iter().enumerate() {
        let path = root.key("pool").index(i);
        if !is_name(&p.name) {
            return Err(invalid(
                path.key("name"),
                "use 1 to 32 letters, digits, '-' and '_'",
            ));
        }
        if out.iter().any(|q| q.name == p.name) {
            return Err(invalid(
                path.key("name"),
                format!("pool {:?} is defined twice", p.name),
            ));
        }
        if p.backend.is_empty() {
            return Err(invalid(
                path.key("backend"),
                "a pool needs at least one [[pool.backend]]",
            ));
        }
        let mut backends: Vec<Backend> = Vec::new();
        for (j, b) in p.backend.into_iter().enumerate() {
            let bp = path.key("backend").index(j);
            if !is_name(&b.name) || backends.iter().any(|x| x.name == b.name) {
                return Err(invalid(
                    bp.key("name"),
                    format!("{:?}: backend names are unique in a pool, 1 to 32 letters, digits, '-' and '_'", b.name),
                ));
            }
            let addr: IpAddr = b.address.parse().map_err(|_| {
                invalid(
                    bp.key("address"),
                    format!("{:?} is not an IP address", b.address),
                )
            })?;
            let Some(port_index) = port_for(addr, ports) else {
                return Err(invalid(
                    bp.key("address"),
                    format!("{addr} is not in the prefix of any port's ipv4/ipv6 addresses: it is not reachable"),
                ));
            };
            if b.weight > 10_000 {
                return Err(invalid(bp.key("weight"), "must be between 0 and 10000"));
            }
            if b.port == Some(0) {
                return Err(invalid(bp.key("port"), "must be between 1 and 65535"));
            }
            backends.push(Backend {
                name: b.name,
                addr,
                port: b.port,
                weight: b.weight,
                port_index,
            });
        }
        if backends.iter().all(|b| b.weight == 0) {
            return Err(invalid(
                path.key("backend"),
                "every backend has weight 0: the pool can take no traffic",
            ));
        }
        total += backends.len();
        if total > dataplane::lb::snapshot::MAX_BACKENDS {
            return Err(invalid(
                path,
                "more backends than the appliance supports (4096)",
            ));
        }
        check_health(&p.health, &path.key("health"))?;
        if p.drain_timeout > 86_400 {
            return Err(invalid(path.key("drain_timeout"), "at most 86400 seconds"));
        }
        out.push(Pool {
            name: p.name,
            backends,
            health: p.health,
            drain_timeout: p.drain_timeout,
        });
    }
    Ok(out)
}

fn validate_services(
    services: Vec<ServiceConfig>,
    pools: &[Pool],
    ports: &[Port],
    own_v4: &HashSet<Ipv4Addr>,
    own_v6: &HashSet<Ipv6Addr>,
    root: &FieldPath,
) -> Result<Vec<Service>, Invalid> {
    let mut out: Vec<Service> = Vec::new();
    if services.len() > dataplane::lb::snapshot::MAX_SERVICES {
        return Err(invalid(root.key("service"), "at most 256 services"));
    }
    for (i, s) in services.into_iter().enumerate() {
        let path = root.key("service").index(i);
        if !is_name(&s.name) || out.iter().any(|x| x.name == s.name) {
            return Err(invalid(
                path.key("name"),
                format!(
                    "{:?}: service names are unique, 1 to 32 letters, digits, '-' and '_'",
                    s.name
                ),
            ));
        }
        let vip: IpAddr = s
            .vip
            .parse()
            .map_err(|_| invalid(path.key("vip"), format!("{:?} is not an IP address", s.vip)))?;
        let taken = match vip {
            IpAddr::V4(a) => {
                own_v4.contains(&a) || a.is_unspecified() || a.is_multicast() || a.is_broadcast()
            }
            IpAddr::V6(a) => own_v6.contains(&a) || a.is_unspecified() || a.is_multicast(),
        };
        if taken {
            return Err(invalid(
                path.key("vip"),
                format!("{vip} is a port or local address, or not unicast"),
            ));
        }
        if s.port == 0 {
            return Err(invalid(path.key("port"), "must be between 1 and 65535"));
        }
        let proto = s.protocol;
        if out
            .iter()
            .any(|x| x.vip == vip && x.port == s.port && x.protocol == proto)
        {
            return Err(invalid(
                path.key("vip"),
                format!(
                    "another service already has {vip} port {} {:?}",
                    s.port, proto
                ),
            ));
        }
        let Some(pool) = pools.iter().position(|p| p.name == s.pool) else {
            return Err(invalid(
                path.key("pool"),
                format!("no [[pool]] named {:?}", s.pool),
            ));
        };
        for b in &pools[pool].backends {
            if b.addr.is_ipv4() != vip.is_ipv4() {
                return Err(invalid(
                    path.key("pool"),
                    format!(
                        "backend {} is {} but the VIP is not: no address-family translation",
                        b.name, b.addr
                    ),
                ));
            }
            match s.mode {
                ModeConfig::Dr => {
                    if b.port.is_some_and(|p| p != s.port) {
                        return Err(invalid(
                            path.key("mode"),
                            format!("dr cannot change ports: backend {} listens on {}, the service on {}", b.name, b.port.unwrap_or(0), s.port),
                        ));
                    }
                }
                ModeConfig::Fullnat => {
                    let p = &ports[b.port_index];
                    let has_local = if vip.is_ipv4() {
                        !p.local_ipv4.is_empty()
                    } else {
                        !p.local_ipv6.is_empty()
                    };
                    if !has_local {
                        return Err(invalid(
                            path.key("mode"),
                            format!(
                                "fullnat needs a local_{} address on port {} (where backend {} is)",
                                if vip.is_ipv4() { "ipv4" } else { "ipv6" },
                                p.name,
                                b.name
                            ),
                        ));
                    }
                }
            }
            if ports[b.port_index].host_interface.is_none() {
                return Err(invalid(
                    path.key("pool"),
                    format!(
                        "port {} needs a host_interface to resolve backend {}'s MAC",
                        ports[b.port_index].name, b.name
                    ),
                ));
            }
        }
        let hash_seed = match s.hash_secret.as_deref() {
            None => dataplane::lb::flow::FLOW_HASH_SEED,
            Some(secret) if secret.chars().count() < 16 => {
                return Err(invalid(
                    path.key("hash_secret"),
                    "at least 16 characters: a secret clients cannot guess",
                ))
            }
            Some(secret) => dataplane::lb::flow::seed_from_secret(secret),
        };
        if s.fragments && s.mode != ModeConfig::Dr {
            return Err(invalid(
                path.key("fragments"),
                "fragments can only be forwarded in dr mode",
            ));
        }
        out.push(Service {
            name: s.name,
            vip,
            port: s.port,
            protocol: proto,
            mode: s.mode,
            scheduler: s.scheduler,
            hash_key: s.hash_key,
            hash_seed,
            pool,
            fragments: s.fragments,
        });
    }
    Ok(out)
}

fn validate_eal(e: EalConfig, path: &FieldPath) -> Result<Eal, Invalid> {
    if e.worker_cpus.is_empty() {
        return Err(invalid(
            path.key("worker_cpus"),
            "at least one worker is required (zero workers given)",
        ));
    }
    const MAX_CPU: u32 = 1023;
    if e.main_cpu > MAX_CPU {
        return Err(invalid(path.key("main_cpu"), "CPU id above 1023"));
    }
    for (i, c) in e.worker_cpus.iter().enumerate() {
        if *c > MAX_CPU {
            return Err(invalid(
                path.key("worker_cpus").index(i),
                "CPU id above 1023",
            ));
        }
    }
    if e.worker_cpus.len() > 127 {
        return Err(invalid(path.key("worker_cpus"), "at most 127 workers"));
    }
    if e.memory_mb < 64 {
        return Err(invalid(path.key("memory_mb"), "at least 64 MiB is needed"));
    }
    if e.idle_sleep_us > 100_000 {
        return Err(invalid(path.key("idle_sleep_us"), "at most 100000 (0.1 s)"));
    }
    if e.mbufs < 1024 {
        return Err(invalid(path.key("mbufs"), "at least 1024 mbufs are needed"));
    }
    if let Some(p) = &e.file_prefix {
        if !is_name(p) {
            return Err(invalid(
                path.key("file_prefix"),
                "use letters, digits, '-' and '_' only",
            ));
        }
    }
    Ok(Eal {
        main_cpu: e.main_cpu,
        worker_cpus: e.worker_cpus,
        hugepages: e.hugepages,
        memory_mb: e.memory_mb,
        file_prefix: e.file_prefix,
        mbufs: e.mbufs,
        log_level: e.log_level,
        extra_args: e.extra_args,
        idle_sleep_us: e.idle_sleep_us,
    })
}

fn validate_port(p: PortConfig, path: &FieldPath, workers: usize) -> Result<Port, Invalid> {
    if !is_name(&p.name) {
        return Err(invalid(
            path.key("name"),
            format!("{:?}: use 1 to 32 letters, digits, '-' and '_'", p.name),
        ));
    }
    let device = match (p.device, p.pci) {
        (Some(d), None) => {
            let dpdk_name = d.split(',').next().unwrap_or_default().trim().to_string();
            if !dpdk_name.starts_with("net_") && !dpdk_name.starts_with("eth_") {
                return Err(invalid(
                    path.key("device"),
                    format!("{d:?} is not a DPDK network vdev (net_af_packet0,iface=..., net_tap0, ...)"),
                ));
            }
            let dev = Device::Vdev { args: d, dpdk_name };
            if let Some((block, frame)) = dev.af_packet_blocks_misfit() {
                return Err(invalid(
                    path.key("device"),
                    format!("af_packet blocksz {block} must be a multiple of framesz {frame}"),
                ));
            }
            dev
        }
        (None, Some(pci)) => {
            if !is_pci_address(&pci) {
                return Err(invalid(
                    path.key("pci"),
                    format!("{pci:?} is not a PCI address like 0000:03:00.0"),
                ));
            }
            Device::Pci(pci)
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                path.key("pci"),
                "give either device or pci, not both",
            ))
        }
        (None, None) => {
            return Err(invalid(
                path.key("device"),
                "a port needs a device (a DPDK vdev) or a pci address",
            ))
        }
    };
    let w = p.workers.unwrap_or(workers as u32);
    if w == 0 || w as usize > workers {
        return Err(invalid(
            path.key("workers"),
            format!("must be between 1 and the number of workers ({workers})"),
        ));
    }
    if !(68..=9600).contains(&p.mtu) {
        return Err(invalid(path.key("mtu"), "must be between 68 and 9600"));
    }
    // An af_packet frame size the operator set must hold an MTU-sized frame
    // with a VLAN tag (the kernel cuts a longer one).
    let frame = p.mtu as usize + 18;
    if let Some(held) = device.reassembled_len(p.mtu).filter(|&h| h < frame) {
        return Err(invalid(
            path.key("device"),
            format!(
                "af_packet framesz holds frames of {held} bytes, mtu {} needs {frame}: \
                 raise framesz or leave it out",
                p.mtu
            ),
        ));
    }
    for (k, d) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
        if !(32..=16384).contains(&d) || !d.is_power_of_two() {
            return Err(invalid(
                path.key(k),
                "must be a power of two between 32 and 16384",
            ));
        }
    }
    if let Some(v) = p.vlan {
        if !(1..=4094).contains(&v) {
            return Err(invalid(path.key("vlan"), "must be between 1 and 4094"));
        }
    }
    let mut ipv4 = Vec::new();
    for (i, s) in p.ipv4.iter().enumerate() {
        ipv4.push(
            s.parse::<Cidr4>()
                .map_err(|e| invalid(path.key("ipv4").index(i), e))?,
        );
    }
    let mut ipv6 = Vec::new();
    for (i, s) in p.ipv6.iter().enumerate() {
        ipv6.push(
            s.parse::<Cidr6>()
                .map_err(|e| invalid(path.key("ipv6").index(i), e))?,
        );
    }
    if let Some(h) = &p.host_interface {
        if h.is_empty()
            || h.len() > 15
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                path.key("host_interface"),
                format!("{h:?}: an interface name is 1 to 15 letters, digits, '-' and '_'"),
            ));
        }
        if ipv4.is_empty() && ipv6.is_empty() {
            return Err(invalid(
                path.key("host_interface"),
                "a host interface needs an address in ipv4 or ipv6",
            ));
        }
    }
    let mut local_ipv4 = Vec::new();
    for (i, s) in p.local_ipv4.iter().enumerate() {
        let a: Ipv4Addr = s.parse().map_err(|_| {
            invalid(
                path.key("local_ipv4").index(i),
                format!("{s:?} is not an IPv4 address"),
            )
        })?;
        if !ipv4.iter().any(|c| in_prefix4(a, c)) {
            return Err(invalid(
                path.key("local_ipv4").index(i),
                format!("{a} is not in the prefix of this port's ipv4 addresses"),
            ));
        }
        local_ipv4.push(a);
    }
    let mut local_ipv6 = Vec::new();
    for (i, s) in p.local_ipv6.iter().enumerate() {
        let a: Ipv6Addr = s.parse().map_err(|_| {
            invalid(
                path.key("local_ipv6").index(i),
                format!("{s:?} is not an IPv6 address"),
            )
        })?;
        if !ipv6.iter().any(|c| in_prefix6(a, c)) {
            return Err(invalid(
                path.key("local_ipv6").index(i),
                format!("{a} is not in the prefix of this port's ipv6 addresses"),
            ));
        }
        local_ipv6.push(a);
    }
    Ok(Port {
        local_ipv4,
        local_ipv6,
        name: p.name,
        device,
        workers: w,
        mtu: p.mtu,
        promiscuous: p.promiscuous,
        rx_desc: p.rx_desc,
        tx_desc: p.tx_desc,
        vlan: p.vlan,
        ipv4,
        ipv6,
        host_interface: p.host_interface,
    })
}

/// `DDDD:BB:DD.F` in hex.
fn is_pci_address(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '.']).collect();
    parts.len() == 4
        && [4, 2, 2, 1]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
