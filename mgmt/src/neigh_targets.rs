//! The addresses a neighbour resolver asks for, what it has learnt of them, and
//! when to ask next; no sockets here. An entry is asked again once its answer
//! is `REFRESH` old, and forgotten `FORGET` after its last answer. One that
//! does not answer is asked again after 0.5 s, then 1, 2 and 4 s, then every
//! `REFRESH`: dead backends must not make the appliance broadcast two ARP
//! requests a second each, forever. A poll asks at most `ASKS_PER_POLL`,
//! taking up the next time where it stopped, so that thousands of backends
//! are not asked in one burst the host interface's queue would drop.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Ask again when an entry's answer is older than this.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Forget an entry that has not answered for this long.
pub const FORGET: Duration = Duration::from_secs(30);
/// The first wait for an answer before asking again; it doubles up to `REFRESH`.
pub const RETRY: Duration = Duration::from_millis(500);
/// Requests sent by one poll, at most.
pub const ASKS_PER_POLL: usize = 64;

struct Target {
    addr: IpAddr,
    mac: Option<[u8; 6]>,
    seen: Option<Instant>,
    asked: Option<Instant>,
    /// Requests sent since the last answer.
    unanswered: u32,
}

impl Target {
    fn new(addr: IpAddr) -> Target {
        Target {
            addr,
            mac: None,
            seen: None,
            asked: None,
            unanswered: 0,
        }
    }

    fn due(&self, now: Instant) -> bool {
        let fresh = self.seen.is_some_and(|s| now.duration_since(s) < REFRESH);
        let wait = RETRY
            .saturating_mul(1 << self.unanswered.saturating_sub(1).min(4))
            .min(REFRESH);
        let waiting = self.asked.is_some_and(|a| now.duration_since(a) < wait);
        !fresh && !waiting
    }
}

/// A resolver's targets, in the order they were given, found by address.
#[derive(Default)]
pub struct Targets {
    list: Vec<Target>,
    at: HashMap<IpAddr, usize>,
    /// Where the next poll starts looking for due entries.
    cursor: usize,
}

impl Targets {
    /// Resolves exactly `addrs` from now on, keeping what is known of those
    /// already there.
    pub fn set(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        let mut seen = HashSet::new();
        let wanted: Vec<IpAddr> = addrs.into_iter().filter(|a| seen.insert(*a)).collect();
        let mut old: HashMap<IpAddr, Target> = self.list.drain(..).map(|t| (t.addr, t)).collect();
        self.list = wanted
            .into_iter()
            .map(|a| old.remove(&a).unwrap_or_else(|| Target::new(a)))
            .collect();
        self.at = self
            .list
            .iter()
            .enumerate()
            .map(|(i, t)| (t.addr, i))
            .collect();
        self.cursor %= self.list.len().max(1);
    }

    /// `addr` answered with `mac`; true when that is news (a MAC learnt or
    /// changed). Answers for addresses not asked for are ignored.
    pub fn answered(&mut self, addr: IpAddr, mac: [u8; 6], now: Instant) -> bool {
        let Some(t) = self.at.get(&addr).map(|&i| &mut self.list[i]) else {
            return false;
        };
        let news = t.mac != Some(mac);
        t.mac = Some(mac);
        t.seen = Some(now);
        t.unanswered = 0;
        news
    }

    /// Forgets the MACs that have not answered for `FORGET`; true when any was.
    pub fn forget_stale(&mut self, now: Instant) -> bool {
        let mut forgot = false;
        for t in &mut self.list {
            if t.mac.is_some() && t.seen.is_some_and(|s| now.duration_since(s) > FORGET) {
                t.mac = None;
                forgot = true;
            }
        }
        forgot
    }

    /// The addresses to ask now, at most `ASKS_PER_POLL`, marked as asked.
    pub fn due(&mut self, now: Instant) -> Vec<IpAddr> {
        let n = self.list.len();
        let mut ask = Vec::new();
        let mut looked = 0;
        while looked < n && ask.len() < ASKS_PER_POLL {
            let t = &mut self.list[(self.cursor + looked) % n];
            looked += 1;
            if t.due(now) {
                t.asked = Some(now);
                t.unanswered = t.unanswered.saturating_add(1);
                ask.push(t.addr);
            }
        }
        if n > 0 {
            self.cursor = (self.cursor + looked) % n;
        }
        ask
    }

    /// The MACs known.
    pub fn table(&self) -> impl Iterator<Item = (IpAddr, [u8; 6])> + '_ {
        self.list.iter().filter_map(|t| t.mac.map(|m| (t.addr, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i))
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];

