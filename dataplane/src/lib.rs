//! Weir's dataplane: packet views (`wire`), the buffer trait, the worker pipeline and
//! the safe DPDK layer.

pub mod buf;
pub mod dpdk;
pub mod huge;
pub mod lb;
pub mod pipeline;
pub mod prefetch;
#[cfg(test)]
pub(crate) mod test_rng;
pub mod wire;
