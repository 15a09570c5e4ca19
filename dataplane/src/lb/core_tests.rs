//! LbCore on Vec-backed packets: what goes out, to whom, rewritten how.

use super::core::{Arrival, LbCore, LbVerdict};
use super::ring::{RingMember, RingTable};
use super::snapshot::{Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service};
use super::stats::{BackendStat, ServiceStat};
use crate::buf::{PacketBuf, VecBuf};
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::build::TcpV4;
use crate::wire::checksum::pseudo_v4;
use crate::wire::ethernet::Frame;
use crate::wire::{icmpv4, ip_proto, ipv4, tcp, udp};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub(crate) const OUR: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub(crate) const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub(crate) const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

pub(crate) fn be_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 1, i as u8]
}

pub(crate) fn snap(mode: Mode, sched: SchedKind, weights: &[u32]) -> LbSnapshot {
    snap_of(&V4, mode, sched, weights)
}

/// The addresses of a test snapshot, of one family.
pub(crate) struct Family {
    pub vip: IpAddr,
    pub local: IpAddr,
    /// Backend `i`'s address.
    pub backend: fn(usize) -> IpAddr,
}

pub(crate) const V4: Family = Family {
    vip: IpAddr::V4(VIP),
    local: IpAddr::V4(LOCAL),
    backend: |i| Ipv4Addr::new(198, 18, 0, 11 + i as u8).into(),
};

pub(crate) const V6: Family = Family {
    vip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100)),
    local: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    backend: |i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11 + i as u16).into(),
};

/// One service (port 80/tcp on the VIP, backends on 8080 with `weights`), its
/// backends resolved on port 0, one local address.
pub(super) fn snap_of(f: &Family, mode: Mode, sched: SchedKind, weights: &[u32]) -> LbSnapshot {
    let names: Vec<String> = (0..weights.len()).map(|i| format!("p/b{i}")).collect();
    let members: Vec<RingMember<'_>> = names
        .iter()
        .zip(weights)
        .map(|(k, &weight)| RingMember { key: k, weight })
        .collect();
    let locals = match f.local {
        IpAddr::V4(a) => LocalAddrs {
            v4: vec![a],
            v6: vec![],
        },
        IpAddr::V6(a) => LocalAddrs {
            v4: vec![],
            v6: vec![a],
        },
    };
    let mut s = LbSnapshot {
        backends: (0..weights.len())
            .map(|i| Backend {
                name: names[i].clone(),
                addr: (f.backend)(i),
                port: 8080,
                weight: weights[i],
                mac: Some(be_mac(i)),
                port_index: 0,
                blocked: false,
                down: false,
            })
            .collect(),
        vips: vec![f.vip],
        locals: vec![locals],
        port_mtu: vec![1500],
        ..Default::default()
    };
    s.services.push(Service {
        name: "web".into(),
        vip: f.vip,
        port: 80,
        proto: 6,
        mode,
        sched,
        hash_key: HashKey::FiveTuple,
        hash_seed: crate::lb::flow::FLOW_HASH_SEED,
        backends: (0..weights.len() as u32).collect(),
        weights: weights.to_vec(),
        ports: vec![8080; weights.len()],
        ring: Arc::new(RingTable::build(&members)),
        wrr: super::snapshot::smooth_wrr(weights, 100),
        fragments: false,
    });
    let k = super::flow::FlowKey::new(f.vip, f.vip, 0, 80, 6);
    s.by_vip.insert((k.dst, 80, 6), 0);
    s.index_locals();
    // Room for the two workers of the multi-worker tests.
    s.lay_out_least_conn(2);
    s
}

/// [`tcp_frame`] over IPv6.
pub(super) fn tcp6_frame(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    flags: u8,
    payload: usize,
) -> Vec<u8> {
    crate::wire::build::TcpV6 {
        src_mac: CLIENT_MAC,
        dst_mac: OUR,
        src,
        sport,
        dst,
        dport,
    }
    .frame(flags, payload)
}

pub(super) fn tcp_frame(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    payload: usize,
) -> Vec<u8> {
    TcpV4 {
        src_mac: CLIENT_MAC,
        dst_mac: OUR,
        src,
        sport,
        dst,
        dport,
    }
    .frame(flags, payload)
}

/// An untagged IPv4 packet on port 0, not handed over.
pub(super) fn arrival(local: bool) -> Arrival {
    Arrival {
        l2: 14,
        v6: false,
        in_port: 0,
        handed: false,
        local,
    }
}

/// `frame` (IPv4 or IPv6, by its EtherType) through `core` on port 0.
pub(super) fn run(
    core: &mut LbCore,
    s: &LbSnapshot,
    frame: &[u8],
    local: bool,
) -> (LbVerdict, VecBuf, Tally) {
    let mut b = VecBuf::new(frame, 9000);
    let mut t = Tally::default();
    let at = Arrival {
        v6: frame.get(12..14) == Some(&[0x86, 0xdd]),
        ..arrival(local)
    };
    let v = core.process(&mut b, at, s, &[OUR], &mut t);
    (v, b, t)
}

