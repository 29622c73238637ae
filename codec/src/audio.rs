//! An AAC-LC encoder (FFmpeg's native one), for the built-in test source.

use std::os::raw::c_int;
use std::ptr::NonNull;

use crate::ffi;
use crate::video::{receive_packet, status, CodecError, ErrBuf, Packet};

pub struct AacEncoder {
    ptr: NonNull<ffi::Aac>,
    channels: usize,
}

// SAFETY: used from one thread at a time (methods take &mut self).
unsafe impl Send for AacEncoder {}

impl AacEncoder {
    pub fn open(sample_rate: u32, channels: u8, bitrate: u64) -> Result<Self, CodecError> {
        let mut err = ErrBuf::new();
        let (e, n) = err.ptr();
        let mut out = std::ptr::null_mut();
        // SAFETY: `out` receives an owned handle.
        let r = unsafe { ffi::tsr_aac_open(sample_rate as c_int, channels as c_int, bitrate as i64, &mut out, e, n) };
        status(r, &err)?;
        let ptr = NonNull::new(out).ok_or_else(|| CodecError("AAC encoder: no handle".into()))?;
        Ok(AacEncoder { ptr, channels: channels as usize })
    }

    /// Samples per channel in each frame (1024 for AAC-LC).
    pub fn frame_size(&self) -> usize {
        // SAFETY: reads a field of the open context.
        unsafe { ffi::tsr_aac_frame_size(self.ptr.as_ptr()) as usize }
    }

    /// The AudioSpecificConfig.
    pub fn config(&self) -> Vec<u8> {
        let mut data = std::ptr::null();
        let mut size = 0;
        // SAFETY: the extradata lives as long as the encoder; copied out here.
        unsafe {
            ffi::tsr_aac_config(self.ptr.as_ptr(), &mut data, &mut size);
            if data.is_null() {
                return Vec::new();
            }
            std::slice::from_raw_parts(data, size as usize).to_vec()
        }
    }

    /// Sends one frame: `frame_size()` samples per channel, planar, in [-1, 1]; `pts` in
    /// samples.
    pub fn send(&mut self, planes: &[&[f32]], pts: i64) -> Result<(), CodecError> {
        let n = self.frame_size();
        if planes.len() != self.channels || planes.iter().any(|p| p.len() < n) {
            return Err(CodecError(format!("AAC: expected {} planes of {n} samples", self.channels)));
        }
        let ptrs: Vec<*const f32> = planes.iter().map(|p| p.as_ptr()).collect();
        let mut err = ErrBuf::new();
        let (e, en) = err.ptr();
        // SAFETY: each plane holds at least frame_size samples, copied in during the call.
        let r = unsafe { ffi::tsr_aac_send(self.ptr.as_ptr(), ptrs.as_ptr(), self.channels as c_int, pts, e, en) };
        status(r, &err).map(|_| ())
    }

    /// The next raw AAC frame (no ADTS header), if one is ready; timestamps in samples.
    pub fn receive(&mut self) -> Result<Option<Packet<'_>>, CodecError> {
        // SAFETY: the packet belongs to the encoder until its next call, which &mut self guards.
        receive_packet(|raw, e, n| unsafe { ffi::tsr_aac_receive(self.ptr.as_ptr(), raw, e, n) })
    }
}

impl Drop for AacEncoder {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { ffi::tsr_aac_close(self.ptr.as_ptr()) }
    }
}
