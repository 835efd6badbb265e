//! Taking in items from peers: membership ops, key deliveries and envelopes.

use serde::{Deserialize, Serialize};
use tracing::{debug, trace};

use lookout_protocol::content::Content;
use lookout_protocol::envelope::{self, Verdict, Verified};
use lookout_protocol::epoch::{KeyDelivery, Recorded};
use lookout_protocol::ids::{context, hash};
use lookout_protocol::membership::{InsertOutcome, Op};
use lookout_protocol::reconcile::Item;
use lookout_protocol::{ContentId, DeliveryId, EpochId, MemberId, OpId};

use super::{now, store_error, Collective, Replica, StoredRecord, MAX_HELD, MAX_REFUSED};
use crate::api::{ApiError, Event};
use crate::store::{Batch, Tree};

/// The three kinds of replicated items, synced in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SetKind {
    /// Membership ops.
    Ops,
    /// Epoch key deliveries.
    Deliveries,
    /// Posts.
    Envelopes,
}

impl SetKind {
    /// All kinds in sync order: membership first, then keys, then posts.
    pub const ORDER: [SetKind; 3] = [SetKind::Ops, SetKind::Deliveries, SetKind::Envelopes];

    /// The id of an item of this kind, as the protocol defines it. For a post that is the
    /// content id its envelope carries in clear, a claim until the envelope is opened (an
    /// undecodable envelope gets the hash of its bytes).
    pub fn id_of(self, bytes: &[u8]) -> [u8; 32] {
        match self {
            SetKind::Ops => hash(context::OP_ID, &[bytes]),
            SetKind::Deliveries => hash(context::DELIVERY_ID, &[bytes]),
            SetKind::Envelopes => {
                envelope::id_of(bytes).map_or_else(|_| Self::wire_hash(bytes), |id| id.0)
            }
        }
    }

    /// A hash of exactly these bytes: what refusals and gossip message ids key on. For ops and
    /// deliveries it is their id. An envelope's id is only claimed in clear, so a forgery
    /// claiming a genuine post's id must not get the genuine post refused or its gossip dropped
    /// as a duplicate.
    pub fn wire_hash(bytes: &[u8]) -> [u8; 32] {
        hash(ENVELOPE_BYTES_CONTEXT, &[bytes])
    }

    fn refusal_key(self, bytes: &[u8]) -> [u8; 32] {
        match self {
            SetKind::Ops | SetKind::Deliveries => self.id_of(bytes),
            SetKind::Envelopes => Self::wire_hash(bytes),
        }
    }
}

const ENVELOPE_BYTES_CONTEXT: &str = "lookout envelope bytes v1";

/// An item on the wire (gossip message or sync payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireItem {
    /// What it is.
    pub kind: SetKind,
    /// Its encoding.
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

/// What happened to an ingested item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// New and accepted (forward it).
    Accepted,
    /// Already held.
    Duplicate,
    /// Needs state we lack; kept aside, sync with the sender.
    Held,
    /// Valid but not for now (expired, over quota, too early): drop quietly.
    Ignored(String),
    /// Invalid: drop and penalise the sender.
    Rejected(String),
}

impl Ingested {
    /// Whether the sender should be penalised.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Ingested::Rejected(_))
    }
}

impl Replica {
    /// Ingest one item from a peer. Nothing is flushed; call [`Replica::flush`] after a batch.
    pub fn ingest(&mut self, item: &WireItem) -> Result<Ingested, ApiError> {
        let outcome = self.ingest_inner(item.kind, &item.bytes)?;
        if outcome == Ingested::Accepted && item.kind != SetKind::Envelopes {
            // New membership or keys may release held items.
            self.retry_held()?;
        }
        Ok(outcome)
    }

    fn ingest_inner(&mut self, kind: SetKind, bytes: &[u8]) -> Result<Ingested, ApiError> {
        let Some(state) = self.collective.as_mut() else {
            return Ok(Ingested::Ignored("not in a collective".into()));
        };
        let id = kind.refusal_key(bytes);
        if state.refused.contains(&id) {
            return Ok(Ingested::Duplicate);
        }
        let outcome = match kind {
            SetKind::Ops => self.ingest_op(bytes)?,
            SetKind::Deliveries => self.ingest_delivery(bytes)?,
            SetKind::Envelopes => self.ingest_envelope(bytes)?,
        };
        if let Some(state) = self.collective.as_mut() {
            match &outcome {
                Ingested::Held => {
                    if state.held.len() >= MAX_HELD {
                        state.held.pop_front();
                    }
                    if !state.held.iter().any(|(_, b)| b == bytes) {
                        state.held.push_back((kind, bytes.to_vec()));
                    }
                }
                Ingested::Rejected(reason) | Ingested::Ignored(reason) => {
                    trace!(?kind, reason = %reason, "item not accepted");
                    if state.refused.len() >= MAX_REFUSED {
                        state.refused.clear();
                    }
                    state.refused.insert(id);
                }
                _ => {}
            }
        }
        Ok(outcome)
    }

