//! The codec worker: one process per transcoded stream, fed over stdin, answering on
//! stdout ([`tessera_transcode::wire`]).
//!
//! Threads: the reader decodes the source (once); each rung has a thread of its own, and
//! the rung threads form a chain, largest rung first. A rung thread scales the picture
//! (from the next larger rung's picture when there is one, which halves the scaling work of
//! a four-rung ladder), passes both on down the chain at once, then encodes with libx264.
//! So the rungs encode in parallel and a small rung never waits for a large one's encoder;
//! pictures are reference-counted, never copied between threads. A writer thread owns
//! stdout and answers `Done { dts }` once every rung has finished the pictures of that
//! source frame.
//!
//! A picture whose source frame carried a `boundary` becomes an IDR in every rung, and the
//! rung's packet carries the same boundary number back, so the node can cut every
//! rendition's segments at the same presentation time. Nothing here is shared with the
//! node's memory: if FFmpeg crashes on hostile input, only this process dies, and the node
//! starts another.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tessera_transcode::wire::{self, FrameReader, FromWorker, RungJob, StartJob, ToWorker, WorkerStats};

use tessera_ingest::timestamp::{TICKS_PER_MS, TICKS_PER_SECOND};

use crate::video::{CodecError, Decoder, Encoder, EncoderSettings, Frame, Scaler, SourceCodec};

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

