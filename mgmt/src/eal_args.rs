//! Builds the EAL argument list from the configuration.

use crate::config::model::{Config, Device};

/// The DPDK device name of a port's host interface (a TAP vdev).
pub fn host_tap_name(port_index: usize) -> String {
    format!("net_tap_weir{port_index}")
}

/// EAL arguments: lcores pinned as configured (lcore 0 is the management core,
/// lcores 1..=N the workers), memory, runtime files, and exactly the devices the
/// configuration names: `--no-pci` unless PCI devices are listed, so the EAL never
/// touches a NIC it was not given.
pub fn build(cfg: &Config) -> Vec<String> {
    let mut a = vec!["weir".to_string()];
    let mut lcores = format!("0@{}", cfg.eal.main_cpu);
    for (i, cpu) in cfg.eal.worker_cpus.iter().enumerate() {
        lcores.push_str(&format!(",{}@{}", i + 1, cpu));
    }
    a.extend(["--lcores".into(), lcores, "--main-lcore".into(), "0".into()]);
    if !cfg.eal.hugepages {
        a.push("--no-huge".into());
    }
    a.extend(["-m".into(), cfg.eal.memory_mb.to_string()]);
    // No runtime files unless a prefix is asked for. --in-memory implies
    // --legacy-mem's opposite and cannot go with --no-huge, which makes no hugepage
    // files anyway; --no-shconf keeps it from writing its shared config.
    match (&cfg.eal.file_prefix, cfg.eal.hugepages) {
        (Some(p), _) => a.extend(["--file-prefix".into(), p.clone(), "--huge-unlink".into()]),
        (None, true) => a.push("--in-memory".into()),
        (None, false) => a.push("--no-shconf".into()),
    }
    a.push("--no-telemetry".into());
    if let Some(l) = &cfg.eal.log_level {
        a.push(format!("--log-level={l}"));
    }
    let mut any_pci = false;
    for (i, p) in cfg.ports.iter().enumerate() {
        match &p.device {
            Device::Vdev { .. } => a.extend([
                "--vdev".into(),
                p.device.eal_arg(p.mtu, p.rx_desc.max(p.tx_desc)),
            ]),
            Device::Pci(addr) => {
                any_pci = true;
                a.extend(["-a".into(), addr.clone()]);
            }
        }
        if let Some(h) = &p.host_interface {
            a.extend(["--vdev".into(), format!("{},iface={h}", host_tap_name(i))]);
        }
    }
    if !any_pci {
        a.push("--no-pci".into());
    }
    a.extend(cfg.eal.extra_args.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn example_args() {
        let src = include_str!("../../examples/weir.toml");
        let cfg = config::parse(src, std::path::Path::new("x")).unwrap();
        let a = build(&cfg).join(" ");
        assert!(a.contains("--lcores 0@0,1@1 --main-lcore 0"), "{a}");
        assert!(a.contains("--no-huge -m 256 --no-shconf"), "{a}");
        // af_packet gets frames with room for what its kernel reassembles.
        assert!(
            a.contains("--vdev net_af_packet0,iface=wan0,qpairs=1,framesz=8192,blocksz=8192,framecnt=1024 "),
            "{a}"
        );
        assert!(a.contains("--vdev net_tap_weir0,iface=weir0"), "{a}");
        assert!(a.ends_with("--no-pci"), "{a}");
        let pci = src
            .replace(
                "device = \"net_af_packet0,iface=wan0,qpairs=1\"",
                "pci = \"0000:03:00.0\"",
            )
            .replace("hugepages = false", "hugepages = true")
            .replace("# file_prefix = \"weir\"", "file_prefix = \"w1\"");
        let cfg = config::parse(&pci, std::path::Path::new("x")).unwrap();
        let a = build(&cfg).join(" ");
        assert!(a.contains("-a 0000:03:00.0"), "{a}");
        assert!(!a.contains("--no-pci") && !a.contains("--no-huge"), "{a}");
        assert!(a.contains("--file-prefix w1 --huge-unlink"), "{a}");
    }

    #[test]
    fn af_packet_ports_take_reassembled_datagrams_up_to_their_frame_size() {
        let vdev = |args: &str| Device::Vdev {
            args: args.into(),
            dpdk_name: args.split(',').next().unwrap().into(),
        };
        let af = vdev("net_af_packet1,iface=eth1,qpairs=2");
        assert_eq!(
            af.eal_arg(1500, 1024),
            "net_af_packet1,iface=eth1,qpairs=2,framesz=8192,blocksz=8192,framecnt=1024"
        );
        assert_eq!(
            (af.reassembled_len(1500), af.mbuf_data_len(1500)),
            (Some(8126), Some(8160))
        );
        // A jumbo MTU: a frame of 9000 bytes, its Ethernet header, a VLAN tag and
        // the kernel's header, in whole pages, one frame per block.
        assert_eq!(
            af.eal_arg(9000, 256),
            "net_af_packet1,iface=eth1,qpairs=2,framesz=12288,blocksz=12288,framecnt=256"
        );
        assert_eq!(
            (af.reassembled_len(9000), af.mbuf_data_len(9000)),
            (Some(12222), Some(12256))
        );
        // The operator's frame size stands.
        let own = vdev("net_af_packet0,iface=eth1,framesz=8192,blocksz=8192,framecnt=64");
        assert_eq!(
            own.eal_arg(9000, 1024),
            "net_af_packet0,iface=eth1,framesz=8192,blocksz=8192,framecnt=64"
        );
        assert_eq!(own.reassembled_len(1500), Some(8126));
        assert_eq!(af.kernel_iface(), Some("eth1"));
        assert_eq!(
            vdev("net_af_xdp0,start_queue=0,iface=eth2").kernel_iface(),
            Some("eth2")
        );
        assert_eq!(vdev("net_tap0").kernel_iface(), None);
        // Other devices hand fragments over as they are.
        let pcap = vdev("net_pcap0,iface=eth1,phy_mac=1");
        assert_eq!(
            (
                pcap.eal_arg(9000, 1024).as_str(),
                pcap.reassembled_len(9000)
            ),
            ("net_pcap0,iface=eth1,phy_mac=1", None)
        );
        assert_eq!(pcap.mbuf_data_len(9000), None);
        let pci = Device::Pci("0000:03:00.0".into());
        assert_eq!(
            (pci.eal_arg(9000, 1024).as_str(), pci.reassembled_len(9000)),
            ("0000:03:00.0", None)
        );
    }
}
