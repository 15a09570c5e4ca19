//! The Prometheus text endpoint (exposition format 0.0.4), built by the management
//! core from the per-core counters it already sums; nothing here touches the
//! packet path; `metrics_http` serves it.

mod backends;
mod cores;
mod ports;
mod services;

use crate::manager::Manager;
use std::fmt::Write as _;

/// Writes `# HELP`/`# TYPE` once and the samples under it.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// The whole exposition: the process, the workers, the ports and the pool,
/// the services, the backends.
pub fn render(m: &Manager) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let (_, per) = m.core_totals();
    let t = m.lb_totals();
    f.head("weir_up", "gauge", "1 while weir runs.");
    f.sample("weir_up", &[], 1.0);
    f.head("weir_uptime_seconds", "gauge", "Seconds since start.");
    f.sample(
        "weir_uptime_seconds",
        &[],
        m.started.elapsed().as_secs_f64(),
    );
    f.head(
        "weir_snapshot_generation",
        "gauge",
        "Generation of the dataplane snapshot.",
    );
    f.sample(
        "weir_snapshot_generation",
        &[],
        m.snapshot.load().generation as f64,
    );
    cores::families(&mut f, m, &per);
    ports::port_families(&mut f, m);
    ports::mbuf_families(&mut f, m);
    services::families(&mut f, m, &t);
    backends::families(&mut f, m, &t);
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
