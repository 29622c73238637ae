//! The bundled sample as ffmpeg writes it (`moov` last) and moved to the front (`moov`
//! first, chunk offsets moved with it): the same tracks, samples and frames as the same
//! feed through the MPEG-TS demuxer; damaged files refused with what is wrong and where.

use mp4_atom::{Encode, Moov};

use super::*;
use crate::ts::TsDemuxer;
use crate::DemuxEvent;

const MP4: &[u8] = include_bytes!("../../../samples/sample.mp4");
const TS: &[u8] = include_bytes!("../../../samples/sample.ts");

/// Walks the top level as a driver would.
fn moov_of(file: &[u8]) -> Result<TopBox, Mp4Error> {
    let mut top = TopLevel::new(file.len() as u64);
    let mut step = top.start();
    loop {
        match step {
            TopStep::ReadHeader(at) => {
                let at = at as usize;
                step = top.header(&file[at..(at + 16).min(file.len())])?;
            }
            TopStep::Done(moov) => return Ok(moov),
        }
    }
}

fn index(file: &[u8]) -> Result<SourceIndex, Mp4Error> {
    let moov = moov_of(file)?;
    let (at, size) = (moov.offset as usize, moov.size as usize);
    SourceIndex::parse(&file[at..at + size], file.len() as u64)
}

fn frames(file: &[u8]) -> Vec<Frame> {
    let index = index(file).unwrap();
    (0..index.samples.len())
        .map(|i| {
            let s = index.samples[i];
            index.frame(i, &file[s.offset as usize..s.offset as usize + s.size as usize]).unwrap()
        })
        .collect()
}

/// The same file with `moov` before `mdat`, every chunk offset moved by its size.
fn faststart(file: &[u8]) -> Vec<u8> {
    let m = moov_of(file).unwrap();
    let mut moov = Moov::decode(&mut &file[m.offset as usize..(m.offset + m.size) as usize]).unwrap();
    // Written again, the moov may differ in size; the offsets do not change its size.
    let mut head = Vec::new();
    moov.encode(&mut head).unwrap();
    let shift = head.len() as u32;
    for trak in &mut moov.trak {
        if let Some(stco) = &mut trak.mdia.minf.stbl.stco {
            stco.entries.iter_mut().for_each(|o| *o += shift);
        }
    }
    head.clear();
    moov.encode(&mut head).unwrap();
    assert_eq!(head.len() as u32, shift);
    let ftyp = u32::from_be_bytes(file[..4].try_into().unwrap()) as usize;
    [&file[..ftyp], &head[..], &file[ftyp..m.offset as usize]].concat()
}

#[test]
fn an_mp4_gives_the_tracks_and_frames_the_same_feed_gives_as_mpeg_ts() {
    let index = index(MP4).unwrap();
    assert_eq!(index.tracks.iter().map(|t| t.kind()).collect::<Vec<_>>(), [TrackKind::Video, TrackKind::Audio]);
    assert!((5.9..6.2).contains(&index.duration_s), "{}", index.duration_s);
    assert!(index.samples.windows(2).all(|w| w[0].dts <= w[1].dts), "decode order");
    let mut ts = TsDemuxer::new();
    let mut from_ts = Vec::new();
    let mut ts_tracks = Vec::new();
    for e in ts.push(TS).into_iter().chain(ts.flush()).flatten() {
        match e {
            DemuxEvent::Track(t) => ts_tracks.push(t),
            DemuxEvent::Frame(f) => from_ts.push(f),
        }
    }
    let mp4_frames = frames(MP4);
    for (kind, ours) in [(TrackKind::Video, VIDEO_TRACK), (TrackKind::Audio, AUDIO_TRACK)] {
        let codec = |tracks: &[TrackInfo]| tracks.iter().find(|t| t.kind() == kind).unwrap().codec.clone();
        assert_eq!(codec(&index.tracks), codec(&ts_tracks), "{kind:?} configuration");
        let mp4: Vec<&Frame> = mp4_frames.iter().filter(|f| f.track == ours).collect();
        let ts: Vec<&Frame> = from_ts.iter().filter(|f| f.kind == kind).collect();
        assert_eq!(mp4.len(), ts.len(), "{kind:?} frames");
        let (t0, m0) = (ts[0].dts, mp4[0].dts);
        for (m, t) in mp4.iter().zip(&ts) {
            assert_eq!(m.data, t.data, "{kind:?} frame at {}", m.dts);
            assert_eq!(m.keyframe, t.keyframe);
            // ffmpeg rounds times into the mp4 timescale: within a millisecond.
            assert!(((m.dts - m0) - (t.dts - t0)).abs() <= 90, "{kind:?} dts {} vs {}", m.dts - m0, t.dts - t0);
            assert!(((m.pts - m.dts) - (t.pts - t.dts)).abs() <= 90, "{kind:?} composition offset");
        }
    }
}

