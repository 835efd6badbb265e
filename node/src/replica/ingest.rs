//! Taking in items from peers: the node's side of the core's rules
//! ([`lookout_protocol::replica::State`]). The core decides; this module applies its effects to
//! the encrypted store and turns its notes into events.

use std::collections::HashMap;

use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use serde::{Deserialize, Serialize};
use tracing::{debug, trace};

use lookout_protocol::envelope::PostMeta;
use lookout_protocol::reconcile::Item;
use lookout_protocol::replica::{Effect, Note};
use lookout_protocol::{ContentId, DeliveryId, EpochId, MemberId, OpId};

pub use lookout_protocol::replica::{Ingested, Refusal, SetKind};

use super::post_index::Located;
use super::post_pack::PackRewrite;
use super::{now, post_pack, post_record, store_error, Replica, StoredRecord};
use crate::api::{ApiError, Event};
use crate::store::{Batch, StoreError, Tree, BUCKET_SECS};

/// A post to be written: its id, its index entry and its record (`post_record.rs`).
type NewPost = (ContentId, PostMeta, Zeroizing<Vec<u8>>);

/// An item on the wire (gossip message or sync payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireItem {
    /// What it is.
    pub kind: SetKind,
    /// Its encoding.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

impl WireItem {
    /// The protocol id of the item (content id, op id or delivery id).
    pub fn id(&self) -> [u8; 32] {
        self.kind.id_of(&self.bytes)
    }

    /// The gossip message id: the protocol id for ops and deliveries, the hash of the exact
    /// bytes for envelopes (see [`SetKind::wire_hash`]). Re-wrapped copies of a post are then
    /// separate messages, each dropped as a duplicate by the first node that holds the post.
    pub fn gossip_id(&self) -> [u8; 32] {
        self.kind.refusal_key(&self.bytes)
    }

    /// Encode for gossip.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decode a gossip message.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (item, rest) = postcard::take_from_bytes::<Self>(bytes).ok()?;
        rest.is_empty().then_some(item)
    }
}

/// The store writes of an item [`Replica::validate`] took in, for [`Replica::persist`].
#[must_use = "an item validated but not persisted is lost at the next restart"]
pub struct Unpersisted(pub(super) Vec<Effect>);

impl Replica {
    /// Ingest one item from a peer. Nothing is flushed; call [`Replica::flush`] after a batch.
    pub fn ingest(&mut self, item: &WireItem) -> Result<Ingested, ApiError> {
        let (outcome, writes) = self.validate(item);
        self.persist(writes)?;
        Ok(outcome)
    }

    /// The first half of [`Replica::ingest`]: every check of the core (signature, membership,
    /// epoch, decryption) and its decision, without touching the store. The node reports the
    /// verdict to gossip (which forwards an accepted item at once), then calls
    /// [`Replica::persist`] with the writes. Until then the item is in memory only.
    pub fn validate(&mut self, item: &WireItem) -> (Ingested, Unpersisted) {
        let Some(state) = self.collective.as_mut() else {
            return (
                Ingested::Ignored(Refusal::NoCollective),
                Unpersisted(Vec::new()),
            );
        };
        let step = state.ingest(item.kind, &item.bytes, &self.identity, now());
        if let Ingested::Rejected(reason) | Ingested::Ignored(reason) = &step.outcome {
            trace!(kind = ?item.kind, reason = %reason, "item not accepted");
        }
        (step.outcome, Unpersisted(step.effects))
    }

    /// The second half of [`Replica::ingest`]: write what [`Replica::validate`] decided to the
    /// store (one atomic batch; not flushed) and queue its events.
    pub fn persist(&mut self, writes: Unpersisted) -> Result<(), ApiError> {
        self.apply(writes.0)
    }

