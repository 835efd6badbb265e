//! Packs: the posts of one write (a sync run, a burst of gossip) that expire in the same hour,
//! kept together as one sealed value instead of one value per post (store format 4).
//!
//! sled's cost is per key (a tree walk, a page delta, a leaf split every 16 keys, each logged),
//! and keyed-hash keys scatter a sync run's posts over the whole tree: at catch-up that was
//! about a third of the receiving node's CPU (docs/BENCHMARKS.md, "Issue 12: branch
//! `catchup`"). A pack holds up to [`PACK_MAX_POSTS`] posts, at most [`PACK_MAX_BYTES`] of
//! them, so that a sled leaf of packs stays under sled's blob threshold and reading one post
//! opens a few KiB, not a whole run.
//!
//! A pack is an entry of the posts' tree under the key `'P' ‖ pack id (u64 BE, random)`, never
//! 32 bytes long as a post's own key is. It is sealed like a post, under the data key of its
//! posts' expiry hour (all of them expire in that hour), so it goes, unreadable, when that
//! hour's key is destroyed. Its plaintext is `1 ‖ count u16 LE ‖ (content id (32) ‖ len u32
//! LE ‖ record)*`, each record a post's own record (`post_record.rs`: `0 ‖ envelope`). A size at
//! rest then shows the size bucket of the pack's posts together, no more than their own values
//! showed. Which pack holds a post is in the post index (`post_index.rs`), written in the same
//! atomic batch. A post deleted before its hour passes is taken out of its pack by rewriting
//! the pack without it ([`Replica::expire`](super::Replica::expire)).
//!
//! # Rewrites and damage
//!
//! A rewrite ([`PackRewrite`]) takes out of a pack only the posts the core deleted; every other
//! post keeps its bytes, sealed again under the hour key the pack was sealed under. The pack,
//! the index chunks it changes and the rest of the write are one atomic batch, and the
//! in-memory index changes only once that batch is applied. What each failure does:
//!
//! - reading a pack or a chunk fails (a database or I/O error), or the batch fails to apply:
//!   nothing is written and nothing in memory changes, so every post reads as before; the
//!   removals are kept and done, and the checks made again, by the next expiry run (every 2 s
//!   in a running node, and at every start);
//! - a crash (power cut, SIGKILL) at any moment: the batch is all on disk or none of it;
//! - a pack fails authentication or does not decode (a flipped bit, a value cut short), found
//!   by any read (a listing, a peer's fetch, a rewrite) or by the scrub ([`SCRUB_PACKS`] packs
//!   read per expiry run): only its own posts are lost. The expiry run's batch removes it and
//!   drops their index entries (the hours' chunks rewritten without them), they are counted in
//!   `status` (`damaged_posts`) and logged, and the core forgets them in the same step
//!   ([`State::forget_post`](lookout_protocol::replica::State::forget_post)): they leave the
//!   reconciliation set at once, so the next sync fetches them again (a post the core had
//!   already deleted is not brought back). A post kept alone that fails authentication is
//!   dealt with the same way;
//! - an index chunk fails authentication when rewritten: it is left as it is (it was skipped at
//!   open, `post_index.rs`, so its posts are not claimed and come back by sync).

use zeroize::Zeroizing;

use lookout_protocol::ContentId;

/// Packs read by each maintenance run's scrub ([`Replica::scrub_packs`](super::Replica)): at
/// one run every 2 s (the node's tick), 100,000 posts (12,500 packs) are all read in 26 minutes,
/// for about 16 reads of 6 KiB per run.
pub(super) const SCRUB_PACKS: usize = 16;
/// Most posts in one pack.
pub(super) const PACK_MAX_POSTS: usize = 8;
/// Most bytes of encoded posts in one pack (a post larger than half of it is kept alone).
pub(super) const PACK_MAX_BYTES: usize = 6 * 1024;
/// The first byte of a pack's plaintext. A record of its own starts with 0 (record format 2)
/// or with its envelope's length as a varint, at least 0x80 (record format 1): never 1.
pub(super) const PACK_VERSION: u8 = 1;
/// The first byte of a pack's store key.
const PACK_TAG: u8 = b'P';
/// Bytes a post takes in a pack besides its record.
const ENTRY_OVERHEAD: usize = 32 + 4;
const HEADER: usize = 1 + 2;

/// The store key of pack `pack`.
pub(super) fn pack_key(pack: u64) -> [u8; 9] {
    let mut key = [0; 9];
    key[0] = PACK_TAG;
    key[1..].copy_from_slice(&pack.to_be_bytes());
    key
}

/// The pack id a store key of the posts' tree names, if it is a pack's.
pub(super) fn pack_of_key(key: &[u8]) -> Option<u64> {
    let (&tag, id) = key.split_first()?;
    (tag == PACK_TAG)
        .then(|| id.try_into().ok().map(u64::from_be_bytes))
        .flatten()
}

/// The bytes a post whose record is `record_len` bytes takes in a pack.
pub(super) fn entry_len(record_len: usize) -> usize {
    ENTRY_OVERHEAD + record_len
}

