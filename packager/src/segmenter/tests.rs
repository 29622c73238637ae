use super::*;
use bytes::Bytes;
use tessera_ingest::media::{AacConfig, AvcConfig, CodecConfig};

fn video_track() -> TrackInfo {
    TrackInfo {
        id: 256,
        codec: CodecConfig::H264(AvcConfig {
            sps: Bytes::from_static(&[0x67]),
            pps: vec![Bytes::from_static(&[0x68])],
            profile_idc: 100,
            constraint_flags: 0,
            level_idc: 30,
            chroma_format_idc: 1,
            bit_depth_luma: 8,
            bit_depth_chroma: 8,
            width: 640,
            height: 360,
            frame_rate: None,
        }),
    }
}

fn audio_track() -> TrackInfo {
    TrackInfo {
        id: 257,
        codec: CodecConfig::Aac(AacConfig {
            object_type: 2,
            sample_rate: 48000,
            channels: 2,
            asc: Bytes::from_static(&[0x11, 0x90]),
        }),
    }
}

fn vframe(i: i64, step: i64, gop: i64) -> Frame {
    Frame {
        track: 256,
        kind: TrackKind::Video,
        pts: i * step + step,
        dts: i * step,
        keyframe: i % gop == 0,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
    }
}

fn aframe(t: i64) -> Frame {
    Frame { track: 257, kind: TrackKind::Audio, pts: t, dts: t, keyframe: true, data: Bytes::from_static(&[1, 2]) }
}

/// Runs `seconds` of 25 fps video (GOP `gop` frames) and 48 kHz AAC through a segmenter.
fn run(step: i64, gop: i64, frames: i64, audio: bool) -> Vec<SegmenterEvent> {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let mut out = s.track(video_track());
    if audio {
        out.extend(s.track(audio_track()));
    }
    let mut next_audio = 0i64;
    for i in 0..frames {
        let f = vframe(i, step, gop);
        let dts = f.dts;
        out.extend(s.frame(f, 1_000_000 + dts / 90));
        while audio && next_audio <= dts {
            out.extend(s.frame(aframe(next_audio), 1_000_000 + next_audio / 90));
            next_audio += 1920;
        }
    }
    out.extend(s.flush());
    out
}

fn parts(events: &[SegmenterEvent]) -> Vec<&PartOut> {
    events.iter().filter_map(|e| if let SegmenterEvent::Part(p) = e { Some(p) } else { None }).collect()
}

fn segments(events: &[SegmenterEvent]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| if let SegmenterEvent::SegmentEnd { duration, .. } = e { Some(*duration) } else { None })
        .collect()
}

#[test]
fn segments_cut_at_keyframes_after_target_and_parts_at_part_target() {
    let events = run(3600, 25, 250, true); // 10 s, keyframe every second
    assert!(matches!(&events[0], SegmenterEvent::Init(t) if t.len() == 2));
    assert_eq!(segments(&events), vec![180_000; 5]);
    let p = parts(&events);
    assert_eq!(p.len(), 50);
    assert!(p.iter().all(|p| p.duration == 18_000), "200 ms parts at 25 fps");
    // Parts that begin at a keyframe (every fifth) are independent.
    assert_eq!(p.iter().filter(|p| p.independent).count(), 10);
    assert!(p[0].independent && p[5].independent && !p[1].independent);
    assert_eq!(p[10].index, 0);
    // Audio is carried along, continuously.
    let audio: Vec<i64> =
        p.iter().flat_map(|p| p.tracks.iter().filter(|t| t.0 == 257).flat_map(|t| t.1.iter().map(|s| s.dts))).collect();
    assert!(audio.len() > 450);
    assert!(audio.windows(2).all(|w| w[1] - w[0] == 1920));
}

#[test]
fn parts_round_to_whole_frames_at_29_97() {
    let events = run(3003, 60, 600, false);
    let p = parts(&events);
    let segs = segments(&events);
    assert!(segs.iter().all(|d| *d == 60 * 3003), "{segs:?}");
    // 6 frames of 3003 ticks: 200.2 ms, every part but none shorter.
    assert!(p.iter().all(|p| p.duration == 6 * 3003), "{:?}", p.iter().map(|p| p.duration).collect::<Vec<_>>());
}