    /// Ingest many items from a peer (a sync batch, a burst of gossip): envelopes go through
    /// batched signature verification ([`lookout_protocol::replica::State::ingest_envelopes`]),
    /// each other item through [`Replica::ingest`], in order. One outcome per item; nothing is
    /// flushed.
    pub fn ingest_many(&mut self, items: &[WireItem]) -> Result<Vec<Ingested>, ApiError> {
        let mut outcomes = Vec::with_capacity(items.len());
        let mut rest = items;
        while let Some(first) = rest.first() {
            if first.kind != SetKind::Envelopes {
                outcomes.push(self.ingest(first)?);
                rest = &rest[1..];
                continue;
            }
            let run = rest
                .iter()
                .position(|i| i.kind != SetKind::Envelopes)
                .unwrap_or(rest.len());
            let (envelopes, after) = rest.split_at(run);
            rest = after;
            let Some(state) = self.collective.as_mut() else {
                outcomes.extend(
                    envelopes
                        .iter()
                        .map(|_| Ingested::Ignored(Refusal::NoCollective)),
                );
                continue;
            };
            let bytes: Vec<&[u8]> = envelopes.iter().map(|i| i.bytes.as_slice()).collect();
            let (results, effects) = state.ingest_envelopes(&bytes, &self.identity, now());
            for reason in results.iter().filter_map(|o| match o {
                Ingested::Rejected(r) | Ingested::Ignored(r) => Some(r),
                _ => None,
            }) {
                trace!(reason = %reason, "envelope not accepted");
            }
            self.apply(effects)?;
            outcomes.extend(results);
        }
        Ok(outcomes)
    }

    /// Try held items again (after membership or keys changed).
    pub fn retry_held(&mut self) -> Result<usize, ApiError> {
        let Some(state) = self.collective.as_mut() else {
            return Ok(0);
        };
        let (accepted, effects) = state.retry_held(&self.identity, now());
        self.apply(effects)?;
        Ok(accepted)
    }

    /// Apply the core's effects: write and delete items in the store (all of one step in one
    /// atomic batch: a post and its index entry are written together), then record events.
    fn apply(&mut self, effects: Vec<Effect>) -> Result<(), ApiError> {
        self.apply_onto(Batch::new(), effects)
    }

    /// [`Replica::apply`], adding to `batch` (writes held with a post: `held.rs`).
    pub(super) fn apply_onto(
        &mut self,
        mut batch: Batch,
        effects: Vec<Effect>,
    ) -> Result<(), ApiError> {
        let mut notes = Vec::new();
        let mut records: Vec<(ContentId, Box<StoredRecord>)> = Vec::new();
        let mut new_posts: Vec<NewPost> = Vec::new();
        let mut rewrite = PackRewrite::default();
        let mut deliveries = false;
        for effect in effects {
            match effect {
                Effect::PutOp { id, bytes } => {
                    batch.put(Tree::Membership, &id.0, &bytes);
                }
                Effect::DeleteOp(id) => {
                    batch.remove(Tree::Membership, &id.0);
                }
                // Beside the ops, under keys no op id has (33 bytes): read back by `load`.
                Effect::PutStub { id, bytes } => {
                    batch.put(Tree::Membership, &super::stub_key(&id), &bytes);
                }
                Effect::PutReadParents { id, parents, via } => {
                    batch.put(
                        Tree::Membership,
                        &super::reading_key(&id),
                        &super::encode_reading(&parents, &via),
                    );
                }
                Effect::PutLookUp { id, keys } => {
                    batch.put(
                        Tree::Membership,
                        &super::look_up_key(&id),
                        &super::encode_look_up(&keys),
                    );
                }
                Effect::PutDelivery { id, bytes } => {
                    deliveries = true;
                    batch.put(Tree::EpochKeys, &id.0, &bytes);
                }
                Effect::DeleteDelivery(id) => {
                    batch.remove(Tree::EpochKeys, &id.0);
                }
                Effect::PutPost { id, record } => {
                    // The post (its envelope only: `post_record.rs`), alone or in a pack with
                    // others of this step (`post_pack.rs`), and its index entry, under the data
                    // key of its expiry hour: destroyed once the hour has passed, so no copy
                    // sled leaves behind can be read afterwards.
                    let value = post_record::encode(&record.envelope);
                    new_posts.push((id, PostMeta::of(&record.body), value));
                    records.push((id, record));
                }
                // Only expiry deletes posts (`Replica::expire`, which also drops the index
                // chunks of hours that have passed; an entry of a post gone within the current
                // hour is dropped by the expiry at the next start).
                Effect::DeletePost(id) => {
                    self.remove_post(&mut batch, &mut rewrite, id);
                }
                Effect::Note(note) => notes.push(note),
            }
        }
        // Removals (`post_pack.rs`), the new posts and the index entries of all the posts of
        // this step (one chunk per expiry hour), in one atomic batch.
        let mut added = None;
        let written = self
            .rewrite_packs(&mut batch, &mut rewrite)
            .and_then(|()| self.write_posts(&mut batch, new_posts))
            .and_then(|indexed| self.post_index.add(&self.store, &mut batch, indexed))
            .and_then(|undo| {
                added = Some(undo);
                self.store.apply_batch(batch)
            });
        // Not applied: the index in memory is put back as it was (no post of this batch is
        // placed in a pack that was not written).
        if let (Err(_), Some(undo)) = (&written, added) {
            self.post_index.undo(undo);
        }
        // Not applied: the posts of others in it are forgotten by the core, so the next sync
        // fetches them again, whatever the path (gossip's held writes, a sync batch, a retry);
        // our own are the caller's to make again (`write_held`).
        if written.is_err() {
            let me = self.identity.member_id();
            if let Some(state) = self.collective.as_mut() {
                for (id, record) in &records {
                    if record.body.author != me {
                        state.forget_post(id);
                    }
                }
            }
        }
        self.rewrite_done(rewrite, written.is_ok());
        written.map_err(store_error)?;
        if deliveries {
            self.keep_new_epoch_keys()?;
        }
        let posted = records.iter().map(|(id, r)| (*id, &**r)).collect();
        for note in notes {
            self.note(note, &posted);
        }
        Ok(())
    }

