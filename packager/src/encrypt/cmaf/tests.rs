//! `cbcs` in fMP4: the init segment's protection scheme boxes and a fragment's auxiliary
//! information, read back box by box; the encrypted samples decrypt to the clear ones with
//! the subsamples the fragment itself declares; a segment encrypted whole equals its parts
//! encrypted one by one; bad input is refused with the offending box and offset.

use bytes::Bytes;
use tessera_ingest::media::{AacConfig, AvcConfig, CodecConfig, TrackInfo};

use super::*;
use crate::encrypt::cbcs::{self, NalSyntax, Subsample};
use crate::fmp4::{fragment, init_segment, TrackRun};
use crate::segmenter::Sample;

fn key() -> CbcsKey {
    CbcsKey { kid: [0x11; 16], key: [0x22; 16], iv: [0x33; 16], pssh: Vec::new() }
}

const VIDEO: TrackCrypt = TrackCrypt { track_id: 1, video: Some((NalSyntax::H264, 4)) };
const AUDIO: TrackCrypt = TrackCrypt { track_id: 2, video: None };

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The boxes directly inside `data[from..to]`: (kind, start, size).
fn children(data: &[u8], from: usize, to: usize) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = u32_at(data, at);
        out.push((String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned(), at, size));
        at += size.max(8);
    }
    out
}

fn find(data: &[u8], from: usize, to: usize, kind: &str) -> (usize, usize) {
    let found = children(data, from, to).into_iter().find(|c| c.0 == kind);
    let (_, at, size) = found.unwrap_or_else(|| panic!("no {kind} box"));
    (at, size)
}

fn nal(header: u8, len: usize) -> Vec<u8> {
    let mut n = (len as u32 + 1).to_be_bytes().to_vec();
    n.push(header);
    n.extend((0..len).map(|i| (i * 7) as u8));
    n
}

fn video_samples(first_dts: i64) -> Vec<Sample> {
    vec![
        Sample {
            dts: first_dts,
            pts: first_dts,
            duration: 3000,
            keyframe: true,
            data: Bytes::from([nal(0x67, 12), nal(0x65, 400)].concat()),
        },
        Sample {
            dts: first_dts + 3000,
            pts: first_dts + 3000,
            duration: 3000,
            keyframe: false,
            data: Bytes::from(nal(0x41, 150)),
        },
    ]
}

fn audio_samples() -> Vec<Sample> {
    vec![Sample { dts: 0, pts: 0, duration: 1920, keyframe: true, data: Bytes::from(vec![9u8; 100]) }]
}

fn clear_fragment(seq: u32, video: &[Sample], audio: &[Sample]) -> Bytes {
    let run = |track_id, samples, timescale, fixed_duration| TrackRun {
        track_id,
        base_decode_time: 0,
        samples,
        timescale,
        fixed_duration,
    };
    fragment(seq, &[run(1, video, 90_000, None), run(2, audio, 48_000, Some(1024))])
}

