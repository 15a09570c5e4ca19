//! The addresses the balancer answers for (VIPs and FullNAT local addresses) and the
//! services on each VIP, in one small open-addressing table built with the snapshot.
//! The classifier asks "is this address ours, and what is it" and the balancer "which
//! service has this address, port and protocol": both are one probe into the same
//! slot, where a general-purpose hash map costs a keyed hash and a group probe each.
//! IPv4 services and local addresses also sit in a table of single words keyed by
//! address, port and protocol, so that the common cases (a packet to an IPv4
//! service, a reply to an IPv4 local address) are a compare or two.

use super::snapshot::AddrKind;

/// An address as the flow key stores it: 16 bytes (IPv4 mapped) and the family.
pub type AddrKey = ([u8; 16], bool);

#[derive(Debug, Clone, Copy)]
struct Slot {
    addr: [u8; 16],
    v6: bool,
    kind: AddrKind,
    /// This address's services: `services[first..first + count]`.
    first: u32,
    count: u32,
}

/// A service as the table matches it.
#[derive(Debug, Clone, Copy)]
struct Listener {
    port: u16,
    proto: u8,
    id: u32,
}

/// One address found in the table.
#[derive(Debug, Clone, Copy)]
pub struct AddrEntry<'a> {
    slot: &'a Slot,
    table: &'a AddrTable,
}

impl AddrEntry<'_> {
    #[inline]
    pub fn kind(&self) -> AddrKind {
        self.slot.kind
    }

    /// The service on this address with `port` and `proto`.
    #[inline]
    pub fn service(&self, port: u16, proto: u8) -> Option<u32> {
        let (first, count) = (self.slot.first as usize, self.slot.count as usize);
        self.table
            .services
            .get(first..first + count)?
            .iter()
            .find(|l| l.port == port && l.proto == proto)
            .map(|l| l.id)
    }
}

#[derive(Debug, Clone, Default)]
pub struct AddrTable {
    slots: Box<[Option<Slot>]>,
    mask: usize,
    services: Box<[Listener]>,
    /// IPv4 services on VIPs and IPv4 local addresses: open addressing over
    /// [`v4_word`]s with the service id (or [`V4_LOCAL`]) in the top byte;
    /// [`V4_EMPTY`] marks a free slot.
    v4: Box<[u64]>,
    v4_mask: usize,
}

/// A free slot of the IPv4 word table (no key has protocol 255 and id 255).
const V4_EMPTY: u64 = u64::MAX;

/// The id byte of a local address's word, keyed with port 0 and protocol 0 (a
/// service with id 255 is left to the address probe).
const V4_LOCAL: u64 = 0xff;

/// What the IPv4 word table says a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V4Dest {
    /// A service on a VIP.
    Service(u32),
    /// A FullNAT local address: a backend's reply.
    Local,
    /// Neither: ask the address probe (a VIP's unknown port, or not ours).
    Unknown,
}

/// The IPv4 service table's key: the address as the packet holds it (read in
/// native order), the port and the protocol, in the low 56 bits.
#[inline(always)]
fn v4_word(addr: u32, port: u16, proto: u8) -> u64 {
    addr as u64 | (port as u64) << 32 | (proto as u64) << 48
}

