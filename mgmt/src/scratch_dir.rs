//! A directory of a test's own under the system's temporary directory, empty
//! when made and removed when dropped (the tests that write configuration
//! files and logs).

use std::path::PathBuf;

pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// `weir-<what>-<pid>`: unique to the test (`what`) and the process.
    pub(crate) fn new(what: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("weir-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