    fn ingest_op(&mut self, bytes: &[u8]) -> Result<Ingested, ApiError> {
        let state = self.collective.as_mut().ok_or_else(super::no_collective)?;
        let op = match Op::decode(bytes, state.log.collective()) {
            Ok(op) => op,
            Err(e) if e.is_peer_fault() => return Ok(Ingested::Rejected(e.to_string())),
            Err(e) => return Ok(Ingested::Ignored(e.to_string())),
        };
        if state.log.holds(&op.id()) {
            return Ok(Ingested::Duplicate);
        }
        let id = op.id();
        // The log decides first (known author, quota, orphan bounds); only what it keeps is
        // written, and orphans it evicts are deleted, so a peer cannot fill the disk.
        let outcome = state.log.insert(op);
        let evicted = state.log.take_evicted();
        state.index.ops = None;
        for gone in evicted {
            self.store
                .remove(Tree::Membership, &gone.0)
                .map_err(store_error)?;
        }
        let kept = matches!(
            outcome,
            InsertOutcome::Added(_) | InsertOutcome::MissingParents(_)
        );
        if kept {
            self.store
                .put(Tree::Membership, &id.0, bytes)
                .map_err(store_error)?;
        }
        match outcome {
            InsertOutcome::Added(added) => {
                // The roster is resolved lazily, once per batch, when someone next looks.
                trace!(ops = added.len(), "membership ops added");
                self.membership_dirty = true;
                Ok(Ingested::Accepted)
            }
            InsertOutcome::Duplicate => Ok(Ingested::Duplicate),
            // Kept in the log's orphan set (and in the store): accepted for forwarding, and the
            // caller syncs to fetch the parents.
            InsertOutcome::MissingParents(_) => Ok(Ingested::Held),
            // The forwarder may know a proposal this node lacks yet: not its fault.
            InsertOutcome::Refused(why) => Ok(Ingested::Ignored(why.into())),
        }
    }

    fn ingest_delivery(&mut self, bytes: &[u8]) -> Result<Ingested, ApiError> {
        let state = self.collective.as_mut().ok_or_else(super::no_collective)?;
        let delivery = match KeyDelivery::decode(bytes, state.log.collective()) {
            Ok(d) => d,
            Err(e) => return Ok(Ingested::Rejected(e.to_string())),
        };
        if state.deliveries.contains_key(&delivery.id()) {
            return Ok(Ingested::Duplicate);
        }
        // A later-dated rotation of an epoch pushes its write deadline and key deletion later
        // (see `EpochInfo::created`): only as far as now, like a post's date.
        if delivery.body().timestamp > now().saturating_add(envelope::MAX_CLOCK_SKEW_SECS) {
            return Ok(Ingested::Ignored("key delivery dated in the future".into()));
        }
        let Some(roster) = state.log.roster_at(&delivery.body().heads) else {
            return Ok(Ingested::Held);
        };
        if let Err(e) = delivery.check_authority(&roster) {
            return Ok(Ingested::Rejected(e.to_string()));
        }
        let unreadable = match state.book.record(&delivery, &self.identity, &roster) {
            Ok(Recorded::NewKey(epoch)) => {
                debug!(epoch = %epoch.short(), "epoch key received");
                None
            }
            Ok(Recorded::Noted) => None,
            // Valid for everyone else, and nobody but its signer is to blame: kept, forwarded,
            // and the key asked for again in the next sync (`Replica::lacking_epochs`).
            Ok(Recorded::Unreadable { epoch, signer }) => {
                debug!(epoch = %epoch.short(), "our share of an epoch key does not open");
                Some(self.unreadable_share_event(epoch, signer))
            }
            Err(e) => return Ok(Ingested::Rejected(e.to_string())),
        };
        self.store
            .put(Tree::EpochKeys, &delivery.id().0, bytes)
            .map_err(store_error)?;
        let state = self.collective.as_mut().ok_or_else(super::no_collective)?;
        state.deliveries.insert(delivery.id(), delivery);
        state.index.deliveries = None;
        self.events.extend(unreadable);
        Ok(Ingested::Accepted)
    }

