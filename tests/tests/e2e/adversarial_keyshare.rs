//! A rogue member rotates the group key with a junk share for one victim, dated a little ahead
//! so that it becomes everyone's write epoch: only the victim can tell its share is junk. The
//! victim's node must keep the (validly signed) delivery without blaming whoever forwarded it,
//! get the key from an honest member within one sync session, read and write again, and show
//! who signed the junk share.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::api::{Event, Request, UnreadableShareView};
use lookout_node::replica::{now, Ingested};
use lookout_node::sync::{self, SyncRequest, SyncResponse};
use lookout_protocol::epoch::EpochKey;
use lookout_protocol::epoch::MAX_KEY_REQUEST_EPOCHS;
use lookout_protocol::membership::Policy;
use lookout_protocol::EpochId;
use lookout_tests::rogue::*;
use lookout_tests::*;
use rand::rngs::OsRng;
use tokio::sync::broadcast::error::RecvError;

/// Longer than one sync session between two nodes on loopback, far shorter than the patience
/// of the other tests: the victim must be served by the first session it runs.
const ONE_SYNC_ROUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_key_share_does_not_cut_the_victim_off() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let collective = Collective::named(&["vic", "ana", "bea", "rogue"], Policy::default());
        let (_dir, nodes, mut offline) = stage(collective, &[3]).await;
        let (vic, ana, bea) = (&nodes[0], &nodes[1], &nodes[2]);
        let mut rogue = offline.pop().unwrap();
        let rogue_id = rogue.identity().member_id();
        let peer = arm(&rogue, &nodes).await;
        let rejected_before = rejected_counts(&nodes).await;
        let mut events = vic.handle.watch().await.unwrap();

        let mut forger = Forger::new(&mut rogue);
        let key = EpochKey::generate(&mut OsRng);
        let heads = forger.heads();
        // Dated a minute ahead (within the clock skew allowed): the newest epoch everywhere.
        let junk = forger.rotation_with_junk_share(&key, heads, now() + 60, vic.member);
        // Pushed to the others only: the victim gets it from honest members, who cannot check
        // its share for the victim either.
        for node in [ana, bea] {
            let answer = peer
                .push(node.handle.peer_id(), std::slice::from_ref(&junk))
                .await;
            assert_eq!(answer, Ok((1, 0)), "{} takes the rotation", node.name);
        }
        for node in [ana, bea] {
            eventually("the rogue's epoch is the write epoch", || async {
                (node.status().await.epoch == Some(key.id().short())).then_some(())
            })
            .await;
        }

        // The next honest alert is written under the rogue's epoch.
        let alert = ana.post(draft("after the rogue's rotation", "")).await;
        let started = std::time::Instant::now();
        tokio::time::timeout(ONE_SYNC_ROUND, async {
            while !vic.has_alert(&alert).await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the victim reads the next honest alert within one sync round");
        eprintln!("the victim read the alert after {:?}", started.elapsed());
        assert_eq!(
            vic.status().await.epoch,
            Some(key.id().short()),
            "the victim holds the epoch and writes under it"
        );

        // The victim can write again, and the others read it.
        let reply = vic.post(draft("the victim posts again", "")).await;
        for node in [ana, bea] {
            eventually("the victim's alert arrives", || async {
                node.has_alert(&reply).await.then_some(())
            })
            .await;
        }

        // Nobody was blamed for forwarding a delivery only the victim could check.
        assert_eq!(rejected_counts(&nodes).await, rejected_before);
        for node in &nodes {
            assert_eq!(node.peers().await, 3, "{} keeps every peer", node.name);
        }

        // The victim (a moderator here: the founder) is shown who signed the junk share, in
        // the event stream `lookout run` prints and in `lookout status`.
        let reported = tokio::time::timeout(PATIENCE, async {
            loop {
                match events.recv().await {
                    Ok(Event::UnreadableKeyShare {
                        signer,
                        signer_name,
                        epoch,
                    }) => break (signer, signer_name, epoch),
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(e) => panic!("event stream ended: {e}"),
                }
            }
        })
        .await
        .expect("an event names the signer of the junk share");
        assert_eq!(
            reported,
            (rogue_id.to_hex(), "rogue".to_owned(), key.id().short())
        );
        let status = vic.status().await;
        assert!(status.is_moderator);
        assert_eq!(
            status.unreadable_key_shares,
            vec![UnreadableShareView {
                signer: rogue_id.to_hex(),
                signer_name: "rogue".into(),
                epoch: key.id().short(),
                recovered: true,
            }]
        );
        for node in [ana, bea] {
            assert!(node.status().await.unreadable_key_shares.is_empty());
        }
    })
    .await
    .expect("the scenario finishes in time");
}

