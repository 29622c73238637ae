//! The built-in test source: a live H.264 + AAC test picture as MPEG-TS, for
//! `tessera publish --test-pattern` and the demo, so the whole path can be tried without
//! ffmpeg.
//!
//! The picture has colour bars, a bar sweeping once a second (motion), a band of moving
//! noise (detail an encoder has to spend bits on, so renditions differ in size as they would
//! on camera footage), the UTC wall clock and a frame counter in large digits, and the wall
//! clock as a barcode in the top-left
//! corner for machine reading: 16 square blocks, each `height / 15` pixels (24 at 360p),
//! block i white when bit i of (epoch milliseconds mod 65536) is set, the same code the
//! interop player reads for glass-to-glass latency. The sound is a 1 kHz beep for the
//! first 100 ms of every second, silence otherwise.
//!
//! Sans-IO: [`TestPattern::next`] takes the wall-clock time of the frame and returns its
//! TS packets; the caller paces and sends them.

use tessera_ingest::aac;
use tessera_ingest::media::AacConfig;
use tessera_ingest::timestamp::TICKS_PER_SECOND;
use tessera_ingest::ts::mux::{PesSpec, TsWriter};
use tessera_ingest::ts::psi::StreamType;

use crate::audio::AacEncoder;
use crate::video::{CodecError, Encoder, EncoderSettings, OwnedPicture};

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
const SAMPLE_RATE: u32 = 48_000;

/// What the test picture looks like.
#[derive(Debug, Clone)]
pub struct PatternConfig {
    pub width: u32,
    pub height: u32,
    /// Frames per second, as a fraction.
    pub fps: (u32, u32),
    pub video_kbps: u32,
    /// Frames between keyframes.
    pub gop: u32,
}

impl Default for PatternConfig {
    fn default() -> Self {
        PatternConfig { width: 1280, height: 720, fps: (30, 1), video_kbps: 3000, gop: 30 }
    }
}

/// The test source.
pub struct TestPattern {
    config: PatternConfig,
    video: Encoder,
    audio: AacEncoder,
    asc: AacConfig,
    ts: TsWriter,
    /// The still part of the picture (bars and the dark band), drawn once.
    background: OwnedPicture,
    picture: OwnedPicture,
    frame: u64,
    audio_samples: u64,
}

/// 5x7 glyphs, one row per byte (low 5 bits, most significant on the left).
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        '#' => [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
        _ => [0; 7],
    }
}

/// BT.601 limited-range YUV of the classic bars: white, yellow, cyan, green, magenta, red, blue.
const BARS: [(u8, u8, u8); 7] =
    [(180, 128, 128), (162, 44, 142), (131, 156, 44), (112, 72, 58), (84, 184, 198), (65, 100, 212), (35, 212, 114)];

impl TestPattern {
    pub fn new(config: PatternConfig) -> Result<Self, CodecError> {
        crate::video::quiet_ffmpeg();
        if config.width < 160
            || config.height < 120
            || !config.width.is_multiple_of(2)
            || !config.height.is_multiple_of(2)
        {
            return Err(CodecError(format!(
                "test pattern size {}x{} must be even and at least 160x120",
                config.width, config.height
            )));
        }
        let kbps = config.video_kbps as u64 * 1000;
        let video = Encoder::open(&EncoderSettings {
            width: config.width,
            height: config.height,
            fps: config.fps,
            bitrate: kbps,
            maxrate: kbps,
            bufsize: kbps,
            keyint: config.gop.max(1),
            threads: 0,
            preset: "veryfast".into(),
            tune: "zerolatency".into(),
            profile: "high".into(),
            params: String::new(),
        })?;
        let audio = AacEncoder::open(SAMPLE_RATE, 2, 128_000)?;
        let asc =
            aac::parse_asc(&audio.config()).ok_or_else(|| CodecError("AAC encoder gave no usable config".into()))?;
        let background = background(config.width, config.height);
        let picture = background.clone();
        Ok(TestPattern {
            config,
            video,
            audio,
            asc,
            ts: TsWriter::new(),
            background,
            picture,
            frame: 0,
            audio_samples: 0,
        })
    }

    /// Duration of one frame, 90 kHz ticks (fractional rates are rounded per frame).
    fn pts(&self, frame: u64) -> i64 {
        (frame as i128 * TICKS_PER_SECOND as i128 * self.config.fps.1 as i128 / self.config.fps.0.max(1) as i128) as i64
    }

    /// Microseconds from the first frame to frame `n`, for pacing.
    pub fn frame_time_us(&self, n: u64) -> u64 {
        n * 1_000_000 * self.config.fps.1 as u64 / self.config.fps.0.max(1) as u64
    }

