//! What the kernel dropped on an `af_packet` port's receive rings: frames that
//! found no free slot because the workers fell behind, the overload signal a
//! NIC reports as `missed`. DPDK 22.11's af_packet does not read it, so the
//! management core asks DPDK's own packet sockets (found through /proc) with
//! `PACKET_STATISTICS`, which hands over the counts since the last ask and
//! starts again from zero: one reader (this) keeps the running total.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// `<linux/if_packet.h>`: the socket option and what it fills.
const PACKET_STATISTICS: libc::c_int = 6;

#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    packets: libc::c_uint,
    drops: libc::c_uint,
}

pub struct RingDrops {
    /// DPDK's sockets on the interface, borrowed: valid while the port is open,
    /// which outlasts every reader (the manager, the summary at stop).
    fds: Vec<RawFd>,
    total: AtomicU64,
}

impl RingDrops {
    /// The packet sockets of this process bound to `ifname` (one per queue pair
    /// of an af_packet port).
    pub fn find(ifname: &str) -> io::Result<RingDrops> {
        let name = std::ffi::CString::new(ifname)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a valid C string; the call only reads it.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        let inodes = packet_socket_inodes(&std::fs::read_to_string("/proc/net/packet")?, index);
        let mut fds = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let entry = entry?;
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if let (Some(inode), Ok(fd)) = (inode, entry.file_name().to_string_lossy().parse()) {
                if inodes.contains(&inode) {
                    fds.push(fd);
                }
            }
        }
        Ok(RingDrops {
            fds,
            total: AtomicU64::new(0),
        })
    }

    /// How many sockets it reads (0: nothing found, the count stays 0).
    pub fn sockets(&self) -> usize {
        self.fds.len()
    }

    /// Frames the kernel dropped on these rings since start.
    pub fn drops(&self) -> u64 {
        for &fd in &self.fds {
            let mut st = TpacketStats::default();
            let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
            // SAFETY: fd is a packet socket DPDK holds open while the port is;
            // st and len are valid out-parameters of the sizes given.
            let ret = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_PACKET,
                    PACKET_STATISTICS,
                    &mut st as *mut TpacketStats as *mut libc::c_void,
                    &mut len,
                )
            };
            if ret == 0 {
                self.total.fetch_add(st.drops as u64, Ordering::Relaxed);
            }
        }
        self.total.load(Ordering::Relaxed)
    }
}

/// The inodes of the packet sockets bound to interface `index`, from the text
/// of /proc/net/packet (`sk RefCnt Type Proto Iface R Rmem User Inode`).
fn packet_socket_inodes(table: &str, index: u32) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let iface: u32 = f.get(4)?.parse().ok()?;
            let inode: u64 = f.get(8)?.parse().ok()?;
            (iface == index).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sockets_of_one_interface_from_the_packet_table() {
        let table = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n\
                     ffff8a0c1a2b3000 3      3    0003   7     1 0      0      412345\n\
                     ffff8a0c1a2b4000 3      3    0003   9     1 0      0      412346\n\
                     ffff8a0c1a2b5000 3      3    0003   7     1 0      0      412347\n\
                     garbage\n";
        assert_eq!(packet_socket_inodes(table, 7), vec![412345, 412347]);
        assert_eq!(packet_socket_inodes(table, 8), Vec::<u64>::new());
    }

    #[test]
    fn the_drops_of_a_packet_socket_on_the_interface_are_read_and_kept() {
        use std::os::fd::AsRawFd;
        let sock = crate::lo_packet_socket::open();
        // The smallest receive buffer the kernel gives, never read: frames on
        // loopback overflow it.
        let small: libc::c_int = 1;
        // SAFETY: a valid socket and an int option of the size given.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &small as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // A second socket (one per queue pair, as DPDK opens them), read by
        // nobody either.
        let _other = crate::lo_packet_socket::open();
        let rings = RingDrops::find("lo").unwrap();
        assert_eq!(rings.sockets(), 2);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let burst = || {
            for _ in 0..200 {
                let _ = udp.send_to(&[0u8; 1000], "127.0.0.1:9");
            }
        };
        // 200 datagrams, each seen leaving and arriving, into room for one
        // or two frames.
        burst();
        let first = rings.drops();
        assert!(first >= 100, "a full buffer drops: {first}");
        // The kernel's count starts again at each read: the total is kept here.
        burst();
        let second = rings.drops();
        assert!(second >= first + 100, "{first} then {second}");
    }

    #[test]
    fn an_interface_that_does_not_exist_is_an_error() {
        assert!(RingDrops::find("weir-no-such0").is_err());
    }
}