/// Whether a post of `record_len` bytes is packed at all (else it is kept alone).
pub(super) fn fits(record_len: usize) -> bool {
    entry_len(record_len) <= PACK_MAX_BYTES / 2
}

/// The plaintext of a pack of `posts` (id, record): at most [`PACK_MAX_POSTS`] of them.
pub(super) fn encode<'a>(
    posts: impl ExactSizeIterator<Item = (&'a ContentId, &'a [u8])>,
) -> Zeroizing<Vec<u8>> {
    let mut pack = Zeroizing::new(Vec::with_capacity(HEADER + PACK_MAX_BYTES));
    pack.push(PACK_VERSION);
    let count = u16::try_from(posts.len()).unwrap_or(u16::MAX);
    pack.extend_from_slice(&count.to_le_bytes());
    for (id, record) in posts.take(usize::from(count)) {
        pack.extend_from_slice(&id.0);
        let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
        pack.extend_from_slice(&len.to_le_bytes());
        pack.extend_from_slice(record);
    }
    pack
}

/// The posts of a pack (id, record), in order; `None` if it is not a well-formed pack.
pub(super) fn decode(pack: &[u8]) -> Option<Vec<(ContentId, &[u8])>> {
    let (&version, rest) = pack.split_first()?;
    if version != PACK_VERSION {
        return None;
    }
    let (count, mut rest) = rest.split_at_checked(2)?;
    let count = u16::from_le_bytes(count.try_into().ok()?);
    let mut posts = Vec::with_capacity(usize::from(count).min(PACK_MAX_POSTS * 8));
    for _ in 0..count {
        let (id, after) = rest.split_at_checked(32)?;
        let (len, after) = after.split_at_checked(4)?;
        let len = usize::try_from(u32::from_le_bytes(len.try_into().ok()?)).ok()?;
        let (record, after) = after.split_at_checked(len)?;
        posts.push((ContentId(id.try_into().ok()?), record));
        rest = after;
    }
    Some(posts)
}

/// The record of post `id` in `pack`, if it holds it.
pub(super) fn find<'a>(pack: &'a [u8], id: &ContentId) -> Option<&'a [u8]> {
    decode(pack)?
        .into_iter()
        .find(|(held, _)| held == id)
        .map(|(_, record)| record)
}

/// Splits posts of one expiry hour (given by their record lengths, in the order they are to be
/// kept) into packs: consecutive runs of at most [`PACK_MAX_POSTS`] posts and
/// [`PACK_MAX_BYTES`] bytes. Returns the runs' lengths; a run of one is kept alone.
pub(super) fn plan(record_lens: &[usize]) -> Vec<usize> {
    let mut runs = Vec::new();
    let (mut posts, mut bytes) = (0, 0);
    for &len in record_lens {
        let len = entry_len(len);
        if posts > 0 && (posts == PACK_MAX_POSTS || bytes + len > PACK_MAX_BYTES) {
            runs.push(posts);
            (posts, bytes) = (0, 0);
        }
        posts += 1;
        bytes += len;
    }
    if posts > 0 {
        runs.push(posts);
    }
    runs
}

/// The removal of posts from the store in one batch ([`Replica::remove_post`], then
/// [`Replica::rewrite_packs`]), and what the in-memory index learns once that batch is applied
/// ([`Replica::rewrite_done`]). Nothing in memory changes before: if building or applying the
/// batch fails, every post still reads as before and the removals are tried again by the next
/// rewrite.
#[derive(Debug, Default)]
#[must_use = "pass it to Replica::rewrite_done once its batch is applied (or failed)"]
pub(super) struct PackRewrite {
    /// Posts the core deleted (expired): their pack, or `None` for their own entry.
    removed: Vec<(ContentId, Option<u64>)>,
    /// Posts of packs found unreadable, or missing from the pack the index placed them in.
    lost: Vec<(ContentId, Option<u64>)>,
    /// Damaged packs checked (removed or rewritten in the batch).
    damaged: Vec<u64>,
    /// Damaged posts kept alone (removed in the batch).
    damaged_alone: Vec<ContentId>,
    /// Index chunks rewritten without the lost posts' entries.
    chunks: Vec<super::post_index::ChunkChange>,
    /// Whether damaged packs are dealt with in this batch (an expiry run's, which adds no
    /// index chunk), or left for the next expiry run.
    check_damage: bool,
}

impl PackRewrite {
    /// The rewrite of an expiry run: it also deals with the packs found damaged.
    pub(super) fn checking_damage() -> Self {
        Self {
            check_damage: true,
            ..Self::default()
        }
    }
}

impl super::Replica {
    /// Adds to `rewrite` the removal of post `id` (deleted by the core), and to `batch` that of
    /// its own entry; its place in its pack goes once [`Replica::rewrite_packs`] runs.
    pub(super) fn remove_post(
        &self,
        batch: &mut crate::store::Batch,
        rewrite: &mut PackRewrite,
        id: ContentId,
    ) {
        let pack = self.post_index.pack_of(&id);
        if pack.is_none() {
            batch.remove(crate::store::Tree::Alerts, &id.0);
        }
        rewrite.removed.push((id, pack));
    }

