//! Malicious or compromised members, through real nodes. A member's key goes into a hostile
//! program (a raw libp2p swarm, see `lookout_tests::rogue`) that sends correctly signed items
//! breaking the collective's rules — floods over the posting quota, forged retractions and edits,
//! approvals by non-moderators, ops back-dated by a removed moderator — by gossip and by sync
//! push, to every honest node (attacks on key epochs, lifetimes and replays are in
//! `adversarial_epochs.rs`). Every node refuses every one of them (the push answers say
//! so per node, the gossip shows in the rejection counter, and the stores are read at the end),
//! and honest alerts keep flowing. A revoked member keeps its old data and gets nothing newer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lookout_node::api::{Request, Response};
use lookout_node::replica::{now, Replica, SetKind, WireItem};
use lookout_node::sync::{SyncRequest, SyncResponse};
use lookout_protocol::content::Content;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy};
use lookout_protocol::ContentId;
use lookout_tests::rogue::*;
use lookout_tests::*;
use rand::rngs::OsRng;

const DAY: u64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_over_the_quota_is_refused_everywhere() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let policy = Policy {
            posts_per_day: 5,
            ..Policy::default()
        };
        let collective = Collective::named(&["founder", "ana", "bea", "rogue"], policy);
        let (_dir, nodes, mut offline) = stage(collective, &[3]).await;
        let mut rogue = offline.pop().unwrap();
        let peer = arm(&rogue, &nodes).await;
        let mut forger = Forger::new(&mut rogue);
        let key = forger.write_key();
        let heads = forger.heads();
        let t = now();

        // 200 alerts by gossip as fast as the swarm sends them; an honest alert posted meanwhile
        // must still reach everyone promptly.
        let flood: Vec<WireItem> = (0..200)
            .map(|i| {
                forger.post(
                    &key,
                    heads.clone(),
                    t,
                    t + DAY,
                    alert_content(&format!("flood {i}")),
                )
            })
            .collect();
        for item in &flood {
            assert!(peer.publish(item).await, "the flood goes out");
        }
        let started = Instant::now();
        let honest = nodes[1]
            .post(draft("honest alert during the flood", "07700 900600"))
            .await;
        for node in &nodes {
            eventually("the honest alert arrives during the flood", || async {
                node.has_alert(&honest).await.then_some(())
            })
            .await;
        }
        let latency = started.elapsed();
        println!("honest alert reached every node {latency:?} after a 200-alert flood");
        assert!(latency < Duration::from_secs(5), "{latency:?}");
        for node in &nodes {
            eventually("each node takes the quota's worth", || async {
                (by_author(node, "rogue").await.len() == 5).then_some(())
            })
            .await;
        }
        never(
            "a node takes more than the quota",
            Duration::from_secs(2),
            || async {
                let mut over = false;
                for node in &nodes {
                    over |= by_author(node, "rogue").await.len() > 5;
                }
                over
            },
        )
        .await;
        let first = by_author(&nodes[0], "rogue").await;
        for node in &nodes[1..] {
            assert_eq!(
                by_author(node, "rogue").await,
                first,
                "the same five everywhere"
            );
        }

        // More of today's alerts by sync push to every node: none accepted, quietly (the quota
        // ignores rather than penalises, as a forwarder may be honest).
        let more: Vec<WireItem> = (0..20)
            .map(|i| {
                forger.post(
                    &key,
                    heads.clone(),
                    t,
                    t + DAY,
                    alert_content(&format!("push {i}")),
                )
            })
            .collect();
        for node in &nodes {
            assert_eq!(peer.push(node.handle.peer_id(), &more).await, Ok((0, 0)));
        }

        // Back-dating to earlier days: each day has its own quota, and its excess is refused too.
        for days in 1..=2u64 {
            let dated = t - days * DAY;
            let items: Vec<WireItem> = (0..8)
                .map(|i| {
                    forger.post(
                        &key,
                        heads.clone(),
                        dated,
                        t + DAY,
                        alert_content(&format!("day -{days} #{i}")),
                    )
                })
                .collect();
            for node in &nodes {
                let (accepted, rejected) = peer.push(node.handle.peer_id(), &items).await.unwrap();
                assert!(accepted <= 5 && rejected == 0, "{accepted} {rejected}");
            }
        }

        // Reachability posts (exempt from the alert quota) have their own daily quota and may
        // live at most a day.
        let reach: Vec<WireItem> = (0..40)
            .map(|i| {
                let addresses = vec![format!("/ip4/10.9.{i}.1/tcp/4001")];
                forger.post(
                    &key,
                    heads.clone(),
                    t,
                    t + DAY,
                    Content::Reachability { addresses },
                )
            })
            .collect();
        for node in &nodes {
            let (accepted, rejected) = peer.push(node.handle.peer_id(), &reach).await.unwrap();
            assert!(
                accepted <= MAX_REACHABILITY && rejected == 0,
                "{accepted} {rejected}"
            );
        }
        let long_lived = forger.post(
            &key,
            heads.clone(),
            t,
            t + 30 * DAY,
            Content::Reachability {
                addresses: vec!["/ip4/10.9.99.1/tcp/4001".into()],
            },
        );
        for node in &nodes {
            assert_eq!(
                peer.push(node.handle.peer_id(), std::slice::from_ref(&long_lived))
                    .await,
                Ok((0, 1))
            );
        }

        // What every store holds in the end.
        let rogue_id = rogue.identity().member_id();
        for mut replica in stop_all(nodes).await {
            let mut today = 0;
            let mut per_day = std::collections::BTreeMap::new();
            let mut reachability = 0;
            for (_, opened) in held_posts(&mut replica) {
                let opened = opened.expect("every held post opens");
                if opened.body.author != rogue_id {
                    continue;
                }
                match opened.body.content {
                    Content::Reachability { .. } => reachability += 1,
                    _ if opened.body.timestamp == t => today += 1,
                    _ => *per_day.entry(opened.body.timestamp).or_insert(0) += 1,
                }
            }
            assert_eq!(today, 5, "{}", replica.name());
            assert_eq!(per_day.len(), 2);
            assert!(per_day.values().all(|n| *n == 5), "{per_day:?}");
            assert_eq!(reachability, MAX_REACHABILITY, "{}", replica.name());
        }
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_retractions_edits_and_approvals_are_refused() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut collective =
            Collective::named(&["founder", "ana", "bea", "rogue"], Policy::default());
        share_everything(&mut collective.replicas);
        let target = collective.replicas[1]
            .post(draft("followed me to the car park", "07700 900610"))
            .unwrap();
        let (_dir, nodes, mut offline) = stage(collective, &[3]).await;
        let mut rogue = offline.pop().unwrap();
        let peer = arm(&rogue, &nodes).await;
        let mut forger = Forger::new(&mut rogue);
        let key = forger.write_key();
        let heads = forger.heads();
        let t = now();
        let expires = t + 10 * DAY;
        let retraction = |forger: &mut Forger<'_>| {
            forger.post(
                &key,
                heads.clone(),
                t,
                expires,
                Content::Retraction {
                    target,
                    reason: "never happened".into(),
                },
            )
        };
        let edit = |forger: &mut Forger<'_>| {
            let Content::Alert(alert) = alert_content("it was a misunderstanding") else {
                unreachable!()
            };
            forger.post(
                &key,
                heads.clone(),
                t,
                expires,
                Content::Edit { target, alert },
            )
        };

        // Control: what a plain member may do about someone else's alert (corroborate) passes.
        let corroboration = forger.post(
            &key,
            heads.clone(),
            t,
            expires,
            Content::Corroboration {
                target,
                note: "me too".into(),
            },
        );
        assert!(peer.publish(&corroboration).await);
        for node in &nodes {
            eventually("the corroboration is accepted", || async {
                let alert = node
                    .alerts()
                    .await
                    .into_iter()
                    .find(|a| a.id == target.to_hex());
                alert.is_some_and(|a| a.corroborations == 1).then_some(())
            })
            .await;
        }

        let forged = [retraction(&mut forger), edit(&mut forger)];
        // One item per push: a push stops at its first invalid item.
        for node in &nodes {
            for item in &forged {
                let answer = peer
                    .push(node.handle.peer_id(), std::slice::from_ref(item))
                    .await;
                assert_eq!(answer, Ok((0, 1)), "{}", node.name);
            }
        }
        let rejected_before = rejected_counts(&nodes).await;
        assert!(peer.publish(&retraction(&mut forger)).await);
        assert!(peer.publish(&edit(&mut forger)).await);
        rejected_by_every_node(&nodes, &rejected_before).await;
        for node in &nodes {
            let alert = node
                .alerts()
                .await
                .into_iter()
                .find(|a| a.id == target.to_hex())
                .expect("the alert is still listed");
            assert!(alert.retracted.is_none() && !alert.edited, "{alert:?}");
            assert_eq!(alert.description, "followed me to the car park");
        }

        // Membership: a plain member proposes an accomplice and approves it; the accomplice
        // approves too; the member proposes its own promotion and approves that.
        let accomplice = Identity::generate(&mut OsRng);
        let collective_id = forger.collective();
        let propose = forger.op(
            heads.clone(),
            forger.propose_add(accomplice.public(), "accomplice"),
        );
        let proposal = lookout_protocol::OpId(propose.id());
        let approve = forger.op(vec![proposal], Action::Approve { proposal });
        let by_accomplice = Op::create(
            &accomplice,
            collective_id,
            vec![proposal],
            now(),
            Action::Approve { proposal },
        )
        .unwrap();
        let by_accomplice = WireItem {
            kind: SetKind::Ops,
            bytes: by_accomplice.encoded().to_vec(),
        };
        let promote = forger.op(
            vec![proposal],
            Action::ProposePromote {
                member: forger.member(),
            },
        );
        let promotion = lookout_protocol::OpId(promote.id());
        let approve_promotion = forger.op(
            vec![promotion],
            Action::Approve {
                proposal: promotion,
            },
        );
        let ops = [propose, approve, by_accomplice, promote, approve_promotion];
        let members_before = nodes[0].member_ids().await;
        let ops_before = nodes[0].status().await.ops;
        for node in &nodes {
            let (_, rejected) = peer.push(node.handle.peer_id(), &ops).await.unwrap();
            assert_eq!(
                rejected, 0,
                "well-formed ops are not penalised (a forwarder may be honest)"
            );
        }
        let rogue_hex = rogue.identity().member_id().to_hex();
        for node in &nodes {
            // The member's own four ops are kept (they resolve to nothing); the accomplice's
            // approval is not: a plain member's proposal does not make its key an author
            // (`proposals_by_a_plain_member_do_not_let_their_keys_author_ops`).
            eventually("every node holds the member's ops", || async {
                (node.status().await.ops == ops_before + ops.len() - 1).then_some(())
            })
            .await;
            never(
                "a node keeps the accomplice's op",
                Duration::from_millis(500),
                || async { node.status().await.ops != ops_before + ops.len() - 1 },
            )
            .await;
            assert_eq!(node.member_ids().await, members_before, "{}", node.name);
            let members = node.members().await;
            assert!(!members
                .members
                .iter()
                .any(|m| m.id == rogue_hex && m.moderator));
            let pending = match node.execute(Request::Pending).await {
                Response::Pending { proposals } => proposals,
                other => panic!("{other:?}"),
            };
            // Proposing a member and promoting need moderator rights: both are dropped, so
            // nothing is even pending.
            assert!(pending.is_empty(), "{pending:?}");
        }

        // The accomplice's own key cannot even connect.
        let denied_before = nodes[0].handle.stats().await.unwrap().denied;
        let outsider = RawPeer::spawn(
            Some(hello_with(&rogue, &accomplice.ed25519_seed())),
            &topic_of(&rogue),
        );
        outsider.dial(listen_addr(&nodes[0]).await).await;
        eventually("the gate refuses the accomplice", || async {
            (nodes[0].handle.stats().await.unwrap().denied > denied_before).then_some(())
        })
        .await;
        assert!(!outsider.subscribed(nodes[0].handle.peer_id()));

        let forged_ids: BTreeSet<ContentId> = forged.iter().map(|i| ContentId(i.id())).collect();
        for mut replica in stop_all(nodes).await {
            let held: BTreeSet<ContentId> = held_posts(&mut replica)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            assert!(held.is_disjoint(&forged_ids), "{}", replica.name());
        }
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_back_dated_by_a_removed_moderator_have_no_effect() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut collective = Collective::named(
            &["founder", "ana", "bea", "rogue", "mallory"],
            Policy::default(),
        );
        let promoted = collective.replicas[0]
            .execute(Request::Promote {
                member: "mallory".into(),
            })
            .unwrap();
        assert!(
            matches!(&promoted, Response::Proposal(p) if p.done),
            "{promoted:?}"
        );
        share_everything(&mut collective.replicas);
        // What mallory had seen while still a moderator.
        let before_removal = Forger::new(&mut collective.replicas[4]).heads();
        let revoked = collective.replicas[0]
            .execute(Request::Revoke {
                member: "mallory".into(),
                reason: "leaked alerts".into(),
            })
            .unwrap();
        assert!(matches!(revoked, Response::Revoked { epoch: Some(_), .. }));
        let (_dir, nodes, mut offline) = stage(collective, &[3, 4]).await;
        let mut mallory = offline.pop().unwrap();
        let rogue = offline.pop().unwrap();
        let members_before = nodes[0].member_ids().await;
        assert_eq!(members_before.len(), 4);
        let write_epoch = nodes[0].status().await.epoch.unwrap();

        // Mallory's ops, naming only what she had seen before her removal.
        let accomplice = Identity::generate(&mut OsRng);
        let mut forger = Forger::new(&mut mallory);
        let ana = nodes[1].member;
        let rogue_member = rogue.identity().member_id();
        let ops = vec![
            forger.op(before_removal.clone(), forger.remove(ana, "back-dated")),
            forger.op(
                before_removal.clone(),
                forger.propose_add(accomplice.public(), "accomplice"),
            ),
            forger.op(
                before_removal.clone(),
                Action::ProposePromote {
                    member: rogue_member,
                },
            ),
        ];
        // And a key rotation at those heads, which would reach her.
        let fresh = lookout_protocol::epoch::EpochKey::generate(&mut OsRng);
        let rotation = forger.rotation(&fresh, before_removal.clone(), now());

        // Her own key is refused at the gate by every node.
        let own = RawPeer::spawn(Some(hello_of(&mallory)), &topic_of(&mallory));
        for node in &nodes {
            let denied = node.handle.stats().await.unwrap().denied;
            own.dial(listen_addr(node).await).await;
            eventually("the gate refuses the removed moderator", || async {
                (node.handle.stats().await.unwrap().denied > denied).then_some(())
            })
            .await;
            assert!(!own.subscribed(node.handle.peer_id()));
        }

        // A member still in the collective forwards them, by push and by gossip.
        let peer = arm(&rogue, &nodes).await;
        let ops_before = nodes[0].status().await.ops;
        for node in &nodes {
            let (_, rejected) = peer.push(node.handle.peer_id(), &ops).await.unwrap();
            assert_eq!(rejected, 0);
            let (_, rejected) = peer
                .push(node.handle.peer_id(), std::slice::from_ref(&rotation))
                .await
                .unwrap();
            assert_eq!(rejected, 0);
        }
        for item in &ops {
            peer.publish(item).await;
        }
        let ana_hex = ana.to_hex();
        let rogue_hex = rogue_member.to_hex();
        for node in &nodes {
            eventually("every node holds mallory's ops", || async {
                (node.status().await.ops == ops_before + ops.len()).then_some(())
            })
            .await;
        }
        never(
            "mallory's back-dated ops take effect",
            Duration::from_secs(2),
            || async {
                let mut effect = false;
                for node in &nodes {
                    let members = node.members().await;
                    effect |= node.member_ids().await != members_before;
                    effect |= !members.members.iter().any(|m| m.id == ana_hex);
                    effect |= members
                        .members
                        .iter()
                        .any(|m| m.id == rogue_hex && m.moderator);
                    effect |= node.status().await.epoch.as_deref() != Some(write_epoch.as_str());
                }
                effect
            },
        )
        .await;
        // Ana's node is still connected to the others and keeps posting.
        let after = nodes[1].post(draft("still here", "07700 900620")).await;
        for node in &nodes {
            eventually("ana's alert arrives", || async {
                node.has_alert(&after).await.then_some(())
            })
            .await;
        }
        assert_ne!(
            fresh.id().short(),
            write_epoch,
            "nobody writes under her rotation"
        );
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_member_keeps_old_data_and_gets_nothing_newer() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut collective =
            Collective::named(&["founder", "ana", "bea", "yan"], Policy::default());
        share_everything(&mut collective.replicas);
        let yan_keys = Some(hello_of(&collective.replicas[3]));
        let topic = topic_of(&collective.replicas[3]);
        let before = collective.replicas[3]
            .post(draft("posted by yan before", "07700 900640"))
            .unwrap()
            .to_hex();
        let (_dir, nodes, _) = stage(collective, &[]).await;
        let yan = &nodes[3];
        eventually("yan's alert reaches the founder", || async {
            nodes[0].has_alert(&before).await.then_some(())
        })
        .await;
        let old_ana = nodes[1]
            .post(draft("posted by ana before", "07700 900641"))
            .await;
        eventually("yan reads ana's alert", || async {
            yan.has_alert(&old_ana).await.then_some(())
        })
        .await;
        let old_epoch = yan.status().await.epoch.unwrap();

        let revoked = nodes[0]
            .execute(Request::Revoke {
                member: "yan".into(),
                reason: "phone seized".into(),
            })
            .await;
        let Response::Revoked {
            epoch: Some(new_epoch),
            ..
        } = revoked
        else {
            panic!("{revoked:?}")
        };
        assert_ne!(new_epoch, old_epoch);
        let others = &nodes[..3];
        for node in others {
            eventually("the others rotate to the new epoch", || async {
                (node.status().await.epoch.as_deref() == Some(new_epoch.as_str())).then_some(())
            })
            .await;
        }
        eventually("yan knows", || async {
            yan.status().await.is_removed.then_some(())
        })
        .await;
        let after = nodes[1]
            .post(draft("posted by ana after", "07700 900642"))
            .await;
        for node in others {
            eventually("the others get it", || async {
                node.has_alert(&after).await.then_some(())
            })
            .await;
        }
        // Yan's node tries to reconnect to everyone; its key in a raw swarm tries too, and asks
        // for the new alert and keys by sync.
        for node in others {
            connect(yan, node).await;
        }
        let raw = RawPeer::spawn(yan_keys, &topic);
        for node in others {
            raw.dial(listen_addr(node).await).await;
        }
        // (Yan's own node and swarm may see a connection for a moment before the other side
        // closes it after the handshake.)
        never(
            "yan gets anything newer or is let in",
            Duration::from_secs(3),
            || async {
                let mut leaked = yan.has_alert(&after).await;
                for node in others {
                    leaked |= node.peers().await != 2;
                    leaked |= raw.subscribed(node.handle.peer_id());
                }
                leaked
            },
        )
        .await;
        eventually("yan is alone", || async {
            let mut alone = yan.peers().await == 0;
            for node in others {
                alone &= !raw.connected_to(node.handle.peer_id());
            }
            alone.then_some(())
        })
        .await;
        for node in others {
            let fetch = SyncRequest::Fetch {
                kind: SetKind::Envelopes,
                ids: vec![ContentId::from_hex(&after).unwrap().0],
            };
            // The connection is refused, so the request fails; had it reached the node, it
            // must not have been answered with the alert.
            if let Ok(SyncResponse::Items { items }) =
                raw.request(node.handle.peer_id(), &fetch).await
            {
                assert!(items.is_empty(), "{} served a removed member", node.name);
            }
        }
        // Old data stays readable on yan's device; nothing newer is there or decryptable.
        let mut replicas = stop_all(nodes).await;
        let mut yan = replicas.pop().unwrap();
        let founder = &mut replicas[0];
        let readable = |r: &mut Replica| -> BTreeSet<String> {
            held_posts(r)
                .into_iter()
                .filter(|(_, o)| o.is_some())
                .map(|(id, _)| id.to_hex())
                .collect()
        };
        let yan_reads = readable(&mut yan);
        assert!(
            yan_reads.contains(&before) && yan_reads.contains(&old_ana),
            "{yan_reads:?}"
        );
        assert!(!held_posts(&mut yan)
            .iter()
            .any(|(id, _)| id.to_hex() == after));
        assert!(epoch_keys(&mut yan).keys().all(|e| e.short() != new_epoch));
        let yan_member = yan.identity().member_id();
        let new_deliveries: Vec<_> = deliveries(founder)
            .into_iter()
            .filter(|d| d.epoch().short() == new_epoch)
            .collect();
        assert!(!new_deliveries.is_empty());
        for delivery in new_deliveries {
            assert!(delivery.recipients().all(|r| r != yan_member));
        }
        let alerts = match yan.execute(Request::Alerts(Default::default())).unwrap() {
            Response::Alerts { alerts } => alerts,
            other => panic!("{other:?}"),
        };
        assert!(alerts.iter().any(|a| a.id == old_ana));
    })
    .await
    .expect("scenario timed out");
}

