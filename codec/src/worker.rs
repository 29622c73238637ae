//! The codec worker: one process per transcoded stream, fed over stdin, answering on
//! stdout ([`tessera_transcode::wire`]).
//!
//! It decodes the source once, scales each picture down the ladder (each rung from the
//! next larger rung's picture, which halves the scaling work of a four-rung ladder) and
//! encodes it with libx264. A picture whose source frame carried a `boundary` becomes an IDR in every rung,
//! and the rung's packet carries the same boundary number back, so the node can cut every
//! rendition's segments at the same presentation time. Nothing here is shared with the
//! node's memory: if FFmpeg crashes on hostile input, only this process dies, and the node
//! starts another.
//!
//! [`Transcoder`] does the work for one message at a time and collects the replies;
//! [`serve`] is the blocking loop around it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tessera_transcode::wire::{self, FrameReader, FromWorker, RungJob, StartJob, ToWorker, WorkerStats};

use crate::video::{CodecError, Decoder, Encoder, EncoderSettings, Picture, Scaler, SourceCodec};

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("reading the node's messages: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Wire(#[from] wire::WireError),
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("protocol: {0} before Start")]
    NotStarted(&'static str),
}

/// A reply and its body.
pub type Reply = (FromWorker, Vec<u8>);

struct Rung {
    job: RungJob,
    scaler: Scaler,
    /// Opened at the first picture, when the frame rate is known.
    encoder: Option<Encoder>,
    /// Boundary numbers of pictures given to the encoder and not yet out, by pts.
    marks: HashMap<i64, u64>,
    last_pts: Option<i64>,
    active: bool,
    busy: Duration,
}

/// The work of one job.
pub struct Transcoder {
    job: StartJob,
    decoder: Decoder,
    rungs: Vec<Rung>,
    /// Boundary numbers of source frames given to the decoder, by pts.
    boundaries: HashMap<i64, u64>,
    fps: Option<(u32, u32)>,
    /// The first frame, held until the second gives the frame rate (when the SPS did not).
    held: Option<(ToWorker, Vec<u8>)>,
    last_dts: Option<i64>,
    stats: WorkerStats,
    decode_busy: Duration,
}

/// A frame rate from one frame's duration in 90 kHz ticks, snapped to the usual rates.
pub fn frame_rate(ticks: i64) -> (u32, u32) {
    let f = 90_000.0 / ticks.max(1) as f64;
    const RATES: [u32; 7] = [24, 25, 30, 48, 50, 60, 120];
    // 59.94 fps alternates 1501 and 1502 ticks: within 0.06 % is the NTSC rate.
    if let Some(n) = RATES.iter().find(|n| (f / (**n as f64 * 1000.0 / 1001.0) - 1.0).abs() < 0.0006) {
        return (n * 1000, 1001);
    }
    if let Some(n) = RATES.iter().find(|n| (f / **n as f64 - 1.0).abs() < 0.002) {
        return (*n, 1);
    }
    (((f * 1000.0).round() as u32).max(1), 1000)
}

impl Transcoder {
    pub fn start(job: StartJob) -> Result<Self, CodecError> {
        crate::video::quiet_ffmpeg();
        let codec = match job.codec {
            wire::SourceCodec::H264 => SourceCodec::H264,
            wire::SourceCodec::Hevc => SourceCodec::Hevc,
        };
        let decoder = Decoder::open(codec, &job.extradata, 1)?;
        let rungs = job
            .rungs
            .iter()
            .map(|r| {
                Ok(Rung {
                    job: r.clone(),
                    scaler: Scaler::open(r.target.width, r.target.height, true)?,
                    encoder: None,
                    marks: HashMap::new(),
                    last_pts: None,
                    active: true,
                    busy: Duration::ZERO,
                })
            })
            .collect::<Result<Vec<_>, CodecError>>()?;
        Ok(Transcoder {
            fps: job.fps,
            job,
            decoder,
            rungs,
            boundaries: HashMap::new(),
            held: None,
            last_dts: None,
            stats: WorkerStats::default(),
            decode_busy: Duration::ZERO,
        })
    }

