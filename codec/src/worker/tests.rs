//! The worker on the bundled sample, through its real loop and threads: every boundary
//! becomes an IDR in every rung and carries its number back, every source frame is
//! answered, and the rungs decode.

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
        stats_interval_ms: 100,
    }
}

/// Runs the worker over `messages` and returns what it answered.
fn run(messages: Vec<(ToWorker, Vec<u8>)>) -> Vec<(FromWorker, Vec<u8>)> {
    let mut input = Vec::new();
    for (m, b) in &messages {
        input.extend(wire::encode(m, b));
    }
    let output = serve(std::io::Cursor::new(input), Vec::new()).expect("the worker runs");
    let mut r = FrameReader::new();
    r.push(&output);
    let mut out = Vec::new();
    while let Some((m, b)) = r.next_message::<FromWorker>().unwrap() {
        out.push((m, b.to_vec()));
    }
    assert_eq!(r.pending(), 0, "whole messages only");
    out
}

fn frame_msg(f: &Frame, boundary: Option<u64>) -> (ToWorker, Vec<u8>) {
    (ToWorker::Frame { pts: f.pts, dts: f.dts, keyframe: f.keyframe, boundary }, f.data.to_vec())
}

#[test]
fn boundaries_become_idrs_in_every_rung() {
    let (extradata, frames) = sample();
    let mut msgs = vec![(ToWorker::Start(job(extradata, &[(320, 180), (160, 90)])), Vec::new())];
    let mut boundary = 0u64;
    let mut marked = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        // A boundary every second source keyframe.
        let b = (f.keyframe && i % 2 == 0).then(|| {
            boundary += 1;
            boundary
        });
        if b.is_some() {
            marked.push((f.pts, b));
        }
        msgs.push(frame_msg(f, b));
    }
    msgs.push((ToWorker::Stop, Vec::new()));
    let out = run(msgs);
    assert!(matches!(out[0].0, FromWorker::Ready { .. }));
    let done: Vec<i64> =
        out.iter().filter_map(|(m, _)| if let FromWorker::Done { dts } = m { Some(*dts) } else { None }).collect();
    assert_eq!(done, frames.iter().map(|f| f.dts).collect::<Vec<_>>(), "every source frame is answered, in order");
    assert!(out.iter().all(|(m, _)| !matches!(m, FromWorker::Skipped { .. })), "the sample decodes cleanly");
    assert!(out.iter().any(|(m, _)| matches!(m, FromWorker::Stats(s) if s.frames > 0)), "stats are reported");
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
        let first_boundary = marked[0].0;
        let expected = frames.iter().filter(|f| f.pts >= first_boundary).count();
        assert_eq!(packets.len(), expected, "rung {rung}: one packet per picture from the first boundary");
        for (pts, b) in &marked {
            let p = packets.iter().find(|p| p.0 == *pts).expect("the boundary picture is encoded");
            assert!(p.1, "rung {rung}: boundary at {pts} is a keyframe");
            assert_eq!(p.2, *b, "rung {rung}: boundary number echoed");
            let au = h264::convert_access_unit(p.3);
            let sps = au.sps.expect("SPS before every IDR");
            let config = h264::parse_sps(&sps, au.pps).unwrap();
            assert_eq!((config.width, config.height), if rung == 0 { (320, 180) } else { (160, 90) });
        }
        let keyframes = packets.iter().filter(|p| p.1).count();
        assert_eq!(keyframes, marked.len(), "rung {rung}: keyframes only at boundaries");
        assert!(packets.windows(2).all(|w| w[1].0 > w[0].0), "rung {rung}: in order, no picture twice");
    }
}

#[test]
fn a_dropped_rung_stops_and_a_reset_restarts_at_the_next_boundary() {
    let (extradata, frames) = sample();
    let mut msgs = vec![(ToWorker::Start(job(extradata, &[(320, 180), (160, 90)])), Vec::new())];
    let half = frames.len() / 2;
    for (i, f) in frames.iter().enumerate() {
        if i == half {
            msgs.push((ToWorker::DropRung(0), Vec::new()));
            msgs.push((ToWorker::Reset, Vec::new()));
        }
        msgs.push(frame_msg(f, f.keyframe.then_some(i as u64)));
    }
    msgs.push((ToWorker::Stop, Vec::new()));
    let out = run(msgs);
    let half_pts = frames[half].pts;
    let rung0_late = out
        .iter()
        .filter(|(m, _)| matches!(m, FromWorker::Packet { rung: 0, pts, .. } if *pts >= half_pts + 90_000))
        .count();
    assert_eq!(rung0_late, 0, "a dropped rung goes silent");
    let after: Vec<(bool, Option<u64>)> = out
        .iter()
        .filter_map(|(m, _)| match m {
            FromWorker::Packet { rung: 1, pts, keyframe, boundary, .. } if *pts >= half_pts => {
                Some((*keyframe, *boundary))
            }
            _ => None,
        })
        .collect();
    let first = after.first().expect("rung 1 goes on after the reset");
    assert!(first.0 && first.1.is_some(), "after a reset a rung starts with a boundary IDR");
}

#[test]
fn garbage_frames_are_skipped_not_fatal() {
    let (extradata, frames) = sample();
    let mut msgs = vec![(ToWorker::Start(job(extradata, &[(160, 90)])), Vec::new())];
    let garbage: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for (i, f) in frames.iter().take(60).enumerate() {
        let (m, body) = frame_msg(f, f.keyframe.then_some(i as u64));
        msgs.push((m, if i % 7 == 3 { garbage.clone() } else { body }));
    }
    msgs.push((ToWorker::Stop, Vec::new()));
    let out = run(msgs);
    assert!(out.iter().any(|(m, _)| matches!(m, FromWorker::Packet { .. })), "the good frames still encode");
    assert_eq!(out.iter().filter(|(m, _)| matches!(m, FromWorker::Done { .. })).count(), 60);
}

#[test]
fn media_before_start_is_a_protocol_error() {
    let mut input = Vec::new();
    input.extend(wire::encode(
        &ToWorker::Frame { pts: 0, dts: 0, keyframe: true, boundary: Some(0) },
        &[0, 0, 0, 1, 0x65],
    ));
    assert!(matches!(serve(std::io::Cursor::new(input), Vec::new()), Err(WorkerError::NotStarted(_))));
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
