//! Where a viewer is: a table of address ranges (CIDR) to region names, longest prefix
//! first, kept in the catalog and looked up per license request.

use std::net::IpAddr;

/// One range of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    network: IpAddr,
    prefix: u8,
    pub region: String,
}

/// Why a table line does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line:?}: {why} (expected ADDRESS/PREFIX=REGION)")]
pub struct RangeError {
    pub line: String,
    pub why: &'static str,
}

impl Range {
    /// `10.1.0.0/16=eu-west` or `2001:db8::/32=us`.
    pub fn parse(line: &str) -> Result<Self, RangeError> {
        let err = |why| RangeError { line: line.to_string(), why };
        let (cidr, region) = line.split_once('=').ok_or_else(|| err("no '='"))?;
        let (addr, prefix) = cidr.trim().split_once('/').ok_or_else(|| err("no '/PREFIX'"))?;
        let network: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| err("the prefix is not a number"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err("the prefix is longer than the address"));
        }
        let region = region.trim();
        if region.is_empty() || region.len() > 64 {
            return Err(err("the region needs 1 to 64 characters"));
        }
        Ok(Range { network, prefix, region: region.to_string() })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (bits as usize / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// The region of `ip`: the most specific range that holds it. An IPv4 address mapped into
/// IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener sees it) is looked up as IPv4.
pub fn region_of(table: &[Range], ip: IpAddr) -> Option<&str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    table.iter().filter(|r| r.contains(ip)).max_by_key(|r| r.prefix).map(|r| r.region.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_range_wins_across_families() {
        let table: Vec<Range> = ["10.0.0.0/8=eu", "10.1.2.0/23=eu-west", "0.0.0.0/0=world", "2001:db8::/32=us"]
            .iter()
            .map(|l| Range::parse(l).unwrap())
            .collect();
        let at = |s: &str| region_of(&table, s.parse().unwrap());
        assert_eq!(at("10.9.9.9"), Some("eu"));
        assert_eq!(at("10.1.3.200"), Some("eu-west"), "a /23 holds 10.1.2.0 to 10.1.3.255");
        assert_eq!(at("10.1.4.1"), Some("eu"));
        assert_eq!(at("192.0.2.1"), Some("world"));
        assert_eq!(at("::ffff:10.1.2.3"), Some("eu-west"), "v4-mapped looked up as v4");
        assert_eq!(at("2001:db8:1::5"), Some("us"));
        assert_eq!(at("2001:db9::1"), None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, why) in [
            ("10.0.0.0/8", "no '='"),
            ("10.0.0.0=eu", "no '/PREFIX'"),
            ("10.0.0/8=eu", "not an IP address"),
            ("10.0.0.0/33=eu", "the prefix is longer than the address"),
            ("10.0.0.0/8=", "the region needs 1 to 64 characters"),
        ] {
            assert_eq!(Range::parse(line).unwrap_err().why, why, "{line}");
        }
    }
}
