//! ICMP errors about connections, through the classifier and LbCore as the
//! worker runs them: relayed to the other end, translated, checksums right.

use super::core::{Arrival, LbCore, LbVerdict};
use super::core_tests::{be_mac, on_udp, snap_of, udp_frame, Family, CLIENT, CLIENT_MAC, V4, V6};
use super::flow::FlowKey;
use super::icmp_sent::PER_TICK;
use super::snapshot::{LbSnapshot, Mode, SchedKind};
use super::stats::ServiceStat;
use crate::buf::{PacketBuf, VecBuf};
use crate::pipeline::classify::{classify, Verdict};
use crate::pipeline::counters::{Counter, Tally};
use crate::pipeline::fast_path_check::{port_with, OUR_MAC};
use crate::wire::build::{TcpV4, TcpV6};
use crate::wire::checksum::{checksum, pseudo_v4, pseudo_v6};
use crate::wire::ethernet::Frame;
use crate::wire::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp};
use std::net::IpAddr;

/// A TCP segment or an ICMP error between two addresses of one family, sent to
/// the appliance's port (`OUR_MAC`) from `CLIENT_MAC`.
fn ends(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Ends {
    Ends {
        src,
        sport,
        dst,
        dport,
    }
}

struct Ends {
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
}

impl Ends {
    fn key(&self) -> FlowKey {
        FlowKey::new(self.src, self.dst, self.sport, self.dport, ip_proto::TCP)
    }

    /// Builds with these ends as a `TcpV4` or a `TcpV6`.
    fn build(
        &self,
        v4: impl FnOnce(TcpV4) -> Vec<u8>,
        v6: impl FnOnce(TcpV6) -> Vec<u8>,
    ) -> Vec<u8> {
        let (src_mac, dst_mac, sport, dport) = (CLIENT_MAC, OUR_MAC, self.sport, self.dport);
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => v4(TcpV4 {
                src_mac,
                dst_mac,
                src,
                sport,
                dst,
                dport,
            }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => v6(TcpV6 {
                src_mac,
                dst_mac,
                src,
                sport,
                dst,
                dport,
            }),
            _ => unreachable!("one family"),
        }
    }

    fn frame(&self, flags: u8, payload: usize) -> Vec<u8> {
        self.build(|t| t.frame(flags, payload), |t| t.frame(flags, payload))
    }

    /// The IP packet of a segment between these ends (what an error quotes).
    fn packet(&self, payload: usize) -> Vec<u8> {
        self.frame(tcp::flags::ACK | tcp::flags::PSH, payload)[14..].to_vec()
    }

    /// "Fragmentation needed" (MTU 1200) / "packet too big" (MTU 1280) between
    /// these ends, quoting `quote`.
    fn too_big(&self, quote: &[u8]) -> Vec<u8> {
        self.build(
            |t| t.icmp_error(3, 4, 1200, quote),
            |t| t.icmp_error(2, 0, 1280, quote),
        )
    }
}

/// `frame` through the classifier and LbCore, staged and finished as the worker
/// does it (`handed`: it came from another worker's ring).
fn through(
    core: &mut LbCore,
    s: &LbSnapshot,
    frame: &[u8],
    handed: bool,
) -> (LbVerdict, VecBuf, Tally) {
    let mut b = VecBuf::new(frame, 9000);
    let mut t = Tally::default();
    let ours: IpAddr = if frame[12..14] == [0x86, 0xdd] {
        "2001:db8::1".parse().unwrap()
    } else {
        "198.18.0.1".parse().unwrap()
    };
    let v = match classify(&mut b, &port_with(ours), s) {
        Verdict::Balance { p, local, service } => {
            let at = Arrival {
                l2: p.l2,
                v6: p.v6,
                in_port: 0,
                handed,
                local,
            };
            let mut prep = core.prepare(p, at, service);
            core.prefetch_entry(&mut prep);
            let v = core.finish(&mut b, &prep, s, &[OUR_MAC], &mut t);
            core.end_burst();
            v
        }
        Verdict::Drop(c) => LbVerdict::Drop(c),
        v => panic!("not for the balancer: {v:?}"),
    };
    (v, b, t)
}

/// An IP packet's outer header as read back: source, destination, TTL / hop
/// limit, where its payload starts and ends, and the length the header gives.
struct Outer {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    body: std::ops::Range<usize>,
    len: usize,
}

/// Reads `ip`'s header; its payload may be cut short (a quote).
fn outer(ip: &[u8]) -> Outer {
    let (src, dst, ttl, body) = if ip[0] >> 4 == 6 {
        let p = ipv6::Packet::new_unchecked(ip);
        let end = 40 + p.payload_len() as usize;
        (p.src().into(), p.dst().into(), p.hop_limit(), 40..end)
    } else {
        let p = ipv4::Packet::new_unchecked(ip);
        assert!(p.verify_checksum(), "IPv4 header checksum");
        let end = p.total_len() as usize;
        (p.src().into(), p.dst().into(), p.ttl(), p.header_len()..end)
    };
    Outer {
        src,
        dst,
        ttl,
        body: body.start..body.end.min(ip.len()),
        len: body.end,
    }
}

/// Whether ICMP(v6) message `msg` sent from `src` to `dst` has a valid checksum.
fn icmp_checksum_ok(msg: &[u8], (src, dst): (IpAddr, IpAddr)) -> bool {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => icmpv6::Packet::new_checked(msg)
            .unwrap()
            .verify_checksum(&s, &d),
        _ => checksum(msg) == 0,
    }
}

