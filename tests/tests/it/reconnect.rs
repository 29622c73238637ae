//! The life of a stream: a publisher that comes back gets a discontinuity; one that does
//! not, an ENDLIST.

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discontinuity_on_return_and_endlist_when_gone() {
    let node = node(|c| c.reconnect_grace_ms = 2500).await;
    let http = node.http_addr();
    publish_sample(&node, "cam", 1).await.unwrap();
    publish_sample(&node, "cam", 1).await.unwrap();
    let p = parse_media(&get(http, "/live/cam/src/index.m3u8").await.text());
    assert!(!p.ended);
    assert_eq!(p.discontinuities, 1, "one EXT-X-DISCONTINUITY where the publisher came back");
    assert_eq!(p.maps, vec!["init-0.mp4".to_string(), "init-1.mp4".to_string()]);
    // Sequence numbers carry on across the discontinuity.
    assert!(p.segments.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    // Nobody returns: the playlist ends once the grace has passed since the node saw the
    // publisher go (at once when its SRT shutdown arrives; a lost shutdown packet is only
    // seen at the idle timeout, 10 s).
    let p = crate::cluster::eventually(Duration::from_secs(15), "EXT-X-ENDLIST after the grace period", || async {
        let p = parse_media(&get(http, "/live/cam/src/index.m3u8").await.text());
        p.ended.then_some(p)
    })
    .await;
    assert!(p.preload_hint.is_none());
    // Blocking requests on an ended stream answer at once.
    let r = get(http, &format!("/live/cam/src/index.m3u8?_HLS_msn={}", p.segments.last().unwrap().0 + 1)).await;
    assert_eq!(r.status, 200);
    node.shutdown().await;
}
