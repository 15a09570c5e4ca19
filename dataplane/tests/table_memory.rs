//! What a connection table is said to take (`ConnTable::memory_for`, which
//! `weir run` checks against the machine's free memory) against what creating
//! one adds to this process's resident memory. A test binary of its own, so
//! that no other test allocates meanwhile.

use dataplane::lb::conn_table::ConnTable;
use dataplane::lb::flow_index::FlowIndex;
use dataplane::lb::timer_wheel::TimerWheel;

/// Resident bytes of this process.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

#[test]
fn a_table_takes_the_memory_it_is_said_to() {
    // Tables big enough that the heap's own resident slack does not count.
    for capacity in [1 << 20, 3_000_000] {
        let before = resident();
        let table = ConnTable::new(capacity, 0);
        let grown = resident() - before;
        let said = ConnTable::memory_for(capacity);
        let ratio = grown as f64 / said as f64;
        assert!(
            (0.95..1.05).contains(&ratio),
            "{capacity} entries: {grown} bytes resident, {said} said"
        );
        drop(table);
    }
    // And the parts it adds up, each on its own: the index of both keys of
    // every entry and the timer wheel (a part said too small would hide in
    // the sum's 5%).
    for capacity in [1 << 20, 3_000_000] {
        let before = resident();
        let index = FlowIndex::with_capacity(capacity * 2);
        let grown = resident() - before;
        let said = FlowIndex::memory_for(capacity * 2);
        let ratio = grown as f64 / said as f64;
        assert!(
            (0.95..1.05).contains(&ratio),
            "index for {capacity}: {grown} bytes resident, {said} said"
        );
        drop(index);
        let before = resident();
        let wheel = TimerWheel::new(capacity, 0);
        let grown = resident() - before;
        let said = TimerWheel::memory_for(capacity);
        let ratio = grown as f64 / said as f64;
        assert!(
            (0.95..1.05).contains(&ratio),
            "wheel for {capacity}: {grown} bytes resident, {said} said"
        );
        drop(wheel);
    }
}