#[test]
fn long_gop_makes_long_segments_and_short_final_parts_only() {
    let events = run(3600, 75, 300, false); // keyframe every 3 s
    let segs = segments(&events);
    assert_eq!(segs, vec![270_000; 4]);
    let p = parts(&events);
    for w in p.windows(2) {
        // Only the last part of a segment may be shorter than 85% of the target.
        if w[0].duration < 18_000 * 85 / 100 {
            assert_eq!(w[1].index, 0);
        }
    }
}

#[test]
fn starts_at_first_keyframe_and_waits_for_audio_config() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    s.track(video_track());
    let mut out = Vec::new();
    // Mid-GOP frames first: never output.
    for i in 20..25 {
        let mut f = vframe(i, 3600, 25);
        f.keyframe = false;
        out.extend(s.frame(f, 0));
    }
    out.extend(s.frame(vframe(25, 3600, 25), 0));
    assert!(out.is_empty(), "waits for the audio track");
    out.extend(s.track(audio_track()));
    out.extend(s.frame(aframe(25 * 3600), 0));
    let SegmenterEvent::Init(tracks) = &out[0] else { panic!("{out:?}") };
    assert_eq!(tracks.len(), 2);
    out.extend(s.flush());
    let p = parts(&out);
    assert_eq!(p[0].tracks[0].1[0].dts, 25 * 3600);
}

#[test]
fn video_only_starts_after_start_wait() {
    let events = run(3600, 25, 100, false);
    assert!(matches!(&events[0], SegmenterEvent::Init(t) if t.len() == 1));
    assert_eq!(segments(&events).iter().sum::<i64>(), 100 * 3600);
}

#[test]
fn codec_change_cuts_a_segment_with_a_new_init() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let mut out = s.track(video_track());
    for i in 0..40 {
        out.extend(s.frame(vframe(i, 3600, 25), 0));
    }
    let mut t = video_track();
    if let CodecConfig::H264(c) = &mut t.codec {
        c.width = 1280;
        c.height = 720;
    }
    out.extend(s.track(t));
    for i in 40..80 {
        out.extend(s.frame(vframe(i, 3600, 25), 0));
    }
    let inits: Vec<usize> =
        out.iter().enumerate().filter(|(_, e)| matches!(e, SegmenterEvent::Init(_))).map(|(i, _)| i).collect();
    assert_eq!(inits.len(), 2);
    // The new init follows a segment end, at the keyframe at frame 50.
    assert!(matches!(out[inits[1] - 1], SegmenterEvent::SegmentEnd { duration: 180_000, .. }));
}

fn run_frames(frames: Vec<Frame>) -> (Segmenter, Vec<SegmenterEvent>) {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let mut out = s.track(video_track());
    for f in frames {
        out.extend(s.frame(f, 1_000_000));
    }
    out.extend(s.flush());
    (s, out)
}

fn inits(events: &[SegmenterEvent]) -> usize {
    events.iter().filter(|e| matches!(e, SegmenterEvent::Init(_))).count()
}

#[test]
fn backwards_timestamps_start_a_discontinuity_at_the_next_keyframe() {
    // 2 s of video, then the encoder restarts its clock at 0 mid-GOP.
    let mut frames: Vec<Frame> = (0..50).map(|i| vframe(i + 1000, 3600, 25)).collect();
    frames.extend((0..60).map(|i| vframe(i + 10, 3600, 25)));
    let (s, out) = run_frames(frames);
    assert_eq!(s.timeline_breaks, 1);
    assert_eq!(inits(&out), 2);
    // Every part has a positive duration within the target, and after the break the first
    // part starts at the keyframe (frame 25 of the new clock) and is independent.
    let p = parts(&out);
    assert!(
        p.iter().all(|p| p.duration > 0 && p.duration <= 18_000),
        "{:?}",
        p.iter().map(|p| p.duration).collect::<Vec<_>>()
    );
    let after = out.iter().position(|e| matches!(e, SegmenterEvent::Init(_))).unwrap();
    let second_init = out.iter().enumerate().filter(|(_, e)| matches!(e, SegmenterEvent::Init(_))).nth(1).unwrap().0;
    assert!(after < second_init);
    let SegmenterEvent::Part(first) = &out[second_init + 1] else { panic!("{:?}", &out[second_init + 1]) };
    assert!(first.independent && first.index == 0);
    assert_eq!(first.tracks[0].1[0].dts, 25 * 3600);
}

