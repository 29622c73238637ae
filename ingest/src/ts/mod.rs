//! A sans-IO MPEG-TS demuxer: bytes in, [`DemuxEvent`]s out.
//!
//! Handles resynchronisation after garbage, continuity-counter gaps (the damaged PES is
//! dropped, and video waits for the next keyframe), duplicate packets, PCR, repeated and
//! changed PAT/PMT, a missing PMT (elementary streams are probed from their PES start
//! codes), PES packets that lie about their length, 33-bit timestamp wrap-around and
//! streams that start in the middle of a GOP (frames before the first keyframe dropped).

pub mod mux;
pub mod pes;
pub mod psi;

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::media::{CodecConfig, DemuxEvent, Frame, TrackInfo, TrackKind};
use crate::timestamp::{Unwrapper, TICKS_PER_SECOND};
use crate::{aac, h264, hevc};
use pes::parse_pes_header;
use psi::{parse_section, pat_pmt_pid, pmt_entries, StreamType};

pub const PACKET_SIZE: usize = 188;
const SYNC: u8 = 0x47;
/// Garbage tolerated without a single valid packet before the input is declared not TS.
const NOT_TS_AFTER: u64 = 64 * 1024;
/// A PES that grows past this without ending is dropped (a lying or missing length must
/// not hold unbounded memory).
pub const MAX_PES_BYTES: usize = 16 * 1024 * 1024;

/// What went wrong, and where: PID and byte offset into the session's input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DemuxError {
    #[error("lost sync at byte {offset}, skipped {skipped} bytes")]
    LostSync { offset: u64, skipped: u64 },
    #[error("not an MPEG-TS stream: no valid packet in the first {0} bytes")]
    NotMpegTs(u64),
    #[error("pid {pid:#x} at byte {offset}: transport error indicator set")]
    TransportError { pid: u16, offset: u64 },
    #[error("pid {pid:#x} at byte {offset}: continuity counter expected {expected}, got {got}")]
    Continuity { pid: u16, offset: u64, expected: u8, got: u8 },
    #[error("pid {pid:#x} at byte {offset}: bad PSI: {what}")]
    Psi { pid: u16, offset: u64, what: &'static str },
    #[error("pid {pid:#x} at byte {offset}: bad PES: {what}")]
    Pes { pid: u16, offset: u64, what: String },
    #[error("pid {pid:#x} at byte {offset}: bad codec data: {what}")]
    Codec { pid: u16, offset: u64, what: String },
}

impl DemuxError {
    /// A fatal error means the input will never produce media: close the session.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DemuxError::NotMpegTs(_))
    }
}

/// Counters a session reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemuxStats {
    pub bytes: u64,
    pub packets: u64,
    pub frames: u64,
    pub continuity_errors: u64,
    pub dropped_frames: u64,
    pub resyncs: u64,
}

struct PesBuf {
    data: BytesMut,
    expected: Option<usize>,
    pts: Option<u64>,
    dts: Option<u64>,
    offset: u64,
}

struct ElementaryStream {
    stream_type: StreamType,
    cc: Option<u8>,
    last_packet: Option<[u8; PACKET_SIZE]>,
    pes: Option<PesBuf>,
    config: Option<CodecConfig>,
    /// Video: drop frames until a keyframe (start of stream, or after damage).
    need_keyframe: bool,
    /// Audio: where the next frame starts when a PES has no PTS.
    next_audio_pts: Option<i64>,
}

impl ElementaryStream {
    fn new(stream_type: StreamType) -> Self {
        ElementaryStream {
            stream_type,
            cc: None,
            last_packet: None,
            pes: None,
            config: None,
            need_keyframe: true,
            next_audio_pts: None,
        }
    }
}

