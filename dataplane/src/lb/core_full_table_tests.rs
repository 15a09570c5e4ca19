//! A full connection table through LbCore: which entries a new flow may take
//! (finished, then half-open, then quiet UDP, then long-quiet TCP), the per-tick
//! memos that keep a flood cheap, local ports running out, and dr going on
//! statelessly.

use super::core::{Arrival, LbCore, LbVerdict};
use super::core_tests::{
    arrival, backend_of, on_udp, run, snap, tcp_frame, udp_frame, CLIENT, OUR, VIP,
};
use super::snapshot::{LbSnapshot, Mode, SchedKind};
use crate::buf::{PacketBuf, VecBuf};
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::tcp;

/// The client ports of the connections in `core`'s table, sorted.
fn live(core: &LbCore) -> Vec<u16> {
    let mut v: Vec<u16> = core.table.iter().map(|(_, c)| c.fwd.sport).collect();
    v.sort();
    v
}

/// A fullnat service over one backend, on a table of three entries where
/// half-open connections (5 s) fall due before finished ones (60 s).
fn full_table_of_three() -> (LbSnapshot, LbCore) {
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1]);
    (s.timeouts.tcp_syn, s.timeouts.tcp_close) = (5, 60);
    (s, LbCore::new(0, 1, 3, 1))
}

/// A segment with `flags` from `CLIENT:sport` to the VIP, through `core`.
fn from_client(
    core: &mut LbCore,
    s: &LbSnapshot,
    sport: u16,
    flags: u8,
) -> (LbVerdict, VecBuf, Tally) {
    run(core, s, &tcp_frame(CLIENT, sport, VIP, 80, flags, 0), false)
}

/// The local port a FullNAT packet left with.
fn local_port_of(out: &VecBuf) -> u16 {
    u16::from_be_bytes([out.data()[34], out.data()[35]])
}

#[test]
fn a_full_table_gives_up_finished_then_half_open_connections_never_established_ones() {
    use super::stats::BackendStat;
    use tcp::flags::{ACK, RST, SYN};
    // Half-open connections fall due before finished ones here: the rank, not
    // the deadline, decides which goes first.
    let (s, mut core) = full_table_of_three();
    let send = |core: &mut LbCore, sport: u16, flags: u8| from_client(core, &s, sport, flags);
    let closed_port = local_port_of(&send(&mut core, 1, SYN).1);
    send(&mut core, 1, RST);
    send(&mut core, 2, SYN);
    let (v, kept, _) = send(&mut core, 2, ACK);
    assert_eq!(v, LbVerdict::Tx(0));
    send(&mut core, 3, SYN);
    core.expire(1, &mut Tally::default());
    // Full: the reset connection makes room, its local port goes back to the pool.
    let free = core.ports.free(0);
    let (v, _, t) = send(&mut core, 4, SYN);
    assert_eq!(v, LbVerdict::Tx(0));
    assert_eq!(t.get(Counter::FlowsReclaimed), 1);
    assert_eq!(t.get(Counter::FlowsReclaimedQuiet), 0);
    assert_eq!(core.ports.free(0), free);
    assert_eq!(live(&core), vec![2, 3, 4]);
    // The reclaimed flow's next packet finds no entry: reset.
    let (v, _, t) = send(&mut core, 1, ACK);
    assert_eq!((v, t.get(Counter::TcpResetsSent)), (LbVerdict::Tx(0), 1));
    // Then the half-open one goes; the established one keeps its entry and port.
    let (v, _, t) = send(&mut core, 5, SYN);
    assert_eq!((v, t.get(Counter::FlowsReclaimed)), (LbVerdict::Tx(0), 1));
    assert_eq!(live(&core), vec![2, 4, 5]);
    let (v, out, t) = send(&mut core, 2, ACK);
    assert_eq!((v, t.get(Counter::FlowsNew)), (LbVerdict::Tx(0), 0));
    assert_eq!(local_port_of(&out), local_port_of(&kept));
    assert_ne!(local_port_of(&out), closed_port);
    // All established: a new flow is refused and counted.
    send(&mut core, 4, ACK);
    send(&mut core, 5, ACK);
    let (v, _, t) = send(&mut core, 6, SYN);
    assert_eq!(v, LbVerdict::Drop(Counter::DropTableFull));
    assert_eq!(t.get(Counter::FlowsReclaimed), 0);
    // A search that found nothing is not repeated within the tick, even though
    // a connection has since been reset; the next tick finds it.
    send(&mut core, 2, RST);
    assert_eq!(
        send(&mut core, 6, SYN).0,
        LbVerdict::Drop(Counter::DropTableFull)
    );
    core.expire(core.now + 1, &mut Tally::default());
    let (v, _, t) = send(&mut core, 6, SYN);
    assert_eq!((v, t.get(Counter::FlowsReclaimed)), (LbVerdict::Tx(0), 1));
    assert_eq!(live(&core), vec![4, 5, 6]);
    // Each reclaimed connection left the backend's active count.
    assert_eq!(core.stats.get_backend(0, BackendStat::Active), 3);
}

