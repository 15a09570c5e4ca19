//! The keys a process draws at start (the connection table's hash and the RSS
//! key it gives devices) differ from one process to the next: a restart, or the
//! other appliance of a pair, hashes flows to table slots and queues that an
//! attacker who studied one process cannot predict. The test runs this binary
//! twice more, each printing its keys.

use dataplane::lb::rss_key;
use dataplane::lb::table_hash::TableHasher;
use std::process::Command;

const CHILD: &str = "WEIR_PRINT_KEYS";

/// In a child: this process's keys, one line.
fn keys_line() -> String {
    format!(
        "keys: rss {:02x?} table {:?}",
        rss_key::process(),
        TableHasher::process()
    )
}

/// Runs this test in a new process, which prints its keys and stops.
fn keys_of_a_new_process() -> String {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "each_process_draws_its_own_keys", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("run the test binary");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("keys: "))
        .expect("a keys line")
        .to_string()
}

#[test]
fn each_process_draws_its_own_keys() {
    if std::env::var_os(CHILD).is_some() {
        println!("{}", keys_line());
        return;
    }
    let (a, b) = (keys_of_a_new_process(), keys_of_a_new_process());
    let published = format!("{:02x?}", rss_key::PUBLISHED);
    for line in [&a, &b] {
        assert!(!line.contains(&published), "{line}");
        assert!(
            !line.contains(&format!("{:?}", TableHasher::PUBLISHED)),
            "{line}"
        );
    }
    // Both keys differ between the two processes.
    let split = |l: &str| {
        let (rss, table) = l.split_once(" table ").unwrap();
        (rss.to_string(), table.to_string())
    };
    let ((rss_a, table_a), (rss_b, table_b)) = (split(&a), split(&b));
    assert_ne!(rss_a, rss_b);
    assert_ne!(table_a, table_b);
    // And from this process's.
    assert_ne!(keys_line(), a);
}