/// The demuxer. One per ingest session.
pub struct TsDemuxer {
    pending: BytesMut,
    offset: u64,
    /// Where sync was lost, while it is.
    lost_from: Option<u64>,
    synced_once: bool,
    pmt_pid: Option<u16>,
    pmt_version: Option<u8>,
    psi: HashMap<u16, (BytesMut, u8)>,
    streams: HashMap<u16, ElementaryStream>,
    unwrapper: Unwrapper,
    last_pcr: Option<i64>,
    stats: DemuxStats,
    out: Vec<Result<DemuxEvent, DemuxError>>,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl TsDemuxer {
    pub fn new() -> Self {
        TsDemuxer {
            pending: BytesMut::new(),
            offset: 0,
            lost_from: None,
            synced_once: false,
            pmt_pid: None,
            pmt_version: None,
            psi: HashMap::new(),
            streams: HashMap::new(),
            unwrapper: Unwrapper::new(),
            last_pcr: None,
            stats: DemuxStats::default(),
            out: Vec::new(),
        }
    }

    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    /// The last PCR seen, in 27 MHz ticks (33-bit base x 300 + extension), unwrapped.
    pub fn last_pcr(&self) -> Option<i64> {
        self.last_pcr
    }

    /// Feeds bytes; returns the events and errors they completed, in order. The result
    /// does not depend on how the input is split across calls: a packet is taken once the
    /// next packet's sync byte confirms it (or, at [`TsDemuxer::flush`], the input ended).
    pub fn push(&mut self, data: &[u8]) -> Vec<Result<DemuxEvent, DemuxError>> {
        self.stats.bytes += data.len() as u64;
        self.pending.extend_from_slice(data);
        self.scan(false);
        std::mem::take(&mut self.out)
    }

    /// Takes every confirmed packet from `pending`, skipping bytes where sync is lost
    /// (reported once sync is found again, as one gap). `ended`: the input is over, so a
    /// last packet needs no confirmation. True if the input turned out not to be TS.
    fn scan(&mut self, ended: bool) -> bool {
        let mut pos = 0;
        loop {
            let left = self.pending.len() - pos;
            if left < PACKET_SIZE || (left == PACKET_SIZE && !ended) {
                break;
            }
            let confirmed = left == PACKET_SIZE || self.pending[pos + PACKET_SIZE] == SYNC;
            if self.pending[pos] == SYNC && confirmed {
                self.found_sync();
                let mut packet = [0u8; PACKET_SIZE];
                packet.copy_from_slice(&self.pending[pos..pos + PACKET_SIZE]);
                self.packet(&packet);
                self.offset += PACKET_SIZE as u64;
                pos += PACKET_SIZE;
                continue;
            }
            self.lost_from.get_or_insert(self.offset);
            self.offset += 1;
            pos += 1;
            if !self.synced_once && self.offset >= NOT_TS_AFTER {
                self.found_sync();
                self.out.push(Err(DemuxError::NotMpegTs(self.offset)));
                self.pending.clear();
                return true;
            }
        }
        let _ = self.pending.split_to(pos);
        false
    }

    /// Reports the gap since sync was lost, if it was.
    fn found_sync(&mut self) {
        if let Some(from) = self.lost_from.take() {
            self.stats.resyncs += 1;
            self.out.push(Err(DemuxError::LostSync { offset: from, skipped: self.offset - from }));
        }
    }

    /// The input has ended: takes the last packet, completes pending PES packets.
    pub fn flush(&mut self) -> Vec<Result<DemuxEvent, DemuxError>> {
        if !self.scan(true) {
            self.found_sync();
        }
        let mut pids: Vec<u16> = self.streams.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            self.finish_pes(pid, true);
        }
        std::mem::take(&mut self.out)
    }

