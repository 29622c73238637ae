use super::mux::{PesSpec, TsWriter};
use super::psi::StreamType;
use super::*;
use crate::aac::tests::adts_header;
use crate::h264::tests::SPS_640X360;
use crate::timestamp::WRAP;

const PPS: &[u8] = &[0x68, 0xef, 0xbc, 0xb0];
const VPID: u16 = 0x100;
const APID: u16 = 0x101;

fn idr() -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
    v.extend_from_slice(SPS_640X360);
    v.extend_from_slice(&[0, 0, 0, 1]);
    v.extend_from_slice(PPS);
    v.extend_from_slice(&[0, 0, 1, 0x65, 0x88]);
    v.extend(std::iter::repeat_n(0x5a, 600));
    v
}

fn non_idr() -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a];
    v.extend(std::iter::repeat_n(0x33, 400));
    v
}

fn adts(n: usize) -> Vec<u8> {
    let mut v = adts_header(n).to_vec();
    v.extend(std::iter::repeat_n(0x21, n));
    v
}

/// A synthetic feed: `frames` video frames at 25 fps (keyframe every `gop`), one AAC frame
/// per video frame, PSI every 10 frames.
fn feed(start_pts: u64, frames: usize, gop: usize, psi: bool) -> Vec<u8> {
    let mut w = TsWriter::new();
    let mut out = Vec::new();
    for i in 0..frames {
        if psi && i % 10 == 0 {
            out.extend(w.psi(0x1000, VPID, &[(StreamType::H264, VPID), (StreamType::AacAdts, APID)]));
        }
        let pts = start_pts + i as u64 * 3600;
        let data = if i % gop == 0 { idr() } else { non_idr() };
        out.extend(w.pes(&PesSpec {
            pid: VPID,
            stream_id: 0xe0,
            pts: pts + 3600,
            dts: Some(pts),
            pcr: Some(pts * 300),
            random_access: i % gop == 0,
            bounded: false,
            data: &data,
        }));
        out.extend(w.pes(&PesSpec {
            pid: APID,
            stream_id: 0xc0,
            pts,
            dts: None,
            pcr: None,
            random_access: false,
            bounded: true,
            data: &adts(50),
        }));
    }
    out
}

fn run(d: &mut TsDemuxer, data: &[u8]) -> (Vec<DemuxEvent>, Vec<DemuxError>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    // Feed in uneven chunks, as a network would.
    for chunk in data.chunks(1316 + 7) {
        for r in d.push(chunk) {
            match r {
                Ok(e) => events.push(e),
                Err(e) => errors.push(e),
            }
        }
    }
    for r in d.flush() {
        match r {
            Ok(e) => events.push(e),
            Err(e) => errors.push(e),
        }
    }
    (events, errors)
}

fn frames(events: &[DemuxEvent], kind: TrackKind) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) if f.kind == kind => Some(f),
            _ => None,
        })
        .collect()
}

fn tracks(events: &[DemuxEvent]) -> Vec<&TrackInfo> {
    events.iter().filter_map(|e| if let DemuxEvent::Track(t) = e { Some(t) } else { None }).collect()
}

#[test]
fn demuxes_the_bundled_sample() {
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample.ts")).unwrap();
    let mut d = TsDemuxer::new();
    let (events, errors) = run(&mut d, &data);
    assert!(errors.is_empty(), "{errors:?}");
    let t = tracks(&events);
    assert_eq!(t.len(), 2, "one announcement per track: {t:?}");
    let video = t.iter().find(|t| t.kind() == TrackKind::Video).unwrap();
    assert_eq!(video.codec.dimensions(), Some((640, 360)));
    assert_eq!(video.codec.rfc6381(), "avc1.64001e");
    let audio = t.iter().find(|t| t.kind() == TrackKind::Audio).unwrap();
    assert_eq!(audio.codec.rfc6381(), "mp4a.40.2");
    let v = frames(&events, TrackKind::Video);
    assert_eq!(v.len(), 150);
    assert!(v[0].keyframe);
    assert_eq!(v.iter().filter(|f| f.keyframe).count(), 6);
    assert!(v.windows(2).all(|w| w[1].dts > w[0].dts), "DTS strictly increasing");
    assert!(v.iter().any(|f| f.pts != f.dts), "the sample has B-frames");
    let a = frames(&events, TrackKind::Audio);
    assert!(a.len() >= 275, "{} audio frames", a.len());
    assert!(d.last_pcr().is_some());
}

