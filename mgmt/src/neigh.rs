//! Resolves backend MAC addresses from the management core: ARP requests and IPv6
//! neighbour solicitations are written into the host interface with a packet socket
//! (the dataplane carries them to the wire), and the replies, which the dataplane
//! hands to the host interface because they are addressed to the appliance, are read
//! back from the same socket. Entries are refreshed while they answer and forgotten
//! when they stop.

use crate::neigh_targets::Targets;
use dataplane::wire::checksum;
use dataplane::wire::ethernet::{self, ethertype, Frame};
use dataplane::wire::{arp, icmpv6, ip_proto, ipv6};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// One host interface's resolver.
pub struct Resolver {
    fd: OwnedFd,
    ifindex: i32,
    mac: [u8; 6],
    src4: Option<Ipv4Addr>,
    src6: Option<Ipv6Addr>,
    targets: Targets,
    /// Which addresses belong to this interface's networks.
    covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>>,
}

fn htons(v: u16) -> u16 {
    v.to_be()
}

impl Resolver {
    /// Opens a packet socket on `ifname` (the host interface, in this namespace).
    pub fn open(
        ifname: &str,
        mac: [u8; 6],
        src4: Option<Ipv4Addr>,
        src6: Option<Ipv6Addr>,
        targets: impl IntoIterator<Item = IpAddr>,
        covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>>,
    ) -> io::Result<Resolver> {
        let c = std::ffi::CString::new(ifname).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: c is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                htons(libc::ETH_P_ALL as u16) as i32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is fresh and valid.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = htons(libc::ETH_P_ALL as u16);
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut all = Targets::default();
        all.set(targets);
        Ok(Resolver {
            fd,
            ifindex,
            mac,
            src4,
            src6,
            targets: all,
            covers,
        })
    }

    /// Sends the requests that are due (see [`neigh_targets`](crate::neigh_targets))
    /// and reads every reply waiting. Returns true when a MAC changed (appeared,
    /// moved, or was forgotten).
    pub fn poll(&mut self, now: Instant) -> bool {
        let mut changed = self.read_replies(now);
        changed |= self.targets.forget_stale(now);
        for addr in self.targets.due(now) {
            let _ = self.ask(addr);
        }
        changed
    }

    /// Resolves exactly these addresses from now on (those on this interface's
    /// networks; the others are ignored by the caller's choice of resolver).
    pub fn set_targets(&mut self, addrs: &[IpAddr]) {
        let covers = &self.covers;
        self.targets.set(
            addrs
                .iter()
                .copied()
                .filter(|a| covers.iter().any(|f| f(*a))),
        );
    }

    /// Resolved MACs.
    pub fn table(&self) -> impl Iterator<Item = (IpAddr, [u8; 6])> + '_ {
        self.targets.table()
    }

    /// Tells this interface's network that `addr` is at this port's MAC, as a
    /// host does when it comes up or takes an address over: a gratuitous ARP
    /// (a broadcast request whose sender and target are `addr`), or an
    /// unsolicited neighbour advertisement to all nodes with the override flag
    /// (RFC 4861 7.2.6). Routers, clients and backends holding an older MAC for
    /// it take the new one at once. Returns false for an address outside this
    /// interface's networks (not sent).
    pub fn announce(&self, addr: IpAddr) -> io::Result<bool> {
        if !self.covers.iter().any(|f| f(addr)) {
            return Ok(false);
        }
        let mut frame = [0u8; 86];
        let len = announcement(&mut frame, self.mac, addr);
        self.send(&frame[..len]).map(|()| true)
    }

    fn ask(&self, addr: IpAddr) -> io::Result<()> {
        let mut frame = [0u8; 86];
        let len = match addr {
            IpAddr::V4(a) => {
                let Some(src) = self.src4 else { return Ok(()) };
                arp_frame(&mut frame, self.mac, ([0; 6], a), src);
                42
            }
            IpAddr::V6(a) => {
                let Some(src) = self.src6 else { return Ok(()) };
                let mut ns = [0u8; 32];
                ns[0] = icmpv6::NEIGHBOR_SOLICIT;
                ns[8..24].copy_from_slice(&a.octets());
                ns[24] = icmpv6::OPT_SOURCE_LL;
                ns[25] = 1;
                ns[26..32].copy_from_slice(&self.mac);
                icmpv6_frame(
                    &mut frame,
                    self.mac,
                    (src, ipv6::solicited_node(&a)),
                    &mut ns,
                )
            }
        };
        self.send(&frame[..len])
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and sll are valid for the given lengths.
        let ret = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn read_replies(&mut self, now: Instant) -> bool {
        let mut changed = false;
        let mut buf = [0u8; 2048];
        loop {
            // SAFETY: buf is valid for its length; non-blocking socket.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n <= 0 {
                break;
            }
            if let Some((addr, mac)) = parse_reply(&buf[..n as usize], self.mac) {
                changed |= self.targets.answered(addr, mac, now);
            }
        }
        changed
    }
}

