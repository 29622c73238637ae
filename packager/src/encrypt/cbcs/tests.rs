use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// NIST SP 800-38A, F.2.1: the key, IV, four plaintext and four ciphertext blocks.
fn nist() -> (Key, Iv, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let key = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
    let iv = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
    let p = [
        "6bc1bee22e409f96e93d7e117393172a",
        "ae2d8a571e03ac9c9eb76fac45af8e51",
        "30c81c46a35ce411e5fbc1191a0a52ef",
        "f69f2445df4f9b17ad2b417be66c3710",
    ];
    let c = [
        "7649abac8119b246cee98e9b12e9197d",
        "5086cb9b507219ee95db113a917678b2",
        "73bed6b8e3c1743b7116e69e22229516",
        "3ff1caa1681fac09120eca307586e1a7",
    ];
    (key, iv, p.iter().map(|x| hex(x)).collect(), c.iter().map(|x| hex(x)).collect())
}

#[test]
fn the_pattern_encrypts_one_block_in_ten_chained_and_restarts_each_subsample() {
    let (key, iv, plain, cipher) = nist();
    // A protected range of 31 blocks and 5 bytes: blocks 0, 10, 20 and 30 are encrypted;
    // their plaintexts are NIST's, so their ciphertexts must be NIST's (one CBC chain).
    let mut range = vec![0xabu8; 31 * 16 + 5];
    for (i, p) in plain.iter().enumerate() {
        range[i * 160..i * 160 + 16].copy_from_slice(p);
    }
    let clear_lead = [0x11u8; 7];
    let sample: Vec<u8> = [&clear_lead[..], &range, &clear_lead[..], &range].concat();
    let subsamples =
        [Subsample { clear: 7, protected: range.len() as u32 }, Subsample { clear: 7, protected: range.len() as u32 }];
    let mut enc = sample.clone();
    encrypt(&key, &iv, &mut enc, &subsamples, VIDEO_PATTERN).unwrap();
    for start in [7, 7 + range.len() + 7] {
        for (i, c) in cipher.iter().enumerate() {
            let at = start + i * 160;
            assert_eq!(&enc[at..at + 16], &c[..], "encrypted block {} of the subsample at {start}", i * 10);
        }
        for b in (0..31).filter(|b| b % 10 != 0) {
            let at = start + b * 16;
            assert_eq!(&enc[at..at + 16], &sample[at..at + 16], "skipped block {b} stays clear");
        }
        let tail = start + 31 * 16;
        assert_eq!(&enc[tail..tail + 5], &sample[tail..tail + 5], "the partial block stays clear");
    }
    assert_eq!(&enc[..7], &clear_lead, "clear bytes stay clear");
    decrypt(&key, &iv, &mut enc, &subsamples, VIDEO_PATTERN).unwrap();
    assert_eq!(enc, sample);
}

#[test]
fn audio_encrypts_every_whole_block() {
    let (key, iv, plain, cipher) = nist();
    let mut sample = plain.concat();
    sample.extend_from_slice(b"tail!");
    let clear = sample.clone();
    encrypt(&key, &iv, &mut sample, &[], AUDIO_PATTERN).unwrap();
    assert_eq!(&sample[..64], &cipher.concat()[..]);
    assert_eq!(&sample[64..], b"tail!");
    decrypt(&key, &iv, &mut sample, &[], AUDIO_PATTERN).unwrap();
    assert_eq!(sample, clear);
}

fn nal(header: &[u8], body_len: usize) -> Vec<u8> {
    let mut n = ((header.len() + body_len) as u32).to_be_bytes().to_vec();
    n.extend_from_slice(header);
    n.extend((0..body_len).map(|i| i as u8));
    n
}

#[test]
fn slices_are_protected_after_their_lead_and_other_nal_units_stay_clear() {
    // H.264: SPS (clear), SEI (clear), IDR slice of 1 + 200 bytes, a slice too short to protect.
    let sample = [nal(&[0x67], 9), nal(&[0x06], 20), nal(&[0x65], 200), nal(&[0x41], 20)].concat();
    let subs = video_subsamples(&sample, 4, NalSyntax::H264).unwrap();
    assert_eq!(
        subs,
        vec![
            Subsample { clear: (4 + 10) + (4 + 21) + 4 + 1 + 32, protected: 200 - 32 },
            Subsample { clear: 4 + 21, protected: 0 },
        ]
    );
    // HEVC: a 2-byte header; VPS (type 32) clear, a TRAIL_R slice (type 1) protected.
    let sample = [nal(&[0x40, 0x01], 20), nal(&[0x02, 0x01], 100)].concat();
    let subs = video_subsamples(&sample, 4, NalSyntax::Hevc).unwrap();
    assert_eq!(subs, vec![Subsample { clear: (4 + 22) + 4 + 2 + 32, protected: 100 - 32 }]);
    let (key, iv, _, _) = nist();
    let mut enc = sample.clone();
    encrypt(&key, &iv, &mut enc, &subs, VIDEO_PATTERN).unwrap();
    assert_ne!(enc, sample);
    decrypt(&key, &iv, &mut enc, &subs, VIDEO_PATTERN).unwrap();
    assert_eq!(enc, sample);
}

#[test]
fn long_clear_runs_are_split_and_lying_lengths_are_refused() {
    let sample = nal(&[0x06], 70_000); // an SEI longer than a subsample's clear count
    let subs = video_subsamples(&sample, 4, NalSyntax::H264).unwrap();
    assert_eq!(subs.iter().map(|s| s.clear as usize).sum::<usize>(), sample.len());
    assert!(subs.iter().all(|s| s.protected == 0));
    let mut lying = nal(&[0x65], 50);
    lying[3] = 200;
    assert_eq!(
        video_subsamples(&lying, 4, NalSyntax::H264),
        Err(CbcsError::NalOverrun { offset: 0, claimed: 200, left: 51 })
    );
    let (key, iv, _, _) = nist();
    let mut short = vec![0u8; 10];
    let wrong = [Subsample { clear: 4, protected: 20 }];
    assert_eq!(
        encrypt(&key, &iv, &mut short, &wrong, VIDEO_PATTERN),
        Err(CbcsError::Coverage { covered: 24, len: 10 })
    );
}