#[test]
fn timestamps_unwrap_across_33_bits() {
    let start = (WRAP - 10 * 3600) as u64;
    let mut d = TsDemuxer::new();
    let (events, errors) = run(&mut d, &feed(start, 30, 10, true));
    assert!(errors.is_empty(), "{errors:?}");
    let v = frames(&events, TrackKind::Video);
    assert_eq!(v.len(), 30);
    assert!(v.windows(2).all(|w| w[1].dts - w[0].dts == 3600));
    assert!(v.last().unwrap().dts > WRAP, "continued past 2^33");
    let a = frames(&events, TrackKind::Audio);
    assert!(a.windows(2).all(|w| w[1].pts > w[0].pts));
}

#[test]
fn continuity_gap_drops_damaged_frame_and_waits_for_keyframe() {
    let data = feed(0, 30, 10, true);
    // Remove one video packet that is not the start of a PES, in frame 3.
    let packets: Vec<&[u8]> = data.chunks(188).collect();
    let mut video_seen = 0;
    let mut cut = None;
    for (i, p) in packets.iter().enumerate() {
        let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1fff;
        if pid == VPID && p[1] & 0x40 != 0 {
            video_seen += 1;
        }
        if pid == VPID && p[1] & 0x40 == 0 && video_seen == 4 {
            cut = Some(i);
            break;
        }
    }
    let cut = cut.unwrap();
    let damaged: Vec<u8> =
        packets.iter().enumerate().filter(|(i, _)| *i != cut).flat_map(|(_, p)| p.to_vec()).collect();
    let mut d = TsDemuxer::new();
    let (events, errors) = run(&mut d, &damaged);
    assert!(matches!(errors.as_slice(), [DemuxError::Continuity { pid: VPID, .. }]), "{errors:?}");
    let v = frames(&events, TrackKind::Video);
    // Frames 0..=2 survive, 3..=9 are dropped (damaged, then waiting for the keyframe at 10).
    assert_eq!(v.len(), 30 - 7);
    assert!(v[3].keyframe && v[3].dts == 10 * 3600);
    assert_eq!(d.stats().continuity_errors, 1);
    // Audio is untouched.
    assert_eq!(frames(&events, TrackKind::Audio).len(), 30);
}

#[test]
fn duplicate_packets_are_ignored() {
    let data = feed(0, 10, 10, true);
    let mut dup = Vec::new();
    for p in data.chunks(188) {
        dup.extend_from_slice(p);
        if u16::from_be_bytes([p[1], p[2]]) & 0x1fff == VPID {
            dup.extend_from_slice(p);
        }
    }
    let (events, errors) = run(&mut TsDemuxer::new(), &dup);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames(&events, TrackKind::Video).len(), 10);
}

#[test]
fn missing_pmt_is_probed() {
    let (events, errors) = run(&mut TsDemuxer::new(), &feed(0, 20, 10, false));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(tracks(&events).len(), 2);
    assert_eq!(frames(&events, TrackKind::Video).len(), 20);
    assert_eq!(frames(&events, TrackKind::Audio).len(), 20);
}

#[test]
fn resent_headers_do_not_reannounce_tracks() {
    let (events, _) = run(&mut TsDemuxer::new(), &feed(0, 50, 10, true));
    assert_eq!(tracks(&events).len(), 2);
}

#[test]
fn mid_gop_start_begins_at_a_keyframe() {
    let data = feed(0, 30, 10, true);
    // Start at the 4th video frame: somewhere in the middle of the first GOP.
    let packets: Vec<&[u8]> = data.chunks(188).collect();
    let start = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| u16::from_be_bytes([p[1], p[2]]) & 0x1fff == VPID && p[1] & 0x40 != 0)
        .nth(3)
        .unwrap()
        .0;
    let tail: Vec<u8> = packets[start + 1..].concat();
    let mut d = TsDemuxer::new();
    let (events, _) = run(&mut d, &tail);
    let v = frames(&events, TrackKind::Video);
    assert!(v[0].keyframe);
    assert_eq!(v[0].dts, 10 * 3600);
    assert_eq!(v.len(), 20);
    assert!(d.stats().dropped_frames >= 6);
}

