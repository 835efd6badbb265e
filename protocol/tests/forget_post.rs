//! [`State::forget_post`]: a post the caller's store lost (a damaged pack, a failed write) is
//! no longer claimed, so sync fetches it again and it is taken in afresh; a post already
//! deleted (expired) is not brought back by it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::replica::{Ingested, Refusal, SetKind, State};
use lookout_protocol::ContentId;

mod order_world;
use order_world::*;

/// A replica (member `r`) holding the admissions and the rotation.
fn replica(w: &World) -> State {
    let mut state = State::new(w.genesis.clone());
    for op in &w.admissions {
        let step = state.ingest(SetKind::Ops, op.encoded(), &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Accepted);
    }
    let step = state.ingest(SetKind::Deliveries, w.rotation.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);
    state
}

fn claimed(state: &mut State) -> Vec<[u8; 32]> {
    state
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect()
}

/// m's day is full (the policy's 50 posts); one of them is lost by the store and forgotten:
/// it leaves the reconciliation set and the duplicate check, and when sync brings it again it
/// is taken in (its quota place was given back, so it is not refused over the quota), while a
/// 51st post stays refused. Forgetting what is not held changes nothing.
#[test]
fn a_forgotten_post_is_no_longer_claimed_and_is_taken_in_again() {
    let mut w = World::new(41);
    let mut state = replica(&w);
    let co = w.collective();
    let heads = vec![w.admissions[2].id()];
    let posts: Vec<Vec<u8>> = (0..52)
        .map(|i| {
            alert(
                &w.key,
                co,
                &w.m,
                heads.clone(),
                i + 1,
                &format!("alert {i}"),
                &mut w.rng,
            )
        })
        .collect();
    for bytes in &posts[..50] {
        let step = state.ingest(SetKind::Envelopes, bytes, &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Accepted);
    }
    let over = state.ingest(SetKind::Envelopes, &posts[50], &w.r, NOW);
    assert_eq!(over.outcome, Ingested::Ignored(Refusal::OverQuota));
    let lost = ContentId(SetKind::Envelopes.id_of(&posts[7]));
    assert!(claimed(&mut state).contains(&lost.0));

    let meta = state.forget_post(&lost).expect("it was held");
    assert_eq!(meta.author, w.m.member_id());
    assert!(!claimed(&mut state).contains(&lost.0), "still claimed");
    assert_eq!(claimed(&mut state).len(), 49);
    assert!(state.posts().get(&lost).is_none());
    assert!(state.forget_post(&lost).is_none(), "forgotten twice");
    assert!(state.forget_post(&ContentId([9; 32])).is_none());

    // Sync brings it again: judged afresh, taken in, claimed again.
    let again = state.ingest(SetKind::Envelopes, &posts[7], &w.r, NOW);
    assert_eq!(again.outcome, Ingested::Accepted, "not taken in again");
    assert!(claimed(&mut state).contains(&lost.0));
    assert_eq!(
        state
            .ingest(SetKind::Envelopes, &posts[7], &w.r, NOW)
            .outcome,
        Ingested::Duplicate
    );
    // Its author's day is as full as before: no extra place.
    let over = state.ingest(SetKind::Envelopes, &posts[51], &w.r, NOW);
    assert_eq!(over.outcome, Ingested::Ignored(Refusal::OverQuota));
}

/// A post deleted by expiry is not brought back: `forget_post` does nothing to what is not
/// held, and a post forgotten (lost) that has expired when sync brings it is refused.
#[test]
fn forgetting_brings_back_no_expired_post() {
    let mut w = World::new(42);
    let mut state = replica(&w);
    let co = w.collective();
    let heads = vec![w.admissions[2].id()];
    let a = alert(&w.key, co, &w.m, heads.clone(), 1, "expires", &mut w.rng);
    let b = alert(&w.key, co, &w.m, heads, 2, "lost then expired", &mut w.rng);
    for bytes in [&a, &b] {
        let step = state.ingest(SetKind::Envelopes, bytes, &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Accepted);
    }
    let (ida, idb) = (
        ContentId(SetKind::Envelopes.id_of(&a)),
        ContentId(SetKind::Envelopes.id_of(&b)),
    );
    assert!(state.forget_post(&idb).is_some());
    let later = START + 600 + 86_400;
    let deleted = state.expire(later);
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(
        state.forget_post(&ida).is_none(),
        "an expired post forgotten"
    );
    for bytes in [&a, &b] {
        let step = state.ingest(SetKind::Envelopes, bytes, &w.r, later);
        assert_eq!(step.outcome, Ingested::Ignored(Refusal::Expired));
    }
    assert!(claimed(&mut state).is_empty());
}
