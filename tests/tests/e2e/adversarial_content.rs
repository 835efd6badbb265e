//! Members attacking other members' posts, through real nodes: moderators who lost their rights
//! still retracting, and a member re-wrapping someone else's signed alert in fresh encryption to
//! multiply it, burn its author's daily quota and bring it back after it was retracted. Each
//! attack goes to every node by sync push and by gossip; the nodes' lists, `check` and stores
//! are read at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use lookout_node::api::{Request, Response};
use lookout_node::replica::{now, Replica, WireItem};
use lookout_protocol::content::Content;
use lookout_protocol::envelope;
use lookout_protocol::membership::Policy;
use lookout_protocol::ContentId;
use lookout_tests::rogue::*;
use lookout_tests::*;

/// A retraction of `target` signed by the member of `replica` at the state it holds now, under
/// its write epoch, living as long as the target.
fn retraction(replica: &mut Replica, target: ContentId) -> WireItem {
    let expires = expiry_of(replica, target);
    let mut forger = Forger::new(replica);
    let key = forger.write_key();
    let heads = forger.heads();
    forger.post(
        &key,
        heads,
        now(),
        expires,
        Content::Retraction {
            target,
            reason: "never happened".into(),
        },
    )
}

fn expiry_of(replica: &mut Replica, target: ContentId) -> u64 {
    held_posts(replica)
        .into_iter()
        .find(|(id, _)| *id == target)
        .and_then(|(_, opened)| opened)
        .expect("the target is held")
        .body
        .expires
}

fn post_offline(replica: &mut Replica, text: &str, phone: &str) -> ContentId {
    replica.post(draft(text, phone)).unwrap()
}

async fn shown_unretracted(node: &TestNode, id: ContentId) -> bool {
    node.alerts().await.iter().any(|a| a.id == id.to_hex())
}