    /// Adds `posts` to `batch`: each expiry hour's posts in time order (a listing then opens
    /// few packs per page), in packs of neighbours (`post_pack.rs`), a post left alone (the
    /// only one of its hour here, or too large) under its own id. Returns their index entries.
    fn write_posts(
        &mut self,
        batch: &mut Batch,
        mut posts: Vec<NewPost>,
    ) -> Result<Vec<Located>, StoreError> {
        posts.sort_by_key(|(id, meta, _)| (meta.expires / BUCKET_SECS, meta.timestamp, *id));
        let mut located = Vec::with_capacity(posts.len());
        let mut alone = Vec::new();
        for hour in posts.chunk_by(|a, b| a.1.expires / BUCKET_SECS == b.1.expires / BUCKET_SECS) {
            let (packable, large): (Vec<&NewPost>, Vec<&NewPost>) = hour
                .iter()
                .partition(|(_, _, record)| post_pack::fits(record.len()));
            alone.extend(large);
            let lens: Vec<usize> = packable.iter().map(|(_, _, r)| r.len()).collect();
            let mut rest = packable.as_slice();
            for run in post_pack::plan(&lens) {
                let (pack, after) = rest.split_at(run.min(rest.len()));
                rest = after;
                if let [single] = pack {
                    alone.push(*single);
                    continue;
                }
                // Random: a pack's key names none of its posts (two of 2^64 meet by chance only).
                let mut id = [0; 8];
                OsRng
                    .try_fill_bytes(&mut id)
                    .map_err(StoreError::Randomness)?;
                let id = u64::from_le_bytes(id);
                let value = post_pack::encode(pack.iter().map(|(id, _, r)| (id, r.as_slice())));
                let expires = pack.iter().map(|(_, m, _)| m.expires).max().unwrap_or(0);
                batch.put_expiring_owned(Tree::Alerts, &post_pack::pack_key(id), value, expires);
                located.extend(pack.iter().map(|(post, meta, _)| (*post, *meta, Some(id))));
            }
        }
        for (id, meta, record) in alone {
            batch.put_expiring(Tree::Alerts, &id.0, record, meta.expires);
            located.push((*id, *meta, None));
        }
        Ok(located)
    }

    /// Turn a note of the core into an event for watchers. `posted` holds the posts just
    /// written (read from there rather than back from the store).
    pub(super) fn note(&mut self, note: Note, posted: &HashMap<ContentId, &StoredRecord>) {
        match note {
            Note::PostAccepted(id) => {
                if let Some(view) = self.alert_view_with(&id, posted) {
                    self.events.push(Event::Alert(Box::new(view)));
                }
            }
            Note::Retracted { target } => self.events.push(Event::Retracted {
                id: target.to_hex(),
            }),
            Note::UnreadableKeyShare { epoch, signer } => {
                debug!(epoch = %epoch.short(), "our share of an epoch key does not open");
                let event = self.unreadable_share_event(epoch, signer);
                self.events.push(event);
            }
            Note::MembershipChanged => self.membership_dirty = true,
        }
    }

    /// The event telling this device's member who signed a share of `epoch` that does not open.
    fn unreadable_share_event(&self, epoch: EpochId, signer: MemberId) -> Event {
        let name = self
            .collective
            .as_ref()
            .map(|c| super::views::name_of(c.log().roster(), self.text_key().as_ref(), &signer))
            .unwrap_or_default();
        Event::UnreadableKeyShare {
            signer: signer.to_hex(),
            signer_name: name,
            epoch: epoch.short(),
        }
    }

