//! The appliance's life cycle on the management core: EAL up, pool and ports
//! started, host interfaces configured, workers launched on their lcores, then wait
//! for SIGINT/SIGTERM (or a worker failure) and tear everything down in order:
//! workers joined, ports stopped and closed, pool freed, EAL cleaned up.

mod flow_steering;
mod mgmt_loop;
mod pool_size;
mod port_start;
mod resolvers;
mod worker_queues;

use crate::config::model::Config;
use crate::manager::{Manager, Parts};
use crate::{eal_args, health, log, memory_check, preflight, stats};
use arc_swap::ArcSwap;
use dataplane::dpdk::{lcore, Eal, Mempool};
use dataplane::lb::core::LbCore;
use dataplane::lb::snapshot::LbSnapshot;
use dataplane::lb::stats::LbCounters;
use dataplane::pipeline::control::Control;
use dataplane::pipeline::counters::CoreCounters;
use dataplane::pipeline::worker::Worker;
use port_start::{start_port, PortState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

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

/// Everything between the EAL's start and its clean-up: the pool, the ports,
/// the workers.
fn run_on(eal: &Eal, cfg: &Config, cfg_path: &std::path::Path) -> Result<stats::Summary, String> {
    let lcores = eal.worker_lcores();
    if lcores.len() != cfg.workers() {
        return Err(format!(
            "EAL started {} worker lcores, config wants {}",
            lcores.len(),
            cfg.workers()
        ));
    }
    let data_room = pool_size::data_room(cfg);
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
    let outcome = match pool_size::pool_room(pool.usage(), lcores.len()) {
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

/// Launches a worker on each lcore with the queues it owns, runs the
/// management loop until stopped, then joins the workers and sums their counters.
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
    let resolvers = resolvers::open_resolvers(cfg, ports)?;
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
        controls.push(Some(Control::new(rx)));
    }
    let port_views = (ports.iter().zip(&cfg.ports))
        .map(|(p, c)| p.view(c))
        .collect();
    let (steering, flow_owners) = flow_steering::rss_steering(ports, cfg, workers);
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
    let mut handoffs = worker_queues::handoff_rings(workers)?;
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
            ports: worker_queues::worker_ports(ports, w as u16),
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
        launch_error = mgmt_loop::serve(cfg, &mut manager, &jobs, &health_results).err();
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

/// The EAL makes /var/run/dpdk/PREFIX even when it writes nothing into it; remove it
/// if it is empty (another process using the same prefix keeps it non-empty).
fn remove_runtime_dir(cfg: &Config) {
    let prefix = cfg.eal.file_prefix.as_deref().unwrap_or("rte");
    let _ = std::fs::remove_dir(format!("/var/run/dpdk/{prefix}"));
}
