//! Flow identity: the 5-tuple of one direction, and the deterministic hash used for
//! backend choice (fixed-seed xxh3, so two appliances or one after a restart pick
//! the same backend for the same flow).

use super::rss_steer::RssSteering;
use super::table_hash::TableHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The published seed: a service without a `hash_secret` hashes flows with it.
/// Changing a service's seed moves its flows to other backends.
pub const FLOW_HASH_SEED: u64 = 0x5745_4952_4c42_0001; // "WEIRLB\0\1"

/// The seed of a service's flow hash from its `hash_secret`: the same secret on
/// both appliances of a pair gives both the same picks, and clients who do not
/// know it cannot choose flows that all land on one backend.
pub fn seed_from_secret(secret: &str) -> u64 {
    xxh3_64_with_seed(secret.as_bytes(), FLOW_HASH_SEED)
}

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

fn to16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The IPv4 address a key holds mapped into IPv6 (its last four bytes).
#[inline]
pub fn v4_of(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[12], a[13], a[14], a[15])
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
    /// worker that owns it, with this process's keys (see [`TableHasher`]). The
    /// packet path uses its table's copy of the keys.
    #[inline]
    pub fn table_hash(&self) -> u64 {
        TableHasher::process().hash(self)
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
    pub fn hash_5tuple(&self, seed: u64) -> u64 {
        let mut b = [0u8; 37];
        b[..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32..34].copy_from_slice(&self.sport.to_be_bytes());
        b[34..36].copy_from_slice(&self.dport.to_be_bytes());
        b[36] = self.proto;
        xxh3_64_with_seed(&b, seed)
    }

    /// Hash of (source, destination, protocol): the same for every fragment of a
    /// datagram.
    #[inline]
    pub fn hash_3tuple(&self, seed: u64) -> u64 {
        let mut b = [0u8; 33];
        b[..16].copy_from_slice(&self.src);
        b[16..32].copy_from_slice(&self.dst);
        b[32] = self.proto;
        xxh3_64_with_seed(&b, seed)
    }

    /// Hash of the source address only (client stickiness).
    #[inline]
    pub fn hash_source(&self, seed: u64) -> u64 {
        xxh3_64_with_seed(&self.src, seed)
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
        let seed = FLOW_HASH_SEED;
        assert_eq!(key().hash_5tuple(seed), key().hash_5tuple(seed));
        let golden = xxh3_64_with_seed(
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0xff, 0xff, 198, 18, 0, 100, 0x9c, 0x40, 0, 80, 6,
            ],
            FLOW_HASH_SEED,
        );
        assert_eq!(key().hash_5tuple(seed), golden);
        let mut other = key();
        other.sport = 40001;
        assert_ne!(other.hash_5tuple(seed), key().hash_5tuple(seed));
        assert_eq!(other.hash_source(seed), key().hash_source(seed));
        assert_eq!(other.hash_3tuple(seed), key().hash_3tuple(seed));
        // A secret gives another seed, the same for the same secret.
        let secret = seed_from_secret("pair secret");
        assert_eq!(secret, seed_from_secret("pair secret"));
        assert_ne!(secret, seed_from_secret("pair secreT"));
        assert_ne!(secret, FLOW_HASH_SEED);
        assert_ne!(key().hash_5tuple(secret), golden);
        assert_ne!(key().hash_source(secret), key().hash_source(seed));
        assert_ne!(key().hash_3tuple(secret), key().hash_3tuple(seed));
    }

    #[test]
    fn owners_of_no_workers_or_one() {
        assert_eq!(key().owner(0), 0);
        assert_eq!(key().owner(1), 0);
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