    /// Adds to `batch` each pack holding a post of `rewrite` (or noted as damaged by a read)
    /// rewritten without the posts deleted, or removed once none is left.
    ///
    /// A post is taken out of its pack only when the core deleted it: every other post in the
    /// pack keeps its bytes, including one the core does not know (its index chunk did not
    /// read at open; sync fetches it again, and this copy goes with its hour's key). The
    /// rewritten pack is sealed under the hour's key it was sealed under.
    ///
    /// A pack that fails authentication or does not decode is removed, and the posts the index
    /// placed in it (or that it lacks) are lost: their index entries are dropped in the same
    /// batch, and once it is applied the core forgets them (`rewrite_done`), so the next sync
    /// fetches them again. Other errors return with nothing in memory changed.
    pub(super) fn rewrite_packs(
        &mut self,
        batch: &mut crate::store::Batch,
        rewrite: &mut PackRewrite,
    ) -> Result<(), crate::store::StoreError> {
        use crate::store::{StoreError, Tree, BUCKET_SECS};
        use std::collections::{BTreeMap, BTreeSet, HashSet};
        // Removals a failed batch left, and (in an expiry run) packs a read found damaged.
        for (id, pack) in std::mem::take(&mut self.post_index.unremoved) {
            if pack.is_none() {
                batch.remove(Tree::Alerts, &id.0);
            }
            rewrite.removed.push((id, pack));
        }
        let suspect = if rewrite.check_damage {
            std::mem::take(&mut *self.post_index.suspect.borrow_mut())
        } else {
            BTreeSet::new()
        };
        let mut touched: BTreeMap<u64, BTreeSet<ContentId>> =
            suspect.into_iter().map(|p| (p, BTreeSet::new())).collect();
        for (id, pack) in &rewrite.removed {
            if let Some(pack) = pack {
                touched.entry(*pack).or_default().insert(*id);
            }
        }
        // Posts kept alone that a read found unreadable: lost if they still do not read.
        let alone = if rewrite.check_damage {
            std::mem::take(&mut *self.post_index.suspect_alone.borrow_mut())
        } else {
            BTreeSet::new()
        };
        let checking = (touched.keys().copied().collect::<Vec<_>>(), alone.clone());
        // On an error nothing is written: what was to be checked is checked next time.
        let again = |index: &super::post_index::PostIndex| {
            index
                .suspect
                .borrow_mut()
                .extend(checking.0.iter().copied());
            index
                .suspect_alone
                .borrow_mut()
                .extend(checking.1.iter().copied());
        };
        for id in alone {
            if self.post_index.pack_of(&id).is_some()
                || rewrite.removed.iter().any(|(gone, _)| *gone == id)
            {
                continue;
            }
            match self.store.get(Tree::Alerts, &id.0) {
                Ok(Some(_)) => {}
                Ok(None) | Err(StoreError::TamperedValue { .. }) => {
                    tracing::warn!("a stored post does not read: it is dropped from the index");
                    batch.remove(Tree::Alerts, &id.0);
                    rewrite.lost.push((id, None));
                    rewrite.damaged_alone.push(id);
                }
                Err(error) => {
                    again(&self.post_index);
                    return Err(error);
                }
            }
        }
        for (pack, removed) in touched {
            let key = pack_key(pack);
            let read = match self.store.get_with_hour(Tree::Alerts, &key) {
                Ok(read) => read,
                Err(error @ StoreError::TamperedValue { .. }) => {
                    tracing::warn!(%error, "a pack of posts fails authentication");
                    None
                }
                Err(error) => {
                    again(&self.post_index);
                    return Err(error);
                }
            };
            let held = read
                .as_ref()
                .and_then(|(value, hour)| Some((decode(value)?, (*hour)?)));
            // Posts the index places here that the pack does not give back.
            let present: HashSet<ContentId> = held
                .as_ref()
                .map(|(posts, _)| posts.iter().map(|(id, _)| *id).collect())
                .unwrap_or_default();
            // Only if the pack lacks one of them: a walk over the index, for damage only.
            let placed_present = present
                .iter()
                .filter(|id| self.post_index.pack_of(id) == Some(pack))
                .count();
            let lost: Vec<ContentId> = if placed_present == self.post_index.placed_in(pack) {
                Vec::new()
            } else {
                self.post_index
                    .posts_in(pack)
                    .into_iter()
                    .filter(|id| !removed.contains(id) && !present.contains(id))
                    .collect()
            };
            if !lost.is_empty() || (read.is_some() && held.is_none()) {
                if !rewrite.check_damage {
                    // Left as it is for the expiry run's rewrite, whose batch writes no new
                    // index chunk that could merge the entries being dropped back in.
                    self.post_index.suspect.borrow_mut().insert(pack);
                    // Its deletions wait for that run too: dropped from the index now, they
                    // would leave their bytes in the pack that run keeps whole, readable until
                    // the hour's key expires.
                    rewrite
                        .removed
                        .retain(|(id, p)| !(*p == Some(pack) && removed.contains(id)));
                    self.post_index
                        .unremoved
                        .extend(removed.iter().map(|id| (*id, Some(pack))));
                    continue;
                }
                tracing::warn!(
                    lost = lost.len(),
                    "a pack of posts does not read: its posts are dropped from the index and \
                     fetched again by sync"
                );
                rewrite.damaged.push(pack);
            }
            rewrite
                .lost
                .extend(lost.into_iter().map(|id| (id, Some(pack))));
            let Some((posts, hour)) = held else {
                batch.remove(Tree::Alerts, &key);
                continue;
            };
            let kept: Vec<(ContentId, &[u8])> = posts
                .iter()
                .filter(|(id, _)| !removed.contains(id))
                .map(|(id, record)| (*id, *record))
                .collect();
            if kept.is_empty() {
                batch.remove(Tree::Alerts, &key);
            } else if kept.len() < posts.len() {
                let value = encode(kept.iter().map(|(id, record)| (id, *record)));
                batch.put_expiring_owned(Tree::Alerts, &key, value, hour);
            }
        }
        if !rewrite.lost.is_empty() {
            let lost: HashSet<(ContentId, Option<u64>)> = rewrite.lost.iter().copied().collect();
            // The hours of their entries, as the core has them; all hours if it lacks one.
            let posts = self.collective.as_ref().map(|c| c.posts());
            let hours: Option<BTreeSet<u64>> = rewrite
                .lost
                .iter()
                .map(|(id, _)| posts?.get(id).map(|m| m.expires / BUCKET_SECS))
                .collect();
            let hours = hours.unwrap_or_else(|| self.post_index.hours().into_iter().collect());
            rewrite.chunks = self
                .post_index
                .drop_entries(&self.store, batch, &lost, hours)
                .inspect_err(|_| again(&self.post_index))?;
        }
        Ok(())
    }

