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

/// Makes `what` with `make` and checks that the process's resident memory
/// grew by `said` bytes, within 5%.
fn takes_what_it_says<T>(what: &str, said: usize, make: impl FnOnce() -> T) {
    let before = resident();
    let made = make();
    let grown = resident() - before;
    let ratio = grown as f64 / said as f64;
    assert!(
        (0.95..1.05).contains(&ratio),
        "{what}: {grown} bytes resident, {said} said"
    );
    drop(made);
}

#[test]
fn a_table_takes_the_memory_it_is_said_to() {
    // Tables big enough that the heap's own resident slack does not count.
    for capacity in [1 << 20, 3_000_000] {
        takes_what_it_says(
            &format!("{capacity} entries"),
            ConnTable::memory_for(capacity),
            || ConnTable::new(capacity, 0),
        );
        // And the parts it adds up, each on its own: the index of both keys
        // of every entry and the timer wheel (a part said too small would
        // hide in the sum's 5%).
        takes_what_it_says(
            &format!("index for {capacity}"),
            FlowIndex::memory_for(capacity * 2),
            || FlowIndex::with_capacity(capacity * 2),
        );
        takes_what_it_says(
            &format!("wheel for {capacity}"),
            TimerWheel::memory_for(capacity),
            || TimerWheel::new(capacity, 0),
        );
    }
}
