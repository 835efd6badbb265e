//! The in-memory index of every live post ([`Posts`]): what [`State`](super::State) keeps of
//! each post while the post itself stays in the caller's store.
//!
//! A node holds one entry per live alert (100,000 and more), so an entry is kept small: the
//! author is an index into a table of the authors seen (a collective has at most a few hundred
//! members) instead of a 32-byte id, and the target of the few posts that refer to another
//! (edits, retractions, corroborations) is kept beside the map rather than in every entry. An
//! entry is the 32-byte content id and 24 bytes of [`Slot`]; [`PostMeta`], the public view of
//! an entry, is rebuilt on every read.

use std::collections::{BTreeMap, HashMap};

use crate::envelope::{PostKind, PostMeta};
use crate::ids::{ContentId, MemberId};

/// What is kept of one post in the map (24 bytes).
#[derive(Clone, Copy, Debug)]
struct Slot {
    timestamp: u64,
    expires: u64,
    /// Index into [`Posts::authors`].
    author: u32,
    kind: PostKind,
    /// Whether [`Posts::targets`] holds its target (looked up only then).
    has_target: bool,
}

/// Every live post's [`PostMeta`], by content id, in content-id order.
#[derive(Debug, Default)]
pub struct Posts {
    map: BTreeMap<ContentId, Slot>,
    /// Every author of a post ever inserted (never shrinks: bounded by the members there were).
    authors: Vec<MemberId>,
    author_index: HashMap<MemberId, u32>,
    /// The target of each post that has one.
    targets: HashMap<ContentId, ContentId>,
}

impl Posts {
    /// How many posts are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no post is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the post `id` is held.
    pub fn contains_key(&self, id: &ContentId) -> bool {
        self.map.contains_key(id)
    }

    /// What is kept of the post `id`.
    pub fn get(&self, id: &ContentId) -> Option<PostMeta> {
        self.map.get(id).map(|slot| self.meta(id, slot))
    }

    /// Every post held, in content-id order.
    pub fn iter(&self) -> impl Iterator<Item = (ContentId, PostMeta)> + '_ {
        self.map.iter().map(|(id, slot)| (*id, self.meta(id, slot)))
    }

    /// The ids of every post held, in order.
    pub fn keys(&self) -> impl Iterator<Item = &ContentId> + '_ {
        self.map.keys()
    }

    /// What is kept of every post held, in content-id order.
    pub fn values(&self) -> impl Iterator<Item = PostMeta> + '_ {
        self.iter().map(|(_, meta)| meta)
    }

    /// The ids and expiry times of every post held, in content-id order (no author lookup).
    pub(super) fn expiries(&self) -> impl Iterator<Item = (&ContentId, u64)> + '_ {
        self.map.iter().map(|(id, slot)| (id, slot.expires))
    }

    /// The ids and coarse times of every post held (the reconciliation set), in content-id
    /// order.
    pub(super) fn coarse_times(&self) -> impl Iterator<Item = (&ContentId, u64)> + '_ {
        self.map
            .iter()
            .map(|(id, slot)| (id, crate::envelope::coarse(slot.timestamp)))
    }

    fn meta(&self, id: &ContentId, slot: &Slot) -> PostMeta {
        PostMeta {
            author: self.authors[slot.author as usize],
            kind: slot.kind,
            target: if slot.has_target {
                self.targets.get(id).copied()
            } else {
                None
            },
            timestamp: slot.timestamp,
            expires: slot.expires,
        }
    }

    /// The slot of `meta`, its author added to the table if new; `None` only when the table
    /// already holds 2^32 authors (never reached: that table alone would need 128 GiB).
    fn slot(&mut self, meta: &PostMeta) -> Option<Slot> {
        let author = match self.author_index.get(&meta.author) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.authors.len()).ok()?;
                self.authors.push(meta.author);
                self.author_index.insert(meta.author, i);
                i
            }
        };
        Some(Slot {
            timestamp: meta.timestamp,
            expires: meta.expires,
            author,
            kind: meta.kind,
            has_target: meta.target.is_some(),
        })
    }

    /// Add a post; false (and nothing changed) if it is already held (or the author table is
    /// full, see [`Posts::slot`]).
    pub(super) fn insert(&mut self, id: ContentId, meta: PostMeta) -> bool {
        if self.map.contains_key(&id) {
            return false;
        }
        let Some(slot) = self.slot(&meta) else {
            return false;
        };
        if let Some(target) = meta.target {
            self.targets.insert(id, target);
        }
        self.map.insert(id, slot);
        true
    }

    /// Add many posts at once (a start reading its index back): the map is rebuilt from one
    /// sorted run, so its nodes are full rather than half full as after one-by-one insertion.
    /// Returns the posts that were not held before.
    pub(super) fn extend(
        &mut self,
        mut entries: Vec<(ContentId, PostMeta)>,
    ) -> Vec<(ContentId, PostMeta)> {
        // One id twice in `entries`: the first is kept, as by `insert` (the sort is stable).
        entries.sort_by_key(|(id, _)| *id);
        entries.dedup_by_key(|(id, _)| *id);
        entries.retain(|(id, _)| !self.map.contains_key(id));
        let mut slots = Vec::with_capacity(entries.len());
        let mut added = Vec::with_capacity(entries.len());
        for (id, meta) in entries {
            let Some(slot) = self.slot(&meta) else {
                continue;
            };
            slots.push((id, slot));
            if let Some(target) = meta.target {
                self.targets.insert(id, target);
            }
            added.push((id, meta));
        }
        let old = std::mem::take(&mut self.map);
        // `BTreeMap::from_iter` sorts (already sorted here) and bulk-builds full nodes.
        self.map = old.into_iter().chain(slots).collect();
        added
    }

    /// Forget a post; what was kept of it, if it was held.
    pub(super) fn remove(&mut self, id: &ContentId) -> Option<PostMeta> {
        let slot = self.map.remove(id)?;
        let meta = self.meta(id, &slot);
        self.targets.remove(id);
        Some(meta)
    }
}