/// Checks a relayed error: from `src` to `dst`, TTL 63, its ICMP checksum valid,
/// type, code and MTU kept from `sent`, and the quoted packet from `q_src` to
/// `q_dst` with its IP checksum valid (and its TCP checksum, when `full`).
fn assert_relayed(
    out: &[u8],
    sent: &[u8],
    (src, dst): (IpAddr, IpAddr),
    (q_src, q_dst): ((IpAddr, u16), (IpAddr, u16)),
    full: bool,
) {
    let ip = &out[14..];
    let o = outer(ip);
    assert_eq!((o.src, o.dst, o.ttl), (src, dst, 63));
    assert_eq!(o.len, ip.len(), "the length in the IP header");
    let msg = &ip[o.body.clone()];
    assert!(icmp_checksum_ok(msg, (src, dst)), "ICMP checksum");
    let sent_msg = &sent[14..][outer(&sent[14..]).body];
    assert_eq!(
        (msg[0], msg[1], &msg[4..8]),
        (sent_msg[0], sent_msg[1], &sent_msg[4..8])
    );
    assert_eq!(msg.len(), sent_msg.len());
    let quoted = outer(&msg[8..]);
    assert_eq!((quoted.src, quoted.dst), (q_src.0, q_dst.0));
    let l4 = &msg[8 + quoted.body.start..];
    let ports = (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    );
    assert_eq!(ports, (q_src.1, q_dst.1));
    if full {
        let len = (quoted.body.end - quoted.body.start) as u32;
        let ps = match (q_src.0, q_dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_v4(s, d, ip_proto::TCP, len as u16),
            (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_v6(&s, &d, ip_proto::TCP, len),
            _ => unreachable!(),
        };
        let seg = tcp::Packet::new_checked(&l4[..len as usize]).unwrap();
        assert!(seg.verify_checksum(ps), "quoted TCP checksum");
    }
}

/// A fullnat connection from the client's port 40000: its backend (address and
/// index) and local port.
fn connect(core: &mut LbCore, s: &LbSnapshot, f: &Family, client: IpAddr) -> (IpAddr, usize, u16) {
    let syn = ends(client, 40000, f.vip, 80).frame(tcp::flags::SYN, 0);
    let (v, out, _) = through(core, s, &syn, false);
    assert_eq!(v, LbVerdict::Tx(0));
    let o = outer(&out.data()[14..]);
    let b = (0..3).find(|&i| (f.backend)(i) == o.dst).unwrap();
    let l4 = &out.data()[14 + o.body.start..];
    (o.dst, b, u16::from_be_bytes([l4[0], l4[1]]))
}

/// A fullnat snapshot of family `f`, one worker's core, the client, and the
/// connection [`connect`] made.
fn connected(f: &Family) -> (LbSnapshot, LbCore, IpAddr, (IpAddr, usize, u16)) {
    let s = snap_of(f, Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let client = client_of(f);
    let conn = connect(&mut core, &s, f, client);
    (s, core, client, conn)
}

fn client_of(f: &Family) -> IpAddr {
    match f.vip {
        IpAddr::V4(_) => "198.18.0.10".parse().unwrap(),
        IpAddr::V6(_) => "2001:db8::10".parse().unwrap(),
    }
}

/// A router on the client's side.
fn router_of(f: &Family) -> IpAddr {
    match f.vip {
        IpAddr::V4(_) => "198.18.0.254".parse().unwrap(),
        IpAddr::V6(_) => "2001:db8::fe".parse().unwrap(),
    }
}

#[test]
fn icmp_errors_cross_a_fullnat_connection_both_ways() {
    for f in [&V4, &V6] {
        let (s, mut core, client, (backend, b, lport)) = connected(f);
        let entry = core
            .table
            .lookup(&ends(client, 40000, f.vip, 80).key())
            .unwrap();
        let before = *core.table.get(entry.id);

        // A router on the client's side: a reply to the client was too big. The
        // backend hears it from the local address, about the packet it sent.
        let reply = ends(f.vip, 80, client, 40000).packet(40);
        for quote in [&reply[..], &reply[..reply.len() - 40 - 12]] {
            let err = ends(router_of(f), 0, f.vip, 0).too_big(quote);
            let (v, out, t) = through(&mut core, &s, &err, false);
            assert_eq!(v, LbVerdict::Tx(0), "{:?}", f.vip);
            assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), be_mac(b));
            assert_eq!(t.get(Counter::IcmpErrorsRelayed), 1);
            let full = quote.len() == reply.len();
            let q = ((backend, 8080), (f.local, lport));
            assert_relayed(out.data(), &err, (f.local, backend), q, full);
        }

        // The backend: the client's port is unreachable. The client hears it
        // from the VIP, about the packet it sent.
        let sent = ends(f.local, lport, backend, 8080).packet(0);
        let err = ends(backend, 0, f.local, 0).too_big(&sent);
        let (v, out, t) = through(&mut core, &s, &err, false);
        assert_eq!(v, LbVerdict::Tx(0));
        assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), CLIENT_MAC);
        assert_eq!(t.get(Counter::IcmpErrorsRelayed), 1);
        let q = ((client, 40000), (f.vip, 80));
        assert_relayed(out.data(), &err, (f.vip, client), q, true);

        // Errors are not the connection's traffic: its state and deadline stay.
        let after = core.table.get(entry.id);
        assert_eq!(
            (after.state, after.expires, after.packets),
            (before.state, before.expires, before.packets)
        );
    }
}

