//! How long the node takes to answer, per class of route: a histogram,
//! `tessera_http_request_duration_seconds{class, code}`, whose label set is bounded (seven
//! classes, five status classes) whatever the paths asked for.
//!
//! The time is from the request's arrival to its response head: for a blocking playlist
//! reload or a preload-hinted part it includes the wait for the media (what the player
//! waits), and for a segment it is the time to first byte, not the transfer.

use std::time::Instant;

/// What a request asks for, as the latency objectives group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// A playlist answered at once (multivariant, media, DVR).
    Playlist,
    /// A media playlist reload held until the segment or part it names exists (`_HLS_msn`).
    BlockingPlaylist,
    /// An LL-HLS part.
    Part,
    /// A whole segment or an initialization segment.
    Segment,
    /// A content key or a ClearKey license.
    Key,
    /// The admin API, uploads included.
    Api,
    /// Everything else: metrics, health, the console, the stream list.
    Other,
}

impl RouteClass {
    /// The class of a request for `path` with `query`.
    pub fn of(path: &str, query: Option<&str>) -> RouteClass {
        if path.starts_with("/license/") {
            return RouteClass::Key;
        }
        if path.starts_with("/api/") {
            return RouteClass::Api;
        }
        let media = path.starts_with("/live/") || path.starts_with("/vod/");
        let file = path.rsplit('/').next().unwrap_or("");
        if media && file.ends_with(".m3u8") {
            let blocking = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("_HLS_msn=")));
            return if blocking { RouteClass::BlockingPlaylist } else { RouteClass::Playlist };
        }
        if media && file.starts_with("part-") {
            return RouteClass::Part;
        }
        if media && (file.ends_with(".m4s") || file.ends_with(".mp4")) {
            return RouteClass::Segment;
        }
        RouteClass::Other
    }

    pub fn label(self) -> &'static str {
        match self {
            RouteClass::Playlist => "playlist",
            RouteClass::BlockingPlaylist => "blocking_playlist",
            RouteClass::Part => "part",
            RouteClass::Segment => "segment",
            RouteClass::Key => "key",
            RouteClass::Api => "api",
            RouteClass::Other => "other",
        }
    }
}

/// `2xx` for 200, and so on.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Records a request of `class`, begun at `started`, whose response head is ready now.
pub fn record(class: RouteClass, status: axum::http::StatusCode, started: Instant) {
    metrics::histogram!(
        "tessera_http_request_duration_seconds",
        "class" => class.label(),
        "code" => status_class(status.as_u16()),
    )
    .record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::RouteClass::{self, *};

    #[test]
    fn requests_are_classed_by_what_they_ask_for() {
        let cases: &[(&str, Option<&str>, RouteClass)] = &[
            ("/live/news/index.m3u8", None, Playlist),
            ("/live/news/720p/index.m3u8", Some("_HLS_skip=YES"), Playlist),
            ("/live/news/720p/index.m3u8", Some("_HLS_msn=12&_HLS_part=3"), BlockingPlaylist),
            ("/live/news/dvr.m3u8", None, Playlist),
            ("/vod/film/index.m3u8", None, Playlist),
            ("/live/news/720p/part-1234.m4s", None, Part),
            ("/live/news/720p/seg-12.m4s", None, Segment),
            ("/live/news/720p/init-0.mp4", None, Segment),
            ("/vod/film/480p/seg-3.m4s", Some("token=x"), Segment),
            ("/license/live/news/0123", None, Key),
            ("/license/clearkey/vod/film", None, Key),
            ("/api/v1/streams", None, Api),
            ("/api/v1/uploads/abc", None, Api),
            ("/metrics", None, Other),
            ("/readyz", None, Other),
            ("/part-1.m4s", None, Other),
            ("/console/", None, Other),
        ];
        for (path, query, class) in cases {
            assert_eq!(RouteClass::of(path, *query), *class, "{path}?{query:?}");
        }
    }

    #[test]
    fn status_codes_fold_into_five_classes() {
        assert_eq!(super::status_class(200), "2xx");
        assert_eq!(super::status_class(304), "3xx");
        assert_eq!(super::status_class(404), "4xx");
        assert_eq!(super::status_class(503), "5xx");
        assert_eq!(super::status_class(999), "5xx");
    }
}
