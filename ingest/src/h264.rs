//! H.264: SPS parsing, Annex B access units to length-prefixed samples, `avcC`.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::bits::{annexb_nals, unescape_rbsp, BitReader, BitsExhausted};
use crate::media::AvcConfig;

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;
pub const NAL_FILLER: u8 = 12;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum H264Error {
    #[error("SPS too short or truncated: {0}")]
    Truncated(#[from] BitsExhausted),
    #[error("SPS has an unsupported value: {0}")]
    Unsupported(&'static str),
    /// A decoder configuration needs a PPS (parameter sets are kept out of samples, so a
    /// configuration without one could not be decoded); the track waits for one.
    #[error("no PPS with the SPS")]
    NoPps,
}

/// An access unit, converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// 4-byte length-prefixed NAL units, parameter sets and AUDs removed.
    pub sample: Bytes,
    pub keyframe: bool,
    /// SPS and PPS found in band, if any.
    pub sps: Option<Bytes>,
    pub pps: Vec<Bytes>,
}

/// Converts one Annex B access unit.
pub fn convert_access_unit(data: &[u8]) -> AccessUnit {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    let mut keyframe = false;
    let mut sps = None;
    let mut pps = Vec::new();
    for nal in annexb_nals(data) {
        match nal[0] & 0x1f {
            NAL_SPS => sps = Some(Bytes::copy_from_slice(nal)),
            NAL_PPS => pps.push(Bytes::copy_from_slice(nal)),
            NAL_AUD | NAL_FILLER => {}
            t => {
                if t == NAL_IDR {
                    keyframe = true;
                }
                out.put_u32(nal.len() as u32);
                out.put_slice(nal);
            }
        }
    }
    AccessUnit { sample: out.freeze(), keyframe, sps, pps }
}

/// Parses an SPS NAL unit (with its one-byte NAL header) into a decoder configuration,
/// with its PPSs (at least one, none empty).
pub fn parse_sps(sps: &[u8], pps: Vec<Bytes>) -> Result<AvcConfig, H264Error> {
    if sps.len() < 4 {
        return Err(H264Error::Truncated(BitsExhausted(0)));
    }
    if pps.is_empty() || pps.iter().any(Bytes::is_empty) {
        return Err(H264Error::NoPps);
    }
    let rbsp = unescape_rbsp(&sps[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let _sps_id = r.ue()?;
    let mut chroma_format_idc = 1;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    let mut separate_colour_plane = false;
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(H264Error::Unsupported("chroma_format_idc"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        bit_depth_luma = 8 + r.ue()?;
        bit_depth_chroma = 8 + r.ue()?;
        let _qpprime = r.bit()?;
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.ue()?;
    let poc_type = r.ue()?;
    match poc_type {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return Err(H264Error::Unsupported("num_ref_frames_in_pic_order_cnt_cycle"));
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(H264Error::Unsupported("pic_order_cnt_type")),
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps = r.bit()?;
    let width_mbs = r.ue()? as u64 + 1;
    let height_map_units = r.ue()? as u64 + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?;
    }
    r.bit()?; // direct_8x8_inference
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? {
        crop_l = r.ue()? as u64;
        crop_r = r.ue()? as u64;
        crop_t = r.ue()? as u64;
        crop_b = r.ue()? as u64;
    }
    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, 2 - frame_mbs_only as u64),
        1 => (2, 2 * (2 - frame_mbs_only as u64)),
        2 => (2, 2 - frame_mbs_only as u64),
        _ => (1, 2 - frame_mbs_only as u64),
    };
    let width = (width_mbs * 16).saturating_sub(crop_unit_x * (crop_l + crop_r));
    let height = ((2 - frame_mbs_only as u64) * height_map_units * 16).saturating_sub(crop_unit_y * (crop_t + crop_b));
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return Err(H264Error::Unsupported("picture size"));
    }
    let frame_rate = if r.bit().unwrap_or(false) { parse_vui_frame_rate(&mut r).ok().flatten() } else { None };
    Ok(AvcConfig {
        sps: Bytes::copy_from_slice(sps),
        pps,
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma as u8,
        bit_depth_chroma: bit_depth_chroma as u8,
        width: width as u32,
        height: height as u32,
        frame_rate,
    })
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Result<(), BitsExhausted> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Ok(())
}

fn parse_vui_frame_rate(r: &mut BitReader) -> Result<Option<(u32, u32)>, BitsExhausted> {
    if r.bit()? {
        let idc = r.bits(8)?;
        if idc == 255 {
            r.skip(32)?;
        }
    }
    if r.bit()? {
        r.bit()?;
    }
    if r.bit()? {
        r.skip(4)?;
        if r.bit()? {
            r.skip(24)?;
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    if r.bit()? {
        let units = r.bits(32)?;
        let scale = r.bits(32)?;
        if units > 0 && scale > 0 {
            return Ok(Some((scale, units.saturating_mul(2))));
        }
    }
    Ok(None)
}

/// The NAL length-field size of an `avcC` stream (1, 2 or 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvcLengthSize(pub u8);

/// Reads an `AVCDecoderConfigurationRecord`: the length size, the first SPS and every PPS.
pub fn parse_avcc_record(b: &[u8]) -> Result<(AvcLengthSize, Bytes, Vec<Bytes>), &'static str> {
    if b.len() < 7 || b[0] != 1 {
        return Err("not a version 1 record");
    }
    let length_size = (b[4] & 3) + 1;
    if length_size == 3 {
        return Err("3-byte NAL lengths");
    }
    let mut i = 5;
    let take = |count: usize, i: &mut usize| -> Result<Vec<Bytes>, &'static str> {
        let mut v = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_be_bytes([*b.get(*i).ok_or("truncated")?, *b.get(*i + 1).ok_or("truncated")?]) as usize;
            *i += 2;
            let nal = b.get(*i..*i + len).ok_or("parameter set overruns the record")?;
            if nal.is_empty() {
                return Err("empty parameter set");
            }
            v.push(Bytes::copy_from_slice(nal));
            *i += len;
        }
        Ok(v)
    };
    let sps_count = (b[i] & 0x1f) as usize;
    i += 1;
    let sps = take(sps_count, &mut i)?;
    let pps_count = *b.get(i).ok_or("truncated")? as usize;
    i += 1;
    let pps = take(pps_count, &mut i)?;
    let sps = sps.into_iter().next().ok_or("no SPS")?;
    if pps.is_empty() {
        return Err("no PPS");
    }
    Ok((AvcLengthSize(length_size), sps, pps))
}

/// Writes the `AVCDecoderConfigurationRecord` (the body of an `avcC` box).
pub fn avcc_record(c: &AvcConfig) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + c.sps.len() + c.pps.iter().map(|p| p.len() + 2).sum::<usize>());
    v.push(1);
    v.push(c.profile_idc);
    v.push(c.constraint_flags);
    v.push(c.level_idc);
    v.push(0xfc | 3); // lengthSizeMinusOne = 3
    v.push(0xe0 | 1);
    v.extend_from_slice(&(c.sps.len() as u16).to_be_bytes());
    v.extend_from_slice(&c.sps);
    v.push(c.pps.len() as u8);
    for p in &c.pps {
        v.extend_from_slice(&(p.len() as u16).to_be_bytes());
        v.extend_from_slice(p);
    }
    if matches!(c.profile_idc, 100 | 110 | 122 | 144) {
        v.push(0xfc | (c.chroma_format_idc & 3));
        v.push(0xf8 | (c.bit_depth_luma.saturating_sub(8) & 7));
        v.push(0xf8 | (c.bit_depth_chroma.saturating_sub(8) & 7));
        v.push(0);
    }
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SPS of x264, High profile level 3.0, 640x360 (cropped from 640x368), 25 fps timing.
    pub(crate) const SPS_640X360: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
        0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
    ];

    #[test]
    fn parses_high_profile_sps_with_cropping_and_timing() {
        let c = parse_sps(SPS_640X360, vec![Bytes::from_static(&[0x68, 0xeb, 0xe3, 0xcb])]).unwrap();
        assert_eq!((c.profile_idc, c.level_idc), (100, 30));
        assert_eq!((c.width, c.height), (640, 360));
        assert_eq!(c.frame_rate, Some((50, 2)));
        assert_eq!(crate::CodecConfig::H264(c.clone()).rfc6381(), "avc1.64001e");
        let rec = avcc_record(&c);
        assert_eq!(&rec[..5], &[1, 0x64, 0x00, 0x1e, 0xff]);
        assert_eq!(rec.len(), 6 + 2 + SPS_640X360.len() + 1 + 2 + 4 + 4);
    }

    #[test]
    fn truncated_sps_is_an_error_not_a_panic() {
        for n in 0..SPS_640X360.len() - 6 {
            let _ = parse_sps(&SPS_640X360[..n], vec![]);
        }
        assert!(parse_sps(&SPS_640X360[..6], vec![]).is_err());
        // Without a PPS there is no configuration a player could decode with.
        assert_eq!(parse_sps(SPS_640X360, vec![]), Err(H264Error::NoPps));
        assert_eq!(parse_sps(SPS_640X360, vec![Bytes::new()]), Err(H264Error::NoPps));
    }

    #[test]
    fn access_unit_strips_parameter_sets_and_finds_idr() {
        let mut au = vec![0, 0, 0, 1, 0x09, 0xf0];
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(SPS_640X360);
        au.extend_from_slice(&[0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb]);
        au.extend_from_slice(&[0, 0, 1, 0x65, 0x88, 0x84]);
        let c = convert_access_unit(&au);
        assert!(c.keyframe);
        assert_eq!(c.sps.as_deref(), Some(SPS_640X360));
        assert_eq!(c.pps.len(), 1);
        assert_eq!(&c.sample[..], &[0, 0, 0, 3, 0x65, 0x88, 0x84]);
        let p = convert_access_unit(&[0, 0, 1, 0x41, 0x9a, 0x00]);
        assert!(!p.keyframe);
        assert_eq!(&p.sample[..], &[0, 0, 0, 3, 0x41, 0x9a, 0]);
    }
}