/// Key requests served straight from a replica: who gets a key, and how often a new share is
/// made. (Through the node, a removed member's connection is refused at the gate, and a removed
/// member still being told of its removal gets membership ops only.)
#[test]
fn key_requests_give_keys_only_to_entitled_members_and_make_one_share_each() {
    let mut collective = Collective::named(&["founder", "vic", "rogue", "gone"], Policy::default());
    share_everything(&mut collective.replicas);
    let [founder, vic, rogue, gone] = &mut collective.replicas[..] else {
        unreachable!()
    };
    let vic_id = vic.identity().member_id();
    let gone_id = gone.identity().member_id();
    let key = EpochKey::generate(&mut OsRng);
    let heads = Forger::new(rogue).heads();
    let junk = Forger::new(rogue).rotation_with_junk_share(&key, heads, now(), vic_id);
    assert_eq!(founder.ingest(&junk).unwrap(), Ingested::Accepted);
    // The victim takes it too (no penalty), and lacks its key.
    assert_eq!(vic.ingest(&junk).unwrap(), Ingested::Accepted);
    assert_eq!(vic.lacking_epochs(), vec![key.id()]);

    // `gone` is removed: the rogue's epoch retires, the founder rotates.
    founder
        .execute(Request::Revoke {
            member: "gone".into(),
            reason: "left".into(),
        })
        .unwrap();
    let fresh = founder.write_epoch().unwrap();
    let mut replicas = collective.replicas;
    share_everything(&mut replicas);
    let [founder, vic, _rogue, gone] = &mut replicas[..] else {
        unreachable!()
    };
    let ask = |epochs: Vec<EpochId>| sync::encode(&SyncRequest::Keys { epochs });
    let items = |served: &sync::Served| match sync::decode::<SyncResponse>(&served.response) {
        Some(SyncResponse::Items { items }) => items,
        other => panic!("unexpected answer {other:?}"),
    };

    // The removed member asks for both epochs, as itself: nothing, and no new item made.
    let before = deliveries(founder).len();
    let served = sync::serve_from(founder, Some(gone_id), &ask(vec![key.id(), fresh]));
    assert!(items(&served).is_empty() && !served.misbehaved);
    // A stranger's key, and a peer whose id is no member key: nothing either.
    let stranger = fresh_identity(&tempfile::tempdir().unwrap().path().join("x"), "x");
    let served = sync::serve_from(
        founder,
        Some(stranger.identity().member_id()),
        &ask(vec![key.id(), fresh]),
    );
    assert!(items(&served).is_empty());
    let served = sync::serve_from(founder, None, &ask(vec![key.id(), fresh]));
    assert!(items(&served).is_empty());
    assert_eq!(deliveries(founder).len(), before);
    assert!(!epoch_keys(gone).contains_key(&fresh));

    // The victim asks for the retired epoch its share of was junk: it gets a share that opens.
    let served = sync::serve_from(founder, Some(vic_id), &ask(vec![key.id()]));
    let answer = items(&served);
    assert_eq!(answer.len(), 1);
    for item in &answer {
        assert_eq!(vic.ingest(item).unwrap(), Ingested::Accepted);
    }
    assert!(epoch_keys(vic).contains_key(&key.id()));
    assert!(vic.lacking_epochs().is_empty());
    // Asked again (a member can ask as often as it likes): the same share, no new item.
    let made = deliveries(founder).len();
    assert_eq!(made, before + 1);
    for _ in 0..20 {
        let served = sync::serve_from(founder, Some(vic_id), &ask(vec![key.id()]));
        assert_eq!(items(&served), answer);
    }
    assert_eq!(deliveries(founder).len(), made);

    // Too many epochs in one request is a fault.
    let many = (0..=MAX_KEY_REQUEST_EPOCHS).map(|_| key.id()).collect();
    assert!(sync::serve_from(founder, Some(vic_id), &ask(many)).misbehaved);
}
