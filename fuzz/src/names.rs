//! Names and headers strangers choose: the SRT stream id, a media request's path and query
//! (media file names, delivery directives), and tus upload headers.

use tessera_ingest::streamid;
use tessera_packager::{Directives, MediaFile};
use tessera_vod::tus_headers;

/// `#!::r=NAME,m=publish,...` (or a bare name): a request that parses names a valid stream.
pub(crate) fn srt_streamid(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(request) = streamid::parse(text) {
        assert!(streamid::valid_name(&request.name), "stream id {text:?} gave the invalid name {:?}", request.name);
    }
}

/// `PATH?QUERY` of a playlist or media request: a file name that parses is the one way to
/// write that file (a cache and a CDN see one URI per file), and the query's directives
/// parse or are refused with words a 400 can carry.
pub(crate) fn media_request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    for segment in path.split('/') {
        let _ = streamid::valid_name(segment);
        if let Some(requested) = MediaFile::parse(segment) {
            let canonical = match requested.kid {
                Some(kid) => match requested.file {
                    MediaFile::Init(n) => tessera_packager::names::protected_init(n, kid),
                    other => panic!("a key id on {other}"),
                },
                None => requested.file.to_string(),
            };
            assert_eq!(canonical, segment, "two names for one file");
        }
    }
    if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) {
        if let Err(e) = Directives::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            assert!(!e.message().is_empty());
        }
    }
}

/// `Upload-Length`, `Upload-Metadata` and `Upload-Checksum`, one per line.
pub(crate) fn tus_headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let length = lines.next();
    if tus_headers::length(length).is_ok() {
        assert!(length.is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())), "a length read from {length:?}");
    }
    if let Ok(metadata) = tus_headers::metadata(lines.next()) {
        assert!(metadata.get("sha256").is_none_or(|h| h.len() == 64));
    }
    if let Some(checksum) = lines.next() {
        let _ = tus_headers::checksum(checksum);
    }
}
