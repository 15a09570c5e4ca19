//! One port: name, device (PCI or virtual), MTU, queues, addresses.

use super::{invalid, is_name};
use crate::config::cidr::{Cidr4, Cidr6};
use crate::config::error::{FieldPath, Invalid};
use crate::config::model::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One port, polled by 1 to `workers` workers (all of them unless it says).
pub(super) fn validate_port(
    p: PortConfig,
    path: &FieldPath,
    workers: usize,
) -> Result<Port, Invalid> {
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
        if !ipv4.iter().any(|c| c.contains(a)) {
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
        if !ipv6.iter().any(|c| c.contains(a)) {
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
