//! IPv4 datagrams in fragments through LbCore: the first fragment is balanced
//! with its ports, the later ones follow it (see lb::frag_routes).

use super::core::{Arrival, LbCore, LbVerdict};
use super::core_tests::{
    be_mac, run, snap, snap_of, tcp6_frame, tcp_frame, CLIENT, LOCAL, OUR, V6, VIP,
};
use super::frag_parking::{Done, WAIT_TICKS};
use super::snapshot::{LbSnapshot, Mode, SchedKind};
use crate::buf::{PacketBuf, VecBuf};
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::ethernet::Frame;
use crate::wire::{ip_proto, ipv4, ipv6, tcp};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Splits a single-segment IPv4 frame into two fragments (IP ID `id`): the first
/// with `first` bytes of its IP payload (a multiple of 8), the second with the rest.
pub(super) fn split(frame: &[u8], id: u16, first: usize) -> [Vec<u8>; 2] {
    let payload = &frame[34..];
    let piece = |bytes: &[u8], offset: usize, more: bool| {
        let mut f = frame[..34].to_vec();
        f.extend_from_slice(bytes);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_total_len((20 + bytes.len()) as u16);
        ip.set_ident(id);
        ip.set_fragment((offset / 8) as u16, more);
        ip.fill_checksum();
        f
    };
    [
        piece(&payload[..first], 0, true),
        piece(&payload[first..], first, false),
    ]
}

/// The addresses of a forwarded fragment, and its IP payload; its header checksum
/// checked.
fn opened(out: &VecBuf) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let ip = ipv4::Packet::new_checked(&out.data()[14..]).unwrap();
    assert!(ip.verify_checksum());
    (ip.src(), ip.dst(), ip.payload().to_vec())
}

/// What the worker does with the fragments LbCore parks: keeps them, and runs
/// them again when their first fragment has been handled.
#[derive(Default)]
struct Worker {
    kept: HashMap<u16, (Vec<u8>, bool)>,
}

impl Worker {
    /// `frame` through `core` as `run` does, then the kept fragments it released:
    /// what left (verdict and packet), in order.
    fn run(
        &mut self,
        core: &mut LbCore,
        s: &LbSnapshot,
        frame: &[u8],
        local: bool,
    ) -> Vec<(LbVerdict, VecBuf)> {
        let mut out = vec![];
        let mut queue = vec![(frame.to_vec(), local)];
        while !queue.is_empty() {
            let (f, local) = queue.remove(0);
            match run(core, s, &f, local) {
                (LbVerdict::Park(i), _, _) => {
                    // A place still kept is the longest wait's, given up.
                    self.kept.insert(i, (f, local));
                }
                (v, b, _) => out.push((v, b)),
            }
            while let Some(done) = core.parking.take_done() {
                match done {
                    Done::Retry(i) => queue.push(self.kept.remove(&i).expect("kept")),
                    Done::Expired(i) => {
                        self.kept.remove(&i).expect("kept");
                    }
                }
            }
        }
        out
    }
}

/// Both fragments through `core`, in the order given, forwarded (the first one
/// first): the reassembled TCP segment's ports, with its checksum checked against
/// the addresses both fragments left with.
fn both_through(
    core: &mut LbCore,
    s: &LbSnapshot,
    frags: &[Vec<u8>],
    local: bool,
) -> (Ipv4Addr, Ipv4Addr, (u16, u16), [[u8; 6]; 2]) {
    let mut worker = Worker::default();
    let left: Vec<_> = frags
        .iter()
        .flat_map(|f| worker.run(core, s, f, local))
        .collect();
    assert_eq!(left.len(), 2);
    let mut segment = vec![];
    let mut ends = vec![];
    let mut macs = [[0; 6]; 2];
    for (i, (v, out)) in left.iter().enumerate() {
        assert_eq!(*v, LbVerdict::Tx(0), "fragment {i}");
        let offset = ipv4::Packet::new_checked(&out.data()[14..])
            .unwrap()
            .frag_offset();
        assert_eq!(offset == 0, i == 0, "the first fragment leaves first");
        macs[i] = Frame::new_checked(out.data()).unwrap().dst();
        let (src, dst, payload) = opened(out);
        ends.push((src, dst));
        segment.extend_from_slice(&payload);
    }
    assert_eq!(ends[0], ends[1], "both fragments rewritten alike");
    let (src, dst) = ends[0];
    let seg = tcp::Packet::new_checked(&segment[..]).unwrap();
    let ps = pseudo_v4(src, dst, ip_proto::TCP, segment.len() as u16);
    assert!(seg.verify_checksum(ps), "the datagram's TCP checksum");
    (src, dst, (seg.src_port(), seg.dst_port()), macs)
}

