//! The per-packet decision for traffic addressed to the appliance itself: answer it in
//! place (ARP, neighbour discovery, echo), pass it to the host interface, or drop it
//! under a named counter. Written against [`PacketBuf`] so it is tested without DPDK.

use super::counters::Counter;
use super::fast_v4;
use super::local::LocalAddrs;
use super::reply;
use crate::buf::{HwCheck, PacketBuf};
use crate::lb::addr_table::AddrEntry;
use crate::lb::icmp_error;
use crate::lb::nat::{self, Parsed};
use crate::lb::snapshot::{AddrKind, LbSnapshot};
use crate::wire::ethernet::{self, ethertype, Frame};
use crate::wire::{arp, checksum, icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp, udp, vlan};
use std::net::Ipv6Addr;

/// What the worker does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The buffer now holds a reply: transmit it on the port it came from, and count it.
    Reply(Counter),
    /// Hand it to the kernel through the host interface.
    ToHost,
    /// Free it and count the reason.
    Drop(Counter),
    /// For a VIP or a FullNAT local address: the load balancer takes it, parsed
    /// here so that it is parsed once. `local` is true for a local address (a reply
    /// from a backend); `service` is the service on the VIP's port, if any, found
    /// in the same address-table probe.
    Balance {
        p: Parsed,
        local: bool,
        service: Option<u32>,
    },
}

use Verdict::*;

/// Where the L3 header starts and what it is, after the Ethernet and VLAN headers.
struct L2 {
    len: usize,
    ethertype: u16,
    to_our_mac: bool,
}

/// Classifies one frame. `snap` supplies the VIPs and FullNAT local addresses, which
/// are answered for (ARP, ND, ping) like the port's own, and whose other traffic goes
/// to the balancer. (The worker makes the same two calls itself, so that a packet
/// for the balancer is staged straight from the fast path.)
#[inline]
pub fn classify<B: PacketBuf>(buf: &mut B, local: &LocalAddrs, snap: &LbSnapshot) -> Verdict {
    match fast_v4::classify_fast(buf, local, snap) {
        Some(v) => v,
        None => classify_general(buf, local, snap),
    }
}

