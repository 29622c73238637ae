//! How long a cache may keep what a node serves: never past the content's rights, sans-IO.
//!
//! - Content with a region rule is `private`: a shared cache (a CDN) does not know where
//!   its next viewer is, so it must not answer for the origin.
//! - Content whose release has an end (a takedown) is kept at most until that end.
//! - Media of content with signed URLs is kept at most until the end of the current
//!   signing window: its URL's signature may stop being accepted then.
//! - Otherwise media is `immutable` for a year, and playlists keep their own lifetime.

/// What bounds a content's cache lifetime now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// The content's rights name regions.
    pub regions: bool,
    /// The content signs its media URLs.
    pub signed_urls: bool,
    /// When its release takes it down, milliseconds since the Unix epoch.
    pub ends_ms: Option<i64>,
}

/// What is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// An init segment, part or segment: the same bytes forever under its URL.
    Media,
    /// A playlist whose own lifetime is `max_age_s` (0: revalidate every time).
    Playlist { max_age_s: u64 },
}

const YEAR_S: u64 = 31_536_000;

/// Media of content its rights do not bound: the answer of almost every media request.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The `Cache-Control` value for `object` of content bounded by `bounds`, at `now_ms`.
pub fn cache_control(bounds: Bounds, object: Object, now_ms: i64) -> String {
    let mut max_age = match object {
        Object::Media => YEAR_S,
        Object::Playlist { max_age_s } => max_age_s,
    };
    let mut bounded = false;
    if let Some(end) = bounds.ends_ms {
        max_age = max_age.min(((end - now_ms).max(0) / 1000) as u64);
        bounded = true;
    }
    if bounds.signed_urls && object == Object::Media {
        let now_s = now_ms.div_euclid(1000);
        let window_ends = (crate::token::url_window(now_s) + 1) * crate::token::URL_WINDOW_S;
        max_age = max_age.min((window_ends - now_s).max(0) as u64);
        bounded = true;
    }
    let scope = if bounds.regions { "private" } else { "public" };
    match object {
        Object::Playlist { max_age_s: 0 } => format!("{}no-cache", if bounds.regions { "private, " } else { "" }),
        Object::Media if !bounded => format!("{scope}, max-age={max_age}, immutable"),
        _ => format!("{scope}, max-age={max_age}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::URL_WINDOW_S;

    #[test]
    fn no_lifetime_outlives_the_rights() {
        let now = 1_000 * URL_WINDOW_S * 1000 + 100_000; // 100 s into a signing window
        let open = Bounds::default();
        assert_eq!(cache_control(open, Object::Media, now), "public, max-age=31536000, immutable");
        assert_eq!(cache_control(open, Object::Playlist { max_age_s: 60 }, now), "public, max-age=60");
        assert_eq!(cache_control(open, Object::Playlist { max_age_s: 0 }, now), "no-cache");
        // A region rule: no shared cache.
        let limited = Bounds { regions: true, ..open };
        assert_eq!(cache_control(limited, Object::Media, now), "private, max-age=31536000, immutable");
        assert_eq!(cache_control(limited, Object::Playlist { max_age_s: 0 }, now), "private, no-cache");
        // A takedown in 90.5 s: 90 s at most, media no longer immutable.
        let ending = Bounds { ends_ms: Some(now + 90_500), ..open };
        assert_eq!(cache_control(ending, Object::Media, now), "public, max-age=90");
        assert_eq!(cache_control(ending, Object::Playlist { max_age_s: 60 }, now), "public, max-age=60");
        let ended = Bounds { ends_ms: Some(now - 1), ..open };
        assert_eq!(cache_control(ended, Object::Media, now), "public, max-age=0");
        // Signed media: until the signing window ends (500 s away), whichever is sooner.
        let signed = Bounds { signed_urls: true, ..open };
        assert_eq!(cache_control(signed, Object::Media, now), format!("public, max-age={}", URL_WINDOW_S - 100));
        assert_eq!(
            cache_control(Bounds { ends_ms: Some(now + 30_000), ..signed }, Object::Media, now),
            "public, max-age=30"
        );
    }
}
