//! The scenarios: established flows (IPv4 and IPv6, 1k entries and a large
//! table), worker 0 of two, the reference loops, and new flows. Each runs the
//! ones `--only` asks for and appends their results.

use crate::bench::{established, paired_bare, Bench, Opts};
use crate::frames::{flow, flow6, frame, frame6, replies, scattered_acks, FRAME6_LEN, FRAME_LEN};
use crate::lab::{
    snapshot, with_large_pool, POOL_SIZE, VIP6_DR, VIP6_NAT, VIP_DR, VIP_NAT, VIP_POOL,
};
use crate::loops::{HandingOver, Measured, UnderTest};
use crate::reference::{Kind, Reference};
use dataplane::lb::flow::FlowKey;
use dataplane::lb::rss_key;
use dataplane::lb::rss_steer::RssSteering;
use dataplane::lb::snapshot::SchedKind;
use dataplane::lb::table_hash::{aimed_at_published, TableHasher};
use dataplane::pipeline::counters::Counter;
use dataplane::wire::{ipv4, tcp};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Entries of the table a SYN flood has filled (`... table full of half-open ones`).
const FULL_TABLE: usize = 65_536;

/// Established flows over IPv4, 1k entries and a large table: the clients'
/// packets (dr, fullnat) and the backends' replies (fullnat).
pub fn established_v4(b: &mut Bench, o: &Opts, out: &mut Vec<Value>) {
    // Established flows: the clients' packets (dr, fullnat) and the backends'
    // replies (fullnat).
    for (label, vip, flows, replying) in [
        ("established dr, 1k entries", VIP_DR, 1000usize, false),
        ("established fullnat, 1k entries", VIP_NAT, 1000, false),
        (
            "established fullnat replies, 1k entries",
            VIP_NAT,
            1000,
            true,
        ),
        ("established dr, large table", VIP_DR, o.large, false),
        ("established fullnat, large table", VIP_NAT, o.large, false),
        (
            "established fullnat replies, large table",
            VIP_NAT,
            o.large,
            true,
        ),
    ] {
        if !o.wanted(label) {
            continue;
        }
        let mut w = Box::new(UnderTest::new(b, flows.max(1000) * 2));
        w.establish(flows, vip);
        // Visit the flows in a scattered order so that large tables miss the cache
        // as real traffic would.
        let templates: Vec<[u8; FRAME_LEN]> = if replying {
            replies(&w.worker.lb)
        } else {
            (0..flows.min(1 << 20))
                .map(|i| {
                    let (s, p) = flow((i * 7919) % flows);
                    frame(s, p, vip, tcp::flags::ACK)
                })
                .collect()
        };
        out.push(established(b, w.as_mut(), label, &templates, o));
    }
}

/// As "established dr, 1k entries", on worker 0 of two, with flows it owns.
pub fn worker_of_two(b: &mut Bench, o: &Opts, out: &mut Vec<Value>) {
    // As "established dr, 1k entries", on worker 0 of two, with flows it owns:
    // what deciding each packet's owner adds when there are several workers,
    // by Weir's own hash or (on a device that spreads flows by RSS) by the
    // Toeplitz hash and redirection table.
    let rss = {
        let reta = (0..512).map(|i| i % 2).collect();
        Arc::new(RssSteering::new(rss_key::process(), reta).expect("a power-of-two table"))
    };
    for (label, steer) in [
        ("worker 0 of 2: dr, 1k entries, established", None),
        (
            "worker 0 of 2, owning flows by RSS: dr, 1k entries, established",
            Some(rss),
        ),
    ] {
        if !o.wanted(label) {
            continue;
        }
        let vip = VIP_DR;
        let own: Vec<usize> = (0..)
            .filter(|&i| {
                let (s, p) = flow(i);
                FlowKey::v4(s, vip, p, 80, 6).owner_by(2, steer.as_deref()) == 0
            })
            .take(1000)
            .collect();
        let mut w = Box::new(UnderTest::of_workers(b, 2000, 2));
        // Port 0 spreads packets by that steering (a NIC would have put these
        // flows on queue 0).
        w.worker.lb.steered_ports = steer.is_some() as u64;
        w.worker.lb.steer = steer;
        w.establish_with(own.len(), false, |k| {
            let (s, p) = flow(own[k]);
            frame(s, p, vip, tcp::flags::SYN).to_vec()
        });
        let templates = scattered_acks(&own, vip);
        out.push(established(b, w.as_mut(), label, &templates, o));
    }
}

