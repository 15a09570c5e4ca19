//! What a worker knows about the port it serves: the appliance's own MAC, VLAN and
//! addresses. Built by the management core, read-only on the worker.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::{ethernet, ipv6, vlan};

#[derive(Debug, Clone)]
pub struct LocalAddrs {
    pub mac: [u8; 6],
    /// When set, only frames tagged with this VLAN are accepted.
    pub vlan: Option<u16>,
    /// IP MTU of the port; longer frames are dropped as oversize.
    pub mtu: u16,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// Whether a host interface carries traffic to the kernel.
    pub host_interface: bool,
    /// The host interface's MTU: a longer IPv4 packet for the kernel (one the
    /// port reassembled) goes to it in fragments.
    pub host_mtu: u16,
    /// For a port whose kernel reassembles IP fragments before DPDK sees them
    /// (`af_packet`), the longest frame it hands over whole; 0 otherwise.
    pub reassembled_len: usize,
}

impl LocalAddrs {
    #[inline]
    pub fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.ipv4.contains(&a)
    }

    #[inline]
    pub fn owns_v6(&self, a: &Ipv6Addr) -> bool {
        self.ipv6.contains(a)
    }

    /// True when `a` is the solicited-node multicast group of one of our addresses.
    pub fn solicited_node_of_ours(&self, a: &Ipv6Addr) -> bool {
        self.ipv6.iter().any(|o| ipv6::solicited_node(o) == *a)
    }

    /// Largest frame accepted: MTU plus the Ethernet header and an optional tag,
    /// or a datagram the port reassembled.
    #[inline(always)]
    pub fn max_frame_len(&self) -> usize {
        (self.mtu as usize + ethernet::HEADER_LEN + vlan::TAG_LEN).max(self.reassembled_len)
    }
}