    /// Frames made so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// Draws, encodes and muxes the next frame (and the sound up to its time), stamped with
    /// the wall clock `wall_ms` (milliseconds since the Unix epoch).
    pub fn next(&mut self, wall_ms: i64) -> Result<Vec<u8>, CodecError> {
        let n = self.frame;
        self.frame += 1;
        let pts = self.pts(n);
        self.draw(n, wall_ms);
        self.picture.pts = pts;
        let mut out = Vec::with_capacity(64 * 1024);
        let keyframe = n.is_multiple_of(self.config.gop.max(1) as u64);
        if keyframe {
            let streams = [(StreamType::H264, VIDEO_PID), (StreamType::AacAdts, AUDIO_PID)];
            out.extend(self.ts.psi(PMT_PID, VIDEO_PID, &streams));
        }
        self.video.send(Some(&self.picture.as_picture()), keyframe)?;
        // TS timestamps start one second in, so the first audio and video are positive.
        const OFFSET: i64 = TICKS_PER_SECOND;
        while let Some(p) = self.video.receive()? {
            out.extend(self.ts.pes(&PesSpec {
                pid: VIDEO_PID,
                stream_id: 0xe0,
                pts: (p.pts + OFFSET) as u64,
                dts: Some((p.dts + OFFSET) as u64),
                pcr: Some(((p.dts + OFFSET) as u64) * 300),
                random_access: p.keyframe,
                bounded: false,
                data: p.data,
            }));
        }
        // Sound up to the end of this frame.
        let until = (self.pts(n + 1) as i128 * SAMPLE_RATE as i128 / TICKS_PER_SECOND as i128) as u64;
        let fs = self.audio.frame_size() as u64;
        while self.audio_samples + fs <= until {
            let plane = beep(self.audio_samples, fs as usize);
            self.audio.send(&[&plane, &plane], self.audio_samples as i64)?;
            self.audio_samples += fs;
            while let Some(p) = self.audio.receive()? {
                let mut adts = aac::adts_header(&self.asc, p.data.len()).to_vec();
                adts.extend_from_slice(p.data);
                let apts = p.pts * TICKS_PER_SECOND / SAMPLE_RATE as i64 + OFFSET;
                out.extend(self.ts.pes(&PesSpec {
                    pid: AUDIO_PID,
                    stream_id: 0xc0,
                    pts: apts as u64,
                    dts: None,
                    pcr: None,
                    random_access: true,
                    bounded: true,
                    data: &adts,
                }));
            }
        }
        Ok(out)
    }

    fn draw(&mut self, n: u64, wall_ms: i64) {
        let (w, h) = (self.config.width as usize, self.config.height as usize);
        for (dst, src) in self.picture.planes.iter_mut().zip(&self.background.planes) {
            dst.copy_from_slice(src);
        }
        let [y, u, v] = &mut self.picture.planes;
        let cw = w.div_ceil(2);
        let bars_h = h * 2 / 3;
        // A bar sweeping across the bottom once a second.
        let fps = self.config.fps.0 as f64 / self.config.fps.1.max(1) as f64;
        let phase = (n as f64 / fps).fract();
        let bar_w = (w / 40).max(4);
        let x0 = (phase * (w - bar_w) as f64) as usize;
        fill(y, w, x0, h - h / 12, bar_w, h / 12, 235);
        // Noise over the right third of the bars, new every frame.
        let mut seed = (n as u32).wrapping_mul(0x9e37_79b9) | 1;
        for row in block_rows(h)..bars_h {
            for px in &mut y[row * w + w * 2 / 3..row * w + w] {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *px = 16 + (seed >> 24) as u8 % 220;
            }
        }
        // Clock and frame counter, in the dark band: 12 characters of 6 cells at h/60 per cell
        // fill about two thirds of a 16:9 picture's width.
        let scale = (h / 120).max(1);
        let t = wall_ms.rem_euclid(86_400_000);
        let clock = format!("{:02}:{:02}:{:02}.{:03}", t / 3_600_000, (t / 60_000) % 60, (t / 1000) % 60, t % 1000);
        let text_y = bars_h + scale * 4;
        text(y, w, &clock, scale * 2, w / 16, text_y);
        text(y, w, &format!("#{n:07}"), scale, w / 16, text_y + scale * 18);
        // The machine-readable clock, grey in the chroma planes.
        let block = block_rows(h);
        let code = wall_ms.rem_euclid(65_536) as u32;
        for i in 0..16 {
            let on = code >> i & 1 == 1;
            fill(y, w, i * block, 0, block, block, if on { 235 } else { 16 });
        }
        fill(u, cw, 0, 0, 8 * block, block / 2, 128);
        fill(v, cw, 0, 0, 8 * block, block / 2, 128);
    }
}

