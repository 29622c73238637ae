//! PES packet headers.

use crate::timestamp::read_pes_timestamp;

/// What the header of a PES packet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PesHeader {
    pub stream_id: u8,
    /// PES_packet_length: bytes after this field, or `None` when unbounded (0).
    pub packet_length: Option<usize>,
    /// 33-bit raw values.
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    /// Bytes from the start of the PES packet to its payload.
    pub header_len: usize,
}

/// Parses a PES header from the start of a PES packet.
pub fn parse_pes_header(b: &[u8]) -> Result<PesHeader, &'static str> {
    if b.len() < 9 {
        return Err("PES header does not fit the first packet");
    }
    if b[0] != 0 || b[1] != 0 || b[2] != 1 {
        return Err("PES start code missing");
    }
    let stream_id = b[3];
    let len = u16::from_be_bytes([b[4], b[5]]) as usize;
    let packet_length = (len != 0).then_some(len);
    if b[6] & 0xc0 != 0x80 {
        return Err("PES header is not MPEG-2 syntax");
    }
    let flags = b[7] >> 6;
    let header_data_len = b[8] as usize;
    let header_len = 9 + header_data_len;
    if b.len() < header_len {
        return Err("PES header does not fit the first packet");
    }
    if let Some(l) = packet_length {
        if l + 6 < header_len {
            return Err("PES packet length shorter than its header");
        }
    }
    let (pts, dts) = match flags {
        0b10 => (Some(read_pes_timestamp(&b[9..14]).ok_or("bad PTS marker bits")?), None),
        0b11 if header_data_len >= 10 => (
            Some(read_pes_timestamp(&b[9..14]).ok_or("bad PTS marker bits")?),
            Some(read_pes_timestamp(&b[14..19]).ok_or("bad DTS marker bits")?),
        ),
        0b11 => return Err("PTS and DTS flagged but header too short"),
        _ => (None, None),
    };
    if (flags == 0b10 || flags == 0b11) && header_data_len < 5 {
        return Err("PTS flagged but header too short");
    }
    Ok(PesHeader { stream_id, packet_length, pts, dts, header_len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::write_pes_timestamp;

    #[test]
    fn pts_and_dts() {
        let mut b = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
        b.extend_from_slice(&write_pes_timestamp(3, 9000));
        b.extend_from_slice(&write_pes_timestamp(1, 6000));
        b.push(0xaa);
        let h = parse_pes_header(&b).unwrap();
        assert_eq!((h.pts, h.dts, h.header_len, h.packet_length), (Some(9000), Some(6000), 19, None));
    }

    #[test]
    fn malformed_headers() {
        assert!(parse_pes_header(&[0, 0, 2, 0xe0, 0, 0, 0x80, 0x80, 5]).is_err());
        assert!(parse_pes_header(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 1]).is_err());
        assert!(parse_pes_header(&[0, 0, 1, 0xe0, 0, 2, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1]).is_err());
    }
}