pub(super) fn ip_of(b: &VecBuf) -> ipv4::Packet<&[u8]> {
    ipv4::Packet::new_checked(&b.data()[14..]).unwrap()
}

#[test]
fn fullnat_forward_and_reverse() {
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let (v, out, t) = run(
        &mut core,
        &s,
        &tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0),
        false,
    );
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::FlowsNew), 1);
    let ip = ip_of(&out);
    let backend = ip.dst();
    let b = (u32::from(backend) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize;
    assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), be_mac(b));
    assert_eq!((ip.src(), ip.ttl()), (LOCAL, 63));
    assert!(ip.verify_checksum());
    let seg = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(seg.dst_port(), 8080);
    let lport = seg.src_port();
    assert!(seg.verify_checksum(pseudo_v4(LOCAL, backend, 6, 20)));
    // The backend's SYN-ACK comes back to the local address and port.
    let mut reply = tcp_frame(
        backend,
        8080,
        LOCAL,
        lport,
        tcp::flags::SYN | tcp::flags::ACK,
        5,
    );
    Frame::new_unchecked(&mut reply[..]).set_src(be_mac(b));
    let (v, out, t) = run(&mut core, &s, &reply, true);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::LbReverse), 1);
    let ip = ip_of(&out);
    assert_eq!((ip.src(), ip.dst()), (VIP, CLIENT));
    let seg = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((seg.src_port(), seg.dst_port()), (80, 40000));
    assert!(seg.verify_checksum(pseudo_v4(VIP, CLIENT, 6, 25)));
    assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), CLIENT_MAC);
    // The service counts both packets and their frames' bytes; the backend
    // counts each way apart.
    let (syn_len, reply_len) = (54, reply.len() as u64);
    let st = |x| core.stats.get_service(0, x);
    assert_eq!(
        [ServiceStat::Packets, ServiceStat::Bytes].map(st),
        [2, syn_len + reply_len]
    );
    assert_eq!([ServiceStat::NewFlows, ServiceStat::Active].map(st), [1, 1]);
    let be = |x| core.stats.get_backend(b as u32, x);
    let ways = [
        BackendStat::PacketsIn,
        BackendStat::BytesIn,
        BackendStat::PacketsOut,
        BackendStat::BytesOut,
    ];
    assert_eq!(ways.map(be), [1, syn_len, 1, reply_len]);
    assert_eq!([BackendStat::NewFlows, BackendStat::Active].map(be), [1, 1]);
    let other = (b as u32 + 1) % 3;
    assert_eq!(core.stats.get_backend(other, BackendStat::PacketsIn), 0);
    // A reply to a port nobody owns: reset, from that port.
    let stray = tcp_frame(
        backend,
        8080,
        LOCAL,
        lport.wrapping_add(1),
        tcp::flags::ACK,
        0,
    );
    let (v, rst, t) = run(&mut core, &s, &stray, true);
    assert_eq!((v, t.get(Counter::TcpResetsSent)), (LbVerdict::Tx(0), 1));
    assert_reset(&rst, (LOCAL, lport.wrapping_add(1)), (backend, 8080));
}

/// Checks that `out` is a TCP reset from `from` to `to`, checksums valid, back
/// to the sender's MAC (`CLIENT_MAC` in these tests).
fn assert_reset(out: &VecBuf, from: (Ipv4Addr, u16), to: (Ipv4Addr, u16)) -> tcp::Packet<Vec<u8>> {
    let ip = ip_of(out);
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.src(), ip.dst(), ip.ttl(), ip.total_len()),
        (from.0, to.0, 64, 40)
    );
    assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), CLIENT_MAC);
    let seg = tcp::Packet::new_checked(ip.payload().to_vec()).unwrap();
    assert_eq!((seg.src_port(), seg.dst_port()), (from.1, to.1));
    assert!(seg.verify_checksum(pseudo_v4(from.0, to.0, 6, 20)));
    assert_ne!(seg.flags() & tcp::flags::RST, 0);
    seg
}