    fn packet(&mut self, p: &[u8; PACKET_SIZE]) {
        let offset = self.offset;
        let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1fff;
        if p[1] & 0x80 != 0 {
            self.out.push(Err(DemuxError::TransportError { pid, offset }));
            return;
        }
        self.synced_once = true;
        self.stats.packets += 1;
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let cc = p[3] & 0x0f;
        let mut payload_start = 4;
        let mut discontinuity = false;
        if afc & 2 != 0 {
            let af_len = p[4] as usize;
            if af_len > 183 {
                self.out.push(Err(DemuxError::Pes { pid, offset, what: "adaptation field too long".into() }));
                return;
            }
            if af_len > 0 {
                let flags = p[5];
                discontinuity = flags & 0x80 != 0;
                if flags & 0x10 != 0 && af_len >= 7 {
                    if let Some((base, ext)) = crate::timestamp::read_pcr(&p[6..12]) {
                        let base = self.unwrapper.unwrap_near(base, self.last_pcr.map_or(base as i64, |p| p / 300));
                        self.last_pcr = Some(base * 300 + ext as i64);
                    }
                }
            }
            payload_start = 5 + af_len;
        }
        if afc & 1 == 0 || payload_start >= PACKET_SIZE {
            return;
        }
        if pid == 0x1fff {
            return;
        }
        // Continuity: only packets with payload count.
        let cc_state = if let Some(es) = self.streams.get_mut(&pid) {
            let expected = es.cc.map(|c| (c + 1) & 0x0f);
            let duplicate = es.cc == Some(cc) && es.last_packet.as_ref() == Some(p);
            es.cc = Some(cc);
            es.last_packet = Some(*p);
            if duplicate {
                return;
            }
            match expected {
                Some(e) if e != cc && !discontinuity => Some(e),
                _ => None,
            }
        } else {
            None
        };
        if let Some(expected) = cc_state {
            self.stats.continuity_errors += 1;
            self.out.push(Err(DemuxError::Continuity { pid, offset, expected, got: cc }));
            if let Some(es) = self.streams.get_mut(&pid) {
                if es.pes.take().is_some() {
                    self.stats.dropped_frames += 1;
                }
                if matches!(es.stream_type, StreamType::H264 | StreamType::Hevc) {
                    es.need_keyframe = true;
                }
            }
        }
        let payload = &p[payload_start..];
        if pid == 0 || Some(pid) == self.pmt_pid {
            self.psi_packet(pid, pusi, payload);
        } else if self.streams.contains_key(&pid) {
            self.pes_packet(pid, pusi, payload);
        } else if pusi && self.pmt_version.is_none() {
            if let Some(t) = probe_stream_type(payload) {
                tracing::debug!(pid, ?t, "no PMT yet: stream type probed from PES");
                self.streams.insert(pid, ElementaryStream::new(t));
                self.streams.get_mut(&pid).expect("inserted").cc = Some(cc);
                self.pes_packet(pid, pusi, payload);
            }
        }
    }

    fn psi_packet(&mut self, pid: u16, pusi: bool, payload: &[u8]) {
        let offset = self.offset;
        let data = if pusi {
            let pointer = payload[0] as usize;
            match payload.get(1 + pointer..) {
                Some(d) => {
                    self.psi.insert(pid, (BytesMut::from(d), 0));
                    None
                }
                None => Some("pointer field past the packet"),
            }
        } else if let Some((buf, _)) = self.psi.get_mut(&pid) {
            buf.extend_from_slice(payload);
            None
        } else {
            return;
        };
        if let Some(what) = data {
            self.out.push(Err(DemuxError::Psi { pid, offset, what }));
            return;
        }
        let Some((buf, _)) = self.psi.get(&pid) else { return };
        if buf.len() < 3 {
            return;
        }
        if buf[0] == 0xff {
            self.psi.remove(&pid);
            return;
        }
        let len = (((buf[1] & 0x0f) as usize) << 8) | buf[2] as usize;
        if buf.len() < 3 + len {
            if buf.len() > 4096 {
                self.psi.remove(&pid);
            }
            return;
        }
        let (buf, _) = self.psi.remove(&pid).expect("present");
        let section = match parse_section(&buf) {
            Ok(s) => s,
            Err(what) => {
                self.out.push(Err(DemuxError::Psi { pid, offset, what }));
                return;
            }
        };
        match (pid, section.table_id) {
            (0, 0) => {
                if let Some(pmt) = pat_pmt_pid(section.body) {
                    if self.pmt_pid != Some(pmt) {
                        self.pmt_pid = Some(pmt);
                        self.pmt_version = None;
                    }
                }
            }
            (_, 2) if Some(pid) == self.pmt_pid => {
                if self.pmt_version == Some(section.version) {
                    return; // a resent PMT
                }
                match pmt_entries(section.body) {
                    Ok(entries) => self.apply_pmt(section.version, &entries),
                    Err(what) => self.out.push(Err(DemuxError::Psi { pid, offset, what })),
                }
            }
            _ => {}
        }
    }

    fn apply_pmt(&mut self, version: u8, entries: &[psi::PmtEntry]) {
        self.pmt_version = Some(version);
        let mut keep = HashMap::new();
        for e in entries {
            let Some(t) = StreamType::from_byte(e.stream_type) else {
                tracing::debug!(pid = e.pid, stream_type = e.stream_type, "ignoring unsupported stream type");
                continue;
            };
            match self.streams.remove(&e.pid) {
                Some(es) if es.stream_type == t => keep.insert(e.pid, es),
                _ => keep.insert(e.pid, ElementaryStream::new(t)),
            };
        }
        self.streams = keep;
    }

