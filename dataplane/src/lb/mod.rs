//! L4 load balancing: flows, the connection table, schedulers and the rewrites.

pub mod addr_table;
pub mod conn_table;
pub mod core;
pub mod flow;
pub mod flow_index;
pub mod frag_parking;
pub mod frag_routes;
pub mod icmp_error;
pub mod icmp_sent;
pub mod least_conn;
pub mod least_conn_layout;
pub mod local_ports;
pub mod nat;
pub mod reclaim;
pub mod ring;
pub mod rss_key;
pub mod rss_steer;
pub mod snapshot;
pub mod stats;
pub mod table_hash;
pub mod tcp_reset;
pub mod tcp_state;
pub mod timer_wheel;

#[cfg(test)]
pub(crate) mod core_fragment_tests;
#[cfg(test)]
mod core_full_table_tests;
#[cfg(test)]
mod core_icmp_tests;
#[cfg(test)]
pub(crate) mod core_property_tests;
#[cfg(test)]
pub(crate) mod core_tests;
#[cfg(test)]
mod least_conn_tests;
#[cfg(test)]
mod ring_update_tests;
#[cfg(test)]
mod rss_steer_tests;
#[cfg(test)]
pub(crate) mod test_traffic;