#[test]
fn moov_first_or_last_index_the_same_samples() {
    let moved = faststart(MP4);
    assert!(moov_of(&moved).unwrap().offset < moov_of(MP4).unwrap().offset);
    assert_eq!(frames(&moved), frames(MP4));
}

#[test]
fn files_that_are_not_mp4_truncated_or_lying_are_refused_with_where() {
    assert!(matches!(index(TS), Err(Mp4Error::NotMp4(_))), "MPEG-TS is not MP4");
    assert!(matches!(index(b"hello, this is text and not a film at all"), Err(Mp4Error::NotMp4(_))));
    // Cut in the middle of mdat: the mdat box claims more than there is.
    let cut = &MP4[..MP4.len() / 2];
    assert!(matches!(index(cut), Err(Mp4Error::PastEnd { ref kind, .. }) if kind == "mdat"), "{:?}", index(cut));
    // Cut just before the moov: a finished mdat, no moov.
    let m = moov_of(MP4).unwrap();
    assert_eq!(index(&MP4[..m.offset as usize]).unwrap_err(), Mp4Error::NoMoov);
    // A moov whose chunk offsets point past the end of the file.
    let (at, size) = (m.offset as usize, m.size as usize);
    let moov = &MP4[at..at + size];
    let short = SourceIndex::parse(moov, m.offset / 2).unwrap_err();
    assert!(matches!(short, Mp4Error::SampleOutside { .. }), "{short}");
    // A moov whose sample count lies: stsz sizes one sample more than stts times.
    let mut lying = Moov::decode(&mut &moov[..]).unwrap();
    if let StszSamples::Different { sizes } = &mut lying.trak[0].mdia.minf.stbl.stsz.samples {
        sizes.push(100);
    }
    let mut bytes = Vec::new();
    lying.encode(&mut bytes).unwrap();
    let err = SourceIndex::parse(&bytes, MP4.len() as u64).unwrap_err();
    assert!(err.to_string().contains("stts times"), "{err}");
    assert!(matches!(SourceIndex::parse(&moov[..size / 2], MP4.len() as u64), Err(Mp4Error::Moov(_))));
}

#[test]
fn a_file_with_no_track_this_takes_names_the_codecs_it_has() {
    let m = moov_of(MP4).unwrap();
    let mut moov = MP4[m.offset as usize..(m.offset + m.size) as usize].to_vec();
    let rename = |moov: &mut Vec<u8>, from: &[u8; 4], to: &[u8; 4]| {
        let at = moov.windows(4).position(|w| w == from).expect("the sample has the entry");
        moov[at..at + 4].copy_from_slice(to);
    };
    rename(&mut moov, b"avc1", b"vp09");
    rename(&mut moov, b"mp4a", b"Opus");
    let err = SourceIndex::parse(&moov, MP4.len() as u64).unwrap_err();
    let Mp4Error::NoTracks(seen) = &err else { panic!("{err}") };
    assert!(seen.contains(": vp09") && seen.contains(": Opus"), "{seen}");
}
