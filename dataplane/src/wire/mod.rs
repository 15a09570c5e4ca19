//! Zero-copy packet views in the style of smoltcp's `wire` module.
//!
//! Each header type is a `Packet<T: AsRef<[u8]>>` over a borrowed buffer. `new_checked`
//! validates lengths (and the fields that decide lengths) once, so the accessors after it
//! never read past the buffer; setters live in an `AsMut<[u8]>` impl. On the hot path the
//! only error is the unit [`Malformed`]: the caller knows which header failed and counts
//! the drop under that header's name.

/// Declares a zero-copy view `$name<T: AsRef<[u8]>>` over a buffer, with
/// `new_unchecked` and `new_checked` (which calls the view's own `check_len`).
macro_rules! view {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// A view with no checks: accessors may panic on a short buffer.
            pub fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// The bytes the view was made over.
            #[inline]
            pub fn bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            /// A view whose accessors are all in bounds.
            pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }
        }
    };
}

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vlan;

/// A header failed validation: too short, a length field that points past the
/// buffer, or a field with a value the header does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// IP protocol numbers Weir looks at.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

#[inline]
pub(crate) fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn write_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn write_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
