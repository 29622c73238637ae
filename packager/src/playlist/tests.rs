use super::*;

/// Adds a part to the open segment, or to a new one.
pub(crate) fn push(p: &mut PlaylistState, duration: f64, independent: bool, t: i64) -> u64 {
    let msn = p.segments().last().filter(|s| !s.complete).map_or(p.next_msn(), |s| s.msn);
    p.push_part(msn, duration, independent, t, 2.0).expect("in order")
}

/// `n` complete segments of ten 0.2 s parts, then `open` parts of the next.
pub(crate) fn state(n: usize, open: usize) -> PlaylistState {
    let mut p = PlaylistState::new(PlaylistConfig::default());
    p.set_init(0);
    p.set_part_target(0.2);
    let mut t = 1_700_000_000_000i64;
    for _ in 0..n {
        for i in 0..10 {
            push(&mut p, 0.2, i % 5 == 0, t);
            t += 200;
        }
        p.close_segment();
    }
    for i in 0..open {
        push(&mut p, 0.2, i % 5 == 0, t);
        t += 200;
    }
    p
}

#[test]
fn renders_the_low_latency_tags() {
    let p = state(3, 2);
    let s = p.render(false, &[], &[]);
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
    let s = p.render(false, &[], &[]);
    assert!(s.contains("#EXT-X-MEDIA-SEQUENCE:15\n"));
    assert_eq!(s.matches("#EXTINF").count(), 10);
    assert_eq!(p.oldest_retained_msn(), 5);
}

