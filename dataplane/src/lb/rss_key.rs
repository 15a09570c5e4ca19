//! The Toeplitz key Weir gives a device that spreads packets over its queues by
//! RSS, drawn per process.
//!
//! With RSS, a flow belongs to the worker whose queue the device hashes it to.
//! Under a key anyone can read in the source (Weir used 0x6d5a repeated, as many
//! projects do), clients could search offline for source ports whose flows all
//! hash to one queue and load one worker with all of them while the others
//! idle. So each process draws its key at start, as it does the connection
//! table's ([`TableHasher`](super::table_hash::TableHasher)).
//!
//! Nothing needs the key to be symmetric (the same hash for a flow's two
//! directions): a `dr` flow's replies bypass the balancer, and a FullNAT
//! connection takes a local port whose replies the device hashes to the worker
//! that owns it, computed under whatever key ([`RssSteering`](super::rss_steer::RssSteering)).
//! Nothing outside the process depends on the key either: after a restart the
//! tables start empty, and flows without an entry follow the backend hash,
//! which does not depend on the worker.

use super::rss_steer::KEY_LEN;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// The key Weir gave devices before it drew one per process (0x6d5a
/// repeated). Published, so an attacker can aim at it: for tests.
pub const PUBLISHED: [u8; KEY_LEN] = {
    let mut k = [0u8; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// A key from the operating system's randomness (std's `RandomState`, which
/// draws its SipHash keys from it; 128 bits of them, spread over 40 bytes).
pub fn random() -> [u8; KEY_LEN] {
    let state = RandomState::new();
    let mut key = [0u8; KEY_LEN];
    for (i, chunk) in key.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&state.hash_one(i as u64).to_le_bytes()[..chunk.len()]);
    }
    key
}

/// This process's key: drawn at first use, the same for every port (a flow's
/// owner must not depend on the port it came in on).
pub fn process() -> &'static [u8; KEY_LEN] {
    static PROCESS: OnceLock<[u8; KEY_LEN]> = OnceLock::new();
    PROCESS.get_or_init(random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::flow::FlowKey;
    use crate::lb::rss_steer::RssSteering;
    use crate::test_rng::XorShift;
    use std::net::Ipv4Addr;

    #[test]
    fn the_published_key_is_the_old_symmetric_one() {
        assert_eq!(&PUBLISHED[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        assert!(PUBLISHED.chunks(2).all(|c| c == [0x6d, 0x5a]));
    }

    #[test]
    fn the_process_key_is_drawn_once_and_is_not_the_published_one() {
        assert_eq!(process(), process());
        assert_ne!(*process(), PUBLISHED);
        // Drawn keys differ from each other, and their bytes are not a
        // repeated pattern (a key with few distinct bytes hashes poorly).
        let (a, b) = (random(), random());
        assert_ne!(a, b);
        for k in [a, b, *process()] {
            let mut seen = k.to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert!(seen.len() > 20, "{k:02x?}");
        }
    }

    /// Flows a client picked so that, under the published key, the device
    /// hashes them all to worker 0 of 2.
    fn aimed_at_worker_0(n: usize) -> Vec<FlowKey> {
        let published = RssSteering::new(&PUBLISHED, (0..128).map(|i| i % 2).collect()).unwrap();
        let (client, vip) = (Ipv4Addr::new(198, 19, 0, 7), Ipv4Addr::new(198, 18, 0, 100));
        (1024..=u16::MAX)
            .map(|sport| FlowKey::v4(client, vip, sport, 80, 6))
            .filter(|k| published.owner(k) == 0)
            .take(n)
            .collect()
    }

    #[test]
    fn flows_aimed_at_one_worker_under_the_published_key_spread_under_drawn_keys() {
        let flows = aimed_at_worker_0(4000);
        assert_eq!(flows.len(), 4000);
        let steer = |key: &[u8; KEY_LEN]| {
            let s = RssSteering::new(key, (0..128).map(|i| i % 2).collect()).unwrap();
            flows.iter().filter(|k| s.owner(k) == 0).count()
        };
        assert_eq!(steer(&PUBLISHED), 4000);
        // Under keys drawn as `random` draws them (from a fixed generator here,
        // so that the test cannot fail by chance), half each: the device's hash
        // is linear in the input, so over flows that differ only in their
        // source ports another key's owner bit splits them evenly unless it
        // depends on the same port bits the same way.
        let mut rng = XorShift::default();
        for _ in 0..20 {
            let key: [u8; KEY_LEN] = std::array::from_fn(|_| rng.next() as u8);
            let on_0 = steer(&key);
            assert!((1800..=2200).contains(&on_0), "{on_0} of 4000 on worker 0");
        }
    }
}
