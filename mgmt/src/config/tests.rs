use super::*;
use std::path::Path;

const EXAMPLE: &str = include_str!("../../../examples/weir.toml");

fn check(src: &str) -> Result<Config, ConfigError> {
    parse(src, Path::new("weir.toml"))
}

/// Replaces the first occurrence of `from` in the example with `to`.
fn example_with(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "example lacks {from:?}");
    EXAMPLE.replacen(from, to, 1)
}

fn line_containing(src: &str, needle: &str) -> usize {
    src.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn example_is_valid() {
    let c = check(EXAMPLE).unwrap();
    assert_eq!(c.workers(), 1);
    assert_eq!(c.ports.len(), 1);
    let p = &c.ports[0];
    assert_eq!(p.device.dpdk_name(), "net_af_packet0");
    assert_eq!(p.ipv4[0].to_string(), "198.18.0.1/24");
    assert_eq!(p.ipv6[0].to_string(), "2001:db8::1/64");
    assert_eq!(p.host_interface.as_deref(), Some("weir0"));
}

#[test]
fn unknown_key_names_key_and_line() {
    let src = example_with(
        "promiscuous = false",
        "promiscuous = false\ncolour = \"blue\"",
    );
    let e = check(&src).unwrap_err();
    assert!(e.message.contains("colour"), "{e}");
    assert_eq!(e.line, Some(line_containing(&src, "colour")));
    assert!(e.to_string().starts_with("weir.toml:"), "{e}");
}

#[test]
fn bad_address_names_field_and_line() {
    let src = example_with("\"198.18.0.1/24\"", "\"198.18.0.300/24\"");
    let e = check(&src).unwrap_err();
    assert_eq!(e.field, "port[0].ipv4[0]");
    assert_eq!(e.line, Some(line_containing(&src, "198.18.0.300")));
    assert!(e.message.contains("not an IPv4 address"), "{e}");
}

#[test]
fn bad_ipv6_address() {
    let src = example_with("\"2001:db8::1/64\"", "\"2001:db8::zz/64\"");
    assert_eq!(check(&src).unwrap_err().field, "port[0].ipv6[0]");
}

#[test]
fn zero_workers() {
    let src = example_with("worker_cpus = [1]", "worker_cpus = []");
    let e = check(&src).unwrap_err();
    assert_eq!(e.field, "eal.worker_cpus");
    assert_eq!(e.line, Some(line_containing(&src, "worker_cpus = []")));
    assert!(e.message.contains("zero workers"));
    let src = example_with("workers = 1", "workers = 0");
    assert_eq!(check(&src).unwrap_err().field, "port[0].workers");
}

#[test]
fn missing_port() {
    let cut = EXAMPLE.find("[[port]]").unwrap();
    let e = check(&EXAMPLE[..cut]).unwrap_err();
    assert_eq!(e.field, "port");
    assert!(e.message.contains("[[port]]"));
}

#[test]
fn missing_device() {
    let src = example_with("device = \"net_af_packet0,iface=wan0,qpairs=1\"", "");
    let e = check(&src).unwrap_err();
    assert_eq!(e.field, "port[0].device");
    assert_eq!(e.line, Some(line_containing(&src, "[[port]]")));
}

#[test]
fn duplicates_and_ranges() {
    let two = format!("{EXAMPLE}\n[[port]]\nname = \"wan\"\ndevice = \"net_tap9\"\n");
    assert_eq!(check(&two).unwrap_err().field, "port[1].name");
    let two = format!(
        "{EXAMPLE}\n[[port]]\nname = \"lan\"\ndevice = \"net_tap9\"\nipv4 = [\"198.18.0.1/24\"]\n"
    );
    assert_eq!(check(&two).unwrap_err().field, "port[1].ipv4[0]");
    assert_eq!(
        check(&example_with("mtu = 1500", "mtu = 20"))
            .unwrap_err()
            .field,
        "port[0].mtu"
    );
    assert_eq!(
        check(&example_with("rx_desc = 1024", "rx_desc = 1000"))
            .unwrap_err()
            .field,
        "port[0].rx_desc"
    );
    assert_eq!(
        check(&example_with(
            "device = \"net_af_packet0",
            "device = \"af_packet0"
        ))
        .unwrap_err()
        .field,
        "port[0].device"
    );
    assert_eq!(
        check(&example_with(
            "tcp_idle_reclaim = 300",
            "tcp_idle_reclaim = 90000"
        ))
        .unwrap_err()
        .field,
        "conn_table.tcp_idle_reclaim"
    );
    assert!(check(&example_with(
        "tcp_idle_reclaim = 300",
        "tcp_idle_reclaim = 0"
    ))
    .is_ok());
    // DPDK 22.11's af_packet reads frame i at i frame sizes into its ring: a
    // block with room left after its frames would make it read garbage.
    for bad in [
        "qpairs=1,framesz=3000",
        "qpairs=1,framesz=9088,blocksz=12288",
    ] {
        let e = check(&example_with("qpairs=1", bad)).unwrap_err();
        assert_eq!(e.field, "port[0].device");
        assert!(e.message.contains("must be a multiple of framesz"), "{e}");
    }
    assert!(check(&example_with("qpairs=1", "qpairs=1,framesz=2048")).is_ok());
    // A frame size that cannot hold an MTU-sized frame.
    let small =
        example_with("qpairs=1", "qpairs=1,framesz=2048").replace("mtu = 1500", "mtu = 9000");
    let e = check(&small).unwrap_err();
    assert_eq!(e.field, "port[0].device");
    assert!(e.message.contains("mtu 9000 needs 9018"), "{e}");
    assert!(check(&example_with(
        "qpairs=1",
        "qpairs=1,framesz=8192,blocksz=16384"
    ))
    .is_ok());
    assert_eq!(
        check(&example_with(
            "host_interface = \"weir0\"",
            "host_interface = \"a-very-long-interface\""
        ))
        .unwrap_err()
        .field,
        "port[0].host_interface"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let src = example_with("mtu = 1500", "mtu = = 1500");
    let e = check(&src).unwrap_err();
    assert_eq!(e.line, Some(line_containing(&src, "mtu = =")));
}

#[test]
fn wrong_type_is_an_error() {
    let src = example_with("mtu = 1500", "mtu = \"big\"");
    let e = check(&src).unwrap_err();
    assert_eq!(e.line, Some(line_containing(&src, "mtu = \"big\"")));
}

/// The dataplane's fast path relies on this: no address is both the
/// appliance's own and a VIP or a FullNAT local address.
#[test]
fn a_vip_or_local_address_that_is_the_ports_own_is_refused() {
    let cases = [
        (
            "vip = \"198.18.0.100\"",
            "vip = \"198.18.0.1\"",
            "service[0].vip",
        ),
        (
            "vip = \"198.18.0.100\"",
            "vip = \"198.18.0.2\"",
            "service[0].vip",
        ),
        (
            "vip = \"2001:db8::100\"",
            "vip = \"2001:db8::1\"",
            "service[1].vip",
        ),
        (
            "local_ipv4 = [\"198.18.0.2\"]",
            "local_ipv4 = [\"198.18.0.1\"]",
            "port[0].local_ipv4[0]",
        ),
        (
            "local_ipv6 = [\"2001:db8::2\"]",
            "local_ipv6 = [\"2001:db8::1\"]",
            "port[0].local_ipv6[0]",
        ),
    ];
    for (from, to, field) in cases {
        assert_eq!(
            check(&example_with(from, to)).unwrap_err().field,
            field,
            "{to}"
        );
    }
}
