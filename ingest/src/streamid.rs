//! The SRT streamid: which stream a caller publishes, in the SRT access-control syntax
//! (`#!::r=live/NAME,m=publish,u=USER,t=TOKEN`, keys in any order) or the plain form
//! `live/NAME`.

use thiserror::Error;

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Publish,
    Request,
    Bidirectional,
}

/// A parsed streamid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// The stream name: `NAME` of `live/NAME`.
    pub name: String,
    pub mode: Mode,
    pub user: Option<String>,
    /// A publish token (`t=`, unless it carries one of the standard type values, or `s=`).
    pub token: Option<String>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StreamIdError {
    #[error("empty streamid")]
    Empty,
    #[error("malformed streamid: {0}")]
    Malformed(String),
    #[error("unsupported mode {0:?}")]
    UnsupportedMode(String),
    #[error("invalid stream name {0:?}: use 1-128 of A-Z a-z 0-9 _ - .")]
    BadName(String),
    #[error("unknown application {0:?}: streams are published under live/")]
    UnknownApp(String),
}

/// Whether a name is a valid stream name (used in URLs and file names as is).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn resource_name(resource: &str) -> Result<String, StreamIdError> {
    let name = match resource.split_once('/') {
        Some(("live", name)) => name,
        Some((app, _)) => return Err(StreamIdError::UnknownApp(app.to_string())),
        None => resource,
    };
    if !valid_name(name) {
        return Err(StreamIdError::BadName(name.to_string()));
    }
    Ok(name.to_string())
}

/// Parses a streamid. A missing `m=` key means `request`, as the SRT access-control
/// convention defines; the plain form means publish.
pub fn parse(stream_id: &str) -> Result<StreamRequest, StreamIdError> {
    let s = stream_id.trim_end_matches('\0').trim();
    if s.is_empty() {
        return Err(StreamIdError::Empty);
    }
    let Some(body) = s.strip_prefix("#!::") else {
        if s.starts_with('#') || s.contains(['=', ',', ' ']) {
            return Err(StreamIdError::Malformed(s.to_string()));
        }
        return Ok(StreamRequest { name: resource_name(s)?, mode: Mode::Publish, user: None, token: None });
    };
    let mut name = None;
    let mut mode = Mode::Request;
    let mut user = None;
    let mut token = None;
    for pair in body.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| StreamIdError::Malformed(pair.to_string()))?;
        match k.trim() {
            "r" => name = Some(resource_name(v.trim())?),
            "m" => {
                mode = match v.trim() {
                    "publish" => Mode::Publish,
                    "request" => Mode::Request,
                    "bidirectional" => Mode::Bidirectional,
                    other => return Err(StreamIdError::UnsupportedMode(other.to_string())),
                }
            }
            "u" => user = Some(v.to_string()),
            "t" if matches!(v, "stream" | "file" | "auth") => {}
            "t" | "s" => token = Some(v.to_string()),
            _ => {}
        }
    }
    let name = name.ok_or_else(|| StreamIdError::Malformed("no r= resource".into()))?;
    Ok(StreamRequest { name, mode, user, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_control_syntax_in_any_order() {
        let r = parse("#!::r=live/cam1,m=publish").unwrap();
        assert_eq!((r.name.as_str(), r.mode), ("cam1", Mode::Publish));
        let r = parse("#!::m=publish,t=s3cret,u=alice,r=live/cam-2.hd").unwrap();
        assert_eq!(r.name, "cam-2.hd");
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(r.token.as_deref(), Some("s3cret"));
        let r = parse("#!::r=cam3,m=publish,t=stream").unwrap();
        assert_eq!((r.name.as_str(), r.token), ("cam3", None));
    }

    #[test]
    fn plain_form_publishes() {
        let r = parse("live/news").unwrap();
        assert_eq!((r.name.as_str(), r.mode), ("news", Mode::Publish));
    }

    #[test]
    fn request_and_missing_mode_are_request() {
        assert_eq!(parse("#!::r=live/a,m=request").unwrap().mode, Mode::Request);
        assert_eq!(parse("#!::r=live/a").unwrap().mode, Mode::Request);
    }

    #[test]
    fn malformed_is_rejected() {
        assert_eq!(parse(""), Err(StreamIdError::Empty));
        assert!(matches!(parse("#!::m=publish"), Err(StreamIdError::Malformed(_))));
        assert!(matches!(parse("#!::r=live/a,garbage"), Err(StreamIdError::Malformed(_))));
        assert!(matches!(parse("#!::r=live/../etc,m=publish"), Err(StreamIdError::BadName(_))));
        assert!(matches!(parse("#!::r=vod/a,m=publish"), Err(StreamIdError::UnknownApp(_))));
        assert!(matches!(parse("#!::r=live/a,m=sideways"), Err(StreamIdError::UnsupportedMode(_))));
        assert!(matches!(parse("live/a b"), Err(StreamIdError::Malformed(_))));
        assert!(matches!(parse("live/"), Err(StreamIdError::BadName(_))));
    }
}