/// A fullnat snapshot and core with the client's connection from port 40000:
/// its backend and local port.
fn fullnat_connection() -> (LbSnapshot, LbCore, Ipv4Addr, u16) {
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let (_, out, _) = run(&mut core, &s, &syn, false);
    let (_, backend, l4) = opened(&out);
    let lport = u16::from_be_bytes([l4[0], l4[1]]);
    (s, core, backend, lport)
}

#[test]
fn fullnat_fragments_follow_their_first_fragment_both_ways() {
    let (s, mut core, backend, lport) = fullnat_connection();
    let b = (u32::from(backend) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize;

    // The client's 120-byte segment in two fragments: to the backend, from the
    // local address, the ports and checksum rewritten in the first.
    let data = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100);
    let (src, dst, ports, macs) = both_through(&mut core, &s, &split(&data, 7, 48), false);
    assert_eq!((src, dst, ports), (LOCAL, backend, (lport, 8080)));
    assert_eq!(macs, [be_mac(b); 2]);

    // The backend's reply in fragments: to the client, from the VIP.
    let reply = tcp_frame(backend, 8080, LOCAL, lport, tcp::flags::ACK, 300);
    let (src, dst, ports, _) = both_through(&mut core, &s, &split(&reply, 8, 160), true);
    assert_eq!((src, dst, ports), (VIP, CLIENT, (80, 40000)));

    // The same, each way, with the later fragment first: it waits for its first
    // and leaves right after it, rewritten alike.
    let [first, later] = split(&data, 11, 48);
    let (src, dst, ports, _) = both_through(&mut core, &s, &[later, first], false);
    assert_eq!((src, dst, ports), (LOCAL, backend, (lport, 8080)));
    let [first, later] = split(&reply, 12, 160);
    let (src, dst, ports, _) = both_through(&mut core, &s, &[later, first], true);
    assert_eq!((src, dst, ports), (VIP, CLIENT, (80, 40000)));
    assert_eq!(core.parking.waiting(), 0);
}

#[test]
fn a_fragment_whose_first_never_comes_waits_then_is_dropped() {
    let (s, mut core, _, _) = fullnat_connection();
    let data = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100);
    let [_, orphan] = split(&data, 9, 48);
    let (v, _, t) = run(&mut core, &s, &orphan, false);
    assert_eq!(v, LbVerdict::Park(0));
    assert_eq!(t.get(Counter::FragmentsParked), 1);
    let mut t = Tally::default();
    core.expire(core.now + WAIT_TICKS, &mut t);
    assert_eq!(core.parking.take_done(), None);
    core.expire(core.now + 1, &mut t);
    assert_eq!(core.parking.take_done(), Some(Done::Expired(0)));

    // One that comes after its first's route was forgotten waits in vain too.
    let [first, later] = split(&data, 10, 48);
    assert_eq!(run(&mut core, &s, &first, false).0, LbVerdict::Tx(0));
    core.now += super::frag_routes::LIFETIME_TICKS + 1;
    assert!(matches!(
        run(&mut core, &s, &later, false).0,
        LbVerdict::Park(_)
    ));
    assert_eq!(core.parking.take_done(), None);
}

#[test]
fn dr_fragments_follow_their_first_fragment_to_its_backend() {
    // Round robin: the backend is the connection's, not any hash's.
    let s = snap(Mode::Dr, SchedKind::RoundRobin, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    for port in [1, 2] {
        run(
            &mut core,
            &s,
            &tcp_frame(CLIENT, port, VIP, 80, tcp::flags::SYN, 0),
            false,
        );
    }
    let (_, out, _) = run(
        &mut core,
        &s,
        &tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0),
        false,
    );
    let mac = Frame::new_checked(out.data()).unwrap().dst();
    let data = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100);
    let (src, dst, ports, macs) = both_through(&mut core, &s, &split(&data, 7, 48), false);
    assert_eq!(
        (src, dst, ports, macs),
        (CLIENT, VIP, (40000, 80), [mac; 2])
    );
}