/// A frame rate from one frame's duration in 90 kHz ticks, snapped to the usual rates.
pub fn frame_rate(ticks: i64) -> (u32, u32) {
    let f = TICKS_PER_SECOND as f64 / ticks.max(1) as f64;
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

/// Work moving down the chain of rung threads, in order.
enum Work {
    Picture {
        seq: u64,
        source: Arc<Frame>,
        larger: Option<Arc<Frame>>,
        boundary: Option<u64>,
        fps: (u32, u32),
    },
    /// Drain the encoders; the next picture each gets starts over at a boundary.
    Flush,
    Drop(u32),
    End,
}

/// What the reader and the rung threads hand the writer.
enum Out {
    /// A job with this many rungs starts (before its `Ready`).
    Started {
        rungs: usize,
    },
    Reply(FromWorker, Vec<u8>),
    /// Rung `rung` is done with every picture up to `seq`.
    Encoded {
        rung: usize,
        seq: u64,
    },
    /// The source frame `dts` has been decoded; its pictures are those up to `seq`.
    Fed {
        dts: i64,
        seq: u64,
    },
}

/// The first failure of a rung thread, for the reader to report.
type Fatal = Arc<Mutex<Option<CodecError>>>;

struct RungThread {
    index: usize,
    job: RungJob,
    tuning: wire::EncoderTuning,
    scaler: Scaler,
    /// Opened at the first picture, when the frame rate is known.
    encoder: Option<Encoder>,
    /// Boundary numbers of pictures given to the encoder and not yet out, by pts.
    marks: HashMap<i64, u64>,
    last_pts: Option<i64>,
    active: bool,
    busy: Arc<AtomicU64>,
    out: Sender<Out>,
    next: Option<Sender<Work>>,
    fatal: Fatal,
}

impl RungThread {
    fn run(mut self, work: Receiver<Work>) {
        for w in work {
            match w {
                Work::Picture { seq, source, larger, boundary, fps } => {
                    let wanted = self.active
                        && self.last_pts.is_none_or(|p| source.pts() > p) // x264 needs increasing timestamps
                        && (self.encoder.is_some() || boundary.is_some()); // a rung starts at a boundary
                    let t = Instant::now();
                    let scaled = if wanted { self.scale(larger.as_deref().unwrap_or(&source)) } else { None };
                    self.forward(Work::Picture { seq, source, larger: scaled.clone().or(larger), boundary, fps });
                    if let Some(s) = scaled {
                        self.encode(&s, boundary, fps);
                    }
                    self.busy.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    let _ = self.out.send(Out::Encoded { rung: self.index, seq });
                }
                Work::Flush => {
                    self.drain();
                    self.encoder = None;
                    self.last_pts = None;
                    self.forward(Work::Flush);
                }
                Work::Drop(i) => {
                    if i as usize == self.index {
                        self.active = false;
                        self.encoder = None;
                    }
                    self.forward(Work::Drop(i));
                }
                Work::End => {
                    self.drain();
                    self.forward(Work::End);
                    return;
                }
            }
        }
    }

    fn forward(&self, w: Work) {
        if let Some(next) = &self.next {
            let _ = next.send(w);
        }
    }

    fn fail(&mut self, e: CodecError) {
        self.fatal.lock().expect("fatal lock").get_or_insert(e);
        self.active = false;
        self.encoder = None;
    }

    fn scale(&mut self, input: &Frame) -> Option<Arc<Frame>> {
        match self.scaler.scale(&input.picture()) {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn encode(&mut self, picture: &Frame, boundary: Option<u64>, fps: (u32, u32)) {
        if self.encoder.is_none() {
            let target = &self.job.target;
            let settings = EncoderSettings {
                width: target.width,
                height: target.height,
                fps,
                bitrate: target.bitrate,
                maxrate: target.maxrate,
                bufsize: target.bufsize,
                keyint: (fps.0 / fps.1.max(1)).max(1) * 10,
                threads: self.tuning.threads,
                preset: self.tuning.preset.clone(),
                tune: self.tuning.tune.clone(),
                profile: target.profile.as_str().to_string(),
                params: self.tuning.params.clone(),
            };
            match Encoder::open(&settings) {
                Ok(e) => self.encoder = Some(e),
                Err(e) => return self.fail(e),
            }
        }
        self.last_pts = Some(picture.pts());
        if let Some(b) = boundary {
            self.marks.insert(picture.pts(), b);
        }
        let enc = self.encoder.as_mut().expect("opened above");
        let r = enc
            .send_frame(picture, boundary.is_some())
            .and_then(|_| collect(self.index, enc, &mut self.marks, &self.out));
        if let Err(e) = r {
            self.fail(e);
        }
    }

    fn drain(&mut self) {
        if let Some(enc) = self.encoder.as_mut() {
            let r = enc.send(None, false).and_then(|_| collect(self.index, enc, &mut self.marks, &self.out));
            if let Err(e) = r {
                self.fail(e);
            }
        }
    }
}

fn collect(
    index: usize,
    enc: &mut Encoder,
    marks: &mut HashMap<i64, u64>,
    out: &Sender<Out>,
) -> Result<(), CodecError> {
    while let Some(p) = enc.receive()? {
        let boundary = marks.remove(&p.pts);
        let packet = FromWorker::Packet { rung: index as u32, pts: p.pts, dts: p.dts, keyframe: p.keyframe, boundary };
        let _ = out.send(Out::Reply(packet, p.data.to_vec()));
    }
    Ok(())
}

/// One job: the decoder on the reader's thread and the chain of rung threads.
struct Job {
    start: StartJob,
    decoder: Decoder,
    chain: Option<Sender<Work>>,
    threads: Vec<JoinHandle<()>>,
    busy: Vec<Arc<AtomicU64>>,
    /// Boundary numbers of source frames given to the decoder, by pts.
    boundaries: HashMap<i64, u64>,
    fps: Option<(u32, u32)>,
    /// The first frame, held until the second gives the frame rate (when the SPS did not).
    held: Option<(ToWorker, Vec<u8>)>,
    last_dts: Option<i64>,
    /// Pictures decoded so far.
    seq: u64,
    stats: WorkerStats,
    decode_busy: Duration,
    last_stats: Instant,
}

impl Job {
    fn start(start: StartJob, out: &Sender<Out>, fatal: &Fatal) -> Result<Self, CodecError> {
        let codec = match start.codec {
            wire::SourceCodec::H264 => SourceCodec::H264,
            wire::SourceCodec::Hevc => SourceCodec::Hevc,
        };
        let decoder = Decoder::open(codec, &start.extradata, 1)?;
        let mut next: Option<Sender<Work>> = None;
        let mut threads = Vec::new();
        let mut busy = Vec::new();
        // Spawned smallest first, so each knows the thread after it.
        for (index, r) in start.rungs.iter().enumerate().rev() {
            let (tx, rx) = mpsc::channel();
            let b = Arc::new(AtomicU64::new(0));
            busy.push(b.clone());
            let rung = RungThread {
                index,
                job: r.clone(),
                tuning: start.tuning.clone(),
                scaler: Scaler::open(r.target.width, r.target.height, true)?,
                encoder: None,
                marks: HashMap::new(),
                last_pts: None,
                active: true,
                busy: b,
                out: out.clone(),
                next: next.take(),
                fatal: fatal.clone(),
            };
            let thread = std::thread::Builder::new().name(format!("rung-{}", r.name)).spawn(move || rung.run(rx));
            threads.push(thread.map_err(|e| CodecError(format!("cannot start a rung thread: {e}")))?);
            next = Some(tx);
        }
        busy.reverse();
        Ok(Job {
            fps: start.fps,
            start,
            decoder,
            chain: next,
            threads,
            busy,
            boundaries: HashMap::new(),
            held: None,
            last_dts: None,
            seq: 0,
            stats: WorkerStats::default(),
            decode_busy: Duration::ZERO,
            last_stats: Instant::now(),
        })
    }

    fn send(&self, w: Work) {
        if let Some(c) = &self.chain {
            let _ = c.send(w);
        }
    }

    /// Handles one message after `Start`; false once the worker should stop.
    fn handle(&mut self, msg: ToWorker, body: Vec<u8>, out: &Sender<Out>) -> bool {
        match msg {
            ToWorker::Start(_) => unreachable!("Start is handled by serve"),
            ToWorker::Frame { .. } if self.fps.is_none() && self.held.is_none() => self.held = Some((msg, body)),
            ToWorker::Frame { dts, .. } => {
                if let Some((held, held_body)) = self.held.take() {
                    if let ToWorker::Frame { dts: first, .. } = held {
                        self.fps.get_or_insert(frame_rate(dts - first));
                    }
                    self.frame(held, held_body, out);
                }
                self.frame(msg, body, out);
            }
            ToWorker::Reset => {
                self.send(Work::Flush);
                self.boundaries.clear();
            }
            ToWorker::DropRung(i) => self.send(Work::Drop(i)),
            ToWorker::Stop => {
                self.decode(None, out);
                // The work since the last report is reported too, however short the run.
                let _ = out.send(Out::Reply(FromWorker::Stats(self.take_stats()), Vec::new()));
                return false;
            }
        }
        if self.last_stats.elapsed() >= Duration::from_millis(self.start.stats_interval_ms.max(100) as u64) {
            self.last_stats = Instant::now();
            let _ = out.send(Out::Reply(FromWorker::Stats(self.take_stats()), Vec::new()));
        }
        true
    }

    fn frame(&mut self, msg: ToWorker, body: Vec<u8>, out: &Sender<Out>) {
        let ToWorker::Frame { pts, dts, keyframe, boundary } = msg else { return };
        if let Some(b) = boundary {
            self.boundaries.insert(pts, b);
        }
        if let Some(prev) = self.last_dts.replace(dts) {
            if dts > prev && dts - prev < TICKS_PER_SECOND {
                self.stats.media_us += ((dts - prev) as u64) * 1000 / TICKS_PER_MS as u64;
            }
        }
        self.stats.frames += 1;
        self.decode(Some((&body, pts, dts, keyframe)), out);
        let _ = out.send(Out::Fed { dts, seq: self.seq });
    }

    /// Sends one sample (or the drain) to the decoder and every picture out down the chain.
    fn decode(&mut self, sample: Option<(&[u8], i64, i64, bool)>, out: &Sender<Out>) {
        let dts = sample.map_or(0, |s| s.2);
        let skipped = |e: CodecError| {
            let _ = out.send(Out::Reply(FromWorker::Skipped { dts, error: e.to_string() }, Vec::new()));
        };
        let t = Instant::now();
        let mut sent = self.decoder.send(sample).unwrap_or_else(|e| {
            skipped(e);
            true
        });
        let mut retried = false;
        loop {
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
                    skipped(e);
                    break;
                }
            };
            self.seq += 1;
            let boundary = self.boundaries.remove(&picture.pts());
            let fps = self.fps.unwrap_or((30, 1));
            self.send(Work::Picture { seq: self.seq, source: Arc::new(picture), larger: None, boundary, fps });
        }
        self.decode_busy += t.elapsed();
    }

    /// Work done since the last call.
    fn take_stats(&mut self) -> WorkerStats {
        let mut s = std::mem::take(&mut self.stats);
        s.decode_us = std::mem::take(&mut self.decode_busy).as_micros() as u64;
        s.encode_us = self.busy.iter().map(|b| b.swap(0, Ordering::Relaxed)).collect();
        s
    }

    /// Drains every rung and waits for the threads.
    fn finish(mut self) {
        self.send(Work::End);
        self.chain = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Owns the output: replies in order, `Done` once every rung has finished a source frame.
fn write_loop<W: Write>(rx: Receiver<Out>, mut output: W) -> std::io::Result<W> {
    let mut encoded: Vec<u64> = Vec::new();
    let mut fed: VecDeque<(i64, u64)> = VecDeque::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Out::Started { rungs } => {
                    encoded = vec![0; rungs];
                    fed.clear();
                }
                Out::Reply(m, body) => output.write_all(&wire::encode(&m, &body))?,
                Out::Encoded { rung, seq } => {
                    if encoded.len() <= rung {
                        encoded.resize(rung + 1, 0);
                    }
                    encoded[rung] = encoded[rung].max(seq);
                }
                Out::Fed { dts, seq } => fed.push_back((dts, seq)),
            }
            let done = encoded.iter().copied().min().unwrap_or(u64::MAX);
            while fed.front().is_some_and(|(_, seq)| *seq <= done) {
                let (dts, _) = fed.pop_front().expect("checked");
                output.write_all(&wire::encode(&FromWorker::Done { dts }, &[]))?;
            }
            next = rx.try_recv().ok();
        }
        output.flush()?;
    }
    output.flush()?;
    Ok(output)
}