    fn pes_packet(&mut self, pid: u16, pusi: bool, payload: &[u8]) {
        let offset = self.offset;
        if pusi {
            self.finish_pes(pid, false);
            match parse_pes_header(payload) {
                Ok(h) => {
                    let es = self.streams.get_mut(&pid).expect("caller checked");
                    let body = &payload[h.header_len..];
                    let expected = h.packet_length.map(|l| l + 6 - h.header_len);
                    let mut data = BytesMut::with_capacity(expected.unwrap_or(16 * 1024));
                    data.extend_from_slice(body);
                    es.pes = Some(PesBuf { data, expected, pts: h.pts, dts: h.dts, offset });
                }
                Err(what) => {
                    self.out.push(Err(DemuxError::Pes { pid, offset, what: what.into() }));
                    return;
                }
            }
        } else {
            let es = self.streams.get_mut(&pid).expect("caller checked");
            let Some(pes) = es.pes.as_mut() else { return };
            if pes.data.len() + payload.len() > MAX_PES_BYTES {
                let start = pes.offset;
                es.pes = None;
                es.need_keyframe = true;
                self.stats.dropped_frames += 1;
                self.out.push(Err(DemuxError::Pes {
                    pid,
                    offset: start,
                    what: format!("PES larger than {MAX_PES_BYTES} bytes"),
                }));
                return;
            }
            pes.data.extend_from_slice(payload);
        }
        let es = self.streams.get_mut(&pid).expect("caller checked");
        if let Some(pes) = es.pes.as_ref() {
            if let Some(expected) = pes.expected {
                if pes.data.len() >= expected {
                    self.finish_pes(pid, false);
                }
            }
        }
    }

    /// Completes the PES buffered on `pid`, if any.
    fn finish_pes(&mut self, pid: u16, at_end: bool) {
        let Some(es) = self.streams.get_mut(&pid) else { return };
        let Some(mut pes) = es.pes.take() else { return };
        if let Some(expected) = pes.expected {
            if pes.data.len() < expected {
                self.stats.dropped_frames += 1;
                let what = format!("PES declared {expected} payload bytes, ended after {}", pes.data.len());
                if !at_end {
                    self.out.push(Err(DemuxError::Pes { pid, offset: pes.offset, what }));
                }
                return;
            }
            if pes.data.len() > expected {
                // Stuffing after a bounded PES is only legal as 0xff in the last packet.
                let extra = &pes.data[expected..];
                if extra.len() >= PACKET_SIZE || extra.iter().any(|b| *b != 0xff) {
                    self.out.push(Err(DemuxError::Pes {
                        pid,
                        offset: pes.offset,
                        what: format!("PES longer than its declared {expected} bytes"),
                    }));
                }
                pes.data.truncate(expected);
            }
        }
        let Some(raw_pts) = pes.pts else {
            if es.stream_type != StreamType::AacAdts || es.next_audio_pts.is_none() {
                self.stats.dropped_frames += 1;
                self.out.push(Err(DemuxError::Pes { pid, offset: pes.offset, what: "PES without PTS".into() }));
                return;
            }
            let pts = es.next_audio_pts.expect("checked");
            self.audio(pid, pts, pes.data.freeze(), pes.offset);
            return;
        };
        let pts = self.unwrapper.unwrap(raw_pts);
        let dts = pes.dts.map_or(pts, |d| self.unwrapper.unwrap_near(d, pts));
        let es = self.streams.get(&pid).expect("present");
        match es.stream_type {
            StreamType::AacAdts => self.audio(pid, pts, pes.data.freeze(), pes.offset),
            StreamType::H264 | StreamType::Hevc => self.video(pid, pts, dts, pes.data.freeze(), pes.offset),
        }
    }

