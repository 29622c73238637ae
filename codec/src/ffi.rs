//! Declarations of `shim.h`. Only the safe wrappers in [`crate::video`] and
//! [`crate::audio`] call these.

use std::os::raw::{c_char, c_int};

pub(crate) const AGAIN: c_int = 1;
pub(crate) const EOF: c_int = 2;
pub(crate) const H264: c_int = 0;
pub(crate) const HEVC: c_int = 1;
/// `AV_PIX_FMT_YUV420P`.
pub(crate) const PIX_FMT_YUV420P: c_int = 0;

#[repr(C)]
pub(crate) struct Decoder {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct Scaler {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct Encoder {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct Aac {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct Frame {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Picture {
    pub plane: [*const u8; 4],
    pub stride: [c_int; 4],
    pub width: c_int,
    pub height: c_int,
    pub format: c_int,
    pub pts: i64,
}

impl Default for Picture {
    fn default() -> Self {
        Picture { plane: [std::ptr::null(); 4], stride: [0; 4], width: 0, height: 0, format: -1, pts: 0 }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet {
    pub data: *const u8,
    pub size: c_int,
    pub pts: i64,
    pub dts: i64,
    pub key: c_int,
}

impl Default for Packet {
    fn default() -> Self {
        Packet { data: std::ptr::null(), size: 0, pts: 0, dts: 0, key: 0 }
    }
}

#[repr(C)]
pub(crate) struct EncoderConfig {
    pub width: c_int,
    pub height: c_int,
    pub fps_num: c_int,
    pub fps_den: c_int,
    pub bitrate: i64,
    pub maxrate: i64,
    pub bufsize: i64,
    pub keyint: c_int,
    pub threads: c_int,
    pub preset: *const c_char,
    pub tune: *const c_char,
    pub profile: *const c_char,
    pub params: *const c_char,
}

unsafe extern "C" {
    pub(crate) fn tsr_version() -> *const c_char;
    pub(crate) fn tsr_quiet();

    pub(crate) fn tsr_decoder_open(
        codec: c_int,
        extradata: *const u8,
        extradata_size: c_int,
        threads: c_int,
        out: *mut *mut Decoder,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_decoder_send(
        d: *mut Decoder,
        data: *const u8,
        size: c_int,
        pts: i64,
        dts: i64,
        key: c_int,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_decoder_receive(d: *mut Decoder, out: *mut *mut Frame, err: *mut c_char, errlen: c_int) -> c_int;
    pub(crate) fn tsr_decoder_close(d: *mut Decoder);

    pub(crate) fn tsr_scaler_open(
        width: c_int,
        height: c_int,
        bicubic: c_int,
        out: *mut *mut Scaler,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_scale(
        s: *mut Scaler,
        input: *const Picture,
        out: *mut *mut Frame,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_scaler_close(s: *mut Scaler);

    pub(crate) fn tsr_encoder_open(
        c: *const EncoderConfig,
        out: *mut *mut Encoder,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_encoder_send(
        e: *mut Encoder,
        pic: *const Picture,
        force_idr: c_int,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_encoder_send_frame(
        e: *mut Encoder,
        frame: *const Frame,
        force_idr: c_int,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_encoder_receive(e: *mut Encoder, pkt: *mut Packet, err: *mut c_char, errlen: c_int) -> c_int;
    pub(crate) fn tsr_encoder_close(e: *mut Encoder);

    pub(crate) fn tsr_aac_open(
        sample_rate: c_int,
        channels: c_int,
        bitrate: i64,
        out: *mut *mut Aac,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_aac_frame_size(a: *const Aac) -> c_int;
    pub(crate) fn tsr_aac_config(a: *const Aac, data: *mut *const u8, size: *mut c_int) -> c_int;
    pub(crate) fn tsr_aac_send(
        a: *mut Aac,
        planes: *const *const f32,
        channels: c_int,
        pts: i64,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub(crate) fn tsr_aac_receive(a: *mut Aac, pkt: *mut Packet, err: *mut c_char, errlen: c_int) -> c_int;
    pub(crate) fn tsr_aac_close(a: *mut Aac);

    pub(crate) fn tsr_frame_picture(f: *const Frame, pic: *mut Picture);
    pub(crate) fn tsr_frame_free(f: *mut Frame);
}