#[test]
fn a_large_forward_jump_breaks_the_timeline_and_duplicates_are_dropped() {
    let mut frames: Vec<Frame> = (0..30).map(|i| vframe(i, 3600, 25)).collect();
    frames.push(vframe(29, 3600, 25)); // duplicate
    frames.extend((0..30).map(|i| vframe(i + 100_000, 3600, 25))); // +2 h
    let (s, out) = run_frames(frames);
    assert_eq!((s.timeline_breaks, s.duplicates), (1, 1));
    assert_eq!(inits(&out), 2);
    let total: i64 = segments(&out).iter().sum();
    assert!(total < 60 * 3600 + 1, "no gap counted as media: {total}");
}

#[test]
fn steady_timestamps_never_break() {
    let (s, out) = run_frames((0..500).map(|i| vframe(i, 3600, 25)).collect());
    assert_eq!((s.timeline_breaks, s.duplicates, inits(&out)), (0, 0, 1));
}

#[test]
fn segments_are_numbered_and_parts_know_their_segment() {
    let events = run(3600, 25, 250, true);
    let ends: Vec<u64> = events
        .iter()
        .filter_map(|e| if let SegmenterEvent::SegmentEnd { segment, .. } = e { Some(*segment) } else { None })
        .collect();
    assert_eq!(ends, [0, 1, 2, 3, 4]);
    let p = parts(&events);
    assert_eq!(p.iter().map(|p| p.segment).collect::<Vec<_>>(), (0..5u64).flat_map(|s| [s; 10]).collect::<Vec<_>>());
}

/// The audio of each part, as (first dts, last dts).
fn audio_spans(p: &[&PartOut]) -> Vec<Option<(i64, i64)>> {
    p.iter()
        .map(|p| {
            let a: Vec<i64> = p.tracks.iter().filter(|t| t.0 == 257).flat_map(|t| t.1.iter().map(|s| s.dts)).collect();
            a.first().map(|f| (*f, *a.last().unwrap()))
        })
        .collect()
}

/// The same 4 s of 25 fps video and 48 kHz audio, the audio muxed `audio_lead` ticks ahead
/// of the video (behind, when negative), through a segmenter.
fn muxed(audio_lead: i64) -> Vec<SegmenterEvent> {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let mut out = s.track(video_track());
    out.extend(s.track(audio_track()));
    let mut arrivals: Vec<(i64, Frame)> = (0..100).map(|i| (i * 3600, vframe(i, 3600, 25))).collect();
    arrivals.extend((0..190).map(|i| (i * 1920 - audio_lead, aframe(i * 1920))));
    arrivals.sort_by_key(|(at, f)| (*at, f.track));
    for (at, f) in arrivals {
        out.extend(s.frame(f, 1_000_000 + at / 90));
    }
    out.extend(s.flush());
    out
}

/// Every audio decode time placed, in order.
fn audio_dts(events: &[SegmenterEvent]) -> Vec<i64> {
    parts(events)
        .iter()
        .flat_map(|p| p.tracks.iter().filter(|t| t.0 == 257).flat_map(|t| t.1.iter().map(|s| s.dts)))
        .collect()
}