#[test]
fn icmp_errors_that_match_no_connection_are_dropped_and_counted() {
    for f in [&V4, &V6] {
        let (s, mut core, client, (backend, _, lport)) = connected(f);
        let router = router_of(f);
        let drop = |core: &mut LbCore, frame: &[u8]| through(core, &s, frame, false).0;
        let no_flow = LbVerdict::Drop(Counter::DropIcmpNoFlow);
        // Another client port: no such connection.
        let other = ends(f.vip, 80, client, 40001).packet(0);
        assert_eq!(
            drop(&mut core, &ends(router, 0, f.vip, 0).too_big(&other)),
            no_flow
        );
        // The backend's side of the connection quoted to the VIP (and the
        // client's to the local address): the right key at the wrong address.
        let to_backend = ends(f.local, lport, backend, 8080).packet(0);
        assert_eq!(
            drop(&mut core, &ends(router, 0, f.vip, 0).too_big(&to_backend)),
            no_flow
        );
        let to_client = ends(f.vip, 80, client, 40000).packet(0);
        let wrong = ends(backend, 0, f.local, 0).too_big(&to_client);
        assert_eq!(drop(&mut core, &wrong), no_flow);
        // Cut inside the ports, or with a broken checksum.
        let good = ends(router, 0, f.vip, 0).too_big(&to_client);
        let ip_header = to_client.len() - 20;
        let short = ends(router, 0, f.vip, 0).too_big(&to_client[..ip_header + 6]);
        assert_eq!(
            drop(&mut core, &short),
            LbVerdict::Drop(Counter::DropIcmpMalformed)
        );
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            drop(&mut core, &bad),
            LbVerdict::Drop(Counter::DropIcmpBadChecksum)
        );
        // Nothing was relayed, and the good one still is.
        assert_eq!(drop(&mut core, &good), LbVerdict::Tx(0));
    }
    // A quote of anything but TCP or UDP is about no connection; a message that
    // is not an error is not relayed at all.
    let s = snap_of(&V4, Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let mut quote = ends(V4.vip, 80, client_of(&V4), 40000).packet(0);
    quote[9] = ip_proto::ICMP;
    let err = ends(router_of(&V4), 0, V4.vip, 0).too_big(&quote);
    assert_eq!(
        through(&mut core, &s, &err, false).0,
        LbVerdict::Drop(Counter::DropIcmpNoFlow)
    );
    let mut timestamp = ends(router_of(&V4), 0, V4.vip, 0).too_big(&quote[..20]);
    timestamp[34] = 13;
    icmpv4::Packet::new_unchecked(&mut timestamp[34..]).fill_checksum();
    assert_eq!(
        through(&mut core, &s, &timestamp, false).0,
        LbVerdict::Drop(Counter::DropNoService)
    );
}

