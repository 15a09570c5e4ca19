//! IPv4 fragmentation (RFC 791) for a balanced packet that leaves by a port whose
//! MTU it exceeds, when its sender allowed it (DF clear). Packets with DF get ICMP
//! "fragmentation needed" from the balancer instead, and IPv6 is never fragmented
//! on the way. Rare by design (ports of different MTUs), so fragments are built in
//! fresh buffers and the original is freed.

use super::counters::Counter;
use crate::buf::PacketBuf;
use crate::wire::{ethernet, ipv4, vlan};

/// More fragments than this means a tiny MTU: refused (and counted) rather than
/// flooding the port with headers.
pub const MAX_FRAGMENTS: usize = 16;

/// Length of the L2 header of an outgoing frame (Ethernet, and a VLAN tag if any).
#[inline]
pub fn l2_len(frame: &[u8]) -> usize {
    match frame.get(12..14) {
        Some([0x81, 0x00]) => ethernet::HEADER_LEN + vlan::TAG_LEN,
        _ => ethernet::HEADER_LEN,
    }
}

/// Whether `frame` carries more than `mtu` bytes of L3.
#[inline]
pub fn exceeds(frame: &[u8], mtu: u16) -> bool {
    frame.len() > mtu as usize + ethernet::HEADER_LEN && frame.len() - l2_len(frame) > mtu as usize
}

