//! A member's node rotates its X25519 agreement key, the collective seals new epochs to the new
//! key, and once the overlap has passed the old secret is gone from the home: a key delivery
//! captured before cannot be opened with anything the seized home holds, while the node itself
//! keeps every epoch key it had (from its secrets file) across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lookout_node::replica::{now, Ingested, Replica, SetKind, WireItem};
use lookout_node::store::{Store, Tree};
use lookout_protocol::epoch::{EpochError, KeyDelivery};
use lookout_protocol::identity::{Identity, AGREEMENT_OVERLAP_SECS, AGREEMENT_ROTATION_SECS};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;

const PASS: &[u8] = b"test passphrase";

/// Copy every item `from` has that `to` lacks, in sync order.
fn sync(from: &mut Replica, to: &mut Replica) -> usize {
    let mut moved = 0;
    for kind in SetKind::ORDER {
        let ids: Vec<[u8; 32]> = from.sync_items(kind).iter().map(|i| i.id).collect();
        for bytes in from.fetch(kind, &ids).unwrap() {
            if to.ingest(&WireItem { kind, bytes }).unwrap() == Ingested::Accepted {
                moved += 1;
            }
        }
    }
    to.retry_held().unwrap();
    moved
}

fn deliveries(replica: &mut Replica) -> Vec<Vec<u8>> {
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Deliveries)
        .iter()
        .map(|i| i.id)
        .collect();
    replica.fetch(SetKind::Deliveries, &ids).unwrap()
}

#[test]
fn a_rotated_agreement_key_is_used_and_the_old_one_destroyed_after_the_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let bea_home = dir.path().join("bea");
    let (mut bea, _) = Replica::create(&bea_home, PASS, "Bea", KdfParams::TESTING).unwrap();
    let invite = ana
        .approve(&bea.join_request().to_code())
        .unwrap()
        .invite
        .unwrap();
    bea.join(&invite).unwrap();
    sync(&mut ana, &mut bea);
    let collective = ana.membership().unwrap().collective();
    let bea_id = bea.identity().member_id();

    // The first epoch, sealed to Bea's first key. A watcher keeps the delivery.
    ana.rotate().unwrap();
    sync(&mut ana, &mut bea);
    assert!(bea.lacking_epochs().is_empty());
    assert_eq!(bea.write_epoch(), ana.write_epoch());
    let captured = deliveries(&mut ana);
    let old_public = bea.identity().agreement_public();
    let old_secret = bea.identity().agreement_keys()[..32].to_vec();

    // A week on, Bea's node rotates its key and publishes it; Ana's roster takes it.
    let t0 = now();
    bea.maintain_secrets(t0 + AGREEMENT_ROTATION_SECS).unwrap();
    let new_public = bea.identity().agreement_public();
    assert_ne!(new_public, old_public);
    sync(&mut bea, &mut ana);
    let roster_key = |r: &Replica| {
        r.membership()
            .unwrap()
            .roster()
            .member(&bea_id)
            .unwrap()
            .identity
            .agreement
    };
    assert_eq!(roster_key(&ana), new_public);
    assert_eq!(roster_key(&bea), new_public);

    // The next epoch is sealed to the new key, and Bea opens it.
    let second = ana.rotate().unwrap();
    sync(&mut ana, &mut bea);
    assert!(bea.lacking_epochs().is_empty());
    assert_eq!(bea.write_epoch(), ana.write_epoch());
    let newest = KeyDelivery::decode(
        deliveries(&mut ana)
            .iter()
            .find(|b| KeyDelivery::decode(b, collective).is_ok_and(|d| d.epoch() == second))
            .unwrap(),
        collective,
    )
    .unwrap();
    assert!(newest
        .body()
        .shares
        .iter()
        .any(|s| s.recipient == bea_id && s.agreement == new_public));
    assert_eq!(newest.open(bea.identity()).unwrap().unwrap().id(), second);
    let writing = bea.write_epoch();
    // Within the overlap the old secret is still held.
    bea.maintain_secrets(t0 + AGREEMENT_ROTATION_SECS + 60)
        .unwrap();
    assert!(bea.identity().holds_agreement(&old_public));
    // After it, it is destroyed.
    bea.maintain_secrets(t0 + AGREEMENT_ROTATION_SECS + AGREEMENT_OVERLAP_SECS + 60)
        .unwrap();
    assert!(!bea.identity().holds_agreement(&old_public));
    bea.close().unwrap();

    // Seized and the passphrase coerced: the database's identity record holds the signing key
    // only, and the secrets file no trace of the old X25519 secret.
    {
        let store = Store::open(&bea_home, PASS).unwrap();
        let record = store.get(Tree::Identity, b"identity").unwrap().unwrap();
        assert!(
            Identity::unseal(PASS, &record).is_err(),
            "no agreement key in the database"
        );
        let secrets = store.read_secrets().unwrap().unwrap();
        assert!(!secrets.windows(32).any(|w| w == old_secret.as_slice()));
        for tree in Tree::ALL {
            for entry in store.iter(*tree) {
                let (_, value) = entry.unwrap();
                assert!(!value.windows(32).any(|w| w == old_secret.as_slice()));
            }
        }
        store.close().unwrap();
    }
    // What the home holds opens none of the captured deliveries' shares for Bea.
    let bea = Replica::open(&bea_home, PASS).unwrap();
    let mut tried = 0;
    for bytes in &captured {
        let delivery = KeyDelivery::decode(bytes, collective).unwrap();
        if let Some(opened) = delivery.open(bea.identity()) {
            assert!(matches!(opened, Err(EpochError::BadShare)));
            tried += 1;
        }
    }
    assert!(tried >= 1);
    // Yet the node kept both epoch keys across the restart, from its secrets file: it lacks
    // none and writes under the newest.
    assert!(bea.lacking_epochs().is_empty());
    assert_eq!(bea.write_epoch(), writing);
}
