//! The appliance's life cycle on the management core: EAL up, pool and ports
//! started, host interfaces configured, workers launched on their lcores, then wait
//! for SIGINT/SIGTERM (or a worker failure) and tear everything down in order:
//! workers joined, ports stopped and closed, pool freed, EAL cleaned up.

use crate::config::model::{Config, Device, Port as PortCfg};
use crate::config::validate::{in_prefix4, in_prefix6};
use crate::kernel_ring::RingDrops;
use crate::manager::{Manager, Parts, PortView, Who};
use crate::neigh::Resolver;
use crate::rss_rule::{self, ByRss, PortRss};
use crate::{
    admin, eal_args, health, hostif, log, memory_check, metrics, metrics_http, preflight, reload,
    signals, stats,
};
use arc_swap::ArcSwap;
use dataplane::dpdk::error::DpdkError;
use dataplane::dpdk::port::PortStats;
use dataplane::dpdk::ring::handoff_ring;
use dataplane::dpdk::{lcore, Eal, Mempool, Port, PortSpec};
use dataplane::lb::core::LbCore;
use dataplane::lb::rss_steer::RssSteering;
use dataplane::lb::snapshot::LbSnapshot;
use dataplane::lb::stats::LbCounters;
use dataplane::pipeline::control::Control;
use dataplane::pipeline::counters::CoreCounters;
use dataplane::pipeline::local::LocalAddrs;
use dataplane::pipeline::worker::{Handoff, HostQueues, Worker, WorkerPort};
use dataplane::wire::ethernet::format_mac;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A configured port with its host interface.
struct PortState {
    phys: Port,
    host: Option<Port>,
    local: LocalAddrs,
    workers: u32,
    /// For an af_packet port: its kernel rings' drops.
    ring_drops: Option<Arc<RingDrops>>,
}

impl PortState {
    /// The device's counters, with what its kernel rings dropped counted as
    /// `missed` (on a NIC the device counts that itself).
    fn stats(&self) -> impl Fn() -> PortStats + Send + 'static {
        let (id, ring) = (self.phys.id(), self.ring_drops.clone());
        move || {
            let mut s = Port::stats_of(id);
            if let Some(r) = &ring {
                s.rx_missed += r.drops();
            }
            s
        }
    }
}

/// Runs until stopped. `Ok` carries the final counters; `Err` a message for the user.
pub fn run(cfg: &Config, cfg_path: &std::path::Path) -> Result<stats::Summary, String> {
    preflight::check(cfg)?;
    log!(
        "connection tables: {} worker(s) x {} entries, {}",
        cfg.workers(),
        cfg.conn_table.capacity,
        memory_check::size(memory_check::tables_need(cfg))
    );
    let args = eal_args::build(cfg);
    log!("starting EAL: {}", args[1..].join(" "));
    let eal = Eal::init(&args).map_err(|e| e.to_string())?;
    log!(
        "{} up, TSC {} MHz",
        Eal::version(),
        eal.tsc_hz() / 1_000_000
    );
    let result = run_on(&eal, cfg, cfg_path);
    drop(eal);
    remove_runtime_dir(cfg);
    result
}

