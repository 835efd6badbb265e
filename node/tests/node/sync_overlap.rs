//! A member coming back while two others connect at once gets each missed post about once, not
//! once per session: CI caught `offline_catch_up` receiving 1.69 times the bytes of what the
//! returning node lacked, its own session fetching the posts while the other member's session
//! pushed the same ones. Here the two sessions run step by step, interleaved, with no network.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use lookout_node::replica::{Replica, SetKind};
use lookout_node::sync::{self, Session, Step, SyncRequest};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;

use crate::node_targets::{draft, wire_items};

const PASSPHRASE: &[u8] = b"overlap passphrase";
/// Posts the returning member missed (several fetches and pushes each).
const MISSED: usize = 900;

fn replica(dir: &Path, name: &str) -> Replica {
    Replica::create(&dir.join(name), PASSPHRASE, name, KdfParams::TESTING)
        .unwrap()
        .0
}

/// Every item of `kinds` that `from` holds, into `to`.
fn copy(from: &mut Replica, to: &mut Replica, kinds: &[SetKind]) {
    let items: Vec<_> = wire_items(from)
        .into_iter()
        .filter(|i| kinds.contains(&i.kind))
        .collect();
    sync::ingest_all(to, &items);
    let _ = to.retry_held();
}

/// Ana (back from a trip) lacks `MISSED` posts of Bea's; Bea and Cy both hold them.
fn world(dir: &Path) -> (Replica, Replica, Replica) {
    let mut ana = replica(dir, "Ana");
    ana.create_collective(
        "Overlap",
        Policy {
            posts_per_day: 2000,
            ..Policy::default()
        },
    )
    .unwrap();
    let mut bea = replica(dir, "Bea");
    let mut cy = replica(dir, "Cy");
    for member in [&mut bea, &mut cy] {
        let view = ana.approve(&member.join_request().to_code()).unwrap();
        member.join(&view.invite.unwrap()).unwrap();
    }
    let state = [SetKind::Ops, SetKind::Deliveries];
    copy(&mut ana, &mut bea, &state);
    copy(&mut ana, &mut cy, &state);
    for n in 0..MISSED {
        bea.post(draft(&format!("missed alert {n}"))).unwrap();
    }
    copy(&mut bea, &mut cy, &SetKind::ORDER);
    copy(&mut bea, &mut ana, &state);
    (ana, bea, cy)
}

/// Bytes of the posts `replica` holds.
fn envelope_bytes(replica: &mut Replica) -> usize {
    wire_items(replica)
        .iter()
        .filter(|i| i.kind == SetKind::Envelopes)
        .map(|i| i.bytes.len())
        .sum()
}

#[test]
fn a_returning_member_syncing_with_two_at_once_gets_each_post_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, mut bea, mut cy) = world(dir.path());
    assert_eq!(ana.sync_items(SetKind::Envelopes).len(), 0);

    // Ana's own session with Bea (it fetches), and Cy's with Ana (it pushes), a step each in
    // turn. Ana counts what she receives: Bea's responses and Cy's requests.
    let mut received = 0;
    let (mut fetching, first) = Session::start(&mut ana);
    let (mut pushing, second) = Session::start(&mut cy);
    let mut steps = [Some(first), Some(second)];
    let mut rounds = 0;
    while steps.iter().any(Option::is_some) {
        rounds += 1;
        assert!(rounds < 1000, "the sessions do not end");
        if let Some(step) = steps[0].take() {
            steps[0] = match step {
                Step::Send(request) => {
                    let response = sync::serve(&mut bea, &request).response;
                    received += response.len();
                    Some(fetching.advance(&mut ana, &response))
                }
                Step::Done => None,
                Step::Abort(why) => panic!("Ana's session failed: {why}"),
            };
        }
        if let Some(step) = steps[1].take() {
            steps[1] = match step {
                Step::Send(request) => {
                    received += request.len();
                    let response = sync::serve(&mut ana, &request).response;
                    Some(pushing.advance(&mut cy, &response))
                }
                Step::Done => None,
                Step::Abort(why) => panic!("Cy's session failed: {why}"),
            };
        }
    }

    assert_eq!(ana.sync_items(SetKind::Envelopes).len(), MISSED);
    let lacked = envelope_bytes(&mut ana);
    let ratio = received as f64 / lacked as f64;
    println!("received {received} bytes for {lacked} bytes of posts ({ratio:.2}x)");
    assert!(
        ratio < 1.3,
        "received {received} bytes for {lacked} bytes of posts ({ratio:.2}x)"
    );
    // Cy stopped pushing what Ana was getting from Bea, so Cy's session does not count as
    // having delivered everything (its own posts could have been among those left).
    assert!(!pushing.pushed_everything());
    assert!(fetching.pushed_everything());
}

#[test]
fn a_fetch_leaves_out_what_arrived_since_the_reconciliation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, mut bea, mut cy) = world(dir.path());
    let (mut session, mut step) = Session::start(&mut ana);
    let mut fetched = Vec::new();
    let mut arrived = false;
    loop {
        let request = match step {
            Step::Send(request) => request,
            Step::Done => break,
            Step::Abort(why) => panic!("{why}"),
        };
        if let Some(SyncRequest::Fetch {
            kind: SetKind::Envelopes,
            ids,
        }) = sync::decode(&request)
        {
            fetched.extend(ids);
            if !arrived {
                // Between the first fetch and the next: every post, from Cy.
                copy(&mut cy, &mut ana, &[SetKind::Envelopes]);
                arrived = true;
            }
        }
        let response = sync::serve(&mut bea, &request).response;
        step = session.advance(&mut ana, &response);
    }
    assert!(arrived);
    assert_eq!(
        fetched.len(),
        sync::MAX_FETCH_IDS,
        "one fetch, then nothing: the rest had arrived"
    );
    assert_eq!(ana.sync_items(SetKind::Envelopes).len(), MISSED);
}
