//! Program-specific information: PAT and PMT sections.

/// MPEG-2 stream types Tessera demuxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    H264,
    Hevc,
    AacAdts,
}

impl StreamType {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x1b => Some(StreamType::H264),
            0x24 => Some(StreamType::Hevc),
            0x0f => Some(StreamType::AacAdts),
            _ => None,
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            StreamType::H264 => 0x1b,
            StreamType::Hevc => 0x24,
            StreamType::AacAdts => 0x0f,
        }
    }
}

/// CRC-32/MPEG-2 over a PSI section.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// A complete PSI section: table id, version and the bytes between the header and the CRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    pub table_id: u8,
    pub version: u8,
    pub body: &'a [u8],
}

/// Validates a long-form section (header, length, CRC) and returns its body.
pub fn parse_section(data: &[u8]) -> Result<Section<'_>, &'static str> {
    if data.len() < 12 {
        return Err("section shorter than its header");
    }
    let table_id = data[0];
    let len = (((data[1] & 0x0f) as usize) << 8) | data[2] as usize;
    if len < 9 || 3 + len > data.len() {
        return Err("section length exceeds the data");
    }
    let section = &data[..3 + len];
    if crc32_mpeg2(section) != 0 {
        return Err("section CRC mismatch");
    }
    Ok(Section { table_id, version: (data[5] >> 1) & 0x1f, body: &section[8..section.len() - 4] })
}

/// The PMT PID of the first program in a PAT body.
pub fn pat_pmt_pid(body: &[u8]) -> Option<u16> {
    body.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        (program != 0).then(|| u16::from_be_bytes([e[2], e[3]]) & 0x1fff)
    })
}

/// One elementary stream of a PMT, with its raw stream type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmtEntry {
    pub stream_type: u8,
    pub pid: u16,
}

/// The elementary streams listed in a PMT body.
pub fn pmt_entries(body: &[u8]) -> Result<Vec<PmtEntry>, &'static str> {
    if body.len() < 4 {
        return Err("PMT body too short");
    }
    let info_len = (((body[2] & 0x0f) as usize) << 8) | body[3] as usize;
    let mut rest = body.get(4 + info_len..).ok_or("PMT program info overruns the section")?;
    let mut out = Vec::new();
    while rest.len() >= 5 {
        let pid = u16::from_be_bytes([rest[1], rest[2]]) & 0x1fff;
        let es_len = (((rest[3] & 0x0f) as usize) << 8) | rest[4] as usize;
        out.push(PmtEntry { stream_type: rest[0], pid });
        rest = rest.get(5 + es_len..).ok_or("PMT ES info overruns the section")?;
    }
    Ok(out)
}

/// Writes a PAT section for one program.
pub fn write_pat(pmt_pid: u16) -> Vec<u8> {
    let mut s = vec![0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0, 0, 0x00, 0x01];
    s.extend_from_slice(&(0xe000 | pmt_pid).to_be_bytes());
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// Writes a PMT section.
pub fn write_pmt(version: u8, pcr_pid: u16, streams: &[(StreamType, u16)]) -> Vec<u8> {
    let len = 13 + 5 * streams.len();
    let mut s = vec![0x02, 0xb0 | (len >> 8) as u8, len as u8, 0x00, 0x01, 0xc1 | ((version & 0x1f) << 1), 0, 0];
    s.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
    s.extend_from_slice(&[0xf0, 0x00]);
    for (t, pid) in streams {
        s.push(t.to_byte());
        s.extend_from_slice(&(0xe000 | pid).to_be_bytes());
        s.extend_from_slice(&[0xf0, 0x00]);
    }
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_and_pmt_round_trip() {
        let pat = write_pat(0x1000);
        let s = parse_section(&pat).unwrap();
        assert_eq!(s.table_id, 0);
        assert_eq!(pat_pmt_pid(s.body), Some(0x1000));
        let pmt = write_pmt(3, 0x100, &[(StreamType::H264, 0x100), (StreamType::AacAdts, 0x101)]);
        let s = parse_section(&pmt).unwrap();
        assert_eq!((s.table_id, s.version), (2, 3));
        let e = pmt_entries(s.body).unwrap();
        assert_eq!(e, vec![PmtEntry { stream_type: 0x1b, pid: 0x100 }, PmtEntry { stream_type: 0x0f, pid: 0x101 }]);
    }

    #[test]
    fn corrupt_sections_are_rejected() {
        let mut pat = write_pat(0x1000);
        pat[9] ^= 1;
        assert_eq!(parse_section(&pat), Err("section CRC mismatch"));
        let mut pmt = write_pmt(0, 0x100, &[(StreamType::H264, 0x100)]);
        pmt[2] = 0xff; // lying section length
        assert!(parse_section(&pmt).is_err());
        assert!(parse_section(&[0; 3]).is_err());
    }
}
