//! The live slice end to end: the bundled sample over real SRT, LL-HLS checked against the
//! spec's rules, fMP4 read back with an independent MP4 parser.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mp4_atom::{Any, Codec};
use tessera_packager::check;

use crate::common::*;

/// Every playlist served goes through the project's LL-HLS checker, alone and in sequence.
fn checked(history: &mut check::History, text: &str) -> MediaPlaylist {
    let parsed = check::parse_media(text).expect("playlist parses");
    let mut violations = check::check_media(&parsed);
    violations.extend(history.add(&parsed));
    assert!(violations.is_empty(), "{violations:?} in\n{text}");
    let p = parse_media(text);
    check_rules(&p);
    p
}

fn check_rules(p: &MediaPlaylist) {
    assert!(p.part_target > 0.0);
    assert!(
        p.part_hold_back >= 3.0 * p.part_target - 1e-9,
        "PART-HOLD-BACK {} < 3 x {}",
        p.part_hold_back,
        p.part_target
    );
    assert!(p.hold_back >= 3.0 * p.target_duration, "HOLD-BACK");
    assert!(p.can_skip_until >= 6.0 * p.target_duration, "CAN-SKIP-UNTIL");
    for (msn, d, _) in &p.segments {
        assert!(d.round() <= p.target_duration, "segment {msn} of {d} s exceeds TARGETDURATION {}", p.target_duration);
    }
    for (i, (msn, idx, d, uri, independent)) in p.parts.iter().enumerate() {
        assert!(*d <= p.part_target + 1e-6, "part {uri} of {d} s exceeds PART-TARGET {}", p.part_target);
        let last_of_segment = p.parts.get(i + 1).is_none_or(|n| n.0 != *msn);
        if !independent && !last_of_segment {
            assert!(*d >= 0.85 * p.part_target, "part {uri} ({msn}/{idx}) shorter than 85% of the target");
        }
    }
    // Part sequence numbers are consecutive.
    let seqs: Vec<u64> =
        p.parts.iter().map(|x| x.3.trim_start_matches("part-").trim_end_matches(".m4s").parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    if let (Some(hint), Some(last)) = (&p.preload_hint, seqs.last()) {
        assert_eq!(hint, &format!("part-{}.m4s", last + 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_to_ll_hls() {
    let node = node(|_| {}).await;
    let http = node.http_addr();
    let publisher = publish_sample(&node, "slice", 3); // 18 s

    // The multivariant playlist describes the real stream.
    let mv = wait_ok(http, "/live/slice/index.m3u8", Duration::from_secs(10)).await;
    assert_eq!(mv.status, 200);
    assert_eq!(mv.headers["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(mv.headers["access-control-allow-origin"], "*");
    let text = mv.text();
    assert!(text.contains("CODECS=\"avc1.64001e,mp4a.40.2\""), "{text}");
    assert!(text.contains("RESOLUTION=640x360") && text.contains("FRAME-RATE=25.000"), "{text}");
    assert!(text.contains("AVERAGE-BANDWIDTH=") && text.contains("\nsrc/index.m3u8\n"));

    // Follow the live edge with blocking reloads for ~8 s.
    let mut history = check::History::new();
    let mut last_sequence = 0;
    let mut p = checked(&mut history, &get(http, "/live/slice/src/index.m3u8").await.text());
    for _ in 0..40 {
        let (msn, part) = p.next_part();
        let hinted = p.preload_hint.clone().expect("live playlist has a preload hint");
        let asked = Instant::now();
        let r = get(http, &format!("/live/slice/src/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")).await;
        let waited = asked.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(waited < Duration::from_secs(3), "blocking reload answered in {waited:?}");
        let next = checked(&mut history, &r.text());
        // It returns only once the part exists: the hinted part is now listed.
        assert!(
            next.parts.iter().any(|x| x.3 == hinted) || next.segments.iter().any(|s| s.0 >= msn),
            "{hinted} missing after blocking for it"
        );
        assert!(next.media_sequence >= last_sequence, "media sequence went backwards");
        last_sequence = next.media_sequence;
        p = next;
    }

    // Errors from the spec.
    let base = "/live/slice/src/index.m3u8";
    assert_eq!(get(http, &format!("{base}?_HLS_part=1")).await.status, 400);
    let too_far = p.segments.last().unwrap().0 + 4;
    assert_eq!(get(http, &format!("{base}?_HLS_msn={too_far}")).await.status, 400);
    assert_eq!(get(http, "/live/nope/index.m3u8").await.status, 404);
    assert_eq!(get(http, "/live/nope/src/index.m3u8").await.status, 404);
    assert_eq!(get(http, "/live/slice/720p/index.m3u8").await.status, 404);

    // The hinted part is held until complete, then served.
    let hint = p.preload_hint.clone().unwrap();
    let part = get(http, &format!("/live/slice/src/{hint}")).await;
    assert_eq!(part.status, 200);
    assert_eq!(part.headers["cache-control"], "public, max-age=31536000, immutable");

    // fMP4: the init has both tracks with real configurations.
    let p = parse_media(&get(http, base).await.text());
    let init = get(http, &format!("/live/slice/src/{}", p.maps[0])).await;
    let init_boxes = boxes(&init.body);
    let Some(Any::Moov(moov)) = init_boxes.iter().find(|b| matches!(b, Any::Moov(_))) else { panic!("no moov") };
    assert_eq!(moov.trak.len(), 2);
    let codecs: Vec<&Codec> = moov.trak.iter().flat_map(|t| &t.mdia.minf.stbl.stsd.codecs).collect();
    let Some(Codec::Avc1(avc1)) = codecs.iter().find(|c| matches!(c, Codec::Avc1(_))).copied() else {
        panic!("no avc1")
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (640, 360));
    assert_eq!(avc1.avcc.avc_profile_indication, 100);
    let Some(Codec::Mp4a(mp4a)) = codecs.iter().find(|c| matches!(c, Codec::Mp4a(_))).copied() else {
        panic!("no mp4a")
    };
    assert_eq!(mp4a.audio.channel_count, 2);

    // A segment with listed parts is exactly the concatenation of its parts, moof+mdat each.
    let (msn, _, seg_uri) = p
        .segments
        .iter()
        .rev()
        .find(|s| p.parts.iter().any(|x| x.0 == s.0))
        .cloned()
        .expect("a complete segment with parts");
    let seg = get(http, &format!("/live/slice/src/{seg_uri}")).await;
    assert_eq!(seg.status, 200);
    let mut joined = Vec::new();
    let mut video_samples = 0;
    let mut decode_times = Vec::new();
    for (_, _, _, uri, _) in p.parts.iter().filter(|x| x.0 == msn) {
        let part = get(http, &format!("/live/slice/src/{uri}")).await;
        assert_eq!(part.status, 200);
        let b = boxes(&part.body);
        assert!(matches!(b.as_slice(), [Any::Moof(_), Any::Mdat(_)]), "part {uri} is moof+mdat");
        if let Any::Moof(moof) = &b[0] {
            let traf = &moof.traf[0];
            video_samples += traf.trun.iter().map(|t| t.samples.len()).sum::<usize>();
            decode_times.push(traf.tfdt.as_ref().unwrap().base_media_decode_time);
        }
        joined.extend_from_slice(&part.body);
    }
    assert_eq!(Bytes::from(joined), seg.body);
    assert_eq!(video_samples, 50, "2 s of 25 fps video");
    assert!(decode_times.windows(2).all(|w| w[1] - w[0] == 18_000), "{decode_times:?}");

    // A delta update is the full playlist minus the skipped segments. Wait until the
    // playlist is longer than CAN-SKIP-UNTIL plus a segment, so there is something to skip.
    let mut compared = false;
    for _ in 0..100 {
        let full = get(http, base).await.text();
        let f = checked(&mut history, &full);
        if f.segments.iter().map(|s| s.1).sum::<f64>() <= f.can_skip_until + 2.0 {
            let (msn, part) = f.next_part();
            get(http, &format!("{base}?_HLS_msn={msn}&_HLS_part={part}")).await;
            continue;
        }
        let delta = get(http, &format!("{base}?_HLS_skip=YES")).await.text();
        let d = checked(&mut history, &delta);
        if f.parts.last() != d.parts.last() {
            continue; // a part landed between the two requests
        }
        assert!(d.skipped > 0, "{delta}");
        assert_eq!(&f.segments[d.skipped as usize..], &d.segments[..]);
        assert_eq!(f.parts, d.parts);
        assert_eq!(f.preload_hint, d.preload_hint);
        compared = true;
        break;
    }
    assert!(compared, "a delta update was compared with the full playlist");
    assert!(history.checked_deltas >= 1, "the checker matched the delta with its full playlist");

    publisher.await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reload_times_out_with_503() {
    let node = node(|c| c.reconnect_grace_ms = 60_000).await;
    let http = node.http_addr();
    publish_sample(&node, "stall", 1).await.unwrap();
    // The publisher is gone but the stream waits for it: a request for the future blocks,
    // then gets 503 after three target durations.
    let p = parse_media(&wait_ok(http, "/live/stall/src/index.m3u8", Duration::from_secs(5)).await.text());
    let msn = p.segments.last().unwrap().0 + 2;
    let asked = Instant::now();
    let r = get(http, &format!("/live/stall/src/index.m3u8?_HLS_msn={msn}")).await;
    assert_eq!(r.status, 503);
    assert!(asked.elapsed() >= Duration::from_secs(5), "held for three target durations");
    node.shutdown().await;
}
