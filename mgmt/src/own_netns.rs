//! A network namespace of a test's own: the test runs on a thread moved into a
//! new one (a network namespace belongs to a thread, not the process), whose
//! loopback is up; whatever it makes there goes with the thread.

/// Runs `test` on a thread in a new network namespace whose loopback is up.
pub(crate) fn run_in_own_netns(test: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) with a flag only; it moves this thread alone.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare: {}", std::io::Error::last_os_error());
        ip(&["link", "set", "lo", "up"]);
        test();
    })
    .join()
    .expect("the test thread");
}

/// Runs `ip ARGS` in the calling thread's namespace (a child process runs in
/// its parent thread's namespaces) and returns what it printed.
pub(crate) fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
