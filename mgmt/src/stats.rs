//! Summing per-core counters into the figures the operator reads.

use dataplane::dpdk::mempool::PoolUse;
use dataplane::dpdk::port::PortStats;
use dataplane::lb::snapshot::LbSnapshot;
use dataplane::lb::stats::{
    BackendStat, LbCounters, LbTally, BACKEND_STATS, BACKEND_STAT_NAMES, SERVICE_STATS,
    SERVICE_STAT_NAMES,
};
use dataplane::pipeline::counters::{CoreCounters, Counter, Tally};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Summary {
    pub per_worker: Vec<Tally>,
    pub total: Tally,
    pub uptime: Duration,
    /// Per service: name and the counters summed over workers.
    pub services: Vec<(String, [u64; SERVICE_STATS])>,
    /// Per backend (`pool/name`): counters summed over workers.
    pub backends: Vec<(String, [u64; BACKEND_STATS])>,
    /// Per port (by name): the device's own counters.
    pub ports: Vec<(String, PortStats)>,
    /// The packet pool once the workers stopped and the ports closed: every mbuf
    /// still out of it was lost.
    pub mbufs: PoolUse,
}

impl Summary {
    pub fn collect(
        cores: &[Arc<CoreCounters>],
        lb: &[Arc<LbCounters>],
        base: &LbTally,
        snap: &LbSnapshot,
        uptime: Duration,
    ) -> Summary {
        let per_worker: Vec<Tally> = cores.iter().map(|c| c.snapshot()).collect();
        let mut total = Tally::default();
        for t in &per_worker {
            total.sum(t);
        }
        let mut lb_total = LbTally::default();
        for c in lb {
            lb_total.add(&c.snapshot());
        }
        // Backends count from when they took their ids.
        lb_total.minus(base);
        let services = snap
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let v = SERVICE_STAT.map(|k| lb_total.get_service(i as u32, k));
                (s.name.clone(), v)
            })
            .collect();
        let backends = snap
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let v = BACKEND_STAT.map(|k| lb_total.get_backend(i as u32, k));
                (b.name.clone(), v)
            })
            .collect();
        Summary {
            per_worker,
            total,
            uptime,
            services,
            backends,
            ports: Vec::new(),
            mbufs: PoolUse::default(),
        }
    }

    fn counters_json(t: &Tally) -> Value {
        let mut m = Map::new();
        for c in Counter::ALL {
            m.insert(c.name().to_string(), json!(t.get(*c)));
        }
        Value::Object(m)
    }

    /// One JSON object: uptime, totals, per-worker, per-service and per-backend
    /// counters.
    pub fn to_json(&self) -> Value {
        let named = |names: &[&str], v: &[u64]| -> Value {
            Value::Object(
                names
                    .iter()
                    .zip(v)
                    .map(|(n, x)| (n.to_string(), json!(x)))
                    .collect(),
            )
        };
        let services: Map<String, Value> = self
            .services
            .iter()
            .map(|(n, v)| (n.clone(), named(&SERVICE_STAT_NAMES, v)))
            .collect();
        let backends: Map<String, Value> = self
            .backends
            .iter()
            .map(|(n, v)| (n.clone(), named(&BACKEND_STAT_NAMES, v)))
            .collect();
        let ports: Map<String, Value> = self
            .ports
            .iter()
            .map(|(n, s)| (n.clone(), port_json(s)))
            .collect();
        json!({
            "uptime_ms": self.uptime.as_millis() as u64,
            "ports": ports,
            "mbufs": {"capacity": self.mbufs.capacity, "in_use": self.mbufs.in_use},
            "packets_unaccounted": self.total.unaccounted(),
            "services": services,
            "backends": backends,
            "total": Self::counters_json(&self.total),
            "workers": self.per_worker.iter().enumerate().map(|(i, t)| json!({
                "worker": i,
                "counters": Self::counters_json(t),
            })).collect::<Vec<_>>(),
        })
    }

    /// Human-readable lines: traffic, then every non-zero drop reason.
    pub fn lines(&self) -> Vec<String> {
        let t = &self.total;
        let mut out = vec![format!(
            "rx {} pkts / {} bytes, tx {} pkts / {} bytes, to host {}, from host {}",
            t.get(Counter::RxPackets),
            t.get(Counter::RxBytes),
            t.get(Counter::TxPackets),
            t.get(Counter::TxBytes),
            t.get(Counter::ToHost),
            t.get(Counter::FromHost),
        )];
        out.push(format!(
            "answered: arp {}, nd {}, icmp echo {}, icmpv6 echo {}",
            t.get(Counter::ArpReplies),
            t.get(Counter::NdAdverts),
            t.get(Counter::EchoRepliesV4),
            t.get(Counter::EchoRepliesV6),
        ));
        out.push(format!(
            "balanced: {} forward, {} reverse, {} new flows, {} expired, {} reclaimed ({} quiet tcp), {} moved, hand-off {} out / {} in",
            t.get(Counter::LbForward),
            t.get(Counter::LbReverse),
            t.get(Counter::FlowsNew),
            t.get(Counter::FlowsExpired),
            t.get(Counter::FlowsReclaimed),
            t.get(Counter::FlowsReclaimedQuiet),
            t.get(Counter::FlowsMoved),
            t.get(Counter::HandoffOut),
            t.get(Counter::HandoffIn),
        ));
        out.push(format!(
            "icmp errors: {} relayed to the other end of a flow, {} too big and {} time exceeded sent",
            t.get(Counter::IcmpErrorsRelayed),
            t.get(Counter::TooBigSent),
            t.get(Counter::TimeExceededSent),
        ));
        out.push(format!(
            "ip fragments: {} sent (from {} packets), {} kept until their first fragment came",
            t.get(Counter::FragmentsOut),
            t.get(Counter::Fragmented),
            t.get(Counter::FragmentsParked),
        ));
        for (name, v) in &self.backends {
            out.push(format!(
                "backend {name}: {} new flows, {} packets in, {} out, {} dropped",
                v[BackendStat::NewFlows as usize],
                v[BackendStat::PacketsIn as usize],
                v[BackendStat::PacketsOut as usize],
                v[BackendStat::Drops as usize],
            ));
        }
        for (name, s) in &self.ports {
            out.push(format!(
                "port {name} (device): rx {} pkts, tx {} pkts; lost before a worker saw them: \
                 {} missed (queue full), {} no mbuf, {} rx errors; {} tx errors",
                s.rx_packets, s.tx_packets, s.rx_missed, s.rx_no_mbuf, s.rx_errors, s.tx_errors,
            ));
        }
        out.push(format!(
            "mbufs: {} of {} not back in the pool after the ports closed",
            self.mbufs.in_use, self.mbufs.capacity
        ));
        // Every packet a worker took went out, to the kernel or another worker,
        // or was dropped under a named counter; anything else is a bug.
        out.push(match t.unaccounted() {
            0 => "packets: every one sent, handed on or dropped under a named counter".into(),
            n => format!("packets: {n} unaccounted for (taken but neither sent nor counted as dropped; a bug)"),
        });
        let drops: Vec<String> = Counter::ALL
            .iter()
            .filter(|c| c.is_drop() && t.get(**c) > 0)
            .map(|c| format!("{} {}", c.name(), t.get(*c)))
            .collect();
        out.push(if drops.is_empty() {
            "drops: none".into()
        } else {
            format!("drops: {}", drops.join(", "))
        });
        out
    }
}

