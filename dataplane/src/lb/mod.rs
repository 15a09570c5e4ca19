//! L4 load balancing: flows, the connection table, schedulers and the rewrites.

pub mod conn_table;
pub mod flow;
pub mod flow_index;
pub mod ring;
pub mod tcp_state;
pub mod timer_wheel;