    /// Reads the next [`SCRUB_PACKS`] packs (round and round over all of them, one step per
    /// maintenance run), so that a pack damaged on disk is found even if nothing reads its
    /// posts: one that fails authentication or does not decode is noted for the next rewrite,
    /// which drops its posts from the index. Other errors are left for the next round.
    pub(super) fn scrub_packs(&mut self) {
        use crate::store::{StoreError, Tree};
        for pack in self.post_index.next_packs(SCRUB_PACKS) {
            match self.store.get(Tree::Alerts, &pack_key(pack)) {
                Ok(Some(value)) if decode(&value).is_some() => {}
                Ok(_) | Err(StoreError::TamperedValue { .. }) => {
                    tracing::warn!("a pack of posts does not read");
                    self.post_index.suspect.borrow_mut().insert(pack);
                }
                Err(error) => tracing::debug!(%error, "a pack of posts not checked"),
            }
        }
    }

    /// Records what `rewrite`'s batch did, once it was applied (`applied`) or failed: on
    /// success the index forgets the posts removed and lost; on failure nothing changes, and
    /// the removals and damaged packs are kept for the next rewrite.
    pub(super) fn rewrite_done(&mut self, rewrite: PackRewrite, applied: bool) {
        if !applied {
            self.post_index.unremoved.extend(rewrite.removed);
            self.post_index.suspect.borrow_mut().extend(rewrite.damaged);
            self.post_index
                .suspect_alone
                .borrow_mut()
                .extend(rewrite.damaged_alone);
            return;
        }
        if rewrite.removed.is_empty() && rewrite.lost.is_empty() {
            return;
        }
        self.pack_cache.get_mut().take();
        for (id, pack) in rewrite.removed.iter().chain(&rewrite.lost) {
            if pack.is_some() {
                self.post_index.forget_pack(id);
            }
        }
        self.post_index.damage.lost_posts += rewrite.lost.len();
        self.post_index.commit_chunks(rewrite.chunks);
        // The core stops claiming the lost posts now (not only from the next start), so the
        // next sync fetches them again; a post it already deleted is not brought back.
        if let Some(state) = self.collective.as_mut() {
            for (id, _) in &rewrite.lost {
                state.forget_post(id);
            }
        }
    }
}

