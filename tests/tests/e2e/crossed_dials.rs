//! Two members dialling each other at the same instant (crossed dials): what happens when both
//! learn each other's relayed address through a mailbox at once, here on loopback TCP where the
//! crossing is as tight as it gets. Each side has a connection it dialled and one it accepted,
//! and both send the hello's `Open`. Before `crossed_hello_yields` each ignored the other's
//! `Open`, saw its own go unanswered and hung up ("no answer"; counted in `denied`), so the pair
//! never connected until their retries happened not to cross (issue 10: hole punching failed in
//! about one run in three). Now exactly one side gives way and answers as listener.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_protocol::membership::Policy;
use lookout_tests::*;

/// Rounds of crossed dials, each with fresh transport ids (the nodes restart).
const ROUNDS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_dialling_each_other_at_once_connect_without_a_failed_hello() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let Collective { dir, replicas } = Collective::new(1, Policy::default());
        let homes: Vec<_> = replicas.iter().map(|r| r.home().to_path_buf()).collect();
        drop(replicas);
        for round in 0..ROUNDS {
            let a = start_node(reopen(&homes[0])).await;
            let b = start_node(reopen(&homes[1])).await;
            let (to_a, to_b) = (listen_addr(&a).await, listen_addr(&b).await);
            let (da, db) = tokio::join!(a.handle.dial(to_b), b.handle.dial(to_a));
            da.unwrap();
            db.unwrap();
            eventually("the two members connect", || async {
                (a.peers().await == 1 && b.peers().await == 1).then_some(())
            })
            .await;
            let (sa, sb) = (
                a.handle.stats().await.unwrap(),
                b.handle.stats().await.unwrap(),
            );
            assert_eq!(
                (sa.denied, sb.denied),
                (0, 0),
                "round {round}: a hello was abandoned between two members"
            );
            a.stop().await;
            b.stop().await;
        }
        drop(dir);
    })
    .await
    .expect("test timed out");
}