#[test]
fn a_cbcs_fragment_declares_its_subsamples_and_decrypts_back_to_the_clear_samples() {
    let (video, audio) = (video_samples(0), audio_samples());
    let clear = clear_fragment(1, &video, &audio);
    let frag = protect_fragments(&clear, &[VIDEO, AUDIO], &key()).unwrap();
    let (moof, moof_size) = find(&frag, 0, frag.len(), "moof");
    let trafs: Vec<_> = children(&frag, moof + 8, moof + moof_size).into_iter().filter(|c| c.0 == "traf").collect();
    assert_eq!(trafs.len(), 2);
    let (mdat, _) = find(&frag, 0, frag.len(), "mdat");
    let mut sample_at = mdat + 8;
    for ((_, traf, size), (samples, pattern, track)) in
        trafs.iter().zip([(&video, cbcs::VIDEO_PATTERN, 1), (&audio, cbcs::AUDIO_PATTERN, 2)])
    {
        let (trun, _) = find(&frag, traf + 8, traf + size, "trun");
        assert_eq!(u32_at(&frag, trun + 16), sample_at, "track {track}'s data offset follows the grown moof");
        let (senc, _) = find(&frag, traf + 8, traf + size, "senc");
        let (saio, _) = find(&frag, traf + 8, traf + size, "saio");
        let (saiz, _) = find(&frag, traf + 8, traf + size, "saiz");
        let flags = u32_at(&frag, senc + 8) & 0xff_ffff;
        assert_eq!(u32_at(&frag, senc + 12), samples.len(), "senc counts the samples");
        assert_eq!(u32_at(&frag, saio + 16), senc + 16, "saio points at senc's first entry, from the moof");
        assert_eq!(u32_at(&frag, saiz + 13), samples.len());
        let mut entry = senc + 16;
        for (i, s) in samples.iter().enumerate() {
            let subsamples: Vec<Subsample> = if flags & 2 != 0 {
                let n = u16::from_be_bytes(frag[entry..entry + 2].try_into().unwrap()) as usize;
                assert_eq!(frag[saiz + 17 + i] as usize, 2 + 6 * n, "saiz sizes each sample's entry");
                let subs = (0..n)
                    .map(|k| {
                        let at = entry + 2 + 6 * k;
                        Subsample {
                            clear: u16::from_be_bytes(frag[at..at + 2].try_into().unwrap()),
                            protected: u32_at(&frag, at + 2) as u32,
                        }
                    })
                    .collect();
                entry += 2 + 6 * n;
                subs
            } else {
                Vec::new()
            };
            let mut data = frag[sample_at..sample_at + s.data.len()].to_vec();
            assert_ne!(data, s.data.to_vec(), "sample {i} of track {track} is encrypted");
            cbcs::decrypt(&key().key, &key().iv, &mut data, &subsamples, pattern).unwrap();
            assert_eq!(data, s.data.to_vec(), "sample {i} of track {track} decrypts");
            sample_at += s.data.len();
        }
    }
    assert_eq!(sample_at, frag.len(), "the mdat keeps its size");
}

#[test]
fn a_segment_encrypted_whole_is_its_parts_encrypted_one_by_one() {
    let (a, b, audio) = (video_samples(0), video_samples(6000), audio_samples());
    let parts = [clear_fragment(1, &a, &audio), clear_fragment(2, &b, &audio)];
    let segment = [parts[0].to_vec(), parts[1].to_vec()].concat();
    let whole = protect_fragments(&segment, &[VIDEO, AUDIO], &key()).unwrap();
    let one_by_one: Vec<u8> =
        parts.iter().flat_map(|p| protect_fragments(p, &[VIDEO, AUDIO], &key()).unwrap().to_vec()).collect();
    assert_eq!(whole.to_vec(), one_by_one);
    let other = CbcsKey { key: [0x44; 16], ..key() };
    assert_ne!(protect_fragments(&parts[0], &[VIDEO, AUDIO], &other).unwrap(), one_by_one[..whole.len() / 2]);
}

#[test]
fn bad_fragments_are_refused_with_the_box_and_offset() {
    let (video, audio) = (video_samples(0), audio_samples());
    let clear = clear_fragment(1, &video, &audio);
    let tracks = [VIDEO, AUDIO];
    let protected = protect_fragments(&clear, &tracks, &key()).unwrap();
    let again = protect_fragments(&protected, &tracks, &key()).unwrap_err();
    assert!(matches!(again, ProtectError::Unsupported { ref kind, what: "already protected", .. } if kind == "senc"));
    let truncated = protect_fragments(&clear[..clear.len() - 3], &tracks, &key()).unwrap_err();
    assert_eq!(
        truncated,
        ProtectError::Truncated { kind: "mdat".into(), offset: find(&clear, 0, clear.len(), "mdat").0 }
    );
    assert_eq!(protect_fragments(&clear, &[VIDEO], &key()).unwrap_err(), ProtectError::UnknownTrack { track: 2 });
    // A data offset pointing past the mdat.
    let mut lying = clear.to_vec();
    let trun = lying.windows(4).position(|w| w == b"trun").unwrap() - 4;
    lying[trun + 16..trun + 20].copy_from_slice(&10_000u32.to_be_bytes());
    let outside = protect_fragments(&lying, &tracks, &key()).unwrap_err();
    assert_eq!(outside, ProtectError::SampleOutsideMdat { track: 1, sample: 0, offset: 0 });
    // A NAL unit that claims more than its sample.
    let mut overrun = video.clone();
    overrun[1].data = Bytes::from([&[0, 0, 1, 0][..], &[0x41; 20]].concat());
    let err = protect_fragments(&clear_fragment(1, &overrun, &audio), &tracks, &key()).unwrap_err();
    assert!(matches!(err, ProtectError::Sample { track: 1, sample: 1, .. }), "{err}");
    assert!(protect_fragments(b"\0\0\0\x10mdat", &tracks, &key()).is_err(), "media data without a moof");
}

