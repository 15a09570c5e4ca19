//! The worker pipeline: per-packet classification, in-place replies, counters, and the
//! poll loop that runs them on DPDK queues.

pub mod classify;
pub mod control;
pub mod counters;
pub mod fast_parts;
pub mod fast_v4;
pub mod fast_v6;
pub mod fragment_v4;
pub mod local;
pub mod reply;
pub mod vlan_tag;
pub mod worker;

#[cfg(test)]
mod classify_tests;
#[cfg(test)]
pub(crate) mod fast_path_check;
#[cfg(test)]
mod worker_accounting_tests;
