//! Summing per-core counters into the figures the operator reads.

use dataplane::pipeline::counters::{CoreCounters, Counter, Tally};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Summary {
    pub per_worker: Vec<Tally>,
    pub total: Tally,
    pub uptime: Duration,
}

impl Summary {
    pub fn collect(cores: &[Arc<CoreCounters>], uptime: Duration) -> Summary {
        let per_worker: Vec<Tally> = cores.iter().map(|c| c.snapshot()).collect();
        let mut total = Tally::default();
        for t in &per_worker {
            total.sum(t);
        }
        Summary {
            per_worker,
            total,
            uptime,
        }
    }

    fn counters_json(t: &Tally) -> Value {
        let mut m = Map::new();
        for c in Counter::ALL {
            m.insert(c.name().to_string(), json!(t.get(*c)));
        }
        Value::Object(m)
    }

    /// One JSON object: uptime, totals, and per-worker counters.
    pub fn to_json(&self) -> Value {
        json!({
            "uptime_ms": self.uptime.as_millis() as u64,
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
