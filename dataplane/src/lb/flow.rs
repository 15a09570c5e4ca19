//! Flow identity: the 5-tuple of one direction, and the deterministic hash used for
//! backend choice (fixed-seed xxh3, so two appliances or one after a restart pick
//! the same backend for the same flow).

use super::rss_steer::RssSteering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Fixed seed: changing it moves every flow to another backend.
pub const FLOW_HASH_SEED: u64 = 0x5745_4952_4c42_0001; // "WEIRLB\0\1"

/// A 5-tuple of one direction. Addresses are stored as 16 bytes (IPv4 mapped).
#[derive(Debug, Clone, Copy, Eq)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub v6: bool,
}

impl PartialEq for FlowKey {
    /// Two 128-bit compares and one of the rest: the connection table's key check.
    #[inline]
    fn eq(&self, o: &FlowKey) -> bool {
        u128::from_ne_bytes(self.src) == u128::from_ne_bytes(o.src)
            && u128::from_ne_bytes(self.dst) == u128::from_ne_bytes(o.dst)
            && (self.sport, self.dport, self.proto, self.v6) == (o.sport, o.dport, o.proto, o.v6)
    }
}

/// Odd constants for [`FlowKey::table_hash`] (digits of pi); none can cancel a
/// mapped IPv4 word (which always holds 0xffff in bytes 10-11).
const TABLE_KEYS: [u64; 6] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
];

/// Multiplies and folds the 128-bit product: a cheap, well-mixing combine.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

fn to16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn from16(b: [u8; 16], v6: bool) -> IpAddr {
    let a = Ipv6Addr::from(b);
    if v6 {
        IpAddr::V6(a)
    } else {
        IpAddr::V4(a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
    }
}

impl FlowKey {
    pub fn new(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> FlowKey {
        FlowKey {
            src: to16(src),
            dst: to16(dst),
            sport,
            dport,
            proto,
            v6: src.is_ipv6(),
        }
    }

    pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, proto: u8) -> FlowKey {
        FlowKey {
            src: src.to_ipv6_mapped().octets(),
            dst: dst.to_ipv6_mapped().octets(),
            sport,
            dport,
            proto,
            v6: false,
        }
    }

    pub fn src_ip(&self) -> IpAddr {
        from16(self.src, self.v6)
    }

    pub fn dst_ip(&self) -> IpAddr {
        from16(self.dst, self.v6)
    }

    /// The same flow seen from the other end.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            v6: self.v6,
        }
    }

    /// The hash that places a flow in a worker's connection table and picks the
    /// worker that owns it. It never chooses a backend (that is `hash_5tuple`), so it
    /// can trade xxh3's portability for speed: three 64x64->128 multiplies.
    #[inline]
    pub fn table_hash(&self) -> u64 {
        let (s, d) = (u128::from_le_bytes(self.src), u128::from_le_bytes(self.dst));
        let rest = (self.sport as u64) << 32 | (self.dport as u64) << 16 | self.proto as u64;
        let h = fold(s as u64 ^ TABLE_KEYS[0], d as u64 ^ TABLE_KEYS[1])
            ^ fold(
                (s >> 64) as u64 ^ TABLE_KEYS[2],
                (d >> 64) as u64 ^ TABLE_KEYS[3],
            );
        fold(h ^ rest ^ TABLE_KEYS[4], TABLE_KEYS[5])
    }

    /// The worker (of `workers`) whose table holds this flow.
    #[inline]
    pub fn owner(&self, workers: u16) -> u16 {
        owner_of(self.table_hash(), workers)
    }

    /// The worker (of `workers`) whose table holds this client flow: the one
    /// the device's RSS gives it to where the workers own flows by that
    /// (`steer`), else [`owner`](Self::owner).
    pub fn owner_by(&self, workers: u16, steer: Option<&RssSteering>) -> u16 {
        match steer {
            Some(s) if workers > 1 => s.owner(self),
            _ => self.owner(workers),
        }
    }

    /// Hash of the full 5-tuple.
    #[inline]
    pub fn hash_5tuple(&self) -> u64 {
        let mut b = [0u8; 37];
        b[..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32..34].copy_from_slice(&self.sport.to_be_bytes());
        b[34..36].copy_from_slice(&self.dport.to_be_bytes());
        b[36] = self.proto;
        xxh3_64_with_seed(&b, FLOW_HASH_SEED)
    }

    /// Hash of (source, destination, protocol): the same for every fragment of a
    /// datagram.
    #[inline]
    pub fn hash_3tuple(&self) -> u64 {
        let mut b = [0u8; 33];
        b[..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32] = self.proto;
        xxh3_64_with_seed(&b, FLOW_HASH_SEED)
    }

    /// Hash of the source address only (client stickiness).
    #[inline]
    pub fn hash_source(&self) -> u64 {
        xxh3_64_with_seed(&self.src, FLOW_HASH_SEED)
    }
}