    /// The event telling this device's member who signed a share of `epoch` that does not open.
    fn unreadable_share_event(&self, epoch: EpochId, signer: MemberId) -> Event {
        let name = self
            .collective
            .as_ref()
            .and_then(|c| member_name(c.log.roster(), &signer))
            .unwrap_or_default();
        Event::UnreadableKeyShare {
            signer: signer.to_hex(),
            signer_name: name,
            epoch: epoch.short(),
        }
    }

    fn ingest_envelope(&mut self, bytes: &[u8]) -> Result<Ingested, ApiError> {
        let now = now();
        let state = self.collective.as_mut().ok_or_else(super::no_collective)?;
        // Any wrapping of a post already held is that post (a forged id is caught by `open`).
        if envelope::id_of(bytes).is_ok_and(|id| state.posts.contains_key(&id)) {
            return Ok(Ingested::Duplicate);
        }
        let collective = state.log.collective();
        let opened = match envelope::open(bytes, collective, |e| state.book.key(e)) {
            Ok(o) => o,
            Err(e) => {
                return Ok(match e.verdict() {
                    Verdict::Hold => Ingested::Held,
                    Verdict::Ignore => Ingested::Ignored(e.to_string()),
                    Verdict::Reject => Ingested::Rejected(e.to_string()),
                })
            }
        };
        let Some(at_heads) = state.log.roster_at(&opened.body.heads) else {
            return Ok(Ingested::Held);
        };
        let Some(info) = state.book.info(&opened.body.epoch).cloned() else {
            return Ok(Ingested::Held);
        };
        let count = state
            .quota
            .get(&super::quota_key(&opened.body))
            .copied()
            .unwrap_or(0);
        let verified = match opened.authorize(&at_heads, state.log.roster(), &info, now, count) {
            Ok(v) => v,
            Err(e) => {
                return Ok(match e.verdict() {
                    Verdict::Reject => Ingested::Rejected(e.to_string()),
                    Verdict::Hold => Ingested::Held,
                    Verdict::Ignore => Ingested::Ignored(e.to_string()),
                })
            }
        };
        if let Some(outcome) = check_target(state, &verified, &at_heads) {
            return Ok(outcome);
        }
        self.accept_post(bytes, verified, now)?;
        Ok(Ingested::Accepted)
    }

    /// Store an authorized post and update indexes and events.
    pub(super) fn accept_post(
        &mut self,
        bytes: &[u8],
        verified: Verified,
        now: u64,
    ) -> Result<(), ApiError> {
        let record = StoredRecord {
            envelope: bytes.to_vec(),
            coarse_time: verified.coarse_time(),
            body: verified.body().clone(),
            received: now,
        };
        let value = postcard::to_allocvec(&record).unwrap_or_default();
        self.store
            .put(Tree::Alerts, &verified.id().0, &value)
            .map_err(store_error)?;
        let state = self.collective.as_mut().ok_or_else(super::no_collective)?;
        let id = verified.id();
        let event = match &verified.body().content {
            Content::Retraction { target, .. } => Some(Event::Retracted {
                id: target.to_hex(),
            }),
            Content::Alert(_) => None,
            _ => None,
        };
        state.insert_post(verified);
        if let Some(event) = event {
            self.events.push(event);
        } else if let Some(view) = self.alert_view(&id) {
            self.events.push(Event::Alert(Box::new(view)));
        }
        Ok(())
    }

    /// Try held items again (after membership or keys changed).
    pub fn retry_held(&mut self) -> Result<usize, ApiError> {
        let mut accepted = 0;
        loop {
            let Some(state) = self.collective.as_mut() else {
                return Ok(accepted);
            };
            let held: Vec<_> = state.held.drain(..).collect();
            let mut progress = false;
            for (kind, bytes) in held {
                match self.ingest_inner(kind, &bytes)? {
                    Ingested::Accepted => {
                        accepted += 1;
                        progress = true;
                    }
                    Ingested::Held => {}
                    _ => {}
                }
            }
            if !progress {
                return Ok(accepted);
            }
        }
    }

    /// Items waiting for missing state.
    pub fn held_count(&self) -> usize {
        self.collective.as_ref().map_or(0, |c| c.held.len())
    }

