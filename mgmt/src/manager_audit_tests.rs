//! The audit log: one line per change, who asked, what it was before and after;
//! reopened by path after a log rotation.

use crate::manager::Who;
use crate::manager_tests::{manager, EXAMPLE};
use crate::scratch_dir::ScratchDir;
use std::path::Path;

fn with_audit_log(path: &Path) -> String {
    EXAMPLE.replacen(
        "# audit_log = \"/var/log/weir-audit.log\"",
        &format!("audit_log = {:?}", path.to_str().unwrap()),
        1,
    )
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

const ADMIN: Who = Who {
    uid: 1000,
    pid: 4242,
    via: "admin",
};

#[test]
fn each_change_is_one_line_naming_who_what_before_and_after() {
    let dir = ScratchDir::new("audit-line");
    let path = dir.join("audit.log");
    std::fs::write(&path, "an earlier line\n").unwrap();
    let (mut m, _rx) = manager(&with_audit_log(&path));
    m.audit(&ADMIN, "set weight web/b1", "1", "7");
    let l = lines(&path);
    assert_eq!(l.len(), 2, "appended: {l:?}");
    assert_eq!(l[0], "an earlier line");
    // "<seconds>.<millis> audit: ..."
    let (stamp, rest) = l[1].split_once(' ').unwrap();
    let (secs, millis) = stamp.split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_700_000_000 && millis.len() == 3);
    assert_eq!(
        rest,
        "audit: admin uid=1000 pid=4242: set weight web/b1: before \"1\" after \"7\""
    );
}

#[test]
fn a_missing_log_is_created_and_one_that_cannot_be_opened_is_skipped() {
    let dir = ScratchDir::new("audit-open");
    let path = dir.join("new.log");
    let (mut m, _rx) = manager(&with_audit_log(&path));
    m.audit(&ADMIN, "maint web/b2", "ready", "maint");
    assert_eq!(lines(&path).len(), 1);
    // A path in a directory that does not exist: no log, and no failure.
    let (mut m, _rx) = manager(&with_audit_log(&dir.join("none/audit.log")));
    m.audit(&ADMIN, "maint web/b2", "ready", "maint");
    assert!(!dir.join("none").exists());
}

#[test]
fn after_a_rotation_lines_go_to_a_new_file_by_the_same_path() {
    let dir = ScratchDir::new("audit-rotate");
    let path = dir.join("audit.log");
    let rotated = dir.join("audit.log.1");
    let (mut m, _rx) = manager(&with_audit_log(&path));
    m.audit(&ADMIN, "first", "a", "b");
    std::fs::rename(&path, &rotated).unwrap();
    // Until reopened, lines follow the open file.
    m.audit(&ADMIN, "second", "b", "c");
    m.reopen_audit_log();
    m.audit(&ADMIN, "third", "c", "d");
    let what = |p: &Path| -> Vec<String> {
        lines(p)
            .iter()
            .map(|l| l.split(": ").nth(2).unwrap().to_string())
            .collect()
    };
    assert_eq!(what(&rotated), ["first", "second"]);
    assert_eq!(what(&path), ["third"]);
    // A reopen that fails (the path is now a directory) keeps the file it had.
    let rotated2 = dir.join("audit.log.2");
    std::fs::rename(&path, &rotated2).unwrap();
    std::fs::create_dir(&path).unwrap();
    m.reopen_audit_log();
    m.audit(&ADMIN, "fourth", "d", "e");
    assert_eq!(what(&rotated2), ["third", "fourth"]);
}
