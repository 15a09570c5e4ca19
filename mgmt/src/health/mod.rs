//! Active health checks: the engine (sockets and timers), the HTTP judgement, and
//! the rise/fall verdict.

pub mod engine;
#[cfg(test)]
mod engine_tests;
pub mod http;
pub mod verdict;
