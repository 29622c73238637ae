use super::*;

fn sizes(plan: &[Rendition]) -> Vec<(String, u32, u32)> {
    plan.iter()
        .map(|r| match &r.encode {
            Some(e) => (r.name.clone(), e.width, e.height),
            None => (r.name.clone(), 0, 0),
        })
        .collect()
}

#[test]
fn default_ladder_for_1080p_has_four_rungs() {
    let p = plan(&LadderSpec::default(), 1920, 1080);
    assert_eq!(
        sizes(&p),
        vec![("src".into(), 0, 0), ("720p".into(), 1280, 720), ("480p".into(), 854, 480), ("360p".into(), 640, 360)]
    );
    let e = p[1].encode.as_ref().unwrap();
    assert_eq!((e.bitrate, e.maxrate, e.bufsize), (2_500_000, 2_750_000, 2_750_000));
    assert_eq!(e.profile, H264Profile::High);
}

#[test]
fn never_upscales_and_skips_a_rung_equal_to_the_passthrough() {
    let p = plan(&LadderSpec::default(), 1280, 720);
    assert_eq!(sizes(&p), vec![("src".into(), 0, 0), ("480p".into(), 854, 480), ("360p".into(), 640, 360)]);
    let p = plan(&LadderSpec::default(), 640, 360);
    assert_eq!(sizes(&p), vec![("src".into(), 0, 0)], "a 360p source gets the passthrough only");
    let p = plan(&LadderSpec::default(), 320, 240);
    assert_eq!(sizes(&p), vec![("src".into(), 0, 0)]);
}

#[test]
fn without_passthrough_a_rung_at_the_source_size_is_kept() {
    let spec: LadderSpec = "720p:2500,360p:600".parse().unwrap();
    let p = plan(&spec, 1280, 720);
    assert_eq!(sizes(&p), vec![("720p".into(), 1280, 720), ("360p".into(), 640, 360)]);
}

#[test]
fn a_ladder_without_passthrough_that_would_only_upscale_keeps_its_smallest_rung_at_source_size() {
    let spec: LadderSpec = "720p:2500,480p:1200".parse().unwrap();
    let p = plan(&spec, 640, 360);
    assert_eq!(sizes(&p), vec![("480p".into(), 640, 360)]);
    assert_eq!(p[0].encode.as_ref().unwrap().bitrate, 1_200_000);
    let p = plan(&spec, 641, 359);
    assert_eq!(sizes(&p)[0].1 % 2 + sizes(&p)[0].2 % 2, 0, "even even from an odd source: {p:?}");
}

#[test]
fn odd_sizes_and_aspect_ratios_give_even_dimensions() {
    // 1366x768 (16:9-ish laptop panel), 1440x1080 (4:3), 1920x800 (2.4:1 scope), odd sizes.
    let spec: LadderSpec = "source,720p:2500,480p:1200,240p:300".parse().unwrap();
    for (w, h) in [(1366, 768), (1440, 1080), (1920, 800), (1921, 1081), (999, 577)] {
        for r in plan(&spec, w, h).iter().filter_map(|r| r.encode.as_ref()) {
            assert_eq!(r.width % 2, 0, "{w}x{h} -> {r:?}");
            assert_eq!(r.height % 2, 0, "{w}x{h} -> {r:?}");
            assert!(r.width <= w && r.height <= h, "never larger than the source: {w}x{h} -> {r:?}");
            let (src, out) = (w as f64 / h as f64, r.width as f64 / r.height as f64);
            assert!((src - out).abs() / src < 0.01, "aspect kept: {w}x{h} -> {}x{}", r.width, r.height);
        }
    }
    let p = plan(&spec, 1440, 1080);
    assert_eq!(sizes(&p)[1], ("720p".into(), 960, 720));
    let p = plan(&spec, 1920, 800);
    assert_eq!(sizes(&p)[1], ("720p".into(), 1728, 720));
}

#[test]
fn portrait_sources_are_sized_by_their_short_side() {
    let p = plan(&LadderSpec::default(), 1080, 1920);
    assert_eq!(
        sizes(&p),
        vec![("src".into(), 0, 0), ("720p".into(), 720, 1280), ("480p".into(), 480, 854), ("360p".into(), 360, 640)]
    );
}

#[test]
fn rungs_are_ordered_largest_first_whatever_the_configuration_order() {
    let spec: LadderSpec = "360p:600,source,720p:2500".parse().unwrap();
    let names: Vec<String> = plan(&spec, 1920, 1080).into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["src", "720p", "360p"]);
}

#[test]
fn ladder_syntax() {
    let spec: LadderSpec = "source, 540p:1800:max=2500:profile=main ,234p:300k".parse().unwrap();
    assert_eq!(
        spec.0,
        vec![
            RungSpec::Source,
            RungSpec::H264 { size: 540, kbps: 1800, max_kbps: Some(2500), profile: H264Profile::Main },
            RungSpec::H264 { size: 234, kbps: 300, max_kbps: None, profile: H264Profile::High },
        ]
    );
    assert_eq!(spec.to_string(), "source,540p:1800:max=2500:profile=main,234p:300");
    assert_eq!(spec.to_string().parse::<LadderSpec>().unwrap(), spec, "round trip");
    assert!(spec.transcodes());
    assert!(!"source".parse::<LadderSpec>().unwrap().transcodes());
    for bad in [
        "",
        "720:2500",
        "720p",
        "720p:fast",
        "721p:1000",
        "720p:10",
        "720p:1000:max=500",
        "720p:1:profile=x",
        "source,source",
        "480p:1000,480p:800",
        "720p:2500:crf=20",
    ] {
        assert!(bad.parse::<LadderSpec>().is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn serde_uses_the_same_syntax() {
    #[derive(Serialize, Deserialize)]
    struct C {
        ladder: LadderSpec,
    }
    let c: C = serde_json::from_str(r#"{"ladder":"source,480p:1200"}"#).unwrap();
    assert_eq!(c.ladder.to_string(), "source,480p:1200");
    assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"ladder":"source,480p:1200"}"#);
    assert!(serde_json::from_str::<C>(r#"{"ladder":"480p"}"#).is_err());
}
