//! Whether the machine has the memory the workers' connection tables take,
//! checked before the EAL starts. The tables are written in full when the
//! workers are made (`conn_table.capacity` entries each, ~180 bytes an entry),
//! so a capacity the machine cannot hold would end in the kernel's OOM killer
//! some seconds into the start, with nothing said; in a container, at its
//! cgroup's limit, long before the machine runs short.

use crate::config::model::Config;
use dataplane::lb::conn_table::ConnTable;

/// Bytes the workers' connection tables take together.
pub fn tables_need(cfg: &Config) -> u64 {
    cfg.workers() as u64 * ConnTable::memory_for(cfg.conn_table.capacity as usize) as u64
}

/// `Err` when the tables need more than this process may still take.
pub fn check(cfg: &Config) -> Result<(), String> {
    let what = (cfg.conn_table.capacity, cfg.workers());
    judge(what, tables_need(cfg), available())
}

/// `Err` when `need` bytes for tables of `(capacity, workers)` is more than
/// `available` (bytes, and where that figure comes from); `Ok` when nothing
/// could be read.
fn judge(
    (capacity, workers): (u32, usize),
    need: u64,
    available: Option<(u64, &str)>,
) -> Result<(), String> {
    match available {
        Some((free, from)) if need > free => Err(format!(
            "conn_table.capacity {capacity} with {workers} worker(s) needs {} for the \
             connection tables, and {} is available ({from}): lower conn_table.capacity \
             or the workers",
            size(need),
            size(free),
        )),
        _ => Ok(()),
    }
}

/// The memory this process may still take, and where that figure comes from:
/// the machine's `MemAvailable`, or its memory cgroup's limit less what the
/// cgroup uses, whichever is less. `None` when neither can be read.
fn available() -> Option<(u64, &'static str)> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| mem_available(&t))
        .map(|b| (b, "the machine's MemAvailable"));
    let cgroup = cgroup_room().map(|b| (b, "under the memory cgroup's limit"));
    least(machine, cgroup)
}