/// Splits `frame` (L2 header, then an IPv4 packet longer than `mtu`) into fragments
/// of at most `mtu` bytes of L3, each in a buffer from `alloc`, and hands them to
/// `emit` in order once all are built. Returns how many there were; on error
/// nothing is emitted and the counter says why.
pub fn fragment<B: PacketBuf>(
    frame: &[u8],
    mtu: u16,
    mut alloc: impl FnMut() -> Option<B>,
    mut emit: impl FnMut(B),
) -> Result<usize, Counter> {
    let l2 = l2_len(frame);
    let is_v4 = frame.get(l2 - 2..l2) == Some(&[0x08, 0x00]);
    let ip = ipv4::Packet::new_checked(frame.get(l2..).unwrap_or_default())
        .map_err(|_| Counter::DropFragmentFailed)?;
    // Options would have to be sorted into copied and first-fragment-only ones;
    // balanced traffic practically never carries them.
    if !is_v4 || ip.dont_frag() || ip.header_len() != ipv4::MIN_HEADER_LEN {
        return Err(Counter::DropFragmentFailed);
    }
    let hl = ip.header_len();
    // Every fragment but the last carries a multiple of 8 payload bytes.
    let chunk = (mtu as usize).saturating_sub(hl) / 8 * 8;
    let payload = ip.payload();
    if chunk == 0 || payload.len().div_ceil(chunk) > MAX_FRAGMENTS {
        return Err(Counter::DropFragmentFailed);
    }
    let (flags_offset, more_after) = (ip.frag_offset() / 8, ip.more_frags());
    let mut built: [Option<B>; MAX_FRAGMENTS] = std::array::from_fn(|_| None);
    let mut n = 0;
    for (i, piece) in payload.chunks(chunk).enumerate() {
        let mut b = alloc().ok_or(Counter::DropFragmentFailed)?;
        let len = l2 + hl + piece.len();
        b.set_len(len).map_err(|_| Counter::DropFragmentFailed)?;
        let out = b.data_mut();
        out[..l2 + hl].copy_from_slice(&frame[..l2 + hl]);
        out[l2 + hl..].copy_from_slice(piece);
        let last = (i + 1) * chunk >= payload.len();
        let mut h = ipv4::Packet::new_unchecked(&mut out[l2..]);
        h.set_total_len((hl + piece.len()) as u16);
        h.set_fragment(flags_offset + (i * chunk / 8) as u16, !last || more_after);
        h.fill_checksum();
        built[n] = Some(b);
        n += 1;
    }
    built.into_iter().flatten().for_each(&mut emit);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::wire::build::TcpV4;
    use std::net::Ipv4Addr;

    fn big_frame(payload: usize, df: bool) -> Vec<u8> {
        let mut f = TcpV4 {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: Ipv4Addr::new(198, 18, 0, 10),
            sport: 40000,
            dst: Ipv4Addr::new(198, 19, 0, 11),
            dport: 80,
        }
        .frame(0x18, payload);
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_unfragmented(df);
        ip.fill_checksum();
        f
    }

    fn split(f: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, Counter> {
        let mut out = Vec::new();
        fragment(
            f,
            mtu,
            || Some(VecBuf::new(&[], 9216)),
            |b| out.push(b.data().to_vec()),
        )?;
        Ok(out)
    }

    #[test]
    fn fragments_carry_the_payload_in_order_with_valid_headers() {
        let f = big_frame(4000 - 20, false);
        assert!(exceeds(&f, 1500));
        let frags = split(&f, 1500).unwrap();
        assert_eq!(frags.len(), 3);
        let mut payload = Vec::new();
        for (i, fr) in frags.iter().enumerate() {
            assert_eq!(&fr[..14], &f[..14], "L2 header copied");
            let ip = ipv4::Packet::new_checked(&fr[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert!(ip.total_len() <= 1500);
            assert_eq!(ip.frag_offset() as usize, payload.len());
            assert_eq!(ip.more_frags(), i < 2);
            assert_eq!((ip.src(), ip.dst(), ip.ident()), {
                let o = ipv4::Packet::new_checked(&f[14..]).unwrap();
                (o.src(), o.dst(), o.ident())
            });
            if i < 2 {
                assert_eq!(ip.payload().len() % 8, 0);
            }
            payload.extend_from_slice(ip.payload());
        }
        assert_eq!(
            payload,
            ipv4::Packet::new_checked(&f[14..]).unwrap().payload()
        );
    }

    #[test]
    fn refuses_df_small_mtus_and_runs_out_of_buffers_cleanly() {
        assert_eq!(
            split(&big_frame(3000, true), 1500),
            Err(Counter::DropFragmentFailed)
        );
        assert_eq!(
            split(&big_frame(3000, false), 68),
            Err(Counter::DropFragmentFailed)
        );
        let f = big_frame(3000, false);
        let mut left = 1;
        let mut emitted = 0;
        let r = fragment(
            &f,
            1500,
            || {
                left -= 1;
                (left >= 0).then(|| VecBuf::new(&[], 9216))
            },
            |_| emitted += 1,
        );
        assert_eq!(r, Err(Counter::DropFragmentFailed));
        assert_eq!(emitted, 0, "nothing half-sent");
        assert!(!exceeds(&big_frame(1400, false), 1500));
    }

    #[test]
    fn a_frame_exceeds_the_mtu_by_its_l3_bytes_behind_a_tag_or_not() {
        let frame = |len: usize, tagged: bool| {
            let mut f = vec![0u8; len];
            f[12..14].copy_from_slice(if tagged { &[0x81, 0] } else { &[8, 0] });
            f
        };
        assert_eq!(l2_len(&frame(60, false)), 14);
        assert_eq!(l2_len(&frame(60, true)), 18);
        // 1500 bytes of L3 fit a 1500-byte MTU, 1501 do not, tag or no tag.
        for (l2, tagged) in [(14, false), (18, true)] {
            assert!(!exceeds(&frame(l2 + 1500, tagged), 1500), "tagged {tagged}");
            assert!(exceeds(&frame(l2 + 1501, tagged), 1500), "tagged {tagged}");
        }
    }

    #[test]
    fn a_fragment_cut_again_keeps_its_place_in_the_datagram() {
        // A middle fragment (at byte 2960, more to come) and a last one (at
        // byte 5920), each of 2960 bytes, through a 1500-byte MTU: each piece
        // sits at its own offset in the whole datagram, and only the last
        // piece of the last fragment says no more follow.
        for (at, more) in [(2960u16, true), (5920, false)] {
            let mut f = big_frame(2940, false); // and a TCP header: 2960 bytes
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
            ip.set_fragment(at / 8, more);
            ip.fill_checksum();
            let frags = split(&f, 1500).unwrap();
            let got: Vec<(u16, bool, usize)> = frags
                .iter()
                .map(|fr| {
                    let ip = ipv4::Packet::new_checked(&fr[14..]).unwrap();
                    assert!(ip.verify_checksum());
                    (ip.frag_offset(), ip.more_frags(), ip.payload().len())
                })
                .collect();
            assert_eq!(
                got,
                [(at, true, 1480), (at + 1480, more, 1480)],
                "fragment at {at}"
            );
        }
    }

    #[test]
    fn at_most_max_fragments_are_made() {
        // A 100-byte MTU carries 80 bytes a fragment: 16 of them hold 1280
        // bytes (a TCP header and 1260), one byte more is refused.
        assert_eq!(split(&big_frame(1260, false), 100).map(|f| f.len()), Ok(16));
        assert_eq!(
            split(&big_frame(1261, false), 100).map(|f| f.len()),
            Err(Counter::DropFragmentFailed)
        );
    }
}
