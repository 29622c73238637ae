//! `cbcs` in fMP4: the init segment's protection scheme boxes and a fragment's auxiliary
//! information, read back box by box; the encrypted samples decrypt to the clear ones with
//! the subsamples the fragment itself declares.

use bytes::Bytes;
use tessera_ingest::media::{AacConfig, CodecConfig, TrackInfo};

use super::cbcs::{self, NalSyntax, Subsample};
use crate::fmp4::{fragment_with, init_segment_with, CbcsKey, TrackRun};
use crate::segmenter::Sample;

fn key() -> CbcsKey {
    CbcsKey { kid: [0x11; 16], key: [0x22; 16], iv: [0x33; 16] }
}

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

#[test]
fn a_cbcs_fragment_declares_its_subsamples_and_decrypts_back_to_the_clear_samples() {
    let video = vec![
        Sample {
            dts: 0,
            pts: 0,
            duration: 3000,
            keyframe: true,
            data: Bytes::from([nal(0x67, 12), nal(0x65, 400)].concat()),
        },
        Sample { dts: 3000, pts: 3000, duration: 3000, keyframe: false, data: Bytes::from(nal(0x41, 150)) },
    ];
    let audio = vec![Sample { dts: 0, pts: 0, duration: 1920, keyframe: true, data: Bytes::from(vec![9u8; 100]) }];
    let runs = [
        TrackRun {
            track_id: 1,
            base_decode_time: 0,
            samples: &video,
            timescale: 90_000,
            fixed_duration: None,
            nal: Some(NalSyntax::H264),
        },
        TrackRun {
            track_id: 2,
            base_decode_time: 0,
            samples: &audio,
            timescale: 48_000,
            fixed_duration: Some(1024),
            nal: None,
        },
    ];
    let frag = fragment_with(1, &runs, Some(&key())).unwrap();
    let clear = fragment_with(1, &runs, None).unwrap();
    let (moof, moof_size) = find(&frag, 0, frag.len(), "moof");
    let trafs: Vec<_> = children(&frag, moof + 8, moof + moof_size).into_iter().filter(|c| c.0 == "traf").collect();
    assert_eq!(trafs.len(), 2);
    let (mdat, _) = find(&frag, 0, frag.len(), "mdat");
    let mut sample_at = mdat + 8;
    for ((_, traf, size), (run, pattern)) in
        trafs.iter().zip([(&runs[0], cbcs::VIDEO_PATTERN), (&runs[1], cbcs::AUDIO_PATTERN)])
    {
        let (senc, _) = find(&frag, traf + 8, traf + size, "senc");
        let (saio, _) = find(&frag, traf + 8, traf + size, "saio");
        let (saiz, _) = find(&frag, traf + 8, traf + size, "saiz");
        let flags = u32_at(&frag, senc + 8) & 0xff_ffff;
        assert_eq!(u32_at(&frag, senc + 12), run.samples.len(), "senc counts the samples");
        assert_eq!(u32_at(&frag, saio + 16), senc + 16, "saio points at senc's first entry, from the moof");
        assert_eq!(u32_at(&frag, saiz + 13), run.samples.len());
        let mut entry = senc + 16;
        for (i, s) in run.samples.iter().enumerate() {
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
            assert_ne!(data, s.data.to_vec(), "sample {i} of track {} is encrypted", run.track_id);
            cbcs::decrypt(&key().key, &key().iv, &mut data, &subsamples, pattern).unwrap();
            assert_eq!(data, s.data.to_vec(), "sample {i} of track {} decrypts", run.track_id);
            sample_at += s.data.len();
        }
    }
    assert!(frag.len() > clear.len(), "the clear fragment has no auxiliary information");
}

#[test]
fn the_init_segment_signals_cbcs_with_the_original_format_key_id_and_constant_iv() {
    let audio = TrackInfo {
        id: 1,
        codec: CodecConfig::Aac(AacConfig {
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
            asc: Bytes::from_static(&[0x11, 0x90]),
        }),
    };
    let init = init_segment_with(std::slice::from_ref(&audio), Some(&key()));
    let at = |kind: &[u8]| {
        init.windows(4).position(|w| w == kind).unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(kind)))
    };
    assert!(
        init.windows(4).all(|w| w != b"mp4a") || at(b"frma") < at(b"mp4a"),
        "the entry is enca; mp4a only as frma's original format"
    );
    let _ = at(b"enca");
    assert_eq!(&init[at(b"frma") + 4..at(b"frma") + 8], b"mp4a");
    assert_eq!(&init[at(b"schm") + 8..at(b"schm") + 12], b"cbcs");
    let tenc = at(b"tenc") + 4;
    assert_eq!(init[tenc], 1, "tenc version 1 carries the pattern");
    assert_eq!(
        (init[tenc + 5], init[tenc + 6], init[tenc + 7]),
        (0x00, 1, 0),
        "audio: no pattern, protected, constant IV"
    );
    assert_eq!(&init[tenc + 8..tenc + 24], &[0x11; 16], "default key id");
    assert_eq!((init[tenc + 24], &init[tenc + 25..tenc + 41]), (16, &[0x33u8; 16][..]), "constant IV");
    assert!(!crate::fmp4::init_segment(&[audio]).windows(4).any(|w| w == b"sinf"), "clear stays clear");
}
