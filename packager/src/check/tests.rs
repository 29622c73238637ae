use super::*;
use crate::playlist::tests::state as live;

#[test]
fn our_playlists_pass() {
    let mut h = History::new();
    for n in 1..14 {
        let state = live(n, n % 7);
        for skip in [false, true] {
            let p = parse_media(&state.render(skip, &[], &[])).unwrap();
            assert_eq!(check_media(&p), vec![], "{}", state.render(skip, &[], &[]));
            assert_eq!(h.add(&p), vec![]);
        }
    }
    assert!(h.checked_deltas > 3);
}

fn violations(text: &str) -> Vec<&'static str> {
    check_media(&parse_media(text).unwrap()).into_iter().map(|v| v.rule).collect()
}

const HEAD: &str =
    "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MAP:URI=\"i.mp4\"\n";

#[test]
fn broken_playlists_are_caught() {
    let ctl = "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.4,HOLD-BACK=6\n";
    let t = format!(
        "{HEAD}{ctl}#EXT-X-PART:DURATION=0.2,URI=\"a\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"b\"\n"
    );
    assert_eq!(violations(&t), vec!["part-hold-back"]);
    let ctl = "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6,HOLD-BACK=6\n";
    let t = format!("{HEAD}{ctl}#EXT-X-PART:DURATION=0.3,URI=\"a\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.1,URI=\"b\"\n#EXT-X-PART:DURATION=0.2,URI=\"c\"\n");
    assert_eq!(violations(&t), vec!["part-duration", "part-duration", "preload-hint"]);
    let t = format!("{HEAD}{ctl}#EXT-X-PART:DURATION=0.2,URI=\"a\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"a\"\n");
    assert_eq!(violations(&t), vec!["independent", "preload-hint"]);
    let t = format!("{HEAD}{ctl}#EXTINF:2.6,\ns0\n");
    assert_eq!(violations(&t), vec!["target-duration"]);
    let t = format!("{HEAD}{ctl}#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:2,\ns0\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:03.000Z\n#EXTINF:2,\ns1\n");
    assert_eq!(violations(&t), vec!["program-date-time"]);
}

#[test]
fn history_catches_renumbering_and_bad_deltas() {
    let mut h = History::new();
    let a = parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n#EXTINF:2,\ns5\n").unwrap();
    assert!(h.add(&a).is_empty());
    let b = parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:2,\nx4\n#EXTINF:2,\nx5\n")
        .unwrap();
    let rules: Vec<&str> = h.add(&b).into_iter().map(|v| v.rule).collect();
    assert_eq!(rules, vec!["media-sequence", "segment-numbering"]);

    let full = parse_media(&live(10, 1).render(false, &[], &[])).unwrap();
    let mut delta = parse_media(&live(10, 1).render(true, &[], &[])).unwrap();
    assert!(check_delta(&full, &delta).is_empty());
    delta.segments.remove(0);
    assert!(!check_delta(&full, &delta).is_empty());
}
