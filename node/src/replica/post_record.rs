//! How a post is kept in the store: its envelope only, exactly as it came (record format 2,
//! store format 3), decrypted and decoded again when it is shown.
//!
//! Record format 1 (store format 2) kept the envelope and, beside it, the decoded post
//! ([`PostRecord`], postcard): about twice the bytes (1.1–1.3 KB for a 632-byte envelope, the
//! store's 2 KiB bucket instead of 1 KiB), all of them sealed, logged and rewritten by sled on
//! every catch-up. Format 2 is `0 || envelope`. Format 1 starts with the envelope's length as a
//! varint, never 0 (an envelope is never empty), so the first byte tells them apart: both are
//! read, and [`migrate`] rewrites a store's format 1 records when it opens ([`Replica::open`]).
//!
//! Reading a post back needs its epoch key: the core keeps it until every post under it has
//! expired ([`lookout_protocol::epoch::EpochInfo::delete_after`]: the epoch's write deadline
//! plus the longest alert lifetime, from the policy fixed at genesis). The signature is not
//! checked again: it was verified when the post was accepted, and the store's authenticated
//! encryption shows the bytes are the ones this device wrote then.
//!
//! [`Replica::open`]: super::Replica::open

use tracing::{info, warn};
use zeroize::Zeroizing;

use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::replica::{PostRecord, State};

use crate::store::{Batch, Store, StoreError, Tree, STORE_FORMAT};

/// The first byte of a record of format 2 (the envelope only).
const ENVELOPE_ONLY: u8 = 0;
/// Records rewritten per store batch by [`migrate`] (bounds its memory).
const MIGRATE_BATCH: usize = 512;

/// The record of a post whose envelope is `envelope`.
pub(super) fn encode(envelope: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut record = Zeroizing::new(Vec::with_capacity(1 + envelope.len()));
    record.push(ENVELOPE_ONLY);
    record.extend_from_slice(envelope);
    record
}

/// The envelope a record holds: what sync sends.
pub(crate) fn envelope_of(record: &[u8]) -> Option<Vec<u8>> {
    match record.split_first()? {
        (&ENVELOPE_ONLY, envelope) => Some(envelope.to_vec()),
        // Format 1: the envelope is its first field; the rest is not decoded.
        _ => postcard::take_from_bytes::<StoredEnvelope>(record)
            .ok()
            .map(|(r, _)| r.envelope),
    }
}

/// The post a record holds, read with the epoch keys `state` holds.
pub(super) fn body_of(record: &[u8], state: &State) -> Option<InnerBody> {
    match record.split_first()? {
        (&ENVELOPE_ONLY, bytes) => {
            let book = state.book();
            match envelope::open_kept(bytes, state.log().collective(), |e| book.key(e)) {
                Ok(opened) => Some(opened.body),
                Err(error) => {
                    warn!(%error, "a stored post does not open");
                    None
                }
            }
        }
        _ => postcard::from_bytes::<PostRecord>(record)
            .ok()
            .map(|r| r.body),
    }
}

/// The first field of a record of format 1 ([`PostRecord::envelope`]), read without decoding
/// the rest.
#[derive(serde::Deserialize)]
struct StoredEnvelope {
    #[serde(with = "serde_bytes")]
    envelope: Vec<u8>,
}

