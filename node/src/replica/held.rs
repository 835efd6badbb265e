//! Write-behind for posts, in the node's event loop: an accepted post (gossiped, or one of
//! ours) is forwarded or published and shown to watchers as soon as its checks pass, and its
//! store writes (the post, its index entry, for our own the outbox mark and the sequence
//! number) are made later, in one batch. A post of ours: once the loop has let the tasks woken
//! by the publish run (`EventLoop::run` in `node/src/node.rs`); then the group commit makes it
//! durable, and only after that is it acknowledged to its author. Received posts: they wait
//! for each other, up to [`crate::commit::WRITE_BEHIND`] after the first
//! ([`crate::commit::WriteBehind`]), and all go in one batch. Before anything else on the loop
//! that may read or write the store (a command other than `post`, a tick, any network event
//! other than a gossiped message, a gossiped item that is not an accepted alert) the loop makes
//! the held writes first, so nothing reads the store without them and every write keeps its
//! order.
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

/// Store writes held for [`Replica::write_held`].
#[derive(Default)]
pub(super) struct HeldWrites {
    /// Whether posts' writes are held at all.
    on: bool,
    /// Plain writes (outbox marks, the sequence number), applied first.
    batch: Batch,
    /// The core's effects of the posts accepted (their notes already turned into events).
    effects: Vec<Effect>,
}

impl Replica {
    /// Hold accepted posts' store writes until [`Replica::write_held`] (the node's event loop).
    pub fn hold_post_writes(&mut self, on: bool) {
        self.held.on = on;
    }

    /// Whether writes are held, waiting for [`Replica::write_held`].
    pub fn holds_writes(&self) -> bool {
        !self.held.batch.is_empty() || !self.held.effects.is_empty()
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
            match expires {
                Some(expires) => self.held.batch.put_expiring(tree, key, value, expires),
                None => self.held.batch.put(tree, key, value),
            };
            return Ok(());
        }
        match expires {
            Some(expires) => self.store.put_expiring(tree, key, value, expires),
            None => self.store.put(tree, key, value),
        }
        .map_err(store_error)
    }

    /// Make the held writes, in one atomic batch (not flushed). Whether there were any.
    pub fn write_held(&mut self) -> Result<bool, ApiError> {
        if !self.holds_writes() {
            return Ok(false);
        }
        let batch = std::mem::take(&mut self.held.batch);
        let effects = std::mem::take(&mut self.held.effects);
        self.apply_onto(batch, effects)?;
        Ok(true)
    }
}
