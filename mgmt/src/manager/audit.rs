//! The audit log: who changed what, before and after, one line a change.

use super::Manager;
use crate::log;
use std::io::Write;

/// Who asked for a change (for the audit log).
#[derive(Debug, Clone)]
pub struct Who {
    pub uid: u32,
    pub pid: i32,
    pub via: &'static str,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} uid={} pid={}", self.via, self.uid, self.pid)
    }
}

impl Manager {
    /// Opens the audit log again by its path (SIGHUP, reload): after a log
    /// rotation moved the file, lines go to a new one. If that fails, they go
    /// on to the old file.
    pub fn reopen_audit_log(&mut self) {
        if let Some(f) = self.cfg.admin.audit_log.as_deref().and_then(open_audit) {
            self.audit_file = Some(f);
        }
    }

    /// Appends an audit line and logs it.
    pub fn audit(&mut self, who: &Who, what: &str, before: &str, after: &str) {
        let line = format!(
            "{} audit: {who}: {what}: before {before:?} after {after:?}",
            crate::log::stamp()
        );
        log!("{}", line.split_once(' ').map_or(line.as_str(), |x| x.1));
        if let Some(f) = self.audit_file.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The audit log, opened to append (created if missing); `None` after logging
/// why it could not be.
pub(super) fn open_audit(path: &str) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| log!("audit log {path}: {e}"))
        .ok()
}