#[test]
fn a_full_table_of_established_connections_gives_up_the_longest_quiet_one() {
    use super::core::TICKS_PER_SEC;
    use tcp::flags::{ACK, SYN};
    let (mut s, mut core) = full_table_of_three();
    s.timeouts.tcp_idle_reclaim = 300;
    let send = |core: &mut LbCore, sport: u16, flags: u8| from_client(core, &s, sport, flags);
    for port in 1..=3 {
        send(&mut core, port, SYN);
        send(&mut core, port, ACK);
    }
    // Ten seconds on, 2 and 3 speak; five minutes later 1 has been quiet for
    // 300 s, the others for 290 s: only 1 may go.
    core.expire(10 * TICKS_PER_SEC, &mut Tally::default());
    send(&mut core, 2, ACK);
    send(&mut core, 3, ACK);
    core.expire(299 * TICKS_PER_SEC, &mut Tally::default());
    assert_eq!(
        send(&mut core, 4, SYN).0,
        LbVerdict::Drop(Counter::DropTableFull)
    );
    core.expire(300 * TICKS_PER_SEC, &mut Tally::default());
    let (v, _, t) = send(&mut core, 4, SYN);
    assert_eq!((v, t.get(Counter::FlowsReclaimed)), (LbVerdict::Tx(0), 1));
    assert_eq!(t.get(Counter::FlowsReclaimedQuiet), 1);
    assert_eq!(live(&core), vec![2, 3, 4]);
    send(&mut core, 4, ACK);
    // Client 1 was still there: its next segment is answered with a reset.
    let (v, _, t) = send(&mut core, 1, ACK);
    assert_eq!((v, t.get(Counter::TcpResetsSent)), (LbVerdict::Tx(0), 1));
    // With 0, established connections are never given up.
    s.timeouts.tcp_idle_reclaim = 0;
    core.expire(900 * TICKS_PER_SEC - 1, &mut Tally::default());
    assert_eq!(
        from_client(&mut core, &s, 5, SYN).0,
        LbVerdict::Drop(Counter::DropTableFull)
    );
}

#[test]
fn a_dr_flow_past_a_full_table_stays_on_one_backend_whatever_the_scheduler() {
    use tcp::flags::{ACK, SYN};
    let s = snap(Mode::Dr, SchedKind::RoundRobin, &[1, 1, 1]);
    let mut core = LbCore::new(0, 1, 1, 1);
    let send = |core: &mut LbCore, sport: u16, flags: u8| {
        let f = tcp_frame(CLIENT, sport, VIP, 80, flags, 0);
        let (v, out, t) = run(core, &s, &f, false);
        assert_eq!(v, LbVerdict::Tx(0));
        (backend_of(&out), t)
    };
    send(&mut core, 1, SYN);
    send(&mut core, 1, ACK);
    for sport in 100..130 {
        let (syn_to, t) = send(&mut core, sport, SYN);
        assert_eq!(t.get(Counter::FlowsStateless), 1);
        let (ack_to, _) = send(&mut core, sport, ACK);
        assert_eq!(syn_to, ack_to, "flow from port {sport}");
    }
}

