//! Questions the management core asks a worker about its own state (its connection
//! table), answered on the worker's slow path (the TSC tick), never per packet. The
//! request queue is checked with one non-blocking receive per tick.
//!
//! `show conns` reads the table a slice of ids per tick ([`SCAN_SLOTS`]): read
//! whole, a table of millions of entries would hold the worker up for
//! milliseconds, long enough for its RX queues to overflow. The list it fills
//! and the reply channel come from the management core, so that answering
//! allocates nothing here.

use crate::lb::conn_table::{Conn, ConnTable};
use crate::lb::core::TICKS_PER_SEC;
use crate::lb::flow::FlowKey;
use std::sync::mpsc::{Receiver, SyncSender};

/// Table ids a `show conns` reads per tick of the worker (every
/// `TX_DRAIN_US`, 100 us): 82 million a second, a few microseconds a tick.
pub const SCAN_SLOTS: u32 = 8192;

/// A connection as reported to the operator.
#[derive(Debug, Clone)]
pub struct ConnReport {
    pub worker: usize,
    pub entry: u32,
    pub conn: Conn,
    /// Seconds since it was created, and until it expires.
    pub age_s: f64,
    pub expires_in_s: f64,
}

pub enum Query {
    /// The entry for this key (either direction).
    Flow(FlowKey, SyncSender<Option<ConnReport>>),
    /// Up to `limit` connections, of one service or all, pushed onto `list`
    /// (made with room for them) and sent back in `reply`.
    Conns {
        service: Option<u32>,
        limit: usize,
        list: Vec<ConnReport>,
        reply: SyncSender<Vec<ConnReport>>,
    },
}

/// A `show conns` under way: where the reading of the table stands.
struct ConnsScan {
    service: Option<u32>,
    limit: usize,
    list: Vec<ConnReport>,
    reply: SyncSender<Vec<ConnReport>>,
    next: u32,
}

/// The worker's end.
pub struct Control {
    queries: Receiver<Query>,
    scan: Option<ConnsScan>,
}

impl Control {
    pub fn new(queries: Receiver<Query>) -> Control {
        Control {
            queries,
            scan: None,
        }
    }

    /// One tick's share: goes on with a `show conns` under way (its next
    /// [`SCAN_SLOTS`] ids), else takes the next query, answering a `Flow` at
    /// once and starting a `Conns`.
    pub fn step(&mut self, worker: usize, table: &ConnTable, now: u64) {
        if self.scan.is_none() {
            match self.queries.try_recv() {
                Ok(Query::Flow(key, reply)) => {
                    let found = table
                        .lookup(&key)
                        .map(|h| report(worker, now, h.id, table.get(h.id)));
                    let _ = reply.send(found);
                    return;
                }
                Ok(Query::Conns {
                    service,
                    limit,
                    list,
                    reply,
                }) => {
                    self.scan = Some(ConnsScan {
                        service,
                        limit,
                        list,
                        reply,
                        next: 0,
                    })
                }
                Err(_) => return,
            }
        }
        let Some(s) = self.scan.as_mut() else {
            return;
        };
        let end = s.next.saturating_add(SCAN_SLOTS);
        let finished = table.scan(s.next..end, |id, c| {
            if s.list.len() >= s.limit {
                return false;
            }
            if s.service.is_none_or(|want| c.service == want) {
                s.list.push(report(worker, now, id, c));
            }
            true
        });
        s.next = end;
        if finished || s.list.len() >= s.limit {
            if let Some(s) = self.scan.take() {
                let _ = s.reply.send(s.list);
            }
        }
    }
}