#[test]
fn dr_icmp_errors_go_to_the_flow_backend_with_or_without_an_entry() {
    for f in [&V4, &V6] {
        let s = snap_of(f, Mode::Dr, SchedKind::RoundRobin, &[1, 1, 1]);
        let client = client_of(f);
        let err =
            ends(router_of(f), 0, f.vip, 0).too_big(&ends(f.vip, 80, client, 40000).packet(8));
        // With the entry: its backend, whatever round robin chose.
        for skip in 0..3 {
            let mut core = LbCore::new(0, 1, 64, 1);
            for port in 0..skip {
                let syn = ends(client, 50000 + port, f.vip, 80).frame(tcp::flags::SYN, 0);
                through(&mut core, &s, &syn, false);
            }
            let syn = ends(client, 40000, f.vip, 80).frame(tcp::flags::SYN, 0);
            let (_, fwd, _) = through(&mut core, &s, &syn, false);
            let mac = Frame::new_checked(fwd.data()).unwrap().dst();
            let (v, out, _) = through(&mut core, &s, &err, false);
            assert_eq!(v, LbVerdict::Tx(0));
            assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), mac);
            // dr changes nothing but the MACs and the TTL (and the IPv4 checksum).
            let o = outer(&out.data()[14..]);
            assert_eq!(out.data()[14 + o.body.start..], err[14 + o.body.start..]);
            assert_eq!(o.ttl, 63);
        }
        // With none (a restart): the consistent hash, as the flow's packets.
        let mut fresh = LbCore::new(0, 1, 64, 1);
        let (v, out, _) = through(&mut fresh, &s, &err, false);
        assert_eq!(v, LbVerdict::Tx(0));
        let ack = ends(client, 40000, f.vip, 80).frame(tcp::flags::ACK, 0);
        let (_, fwd, _) = through(&mut LbCore::new(0, 1, 64, 1), &s, &ack, false);
        assert_eq!(
            Frame::new_checked(out.data()).unwrap().dst(),
            Frame::new_checked(fwd.data()).unwrap().dst()
        );
    }
}