    /// The sorted reconciliation set of one kind.
    pub fn sync_items(&mut self, kind: SetKind) -> &[Item] {
        let Some(state) = self.collective.as_mut() else {
            return &[];
        };
        let slot = match kind {
            SetKind::Ops => &mut state.index.ops,
            SetKind::Deliveries => &mut state.index.deliveries,
            SetKind::Envelopes => &mut state.index.posts,
        };
        if slot.is_none() {
            let mut items: Vec<Item> = match kind {
                SetKind::Ops => state
                    .log
                    .ops()
                    .map(|op| Item {
                        timestamp: op.body().timestamp,
                        id: op.id().0,
                    })
                    .collect(),
                SetKind::Deliveries => state
                    .deliveries
                    .values()
                    .map(|d| Item {
                        timestamp: d.body().timestamp,
                        id: d.id().0,
                    })
                    .collect(),
                SetKind::Envelopes => state
                    .posts
                    .values()
                    .map(|p| Item {
                        timestamp: p.verified.coarse_time(),
                        id: p.verified.id().0,
                    })
                    .collect(),
            };
            items.sort();
            items.dedup();
            *slot = Some(items);
        }
        slot.as_deref().unwrap_or(&[])
    }

    /// The encodings of the items with these ids that this replica holds.
    pub fn fetch(&self, kind: SetKind, ids: &[[u8; 32]]) -> Result<Vec<Vec<u8>>, ApiError> {
        let Some(state) = self.collective.as_ref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match kind {
                SetKind::Ops => {
                    if let Some(op) = state.log.get(&OpId(*id)) {
                        out.push(op.encoded().to_vec());
                    }
                }
                SetKind::Deliveries => {
                    if let Some(d) = state.deliveries.get(&DeliveryId(*id)) {
                        out.push(d.encoded().to_vec());
                    }
                }
                SetKind::Envelopes => {
                    if let Some(value) = self.store.get(Tree::Alerts, id).map_err(store_error)? {
                        if let Ok(record) = postcard::from_bytes::<StoredRecord>(&value) {
                            out.push(record.envelope);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Delete expired posts and epoch keys no longer needed. Returns how many posts went.
    pub fn expire(&mut self, now: u64) -> Result<usize, ApiError> {
        let Some(state) = self.collective.as_mut() else {
            return Ok(0);
        };
        let expired: Vec<ContentId> = state
            .posts
            .iter()
            .filter(|(_, p)| p.verified.body().expires <= now)
            .map(|(id, _)| *id)
            .collect();
        let policy = state.log.roster().policy().clone();
        let gone_epochs = state.book.expire(&policy, now);
        let gone_deliveries: Vec<DeliveryId> = state
            .deliveries
            .values()
            .filter(|d| gone_epochs.contains(&d.epoch()))
            .map(KeyDelivery::id)
            .collect();
        if expired.is_empty() && gone_deliveries.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::new();
        for id in &expired {
            state.remove_post(id);
            batch.remove(Tree::Alerts, &id.0);
        }
        for id in &gone_deliveries {
            state.deliveries.remove(id);
            batch.remove(Tree::EpochKeys, &id.0);
        }
        state.index.posts = None;
        state.index.deliveries = None;
        self.store.apply_batch(batch).map_err(store_error)?;
        self.store.flush().map_err(store_error)?;
        if !gone_epochs.is_empty() {
            debug!(epochs = gone_epochs.len(), "expired epoch keys deleted");
        }
        Ok(expired.len())
    }
}

/// Rules for posts that refer to another post: the target must be known, then
/// [`Verified::check_reference`] against the current roster.
fn check_target(
    state: &Collective,
    verified: &Verified,
    at_heads: &lookout_protocol::membership::Roster,
) -> Option<Ingested> {
    let target = verified.body().content.target()?;
    let Some(original) = state.posts.get(&target) else {
        return Some(Ingested::Held);
    };
    let e = verified
        .check_reference(&original.verified, at_heads, state.log.roster())
        .err()?;
    Some(match e.verdict() {
        Verdict::Reject => Ingested::Rejected(e.to_string()),
        Verdict::Hold => Ingested::Held,
        Verdict::Ignore => Ingested::Ignored(e.to_string()),
    })
}

/// The display name of a current or removed member.
pub(super) fn member_name(
    roster: &lookout_protocol::membership::Roster,
    member: &MemberId,
) -> Option<String> {
    roster
        .member(member)
        .map(|m| m.name.clone())
        .or_else(|| roster.removed().get(member).map(|r| r.name.clone()))
}
