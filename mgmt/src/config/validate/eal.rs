//! The EAL section: cores, memory, packet pool.

use super::{invalid, is_name};
use crate::config::error::{FieldPath, Invalid};
use crate::config::model::*;

/// The EAL section as the runtime takes it: the cores parsed, the rest checked.
pub(super) fn validate_eal(e: EalConfig, path: &FieldPath) -> Result<Eal, Invalid> {
    if e.worker_cpus.is_empty() {
        return Err(invalid(
            path.key("worker_cpus"),
            "at least one worker is required (zero workers given)",
        ));
    }
    const MAX_CPU: u32 = 1023;
    if e.main_cpu > MAX_CPU {
        return Err(invalid(path.key("main_cpu"), "CPU id above 1023"));
    }
    for (i, c) in e.worker_cpus.iter().enumerate() {
        if *c > MAX_CPU {
            return Err(invalid(
                path.key("worker_cpus").index(i),
                "CPU id above 1023",
            ));
        }
    }
    if e.worker_cpus.len() > 127 {
        return Err(invalid(path.key("worker_cpus"), "at most 127 workers"));
    }
    if e.memory_mb < 64 {
        return Err(invalid(path.key("memory_mb"), "at least 64 MiB is needed"));
    }
    if e.idle_sleep_us > 100_000 {
        return Err(invalid(path.key("idle_sleep_us"), "at most 100000 (0.1 s)"));
    }
    if e.mbufs < 1024 {
        return Err(invalid(path.key("mbufs"), "at least 1024 mbufs are needed"));
    }
    if let Some(p) = &e.file_prefix {
        if !is_name(p) {
            return Err(invalid(
                path.key("file_prefix"),
                "use letters, digits, '-' and '_' only",
            ));
        }
    }
    Ok(Eal {
        main_cpu: e.main_cpu,
        worker_cpus: e.worker_cpus,
        hugepages: e.hugepages,
        memory_mb: e.memory_mb,
        file_prefix: e.file_prefix,
        mbufs: e.mbufs,
        log_level: e.log_level,
        extra_args: e.extra_args,
        idle_sleep_us: e.idle_sleep_us,
    })
}
