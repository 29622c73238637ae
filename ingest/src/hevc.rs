//! HEVC: SPS parsing, Annex B access units to length-prefixed samples, `hvcC`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{annexb_nals, unescape_rbsp, BitReader};
use crate::h264::H264Error as ParamSetError;
use crate::media::HevcConfig;

pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;
pub const NAL_FD: u8 = 38;

/// The NAL unit type from the first header byte.
pub fn nal_type(first: u8) -> u8 {
    (first >> 1) & 0x3f
}

/// An access unit, converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub sample: Bytes,
    /// An IRAP picture (BLA, IDR or CRA).
    pub keyframe: bool,
    pub vps: Option<Bytes>,
    pub sps: Option<Bytes>,
    pub pps: Vec<Bytes>,
}

/// Converts one Annex B access unit.
pub fn convert_access_unit(data: &[u8]) -> AccessUnit {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    let mut au = AccessUnit { sample: Bytes::new(), keyframe: false, vps: None, sps: None, pps: Vec::new() };
    for nal in annexb_nals(data) {
        if nal.len() < 2 {
            continue;
        }
        match nal_type(nal[0]) {
            NAL_VPS => au.vps = Some(Bytes::copy_from_slice(nal)),
            NAL_SPS => au.sps = Some(Bytes::copy_from_slice(nal)),
            NAL_PPS => au.pps.push(Bytes::copy_from_slice(nal)),
            NAL_AUD | NAL_FD => {}
            t => {
                if (16..=23).contains(&t) {
                    au.keyframe = true;
                }
                out.put_u32(nal.len() as u32);
                out.put_slice(nal);
            }
        }
    }
    au.sample = out.freeze();
    au
}

/// Parses an SPS (with its two-byte NAL header) into a decoder configuration, with its
/// VPS and PPSs (at least one PPS; none empty): parameter sets are kept out of samples, so
/// a configuration without them could not be decoded.
pub fn parse_sps(vps: Bytes, sps: &[u8], pps: Vec<Bytes>) -> Result<HevcConfig, ParamSetError> {
    if sps.len() < 16 {
        return Err(ParamSetError::Unsupported("SPS too short"));
    }
    if vps.is_empty() || pps.is_empty() || pps.iter().any(Bytes::is_empty) {
        return Err(ParamSetError::Unsupported("no VPS or PPS with the SPS"));
    }
    let rbsp = unescape_rbsp(&sps[2..]);
    let mut r = BitReader::new(&rbsp);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.skip(1)?;
    let profile_space = r.bits(2)? as u8;
    let tier_flag = r.bit()?;
    let profile_idc = r.bits(5)? as u8;
    let profile_compatibility = r.bits(32)?;
    let mut constraint_flags = [0u8; 6];
    for b in constraint_flags.iter_mut() {
        *b = r.bits(8)? as u8;
    }
    let level_idc = r.bits(8)? as u8;
    let mut sub_profile = [false; 8];
    let mut sub_level = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        sub_profile[i] = r.bit()?;
        sub_level[i] = r.bit()?;
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip(2)?;
        }
    }
    for i in 0..max_sub_layers_minus1 {
        if sub_profile[i] {
            r.skip(88)?;
        }
        if sub_level[i] {
            r.skip(8)?;
        }
    }
    let _sps_id = r.ue()?;
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(ParamSetError::Unsupported("chroma_format_idc"));
    }
    let separate = chroma_format_idc == 3 && r.bit()?;
    let mut width = r.ue()? as u64;
    let mut height = r.ue()? as u64;
    if r.bit()? {
        let (sub_w, sub_h) = match (chroma_format_idc, separate) {
            (1, false) => (2, 2),
            (2, false) => (2, 1),
            _ => (1, 1),
        };
        let l = r.ue()? as u64;
        let rt = r.ue()? as u64;
        let t = r.ue()? as u64;
        let b = r.ue()? as u64;
        width = width.saturating_sub(sub_w * (l + rt));
        height = height.saturating_sub(sub_h * (t + b));
    }
    let bit_depth_luma = 8 + r.ue()?;
    let bit_depth_chroma = 8 + r.ue()?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return Err(ParamSetError::Unsupported("picture size"));
    }
    Ok(HevcConfig {
        vps,
        sps: Bytes::copy_from_slice(sps),
        pps,
        profile_space,
        tier_flag,
        profile_idc,
        profile_compatibility,
        constraint_flags,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma as u8,
        bit_depth_chroma: bit_depth_chroma as u8,
        width: width as u32,
        height: height as u32,
    })
}

