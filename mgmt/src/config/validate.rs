//! Checks a parsed file and turns it into the runtime model, naming the field of
//! every problem.

use super::cidr::{Cidr4, Cidr6};
use super::error::{FieldPath, Invalid};
use super::model::*;
use std::collections::HashSet;

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
    Ok(Config { eal, ports })
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
            Device::Vdev { args: d, dpdk_name }
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
    Ok(Port {
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