#[test]
fn audio_is_placed_by_decode_time_whatever_the_arrival_order() {
    // Audio muxed 300 ms early, in step, and 150 ms late (a muxer sending it in groups
    // behind the video): every part gets the same audio, the frames that decode within it,
    // and the one that straddles its end.
    let even = muxed(0);
    let pv = parts(&even);
    for lead in [27_000, -13_500, -1920 * 3] {
        let other = muxed(lead);
        let po = parts(&other);
        assert_eq!(po.len(), pv.len(), "lead {lead}");
        for (i, (a, b)) in audio_spans(&po).into_iter().zip(audio_spans(&pv)).enumerate().take(po.len() - 1) {
            let (a, b) = (a.unwrap(), b.unwrap());
            let start = po[i].tracks[0].1[0].dts;
            let end = start + po[i].duration;
            assert!(a.0 >= start && a.0 < start + 1920, "lead {lead}, part {i}: audio {a:?}, video from {start}");
            assert!(a.1 < end && a.1 + 1920 >= end, "lead {lead}, part {i}: audio {a:?} ends before its video ({end})");
            assert_eq!(a, b, "lead {lead}, part {i}");
        }
    }
}

#[test]
fn video_waits_for_late_audio_only_a_bounded_time() {
    // Audio 700 ms behind (beyond the wait): parts are cut without it, and late frames join
    // the part open when they come; none is lost or doubled.
    let late = muxed(-63_000);
    let dts = audio_dts(&late);
    assert_eq!(dts.len(), 190);
    assert!(dts.windows(2).all(|w| w[1] - w[0] == 1920));
    // Audio that stops: the video goes on, the part held at most half a second.
    let mut s = Segmenter::new(SegmenterConfig::default());
    let mut out = s.track(video_track());
    out.extend(s.track(audio_track()));
    for i in 0..30 {
        out.extend(s.frame(vframe(i, 3600, 25), 0));
        out.extend(s.frame(aframe(i * 3600), 0));
    }
    let before = parts(&out).len();
    for i in 30..60 {
        out.extend(s.frame(vframe(i, 3600, 25), 0));
    }
    let p = parts(&out);
    assert!(p.len() >= before + 4, "{} parts after 1.2 s of video without audio", p.len() - before);
    // What was held is released in order, nothing lost.
    out.extend(s.flush());
    let video: Vec<i64> = parts(&out)
        .iter()
        .flat_map(|p| p.tracks.iter().filter(|t| t.0 == 256).flat_map(|t| t.1.iter().map(|s| s.dts)))
        .collect();
    assert_eq!(video, (0..60).map(|i| i * 3600).collect::<Vec<_>>());
}

#[test]
fn audio_waits_at_most_three_seconds_for_stalled_video() {
    let mut s = Segmenter::new(SegmenterConfig::default());
    let mut out = s.track(video_track());
    out.extend(s.track(audio_track()));
    for i in 0..10 {
        out.extend(s.frame(vframe(i, 3600, 25), 0));
        out.extend(s.frame(aframe(i * 3600), 0));
    }
    // The video stops; 4 s of audio keep coming.
    for i in 0..200 {
        out.extend(s.frame(aframe(36_000 + i * 1920), 0));
    }
    out.extend(s.frame(vframe(10, 3600, 25), 0));
    out.extend(s.flush());
    let placed: usize =
        parts(&out).iter().flat_map(|p| p.tracks.iter().filter(|t| t.0 == 257)).map(|t| t.1.len()).sum();
    assert_eq!(placed, 210, "every audio frame is placed");
}

