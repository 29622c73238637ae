//! Writing MPEG-TS: packetising PES and PSI (for tests, tools and the demo publisher), and
//! re-timing an existing stream so that a file can be looped as one continuous feed.

use std::collections::HashMap;

use super::psi::{write_pat, write_pmt, StreamType};
use super::PACKET_SIZE;
use crate::timestamp::{read_pcr, read_pes_timestamp, write_pes_timestamp, WRAP};

/// Packetises PSI and PES with correct continuity counters.
#[derive(Debug, Default)]
pub struct TsWriter {
    cc: HashMap<u16, u8>,
}

/// One PES to packetise.
#[derive(Debug, Clone)]
pub struct PesSpec<'a> {
    pub pid: u16,
    pub stream_id: u8,
    pub pts: u64,
    pub dts: Option<u64>,
    /// PCR in 27 MHz ticks.
    pub pcr: Option<u64>,
    pub random_access: bool,
    /// Write PES_packet_length (audio) instead of 0 (video).
    pub bounded: bool,
    pub data: &'a [u8],
}

impl TsWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let cc = self.cc.entry(pid).or_insert(15);
        *cc = (*cc + 1) & 0x0f;
        *cc
    }

    /// A PAT and a PMT for one program.
    pub fn psi(&mut self, pmt_pid: u16, pcr_pid: u16, streams: &[(StreamType, u16)]) -> Vec<u8> {
        let mut out = self.section(0, &write_pat(pmt_pid));
        out.extend(self.section(pmt_pid, &write_pmt(0, pcr_pid, streams)));
        out
    }

    fn section(&mut self, pid: u16, section: &[u8]) -> Vec<u8> {
        let mut p = vec![0xff; PACKET_SIZE];
        p[0] = 0x47;
        p[1] = 0x40 | (pid >> 8) as u8;
        p[2] = pid as u8;
        p[3] = 0x10 | self.next_cc(pid);
        p[4] = 0;
        p[5..5 + section.len()].copy_from_slice(section);
        p
    }

    /// Packetises one PES.
    pub fn pes(&mut self, spec: &PesSpec) -> Vec<u8> {
        let mut pes = vec![0, 0, 1, spec.stream_id, 0, 0, 0x80];
        match spec.dts {
            Some(dts) => {
                pes.extend_from_slice(&[0xc0, 10]);
                pes.extend_from_slice(&write_pes_timestamp(3, spec.pts));
                pes.extend_from_slice(&write_pes_timestamp(1, dts));
            }
            None => {
                pes.extend_from_slice(&[0x80, 5]);
                pes.extend_from_slice(&write_pes_timestamp(2, spec.pts));
            }
        }
        if spec.bounded {
            let len = pes.len() - 6 + spec.data.len();
            pes[4..6].copy_from_slice(&(len.min(0xffff) as u16).to_be_bytes());
        }
        pes.extend_from_slice(spec.data);
        let mut out = Vec::with_capacity(pes.len() / 184 * PACKET_SIZE + 2 * PACKET_SIZE);
        let mut rest = &pes[..];
        let mut first = true;
        while !rest.is_empty() {
            let mut af = Vec::new();
            if first && (spec.pcr.is_some() || spec.random_access) {
                let mut flags = 0u8;
                if spec.random_access {
                    flags |= 0x40;
                }
                af.push(flags);
                if let Some(pcr) = spec.pcr {
                    af[0] |= 0x10;
                    let base = (pcr / 300) & ((1 << 33) - 1);
                    let ext = pcr % 300;
                    af.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        ((base as u8 & 1) << 7) | 0x7e | (ext >> 8) as u8,
                        ext as u8,
                    ]);
                }
            }
            let room = 184 - if af.is_empty() { 0 } else { 1 + af.len() };
            let take = rest.len().min(room);
            if take < room {
                // Stuff the adaptation field so the payload ends the packet.
                let need = room - take;
                if af.is_empty() {
                    if need == 1 {
                        // An adaptation field of length 0 takes exactly one byte.
                    } else {
                        af.push(0);
                        af.extend(std::iter::repeat_n(0xff, need - 2));
                    }
                } else {
                    af.extend(std::iter::repeat_n(0xff, need));
                }
            }
            let pid = spec.pid;
            let has_af = !af.is_empty() || take < 184;
            let mut p = Vec::with_capacity(PACKET_SIZE);
            p.push(0x47);
            p.push(if first { 0x40 } else { 0 } | (pid >> 8) as u8);
            p.push(pid as u8);
            p.push(if has_af { 0x30 } else { 0x10 } | self.next_cc(pid));
            if has_af {
                p.push(af.len() as u8);
                p.extend_from_slice(&af);
            }
            p.extend_from_slice(&rest[..take]);
            debug_assert_eq!(p.len(), PACKET_SIZE);
            out.extend_from_slice(&p);
            rest = &rest[take..];
            first = false;
        }
        out
    }
}