#[cfg(test)]
pub(in crate::replica) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// When the last post `replica` holds expires.
    pub(in crate::replica) fn last_expiry(replica: &crate::replica::Replica) -> u64 {
        replica
            .collective
            .as_ref()
            .unwrap()
            .posts()
            .values()
            .map(|m| m.expires)
            .max()
            .unwrap()
    }

    #[test]
    fn a_pack_gives_back_each_post_and_refuses_garbage() {
        let ids: Vec<ContentId> = (0..5u8).map(|i| ContentId([i; 32])).collect();
        let records: Vec<Vec<u8>> = (0..5usize).map(|i| vec![0; 100 + i]).collect();
        let pack = encode(ids.iter().zip(records.iter().map(Vec::as_slice)));
        let back = decode(&pack).unwrap();
        assert_eq!(back.len(), 5);
        for ((id, record), (want_id, want)) in back.iter().zip(ids.iter().zip(&records)) {
            assert_eq!(id, want_id);
            assert_eq!(record, want);
            assert_eq!(find(&pack, id), Some(want.as_slice()));
        }
        assert_eq!(find(&pack, &ContentId([9; 32])), None);
        // Cut anywhere, or of another version: refused, never read past its end.
        for cut in 0..pack.len() {
            assert!(decode(&pack[..cut]).is_none(), "cut at {cut}");
        }
        let mut other = pack.to_vec();
        other[0] = 0;
        assert!(decode(&other).is_none());
        assert_eq!(pack_of_key(&pack_key(77)), Some(77));
        assert_eq!(pack_of_key(&[7; 32]), None);
    }

    #[test]
    fn plan_keeps_packs_within_their_bounds() {
        assert_eq!(plan(&[]), Vec::<usize>::new());
        assert_eq!(plan(&[600; 20]), vec![8, 8, 4]);
        // 6 KiB: 2,100-byte records three to a pack would pass it.
        assert_eq!(plan(&[2_100; 5]), vec![2, 2, 1]);
        let runs = plan(&[700; 17]);
        assert_eq!(runs.iter().sum::<usize>(), 17);
        assert!(runs
            .iter()
            .all(|&n| n <= PACK_MAX_POSTS && n * entry_len(700) <= PACK_MAX_BYTES));
        assert!(fits(600) && !fits(PACK_MAX_BYTES));
    }

    /// Ana's and Bea's homes in `dir`, Bea a member knowing the roster and epoch keys, and
    /// Ana's `n` posts (as the sync would send them).
    pub(in crate::replica) fn pair_with_posts(
        dir: &std::path::Path,
        n: usize,
    ) -> (
        crate::replica::Replica,
        crate::replica::Replica,
        Vec<crate::replica::WireItem>,
    ) {
        use crate::replica::post_index::tests::{draft, founded_at, PASS};
        use crate::replica::{Replica, SetKind, WireItem};
        let mut ana = founded_at(&dir.join("ana"));
        let (mut bea, _) = Replica::create(
            &dir.join("bea"),
            PASS,
            "Bea",
            lookout_protocol::passphrase::KdfParams::TESTING,
        )
        .unwrap();
        let view = ana.approve(&bea.join_request().to_code()).unwrap();
        bea.join(&view.invite.unwrap()).unwrap();
        for i in 0..n {
            ana.post(draft(&format!("packed alert {i}"))).unwrap();
        }
        let mut posts = Vec::new();
        for kind in SetKind::ORDER {
            let ids: Vec<[u8; 32]> = ana.sync_items(kind).iter().map(|i| i.id).collect();
            let items: Vec<WireItem> = ana
                .fetch(kind, &ids)
                .unwrap()
                .into_iter()
                .map(|bytes| WireItem { kind, bytes })
                .collect();
            if kind == SetKind::Envelopes {
                posts = items;
            } else {
                for item in &items {
                    bea.ingest(item).unwrap();
                }
            }
        }
        assert_eq!(posts.len(), n);
        (ana, bea, posts)
    }

    /// What a replica shows and serves of every post of `ids`.
    fn seen(
        replica: &crate::replica::Replica,
        ids: &[ContentId],
    ) -> Vec<(Option<lookout_protocol::envelope::InnerBody>, Vec<Vec<u8>>)> {
        ids.iter()
            .map(|id| {
                (
                    replica.stored_post(id),
                    replica
                        .fetch(crate::replica::SetKind::Envelopes, &[id.0])
                        .unwrap(),
                )
            })
            .collect()
    }

    /// A sync run's posts are kept in packs (far fewer store entries than posts); every post
    /// reads back, is served and listed exactly as its author has it, before and after a
    /// reopen; the forensic oracle, which holds the passphrase, reads them while their hour's
    /// key lives, and nothing of them once every post has expired.
    #[test]
    fn a_sync_runs_posts_are_packed_read_back_and_expire_unrecoverably() {
        use crate::replica::post_index::tests::PASS;
        use crate::replica::Replica;
        use crate::store::{forensic, Tree};
        let dir = tempfile::tempdir().unwrap();
        let (ana, mut bea, posts) = pair_with_posts(dir.path(), 20);
        let outcomes = bea.ingest_many(&posts).unwrap();
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, crate::replica::Ingested::Accepted)));
        bea.flush().unwrap();
        let ids: Vec<ContentId> = posts.iter().map(|p| ContentId(p.id())).collect();
        let entries = bea.store.len(Tree::Alerts);
        assert!(
            entries <= 20_usize.div_ceil(PACK_MAX_POSTS) + 1,
            "{entries} entries"
        );
        let want = seen(&ana, &ids);
        assert!(want
            .iter()
            .all(|(body, served)| body.is_some() && served.len() == 1));
        assert_eq!(seen(&bea, &ids), want);
        let filter = crate::api::AlertFilter::default();
        assert_eq!(bea.alerts(&filter).unwrap().len(), 20);

        let home = bea.home().to_path_buf();
        bea.close().unwrap();
        let found = forensic::recover(&home, PASS).unwrap();
        assert!(found.envelopes_opened >= 20, "{}", found.envelopes_opened);
        assert!(found.contains(b"packed alert 17"));
        let mut bea = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(seen(&bea, &ids), want);

        let last = last_expiry(&bea);
        assert_eq!(
            bea.expire(last + 2 * crate::store::BUCKET_SECS).unwrap(),
            20
        );
        assert_eq!(bea.store.len(Tree::Alerts), 0);
        assert!(seen(&bea, &ids)
            .iter()
            .all(|(b, s)| b.is_none() && s.is_empty()));
        bea.close().unwrap();
        let found = forensic::recover(&home, PASS).unwrap();
        assert!(!found.contains(b"packed alert"));
    }

    /// A post deleted while others of its pack live on (expiry part-way through an hour) is
    /// taken out of the pack: the pack is rewritten with the others only, which still read.
    #[test]
    fn a_post_deleted_from_a_pack_is_gone_and_its_neighbours_stay() {
        use crate::store::Tree;
        let dir = tempfile::tempdir().unwrap();
        let (_ana, mut bea, posts) = pair_with_posts(dir.path(), 5);
        bea.ingest_many(&posts).unwrap();
        let ids: Vec<ContentId> = posts.iter().map(|p| ContentId(p.id())).collect();
        let pack = bea.post_index.pack_of(&ids[2]).unwrap();
        assert!(ids
            .iter()
            .all(|id| bea.post_index.pack_of(id) == Some(pack)));
        let before = seen(&bea, &ids);
        assert!(
            bea.stored_post(&ids[2]).is_some(),
            "read once: the pack is cached"
        );

        // As `Replica::expire` deletes one post.
        remove_one(&mut bea, ids[2], true).unwrap();

        assert_eq!(bea.store.len(Tree::Alerts), 1);
        let raw = bea
            .store
            .get(Tree::Alerts, &pack_key(pack))
            .unwrap()
            .unwrap();
        let held: Vec<ContentId> = decode(&raw)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(held.len(), 4);
        assert!(!held.contains(&ids[2]));
        assert!(bea.stored_post(&ids[2]).is_none());
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert_eq!(seen(&bea, &[*id])[0], before[i]);
        }
    }

    /// A home of store format 3 (as main wrote it: every post under its own id, index chunks
    /// without packs, laid out here by rewriting this version's chunks as that version wrote
    /// them) opens with every post, is marked as of format 4 (so format 3's version refuses it
    /// from then on), and its old chunks merge with new ones.
    #[test]
    fn a_store_of_format_3_opens_is_marked_4_and_loses_nothing() {
        use crate::replica::post_index::tests::{draft, founded_at, PASS};
        use crate::replica::Replica;
        use crate::store::{Store, Tree, STORE_FORMAT};
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let mut ana = founded_at(&home);
        let mut ids: Vec<ContentId> = (0..6)
            .map(|i| ana.post(draft(&format!("old alert {i}"))).unwrap())
            .collect();
        let want = seen(&ana, &ids);
        ana.close().unwrap();

        let store = Store::open_again_for_tests(&home, PASS);
        let chunks: Vec<_> = store.iter(Tree::PostIndex).map(Result::unwrap).collect();
        assert!(!chunks.is_empty());
        for (key, value) in chunks {
            assert_eq!(key.len(), 17, "this version writes chunks with packs");
            let entries: Vec<crate::replica::post_index::Located> =
                postcard::from_bytes(&value).unwrap();
            let expires = entries.iter().map(|(_, m, _)| m.expires).max().unwrap();
            let old: Vec<_> = entries.into_iter().map(|(id, m, _)| (id, m)).collect();
            store
                .put_expiring(
                    Tree::PostIndex,
                    &key[..16],
                    &postcard::to_allocvec(&old).unwrap(),
                    expires,
                )
                .unwrap();
            store.remove(Tree::PostIndex, &key).unwrap();
        }
        store.write_check_for_tests(b"lookout store v3").unwrap();
        store.close().unwrap();

        let mut ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.store.format(), STORE_FORMAT);
        assert_eq!(STORE_FORMAT, 4);
        assert_eq!(seen(&ana, &ids), want);
        ids.extend((0..3).map(|i| ana.post(draft(&format!("new alert {i}"))).unwrap()));
        ana.close().unwrap();
        let ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.collective.as_ref().unwrap().posts().len(), 9);
        assert_eq!(&seen(&ana, &ids)[..6], &want[..]);
        assert!(seen(&ana, &ids)
            .iter()
            .all(|(b, s)| b.is_some() && s.len() == 1));
    }

    /// As `Replica::expire` deletes one post `id`: its removal, the packs' rewrite and the
    /// batch (failed by the store if `ok` is false), and what the index learns.
    fn remove_one(
        bea: &mut crate::replica::Replica,
        id: ContentId,
        ok: bool,
    ) -> Result<(), crate::store::StoreError> {
        let mut batch = crate::store::Batch::new();
        let mut rewrite = PackRewrite::checking_damage();
        bea.remove_post(&mut batch, &mut rewrite, id);
        if !ok {
            bea.store.fail_next_batch_for_tests();
        }
        let written = bea
            .rewrite_packs(&mut batch, &mut rewrite)
            .and_then(|()| bea.store.apply_batch(batch));
        bea.rewrite_done(rewrite, written.is_ok());
        written
    }

    /// The posts a pack holds on disk.
    fn held_in(bea: &crate::replica::Replica, pack: u64) -> Vec<ContentId> {
        let raw = bea
            .store
            .get(crate::store::Tree::Alerts, &pack_key(pack))
            .unwrap()
            .unwrap();
        decode(&raw)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Review 9, catchup note (a): a pack rewrite whose batch fails changes nothing in memory
    /// (the post being deleted and its pack-mates all read as before), and the removal is done
    /// by the next rewrite (here, the next expiry run) instead of being forgotten. The same
    /// for a whole expiry run that fails: the next one removes what it had to.
    #[test]
    fn a_failed_pack_rewrite_changes_nothing_and_the_next_one_does_it() {
        use crate::store::Tree;
        let dir = tempfile::tempdir().unwrap();
        let (_ana, mut bea, posts) = pair_with_posts(dir.path(), 5);
        bea.ingest_many(&posts).unwrap();
        let ids: Vec<ContentId> = posts.iter().map(|p| ContentId(p.id())).collect();
        let pack = bea.post_index.pack_of(&ids[2]).unwrap();
        let before = seen(&bea, &ids);

        assert!(remove_one(&mut bea, ids[2], false).is_err());
        assert_eq!(bea.post_index.pack_of(&ids[2]), Some(pack));
        assert_eq!(seen(&bea, &ids), before, "every post reads as before");
        assert_eq!(held_in(&bea, pack).len(), 5);

        // The next expiry run (nothing expires) does the removal left over.
        assert_eq!(bea.expire(crate::replica::now()).unwrap(), 0);
        let held = held_in(&bea, pack);
        assert_eq!(held.len(), 4);
        assert!(!held.contains(&ids[2]));
        assert_eq!(bea.post_index.pack_of(&ids[2]), None);
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert_eq!(seen(&bea, &[*id])[0], before[i]);
        }

        // Every post expires; the run's batch fails; the next run removes the pack.
        let last = last_expiry(&bea);
        bea.store.fail_next_batch_for_tests();
        assert!(bea.expire(last).is_err());
        assert_eq!(bea.store.len(Tree::Alerts), 1, "nothing applied");
        bea.expire(last).unwrap();
        assert_eq!(bea.store.len(Tree::Alerts), 0, "the pack is gone");
    }

    /// Rewrites post `gone`'s index entry out of the chunks on disk, as a chunk that did not
    /// read at open leaves it: the core does not know the post, its bytes are in its pack.
    fn unindex(bea: &crate::replica::Replica, gone: ContentId) {
        use crate::replica::post_index::Located;
        use crate::store::Tree;
        let chunks: Vec<_> = bea
            .store
            .iter(Tree::PostIndex)
            .map(Result::unwrap)
            .collect();
        for (key, value) in chunks {
            let mut entries: Vec<Located> = postcard::from_bytes(&value).unwrap();
            let expires = entries.iter().map(|(_, m, _)| m.expires).max().unwrap();
            entries.retain(|(id, _, _)| *id != gone);
            bea.store
                .put_expiring(
                    Tree::PostIndex,
                    &key,
                    &postcard::to_allocvec(&entries).unwrap(),
                    expires,
                )
                .unwrap();
        }
    }

    /// Review 9, catchup note (b): a post the core does not know (its index entry did not read
    /// at open) keeps its bytes when a pack-mate is taken out of the pack: only a post the
    /// core deleted leaves. Not claimed as held, it is fetched again by sync and reads.
    #[test]
    fn a_pack_rewrite_keeps_a_post_it_does_not_know_as_deleted() {
        use crate::replica::post_index::tests::PASS;
        use crate::replica::{Ingested, Replica, SetKind};
        let dir = tempfile::tempdir().unwrap();
        let (_ana, mut bea, posts) = pair_with_posts(dir.path(), 5);
        bea.ingest_many(&posts).unwrap();
        let ids: Vec<ContentId> = posts.iter().map(|p| ContentId(p.id())).collect();
        let pack = bea.post_index.pack_of(&ids[4]).unwrap();
        unindex(&bea, ids[4]);
        let home = bea.home().to_path_buf();
        bea.close().unwrap();
        let mut bea = Replica::open_again_for_tests(&home, PASS);
        assert!(!bea
            .collective
            .as_ref()
            .unwrap()
            .posts()
            .contains_key(&ids[4]));
        assert!(!bea
            .sync_items(SetKind::Envelopes)
            .iter()
            .any(|i| i.id == ids[4].0));

        remove_one(&mut bea, ids[2], true).unwrap();
        let held = held_in(&bea, pack);
        assert_eq!(held.len(), 4);
        assert!(held.contains(&ids[4]), "a post not known as deleted stays");
        assert!(!held.contains(&ids[2]));

        // Sync fetches it again: taken in, and it reads.
        let outcome = bea.ingest_many(&posts[4..5]).unwrap();
        assert!(matches!(outcome[..], [Ingested::Accepted]), "{outcome:?}");
        assert!(bea.stored_post(&ids[4]).is_some());
    }

    /// Damages the value of pack `pack` in the store at `home` (closed) on disk: a flipped bit,
    /// or cut short.
    fn damage_pack(home: &std::path::Path, pack: u64, cut: bool) {
        use crate::replica::post_index::tests::PASS;
        use crate::store::{Store, Tree};
        let store = Store::open(home, PASS).unwrap();
        let key = store.sled_key_for_tests(Tree::Alerts, &pack_key(pack));
        let raw = store.sled_db().open_tree(Tree::Alerts.name()).unwrap();
        let mut value = raw.get(&key).unwrap().unwrap().to_vec();
        if cut {
            value.truncate(value.len() / 2);
        } else {
            let middle = value.len() / 2;
            value[middle] ^= 0x04;
        }
        raw.insert(&key, value).unwrap();
        drop(raw);
        store.close().unwrap();
    }

    /// Review 9, catchup note (c): two packs damaged on disk (one bit flipped, one cut short)
    /// lose only their own posts. The store opens; every other post is listed and served
    /// (a peer's fetch of all of them is answered, not failed); the damage is reported by
    /// `status` once found; once the maintenance run has dropped them the lost posts are not
    /// claimed as held (then and after a restart), so the next sync fetches them again, and
    /// then every post reads.
    #[test]
    fn a_damaged_pack_loses_only_its_posts_which_the_next_sync_fetches_again() {
        use crate::replica::post_index::tests::PASS;
        use crate::replica::{Ingested, Replica, SetKind};
        let dir = tempfile::tempdir().unwrap();
        let (ana, mut bea, posts) = pair_with_posts(dir.path(), 20);
        bea.ingest_many(&posts).unwrap();
        bea.flush().unwrap();
        let ids: Vec<ContentId> = posts.iter().map(|p| ContentId(p.id())).collect();
        let mut packs: Vec<u64> = ids
            .iter()
            .filter_map(|id| bea.post_index.pack_of(id))
            .collect();
        packs.sort_unstable();
        packs.dedup();
        assert_eq!(packs.len(), 3);
        let (flipped, cut) = (packs[0], packs[1]);
        let lost: Vec<ContentId> = ids
            .iter()
            .copied()
            .filter(|id| [flipped, cut].contains(&bea.post_index.pack_of(id).unwrap()))
            .collect();
        assert!(!lost.is_empty() && lost.len() < ids.len());
        let want = seen(&ana, &ids);
        let home = bea.home().to_path_buf();
        bea.close().unwrap();
        damage_pack(&home, flipped, false);
        damage_pack(&home, cut, true);

        let mut bea = Replica::open_again_for_tests(&home, PASS);
        let listed = bea.alerts(&crate::api::AlertFilter::default()).unwrap();
        assert_eq!(listed.len(), ids.len() - lost.len());
        let raw: Vec<[u8; 32]> = ids.iter().map(|id| id.0).collect();
        let served = bea.fetch(SetKind::Envelopes, &raw).unwrap();
        assert_eq!(served.len(), ids.len() - lost.len());
        for (i, id) in ids.iter().enumerate() {
            let got = seen(&bea, &[*id]).remove(0);
            if lost.contains(id) {
                assert!(got.0.is_none() && got.1.is_empty());
            } else {
                assert_eq!(got, want[i]);
            }
        }
        // The next maintenance run drops the lost posts from the index, and says so; the core
        // forgets them at once, so they are no longer claimed before any restart.
        bea.expire(crate::replica::now()).unwrap();
        assert_eq!(bea.status().damaged_posts, lost.len());
        let claimed_now: Vec<[u8; 32]> = bea
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(claimed_now.len(), ids.len() - lost.len());
        assert!(lost.iter().all(|id| !claimed_now.contains(&id.0)));
        assert_eq!(
            bea.store.len(crate::store::Tree::Alerts),
            1,
            "the damaged packs went"
        );
        bea.close().unwrap();

        let mut bea = Replica::open_again_for_tests(&home, PASS);
        let claimed: Vec<[u8; 32]> = bea
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(claimed.len(), ids.len() - lost.len());
        assert!(lost.iter().all(|id| !claimed.contains(&id.0)));
        assert_eq!(
            bea.fetch(SetKind::Envelopes, &claimed).unwrap().len(),
            claimed.len()
        );
        // The sync: Ana sends what Bea lacks.
        let lacking: Vec<_> = posts
            .iter()
            .filter(|p| !claimed.contains(&p.id()))
            .cloned()
            .collect();
        assert_eq!(lacking.len(), lost.len());
        let outcomes = bea.ingest_many(&lacking).unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, Ingested::Accepted)));
        assert_eq!(seen(&bea, &ids), want);
        bea.close().unwrap();
        let bea = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(seen(&bea, &ids), want);
    }
}
