//! Property: no byte string makes a parser or the classifier panic or read past the
//! buffer, including frames that start like valid ones and then go wrong.

use dataplane::buf::VecBuf;
use dataplane::pipeline::classify::classify;
use dataplane::pipeline::local::LocalAddrs;
use dataplane::wire::*;
use proptest::prelude::*;

fn local(vlan: Option<u16>) -> LocalAddrs {
    LocalAddrs {
        mac: [2, 0, 0, 0, 0, 1],
        vlan,
        mtu: 1500,
        ipv4: vec!["198.18.0.1".parse().unwrap()],
        ipv6: vec!["2001:db8::1".parse().unwrap()],
        host_interface: true,
        host_mtu: 1500,
        reassembled_len: 0,
    }
}

/// Frames addressed to us with a plausible EtherType and IP version, then random bytes,
/// so the search reaches deep into the parsers instead of stopping at the MAC check.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8100]),
        prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
        prop::sample::select(vec![1u8, 6, 17, 58, 0, 43, 44, 60]),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(et, vihl, proto, rest)| {
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
            f.extend_from_slice(&et.to_be_bytes());
            f.push(vihl);
            f.extend_from_slice(&rest);
            if f.len() > 23 {
                f[23] = proto; // IPv4 protocol
                f[20] = proto; // IPv6 next header
            }
            f
        })
}

fn parse_everything(b: &[u8]) {
    if let Ok(p) = ipv4::Packet::new_checked(b) {
        let _ = (p.payload(), p.options(), p.verify_checksum());
    }
    if let Ok(p) = ipv6::Packet::new_checked(b) {
        let _ = (p.payload(), p.upper_layer());
    }
    if let Ok(p) = icmpv6::Packet::new_checked(b) {
        let _ = (p.nd_option_ll(1), p.nd_option_ll(2));
        if b.len() >= icmpv6::ND_FIXED_LEN {
            let _ = p.nd_target();
        }
    }
    if let Ok(p) = tcp::Packet::new_checked(b) {
        let _ = (p.payload(), p.verify_checksum(0));
    }
    if let Ok(p) = udp::Packet::new_checked(b) {
        let _ = (p.payload(), p.verify_checksum(0, false));
    }
    if let Ok(p) = arp::Packet::new_checked(b) {
        let _ = (p.sender_ip(), p.target_mac());
    }
    if let Ok(p) = icmpv4::Packet::new_checked(b) {
        let _ = (p.data(), p.verify_checksum());
    }
    if let Ok(p) = vlan::Tag::new_checked(b) {
        let _ = p.payload();
    }
    if let Ok(p) = ethernet::Frame::new_checked(b) {
        let _ = p.payload();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn parsers_are_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        parse_everything(&bytes);
    }

    #[test]
    fn classify_is_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut b = VecBuf::from_slice(&bytes);
        let _ = classify(&mut b, &local(None), &Default::default());
    }

    #[test]
    fn classify_is_total_on_plausible_frames(frame in plausible_frame(), tagged in any::<bool>()) {
        let mut b = VecBuf::from_slice(&frame);
        let _ = classify(&mut b, &local(tagged.then_some(0)), &Default::default());
        parse_everything(&frame[14.min(frame.len())..]);
    }
}
