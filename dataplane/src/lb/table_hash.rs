//! The hash that places flows in a worker's connection table and picks the
//! worker that owns them, keyed per process.
//!
//! Clients choose their own addresses and ports, so with keys anyone can read in
//! the source they could search offline for flows that land on one stretch of
//! the index and make every look-up there walk the whole stretch (a hash flood:
//! the table's index probes linearly). So each process draws its keys at
//! start, as Linux conntrack, IPVS and DPVS do for theirs. Nothing outside the
//! process depends on this hash: backend choice has its own fixed-seed hash
//! ([`FlowKey::hash_5tuple`]), which two appliances must agree on.

use super::conn_table::ConnTable;
use super::flow::FlowKey;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// Keys of the table hash: three 64x64->128 multiplies over the 37 bytes of a
/// key, and a fourth over their result (see [`TableHasher::hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableHasher {
    keys: [u64; 7],
}

impl TableHasher {
    /// The keys Weir used before they were drawn per process (digits of pi).
    /// Published, so an attacker can aim at them: for tests and the benchmark
    /// that shows what a flood aimed at the hash costs.
    pub const PUBLISHED: TableHasher = TableHasher {
        keys: [
            0x243f_6a88_85a3_08d3,
            0x1319_8a2e_0370_7345,
            0xa409_3822_299f_31d1,
            0x082e_fa98_ec4e_6c89,
            0x4528_21e6_38d0_1377,
            0xbe54_66cf_34e9_0c6d,
            0xc0ac_29b7_c97c_50dd,
        ],
    };

    /// Keys spread from `seed` (splitmix64). Each is made odd, and none can be
    /// cancelled by a mapped IPv4 word's 0xffff in bytes 10-11 more than by any
    /// other value: an xor with a key is a bijection.
    pub fn from_seed(seed: [u64; 2]) -> TableHasher {
        let mut state = seed[0] ^ seed[1].rotate_left(32);
        let mut keys = [0u64; 7];
        for (i, k) in keys.iter_mut().enumerate() {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state ^ seed[i % 2];
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *k = (z ^ (z >> 31)) | 1;
        }
        TableHasher { keys }
    }

    /// Keys from the operating system's randomness (std's `RandomState`,
    /// which draws its keys from it).
    pub fn random() -> TableHasher {
        let draw = |salt: u64| RandomState::new().hash_one(salt);
        TableHasher::from_seed([draw(1), draw(2)])
    }

    /// This process's hasher: drawn at first use, the same for every worker
    /// and for the management core's questions (which worker holds a flow).
    pub fn process() -> &'static TableHasher {
        static PROCESS: OnceLock<TableHasher> = OnceLock::new();
        PROCESS.get_or_init(TableHasher::random)
    }

    /// The table hash of `k`: the index slot and tag from its high half, the
    /// owning worker from its low half ([`owner_of`](super::flow::owner_of)).
    #[inline]
    pub fn hash(&self, k: &FlowKey) -> u64 {
        let key = &self.keys;
        let (s, d) = (u128::from_le_bytes(k.src), u128::from_le_bytes(k.dst));
        let rest = (k.sport as u64) << 32 | (k.dport as u64) << 16 | k.proto as u64;
        let h = fold(s as u64 ^ key[0], d as u64 ^ key[1])
            ^ fold((s >> 64) as u64 ^ key[2], (d >> 64) as u64 ^ key[3]);
        // The last multiply mixes the ports and protocol in; the one after
        // it spreads them over every bit. Without it the index slot and the
        // owning worker of flows that differ in a port hung on a few low
        // bits of `key[5]`, badly for some draws (see the test
        // `flows_differing_in_a_port_spread_under_every_key`).
        fold(fold(h ^ rest ^ key[4], key[5]), key[6])
    }
}

