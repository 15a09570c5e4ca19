//! Reference loops: the least per-packet work of three classes of forwarder, run on
//! the same harness, queues and packets as Weir's worker, to put the ratios to the
//! bare loop in scale. None of this is Weir's code, and none of it would be enough
//! to balance traffic: each loop does only what every forwarder of its class must.
//!
//! - `MacSwap`: touch each packet (DPDK's l2fwd / testpmd macswap).
//! - `Route`: check the IPv4 header, look the destination up, rewrite the MACs and
//!   decrement the TTL (DPDK's l3fwd in exact-match mode, without its checks).
//! - `Track`: as `Route`, but look up the connection by its 5-tuple and count its
//!   packets, bytes and last packet (the least a stateful dr balancer must do).

use crate::loops::Loop;
use dataplane::buf::PacketBuf;
use dataplane::dpdk::{MbufArray, RxQueue, TxQueue};
use hashbrown::HashMap;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    MacSwap,
    Route,
    Track,
}

/// A tracked connection: where it goes and what it has sent.
struct Conn {
    mac: [u8; 6],
    packets: u64,
    bytes: u64,
    last_flags: u8,
}

pub struct Reference {
    kind: Kind,
    queues: Option<(RxQueue, TxQueue)>,
    batch: MbufArray,
    out: MbufArray,
    routes: HashMap<u32, [u8; 6]>,
    conns: HashMap<[u8; 13], Conn>,
    /// Packets the loop could not forward (none, when set up for its templates).
    pub missed: u64,
}

const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];

/// The 5-tuple of an IPv4 TCP/UDP frame with a 20-byte header: addresses, ports,
/// protocol.
fn key(d: &[u8]) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..8].copy_from_slice(&d[26..34]);
    k[8..12].copy_from_slice(&d[34..38]);
    k[12] = d[23];
    k
}

fn destination(d: &[u8]) -> u32 {
    u32::from_ne_bytes([d[30], d[31], d[32], d[33]])
}

impl Reference {
    /// A loop of `kind` that knows the routes and connections of `templates`
    /// (each sent to one of three next hops).
    pub fn new<const N: usize>(kind: Kind, templates: &[[u8; N]]) -> Reference {
        let hop = |i: usize| [0x02, 0, 0, 0, 1, (i % 3) as u8];
        let routes = templates
            .iter()
            .enumerate()
            .map(|(i, t)| (destination(t), hop(i)))
            .collect();
        let conns = templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let c = Conn {
                    mac: hop(i),
                    packets: 0,
                    bytes: 0,
                    last_flags: 0,
                };
                (key(t), c)
            })
            .collect();
        Reference {
            kind,
            queues: None,
            batch: MbufArray::default(),
            out: MbufArray::default(),
            routes,
            conns,
            missed: 0,
        }
    }

    pub fn attach(&mut self, queues: (RxQueue, TxQueue)) {
        self.queues = Some(queues);
    }

    /// The work on one packet; false when it cannot be forwarded.
    #[inline(always)]
    fn forward(
        kind: Kind,
        routes: &HashMap<u32, [u8; 6]>,
        conns: &mut HashMap<[u8; 13], Conn>,
        d: &mut [u8],
    ) -> bool {
        if let Kind::MacSwap = kind {
            for i in 0..6 {
                d.swap(i, 6 + i);
            }
            return true;
        }
        if d.len() < 54 || d[12..14] != [0x08, 0x00] || d[14] != 0x45 || d[22] <= 1 {
            return false;
        }
        let mac = match kind {
            Kind::Route => match routes.get(&destination(d)) {
                Some(m) => *m,
                None => return false,
            },
            _ => {
                let len = d.len() as u64;
                let flags = d[47];
                match conns.get_mut(&key(d)) {
                    Some(c) => {
                        c.packets += 1;
                        c.bytes += len;
                        c.last_flags = flags;
                        c.mac
                    }
                    None => return false,
                }
            }
        };
        d[..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&OUR_MAC);
        // TTL down by one; the checksum up by 0x0100 (RFC 1141).
        d[22] -= 1;
        let sum = u16::from_be_bytes([d[24], d[25]]) as u32 + 0x0100;
        let c = (sum + (sum >> 16)) as u16;
        d[24..26].copy_from_slice(&c.to_be_bytes());
        true
    }
}

impl Loop for Reference {
    #[inline]
    fn step(&mut self) {
        let Some((rx, tx)) = self.queues.as_mut() else {
            return;
        };
        rx.burst(&mut self.batch);
        for mut m in self.batch.drain() {
            if Self::forward(self.kind, &self.routes, &mut self.conns, m.data_mut()) {
                let _ = self.out.push(m);
            } else {
                self.missed += 1;
            }
        }
        tx.flush(&mut self.out);
    }

    fn release(&mut self) -> (RxQueue, TxQueue) {
        if let Some((_, tx)) = self.queues.as_mut() {
            tx.flush(&mut self.out);
        }
        self.queues.take().expect("queues")
    }
}