fn run_on(eal: &Eal, cfg: &Config, cfg_path: &std::path::Path) -> Result<stats::Summary, String> {
    let lcores = eal.worker_lcores();
    if lcores.len() != cfg.workers() {
        return Err(format!(
            "EAL started {} worker lcores, config wants {}",
            lcores.len(),
            cfg.workers()
        ));
    }
    let max_mtu = cfg.ports.iter().map(|p| p.mtu).max().unwrap_or(1500);
    let af_packet = cfg
        .ports
        .iter()
        .filter_map(|p| p.device.mbuf_data_len(p.mtu))
        .max();
    // Headroom (128) + the largest frame: MTU, Ethernet header, VLAN tag, FCS; or
    // an af_packet frame, which holds what its kernel reassembled.
    let data_room = (dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16)
        .max(128 + max_mtu + 14 + 4 + 4)
        .max(128 + af_packet.unwrap_or(0).min(u16::MAX as usize - 128) as u16);
    let pool = Arc::new(
        Mempool::new("weir_pkt", cfg.eal.mbufs, 256, data_room, 0).map_err(|e| e.to_string())?,
    );
    let mut ports = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        ports.push(start_port(
            i,
            p,
            cfg.workers() as u16,
            &pool,
            cfg.eal.mbufs,
        )?);
    }
    let outcome = match pool_room(&pool, lcores.len()) {
        Ok(()) => run_workers(eal, cfg, cfg_path, &mut ports, &lcores, &pool),
        Err(e) => Err(e),
    };
    for p in ports.iter_mut() {
        if let Some(h) = p.host.as_mut() {
            h.stop();
        }
        p.phys.stop();
    }
    drop(ports);
    // With the ports closed, every mbuf should be back: what is not was lost.
    let outcome = outcome.map(|mut summary| {
        summary.mbufs = pool.usage();
        summary
    });
    drop(pool);
    outcome
}

/// The least each worker needs to hold at once: its pool cache (up to 1.5
/// times the cache size, 256) and a burst in each of its stages. Hand-off rings
/// and kept fragments may take more under load.
const MBUFS_PER_WORKER: u32 = 384 + 4 * 32;

/// Refuses to run when the devices' queues left too few mbufs for the workers
/// to take what they may hold: packets would be lost under load (af_packet
/// does not even count them).
fn pool_room(pool: &Mempool, workers: usize) -> Result<(), String> {
    let u = pool.usage();
    let free = u.capacity - u.in_use;
    let want = MBUFS_PER_WORKER * workers as u32;
    if free < want {
        return Err(format!(
            "eal.mbufs = {}: the ports' queues took {}, leaving {free} for {workers} worker(s), \
             which need at least {want}; raise eal.mbufs to at least {}",
            u.capacity,
            u.in_use,
            u.in_use + want
        ));
    }
    Ok(())
}

/// DPDK 22.11's af_packet says it takes 1500 bytes at most (its frames hold
/// more, see `Device::eal_arg`): for a larger MTU the device is given its limit
/// and the kernel interface, which decides what the socket sends and receives,
/// the port's MTU. `Some((interface, device MTU))` when that is needed.
fn af_packet_kernel_mtu<'a>(p: &'a PortCfg, phys: &Port) -> Result<Option<(&'a str, u16)>, String> {
    let max = phys.max_mtu().map_err(|e| e.to_string())?;
    match p.device.kernel_iface() {
        Some(iface) if p.device.is_af_packet() && p.mtu > max => Ok(Some((iface, max))),
        _ => Ok(None),
    }
}

/// For an af_packet port, what reads its kernel rings' drops (logged when
/// nothing can).
fn kernel_ring_drops(p: &PortCfg) -> Option<Arc<RingDrops>> {
    let iface = p
        .device
        .kernel_iface()
        .filter(|_| p.device.is_af_packet())?;
    match RingDrops::find(iface) {
        Ok(r) if r.sockets() > 0 => Some(Arc::new(r)),
        found => {
            log!(
                "port {}: the kernel's drops on {iface} cannot be read ({}); missed stays 0",
                p.name,
                found
                    .err()
                    .map_or("no packet socket".into(), |e| e.to_string())
            );
            None
        }
    }
}

