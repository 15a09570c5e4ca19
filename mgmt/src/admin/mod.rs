//! The admin CLI socket and its commands.

pub mod commands;
pub mod server;
