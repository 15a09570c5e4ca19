//! Removing and inserting an 802.1Q tag on the way to and from the host interface:
//! the kernel side of the host interface sees untagged frames.

use crate::buf::{NoRoom, PacketBuf};
use crate::wire::ethernet::{ethertype, HEADER_LEN};
use crate::wire::vlan::TAG_LEN;

/// Strips the tag of a frame known to be tagged.
pub fn strip<B: PacketBuf>(buf: &mut B) -> Result<(), NoRoom> {
    if buf.len() < HEADER_LEN + TAG_LEN {
        return Err(NoRoom);
    }
    buf.data_mut().copy_within(0..12, TAG_LEN);
    buf.adj(TAG_LEN)
}

/// Inserts a tag with `vid` after the MAC addresses.
pub fn insert<B: PacketBuf>(buf: &mut B, vid: u16) -> Result<(), NoRoom> {
    if buf.len() < HEADER_LEN {
        return Err(NoRoom);
    }
    buf.prepend(TAG_LEN)?;
    let d = buf.data_mut();
    d.copy_within(TAG_LEN..TAG_LEN + 12, 0);
    d[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
    d[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    Ok(())
}

/// True if the frame carries an 802.1Q tag.
pub fn is_tagged(data: &[u8]) -> bool {
    data.len() >= HEADER_LEN && data[12..14] == ethertype::VLAN.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;

    #[test]
    fn insert_then_strip_round_trips() {
        let frame: Vec<u8> = (0u8..20).collect();
        let mut b = VecBuf::from_slice(&frame);
        insert(&mut b, 100).unwrap();
        assert_eq!(&b.data()[..12], &frame[..12]);
        assert_eq!(&b.data()[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(&b.data()[16..], &frame[12..]);
        assert!(is_tagged(b.data()));
        strip(&mut b).unwrap();
        assert_eq!(b.data(), &frame[..]);
    }

    #[test]
    fn the_shortest_frames_each_takes_are_the_header_and_the_tagged_header() {
        // A bare tagged header strips to a bare header; one byte less is refused
        // and left as it was.
        let tagged: Vec<u8> = (0u8..(HEADER_LEN + TAG_LEN) as u8).collect();
        let mut b = VecBuf::from_slice(&tagged);
        strip(&mut b).unwrap();
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(&b.data()[..12], &tagged[..12]);
        assert_eq!(&b.data()[12..], &tagged[16..]);
        let mut short = VecBuf::from_slice(&tagged[1..]);
        assert_eq!(strip(&mut short), Err(NoRoom));
        assert_eq!(short.data(), &tagged[1..]);

        let bare: Vec<u8> = (0u8..HEADER_LEN as u8).collect();
        let mut b = VecBuf::from_slice(&bare);
        insert(&mut b, 0x1234).unwrap();
        assert_eq!(b.len(), HEADER_LEN + TAG_LEN);
        // Only the 12 bits of a VLAN id are written; priority and DEI stay 0.
        assert_eq!(&b.data()[12..16], &[0x81, 0x00, 0x02, 0x34]);
        let mut short = VecBuf::from_slice(&bare[1..]);
        assert_eq!(insert(&mut short, 7), Err(NoRoom));
        assert_eq!(short.data(), &bare[1..]);
    }

    #[test]
    fn only_frames_with_the_vlan_ethertype_are_tagged() {
        let mut frame = [0u8; HEADER_LEN];
        frame[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        assert!(!is_tagged(&frame));
        frame[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        assert!(is_tagged(&frame));
        // Too short to hold an Ethernet header: not a tagged frame.
        assert!(!is_tagged(&frame[..HEADER_LEN - 1]));
    }
}