#[test]
fn two_workers_hand_icmp_errors_to_the_connection_owner() {
    let f = &V4;
    let s = snap_of(f, Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let client = client_of(f);
    let key = ends(client, 40000, f.vip, 80).key();
    let owner = key.owner(2) as usize;
    let mut cores = [LbCore::new(0, 2, 64, 1), LbCore::new(1, 2, 64, 1)];
    let (backend, _, lport) = connect(&mut cores[owner], &s, f, client);
    let other = 1 - owner;
    let from_client =
        ends(router_of(f), 0, f.vip, 0).too_big(&ends(f.vip, 80, client, 40000).packet(0));
    let from_backend =
        ends(backend, 0, f.local, 0).too_big(&ends(f.local, lport, backend, 8080).packet(0));
    for err in [&from_client, &from_backend] {
        let (v, _, _) = through(&mut cores[other], &s, err, false);
        assert_eq!(v, LbVerdict::Handoff(owner as u16));
        let (v, _, t) = through(&mut cores[owner], &s, err, true);
        assert_eq!(v, LbVerdict::Tx(0));
        assert_eq!(t.get(Counter::IcmpErrorsRelayed), 1);
    }
}

/// Mutated errors (bytes changed, cut short): never a panic, and whatever is
/// relayed leaves with valid outer and ICMP checksums.
#[test]
fn mutated_icmp_errors_never_panic_and_leave_with_valid_checksums() {
    let mut rng = crate::test_rng::XorShift::default();
    let mut next = || rng.next();
    let mut relayed = 0;
    for f in [&V4, &V6] {
        let (s, mut core, client, (backend, _, lport)) = connected(f);
        let templates = [
            ends(router_of(f), 0, f.vip, 0).too_big(&ends(f.vip, 80, client, 40000).packet(20)),
            ends(backend, 0, f.local, 0).too_big(&ends(f.local, lport, backend, 8080).packet(0)),
        ];
        for _ in 0..20_000 {
            let t = &templates[(next() % 2) as usize];
            let mut frame = t.clone();
            for _ in 0..1 + next() % 3 {
                let at = 14 + (next() % (t.len() as u64 - 14)) as usize;
                frame[at] = next() as u8;
            }
            if next() % 4 == 0 {
                frame.truncate(14 + (next() % (t.len() as u64 - 14)) as usize);
            }
            let mut b = VecBuf::new(&frame, 9000);
            let ours: IpAddr = if f.vip.is_ipv4() {
                "198.18.0.1".parse().unwrap()
            } else {
                "2001:db8::1".parse().unwrap()
            };
            if !matches!(
                classify(&mut b, &port_with(ours), &s),
                Verdict::Balance { .. }
            ) {
                continue;
            }
            let (v, out, _) = through(&mut core, &s, &frame, false);
            if v != LbVerdict::Tx(0) {
                continue;
            }
            let ip = &out.data()[14..];
            let o = outer(ip);
            let proto = if f.vip.is_ipv4() { ip[9] } else { ip[6] };
            if proto != ip_proto::ICMP && proto != ip_proto::ICMPV6 {
                continue; // a mutated error that became a segment of the connection
            }
            let ok = icmp_checksum_ok(&ip[o.body], (o.src, o.dst));
            assert!(ok, "relayed with a bad ICMP checksum: {frame:02x?}");
            relayed += 1;
        }
    }
    assert!(relayed > 100, "{relayed}");
}

/// `frame` with its TTL / hop limit set to `ttl` (the IPv4 checksum kept valid).
fn with_ttl(mut frame: Vec<u8>, ttl: u8) -> Vec<u8> {
    if frame[12..14] == [0x86, 0xdd] {
        frame[14 + 7] = ttl;
    } else {
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
        ip.set_ttl(ttl);
        ip.fill_checksum();
    }
    frame
}

#[test]
fn packets_whose_ttl_runs_out_here_get_time_exceeded_from_where_they_were_sent() {
    for f in [&V4, &V6] {
        let (s, mut core, client, (backend, _, lport)) = connected(f);
        // The client's packet to the VIP, and the backend's reply to the local
        // address: each answered from the address it was sent to.
        let to_vip = ends(client, 40000, f.vip, 80).frame(tcp::flags::ACK, 10);
        let to_local = ends(backend, 8080, f.local, lport).frame(tcp::flags::ACK, 10);
        for (sent, (from, to)) in [(to_vip, (f.vip, client)), (to_local, (f.local, backend))] {
            let expiring = with_ttl(sent.clone(), 1);
            let (v, out, t) = through(&mut core, &s, &expiring, false);
            assert_eq!(v, LbVerdict::Tx(0), "{from}");
            assert_eq!(t.get(Counter::TimeExceededSent), 1);
            assert_eq!(t.get(Counter::LbForward) + t.get(Counter::LbReverse), 0);
            assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), CLIENT_MAC);
            let ip = &out.data()[14..];
            let o = outer(ip);
            assert_eq!((o.src, o.dst, o.ttl), (from, to, 64));
            assert_eq!(o.len, ip.len(), "the length in the IP header");
            let msg = &ip[o.body];
            assert!(icmp_checksum_ok(msg, (from, to)), "ICMP checksum");
            let (want_type, quoted_ttl_at) = if f.vip.is_ipv4() { (11, 8) } else { (3, 7) };
            assert_eq!((msg[0], msg[1]), (want_type, 0));
            // It quotes the packet as it arrived (TTL 1), from its IP header on.
            assert_eq!(msg[8 + quoted_ttl_at], 1);
            assert_eq!(msg[8..], expiring[14..14 + msg.len() - 8]);
            // TTL 2 still goes through.
            let (v, _, t) = through(&mut core, &s, &with_ttl(sent, 2), false);
            assert_eq!((v, t.get(Counter::TimeExceededSent)), (LbVerdict::Tx(0), 0));
        }
        // The service counts the ones that never reached a backend.
        assert_eq!(core.stats.get_service(0, ServiceStat::DropTtlExpired), 2);
    }
}