fn start_port(
    index: usize,
    p: &PortCfg,
    workers: u16,
    pool: &Mempool,
    mbufs: u32,
) -> Result<PortState, String> {
    // A queue that cannot fill its ring says "cannot allocate memory": say
    // which setting holds the mbufs.
    let started = |e: DpdkError| {
        if e.code == libc::ENOMEM {
            format!("{e} (RX queues fill their rings from the packet pool, eal.mbufs = {mbufs})")
        } else {
            e.to_string()
        }
    };
    // Every worker may transmit on every port (balanced traffic leaves by the
    // backend's port); only `p.workers` of them poll it.
    let mut phys = Port::open(p.device.dpdk_name(), &p.name).map_err(|e| e.to_string())?;
    let kernel_mtu = af_packet_kernel_mtu(p, &phys)?;
    let spec = PortSpec {
        rx_queues: p.workers as u16,
        tx_queues: workers,
        rx_desc: p.rx_desc,
        tx_desc: p.tx_desc,
        mtu: Some(kernel_mtu.map_or(p.mtu, |(_, device)| device)),
        promiscuous: p.promiscuous,
    };
    phys.start(&spec, pool).map_err(started)?;
    if let Some((iface, _)) = kernel_mtu {
        hostif::set_mtu(iface, p.mtu).map_err(|e| format!("port {}: {e}", p.name))?;
    }
    let mac = phys.mac();
    let link = phys.link();
    log!(
        "port {}: {} driver {}, MAC {}, {} queue pair(s), RSS {}, IPv4 checksum offload {}, link {}",
        p.name,
        p.device.dpdk_name(),
        phys.driver(),
        format_mac(&mac),
        p.workers,
        if phys.rss() { "on" } else { "off" },
        if phys.rx_ip_checksum() { "on" } else { "off" },
        if link.up { "up" } else { "down" }
    );
    let mut host_mtu = 0;
    let host = match &p.host_interface {
        None => None,
        Some(ifname) => {
            if let Some(kif) = p.device.kernel_iface() {
                hostif::quiet_kernel_on(kif).map_err(|e| e.to_string())?;
            }
            let label = format!("{}-host", p.name);
            let mut tap =
                Port::open(&eal_args::host_tap_name(index), &label).map_err(|e| e.to_string())?;
            // DPDK 22.11's TAP takes at most a 1500-byte-class MTU: with a jumbo
            // port the host interface (management traffic only) runs smaller, and
            // TCP's MSS keeps the kernel's own connections within it.
            let tap_mtu = p.mtu.min(tap.max_mtu().map_err(|e| e.to_string())?);
            if tap_mtu < p.mtu {
                log!(
                    "port {}: host interface {ifname} MTU {tap_mtu} (the TAP's limit; the port runs {})",
                    p.name,
                    p.mtu
                );
            }
            let tap_spec = PortSpec {
                promiscuous: false,
                tx_queues: p.workers as u16,
                mtu: Some(tap_mtu),
                ..spec.clone()
            };
            tap.start(&tap_spec, pool).map_err(started)?;
            tap.set_mac(mac).map_err(|e| e.to_string())?;
            hostif::configure(ifname, tap_mtu, &p.ipv4, &p.ipv6).map_err(|e| e.to_string())?;
            host_mtu = tap_mtu;
            log!(
                "port {}: host interface {ifname} carries {}",
                p.name,
                p.ipv4
                    .iter()
                    .map(|a| a.to_string())
                    .chain(p.ipv6.iter().map(|a| a.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(tap)
        }
    };
    let local = LocalAddrs {
        mac,
        vlan: p.vlan,
        mtu: p.mtu,
        ipv4: p.ipv4.iter().map(|c| c.addr).collect(),
        ipv6: p.ipv6.iter().map(|c| c.addr).collect(),
        host_interface: host.is_some(),
        host_mtu,
        // The kernel cuts a longer frame to the frame's size without saying so:
        // only a frame shorter than that is known whole.
        reassembled_len: p.device.reassembled_len(p.mtu).map_or(0, |n| n - 1),
    };
    let ring_drops = kernel_ring_drops(p);
    Ok(PortState {
        phys,
        host,
        local,
        workers: p.workers,
        ring_drops,
    })
}

fn run_workers(
    eal: &Eal,
    cfg: &Config,
    cfg_path: &std::path::Path,
    ports: &mut [PortState],
    lcores: &[u32],
    pool: &Arc<Mempool>,
) -> Result<stats::Summary, String> {
    let workers = cfg.workers();
    let quit = Arc::new(AtomicBool::new(false));
    let counters: Vec<Arc<CoreCounters>> = (0..workers).map(|_| Arc::default()).collect();
    let lb_counters: Vec<Arc<LbCounters>> = (0..workers).map(|_| Arc::default()).collect();
    let resolvers = open_resolvers(cfg, ports)?;
    let snapshot = Arc::new(ArcSwap::from_pointee(LbSnapshot::default()));
    let (health_tx, health_cmds) = mpsc::channel();
    let (health_results_tx, health_results) = mpsc::channel();
    std::thread::Builder::new()
        .name("weir-health".into())
        .spawn(move || health::engine::run(health_cmds, health_results_tx))
        .map_err(|e| format!("health thread: {e}"))?;
    let mut queries = Vec::new();
    let mut controls = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel();
        queries.push(tx);
        controls.push(Some(Control { queries: rx }));
    }
    let port_views = ports
        .iter()
        .zip(&cfg.ports)
        .map(|(p, c)| {
            let id = p.phys.id();
            // A device on a kernel interface (af_packet, af_xdp, pcap) says its
            // link is up from start to stop: the interface tells the truth.
            let iface = c.device.kernel_iface().map(str::to_string);
            PortView {
                name: c.name.clone(),
                driver: p.phys.driver(),
                mac: p.local.mac,
                link: Box::new(move || {
                    let l = Port::link_of(id);
                    let kernel = iface.as_deref().and_then(|i| hostif::link_up(i).ok());
                    (l.up && kernel.unwrap_or(true), l.speed_mbps)
                }),
                stats: Box::new(p.stats()),
            }
        })
        .collect();
    let (steering, flow_owners) = rss_steering(ports, cfg, workers);
    let mut manager = Manager::new(Parts {
        cfg_path: cfg_path.to_path_buf(),
        cfg: cfg.clone(),
        ports: port_views,
        snapshot: snapshot.clone(),
        resolvers,
        health: health_tx,
        counters: counters.clone(),
        lb_counters: lb_counters.clone(),
        queries,
        mbufs: {
            let pool = pool.clone();
            Box::new(move || pool.usage())
        },
    });
    manager.steering = steering.as_ref().map(|s| s.0.clone());
    manager.flow_owners = flow_owners;
    manager.publish();
    let local_addresses = snapshot.load().local_flat.len();
    let mut handoffs = handoff_rings(workers)?;
    let macs: Vec<[u8; 6]> = ports.iter().map(|p| p.local.mac).collect();
    let mut port_index = vec![u8::MAX; 256];
    for (i, p) in ports.iter().enumerate() {
        port_index[p.phys.id() as usize] = i as u8;
    }
    let mut jobs = Vec::new();
    let mut launch_error = None;
    for (w, &lcore_id) in lcores.iter().enumerate() {
        let mut lb = LbCore::new(
            w as u16,
            workers as u16,
            cfg.conn_table.capacity as usize,
            local_addresses,
        );
        if let Some((s, ports)) = &steering {
            lb.steer = Some(s.clone());
            lb.steered_ports = *ports;
        }
        let worker = Worker {
            id: w,
            ports: worker_ports(ports, w as u16),
            counters: counters[w].clone(),
            lb_counters: lb_counters[w].clone(),
            quit: quit.clone(),
            tsc_hz: eal.tsc_hz(),
            idle_sleep_us: cfg.eal.idle_sleep_us,
            lb,
            snapshot: snapshot.clone(),
            handoff: std::mem::take(&mut handoffs[w]),
            port_index: port_index.clone(),
            macs: macs.clone(),
            control: controls[w].take().expect("one control per worker"),
        };
        match lcore::launch(lcore_id, move || worker.run()) {
            Ok(job) => jobs.push(job),
            Err(e) => {
                launch_error = Some(e.to_string());
                break;
            }
        }
    }
    let started = Instant::now();
    if launch_error.is_none() {
        log!(
            "{} worker(s) running; SIGINT or SIGTERM stops, SIGHUP reloads",
            jobs.len()
        );
        signals::install();
        let (inbox_tx, inbox) = mpsc::channel::<Inbox>();
        let admin_tx = inbox_tx.clone();
        let (admin_req_tx, admin_req_rx) = mpsc::channel::<admin::server::Request>();
        std::thread::spawn(move || {
            for r in admin_req_rx {
                if admin_tx.send(Inbox::Admin(r)).is_err() {
                    return;
                }
            }
        });
        let admin_started = match admin::server::start(&cfg.admin.socket, admin_req_tx) {
            Err(e) => {
                launch_error = Some(format!("admin socket {}: {e}", cfg.admin.socket));
                false
            }
            Ok(()) => {
                log!("admin socket {}", cfg.admin.socket);
                true
            }
        };
        if !cfg.admin.metrics.is_empty() && launch_error.is_none() {
            let (m_tx, m_rx) = mpsc::channel::<mpsc::Sender<String>>();
            let metrics_tx = inbox_tx.clone();
            std::thread::spawn(move || {
                for r in m_rx {
                    if metrics_tx.send(Inbox::Metrics(r)).is_err() {
                        return;
                    }
                }
            });
            if let Err(e) = metrics_http::start(&cfg.admin.metrics, m_tx) {
                launch_error = Some(format!("metrics endpoint {}: {e}", cfg.admin.metrics));
            }
        }
        while launch_error.is_none()
            && !signals::stop_requested()
            && !jobs.iter().any(|j| j.finished())
        {
            let mut changed = false;
            match inbox.recv_timeout(Duration::from_millis(20)) {
                Ok(Inbox::Admin(r)) => {
                    let out = admin::commands::dispatch(&mut manager, &r.line, &r.who).map(|rep| {
                        if r.json {
                            format!("{}\n", rep.json)
                        } else {
                            rep.text
                        }
                    });
                    let _ = r.reply.send(out);
                }
                Ok(Inbox::Metrics(reply)) => {
                    let _ = reply.send(metrics::render(&manager));
                }
                Err(_) => {}
            }
            if signals::take_reload() {
                let who = Who {
                    uid: 0,
                    pid: 0,
                    via: "SIGHUP",
                };
                match reload::reload(&mut manager, &who) {
                    Ok(s) => log!("{s}"),
                    Err(e) => log!("{e}"),
                }
            }
            while let Ok(r) = health_results.try_recv() {
                changed |= manager.on_check(r);
            }
            changed |= manager.tick(Instant::now());
            if changed {
                manager.publish();
            }
        }
        // Only our own: a socket another process serves stays.
        if admin_started {
            let _ = std::fs::remove_file(&cfg.admin.socket);
        }
    }
    manager.stop_health();
    let stop_began = Instant::now();
    quit.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for job in jobs {
        let lcore_id = job.lcore();
        if let Err(panic) = job.join() {
            failures.push(format!("worker on lcore {lcore_id} failed: {panic}"));
        }
    }
    let mut summary = stats::Summary::collect(
        &counters,
        &lb_counters,
        &manager.stats_base,
        &snapshot.load(),
        started.elapsed(),
    );
    summary.ports = (ports.iter().zip(&cfg.ports))
        .map(|(p, c)| (c.name.clone(), p.stats()()))
        .collect();
    log!("workers stopped in {} ms", stop_began.elapsed().as_millis());
    if let Some(e) = launch_error {
        return Err(e);
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    Ok(summary)
}

/// What the management loop is asked.
enum Inbox {
    Admin(admin::server::Request),
    Metrics(mpsc::Sender<String>),
}

/// One resolver per port that has backends, on its host interface.
fn open_resolvers(cfg: &Config, ports: &[PortState]) -> Result<Vec<Resolver>, String> {
    let mut out = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let targets: Vec<IpAddr> = cfg
            .pools
            .iter()
            .flat_map(|pool| pool.backends.iter())
            .filter(|b| b.port_index == i)
            .map(|b| b.addr)
            .collect();
        // Every port with a host interface gets one: backends may be added later.
        let Some(ifname) = &p.host_interface else {
            continue;
        };
        let (v4, v6) = (p.ipv4.clone(), p.ipv6.clone());
        let covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>> = vec![Box::new(move |a| match a {
            IpAddr::V4(x) => v4.iter().any(|c| in_prefix4(x, c)),
            IpAddr::V6(x) => v6.iter().any(|c| in_prefix6(x, c)),
        })];
        let r = Resolver::open(
            ifname,
            ports[i].local.mac,
            p.ipv4.first().map(|c| c.addr),
            p.ipv6.first().map(|c| c.addr),
            targets,
            covers,
        )
        .map_err(|e| format!("port {}: neighbour resolution on {ifname}: {e}", p.name))?;
        out.push(r);
    }
    Ok(out)
}

/// How the workers own client flows. Where every port that spreads packets
/// over all the workers does so by RSS with Weir's key, through a redirection
/// table Weir programmed (PCI devices that take them), a flow belongs to the
/// worker RSS gives it to and its packets need no hand-off; otherwise (a
/// virtual device spreads them its own way, or a device refused the key or the
/// table) to the worker a hash of Weir's own picks, and RSS's choice is handed
/// over. Returns the steering and the ports (bit per index) spreading by it,
/// and the rule in words (logged, and in `show info`).
fn rss_steering(
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

/// Rings between every ordered pair of workers: `out[w].to[v]` feeds `out[v].from`.
fn handoff_rings(workers: usize) -> Result<Vec<Handoff>, String> {
    let stopped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut out: Vec<Handoff> = (0..workers)
        .map(|_| Handoff {
            to: (0..workers).map(|_| None).collect(),
            from: Vec::new(),
            stopped: stopped.clone(),
        })
        .collect();
    for a in 0..workers {
        for b in 0..workers {
            if a == b {
                continue;
            }
            let (p, c) =
                handoff_ring(&format!("weir_ho_{a}_{b}"), 1024).map_err(|e| e.to_string())?;
            out[a].to[b] = Some(p);
            out[b].from.push(c);
        }
    }
    Ok(out)
}

/// The queues worker `w` owns: TX queue `w` of every port, and RX queue `w` (with
/// the host interface's queue pair) of every port that has that many.
fn worker_ports(ports: &mut [PortState], w: u16) -> Vec<WorkerPort> {
    let mut out = Vec::new();
    for p in ports.iter_mut() {
        let tx = p
            .phys
            .take_tx_queue(w)
            .expect("every port has a TX queue per worker");
        let polls = u32::from(w) < p.workers;
        let rx = if polls { p.phys.take_rx_queue(w) } else { None };
        let host = if polls {
            p.host.as_mut().and_then(|h| {
                Some(HostQueues {
                    rx: h.take_rx_queue(w)?,
                    tx: h.take_tx_queue(w)?,
                })
            })
        } else {
            None
        };
        out.push(WorkerPort {
            rx,
            tx,
            host,
            local: p.local.clone(),
        });
    }
    out
}

/// The EAL makes /var/run/dpdk/PREFIX even when it writes nothing into it; remove it
/// if it is empty (another process using the same prefix keeps it non-empty).
fn remove_runtime_dir(cfg: &Config) {
    let prefix = cfg.eal.file_prefix.as_deref().unwrap_or("rte");
    let _ = std::fs::remove_dir(format!("/var/run/dpdk/{prefix}"));
}
