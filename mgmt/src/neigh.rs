//! Resolves backend MAC addresses from the management core: ARP requests and IPv6
//! neighbour solicitations are written into the host interface with a packet socket
//! (the dataplane carries them to the wire), and the replies, which the dataplane
//! hands to the host interface because they are addressed to the appliance, are read
//! back from the same socket. Entries are refreshed while they answer and forgotten
//! when they stop.

mod frames;

use crate::neigh_targets::Targets;
use frames::{announcement, arp_frame, parse_reply, solicitation};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// One host interface's resolver.
pub struct Resolver {
    fd: OwnedFd,
    ifindex: i32,
    mac: [u8; 6],
    src4: Option<Ipv4Addr>,
    src6: Option<Ipv6Addr>,
    targets: Targets,
    /// Which addresses belong to this interface's networks.
    covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>>,
}

fn htons(v: u16) -> u16 {
    v.to_be()
}

impl Resolver {
    /// Opens a packet socket on `ifname` (the host interface, in this namespace).
    pub fn open(
        ifname: &str,
        mac: [u8; 6],
        src4: Option<Ipv4Addr>,
        src6: Option<Ipv6Addr>,
        targets: impl IntoIterator<Item = IpAddr>,
        covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>>,
    ) -> io::Result<Resolver> {
        let c = std::ffi::CString::new(ifname).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: c is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                htons(libc::ETH_P_ALL as u16) as i32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is fresh and valid.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = htons(libc::ETH_P_ALL as u16);
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut all = Targets::default();
        all.set(targets);
        Ok(Resolver {
            fd,
            ifindex,
            mac,
            src4,
            src6,
            targets: all,
            covers,
        })
    }

    /// Sends the requests that are due (see [`neigh_targets`](crate::neigh_targets))
    /// and reads every reply waiting. Returns true when a MAC changed (appeared,
    /// moved, or was forgotten).
    pub fn poll(&mut self, now: Instant) -> bool {
        let mut changed = self.read_replies(now);
        changed |= self.targets.forget_stale(now);
        for addr in self.targets.due(now) {
            let _ = self.ask(addr);
        }
        changed
    }

    /// Resolves exactly these addresses from now on (those on this interface's
    /// networks; the others are ignored by the caller's choice of resolver).
    pub fn set_targets(&mut self, addrs: &[IpAddr]) {
        let covers = &self.covers;
        self.targets.set(
            addrs
                .iter()
                .copied()
                .filter(|a| covers.iter().any(|f| f(*a))),
        );
    }

    /// Resolved MACs.
    pub fn table(&self) -> impl Iterator<Item = (IpAddr, [u8; 6])> + '_ {
        self.targets.table()
    }

    /// Tells this interface's network that `addr` is at this port's MAC, as a
    /// host does when it comes up or takes an address over: a gratuitous ARP
    /// (a broadcast request whose sender and target are `addr`), or an
    /// unsolicited neighbour advertisement to all nodes with the override flag
    /// (RFC 4861 7.2.6). Routers, clients and backends holding an older MAC for
    /// it take the new one at once. Returns false for an address outside this
    /// interface's networks (not sent).
    pub fn announce(&self, addr: IpAddr) -> io::Result<bool> {
        if !self.covers.iter().any(|f| f(addr)) {
            return Ok(false);
        }
        let mut frame = [0u8; 86];
        let len = announcement(&mut frame, self.mac, addr);
        self.send(&frame[..len]).map(|()| true)
    }

    fn ask(&self, addr: IpAddr) -> io::Result<()> {
        let mut frame = [0u8; 86];
        let len = match addr {
            IpAddr::V4(a) => {
                let Some(src) = self.src4 else { return Ok(()) };
                arp_frame(&mut frame, self.mac, ([0; 6], a), src);
                42
            }
            IpAddr::V6(a) => {
                let Some(src) = self.src6 else { return Ok(()) };
                solicitation(&mut frame, self.mac, src, a)
            }
        };
        self.send(&frame[..len])
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and sll are valid for the given lengths.
        let ret = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn read_replies(&mut self, now: Instant) -> bool {
        let mut changed = false;
        let mut buf = [0u8; 2048];
        loop {
            // SAFETY: buf is valid for its length; non-blocking socket.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n <= 0 {
                break;
            }
            if let Some((addr, mac)) = parse_reply(&buf[..n as usize], self.mac) {
                changed |= self.targets.answered(addr, mac, now);
            }
        }
        changed
    }
}

/// Every resolver's table, merged.
pub fn merged(resolvers: &[Resolver]) -> HashMap<IpAddr, [u8; 6]> {
    resolvers.iter().flat_map(|r| r.table()).collect()
}

#[cfg(test)]
#[path = "neigh_wire_tests.rs"]
mod wire_tests;