#[test]
fn a_later_fragment_is_dropped_when_its_connection_moved_after_the_first() {
    // dr: a connection on a backend that went down; its client starts it again
    // (a SYN, which moves it to another backend) between a datagram's first
    // fragment and a later one that overtook it: the later one cannot follow
    // the first to the old backend through the moved connection.
    let mut s = snap(Mode::Dr, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let (_, out, _) = run(&mut core, &s, &syn, false);
    let old = Frame::new_checked(out.data()).unwrap().dst();
    super::core_tests::take_down(&mut s, old[5] as usize);
    let data = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100);
    let [first, later] = split(&data, 7, 48);
    assert!(matches!(
        run(&mut core, &s, &later, false).0,
        LbVerdict::Park(_)
    ));
    let (v, out, _) = run(&mut core, &s, &first, false);
    assert_eq!(
        (v, Frame::new_checked(out.data()).unwrap().dst()),
        (LbVerdict::Tx(0), old)
    );
    let (v, out, t) = run(&mut core, &s, &syn, false);
    assert_eq!((v, t.get(Counter::FlowsMoved)), (LbVerdict::Tx(0), 1));
    assert_ne!(Frame::new_checked(out.data()).unwrap().dst(), old);
    // The kept fragment goes through again: dropped, not sent to the new backend.
    let Some(Done::Retry(_)) = core.parking.take_done() else {
        panic!("the later fragment is ready");
    };
    let (v, _, _) = run(&mut core, &s, &later, false);
    assert_eq!(v, LbVerdict::Drop(Counter::DropFragment));
}

#[test]
fn with_two_workers_fragments_go_to_the_connection_owner() {
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let key = super::flow::FlowKey::v4(CLIENT, VIP, 40000, 80, ip_proto::TCP);
    let owner = key.owner(2) as usize;
    let mut cores = [LbCore::new(0, 2, 64, 1), LbCore::new(1, 2, 64, 1)];
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    assert_eq!(run(&mut cores[owner], &s, &syn, false).0, LbVerdict::Tx(0));
    let frags = split(
        &tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100),
        7,
        48,
    );
    // The worker that received them, the later one first, hands both over, the
    // first one first (the later one kept until its first left a route), and the
    // owner forwards both.
    let other = 1 - owner;
    let mut worker = Worker::default();
    let handed: Vec<_> = [&frags[1], &frags[0]]
        .into_iter()
        .flat_map(|f| worker.run(&mut cores[other], &s, f, false))
        .collect();
    assert_eq!(handed.len(), 2);
    for (i, (v, out)) in handed.iter().enumerate() {
        assert_eq!(*v, LbVerdict::Handoff(owner as u16));
        assert_eq!(out.data(), &frags[i][..], "unchanged, in order");
    }
    for f in &frags {
        let mut b = VecBuf::new(f, 9000);
        let mut t = Tally::default();
        let at = Arrival {
            l2: 14,
            v6: false,
            in_port: 0,
            handed: true,
            local: false,
        };
        let v = cores[owner].process(&mut b, at, &s, &[OUR], &mut t);
        assert_eq!(v, LbVerdict::Tx(0));
        assert_eq!(t.get(Counter::LbForward), 1);
    }
}

/// Fragments with random bytes changed (offsets, flags, lengths, ports) and cut
/// short: never a panic, and what is forwarded has a valid IPv4 header.
#[test]
fn mutated_fragments_never_panic_and_leave_with_valid_headers() {
    let (s, mut core, backend, lport) = fullnat_connection();
    let mut templates = split(
        &tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100),
        7,
        48,
    )
    .to_vec();
    templates.extend(split(
        &tcp_frame(backend, 8080, LOCAL, lport, tcp::flags::ACK, 100),
        8,
        48,
    ));
    let mut rng = crate::test_rng::XorShift::default();
    let mut worker = Worker::default();
    let mut forwarded = 0;
    for i in 0..40_000 {
        let t = &templates[i % templates.len()];
        let mut f = t.clone();
        // Mostly in the IP and TCP headers, where the decisions are; the IP
        // checksum made right again most of the time, so that they get through.
        for _ in 0..rng.next() % 3 {
            let at = 14 + (rng.next() % 40) as usize;
            f[at] = rng.next() as u8;
        }
        let header = f.get(14).map_or(20, |v| (v & 0x0f) as usize * 4).max(20);
        if rng.next() % 4 != 0 && f.len() >= 14 + header {
            ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        }
        if rng.next() % 8 == 0 {
            f.truncate(14 + (rng.next() % (t.len() as u64 - 14)) as usize);
        }
        // The classifier drops a header with a bad checksum before LbCore.
        let valid = ipv4::Packet::new_checked(&f[14..]).is_ok_and(|ip| ip.verify_checksum());
        if !valid {
            continue;
        }
        // Kept fragments go through again when a first fragment releases them.
        for (v, out) in worker.run(&mut core, &s, &f, i % 4 >= 2) {
            if v == LbVerdict::Tx(0) {
                let ip = ipv4::Packet::new_checked(&out.data()[14..]).unwrap();
                assert!(ip.verify_checksum(), "{f:02x?}");
                forwarded += 1;
            }
        }
        if i % 1000 == 0 {
            core.expire(core.now + 1, &mut Tally::default());
        }
    }
    assert!(forwarded > 1000, "{forwarded}");
}

