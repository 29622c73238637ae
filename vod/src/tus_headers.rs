//! The tus request headers a client sends, read here and nowhere else (sans-IO):
//! `Upload-Length`, `Upload-Metadata` and `Upload-Checksum`. Each refusal names the header
//! and a code the answer carries.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY, SHA256};

/// Why a header is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TusHeaderError {
    #[error("Upload-Length (bytes) is required")]
    Length,
    #[error("metadata {0:?} is not base64")]
    MetadataBase64(String),
    #[error("metadata {0:?} is not UTF-8")]
    MetadataUtf8(String),
    #[error("metadata sha256 must be 64 hex digits")]
    MetadataSha256,
    #[error("{0:?}: sha256 or sha1")]
    ChecksumAlgorithm(String),
    #[error("Upload-Checksum's digest is not base64")]
    ChecksumDigest,
}

impl TusHeaderError {
    /// The code of the answer's error body.
    pub fn code(&self) -> &'static str {
        match self {
            TusHeaderError::Length => "upload_length",
            TusHeaderError::MetadataBase64(_) | TusHeaderError::MetadataUtf8(_) | TusHeaderError::MetadataSha256 => {
                "metadata"
            }
            TusHeaderError::ChecksumAlgorithm(_) => "checksum_algorithm",
            TusHeaderError::ChecksumDigest => "checksum",
        }
    }
}

/// `Upload-Length`: decimal digits only.
pub fn length(raw: Option<&str>) -> Result<u64, TusHeaderError> {
    let raw = raw.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).ok_or(TusHeaderError::Length)?;
    raw.parse().map_err(|_| TusHeaderError::Length)
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
/// A `sha256` entry must be 64 hex digits.
pub fn metadata(raw: Option<&str>) -> Result<BTreeMap<String, String>, TusHeaderError> {
    let mut out = BTreeMap::new();
    for pair in raw.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = B64.decode(value.trim()).map_err(|_| TusHeaderError::MetadataBase64(key.to_string()))?;
        let value = String::from_utf8(value).map_err(|_| TusHeaderError::MetadataUtf8(key.to_string()))?;
        out.insert(key.to_string(), value);
    }
    if out.get("sha256").is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(TusHeaderError::MetadataSha256);
    }
    Ok(out)
}

/// `Upload-Checksum: ALGORITHM BASE64`: a digest context to feed the body to, and the
/// digest it must end with.
pub fn checksum(raw: &str) -> Result<(Context, Vec<u8>), TusHeaderError> {
    let (algo, digest) = raw.split_once(' ').unwrap_or((raw, ""));
    let context = match algo {
        "sha256" => Context::new(&SHA256),
        "sha1" => Context::new(&SHA1_FOR_LEGACY_USE_ONLY),
        _ => return Err(TusHeaderError::ChecksumAlgorithm(algo.to_string())),
    };
    let digest = B64.decode(digest.trim()).map_err(|_| TusHeaderError::ChecksumDigest)?;
    Ok((context, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_and_refused_by_name() {
        assert_eq!(length(Some("1024")), Ok(1024));
        assert_eq!(length(Some("-1")), Err(TusHeaderError::Length));
        assert_eq!(length(None), Err(TusHeaderError::Length));
        let m = metadata(Some("filename ZmlsbS5tcDQ=, keep_source")).unwrap();
        assert_eq!(m["filename"], "film.mp4");
        assert_eq!(m["keep_source"], "");
        assert_eq!(metadata(Some("title !!")), Err(TusHeaderError::MetadataBase64("title".into())));
        assert_eq!(metadata(Some("sha256 YWJj")), Err(TusHeaderError::MetadataSha256));
        assert!(checksum("sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=").is_ok());
        assert_eq!(checksum("md5 xx").err(), Some(TusHeaderError::ChecksumAlgorithm("md5".into())));
        assert_eq!(checksum("sha256 %%").err(), Some(TusHeaderError::ChecksumDigest));
    }
}
