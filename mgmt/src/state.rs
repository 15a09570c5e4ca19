//! What the management core knows about each backend, pool and service beyond the
//! configuration: ids that stay stable across reloads, runtime weight and
//! administrative state, and the health verdict.

use crate::config::model::{HealthConfig, Service};
use crate::health::engine::CheckResult;
use crate::health::verdict::Verdict;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Ready,
    /// No new flows; existing ones continue until they end or the drain deadline.
    Drain(Instant),
    /// No traffic at all; health checks stop.
    Maint,
}

impl AdminState {
    pub fn name(&self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain(_) => "drain",
            AdminState::Maint => "maint",
        }
    }
}

/// A backend, addressed by its id (its index in `Manager::backends`).
#[derive(Debug, Clone)]
pub struct BackendSlot {
    pub pool: String,
    pub name: String,
    pub addr: IpAddr,
    /// Its own port, or the service's.
    pub port: Option<u16>,
    pub port_index: usize,
    /// Runtime weight (the config's until `set server ... weight`).
    pub weight: u32,
    pub admin: AdminState,
    pub health: Verdict,
    /// `disable health` turns checking off; the backend then counts as up.
    pub check_enabled: bool,
    pub last_check: Option<CheckResult>,
    pub checks_ok: u64,
    pub checks_failed: u64,
    /// Deleted (by `del server` or a reload); existing connections keep flowing
    /// until they end. The id comes back to a backend of the same name once
    /// none is left, or, when the ids would run out, to any new backend.
    pub removed: bool,
    /// When it was deleted.
    pub removed_at: Option<std::time::Instant>,
}

impl BackendSlot {
    pub fn key(&self) -> String {
        format!("{}/{}", self.pool, self.name)
    }

    /// Whether health checks run for it: not removed, not in maintenance, its
    /// check not disabled. A check's result for a backend that is not counts
    /// for nothing (it was in flight when checking stopped).
    pub fn health_checked(&self) -> bool {
        !self.removed && self.check_enabled && self.admin != AdminState::Maint
    }

    /// Weight for new flows: zero unless ready and (when checked) up.
    pub fn new_flow_weight(&self, health: &HealthConfig) -> u32 {
        let checked = health.kind != crate::config::model::CheckKind::None && self.check_enabled;
        if self.removed || self.admin != AdminState::Ready || (checked && !self.health.up) {
            0
        } else {
            self.weight
        }
    }

    /// No traffic at all: in maintenance, or draining past the deadline.
    pub fn blocked(&self, drain_timeout: Duration, now: Instant) -> bool {
        match self.admin {
            AdminState::Maint => true,
            AdminState::Drain(since) => now.duration_since(since) >= drain_timeout,
            AdminState::Ready => false,
        }
    }

    /// "up", "down", or "unchecked".
    pub fn health_name(&self, health: &HealthConfig) -> &'static str {
        if health.kind == crate::config::model::CheckKind::None || !self.check_enabled {
            "unchecked"
        } else if self.health.up {
            "up"
        } else {
            "down"
        }
    }
}

#[derive(Debug, Clone)]
pub struct PoolState {
    pub name: String,
    pub health: HealthConfig,
    pub drain_timeout: u32,
    /// Backend ids, in order.
    pub members: Vec<u32>,
}

/// A service by id; `None` once removed by a reload (the id comes back to a
/// service of the same name once none of its connections is left).
pub type ServiceSlot = Option<Service>;