/// `split` for an IPv6 frame: a fragment header (identification `id`) goes in
/// after the fixed header of each piece.
pub(super) fn split6(frame: &[u8], id: u32, first: usize) -> [Vec<u8>; 2] {
    let (next, payload) = (frame[14 + 6], &frame[54..]);
    let piece = |bytes: &[u8], offset: usize, more: bool| {
        let mut f = frame[..54].to_vec();
        f.extend_from_slice(&[next, 0]);
        f.extend_from_slice(&((offset as u16) | more as u16).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(bytes);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_payload_len((8 + bytes.len()) as u16);
        ip.set_next_header(44);
        f
    };
    [
        piece(&payload[..first], 0, true),
        piece(&payload[first..], first, false),
    ]
}

#[test]
fn ipv6_fragments_follow_their_first_fragment_both_ways() {
    let f = &V6;
    let s = snap_of(f, Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let client = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
    let (vip, local) = match (f.vip, f.local) {
        (IpAddr::V6(v), IpAddr::V6(l)) => (v, l),
        _ => unreachable!(),
    };
    let (v, out, _) = run(
        &mut core,
        &s,
        &tcp6_frame(client, 40000, vip, 80, tcp::flags::SYN, 0),
        false,
    );
    assert_eq!(v, LbVerdict::Tx(0));
    let ip = ipv6::Packet::new_checked(&out.data()[14..]).unwrap();
    let (backend, lport) = (
        ip.dst(),
        u16::from_be_bytes([ip.payload()[0], ip.payload()[1]]),
    );
    // Each way, in order and the later fragment first: both fragments forwarded
    // (the first one first) with the same addresses, and the reassembled
    // segment's checksum right for them.
    let mut worker = Worker::default();
    let ways = [
        (
            tcp6_frame(client, 40000, vip, 80, tcp::flags::ACK, 100),
            false,
            (local, backend, lport, 8080),
        ),
        (
            tcp6_frame(backend, 8080, local, lport, tcp::flags::ACK, 300),
            true,
            (vip, client, 80, 40000),
        ),
    ];
    for (n, (frame, local_side, want)) in ways.iter().cycle().take(4).enumerate() {
        let mut pieces = split6(frame, 0x1234_5678 + n as u32, 48);
        if n >= 2 {
            pieces.reverse();
        }
        let left: Vec<_> = pieces
            .iter()
            .flat_map(|p| worker.run(&mut core, &s, p, *local_side))
            .collect();
        assert_eq!(left.len(), 2);
        let mut segment = vec![];
        for (i, (v, out)) in left.iter().enumerate() {
            assert_eq!(*v, LbVerdict::Tx(0));
            let ip = ipv6::Packet::new_checked(&out.data()[14..]).unwrap();
            assert_eq!((ip.src(), ip.dst()), (want.0, want.1));
            let offset = u16::from_be_bytes([ip.payload()[2], ip.payload()[3]]) >> 3;
            assert_eq!(offset == 0, i == 0, "the first fragment leaves first");
            segment.extend_from_slice(&ip.payload()[8..]);
        }
        let t = tcp::Packet::new_checked(&segment[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (want.2, want.3));
        let ps = pseudo_v6(&want.0, &want.1, ip_proto::TCP, segment.len() as u32);
        assert!(t.verify_checksum(ps), "the datagram's TCP checksum");
    }
    assert_eq!(core.parking.waiting(), 0);
    // A later fragment of another datagram finds no route: it waits.
    let [_, orphan] = split6(
        &tcp6_frame(client, 40000, vip, 80, tcp::flags::ACK, 100),
        9,
        48,
    );
    assert!(matches!(
        run(&mut core, &s, &orphan, false).0,
        LbVerdict::Park(_)
    ));
    assert_eq!(core.parking.waiting(), 1);
}
