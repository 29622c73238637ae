//! SRT publishers: a recorded MPEG-TS file, paced in real time by its PCR and, in a loop,
//! with its timestamps shifted so the loops read as one continuous feed; and the built-in
//! test pattern, encoded live. Used by `tessera publish`, `tessera demo` and the tests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use srt_protocol::options::ByteCount;
use srt_tokio::SrtSocket;
use tessera_ingest::timestamp::TICKS_PER_MS;
use tessera_ingest::ts::mux::{packet_pcr, TsRetimer};
use tessera_ingest::ts::{TsDemuxer, PACKET_SIZE};
use tessera_ingest::{DemuxEvent, TrackKind};

/// Packets per SRT message (7 x 188 = 1316 bytes, the usual live payload).
const PACKETS_PER_MESSAGE: usize = 7;

/// A file prepared for publishing.
pub struct TsFile {
    packets: Vec<[u8; PACKET_SIZE]>,
    /// Send time of each packet, from the start of a loop.
    at: Vec<Duration>,
    /// Length of one loop, 90 kHz ticks.
    pub loop_ticks: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not a usable MPEG-TS file: {0}")]
    BadFile(&'static str),
    #[error("SRT: {0}")]
    Srt(#[from] std::io::Error),
    #[error("test pattern: {0}")]
    Pattern(#[from] tessera_codec::CodecError),
}

impl TsFile {
    pub fn new(data: &[u8]) -> Result<Self, PublishError> {
        let packets: Vec<[u8; PACKET_SIZE]> = data
            .chunks_exact(PACKET_SIZE)
            .filter(|p| p[0] == 0x47)
            .map(|p| p.try_into().expect("chunk size"))
            .collect();
        if packets.is_empty() {
            return Err(PublishError::BadFile("no TS packets"));
        }
        let mut first = None;
        let mut at = Vec::with_capacity(packets.len());
        let mut now = Duration::ZERO;
        for p in &packets {
            if let Some(pcr) = packet_pcr(p) {
                let f = *first.get_or_insert(pcr);
                now = Duration::from_nanos(pcr.saturating_sub(f) * 1000 / 27);
            }
            at.push(now);
        }
        let mut demux = TsDemuxer::new();
        let mut dts = Vec::new();
        let events = demux.push(data).into_iter().chain(demux.flush());
        for e in events.flatten() {
            if let DemuxEvent::Frame(f) = e {
                if f.kind == TrackKind::Video {
                    dts.push(f.dts);
                }
            }
        }
        if dts.len() < 2 {
            return Err(PublishError::BadFile("no video"));
        }
        let step = dts[dts.len() - 1] - dts[dts.len() - 2];
        let loop_ticks = dts[dts.len() - 1] - dts[0] + step;
        Ok(TsFile { packets, at, loop_ticks })
    }

    /// Duration of one loop.
    pub fn duration(&self) -> Duration {
        Duration::from_micros((self.loop_ticks as u64) * 1000 / TICKS_PER_MS as u64)
    }
}

/// The standard streamid for publishing `name`.
pub fn publish_stream_id(name: &str) -> String {
    format!("#!::r=live/{name},m=publish")
}

/// The sender's buffer, bytes: libsrt's default (`SRTO_SNDBUF`, 8192 packets of 1500
/// bytes). srt-tokio's own default is libsrt's *minimum*, 46592 bytes (about 32 packets):
/// a keyframe handed over faster than the sender paces it (it sends at most one packet a
/// millisecond until it has measured the input rate) overflows that, and srt-protocol 0.4
/// then drops unsent packets from the front of its buffer, leaving its next sequence number
/// behind the buffer; it never sends again, and the listener cuts the silent publisher.
const SEND_BUFFER_BYTES: u64 = 8192 * 1500;

/// Connects to an SRT listener as a caller with the given streamid.
pub async fn connect(addr: SocketAddr, stream_id: &str) -> Result<SrtSocket, PublishError> {
    let socket = SrtSocket::builder()
        .latency(Duration::from_millis(120))
        .set(|options| options.sender.buffer_size = ByteCount(SEND_BUFFER_BYTES))
        .call(addr, Some(stream_id))
        .await?;
    Ok(socket)
}

/// Publishes `file` `loops` times (forever with `None`) in real time.
pub async fn publish(socket: &mut SrtSocket, file: &TsFile, loops: Option<u64>) -> Result<(), PublishError> {
    let mut retimer = TsRetimer::new();
    let start = tokio::time::Instant::now();
    let mut n = 0u64;
    while loops.is_none_or(|l| n < l) {
        retimer.set_offset(n as i64 * file.loop_ticks);
        let loop_start = start + file.duration() * n as u32;
        for (chunk, times) in file.packets.chunks(PACKETS_PER_MESSAGE).zip(file.at.chunks(PACKETS_PER_MESSAGE)) {
            tokio::time::sleep_until(loop_start + times[0]).await;
            let mut msg = Vec::with_capacity(chunk.len() * PACKET_SIZE);
            for p in chunk {
                let mut p = *p;
                retimer.retime(&mut p);
                msg.extend_from_slice(&p);
            }
            socket.send((std::time::Instant::now(), Bytes::from(msg))).await?;
        }
        n += 1;
    }
    Ok(())
}

/// Publishes the test pattern live for `seconds` (forever with `None`): frames are drawn
/// and encoded on a thread of their own at the pattern's frame rate, stamped with the wall
/// clock, and sent as they come.
pub async fn publish_pattern(
    socket: &mut SrtSocket,
    config: tessera_codec::pattern::PatternConfig,
    seconds: Option<u64>,
) -> Result<(), PublishError> {
    let frame_interval = Duration::from_micros(1_000_000 * config.fps.1 as u64 / config.fps.0.max(1) as u64) * 3 / 4;
    let mut pattern = tessera_codec::pattern::TestPattern::new(config)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, PublishError>>(8);
    let limit = seconds.map(|s| s * 1_000_000);
    std::thread::Builder::new()
        .name("test-pattern".into())
        .spawn(move || {
            let start = std::time::Instant::now();
            loop {
                let n = pattern.frames();
                let at = pattern.frame_time_us(n);
                if limit.is_some_and(|l| at >= l) {
                    return;
                }
                if let Some(wait) = Duration::from_micros(at).checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                let ts = pattern.next(tessera_ingest::timestamp::unix_ms()).map_err(PublishError::from);
                let failed = ts.is_err();
                if tx.blocking_send(ts).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(PublishError::Srt)?;
    while let Some(ts) = rx.recv().await {
        // Spread each frame's packets over most of its interval, as an encoder's muxer does,
        // rather than handing a keyframe over in one burst.
        let ts = ts?;
        let chunks: Vec<&[u8]> = ts.chunks(PACKETS_PER_MESSAGE * PACKET_SIZE).collect();
        let start = tokio::time::Instant::now();
        let step = frame_interval / chunks.len().max(1) as u32;
        for (i, chunk) in chunks.into_iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            socket.send((std::time::Instant::now(), Bytes::copy_from_slice(chunk))).await?;
        }
    }
    Ok(())
}
