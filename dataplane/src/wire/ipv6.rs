//! IPv6 headers (RFC 8200) and a bounded walk over extension headers.

use super::{read_u16, write_u16, Malformed};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;

/// ff02::1, the all-nodes group (where unsolicited neighbour advertisements go).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Extension headers skipped on the way to the upper layer.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTH: u8 = 51;
    pub const DEST_OPTS: u8 = 60;
    pub const NO_NEXT: u8 = 59;
}

/// More extension headers than this is treated as malformed (an attack, not traffic).
const MAX_EXT_HEADERS: usize = 8;

mod field {
    use std::ops::Range;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Where the upper-layer header starts, found by [`Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Protocol number of the upper layer (TCP, UDP, ICMPv6, ...).
    pub protocol: u8,
    /// Offset of its header from the start of the IPv6 header.
    pub offset: usize,
    /// A fragment header was crossed: the upper layer may be incomplete.
    pub fragment: bool,
    /// Offset of that fragment header from the start of the IPv6 header (0: none).
    pub fragment_header: usize,
}

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Version 6 and 40 + payload length within the buffer.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || b[0] >> 4 != 6 {
            return Err(Malformed);
        }
        if HEADER_LEN + self.payload_len() as usize > b.len() {
            return Err(Malformed);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.buffer.as_ref()[field::SRC].try_into().unwrap();
        Ipv6Addr::from(b)
    }

    pub fn dst(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.buffer.as_ref()[field::DST].try_into().unwrap();
        Ipv6Addr::from(b)
    }

    /// The payload up to the payload length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }

    /// Skips hop-by-hop, routing, destination-options, fragment and AH headers, each
    /// checked against the payload length, and returns where the upper layer starts.
    /// A non-first fragment has no upper-layer header; it reports the fragment with
    /// `protocol` set to the fragment's next header.
    pub fn upper_layer(&self) -> Result<UpperLayer, Malformed> {
        let end = HEADER_LEN + self.payload_len() as usize;
        let b = &self.buffer.as_ref()[..end];
        let mut proto = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = false;
        let mut fragment_header = 0;
        for _ in 0..MAX_EXT_HEADERS {
            let len = match proto {
                next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                    if off + 2 > end {
                        return Err(Malformed);
                    }
                    (b[off + 1] as usize + 1) * 8
                }
                next_header::FRAGMENT => {
                    if off + 8 > end {
                        return Err(Malformed);
                    }
                    fragment = true;
                    fragment_header = off;
                    let frag_off = read_u16(b, off + 2) & 0xfff8;
                    if frag_off != 0 {
                        return Ok(UpperLayer {
                            protocol: b[off],
                            offset: off + 8,
                            fragment,
                            fragment_header,
                        });
                    }
                    8
                }
                next_header::AUTH => {
                    if off + 2 > end {
                        return Err(Malformed);
                    }
                    (b[off + 1] as usize + 2) * 4
                }
                _ => {
                    return Ok(UpperLayer {
                        protocol: proto,
                        offset: off,
                        fragment,
                        fragment_header,
                    })
                }
            };
            if off + len > end {
                return Err(Malformed);
            }
            proto = b[off];
            off += len;
        }
        Err(Malformed)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 6, traffic class and flow label.
    pub fn set_version_class_flow(&mut self, class: u8, flow: u32) {
        let v = (6u32 << 28) | ((class as u32) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[..4].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    pub fn set_src(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    pub fn set_dst(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The solicited-node multicast address of `addr` (RFC 4291 2.7.1).
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(payload_len: u16, next: u8) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + payload_len as usize];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_class_flow(0x12, 0xabcde);
        p.set_payload_len(payload_len);
        p.set_next_header(next);
        p.set_hop_limit(64);
        p.set_src(&"2001:db8::10".parse().unwrap());
        p.set_dst(&"2001:db8::1".parse().unwrap());
        b
    }

    #[test]
    fn golden_bytes() {
        let b = header(0, 59);
        assert_eq!(&b[..8], &[0x61, 0x2a, 0xbc, 0xde, 0, 0, 59, 64]);
        assert_eq!(&b[8..12], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(b[23], 0x10);
        assert_eq!(b[39], 0x01);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0x12);
        assert_eq!(p.flow_label(), 0xabcde);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::10".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn truncated_and_bad_version() {
        let b = header(8, 17);
        assert!(Packet::new_checked(&b[..47]).is_err());
        assert!(Packet::new_checked(&b[..39]).is_err());
        let mut bad = b.clone();
        bad[0] = 0x45;
        assert!(Packet::new_checked(&bad[..]).is_err());
    }

    #[test]
    fn walks_extension_headers() {
        // hop-by-hop (8) -> dest opts (16) -> UDP (8)
        let mut b = header(32, next_header::HOP_BY_HOP);
        b[40] = next_header::DEST_OPTS;
        b[41] = 0;
        b[48] = 17;
        b[49] = 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            p.upper_layer().unwrap(),
            UpperLayer {
                protocol: 17,
                offset: 64,
                fragment: false,
                fragment_header: 0,
            }
        );
    }

    #[test]
    fn extension_header_past_the_end() {
        let mut b = header(8, next_header::HOP_BY_HOP);
        b[40] = 17;
        b[41] = 4; // 40 bytes long, only 8 present
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.upper_layer().is_err());
    }

    #[test]
    fn header_chain_too_long() {
        let mut b = header(80, next_header::DEST_OPTS);
        for i in 0..10 {
            b[40 + i * 8] = next_header::DEST_OPTS;
        }
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.upper_layer().is_err());
    }

    #[test]
    fn fragments() {
        let mut b = header(16, next_header::FRAGMENT);
        b[40] = 58;
        let p = Packet::new_checked(&b[..]).unwrap();
        let ul = p.upper_layer().unwrap();
        assert_eq!((ul.protocol, ul.offset, ul.fragment), (58, 48, true));
        assert_eq!(ul.fragment_header, 40);
        b[42..44].copy_from_slice(&(185u16 << 3).to_be_bytes());
        let p = Packet::new_checked(&b[..]).unwrap();
        let ul = p.upper_layer().unwrap();
        assert_eq!(
            (ul.protocol, ul.fragment, ul.fragment_header),
            (58, true, 40)
        );
    }

    #[test]
    fn solicited_node_address() {
        let a: Ipv6Addr = "2001:db8::abcd:1234".parse().unwrap();
        assert_eq!(
            solicited_node(&a),
            "ff02::1:ffcd:1234".parse::<Ipv6Addr>().unwrap()
        );
    }
}
