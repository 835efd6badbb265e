//! Write-behind for posts, in the node's event loop: an accepted post (gossiped, or one of
//! ours) is forwarded or published and shown to watchers as soon as its checks pass, and its
//! store writes (the post, its index entry, for our own the outbox mark and the sequence
//! number) are made later, in one batch. A post of ours: once the loop has let the tasks woken
//! by the publish run (`EventLoop::run` in `node/src/node.rs`); then the group commit makes it
//! durable, and only after that is it acknowledged to its author. Received posts: they wait
//! for each other, up to [`crate::commit::WRITE_BEHIND`] after the first
//! ([`crate::commit::WriteBehind`]), and all go in one batch. Before anything else on the loop
//! that may read or write the store (a command other than `post`, a tick, any network event
//! other than a gossiped message or a ping's result, a gossiped item that is not an accepted
//! alert) the loop makes
//! the held writes first, so nothing reads the store without them and every write keeps its
//! order.
//!
//! If the batch fails (a database or I/O error), the received posts in it are lost from disk:
//! the core forgets them ([`State::forget_post`](lookout_protocol::replica::State::forget_post)),
//! so they are no longer claimed and the next sync fetches them again. Our own writes held with
//! them (a post of ours, its outbox mark, the sequence number) are then made again alone, so a
//! post of ours is answered by its own writes' outcome, not by that of received posts written
//! with it.
//!
//! Off unless [`Replica::hold_post_writes`] turned it on: the node turns it on only around a
//! `post` command and a gossiped post (the command line, the tests, sync and every other path
//! write at once).

use std::collections::HashMap;

use lookout_protocol::replica::Effect;
use lookout_protocol::ContentId;

use super::ingest::Unpersisted;
use super::{store_error, Replica, StoredRecord};
use crate::api::ApiError;
use crate::store::{Batch, Tree};
use tracing::warn;
use zeroize::Zeroizing;

/// Store writes held for [`Replica::write_held`].
#[derive(Default)]
pub(super) struct HeldWrites {
    /// Whether posts' writes are held at all.
    on: bool,
    /// Plain writes (outbox marks, the sequence number), applied first: kept apart so that
    /// they can be made again without the received posts ([`Replica::write_held`]).
    plain: Vec<PlainWrite>,
    /// The core's effects of the posts accepted (their notes already turned into events).
    effects: Vec<Effect>,
}

/// One plain write held with a post: `value` under `key` in `tree` (sealed under the data
/// key of `expires`, if any).
struct PlainWrite {
    tree: Tree,
    key: Vec<u8>,
    value: Zeroizing<Vec<u8>>,
    expires: Option<u64>,
}

/// The batch of `writes`, in order.
fn batch_of(writes: &[PlainWrite]) -> Batch {
    let mut batch = Batch::new();
    for w in writes {
        match w.expires {
            Some(expires) => batch.put_expiring(w.tree, &w.key, &w.value, expires),
            None => batch.put(w.tree, &w.key, &w.value),
        };
    }
    batch
}

impl Replica {
    /// Hold accepted posts' store writes until [`Replica::write_held`] (the node's event loop).
    pub fn hold_post_writes(&mut self, on: bool) {
        self.held.on = on;
    }

    /// Whether writes are held, waiting for [`Replica::write_held`].
    pub fn holds_writes(&self) -> bool {
        !self.held.plain.is_empty() || !self.held.effects.is_empty()
    }