#[test]
fn pcr_is_read() {
    let mut d = TsDemuxer::new();
    run(&mut d, &feed(90_000, 5, 10, true));
    assert_eq!(d.last_pcr(), Some((90_000 + 4 * 3600) * 300));
}

#[test]
fn random_bytes_are_not_ts() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let junk: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut d = TsDemuxer::new();
    let (events, errors) = run(&mut d, &junk);
    assert!(events.is_empty());
    assert!(errors.iter().any(DemuxError::is_fatal), "{:?}", &errors[..errors.len().min(3)]);
}

#[test]
fn garbage_between_packets_resyncs() {
    let data = feed(0, 20, 10, true);
    let mut spliced = data[..188 * 40].to_vec();
    spliced.extend_from_slice(&[0x47, 1, 2, 3, 4, 5, 6, 0x47, 9]);
    spliced.extend_from_slice(&data[188 * 40..]);
    let mut d = TsDemuxer::new();
    let (events, errors) = run(&mut d, &spliced);
    assert!(errors.iter().any(|e| matches!(e, DemuxError::LostSync { skipped: 9, .. })), "{errors:?}");
    assert!(!errors.iter().any(DemuxError::is_fatal));
    assert!(frames(&events, TrackKind::Video).len() >= 18);
}

#[test]
fn truncated_input_never_panics() {
    let data = feed(0, 20, 10, true);
    for cut in [1, 187, 189, 1000, 5000, data.len() - 100] {
        let mut d = TsDemuxer::new();
        let (events, _) = run(&mut d, &data[..cut]);
        assert!(events.len() <= 60);
    }
}

#[test]
fn an_endless_pes_is_dropped_at_the_cap() {
    let mut w = TsWriter::new();
    let mut d = TsDemuxer::new();
    let mut errors = Vec::new();
    let psi = w.psi(0x1000, VPID, &[(StreamType::H264, VPID)]);
    d.push(&psi);
    // One video PES that never ends: 17 MB of continuation packets after its start.
    let first = w.pes(&PesSpec {
        pid: VPID,
        stream_id: 0xe0,
        pts: 0,
        dts: None,
        pcr: None,
        random_access: true,
        bounded: false,
        data: &idr(),
    });
    d.push(&first);
    let mut p = [0xffu8; 188];
    p[0] = 0x47;
    p[1] = (VPID >> 8) as u8;
    p[2] = VPID as u8;
    let mut cc = first.chunks(188).last().unwrap()[3] & 0x0f;
    for _ in 0..(17 * 1024 * 1024 / 184) {
        cc = (cc + 1) & 0x0f;
        p[3] = 0x10 | cc;
        errors.extend(d.push(&p).into_iter().filter_map(Result::err));
    }
    assert!(
        errors.iter().any(|e| matches!(e, DemuxError::Pes { what, .. } if what.contains("larger than"))),
        "{errors:?}"
    );
}

#[test]
fn lying_pes_length_is_reported_and_contained() {
    let mut w = TsWriter::new();
    let mut out = w.psi(0x1000, VPID, &[(StreamType::H264, VPID), (StreamType::AacAdts, APID)]);
    let good = adts(50);
    for i in 0..4u64 {
        out.extend(w.pes(&PesSpec {
            pid: APID,
            stream_id: 0xc0,
            pts: i * 1920,
            dts: None,
            pcr: None,
            random_access: false,
            bounded: true,
            data: &good,
        }));
    }
    // Patch the second audio PES to claim 1000 more bytes than it has.
    let mut starts = out
        .chunks(188)
        .enumerate()
        .filter(|(_, p)| p[1] & 0x40 != 0 && u16::from_be_bytes([p[1], p[2]]) & 0x1fff == APID)
        .map(|(i, _)| i);
    let second = starts.nth(1).unwrap();
    let p = &mut out[second * 188..(second + 1) * 188];
    let af = if p[3] & 0x20 != 0 { 1 + p[4] as usize } else { 0 };
    let len_at = 4 + af + 4;
    let len = u16::from_be_bytes([p[len_at], p[len_at + 1]]) + 1000;
    p[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    let (events, errors) = run(&mut TsDemuxer::new(), &out);
    assert!(matches!(errors.as_slice(), [DemuxError::Pes { pid: APID, .. }]), "{errors:?}");
    assert_eq!(frames(&events, TrackKind::Audio).len(), 3);
}