#[test]
fn replies_move_the_state_and_the_deadline() {
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let (_, out, _) = run(&mut core, &s, &syn, false);
    let lport = tcp::Packet::new_checked(ip_of(&out).payload())
        .unwrap()
        .src_port();
    let key = super::flow::FlowKey::v4(CLIENT, VIP, 40000, 80, 6);
    let entry = |core: &LbCore| *core.table.get(core.table.lookup(&key).unwrap().id);
    let tick = super::core::TICKS_PER_SEC;
    assert_eq!(entry(&core).expires, 30 * tick, "tcp_syn after the SYN");
    // The backend answers 100 s later (in ticks, 1000): the flow is established
    // from its side, and its deadline moves with it.
    let backend = Ipv4Addr::new(198, 18, 0, 11);
    let reply = |flags| tcp_frame(backend, 8080, LOCAL, lport, flags, 0);
    core.now = 100 * tick;
    run(&mut core, &s, &reply(tcp::flags::ACK), true);
    let e = entry(&core);
    assert_eq!(e.state, super::tcp_state::ConnState::Established);
    assert_eq!(e.expires, (100 + 900) * tick);
    // Its FIN brings the deadline forward to tcp_fin.
    core.now = 200 * tick;
    run(
        &mut core,
        &s,
        &reply(tcp::flags::FIN | tcp::flags::ACK),
        true,
    );
    let e = entry(&core);
    assert_eq!(e.state, super::tcp_state::ConnState::FinWait);
    assert_eq!(e.expires, (200 + 120) * tick);
    assert_eq!((e.packets, e.bytes), (3, 3 * 54));
}

#[test]
fn dr_rewrites_only_macs_and_ttl() {
    let s = snap(Mode::Dr, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let input = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 10);
    let (v, out, _) = run(&mut core, &s, &input, false);
    assert_eq!(v, LbVerdict::Tx(0));
    // Everything after the MACs is as sent, but the TTL and header checksum.
    assert_eq!(&out.data()[14..22], &input[14..22]);
    assert_eq!(&out.data()[26..], &input[26..]);
    assert_eq!(ip_of(&out).ttl(), 63);
    assert!(ip_of(&out).verify_checksum());
    assert_eq!(&out.data()[6..12], &OUR);
    // Mid-stream without an entry (after a restart): the same backend by the hash.
    let mut fresh = LbCore::new(0, 1, 64, 1);
    let ack = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 0);
    let (v, again, t) = run(&mut fresh, &s, &ack, false);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::FlowsMidstream), 1);
    assert_eq!(&again.data()[..6], &out.data()[..6]);
}

/// A reload that changes a service's mode: its connections go on as they
/// were made, and only new ones take the new mode.
#[test]
fn a_connection_keeps_the_mode_it_was_made_in_when_its_service_changes_mode() {
    let with_mode = |mode| {
        let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1]);
        s.services[0].mode = mode;
        s
    };
    let (fullnat, dr) = (with_mode(Mode::FullNat), with_mode(Mode::Dr));
    let mut core = LbCore::new(0, 1, 64, 1);
    let backend = Ipv4Addr::new(198, 18, 0, 11);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let (_, first, _) = run(&mut core, &fullnat, &syn, false);
    let lport = tcp::Packet::new_checked(ip_of(&first).payload())
        .unwrap()
        .src_port();
    // Now dr: the fullnat connection's next segment is still translated...
    let ack = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 3);
    let (v, out, t) = run(&mut core, &dr, &ack, false);
    assert_eq!((v, t.get(Counter::LbForward)), (LbVerdict::Tx(0), 1));
    let ip = ip_of(&out);
    assert_eq!((ip.src(), ip.dst()), (LOCAL, backend));
    let seg = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((seg.src_port(), seg.dst_port()), (lport, 8080));
    assert!(seg.verify_checksum(pseudo_v4(LOCAL, backend, 6, 23)));
    // ...while a new connection is dr: only the MACs change.
    let syn2 = tcp_frame(CLIENT, 40001, VIP, 80, tcp::flags::SYN, 0);
    let (_, out, _) = run(&mut core, &dr, &syn2, false);
    assert_eq!((ip_of(&out).src(), ip_of(&out).dst()), (CLIENT, VIP));
    // Back to fullnat: the dr connection goes on as dr, not dropped as a
    // fullnat flow without a translation.
    let ack2 = tcp_frame(CLIENT, 40001, VIP, 80, tcp::flags::ACK, 0);
    let (v, out, t) = run(&mut core, &fullnat, &ack2, false);
    assert_eq!((v, t.get(Counter::LbForward)), (LbVerdict::Tx(0), 1));
    assert_eq!((ip_of(&out).src(), ip_of(&out).dst()), (CLIENT, VIP));
    assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), be_mac(0));
}