#[test]
fn in_a_syn_flood_the_oldest_half_open_connection_goes_at_the_first_look() {
    use tcp::flags::{ACK, RST, SYN};
    let (s, mut core) = full_table_of_three();
    let send = |core: &mut LbCore, sport: u16, flags: u8| from_client(core, &s, sport, flags).0;
    for sport in [1, 2, 3] {
        send(&mut core, sport, SYN);
    }
    send(&mut core, 3, ACK);
    // Only half-open ones: the oldest goes.
    assert_eq!(send(&mut core, 4, SYN), LbVerdict::Tx(0));
    assert_eq!(live(&core), vec![2, 3, 4]);
    // A connection reset since: in the same tick the first half-open one still
    // goes, without a search for finished ones.
    send(&mut core, 3, RST);
    assert_eq!(send(&mut core, 5, SYN), LbVerdict::Tx(0));
    assert_eq!(live(&core), vec![3, 4, 5]);
    // The next tick looks further again and finds the reset one.
    core.expire(core.now + 1, &mut Tally::default());
    assert_eq!(send(&mut core, 6, SYN), LbVerdict::Tx(0));
    assert_eq!(live(&core), vec![4, 5, 6]);
}

#[test]
fn out_of_local_ports_a_new_fullnat_flow_takes_a_half_open_ones() {
    // Worker 0 of 1000 owns 64 local ports (2000, 3000, ... 65000) and has room
    // for 128 entries: the ports run out first.
    let s = snap(Mode::FullNat, SchedKind::RingHash, &[1]);
    let mut core = LbCore::new(0, 1000, 128, 1);
    let syn = |core: &mut LbCore, sport: u16| {
        let mut b = VecBuf::from_slice(&tcp_frame(CLIENT, sport, VIP, 80, tcp::flags::SYN, 0));
        let mut t = Tally::default();
        let at = Arrival {
            handed: true,
            ..arrival(false)
        };
        let v = core.process(&mut b, at, &s, &[OUR], &mut t);
        (v, local_port_of(&b), t)
    };
    let first = syn(&mut core, 1).1;
    for sport in 2..=64 {
        assert_eq!(syn(&mut core, sport).0, LbVerdict::Tx(0));
    }
    assert_eq!(core.ports.free(0), 0);
    // The oldest half-open connection gives its port to the new flow.
    let (v, port, t) = syn(&mut core, 65);
    assert_eq!((v, t.get(Counter::FlowsReclaimed)), (LbVerdict::Tx(0), 1));
    assert_eq!(port, first);
    assert_eq!(core.table.len(), 64);
    assert!(core.table.iter().all(|(_, c)| c.fwd.sport != 1));
}

#[test]
fn a_full_table_gives_up_udp_flows_quiet_for_ten_seconds_never_active_ones() {
    let mut s = snap(Mode::FullNat, SchedKind::RingHash, &[1]);
    on_udp(&mut s);
    let mut core = LbCore::new(0, 1, 2, 1);
    let send = |core: &mut LbCore, sport: u16| run(core, &s, &udp_frame(sport), false);
    let tick = |core: &mut LbCore, t: u64| core.expire(t, &mut Tally::default());
    assert_eq!(send(&mut core, 1).0, LbVerdict::Tx(0));
    tick(&mut core, 50);
    assert_eq!(send(&mut core, 2).0, LbVerdict::Tx(0));
    // At 9.9 s flow 1 has been quiet 9.9 s, flow 2 4.9 s: both kept.
    tick(&mut core, 99);
    let (v, _, t) = send(&mut core, 3);
    assert_eq!(
        (v, t.get(Counter::FlowsReclaimed)),
        (LbVerdict::Drop(Counter::DropTableFull), 0)
    );
    // At 10 s flow 1 goes.
    tick(&mut core, 100);
    let (v, _, t) = send(&mut core, 3);
    assert_eq!((v, t.get(Counter::FlowsReclaimed)), (LbVerdict::Tx(0), 1));
    assert_eq!(live(&core), vec![2, 3]);
    // Flow 2 speaks again at 15 s: at 20 s only flow 3 has been quiet 10 s, and
    // it goes, though the wheel meets flow 2 first.
    tick(&mut core, 150);
    assert_eq!(send(&mut core, 2).0, LbVerdict::Tx(0));
    tick(&mut core, 199);
    assert_eq!(
        send(&mut core, 4).0,
        LbVerdict::Drop(Counter::DropTableFull)
    );
    tick(&mut core, 200);
    assert_eq!(send(&mut core, 4).0, LbVerdict::Tx(0));
    assert_eq!(live(&core), vec![2, 4]);
}