#[test]
fn a_follower_cuts_exactly_where_the_leader_did_under_the_same_numbers() {
    // Leader: the source, 1 s GOP, forwarding what it places.
    let mut leader = Segmenter::new(SegmenterConfig { forward_frames: true, ..SegmenterConfig::default() });
    let mut led = leader.track(video_track());
    led.extend(leader.track(audio_track()));
    let mut next_audio = 0;
    for i in 0..300 {
        let f = vframe(i, 3600, 25);
        let dts = f.dts;
        led.extend(leader.frame(f, 1_000_000 + dts / 90));
        while next_audio <= dts {
            led.extend(leader.frame(aframe(next_audio), 1_000_000));
            next_audio += 1920;
        }
    }
    led.extend(leader.flush());
    // Follower: a transcoded rendition whose encoder puts a keyframe on every boundary and
    // nowhere else, and whose numbering starts at the leader's third segment.
    let mut follower = Segmenter::new(SegmenterConfig { cuts: Cuts::Boundaries, ..SegmenterConfig::default() });
    let mut fol = follower.track(video_track());
    fol.extend(follower.track(audio_track()));
    for e in &led {
        if let SegmenterEvent::Frame { frame, boundary } = e {
            if boundary.is_some_and(|b| b.segment < 2) || (frame.kind == TrackKind::Video && frame.dts < 2 * 180_000) {
                continue;
            }
            let mut f = frame.clone();
            f.keyframe = boundary.is_some();
            fol.extend(follower.frame_at(f, 1_000_000, *boundary));
        }
    }
    fol.extend(follower.flush());
    let starts = |events: &[SegmenterEvent]| -> Vec<(u64, i64, i64)> {
        parts(events)
            .iter()
            .filter(|p| p.index == 0)
            .map(|p| (p.segment, p.tracks[0].1[0].dts, p.program_time_ms))
            .collect()
    };
    let (l, f) = (starts(&led), starts(&fol));
    assert_eq!(l.len(), 6);
    assert_eq!(f, l[2..].to_vec(), "same numbers at the same media and wall-clock times");
    assert_eq!(segments(&fol), segments(&led)[2..].to_vec());
    // And the same audio in each segment.
    let audio_of = |events: &[SegmenterEvent], seg: u64| -> Vec<i64> {
        parts(events)
            .iter()
            .filter(|p| p.segment == seg)
            .flat_map(|p| p.tracks.iter().filter(|t| t.0 == 257).flat_map(|t| t.1.iter().map(|s| s.dts)))
            .collect()
    };
    for seg in 3..5 {
        assert_eq!(audio_of(&led, seg), audio_of(&fol, seg), "segment {seg}");
    }
}

#[test]
fn an_abandoned_follower_resumes_at_the_next_boundary_without_a_discontinuity() {
    let mut s = Segmenter::new(SegmenterConfig { cuts: Cuts::Boundaries, ..SegmenterConfig::default() });
    let mut out = s.track(video_track());
    let b = |segment: u64, dts: i64| Some(Boundary { segment, program_time_ms: 1_000_000 + dts / 90 });
    for i in 0..60 {
        let f = vframe(i, 3600, 25);
        let boundary = if i % 50 == 0 { b(i as u64 / 50, f.dts) } else { None };
        out.extend(s.frame_at(f, 0, boundary));
    }
    s.abandon(); // the transcoder died in segment 1
    for i in 150..210 {
        let f = vframe(i, 3600, 25);
        let boundary = if i % 50 == 0 { b(i as u64 / 50, f.dts) } else { None };
        out.extend(s.frame_at(f, 0, boundary));
    }
    out.extend(s.flush());
    assert_eq!(inits(&out), 1, "no new init, so no discontinuity");
    assert_eq!(s.timeline_breaks, 0);
    let p = parts(&out);
    let segs: Vec<u64> = p.iter().filter(|p| p.index == 0).map(|p| p.segment).collect();
    assert_eq!(segs, [0, 1, 3, 4]);
    assert!(p.iter().all(|p| p.segment != 1 || p.index < 2), "segment 1 was cut short: only its first part went out");
}

#[test]
fn a_timestamp_gap_before_a_cut_does_not_stretch_the_part() {
    // 25 fps, then a 50 ms gap (a looped feed) before frame 12.
    let mut frames: Vec<Frame> = (0..12).map(|i| vframe(i, 3600, 25)).collect();
    for i in 12..40 {
        let mut f = vframe(i, 3600, 25);
        f.dts += 4500;
        f.pts += 4500;
        frames.push(f);
    }
    let (s, out) = run_frames(frames);
    assert_eq!(s.timeline_breaks, 0);
    let p = parts(&out);
    assert!(p.iter().all(|p| p.duration <= 18_000), "{:?}", p.iter().map(|p| p.duration).collect::<Vec<_>>());
    for part in &p {
        let samples = &part.tracks[0].1;
        assert_eq!(samples.iter().map(|s| s.duration).sum::<i64>(), part.duration, "the samples fill the part");
    }
}