    /// Items waiting for missing state.
    pub fn held_count(&self) -> usize {
        self.collective.as_ref().map_or(0, |c| c.held_count())
    }

    /// The sorted reconciliation set of one kind.
    pub fn sync_items(&mut self, kind: SetKind) -> &[Item] {
        match self.collective.as_mut() {
            Some(state) => state.sync_items(kind),
            None => &[],
        }
    }

    /// Whether this replica holds the item `id` of `kind` already (what [`Replica::fetch`]
    /// would serve): a session drops such ids from a fetch, since they arrived meanwhile from
    /// another peer.
    pub fn holds(&self, kind: SetKind, id: &[u8; 32]) -> bool {
        let Some(state) = self.collective.as_ref() else {
            return false;
        };
        match kind {
            SetKind::Ops => state.log().offered(&OpId(*id)).is_some(),
            SetKind::Deliveries => state.deliveries().get(&DeliveryId(*id)).is_some(),
            SetKind::Envelopes => state.posts().contains_key(&ContentId(*id)),
        }
    }

    /// The encodings of the items with these ids that this replica holds.
    pub fn fetch(&self, kind: SetKind, ids: &[[u8; 32]]) -> Result<Vec<Vec<u8>>, ApiError> {
        let Some(state) = self.collective.as_ref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(ids.len());
        // Posts grouped by pack (`post_pack.rs`), so each pack is opened once (the order of
        // what is served does not matter: each item names itself).
        let mut ordered = ids.to_vec();
        if kind == SetKind::Envelopes {
            ordered.sort_by_key(|id| self.post_index.pack_of(&ContentId(*id)));
        }
        for id in &ordered {
            match kind {
                SetKind::Ops => {
                    // Held ops, and the refused ops some of them are read through (stubs).
                    if let Some(op) = state.log().offered(&OpId(*id)) {
                        out.push(op.encoded().to_vec());
                    }
                }
                SetKind::Deliveries => {
                    if let Some(d) = state.deliveries().get(&DeliveryId(*id)) {
                        out.push(d.encoded().to_vec());
                    }
                }
                SetKind::Envelopes => {
                    if !state.posts().contains_key(&ContentId(*id)) {
                        continue;
                    }
                    let record = self.post_record(&ContentId(*id)).map_err(store_error)?;
                    if let Some(value) = record {
                        out.extend(post_record::envelope_of(&value));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Delete expired posts and epoch keys no longer needed, then destroy the data keys of
    /// every expiry hour that has passed (which makes the deleted posts unrecoverable). Returns
    /// how many posts went.
    pub fn expire(&mut self, now: u64) -> Result<usize, ApiError> {
        let Some(state) = self.collective.as_mut() else {
            self.store.forget_expired_keys(now).map_err(store_error)?;
            return Ok(0);
        };
        let effects = state.expire(now);
        // A few packs read, to find damage nothing else reads (`post_pack.rs`).
        self.scrub_packs();
        let mut batch = Batch::new();
        if effects.is_empty() && !self.post_index.has_work(now) {
            self.store.forget_expired_keys(now).map_err(store_error)?;
            return Ok(0);
        }
        let mut posts = 0;
        let mut deliveries = 0;
        let mut rewrite = PackRewrite::checking_damage();
        for effect in &effects {
            match effect {
                Effect::DeletePost(id) => {
                    posts += 1;
                    self.remove_post(&mut batch, &mut rewrite, *id);
                    // Our own post's outbox note goes with it.
                    batch.remove(Tree::Outbox, &id.0);
                }
                Effect::DeleteDelivery(id) => {
                    deliveries += 1;
                    batch.remove(Tree::EpochKeys, &id.0);
                }
                _ => {}
            }
        }
        let written = self.rewrite_packs(&mut batch, &mut rewrite).and_then(|()| {
            // The index chunks of the hours that have passed: every post in them has expired.
            self.post_index.remove_past(&mut batch, now);
            self.store.apply_batch(batch)
        });
        self.rewrite_done(rewrite, written.is_ok());
        written.map_err(store_error)?;
        self.store.flush().map_err(store_error)?;
        self.store.forget_expired_keys(now).map_err(store_error)?;
        if deliveries > 0 {
            debug!(deliveries, "expired epoch key deliveries deleted");
        }
        Ok(posts)
    }
}
