//! A port's device: a PCI address or a DPDK virtual device's argument string,
//! and what Weir adds to an `af_packet` device's arguments (frames that hold
//! what its kernel reassembles, a ring as long as the queue).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A vdev argument; `dpdk_name` is the part before the first comma.
    Vdev {
        args: String,
        dpdk_name: String,
    },
    Pci(String),
}

/// The frame size an `af_packet` port gets at least unless its device string
/// sets `framesz`: room for the datagrams the kernel reassembles before DPDK
/// sees them (DPDK 22.11 always asks it to), not only for MTU-sized frames:
/// up to 8126 bytes, which takes in a 4096-byte EDNS answer with room to spare.
const AF_PACKET_FRAMESZ: usize = 8192;

/// Where the kernel puts an Ethernet frame in an af_packet (TPACKET_V2) frame:
/// its 52-byte header and the link header's 16-byte room, rounded to 16, less
/// the 14-byte Ethernet header. The rest of the frame is what it can hold.
const AF_PACKET_MAC_OFFSET: usize = 66;

/// What DPDK 22.11's af_packet wants each mbuf to hold besides headroom: the
/// frame size less its own 32-byte reckoning of the packet header.
const AF_PACKET_DPDK_OVERHEAD: usize = 32;

/// The kernel's ring blocks are whole pages.
const PAGE: usize = 4096;

impl Device {
    pub fn dpdk_name(&self) -> &str {
        match self {
            Device::Vdev { dpdk_name, .. } => dpdk_name,
            Device::Pci(addr) => addr,
        }
    }

    /// The kernel interface a vdev reads (its `iface=` argument): af_packet,
    /// af_xdp, pcap.
    pub fn kernel_iface(&self) -> Option<&str> {
        self.arg("iface").map(str::trim)
    }

    pub fn is_af_packet(&self) -> bool {
        self.dpdk_name().starts_with("net_af_packet")
    }

    /// The device as the EAL gets it, for a port of `mtu` whose queues hold
    /// `ring` packets. An `af_packet` vdev gets, unless its arguments set them:
    /// frames with room for [`AF_PACKET_FRAMESZ`] or a frame of `mtu` with a
    /// VLAN tag, whichever is larger, in whole pages (`framesz`), one frame per
    /// block when a frame is larger than a page (`blocksz`), and `ring` frames
    /// per kernel ring (`framecnt`: the PMD takes no descriptor count).
    pub fn eal_arg(&self, mtu: u16, ring: u16) -> String {
        let Device::Vdev { args, .. } = self else {
            return self.dpdk_name().to_string();
        };
        let mut arg = args.clone();
        if self.is_af_packet() {
            if self.arg("framesz").is_none() {
                let frame = self.af_packet_framesz(mtu).unwrap_or(AF_PACKET_FRAMESZ);
                arg += &format!(",framesz={frame}");
                if frame > PAGE && self.arg("blocksz").is_none() {
                    arg += &format!(",blocksz={frame}");
                }
            }
            if self.arg("framecnt").is_none() {
                arg += &format!(",framecnt={ring}");
            }
        }
        arg
    }

    /// An `af_packet` port's frame size.
    fn af_packet_framesz(&self, mtu: u16) -> Option<usize> {
        if !self.is_af_packet() {
            return None;
        }
        // Whole pages: DPDK 22.11 finds frame i at i frame sizes into the ring,
        // so a block must hold whole frames with no room left over.
        let frame = (mtu as usize + 14 + 4 + AF_PACKET_MAC_OFFSET).next_multiple_of(PAGE);
        let set = self.arg("framesz").and_then(|v| v.parse().ok());
        Some(set.unwrap_or(frame.max(AF_PACKET_FRAMESZ)))
    }

    /// An `af_packet` port's ring block size as its arguments set it (the
    /// PMD's default is a page) and frame size: the frames of a block must
    /// fill it, else DPDK 22.11 reads its frames at the wrong places.
    pub fn af_packet_blocks_misfit(&self) -> Option<(usize, usize)> {
        let frame: usize = self.arg("framesz")?.parse().ok()?;
        let block = self.arg("blocksz").map_or(Some(PAGE), |b| b.parse().ok())?;
        (self.is_af_packet() && (frame == 0 || block % frame != 0)).then_some((block, frame))
    }

    /// For a port whose kernel reassembles IP fragments before DPDK sees them
    /// (`af_packet`), the longest frame it can hand over; a longer one comes cut
    /// to this length.
    pub fn reassembled_len(&self, mtu: u16) -> Option<usize> {
        Some(
            self.af_packet_framesz(mtu)?
                .saturating_sub(AF_PACKET_MAC_OFFSET),
        )
    }

    /// The bytes (headroom apart) an mbuf needs for this port's queues to set
    /// up: DPDK's af_packet checks its frame size against the pool's mbufs.
    pub fn mbuf_data_len(&self, mtu: u16) -> Option<usize> {
        Some(
            self.af_packet_framesz(mtu)?
                .saturating_sub(AF_PACKET_DPDK_OVERHEAD),
        )
    }

    /// The value of vdev argument `key`.
    fn arg(&self, key: &str) -> Option<&str> {
        let Device::Vdev { args, .. } = self else {
            return None;
        };
        args.split(',')
            .skip(1)
            .find_map(|kv| kv.trim().strip_prefix(key)?.strip_prefix('='))
    }
}
