//! Questions the management core asks a worker about its own state (its connection
//! table), answered on the worker's slow path (the TSC tick), never per packet. The
//! request queue is checked with one non-blocking receive per tick.

use crate::lb::conn_table::Conn;
use crate::lb::core::{LbCore, TICKS_PER_SEC};
use crate::lb::flow::FlowKey;
use std::sync::mpsc::{Receiver, Sender};

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
    Flow(FlowKey, Sender<Option<ConnReport>>),
    /// Up to `limit` connections, of one service or all.
    Conns {
        service: Option<u32>,
        limit: usize,
        reply: Sender<Vec<ConnReport>>,
    },
}

/// The worker's end.
pub struct Control {
    pub queries: Receiver<Query>,
}

/// Answers a management query from this worker's table.
pub(super) fn answer(worker: usize, lb: &LbCore, q: Query) {
    let report = |entry: u32, c: &Conn| ConnReport {
        worker,
        entry,
        conn: *c,
        age_s: (lb.now as u32).wrapping_sub(c.created) as f64 / TICKS_PER_SEC as f64,
        expires_in_s: c.expires.saturating_sub(lb.now) as f64 / TICKS_PER_SEC as f64,
    };
    match q {
        Query::Flow(key, reply) => {
            let found = lb
                .table
                .lookup(&key)
                .map(|h| report(h.id, lb.table.get(h.id)));
            let _ = reply.send(found);
        }
        Query::Conns {
            service,
            limit,
            reply,
        } => {
            let list = lb
                .table
                .iter()
                .filter(|(_, c)| service.is_none_or(|s| c.service == s))
                .take(limit)
                .map(|(id, c)| report(id, c))
                .collect();
            let _ = reply.send(list);
        }
    }
}