/// Every packet, by the book: what `classify` does when the fast path declines.
#[inline(never)]
pub fn classify_general<B: PacketBuf>(
    buf: &mut B,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Verdict {
    let l2 = match parse_l2(buf.data(), local) {
        Ok(l2) => l2,
        Err(drop) => return Drop(drop),
    };
    match l2.ethertype {
        ethertype::ARP => classify_arp(buf, &l2, local, snap),
        ethertype::IPV4 => classify_ipv4(buf, &l2, local, snap),
        ethertype::IPV6 => classify_ipv6(buf, &l2, local, snap),
        _ => Drop(Counter::DropUnknownEthertype),
    }
}

fn parse_l2(data: &[u8], local: &LocalAddrs) -> Result<L2, Counter> {
    let eth = Frame::new_checked(data).map_err(|_| Counter::DropRunt)?;
    if data.len() > local.max_frame_len() {
        return Err(Counter::DropOversize);
    }
    let dst = eth.dst();
    let to_our_mac = dst == local.mac;
    if !to_our_mac && !ethernet::is_multicast(&dst) {
        return Err(Counter::DropNotForUs);
    }
    let (len, et) = match eth.ethertype() {
        ethertype::VLAN => {
            let tag = vlan::Tag::new_checked(eth.payload()).map_err(|_| Counter::DropRunt)?;
            if local.vlan != Some(tag.vid()) {
                return Err(Counter::DropVlanMismatch);
            }
            (ethernet::HEADER_LEN + vlan::TAG_LEN, tag.inner_ethertype())
        }
        ethertype::QINQ => return Err(Counter::DropVlanMismatch),
        et => {
            if local.vlan.is_some() {
                return Err(Counter::DropVlanMismatch);
            }
            (ethernet::HEADER_LEN, et)
        }
    };
    Ok(L2 {
        len,
        ethertype: et,
        to_our_mac,
    })
}

fn classify_arp<B: PacketBuf>(
    buf: &mut B,
    l2: &L2,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Verdict {
    let Ok(pkt) = arp::Packet::new_checked(&buf.data()[l2.len..]) else {
        return Drop(Counter::DropArpMalformed);
    };
    match pkt.operation() {
        arp::OP_REQUEST if local.owns_v4(pkt.target_ip()) || snap.answers_v4(pkt.target_ip()) => {
            reply::arp_reply(buf, l2.len, local.mac);
            Reply(Counter::ArpReplies)
        }
        // Replies to the kernel's own requests teach it its neighbours.
        arp::OP_REPLY if l2.to_our_mac => to_host(local),
        // A neighbour announcing its address (gratuitous ARP, as a host sends when
        // its MAC changes or an address moves to it): the kernel and the backend
        // resolver on the host interface take the new MAC at once.
        arp::OP_REQUEST | arp::OP_REPLY if is_announcement(&pkt, local) => to_host(local),
        arp::OP_REQUEST | arp::OP_REPLY => Drop(Counter::DropNotForUs),
        _ => Drop(Counter::DropArpMalformed),
    }
}

/// A gratuitous ARP: sender and target the same address, not one of ours
/// (broadcast, as hosts send it, or to our MAC).
fn is_announcement(pkt: &arp::Packet<&[u8]>, local: &LocalAddrs) -> bool {
    let ip = pkt.sender_ip();
    ip == pkt.target_ip() && !ip.is_unspecified() && !local.owns_v4(ip)
}

fn classify_ipv4<B: PacketBuf>(
    buf: &mut B,
    l2: &L2,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Verdict {
    let data = buf.data();
    let Ok(ip) = ipv4::Packet::new_checked(&data[l2.len..]) else {
        return Drop(Counter::DropIpv4Malformed);
    };
    // Where the NIC checked the header (RX_IP_CKSUM offload), take its word.
    let checksum_ok = match buf.ipv4_checksum() {
        HwCheck::Good => true,
        HwCheck::Bad => false,
        HwCheck::Unknown => ip.verify_checksum(),
    };
    if !checksum_ok {
        return Drop(Counter::DropIpv4BadChecksum);
    }
    if !l2.to_our_mac {
        return Drop(Counter::DropNotForUs);
    }
    if !local.owns_v4(ip.dst()) {
        let Some(entry) = snap.entry_v4(ip.dst()) else {
            return Drop(Counter::DropNotForUs);
        };
        // A VIP or local address: ping is answered here, the rest is balanced.
        if !is_echo_request_v4(&ip) {
            return match nat::parse_v4(&ip, l2.len) {
                Ok(p) => balance(p, entry),
                Err(c) => Drop(c),
            };
        }
    }
    // The kernel reassembles fragments for us.
    if ip.is_fragment() {
        return to_host(local);
    }
    let pseudo =
        || checksum::pseudo_v4(ip.src(), ip.dst(), ip.protocol(), ip.payload().len() as u16);
    match ip.protocol() {
        ip_proto::ICMP => {
            let Ok(icmp) = icmpv4::Packet::new_checked(ip.payload()) else {
                return Drop(Counter::DropIcmpMalformed);
            };
            if !icmp.verify_checksum() {
                return Drop(Counter::DropIcmpBadChecksum);
            }
            if icmp.msg_type() == icmpv4::ECHO_REQUEST && icmp.code() == 0 {
                let ip_len = ip.total_len() as usize;
                return match reply::echo_reply_v4(buf, l2.len, ip_len, local.mac) {
                    Ok(()) => Reply(Counter::EchoRepliesV4),
                    Err(_) => Drop(Counter::DropNoRoom),
                };
            }
            to_host(local)
        }
        ip_proto::TCP | ip_proto::UDP => {
            match check_l4(ip.protocol(), ip.payload(), pseudo(), true) {
                Some(drop) => Drop(drop),
                None => to_host(local),
            }
        }
        _ => to_host(local),
    }
}

fn classify_ipv6<B: PacketBuf>(
    buf: &mut B,
    l2: &L2,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Verdict {
    let data = buf.data();
    let Ok(ip) = ipv6::Packet::new_checked(&data[l2.len..]) else {
        return Drop(Counter::DropIpv6Malformed);
    };
    let Ok(upper) = ip.upper_layer() else {
        return Drop(Counter::DropIpv6Malformed);
    };
    let (src, dst) = (ip.src(), ip.dst());
    let unicast_to_us = l2.to_our_mac && local.owns_v6(&dst);
    let entry = if l2.to_our_mac && !unicast_to_us {
        snap.entry_v6(&dst)
    } else {
        None
    };
    let to_balancer = entry.is_some();
    // ICMPv6 (echo, ND) to a VIP is answered here; everything else, ICMPv6
    // errors about its connections included, is balanced.
    if let Some(entry) = entry {
        let icmp_error = || {
            let msg_type = ip.bytes().get(upper.offset).copied();
            msg_type.is_some_and(icmp_error::is_error_v6)
        };
        if upper.fragment || upper.protocol != ip_proto::ICMPV6 || icmp_error() {
            return match nat::parse_v6(&ip, upper, l2.len) {
                Ok(p) => balance(p, entry),
                Err(c) => Drop(c),
            };
        }
    }
    let unicast_to_us = unicast_to_us || to_balancer;
    // Unsolicited neighbour advertisements go to all nodes (RFC 4861 7.2.6).
    let all_nodes = dst == ipv6::ALL_NODES;
    if !unicast_to_us
        && !all_nodes
        && !local.solicited_node_of_ours(&dst)
        && !snap.solicited_node_v6(&dst)
    {
        return Drop(Counter::DropNotForUs);
    }
    if upper.fragment {
        return if unicast_to_us {
            to_host(local)
        } else {
            Drop(Counter::DropNotForUs)
        };
    }
    let l4 = &data[l2.len + upper.offset..l2.len + ipv6::HEADER_LEN + ip.payload_len() as usize];
    let pseudo = || checksum::pseudo_v6(&src, &dst, upper.protocol, l4.len() as u32);
    match upper.protocol {
        ip_proto::ICMPV6 => {
            let Ok(icmp) = icmpv6::Packet::new_checked(l4) else {
                return Drop(Counter::DropIcmpMalformed);
            };
            if !icmp.verify_checksum(&src, &dst) {
                return Drop(Counter::DropIcmpBadChecksum);
            }
            match icmp.msg_type() {
                icmpv6::NEIGHBOR_SOLICIT => {
                    let target = icmp.nd_target();
                    if !valid_solicitation(&ip, &icmp, &src, &dst) {
                        return Drop(Counter::DropNdInvalid);
                    }
                    if !local.owns_v6(&target) && !snap.answers_v6(&target) {
                        return Drop(Counter::DropNotForUs);
                    }
                    let eth_src = Frame::new_unchecked(data).src();
                    let dst_mac = icmp.nd_option_ll(icmpv6::OPT_SOURCE_LL).unwrap_or(eth_src);
                    match reply::neighbor_advert(buf, l2.len, local.mac, &target, &src, dst_mac) {
                        Ok(()) => Reply(Counter::NdAdverts),
                        Err(_) => Drop(Counter::DropNoRoom),
                    }
                }
                // A neighbour announcing a new MAC (as when its own changes): the
                // kernel and the backend resolver on the host interface take it.
                icmpv6::NEIGHBOR_ADVERT if all_nodes => {
                    if !valid_nd(&ip, &icmp) {
                        return Drop(Counter::DropNdInvalid);
                    }
                    to_host(local)
                }
                _ if !unicast_to_us => Drop(Counter::DropNotForUs),
                // Other ICMPv6 to a VIP or local address has no kernel to go to.
                _ if to_balancer && icmp.msg_type() != icmpv6::ECHO_REQUEST => {
                    Drop(Counter::DropNotForUs)
                }
                // Echo with extension headers in front is left to the kernel.
                icmpv6::ECHO_REQUEST if icmp.code() == 0 && upper.offset == ipv6::HEADER_LEN => {
                    let ip_len = ipv6::HEADER_LEN + ip.payload_len() as usize;
                    match reply::echo_reply_v6(buf, l2.len, ip_len, local.mac) {
                        Ok(()) => Reply(Counter::EchoRepliesV6),
                        Err(_) => Drop(Counter::DropNoRoom),
                    }
                }
                _ => to_host(local),
            }
        }
        _ if !unicast_to_us => Drop(Counter::DropNotForUs),
        // A zero UDP checksum is invalid over IPv6 (RFC 8200 8.1).
        ip_proto::TCP | ip_proto::UDP => match check_l4(upper.protocol, l4, pseudo(), false) {
            Some(drop) => Drop(drop),
            None => to_host(local),
        },
        _ => to_host(local),
    }
}

/// Validates a TCP or UDP header and checksum for the host; `Some` is the drop
/// reason. `udp_zero_ok`: whether a zero UDP checksum means "none" (IPv4).
fn check_l4(proto: u8, l4: &[u8], pseudo: u32, udp_zero_ok: bool) -> Option<Counter> {
    let valid = if proto == ip_proto::TCP {
        tcp::Packet::new_checked(l4).map(|seg| seg.verify_checksum(pseudo))
    } else {
        udp::Packet::new_checked(l4).map(|d| d.verify_checksum(pseudo, udp_zero_ok))
    };
    match valid {
        Err(_) => Some(Counter::DropL4Malformed),
        Ok(false) => Some(Counter::DropL4BadChecksum),
        Ok(true) => None,
    }
}

fn is_echo_request_v4(ip: &ipv4::Packet<&[u8]>) -> bool {
    ip.protocol() == ip_proto::ICMP
        && !ip.is_fragment()
        && ip.payload().first() == Some(&icmpv4::ECHO_REQUEST)
}

/// RFC 4861 7.1.1 / 7.1.2, what solicitations and advertisements share: hop
/// limit 255 (never forwarded), code 0, a unicast target.
fn valid_nd(ip: &ipv6::Packet<&[u8]>, icmp: &icmpv6::Packet<&[u8]>) -> bool {
    ip.hop_limit() == 255 && icmp.code() == 0 && !icmp.nd_target().is_multicast()
}

/// RFC 4861 7.1.1: [`valid_nd`], and a solicitation from the unspecified address
/// (duplicate address detection) goes to a solicited-node group and carries no
/// source link-layer option.
fn valid_solicitation(
    ip: &ipv6::Packet<&[u8]>,
    icmp: &icmpv6::Packet<&[u8]>,
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
) -> bool {
    if !valid_nd(ip, icmp) {
        return false;
    }
    if src.is_unspecified() {
        return dst.segments()[0] == 0xff02 && icmp.nd_option_ll(icmpv6::OPT_SOURCE_LL).is_none();
    }
    true
}

/// The balancer's verdict for a parsed packet to a VIP or local address.
#[inline]
pub(super) fn balance(p: Parsed, entry: AddrEntry<'_>) -> Verdict {
    let local = entry.kind() == AddrKind::Local;
    let service = if local {
        None
    } else {
        entry.service(p.key.dport, p.key.proto)
    };
    Balance { p, local, service }
}

#[inline]
fn to_host(local: &LocalAddrs) -> Verdict {
    if local.host_interface {
        ToHost
    } else {
        Drop(Counter::DropNoHostInterface)
    }
}
