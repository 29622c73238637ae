//! Boxes of a `moov` this index never reads are turned into `free` boxes of the same size
//! before the `moov` is decoded: the decoder then skips them whole. Sample groups, edit
//! lists, metadata and the like (`sgpd`, `sbgp`, `sdtp`, `udta`, `meta`, `edts`...) carry
//! counts the decoder trusts, and a few hostile bytes there can make it build billions of
//! empty entries; what is never decoded cannot.
//!
//! The decoder takes any box it knows wherever it finds one (an `sgpd` inside `dinf`, or
//! inside a sample entry, is decoded all the same), so the walk goes down every container
//! the decoder descends into: `moov` to the sample tables, `dinf`, and the sample entries
//! of `stsd`, whose child boxes begin after fields of their own. Sample entries of codecs
//! the index does not take are freed whole; their kinds are returned so that a refusal can
//! still name them.

/// Per container on the path from `moov` down to the sample tables, the children kept:
/// what the index reads, and what the decoder requires. Anything else becomes `free`.
const KEPT: [(&[u8; 4], &[&[u8; 4]]); 6] = [
    (b"moov", &[b"mvhd", b"trak"]),
    (b"trak", &[b"tkhd", b"mdia"]),
    (b"mdia", &[b"mdhd", b"hdlr", b"minf"]),
    (b"minf", &[b"vmhd", b"smhd", b"dinf", b"stbl"]),
    (b"dinf", &[b"dref"]),
    (b"stbl", &[b"stsd", b"stts", b"stsz", b"stz2", b"stsc", b"stco", b"co64", b"ctts", b"stss"]),
];

/// Video sample entries the index takes: their children begin after the 8 bytes of
/// SampleEntry and the 70 of VisualSampleEntry; the decoder configuration is kept.
const VIDEO_ENTRIES: [&[u8; 4]; 4] = [b"avc1", b"avc3", b"hvc1", b"hev1"];
const VIDEO_CHILDREN: &[&[u8; 4]] = &[b"avcC", b"hvcC"];
/// The audio sample entry the index takes: children after 28 bytes (ISO and QuickTime
/// version 0), 44 (QuickTime version 1) or 64 (version 2); `esds` is kept, directly or in
/// a QuickTime `wave` (which the decoder scans by size without decoding what it holds).
const AUDIO_CHILDREN: &[&[u8; 4]] = &[b"esds", b"wave"];

/// Renames, in place, every box below `moov` that the index does not read to `free`.
/// Boxes whose sizes do not fit are left for the decoder to refuse. Returns, per `stsd` in
/// file order, the kind of its first sample entry as it was before the walk.
pub(super) fn free_unused(moov: &mut [u8]) -> Vec<[u8; 4]> {
    let mut first_entries = Vec::new();
    walk(moov, None, &mut first_entries);
    first_entries
}

/// The boxes laid end to end in `buf`: `(start, header length, end, kind)` of each, up to
/// the first whose size does not fit.
fn boxes(buf: &[u8]) -> Vec<(usize, usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= buf.len() {
        let size32 = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as u64;
        let (size, header) = match size32 {
            0 => ((buf.len() - at) as u64, 8),
            1 if at + 16 <= buf.len() => {
                let b = &buf[at + 8..at + 16];
                (u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]), 16)
            }
            n => (n, 8),
        };
        // `size` is the file's word: compared with what is left, never added to.
        if size < header as u64 || size > (buf.len() - at) as u64 {
            break;
        }
        let end = at + size as usize;
        out.push((at, header, end, [buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]));
        at = end;
    }
    out
}

fn walk(buf: &mut [u8], parent: Option<&[&[u8; 4]]>, first_entries: &mut Vec<[u8; 4]>) {
    for (at, header, end, kind) in boxes(buf) {
        if parent.is_some_and(|kept| !kept.contains(&&kind)) {
            buf[at + 4..at + 8].copy_from_slice(b"free");
        } else if &kind == b"stsd" {
            // A full box: version and flags, the entry count, then the entries.
            let body = &mut buf[at + header..end];
            if body.len() >= 8 {
                sample_entries(&mut body[8..], first_entries);
            }
        } else if let Some((_, kept)) = KEPT.iter().find(|(container, _)| **container == kind) {
            walk(&mut buf[at + header..end], Some(kept), first_entries);
        }
    }
}