    /// Times (ms after start) at which `a` is asked, polling every 10 ms for
    /// `ms`, answering when `answers` says so.
    fn asked_at(t: &mut Targets, a: IpAddr, ms: u64, answers: impl Fn(u64) -> bool) -> Vec<u64> {
        let start = Instant::now();
        let mut at = Vec::new();
        for step in 0..=ms / 10 {
            let now = start + Duration::from_millis(step * 10);
            if t.due(now).contains(&a) {
                at.push(step * 10);
                if answers(step * 10) {
                    t.answered(a, MAC, now);
                }
            }
        }
        at
    }

    #[test]
    fn a_silent_address_is_asked_less_and_less_often_up_to_the_refresh_interval() {
        let mut t = Targets::default();
        t.set([addr(1)]);
        let at = asked_at(&mut t, addr(1), 30_000, |_| false);
        assert_eq!(
            at,
            [0, 500, 1500, 3500, 7500, 12_500, 17_500, 22_500, 27_500],
            "{at:?}"
        );
        assert_eq!(t.table().count(), 0);
    }

    #[test]
    fn an_answering_address_is_refreshed_every_interval_and_forgotten_once_silent() {
        let mut t = Targets::default();
        t.set([addr(1)]);
        // It answers for the first 12 s, then falls silent.
        let at = asked_at(&mut t, addr(1), 20_000, |ms| ms < 12_000);
        assert_eq!(
            at,
            [0, 5000, 10_000, 15_000, 15_500, 16_500, 18_500],
            "{at:?}"
        );
        let start = Instant::now();
        assert_eq!(t.table().collect::<Vec<_>>(), [(addr(1), MAC)]);
        assert!(!t.forget_stale(start + Duration::from_secs(39)));
        assert!(t.forget_stale(start + Duration::from_secs(41)));
        assert_eq!(t.table().count(), 0);
    }

    #[test]
    fn a_poll_asks_a_bounded_number_and_the_next_takes_up_the_rest() {
        let mut t = Targets::default();
        t.set((0..150).map(addr));
        let now = Instant::now();
        let first = t.due(now);
        let second = t.due(now);
        let third = t.due(now);
        assert_eq!((first.len(), second.len(), third.len()), (64, 64, 22));
        let all: HashSet<IpAddr> = first.iter().chain(&second).chain(&third).copied().collect();
        assert_eq!(all.len(), 150);
        assert!(t.due(now).is_empty());
    }

    #[test]
    fn each_poll_takes_up_where_the_last_stopped_across_a_change_of_targets() {
        let mut t = Targets::default();
        assert!(t.due(Instant::now()).is_empty(), "nothing to ask");
        t.set((0..150).map(addr));
        let now = Instant::now();
        assert_eq!(t.due(now)[..], (0..64).map(addr).collect::<Vec<_>>()[..]);
        // A target added: the round goes on from the 65th, not from the start,
        // though the first 64 are due again by now.
        t.set((0..151).map(addr));
        let later = now + RETRY + Duration::from_millis(100);
        assert_eq!(
            t.due(later)[..],
            (64..128).map(addr).collect::<Vec<_>>()[..]
        );
        // A round that looked at every target starts the next at the first.
        let mut t = Targets::default();
        t.set((0..10).map(addr));
        assert_eq!(t.due(now).len(), 10);
        assert_eq!(t.due(later)[..], (0..10).map(addr).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn an_answer_is_forgotten_only_once_older_than_forget() {
        let mut t = Targets::default();
        t.set([addr(1)]);
        let now = Instant::now();
        t.answered(addr(1), MAC, now);
        assert!(!t.forget_stale(now + FORGET));
        assert_eq!(t.table().count(), 1);
        assert!(t.forget_stale(now + FORGET + Duration::from_millis(1)));
        assert_eq!(t.table().count(), 0);
    }

    #[test]
    fn new_targets_keep_what_is_known_of_those_already_there() {
        let mut t = Targets::default();
        t.set([addr(1), addr(2), addr(1)]);
        let now = Instant::now();
        assert_eq!(t.due(now), [addr(1), addr(2)]);
        assert!(t.answered(addr(2), MAC, now));
        assert!(
            !t.answered(addr(2), MAC, now),
            "the same MAC again is no news"
        );
        assert!(!t.answered(addr(9), MAC, now), "not asked for");
        t.set([addr(3), addr(2)]);
        assert_eq!(t.table().collect::<Vec<_>>(), [(addr(2), MAC)]);
        // addr(2) answered just now; addr(3) is new, asked at once.
        assert_eq!(t.due(now), [addr(3)]);
    }
}
