//! Who a node admits before its roster names anyone but the founders: an invite names the
//! member who invited (only that member is admitted at the invite's addresses), an address the
//! user gave admits an unnamed member only while this device is still joining, and once the
//! roster names this member no unnamed member is admitted anywhere. The attacker holds the
//! collective's secret (the genesis, from an invite code it saw) and a key nobody ever proposed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use libp2p::Multiaddr;
use lookout_node::net::Credentials;
use lookout_protocol::invite::Invite;
use lookout_protocol::membership::Policy;
use lookout_tests::rogue::{hello_with, topic_of, RawPeer, Seen};
use lookout_tests::*;

/// How long the attacker is watched for a connection that must not come.
const WATCH: Duration = Duration::from_secs(6);

fn bare(addr: &Multiaddr) -> Multiaddr {
    lookout_node::node::without_p2p(addr)
}

fn admitted(stranger: &RawPeer) -> bool {
    stranger.log().iter().any(|s| {
        matches!(
            s,
            Seen::Connected(_) | Seen::Subscribed(_) | Seen::Gossip(_)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_holder_at_an_invite_address_is_not_admitted() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let Collective { dir, mut replicas } = Collective::new(0, Policy::default());
        let mut founder = replicas.remove(0);
        let mut joiner = fresh_identity(&dir.path().join("joiner"), "joiner");
        let view = founder.approve(&joiner.join_request().to_code()).unwrap();
        assert!(view.done);
        let genesis = founder.membership().unwrap().genesis().clone();
        let secret = founder.collective_secret().unwrap().clone();
        let topic = topic_of(&founder);
        let stranger = RawPeer::spawn(Some(hello_with(&founder, &[7; 32])), &topic);
        let stranger_addr = stranger.listen().await;
        let founder_node = start_node(founder).await;
        let founder_addr = bare(&listen_addr(&founder_node).await);

        // The invite lists the stranger's address (a stale address someone else now holds,
        // or one the attacker slipped in) besides the inviter's.
        let invite = Invite {
            genesis,
            secret,
            addresses: vec![stranger_addr.to_string(), founder_addr.to_string()],
            inviter: Some(founder_node.member),
        };
        joiner.join(&invite.to_code()).unwrap();
        let joiner_node = start_node(joiner).await;
        joiner_node.wait_members(2).await;
        never(
            "the joiner admits the stranger at the invite address",
            WATCH,
            || async { admitted(&stranger) },
        )
        .await;

        // Dialling in afterwards gets the stranger nothing either.
        stranger.dial(listen_addr(&joiner_node).await).await;
        never(
            "the joiner admits the stranger dialling in",
            WATCH,
            || async { admitted(&stranger) },
        )
        .await;
        drop(dir);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_address_admits_no_unnamed_member_once_the_roster_names_us() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let collective = Collective::new(1, Policy::default());
        let stranger = RawPeer::spawn(
            Some(hello_with(&collective.replicas[0], &[7; 32])),
            &topic_of(&collective.replicas[0]),
        );
        let (_dir, nodes) = collective.start().await;
        let member = &nodes[1];
        member.wait_members(2).await;

        // The user asks the member's node to dial an address (`--peer`, `lookout dial`) that
        // the stranger holds.
        let stranger_addr = stranger.listen().await;
        member.handle.dial(stranger_addr).await.unwrap();
        never(
            "the member admits the stranger at a given address",
            WATCH,
            || async { admitted(&stranger) },
        )
        .await;
        stranger.dial(listen_addr(member).await).await;
        never(
            "the member admits the stranger dialling in",
            WATCH,
            || async { admitted(&stranger) },
        )
        .await;
    })
    .await
    .expect("test timed out");
}

/// Attacker: a node holding the genesis record and every op but not the collective secret (a
/// mailbox, or whoever seizes one) cannot pass a member's hello, even with a member's own
/// signing key. The hello secret used to come from the genesis record (`lookout hello secret
/// v1` of its bytes, which such a node computes); it now comes from the collective secret.
/// Control: the same key with the collective's hello secret is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_holding_only_the_genesis_cannot_pass_a_hello() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let Collective { dir, mut replicas } = Collective::new(1, Policy::default());
        let member = replicas.remove(1);
        let founder = replicas.remove(0);
        let seed = member.identity().ed25519_seed();
        let genesis = founder.membership().unwrap().genesis().encoded().to_vec();
        let topic = topic_of(&founder);
        let from_genesis =
            lookout_protocol::ids::hash("lookout hello secret v1", &[genesis.as_slice()]);
        let genesis_holder = RawPeer::spawn(Some(Credentials::new(&from_genesis, &seed)), &topic);
        let honest = RawPeer::spawn(Some(hello_with(&member, &seed)), &topic);
        let founder_node = start_node(founder).await;
        let founder_addr = listen_addr(&founder_node).await;
        genesis_holder.dial(founder_addr.clone()).await;
        never(
            "the founder admits a peer holding only the genesis record",
            WATCH,
            || async { admitted(&genesis_holder) },
        )
        .await;
        honest.dial(founder_addr).await;
        eventually(
            "the founder admits the member's key with the secret",
            || async { admitted(&honest).then_some(()) },
        )
        .await;
        drop(dir);
    })
    .await
    .expect("test timed out");
}