    /// Handles one message after `Start`. Returns false once the worker should exit.
    pub fn handle(&mut self, msg: ToWorker, body: Vec<u8>, out: &mut Vec<Reply>) -> Result<bool, WorkerError> {
        match msg {
            ToWorker::Start(_) => unreachable!("Start is handled by serve"),
            ToWorker::Frame { .. } if self.fps.is_none() && self.held.is_none() => self.held = Some((msg, body)),
            ToWorker::Frame { dts, .. } => {
                if let Some((held, held_body)) = self.held.take() {
                    if let ToWorker::Frame { dts: first, .. } = held {
                        self.fps.get_or_insert(frame_rate(dts - first));
                    }
                    self.frame(held, held_body, out)?;
                }
                self.frame(msg, body, out)?;
            }
            ToWorker::Reset => {
                self.drain_encoders(out)?;
                for r in &mut self.rungs {
                    r.encoder = None;
                    r.last_pts = None;
                }
                self.boundaries.clear();
            }
            ToWorker::DropRung(i) => {
                if let Some(r) = self.rungs.get_mut(i as usize) {
                    r.active = false;
                    r.encoder = None;
                }
            }
            ToWorker::Stop => {
                self.decode(None, out)?;
                self.drain_encoders(out)?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn frame(&mut self, msg: ToWorker, body: Vec<u8>, out: &mut Vec<Reply>) -> Result<(), WorkerError> {
        let ToWorker::Frame { pts, dts, keyframe, boundary } = msg else { return Ok(()) };
        if let Some(b) = boundary {
            self.boundaries.insert(pts, b);
        }
        if let Some(prev) = self.last_dts.replace(dts) {
            if dts > prev && dts - prev < 90_000 {
                self.stats.media_us += ((dts - prev) as u64) * 1000 / 90;
            }
        }
        self.stats.frames += 1;
        self.decode(Some((&body, pts, dts, keyframe)), out)?;
        out.push((FromWorker::Done { dts }, Vec::new()));
        Ok(())
    }

    /// Sends one sample (or the drain) to the decoder and encodes every picture out.
    fn decode(&mut self, sample: Option<(&[u8], i64, i64, bool)>, out: &mut Vec<Reply>) -> Result<(), WorkerError> {
        let t = Instant::now();
        let dts = sample.map(|s| s.2);
        let mut sent = match self.decoder.send(sample) {
            Ok(s) => s,
            Err(e) => {
                out.push((FromWorker::Skipped { dts: dts.unwrap_or(0), error: e.to_string() }, Vec::new()));
                true
            }
        };
        self.decode_busy += t.elapsed();
        let mut retried = false;
        loop {
            let t = Instant::now();
            let picture = match self.decoder.receive() {
                Ok(Some(p)) => p,
                Ok(None) if !sent && !retried => {
                    // The decoder wanted its pictures read first; they are, so send again.
                    retried = true;
                    sent = self.decoder.send(sample).unwrap_or(true);
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    out.push((FromWorker::Skipped { dts: dts.unwrap_or(0), error: e.to_string() }, Vec::new()));
                    break;
                }
            };
            self.decode_busy += t.elapsed();
            let boundary = self.boundaries.remove(&picture.pts());
            let fps = self.fps.unwrap_or((30, 1));
            // Rungs are ordered largest first: each scales from the last one scaled.
            let mut larger: Option<usize> = None;
            for i in 0..self.rungs.len() {
                let (done, rest) = self.rungs.split_at_mut(i);
                let rung = &mut rest[0];
                if !rung.active {
                    continue;
                }
                let input = larger.and_then(|j| done[j].scaler.output()).unwrap_or(picture);
                if encode(i as u32, rung, &input, boundary, fps, &self.job, out)? {
                    larger = Some(i);
                }
            }
        }
        Ok(())
    }

    fn drain_encoders(&mut self, out: &mut Vec<Reply>) -> Result<(), WorkerError> {
        for (i, rung) in self.rungs.iter_mut().enumerate() {
            if let Some(enc) = rung.encoder.as_mut() {
                enc.send(None, false)?;
                collect(i as u32, enc, &mut rung.marks, out)?;
            }
        }
        Ok(())
    }

    /// Work done since the last call.
    pub fn take_stats(&mut self) -> WorkerStats {
        let mut s = std::mem::take(&mut self.stats);
        s.decode_us = std::mem::take(&mut self.decode_busy).as_micros() as u64;
        s.encode_us = self.rungs.iter_mut().map(|r| std::mem::take(&mut r.busy).as_micros() as u64).collect();
        s
    }
}

fn encode(
    index: u32,
    rung: &mut Rung,
    picture: &Picture<'_>,
    boundary: Option<u64>,
    fps: (u32, u32),
    job: &StartJob,
    out: &mut Vec<Reply>,
) -> Result<bool, WorkerError> {
    if rung.last_pts.is_some_and(|p| picture.pts() <= p) {
        return Ok(false); // x264 needs strictly increasing timestamps
    }
    if rung.encoder.is_none() && boundary.is_none() {
        return Ok(false); // a rung starts at a boundary
    }
    let t = Instant::now();
    if rung.encoder.is_none() {
        let target = &rung.job.target;
        rung.encoder = Some(Encoder::open(&EncoderSettings {
            width: target.width,
            height: target.height,
            fps,
            bitrate: target.bitrate,
            maxrate: target.maxrate,
            bufsize: target.bufsize,
            keyint: (fps.0 / fps.1.max(1)).max(1) * 10,
            threads: job.tuning.threads,
            preset: job.tuning.preset.clone(),
            tune: job.tuning.tune.clone(),
            profile: target.profile.as_str().to_string(),
            params: job.tuning.params.clone(),
        })?);
    }
    rung.last_pts = Some(picture.pts());
    let scaled = rung.scaler.scale(picture)?;
    let enc = rung.encoder.as_mut().expect("opened above");
    if let Some(b) = boundary {
        rung.marks.insert(picture.pts(), b);
    }
    enc.send(Some(&scaled), boundary.is_some())?;
    collect(index, enc, &mut rung.marks, out)?;
    rung.busy += t.elapsed();
    Ok(true)
}

fn collect(
    index: u32,
    enc: &mut Encoder,
    marks: &mut HashMap<i64, u64>,
    out: &mut Vec<Reply>,
) -> Result<(), CodecError> {
    while let Some(p) = enc.receive()? {
        let boundary = marks.remove(&p.pts);
        out.push((
            FromWorker::Packet { rung: index, pts: p.pts, dts: p.dts, keyframe: p.keyframe, boundary },
            p.data.to_vec(),
        ));
    }
    Ok(())
}

/// Runs the worker on the given input and output until `Stop` or the end of the input.
pub fn serve(mut input: impl Read, mut output: impl Write) -> Result<(), WorkerError> {
    crate::video::quiet_ffmpeg();
    let mut reader = FrameReader::new();
    let mut job: Option<Transcoder> = None;
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut last_stats = Instant::now();
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the node went away
        }
        reader.push(&buf[..n]);
        while let Some((msg, body)) = reader.next_message::<ToWorker>()? {
            let go_on = match msg {
                ToWorker::Start(start) => {
                    if let Some(mut old) = job.take() {
                        old.drain_encoders(&mut replies)?;
                    }
                    let t = Transcoder::start(start)?;
                    replies.push((FromWorker::Ready { ffmpeg: crate::video::ffmpeg_version() }, Vec::new()));
                    job = Some(t);
                    true
                }
                other => match job.as_mut() {
                    Some(t) => t.handle(other, body.to_vec(), &mut replies)?,
                    None if matches!(other, ToWorker::Stop) => false,
                    None => return Err(WorkerError::NotStarted("media")),
                },
            };
            if let Some(t) = job.as_mut() {
                let every = Duration::from_millis(t.job.stats_interval_ms.max(100) as u64);
                if last_stats.elapsed() >= every {
                    last_stats = Instant::now();
                    replies.push((FromWorker::Stats(t.take_stats()), Vec::new()));
                }
            }
            for (m, b) in replies.drain(..) {
                output.write_all(&wire::encode(&m, &b))?;
            }
            output.flush()?;
            if !go_on {
                return Ok(());
            }
        }
    }
}

/// The worker process's entry point: serves stdin and stdout; on a fatal error, reports it
/// to the node and exits non-zero.
pub fn main() -> std::process::ExitCode {
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    match serve(stdin, stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = wire::encode(&FromWorker::Failed { error: e.to_string() }, &[]);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&msg).and_then(|_| out.flush());
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
