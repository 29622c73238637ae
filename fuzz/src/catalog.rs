//! Catalog commands as JSON, the way the admin API's bodies become proposals: a sequence
//! applied to one catalog.

use tessera_raft::{Catalog, Outcome, Proposal};

/// A JSON array of proposals, applied in order: a rejected command changes nothing, the
/// same sequence gives the same catalog twice (every node applies the log alike), and the
/// catalog survives a snapshot (JSON, as the store writes it) unchanged, and every command
/// survives the wire (postcard, as log entries travel) unchanged.
pub(crate) fn commands(data: &[u8]) {
    let Ok(proposals) = serde_json::from_slice::<Vec<Proposal>>(data) else { return };
    let mut catalog = Catalog::default();
    let mut outcomes = Vec::with_capacity(proposals.len());
    for p in &proposals {
        let before = catalog.clone();
        let outcome = catalog.apply(p);
        if let Outcome::Rejected(why) = &outcome {
            assert_eq!(catalog, before, "a rejected command ({why}) changed the catalog: {p:?}");
        }
        outcomes.push(outcome);
    }
    let mut again = Catalog::default();
    let replayed: Vec<Outcome> = proposals.iter().map(|p| again.apply(p)).collect();
    assert_eq!(replayed, outcomes, "the same log gave other outcomes");
    assert_eq!(again, catalog, "the same log gave another catalog");
    for p in &proposals {
        let entry = postcard::to_allocvec(p).expect("a proposal serialises");
        assert_eq!(&postcard::from_bytes::<Proposal>(&entry).expect("a log entry reads back"), p);
    }
    let snapshot = serde_json::to_vec(&catalog).expect("a catalog serialises");
    let restored: Catalog = serde_json::from_slice(&snapshot).expect("a snapshot reads back");
    assert_eq!(restored, catalog, "a snapshot changed the catalog");
}