/// What a frame says of a neighbour's MAC: an ARP reply or neighbour
/// advertisement addressed to `our_mac` (an answer to our asking), or an
/// announcement to everyone (gratuitous ARP; an unsolicited advertisement with
/// the override flag, RFC 4861 7.2.6), as a host sends when its MAC changes or
/// an address moves to it. (address, MAC).
fn parse_reply(frame: &[u8], our_mac: [u8; 6]) -> Option<(IpAddr, [u8; 6])> {
    let f = Frame::new_checked(frame).ok()?;
    let to_us = f.dst() == our_mac;
    match f.ethertype() {
        ethertype::ARP => {
            let a = arp::Packet::new_checked(f.payload()).ok()?;
            let (op, ip) = (a.operation(), a.sender_ip());
            let answer = to_us && op == arp::OP_REPLY;
            let gratuitous = (op == arp::OP_REQUEST || op == arp::OP_REPLY)
                && ip == a.target_ip()
                && !ip.is_unspecified();
            (answer || gratuitous).then(|| (IpAddr::V4(ip), a.sender_mac()))
        }
        ethertype::IPV6 => {
            let ip = ipv6::Packet::new_checked(f.payload()).ok()?;
            if ip.next_header() != ip_proto::ICMPV6 || ip.hop_limit() != 255 {
                return None;
            }
            let icmp = icmpv6::Packet::new_checked(ip.payload()).ok()?;
            if icmp.msg_type() != icmpv6::NEIGHBOR_ADVERT {
                return None;
            }
            let announced = ip.dst() == ipv6::ALL_NODES && icmp.na_flags() & NA_OVERRIDE != 0;
            if !to_us && !announced {
                return None;
            }
            let mac = icmp.nd_option_ll(icmpv6::OPT_TARGET_LL).unwrap_or(f.src());
            Some((IpAddr::V6(icmp.nd_target()), mac))
        }
        _ => None,
    }
}

/// The override flag of a neighbour advertisement (in `na_flags`).
const NA_OVERRIDE: u32 = 0x2000_0000;

/// Writes into `frame` the announcement that `addr` is at `mac` (see
/// [`Resolver::announce`]); returns the frame length.
fn announcement(frame: &mut [u8; 86], mac: [u8; 6], addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(a) => {
            arp_frame(frame, mac, (ethernet::BROADCAST, a), a);
            42
        }
        IpAddr::V6(a) => {
            let mut na = [0u8; 32];
            na[0] = icmpv6::NEIGHBOR_ADVERT;
            na[4] = (NA_OVERRIDE >> 24) as u8;
            na[8..24].copy_from_slice(&a.octets());
            na[24] = icmpv6::OPT_TARGET_LL;
            na[25] = 1;
            na[26..32].copy_from_slice(&mac);
            icmpv6_frame(frame, mac, (a, ipv6::ALL_NODES), &mut na)
        }
    }
}

/// Writes into `frame` a broadcast ARP request from `mac` for `sender`, asking
/// about `target` (target MAC as given).
fn arp_frame(
    frame: &mut [u8],
    mac: [u8; 6],
    (target_mac, target): ([u8; 6], Ipv4Addr),
    sender: Ipv4Addr,
) {
    let mut f = Frame::new_unchecked(&mut frame[..]);
    f.set_dst(ethernet::BROADCAST);
    f.set_src(mac);
    f.set_ethertype(ethertype::ARP);
    let mut p = arp::Packet::new_unchecked(&mut frame[14..42]);
    p.set_ethernet_ipv4();
    p.set_operation(arp::OP_REQUEST);
    p.set_sender(mac, sender);
    p.set_target(target_mac, target);
}

