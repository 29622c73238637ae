//! What publishers and uploaders send: MPEG-TS, RTMP (as `rml_rtmp` hands its messages
//! over) and FLV tags, MP4/MOV sources, H.264 and HEVC parameter sets and access units,
//! AAC configurations and ADTS.

use bytes::Bytes;
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use tessera_ingest::flv::{FlvDemuxer, FlvError};
use tessera_ingest::mp4::{SourceIndex, TopLevel, TopStep};
use tessera_ingest::ts::{DemuxError, TsDemuxer};
use tessera_ingest::{aac, h264, hevc, DemuxEvent};

use crate::pieces;

/// MPEG-TS from an SRT publisher: every error names its byte offset, and the events do not
/// depend on how the bytes were split across reads.
pub(crate) fn mpeg_ts(data: &[u8]) {
    let (pieces, whole) = pieces(data);
    let run = |pieces: &[&[u8]]| {
        let mut demuxer = TsDemuxer::new();
        let mut out: Vec<Result<DemuxEvent, DemuxError>> = Vec::new();
        for piece in pieces {
            out.extend(demuxer.push(piece));
        }
        out.extend(demuxer.flush());
        out
    };
    let split = run(&pieces);
    for e in split.iter().filter_map(|r| r.as_ref().err()) {
        assert!(e.to_string().contains("byte"), "a TS error without its offset: {e}");
    }
    assert_eq!(split, run(&[whole]), "the events depend on how the input was split");
}

/// FLV tags as an RTMP session delivers them: `kind (odd: video), timestamp: u32, len: u16,
/// body` repeated. Every error names the tag's timestamp.
pub(crate) fn flv(data: &[u8]) {
    let mut demuxer = FlvDemuxer::new();
    let mut rest = data;
    while rest.len() >= 7 {
        let (head, tail) = rest.split_at(7);
        let timestamp_ms = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let len = (u16::from_be_bytes([head[5], head[6]]) as usize).min(tail.len());
        let (body, tail) = tail.split_at(len);
        let events =
            if head[0] & 1 == 1 { demuxer.video(timestamp_ms, body) } else { demuxer.audio(timestamp_ms, body) };
        check_flv(&events);
        rest = tail;
    }
}

fn check_flv(events: &[Result<DemuxEvent, FlvError>]) {
    for e in events.iter().filter_map(|r| r.as_ref().err()) {
        assert!(e.to_string().contains(" ms"), "an FLV error without its timestamp: {e}");
    }
}

/// Bytes after the RTMP handshake: chunks and commands to `rml_rtmp`'s server session,
/// answered the way the listener answers (connect to `live`, publish with a stream key),
/// and the audio and video it raises to the FLV demuxer.
pub(crate) fn rtmp(data: &[u8]) {
    let Ok((mut session, mut pending)) = ServerSession::new(ServerSessionConfig::new()) else { return };
    let (pieces, _) = pieces(data);
    let mut demuxer = FlvDemuxer::new();
    for piece in pieces {
        match contained_input(&mut session, piece) {
            Ok(results) => pending.extend(results),
            // The listener closes the connection: nothing more is read.
            Err(_) => return,
        }
        while !pending.is_empty() {
            for result in std::mem::take(&mut pending) {
                let ServerSessionResult::RaisedEvent(event) = result else { continue };
                let answered = match event {
                    ServerSessionEvent::ConnectionRequested { request_id, app_name } if app_name == "live" => {
                        session.accept_request(request_id)
                    }
                    ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                        match tessera_listen::rtmp::parse_stream_key(&stream_key) {
                            Some(request) => {
                                assert!(tessera_ingest::streamid::valid_name(&request.name));
                                session.accept_request(request_id)
                            }
                            None => return,
                        }
                    }
                    ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                        check_flv(&demuxer.video(timestamp.value, &data));
                        continue;
                    }
                    ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                        check_flv(&demuxer.audio(timestamp.value, &data));
                        continue;
                    }
                    _ => continue,
                };
                match answered {
                    Ok(results) => pending.extend(results),
                    Err(_) => return,
                }
            }
        }
    }
}