/// `frame` (IPv4) with DF cleared (the IPv4 checksum kept valid).
fn without_df(mut frame: Vec<u8>) -> Vec<u8> {
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
    ip.set_unfragmented(false);
    ip.fill_checksum();
    frame
}

#[test]
fn packets_too_big_for_the_way_out_are_refused_unless_ipv4_may_be_fragmented() {
    for f in [&V4, &V6] {
        let (mut s, mut core, client, _) = connected(f);
        s.port_mtu = vec![1400];
        // The largest that fits, and one byte more.
        let hdr = if f.vip.is_ipv4() { 40 } else { 60 };
        let fits = ends(client, 40000, f.vip, 80).frame(tcp::flags::ACK, 1400 - hdr);
        let (v, out, t) = through(&mut core, &s, &fits, false);
        assert_eq!((v, t.get(Counter::LbForward)), (LbVerdict::Tx(0), 1));
        assert_eq!(out.len(), fits.len());
        let big = ends(client, 40000, f.vip, 80).frame(tcp::flags::ACK, 1401 - hdr);
        let (v, out, t) = through(&mut core, &s, &big, false);
        assert_eq!(v, LbVerdict::Tx(0), "{}", f.vip);
        assert_eq!(t.get(Counter::TooBigSent), 1);
        assert_eq!(t.get(Counter::LbForward), 0);
        let ip = &out.data()[14..];
        let o = outer(ip);
        assert_eq!((o.src, o.dst, o.ttl), (f.vip, client, 64));
        assert_eq!(o.len, ip.len(), "the length in the IP header");
        let msg = &ip[o.body];
        assert!(icmp_checksum_ok(msg, (f.vip, client)), "ICMP checksum");
        // Type and code, and the MTU in the low half of the word after the
        // checksum; the quote is the IPv4 header and 8 bytes, or as much of
        // the IPv6 packet as keeps the error within 1280 bytes.
        let (want, quoted) = if f.vip.is_ipv4() {
            ((3, 4), 28)
        } else {
            ((2, 0), 1280 - 48)
        };
        assert_eq!((msg[0], msg[1]), want);
        assert_eq!(msg[4..8], 1400u32.to_be_bytes());
        assert_eq!(msg[8..], big[14..14 + quoted]);
        if f.vip.is_ipv4() {
            // Without DF it goes on: the worker fragments it for the port.
            let (v, out, t) = through(&mut core, &s, &without_df(big), false);
            assert_eq!((v, t.get(Counter::LbForward)), (LbVerdict::Tx(0), 1));
            assert_eq!(t.get(Counter::TooBigSent), 0);
            assert_eq!(out.len(), 14 + 1401);
        }
    }
}

