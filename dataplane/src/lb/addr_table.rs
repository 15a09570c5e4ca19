//! The addresses the balancer answers for (VIPs and FullNAT local addresses) and the
//! services on each VIP, in one small open-addressing table built with the snapshot.
//! The classifier asks "is this address ours, and what is it" and the balancer "which
//! service has this address, port and protocol": both are one probe into the same
//! slot, where a general-purpose hash map costs a keyed hash and a group probe each.

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
        AddrTable {
            slots,
            mask,
            services: listeners.into_iter().map(|(_, l)| l).collect(),
        }
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
        let t = AddrTable::build([(v4(5), AddrKind::Local), (v4(5), AddrKind::Vip)], []);
        assert_eq!(t.kind(&v4(5).0, false), Some(AddrKind::Vip));
        let many: Vec<(AddrKey, AddrKind)> =
            (0..=255u8).map(|d| (v4(d), AddrKind::Local)).collect();
        let t = AddrTable::build(many, [(v4(7), 80, 6, 9)]);
        assert!((0..=255u8).all(|d| t.kind(&v4(d).0, false).is_some()));
        assert_eq!(t.service(&v4(7).0, false, 80, 6), Some(9));
        assert!(AddrTable::default().kind(&v4(1).0, false).is_none());
    }
}