#[inline(always)]
fn v4_home(word: u64, mask: usize) -> usize {
    (word.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & mask
}

#[inline]
fn home(addr: &[u8; 16], v6: bool, mask: usize) -> usize {
    let a = u128::from_le_bytes(*addr);
    let x = (a as u64 ^ ((a >> 64) as u64).rotate_left(29) ^ v6 as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 40) as usize & mask
}

impl AddrTable {
    /// Builds the table. `addrs` gives each address's kind (a VIP listed as a local
    /// address too stays a VIP); `services` gives (address, port, protocol, id).
    pub fn build(
        addrs: impl IntoIterator<Item = (AddrKey, AddrKind)>,
        services: impl IntoIterator<Item = (AddrKey, u16, u8, u32)>,
    ) -> AddrTable {
        let mut kinds: Vec<(AddrKey, AddrKind)> = Vec::new();
        for (a, k) in addrs {
            match kinds.iter_mut().find(|(b, _)| *b == a) {
                Some((_, old)) if *old == AddrKind::Local => *old = k,
                Some(_) => {}
                None => kinds.push((a, k)),
            }
        }
        let mut listeners: Vec<(AddrKey, Listener)> = services
            .into_iter()
            .map(|(a, port, proto, id)| (a, Listener { port, proto, id }))
            .collect();
        listeners.sort_by_key(|(a, l)| (*a, l.port, l.proto));
        for (a, _) in &listeners {
            if !kinds.iter().any(|(b, _)| b == a) {
                kinds.push((*a, AddrKind::Vip));
            }
        }
        // At most a quarter full: probes end at the first or second slot.
        let size = (kinds.len() * 4).max(16).next_power_of_two();
        let mask = size - 1;
        let mut slots = vec![None; size].into_boxed_slice();
        for ((addr, v6), kind) in kinds {
            let first = listeners.partition_point(|(a, _)| *a < (addr, v6));
            let count = listeners[first..]
                .iter()
                .take_while(|(a, _)| *a == (addr, v6))
                .count();
            let mut i = home(&addr, v6, mask);
            while slots[i].is_some() {
                i = (i + 1) & mask;
            }
            slots[i] = Some(Slot {
                addr,
                v6,
                kind,
                first: first as u32,
                count: count as u32,
            });
        }
        let (v4, v4_mask) = v4_services(&slots, &listeners);
        AddrTable {
            slots,
            mask,
            services: listeners.into_iter().map(|(_, l)| l).collect(),
            v4,
            v4_mask,
        }
    }

    /// An IPv4 destination with `port` and `proto`: a VIP's service (the answer
    /// `entry` and `AddrEntry::service` give together) in one probe, a local
    /// address in two. `addr` is the address's four bytes read in native order
    /// (as from the packet).
    #[inline(always)]
    pub fn dest_v4(&self, addr: u32, port: u16, proto: u8) -> V4Dest {
        match self.probe_v4(v4_word(addr, port, proto)) {
            Some(V4_LOCAL) => V4Dest::Local,
            Some(id) => V4Dest::Service(id as u32),
            None if self.probe_v4(v4_word(addr, 0, 0)) == Some(V4_LOCAL) => V4Dest::Local,
            None => V4Dest::Unknown,
        }
    }

    /// How many slots of the word table a look-up of `word` reads.
    #[cfg(test)]
    fn probe_len_v4(&self, word: u64) -> usize {
        let mut i = v4_home(word, self.v4_mask);
        let mut n = 1;
        while self.v4[i] != V4_EMPTY && self.v4[i] & ((1 << 56) - 1) != word {
            i = (i + 1) & self.v4_mask;
            n += 1;
        }
        n
    }

    /// The id byte stored with `word`.
    #[inline(always)]
    fn probe_v4(&self, word: u64) -> Option<u64> {
        let mut i = v4_home(word, self.v4_mask);
        loop {
            let s = *self.v4.get(i)?;
            if s == V4_EMPTY {
                return None;
            }
            if s & ((1 << 56) - 1) == word {
                return Some(s >> 56);
            }
            i = (i + 1) & self.v4_mask;
        }
    }

    /// How many slots of the address table a look-up of `addr` reads.
    #[cfg(test)]
    fn probe_len(&self, addr: &[u8; 16], v6: bool) -> usize {
        let mut i = home(addr, v6, self.mask);
        let mut n = 1;
        while self.slots[i].is_some_and(|s| (s.addr, s.v6) != (*addr, v6)) {
            i = (i + 1) & self.mask;
            n += 1;
        }
        n
    }

    #[inline(always)]
    fn slot(&self, addr: &[u8; 16], v6: bool) -> Option<&Slot> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = home(addr, v6, self.mask);
        loop {
            match &self.slots[i] {
                None => return None,
                Some(s)
                    if u128::from_ne_bytes(s.addr) == u128::from_ne_bytes(*addr) && s.v6 == v6 =>
                {
                    return Some(s)
                }
                Some(_) => i = (i + 1) & self.mask,
            }
        }
    }

    /// The address's entry, if the balancer answers for it.
    #[inline]
    pub fn entry(&self, addr: &[u8; 16], v6: bool) -> Option<AddrEntry<'_>> {
        self.slot(addr, v6)
            .map(|slot| AddrEntry { slot, table: self })
    }

    /// What the address is to the balancer, if anything.
    #[inline]
    pub fn kind(&self, addr: &[u8; 16], v6: bool) -> Option<AddrKind> {
        self.slot(addr, v6).map(|s| s.kind)
    }

    /// The service listening on the address, port and protocol.
    #[inline]
    pub fn service(&self, addr: &[u8; 16], v6: bool, port: u16, proto: u8) -> Option<u32> {
        self.entry(addr, v6)?.service(port, proto)
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The IPv4 word table: every listener whose address is an IPv4 VIP (a local
/// address's packets are replies, whatever port they reach) and every IPv4 local
/// address, at most a quarter full.
fn v4_services(slots: &[Option<Slot>], listeners: &[(AddrKey, Listener)]) -> (Box<[u64]>, usize) {
    let kind_of = |a: &AddrKey| {
        slots
            .iter()
            .flatten()
            .find(|s| (s.addr, s.v6) == *a)
            .map(|s| s.kind)
    };
    let word_of = |addr: &[u8; 16], port, proto| {
        v4_word(
            u32::from_ne_bytes([addr[12], addr[13], addr[14], addr[15]]),
            port,
            proto,
        )
    };
    let services = listeners
        .iter()
        .filter(|((_, v6), l)| !v6 && (l.id as u64) < V4_LOCAL)
        .filter(|(a, _)| kind_of(a) == Some(AddrKind::Vip))
        .map(|((addr, _), l)| word_of(addr, l.port, l.proto) | (l.id as u64) << 56);
    let locals = slots
        .iter()
        .flatten()
        .filter(|s| !s.v6 && s.kind == AddrKind::Local)
        .map(|s| word_of(&s.addr, 0, 0) | V4_LOCAL << 56);
    let words: Vec<u64> = services.chain(locals).collect();
    let size = (words.len() * 4).max(16).next_power_of_two();
    let mut table = vec![V4_EMPTY; size].into_boxed_slice();
    for w in words {
        let mut i = v4_home(w & ((1 << 56) - 1), size - 1);
        while table[i] != V4_EMPTY {
            i = (i + 1) & (size - 1);
        }
        table[i] = w;
    }
    (table, size - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(d: u8) -> AddrKey {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[198, 18, 0, d]);
        (a, false)
    }

    #[test]
    fn kinds_and_services_by_address_port_and_protocol() {
        let t = AddrTable::build(
            [
                (v4(100), AddrKind::Vip),
                (v4(2), AddrKind::Local),
                (v4(3), AddrKind::Local),
            ],
            [
                (v4(100), 80, 6, 0),
                (v4(100), 443, 6, 1),
                (v4(100), 53, 17, 2),
                (v4(101), 80, 6, 3),
            ],
        );
        assert_eq!(t.len(), 4, "a service's VIP is a VIP even when not listed");
        assert_eq!(t.kind(&v4(100).0, false), Some(AddrKind::Vip));
        assert_eq!(t.kind(&v4(101).0, false), Some(AddrKind::Vip));
        assert_eq!(t.kind(&v4(2).0, false), Some(AddrKind::Local));
        assert_eq!(t.kind(&v4(9).0, false), None);
        assert_eq!(
            t.kind(&v4(100).0, true),
            None,
            "the family is part of the key"
        );
        assert_eq!(t.service(&v4(100).0, false, 80, 6), Some(0));
        assert_eq!(t.service(&v4(100).0, false, 443, 6), Some(1));
        assert_eq!(t.service(&v4(100).0, false, 53, 17), Some(2));
        assert_eq!(t.service(&v4(100).0, false, 53, 6), None);
        assert_eq!(t.service(&v4(101).0, false, 80, 6), Some(3));
        assert_eq!(t.service(&v4(2).0, false, 80, 6), None);
    }

    #[test]
    fn a_vip_also_listed_as_local_stays_a_vip_and_many_addresses_all_resolve() {
        for kinds in [
            [(v4(5), AddrKind::Local), (v4(5), AddrKind::Vip)],
            [(v4(5), AddrKind::Vip), (v4(5), AddrKind::Local)],
        ] {
            let t = AddrTable::build(kinds, []);
            assert_eq!(t.kind(&v4(5).0, false), Some(AddrKind::Vip));
            assert_eq!(t.len(), 1);
        }
        let many: Vec<(AddrKey, AddrKind)> =
            (0..=255u8).map(|d| (v4(d), AddrKind::Local)).collect();
        let t = AddrTable::build(many, [(v4(7), 80, 6, 9)]);
        assert!((0..=255u8).all(|d| t.kind(&v4(d).0, false).is_some()));
        assert_eq!(t.service(&v4(7).0, false, 80, 6), Some(9));
        assert!(AddrTable::default().kind(&v4(1).0, false).is_none());
        assert!(AddrTable::default().is_empty() && !t.is_empty());
    }

    #[test]
    fn the_ipv4_word_probe_agrees_with_the_address_probe() {
        // Many VIPs with several services each, local addresses (one with a
        // listener on it: a reply, whatever its port), a service with the id the
        // local marker uses, and an IPv6 address with the same bytes as a VIP.
        let vips: Vec<AddrKey> = (0..40u8).map(v4).collect();
        let mut services = vec![(v4(200), 80, 6, 250), (v4(39), 8080, 6, 255)];
        let mut v6 = v4(1);
        v6.1 = true;
        services.push((v6, 80, 6, 251));
        let mut id = 0;
        for a in &vips {
            for (port, proto) in [(80, 6), (443, 6), (53, 17)] {
                services.push((*a, port, proto, id));
                id += 1;
            }
        }
        let t = AddrTable::build(
            vips.iter()
                .map(|a| (*a, AddrKind::Vip))
                .chain([(v4(200), AddrKind::Local), (v4(201), AddrKind::Local)]),
            services,
        );
        let mut seen = [0; 3];
        for d in 0..=255u8 {
            let (addr, _) = v4(d);
            let word = u32::from_ne_bytes([addr[12], addr[13], addr[14], addr[15]]);
            for (port, proto) in [(80, 6), (443, 6), (53, 17), (53, 6), (8080, 6), (0, 0)] {
                let entry = t.entry(&addr, false);
                let by_address = match entry.map(|e| e.kind()) {
                    Some(AddrKind::Local) => V4Dest::Local,
                    Some(AddrKind::Vip) => entry
                        .and_then(|e| e.service(port, proto))
                        .map_or(V4Dest::Unknown, V4Dest::Service),
                    None => V4Dest::Unknown,
                };
                let by_word = t.dest_v4(word, port, proto);
                // Id 255 is the address probe's to answer; all else must agree.
                if by_address != V4Dest::Service(255) {
                    assert_eq!(by_word, by_address, "{d} {port}/{proto}");
                } else {
                    assert_eq!(by_word, V4Dest::Unknown);
                }
                match by_word {
                    V4Dest::Service(_) => seen[0] += 1,
                    V4Dest::Local => seen[1] += 1,
                    V4Dest::Unknown => seen[2] += 1,
                }
            }
        }
        assert_eq!(seen[..2], [120, 12]);
        assert_eq!(AddrTable::default().dest_v4(0, 80, 6), V4Dest::Unknown);
    }

    #[test]
    fn word_table_look_ups_stay_short_for_many_services() {
        // 1000 VIPs in one /22 with the same three services each: a hash that
        // lost the address's or the port's bits would line them up behind each
        // other and make every packet's look-up walk the queue.
        let vip = |i: u16| {
            let mut a = v4(0);
            a.0[14] = (i >> 8) as u8;
            a.0[15] = i as u8;
            a
        };
        let ports = [(80, 6), (443, 6), (53, 17)];
        let services = (0..1000u16).flat_map(|i| {
            ports.iter().enumerate().map(move |(k, &(port, proto))| {
                (vip(i), port, proto, (i as u32 * 3 + k as u32) % 250)
            })
        });
        let t = AddrTable::build((0..1000).map(|i| (vip(i), AddrKind::Vip)), services);
        let mut longest = 0;
        let mut total = 0;
        for i in 0..1000 {
            let a = vip(i).0;
            let word = u32::from_ne_bytes([a[12], a[13], a[14], a[15]]);
            for (port, proto) in ports.iter().copied().chain([(8080, 6)]) {
                let n = t.probe_len_v4(v4_word(word, port, proto));
                longest = longest.max(n);
                total += n;
            }
        }
        // A quarter full (3000 words in 16384 slots): random placement reads
        // ~1.2 slots on average; found and missing keys alike.
        assert!(total <= 4000 * 3 / 2, "{total} slots for 4000 look-ups");
        assert!(longest <= 12, "a look-up read {longest} slots");
    }

    #[test]
    fn address_look_ups_stay_short_for_many_addresses() {
        // IPv4 VIPs in one /22, IPv6 ones differing in their last bytes and
        // ones differing in their first half, each family also looked up as
        // the other: the home slot must mix every part of the key.
        let mut keys: Vec<AddrKey> = Vec::new();
        for i in 0..1000u16 {
            let mut a = v4(0);
            a.0[14..].copy_from_slice(&i.to_be_bytes());
            keys.push(a);
            let low: std::net::Ipv6Addr = format!("2001:db8::{i:x}").parse().unwrap();
            let high: std::net::Ipv6Addr = format!("2001:db8:{i:x}::1").parse().unwrap();
            keys.push((low.octets(), true));
            keys.push((high.octets(), true));
        }
        let t = AddrTable::build(keys.iter().map(|a| (*a, AddrKind::Vip)), []);
        let (mut longest, mut total) = (0, 0);
        for (addr, v6) in &keys {
            for family in [*v6, !*v6] {
                let n = t.probe_len(addr, family);
                longest = longest.max(n);
                total += n;
            }
        }
        // 3000 addresses in 16384 slots: ~1.2 slots a look-up at random.
        assert!(total <= 6000 * 3 / 2, "{total} slots for 6000 look-ups");
        assert!(longest <= 12, "a look-up read {longest} slots");
    }
}