#[test]
fn a_worker_sends_at_most_its_budget_of_errors_per_tick() {
    let (mut s, mut core, client, _) = connected(&V4);
    let expiring = with_ttl(ends(client, 40000, V4.vip, 80).frame(tcp::flags::ACK, 0), 1);
    // How many of `n` copies of `frame` got verdict `want`.
    let sent = |core: &mut LbCore, s: &LbSnapshot, frame: &[u8], n: u32, want: LbVerdict| {
        (0..n)
            .filter(|_| through(core, s, frame, false).0 == want)
            .count() as u32
    };
    let (tx, limited) = (
        LbVerdict::Tx(0),
        LbVerdict::Drop(Counter::DropIcmpRateLimited),
    );
    assert_eq!(sent(&mut core, &s, &expiring, PER_TICK, tx), PER_TICK);
    assert_eq!(sent(&mut core, &s, &expiring, 30, limited), 30);
    // "Too big" draws on the same budget.
    s.port_mtu = vec![1000];
    let big = ends(client, 40000, V4.vip, 80).frame(tcp::flags::ACK, 1100);
    assert_eq!(sent(&mut core, &s, &big, 1, limited), 1);
    // A new tick, a new budget.
    core.now += 1;
    assert_eq!(sent(&mut core, &s, &big, 1, tx), 1);
    assert_eq!(sent(&mut core, &s, &expiring, 1, tx), 1);
}

/// A quote cut anywhere: dropped as malformed until the quoted IP header and
/// the ports are all there, relayed from there on (its TCP checksum updated
/// only when the quote holds it whole); never read past its end.
#[test]
fn quotes_cut_anywhere_are_malformed_until_their_ports_are_there() {
    for f in [&V4, &V6] {
        let (s, mut core, client, (backend, _, lport)) = connected(f);
        let to_client = ends(f.vip, 80, client, 40000).packet(0);
        let header = if f.vip.is_ipv4() { 20 } else { 40 };
        for cut in 0..=to_client.len() {
            let err = ends(router_of(f), 0, f.vip, 0).too_big(&to_client[..cut]);
            let (v, out, _) = through(&mut core, &s, &err, false);
            if cut < header + 8 {
                let malformed = LbVerdict::Drop(Counter::DropIcmpMalformed);
                assert_eq!(v, malformed, "{:?} cut at {cut}", f.vip);
                continue;
            }
            assert_eq!(v, LbVerdict::Tx(0), "{:?} cut at {cut}", f.vip);
            let q = ((backend, 8080), (f.local, lport));
            let full = cut == to_client.len();
            assert_relayed(out.data(), &err, (f.local, backend), q, full);
        }
    }
}