/// Writes the `HEVCDecoderConfigurationRecord` (the body of an `hvcC` box).
pub fn hvcc_record(c: &HevcConfig) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 + c.vps.len() + c.sps.len());
    v.push(1);
    v.push((c.profile_space << 6) | ((c.tier_flag as u8) << 5) | (c.profile_idc & 0x1f));
    v.extend_from_slice(&c.profile_compatibility.to_be_bytes());
    v.extend_from_slice(&c.constraint_flags);
    v.push(c.level_idc);
    v.extend_from_slice(&[0xf0, 0x00, 0xfc]);
    v.push(0xfc | (c.chroma_format_idc & 3));
    v.push(0xf8 | (c.bit_depth_luma.saturating_sub(8) & 7));
    v.push(0xf8 | (c.bit_depth_chroma.saturating_sub(8) & 7));
    v.extend_from_slice(&[0, 0]); // avgFrameRate unspecified
    v.push((1 << 3) | (1 << 2) | 3); // one temporal layer, nested, 4-byte lengths
    v.push(3);
    let arrays: [(u8, Vec<&Bytes>); 3] =
        [(NAL_VPS, vec![&c.vps]), (NAL_SPS, vec![&c.sps]), (NAL_PPS, c.pps.iter().collect())];
    for (t, nals) in arrays {
        v.push(0x80 | t);
        v.extend_from_slice(&(nals.len() as u16).to_be_bytes());
        for n in nals {
            v.extend_from_slice(&(n.len() as u16).to_be_bytes());
            v.extend_from_slice(n);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    /// x265 Main profile, level 2, 320x180 (coded 320x184 with a conformance window).
    const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0xa0, 0x0a, 0x08, 0x0b, 0x9f, 0x79, 0x65, 0x66, 0x92, 0x4c, 0xaf, 0x01, 0x68, 0x08, 0x00, 0x00, 0x03, 0x00,
        0x08, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x40,
    ];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    #[test]
    fn parses_x265_sps() {
        let c = parse_sps(Bytes::from_static(VPS), SPS, vec![Bytes::from_static(PPS)]).unwrap();
        assert_eq!((c.width, c.height), (320, 180));
        assert_eq!((c.profile_idc, c.level_idc, c.tier_flag), (1, 60, false));
        assert_eq!(crate::CodecConfig::Hevc(c.clone()).rfc6381(), "hvc1.1.6.L60.90");
        let rec = hvcc_record(&c);
        assert_eq!(rec[0], 1);
        assert_eq!(rec[22], 3);
        assert_eq!(rec.len(), 23 + 3 * 3 + 2 * 3 + VPS.len() + SPS.len() + PPS.len());
    }

    #[test]
    fn truncated_sps_is_an_error() {
        for n in 0..24 {
            assert!(parse_sps(Bytes::new(), &SPS[..n], vec![]).is_err(), "len {n}");
        }
    }

    #[test]
    fn irap_is_keyframe_and_parameter_sets_are_stripped() {
        let mut au = vec![0, 0, 1, 0x46, 0x01, 0x50];
        for p in [VPS, SPS, PPS] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(p);
        }
        au.extend_from_slice(&[0, 0, 1, 0x26, 0x01, 0xaf]); // IDR_W_RADL
        let c = convert_access_unit(&au);
        assert!(c.keyframe);
        assert!(c.vps.is_some() && c.sps.is_some() && c.pps.len() == 1);
        assert_eq!(&c.sample[..], &[0, 0, 0, 3, 0x26, 0x01, 0xaf]);
        assert!(!convert_access_unit(&[0, 0, 1, 0x02, 0x01, 0xd0]).keyframe);
    }
}
