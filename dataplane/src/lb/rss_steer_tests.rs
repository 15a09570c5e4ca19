//! Weir's Toeplitz hash is the one NICs compute: Microsoft's RSS verification
//! examples, and DPDK's own software hash (`rte_softrss`) for random flows and
//! keys; a flow's owner is the redirection table's entry for its hash, also
//! when computed from the hash without the destination port; and two workers
//! owning flows by it take a device's RSS spread without hand-offs.

use super::flow::FlowKey;
use super::rss_steer::{RssSteering, KEY_LEN};
use crate::test_rng::XorShift as Rng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The key of Microsoft's RSS verification examples.
const MS_KEY: [u8; KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> FlowKey {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    FlowKey::new(s, d, sport, dport, 6)
}

#[test]
fn microsoft_examples_hash_as_published() {
    let rss = RssSteering::new(&MS_KEY, vec![0]).unwrap();
    for (src, sport, dst, dport, want, addresses) in [
        (
            "66.9.149.187",
            2794,
            "161.142.100.80",
            1766,
            0x51cc_c178u32,
            0x323e_8fc2u32,
        ),
        (
            "199.92.111.2",
            14230,
            "65.69.140.83",
            4739,
            0xc626_b0ea,
            0xd718_262a,
        ),
        (
            "24.19.198.95",
            12898,
            "12.22.207.184",
            38024,
            0x5c2b_394a,
            0xd2d0_a5de,
        ),
        (
            "38.27.205.30",
            48228,
            "209.142.163.6",
            2217,
            0xafc7_327f,
            0x8298_9176,
        ),
        (
            "153.39.163.191",
            44251,
            "202.188.127.2",
            1303,
            0x10e8_28a2,
            0x5d18_09c5,
        ),
    ] {
        let k = tcp(src, sport, dst, dport);
        assert_eq!(rss.flow_hash(&k), want, "{src} -> {dst}");
        // Addresses alone (what a NIC hashes a fragment by).
        let input = [&k.src[12..], &k.dst[12..]].concat();
        assert_eq!(rss.hash(&input), addresses, "{src} -> {dst}, addresses");
    }
    let k = tcp("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766);
    assert_eq!(rss.flow_hash(&k), 0x4020_7d3d);
}

/// DPDK's software Toeplitz hash of `key`'s flow (its input: 32-bit words in
/// host order, the ports as `sport << 16 | dport`).
fn dpdk_hash(flow: &FlowKey, key: &[u8; KEY_LEN]) -> u32 {
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut words: Vec<u32> = if flow.v6 {
        flow.src
            .chunks(4)
            .chain(flow.dst.chunks(4))
            .map(word)
            .collect()
    } else {
        vec![word(&flow.src[12..]), word(&flow.dst[12..])]
    };
    words.push((flow.sport as u32) << 16 | flow.dport as u32);
    // SAFETY: `words` holds `len` initialised words and `key` 40 bytes, the most
    // rte_softrss reads for 9 words (it reads key bytes up to 4 * (len + 1)).
    unsafe { dpdk_sys::rte_softrss(words.as_mut_ptr(), words.len() as u32, key.as_ptr()) }
}

#[test]
fn random_flows_and_keys_hash_as_dpdk_hashes_them() {
    let mut rng = Rng(7);
    for round in 0..200 {
        let mut key = [0u8; KEY_LEN];
        key.iter_mut().for_each(|b| *b = rng.next() as u8);
        let rss = RssSteering::new(&key, vec![0]).unwrap();
        // A table whose entry is its index: the owner is the hash's low byte.
        let by_byte = RssSteering::new(&key, (0..256).collect()).unwrap();
        for _ in 0..50 {
            let (sport, dport) = (rng.next() as u16, rng.next() as u16);
            let flow = if round % 2 == 0 {
                let (s, d) = (rng.next() as u32, rng.next() as u32);
                FlowKey::v4(Ipv4Addr::from(s), Ipv4Addr::from(d), sport, dport, 17)
            } else {
                let a = |rng: &mut Rng| {
                    Ipv6Addr::from(((rng.next() as u128) << 64) | rng.next() as u128)
                };
                FlowKey::new(a(&mut rng).into(), a(&mut rng).into(), sport, dport, 6)
            };
            assert_eq!(rss.flow_hash(&flow), dpdk_hash(&flow, &key), "{flow:?}");
            // Split at the destination port (how FullNAT ports are chosen).
            let base = by_byte.hash_without_dport(&flow);
            let owner = by_byte.owner_with_dport(base, flow.v6, flow.dport);
            assert_eq!(owner, by_byte.owner(&flow), "{flow:?}");
            assert_eq!(owner as u32, dpdk_hash(&flow, &key) & 255, "{flow:?}");
        }
    }
}

#[test]
fn the_owner_is_the_redirection_entry_of_the_hash() {
    // Entry i -> worker i % 3, as Weir programs a device with three queues.
    let reta: Vec<u16> = (0..128).map(|i| i % 3).collect();
    let rss = RssSteering::new(&MS_KEY, reta).unwrap();
    let flow = tcp("66.9.149.187", 2794, "161.142.100.80", 1766);
    assert_eq!(rss.owner(&flow), ((0x51cc_c178u32 & 127) % 3) as u16);
    let mut seen = [0usize; 3];
    let mut rng = Rng(1);
    for _ in 0..3000 {
        let f = FlowKey::v4(
            Ipv4Addr::from(rng.next() as u32),
            Ipv4Addr::new(198, 18, 0, 100),
            rng.next() as u16,
            80,
            6,
        );
        seen[rss.owner(&f) as usize] += 1;
    }
    // 43/43/42 entries: about a third each.
    assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
    assert!(RssSteering::new(&MS_KEY, vec![0; 96]).is_none());
}

/// Two workers' balancers behind a device that spreads client packets by RSS
/// (the test plays the device: each packet goes to the worker the redirection
/// table names for its hash). With the workers owning flows by that steering,
/// no client packet is handed over, whether a worker takes the device's word
/// for it or computes the owner (and one that came to the other worker from
/// a port that does not spread by RSS is handed to RSS's pick); owning them
/// by Weir's own hash, about half are. Backends' replies go to the worker whose local port they answer, so
/// they find the entry wherever RSS put them.
#[test]
fn where_the_device_steers_by_rss_client_packets_are_not_handed_over() {
    use super::core::{LbCore, LbVerdict};
    use super::core_tests::{run, snap, tcp_frame, CLIENT, VIP};
    use super::snapshot::{Mode, SchedKind};
    use super::test_traffic::ends_of;
    use crate::buf::PacketBuf;
    use crate::wire::tcp::flags::{ACK, SYN};
    use std::sync::Arc;

    let reta: Vec<u16> = (0..128).map(|i| i % 2).collect();
    let steer = Arc::new(RssSteering::new(&MS_KEY, reta).unwrap());
    for mode in [Mode::Dr, Mode::FullNat] {
        let s = snap(mode, SchedKind::RingHash, &[1, 1, 1]);
        // Owning flows by RSS, on the port RSS spread them from (the worker
        // takes a whole packet as its own) or as from another port (it computes
        // the owner); or by Weir's own hash.
        for (steered, from_port) in [(true, 1), (true, 0), (false, 0)] {
            let mut cores = [LbCore::new(0, 2, 256, 1), LbCore::new(1, 2, 256, 1)];
            if steered {
                for c in cores.iter_mut() {
                    c.steer = Some(steer.clone());
                    c.steered_ports = from_port;
                }
            }
            let (mut handed, mut replies_handed) = (0, 0);
            for sport in 40000..40100u16 {
                let rss = steer.owner(&FlowKey::v4(CLIENT, VIP, sport, 80, 6)) as usize;
                for flags in [SYN, ACK] {
                    let f = tcp_frame(CLIENT, sport, VIP, 80, flags, 0);
                    if steered && from_port == 0 {
                        // From a port that does not spread by RSS, it may come
                        // to the other worker, which hands it to RSS's pick.
                        let other = &mut cores[1 - rss];
                        let v = run(other, &s, &f, false).0;
                        assert_eq!(v, LbVerdict::Handoff(rss as u16), "{mode:?} {sport}");
                    }
                    let (v, out, _) = match run(&mut cores[rss], &s, &f, false) {
                        (LbVerdict::Handoff(o), _, _) => {
                            assert!(!steered, "{mode:?} {from_port}: flow {sport} handed to {o}");
                            handed += 1;
                            run(&mut cores[o as usize], &s, &f, false)
                        }
                        other => other,
                    };
                    assert!(matches!(v, LbVerdict::Tx(_)), "{mode:?} {sport}: {v:?}");
                    if mode == Mode::FullNat && flags == ACK {
                        // The backend answers the local port; whichever worker
                        // RSS gives that to hands it to the flow's owner.
                        let (local, lport, backend, bport, _) = ends_of(out.data());
                        let v4 = |a: IpAddr| match a {
                            IpAddr::V4(a) => a,
                            IpAddr::V6(_) => unreachable!("an IPv4 service"),
                        };
                        let (local, backend) = (v4(local), v4(backend));
                        let reply = tcp_frame(backend, bport, local, lport, ACK, 0);
                        let w = steer.owner(&FlowKey::v4(backend, local, bport, lport, 6));
                        let v = match run(&mut cores[w as usize], &s, &reply, true).0 {
                            LbVerdict::Handoff(o) => {
                                // Owning flows by RSS, the local port was chosen
                                // so that RSS brings replies to the owner.
                                assert!(!steered, "{mode:?}: reply {sport} handed to {o}");
                                replies_handed += 1;
                                run(&mut cores[o as usize], &s, &reply, true).0
                            }
                            v => v,
                        };
                        assert!(
                            matches!(v, LbVerdict::Tx(_)),
                            "{mode:?} reply {sport}: {v:?}"
                        );
                    }
                }
            }
            if steered {
                assert_eq!(handed, 0);
            } else {
                // 200 packets, each flow's owner a coin toss against RSS's pick.
                assert!(
                    (60..140).contains(&handed),
                    "{mode:?}: {handed} handed over"
                );
                if mode == Mode::FullNat {
                    assert!(
                        (25..75).contains(&replies_handed),
                        "{replies_handed} replies handed over"
                    );
                }
            }
            let entries: usize = cores.iter().map(|c| c.table.len()).sum();
            assert_eq!(entries, 100, "{mode:?}: one entry per flow");
        }
    }
}
