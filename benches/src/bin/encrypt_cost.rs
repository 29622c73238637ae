//! What encryption itself costs, on one core: a real stream (an MPEG-TS file) is packaged
//! the way a node packages it (the sans-IO segmenter, 200 ms parts, fMP4), then every part
//! is encrypted as a node serves it, many times over: HLS AES-128 (the whole part, CBC) and
//! cbcs (samples in place, the CMAF boxes rewritten). A copy of each part is the baseline.
//!
//!     encrypt_cost FILE.ts [SECONDS]
//!
//! Prints JSON: the stream's bitrate and, per method, CPU milliseconds per stream-minute and
//! megabytes per second.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::DemuxEvent;
use tessera_packager::encrypt::aes128;
use tessera_packager::encrypt::cmaf::{protect_fragments, protect_init, CbcsKey};
use tessera_packager::fmp4::CmafMuxer;
use tessera_packager::segmenter::{Segmenter, SegmenterConfig, SegmenterEvent};

/// A stream packaged as a node packages it.
struct Packaged {
    init: Bytes,
    /// Each part with the number of its segment.
    parts: Vec<(u64, Bytes)>,
    /// Seconds of media.
    media_s: f64,
}

fn package(ts: &[u8]) -> anyhow::Result<Packaged> {
    let mut demux = TsDemuxer::new();
    let mut segmenter = Segmenter::new(SegmenterConfig::default());
    let mut muxer = CmafMuxer::default();
    let (mut init, mut parts, mut ticks) = (None, Vec::new(), 0i64);
    let mut events = Vec::new();
    for e in demux.push(ts).into_iter().chain(demux.flush()) {
        match e.context("demux")? {
            DemuxEvent::Track(t) => events.extend(segmenter.track(t)),
            DemuxEvent::Frame(f) => events.extend(segmenter.frame(f, 0)),
        }
    }
    events.extend(segmenter.flush());
    for e in events {
        match e {
            SegmenterEvent::Init(tracks) => init = Some(muxer.init(tracks)),
            SegmenterEvent::Part(p) => {
                ticks += p.duration;
                parts.push((p.segment, muxer.part(&p)));
            }
            _ => {}
        }
    }
    let Some(init) = init else { bail!("no init segment: the file has no track the packager knows") };
    Ok(Packaged { init, parts, media_s: ticks as f64 / 90_000.0 })
}

/// Runs `f` over every part until `budget` has passed: CPU seconds per media second.
fn cost(parts: &[(u64, Bytes)], media_s: f64, budget: Duration, mut f: impl FnMut(u64, &Bytes) -> usize) -> (f64, f64) {
    let (start, mut rounds, mut bytes) = (Instant::now(), 0u64, 0usize);
    while start.elapsed() < budget || rounds == 0 {
        for (msn, part) in parts {
            bytes += f(*msn, part);
        }
        rounds += 1;
    }
    let spent = start.elapsed().as_secs_f64();
    (spent / (media_s * rounds as f64), bytes as f64 / spent / 1e6)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).context("usage: encrypt_cost FILE.ts [SECONDS]")?;
    let seconds: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5.0);
    let ts = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let Packaged { init, parts, media_s } = package(&ts)?;
    let total: usize = parts.iter().map(|(_, p)| p.len()).sum();
    let key = CbcsKey::new([0x42; 16], [0x24; 16]);
    let (_, tracks) = protect_init(&init, &key)?;
    let budget = Duration::from_secs_f64(seconds / 3.0);
    let copy = cost(&parts, media_s, budget, |_, p| std::hint::black_box(p.to_vec()).len());
    let aes = cost(&parts, media_s, budget, |msn, p| {
        std::hint::black_box(aes128::encrypt(&key.key, &aes128::segment_iv(msn), p)).len()
    });
    let cbcs = cost(&parts, media_s, budget, |_, p| {
        std::hint::black_box(protect_fragments(p, &tracks, &key).expect("our own parts protect")).len()
    });
    let row = |(cpu_per_media_s, mb_s): (f64, f64)| serde_json::json!({ "cpu_ms_per_stream_minute": cpu_per_media_s * 60_000.0, "mb_per_s": mb_s });
    let out = serde_json::json!({
        "file": file,
        "parts": parts.len(),
        "media_seconds": media_s,
        "bitrate_kbps": total as f64 * 8.0 / media_s / 1000.0,
        "copy": row(copy),
        "aes128": row(aes),
        "cbcs": row(cbcs),
    });
    println!("{out}");
    Ok(())
}