#[test]
fn fullnat_midstream_without_entry_is_reset() {
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    // An ACK with 10 bytes (sequence 1, acknowledging 777): a reset with
    // sequence 777, from the VIP.
    let mut ack = tcp_frame(
        CLIENT,
        40000,
        VIP,
        80,
        tcp::flags::ACK | tcp::flags::PSH,
        10,
    );
    let mut seg = tcp::Packet::new_unchecked(&mut ack[34..]);
    seg.set_ack(777);
    seg.fill_checksum(pseudo_v4(CLIENT, VIP, 6, 30));
    let (v, out, t) = run(&mut core, &s, &ack, false);
    assert_eq!((v, t.get(Counter::TcpResetsSent)), (LbVerdict::Tx(0), 1));
    let rst = assert_reset(&out, (VIP, 80), (CLIENT, 40000));
    assert_eq!(
        (rst.flags(), rst.seq(), rst.ack()),
        (tcp::flags::RST, 777, 0)
    );
    // A FIN without ACK: reset and acknowledge all it occupied.
    let fin = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::FIN, 10);
    let rst = assert_reset(
        &run(&mut core, &s, &fin, false).1,
        (VIP, 80),
        (CLIENT, 40000),
    );
    assert_eq!(
        (rst.flags(), rst.seq(), rst.ack()),
        (tcp::flags::RST | tcp::flags::ACK, 0, 1 + 10 + 1)
    );
    // A reset is not answered; nor is the flow counted as anything but dropped.
    let rst_in = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::RST, 0);
    assert_eq!(
        run(&mut core, &s, &rst_in, false).0,
        LbVerdict::Drop(Counter::DropNoFlow)
    );
    assert_eq!(core.table.len(), 0);
    assert_eq!(core.stats.get_service(0, ServiceStat::DropNoFlow), 3);
}

pub(super) fn backend_of(out: &VecBuf) -> usize {
    out.data()[5] as usize
}

#[test]
fn schedulers_choose_as_documented() {
    let flows = |core: &mut LbCore, s: &LbSnapshot, n: u16| -> Vec<usize> {
        (0..n)
            .map(|i| {
                let f = tcp_frame(CLIENT, 10000 + i, VIP, 80, tcp::flags::SYN, 0);
                let (v, out, _) = run(core, s, &f, false);
                assert_eq!(v, LbVerdict::Tx(0));
                backend_of(&out)
            })
            .collect()
    };
    let s = snap(Mode::Dr, SchedKind::RoundRobin, &[1, 0, 1]);
    assert_eq!(
        flows(&mut LbCore::new(0, 1, 64, 1), &s, 4),
        vec![0, 2, 0, 2]
    );
    let s = snap(Mode::Dr, SchedKind::WeightedRoundRobin, &[2, 1, 0]);
    assert_eq!(
        flows(&mut LbCore::new(0, 1, 64, 1), &s, 6),
        vec![0, 1, 0, 0, 1, 0]
    );
    // least_conn: equal weights fill evenly; weight 2 takes twice the connections.
    let s = snap(Mode::Dr, SchedKind::LeastConn, &[1, 1, 2]);
    let got = flows(&mut LbCore::new(0, 1, 64, 1), &s, 8);
    let count = |b| got.iter().filter(|&&x| x == b).count();
    assert_eq!((count(0), count(1), count(2)), (2, 2, 4));
}

#[test]
fn a_services_hash_secret_decides_its_picks_alike_on_every_appliance() {
    // Each flow's backend, on a fresh core (another appliance, or this one
    // after a restart), for a service hashing with `seed`.
    let picks = |seed: u64| -> Vec<usize> {
        let mut s = snap(Mode::Dr, SchedKind::RingHash, &[1, 1, 1]);
        s.services[0].hash_seed = seed;
        let mut core = LbCore::new(0, 1, 1024, 1);
        (0..300)
            .map(|i| {
                let f = tcp_frame(CLIENT, 20000 + i, VIP, 80, tcp::flags::SYN, 0);
                let (v, out, _) = run(&mut core, &s, &f, false);
                assert_eq!(v, LbVerdict::Tx(0));
                backend_of(&out)
            })
            .collect()
    };
    let secret = crate::lb::flow::seed_from_secret("a secret of the pair");
    let (published, keyed) = (picks(crate::lb::flow::FLOW_HASH_SEED), picks(secret));
    assert_eq!(keyed, picks(secret));
    // Another seed is another hash: about two thirds of the flows move.
    let moved = (0..300).filter(|&i| published[i] != keyed[i]).count();
    assert!((150..250).contains(&moved), "{moved} of 300 moved");
}

