use super::*;
use crate::h264::tests::SPS_640X360;

const PPS: &[u8] = &[0x68, 0xef, 0xbc, 0xb0];

fn avc_sequence_header() -> Vec<u8> {
    let cfg = h264::parse_sps(SPS_640X360, vec![Bytes::from_static(PPS)]).unwrap();
    let mut v = vec![0x17, 0, 0, 0, 0];
    v.extend(h264::avcc_record(&cfg));
    v
}

fn nalus(keyframe: bool, cts_ms: i32, nals: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![if keyframe { 0x17 } else { 0x27 }, 1];
    v.extend_from_slice(&cts_ms.to_be_bytes()[1..]);
    for n in nals {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    v
}

#[test]
fn avc_sequence_header_then_frames() {
    let mut d = FlvDemuxer::new();
    let out = d.video(0, &avc_sequence_header());
    let Ok(DemuxEvent::Track(t)) = &out[0] else { panic!("{out:?}") };
    assert_eq!(t.codec.dimensions(), Some((640, 360)));
    assert_eq!(t.codec.rfc6381(), "avc1.64001e");
    // Resent identical header: no new track.
    assert!(d.video(0, &avc_sequence_header()).is_empty());
    // A P-frame before any keyframe is skipped; the keyframe comes out with cts applied and
    // its in-band SPS/PPS/AUD stripped.
    assert!(d.video(40, &nalus(false, 0, &[&[0x41, 1, 2]])).is_empty());
    let out = d.video(80, &nalus(true, 40, &[&[0x09, 0xf0], SPS_640X360, PPS, &[0x65, 9, 9, 9]]));
    let Ok(DemuxEvent::Frame(f)) = &out[0] else { panic!("{out:?}") };
    assert!(f.keyframe);
    assert_eq!((f.dts, f.pts), (80 * 90, 120 * 90));
    assert_eq!(&f.data[..], &[0, 0, 0, 4, 0x65, 9, 9, 9]);
    // Negative composition offsets are sign-extended.
    let out = d.video(120, &nalus(false, -40, &[&[0x41, 5]]));
    let Ok(DemuxEvent::Frame(f)) = &out[0] else { panic!() };
    assert_eq!(f.pts, 80 * 90);
}

#[test]
fn aac_sequence_header_then_frames() {
    let mut d = FlvDemuxer::new();
    assert!(matches!(d.audio(0, &[0xaf, 1, 1, 2, 3])[0], Err(FlvError::NoSequenceHeader { .. })));
    // An empty sequence header (ffmpeg's first, when copying) is no error.
    assert!(d.audio(0, &[0xaf, 0]).is_empty());
    let out = d.audio(0, &[0xaf, 0, 0x11, 0x90]);
    let Ok(DemuxEvent::Track(t)) = &out[0] else { panic!("{out:?}") };
    assert_eq!(t.codec.rfc6381(), "mp4a.40.2");
    let CodecConfig::Aac(a) = &t.codec else { panic!() };
    assert_eq!((a.sample_rate, a.channels), (48000, 2));
    let out = d.audio(21, &[0xaf, 1, 7, 7, 7]);
    let Ok(DemuxEvent::Frame(f)) = &out[0] else { panic!() };
    assert_eq!((f.pts, &f.data[..]), (21 * 90, &[7u8, 7, 7][..]));
}

#[test]
fn bad_tags_are_errors_not_panics() {
    let mut d = FlvDemuxer::new();
    assert!(matches!(d.video(0, &[0x17, 0]).as_slice(), [Err(FlvError::Truncated { .. })]));
    assert!(matches!(
        d.video(0, &[0x12, 0, 0, 0, 0, 1]).as_slice(),
        [Err(FlvError::UnsupportedCodec { codec: 2, .. })]
    ));
    assert!(matches!(d.video(0, &[0x17, 0, 0, 0, 0, 1, 2]).as_slice(), [Err(FlvError::BadAvcConfig { .. })]));
    assert!(matches!(d.video(0, &nalus(true, 0, &[&[0x65]])).as_slice(), [Err(FlvError::NoSequenceHeader { .. })]));
    d.video(0, &avc_sequence_header());
    let mut lying = nalus(true, 0, &[&[0x65, 1, 2]]);
    lying[8] = 200; // NAL length larger than the tag
    assert!(matches!(d.video(0, &lying).as_slice(), [Err(FlvError::BadNalLength { .. })]));
    assert!(matches!(d.audio(0, &[0x2f, 1, 1]).as_slice(), [Err(FlvError::UnsupportedCodec { codec: 2, .. })]));
    assert!(matches!(d.audio(0, &[0xaf, 0, 0x07, 0x90]).as_slice(), [Err(FlvError::BadAudioConfig { .. })]));
    for n in 0..avc_sequence_header().len() {
        let _ = FlvDemuxer::new().video(0, &avc_sequence_header()[..n]);
    }
}

#[test]
fn timestamps_unwrap_past_32_bits() {
    let mut d = FlvDemuxer::new();
    d.audio(0, &[0xaf, 0, 0x11, 0x90]);
    let t = |out: Vec<Result<DemuxEvent, FlvError>>| match &out[0] {
        Ok(DemuxEvent::Frame(f)) => f.pts,
        o => panic!("{o:?}"),
    };
    assert_eq!(t(d.audio(u32::MAX - 10, &[0xaf, 1, 1])), (u32::MAX as i64 - 10) * 90);
    assert_eq!(t(d.audio(11, &[0xaf, 1, 1])), ((1i64 << 32) + 11) * 90);
}

/// Tags of an FLV file (what an RTMP push carries), as (type, timestamp, body).
fn flv_tags(data: &[u8]) -> Vec<(u8, u32, &[u8])> {
    assert_eq!(&data[..3], b"FLV");
    let mut i = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize + 4;
    let mut tags = Vec::new();
    while i + 11 <= data.len() {
        let size = u32::from_be_bytes([0, data[i + 1], data[i + 2], data[i + 3]]) as usize;
        let ts = u32::from_be_bytes([data[i + 7], data[i + 4], data[i + 5], data[i + 6]]);
        tags.push((data[i], ts, &data[i + 11..i + 11 + size]));
        i += 11 + size + 4;
    }
    tags
}

#[test]
fn demuxes_an_ffmpeg_rtmp_capture() {
    // `ffmpeg -i samples/sample.ts -c copy -t 2 -f flv samples/sample-rtmp.flv`: the same
    // tags ffmpeg pushes over RTMP, including its empty first AAC sequence header.
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample-rtmp.flv")).unwrap();
    let mut d = FlvDemuxer::new();
    let mut events = Vec::new();
    for (kind, ts, body) in flv_tags(&data) {
        let out = match kind {
            8 => d.audio(ts, body),
            9 => d.video(ts, body),
            _ => continue,
        };
        for r in out {
            events.push(r.expect("no errors in a real capture"));
        }
    }
    let tracks: Vec<&TrackInfo> =
        events.iter().filter_map(|e| if let DemuxEvent::Track(t) = e { Some(t) } else { None }).collect();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].codec.dimensions(), Some((640, 360)));
    let video: Vec<&Frame> = events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Frame(f) if f.kind == TrackKind::Video => Some(f),
            _ => None,
        })
        .collect();
    assert!(video.len() >= 48, "{}", video.len());
    assert!(video[0].keyframe);
    assert!(video.windows(2).all(|w| w[1].dts - w[0].dts == 3600), "25 fps in 90 kHz ticks");
    assert!(video.iter().any(|f| f.pts > f.dts), "B-frames keep their composition offsets");
}