impl<'a> IntoIterator for &'a Posts {
    type Item = (ContentId, PostMeta);
    type IntoIter = Box<dyn Iterator<Item = (ContentId, PostMeta)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(author: u8, target: Option<u8>, timestamp: u64) -> PostMeta {
        PostMeta {
            author: MemberId([author; 32]),
            kind: if target.is_some() {
                PostKind::Edit
            } else {
                PostKind::Alert
            },
            target: target.map(|t| ContentId([t; 32])),
            timestamp,
            expires: timestamp + 100,
        }
    }

    fn id(n: u8) -> ContentId {
        ContentId([n; 32])
    }

    /// Every field of every post comes back as inserted, one by one or in bulk, with the first
    /// of two entries for one id kept.
    #[test]
    fn posts_give_back_every_field_as_inserted() {
        let mut one = Posts::default();
        let mut bulk = Posts::default();
        let entries: Vec<_> = (0..50u8)
            .map(|n| {
                (
                    id(n.wrapping_mul(37)),
                    meta(n % 3, (n % 5 == 0).then_some(n / 2), u64::from(n) * 1000),
                )
            })
            .collect();
        for (i, m) in &entries {
            assert!(one.insert(*i, *m));
        }
        assert!(!one.insert(entries[0].0, meta(9, None, 1)));
        let (first, rest) = entries.split_at(20);
        assert_eq!(bulk.extend(first.to_vec()).len(), 20);
        let mut again = rest.to_vec();
        again.push((entries[0].0, meta(9, None, 1)));
        again.push((rest[0].0, meta(8, None, 2)));
        assert_eq!(bulk.extend(again).len(), rest.len());
        assert_eq!(one.len(), 50);
        assert_eq!(
            one.iter().collect::<Vec<_>>(),
            bulk.iter().collect::<Vec<_>>()
        );
        for (i, m) in &entries {
            assert_eq!(one.get(i), Some(*m));
            assert_eq!(bulk.get(i), Some(*m));
        }
        let mut sorted = entries.clone();
        sorted.sort_by_key(|(i, _)| *i);
        assert_eq!(one.iter().collect::<Vec<_>>(), sorted);
        assert_eq!(one.remove(&entries[5].0), Some(entries[5].1));
        assert_eq!(one.remove(&entries[5].0), None);
        assert_eq!(one.get(&entries[5].0), None);
        assert!(!one.targets.contains_key(&entries[5].0));
        assert!(one.insert(entries[5].0, meta(7, Some(1), 5)));
        assert_eq!(one.get(&entries[5].0), Some(meta(7, Some(1), 5)));
    }
}