/// The smaller of two figures, either of which may be missing.
fn least<'a>(a: Option<(u64, &'a str)>, b: Option<(u64, &'a str)>) -> Option<(u64, &'a str)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` from the text of `/proc/meminfo`, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Room left under this process's memory cgroup limit, when it has one
/// (cgroup v2's `memory.max`, or v1's `memory.limit_in_bytes`).
fn cgroup_room() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    room_under(&own, "/sys/fs/cgroup")
}

/// Room left under the cgroup `own` (the text of `/proc/self/cgroup`) names,
/// with the cgroup file systems mounted at `root`.
fn room_under(own: &str, root: &str) -> Option<u64> {
    let read = |path: String| std::fs::read_to_string(path).ok();
    if let Some(dir) = cgroup_dir(own, true) {
        let base = format!("{root}{dir}");
        if let (Some(max), Some(used)) = (
            read(format!("{base}/memory.max")),
            read(format!("{base}/memory.current")),
        ) {
            return room(&max, &used);
        }
    }
    let dir = cgroup_dir(own, false)?;
    let base = format!("{root}/memory{dir}");
    room(
        &read(format!("{base}/memory.limit_in_bytes"))?,
        &read(format!("{base}/memory.usage_in_bytes"))?,
    )
}

/// This process's cgroup directory from `/proc/self/cgroup`: the unified
/// hierarchy's (`0::/path`) when `v2`, else the v1 memory controller's.
fn cgroup_dir(own: &str, v2: bool) -> Option<&str> {
    own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let wanted = if v2 {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        };
        wanted.then_some(path)
    })
}

/// Limit less usage; `None` for no limit ("max", or v1's near-2^63 value).
fn room(limit: &str, used: &str) -> Option<u64> {
    let limit: u64 = limit.trim().parse().ok()?;
    let used: u64 = used.trim().parse().ok()?;
    (limit < 1 << 60).then(|| limit.saturating_sub(used))
}

/// Bytes in GiB or MiB, for people.
pub fn size(bytes: u64) -> String {
    const MIB: f64 = (1 << 20) as f64;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let t = "MemTotal:       24608360 kB\nMemFree:        22000000 kB\n\
                 MemAvailable:   23000000 kB\nBuffers: 1 kB\n";
        assert_eq!(mem_available(t), Some(23_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn cgroup_directories_and_limits() {
        let v1 = "9:name=systemd:/\n4:memory:/process_api/7d43\n1:cpu:/\n0::/\n";
        assert_eq!(cgroup_dir(v1, false), Some("/process_api/7d43"));
        let v2 = "0::/system.slice/weir.service\n";
        assert_eq!(cgroup_dir(v2, true), Some("/system.slice/weir.service"));
        assert_eq!(cgroup_dir(v2, false), None);
        let both = "5:cpuacct,memory:/a\n0::/b\n";
        assert_eq!(cgroup_dir(both, false), Some("/a"));
        assert_eq!(room("4294967296\n", "1073741824\n"), Some(3 << 30));
        assert_eq!(room("max\n", "1073741824\n"), None);
        assert_eq!(room("9223372036854771712\n", "834072576\n"), None);
        assert_eq!(room("1000\n", "2000\n"), Some(0));
        // 2^60 and up is taken for "no limit".
        assert_eq!(room("1152921504606846975", "0"), Some((1 << 60) - 1));
        assert_eq!(room("1152921504606846976", "0"), None);
    }

    #[test]
    fn room_is_read_under_the_cgroup_this_process_is_in() {
        let dir = crate::scratch_dir::ScratchDir::new("memory-cgroup");
        let root = dir.join("cgroup");
        let put = |path: &str, text: &str| {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        let root_str = root.to_str().unwrap();
        // Unified hierarchy: memory.max less memory.current of its own directory.
        put("system.slice/weir.service/memory.max", "4294967296\n");
        put("system.slice/weir.service/memory.current", "1073741824\n");
        put("memory.max", "max\n");
        let v2 = "0::/system.slice/weir.service\n";
        assert_eq!(room_under(v2, root_str), Some(3 << 30));
        assert_eq!(room_under("0::/\n", root_str), None);
        // v1: the memory controller's directory, when v2 has no files there.
        put("memory/docker/ab12/memory.limit_in_bytes", "2147483648\n");
        put("memory/docker/ab12/memory.usage_in_bytes", "536870912\n");
        let v1 = "4:memory:/docker/ab12\n0::/docker/ab12\n";
        assert_eq!(room_under(v1, root_str), Some(3 << 29));
        assert_eq!(room_under("4:memory:/elsewhere\n", root_str), None);
    }

    #[test]
    fn tables_bigger_than_what_is_left_are_refused() {
        let said = judge((1 << 24, 2), 6 << 30, Some((5 << 30, "here")));
        assert_eq!(
            said.unwrap_err(),
            "conn_table.capacity 16777216 with 2 worker(s) needs 6.0 GiB for the connection \
             tables, and 5.0 GiB is available (here): lower conn_table.capacity or the workers"
        );
        assert!(judge((1 << 24, 2), 5 << 30, Some((5 << 30, "here"))).is_ok());
        assert!(judge((1 << 24, 2), 6 << 30, None).is_ok());
    }

    #[test]
    fn this_machine_says_what_is_left() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let total: u64 = meminfo
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let (free, _) = available().expect("MemAvailable or a cgroup limit");
        assert!(
            free > 64 << 20 && free <= total * 1024,
            "{free} of {total} KiB"
        );
    }

    #[test]
    fn the_least_figure_counts() {
        let (m, c) = (Some((8, "machine")), Some((5, "cgroup")));
        assert_eq!(least(m, c), c);
        assert_eq!(least(c, m), c);
        assert_eq!(least(m, None), m);
        assert_eq!(least(None, c), c);
        assert_eq!(least(None, None), None);
        // Equal figures: the machine's is named.
        assert_eq!(least(Some((5, "machine")), c), Some((5, "machine")));
    }

    #[test]
    fn every_worker_has_its_table() {
        let text = include_str!("../../examples/weir.toml")
            .replace("worker_cpus = [1]", "worker_cpus = [1, 1, 1]")
            .replace("qpairs=1", "qpairs=3")
            .replace("capacity = 65536", "capacity = 100000");
        let cfg = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(tables_need(&cfg), 3 * ConnTable::memory_for(100_000) as u64);
    }

    #[test]
    fn check_refuses_tables_this_machine_cannot_hold() {
        let text = include_str!("../../examples/weir.toml");
        let mut cfg = crate::config::parse(text, std::path::Path::new("t.toml")).unwrap();
        assert!(check(&cfg).is_ok());
        // The largest table each, and one worker more than what is left holds.
        cfg.conn_table.capacity = 16_777_216;
        let (free, _) = available().unwrap();
        let each = ConnTable::memory_for(16_777_216) as u64;
        cfg.eal.worker_cpus = vec![1; (free / each + 1) as usize];
        let e = check(&cfg).unwrap_err();
        assert!(e.starts_with("conn_table.capacity 16777216 with "), "{e}");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(size(11 << 20), "11.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }
}
