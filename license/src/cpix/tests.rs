//! A request as an encryptor sends it, answered as a SPEKE v2 key server answers it.

use super::*;

const KID: [u8; 16] = [0x98, 0xee, 0x55, 0x96, 0xcd, 0x3e, 0xa2, 0x0d, 0x16, 0x3a, 0xe3, 0x82, 0x42, 0x0c, 0x6e, 0xff];
const KEY: [u8; 16] = [7; 16];

/// A version 0 `pssh` box of `system` naming no key ids, with `data`.
fn pssh(system: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(((32 + data.len()) as u32).to_be_bytes());
    b.extend(b"pssh");
    b.extend([0, 0, 0, 0]);
    b.extend(parse_uuid(system).unwrap());
    b.extend((data.len() as u32).to_be_bytes());
    b.extend(data);
    b
}

/// What a key server answers to `request`: the request filled in.
fn answer(request: &str, key: &[u8]) -> String {
    let kid = uuid(&KID);
    let skd = format!(
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://{kid}\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"\n"
    );
    request
        .replace(
            &format!(r#"<cpix:ContentKey kid="{kid}" commonEncryptionScheme="cbcs"/>"#),
            &format!(
                r#"<cpix:ContentKey kid="{kid}" commonEncryptionScheme="cbcs"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>"#,
                B64.encode(key)
            ),
        )
        .replace(
            &format!(r#"systemId="{WIDEVINE}"><cpix:PSSH/>"#),
            &format!(r#"systemId="{WIDEVINE}"><cpix:PSSH>{}</cpix:PSSH>"#, B64.encode(pssh(WIDEVINE, b"\x12\x10widevine-data"))),
        )
        .replace(
            &format!(r#"systemId="{PLAYREADY}"><cpix:PSSH/>"#),
            &format!(r#"systemId="{PLAYREADY}"><cpix:PSSH>{}</cpix:PSSH>"#, B64.encode(pssh(PLAYREADY, b"<WRMHEADER/>"))),
        )
        .replace(
            &format!(r#"systemId="{FAIRPLAY}"><cpix:HLSSignalingData playlist="media"/>"#),
            &format!(
                r#"systemId="{FAIRPLAY}"><cpix:HLSSignalingData playlist="media">{}</cpix:HLSSignalingData>"#,
                B64.encode(skd)
            ),
        )
}

fn request() -> String {
    request_document(&KeyRequest {
        content_id: "live/final",
        kid: KID,
        period: Some(12),
        systems: &[WIDEVINE, PLAYREADY, FAIRPLAY],
    })
}

#[test]
fn the_request_names_the_key_its_period_and_the_systems() {
    let doc = request();
    let parsed = roxmltree::Document::parse(&doc).expect("well-formed XML");
    let root = parsed.root_element();
    assert_eq!((root.attribute("contentId"), root.attribute("version")), (Some("live/final"), Some("2.3")));
    let key = root.descendants().find(|n| n.has_tag_name((CPIX_NS, "ContentKey"))).unwrap();
    assert_eq!(key.attribute("kid"), Some("98ee5596-cd3e-a20d-163a-e382420c6eff"));
    assert_eq!(key.attribute("commonEncryptionScheme"), Some("cbcs"));
    let systems: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name((CPIX_NS, "DRMSystem")))
        .filter_map(|n| n.attribute("systemId"))
        .collect();
    assert_eq!(systems, vec![WIDEVINE, PLAYREADY, FAIRPLAY]);
    let period = root.descendants().find(|n| n.has_tag_name((CPIX_NS, "ContentKeyPeriod"))).unwrap();
    assert_eq!(period.attribute("index"), Some("12"));
    let filter = root.descendants().find(|n| n.has_tag_name((CPIX_NS, "KeyPeriodFilter"))).unwrap();
    assert_eq!(filter.attribute("periodId"), period.attribute("id"));
    let awkward = request_document(&KeyRequest { content_id: "vod/a\"<b>", kid: KID, period: None, systems: &[] });
    assert!(roxmltree::Document::parse(&awkward).is_ok(), "content ids are escaped");
    assert!(!awkward.contains("ContentKeyPeriod"), "no period for a key that does not rotate");
}

#[test]
fn the_answer_gives_the_key_the_pssh_boxes_and_fairplays_key_tag() {
    let got = parse_response(&answer(&request(), &KEY), &KID).expect("taken");
    assert_eq!((got.kid, got.key), (KID, KEY));
    let by = |id: &str| got.signals.iter().find(|s| s.system_id == id).unwrap();
    assert_eq!(by(WIDEVINE).pssh.as_deref(), Some(pssh(WIDEVINE, b"\x12\x10widevine-data").as_slice()));
    assert_eq!(&by(PLAYREADY).pssh.as_ref().unwrap()[4..8], b"pssh");
    let fairplay = by(FAIRPLAY).hls_media.as_deref().unwrap();
    assert!(fairplay.starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://98ee5596-"), "{fairplay}");
    assert!(by(FAIRPLAY).pssh.is_none());
}

#[test]
fn answers_that_cannot_be_used_are_refused_with_the_reason() {
    let good = answer(&request(), &KEY);
    assert_eq!(parse_response(&good, &[1; 16]), Err(CpixError::NoKey(uuid(&[1; 16]))), "another key's answer");
    assert_eq!(parse_response(&answer(&request(), &[7; 8]), &KID), Err(CpixError::BadKey), "8 bytes");
    let encrypted = good.replace("<cpix:ContentKeyList>", "<cpix:DeliveryDataList/><cpix:ContentKeyList>");
    assert_eq!(parse_response(&encrypted, &KID), Err(CpixError::EncryptedKey));
    // A Widevine pssh that is PlayReady's.
    let wrong =
        good.replacen(&B64.encode(pssh(WIDEVINE, b"\x12\x10widevine-data")), &B64.encode(pssh(PLAYREADY, b"x")), 1);
    assert!(matches!(parse_response(&wrong, &KID), Err(CpixError::BadSignal { .. })));
    assert!(matches!(parse_response("<html/>", &KID), Err(CpixError::Xml(_))));
    assert!(matches!(parse_response("not xml", &KID), Err(CpixError::Xml(_))));
}

/// A good answer bitten at random places, and cut short: refused or taken, never a panic.
#[test]
fn damaged_answers_never_panic() {
    let good = answer(&request(), &KEY).into_bytes();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3_000 {
        let mut doc = good.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % doc.len();
            doc[at] = b"<>\"=/ aZ0+"[(next() % 10) as usize];
        }
        doc.truncate(doc.len() - (next() as usize) % 64);
        let _ = parse_response(&String::from_utf8_lossy(&doc), &KID);
    }
}