/// Most reachability posts one member may have accepted per UTC day.
const MAX_REACHABILITY: u32 = lookout_protocol::envelope::MAX_REACHABILITY_PER_DAY;

/// Corroborations count once per member other than the author, whatever members sign: the
/// author corroborating her own alert, and one member corroborating three times (signed out of
/// order), give one corroboration with that member's latest note. A second retraction (by a
/// moderator, later) does not replace the first one's reason.
#[test]
fn corroborations_count_each_other_member_once_and_the_first_retraction_stands() {
    let mut collective = Collective::named(&["founder", "ana", "bea"], Policy::default());
    share_everything(&mut collective.replicas);
    let target = collective.replicas[1]
        .post(draft("followed me to the car park", "07700 900620"))
        .unwrap();
    share_everything(&mut collective.replicas);
    let t = now();
    let signed = |replica: &mut Replica, at: u64, content: Content| {
        let mut forger = Forger::new(replica);
        let key = forger.write_key();
        let heads = forger.heads();
        // A retraction lives at least as long as its alert (30 days here).
        forger.post(&key, heads, at, t + 40 * DAY, content)
    };
    let corroboration = |note: &str| Content::Corroboration {
        target,
        note: note.into(),
    };
    let retraction = |reason: &str| Content::Retraction {
        target,
        reason: reason.into(),
    };
    let items = [
        signed(
            &mut collective.replicas[1],
            t,
            corroboration("my own alert"),
        ),
        signed(&mut collective.replicas[2], t, corroboration("same man")),
        signed(
            &mut collective.replicas[2],
            t + 2,
            corroboration("again on Tuesday"),
        ),
        signed(&mut collective.replicas[2], t + 1, corroboration("stale")),
        signed(&mut collective.replicas[0], t + 3, retraction("duplicate")),
        signed(
            &mut collective.replicas[1],
            t + 1,
            retraction("posted by mistake"),
        ),
    ];
    let reader = &mut collective.replicas[0];
    for item in &items {
        reader.ingest(item).unwrap();
    }
    let filter = lookout_node::api::AlertFilter {
        include_retracted: true,
        ..Default::default()
    };
    let Ok(Response::Alerts { alerts }) = reader.execute(Request::Alerts(filter)) else {
        panic!("alerts")
    };
    let alert = alerts.iter().find(|a| a.id == target.to_hex()).unwrap();
    assert_eq!(alert.corroborations, 1, "{alert:?}");
    assert_eq!(alert.corroborated_by.len(), 1);
    assert_eq!(alert.corroborated_by[0].member, "bea");
    assert_eq!(alert.corroborated_by[0].note, "again on Tuesday");
    assert_eq!(alert.retracted.as_deref(), Some("posted by mistake"));
}