#[test]
fn flows_are_steered_to_their_owner() {
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut w0 = LbCore::new(0, 2, 64, 1);
    let mut w1 = LbCore::new(1, 2, 64, 1);
    for sport in 40000..40010 {
        let f = tcp_frame(CLIENT, sport, VIP, 80, tcp::flags::SYN, 0);
        let (a, _, _) = run(&mut w0, &s, &f, false);
        let (b, _, _) = run(&mut w1, &s, &f, false);
        // Exactly one of the two keeps it; the other hands it over.
        match (a, b) {
            (LbVerdict::Tx(_), LbVerdict::Handoff(0))
            | (LbVerdict::Handoff(1), LbVerdict::Tx(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    // Replies go to the worker whose port partition holds the destination port.
    let reply = tcp_frame(
        Ipv4Addr::new(198, 18, 0, 11),
        8080,
        LOCAL,
        1025,
        tcp::flags::ACK,
        0,
    );
    assert_eq!(run(&mut w0, &s, &reply, true).0, LbVerdict::Handoff(1));
}

#[test]
fn oversize_with_df_gets_fragmentation_needed() {
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    s.port_mtu = vec![1500];
    let mut core = LbCore::new(0, 1, 64, 1);
    let big = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 1600);
    let (v, out, t) = run(&mut core, &s, &big, false);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::TooBigSent), 1);
    let ip = ip_of(&out);
    assert_eq!((ip.src(), ip.dst(), ip.protocol()), (VIP, CLIENT, 1));
    assert!(ip.verify_checksum());
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 4));
    assert_eq!(u16::from_be_bytes([ip.payload()[6], ip.payload()[7]]), 1500);
    assert!(icmp.verify_checksum());
    // It quotes the original IP header and the first 8 bytes after it.
    assert_eq!(icmp.data(), &big[14..14 + 28]);
    assert_eq!(Frame::new_checked(out.data()).unwrap().dst(), CLIENT_MAC);
}

#[test]
fn a_reply_too_big_for_the_client_side_gets_fragmentation_needed_from_the_local_address() {
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let (_, out, _) = run(&mut core, &s, &syn, false);
    let ip = ip_of(&out);
    let (backend, lport) = (
        ip.dst(),
        tcp::Packet::new_checked(ip.payload()).unwrap().src_port(),
    );
    // The client's side (port 0 here) now takes 1000 bytes; the backend sends 1200.
    s.port_mtu = vec![1000];
    let mut big = tcp_frame(backend, 8080, LOCAL, lport, tcp::flags::ACK, 1200 - 40);
    Frame::new_unchecked(&mut big[..]).set_src([2, 0, 0, 0, 1, 0]);
    let (v, out, t) = run(&mut core, &s, &big, true);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::TooBigSent), 1);
    assert_eq!(t.get(Counter::LbReverse), 0);
    let ip = ip_of(&out);
    assert_eq!((ip.src(), ip.dst(), ip.protocol()), (LOCAL, backend, 1));
    assert!(ip.verify_checksum());
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 4));
    assert_eq!(u16::from_be_bytes([ip.payload()[6], ip.payload()[7]]), 1000);
    assert_eq!(icmp.data(), &big[14..14 + 28]);
    assert_eq!(
        Frame::new_checked(out.data()).unwrap().dst(),
        [2, 0, 0, 0, 1, 0]
    );
    // One that fits still goes back to the client.
    let small = tcp_frame(backend, 8080, LOCAL, lport, tcp::flags::ACK, 100);
    assert_eq!(run(&mut core, &s, &small, true).0, LbVerdict::Tx(0));
}

#[test]
fn fragments_follow_the_three_tuple_hash_only_where_allowed() {
    let mut frag = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 100);
    // A later fragment: offset 64 bytes, no ports in it.
    frag[14 + 6..14 + 8].copy_from_slice(&(64u16 / 8).to_be_bytes());
    ipv4::Packet::new_unchecked(&mut frag[14..]).fill_checksum();
    let mut s = snap(Mode::Dr, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    // Without it, a later fragment waits for its first.
    assert_eq!(run(&mut core, &s, &frag, false).0, LbVerdict::Park(0));
    s.services[0].fragments = true;
    let (v, a, t) = run(&mut core, &s, &frag, false);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::LbForward), 1);
    // Another fragment of the same datagram (other offset) goes to the same backend.
    let mut frag2 = frag.clone();
    frag2[14 + 6..14 + 8].copy_from_slice(&(128u16 / 8).to_be_bytes());
    ipv4::Packet::new_unchecked(&mut frag2[14..]).fill_checksum();
    let (_, b, _) = run(&mut core, &s, &frag2, false);
    assert_eq!(&a.data()[..6], &b.data()[..6]);
    // The 3-tuple hash is for dr only: in fullnat a later fragment follows its
    // first (core_fragment_tests), and this one's was never seen.
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    s.services[0].fragments = true;
    assert_eq!(run(&mut core, &s, &frag, false).0, LbVerdict::Park(1));
}

