//! A throwaway EAL for tests and tools: one lcore, 4 KiB pages, no PCI, no
//! shared configuration, a file prefix of its own, the virtual devices asked
//! for. Dropping it cleans the EAL up and removes its runtime directory (and
//! the `dpdk` one above it when nothing else is there), also when a test fails
//! and unwinds. Root is not needed.

use super::{DpdkError, Eal};
use std::path::PathBuf;

pub struct ScratchEal {
    eal: Option<Eal>,
    runtime_dir: PathBuf,
}

impl ScratchEal {
    /// Starts the EAL with `memory_mb` of memory and `vdevs`; the file prefix is
    /// `name` and the process id. Once per process, as any EAL.
    pub fn start(name: &str, memory_mb: u32, vdevs: &[&str]) -> Result<ScratchEal, DpdkError> {
        let prefix = format!("{name}-{}", std::process::id());
        let memory = memory_mb.to_string();
        let mut args: Vec<String> = [
            name,
            "-l",
            "0",
            "--no-huge",
            "-m",
            &memory,
            "--no-shconf",
            "--file-prefix",
            &prefix,
            "--no-telemetry",
            "--no-pci",
            "--log-level=warning",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for v in vdevs {
            args.push("--vdev".into());
            args.push(v.to_string());
        }
        let eal = Eal::init(&args)?;
        Ok(ScratchEal {
            runtime_dir: eal.runtime_dir(),
            eal: Some(eal),
        })
    }

    pub fn eal(&self) -> &Eal {
        self.eal.as_ref().expect("held until drop")
    }
}

impl Drop for ScratchEal {
    fn drop(&mut self) {
        drop(self.eal.take());
        // With --no-shconf the directory is empty, but made.
        let _ = std::fs::remove_dir(&self.runtime_dir);
        if let Some(parent) = self.runtime_dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
