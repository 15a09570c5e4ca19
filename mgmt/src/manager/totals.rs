//! The workers' counters, summed.

use super::Manager;
use dataplane::lb::stats::LbTally;
use dataplane::pipeline::counters::Tally;

impl Manager {
    /// Per-service and per-backend counters summed over the workers, each
    /// backend's from when it took its id.
    pub fn lb_totals(&self) -> LbTally {
        let mut total = self.raw_lb_totals();
        total.minus(&self.stats_base);
        total
    }

    /// The workers' sums as they are, with the counts of an id's earlier holders.
    pub fn raw_lb_totals(&self) -> LbTally {
        let mut total = LbTally::default();
        for c in &self.lb_counters {
            total.add(&c.snapshot());
        }
        total
    }

    /// The global counters summed over the workers, and each worker's.
    pub fn core_totals(&self) -> (Tally, Vec<Tally>) {
        let per: Vec<Tally> = self.counters.iter().map(|c| c.snapshot()).collect();
        let mut total = Tally::default();
        for t in &per {
            total.sum(t);
        }
        (total, per)
    }
}
