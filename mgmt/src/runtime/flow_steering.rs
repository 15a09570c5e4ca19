//! Which worker owns a client flow: the one the device's RSS gives it to,
//! where every port polled by several workers steers by Weir's key and table,
//! else the one Weir's own hash picks.

use super::port_start::PortState;
use crate::config::model::{Config, Device};
use crate::log;
use crate::rss_rule::{self, ByRss, PortRss};
use dataplane::lb::rss_steer::RssSteering;
use std::sync::Arc;

/// How the workers own client flows. Where every port that spreads packets
/// over all the workers does so by RSS with Weir's key, through a redirection
/// table Weir programmed (PCI devices that take them), a flow belongs to the
/// worker RSS gives it to and its packets need no hand-off; otherwise (a
/// virtual device spreads them its own way, or a device refused the key or the
/// table) to the worker a hash of Weir's own picks, and RSS's choice is handed
/// over. Returns the steering and the ports (bit per index) spreading by it,
/// and the rule in words (logged, and in `show info`).
pub(super) fn rss_steering(
    ports: &mut [PortState],
    cfg: &Config,
    workers: usize,
) -> (Option<(Arc<RssSteering>, u64)>, String) {
    if workers < 2 {
        return (None, "the one worker".into());
    }
    // Lazily: a port is asked (and its table programmed) only while the ports
    // before it left RSS possible.
    let said = ports.iter_mut().zip(&cfg.ports).map(|(p, c)| {
        let n = p.workers as usize;
        let pci = matches!(c.device, Device::Pci(_));
        let what = if n < 2 {
            PortRss::OneQueue
        } else if let Some(why) = rss_rule::cannot(pci, &p.phys.driver(), n, workers) {
            PortRss::Cannot(why)
        } else {
            match p.phys.steer_by_rss() {
                Ok(Some(t)) => PortRss::Table(t),
                Ok(None) => PortRss::NotOn,
                Err(e) => PortRss::Cannot(e.to_string()),
            }
        };
        (c.name.clone(), what)
    });
    let by_hash = |why: &str| {
        format!(
            "the worker Weir's own hash picks, handed over from the one that receives them ({why})"
        )
    };
    let (steering, rule) = match rss_rule::choose(said) {
        Ok(Some(ByRss { table, ports })) => {
            let entries = table.reta.len();
            match RssSteering::new(&table.key, table.reta) {
                Some(s) => (
                    Some((Arc::new(s), ports)),
                    format!("the worker RSS gives them to ({entries}-entry redirection table)"),
                ),
                None => (
                    None,
                    by_hash("a redirection table whose size is not a power of two"),
                ),
            }
        }
        Ok(None) => (None, by_hash("no port is polled by several workers")),
        Err((port, why)) => (None, by_hash(&format!("port {port}: {why}"))),
    };
    log!("flows belong to {rule}");
    (steering, rule)
}