fn avc_track() -> TrackInfo {
    TrackInfo {
        id: 1,
        codec: CodecConfig::H264(AvcConfig {
            sps: Bytes::from_static(&[0x67, 0x64, 0, 0x1f]),
            pps: vec![Bytes::from_static(&[0x68])],
            profile_idc: 100,
            constraint_flags: 0,
            level_idc: 31,
            chroma_format_idc: 1,
            bit_depth_luma: 8,
            bit_depth_chroma: 8,
            width: 1280,
            height: 720,
            frame_rate: None,
        }),
    }
}

fn aac_track() -> TrackInfo {
    TrackInfo {
        id: 2,
        codec: CodecConfig::Aac(AacConfig {
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
            asc: Bytes::from_static(&[0x11, 0x90]),
        }),
    }
}

#[test]
fn the_init_segment_signals_cbcs_with_the_original_format_key_id_constant_iv_and_pssh() {
    let clear = init_segment(&[avc_track(), aac_track()]);
    let (init, tracks) = protect_init(&clear, &key()).unwrap();
    assert_eq!(tracks, vec![VIDEO, AUDIO], "track ids from tkhd, NAL length size from avcC");
    let all = |kind: &[u8]| -> Vec<usize> {
        init.windows(4).enumerate().filter(|(_, w)| *w == kind).map(|(i, _)| i - 4).collect()
    };
    assert_eq!(all(b"encv").len(), 1);
    assert_eq!(all(b"enca").len(), 1);
    let frma = all(b"frma");
    assert_eq!(&init[frma[0] + 8..frma[0] + 12], b"avc1");
    assert_eq!(&init[frma[1] + 8..frma[1] + 12], b"mp4a");
    for schm in all(b"schm") {
        assert_eq!((&init[schm + 12..schm + 16], u32_at(&init, schm + 16)), (&b"cbcs"[..], 0x0001_0000));
    }
    for (sinf, schi) in all(b"sinf").into_iter().zip(all(b"schi")) {
        let tiled = children(&init, sinf + 8, sinf + u32_at(&init, sinf));
        assert_eq!(tiled.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["frma", "schm", "schi"]);
        assert_eq!(tiled.iter().map(|c| c.2).sum::<usize>() + 8, u32_at(&init, sinf), "sinf's boxes fill it");
        assert_eq!(u32_at(&init, schi), 8 + 49, "schi holds tenc and nothing else");
    }
    let tenc = all(b"tenc");
    for (t, pattern) in tenc.iter().zip([0x19, 0x00]) {
        let body = t + 8;
        assert_eq!(init[body], 1, "tenc version 1 carries the pattern");
        assert_eq!(
            (init[body + 5], init[body + 6], init[body + 7]),
            (pattern, 1, 0),
            "pattern, protected, constant IV"
        );
        assert_eq!(&init[body + 8..body + 24], &[0x11; 16], "default key id");
        assert_eq!((init[body + 24], &init[body + 25..body + 41]), (16, &[0x33u8; 16][..]), "constant IV");
    }
    // Every container's size still adds up: the boxes tile the file.
    let (moov, moov_size) = find(&init, 0, init.len(), "moov");
    assert_eq!(moov + moov_size, init.len());
    let pssh = all(b"pssh")[0];
    assert_eq!(&init[pssh + 12..pssh + 28], &COMMON_SYSTEM, "the common system's pssh");
    assert_eq!((u32_at(&init, pssh + 28), &init[pssh + 32..pssh + 48]), (1, &[0x11u8; 16][..]), "names the key id");
    assert_eq!(init.len() - clear.len(), 2 * (8 + 12 + 20 + 8 + 49) + 52, "two sinf and one pssh added");
    assert!(!clear.windows(4).any(|w| w == b"sinf"), "clear stays clear");
    let again = protect_init(&init, &key()).unwrap_err();
    assert!(matches!(again, ProtectError::Unsupported { what: "already protected", .. }), "{again}");
    assert!(protect_init(&clear[..clear.len() - 1], &key()).is_err(), "truncated");
}