/// The worker (of `workers`, 0 taken as 1) that owns the flow of table hash
/// `hash`: the low 32 bits scaled to `workers` (a multiply, where `%` took a
/// 64-bit division on every packet; the index uses the high 32 bits).
#[inline(always)]
pub fn owner_of(hash: u64, workers: u16) -> u16 {
    (((hash & 0xffff_ffff) * workers.max(1) as u64) >> 32) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FlowKey {
        FlowKey::v4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 100),
            40000,
            80,
            6,
        )
    }

    #[test]
    fn hash_is_deterministic_and_seeded() {
        // A golden value: if this changes, every deployed flow would move.
        assert_eq!(key().hash_5tuple(), key().hash_5tuple());
        let golden = xxh3_64_with_seed(
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0xff, 0xff, 198, 18, 0, 100, 0x9c, 0x40, 0, 80, 6,
            ],
            FLOW_HASH_SEED,
        );
        assert_eq!(key().hash_5tuple(), golden);
        let mut other = key();
        other.sport = 40001;
        assert_ne!(other.hash_5tuple(), key().hash_5tuple());
        assert_eq!(other.hash_source(), key().hash_source());
        assert_eq!(other.hash_3tuple(), key().hash_3tuple());
    }

    #[test]
    fn table_hash_spreads_ports_and_addresses() {
        // Every field moves the hash, and nearby flows spread over a small table.
        let base = key().table_hash();
        let mut k = key();
        k.sport += 1;
        assert_ne!(k.table_hash(), base);
        let mut k = key();
        k.proto = 17;
        assert_ne!(k.table_hash(), base);
        assert_ne!(key().reversed().table_hash(), base);
        let mut buckets = [0u32; 64];
        for port in 0..64 * 256u32 {
            let mut k = key();
            k.sport = port as u16;
            buckets[(k.table_hash() >> 32) as usize % 64] += 1;
        }
        // 256 expected per bucket.
        assert!(
            buckets.iter().all(|&n| (200..=312).contains(&n)),
            "{buckets:?}"
        );
        assert_eq!(key().owner(0), 0);
        assert_eq!(key().owner(1), 0);
        // Flows spread evenly over 3 workers, and the owner says nothing of
        // the index bucket: the flows of one bucket spread as evenly.
        let (mut owners, mut in_bucket) = ([0; 3], [0; 3]);
        for port in 0..60_000u16 {
            let mut k = key();
            k.sport = port;
            let w = k.owner(3) as usize;
            owners[w] += 1;
            if (k.table_hash() >> 32) & 15 == 0 {
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

    #[test]
    fn reversal_and_addresses() {
        let k = key();
        let r = k.reversed();
        assert_eq!(r.src_ip(), IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)));
        assert_eq!((r.sport, r.dport), (80, 40000));
        assert_eq!(r.reversed(), k);
        let v6 = FlowKey::new(
            "2001:db8::10".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
            1,
            2,
            17,
        );
        assert!(v6.v6);
        assert_eq!(v6.dst_ip(), "2001:db8::100".parse::<IpAddr>().unwrap());
    }
}
