//! Safe handles over the shim's video decoder, scaler and libx264 encoder.
//!
//! Each handle owns its FFmpeg context and frees it on drop. Decoded and scaled pictures
//! are reference-counted [`Frame`]s that may cross threads; packets borrow the encoder that
//! made them until its next call, which the borrow checker enforces. Timestamps are 90 kHz
//! ticks in and out.

use std::ffi::CString;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::ptr::NonNull;

use crate::ffi;

/// A failure reported by FFmpeg, with what was being done.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct CodecError(pub String);

/// Room for FFmpeg's message.
pub(crate) struct ErrBuf([c_char; 256]);

impl ErrBuf {
    pub(crate) fn new() -> Self {
        ErrBuf([0; 256])
    }
    pub(crate) fn ptr(&mut self) -> (*mut c_char, c_int) {
        (self.0.as_mut_ptr(), self.0.len() as c_int)
    }
    pub(crate) fn error(&self, code: c_int) -> CodecError {
        // SAFETY: the buffer is NUL-initialised and the shim writes with snprintf.
        let msg = unsafe { std::ffi::CStr::from_ptr(self.0.as_ptr()) }.to_string_lossy().into_owned();
        CodecError(if msg.is_empty() { format!("FFmpeg error {code}") } else { msg })
    }
}

/// What a send or receive call came back with.
pub(crate) enum Status {
    Done,
    Again,
    Eof,
}

pub(crate) fn status(code: c_int, err: &ErrBuf) -> Result<Status, CodecError> {
    match code {
        0 => Ok(Status::Done),
        ffi::AGAIN => Ok(Status::Again),
        ffi::EOF => Ok(Status::Eof),
        c => Err(err.error(c)),
    }
}

/// The FFmpeg version the process runs with.
pub fn ffmpeg_version() -> String {
    // SAFETY: returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ffi::tsr_version()) }.to_string_lossy().into_owned()
}

/// Keeps FFmpeg's own logging to errors.
pub fn quiet_ffmpeg() {
    // SAFETY: sets a global level.
    unsafe { ffi::tsr_quiet() }
}

/// A picture borrowed from whoever produced it.
#[derive(Clone, Copy)]
pub struct Picture<'a> {
    raw: ffi::Picture,
    _owner: PhantomData<&'a ()>,
}

impl<'a> Picture<'a> {
    pub fn width(&self) -> u32 {
        self.raw.width as u32
    }
    pub fn height(&self) -> u32 {
        self.raw.height as u32
    }
    pub fn pts(&self) -> i64 {
        self.raw.pts
    }
    /// Plane `i` (0 = luma) of an 8-bit YUV 4:2:0 picture: (bytes, stride).
    pub fn plane(&self, i: usize) -> Option<(&'a [u8], usize)> {
        if self.raw.format != ffi::PIX_FMT_YUV420P || i > 2 || self.raw.plane[i].is_null() {
            return None;
        }
        let rows = if i == 0 { self.raw.height } else { (self.raw.height + 1) / 2 } as usize;
        let stride = self.raw.stride[i] as usize;
        // SAFETY: a YUV 4:2:0 plane has `rows` rows of `stride` bytes, alive for 'a.
        Some((unsafe { std::slice::from_raw_parts(self.raw.plane[i], stride * rows) }, stride))
    }
}

/// A decoded or scaled picture held by reference count: it can move to another thread, and
/// an encoder takes it without a copy.
pub struct Frame(NonNull<ffi::Frame>);

// SAFETY: an AVFrame reference may be used and freed from any thread; it is never mutated.
unsafe impl Send for Frame {}
// SAFETY: only read through shared references.
unsafe impl Sync for Frame {}

impl Frame {
    pub fn picture(&self) -> Picture<'_> {
        let mut raw = ffi::Picture::default();
        // SAFETY: fills `raw` from the frame, whose planes live as long as it does.
        unsafe { ffi::tsr_frame_picture(self.0.as_ptr(), &mut raw) };
        Picture { raw, _owner: PhantomData }
    }

    pub fn pts(&self) -> i64 {
        self.picture().pts()
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        // SAFETY: owned reference, freed once.
        unsafe { ffi::tsr_frame_free(self.0.as_ptr()) }
    }
}

fn frame(ptr: *mut ffi::Frame, what: &str) -> Result<Frame, CodecError> {
    NonNull::new(ptr).map(Frame).ok_or_else(|| CodecError(format!("{what}: no picture")))
}

/// An 8-bit YUV 4:2:0 picture owned by Rust (the test source draws into one).
#[derive(Debug, Clone)]
pub struct OwnedPicture {
    pub width: u32,
    pub height: u32,
    /// Y, U and V planes, tightly packed (stride = width, or width / 2 for chroma).
    pub planes: [Vec<u8>; 3],
    pub pts: i64,
}

