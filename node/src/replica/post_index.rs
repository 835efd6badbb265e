//! The post index on disk: what the replica keeps in memory of every stored post
//! ([`PostMeta`], and where the post is: its own entry, or a pack of posts, `post_pack.rs`),
//! written in chunks so that a start reads a few large values instead of one small value per
//! post.
//!
//! A chunk holds the index entries (content id, [`PostMeta`] and the post's pack, if any) of
//! posts that expire in the same hour (the store's data-key bucket, [`BUCKET_SECS`]), sealed
//! under that hour's data key like the posts themselves: once the hour has passed and its key
//! is destroyed, no copy of the chunk can be read. Its store key is `bucket (u64 BE) ‖ seq (u64
//! BE) ‖ 'p'` (hashed before it reaches the disk, as every store key). Chunks of store format 3
//! have no pack field and a key without the last byte: they are still read, and merged into
//! chunks of the new kind as below.
//!
//! Every write of posts adds one chunk per expiry hour it touches, in the same atomic batch as
//! the posts. Chunks of one hour are merged like a binary counter: a new chunk absorbs the
//! hour's newest chunks while they are no larger than what it holds so far (up to
//! [`MAX_CHUNK`] entries), so an hour of `n` posts has O(log n) chunks and each entry is
//! rewritten O(log n) times. Posts are deleted only when they expire; the chunks of an hour go
//! when the hour has passed ([`PostIndex::past`]), and the entries of posts expired within the
//! current hour are dropped by the replica's expiry at the next start.

use std::collections::{BTreeMap, HashMap};

use lookout_protocol::envelope::PostMeta;
use lookout_protocol::ContentId;

use crate::store::{Batch, Store, StoreError, Tree, BUCKET_SECS};

/// Most entries in one chunk (about 110 bytes each when encoded).
pub(super) const MAX_CHUNK: usize = 4096;

/// One index entry as the replica's core takes it.
type Entry = (ContentId, PostMeta);
/// One index entry as stored: and the pack holding the post (`None`: the post's own entry).
pub(super) type Located = (ContentId, PostMeta, Option<u64>);

/// The last byte of a chunk key of the current kind (entries with their pack).
const LOCATED_TAG: u8 = b'p';

/// The chunks of the post index, per expiry hour: what is needed to write and merge them
/// without reading the index back; and the pack of every packed post.
#[derive(Debug, Default)]
pub(super) struct PostIndex {
    /// Per expiry bucket, its chunks' (seq, entries, located), oldest first (`located`: the
    /// current kind of chunk, with each entry's pack).
    buckets: BTreeMap<u64, Vec<(u64, usize, bool)>>,
    next_seq: u64,
    /// The pack of every post kept in one (`post_pack.rs`); posts not here have their own entry.
    packs: HashMap<ContentId, u64>,
    /// How many posts each pack holds (by the index): the packs a scrub walks.
    pack_posts: BTreeMap<u64, u32>,
    /// The last pack the scrub checked.
    scrubbed: u64,
    /// Posts kept alone (their own entry) that a read found unreadable: checked, and dropped
    /// from the index if they still do not read, by the next rewrite.
    pub(super) suspect_alone: std::cell::RefCell<std::collections::BTreeSet<ContentId>>,
    /// Posts the core deleted (expired) whose removal from the store failed: removed by the
    /// next rewrite (`post_pack.rs`, [`PackRewrite`](super::post_pack::PackRewrite)).
    pub(super) unremoved: Vec<(ContentId, Option<u64>)>,
    /// Packs a read found unreadable or lacking a post the index places in them: checked, and
    /// their lost posts dropped from the index, by the next rewrite.
    pub(super) suspect: std::cell::RefCell<std::collections::BTreeSet<u64>>,
    /// Posts found lost since the store opened (their pack unreadable), and index chunks
    /// skipped at open because they failed authentication or did not decode.
    pub(super) damage: Damage,
}

/// What a replica found damaged in its store since it opened (shown by `status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Posts whose pack (or own entry) did not read: dropped from the index and forgotten by
    /// the core, so the next sync fetches them again.
    pub(crate) lost_posts: usize,
    /// Index chunks that did not read at open: their posts are not claimed as held, and come
    /// back by sync (our own posts still in the outbox are indexed again at open instead,
    /// `Replica::reindex_own_posts`).
    pub(crate) unreadable_chunks: usize,
}

