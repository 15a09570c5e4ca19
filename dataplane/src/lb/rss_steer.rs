//! Which worker a NIC's RSS hands a flow to, computed in software: the Toeplitz
//! hash of the flow's addresses and ports under the port's key, through the
//! redirection table Weir programmed.
//!
//! With several workers, each flow belongs to one of them (its entry lives in
//! that worker's table), and a packet that reaches another worker is handed over
//! through a ring. On a port whose device spreads packets by RSS, making the
//! owner the worker RSS picks means a client's packets arrive where their entry
//! is: no hand-off. Without it, a flow's owner would be a hash of Weir's own,
//! which agrees with the device's choice for one flow in N. A whole TCP or UDP
//! packet from a port that spreads by this steering is the receiving worker's
//! (the device computed this very hash); every other packet (fragments, which
//! RSS hashes by their addresses; ICMP errors; packets from other ports)
//! computes its flow's owner here, and is handed over when that is another
//! worker, so a device that hashes differently costs hand-offs, not flows.
//!
//! The hash is table-driven: one table per input byte giving that byte's share
//! of the hash for each of its 256 values (XORed together, as Toeplitz is linear).

use super::flow::FlowKey;

/// Toeplitz key length (what most NICs take, and what Weir programs).
pub const KEY_LEN: usize = 40;

/// Bytes hashed at most: two IPv6 addresses and two ports.
const MAX_INPUT: usize = 36;

/// The Toeplitz hash of a flow and the redirection table: the owner of a flow
/// as the device would pick it.
pub struct RssSteering {
    /// `tables[i][b]`: the hash's share from byte `i` of the input being `b`.
    tables: Box<[[u32; 256]; MAX_INPUT]>,
    /// The worker behind each redirection table entry (a power of two of them).
    reta: Box<[u16]>,
}

impl RssSteering {
    /// The steering of a device hashing with `key` into `reta` (worker per
    /// entry; `None` unless its length is a power of two).
    pub fn new(key: &[u8; KEY_LEN], reta: Vec<u16>) -> Option<RssSteering> {
        if !reta.len().is_power_of_two() {
            return None;
        }
        // The 32-bit window of the key starting at bit `i` (bit 0 the key's
        // first byte's top bit).
        let window = |i: usize| -> u32 {
            let mut w = 0u64;
            for k in 0..5 {
                w = (w << 8) | key.get(i / 8 + k).copied().unwrap_or(0) as u64;
            }
            (w >> (8 - i % 8)) as u32
        };
        let mut tables = Box::new([[0u32; 256]; MAX_INPUT]);
        for (i, table) in tables.iter_mut().enumerate() {
            let windows: [u32; 8] = std::array::from_fn(|bit| window(i * 8 + bit));
            for (b, share) in table.iter_mut().enumerate() {
                *share = (0..8)
                    .filter(|bit| b & (0x80 >> bit) != 0)
                    .fold(0, |h, bit| h ^ windows[bit]);
            }
        }
        Some(RssSteering {
            tables,
            reta: reta.into_boxed_slice(),
        })
    }

    /// The Toeplitz hash of any `input` (at most 36 bytes): what a device
    /// computes for a fragment (addresses only). Only tests ask for it; the
    /// packet path uses [`flow_hash`](Self::flow_hash).
    #[cfg(test)]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.tables.iter())
            .fold(0, |h, (&b, t)| h ^ t[b as usize])
    }

    /// The hash RSS takes of a TCP or UDP flow: source and destination
    /// addresses, then source and destination ports.
    #[inline]
    pub fn flow_hash(&self, key: &FlowKey) -> u32 {
        let t = &self.tables;
        let ports = (key.sport.to_be_bytes(), key.dport.to_be_bytes());
        if key.v6 {
            let mut h = 0;
            for i in 0..16 {
                h ^= t[i][key.src[i] as usize] ^ t[16 + i][key.dst[i] as usize];
            }
            h ^ t[32][ports.0[0] as usize]
                ^ t[33][ports.0[1] as usize]
                ^ t[34][ports.1[0] as usize]
                ^ t[35][ports.1[1] as usize]
        } else {
            // IPv4 addresses sit mapped in the last four bytes.
            let mut h = 0;
            for i in 0..4 {
                h ^= t[i][key.src[12 + i] as usize] ^ t[4 + i][key.dst[12 + i] as usize];
            }
            h ^ t[8][ports.0[0] as usize]
                ^ t[9][ports.0[1] as usize]
                ^ t[10][ports.1[0] as usize]
                ^ t[11][ports.1[1] as usize]
        }
    }

    /// The hash of `key` without its destination port: with the share of a
    /// port (see [`owner_with_dport`](Self::owner_with_dport)) it makes the
    /// hash of the flow to that port (Toeplitz is linear, and a zero byte adds
    /// nothing).
    #[inline]
    pub fn hash_without_dport(&self, key: &FlowKey) -> u32 {
        self.flow_hash(&FlowKey { dport: 0, ..*key })
    }

    /// The worker the device gives a flow to, from [`hash_without_dport`]
    /// (Self::hash_without_dport) and its destination port: what a FullNAT
    /// local port is chosen by, so that the backend's replies to it come in
    /// at the worker that owns the connection.
    #[inline]
    pub fn owner_with_dport(&self, base: u32, v6: bool, dport: u16) -> u16 {
        let (hi, lo) = if v6 { (34, 35) } else { (10, 11) };
        let [a, b] = dport.to_be_bytes();
        let h = base ^ self.tables[hi][a as usize] ^ self.tables[lo][b as usize];
        self.reta[h as usize & (self.reta.len() - 1)]
    }

    /// The worker the device gives this flow's packets to.
    #[inline]
    pub fn owner(&self, key: &FlowKey) -> u16 {
        self.reta[self.flow_hash(key) as usize & (self.reta.len() - 1)]
    }
}