thread_local! {
    /// Set while `rml_rtmp` runs inside the listener's containment.
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `rml_rtmp` panics on some malformed chunk streams (an arithmetic overflow, or a vector
/// too large to exist); the listener contains them ([`tessera_listen::rtmp::session_input`]).
/// A fuzzing run's panic hook aborts on any panic, so a panic raised while the session runs
/// inside that containment is let through to it; every other panic still goes to the hook
/// that was there.
fn contained_input(session: &mut ServerSession, bytes: &[u8]) -> Result<Vec<ServerSessionResult>, ()> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(|c| c.get()) {
                previous(info)
            }
        }));
    });
    CONTAINED.with(|c| c.set(true));
    let r = tessera_listen::rtmp::session_input(session, bytes);
    CONTAINED.with(|c| c.set(false));
    r.map_err(|_| ())
}

/// An uploaded MP4 or MOV file: the top-level walk, the `moov` index, and every sample
/// read as a frame. Samples the index names lie inside the file.
pub(crate) fn mp4(data: &[u8]) {
    let len = data.len() as u64;
    let mut walk = TopLevel::new(len);
    let mut step = walk.start();
    let moov = loop {
        match step {
            TopStep::ReadHeader(at) => {
                let at = at as usize;
                assert!(at <= data.len(), "asked to read a header past the end");
                match walk.header(&data[at..(at + 16).min(data.len())]) {
                    Ok(next) => step = next,
                    Err(_) => return,
                }
            }
            TopStep::Done(moov) => break moov,
        }
    };
    let moov = &data[moov.offset as usize..(moov.offset + moov.size) as usize];
    let Ok(index) = SourceIndex::parse(moov, len) else { return };
    for (i, sample) in index.samples.iter().enumerate().take(4096) {
        let end = sample.offset + sample.size as u64;
        assert!(end <= len, "sample {i} lies past the end of the file");
        let _ = index.frame(i, &data[sample.offset as usize..end as usize]);
    }
}

/// H.264 parameter sets and access units: `sps_len: u8, SPS, PPS`. An SPS that parses makes
/// a decoder configuration record that parses back to the same SPS.
pub(crate) fn h264(data: &[u8]) {
    let _ = h264::convert_access_unit(data);
    let _ = h264::parse_avcc_record(data);
    let Some((&n, rest)) = data.split_first() else { return };
    let (sps, pps) = rest.split_at((n as usize).min(rest.len()));
    // A parameter set is a NAL unit: never empty, whatever carries it.
    let pps = if pps.is_empty() { vec![] } else { vec![Bytes::copy_from_slice(pps)] };
    if let Ok(config) = h264::parse_sps(sps, pps) {
        let record = h264::avcc_record(&config);
        let (_, sps_back, _) = h264::parse_avcc_record(&record).expect("the record we write parses");
        assert_eq!(&sps_back[..], &config.sps[..], "the record's SPS is not the one parsed");
    }
}

/// HEVC parameter sets and access units: `vps_len: u8, sps_len: u8, VPS, SPS, PPS`.
pub(crate) fn hevc(data: &[u8]) {
    let _ = hevc::convert_access_unit(data);
    let Some((&[v, s], rest)) = data.split_first_chunk::<2>() else { return };
    let (vps, rest) = rest.split_at((v as usize).min(rest.len()));
    let (sps, pps) = rest.split_at((s as usize).min(rest.len()));
    let pps = if pps.is_empty() { vec![] } else { vec![Bytes::copy_from_slice(pps)] };
    if let Ok(config) = hevc::parse_sps(Bytes::copy_from_slice(vps), sps, pps) {
        let record = hevc::hvcc_record(&config);
        assert!(record.len() >= 23, "an hvcC record is at least its fixed 23 bytes");
    }
}

/// An AudioSpecificConfig (from FLV or MP4) and ADTS frames (from TS): a config that parses
/// is the one we would write for it, and ADTS errors point inside the input.
pub(crate) fn aac(data: &[u8]) {
    if let Some(config) = aac::parse_asc(data) {
        let index = aac::rate_index(config.sample_rate).expect("a parsed rate has an index");
        let ours = aac::audio_specific_config(config.object_type, index, config.channels);
        assert_eq!((ours[0], ours[1] & 0xf8), (data[0], data[1] & 0xf8), "the config is not the one read");
    }
    let data = Bytes::copy_from_slice(data);
    let (frames, error) = aac::parse_adts(&data);
    let payload: usize = frames.iter().map(|f| f.payload.len()).sum();
    assert!(payload <= data.len());
    if let Some(e) = error {
        assert!(e.to_string().contains("at byte"), "an ADTS error without its offset: {e}");
    }
}