impl OwnedPicture {
    pub fn new(width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let c = w.div_ceil(2) * h.div_ceil(2);
        OwnedPicture { width, height, planes: [vec![16; w * h], vec![128; c], vec![128; c]], pts: 0 }
    }

    pub fn as_picture(&self) -> Picture<'_> {
        let cw = self.width.div_ceil(2) as c_int;
        Picture {
            raw: ffi::Picture {
                plane: [self.planes[0].as_ptr(), self.planes[1].as_ptr(), self.planes[2].as_ptr(), std::ptr::null()],
                stride: [self.width as c_int, cw, cw, 0],
                width: self.width as c_int,
                height: self.height as c_int,
                format: ffi::PIX_FMT_YUV420P,
                pts: self.pts,
            },
            _owner: PhantomData,
        }
    }
}

/// A compressed frame borrowed from the encoder that produced it.
pub struct Packet<'a> {
    pub data: &'a [u8],
    pub pts: i64,
    pub dts: i64,
    pub keyframe: bool,
}

/// Calls a shim `receive` for a packet; `None` when none is ready.
pub(crate) fn receive_packet<'a>(
    call: impl FnOnce(*mut ffi::Packet, *mut c_char, c_int) -> c_int,
) -> Result<Option<Packet<'a>>, CodecError> {
    let mut err = ErrBuf::new();
    let (e, n) = err.ptr();
    let mut raw = ffi::Packet::default();
    let r = call(&mut raw, e, n);
    Ok(match status(r, &err)? {
        Status::Done => Some(raw_packet(&raw)),
        _ => None,
    })
}

fn raw_packet<'a>(raw: &ffi::Packet) -> Packet<'a> {
    // SAFETY: the shim hands out the packet's data and size, valid until the next call.
    let data =
        if raw.data.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(raw.data, raw.size as usize) } };
    Packet { data, pts: raw.pts, dts: raw.dts, keyframe: raw.key != 0 }
}

/// The compressed formats the decoder takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCodec {
    H264,
    Hevc,
}

/// An H.264 or HEVC decoder fed length-prefixed samples with `avcC`/`hvcC` extradata.
pub struct Decoder(NonNull<ffi::Decoder>);

// SAFETY: the context is used from one thread at a time (methods take &mut self).
unsafe impl Send for Decoder {}

impl Decoder {
    pub fn open(codec: SourceCodec, extradata: &[u8], threads: u32) -> Result<Self, CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let mut out = std::ptr::null_mut();
        let c = if codec == SourceCodec::Hevc { ffi::HEVC } else { ffi::H264 };
        // SAFETY: extradata is read during the call; `out` receives an owned handle.
        let r = unsafe {
            ffi::tsr_decoder_open(c, extradata.as_ptr(), extradata.len() as c_int, threads as c_int, &mut out, e, n)
        };
        status(r, &err)?;
        NonNull::new(out).map(Decoder).ok_or_else(|| CodecError("decoder: no handle".into()))
    }

    /// Sends one access unit; `None` starts draining. Returns false if the decoder wants
    /// its pictures read first.
    pub fn send(&mut self, sample: Option<(&[u8], i64, i64, bool)>) -> Result<bool, CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let (data, pts, dts, key) = sample.unwrap_or((&[], 0, 0, false));
        // SAFETY: data is copied into an AVPacket during the call.
        let r = unsafe {
            ffi::tsr_decoder_send(self.0.as_ptr(), data.as_ptr(), data.len() as c_int, pts, dts, key as c_int, e, n)
        };
        Ok(!matches!(status(r, &err)?, Status::Again))
    }

    /// The next decoded picture, if one is ready.
    pub fn receive(&mut self) -> Result<Option<Frame>, CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let mut out = std::ptr::null_mut();
        // SAFETY: on success `out` receives a new frame reference.
        let r = unsafe { ffi::tsr_decoder_receive(self.0.as_ptr(), &mut out, e, n) };
        match status(r, &err)? {
            Status::Done => frame(out, "decoder").map(Some),
            _ => Ok(None),
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { ffi::tsr_decoder_close(self.0.as_ptr()) }
    }
}

/// Converts any decoded picture to 8-bit YUV 4:2:0 at a fixed size.
pub struct Scaler(NonNull<ffi::Scaler>);

// SAFETY: as for Decoder.
unsafe impl Send for Scaler {}