async fn checked(node: &TestNode, term: &str) -> BTreeSet<String> {
    match node
        .execute(Request::Check {
            term: term.to_owned(),
        })
        .await
    {
        Response::Alerts { alerts } => alerts.into_iter().map(|a| a.id).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retractions_by_demoted_or_removed_moderators_do_not_count() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut collective = Collective::named(
            &["founder", "ana", "bea", "demoted", "removed"],
            Policy::default(),
        );
        for who in ["demoted", "removed"] {
            let promoted = collective.replicas[0]
                .execute(Request::Promote { member: who.into() })
                .unwrap();
            assert!(
                matches!(&promoted, Response::Proposal(p) if p.done),
                "{promoted:?}"
            );
        }
        share_everything(&mut collective.replicas);
        let kept = post_offline(
            &mut collective.replicas[1],
            "followed me home",
            "07700 900620",
        );
        let undone_a = post_offline(&mut collective.replicas[2], "took my phone", "07700 900621");
        let undone_b = post_offline(
            &mut collective.replicas[2],
            "hit me in the car",
            "07700 900622",
        );
        share_everything(&mut collective.replicas);

        // While both are moderators, each retracts one of bea's alerts and the retractions
        // spread (accepted: they had the right then).
        let accepted_then = [
            retraction(&mut collective.replicas[3], undone_a),
            retraction(&mut collective.replicas[4], undone_b),
        ];
        for item in &accepted_then {
            let outcome = collective.replicas[0].ingest(item).unwrap();
            assert_eq!(outcome, lookout_node::replica::Ingested::Accepted);
        }
        // And each signs a retraction of ana's alert at the state it sees as a moderator, kept
        // back until after it loses its rights.
        let kept_back = [
            retraction(&mut collective.replicas[3], kept),
            retraction(&mut collective.replicas[4], kept),
        ];
        share_everything(&mut collective.replicas);

        let demoted = collective.replicas[0]
            .execute(Request::Demote {
                member: "demoted".into(),
            })
            .unwrap();
        assert!(
            matches!(&demoted, Response::Proposal(p) if p.done),
            "{demoted:?}"
        );
        let revoked = collective.replicas[0]
            .execute(Request::Revoke {
                member: "removed".into(),
                reason: "retracted alerts to protect a client".into(),
            })
            .unwrap();
        assert!(matches!(revoked, Response::Revoked { .. }), "{revoked:?}");
        let (_dir, nodes, mut offline) = stage(collective, &[3, 4]).await;
        let _removed = offline.pop().unwrap();
        let demoted = offline.pop().unwrap();
        // The demoted moderator is still a member: its own key connects and sends both.
        let peer = arm(&demoted, &nodes).await;

        for node in &nodes {
            for item in &kept_back {
                let (accepted, _) = peer
                    .push(node.handle.peer_id(), std::slice::from_ref(item))
                    .await
                    .unwrap();
                assert_eq!(
                    accepted, 0,
                    "{} took a retraction by a former moderator",
                    node.name
                );
            }
        }
        for item in &kept_back {
            peer.publish(item).await;
        }
        never(
            "a node hides an alert on a former moderator's word",
            Duration::from_secs(3),
            || async {
                let mut hidden = false;
                for node in &nodes {
                    for id in [kept, undone_a, undone_b] {
                        hidden |= !shown_unretracted(node, id).await;
                    }
                }
                hidden
            },
        )
        .await;
        for node in &nodes {
            for (id, phone) in [
                (kept, "07700 900620"),
                (undone_a, "07700 900621"),
                (undone_b, "07700 900622"),
            ] {
                assert!(
                    checked(node, phone).await.contains(&id.to_hex()),
                    "{}: check does not find {phone}",
                    node.name
                );
            }
        }

        let refused: BTreeSet<ContentId> = kept_back.iter().map(|i| ContentId(i.id())).collect();
        for mut replica in stop_all(nodes).await {
            let held: BTreeSet<ContentId> = held_posts(&mut replica)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            assert!(held.is_disjoint(&refused), "{}", replica.name());
        }
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrapped_copies_of_an_alert_are_the_same_alert() {
    const COPIES: usize = 12;
    const PHONE: &str = "07700 900630";
    tokio::time::timeout(Duration::from_secs(120), async {
        let policy = Policy {
            posts_per_day: 4,
            ..Policy::default()
        };
        let collective = Collective::named(&["founder", "ana", "victim", "rogue"], policy);
        let (_dir, nodes, mut offline) = stage(collective, &[3]).await;
        let mut rogue = offline.pop().unwrap();
        let peer = arm(&rogue, &nodes).await;
        let victim = &nodes[2];

        let original = victim
            .post(draft("choked me, drives a grey van", PHONE))
            .await;
        for node in &nodes {
            eventually("the alert arrives", || async {
                node.has_alert(&original).await.then_some(())
            })
            .await;
        }
        let id = ContentId::from_hex(&original).unwrap();
        let bytes = fetch_post(&peer, nodes[0].handle.peer_id(), id.0).await;
        let epoch = envelope::peek(&bytes).unwrap().epoch;
        let key = Forger::new(&mut rogue).keys().remove(&epoch).unwrap();
        let rewrapped = || -> Vec<WireItem> { (0..COPIES).map(|_| rewrap(&bytes, &key)).collect() };

        let first = rewrapped();
        for node in &nodes {
            let (accepted, _) = peer.push(node.handle.peer_id(), &first).await.unwrap();
            assert_eq!(accepted, 0, "{} took a copy", node.name);
        }
        for copy in &first {
            peer.publish(copy).await;
        }
        never(
            "a node lists a copy as another alert",
            Duration::from_secs(2),
            || async {
                let mut copied = false;
                for node in &nodes {
                    copied |= by_author(node, "victim").await.len() != 1;
                }
                copied
            },
        )
        .await;

        // The copies cost the victim nothing: the rest of the day's quota (two alerts and a
        // retraction of the first) still goes through.
        for i in 0..2 {
            victim
                .post(draft(&format!("another incident {i}"), "07700 900631"))
                .await;
        }
        victim
            .execute(Request::Retract {
                id: original.clone(),
                reason: "wrong van".into(),
            })
            .await;
        for node in &nodes {
            eventually("the retraction arrives", || async {
                (!node.has_alert(&original).await && checked(node, PHONE).await.is_empty())
                    .then_some(())
            })
            .await;
        }

        // Old and new copies again: the retraction stays final.
        let second = rewrapped();
        for node in &nodes {
            for batch in [&first, &second] {
                let (accepted, _) = peer.push(node.handle.peer_id(), batch).await.unwrap();
                assert_eq!(accepted, 0, "{} took a copy after the retraction", node.name);
            }
        }
        for copy in &second {
            peer.publish(copy).await;
        }
        never(
            "the retracted alert shows again",
            Duration::from_secs(3),
            || async {
                let mut back = false;
                for node in &nodes {
                    back |= !checked(node, PHONE).await.is_empty();
                    back |= node
                        .alerts()
                        .await
                        .iter()
                        .any(|a| a.description.contains("grey van"));
                }
                back
            },
        )
        .await;

        for mut replica in stop_all(nodes).await {
            let held = held_posts(&mut replica)
                .into_iter()
                .filter_map(|(_, opened)| opened)
                .filter(|o| {
                    matches!(&o.body.content, Content::Alert(a) if a.description.contains("grey van"))
                })
                .count();
            assert_eq!(held, 1, "{}", replica.name());
        }
    })
    .await
    .expect("scenario timed out");
}

/// A member signs alerts whose text carries terminal escape sequences (`ESC[8m` hides every
/// line printed after it; others rewrite the screen or the window title) and a bidirectional
/// override that reverses what follows: every node refuses them and penalises the sender, so
/// they never reach anyone's screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_that_could_hide_or_rewrite_the_screen_are_refused() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let collective = Collective::named(&["founder", "ana", "bea", "rogue"], Policy::default());
        let (_dir, nodes, mut offline) = stage(collective, &[3]).await;
        let mut rogue = offline.pop().unwrap();
        let peer = arm(&rogue, &nodes).await;
        let mut forger = Forger::new(&mut rogue);
        let key = forger.write_key();
        let heads = forger.heads();
        let t = now();
        let hostile = [
            "\u{1b}[8mnothing to see",
            "\u{1b}]0;Lookout: all clear\u{7}",
            "\u{1b}[2J\u{1b}[Hsafe",
            "\u{202E}enoyreve ot efas",
        ];
        for (i, text) in hostile.iter().enumerate() {
            let item = forger.post(
                &key,
                heads.clone(),
                t + i as u64,
                t + 86_400,
                alert_content(text),
            );
            for node in &nodes {
                let answer = peer
                    .push(node.handle.peer_id(), std::slice::from_ref(&item))
                    .await;
                assert_eq!(answer, Ok((0, 1)), "{}: {text:?}", node.name);
            }
        }
        for node in &nodes {
            for alert in node.alerts().await {
                assert!(
                    !alert
                        .description
                        .chars()
                        .any(|c| c.is_control() || c == '\u{202E}'),
                    "{}: {alert:?}",
                    node.name
                );
            }
        }
    })
    .await
    .expect("scenario timed out");
}
