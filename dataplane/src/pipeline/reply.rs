//! Replies the worker writes in place into the request's own buffer: ARP, ICMP and
//! ICMPv6 echo, and neighbour advertisements. `l2` is the length of the Ethernet
//! header (and VLAN tag, which the reply keeps).

use crate::buf::{NoRoom, PacketBuf};
use crate::wire::ethernet::{self, Frame};
use crate::wire::{arp, icmpv4, icmpv6, ip_proto, ipv4, ipv6};
use std::net::Ipv6Addr;

/// TTL and hop limit of packets the appliance originates.
pub const DEFAULT_TTL: u8 = 64;

fn swap_macs(data: &mut [u8], our_mac: [u8; 6]) {
    let mut eth = Frame::new_unchecked(data);
    let src = eth.src();
    eth.set_dst(src);
    eth.set_src(our_mac);
}

/// Turns a validated ARP request for one of our addresses into the reply.
pub fn arp_reply<B: PacketBuf>(buf: &mut B, l2: usize, our_mac: [u8; 6]) {
    let data = buf.data_mut();
    let mut pkt = arp::Packet::new_unchecked(&mut data[l2..]);
    let (asker_mac, asker_ip, our_ip) = (pkt.sender_mac(), pkt.sender_ip(), pkt.target_ip());
    pkt.set_operation(arp::OP_REPLY);
    pkt.set_sender(our_mac, our_ip);
    pkt.set_target(asker_mac, asker_ip);
    let mut eth = Frame::new_unchecked(data);
    eth.set_dst(asker_mac);
    eth.set_src(our_mac);
}

/// Turns a validated ICMP echo request (IP total length `ip_len`) into the reply.
pub fn echo_reply_v4<B: PacketBuf>(
    buf: &mut B,
    l2: usize,
    ip_len: usize,
    our_mac: [u8; 6],
) -> Result<(), NoRoom> {
    buf.set_len(l2 + ip_len)?; // drop Ethernet padding
    let data = buf.data_mut();
    swap_macs(data, our_mac);
    let mut ip = ipv4::Packet::new_unchecked(&mut data[l2..]);
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(DEFAULT_TTL);
    ip.fill_checksum();
    icmpv4::Packet::new_unchecked(ip.payload_mut()).rewrite_type(icmpv4::ECHO_REPLY);
    Ok(())
}

/// Turns a validated ICMPv6 echo request (no extension headers) into the reply.
pub fn echo_reply_v6<B: PacketBuf>(
    buf: &mut B,
    l2: usize,
    ip_len: usize,
    our_mac: [u8; 6],
) -> Result<(), NoRoom> {
    buf.set_len(l2 + ip_len)?;
    let data = buf.data_mut();
    swap_macs(data, our_mac);
    let mut ip = ipv6::Packet::new_unchecked(&mut data[l2..]);
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(&dst);
    ip.set_dst(&src);
    ip.set_hop_limit(DEFAULT_TTL);
    // Swapping the addresses leaves the pseudo-header sum as it was.
    icmpv6::Packet::new_unchecked(ip.payload_mut()).rewrite_type(icmpv6::ECHO_REPLY);
    Ok(())
}

/// Rewrites a neighbour solicitation for `target` into the advertisement: unicast and
/// solicited to `asker` at `asker_mac`, or to all nodes when the asker was doing
/// duplicate address detection from `::`.
pub fn neighbor_advert<B: PacketBuf>(
    buf: &mut B,
    l2: usize,
    our_mac: [u8; 6],
    target: &Ipv6Addr,
    asker: &Ipv6Addr,
    asker_mac: [u8; 6],
) -> Result<(), NoRoom> {
    let (dst, dst_mac, flags) = if asker.is_unspecified() {
        let all_nodes = ipv6::ALL_NODES;
        let mac = ethernet::ipv6_multicast_mac(&all_nodes);
        (all_nodes, mac, icmpv6::NA_FLAG_OVERRIDE)
    } else {
        let flags = icmpv6::NA_FLAG_SOLICITED | icmpv6::NA_FLAG_OVERRIDE;
        (*asker, asker_mac, flags)
    };
    buf.set_len(l2 + ipv6::HEADER_LEN + icmpv6::NA_LEN)?;
    let data = buf.data_mut();
    let mut eth = Frame::new_unchecked(&mut *data);
    eth.set_dst(dst_mac);
    eth.set_src(our_mac);
    let mut ip = ipv6::Packet::new_unchecked(&mut data[l2..]);
    ip.set_version_class_flow(0, 0);
    ip.set_payload_len(icmpv6::NA_LEN as u16);
    ip.set_next_header(ip_proto::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src(target);
    ip.set_dst(&dst);
    let mut na = icmpv6::Packet::new_unchecked(ip.payload_mut());
    na.emit_neighbor_advert(flags, target, our_mac);
    na.fill_checksum(target, &dst);
    Ok(())
}