#[test]
fn blocked_and_unresolved_backends_are_counted() {
    let mut s = snap(Mode::Dr, SchedKind::RoundRobin, &[1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    s.backends[0].mac = None;
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    assert_eq!(
        run(&mut core, &s, &syn, false).0,
        LbVerdict::Drop(Counter::DropNoNeighbor)
    );
    s.backends[0].mac = Some(be_mac(0));
    s.backends[0].blocked = true;
    assert_eq!(
        run(&mut core, &s, &syn, false).0,
        LbVerdict::Drop(Counter::DropBackendMaint)
    );
    s.backends[0].blocked = false;
    assert_eq!(run(&mut core, &s, &syn, false).0, LbVerdict::Tx(0));
    // The service counts each drop under its reason, and in its total.
    let st = |x| core.stats.get_service(0, x);
    assert_eq!(st(ServiceStat::DropNoNeighbor), 1);
    assert_eq!(st(ServiceStat::DropBackendMaint), 1);
    assert_eq!(st(ServiceStat::DropTableFull), 0);
    assert_eq!(st(ServiceStat::Drops), 2);
    // And so does the backend they were for.
    let be = |x| core.stats.get_backend(0, x);
    assert_eq!(be(BackendStat::DropNoNeighbor), 1);
    assert_eq!(be(BackendStat::DropBackendMaint), 1);
    assert_eq!(be(BackendStat::Drops), 2);
    assert_eq!(core.stats.get_backend(1, BackendStat::Drops), 0);
}

#[test]
fn a_flow_created_earlier_in_the_burst_is_found_by_its_later_packets() {
    // Both packets are staged (and miss) before the first creates the flow.
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let ack = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 0);
    let other = tcp_frame(CLIENT, 40001, VIP, 80, tcp::flags::SYN, 0);
    let at = arrival(false);
    let mut bufs: Vec<VecBuf> = [&syn, &ack, &other]
        .iter()
        .map(|f| VecBuf::from_slice(f))
        .collect();
    let mut preps: Vec<_> = bufs
        .iter()
        .map(|b| {
            core.prepare(
                crate::lb::nat::parse(b.data(), 14, false).unwrap(),
                at,
                None,
            )
        })
        .collect();
    for p in preps.iter_mut() {
        core.prefetch_entry(p);
    }
    let mut t = Tally::default();
    let verdicts: Vec<_> = bufs
        .iter_mut()
        .zip(&preps)
        .map(|(b, p)| core.finish(b, p, &s, &[OUR], &mut t))
        .collect();
    assert_eq!(verdicts, vec![LbVerdict::Tx(0); 3]);
    // One connection for the first flow (the ACK found it), one for the other.
    assert_eq!(core.table.len(), 2);
    assert_eq!(t.get(Counter::FlowsNew), 2);
    // The ACK left with the same local port as the SYN.
    assert_eq!(&bufs[0].data()[34..36], &bufs[1].data()[34..36]);
}

/// `s`'s service on UDP instead of TCP.
pub(super) fn on_udp(s: &mut LbSnapshot) {
    let (key, _) = s.by_vip.drain().next().expect("one service");
    s.by_vip.insert((key.0, key.1, ip_proto::UDP), 0);
    s.services[0].proto = ip_proto::UDP;
    s.index_locals();
}

/// A UDP datagram with 4 payload bytes from `CLIENT:sport` to the VIP's port 80.
pub(super) fn udp_frame(sport: u16) -> Vec<u8> {
    let mut f = tcp_frame(CLIENT, sport, VIP, 80, 0, 0);
    f.truncate(14 + 20 + 8 + 4);
    let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
    ip.set_protocol(ip_proto::UDP);
    ip.set_total_len(20 + 8 + 4);
    ip.fill_checksum();
    let mut u = udp::Packet::new_unchecked(&mut f[34..]);
    u.set_len(8 + 4);
    u.fill_checksum(pseudo_v4(CLIENT, VIP, ip_proto::UDP, 8 + 4));
    f
}

/// Backend `b` of `s`'s service fails its health checks: it is flagged down and
/// its weight for new flows is zero, as the management core publishes it.
pub(super) fn take_down(s: &mut LbSnapshot, b: usize) {
    s.backends[b].down = true;
    let svc = &mut s.services[0];
    svc.weights[b] = 0;
    let names: Vec<String> = (0..svc.weights.len()).map(|i| format!("p/b{i}")).collect();
    let members: Vec<RingMember<'_>> = names
        .iter()
        .zip(&svc.weights)
        .map(|(k, &weight)| RingMember { key: k, weight })
        .collect();
    svc.ring = Arc::new(RingTable::build(&members));
    svc.wrr = super::snapshot::smooth_wrr(&svc.weights, 100);
}

#[test]
fn udp_flows_move_off_a_backend_that_went_down_and_tcp_connections_stay() {
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    on_udp(&mut s);
    let mut core = LbCore::new(0, 1, 64, 1);
    let (v, out, _) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!(v, LbVerdict::Tx(0));
    let first = ip_of(&out).dst();
    let b = (u32::from(first) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize;
    assert_eq!(core.active(b as u32), 1);
    take_down(&mut s, b);
    // The flow's next datagram starts it again elsewhere; the ones after follow.
    let (v, out, t) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!((v, t.get(Counter::FlowsMoved)), (LbVerdict::Tx(0), 1));
    let (moved_to, lport) = (
        ip_of(&out).dst(),
        udp::Packet::new_checked(ip_of(&out).payload())
            .unwrap()
            .src_port(),
    );
    assert_ne!(moved_to, first);
    assert_eq!((core.active(b as u32), core.table.len()), (0, 1));
    let (_, again, t) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!(
        (ip_of(&again).dst(), t.get(Counter::FlowsMoved)),
        (moved_to, 0)
    );
    // The new backend's answer reaches the client.
    let mut reply = tcp_frame(moved_to, 8080, LOCAL, lport, 0, 0);
    reply.truncate(14 + 20 + 8);
    let mut ip = ipv4::Packet::new_unchecked(&mut reply[14..]);
    ip.set_protocol(ip_proto::UDP);
    ip.set_total_len(28);
    ip.fill_checksum();
    udp::Packet::new_unchecked(&mut reply[34..]).set_len(8);
    let (v, back, _) = run(&mut core, &s, &reply, true);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!((ip_of(&back).src(), ip_of(&back).dst()), (VIP, CLIENT));

    // Maintenance moves a UDP flow too (it would get no traffic at all).
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    on_udp(&mut s);
    let mut core = LbCore::new(0, 1, 64, 1);
    let first = ip_of(&run(&mut core, &s, &udp_frame(5000), false).1).dst();
    let b = (u32::from(first) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize;
    s.backends[b].blocked = true;
    s.services[0].weights[b] = 0;
    take_down(&mut s, b);
    s.backends[b].down = false;
    let (v, out, t) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!((v, t.get(Counter::FlowsMoved)), (LbVerdict::Tx(0), 1));
    assert_ne!(ip_of(&out).dst(), first);

    // A backend that answers no ARP any more (its MAC forgotten; the
    // management core gives it no new flows while others answer): the flow
    // moves too. While its weight stands (nobody resolved) it stays, dropped.
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    on_udp(&mut s);
    let mut core = LbCore::new(0, 1, 64, 1);
    let first = ip_of(&run(&mut core, &s, &udp_frame(5000), false).1).dst();
    let b = (u32::from(first) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize;
    s.backends[b].mac = None;
    let (v, _, t) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!(
        (v, t.get(Counter::FlowsMoved)),
        (LbVerdict::Drop(Counter::DropNoNeighbor), 0)
    );
    take_down(&mut s, b);
    s.backends[b].down = false;
    let (v, out, t) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!((v, t.get(Counter::FlowsMoved)), (LbVerdict::Tx(0), 1));
    assert_ne!(ip_of(&out).dst(), first);

    // With no backend left to move to, the datagram gets "port unreachable".
    (0..3).for_each(|b| take_down(&mut s, b));
    let (v, out, t) = run(&mut core, &s, &udp_frame(5000), false);
    assert_eq!(
        (v, t.get(Counter::PortUnreachableSent)),
        (LbVerdict::Tx(0), 1)
    );
    assert_eq!((t.get(Counter::FlowsMoved), core.table.len()), (0, 0));
    assert_eq!(ip_of(&out).protocol(), ip_proto::ICMP);

    // TCP: the connection stays on the backend that went down.
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let first = ip_of(&run(&mut core, &s, &syn, false).1).dst();
    take_down(
        &mut s,
        (u32::from(first) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize,
    );
    let ack = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 0);
    let (v, out, t) = run(&mut core, &s, &ack, false);
    assert_eq!(
        (v, ip_of(&out).dst(), t.get(Counter::FlowsMoved)),
        (LbVerdict::Tx(0), first, 0)
    );
}

#[test]
fn a_syn_whose_connection_has_no_live_backend_opens_it_elsewhere() {
    for mode in [Mode::FullNat, Mode::Dr] {
        let mut s = snap(mode, SchedKind::RingHash, &[1, 1, 1]);
        let mut core = LbCore::new(0, 1, 64, 1);
        let to = |out: &VecBuf| Frame::new_checked(out.data()).unwrap().dst();
        let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
        let first = to(&run(&mut core, &s, &syn, false).1);
        let b = (0..3).find(|&b| be_mac(b) == first).unwrap();
        take_down(&mut s, b);
        // The SYN again (no answer came): the connection opens on a live backend,
        // and its next packets follow.
        let (v, out, t) = run(&mut core, &s, &syn, false);
        assert_eq!(
            (v, t.get(Counter::FlowsMoved)),
            (LbVerdict::Tx(0), 1),
            "{mode:?}"
        );
        let moved_to = to(&out);
        assert_ne!(moved_to, first, "{mode:?}");
        assert_eq!((core.active(b as u32), core.table.len()), (0, 1));
        let ack = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 0);
        let (_, out, t) = run(&mut core, &s, &ack, false);
        assert_eq!((to(&out), t.get(Counter::FlowsMoved)), (moved_to, 0));

        // An established connection stays where it is, even if its backend
        // goes down; a SYN reusing its ports (the client gave up on it, or
        // closed it) goes elsewhere.
        let c = (0..3).find(|&c| be_mac(c) == moved_to).unwrap();
        take_down(&mut s, c);
        let (_, out, t) = run(&mut core, &s, &ack, false);
        assert_eq!((to(&out), t.get(Counter::FlowsMoved)), (moved_to, 0));
        let (v, out, t) = run(&mut core, &s, &syn, false);
        assert_eq!((v, t.get(Counter::FlowsMoved)), (LbVerdict::Tx(0), 1));
        let last = (0..3).find(|&l| l != b && l != c).unwrap();
        assert_eq!(to(&out), be_mac(last), "{mode:?}");
    }

    // With no backend left, a SYN on an entry is refused as a new flow is: a
    // reset acknowledging it; and the entry is gone.
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    run(
        &mut core,
        &s,
        &tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0),
        false,
    );
    (0..3).for_each(|b| take_down(&mut s, b));
    let (v, out, t) = run(
        &mut core,
        &s,
        &tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0),
        false,
    );
    assert_eq!(
        (v, t.get(Counter::TcpResetsSent), t.get(Counter::FlowsMoved)),
        (LbVerdict::Tx(0), 1, 0)
    );
    let ip = ip_of(&out);
    let rst = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((ip.src(), ip.dst()), (VIP, CLIENT));
    assert_eq!(rst.flags(), tcp::flags::RST | tcp::flags::ACK);
    assert_eq!(core.table.len(), 0);

    // Draining (no new flows, but up): the connection it has stays, and a SYN
    // reusing its ports opens a new one elsewhere.
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let first = ip_of(&run(&mut core, &s, &syn, false).1).dst();
    let b = (u32::from(first) - u32::from(Ipv4Addr::new(198, 18, 0, 11))) as usize;
    take_down(&mut s, b);
    s.backends[b].down = false;
    let ack = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::ACK, 0);
    let (_, out, t) = run(&mut core, &s, &ack, false);
    assert_eq!((ip_of(&out).dst(), t.get(Counter::FlowsMoved)), (first, 0));
    let (_, out, t) = run(&mut core, &s, &syn, false);
    assert_eq!(t.get(Counter::FlowsMoved), 1);
    assert_ne!(ip_of(&out).dst(), first);
}

