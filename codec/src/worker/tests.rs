//! The worker on the bundled sample: every boundary becomes an IDR in every rung, carries
//! its number back, and the rungs decode.

use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::{h264, CodecConfig, DemuxEvent, Frame, TrackKind};
use tessera_transcode::wire::{EncoderTuning, FromWorker, RungJob, SourceCodec, StartJob, ToWorker};
use tessera_transcode::{EncodeTarget, H264Profile};

use super::*;

const SAMPLE: &[u8] = include_bytes!("../../../samples/sample.ts");

fn sample() -> (Vec<u8>, Vec<Frame>) {
    let mut demux = TsDemuxer::new();
    let mut config = None;
    let mut frames = Vec::new();
    for e in demux.push(SAMPLE).into_iter().chain(demux.flush()).flatten() {
        match e {
            DemuxEvent::Track(t) => {
                if let CodecConfig::H264(c) = &t.codec {
                    config = Some(h264::avcc_record(c));
                }
            }
            DemuxEvent::Frame(f) if f.kind == TrackKind::Video => frames.push(f),
            DemuxEvent::Frame(_) => {}
        }
    }
    (config.expect("H.264 track"), frames)
}

fn job(extradata: Vec<u8>, sizes: &[(u32, u32)]) -> StartJob {
    StartJob {
        stream: "t".into(),
        codec: SourceCodec::H264,
        extradata,
        width: 640,
        height: 360,
        fps: None,
        rungs: sizes
            .iter()
            .map(|(w, h)| RungJob {
                name: format!("{h}p"),
                target: EncodeTarget {
                    width: *w,
                    height: *h,
                    bitrate: 300_000,
                    maxrate: 330_000,
                    bufsize: 330_000,
                    profile: H264Profile::Main,
                },
            })
            .collect(),
        tuning: EncoderTuning::default(),
        stats_interval_ms: 1000,
    }
}

#[test]
fn boundaries_become_idrs_in_every_rung() {
    let (extradata, frames) = sample();
    let mut t = Transcoder::start(job(extradata, &[(320, 180), (160, 90)])).expect("codecs open");
    let mut out = Vec::new();
    let mut boundary = 0u64;
    let mut marked = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        // A boundary every second source keyframe.
        let b = (f.keyframe && i % 2 == 0).then(|| {
            boundary += 1;
            boundary
        });
        if f.keyframe {
            marked.push((f.pts, b));
        }
        let msg = ToWorker::Frame { pts: f.pts, dts: f.dts, keyframe: f.keyframe, boundary: b };
        assert!(t.handle(msg, f.data.to_vec(), &mut out).unwrap());
    }
    assert!(!t.handle(ToWorker::Stop, Vec::new(), &mut out).unwrap(), "Stop ends the worker");
    let done = out.iter().filter(|(m, _)| matches!(m, FromWorker::Done { .. })).count();
    assert_eq!(done, frames.len(), "every source frame is answered");
    assert!(out.iter().all(|(m, _)| !matches!(m, FromWorker::Skipped { .. })), "the sample decodes cleanly");
    for rung in 0..2u32 {
        let packets: Vec<_> = out
            .iter()
            .filter_map(|(m, b)| match m {
                FromWorker::Packet { rung: r, pts, keyframe, boundary, .. } if *r == rung => {
                    Some((*pts, *keyframe, *boundary, b))
                }
                _ => None,
            })
            .collect();
        let first_boundary = marked.iter().find(|(_, b)| b.is_some()).unwrap().0;
        let expected = frames.iter().filter(|f| f.pts >= first_boundary).count();
        assert_eq!(packets.len(), expected, "rung {rung}: one packet per picture from the first boundary");
        for (pts, b) in marked.iter().filter(|(_, b)| b.is_some()) {
            let p = packets.iter().find(|p| p.0 == *pts).expect("the boundary picture is encoded");
            assert!(p.1, "rung {rung}: boundary at {pts} is a keyframe");
            assert_eq!(p.2, *b, "rung {rung}: boundary number echoed");
            let au = h264::convert_access_unit(p.3);
            let sps = au.sps.expect("SPS before every IDR");
            let config = h264::parse_sps(&sps, au.pps).unwrap();
            assert_eq!((config.width, config.height), if rung == 0 { (320, 180) } else { (160, 90) });
        }
        let keyframes = packets.iter().filter(|p| p.1).count();
        assert_eq!(
            keyframes,
            marked.iter().filter(|(_, b)| b.is_some()).count(),
            "rung {rung}: keyframes only at boundaries"
        );
        let mut sorted: Vec<i64> = packets.iter().map(|p| p.0).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), packets.len(), "no picture twice");
    }
}

#[test]
fn a_dropped_rung_stops_and_a_reset_restarts_at_the_next_boundary() {
    let (extradata, frames) = sample();
    let mut t = Transcoder::start(job(extradata, &[(320, 180), (160, 90)])).unwrap();
    let mut out = Vec::new();
    let half = frames.len() / 2;
    for (i, f) in frames.iter().enumerate() {
        if i == half {
            t.handle(ToWorker::DropRung(0), Vec::new(), &mut out).unwrap();
            t.handle(ToWorker::Reset, Vec::new(), &mut out).unwrap();
            out.clear();
        }
        let b = (f.keyframe).then_some(i as u64);
        t.handle(
            ToWorker::Frame { pts: f.pts, dts: f.dts, keyframe: f.keyframe, boundary: b },
            f.data.to_vec(),
            &mut out,
        )
        .unwrap();
    }
    t.handle(ToWorker::Stop, Vec::new(), &mut out).unwrap();
    let rung0 = out.iter().filter(|(m, _)| matches!(m, FromWorker::Packet { rung: 0, .. })).count();
    assert_eq!(rung0, 0, "dropped rung is silent");
    let first = out.iter().find_map(|(m, _)| match m {
        FromWorker::Packet { rung: 1, keyframe, boundary, .. } => Some((*keyframe, *boundary)),
        _ => None,
    });
    let (key, b) = first.expect("rung 1 goes on after the reset");
    assert!(key && b.is_some(), "after a reset a rung starts with a boundary IDR");
    let stats = t.take_stats();
    assert!(stats.frames > 0 && stats.media_us > 0 && stats.encode_us[1] > 0, "{stats:?}");
}

#[test]
fn garbage_frames_are_skipped_not_fatal() {
    let (extradata, frames) = sample();
    let mut t = Transcoder::start(job(extradata, &[(160, 90)])).unwrap();
    let mut out = Vec::new();
    let garbage: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for (i, f) in frames.iter().take(60).enumerate() {
        let data = if i % 7 == 3 { garbage.clone() } else { f.data.to_vec() };
        let b = f.keyframe.then_some(i as u64);
        t.handle(ToWorker::Frame { pts: f.pts, dts: f.dts, keyframe: f.keyframe, boundary: b }, data, &mut out)
            .unwrap();
    }
    assert!(out.iter().any(|(m, _)| matches!(m, FromWorker::Packet { .. })), "the good frames still encode");
}

#[test]
fn frame_rates_snap_to_the_usual_values() {
    assert_eq!(frame_rate(3003), (30000, 1001));
    assert_eq!(frame_rate(3000), (30, 1));
    assert_eq!(frame_rate(3600), (25, 1));
    assert_eq!(frame_rate(1501), (60000, 1001));
    assert_eq!(frame_rate(3754), (24000, 1001));
    assert_eq!(frame_rate(1800), (50, 1));
    assert_eq!(frame_rate(7000), (12857, 1000));
}