/// Writes into `frame` the 32-byte neighbour discovery message `msg` from `mac`,
/// `src` to `dst` (hop limit 255, checksum filled in); returns the frame length.
fn icmpv6_frame(
    frame: &mut [u8],
    mac: [u8; 6],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    msg: &mut [u8; 32],
) -> usize {
    let mut f = Frame::new_unchecked(&mut frame[..]);
    f.set_dst(ethernet::ipv6_multicast_mac(&dst));
    f.set_src(mac);
    f.set_ethertype(ethertype::IPV6);
    let mut ip = ipv6::Packet::new_unchecked(&mut frame[14..86]);
    ip.set_version_class_flow(0, 0);
    ip.set_payload_len(32);
    ip.set_next_header(ip_proto::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src(&src);
    ip.set_dst(&dst);
    let sum = checksum::pseudo_v6(&src, &dst, ip_proto::ICMPV6, 32);
    let c = !checksum::fold(checksum::accumulate(sum, &msg[..]));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    frame[54..86].copy_from_slice(msg);
    86
}

/// Every resolver's table, merged.
pub fn merged(resolvers: &[Resolver]) -> HashMap<IpAddr, [u8; 6]> {
    resolvers.iter().flat_map(|r| r.table()).collect()
}

#[cfg(test)]
#[path = "neigh_wire_tests.rs"]
mod wire_tests;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const OURS: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub(super) const THEIRS: [u8; 6] = [2, 0, 0, 0, 0xb1, 1];

    pub(super) fn arp_frame(dst: [u8; 6], op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28];
        let mut e = Frame::new_unchecked(&mut f[..]);
        e.set_dst(dst);
        e.set_src(THEIRS);
        e.set_ethertype(ethertype::ARP);
        let mut a = arp::Packet::new_unchecked(&mut f[14..]);
        a.set_ethernet_ipv4();
        a.set_operation(op);
        a.set_sender(THEIRS, sender);
        a.set_target([0; 6], target);
        f
    }

    pub(super) fn advert(dst_mac: [u8; 6], dst: Ipv6Addr, flags: u8) -> Vec<u8> {
        let src: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let mut m = vec![icmpv6::NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
        m.extend_from_slice(&src.octets());
        m.extend_from_slice(&[icmpv6::OPT_TARGET_LL, 1]);
        m.extend_from_slice(&THEIRS);
        icmpv6::Packet::new_unchecked(&mut m[..]).fill_checksum(&src, &dst);
        let mut f = vec![0u8; 14 + 40];
        let mut e = Frame::new_unchecked(&mut f[..]);
        e.set_dst(dst_mac);
        e.set_src(THEIRS);
        e.set_ethertype(ethertype::IPV6);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len(m.len() as u16);
        ip.set_next_header(ip_proto::ICMPV6);
        ip.set_hop_limit(255);
        ip.set_src(&src);
        ip.set_dst(&dst);
        f.extend_from_slice(&m);
        f
    }

    #[test]
    fn answers_and_announcements_teach_a_neighbours_mac() {
        let (b1, us) = (Ipv4Addr::new(198, 18, 0, 11), Ipv4Addr::new(198, 18, 0, 1));
        let learnt = Some((IpAddr::V4(b1), THEIRS));
        // An answer to our request, and a gratuitous ARP (request or reply).
        assert_eq!(
            parse_reply(&arp_frame(OURS, arp::OP_REPLY, b1, us), OURS),
            learnt
        );
        let bcast = ethernet::BROADCAST;
        assert_eq!(
            parse_reply(&arp_frame(bcast, arp::OP_REQUEST, b1, b1), OURS),
            learnt
        );
        assert_eq!(
            parse_reply(&arp_frame(bcast, arp::OP_REPLY, b1, b1), OURS),
            learnt
        );
        // Someone else's question, or answer, teaches nothing.
        assert_eq!(
            parse_reply(&arp_frame(bcast, arp::OP_REQUEST, b1, us), OURS),
            None
        );
        let other = [2, 0, 0, 0, 0, 9];
        assert_eq!(
            parse_reply(&arp_frame(other, arp::OP_REPLY, b1, us), OURS),
            None
        );

        let b1v6 = IpAddr::V6("2001:db8::11".parse().unwrap());
        let all_nodes = "ff02::1".parse().unwrap();
        let all_nodes_mac = [0x33, 0x33, 0, 0, 0, 1];
        let ours_v6 = "2001:db8::1".parse().unwrap();
        // Solicited (to us), and unsolicited with the override flag.
        assert_eq!(
            parse_reply(&advert(OURS, ours_v6, 0x60), OURS),
            Some((b1v6, THEIRS))
        );
        assert_eq!(
            parse_reply(&advert(all_nodes_mac, all_nodes, 0x20), OURS),
            Some((b1v6, THEIRS))
        );
        // Unsolicited without override does not replace a MAC (RFC 4861 7.2.5).
        assert_eq!(
            parse_reply(&advert(all_nodes_mac, all_nodes, 0), OURS),
            None
        );
        // Nor one that crossed a router (hop limit below 255: RFC 4861 7.1.2).
        let mut forwarded = advert(all_nodes_mac, all_nodes, 0x20);
        forwarded[14 + 7] = 64;
        assert_eq!(parse_reply(&forwarded, OURS), None);
    }

    #[test]
    fn our_announcements_are_what_a_neighbour_learns_from() {
        // What another weir's resolver (or any host) takes from them.
        let neighbour = [2, 0, 0, 0, 0, 9];
        for addr in ["198.18.0.100", "2001:db8::100"] {
            let addr: IpAddr = addr.parse().unwrap();
            let mut frame = [0u8; 86];
            let len = announcement(&mut frame, OURS, addr);
            let f = &frame[..len];
            assert_eq!(parse_reply(f, neighbour), Some((addr, OURS)), "{addr}");
            assert_eq!(Frame::new_checked(f).unwrap().src(), OURS);
            if let IpAddr::V6(a) = addr {
                let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
                let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum(&a, &ip.dst()));
                assert_eq!(
                    Frame::new_checked(f).unwrap().dst(),
                    [0x33, 0x33, 0, 0, 0, 1]
                );
            } else {
                assert_eq!(Frame::new_checked(f).unwrap().dst(), ethernet::BROADCAST);
            }
        }
    }
}
