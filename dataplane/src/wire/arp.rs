//! ARP over Ethernet for IPv4 (RFC 826). Any other hardware or protocol type is
//! malformed for Weir's purposes.

use super::{read_u16, write_u16, Malformed};
use std::net::Ipv4Addr;

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

mod field {
    use std::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length, and the Ethernet/IPv4 type and size fields.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN
            || read_u16(b, field::HTYPE) != 1
            || read_u16(b, field::PTYPE) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Malformed);
        }
        Ok(())
    }

    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    pub fn sender_mac(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::SHA].try_into().unwrap()
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[field::SPA].try_into().unwrap();
        Ipv4Addr::from(b)
    }

    pub fn target_mac(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::THA].try_into().unwrap()
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[field::TPA].try_into().unwrap();
        Ipv4Addr::from(b)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 type and size fields.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, 1);
        write_u16(b, field::PTYPE, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    pub fn set_operation(&mut self, op: u16) {
        write_u16(self.buffer.as_mut(), field::OPER, op);
    }

    pub fn set_sender(&mut self, mac: [u8; 6], ip: Ipv4Addr) {
        let b = self.buffer.as_mut();
        b[field::SHA].copy_from_slice(&mac);
        b[field::SPA].copy_from_slice(&ip.octets());
    }

    pub fn set_target(&mut self, mac: [u8; 6], ip: Ipv4Addr) {
        let b = self.buffer.as_mut();
        b[field::THA].copy_from_slice(&mac);
        b[field::TPA].copy_from_slice(&ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // who-has 198.18.0.1 tell 198.18.0.10
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // fixed, request
        0x02, 0, 0, 0, 0, 0x10, 198, 18, 0, 10, // sender
        0, 0, 0, 0, 0, 0, 198, 18, 0, 1, // target
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_mac(), [2, 0, 0, 0, 0, 0x10]);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!(p.target_mac(), [0; 6]);
        assert_eq!(p.target_ip(), Ipv4Addr::new(198, 18, 0, 1));
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_ethernet_ipv4();
        p.set_operation(OP_REQUEST);
        p.set_sender([2, 0, 0, 0, 0, 0x10], Ipv4Addr::new(198, 18, 0, 10));
        p.set_target([0; 6], Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn truncated_and_bad_fields() {
        assert!(Packet::new_checked(&REQUEST[..27]).is_err());
        let mut bad = REQUEST;
        bad[1] = 6; // htype IEEE 802
        assert!(Packet::new_checked(&bad[..]).is_err());
        let mut bad = REQUEST;
        bad[5] = 16; // plen
        assert!(Packet::new_checked(&bad[..]).is_err());
    }
}