#[test]
fn fullnat_midstream_without_entry_is_reset_over_ipv6_too() {
    let s = snap_of(&V6, Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 64, 1);
    let (client, vip): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::10".parse().unwrap(),
        "2001:db8::100".parse().unwrap(),
    );
    let ack = tcp6_frame(client, 40000, vip, 80, tcp::flags::ACK, 10);
    let (v, b, _) = run(&mut core, &s, &ack, false);
    assert_eq!(v, LbVerdict::Tx(0));
    let ip = crate::wire::ipv6::Packet::new_checked(&b.data()[14..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.hop_limit(), ip.payload_len()),
        (vip, client, 64, 20)
    );
    let seg = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (seg.src_port(), seg.dst_port(), seg.flags()),
        (80, 40000, tcp::flags::RST)
    );
    let ps = crate::wire::checksum::pseudo_v6(&vip, &client, 6, 20);
    assert!(seg.verify_checksum(ps));
    assert_eq!(b.len(), 14 + 40 + 20);
}

#[test]
fn with_no_backend_up_a_new_flow_is_refused_at_once() {
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1, 1, 1]);
    for b in 0..3 {
        take_down(&mut s, b);
    }
    let mut core = LbCore::new(0, 1, 64, 1);
    // A SYN (sequence 1): reset, acknowledging it.
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, tcp::flags::SYN, 0);
    let (v, out, t) = run(&mut core, &s, &syn, false);
    assert_eq!((v, t.get(Counter::TcpResetsSent)), (LbVerdict::Tx(0), 1));
    let rst = assert_reset(&out, (VIP, 80), (CLIENT, 40000));
    assert_eq!(
        (rst.flags(), rst.ack()),
        (tcp::flags::RST | tcp::flags::ACK, 2)
    );
    // A datagram: "port unreachable" from the VIP, quoting it.
    on_udp(&mut s);
    let datagram = udp_frame(5000);
    let (v, out, t) = run(&mut core, &s, &datagram, false);
    assert_eq!(
        (v, t.get(Counter::PortUnreachableSent)),
        (LbVerdict::Tx(0), 1)
    );
    let ip = ip_of(&out);
    assert_eq!(
        (ip.src(), ip.dst(), ip.protocol()),
        (VIP, CLIENT, ip_proto::ICMP)
    );
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 3));
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.data(), &datagram[14..14 + 28]);
    // Neither made a connection; the service counts both as having no backend.
    assert_eq!(core.table.len(), 0);
    assert_eq!(core.stats.get_service(0, ServiceStat::DropNoBackend), 2);
}
