//! Review 8's node test, copied from branch `rev8` (`node/tests/node/review8.rs`), on a real node's store: a replica that lets an op
//! join read through an op it refused over the quota must be able to hand that refused op to a
//! peer (REVIEW8.md, R8-4: otherwise the peer never can place the op, and every honest op
//! written on it waits there for good), before and after a reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lookout_node::replica::{Ingested, Replica, SetKind, WireItem};
use lookout_protocol::membership::{Action, Op, Policy};
use lookout_protocol::passphrase::KdfParams;

const PASS: &[u8] = b"test passphrase";

/// Bea fills her day at Ana's replica (255 ops of a chain and op 256, waiting for its parent),
/// so op 255 is refused over the quota there; Ana's removal of Bea, written on op 255, joins
/// read through it. A peer asking Ana for op 255 (offered in sync as a stub since `h1op`
/// 5dbc163) must get it, and still after Ana's replica is reopened.
#[test]
fn r8_a_refused_op_read_through_is_served_to_peers_before_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _cert) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let (bea, _bea_cert) =
        Replica::create(&dir.path().join("bea"), PASS, "Bea", KdfParams::TESTING).unwrap();
    assert!(ana.approve(&bea.join_request().to_code()).unwrap().done);
    let log = ana.membership().unwrap();
    let co = log.collective();
    let mut parent = log.roster().heads()[0];
    let now = lookout_node::replica::now();
    let day = now - now % 86_400;
    let step = (now - day) / 400;
    let run: Vec<Op> = (0..300u64)
        .map(|i| {
            let op = Op::create(
                bea.identity(),
                co,
                vec![parent],
                day + i * step,
                Action::RotateAgreementKey {
                    identity: bea.identity().public(),
                },
            )
            .unwrap();
            parent = op.id();
            op
        })
        .collect();
    let put = |ana: &mut Replica, op: &Op| {
        ana.ingest(&WireItem {
            kind: SetKind::Ops,
            bytes: op.encoded().to_vec(),
        })
        .unwrap()
    };
    for op in &run[..255] {
        assert_eq!(put(&mut ana, op), Ingested::Accepted);
    }
    assert_eq!(put(&mut ana, &run[256]), Ingested::Held);
    assert_ne!(put(&mut ana, &run[255]), Ingested::Accepted);
    let reason = ana
        .text_key()
        .unwrap()
        .seal(
            lookout_protocol::text::TextField::RemovalReason,
            &ana.identity().member_id(),
            &bea.identity().member_id(),
            "flood",
            &mut rand::rngs::OsRng,
        )
        .unwrap();
    let removal = Op::create(
        ana.identity(),
        co,
        vec![run[255].id()],
        now,
        Action::Remove {
            member: bea.identity().member_id(),
            reason,
        },
    )
    .unwrap();
    assert_eq!(put(&mut ana, &removal), Ingested::Accepted);
    let refused = run[255].id();
    let served = |ana: &Replica| ana.fetch(SetKind::Ops, &[refused.0]).unwrap();
    assert_eq!(
        served(&ana),
        vec![run[255].encoded().to_vec()],
        "the refused op the removal is read through is not served to peers"
    );
    let home = ana.home().to_path_buf();
    ana.close().unwrap();
    let ana = Replica::open(&home, PASS).unwrap();
    assert!(ana.membership().unwrap().contains(&removal.id()));
    assert_eq!(
        served(&ana),
        vec![run[255].encoded().to_vec()],
        "after a reopen the refused op the removal is read through is not served to peers"
    );
}