    /// How many posts' writes are held.
    pub fn held_posts(&self) -> usize {
        self.held
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::PutPost { .. }))
            .count()
    }

    /// Take in a post [`Replica::validate`] accepted: watchers hear of it now; its writes are
    /// held if holding is on, else made at once (as [`Replica::persist`]).
    pub fn accept_post(&mut self, writes: Unpersisted) -> Result<(), ApiError> {
        if !self.held.on {
            return self.persist(writes);
        }
        let (notes, effects): (Vec<Effect>, Vec<Effect>) = writes
            .0
            .into_iter()
            .partition(|e| matches!(e, Effect::Note(_)));
        // The notes read the posts from their held writes (not copied, not from the store).
        let posted: HashMap<ContentId, &StoredRecord> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::PutPost { id, record } => Some((*id, &**record)),
                _ => None,
            })
            .collect();
        for effect in notes {
            if let Effect::Note(note) = effect {
                self.note(note, &posted);
            }
        }
        self.held.effects.extend(effects);
        Ok(())
    }

    /// A write of ours that goes with a post: held with it if holding is on, else made now.
    pub(super) fn put_with_post(
        &mut self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
        expires: Option<u64>,
    ) -> Result<(), ApiError> {
        if self.held.on {
            self.held.plain.push(PlainWrite {
                tree,
                key: key.to_vec(),
                value: Zeroizing::new(value.to_vec()),
                expires,
            });
            return Ok(());
        }
        match expires {
            Some(expires) => self.store.put_expiring(tree, key, value, expires),
            None => self.store.put(tree, key, value),
        }
        .map_err(store_error)
    }

    /// Make the held writes, in one atomic batch (not flushed). Whether there were any.
    ///
    /// If that batch fails, the received posts in it (posts not ours) are forgotten by the core
    /// (`Replica::apply_onto`, on every path), so sync fetches them again, and the rest (our own
    /// writes) is made again in a batch of its own: the error returned is then that batch's, or
    /// none if it was made. A batch of received posts alone that fails returns its error once
    /// they are forgotten.
    pub fn write_held(&mut self) -> Result<bool, ApiError> {
        if !self.holds_writes() {
            return Ok(false);
        }
        let plain = std::mem::take(&mut self.held.plain);
        let effects = std::mem::take(&mut self.held.effects);
        let me = self.identity.member_id();
        let received =
            |e: &Effect| matches!(e, Effect::PutPost { record, .. } if record.body.author != me);
        let received_posts = effects.iter().filter(|e| received(e)).count();
        // Our own part, kept to be made again alone (only when received posts go with it).
        let own: Option<Vec<Effect>> = (received_posts > 0
            && (!plain.is_empty() || effects.len() > received_posts))
            .then(|| effects.iter().filter(|e| !received(e)).cloned().collect());
        let Err(error) = self.apply_onto(batch_of(&plain), effects) else {
            return Ok(true);
        };
        if received_posts == 0 {
            return Err(error);
        }
        warn!(
            posts = received_posts,
            %error,
            "storing received posts failed: the next sync fetches them again"
        );
        // `apply_onto` had the core forget them.
        match own {
            Some(own) => self.apply_onto(batch_of(&plain), own).map(|()| true),
            None => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::replica::post_index::tests::{draft, PASS};
    use crate::replica::post_pack::tests::pair_with_posts;
    use crate::replica::{Ingested, Replica, SetKind};

    fn claimed(replica: &mut Replica) -> Vec<[u8; 32]> {
        replica
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect()
    }

    /// Review 10 (P-b): the held batch of three received posts and a post of ours fails. Our
    /// post is made again alone, so its writes stand (stored, claimed, served, in the outbox,
    /// there after a restart) and its answer is not failed by the received posts'; the received
    /// posts, lost from disk, are no longer claimed, so the next sync fetches them again and
    /// takes them in.
    #[test]
    fn a_failed_held_batch_forgets_the_received_posts_and_keeps_our_own() {
        let dir = tempfile::tempdir().unwrap();
        let (_ana, mut bea, posts) = pair_with_posts(dir.path(), 3);
        bea.hold_post_writes(true);
        for post in &posts {
            let (outcome, writes) = bea.validate(post);
            assert_eq!(outcome, Ingested::Accepted);
            bea.accept_post(writes).unwrap();
        }
        let own = bea.post(draft("mine, with the received ones")).unwrap();
        bea.hold_post_writes(false);
        assert_eq!(bea.held_posts(), 4);
        assert_eq!(claimed(&mut bea).len(), 4);

        bea.store.fail_next_batch_for_tests();
        assert!(
            bea.write_held().unwrap(),
            "our own post failed with the received posts written with it"
        );
        assert!(!bea.holds_writes());
        let after = claimed(&mut bea);
        assert_eq!(after, vec![own.0], "lost received posts still claimed");
        assert_eq!(bea.fetch(SetKind::Envelopes, &after).unwrap().len(), 1);
        assert!(bea.outbox().iter().any(|i| i.id() == own.0));

        // The next sync brings the received posts again.
        let outcomes = bea.ingest_many(&posts).unwrap();
        assert!(
            outcomes.iter().all(|o| *o == Ingested::Accepted),
            "{outcomes:?}"
        );
        let all = claimed(&mut bea);
        assert_eq!(all.len(), 4);
        assert_eq!(bea.fetch(SetKind::Envelopes, &all).unwrap().len(), 4);
        bea.flush().unwrap();
        let home = bea.home().to_path_buf();
        bea.close().unwrap();
        let mut bea = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(claimed(&mut bea), all);
        assert!(bea.outbox().iter().any(|i| i.id() == own.0));
    }

    /// A held batch of received posts alone that fails: its error is returned, and the posts
    /// are no longer claimed.
    #[test]
    fn a_failed_batch_of_received_posts_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let (_ana, mut bea, posts) = pair_with_posts(dir.path(), 2);
        bea.hold_post_writes(true);
        for post in &posts {
            let (outcome, writes) = bea.validate(post);
            assert_eq!(outcome, Ingested::Accepted);
            bea.accept_post(writes).unwrap();
        }
        bea.hold_post_writes(false);
        bea.store.fail_next_batch_for_tests();
        assert!(bea.write_held().is_err());
        assert!(!bea.holds_writes());
        assert!(claimed(&mut bea).is_empty());
        let outcomes = bea.ingest_many(&posts).unwrap();
        assert!(
            outcomes.iter().all(|o| *o == Ingested::Accepted),
            "{outcomes:?}"
        );
        assert_eq!(claimed(&mut bea).len(), 2);
    }

    /// Review 10, R10-K2, for a post of ours written in one batch with received posts (then
    /// kept in a pack with them, not under its own id, unless its expiry hour differs): every
    /// index chunk is made unreadable; at the next start our post, which no peer has, is
    /// indexed again from the pack (listed, claimed, in the outbox), while the received posts
    /// are not claimed (their authors' peers send them again).
    #[test]
    fn our_post_kept_in_a_pack_survives_an_unreadable_index_chunk() {
        use crate::store::{Store, Tree};
        let dir = tempfile::tempdir().unwrap();
        let (_ana, mut bea, posts) = pair_with_posts(dir.path(), 3);
        bea.hold_post_writes(true);
        for post in &posts {
            let (outcome, writes) = bea.validate(post);
            assert_eq!(outcome, Ingested::Accepted);
            bea.accept_post(writes).unwrap();
        }
        let own = bea
            .post(draft("mine, packed with the received ones"))
            .unwrap();
        bea.hold_post_writes(false);
        assert!(bea.write_held().unwrap());
        let packed = bea.post_index.pack_of(&own).is_some();
        bea.flush().unwrap();
        let home = bea.home().to_path_buf();
        bea.close().unwrap();

        let store = Store::open_again_for_tests(&home, PASS);
        let chunks: Vec<Vec<u8>> = store.iter(Tree::PostIndex).map(|e| e.unwrap().0).collect();
        assert!(!chunks.is_empty());
        let later = crate::replica::now() + 7 * 86_400;
        for key in &chunks {
            store
                .put_expiring(Tree::PostIndex, key, b"no chunk here", later)
                .unwrap();
        }
        store.close().unwrap();

        let mut bea = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(claimed(&mut bea), vec![own.0], "packed: {packed}");
        assert_eq!(bea.post_index.pack_of(&own).is_some(), packed);
        assert_eq!(bea.fetch(SetKind::Envelopes, &[own.0]).unwrap().len(), 1);
        assert!(bea.outbox().iter().any(|i| i.id() == own.0));
        let listed = bea.alerts(&crate::api::AlertFilter::default()).unwrap();
        assert_eq!(listed.len(), 1);
        // Indexed again on disk: the next start finds it without a search.
        bea.close().unwrap();
        let mut bea = Replica::open_again_for_tests(&home, PASS);
        assert_eq!(claimed(&mut bea), vec![own.0]);
        let outcomes = bea.ingest_many(&posts).unwrap();
        assert!(
            outcomes.iter().all(|o| *o == Ingested::Accepted),
            "{outcomes:?}"
        );
        assert_eq!(claimed(&mut bea).len(), 4);
    }
}