impl Scaler {
    pub fn open(width: u32, height: u32, bicubic: bool) -> Result<Self, CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let mut out = std::ptr::null_mut();
        // SAFETY: `out` receives an owned handle.
        let r = unsafe { ffi::tsr_scaler_open(width as c_int, height as c_int, bicubic as c_int, &mut out, e, n) };
        status(r, &err)?;
        NonNull::new(out).map(Scaler).ok_or_else(|| CodecError("scaler: no handle".into()))
    }

    /// Scales into a new picture.
    pub fn scale(&mut self, input: &Picture<'_>) -> Result<Frame, CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let mut out = std::ptr::null_mut();
        // SAFETY: the input planes are alive for the call; `out` receives a new frame.
        let r = unsafe { ffi::tsr_scale(self.0.as_ptr(), &input.raw, &mut out, e, n) };
        status(r, &err)?;
        frame(out, "scaler")
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { ffi::tsr_scaler_close(self.0.as_ptr()) }
    }
}

/// Settings of one libx264 encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    /// Frame rate, as a fraction.
    pub fps: (u32, u32),
    pub bitrate: u64,
    pub maxrate: u64,
    pub bufsize: u64,
    /// Longest distance between keyframes; boundaries are forced anyway.
    pub keyint: u32,
    /// 0 lets libx264 choose.
    pub threads: u32,
    pub preset: String,
    pub tune: String,
    pub profile: String,
    /// Extra `x264-params` (key=value:key=value).
    pub params: String,
}

/// An H.264 encoder (libx264) that writes Annex B access units with SPS and PPS before
/// every IDR.
pub struct Encoder {
    ptr: NonNull<ffi::Encoder>,
    settings: EncoderSettings,
}

// SAFETY: as for Decoder.
unsafe impl Send for Encoder {}

fn cstring(s: &str, what: &str) -> Result<CString, CodecError> {
    CString::new(s).map_err(|_| CodecError(format!("{what} contains a NUL byte")))
}

impl Encoder {
    pub fn open(settings: &EncoderSettings) -> Result<Self, CodecError> {
        let preset = cstring(&settings.preset, "preset")?;
        let tune = cstring(&settings.tune, "tune")?;
        let profile = cstring(&settings.profile, "profile")?;
        let params = cstring(&settings.params, "x264 params")?;
        let config = ffi::EncoderConfig {
            width: settings.width as c_int,
            height: settings.height as c_int,
            fps_num: settings.fps.0.max(1) as c_int,
            fps_den: settings.fps.1.max(1) as c_int,
            bitrate: settings.bitrate as i64,
            maxrate: settings.maxrate as i64,
            bufsize: settings.bufsize as i64,
            keyint: settings.keyint as c_int,
            threads: settings.threads as c_int,
            preset: preset.as_ptr(),
            tune: tune.as_ptr(),
            profile: profile.as_ptr(),
            params: params.as_ptr(),
        };
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let mut out = std::ptr::null_mut();
        // SAFETY: the strings outlive the call; `out` receives an owned handle.
        let r = unsafe { ffi::tsr_encoder_open(&config, &mut out, e, n) };
        status(r, &err)?;
        let ptr = NonNull::new(out).ok_or_else(|| CodecError("encoder: no handle".into()))?;
        Ok(Encoder { ptr, settings: settings.clone() })
    }

    pub fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Sends a picture (`None` drains); `force_idr` makes it an IDR picture.
    pub fn send(&mut self, picture: Option<&Picture<'_>>, force_idr: bool) -> Result<(), CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let raw = picture.map_or(std::ptr::null(), |p| &p.raw as *const ffi::Picture);
        // SAFETY: the picture is copied in during the call.
        let r = unsafe { ffi::tsr_encoder_send(self.ptr.as_ptr(), raw, force_idr as c_int, e, n) };
        status(r, &err).map(|_| ())
    }

    /// Sends a reference-counted picture (no copy); `force_idr` makes it an IDR picture.
    pub fn send_frame(&mut self, frame: &Frame, force_idr: bool) -> Result<(), CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        // SAFETY: the encoder takes its own reference to the frame.
        let r = unsafe { ffi::tsr_encoder_send_frame(self.ptr.as_ptr(), frame.0.as_ptr(), force_idr as c_int, e, n) };
        status(r, &err).map(|_| ())
    }

    /// The next compressed frame, if one is ready.
    pub fn receive(&mut self) -> Result<Option<Packet<'_>>, CodecError> {
        // SAFETY: the packet belongs to the encoder until its next call, which &mut self guards.
        receive_packet(|raw, e, n| unsafe { ffi::tsr_encoder_receive(self.ptr.as_ptr(), raw, e, n) })
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { ffi::tsr_encoder_close(self.ptr.as_ptr()) }
    }
}