/// Flows to `vip:port` whose look-ups start in the first `stretch` slots of a
/// table of `capacity` hashed by the published keys: what an attacker who read
/// the source would send (`n` of them; clients from 198.19.0.0/16). For the
/// tests and the benchmark of such a flood.
pub fn aimed_at_published(
    capacity: usize,
    stretch: usize,
    n: usize,
    vip: Ipv4Addr,
    port: u16,
) -> Vec<FlowKey> {
    let t = ConnTable::with_hasher(capacity, 0, TableHasher::PUBLISHED);
    // 64512 source ports (1024 up) of each of 65536 client addresses.
    (0..1u32 << 16)
        .flat_map(|a| {
            let src = Ipv4Addr::new(198, 19, (a >> 8) as u8, a as u8);
            (1024..=u16::MAX).map(move |sport| FlowKey::v4(src, vip, sport, port, 6))
        })
        .filter(|k| t.home_slot(k).0 < stretch)
        .take(n)
        .collect()
}

/// Multiplies and folds the 128-bit product: a cheap, well-mixing combine.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::flow::owner_of;

    fn key(sport: u16) -> FlowKey {
        FlowKey::v4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 100),
            sport,
            80,
            6,
        )
    }

    #[test]
    fn the_published_keys_hash_a_known_flow_to_a_known_value() {
        // Pinned, so that a change to the hash is seen and meant. It was
        // 0x7f84_7925_64d8_c7fb before the fourth multiply (see
        // `flows_differing_in_a_port_spread_under_every_key`).
        assert_eq!(
            TableHasher::PUBLISHED.hash(&key(40000)),
            0xaedc_6698_8a0f_cdbb
        );
    }

    #[test]
    fn table_hash_spreads_ports_and_addresses() {
        // The published keys and two drawn from fixed seeds (a test with
        // random ones could fail by chance).
        for h in [
            TableHasher::PUBLISHED,
            TableHasher::from_seed([1, 2]),
            TableHasher::from_seed([0x5745_4952, 7]),
        ] {
            // Every field moves the hash, and nearby flows spread over a small table.
            let base = h.hash(&key(40000));
            assert_ne!(h.hash(&key(40001)), base);
            let mut k = key(40000);
            k.proto = 17;
            assert_ne!(h.hash(&k), base);
            assert_ne!(h.hash(&key(40000).reversed()), base);
            let mut buckets = [0u32; 64];
            let mut seen = std::collections::HashSet::new();
            for port in 0..64 * 256u32 {
                let hash = h.hash(&key(port as u16));
                buckets[(hash >> 32) as usize % 64] += 1;
                // No two of them alike: no bit of the input is lost.
                assert!(seen.insert(hash), "port {port}");
            }
            // IPv6 clients, and VIPs, from 4096 /64s: the address words an
            // IPv4 key leaves zero count too.
            let v6 = |net| std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, net, 0, 0, 0, 1).into();
            for net in 0..4096u16 {
                let from = FlowKey::new(v6(net), v6(0), 40000, 80, 6);
                let to = FlowKey::new(v6(0), v6(net), 40000, 80, 6);
                assert!(seen.insert(h.hash(&from)), "client net {net}");
                assert!(net == 0 || seen.insert(h.hash(&to)), "vip net {net}");
            }
            // 256 expected per bucket.
            assert!(
                buckets.iter().all(|&n| (200..=312).contains(&n)),
                "{buckets:?}"
            );
            // Flows spread evenly over 3 workers, and the owner says nothing of
            // the index bucket: the flows of one bucket spread as evenly.
            let (mut owners, mut in_bucket) = ([0; 3], [0; 3]);
            for port in 0..60_000u16 {
                let hash = h.hash(&key(port));
                let w = owner_of(hash, 3) as usize;
                owners[w] += 1;
                if (hash >> 32) & 15 == 0 {
                    in_bucket[w] += 1;
                }
            }
            assert!(
                owners.iter().all(|&n| (19_000..21_000).contains(&n)),
                "{owners:?}"
            );
            assert!(
                in_bucket.iter().all(|&n| (1_050..1_450).contains(&n)),
                "{in_bucket:?}"
            );
        }
    }

    /// The flows of one client to one VIP differ in a port only. Under every
    /// one of 150 key sets (from a fixed generator, so that the test replays)
    /// they spread over the index and over the workers as random ones would.
    /// One multiply-and-fold after the ports were mixed in was not enough:
    /// the slot and the owner then hung on ~26 low bits of one key. Of 300
    /// key sets, 14 put 512 such flows in fewer than 200 of 1024 index slots
    /// (26 at worst; ~403 expected), and one sent all of 4000 to one of two
    /// workers.
    #[test]
    fn flows_differing_in_a_port_spread_under_every_key() {
        let mut rng = crate::test_rng::XorShift::default();
        let (client, vip) = (
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 100),
        );
        let by_sport = |i: u32| FlowKey::v4(client, vip, 1024 + i as u16, 80, 6);
        let by_dport = |i: u32| FlowKey::v4(client, vip, 40000, 1024 + i as u16, 17);
        for _ in 0..150 {
            let h = TableHasher::from_seed([rng.next(), rng.next()]);
            for (what, flow) in [
                ("source port", &by_sport as &dyn Fn(u32) -> FlowKey),
                ("destination port", &by_dport),
            ] {
                let homes: std::collections::HashSet<u64> =
                    (0..512).map(|i| h.hash(&flow(i)) >> 32 & 1023).collect();
                assert!(
                    homes.len() > 350,
                    "{what}: {} slots under {h:?}",
                    homes.len()
                );
                for workers in [2u16, 3] {
                    let mut owners = [0u32; 3];
                    for i in 0..4000 {
                        owners[owner_of(h.hash(&flow(i)), workers) as usize] += 1;
                    }
                    let even = 4000 / workers as u32;
                    assert!(
                        owners[..workers as usize]
                            .iter()
                            .all(|&n| n.abs_diff(even) < even / 8),
                        "{what}: {owners:?} under {h:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn seeds_give_different_odd_keys_and_one_process_one_hasher() {
        let a = TableHasher::from_seed([1, 2]);
        assert_eq!(a, TableHasher::from_seed([1, 2]));
        assert_ne!(a, TableHasher::from_seed([1, 3]));
        assert_ne!(a, TableHasher::from_seed([2, 2]));
        assert!(a.keys.iter().all(|k| k & 1 == 1));
        let r = TableHasher::random();
        assert_ne!(r, TableHasher::random());
        assert_ne!(r, TableHasher::PUBLISHED);
        assert!(std::ptr::eq(TableHasher::process(), TableHasher::process()));
        assert_eq!(key(1).table_hash(), TableHasher::process().hash(&key(1)));
    }

    #[test]
    fn flows_aimed_at_the_published_keys_spread_under_drawn_ones() {
        use crate::lb::conn_table::Conn;
        let vip = Ipv4Addr::new(198, 18, 0, 100);
        let keys = aimed_at_published(1024, 8, 300, vip, 80);
        // After those flows' SYNs, how many index slots a look-up of one of
        // them reads at most.
        let worst = |hasher| {
            let mut t = ConnTable::with_hasher(1024, 0, hasher);
            for k in &keys {
                let c = Conn {
                    fwd: *k,
                    expires: 100,
                    ..Conn::default()
                };
                t.insert(c).unwrap();
            }
            keys.iter().map(|k| t.home_slot(k).1).max().unwrap()
        };
        // With the published keys they queue up behind each other: the look-up
        // of a flow walks past all the others (the index probes linearly).
        assert!(worst(TableHasher::PUBLISHED) > 300);
        // With keys drawn per process they land anywhere in the 4096 slots
        // (runs of 15 slots turned up in 2000 draws; 48 has no real chance).
        for _ in 0..20 {
            let w = worst(TableHasher::random());
            assert!(w < 48, "{w} slots read by one look-up");
        }
        // And a worker's table hashes with this process's keys.
        let t = crate::lb::core::LbCore::new(0, 2, 64, 1).table;
        assert_eq!(t.hash(&keys[0]), TableHasher::process().hash(&keys[0]));
        assert_ne!(t.hash(&keys[0]), TableHasher::PUBLISHED.hash(&keys[0]));
    }
}
