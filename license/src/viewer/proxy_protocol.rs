//! The PROXY protocol (HAProxy's, versions 1 and 2), sans-IO: the header a load balancer
//! puts before the client's bytes to say whom the connection is from.
//!
//! [`parse`] looks at the first bytes of a connection and answers whether they are a PROXY
//! header, need more bytes, or are the client's own (HTTP, TLS); the caller consumes
//! exactly [`Parsed::Header::len`] bytes. Only connections from trusted proxies are looked
//! at: from anyone else a PROXY header is just a malformed request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 header is at most this long, `\r\n` included.
const V1_MAX: usize = 107;
/// The largest version 2 header taken (addresses and TLVs): load balancers send a few
/// hundred bytes at most.
pub const V2_MAX: usize = 4096;

/// What the first bytes of a connection are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not a PROXY header: the client's bytes start at once.
    NotProxy,
    /// A PROXY header, not whole yet.
    Incomplete,
    /// A PROXY header of `len` bytes; `source` is the client, `None` when the header
    /// names none (`LOCAL`, `UNKNOWN`, a family other than TCP over IPv4 or IPv6).
    Header { source: Option<SocketAddr>, len: usize },
}

/// Why a PROXY header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("PROXY v1 header: {0}")]
    V1(&'static str),
    #[error("PROXY v2 header: {0}")]
    V2(&'static str),
}

/// Reads a PROXY header from the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() { Ok(Parsed::Incomplete) } else { v2(buf) };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 { Ok(Parsed::Incomplete) } else { v1(buf) };
    }
    Ok(Parsed::NotProxy)
}

fn v1(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let err = ProxyHeaderError::V1;
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX { Err(err("no CRLF within 107 bytes")) } else { Ok(Parsed::Incomplete) };
    };
    let line = std::str::from_utf8(&buf[6..end]).map_err(|_| err("not ASCII"))?;
    let len = end + 2;
    let mut fields = line.split(' ');
    let source = match fields.next() {
        Some("UNKNOWN") => None,
        Some(family @ ("TCP4" | "TCP6")) => {
            let (src, _dst, sport) = (fields.next(), fields.next(), fields.next());
            let (Some(src), Some(sport)) = (src, sport) else { return Err(err("missing addresses or ports")) };
            let ip: IpAddr = src.parse().map_err(|_| err("bad source address"))?;
            if ip.is_ipv4() != (family == "TCP4") {
                return Err(err("the source address is not of the family named"));
            }
            let port: u16 = sport.parse().map_err(|_| err("bad source port"))?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(err("unknown protocol (TCP4, TCP6 or UNKNOWN)")),
    };
    Ok(Parsed::Header { source, len })
}

fn v2(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let err = ProxyHeaderError::V2;
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Err(err("version is not 2"));
    }
    let body = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let len = 16 + body;
    if len > V2_MAX {
        return Err(err("longer than 4096 bytes"));
    }
    if buf.len() < len {
        return Ok(Parsed::Incomplete);
    }
    let a = &buf[16..len];
    let source = match (ver_cmd & 0x0f, family) {
        // LOCAL: the proxy's own connection (a health check); the peer is the proxy.
        (0, _) => None,
        (1, 0x11) => {
            let a: &[u8; 12] =
                a.get(..12).and_then(|s| s.try_into().ok()).ok_or_else(|| err("short TCP4 addresses"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        (1, 0x21) => {
            let a: &[u8; 36] =
                a.get(..36).and_then(|s| s.try_into().ok()).ok_or_else(|| err("short TCP6 addresses"))?;
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&a[..16]).expect("16 bytes"));
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[32], a[33]])))
        }
        (1, _) => None,
        _ => return Err(err("unknown command")),
    };
    Ok(Parsed::Header { source, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_lines_and_their_prefixes() {
        let line = b"PROXY TCP4 198.51.100.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n";
        let want = Parsed::Header { source: Some("198.51.100.7:51234".parse().unwrap()), len: 44 };
        assert_eq!(parse(line), Ok(want));
        for cut in [1, 5, 20, 43] {
            assert_eq!(parse(&line[..cut]), Ok(Parsed::Incomplete), "{cut} bytes");
        }
        let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 80\r\n";
        assert!(
            matches!(parse(v6), Ok(Parsed::Header { source: Some(s), .. }) if s.ip() == "2001:db8::7".parse::<IpAddr>().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Parsed::Header { source: None, len: 15 }));
        assert!(parse(b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n").is_err(), "family mismatch");
        assert!(parse(b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n").is_err());
        assert!(parse(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat()).is_err(), "no CRLF in 107 bytes");
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Ok(Parsed::NotProxy));
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Ok(Parsed::NotProxy), "a TLS ClientHello");
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    }

    fn v2_header(cmd: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x20 | cmd, family]);
        h.extend((addresses.len() as u16).to_be_bytes());
        h.extend(addresses);
        h
    }

    #[test]
    fn version_2_addresses_local_and_tlvs() {
        let mut tcp4 = vec![198, 51, 100, 7, 10, 0, 0, 1, 0xc8, 0x22, 1, 187];
        tcp4.extend([0x04, 0x00, 0x02, b'h', b'i']); // a TLV, skipped
        let h = v2_header(1, 0x11, &tcp4);
        assert_eq!(parse(&h), Ok(Parsed::Header { source: Some("198.51.100.7:51234".parse().unwrap()), len: h.len() }));
        assert_eq!(parse(&h[..20]), Ok(Parsed::Incomplete));
        let mut tcp6 = [0u8; 36];
        tcp6[..16].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        tcp6[32..34].copy_from_slice(&4000u16.to_be_bytes());
        let h = v2_header(1, 0x21, &tcp6);
        assert_eq!(parse(&h), Ok(Parsed::Header { source: Some("[2001:db8::7]:4000".parse().unwrap()), len: 52 }));
        assert_eq!(parse(&v2_header(0, 0x00, &[])), Ok(Parsed::Header { source: None, len: 16 }), "LOCAL");
        assert!(parse(&v2_header(1, 0x11, &[1, 2, 3])).is_err(), "short addresses");
        assert!(parse(&v2_header(5, 0x11, &tcp4)).is_err(), "unknown command");
        let mut long = V2_SIGNATURE.to_vec();
        long.extend([0x21, 0x11, 0xff, 0xff]);
        assert!(parse(&long).is_err(), "too long");
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// Random bytes, and valid headers cut and bitten at random: never a panic, and a
    /// header is never longer than what was read.
    #[test]
    fn any_bytes_are_answered_without_a_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: [&[u8]; 3] = [b"PROXY TCP4 198.51.100.7 10.0.0.1 51234 443\r\n", V2_SIGNATURE, b"PROXY UNKNOWN\r\n"];
        for i in 0..20_000 {
            let mut buf: Vec<u8> = seeds[i % 3].to_vec();
            if i % 2 == 0 {
                buf.extend((0..next() % 40).map(|_| next() as u8));
            }
            for _ in 0..next() % 4 {
                let at = (next() as usize) % buf.len().max(1);
                if let Some(b) = buf.get_mut(at) {
                    *b = next() as u8;
                }
            }
            buf.truncate((next() as usize) % (buf.len() + 1));
            if let Ok(Parsed::Header { len, .. }) = parse(&buf) {
                assert!(len <= buf.len(), "{buf:?}");
            }
        }
    }
}