/// Shifts PTS, DTS and PCR of a TS by an offset and keeps continuity counters running, so a
/// file played in a loop reads as one continuous stream.
#[derive(Debug, Default)]
pub struct TsRetimer {
    offset: i64,
    cc: HashMap<u16, u8>,
}

impl TsRetimer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the offset, in 90 kHz ticks, added to every timestamp from now on.
    pub fn set_offset(&mut self, offset: i64) {
        self.offset = offset;
    }

    /// Rewrites one 188-byte packet in place. Packets that do not start with a sync byte are
    /// left alone.
    pub fn retime(&mut self, p: &mut [u8]) {
        if p.len() != PACKET_SIZE || p[0] != 0x47 {
            return;
        }
        let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1fff;
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        if afc & 1 != 0 && pid != 0x1fff {
            let cc = self.cc.entry(pid).or_insert((p[3] & 0x0f).wrapping_sub(1) & 0x0f);
            *cc = (*cc + 1) & 0x0f;
            p[3] = (p[3] & 0xf0) | *cc;
        }
        let mut start = 4;
        if afc & 2 != 0 {
            let af_len = p[4] as usize;
            if af_len >= 7 && p[5] & 0x10 != 0 {
                let (base, _) = read_pcr(&p[6..12]).expect("six bytes");
                let base = shift(base, self.offset);
                p[6] = (base >> 25) as u8;
                p[7] = (base >> 17) as u8;
                p[8] = (base >> 9) as u8;
                p[9] = (base >> 1) as u8;
                p[10] = (p[10] & 0x7f) | ((base as u8 & 1) << 7);
            }
            start = 5 + af_len;
        }
        if !pusi || afc & 1 == 0 || start + 19 > PACKET_SIZE {
            return;
        }
        let h = &mut p[start..];
        if h[0] != 0 || h[1] != 0 || h[2] != 1 || h[6] & 0xc0 != 0x80 {
            return;
        }
        let flags = h[7] >> 6;
        if flags & 2 != 0 {
            if let Some(pts) = read_pes_timestamp(&h[9..14]) {
                let prefix = h[9] >> 4;
                h[9..14].copy_from_slice(&write_pes_timestamp(prefix, shift(pts, self.offset)));
            }
        }
        if flags == 3 {
            if let Some(dts) = read_pes_timestamp(&h[14..19]) {
                let prefix = h[14] >> 4;
                h[14..19].copy_from_slice(&write_pes_timestamp(prefix, shift(dts, self.offset)));
            }
        }
    }
}

fn shift(ts: u64, offset: i64) -> u64 {
    (ts as i64 + offset).rem_euclid(WRAP) as u64
}

/// The PCR of a packet, in 27 MHz ticks (not unwrapped), if it carries one.
pub fn packet_pcr(p: &[u8]) -> Option<u64> {
    if p.len() < 12 || p[0] != 0x47 || (p[3] >> 4) & 2 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let (base, ext) = read_pcr(&p[6..12])?;
    Some(base * 300 + ext)
}
