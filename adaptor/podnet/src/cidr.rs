//! IPv4 address-with-prefix values (`10.244.1.7/24`): the text form apf.json uses for `podip`,
//! `worker-node-ip` and route destinations, parsed once at the edge.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 address and prefix length. The address keeps its host bits (`10.244.1.7/24` is an
/// interface address, not only a network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

/// Text that is not `a.b.c.d/n` with n ≤ 32.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IPv4 address with prefix length: {0:?}")]
pub struct CidrParseError(String);

impl Ipv4Cidr {
    /// `None` when `prefix` > 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then_some(Ipv4Cidr { addr, prefix })
    }

    /// The address as written, host bits included.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0–32.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network: host bits cleared.
    pub fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr { addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()), prefix: self.prefix }
    }

    /// True when `ip` lies in this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrParseError(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr = addr.parse::<Ipv4Addr>().map_err(|_| bad())?;
        // Only plain decimal digits: `u8::from_str` would also take a leading `+`.
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix = prefix.parse::<u8>().map_err(|_| bad())?;
        Ipv4Cidr::new(addr, prefix).ok_or_else(bad)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_interface_addresses() {
        let c: Ipv4Cidr = "10.244.1.7/24".parse().unwrap();
        assert_eq!(c.addr(), Ipv4Addr::new(10, 244, 1, 7));
        assert_eq!(c.prefix(), 24);
        assert_eq!(c.to_string(), "10.244.1.7/24");
        assert_eq!(c.network().to_string(), "10.244.1.0/24");
        assert!(c.contains(Ipv4Addr::new(10, 244, 1, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 244, 2, 1)));
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().network().prefix(), 0);
        assert!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().contains(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in
            ["", "10.0.0.1", "10.0.0.1/33", "10.0.0.1/+8", "10.0.0/8", "::1/128", "a/8", "1.2.3.4/"]
        {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }
}