/// Worker 0 of two given packets of flows worker 1 owns.
pub fn handing_over(b: &mut Bench, o: &Opts, out: &mut Vec<Value>) {
    // The same flows' packets on worker 0 when worker 1 owns them: what a
    // hand-off costs the worker that receives the packet.
    let label = "worker 0 of 2, handing every packet to worker 1: dr, 1k flows";
    if o.wanted(label) {
        let theirs: Vec<usize> = (0..)
            .filter(|&i| {
                let (s, p) = flow(i);
                FlowKey::v4(s, VIP_DR, p, 80, 6).owner(2) == 1
            })
            .take(1000)
            .collect();
        let mut w = Box::new(HandingOver::new(b));
        let templates = scattered_acks(&theirs, VIP_DR);
        out.push(established(b, w.as_mut(), label, &templates, o));
    }
}

/// The reference loops (see `reference.rs`) on the dr 1k scenario's packets.
pub fn references(b: &mut Bench, o: &Opts, out: &mut Vec<Value>) {
    // Reference loops on the packets of the dr 1k scenario (see reference.rs).
    let dr_templates: Vec<[u8; FRAME_LEN]> = (0..1000)
        .map(|i| {
            let (s, p) = flow((i * 7919) % 1000);
            frame(s, p, VIP_DR, tcp::flags::ACK)
        })
        .collect();
    for (label, kind) in [
        ("reference: mac swap (l2fwd)", Kind::MacSwap),
        ("reference: route lookup, TTL (l3fwd-like)", Kind::Route),
        (
            "reference: 5-tuple lookup and count, TTL (least stateful dr), 1k",
            Kind::Track,
        ),
    ] {
        if !o.wanted(label) {
            continue;
        }
        let mut r = Reference::new(kind, &dr_templates);
        r.attach(b.fwd.take().expect("queues"));
        out.push(established(b, &mut r, label, &dr_templates, o));
    }
}

/// Established flows over IPv6, 1k entries.
pub fn established_v6(b: &mut Bench, o: &Opts, out: &mut Vec<Value>) {
    // The same over IPv6 (1k entries).
    for (label, vip) in [
        ("established dr ipv6, 1k entries", VIP6_DR),
        ("established fullnat ipv6, 1k entries", VIP6_NAT),
    ] {
        if !o.wanted(label) {
            continue;
        }
        let flows = 1000;
        let mut w = Box::new(UnderTest::new(b, flows * 2));
        w.establish6(flows, vip);
        let templates: Vec<[u8; FRAME6_LEN]> = (0..flows)
            .map(|i| {
                let (s, p) = flow6((i * 7919) % flows);
                frame6(s, p, vip, tcp::flags::ACK)
            })
            .collect();
        out.push(established(b, w.as_mut(), label, &templates, o));
    }
}

