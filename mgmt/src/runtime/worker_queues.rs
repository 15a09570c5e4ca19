//! The queues and rings each worker owns: its queues of every port, and the
//! hand-off rings between every pair of workers.

use super::port_start::PortState;
use dataplane::dpdk::ring::handoff_ring;
use dataplane::pipeline::worker::{Handoff, HostQueues, WorkerPort};
use std::sync::Arc;

/// Rings between every ordered pair of workers: `out[w].to[v]` feeds `out[v].from`.
pub(super) fn handoff_rings(workers: usize) -> Result<Vec<Handoff>, String> {
    let stopped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut out: Vec<Handoff> = (0..workers)
        .map(|_| Handoff {
            to: (0..workers).map(|_| None).collect(),
            from: Vec::new(),
            stopped: stopped.clone(),
        })
        .collect();
    for a in 0..workers {
        for b in 0..workers {
            if a == b {
                continue;
            }
            let (p, c) =
                handoff_ring(&format!("weir_ho_{a}_{b}"), 1024).map_err(|e| e.to_string())?;
            out[a].to[b] = Some(p);
            out[b].from.push(c);
        }
    }
    Ok(out)
}

/// The queues worker `w` owns: TX queue `w` of every port, and RX queue `w` (with
/// the host interface's queue pair) of every port that has that many.
pub(super) fn worker_ports(ports: &mut [PortState], w: u16) -> Vec<WorkerPort> {
    let mut out = Vec::new();
    for p in ports.iter_mut() {
        let tx = p
            .phys
            .take_tx_queue(w)
            .expect("every port has a TX queue per worker");
        let polls = u32::from(w) < p.workers;
        let rx = if polls { p.phys.take_rx_queue(w) } else { None };
        let host = if polls {
            p.host.as_mut().and_then(|h| {
                Some(HostQueues {
                    rx: h.take_rx_queue(w)?,
                    tx: h.take_tx_queue(w)?,
                })
            })
        } else {
            None
        };
        out.push(WorkerPort {
            rx,
            tx,
            host,
            local: p.local.clone(),
        });
    }
    out
}