fn sample_entries(buf: &mut [u8], first_entries: &mut Vec<[u8; 4]>) {
    for (i, (at, header, end, kind)) in boxes(buf).into_iter().enumerate() {
        if i == 0 {
            first_entries.push(kind);
        }
        let body = &mut buf[at + header..end];
        let children = if VIDEO_ENTRIES.contains(&&kind) {
            Some((78, VIDEO_CHILDREN))
        } else if &kind == b"mp4a" {
            // The QuickTime sound description version sits after the 8 SampleEntry bytes.
            let version = body.get(8..10).map(|v| u16::from_be_bytes([v[0], v[1]]));
            match version {
                Some(1) => Some((44, AUDIO_CHILDREN)),
                Some(2) => Some((64, AUDIO_CHILDREN)),
                _ => Some((28, AUDIO_CHILDREN)),
            }
        } else {
            None
        };
        match children {
            Some((fields, kept)) if body.len() >= fields => walk(&mut body[fields..], Some(kept), first_entries),
            // Too short for its own fields: the decoder refuses it without decoding children.
            Some(_) => {}
            None => buf[at + 4..at + 8].copy_from_slice(b"free"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&((8 + body.len()) as u32).to_be_bytes()[..], kind, body].concat()
    }

    #[test]
    fn only_boxes_the_index_reads_are_kept() {
        let stbl =
            boxed(b"stbl", &[boxed(b"stsz", &[0; 12]), boxed(b"sgpd", &[0xff; 16]), boxed(b"stco", &[0; 8])].concat());
        let trak = boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl)));
        let mut moov = boxed(b"moov", &[boxed(b"mvhd", &[0; 100]), boxed(b"udta", &[0xff; 8]), trak].concat());
        let before = moov.clone();
        free_unused(&mut moov);
        assert_eq!(moov.len(), before.len());
        let find = |b: &[u8], k: &[u8]| b.windows(4).any(|w| w == k);
        assert!(!find(&moov, b"sgpd") && !find(&moov, b"udta") && find(&moov, b"free"), "sgpd and udta freed");
        assert!(find(&moov, b"mvhd"));
        assert!(find(&moov, b"stsz") && find(&moov, b"stco"), "what the index reads stays");
        // A box whose size runs past its parent stops the walk; nothing panics.
        let mut broken = moov.clone();
        broken[3] = 0xff;
        free_unused(&mut broken);
        // Nor does a 64-bit size that would overflow an offset.
        let after_a_box = [&boxed(b"mvhd", &[0; 4])[..], &1u32.to_be_bytes(), b"trak", &[0xff; 8], &[0; 8]].concat();
        let mut huge = boxed(b"moov", &after_a_box);
        free_unused(&mut huge);
    }

    #[test]
    fn boxes_hidden_where_the_decoder_still_looks_are_freed() {
        let sgpd = boxed(b"sgpd", &[0xff; 16]);
        let dinf = boxed(b"dinf", &[boxed(b"dref", &[0; 8]), sgpd.clone()].concat());
        let avc1 = boxed(b"avc1", &[&[0u8; 78][..], &boxed(b"avcC", &[1; 7]), &sgpd].concat());
        let opus = boxed(b"Opus", &[&[0u8; 28][..], &boxed(b"dOps", &[0; 11])].concat());
        let stsd = |entries: &[Vec<u8>]| boxed(b"stsd", &[&[0u8; 8][..], &entries.concat()].concat());
        let trak = |entries: &[Vec<u8>]| {
            let stbl = boxed(b"stbl", &stsd(entries));
            boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &[dinf.clone(), stbl].concat())))
        };
        let mut moov = boxed(b"moov", &[trak(&[avc1]), trak(&[opus])].concat());
        let kinds = free_unused(&mut moov);
        let find = |b: &[u8], k: &[u8]| b.windows(4).any(|w| w == k);
        assert!(!find(&moov, b"sgpd"), "no sgpd left, in dinf or in a sample entry");
        assert!(find(&moov, b"dref") && find(&moov, b"avc1") && find(&moov, b"avcC"));
        assert!(!find(&moov, b"Opus"), "an entry the index does not take is freed whole");
        assert_eq!(kinds, vec![*b"avc1", *b"Opus"], "the entries' kinds as they were, per stsd");
    }

    #[test]
    fn quicktime_sound_descriptions_keep_their_esds() {
        for (version, fields) in [(0u16, 28usize), (1, 44), (2, 64)] {
            let mut head = vec![0u8; fields];
            head[8..10].copy_from_slice(&version.to_be_bytes());
            let wave = boxed(b"wave", &boxed(b"esds", &[0; 12]));
            let mp4a = boxed(b"mp4a", &[&head[..], &wave, &boxed(b"sgpd", &[0xff; 16])].concat());
            let stbl = boxed(b"stbl", &boxed(b"stsd", &[&[0u8; 8][..], &mp4a].concat()));
            let mut moov = boxed(b"moov", &boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl))));
            free_unused(&mut moov);
            let find = |b: &[u8], k: &[u8]| b.windows(4).any(|w| w == k);
            assert!(find(&moov, b"wave") && find(&moov, b"esds"), "version {version}: esds kept");
            assert!(!find(&moov, b"sgpd"), "version {version}: sgpd freed");
        }
    }
}