use dataplane::lb::stats::ServiceStat;
const SERVICE_STAT: [ServiceStat; SERVICE_STATS] = ServiceStat::ALL;
const BACKEND_STAT: [BackendStat; BACKEND_STATS] = BackendStat::ALL;

/// A port's device counters as JSON, by name.
fn port_json(s: &PortStats) -> Value {
    json!({
        "rx_packets": s.rx_packets,
        "tx_packets": s.tx_packets,
        "rx_bytes": s.rx_bytes,
        "tx_bytes": s.tx_bytes,
        "rx_missed": s.rx_missed,
        "rx_errors": s.rx_errors,
        "rx_no_mbuf": s.rx_no_mbuf,
        "tx_errors": s.tx_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two workers: 10 packets in, 7 out on worker 0 and 1 handed to worker
    /// 1, which sent it; 2 runts dropped. One service, one backend, one port.
    fn summary() -> Summary {
        let mut w0 = Tally::default();
        let mut w1 = Tally::default();
        for (c, n) in [
            (Counter::RxPackets, 10),
            (Counter::RxBytes, 640),
            (Counter::TxPackets, 7),
            (Counter::HandoffOut, 1),
            (Counter::DropRunt, 2),
        ] {
            w0.add(c, n);
        }
        w1.add(Counter::HandoffIn, 1);
        w1.add(Counter::TxPackets, 1);
        let mut total = Tally::default();
        total.sum(&w0);
        total.sum(&w1);
        let mut service = [0; SERVICE_STATS];
        service[ServiceStat::Packets as usize] = 8;
        let mut backend = [0; BACKEND_STATS];
        backend[BackendStat::NewFlows as usize] = 3;
        backend[BackendStat::PacketsIn as usize] = 5;
        Summary {
            per_worker: vec![w0, w1],
            total,
            uptime: Duration::from_millis(1500),
            services: vec![("web".into(), service)],
            backends: vec![("web/b1".into(), backend)],
            ports: vec![(
                "wan".into(),
                PortStats {
                    rx_packets: 12,
                    rx_missed: 2,
                    ..Default::default()
                },
            )],
            mbufs: PoolUse {
                capacity: 4095,
                in_use: 0,
            },
        }
    }

    #[test]
    fn the_json_summary_holds_totals_workers_services_backends_and_ports() {
        let s = summary();
        let j = s.to_json();
        assert_eq!(j["uptime_ms"], 1500);
        assert_eq!(j["packets_unaccounted"], 0);
        assert_eq!(j["total"]["rx_packets"], 10);
        assert_eq!(j["total"]["tx_packets"], 8);
        assert_eq!(j["total"].as_object().unwrap().len(), Counter::COUNT);
        assert_eq!(j["workers"][1]["worker"], 1);
        assert_eq!(j["workers"][1]["counters"]["handoff_in"], 1);
        assert_eq!(j["workers"][0]["counters"]["drop_runt"], 2);
        assert_eq!(j["services"]["web"]["packets"], 8);
        assert_eq!(
            j["services"]["web"].as_object().unwrap().len(),
            SERVICE_STATS
        );
        assert_eq!(j["backends"]["web/b1"]["new_flows"], 3);
        assert_eq!(j["backends"]["web/b1"]["packets_in"], 5);
        assert_eq!(j["ports"]["wan"]["rx_packets"], 12);
        assert_eq!(j["ports"]["wan"]["rx_missed"], 2);
        assert_eq!(j["ports"]["wan"].as_object().unwrap().len(), 8);
        assert_eq!(j["mbufs"], json!({"capacity": 4095, "in_use": 0}));
    }

    #[test]
    fn the_summary_lines_name_traffic_backends_ports_and_only_the_drops_that_happened() {
        let mut s = summary();
        let lines = s.lines();
        assert_eq!(
            lines[0],
            "rx 10 pkts / 640 bytes, tx 8 pkts / 0 bytes, to host 0, from host 0"
        );
        assert!(
            lines.contains(&"backend web/b1: 3 new flows, 5 packets in, 0 out, 0 dropped".into())
        );
        assert!(lines
            .iter()
            .any(|l| l.starts_with("port wan (device): rx 12 pkts")
                && l.contains("2 missed (queue full)")));
        assert!(lines.contains(
            &"packets: every one sent, handed on or dropped under a named counter".into()
        ));
        assert_eq!(lines.last().unwrap(), "drops: drop_runt 2");
        // The runts' drops not counted, and one more packet taken: three
        // packets in, never counted again.
        s.total.set(Counter::DropRunt, 0);
        s.total.add(Counter::RxPackets, 1);
        let lines = s.lines();
        assert_eq!(lines.last().unwrap(), "drops: none");
        assert!(lines
            .iter()
            .any(|l| l.starts_with("packets: 3 unaccounted for")));
        assert_eq!(s.to_json()["packets_unaccounted"], 3);
    }
}
