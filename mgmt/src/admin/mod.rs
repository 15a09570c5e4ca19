//! The admin CLI socket and its commands.

mod change;
#[cfg(test)]
mod change_tests;
pub mod commands;
pub mod server;
#[cfg(test)]
mod server_tests;
pub(crate) mod show_conns;
mod show_info;
mod show_servers;
mod show_stat;
#[cfg(test)]
mod show_tests;
