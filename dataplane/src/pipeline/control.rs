//! Questions the management core asks a worker about its own state (its connection
//! table), answered on the worker's slow path (the TSC tick), never per packet. The
//! request queue is checked with one non-blocking receive per tick.

use crate::lb::conn_table::Conn;
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
