use tessera_raft::{Command, Proposal, Protection};

use super::*;
use crate::regions::RegionTable;
use crate::token::TokenKey;

const CONTENT: &str = "live/match";

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    let mut apply = |command| c.apply(&Proposal { at_ms: 0, command });
    apply(Command::SetProtection { content: CONTENT.into(), mode: Protection::Aes128 });
    let key = KeyRecord { kid: "01".repeat(16), wrapped: "ab".repeat(44), from_msn: 0, created_ms: 0, drm: vec![] };
    apply(Command::AddKey { content: CONTENT.into(), key });
    c
}

fn claims(max_streams: Option<u32>, regions: Option<Vec<&str>>) -> Claims {
    Claims {
        sub: "viewer-7".into(),
        content: CONTENT.into(),
        exp: 1_000,
        iat: 0,
        regions: regions.map(|r| r.iter().map(|s| s.to_string()).collect()),
        max_streams,
    }
}

static TABLE: std::sync::LazyLock<RegionTable> =
    std::sync::LazyLock::new(|| RegionTable::parse(&["10.0.0.0/8=eu", "192.0.2.0/24=us"].map(String::from)));

fn request<'a>(token: &'a str, client: &str, now_ms: i64) -> LicenseRequest<'a> {
    let client = client.parse().unwrap();
    LicenseRequest {
        content: CONTENT,
        kid: "01010101010101010101010101010101",
        token: Some(token),
        client,
        region: TABLE.region_of(client),
        now_ms,
        released: true,
    }
}

#[test]
fn a_valid_token_gets_the_key_and_each_rule_refuses_with_its_reason() {
    let own = TokenKey::new(b"secret");
    let keys = Verifier { own: &own, jwks: None };
    let mut c = catalog();
    let token = own.sign(&claims(None, None));
    let grant = decide(&c, &keys, &request(&token, "10.1.1.1", 500_000)).unwrap();
    assert_eq!((grant.key.kid.as_str(), grant.claims.sub.as_str()), ("01".repeat(16).as_str(), "viewer-7"));
    assert_eq!(grant.stream, None, "no limit, nothing to count");

    let refused = |c: &Catalog, req: LicenseRequest| decide(c, &keys, &req).unwrap_err();
    let mut no_token = request(&token, "10.1.1.1", 500_000);
    no_token.token = None;
    assert_eq!(refused(&c, no_token).status(), 401);
    assert_eq!(refused(&c, request(&token, "10.1.1.1", 1_000_000)).code(), "token_expired");
    assert_eq!(refused(&c, request("abc.AAAA", "10.1.1.1", 0)).code(), "token_signature");
    let mut other = request(&token, "10.1.1.1", 0);
    other.content = "live/other";
    assert_eq!(refused(&c, other).code(), "token_wrong_content");
    let mut gated = request(&token, "10.1.1.1", 0);
    gated.released = false;
    assert_eq!(refused(&c, gated), Denial::NotReleased);
    let mut unknown_kid = request(&token, "10.1.1.1", 0);
    unknown_kid.kid = "02020202020202020202020202020202";
    assert_eq!(refused(&c, unknown_kid).status(), 404);
    c.apply(&Proposal { at_ms: 1, command: Command::RevokeSubject { subject: "viewer-7".into(), revoked: true } });
    assert_eq!(refused(&c, request(&token, "10.1.1.1", 0)), Denial::Revoked, "revocation takes effect at once");
}

#[test]
fn regions_come_from_the_content_rights_and_the_token_both() {
    let own = TokenKey::new(b"secret");
    let keys = Verifier { own: &own, jwks: None };
    let mut c = catalog();
    c.apply(&Proposal {
        at_ms: 1,
        command: Command::SetRights { content: CONTENT.into(), regions: vec!["eu".into()] },
    });
    let anywhere = own.sign(&claims(None, None));
    assert!(decide(&c, &keys, &request(&anywhere, "10.2.3.4", 0)).is_ok());
    assert_eq!(decide(&c, &keys, &request(&anywhere, "192.0.2.9", 0)).unwrap_err(), Denial::Region("us".into()));
    assert_eq!(decide(&c, &keys, &request(&anywhere, "203.0.113.1", 0)).unwrap_err(), Denial::Region("unknown".into()));
    // The token narrows further: eu rights, but this viewer's token says us only.
    let us_only = own.sign(&claims(None, Some(vec!["us"])));
    assert_eq!(decide(&c, &keys, &request(&us_only, "10.2.3.4", 0)).unwrap_err(), Denial::Region("eu".into()));
}

#[test]
fn a_token_replayed_beyond_its_stream_limit_is_refused_until_a_stream_goes_idle() {
    let own = TokenKey::new(b"secret");
    let keys = Verifier { own: &own, jwks: None };
    let c = catalog();
    let mut s = Sessions::default();
    let token = own.sign(&claims(Some(2), None));
    let ask = |s: &mut Sessions, ip: &str, at: i64| {
        let grant = decide(&c, &keys, &request(&token, ip, at))?;
        let claim = grant.stream.expect("a limited token is counted");
        assert_eq!((claim.subject.as_str(), claim.limit), ("viewer-7", 2));
        assert!(!claim.stream.contains(&token), "the token stays on the node");
        s.admit(&claim)
    };
    assert_eq!(ask(&mut s, "10.0.0.1", 0), Ok(()));
    assert_eq!(ask(&mut s, "10.0.0.2", 1_000), Ok(()));
    assert_eq!(ask(&mut s, "10.0.0.1", 2_000), Ok(()), "the same stream asking again");
    assert_eq!(ask(&mut s, "10.0.0.3", 3_000), Err(Denial::StreamLimit(2)), "a third device");
    // The first stream stops asking; once idle it no longer counts.
    assert_eq!(ask(&mut s, "10.0.0.2", SESSION_IDLE_MS), Ok(()));
    assert_eq!(ask(&mut s, "10.0.0.3", 2_000 + SESSION_IDLE_MS), Ok(()));
    s.prune(10 * SESSION_IDLE_MS);
    assert!(s.by_subject.is_empty());
}

#[test]
fn every_node_ranks_the_same_counting_nodes_for_a_subject_and_subjects_spread() {
    let order = counting_nodes("viewer-7", [1, 2, 3, 4, 5]);
    assert_eq!(order, counting_nodes("viewer-7", [5, 3, 1, 4, 2]), "the order does not depend on who asks");
    assert_eq!(order.len(), 5);
    // Removing a node that is not first keeps the first: subjects stay where they are counted.
    let without: Vec<_> = [1, 2, 3, 4, 5].into_iter().filter(|n| *n != order[4]).collect();
    assert_eq!(counting_nodes("viewer-7", without)[0], order[0]);
    let firsts: std::collections::BTreeSet<_> =
        (0..200).map(|i| counting_nodes(&format!("viewer-{i}"), [1, 2, 3, 4, 5])[0]).collect();
    assert_eq!(firsts.len(), 5, "200 subjects are counted on every node, not one");
}
