//! A MaxMind DB file writer, as small as a test needs: an IPv4 database (record size 32)
//! mapping networks to `{"country": {"iso_code": CODE}}`, laid out as the format's
//! specification says (search tree, 16 zero bytes, data section, metadata marker and map).

use std::net::Ipv4Addr;

/// One value of the format's data section.
enum Value<'a> {
    Utf8(&'a str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'a str, Value<'a>)>),
    Array(Vec<Value<'a>>),
}

/// A control byte (and extended type byte) with the size, as the format encodes it.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (first, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        _ => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
    };
    if kind <= 7 {
        out.push(kind << 5 | first);
    } else {
        out.push(first);
        out.push(kind - 7);
    }
    out.extend(extra);
}

fn encode(out: &mut Vec<u8>, v: &Value) {
    let uint = |out: &mut Vec<u8>, kind: u8, n: u64| {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(out, kind, 8 - skip);
        out.extend(&bytes[skip..]);
    };
    match v {
        Value::Utf8(s) => {
            control(out, 2, s.len());
            out.extend(s.as_bytes());
        }
        Value::U16(n) => uint(out, 5, *n as u64),
        Value::U32(n) => uint(out, 6, *n as u64),
        Value::U64(n) => uint(out, 9, *n),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(out, &Value::Utf8(k));
                encode(out, v);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
    }
}

/// A record of the search tree: another node, no data, or data at an offset.
#[derive(Clone, Copy)]
enum Record {
    Node(u32),
    Empty,
    Data(u32),
}

/// The bytes of a database giving each of `networks` (`(address, prefix, country)`) its
/// country. Networks must not overlap.
pub fn country_database(networks: &[(Ipv4Addr, u8, &str)]) -> Vec<u8> {
    let mut tree: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    let mut data = Vec::new();
    for (addr, prefix, country) in networks {
        let offset = data.len() as u32;
        let record = Value::Map(vec![("country", Value::Map(vec![("iso_code", Value::Utf8(country))]))]);
        encode(&mut data, &record);
        let bits = u32::from(*addr);
        let mut node = 0usize;
        for i in 0..*prefix {
            let bit = (bits >> (31 - i) & 1) as usize;
            if i + 1 == *prefix {
                tree[node][bit] = Record::Data(offset);
                break;
            }
            node = match tree[node][bit] {
                Record::Node(n) => n as usize,
                _ => {
                    tree.push([Record::Empty; 2]);
                    tree[node][bit] = Record::Node(tree.len() as u32 - 1);
                    tree.len() - 1
                }
            };
        }
    }
    let node_count = tree.len() as u32;
    let mut out = Vec::new();
    for pair in &tree {
        for r in pair {
            let v = match r {
                Record::Node(n) => *n,
                Record::Empty => node_count,
                Record::Data(offset) => node_count + 16 + offset,
            };
            out.extend(v.to_be_bytes());
        }
    }
    out.extend([0u8; 16]);
    out.extend(&data);
    out.extend(b"\xab\xcd\xefMaxMind.com");
    let metadata = Value::Map(vec![
        ("binary_format_major_version", Value::U16(2)),
        ("binary_format_minor_version", Value::U16(0)),
        ("build_epoch", Value::U64(1_700_000_000)),
        ("database_type", Value::Utf8("Tessera-Test-Country")),
        ("description", Value::Map(vec![("en", Value::Utf8("test countries"))])),
        ("ip_version", Value::U16(4)),
        ("languages", Value::Array(vec![Value::Utf8("en")])),
        ("node_count", Value::U32(node_count)),
        ("record_size", Value::U16(32)),
    ]);
    encode(&mut out, &metadata);
    out
}
