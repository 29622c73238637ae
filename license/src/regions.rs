//! Where a viewer is: a table of address ranges (CIDR) to region names, longest prefix
//! first, kept in the catalog and looked up on every request for region-limited content.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// Whether a viewer in `region` may watch under `allowed` regions (none named: everywhere;
/// a viewer of no known region: only then).
pub fn allows(allowed: &[String], region: Option<&str>) -> bool {
    allowed.is_empty() || region.is_some_and(|r| allowed.iter().any(|a| a == r))
}

/// An address range: `10.0.0.0/8`, `2001:db8::/32`; a bare address is the range of
/// itself alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the range (an IPv4 range holds no IPv6 address: map first).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.network.is_ipv4() == ip.is_ipv4() && masked(self.network, self.prefix) == masked(ip, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| "not an IP address")?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse().map_err(|_| "the prefix is not a number")?,
        };
        if prefix > max {
            return Err("the prefix is longer than the address");
        }
        Ok(Cidr { network, prefix })
    }
}

/// One range of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    cidr: Cidr,
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
        if !cidr.contains('/') {
            return Err(err("no '/PREFIX'"));
        }
        let cidr: Cidr = cidr.parse().map_err(err)?;
        let region = region.trim();
        if region.is_empty() || region.len() > 64 {
            return Err(err("the region needs 1 to 64 characters"));
        }
        Ok(Range { cidr, region: region.to_string() })
    }
}

/// The address-to-region table, indexed for a lookup per request: one map per prefix
/// length, tried from the longest, so a lookup costs a hash per distinct prefix length,
/// however many lines the table has.
#[derive(Debug, Default)]
pub struct RegionTable {
    /// (IPv4?, prefix, masked network -> index into `regions`), longest prefix first.
    by_prefix: Vec<(bool, u8, Networks)>,
    regions: Vec<String>,
}

impl RegionTable {
    /// The table of `ranges`; of two ranges with the same network, the later wins.
    pub fn new(ranges: impl IntoIterator<Item = Range>) -> Self {
        let mut table = RegionTable::default();
        for r in ranges {
            let (v4, prefix) = (r.cidr.network.is_ipv4(), r.cidr.prefix);
            let at = match table.by_prefix.iter().position(|(f, p, _)| *f == v4 && *p == prefix) {
                Some(at) => at,
                None => {
                    table.by_prefix.push((v4, prefix, Default::default()));
                    table.by_prefix.len() - 1
                }
            };
            table.regions.push(r.region);
            let index = table.regions.len() - 1;
            table.by_prefix[at].2.insert(masked(r.cidr.network, prefix), index);
        }
        table.by_prefix.sort_by_key(|(_, prefix, _)| std::cmp::Reverse(*prefix));
        table
    }

    /// The table of the catalog's lines; lines that do not parse are left out (the catalog
    /// refuses them when they are written).
    pub fn parse(lines: &[String]) -> Self {
        RegionTable::new(lines.iter().filter_map(|l| Range::parse(l).ok()))
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The region of `ip`: the most specific range that holds it. An IPv4 address mapped
    /// into IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener sees it) is looked up as IPv4.
    pub fn region_of(&self, ip: IpAddr) -> Option<&str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.by_prefix
            .iter()
            .filter(|(v4, _, _)| *v4 == ip.is_ipv4())
            .find_map(|(_, prefix, nets)| nets.get(&masked(ip, *prefix)))
            .map(|i| self.regions[*i].as_str())
    }
}

/// Masked networks of one prefix length, to the index of their region.
type Networks = HashMap<u128, usize, BuildHasherDefault<NetworkHasher>>;

/// Hashes a masked network: the table's keys are addresses, not attacker-chosen strings
/// (the table comes from the admin API), so a multiply-and-fold is enough and several
/// times cheaper than SipHash on the request path.
#[derive(Default)]
struct NetworkHasher(u64);

impl Hasher for NetworkHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u128(&mut self, n: u128) {
        let folded = (n as u64) ^ ((n >> 64) as u64).rotate_left(29);
        self.0 = (self.0 ^ folded).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 32;
    }
}

/// `ip`'s first `prefix` bits, as a number.
fn masked(ip: IpAddr, prefix: u8) -> u128 {
    let (bits, width) = match ip {
        IpAddr::V4(v4) => (u32::from(v4) as u128, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix as u32) << (width - prefix as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_range_wins_across_families() {
        let table = RegionTable::parse(
            &["10.0.0.0/8=eu", "10.1.2.0/23=eu-west", "0.0.0.0/0=world", "2001:db8::/32=us"].map(String::from),
        );
        let at = |s: &str| table.region_of(s.parse().unwrap());
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
