//! Pushes a recorded MPEG-TS file through a codec worker as fast as it will go, the way a
//! node does (the same demuxer, boundaries and protocol), and writes each rung's H.264 to a
//! file so its quality can be measured.
//!
//!   ladder_bench WORKER INPUT.ts LADDER OUT_DIR [PRESET] [TUNE] [THREADS]
//!
//! WORKER is the `tessera` binary (run as `tessera codec-worker`). Prints one JSON line:
//! frames, media seconds, wall seconds, and per rung its name, size and output bytes.
//! CPU time is measured by the caller (the worker is a child of this process).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::{h264, hevc, CodecConfig, DemuxEvent, TrackKind};
use tessera_transcode::wire::{
    self, EncoderTuning, FrameReader, FromWorker, RungJob, SourceCodec, StartJob, ToWorker, WorkerStats,
};
use tessera_transcode::{plan, LadderSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        bail!("usage: ladder_bench WORKER INPUT.ts LADDER OUT_DIR [PRESET] [TUNE] [THREADS]");
    }
    let (worker, input, ladder, out) = (&args[1], &args[2], &args[3], std::path::Path::new(&args[4]));
    let tuning = EncoderTuning {
        preset: args.get(5).cloned().unwrap_or_else(|| "veryfast".into()),
        tune: args.get(6).cloned().unwrap_or_else(|| "zerolatency".into()),
        threads: args.get(7).map(|t| t.parse()).transpose()?.unwrap_or(0),
        ..EncoderTuning::default()
    };
    let ladder: LadderSpec = ladder.parse()?;
    let data = std::fs::read(input).with_context(|| input.clone())?;
    let mut demux = TsDemuxer::new();
    let mut video = None;
    let mut frames = Vec::new();
    for e in demux.push(&data).into_iter().chain(demux.flush()).flatten() {
        match e {
            DemuxEvent::Track(t) if t.kind() == TrackKind::Video && video.is_none() => video = Some(t),
            DemuxEvent::Frame(f) if f.kind == TrackKind::Video => frames.push(f),
            _ => {}
        }
    }
    let video = video.context("no video track")?;
    let (codec, extradata, (w, h)) = match &video.codec {
        CodecConfig::H264(c) => (SourceCodec::H264, h264::avcc_record(c), (c.width, c.height)),
        CodecConfig::Hevc(c) => (SourceCodec::Hevc, hevc::hvcc_record(c), (c.width, c.height)),
        CodecConfig::Aac(_) => bail!("not video"),
    };
    let rungs: Vec<RungJob> = plan(&ladder, w, h)
        .into_iter()
        .filter_map(|r| r.encode.map(|target| RungJob { name: r.name, target }))
        .collect();
    let job = StartJob {
        stream: "bench".into(),
        codec,
        extradata,
        width: w,
        height: h,
        fps: None,
        rungs: rungs.clone(),
        tuning,
        stats_interval_ms: 1000,
    };
    std::fs::create_dir_all(out)?;
    let mut child = Command::new(worker)
        .arg("codec-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| worker.clone())?;
    let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("piped"));
    let mut stdout = child.stdout.take().expect("piped");
    let names: Vec<String> = rungs.iter().map(|r| r.name.clone()).collect();
    let out_dir = out.to_path_buf();
    // Output: each rung's Annex B access units, in order, to RUNG.h264.
    let reader = std::thread::spawn(move || -> anyhow::Result<(Vec<u64>, WorkerStats)> {
        let mut files: Vec<_> = names
            .iter()
            .map(|n| std::fs::File::create(out_dir.join(format!("{n}.h264"))).map(std::io::BufWriter::new))
            .collect::<Result<_, _>>()?;
        let mut bytes = vec![0u64; names.len()];
        let mut total = WorkerStats { encode_us: vec![0; names.len()], ..WorkerStats::default() };
        let mut r = FrameReader::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            r.push(&buf[..n]);
            while let Some((msg, body)) = r.next_message::<FromWorker>()? {
                match msg {
                    FromWorker::Packet { rung, .. } => {
                        files[rung as usize].write_all(&body)?;
                        bytes[rung as usize] += body.len() as u64;
                    }
                    FromWorker::Stats(s) => {
                        total.frames += s.frames;
                        total.media_us += s.media_us;
                        total.decode_us += s.decode_us;
                        for (t, e) in total.encode_us.iter_mut().zip(&s.encode_us) {
                            *t += e;
                        }
                    }
                    FromWorker::Failed { error } => bail!("worker failed: {error}"),
                    FromWorker::Skipped { error, .. } => eprintln!("ladder_bench: worker skipped a frame: {error}"),
                    _ => {}
                }
            }
        }
        for f in &mut files {
            f.flush()?;
        }
        Ok((bytes, total))
    });
    let started = Instant::now();
    stdin.write_all(&wire::encode(&ToWorker::Start(job), &[]))?;
    // Boundaries as the leader makes them: the first keyframe at or after 2 s.
    let mut last: Option<i64> = None;
    let mut segment = 0;
    for f in &frames {
        let boundary = (f.keyframe && last.is_none_or(|l| f.dts - l >= 180_000 - 90)).then(|| {
            last = Some(f.dts);
            segment += 1;
            segment - 1
        });
        let msg = ToWorker::Frame { pts: f.pts, dts: f.dts, keyframe: f.keyframe, boundary };
        stdin.write_all(&wire::encode(&msg, &f.data))?;
    }
    stdin.write_all(&wire::encode(&ToWorker::Stop, &[]))?;
    stdin.flush()?;
    drop(stdin);
    let (bytes, stats) = reader.join().expect("reader thread")?;
    let status = child.wait()?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("worker exited with {status}");
    }
    let media = frames.len() as f64 * (frames[1].dts - frames[0].dts) as f64 / 90_000.0;
    let rungs_json: Vec<serde_json::Value> = rungs
        .iter()
        .zip(&bytes)
        .zip(&stats.encode_us)
        .map(|((r, b), us)| {
            serde_json::json!({"name": r.name, "width": r.target.width, "height": r.target.height,
                "bitrate": r.target.bitrate, "bytes": b, "kbps": *b as f64 * 8.0 / media / 1000.0,
                "encode_ms_per_frame": *us as f64 / 1000.0 / stats.frames.max(1) as f64})
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({"frames": frames.len(), "media_seconds": media, "wall_seconds": wall,
            "fps": frames.len() as f64 / wall, "source": [w, h],
            "decode_ms_per_frame": stats.decode_us as f64 / 1000.0 / stats.frames.max(1) as f64, "rungs": rungs_json})
    );
    Ok(())
}
