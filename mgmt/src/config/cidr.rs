//! Interface addresses written as `ADDR/PREFIX`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr4 {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

fn split(s: &str) -> Result<(&str, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX"))?;
    let p: u8 = p
        .parse()
        .map_err(|_| format!("{s:?}: prefix length {p:?} is not a number"))?;
    Ok((a, p))
}

impl FromStr for Cidr4 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, prefix) = split(s)?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        if prefix > 32 {
            return Err(format!("{s:?}: IPv4 prefix length must be 0..=32"));
        }
        if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
            return Err(format!("{s:?}: not a unicast address"));
        }
        Ok(Cidr4 { addr, prefix })
    }
}

impl FromStr for Cidr6 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, prefix) = split(s)?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
        if prefix > 128 {
            return Err(format!("{s:?}: IPv6 prefix length must be 0..=128"));
        }
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(format!("{s:?}: not a unicast address"));
        }
        Ok(Cidr6 { addr, prefix })
    }
}

impl fmt::Display for Cidr4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr4 {
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        Ipv4Addr::from(bits)
    }

    /// Whether `a` is in this address's network.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let m = u32::from(self.netmask());
        u32::from(a) & m == u32::from(self.addr) & m
    }
}

impl Cidr6 {
    /// Whether `a` is in this address's network.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        let m = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
        u128::from(a) & m == u128::from(self.addr) & m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let c: Cidr4 = "198.18.0.1/24".parse().unwrap();
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.to_string(), "198.18.0.1/24");
        assert!("198.18.0.1".parse::<Cidr4>().is_err());
        assert!("198.18.0.256/24".parse::<Cidr4>().is_err());
        assert!("198.18.0.1/33".parse::<Cidr4>().is_err());
        assert!("224.0.0.1/4".parse::<Cidr4>().is_err());
        let c: Cidr6 = "2001:db8::1/64".parse().unwrap();
        assert_eq!(c.prefix, 64);
        assert!("2001:db8::g/64".parse::<Cidr6>().is_err());
        assert!("ff02::1/64".parse::<Cidr6>().is_err());
    }

    #[test]
    fn a_network_holds_the_addresses_its_prefix_covers() {
        let c: Cidr4 = "198.18.0.1/24".parse().unwrap();
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 255)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 1, 1)));
        let host: Cidr4 = "198.18.0.1/32".parse().unwrap();
        assert!(host.contains(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(!host.contains(Ipv4Addr::new(198, 18, 0, 2)));
        let all: Cidr4 = "198.18.0.1/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(10, 0, 0, 1)));

        let c: Cidr6 = "2001:db8::1/64".parse().unwrap();
        assert!(c.contains("2001:db8::ffff:1".parse().unwrap()));
        assert!(!c.contains("2001:db8:0:1::1".parse().unwrap()));
        let host: Cidr6 = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains("2001:db8::1".parse().unwrap()));
        assert!(!host.contains("2001:db8::2".parse().unwrap()));
        let all: Cidr6 = "2001:db8::1/0".parse().unwrap();
        assert!(all.contains("fe80::1".parse().unwrap()));
        // The first bit decides at /1.
        let half: Cidr6 = "2001:db8::1/1".parse().unwrap();
        assert!(half.contains("7fff::1".parse().unwrap()));
        assert!(!half.contains("8000::1".parse().unwrap()));
    }
}