/// Connection `id` as the operator sees it, at worker tick `now`.
fn report(worker: usize, now: u64, id: u32, c: &Conn) -> ConnReport {
    ConnReport {
        worker,
        entry: id,
        conn: *c,
        age_s: (now as u32).wrapping_sub(c.created) as f64 / TICKS_PER_SEC as f64,
        expires_in_s: c.expires.saturating_sub(now) as f64 / TICKS_PER_SEC as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::tcp_state::ConnState;
    use std::net::Ipv4Addr;
    use std::sync::mpsc::{self, Receiver, Sender};

    const CAP: u32 = 3 * SCAN_SLOTS + 5;

    fn key(id: u32) -> FlowKey {
        let src = Ipv4Addr::from(0xc612_0100 + (id >> 16));
        FlowKey::v4(src, Ipv4Addr::new(198, 18, 0, 100), id as u16, 80, 6)
    }

    /// A table of `CAP` entries with live connections at `live` only (of
    /// service 1 where odd, else 0).
    fn table(live: &[u32]) -> ConnTable {
        let mut t = ConnTable::new(CAP as usize, 0);
        for i in 0..CAP {
            let c = Conn {
                fwd: key(i),
                service: i % 2,
                state: ConnState::Established,
                expires: 900,
                ..Conn::default()
            };
            assert_eq!(t.insert(c), Ok(i));
        }
        for i in (0..CAP).filter(|i| !live.contains(i)) {
            t.remove(i);
        }
        t
    }

    fn control() -> (Control, Sender<Query>) {
        let (tx, rx) = mpsc::channel();
        (Control::new(rx), tx)
    }

    fn ask_conns(
        q: &Sender<Query>,
        service: Option<u32>,
        limit: usize,
    ) -> (Receiver<Vec<ConnReport>>, *const ConnReport) {
        let (reply, answer) = mpsc::sync_channel(1);
        let list = Vec::with_capacity(limit);
        let at = list.as_ptr();
        q.send(Query::Conns {
            service,
            limit,
            list,
            reply,
        })
        .unwrap();
        (answer, at)
    }

    fn entries(list: &[ConnReport]) -> Vec<u32> {
        list.iter().map(|r| r.entry).collect()
    }

    #[test]
    fn show_conns_is_answered_a_slice_a_step_in_the_list_it_came_with() {
        let live = [3, SCAN_SLOTS - 1, SCAN_SLOTS, CAP - 1];
        let t = table(&live);
        let (mut ctl, q) = control();
        let (answer, at) = ask_conns(&q, None, 10);
        // Four slices of SCAN_SLOTS ids cover the table.
        for step in 0..3 {
            ctl.step(0, &t, 50);
            assert!(
                answer.try_recv().is_err(),
                "answered after {} step(s)",
                step + 1
            );
        }
        ctl.step(0, &t, 50);
        let list = answer.try_recv().expect("answered at the fourth step");
        assert_eq!(entries(&list), live);
        assert_eq!(list.as_ptr(), at, "the worker filled the list it was given");
        assert_eq!(list[0].conn.fwd, key(3));
        // At tick 50 of a table clock of 10 a second: created at 0, due at 900.
        assert_eq!((list[0].age_s, list[0].expires_in_s), (5.0, 85.0));
    }

    #[test]
    fn show_conns_stops_at_its_limit_and_keeps_to_its_service() {
        let live = [2, 5, 9, SCAN_SLOTS + 1, SCAN_SLOTS + 2, 2 * SCAN_SLOTS + 7];
        let t = table(&live);
        let (mut ctl, q) = control();
        let (answer, _) = ask_conns(&q, None, 2);
        ctl.step(0, &t, 0);
        assert_eq!(entries(&answer.try_recv().expect("two found")), [2, 5]);
        // Service 1: the odd ids, two in the first slice, the third in the
        // second; the fourth is never read.
        let (answer, _) = ask_conns(&q, Some(1), 3);
        ctl.step(0, &t, 0);
        assert!(answer.try_recv().is_err(), "two found in the first slice");
        ctl.step(0, &t, 0);
        assert_eq!(
            entries(&answer.try_recv().expect("the third in the second slice")),
            [5, 9, SCAN_SLOTS + 1]
        );
    }

    #[test]
    fn a_flow_asked_during_show_conns_is_answered_after_it() {
        let t = table(&[4, CAP - 2]);
        let (mut ctl, q) = control();
        let (conns, _) = ask_conns(&q, None, 10);
        let (reply, flow) = mpsc::sync_channel(1);
        q.send(Query::Flow(key(CAP - 2), reply)).unwrap();
        for _ in 0..4 {
            ctl.step(1, &t, 0);
            assert!(flow.try_recv().is_err(), "the flow went before the list");
        }
        assert_eq!(entries(&conns.try_recv().unwrap()), [4, CAP - 2]);
        ctl.step(1, &t, 0);
        let found = flow.try_recv().unwrap().expect("its entry");
        assert_eq!((found.worker, found.entry), (1, CAP - 2));
        // A key with no entry.
        let (reply, flow) = mpsc::sync_channel(1);
        q.send(Query::Flow(key(5), reply)).unwrap();
        ctl.step(1, &t, 0);
        assert!(flow.try_recv().unwrap().is_none());
    }
}
