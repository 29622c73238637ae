//! A playlist as one viewer gets it: the URIs it must follow carry that viewer's token
//! (key URIs, the multivariant's renditions) or the content's URL signature (media).

use std::collections::HashMap;

use axum::http::{header, HeaderMap};

/// What a viewer may add to a playback request, for the API document: the handlers read
/// these from the query as they come.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlaybackParams {
    /// The viewer's playback token (or the `tessera_token` cookie), for content that wants one.
    pub token: Option<String>,
    /// The URL signature of media of content with signed URLs, as its playlists write it.
    pub sig: Option<String>,
}

/// A playlist for a viewer who presented `token`: every URI the viewer must follow (the
/// multivariant's renditions, the media playlist's keys) carries it on. A token with
/// characters a URL would need escaped is not echoed.
pub fn with_token(body: String, token: Option<&str>) -> String {
    let Some(token) = token.filter(|t| {
        !t.is_empty() && t.len() <= 4096 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }) else {
        return body;
    };
    let mut out = String::with_capacity(body.len() + 256);
    for line in body.lines() {
        // Only this node's key URIs: a DRM provider's (`skd://`, `data:`) are its own.
        let ours = |(_, rest): &(&str, &str)| rest.starts_with("/license/");
        if let Some((head, rest)) = line.strip_prefix("#EXT-X-KEY:").and_then(|l| l.split_once("URI=\"")).filter(ours) {
            let end = rest.find('"').unwrap_or(rest.len());
            out.push_str(&format!("#EXT-X-KEY:{head}URI=\"{}?token={token}{}", &rest[..end], &rest[end..]));
        } else if !line.starts_with('#') && !line.is_empty() && line.ends_with(".m3u8") {
            out.push_str(&format!("{line}?token={token}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The token a viewer presents: `?token=`, or the `tessera_token` cookie.
pub fn viewer_token(query: &HashMap<String, String>, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("tessera_token=").map(str::to_string))
}

/// A media playlist whose media URIs (init segments, parts, segments, the preload hint)
/// carry the URL signature: the same for every viewer in the signing window.
pub fn with_signature(body: String, sig: &str) -> String {
    let media = |uri: &str| uri.ends_with(".m4s") || uri.ends_with(".mp4");
    let mut out = String::with_capacity(body.len() + 1024);
    for line in body.lines() {
        if let Some((head, rest)) = line.split_once("URI=\"") {
            let end = rest.find('"').unwrap_or(rest.len());
            if media(&rest[..end]) {
                out.push_str(&format!("{head}URI=\"{}?sig={sig}{}", &rest[..end], &rest[end..]));
            } else {
                out.push_str(line);
            }
        } else if !line.starts_with('#') && media(line) {
            out.push_str(&format!("{line}?sig={sig}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_uris_carry_the_signature_and_key_uris_the_token() {
        let playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"/license/live/a/k\",KEYFORMAT=\"identity\"\n#EXT-X-PART:DURATION=0.2,URI=\"part-4.m4s\",INDEPENDENT=YES\n#EXTINF:2.0,\nseg-1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-5.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=1\n";
        let signed = with_token(with_signature(playlist.to_string(), "S1g"), Some("T0k.en"));
        assert!(signed.contains("#EXT-X-MAP:URI=\"init-0.mp4?sig=S1g\"\n"), "{signed}");
        assert!(signed.contains("URI=\"part-4.m4s?sig=S1g\",INDEPENDENT=YES\n"), "{signed}");
        assert!(signed.contains("\nseg-1.m4s?sig=S1g\n"), "{signed}");
        assert!(signed.contains("URI=\"part-5.m4s?sig=S1g\"\n"), "{signed}");
        assert!(signed.contains("URI=\"/license/live/a/k?token=T0k.en\",KEYFORMAT"), "{signed}");
        assert!(signed.contains("URI=\"../480p/index.m3u8\",LAST-MSN=1"), "reports are left alone: {signed}");
        let fairplay = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n";
        assert_eq!(with_token(fairplay.to_string(), Some("tok")), fairplay, "a provider's key URI is its own");
        // A token a URL would need escaped is not echoed into the playlist.
        assert_eq!(with_token(playlist.to_string(), Some("a\"b")), playlist);
        let mv = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n";
        assert!(with_token(mv.to_string(), Some("tok")).contains("\nsrc/index.m3u8?token=tok\n"));
    }
}
