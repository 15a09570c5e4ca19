//! Active health checks: the engine (sockets and timers), the HTTP judgement, and
//! the rise/fall verdict.

pub mod engine;
pub mod http;
pub mod verdict;