/// Runs the worker on the given input and output until `Stop` or the end of the input;
/// returns the output.
pub fn serve<W: Write + Send + 'static>(mut input: impl Read, output: W) -> Result<W, WorkerError> {
    crate::video::quiet_ffmpeg();
    let (out, rx) = mpsc::channel::<Out>();
    let writer = std::thread::Builder::new().name("writer".into()).spawn(move || write_loop(rx, output))?;
    let fatal: Fatal = Arc::default();
    let result = read_loop(&mut input, &out, &fatal);
    drop(out);
    let output = writer.join().expect("the writer does not panic")?;
    result.map(|_| output)
}

fn read_loop(input: &mut impl Read, out: &Sender<Out>, fatal: &Fatal) -> Result<(), WorkerError> {
    let mut reader = FrameReader::new();
    let mut job: Option<Job> = None;
    let mut buf = vec![0u8; 256 * 1024];
    let result = 'read: loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break Ok(()), // the node went away
            Ok(n) => n,
            Err(e) => break Err(e.into()),
        };
        reader.push(&buf[..n]);
        loop {
            let (msg, body) = match reader.next_message::<ToWorker>() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => break 'read Err(e.into()),
            };
            let go_on = match msg {
                ToWorker::Start(start) => {
                    if let Some(old) = job.take() {
                        old.finish();
                    }
                    let rungs = start.rungs.len();
                    match Job::start(start, out, fatal) {
                        Ok(j) => job = Some(j),
                        Err(e) => break 'read Err(e.into()),
                    }
                    let _ = out.send(Out::Started { rungs });
                    let ready = FromWorker::Ready { ffmpeg: crate::video::ffmpeg_version() };
                    let _ = out.send(Out::Reply(ready, Vec::new()));
                    true
                }
                other => match job.as_mut() {
                    Some(j) => j.handle(other, body.to_vec(), out),
                    None if matches!(other, ToWorker::Stop) => false,
                    None => break 'read Err(WorkerError::NotStarted("media")),
                },
            };
            if let Some(e) = fatal.lock().expect("fatal lock").take() {
                break 'read Err(e.into());
            }
            if !go_on {
                break 'read Ok(());
            }
        }
    };
    if let Some(j) = job {
        j.finish();
    }
    result
}

/// The worker process's entry point: serves stdin and stdout; on a fatal error, reports it
/// to the node and exits non-zero.
pub fn main() -> std::process::ExitCode {
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout());
    match serve(stdin, stdout) {
        Ok(_) => std::process::ExitCode::SUCCESS,
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
