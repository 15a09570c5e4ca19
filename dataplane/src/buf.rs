//! The packet-buffer trait the hot-path logic is written against, so that it can be
//! unit-tested with a `Vec`-backed buffer and run on DPDK `Mbuf`s unchanged.

/// The buffer has no headroom or tailroom left for the requested change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// What the NIC found of a received packet's IPv4 header checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HwCheck {
    /// Not checked (no offload): software verifies it.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// A single contiguous packet buffer with headroom and tailroom.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows or shrinks the packet at its tail.
    fn set_len(&mut self, len: usize) -> Result<(), NoRoom>;
    /// Adds `n` bytes in front of the packet (uninitialised content).
    fn prepend(&mut self, n: usize) -> Result<(), NoRoom>;
    /// Removes `n` bytes from the front of the packet.
    fn adj(&mut self, n: usize) -> Result<(), NoRoom>;

    fn len(&self) -> usize {
        self.data().len()
    }

    /// The NIC's verdict on the IPv4 header checksum, where it checked it.
    fn ipv4_checksum(&self) -> HwCheck {
        HwCheck::Unknown
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap buffer with fixed headroom and capacity, for tests and tools.
#[derive(Debug, Clone)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
    /// What a NIC would have said of the IPv4 checksum (tests of the offload path).
    pub hw_ipv4: HwCheck,
}

impl VecBuf {
    pub const HEADROOM: usize = 128;

    /// A buffer holding `data`, with 128 bytes of headroom and room to grow to `cap`.
    pub fn new(data: &[u8], cap: usize) -> Self {
        let cap = cap.max(data.len());
        let mut storage = vec![0u8; Self::HEADROOM + cap];
        storage[Self::HEADROOM..Self::HEADROOM + data.len()].copy_from_slice(data);
        VecBuf {
            storage,
            start: Self::HEADROOM,
            end: Self::HEADROOM + data.len(),
            hw_ipv4: HwCheck::Unknown,
        }
    }

    pub fn from_slice(data: &[u8]) -> Self {
        Self::new(data, 2048)
    }
}

impl PacketBuf for VecBuf {
    fn ipv4_checksum(&self) -> HwCheck {
        self.hw_ipv4
    }

    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }

    fn set_len(&mut self, len: usize) -> Result<(), NoRoom> {
        if self.start + len > self.storage.len() {
            return Err(NoRoom);
        }
        self.end = self.start + len;
        Ok(())
    }

    fn prepend(&mut self, n: usize) -> Result<(), NoRoom> {
        if n > self.start {
            return Err(NoRoom);
        }
        self.start -= n;
        Ok(())
    }

    fn adj(&mut self, n: usize) -> Result<(), NoRoom> {
        if n > self.end - self.start {
            return Err(NoRoom);
        }
        self.start += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_shrink_prepend_adj() {
        let mut b = VecBuf::new(&[1, 2, 3], 4);
        assert_eq!(b.data(), &[1, 2, 3]);
        b.set_len(4).unwrap();
        assert_eq!(b.set_len(5), Err(NoRoom));
        b.prepend(2).unwrap();
        assert_eq!(b.len(), 6);
        b.adj(2).unwrap();
        assert_eq!(&b.data()[..3], &[1, 2, 3]);
        assert_eq!(b.prepend(VecBuf::HEADROOM + 1), Err(NoRoom));
        assert_eq!(b.adj(5), Err(NoRoom));
    }
}