/// Rows taken by the barcode at the top.
fn block_rows(h: usize) -> usize {
    h / 15
}

/// Colour bars over the top two thirds, dark grey below.
fn background(width: u32, height: u32) -> OwnedPicture {
    let mut p = OwnedPicture::new(width, height);
    let (w, h) = (width as usize, height as usize);
    let cw = w.div_ceil(2);
    let bars_h = h * 2 / 3;
    let [y, u, v] = &mut p.planes;
    fill(y, w, 0, bars_h, w, h - bars_h, 40);
    for (i, (luma, cb, cr)) in BARS.iter().enumerate() {
        let (x0, x1) = (i * w / 7, (i + 1) * w / 7);
        fill(y, w, x0, 0, x1 - x0, bars_h, *luma);
        let (c0, c1) = (i * cw / 7, (i + 1) * cw / 7);
        fill(u, cw, c0, 0, c1 - c0, bars_h / 2, *cb);
        fill(v, cw, c0, 0, c1 - c0, bars_h / 2, *cr);
    }
    p
}

fn fill(plane: &mut [u8], stride: usize, x: usize, y: usize, w: usize, h: usize, value: u8) {
    let rows = plane.len() / stride;
    for row in y..(y + h).min(rows) {
        let start = row * stride + x.min(stride);
        let end = row * stride + (x + w).min(stride);
        plane[start..end].fill(value);
    }
}

fn text(plane: &mut [u8], stride: usize, s: &str, scale: usize, x: usize, y: usize) {
    for (i, c) in s.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits >> (4 - col) & 1 == 1 {
                    fill(plane, stride, x + (i * 6 + col) * scale, y + row * scale, scale, scale, 235);
                }
            }
        }
    }
}

/// One AAC frame of the tone: 1 kHz for the first 100 ms of each second, at -12 dBFS.
fn beep(first_sample: u64, n: usize) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let s = first_sample + i;
            if s % SAMPLE_RATE as u64 >= SAMPLE_RATE as u64 / 10 {
                return 0.0;
            }
            let t = s as f64 / SAMPLE_RATE as f64;
            (0.25 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tessera_ingest::ts::TsDemuxer;
    use tessera_ingest::{CodecConfig, DemuxEvent, TrackKind};

    use super::*;

    #[test]
    fn makes_a_demuxable_h264_and_aac_feed_with_keyframes_on_its_gop() {
        let mut p = TestPattern::new(PatternConfig { width: 320, height: 180, fps: (25, 1), video_kbps: 500, gop: 25 })
            .unwrap();
        let mut ts = Vec::new();
        for i in 0..75 {
            ts.extend(p.next(1_700_000_000_000 + i * 40).unwrap());
        }
        let mut demux = TsDemuxer::new();
        let events: Vec<DemuxEvent> = demux.push(&ts).into_iter().chain(demux.flush()).map(|e| e.unwrap()).collect();
        let codecs: Vec<&CodecConfig> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Track(t) => Some(&t.codec),
                _ => None,
            })
            .collect();
        assert!(
            codecs.iter().any(|c| matches!(c, CodecConfig::H264(a) if a.width == 320 && a.height == 180)),
            "{codecs:?}"
        );
        assert!(codecs.iter().any(|c| matches!(c, CodecConfig::Aac(a) if a.sample_rate == 48_000 && a.channels == 2)));
        let video: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) if f.kind == TrackKind::Video => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(video.len(), 75);
        let keys: Vec<usize> = video.iter().enumerate().filter(|(_, f)| f.keyframe).map(|(i, _)| i).collect();
        assert_eq!(keys, [0, 25, 50]);
        assert_eq!(video[1].pts - video[0].pts, 3600, "25 fps in 90 kHz ticks");
        let audio = events.iter().filter(|e| matches!(e, DemuxEvent::Frame(f) if f.kind == TrackKind::Audio)).count();
        // 3 s of 48 kHz in 1024-sample frames, less the encoder's priming delay.
        assert!((135..=141).contains(&audio), "{audio} audio frames");
    }

    #[test]
    fn the_barcode_encodes_the_wall_clock() {
        let mut p = TestPattern::new(PatternConfig { width: 640, height: 360, ..PatternConfig::default() }).unwrap();
        let wall = 1_700_000_012_345i64;
        p.next(wall).unwrap();
        let y = &p.picture.planes[0];
        let block = 24;
        let mut code = 0u32;
        for i in 0..16 {
            let (x, row) = (i * block + block / 2, block / 2);
            if y[row * 640 + x] > 128 {
                code |= 1 << i;
            }
        }
        assert_eq!(code as i64, wall % 65_536);
    }
}