/// A quote whose IP header is not one of its family's is malformed; an IPv4
/// quote's options are stepped over to its ports.
#[test]
fn quotes_are_read_by_their_own_ip_header() {
    let malformed = LbVerdict::Drop(Counter::DropIcmpMalformed);
    for f in [&V4, &V6] {
        let (s, mut core, client, _) = connected(f);
        let mut quote = ends(f.vip, 80, client, 40000).packet(0);
        // The other family's version.
        quote[0] = if f.vip.is_ipv4() { 0x65 } else { 0x45 };
        let err = ends(router_of(f), 0, f.vip, 0).too_big(&quote);
        assert_eq!(
            through(&mut core, &s, &err, false).0,
            malformed,
            "{:?}",
            f.vip
        );
    }
    let (s, mut core, client, (backend, _, lport)) = connected(&V4);
    let to_client = ends(V4.vip, 80, client, 40000).packet(0);
    // A header length under the 20 bytes of a header.
    let mut short = to_client.clone();
    short[0] = 0x44;
    let err = ends(router_of(&V4), 0, V4.vip, 0).too_big(&short);
    assert_eq!(through(&mut core, &s, &err, false).0, malformed);
    // Four bytes of options (no-ops) before the ports.
    let mut opts = to_client[..20].to_vec();
    opts.extend_from_slice(&[1, 1, 1, 1]);
    opts.extend_from_slice(&to_client[20..]);
    let mut ip = ipv4::Packet::new_unchecked(&mut opts[..]);
    ip.set_version_header_len(24);
    ip.set_total_len(to_client.len() as u16 + 4);
    ip.fill_checksum();
    let err = ends(router_of(&V4), 0, V4.vip, 0).too_big(&opts);
    let (v, out, _) = through(&mut core, &s, &err, false);
    assert_eq!(v, LbVerdict::Tx(0));
    let q = ((backend, 8080), (V4.local, lport));
    assert_relayed(out.data(), &err, (V4.local, backend), q, true);
}

/// ICMPv6 messages that are not errors (echo replies, anything past 127, the
/// unassigned error types) are not relayed, though they quote a connection's
/// packet: the classifier drops them, as nothing here answers them.
#[test]
fn icmpv6_messages_that_are_not_errors_are_not_relayed() {
    let (s, mut core, client, _) = connected(&V6);
    let quote = ends(V6.vip, 80, client, 40000).packet(0);
    for msg_type in [0, 5, 100, 127, 129, 130, 200] {
        let mut m = ends(router_of(&V6), 0, V6.vip, 0).too_big(&quote);
        m[54] = msg_type;
        let (src, dst) = (router_of(&V6), V6.vip);
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (src, dst) else {
            unreachable!()
        };
        icmpv6::Packet::new_unchecked(&mut m[54..]).fill_checksum(&src, &dst);
        let (v, _, t) = through(&mut core, &s, &m, false);
        assert_eq!(v, LbVerdict::Drop(Counter::DropNotForUs), "type {msg_type}");
        assert_eq!(t.get(Counter::IcmpErrorsRelayed), 0);
    }
}

/// A backend's "port unreachable" about a UDP flow reaches the client, about
/// the datagram the client sent.
#[test]
fn icmp_errors_about_udp_flows_are_relayed() {
    let mut s = snap_of(&V4, Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    on_udp(&mut s);
    let mut core = LbCore::new(0, 1, 64, 1);
    let mut datagram = udp_frame(5000);
    Frame::new_unchecked(&mut datagram[..]).set_dst(OUR_MAC);
    let (v, out, _) = through(&mut core, &s, &datagram, false);
    assert_eq!(v, LbVerdict::Tx(0));
    let sent = out.data()[14..].to_vec();
    let o = outer(&sent);
    assert_eq!(sent[9], ip_proto::UDP);
    let unreachable =
        ends(o.dst, 0, o.src, 0).build(|t| t.icmp_error(3, 3, 0, &sent), |_| unreachable!("IPv4"));
    let (v, out, t) = through(&mut core, &s, &unreachable, false);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::IcmpErrorsRelayed), 1);
    assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), CLIENT_MAC);
    let q = ((IpAddr::V4(CLIENT), 5000), (V4.vip, 80));
    assert_relayed(out.data(), &unreachable, (V4.vip, CLIENT.into()), q, false);
}