#[test]
fn discontinuity_on_new_init_and_sequence_counts_removed_tags() {
    let mut p = state(2, 3);
    p.set_init(1);
    for _ in 0..10 {
        push(&mut p, 0.2, false, 0);
    }
    p.close_segment();
    let s = p.render(false, &[], &[]);
    assert_eq!(s.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert!(s.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"));
    assert!(s.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
    // Push the discontinuity to the front of the window: the tag leaves, the sequence counts it.
    for _ in 0..9 {
        for _ in 0..10 {
            push(&mut p, 0.2, false, 0);
        }
        p.close_segment();
    }
    let s = p.render(false, &[], &[]);
    assert!(s.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{s}");
    assert!(!s.contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn delta_update_skips_old_segments() {
    let p = state(10, 1);
    let full = p.render(false, &[], &[]);
    let delta = p.render(true, &[], &[]);
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
    let s = p.render(false, &[], &[]);
    assert!(s.ends_with("seg-1.m4s\n#EXT-X-ENDLIST\n"));
    assert!(!s.contains("PRELOAD-HINT"));
}

#[test]
fn target_duration_grows_with_a_long_gop() {
    let mut p = state(1, 0);
    for _ in 0..16 {
        push(&mut p, 0.2, false, 0);
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
    let s = render_multivariant(
        &[Variant {
            uri: "src/index.m3u8".into(),
            bandwidth: 500_000,
            average_bandwidth: 420_000,
            codecs: "avc1.64001e,mp4a.40.2".into(),
            resolution: Some((640, 360)),
            frame_rate: Some(25.0),
        }],
        &["720p dropped: encoding it is slower than real time".into()],
    );
    assert!(s.contains("\n# 720p dropped: encoding it is slower than real time\n"));
    assert!(s.contains("#EXT-X-STREAM-INF:BANDWIDTH=500000,AVERAGE-BANDWIDTH=420000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nsrc/index.m3u8\n"));
}

#[test]
fn gaps_keep_the_numbering_and_are_listed_without_parts() {
    let mut p = state(2, 3); // segments 0, 1 complete; 2 open with 3 parts
                             // The encoder died: segment 2 closes at the source's duration, 3 and 4 have no media.
    p.push_gap(2, 2.0, 1_700_000_004_000);
    p.push_gap(3, 2.0, 1_700_000_006_000);
    p.push_gap(4, 2.0, 1_700_000_008_000);
    assert_eq!(p.push_part(5, 0.2, true, 1_700_000_010_000, 2.0), Some(23));
    let s = p.render(false, &[], &[]);
    assert!(s.contains("#EXTINF:2.00000,\nseg-2.m4s\n"), "the interrupted segment keeps the source's duration\n{s}");
    assert!(
        s.contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z\n#EXT-X-GAP\n#EXTINF:2.00000,\nseg-3.m4s\n"),
        "{s}"
    );
    assert!(s.contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg-4.m4s\n"));
    assert_eq!(s.matches("#EXT-X-GAP").count(), 2);
    let checked = crate::check::parse_media(&s).unwrap();
    assert_eq!(crate::check::check_media(&checked), vec![], "{s}");
    assert_eq!(checked.segments.iter().map(|x| x.msn).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    // A blocked request for a gap is answered at once: no part will ever come.
    assert_eq!(p.block_state(BlockRequest { msn: 4, part: Some(0) }), BlockState::Ready);
    // Parts or gaps for numbers already listed are refused or ignored.
    assert_eq!(p.push_part(4, 0.2, true, 0, 2.0), None);
    p.push_gap(1, 2.0, 0);
    assert_eq!(p.render(false, &[], &[]), s);
}

#[test]
fn a_jump_in_numbers_is_filled_with_gaps() {
    let mut p = state(1, 0);
    assert!(p.push_part(4, 0.2, true, 1_700_000_008_000, 2.0).is_some());
    let s = p.render(false, &[], &[]);
    assert_eq!(s.matches("#EXT-X-GAP").count(), 3, "{s}");
    assert!(crate::check::check_media(&crate::check::parse_media(&s).unwrap()).is_empty(), "{s}");
}

#[test]
fn rendition_reports_follow_the_preload_hint() {
    let mut a = state(2, 3);
    let b = state(2, 0);
    let reports = [a.report("../480p/index.m3u8".into()).unwrap(), b.report("../360p/index.m3u8".into()).unwrap()];
    assert_eq!(reports[0], RenditionReport { uri: "../480p/index.m3u8".into(), last_msn: 2, last_part: Some(2) });
    assert_eq!(reports[1].last_part, Some(9), "a complete segment reports its last part");
    a.push_gap(3, 2.0, 0);
    assert_eq!(a.report("x".into()).unwrap().last_part, None, "a gap has no parts");
    let s = b.render(false, &reports, &[]);
    assert!(
        s.ends_with(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-20.m4s\"\n\
         #EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=2,LAST-PART=2\n\
         #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=1,LAST-PART=9\n"
        ),
        "{s}"
    );
}

#[test]
fn parts_numbered_by_another_node_keep_its_numbers_and_never_go_back() {
    let mut p = state(0, 0);
    p.number_parts_from(40);
    assert_eq!(push(&mut p, 0.2, true, 1_700_000_000_000), 40);
    assert_eq!(push(&mut p, 0.2, false, 1_700_000_000_200), 41);
    // A lower number (a node that started numbering afresh) is not reused.
    p.number_parts_from(3);
    assert_eq!(push(&mut p, 0.2, false, 1_700_000_000_400), 42);
    let s = p.render(false, &[], &[]);
    assert!(s.contains("URI=\"part-40.m4s\",INDEPENDENT=YES\n"), "{s}");
    assert!(s.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-43.m4s\"\n"), "{s}");
}

#[test]
fn the_dvr_playlist_keeps_its_window_past_the_live_one() {
    let mut p = PlaylistState::new(PlaylistConfig { window_segments: 3, ..PlaylistConfig::default() });
    p.set_dvr_seconds(10.0);
    p.set_init(0);
    p.set_part_target(0.2);
    let mut t = 1_700_000_000_000i64;
    for _ in 0..10 {
        for i in 0..10 {
            push(&mut p, 0.2, i == 0, t);
            t += 200;
        }
        p.close_segment();
    }
    push(&mut p, 0.2, true, t); // segment 10, open
    let live = p.render(false, &[], &[]);
    assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:7\n"), "{live}");
    let dvr = p.render_dvr(None, &[]);
    // 10 s of history (segments 2 to 6) and the live window's complete segments (7 to 9).
    assert!(dvr.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{dvr}");
    assert_eq!(dvr.matches("#EXTINF:").count(), 8, "{dvr}");
    assert!(dvr.contains("seg-2.m4s\n") && dvr.contains("seg-9.m4s\n") && !dvr.contains("seg-10.m4s"));
    assert!(!dvr.contains("#EXT-X-PART") && !dvr.contains("PRELOAD-HINT") && !dvr.contains("SERVER-CONTROL"));
    assert!(dvr.contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z\n"), "segment 2's time: {dvr}");
    // A premiere released 500 ms into segment 4: the rehearsal before it is not listed.
    let released = p.render_dvr(Some(1_700_000_000_000 + 4 * 2_000 + 500), &[]);
    assert!(released.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{released}");
    assert_eq!(released.matches("#EXTINF:").count(), 6, "{released}");
    assert!(released.contains("#EXT-X-MAP:URI=\"init-0.mp4\"\n"), "the first listed names its init: {released}");
    p.end();
    assert!(p.render_dvr(None, &[]).ends_with("#EXT-X-ENDLIST\n"));
    // Without a DVR window, the DVR playlist is the live window's complete segments.
    let q = state(12, 0);
    assert!(q.render_dvr(None, &[]).contains("#EXT-X-MEDIA-SEQUENCE:2\n"));
}

#[test]
fn keys_are_named_where_they_change_and_init_segments_stay_clear() {
    let mut p = PlaylistState::new(PlaylistConfig { window_segments: 10, ..PlaylistConfig::default() });
    p.set_init(0);
    p.set_part_target(0.2);
    let mut t = 1_700_000_000_000i64;
    for msn in 0..6 {
        if msn == 4 {
            p.set_init(1); // a new session's init, under the second key
        }
        for i in 0..10 {
            push(&mut p, 0.2, i == 0, t);
            t += 200;
        }
        p.close_segment();
    }
    let key = |from_msn, uri: &str| SegmentKey { from_msn, uri: uri.into(), sample_aes: None, drm_tags: String::new() };
    let keys = [key(0, "/k/a"), key(3, "/k/b")];
    let s = p.render(false, &[], &keys);
    let tags: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("#EXT-X-KEY") || l.starts_with("#EXT-X-MAP") || l.starts_with("seg-"))
        .collect();
    let a = "#EXT-X-KEY:METHOD=AES-128,URI=\"/k/a\",KEYFORMAT=\"identity\"";
    let b = "#EXT-X-KEY:METHOD=AES-128,URI=\"/k/b\",KEYFORMAT=\"identity\"";
    assert_eq!(
        tags,
        vec![
            "#EXT-X-MAP:URI=\"init-0.mp4\"",
            a,
            "seg-0.m4s",
            "seg-1.m4s",
            "seg-2.m4s",
            b,
            "seg-3.m4s",
            "#EXT-X-KEY:METHOD=NONE",
            "#EXT-X-MAP:URI=\"init-1.mp4\"",
            b,
            "seg-4.m4s",
            "seg-5.m4s",
        ],
        "{s}"
    );
    // Without keys nothing changes; the DVR playlist names them the same way.
    assert!(!p.render(false, &[], &[]).contains("EXT-X-KEY"));
    assert_eq!(p.render_dvr(None, &keys).matches("#EXT-X-KEY:METHOD=AES-128").count(), 3);
}

#[test]
fn sample_aes_keys_come_before_the_init_segment_that_names_them() {
    let mut p = PlaylistState::new(PlaylistConfig { window_segments: 10, ..Default::default() });
    p.set_init(0);
    p.set_part_target(0.2);
    let mut t = 1_700_000_000_000i64;
    for msn in 0..5 {
        if msn == 4 {
            p.set_init(1);
        }
        for i in 0..10 {
            push(&mut p, 0.2, i == 0, t);
            t += 200;
        }
        p.close_segment();
    }
    let (a, b) = ("a".repeat(32), "b".repeat(32));
    let key = |from_msn, uri: &str, kid: &str| SegmentKey {
        from_msn,
        uri: uri.into(),
        sample_aes: Some(kid.into()),
        drm_tags: String::new(),
    };
    let keys = [key(0, "/k/a", &a), key(2, "/k/b", &b)];
    let s = p.render(false, &[], &keys);
    let tags: Vec<String> = s
        .lines()
        .filter(|l| l.starts_with("#EXT-X-KEY") || l.starts_with("#EXT-X-MAP") || l.starts_with("seg-"))
        .map(str::to_string)
        .collect();
    let key_tag = |uri: &str, kid: &str| {
        format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{uri}\",KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\",KEYID=0x{kid}")
    };
    let map = |init: u32, kid: &str| format!("#EXT-X-MAP:URI=\"init-{init}-{kid}.mp4\"");
    let expected = vec![
        key_tag("/k/a", &a),
        map(0, &a),
        "seg-0.m4s".into(),
        "seg-1.m4s".into(),
        key_tag("/k/b", &b),
        map(0, &b),
        "seg-2.m4s".into(),
        "seg-3.m4s".into(),
        map(1, &b),
        "seg-4.m4s".into(),
    ];
    assert_eq!(tags, expected, "{s}");
    assert!(!s.contains("METHOD=NONE"), "SAMPLE-AES init segments are never encrypted whole: {s}");
}
