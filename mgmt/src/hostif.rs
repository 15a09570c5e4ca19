//! Kernel-side setup of a host interface (the TAP device DPDK created): MTU, the
//! appliance's addresses, link up. IPv6 duplicate address detection, autoconf and
//! router advertisements are turned off first: the dataplane owns the addresses and
//! answers neighbour discovery for them.

use crate::config::cidr::{Cidr4, Cidr6};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn sysctl_ipv6(ifname: &str, key: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{ifname}/{key}"), value)
}

fn socket(family: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the fd is owned by the returned OwnedFd.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let bytes = c.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(r)
}

fn ioctl(fd: &OwnedFd, req: libc::c_ulong, arg: *mut libc::c_void, what: &str) -> io::Result<()> {
    // SAFETY: arg points at a properly initialised struct for `req`.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn sockaddr_in(a: std::net::Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the ioctl
    // interface expects an IPv4 address.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// An ifreq holding `ifname`'s flags.
fn flags(s: &OwnedFd, ifname: &str) -> io::Result<libc::ifreq> {
    let mut r = ifreq(ifname)?;
    ioctl(
        s,
        libc::SIOCGIFFLAGS,
        &mut r as *mut _ as *mut _,
        "get flags",
    )?;
    Ok(r)
}

/// Whether a kernel interface is up with its carrier on (a veth whose peer is
/// down, a cable pulled: not running).
pub fn link_up(ifname: &str) -> io::Result<bool> {
    let r = flags(&socket(libc::AF_INET)?, ifname)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let f = unsafe { r.ifr_ifru.ifru_flags } as libc::c_int;
    Ok(f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0)
}

/// Sets a kernel interface's MTU.
pub fn set_mtu(ifname: &str, mtu: u16) -> io::Result<()> {
    let s4 = socket(libc::AF_INET)?;
    let mut r = ifreq(ifname)?;
    r.ifr_ifru.ifru_mtu = mtu as i32;
    ioctl(&s4, libc::SIOCSIFMTU, &mut r as *mut _ as *mut _, "set MTU")
}

/// Configures `ifname` in the calling process's network namespace.
pub fn configure(ifname: &str, mtu: u16, ipv4: &[Cidr4], ipv6: &[Cidr6]) -> io::Result<()> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("host interface {ifname}: {e}"));
    for key in ["accept_dad", "autoconf", "accept_ra"] {
        // A kernel without IPv6 has no such files; only an error if IPv6 is wanted.
        if let Err(e) = sysctl_ipv6(ifname, key, "0") {
            if !ipv6.is_empty() {
                return Err(ctx(io::Error::new(e.kind(), format!("ipv6 {key}: {e}"))));
            }
        }
    }
    set_mtu(ifname, mtu).map_err(ctx)?;
    let s4 = socket(libc::AF_INET).map_err(ctx)?;

    for (i, a) in ipv4.iter().enumerate() {
        // Further IPv4 addresses go on alias labels (weir0:1, ...).
        let label = if i == 0 {
            ifname.to_string()
        } else {
            format!("{ifname}:{i}")
        };
        let mut r = ifreq(&label).map_err(ctx)?;
        r.ifr_ifru.ifru_addr = sockaddr_in(a.addr);
        ioctl(
            &s4,
            libc::SIOCSIFADDR,
            &mut r as *mut _ as *mut _,
            "add IPv4 address",
        )
        .map_err(ctx)?;
        let mut r = ifreq(&label).map_err(ctx)?;
        r.ifr_ifru.ifru_netmask = sockaddr_in(a.netmask());
        ioctl(
            &s4,
            libc::SIOCSIFNETMASK,
            &mut r as *mut _ as *mut _,
            "set netmask",
        )
        .map_err(ctx)?;
    }

    if !ipv6.is_empty() {
        let c = CString::new(ifname).map_err(|_| ctx(io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: c is a valid C string.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(ctx(io::Error::last_os_error()));
        }
        let s6 = socket(libc::AF_INET6).map_err(ctx)?;
        for a in ipv6 {
            let mut r = libc::in6_ifreq {
                ifr6_addr: libc::in6_addr {
                    s6_addr: a.addr.octets(),
                },
                ifr6_prefixlen: a.prefix as u32,
                ifr6_ifindex: index as i32,
            };
            ioctl(
                &s6,
                libc::SIOCSIFADDR,
                &mut r as *mut _ as *mut _,
                "add IPv6 address",
            )
            .map_err(ctx)?;
        }
    }

    let mut r = flags(&s4, ifname).map_err(ctx)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { r.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    ioctl(
        &s4,
        libc::SIOCSIFFLAGS,
        &mut r as *mut _ as *mut _,
        "set up",
    )
    .map_err(ctx)?;
    Ok(())
}

/// For a DPDK port that reads a kernel interface through a socket (af_packet,
/// af_xdp), the kernel still sees every frame on that interface too. With the
/// appliance's addresses on the host interface in the same namespace, the kernel
/// would answer ARP and ICMP a second time (Linux answers for any local address on
/// any interface). Make the kernel ignore IPv4 on it; IPv6 is disabled outright.
pub fn quiet_kernel_on(ifname: &str) -> io::Result<()> {
    let ctx = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("interface {ifname}: {what}: {e}"))
    };
    let v4 = |key: &str, value: &str| {
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"), value)
    };
    v4("arp_ignore", "8").map_err(|e| ctx("arp_ignore", e))?;
    // Strict reverse-path filtering drops IPv4 for our addresses arriving here,
    // since the route back to any sender goes through the host interface.
    v4("rp_filter", "1").map_err(|e| ctx("rp_filter", e))?;
    // Absent when the kernel has no IPv6; nothing to quieten then.
    let _ = sysctl_ipv6(ifname, "disable_ipv6", "1");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::own_netns::{ip, run_in_own_netns};

    fn sysctl(path: &str) -> String {
        std::fs::read_to_string(format!("/proc/sys/net/{path}"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `ip -j addr show dev IF`, as JSON.
    fn addr_show(ifname: &str) -> serde_json::Value {
        let text = ip(&["-j", "addr", "show", "dev", ifname]);
        serde_json::from_str::<serde_json::Value>(&text).unwrap()[0].clone()
    }

    #[test]
    fn configure_gives_the_kernel_the_addresses_mtu_and_link() {
        run_in_own_netns(|| {
            ip(&["link", "add", "wh0", "type", "veth", "peer", "name", "wh1"]);
            let v4: Vec<Cidr4> = vec![
                "198.18.5.1/24".parse().unwrap(),
                "198.18.6.1/28".parse().unwrap(),
            ];
            let v6: Vec<Cidr6> = vec!["2001:db8:5::1/64".parse().unwrap()];
            configure("wh0", 1400, &v4, &v6).unwrap();
            let a = addr_show("wh0");
            assert_eq!(a["mtu"], 1400);
            assert!(a["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
            let mut got: Vec<String> = a["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["scope"] == "global")
                .map(|i| {
                    format!(
                        "{}/{} {}",
                        i["local"].as_str().unwrap(),
                        i["prefixlen"],
                        i["label"].as_str().unwrap_or("-")
                    )
                })
                .collect();
            got.sort();
            assert_eq!(
                got,
                [
                    "198.18.5.1/24 wh0",
                    "198.18.6.1/28 wh0:1",
                    "2001:db8:5::1/64 -"
                ]
            );
            // The dataplane answers neighbour discovery: the kernel does no DAD,
            // autoconf or router advertisements there.
            for key in ["accept_dad", "autoconf", "accept_ra"] {
                assert_eq!(sysctl(&format!("ipv6/conf/wh0/{key}")), "0", "{key}");
            }
            // Down when its peer is down (no carrier), up with it.
            assert!(!link_up("wh0").unwrap());
            ip(&["link", "set", "wh1", "up"]);
            // The kernel turns the carrier on a moment later (link watch).
            let by = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !link_up("wh0").unwrap() {
                assert!(std::time::Instant::now() < by, "wh0 never came up");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            ip(&["link", "set", "wh0", "down"]);
            assert!(!link_up("wh0").unwrap());
            assert!(link_up("lo").unwrap());
        });
    }

    #[test]
    fn errors_name_the_interface_and_the_step() {
        run_in_own_netns(|| {
            let e = configure("wh-none", 1500, &[], &[]).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("host interface wh-none: set MTU: "),
                "{e}"
            );
            // With IPv6 wanted, the missing IPv6 settings are the first error.
            let v6: Vec<Cidr6> = vec!["2001:db8:5::1/64".parse().unwrap()];
            let e = configure("wh-none", 1500, &[], &v6).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("host interface wh-none: ipv6 accept_dad: "),
                "{e}"
            );
            assert!(link_up("wh-none").is_err());
            let e = set_mtu("wh-none", 1500).unwrap_err();
            assert!(e.to_string().starts_with("set MTU: "), "{e}");
            assert!(ifreq("a-name-longer-than-15").is_err());
            assert!(ifreq("fifteen-chars-x").is_ok());
            let e = quiet_kernel_on("wh-none").unwrap_err();
            assert!(
                e.to_string().starts_with("interface wh-none: arp_ignore: "),
                "{e}"
            );
        });
    }

    #[test]
    fn set_mtu_and_a_quiet_kernel_on_the_port_interface() {
        run_in_own_netns(|| {
            ip(&["link", "add", "wq0", "type", "veth", "peer", "name", "wq1"]);
            set_mtu("wq0", 9000).unwrap();
            assert_eq!(addr_show("wq0")["mtu"], 9000);
            quiet_kernel_on("wq0").unwrap();
            assert_eq!(sysctl("ipv4/conf/wq0/arp_ignore"), "8");
            assert_eq!(sysctl("ipv4/conf/wq0/rp_filter"), "1");
            assert_eq!(sysctl("ipv6/conf/wq0/disable_ipv6"), "1");
            // The peer is left as it was.
            assert_eq!(sysctl("ipv4/conf/wq1/arp_ignore"), "0");
        });
    }
}
