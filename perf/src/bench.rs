//! The bench: the traffic source and the queues it shares with the loop under
//! test, a timed run, and the paired bare runs a scenario's ratio is taken to.

use crate::loops::{Bare, Loop, Measured};
use dataplane::buf::PacketBuf;
use dataplane::dpdk::{Mbuf, MbufArray, Mempool, RxQueue, TxQueue};
use serde_json::json;

/// The time-stamp counter: cycles at the TSC's rate.
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// The queues and the traffic source (see `wiring`). The loop under test owns
/// `fwd` while it runs.
pub struct Bench {
    pub in_flight: usize,
    pub pool: Mempool,
    /// The source's side: it receives what the loop under test sent and sends
    /// into what the loop receives.
    pub src_rx: RxQueue,
    pub src_tx: TxQueue,
    /// The loop under test's queues: it receives on the first, sends on the second.
    pub fwd: Option<(RxQueue, TxQueue)>,
    pub tsc_hz: u64,
}

impl Bench {
    /// Runs `under_test` with packets built from `templates` (cycled) for `seconds`
    /// or `max_packets`; returns cycles per packet and packets. `vary(i, frame)` may
    /// alter a restored copy (new flows).
    pub fn run<const N: usize>(
        &mut self,
        templates: &[[u8; N]],
        under_test: &mut dyn Loop,
        seconds: f64,
        max_packets: usize,
        vary: &dyn Fn(usize, &mut [u8]),
    ) -> (f64, u64) {
        let mut batch = MbufArray::default();
        for i in 0..self.in_flight {
            let mut m = Mbuf::alloc(&self.pool).expect("mempool");
            m.set_len(N).expect("room");
            m.data_mut()
                .copy_from_slice(&templates[i % templates.len()]);
            let _ = batch.push(m);
            if batch.is_full() {
                self.src_tx.flush(&mut batch);
            }
        }
        self.src_tx.flush(&mut batch);
        let budget = (seconds * self.tsc_hz as f64) as u64;
        let mut rx = MbufArray::default();
        let mut packets = 0usize;
        let mut next = 0usize;
        let start = tsc();
        while tsc() - start < budget && packets < max_packets {
            under_test.step();
            let n = self.src_rx.burst(&mut rx);
            for mut m in rx.drain() {
                let t = &templates[next % templates.len()];
                m.data_mut().copy_from_slice(t);
                vary(next, m.data_mut());
                next += 1;
                let _ = batch.push(m);
            }
            self.src_tx.flush(&mut batch);
            packets += n;
        }
        let cycles = tsc() - start;
        (cycles as f64 / packets.max(1) as f64, packets as u64)
    }

    /// Takes the queues back from a loop and frees what still circulates.
    pub fn end(&mut self, under_test: &mut dyn Loop) {
        let (mut rx, tx) = under_test.release();
        let mut batch = MbufArray::default();
        while rx.burst(&mut batch) + self.src_rx.burst(&mut batch) > 0 {
            batch.drain().for_each(drop);
        }
        self.fwd = Some((rx, tx));
    }

    /// One run of the bare loop: cycles per packet and packets.
    pub fn bare<const N: usize>(
        &mut self,
        templates: &[[u8; N]],
        seconds: f64,
        max_packets: usize,
    ) -> (f64, u64) {
        let mut bare = Bare {
            queues: self.fwd.take(),
            batch: MbufArray::default(),
        };
        let r = self.run(templates, &mut bare, seconds, max_packets, &|_, _| {});
        self.end(&mut bare);
        r
    }
}

/// What every established-flow scenario runs with.
pub struct Opts {
    pub seconds: f64,
    pub rounds: usize,
    /// `--packets`, or `usize::MAX`.
    pub cap: usize,
    /// The first bare run's cycles per packet.
    pub first_bare: f64,
    /// `--large`: the big table's entries.
    pub large: usize,
    /// `--only`: run the scenarios whose label holds this.
    pub only: String,
}

impl Opts {
    /// Whether `--only` asks for the scenario `label`.
    pub fn wanted(&self, label: &str) -> bool {
        label.contains(self.only.as_str())
    }
}

/// The bare loop a scenario is compared with: run just before it, except under
/// `--packets` (instruction counts, where only the loop under test should scale
/// with N), where it is the first run's.
pub fn paired_bare<const N: usize>(b: &mut Bench, templates: &[[u8; N]], o: &Opts) -> f64 {
    if o.cap == usize::MAX {
        b.bare(templates, o.seconds, o.cap).0
    } else {
        o.first_bare
    }
}

/// Runs `w` (its table set up) on `templates` in `o.rounds` rounds, each a bare
/// run and a run of `w`; returns the scenario's medians.
pub fn established<const N: usize>(
    b: &mut Bench,
    w: &mut dyn Measured,
    label: &str,
    templates: &[[u8; N]],
    o: &Opts,
) -> serde_json::Value {
    b.end(w);
    let (mut cycles, mut bares, mut ratios, mut packets) = (vec![], vec![], vec![], 0);
    for _ in 0..o.rounds {
        let bare = paired_bare(b, templates, o);
        w.attach(b.fwd.take().expect("queues"));
        let (c, n) = b.run(templates, w, o.seconds, o.cap, &|_, _| {});
        b.end(w);
        cycles.push(c);
        bares.push(bare);
        ratios.push(c / bare);
        packets += n;
    }
    assert_eq!(w.not_forwarded(), 0, "{label}: packets dropped");
    let (c, bare) = (median(&mut cycles), median(&mut bares));
    json!({"scenario": label, "entries": w.entries(),
           "cycles_per_packet": c, "bare_cycles_per_packet": bare,
           "ratio_to_bare": median(&mut ratios), "added_cycles": c - bare,
           "rounds": o.rounds, "packets": packets})
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}
