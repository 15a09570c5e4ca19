//! A port's RSS: the hash types Weir asks for, the key it gives the device
//! (this process's, see `lb::rss_key`), and the redirection table that spreads
//! flows over the RX queues in turn.

use super::Port;
use crate::dpdk::error::DpdkError;
use crate::lb::rss_key;
use crate::lb::rss_steer::KEY_LEN;

// RSS hash-function bits (rte_ethdev.h RTE_ETH_RSS_*; bindgen cannot evaluate
// RTE_BIT64): IPv4/IPv6 with and without TCP/UDP ports, fragments by addresses.
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
const RSS_NONFRAG_IPV6_OTHER: u64 = 1 << 12;
pub(super) const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_NONFRAG_IPV4_OTHER
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP
    | RSS_NONFRAG_IPV6_OTHER;

/// How a device spreads packets over its RX queues: the Toeplitz key it hashes
/// with and its redirection table (the queue for each entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssTable {
    pub key: [u8; 40],
    pub reta: Vec<u16>,
}

/// A redirection table in the groups of 64 entries DPDK takes it in, every
/// entry of each marked to be set.
fn reta_groups(table: &[u16]) -> Vec<dpdk_sys::rte_eth_rss_reta_entry64> {
    table
        .chunks(dpdk_sys::RTE_ETH_RETA_GROUP_SIZE as usize)
        .map(|c| {
            let mut e = dpdk_sys::rte_eth_rss_reta_entry64 {
                mask: u64::MAX >> (64 - c.len()),
                ..Default::default()
            };
            e.reta[..c.len()].copy_from_slice(c);
            e
        })
        .collect()
}

/// `key` as a device whose key is `device_len` bytes takes it: repeated to that
/// length where it is longer (the bytes after the 40th do not enter the hash of
/// two IPv6 addresses and two ports), 40 bytes where the device does not say.
pub(super) fn rss_key_for(key: &[u8; KEY_LEN], device_len: u8) -> Vec<u8> {
    key.iter()
        .cycle()
        .take((device_len as usize).max(KEY_LEN))
        .copied()
        .collect()
}

impl Port {
    /// Points the device's RSS redirection table at the RX queues in turn
    /// (entry i -> queue i % queues) and returns its key and that table, so that
    /// the workers can tell which queue a flow's packets come in on (see
    /// `lb::rss_steer`). The device must hash with this process's key
    /// ([`rss_key::process`]): given at configure where the device says its
    /// key is 40 bytes or more, else now; what the device reads back decides.
    /// `None` when RSS is off, the device keeps a key of its own, or it takes
    /// no such table.
    pub fn steer_by_rss(&mut self) -> Result<Option<RssTable>, DpdkError> {
        let key = rss_key::process();
        if !self.rss {
            return Ok(None);
        }
        if !self.hashes_with(key)? {
            self.give_rss_key(key)?;
            if !self.hashes_with(key)? {
                return Ok(None);
            }
        }
        Ok(self.spread_reta()?.map(|reta| RssTable { key: *key, reta }))
    }

    /// Whether the device says it hashes with `key` (its first 40 bytes: all a
    /// Toeplitz hash of two IPv6 addresses and two ports reads of a longer key).
    /// `false` when it does not say.
    fn hashes_with(&self, key: &[u8; KEY_LEN]) -> Result<bool, DpdkError> {
        // The device's own length, or 40 where it does not say (some drivers
        // copy 40 bytes whatever the length); the buffer holds any u8 length.
        let len = self.info()?.hash_key_size.max(KEY_LEN as u8);
        let mut buf = [0u8; 256];
        let mut conf = dpdk_sys::rte_eth_rss_conf {
            rss_key: buf.as_mut_ptr(),
            rss_key_len: len,
            ..Default::default()
        };
        // SAFETY: a started port; `buf` holds 256 bytes, more than any
        // `rss_key_len` a driver may copy into it.
        let ret = unsafe { dpdk_sys::rte_eth_dev_rss_hash_conf_get(self.id, &mut conf) };
        match ret {
            0 => Ok(buf[..KEY_LEN] == key[..]),
            r if r == -libc::ENOTSUP => Ok(false),
            r => self.check(r, "read the RSS key").map(|_| false),
        }
    }

    /// Gives the device `key` (as long as the device's own, see [`rss_key_for`]),
    /// keeping the hash types it spreads by.
    fn give_rss_key(&mut self, key: &[u8; KEY_LEN]) -> Result<(), DpdkError> {
        let info = self.info()?;
        let mut bytes = rss_key_for(key, info.hash_key_size);
        let mut conf = dpdk_sys::rte_eth_rss_conf {
            rss_key: bytes.as_mut_ptr(),
            rss_key_len: bytes.len() as u8,
            rss_hf: info.flow_type_rss_offloads & RSS_WANTED,
        };
        // SAFETY: a started port; `bytes` holds `rss_key_len` bytes, which the
        // driver only reads.
        let ret = unsafe { dpdk_sys::rte_eth_dev_rss_hash_update(self.id, &mut conf) };
        self.check(ret, "set Weir's RSS key")
    }

    /// Sets the device's redirection table to entry i -> queue i % queues and
    /// returns it; `None` when the device keeps no table (or one whose size is
    /// not a power of two in whole groups of 64).
    pub fn spread_reta(&mut self) -> Result<Option<Vec<u16>>, DpdkError> {
        let size = self.info()?.reta_size as usize;
        let group = dpdk_sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        if size == 0 || !size.is_power_of_two() || !size.is_multiple_of(group) {
            return Ok(None);
        }
        let table: Vec<u16> = (0..size)
            .map(|i| (i % self.rx_queues.max(1) as usize) as u16)
            .collect();
        let mut conf = reta_groups(&table);
        // SAFETY: `conf` holds size / 64 entries, as many as `size` asks for.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_rss_reta_update(self.id, conf.as_mut_ptr(), size as u16)
        };
        if ret == -libc::ENOTSUP {
            return Ok(None);
        }
        self.check(ret, "RSS redirection table")?;
        Ok(Some(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_goes_in_groups_of_64_each_entry_marked() {
        let table: Vec<u16> = (0..128).map(|i| i % 3).collect();
        let groups = reta_groups(&table);
        assert_eq!(groups.len(), 2);
        for (g, e) in groups.iter().enumerate() {
            assert_eq!(e.mask, u64::MAX);
            for j in 0..64 {
                assert_eq!(e.reta[j] as usize, (g * 64 + j) % 3);
            }
        }
        // A shorter last group marks only its own entries.
        let groups = reta_groups(&[1; 70]);
        assert_eq!(
            (groups[1].mask, groups[1].reta[5], groups[1].reta[6]),
            (0x3f, 1, 0)
        );
    }

    #[test]
    fn a_key_is_repeated_to_the_devices_length_and_never_cut() {
        let key: [u8; KEY_LEN] = std::array::from_fn(|i| i as u8 + 1);
        // A device that does not say (0) or says less takes all 40 bytes.
        assert_eq!(rss_key_for(&key, 0), key.to_vec());
        assert_eq!(rss_key_for(&key, 16), key.to_vec());
        assert_eq!(rss_key_for(&key, 40), key.to_vec());
        // A 52-byte key (Intel's 700 and 800 series): ours, then its first 12 bytes.
        let long = rss_key_for(&key, 52);
        assert_eq!(long.len(), 52);
        assert_eq!(long[..40], key);
        assert_eq!(long[40..], key[..12]);
    }
}