/// New flows, each a SYN of a flow never seen; `bare_templates` feed the
/// paired bare runs.
pub fn new_flows(
    b: &mut Bench,
    o: &Opts,
    bare_templates: &[[u8; FRAME_LEN]],
    out: &mut Vec<Value>,
) {
    // New flows: every packet is a SYN of a flow never seen, until the table holds
    // `--large` connections; or, on a table already full of half-open connections
    // (a SYN flood's), each new flow taking the entry of one of them.
    // The last two pick among 1,000 backends rather than 3.
    let pool = |sched| Some((POOL_SIZE, sched));
    for (label, vip, full, large_pool) in [
        ("new flow (SYN) dr", VIP_DR, 0, None),
        ("new flow (SYN) fullnat", VIP_NAT, 0, None),
        (
            "new flow, fullnat, table full of half-open ones (SYN flood)",
            VIP_NAT,
            FULL_TABLE,
            None,
        ),
        (
            "new flow (SYN) dr, 1k backends, ring_hash",
            VIP_POOL,
            0,
            pool(SchedKind::RingHash),
        ),
        (
            "new flow (SYN) dr, 1k backends, least_conn",
            VIP_POOL,
            0,
            pool(SchedKind::LeastConn),
        ),
    ] {
        if !o.wanted(label) {
            continue;
        }
        let bare = paired_bare(b, bare_templates, o);
        let capacity = if full > 0 {
            full
        } else {
            o.large + b.in_flight
        };
        let snap = match large_pool {
            Some((n, sched)) => with_large_pool(n, sched),
            None => snapshot(),
        };
        let mut w = Box::new(UnderTest::with(b, capacity, 1, snap));
        w.establish(full, vip);
        b.end(w.as_mut());
        w.attach(b.fwd.take().expect("queues"));
        let template = [frame(
            Ipv4Addr::new(198, 19, 0, 0),
            1024,
            vip,
            tcp::flags::SYN,
        )];
        let vary = |i: usize, f: &mut [u8]| {
            let (src, sport) = flow(full + i);
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..34]);
            ip.set_src(src);
            ip.fill_checksum();
            f[34..36].copy_from_slice(&sport.to_be_bytes());
        };
        // fullnat has 28 local addresses x 64k ports: stay within them.
        let max = if vip == VIP_NAT {
            o.large.min(1_500_000)
        } else {
            o.large
        };
        let (c, n) = b.run(&template, w.as_mut(), o.seconds * 4.0, max, &vary);
        assert_eq!(w.not_forwarded(), 0, "{label}: packets dropped");
        let entries = w.worker.lb.table.len();
        let reclaimed = w.st.tally.get(Counter::FlowsReclaimed);
        assert!(full == 0 || reclaimed > 0, "{label}: nothing reclaimed");
        b.end(w.as_mut());
        out.push(json!({"scenario": label, "entries": entries, "cycles_per_packet": c,
                            "bare_cycles_per_packet": bare,
                            "ratio_to_bare": c / bare, "added_cycles": c - bare, "packets": n,
                            "reclaimed": reclaimed,
                            "note": "includes the IPv4 checksum rewrite that makes each SYN a new flow"}));
    }
}

/// Flows in a SYN flood aimed at the table hash (`flood aimed at ...`).
const AIMED_FLOWS: usize = 8192;

/// A SYN flood whose flows were chosen, from the published keys, to start
/// their look-ups in one stretch of 64 index slots of a table of 65536
/// connections; each SYN sent again is a look-up. Against a table hashed by
/// the published keys (what every Weir did before the keys were drawn per
/// process) and one hashed by this process's keys.
pub fn hash_flood(b: &mut Bench, o: &Opts, out: &mut Vec<Value>) {
    let labels = [
        "SYN flood aimed at the table hash: published keys (before)",
        "SYN flood aimed at the table hash: keys drawn at start (now)",
    ];
    if !labels.iter().any(|l| o.wanted(l)) {
        return;
    }
    let aimed = aimed_at_published(FULL_TABLE, 64, AIMED_FLOWS, VIP_DR, 80);
    let syn = |k: &FlowKey| match k.src_ip() {
        IpAddr::V4(src) => frame(src, k.sport, VIP_DR, tcp::flags::SYN),
        IpAddr::V6(_) => unreachable!("aimed flows are IPv4"),
    };
    let templates: Vec<[u8; FRAME_LEN]> = aimed.iter().map(syn).collect();
    for (label, hasher) in labels
        .iter()
        .zip([TableHasher::PUBLISHED, *TableHasher::process()])
    {
        if !o.wanted(label) {
            continue;
        }
        let mut w = Box::new(UnderTest::hashed_by(b, FULL_TABLE, 1, snapshot(), hasher));
        w.establish_with(AIMED_FLOWS, false, |i| templates[i].to_vec());
        let probes = aimed.iter().map(|k| w.worker.lb.table.home_slot(k).1);
        let longest = probes.max().unwrap_or(0);
        let mut r = established(b, w.as_mut(), label, &templates, o);
        r["longest_look_up_slots"] = json!(longest);
        out.push(r);
    }
}
