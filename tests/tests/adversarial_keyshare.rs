//! A rogue member rotates the group key with a junk share for one victim, dated a little ahead
//! so that it becomes everyone's write epoch: only the victim can tell its share is junk. The
//! victim's node must keep the (validly signed) delivery without blaming whoever forwarded it,
//! get the key from an honest member within one sync session, read and write again, and show
//! who signed the junk share.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::api::{Event, UnreadableShareView};
use lookout_node::replica::now;
use lookout_protocol::epoch::EpochKey;
use lookout_protocol::membership::Policy;
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
