//! Boxes of a `moov` this index never reads are turned into `free` boxes of the same size
//! before the `moov` is decoded: the decoder then skips them whole. Sample groups, edit
//! lists, metadata and the like (`sgpd`, `sbgp`, `sdtp`, `udta`, `meta`, `edts`...) carry
//! counts the decoder trusts, and a few hostile bytes there can make it build billions of
//! empty entries; what is never decoded cannot.

/// Per container on the path from `moov` down to the sample tables, the children kept:
/// what the index reads, and what the decoder requires. Anything else becomes `free`.
const KEPT: [(&[u8; 4], &[&[u8; 4]]); 5] = [
    (b"moov", &[b"mvhd", b"trak"]),
    (b"trak", &[b"tkhd", b"mdia"]),
    (b"mdia", &[b"mdhd", b"hdlr", b"minf"]),
    (b"minf", &[b"vmhd", b"smhd", b"dinf", b"stbl"]),
    (b"stbl", &[b"stsd", b"stts", b"stsz", b"stz2", b"stsc", b"stco", b"co64", b"ctts", b"stss"]),
];

/// Renames, in place, every box below `moov` that the index does not read to `free`.
/// Boxes whose sizes do not fit are left for the decoder to refuse.
pub(super) fn free_unused(moov: &mut [u8]) {
    walk(moov, None);
}

fn walk(buf: &mut [u8], parent: Option<&[&[u8; 4]]>) {
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
        if size < header as u64 || at as u64 + size > buf.len() as u64 {
            return;
        }
        let end = at + size as usize;
        let kind: [u8; 4] = [buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]];
        if parent.is_some_and(|kept| !kept.contains(&&kind)) {
            buf[at + 4..at + 8].copy_from_slice(b"free");
        } else if let Some((_, kept)) = KEPT.iter().find(|(container, _)| **container == kind) {
            walk(&mut buf[at + header..end], Some(kept));
        }
        at = end;
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
    }
}