/// Rewrite every post of format 1 as its envelope only (sealed under the same expiry hour),
/// in batches of [`MIGRATE_BATCH`], then mark the store [`STORE_FORMAT`]. A crash part-way
/// leaves records of both formats, all readable, and the next open goes on. A record that
/// fails authentication or to decode is left as it is (it was unreadable before too; the index
/// rebuild skips it the same way). Returns how many were rewritten.
pub(super) fn migrate(store: &mut Store) -> Result<usize, StoreError> {
    let mut rewritten = 0;
    let mut skipped = 0;
    let mut batch = Batch::new();
    for entry in store.iter(Tree::Alerts) {
        let (key, record) = match entry {
            Ok(entry) => entry,
            Err(error @ StoreError::TamperedValue { .. }) => {
                warn!(%error, "a stored post that fails authentication is left as it is");
                skipped += 1;
                continue;
            }
            Err(error) => return Err(error),
        };
        if record.first() == Some(&ENVELOPE_ONLY) {
            continue;
        }
        let Ok(old) = postcard::from_bytes::<PostRecord>(&record) else {
            warn!("an unreadable stored post is left as it is");
            skipped += 1;
            continue;
        };
        batch.put_expiring_owned(Tree::Alerts, &key, encode(&old.envelope), old.body.expires);
        if batch.len() >= MIGRATE_BATCH {
            rewritten += batch.len();
            store.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    rewritten += batch.len();
    store.apply_batch(batch)?;
    // The posts rewritten are durable before the store says it is of the new format.
    store.flush()?;
    store.set_format(STORE_FORMAT)?;
    info!(rewritten, skipped, "posts kept as their envelopes only");
    Ok(rewritten)
}

/// For the forensic oracle ([`crate::store::forensic::recover`]): the padded plaintext of every
/// envelope in `records` (values found in the posts' tree, of either format, or packs) that an epoch key
/// of the secrets file (its plaintext, `secrets`) opens. What a seized device gives whoever
/// holds its passphrase: the secrets file opens with it, and holds the epoch keys.
pub(crate) fn open_with_secrets<'a>(
    records: impl Iterator<Item = &'a [u8]>,
    secrets: &[u8],
) -> Vec<Zeroizing<Vec<u8>>> {
    let Some(secrets) = super::secrets::decode(secrets) else {
        return Vec::new();
    };
    records
        // A pack's posts (`post_pack.rs`) one by one, any other record as it is.
        .flat_map(|record| match super::post_pack::decode(record) {
            Some(posts) => posts.into_iter().map(|(_, r)| r).collect(),
            None => vec![record],
        })
        .filter_map(envelope_of)
        .flat_map(|envelope| {
            secrets
                .epoch_keys
                .iter()
                .filter_map(|key| envelope::plaintext_with(&envelope, key))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lookout_protocol::replica::PostRecord;
    use lookout_protocol::ContentId;

    use super::{encode, ENVELOPE_ONLY};
    use crate::api::{AlertFilter, ErrorCode, Request};
    use crate::replica::post_index::tests::{draft, founded_at};
    use crate::replica::{now, Replica};
    use crate::store::{Store, StoreError, Tree, STORE_FORMAT};

    use crate::replica::post_index::tests::PASS;

    /// Ana's home with a collective, 6 alerts, one of them retracted.
    fn home_with_posts(home: &std::path::Path) -> (Replica, Vec<ContentId>) {
        let mut ana = founded_at(home);
        let mut ids: Vec<ContentId> = (0..6)
            .map(|i| ana.post(draft(&format!("alert {i}"))).unwrap())
            .collect();
        ana.execute(Request::Retract {
            id: ids[0].to_hex(),
            reason: "wrong person".into(),
        })
        .unwrap();
        // Every post's id: the retraction too.
        ids = ana
            .collective
            .as_ref()
            .unwrap()
            .posts()
            .keys()
            .copied()
            .collect();
        assert_eq!(ids.len(), 7);
        (ana, ids)
    }

    fn everything(
        replica: &Replica,
        ids: &[ContentId],
    ) -> (Vec<crate::api::AlertView>, Vec<Vec<u8>>) {
        let filter = AlertFilter {
            include_retracted: true,
            ..AlertFilter::default()
        };
        let raw: Vec<[u8; 32]> = ids.iter().map(|id| id.0).collect();
        (
            replica.alerts(&filter).unwrap(),
            replica
                .fetch(crate::replica::SetKind::Envelopes, &raw)
                .unwrap(),
        )
    }

    /// A store of the format before (store format 2: each post kept as its envelope and its
    /// decoded body, written here by hand as that version wrote it; half of them, as a crash
    /// part-way through the upgrade would leave it) opens, every post is rewritten as its
    /// envelope only, the store is marked format 3, and nothing is lost: the same alerts shown
    /// (the retraction applied), the same envelopes served to peers, still
    /// expiring under their hour's data key.
    #[test]
    fn a_store_of_the_format_before_opens_migrates_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let (ana, ids) = home_with_posts(&home);
        let before = everything(&ana, &ids);
        assert_eq!(before.0.len(), 6);
        assert_eq!(before.1.len(), 7);
        // Format 2's records, for all posts but the last two.
        let state = ana.collective.as_ref().unwrap();
        for id in &ids[..6] {
            let value = ana.store.get(Tree::Alerts, &id.0).unwrap().unwrap();
            assert_eq!(
                value[0], ENVELOPE_ONLY,
                "a new post is kept as its envelope"
            );
            let body = super::body_of(&value, state).unwrap();
            let old = PostRecord {
                envelope: value[1..].to_vec(),
                coarse_time: body.timestamp / 600 * 600,
                received: now(),
                body,
            };
            let bytes = postcard::to_allocvec(&old).unwrap();
            assert_ne!(bytes[0], ENVELOPE_ONLY);
            ana.store
                .put_expiring(Tree::Alerts, &id.0, &bytes, old.body.expires)
                .unwrap();
        }
        ana.store
            .write_check_for_tests(b"lookout store v2")
            .unwrap();
        ana.close().unwrap();
        {
            let store = Store::open_again_for_tests(&home, PASS);
            assert_eq!(store.format(), 2);
            let old_records = store
                .iter(Tree::Alerts)
                .filter(|e| e.as_ref().unwrap().1[0] != ENVELOPE_ONLY)
                .count();
            assert_eq!(old_records, 6);
        }

        let ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.store.format(), STORE_FORMAT);
        let records: Vec<_> = ana.store.iter(Tree::Alerts).map(Result::unwrap).collect();
        assert_eq!(records.len(), 7);
        for (key, value) in &records {
            let envelope = &value[1..];
            assert_eq!(value.as_slice(), encode(envelope).as_slice());
            assert!(before.1.iter().any(|e| e == envelope), "{key:?}");
        }
        let after = everything(&ana, &ids);
        assert_eq!(after, before, "the same alerts and envelopes");
        // Reopened: nothing left to migrate, the same again.
        ana.close().unwrap();
        let mut ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(everything(&ana, &ids), before);
        // Still sealed under their expiry hour: gone with it.
        let expires = crate::replica::post_pack::tests::last_expiry(&ana);
        assert_eq!(
            ana.expire(expires + 2 * crate::store::BUCKET_SECS).unwrap(),
            7
        );
        assert_eq!(ana.store.iter(Tree::Alerts).count(), 0);
    }

    /// A home whose check record names a format newer than this version's is refused with a
    /// clear error (update Lookout) and left as it was; a check record naming no format is
    /// damage, not a newer version.
    #[test]
    fn a_store_of_an_unknown_newer_format_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let (ana, _) = home_with_posts(&home);
        ana.store
            .write_check_for_tests(b"lookout store v5")
            .unwrap();
        ana.close().unwrap();
        for _ in 0..2 {
            let Err(error) = Replica::open(&home, PASS) else {
                panic!("a newer format opened");
            };
            assert_eq!(error.code, ErrorCode::Unsupported);
            assert!(
                error.message.contains("newer version of Lookout")
                    && error.message.contains("store format 5")
                    && error.message.contains("nothing was changed"),
                "{}",
                error.message
            );
            assert!(matches!(
                Store::open(&home, PASS),
                Err(StoreError::TooNew {
                    found: 5,
                    known: STORE_FORMAT,
                    ..
                })
            ));
        }
        for (check, newer) in [
            (&b"lookout store v"[..], false),
            (b"lookout store v12", true),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("bea");
            let (bea, _) = home_with_posts(&home);
            bea.store.write_check_for_tests(check).unwrap();
            bea.close().unwrap();
            match Store::open(&home, PASS) {
                Err(StoreError::TooNew { found: 12, .. }) => assert!(newer),
                Err(StoreError::Corrupt { .. }) => assert!(!newer),
                other => panic!("{:?}", other.map(|s| s.format())),
            }
        }
    }

    /// A post of the smallest envelope bucket (512 bytes of plaintext, a 632-byte envelope) takes
    /// 833 bytes in sled: the record's 670 bytes of plaintext padded to 768 (the expiring
    /// values' ladder), plus the sealing's 65. Format 2's record (the envelope and the decoded
    /// post, about 790 bytes) took 1,024 + 65.
    #[test]
    fn a_small_post_takes_one_and_a_half_times_its_envelope_bucket_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let (ana, ids) = home_with_posts(&home);
        let raw = ana.store.sled_db().open_tree(Tree::Alerts.name()).unwrap();
        let sizes: Vec<usize> = raw
            .iter()
            .map(Result::unwrap)
            .filter(|(k, _)| Tree::Alerts.owns(k))
            .map(|(_, v)| v.len())
            .collect();
        assert_eq!(sizes.len(), ids.len());
        for id in &ids {
            let record = ana.store.get(Tree::Alerts, &id.0).unwrap().unwrap();
            assert_eq!(record.len(), 1 + 632, "an envelope of the 512-byte bucket");
        }
        assert!(sizes.iter().all(|s| *s == 65 + 768), "{sizes:?}");
    }

    /// Review 19's R19-8: docs/PROTOCOL.md says writers refuse an incident time more than 366
    /// days back or ahead of their clock, but only the CLI's and the page's parsers did: the
    /// node, which signs, took any value a client of its control socket gave (an alert "from"
    /// the year 2036, which every reader accepts). The node now refuses what no honest writer
    /// makes, and still takes a day typed east of UTC (midnight UTC of a local today).
    #[test]
    fn the_node_refuses_an_incident_time_no_writer_following_the_rule_makes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ana = founded_at(&dir.path().join("ana"));
        let at = |time: u64| {
            let mut d = draft("When?");
            d.incident_time = Some(time);
            d
        };
        let t = now();
        for refused in [
            t + 10 * 365 * 86_400,
            t + 3600,
            t - 400 * 86_400,
            1,
            u64::MAX,
        ] {
            let error = ana.post(at(refused)).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidInput, "{refused}: {error:?}");
        }
        let tomorrow_utc_midnight = (t / 86_400 + 1) * 86_400;
        for taken in [t, t - 3600, t + 60, tomorrow_utc_midnight, t - 365 * 86_400] {
            ana.post(at(taken)).unwrap();
        }
    }
}