/// One chunk of an hour: (seq, entries, located), as [`PostIndex`] keeps it.
type Chunk = (u64, usize, bool);

/// What [`PostIndex::add`] changed in memory, for [`PostIndex::undo`] if its batch fails.
#[derive(Debug, Default)]
#[must_use]
pub(super) struct AddUndo {
    /// Each post placed anew, with its pack before (`None`: in none).
    packs: Vec<(ContentId, Option<u64>)>,
    /// Each hour changed, with its chunks before (`None`: it had no entry).
    buckets: Vec<(u64, Option<Vec<Chunk>>)>,
}

/// One index chunk rewritten by [`PostIndex::drop_entries`]: its new number of entries
/// (0: removed), for [`PostIndex::commit_chunks`] once the batch is applied.
#[derive(Debug)]
pub(super) struct ChunkChange {
    bucket: u64,
    seq: u64,
    len: usize,
}

fn chunk_key(bucket: u64, seq: u64, located: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.extend_from_slice(&bucket.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    if located {
        key.push(LOCATED_TAG);
    }
    key
}

fn bucket_of(expires: u64) -> u64 {
    expires / BUCKET_SECS
}

/// A chunk's entries, of either kind.
fn decode_chunk(bytes: &[u8], located: bool) -> Option<Vec<Located>> {
    if located {
        postcard::from_bytes::<Vec<Located>>(bytes).ok()
    } else {
        let entries = postcard::from_bytes::<Vec<Entry>>(bytes).ok()?;
        Some(entries.into_iter().map(|(id, m)| (id, m, None)).collect())
    }
}

impl PostIndex {
    /// Reads every chunk of the index: the entries, and the chunks' layout. Chunks that do not
    /// decode are skipped (and reported).
    #[cfg(test)]
    pub(super) fn load(store: &Store) -> Result<(Self, Vec<Entry>), StoreError> {
        Self::load_located(store)
            .map(|(index, entries)| (index, entries.into_iter().map(|(i, m, _)| (i, m)).collect()))
    }

    /// [`PostIndex::load`], with each entry's pack (also kept in the index, [`Self::pack_of`]).
    pub(super) fn load_located(store: &Store) -> Result<(Self, Vec<Located>), StoreError> {
        let mut index = Self::default();
        let mut entries = Vec::new();
        for entry in store.iter(Tree::PostIndex) {
            // A chunk that fails authentication (a flipped bit on flash) is skipped like one
            // that does not decode: its posts are not claimed as held, so sync fetches them
            // again, and their bytes stay where they are (a pack rewrite keeps every post it
            // does not know as deleted).
            let (key, bytes) = match entry {
                Ok(entry) => entry,
                Err(error @ StoreError::TamperedValue { .. }) => {
                    tracing::warn!(%error, "skipping a post index chunk that fails authentication");
                    index.damage.unreadable_chunks += 1;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let located = match key.len() {
                16 => false,
                17 if key.last() == Some(&LOCATED_TAG) => true,
                _ => {
                    tracing::warn!("skipping a post index entry of an unknown kind");
                    continue;
                }
            };
            let Some(chunk) = decode_chunk(&bytes, located) else {
                tracing::warn!("skipping unreadable post index chunk");
                index.damage.unreadable_chunks += 1;
                continue;
            };
            let bucket = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
            let seq = u64::from_be_bytes(key[8..16].try_into().unwrap_or_default());
            index.next_seq = index.next_seq.max(seq.saturating_add(1));
            index
                .buckets
                .entry(bucket)
                .or_default()
                .push((seq, chunk.len(), located));
            for (id, _, pack) in &chunk {
                if let Some(pack) = pack {
                    index.insert_pack(*id, *pack);
                }
            }
            entries.extend(chunk);
        }
        for chunks in index.buckets.values_mut() {
            chunks.sort_unstable();
        }
        Ok((index, entries))
    }

    /// The pack holding post `id`, if it is kept in one.
    pub(super) fn pack_of(&self, id: &ContentId) -> Option<u64> {
        self.packs.get(id).copied()
    }

    /// Forgets that post `id` is in a pack (it was deleted, or moved to its own entry).
    pub(super) fn forget_pack(&mut self, id: &ContentId) -> Option<u64> {
        let pack = self.packs.remove(id)?;
        if let Some(count) = self.pack_posts.get_mut(&pack) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pack_posts.remove(&pack);
            }
        }
        Some(pack)
    }

    /// Places post `id` in pack `pack`.
    fn insert_pack(&mut self, id: ContentId, pack: u64) {
        if self.packs.get(&id) == Some(&pack) {
            return;
        }
        self.forget_pack(&id);
        self.packs.insert(id, pack);
        *self.pack_posts.entry(pack).or_default() += 1;
    }

    /// The next `n` packs to check (a scrub's walk over every pack, round and round).
    pub(super) fn next_packs(&mut self, n: usize) -> Vec<u64> {
        use std::ops::Bound::{Excluded, Unbounded};
        let mut next: Vec<u64> = self
            .pack_posts
            .range((Excluded(self.scrubbed), Unbounded))
            .map(|(pack, _)| *pack)
            .take(n)
            .collect();
        if next.len() < n {
            // Round again from the start.
            next.extend(
                self.pack_posts
                    .keys()
                    .copied()
                    .take_while(|pack| *pack <= self.scrubbed)
                    .take(n - next.len()),
            );
        }
        if let Some(last) = next.last() {
            self.scrubbed = *last;
        }
        next
    }

    /// Adds to `batch` the index entries of `posts` (new posts, written in the same batch):
    /// one chunk per expiry hour, merged with that hour's newest chunks as the module describes
    /// (those are read back from `store`). Returns what it changed in memory, for
    /// [`PostIndex::undo`] if the batch is not applied (on an error here it is undone already).
    pub(super) fn add(
        &mut self,
        store: &Store,
        batch: &mut Batch,
        posts: impl IntoIterator<Item = Located>,
    ) -> Result<AddUndo, StoreError> {
        let mut undo = AddUndo::default();
        let mut by_bucket: BTreeMap<u64, Vec<Located>> = BTreeMap::new();
        for (id, meta, pack) in posts {
            let before = self.pack_of(&id);
            if before != pack {
                undo.packs.push((id, before));
                match pack {
                    Some(pack) => self.insert_pack(id, pack),
                    // Written under its own entry: in no pack.
                    None => {
                        self.forget_pack(&id);
                    }
                }
            }
            by_bucket
                .entry(bucket_of(meta.expires))
                .or_default()
                .push((id, meta, pack));
        }
        for (bucket, mut entries) in by_bucket {
            undo.buckets
                .push((bucket, self.buckets.get(&bucket).cloned()));
            let chunks = self.buckets.entry(bucket).or_default();
            // Absorb the newest chunks while they are no larger than what this one holds.
            while let Some(&(seq, len, located)) = chunks.last() {
                if len > entries.len() || len + entries.len() > MAX_CHUNK {
                    break;
                }
                let key = chunk_key(bucket, seq, located);
                let bytes = match store.get(Tree::PostIndex, &key) {
                    Ok(bytes) => bytes,
                    // Not merged (and so not lost): leave it as it is.
                    Err(StoreError::TamperedValue { .. }) => break,
                    Err(error) => {
                        self.undo(undo);
                        return Err(error);
                    }
                };
                if let Some(bytes) = bytes {
                    match decode_chunk(&bytes, located) {
                        Some(old) => entries.extend(old),
                        // Not merged (and so not lost): leave it as it is.
                        None => break,
                    }
                }
                batch.remove(Tree::PostIndex, &key);
                chunks.pop();
            }
            while !entries.is_empty() {
                let rest = entries.split_off(entries.len().min(MAX_CHUNK));
                let chunk = std::mem::replace(&mut entries, rest);
                let seq = self.next_seq;
                self.next_seq += 1;
                let expires = chunk.iter().map(|(_, m, _)| m.expires).max().unwrap_or(0);
                let value =
                    zeroize::Zeroizing::new(postcard::to_allocvec(&chunk).unwrap_or_default());
                batch.put_expiring_owned(
                    Tree::PostIndex,
                    &chunk_key(bucket, seq, true),
                    value,
                    expires,
                );
                chunks.push((seq, chunk.len(), true));
            }
        }
        Ok(undo)
    }

    /// Puts back what [`PostIndex::add`] changed in memory, its batch not applied: the posts'
    /// packs and the chunks of each hour as they were (the sequence numbers it took stay
    /// taken: unused numbers are harmless).
    pub(super) fn undo(&mut self, undo: AddUndo) {
        for (bucket, chunks) in undo.buckets.into_iter().rev() {
            match chunks {
                Some(chunks) => self.buckets.insert(bucket, chunks),
                None => self.buckets.remove(&bucket),
            };
        }
        for (id, before) in undo.packs.into_iter().rev() {
            match before {
                Some(pack) => self.insert_pack(id, pack),
                None => {
                    self.forget_pack(&id);
                }
            }
        }
    }

    /// How many posts the index places in pack `pack`.
    pub(super) fn placed_in(&self, pack: u64) -> usize {
        self.pack_posts
            .get(&pack)
            .map_or(0, |n| usize::try_from(*n).unwrap_or(usize::MAX))
    }

    /// The posts placed in pack `pack` (a walk over every packed post: for a damaged pack only).
    pub(super) fn posts_in(&self, pack: u64) -> Vec<ContentId> {
        self.packs
            .iter()
            .filter(|(_, held)| **held == pack)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Adds to `batch` the chunks of the hours `buckets` rewritten without the entries of
    /// `lost` (post, and its pack or `None` for its own entry), sealed under the same hour's
    /// key. Nothing in memory changes: pass what it returns to [`Self::commit_chunks`] once
    /// the batch is applied. A chunk that does not read is left as it is (it was skipped at
    /// open, so its entries are not claimed anyway).
    pub(super) fn drop_entries(
        &self,
        store: &Store,
        batch: &mut Batch,
        lost: &std::collections::HashSet<(ContentId, Option<u64>)>,
        buckets: impl IntoIterator<Item = u64>,
    ) -> Result<Vec<ChunkChange>, StoreError> {
        let mut changes = Vec::new();
        for bucket in buckets {
            for &(seq, len, located) in self.buckets.get(&bucket).into_iter().flatten() {
                let key = chunk_key(bucket, seq, located);
                let bytes = match store.get(Tree::PostIndex, &key) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) | Err(StoreError::TamperedValue { .. }) => continue,
                    Err(error) => return Err(error),
                };
                let Some(mut entries) = decode_chunk(&bytes, located) else {
                    continue;
                };
                entries.retain(|(id, _, pack)| !lost.contains(&(*id, *pack)));
                if entries.len() == len {
                    continue;
                }
                // Written back as the current kind, under the same key if it was of it.
                batch.remove(Tree::PostIndex, &key);
                if let Some(expires) = entries.iter().map(|(_, m, _)| m.expires).max() {
                    let value = zeroize::Zeroizing::new(
                        postcard::to_allocvec(&entries).unwrap_or_default(),
                    );
                    batch.put_expiring_owned(
                        Tree::PostIndex,
                        &chunk_key(bucket, seq, true),
                        value,
                        expires,
                    );
                }
                changes.push(ChunkChange {
                    bucket,
                    seq,
                    len: entries.len(),
                });
            }
        }
        Ok(changes)
    }

    /// Records in memory the chunks [`Self::drop_entries`] rewrote, once its batch is applied.
    pub(super) fn commit_chunks(&mut self, changes: Vec<ChunkChange>) {
        for change in changes {
            let Some(chunks) = self.buckets.get_mut(&change.bucket) else {
                continue;
            };
            if change.len == 0 {
                chunks.retain(|(seq, _, _)| *seq != change.seq);
            } else if let Some(chunk) = chunks.iter_mut().find(|(seq, _, _)| *seq == change.seq) {
                *chunk = (change.seq, change.len, true);
            }
        }
    }

    /// Every hour with index chunks.
    pub(super) fn hours(&self) -> Vec<u64> {
        self.buckets.keys().copied().collect()
    }

    /// Adds to `batch` the removal of every chunk of the hours that have passed at `now` (all
    /// their posts have expired).
    pub(super) fn remove_past(&mut self, batch: &mut Batch, now: u64) {
        let current = self.buckets.split_off(&self.past(now));
        for (bucket, chunks) in std::mem::replace(&mut self.buckets, current) {
            for (seq, _, located) in chunks {
                batch.remove(Tree::PostIndex, &chunk_key(bucket, seq, located));
            }
        }
    }

    /// Whether [`Replica::expire`](super::Replica::expire) has anything to write at `now`
    /// besides expired posts: chunks of hours that have passed, removals a failed batch left,
    /// or packs a read found damaged.
    pub(super) fn has_work(&self, now: u64) -> bool {
        self.buckets.range(..self.past(now)).next().is_some()
            || !self.unremoved.is_empty()
            || !self.suspect.borrow().is_empty()
            || !self.suspect_alone.borrow().is_empty()
    }

    /// The first bucket not yet past at `now`.
    fn past(&self, now: u64) -> u64 {
        now / BUCKET_SECS
    }

    /// Number of chunks.
    #[cfg(test)]
    pub(super) fn chunks(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lookout_protocol::envelope::PostKind;
    use lookout_protocol::MemberId;

    pub(in crate::replica) const PASS: &[u8] = b"test passphrase";

    fn meta(n: u64, expires: u64) -> Entry {
        let mut id = [0; 32];
        id[..8].copy_from_slice(&n.to_le_bytes());
        let meta = PostMeta {
            author: MemberId([7; 32]),
            kind: PostKind::Alert,
            target: None,
            timestamp: 1_000 + n,
            expires,
        };
        (ContentId(id), meta)
    }

    /// Writes in batches of many sizes, into a few hours, then reads the index back: every
    /// entry exactly once, few chunks per hour; once an hour has passed its chunks are gone.
    #[test]
    fn chunks_merge_and_hold_every_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(
            &dir.path().join("home"),
            PASS,
            lookout_protocol::passphrase::KdfParams::TESTING,
        )
        .unwrap();
        let base = 10 * BUCKET_SECS;
        let mut index = PostIndex::default();
        let mut written = Vec::new();
        let mut n = 0;
        for (round, size) in [1, 1, 1, 5, 1, 128, 3, 1, 1, 700, 2, 5000, 1, 1]
            .iter()
            .enumerate()
        {
            let mut batch = Batch::new();
            let entries: Vec<Entry> = (0..*size)
                .map(|i| {
                    n += 1;
                    // Three hours, the last one far more often.
                    let hour = [0, 1, 2, 2][(i + round) % 4];
                    meta(n, base + hour * BUCKET_SECS + 5)
                })
                .collect();
            written.extend(entries.iter().copied());
            let _applied = index
                .add(
                    &store,
                    &mut batch,
                    entries.iter().map(|&(i, m)| (i, m, None)),
                )
                .unwrap();
            store.apply_batch(batch).unwrap();
        }
        let (loaded, mut entries) = PostIndex::load(&store).unwrap();
        assert_eq!(loaded.chunks(), index.chunks());
        entries.sort_by_key(|(id, _)| *id);
        written.sort_by_key(|(id, _)| *id);
        assert_eq!(entries, written);
        for chunks in loaded.buckets.values() {
            assert!(chunks.len() <= 16, "{chunks:?}");
            assert!(chunks.iter().all(|(_, len, _)| *len <= MAX_CHUNK));
        }

        // The first two hours pass.
        let mut index = loaded;
        let mut batch = Batch::new();
        index.remove_past(&mut batch, base + 2 * BUCKET_SECS);
        store.apply_batch(batch).unwrap();
        let (_, left) = PostIndex::load(&store).unwrap();
        assert!(!left.is_empty());
        assert!(left
            .iter()
            .all(|(_, m)| bucket_of(m.expires) == bucket_of(base + 2 * BUCKET_SECS)));
        assert_eq!(
            left.len(),
            written
                .iter()
                .filter(|(_, m)| m.expires >= base + 2 * BUCKET_SECS)
                .count()
        );
    }

    /// A violence alert with one phone number and `text` (the node's unit tests of posts).
    pub(in crate::replica) fn draft(text: &str) -> crate::api::PostDraft {
        crate::api::PostDraft {
            category: lookout_protocol::content::Category::Violence,
            severity: lookout_protocol::content::Severity::High,
            description: text.into(),
            phones: vec!["07700 900123".into()],
            phones_as_typed: false,
            plates: vec![],
            names: vec![],
            handles: vec![],
            physical: String::new(),
            area: "Station Road".into(),
            incident_time: None,
            expires_in_days: None,
            language: "en".into(),
            on_behalf: false,
        }
    }

    /// Ana's new home at `home`, founding a collective with the default policy.
    pub(in crate::replica) fn founded_at(home: &std::path::Path) -> crate::replica::Replica {
        let (mut ana, _) = crate::replica::Replica::create(
            home,
            PASS,
            "Ana",
            lookout_protocol::passphrase::KdfParams::TESTING,
        )
        .unwrap();
        ana.create_collective(
            "Night Shift",
            lookout_protocol::membership::Policy::default(),
        )
        .unwrap();
        ana
    }

    /// A store made by this version has its index marker from the start: reopened with posts,
    /// it reads the index and does not rebuild it from the posts (seen here by deleting one
    /// post behind the index's back: a rebuild would not list it). Without the marker (a store
    /// of the format before), the open rebuilds it from the posts.
    #[test]
    fn a_fresh_store_reopened_with_posts_reads_its_index_without_a_rebuild() {
        use crate::replica::Replica;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let mut ana = founded_at(&home);
        let ids: Vec<ContentId> = (0..5)
            .map(|i| ana.post(draft(&format!("alert {i}"))).unwrap())
            .collect();
        assert!(ana.store.remove(Tree::Alerts, &ids[0].0).unwrap());
        ana.close().unwrap();

        let ana = Replica::open_again_for_tests(&home, PASS);
        let posts = ana.collective.as_ref().unwrap().posts();
        assert_eq!(posts.len(), 5, "the index was read, not rebuilt");
        assert!(ana.post_index.chunks() <= 3);
        // A store of the format before: no marker, so the next open rebuilds from the posts.
        ana.store
            .remove(Tree::Meta, super::super::KEY_POST_INDEX)
            .unwrap();
        ana.close().unwrap();
        let ana = Replica::open_again_for_tests(&home, PASS);
        let posts = ana.collective.as_ref().unwrap().posts();
        assert_eq!(posts.len(), 4, "rebuilt from the posts");
        assert!(!posts.contains_key(&ids[0]));
        assert!(ana
            .store
            .get(Tree::Meta, super::super::KEY_POST_INDEX)
            .unwrap()
            .is_some());
        ana.close().unwrap();
        let ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.collective.as_ref().unwrap().posts().len(), 4);
    }

    /// A store of the format before (`post_index_v2`: the index chunks in a sled tree of their
    /// own, laid out here by moving this version's chunks there byte for byte, as the old
    /// version wrote them) opens with every post: the old sled tree is dropped, the index built
    /// again from the posts beside them, its marker replaced; the next open reads it.
    #[test]
    fn a_store_with_the_post_index_in_its_own_sled_tree_is_migrated() {
        use crate::replica::Replica;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let mut ana = founded_at(&home);
        let ids: std::collections::BTreeSet<ContentId> = (0..12)
            .map(|i| ana.post(draft(&format!("alert {i}"))).unwrap())
            .collect();
        ana.close().unwrap();

        // The old layout.
        let store = Store::open_again_for_tests(&home, PASS);
        let db = store.sled_db();
        let shared = db.open_tree(Tree::Alerts.name()).unwrap();
        let own = db.open_tree(Tree::PostIndex.name()).unwrap();
        let mut moved = 0;
        for entry in shared.scan_prefix(Tree::PostIndex.key_prefix()) {
            let (key, value) = entry.unwrap();
            if Tree::PostIndex.owns(&key) {
                own.insert(&key[1..], value).unwrap();
                shared.remove(&key).unwrap();
                moved += 1;
            }
        }
        assert!(moved > 0);
        // sled keeps the database open while a tree handle lives.
        drop((shared, own));
        store
            .remove(Tree::Meta, super::super::KEY_POST_INDEX)
            .unwrap();
        store
            .put(Tree::Meta, super::super::KEY_POST_INDEX_V2, b"1")
            .unwrap();
        assert!(store.iter(Tree::PostIndex).next().is_none());
        store.close().unwrap();

        let ana = Replica::open_again_for_tests(&home, PASS);
        let posts = ana.collective.as_ref().unwrap().posts();
        assert_eq!(
            posts
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            ids
        );
        let names = ana.store.sled_db().tree_names();
        assert!(
            !names
                .iter()
                .any(|n| n.as_ref() == Tree::PostIndex.name().as_bytes()),
            "the old sled tree is dropped"
        );
        assert_eq!(ana.store.len(Tree::Alerts), ids.len());
        assert!(ana.store.len(Tree::PostIndex) > 0);
        for (marker, present) in [
            (super::super::KEY_POST_INDEX, true),
            (super::super::KEY_POST_INDEX_V2, false),
        ] {
            assert_eq!(
                ana.store.get(Tree::Meta, marker).unwrap().is_some(),
                present
            );
        }
        ana.close().unwrap();
        let ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.collective.as_ref().unwrap().posts().len(), ids.len());
    }

    /// A store of the format before whose posts include one value that fails authentication
    /// (one flipped byte, as flash corruption leaves it): the upgrade's rebuild of the index
    /// skips that post and the store opens with the others, as it opened before from its
    /// index (Review 5, S1: the open failed with "tampered value").
    #[test]
    fn an_unreadable_post_is_skipped_by_the_upgrades_rebuild() {
        use crate::replica::Replica;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let mut ana = founded_at(&home);
        let ids: std::collections::BTreeSet<ContentId> = (0..4)
            .map(|i| ana.post(draft(&format!("alert {i}"))).unwrap())
            .collect();
        // One post's value damaged on disk.
        {
            let raw = ana.store.sled_db().open_tree(Tree::Alerts.name()).unwrap();
            let (key, value) = raw
                .iter()
                .map(Result::unwrap)
                .find(|(k, _)| Tree::Alerts.owns(k))
                .unwrap();
            let mut bad = value.to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            raw.insert(key, bad).unwrap();
        }
        // A store of the format before: no marker, so the open rebuilds the index.
        ana.store
            .remove(Tree::Meta, super::super::KEY_POST_INDEX)
            .unwrap();
        ana.close().unwrap();
        let ana = Replica::open_again_for_tests(&home, PASS);
        let posts: std::collections::BTreeSet<ContentId> = ana
            .collective
            .as_ref()
            .unwrap()
            .posts()
            .keys()
            .copied()
            .collect();
        assert_eq!(posts.len(), 3, "the unreadable post alone is left out");
        assert!(posts.is_subset(&ids));
        ana.close().unwrap();
        let ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.collective.as_ref().unwrap().posts().len(), 3);
    }

    /// An index chunk that fails authentication (one flipped bit on disk) no longer stops the
    /// store from opening: it is skipped and reported by `status`, its posts (which a peer has)
    /// are not claimed as held (so sync fetches them again), and the other chunks' posts are
    /// all there.
    #[test]
    fn a_damaged_index_chunk_is_skipped_and_its_posts_are_not_claimed() {
        use crate::replica::{Replica, SetKind};
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ana");
        let mut ana = founded_at(&home);
        let ids: Vec<ContentId> = (0..6)
            .map(|i| ana.post(draft(&format!("alert {i}"))).unwrap())
            .collect();
        let before = ana.collective.as_ref().unwrap().posts().len();
        // A peer has them (a full sync cleared the outbox): posts of ours still in the outbox
        // are indexed again at open instead (`Replica::reindex_own_posts`, Review 10 R10-K2).
        ana.clear_outbox().unwrap();
        ana.close().unwrap();
        let store = Store::open_again_for_tests(&home, PASS);
        let (key, entries) = store
            .iter(Tree::PostIndex)
            .map(Result::unwrap)
            .map(|(key, value)| (key, postcard::from_bytes::<Vec<Located>>(&value).unwrap()))
            .find(|(_, entries)| entries.iter().any(|(id, _, _)| ids.contains(id)))
            .unwrap();
        let raw_key = store.sled_key_for_tests(Tree::PostIndex, &key);
        let raw = store.sled_db().open_tree(Tree::Alerts.name()).unwrap();
        let mut value = raw.get(&raw_key).unwrap().unwrap().to_vec();
        let middle = value.len() / 2;
        value[middle] ^= 0x10;
        raw.insert(&raw_key, value).unwrap();
        drop(raw);
        store.close().unwrap();

        let mut ana = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(ana.status().damaged_index_chunks, 1);
        let claimed: Vec<[u8; 32]> = ana
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(claimed.len(), before - entries.len());
        assert!(entries.iter().all(|(id, _, _)| !claimed.contains(&id.0)));
        assert_eq!(
            ana.fetch(SetKind::Envelopes, &claimed).unwrap().len(),
            claimed.len()
        );
    }
}
