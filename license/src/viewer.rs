//! Who is asking: the viewer's address, as the connection shows it or, behind a proxy the
//! node trusts, as that proxy says. Regions, device limits, logs and metrics all use it.
//!
//! # Contract
//! - The connection's peer is the socket's address, or the source of a PROXY protocol
//!   header ([`proxy_protocol`]) when the socket's address is a trusted proxy: the accept
//!   loop reads that header from trusted peers only.
//! - `Forwarded` (RFC 7239, `for=`) or, when there is none, `X-Forwarded-For` are read
//!   only when the peer is a trusted proxy; from anyone else they change nothing. The
//!   chain is walked from the nearest hop back, skipping trusted proxies, and the first
//!   address that is not one is the viewer: a viewer who writes a forged address in the
//!   header only puts it further from the proxy's own entry. A hop that is no address
//!   (`unknown`, an obfuscated name, garbage) ends the walk at the last trusted hop.
//! - The node's HTTP server works this out once per request ([`viewer_address`]) and
//!   leaves it in the request's extensions; handlers take it as [`Viewer`].

pub mod proxy_protocol;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};

use crate::regions::Cidr;

/// The address of the viewer a request is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer(pub IpAddr);

/// The proxies whose word on the viewer's address is taken (`--trusted-proxy CIDR`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(ranges: Vec<Cidr>) -> Self {
        TrustedProxies(ranges)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is within a trusted range.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|r| r.contains(ip))
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket shows it)
/// as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The viewer behind a request from `peer` carrying `headers`.
pub fn viewer_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.trusts(peer) {
        return peer;
    }
    let forwarded = HeaderName::from_static("forwarded");
    let hops = if headers.contains_key(&forwarded) {
        chain(headers, &forwarded, forwarded_for)
    } else {
        chain(headers, &HeaderName::from_static("x-forwarded-for"), |e| Some(e.trim()))
    };
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop.map(canonical) {
            Some(ip) if trusted.trusts(ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// The addresses of a forwarding header's entries, farthest first; `None` for an entry
/// that names no address.
fn chain(headers: &HeaderMap, name: &HeaderName, entry: fn(&str) -> Option<&str>) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(|e| entry(e).and_then(address))
        .collect()
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, each possibly quoted.
fn address(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    v.parse::<SocketAddr>().ok().map(|s| s.ip())
}

fn peer_of(extensions: &axum::http::Extensions) -> IpAddr {
    extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Infallible;

    /// The viewer the server found for the request, or (without one) the connection's peer.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Viewer>().copied().unwrap_or_else(|| Viewer(canonical(peer_of(&parts.extensions)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_a_trusted_proxy() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(viewer_address(ip("198.51.100.7"), &forged, &proxies), ip("198.51.100.7"), "untrusted peer");
        assert_eq!(viewer_address(ip("10.1.1.1"), &forged, &proxies), ip("203.0.113.9"));
        assert_eq!(viewer_address(ip("10.1.1.1"), &forged, &TrustedProxies::default()), ip("10.1.1.1"));
        assert_eq!(viewer_address(ip("10.1.1.1"), &HeaderMap::new(), &proxies), ip("10.1.1.1"), "no header");
    }

    #[test]
    fn the_chain_is_walked_from_the_nearest_hop_past_trusted_proxies() {
        let proxies = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // The viewer wrote 1.1.1.1 itself; the CDN appended what it saw, then an inner proxy.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7"), ("x-forwarded-for", "10.2.2.2")]);
        assert_eq!(viewer_address(ip("10.1.1.1"), &h, &proxies), ip("198.51.100.7"));
        // Every hop trusted: the farthest one.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.2.2.2")]);
        assert_eq!(viewer_address(ip("10.1.1.1"), &h, &proxies), ip("10.9.9.9"));
        // Garbage ends the walk at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, nonsense, 10.2.2.2")]);
        assert_eq!(viewer_address(ip("10.1.1.1"), &h, &proxies), ip("10.2.2.2"));
        // Ports, brackets and IPv4 mapped into IPv6.
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:443, 198.51.100.7:5000")]);
        assert_eq!(viewer_address(ip("::ffff:10.1.1.1"), &h, &proxies), ip("198.51.100.7"));
    }

    #[test]
    fn any_forwarding_header_is_read_without_a_panic_and_only_from_a_trusted_peer() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let mut x = 0x0123_4567_89ab_cdefu64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789abcdef.:,;= \"[]forFOR_unknown";
        for _ in 0..5_000 {
            let value: String =
                (0..next() % 60).map(|_| alphabet[(next() as usize) % alphabet.len()] as char).collect();
            let name = if next() % 2 == 0 { "forwarded" } else { "x-forwarded-for" };
            let h = headers(&[(name, value.trim())]);
            assert_eq!(viewer_address(ip("198.51.100.7"), &h, &proxies), ip("198.51.100.7"), "untrusted: {value}");
            let _ = viewer_address(ip("10.1.1.1"), &h, &proxies);
        }
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("forwarded", "for=192.0.2.60;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1"),
        ]);
        assert_eq!(viewer_address(ip("10.1.1.1"), &h, &proxies), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=198.51.100.7, for=unknown")]);
        assert_eq!(viewer_address(ip("10.1.1.1"), &h, &proxies), ip("10.1.1.1"), "an unknown hop: the proxy");
        let h = headers(&[("forwarded", "for=\"192.0.2.43:47011\"")]);
        assert_eq!(viewer_address(ip("10.1.1.1"), &h, &proxies), ip("192.0.2.43"));
    }
}
