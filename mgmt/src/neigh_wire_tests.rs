//! The resolver on a real packet socket: the ARP requests and neighbour
//! solicitations it writes, as another socket on the same interface reads them,
//! and the MACs it learns from answers written there. Each test runs in a network
//! namespace of its own, on its loopback interface, so nothing leaves it and no
//! other test's frames mix in.

use super::frames::tests::{advert, arp_frame, OURS, THEIRS};
use super::Resolver;
use crate::own_netns::run_in_own_netns;
use dataplane::wire::ethernet::{self, ethertype, Frame};
use dataplane::wire::{arp, icmpv6, ip_proto, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const US4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const BACKEND4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const US6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const BACKEND6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);

/// A packet socket on `lo` that reads every frame sent there.
struct Capture(OwnedFd);

impl Capture {
    fn open() -> Capture {
        Capture(crate::lo_packet_socket::open())
    }

    /// The frames sent on `lo` within `wait` (each once: loopback shows a
    /// frame both leaving and arriving).
    fn frames(&self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) } <= 0 {
                break;
            }
            // SAFETY: sockaddr_ll is plain data; zero is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buf and from are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                    &mut from as *mut _ as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n > 0 && from.sll_pkttype == libc::PACKET_OUTGOING {
                out.push(buf[..n as usize].to_vec());
            }
        }
        out
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: frame is valid for its length; the socket is bound to lo.
        let n = unsafe {
            libc::send(
                self.0.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        assert_eq!(
            n,
            frame.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

/// A resolver on `lo` for `targets`, covering 198.18.0.0/15 and 2001:db8::/32.
fn resolver(targets: &[IpAddr]) -> Resolver {
    let covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>> = vec![Box::new(|a| match a {
        IpAddr::V4(x) => x.octets()[..2] == [198, 18] || x.octets()[..2] == [198, 19],
        IpAddr::V6(x) => x.segments()[..2] == [0x2001, 0xdb8],
    })];
    Resolver::open(
        "lo",
        OURS,
        Some(US4),
        Some(US6),
        targets.iter().copied(),
        covers,
    )
    .expect("a resolver on lo")
}

/// The ARP frames among `frames`: (destination MAC, operation, sender MAC and
/// address, target MAC and address).
type ArpSeen = ([u8; 6], u16, ([u8; 6], Ipv4Addr), ([u8; 6], Ipv4Addr));

fn arps(frames: &[Vec<u8>]) -> Vec<ArpSeen> {
    frames
        .iter()
        .filter_map(|f| {
            let e = Frame::new_checked(&f[..]).ok()?;
            (e.ethertype() == ethertype::ARP && e.src() == OURS).then_some(())?;
            let a = arp::Packet::new_checked(e.payload()).ok()?;
            Some((
                e.dst(),
                a.operation(),
                (a.sender_mac(), a.sender_ip()),
                (a.target_mac(), a.target_ip()),
            ))
        })
        .collect()
}

/// The neighbour discovery messages among `frames`: (destination MAC, IPv6
/// source and destination, message type, target, link-layer option), each
/// checked for hop limit 255 and a valid checksum.
type NdSeen = ([u8; 6], Ipv6Addr, Ipv6Addr, u8, Ipv6Addr, Option<[u8; 6]>);

fn nds(frames: &[Vec<u8>]) -> Vec<NdSeen> {
    frames
        .iter()
        .filter_map(|f| {
            let e = Frame::new_checked(&f[..]).ok()?;
            (e.ethertype() == ethertype::IPV6 && e.src() == OURS).then_some(())?;
            let ip = ipv6::Packet::new_checked(e.payload()).ok()?;
            assert_eq!((ip.next_header(), ip.hop_limit()), (ip_proto::ICMPV6, 255));
            let m = icmpv6::Packet::new_checked(ip.payload()).ok()?;
            assert!(m.verify_checksum(&ip.src(), &ip.dst()), "checksum");
            let option = match m.msg_type() {
                icmpv6::NEIGHBOR_SOLICIT => icmpv6::OPT_SOURCE_LL,
                _ => icmpv6::OPT_TARGET_LL,
            };
            Some((
                e.dst(),
                ip.src(),
                ip.dst(),
                m.msg_type(),
                m.nd_target(),
                m.nd_option_ll(option),
            ))
        })
        .collect()
}

#[test]
fn a_resolver_asks_on_the_wire_and_learns_the_macs_answered() {
    run_in_own_netns(|| {
        let cap = Capture::open();
        let mut r = resolver(&[BACKEND4.into(), BACKEND6.into()]);
        assert!(!r.poll(Instant::now()), "nothing learnt yet");
        let sent = cap.frames(Duration::from_millis(200));
        // A broadcast "who has 198.18.0.11, tell 198.18.0.1" (RFC 826).
        assert_eq!(
            arps(&sent),
            [(
                ethernet::BROADCAST,
                arp::OP_REQUEST,
                (OURS, US4),
                ([0; 6], BACKEND4)
            )]
        );
        // A solicitation to the target's solicited-node group, from our
        // address, with our MAC (RFC 4861 4.3, 7.2.2).
        let group = ipv6::solicited_node(&BACKEND6);
        assert_eq!(group, "ff02::1:ff00:11".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            nds(&sent),
            [(
                [0x33, 0x33, 0xff, 0, 0, 0x11],
                US6,
                group,
                icmpv6::NEIGHBOR_SOLICIT,
                BACKEND6,
                Some(OURS)
            )]
        );
        assert_eq!(r.table().count(), 0);

        // The backends answer, to our MAC.
        cap.send(&arp_frame(OURS, arp::OP_REPLY, BACKEND4, US4));
        cap.send(&advert(OURS, US6, 0x60));
        let learnt = |r: &Resolver| {
            let mut t: Vec<_> = r.table().collect();
            t.sort();
            t
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut changed = false;
        while learnt(&r).len() < 2 && Instant::now() < deadline {
            changed |= r.poll(Instant::now());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(changed, "a MAC learnt is a change");
        assert_eq!(
            learnt(&r),
            [
                (IpAddr::V4(BACKEND4), THEIRS),
                (IpAddr::V6(BACKEND6), THEIRS)
            ]
        );
        // The same answers again are no news.
        cap.send(&arp_frame(OURS, arp::OP_REPLY, BACKEND4, US4));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!r.poll(Instant::now()));
        // What the manager publishes to the workers: every resolver's MACs.
        let published = super::merged(&[r, resolver(&[])]);
        let expected = [
            (IpAddr::V4(BACKEND4), THEIRS),
            (IpAddr::V6(BACKEND6), THEIRS),
        ];
        assert_eq!(published, expected.into_iter().collect());
    });
}

#[test]
fn new_targets_outside_the_interfaces_networks_are_never_asked_about() {
    run_in_own_netns(|| {
        let cap = Capture::open();
        let mut r = resolver(&[]);
        let (ours, elsewhere) = (Ipv4Addr::new(198, 19, 0, 12), Ipv4Addr::new(10, 0, 0, 1));
        r.set_targets(&[
            ours.into(),
            elsewhere.into(),
            "2001:db9::1".parse().unwrap(),
        ]);
        r.poll(Instant::now());
        let sent = cap.frames(Duration::from_millis(200));
        let asked: Vec<Ipv4Addr> = arps(&sent).iter().map(|a| a.3 .1).collect();
        assert_eq!(asked, [ours]);
        assert_eq!(nds(&sent), []);
    });
}

#[test]
fn announcements_tell_the_network_an_address_is_at_our_mac() {
    run_in_own_netns(|| {
        let cap = Capture::open();
        let r = resolver(&[]);
        let vip4 = Ipv4Addr::new(198, 18, 0, 100);
        let vip6: Ipv6Addr = "2001:db8::100".parse().unwrap();
        assert!(r.announce(vip4.into()).unwrap());
        assert!(r.announce(vip6.into()).unwrap());
        // Not this interface's: not sent.
        assert!(!r.announce(Ipv4Addr::new(10, 0, 0, 100).into()).unwrap());
        let sent = cap.frames(Duration::from_millis(200));
        // A gratuitous ARP: sender and target are the address.
        assert_eq!(
            arps(&sent),
            [(
                ethernet::BROADCAST,
                arp::OP_REQUEST,
                (OURS, vip4),
                (ethernet::BROADCAST, vip4)
            )]
        );
        // An unsolicited advertisement to all nodes, with the override flag.
        assert_eq!(
            nds(&sent),
            [(
                [0x33, 0x33, 0, 0, 0, 1],
                vip6,
                ipv6::ALL_NODES,
                icmpv6::NEIGHBOR_ADVERT,
                vip6,
                Some(OURS)
            )]
        );
    });
}

#[test]
fn an_announcement_the_interface_cannot_send_is_an_error() {
    run_in_own_netns(|| {
        let r = resolver(&[]);
        let down = std::process::Command::new("ip")
            .args(["link", "set", "lo", "down"])
            .status()
            .expect("ip");
        assert!(down.success());
        let e = r
            .announce(Ipv4Addr::new(198, 18, 0, 100).into())
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENETDOWN), "{e}");
    });
}

#[test]
fn a_resolver_on_an_interface_that_does_not_exist_is_an_error() {
    let covers = Vec::new();
    let e = Resolver::open("weir-none0", OURS, Some(US4), None, [], covers).err();
    assert!(e.is_some());
}

#[test]
fn the_managers_tick_learns_an_answer_and_the_next_snapshot_carries_it() {
    use crate::manager_tests::{manager_with, EXAMPLE};
    run_in_own_netns(|| {
        let cap = Capture::open();
        let (mut m, _rx) = manager_with(EXAMPLE, vec![resolver(&[])]);
        // Publishing hands the resolver every backend to ask about.
        m.publish();
        let t0 = Instant::now();
        assert!(!m.tick(t0), "nothing answered yet");
        let asked: Vec<Ipv4Addr> = (arps(&cap.frames(Duration::from_millis(200))).iter())
            .filter(|a| a.1 == arp::OP_REQUEST && a.2 .1 != a.3 .1)
            .map(|a| a.3 .1)
            .collect();
        assert!(asked.contains(&BACKEND4), "asked {asked:?}");
        cap.send(&arp_frame(OURS, arp::OP_REPLY, BACKEND4, US4));
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut changed = false;
        while !changed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            changed = m.tick(t0 + Duration::from_millis(10));
        }
        assert!(changed, "a MAC learnt asks for a snapshot");
        assert_eq!(m.macs.get(&IpAddr::V4(BACKEND4)), Some(&THEIRS));
        m.publish();
        let b1 = m.backend_id("web/b1").unwrap() as usize;
        assert_eq!(m.snapshot.load().backends[b1].mac, Some(THEIRS));
    });
}