    fn video(&mut self, pid: u16, pts: i64, dts: i64, data: Bytes, offset: u64) {
        let es = self.streams.get_mut(&pid).expect("present");
        let (sample, keyframe, new_config) = match es.stream_type {
            StreamType::H264 => {
                let au = h264::convert_access_unit(&data);
                let cfg = match (&au.sps, &es.config) {
                    (Some(sps), Some(CodecConfig::H264(c)))
                        if c.sps == *sps && (au.pps.is_empty() || c.pps == au.pps) =>
                    {
                        None
                    }
                    (Some(sps), _) => {
                        let pps = if au.pps.is_empty() {
                            match &es.config {
                                Some(CodecConfig::H264(c)) => c.pps.clone(),
                                _ => vec![],
                            }
                        } else {
                            au.pps.clone()
                        };
                        Some(h264::parse_sps(sps, pps).map(CodecConfig::H264).map_err(|e| e.to_string()))
                    }
                    (None, _) => None,
                };
                (au.sample, au.keyframe, cfg)
            }
            StreamType::Hevc => {
                let au = hevc::convert_access_unit(&data);
                let cfg = match (&au.vps, &au.sps, &es.config) {
                    (_, Some(sps), Some(CodecConfig::Hevc(c))) if c.sps == *sps => None,
                    (Some(vps), Some(sps), _) => Some(
                        hevc::parse_sps(vps.clone(), sps, au.pps.clone())
                            .map(CodecConfig::Hevc)
                            .map_err(|e| e.to_string()),
                    ),
                    _ => None,
                };
                (au.sample, au.keyframe, cfg)
            }
            StreamType::AacAdts => unreachable!("audio handled elsewhere"),
        };
        match new_config {
            Some(Ok(cfg)) if cfg.dimensions().is_some_and(|(w, h)| w > 0 && h > 0) => {
                let has_pps = match &cfg {
                    CodecConfig::H264(c) => !c.pps.is_empty(),
                    CodecConfig::Hevc(c) => !c.pps.is_empty(),
                    CodecConfig::Aac(_) => true,
                };
                if has_pps {
                    es.config = Some(cfg.clone());
                    self.out.push(Ok(DemuxEvent::Track(TrackInfo { id: pid, codec: cfg })));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(what)) => self.out.push(Err(DemuxError::Codec { pid, offset, what })),
            None => {}
        }
        let es = self.streams.get_mut(&pid).expect("present");
        if es.config.is_none() || sample.is_empty() || (es.need_keyframe && !keyframe) {
            self.stats.dropped_frames += 1;
            return;
        }
        es.need_keyframe = false;
        self.stats.frames += 1;
        self.out.push(Ok(DemuxEvent::Frame(Frame {
            track: pid,
            kind: TrackKind::Video,
            pts,
            dts,
            keyframe,
            data: sample,
        })));
    }

    fn audio(&mut self, pid: u16, pts: i64, data: Bytes, offset: u64) {
        let (frames, err) = aac::parse_adts(&data);
        if let Some(e) = err {
            self.stats.dropped_frames += 1;
            self.out.push(Err(DemuxError::Codec { pid, offset, what: e.to_string() }));
        }
        let es = self.streams.get_mut(&pid).expect("present");
        let mut t = pts;
        for f in frames {
            let cfg = CodecConfig::Aac(f.config.clone());
            if es.config.as_ref() != Some(&cfg) {
                es.config = Some(cfg.clone());
                self.out.push(Ok(DemuxEvent::Track(TrackInfo { id: pid, codec: cfg })));
            }
            self.stats.frames += 1;
            self.out.push(Ok(DemuxEvent::Frame(Frame {
                track: pid,
                kind: TrackKind::Audio,
                pts: t,
                dts: t,
                keyframe: true,
                data: f.payload,
            })));
            t += (aac::SAMPLES_PER_FRAME as i64 * TICKS_PER_SECOND) / f.config.sample_rate as i64;
        }
        es.next_audio_pts = Some(t);
    }
}

/// Guesses the stream type of a PES start when no PMT has been seen.
fn probe_stream_type(payload: &[u8]) -> Option<StreamType> {
    let h = parse_pes_header(payload).ok()?;
    let body = &payload[h.header_len..];
    match h.stream_id {
        0xe0..=0xef => {
            let nals = crate::bits::annexb_nals(body);
            let first = nals.first()?;
            if matches!(first[0] & 0x1f, 9 | 7) && first[0] & 0x80 == 0 {
                Some(StreamType::H264)
            } else if matches!(hevc::nal_type(first[0]), 35 | 32) {
                Some(StreamType::Hevc)
            } else {
                None
            }
        }
        0xc0..=0xdf if body.len() >= 2 && body[0] == 0xff && body[1] & 0xf6 == 0xf0 => Some(StreamType::AacAdts),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
