//! Announcing the appliance's addresses (its ports' own, VIPs, FullNAT local
//! addresses) with gratuitous ARP and unsolicited neighbour advertisements when
//! weir starts and when a reload adds one: routers, clients and backends that
//! hold another MAC for them (an earlier run on another NIC, or another host
//! that had the address) send to this port at once instead of after their
//! caches time out.

use crate::neigh::Resolver;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Each announcement is sent this many times (one may be lost)...
const ROUNDS: u8 = 2;
/// ...this far apart.
const GAP: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Announcer {
    /// Addresses still to be announced, and how many rounds are left.
    pending: Vec<IpAddr>,
    rounds: u8,
    due: Option<Instant>,
    /// Announced already (a reload announces only what it adds).
    done: HashSet<IpAddr>,
}

impl Announcer {
    /// The addresses the appliance answers for now: those not announced yet will
    /// be, from `now` (one dropped and added again later is announced again).
    pub fn want(&mut self, addrs: impl IntoIterator<Item = IpAddr>, now: Instant) {
        let addrs: Vec<IpAddr> = addrs.into_iter().collect();
        self.done.retain(|a| addrs.contains(a));
        self.pending.retain(|a| addrs.contains(a));
        let mut added = false;
        for a in addrs {
            if !self.done.contains(&a) && !self.pending.contains(&a) {
                self.pending.push(a);
                added = true;
            }
        }
        if added {
            self.rounds = ROUNDS;
            self.due = Some(now);
        }
    }

    /// Sends a round through `resolvers` if one is due. Returns how many
    /// addresses a first round announced (for the log), else 0.
    pub fn tick(&mut self, resolvers: &[Resolver], now: Instant) -> usize {
        if self.due.is_none_or(|d| now < d) {
            return 0;
        }
        let first = self.rounds == ROUNDS;
        let mut sent = 0;
        for &a in &self.pending {
            // Each address goes out on the ports whose networks hold it.
            let on_any = resolvers.iter().any(|r| r.announce(a).unwrap_or(false));
            sent += on_any as usize;
        }
        self.rounds -= 1;
        if self.rounds == 0 {
            self.done.extend(self.pending.drain(..));
            self.due = None;
        } else {
            self.due = Some(now + GAP);
        }
        if first {
            sent
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_announced_in_rounds_and_a_reload_announces_only_new_ones() {
        let mut a = Announcer::default();
        let t0 = Instant::now();
        let (x, y): (IpAddr, IpAddr) = (
            "198.18.0.100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        );
        a.want([x, y], t0);
        assert_eq!((a.pending.len(), a.rounds, a.due), (2, ROUNDS, Some(t0)));
        a.tick(&[], t0);
        assert_eq!((a.rounds, a.due), (ROUNDS - 1, Some(t0 + GAP)));
        a.tick(&[], t0 + GAP / 2);
        assert_eq!(a.rounds, ROUNDS - 1, "not due yet");
        a.tick(&[], t0 + GAP);
        assert_eq!((a.pending.len(), a.due, a.done.len()), (0, None, 2));
        // A reload that keeps them and adds one announces that one.
        let z: IpAddr = "198.18.0.101".parse().unwrap();
        a.want([x, y, z], t0 + GAP * 5);
        assert_eq!((a.pending.clone(), a.rounds), (vec![z], ROUNDS));
        a.want([x, y, z], t0 + GAP * 6);
        assert_eq!(a.pending, vec![z]);
        // One removed, then added again, is announced again.
        a.tick(&[], t0 + GAP * 6);
        a.tick(&[], t0 + GAP * 7);
        a.want([x, z], t0 + GAP * 8);
        assert!(a.pending.is_empty());
        a.want([x, y, z], t0 + GAP * 9);
        assert_eq!(a.pending, vec![y]);
    }
}
