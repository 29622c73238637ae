use super::*;

/// `n` complete segments of ten 0.2 s parts, then `open` parts of the next.
pub(crate) fn state(n: usize, open: usize) -> PlaylistState {
    let mut p = PlaylistState::new(PlaylistConfig::default());
    p.set_init(0);
    p.set_part_target(0.2);
    let mut t = 1_700_000_000_000i64;
    for _ in 0..n {
        for i in 0..10 {
            p.push_part(0.2, i % 5 == 0, t);
            t += 200;
        }
        p.close_segment();
    }
    for i in 0..open {
        p.push_part(0.2, i % 5 == 0, t);
        t += 200;
    }
    p
}

#[test]
fn renders_the_low_latency_tags() {
    let p = state(3, 2);
    let s = p.render(false);
    assert!(s.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"));
    assert!(s.contains(
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.600,HOLD-BACK=6.0\n"
    ));
    assert!(s.contains("#EXT-X-PART-INF:PART-TARGET=0.20000\n"));
    assert!(s.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
    assert!(s.contains("#EXT-X-MAP:URI=\"init-0.mp4\"\n"));
    assert!(s.contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n"));
    assert!(s.contains("#EXT-X-PART:DURATION=0.20000,URI=\"part-30.m4s\",INDEPENDENT=YES\n"));
    assert!(s.contains("#EXTINF:2.00000,\nseg-2.m4s\n"));
    assert!(s.ends_with(
        "#EXT-X-PART:DURATION=0.20000,URI=\"part-31.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-32.m4s\"\n"
    ));
    // Parts are listed only for the last three target durations (here: segments 0..2 are 6 s).
    assert!(!s.contains("URI=\"part-0.m4s\""));
    assert!(s.contains("URI=\"part-10.m4s\""));
}

#[test]
fn window_slides_and_retention_outlives_it() {
    let p = state(25, 0);
    let s = p.render(false);
    assert!(s.contains("#EXT-X-MEDIA-SEQUENCE:15\n"));
    assert_eq!(s.matches("#EXTINF").count(), 10);
    assert_eq!(p.oldest_retained_msn(), 5);
}

#[test]
fn discontinuity_on_new_init_and_sequence_counts_removed_tags() {
    let mut p = state(2, 3);
    p.set_init(1);
    for _ in 0..10 {
        p.push_part(0.2, false, 0);
    }
    p.close_segment();
    let s = p.render(false);
    assert_eq!(s.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert!(s.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"));
    assert!(s.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
    // Push the discontinuity to the front of the window: the tag leaves, the sequence counts it.
    for _ in 0..9 {
        for _ in 0..10 {
            p.push_part(0.2, false, 0);
        }
        p.close_segment();
    }
    let s = p.render(false);
    assert!(s.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{s}");
    assert!(!s.contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn delta_update_skips_old_segments() {
    let p = state(10, 1);
    let full = p.render(false);
    let delta = p.render(true);
    // 20.2 s in the window, skip-until 12 s: the segments ending 12 s or more before the end go.
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "{delta}");
    assert!(!delta.contains("seg-3.m4s") && delta.contains("seg-4.m4s"));
    assert_eq!(full.matches("#EXTINF").count() - 4, delta.matches("#EXTINF").count());
    // The delta is the full playlist minus the skipped segments.
    let tail_full = &full[full.find("seg-4.m4s").unwrap()..];
    let tail_delta = &delta[delta.find("seg-4.m4s").unwrap()..];
    assert_eq!(tail_full, tail_delta);
}

#[test]
fn blocking_states() {
    let p = state(2, 3);
    use BlockState::*;
    let b = |msn, part| p.block_state(BlockRequest { msn, part });
    assert_eq!(b(1, None), Ready);
    assert_eq!(b(2, None), Wait);
    assert_eq!(b(2, Some(2)), Ready);
    assert_eq!(b(2, Some(3)), Wait);
    assert_eq!(b(1, Some(10)), Ready, "past the last part of a complete segment means the next segment's first");
    assert_eq!(b(4, Some(0)), Wait);
    assert_eq!(b(5, None), TooFarAhead);
}

#[test]
fn endlist_after_end() {
    let mut p = state(1, 4);
    p.end();
    let s = p.render(false);
    assert!(s.ends_with("seg-1.m4s\n#EXT-X-ENDLIST\n"));
    assert!(!s.contains("PRELOAD-HINT"));
}

#[test]
fn target_duration_grows_with_a_long_gop() {
    let mut p = state(1, 0);
    for _ in 0..16 {
        p.push_part(0.2, false, 0);
    }
    p.close_segment();
    assert_eq!(p.target_duration(), 3);
}

#[test]
fn program_time_format() {
    assert_eq!(format_program_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_program_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
}

#[test]
fn multivariant() {
    let s = render_multivariant(&[Variant {
        uri: "src/index.m3u8".into(),
        bandwidth: 500_000,
        average_bandwidth: 420_000,
        codecs: "avc1.64001e,mp4a.40.2".into(),
        resolution: Some((640, 360)),
        frame_rate: Some(25.0),
    }]);
    assert!(s.contains("#EXT-X-STREAM-INF:BANDWIDTH=500000,AVERAGE-BANDWIDTH=420000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nsrc/index.m3u8\n"));
}
