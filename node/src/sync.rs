//! Catch-up sync over `/lookout/sync/2`: range-based set reconciliation, then fetch and push.
//!
//! A session reconciles the three sets in order — membership ops, key deliveries, posts — so
//! that by the time posts arrive the state needed to check them is there. For each set the
//! initiator runs [`Reconciler`] rounds until it knows which ids it lacks (`need`) and which the
//! peer lacks (`have`), fetches the first in batches and pushes the second. Two sessions can
//! feed one node at once (it came back and dialled one member while another dialled it): a
//! fetch leaves out what arrived meanwhile, and pushes start small and stop once the peer says
//! most of them were not new, so each post travels about once. The responder is
//! stateless. Every message is capped; a session is bounded in rounds and abandoned on any
//! error or timeout (the request-response layer times requests out).

use serde::{Deserialize, Serialize};

use lookout_protocol::epoch::MAX_KEY_REQUEST_EPOCHS;
use lookout_protocol::reconcile::{Item, Limits, Reconciler};
use lookout_protocol::{EpochId, MemberId};

use crate::replica::{Ingested, Replica, SetKind, WireItem};

/// Most ids in one fetch.
pub const MAX_FETCH_IDS: usize = 512;
/// Most bytes of items in one response (below the transport's 4 MiB response cap).
pub(crate) const MAX_ITEMS_BYTES: usize = 3 * 1024 * 1024;
/// Most bytes of items in one push request (below the transport's 256 KiB request cap).
pub(crate) const MAX_PUSH_BYTES: usize = 200 * 1024;
/// Most bytes of items in a session's first push of a set: pushes start small and double
/// with each acknowledgement, so a push that would mostly duplicate what the peer is getting
/// from someone else meanwhile is found out after a few KiB (see [`Session::pushed_everything`]).
pub(crate) const FIRST_PUSH_BYTES: usize = 16 * 1024;
/// Most reconciliation rounds for one set before the session gives up.
pub const MAX_ROUNDS: usize = 32;
/// Limits for reconciliation messages.
pub const RECONCILE_LIMITS: Limits = Limits {
    max_message_bytes: 60 * 1024,
};

/// A sync request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncRequest {
    /// One reconciliation round over a set.
    Reconcile {
        /// Which set.
        kind: SetKind,
        /// The reconciliation message.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// Send me these items.
    Fetch {
        /// Which set.
        kind: SetKind,
        /// Their ids (at most [`MAX_FETCH_IDS`]).
        ids: Vec<[u8; 32]>,
    },
    /// Items you lack.
    Push {
        /// The items.
        items: Vec<WireItem>,
    },
    /// I lack the keys of these epochs (my share did not open, or I never got one): give me
    /// shares of those I am entitled to. Answered with [`SyncResponse::Items`] of deliveries.
    Keys {
        /// The epochs (at most [`MAX_KEY_REQUEST_EPOCHS`]).
        epochs: Vec<EpochId>,
    },
}

/// A sync response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's reconciliation message.
    Reconcile {
        /// The message.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// Fetched items.
    Items {
        /// The items (those held, within [`MAX_ITEMS_BYTES`]).
        items: Vec<WireItem>,
    },
    /// Pushed items were taken in.
    Ack {
        /// How many were new.
        accepted: u32,
        /// How many were invalid.
        rejected: u32,
    },
    /// The request could not be served.
    Error {
        /// Why.
        reason: String,
    },
}

/// Decode a sync message of either direction, rejecting trailing bytes.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).ok()?;
    rest.is_empty().then_some(value)
}

/// Encode a sync message.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

/// What serving a request did, for penalising peers.
pub struct Served {
    /// The encoded response.
    pub response: Vec<u8>,
    /// Whether the request was malformed or carried invalid items.
    pub misbehaved: bool,
    /// Whether pushed items changed the replica.
    pub changed: bool,
}

/// Answer one sync request from the member behind the connection (`None` if the peer id is not
/// a member key): key requests are answered for that member only.
pub fn serve_from(replica: &mut Replica, peer: Option<MemberId>, request: &[u8]) -> Served {
    match decode::<SyncRequest>(request) {
        Some(SyncRequest::Keys { epochs }) => serve_keys(replica, peer, &epochs),
        _ => serve(replica, request),
    }
}

/// Answer one sync request of an unknown peer (key requests get nothing: see [`serve_from`]).
pub fn serve(replica: &mut Replica, request: &[u8]) -> Served {
    let Some(request) = decode::<SyncRequest>(request) else {
        return served(
            SyncResponse::Error {
                reason: "malformed request".into(),
            },
            true,
            false,
        );
    };
    match request {
        SyncRequest::Reconcile { kind, message } => {
            let items = replica.sync_items(kind);
            let answer =
                Reconciler::new(items, RECONCILE_LIMITS).and_then(|mut r| r.respond(&message));
            match answer {
                Ok(message) => served(SyncResponse::Reconcile { message }, false, false),
                Err(e) => served(
                    SyncResponse::Error {
                        reason: e.to_string(),
                    },
                    e.is_peer_fault(),
                    false,
                ),
            }
        }
        SyncRequest::Fetch { kind, ids } => {
            if ids.len() > MAX_FETCH_IDS {
                return served(
                    SyncResponse::Error {
                        reason: "too many ids".into(),
                    },
                    true,
                    false,
                );
            }
            let mut items = Vec::new();
            let mut size = 0;
            for bytes in replica.fetch(kind, &ids).unwrap_or_default() {
                size += bytes.len() + 8;
                if size > MAX_ITEMS_BYTES {
                    break;
                }
                items.push(WireItem { kind, bytes });
            }
            served(SyncResponse::Items { items }, false, false)
        }
        SyncRequest::Push { items } => {
            let (accepted, rejected) = ingest_all(replica, &items);
            served(
                SyncResponse::Ack { accepted, rejected },
                rejected > 0,
                accepted > 0,
            )
        }
        SyncRequest::Keys { epochs } => serve_keys(replica, None, &epochs),
    }
}

/// Answer a key request: shares of the epochs the asking member is entitled to, within
/// [`MAX_ITEMS_BYTES`]. Asking for an epoch one is not given is no fault (views of membership
/// differ for a while); asking for too many is.
fn serve_keys(replica: &mut Replica, peer: Option<MemberId>, epochs: &[EpochId]) -> Served {
    if epochs.len() > MAX_KEY_REQUEST_EPOCHS {
        return served(
            SyncResponse::Error {
                reason: "too many epochs".into(),
            },
            true,
            false,
        );
    }
    let Some(requester) = peer else {
        return served(SyncResponse::Items { items: Vec::new() }, false, false);
    };
    let answers = match replica.answer_key_request(requester, epochs) {
        Ok(answers) => answers,
        Err(e) => {
            tracing::warn!(error = %e, "answering a key request failed");
            Vec::new()
        }
    };
    let mut items = Vec::new();
    let mut size = 0;
    for bytes in answers {
        size += bytes.len() + 8;
        if size > MAX_ITEMS_BYTES {
            break;
        }
        items.push(WireItem {
            kind: SetKind::Deliveries,
            bytes,
        });
    }
    served(SyncResponse::Items { items }, false, false)
}

/// The set a request is about (`None` for pushes and undecodable requests).
pub fn request_kind(request: &[u8]) -> Option<SetKind> {
    match decode::<SyncRequest>(request)? {
        SyncRequest::Reconcile { kind, .. } | SyncRequest::Fetch { kind, .. } => Some(kind),
        SyncRequest::Push { .. } | SyncRequest::Keys { .. } => None,
    }
}

/// A push of the newest membership ops (within [`MAX_PUSH_BYTES`]): sent to a member who was
/// just removed, so its node learns of the removal before it is disconnected.
pub(crate) fn membership_push(replica: &mut Replica) -> Vec<u8> {
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Ops)
        .iter()
        .rev()
        .map(|item| item.id)
        .collect();
    let mut items = Vec::new();
    let mut size = 0;
    for bytes in replica.fetch(SetKind::Ops, &ids).unwrap_or_default() {
        size += bytes.len() + 8;
        if size > MAX_PUSH_BYTES {
            break;
        }
        items.push(WireItem {
            kind: SetKind::Ops,
            bytes,
        });
    }
    encode(&SyncRequest::Push { items })
}

fn served(response: SyncResponse, misbehaved: bool, changed: bool) -> Served {
    Served {
        response: encode(&response),
        misbehaved,
        changed,
    }
}

/// Items verified together in one batch by [`ingest_all`]: a whole fetch ([`MAX_FETCH_IDS`]).
/// From about 190 points the batch's multi-scalar multiplication switches from Straus to
/// Pippenger, so a run of 512 costs less per envelope than four runs of 128 (docs/BENCHMARKS.md,
/// "Issue 12: catch-up ingest, branch `catchup`"). A response holding a forged envelope costs
/// one batch and then a single check of each envelope in it (about 512 × 60 µs on an idle
/// core), and ends the session.
pub const INGEST_BATCH: usize = MAX_FETCH_IDS;

/// Ingest items (from a fetch or a push), flushing once at the end.
///
/// Runs of envelopes are verified in batches of up to [`INGEST_BATCH`]
/// ([`Replica::ingest_many`]); other items one at a time. Stops after the first invalid item (or
/// the first envelope batch holding one): an honest peer sends none, and checking the rest would
/// let one request of forged items (a thousand in 256 KiB) cost a signature check each. Within
/// that batch, only the invalid envelopes are refused.
pub fn ingest_all(replica: &mut Replica, items: &[WireItem]) -> (u32, u32) {
    let mut accepted = 0;
    let mut rejected = 0;
    let mut rest = items;
    while !rest.is_empty() {
        // A run of up to INGEST_BATCH envelopes is verified as one batch; any other item alone
        // (so a push of forged ops costs one check, not one per op).
        let run = match rest.iter().position(|i| i.kind != SetKind::Envelopes) {
            Some(0) => 1,
            Some(n) => n.min(INGEST_BATCH),
            None => rest.len().min(INGEST_BATCH),
        };
        let (chunk, after) = rest.split_at(run);
        rest = after;
        match replica.ingest_many(chunk) {
            Ok(outcomes) => {
                for outcome in &outcomes {
                    match outcome {
                        Ingested::Accepted => accepted += 1,
                        Ingested::Rejected(_) => rejected += 1,
                        _ => {}
                    }
                }
                if rejected > 0 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "storing a synced item failed");
                break;
            }
        }
    }
    if accepted > 0 {
        if let Err(e) = replica.flush() {
            tracing::warn!(error = %e, "flush after sync failed");
        }
    }
    (accepted, rejected)
}

/// The initiator's side of one session with one peer.
pub struct Session {
    kind_index: usize,
    items: Vec<Item>,
    rounds: usize,
    have: Vec<[u8; 32]>,
    need: Vec<[u8; 32]>,
    /// Whether this session asked for the keys it lacks (once, after the deliveries).
    keys_asked: bool,
    /// Whether it sent a key request (it lacked some epoch's key).
    asked_keys: bool,
    /// How many items the push awaiting its acknowledgement carried.
    pushing: u32,
    /// Most bytes of the next push (from [`FIRST_PUSH_BYTES`] up to [`MAX_PUSH_BYTES`]).
    push_limit: usize,
    /// Whether this session stopped pushing posts the peer lacked because it was getting them
    /// from someone else meanwhile (see [`Session::pushed_everything`]).
    push_cut_short: bool,
    /// Items newly accepted in this session.
    pub accepted: u32,
    /// Items pushed to the peer in this session.
    pub pushed: u32,
    /// Bytes of responses received in this session.
    pub bytes_received: u64,
}

/// What a session wants to do next.
pub enum Step {
    /// Send this request.
    Send(Vec<u8>),
    /// The session is over.
    Done,
    /// The peer misbehaved; drop the session.
    Abort(String),
}

impl Session {
    /// Start a session; returns it and its first request.
    pub fn start(replica: &mut Replica) -> (Self, Step) {
        let mut session = Self {
            kind_index: 0,
            items: Vec::new(),
            rounds: 0,
            have: Vec::new(),
            need: Vec::new(),
            keys_asked: false,
            asked_keys: false,
            pushing: 0,
            push_limit: FIRST_PUSH_BYTES,
            push_cut_short: false,
            accepted: 0,
            pushed: 0,
            bytes_received: 0,
        };
        let step = session.begin_kind(replica);
        (session, step)
    }

    /// Whether the session found the two sides in sync: nothing fetched or pushed, no keys
    /// asked for (the periodic interval grows after such a session).
    pub fn found_nothing(&self) -> bool {
        self.accepted == 0 && self.pushed == 0 && !self.asked_keys
    }

    /// Whether the session pushed the peer everything it lacked: false if it stopped because
    /// the peer was getting those posts from someone else. Only then may the node count its
    /// own posts as delivered (they may be among the ones not pushed).
    pub fn pushed_everything(&self) -> bool {
        !self.push_cut_short
    }

    fn kind(&self) -> SetKind {
        SetKind::ORDER[self.kind_index]
    }

    fn begin_kind(&mut self, replica: &mut Replica) -> Step {
        self.items = replica.sync_items(self.kind()).to_vec();
        self.rounds = 0;
        self.push_limit = FIRST_PUSH_BYTES;
        self.have.clear();
        self.need.clear();
        // The whole set's fingerprint first: members in sync (every periodic session but a
        // few) learn it from one round trip of about 20 bytes each way; a difference costs
        // one round more (docs/PROTOCOL.md §8, "Summary first").
        match Reconciler::new(&self.items, RECONCILE_LIMITS).and_then(|mut r| r.initiate_summary())
        {
            Ok(message) => Step::Send(encode(&SyncRequest::Reconcile {
                kind: self.kind(),
                message,
            })),
            Err(e) => Step::Abort(e.to_string()),
        }
    }

    /// Take the peer's response and decide the next step.
    pub fn advance(&mut self, replica: &mut Replica, response: &[u8]) -> Step {
        self.bytes_received += response.len() as u64;
        let Some(response) = decode::<SyncResponse>(response) else {
            return Step::Abort("malformed sync response".into());
        };
        match response {
            SyncResponse::Reconcile { message } => {
                self.rounds += 1;
                if self.rounds > MAX_ROUNDS {
                    return Step::Abort("reconciliation did not converge".into());
                }
                let mut reconciler = match Reconciler::new(&self.items, RECONCILE_LIMITS) {
                    Ok(r) => r,
                    Err(e) => return Step::Abort(e.to_string()),
                };
                reconciler.resume_as_initiator();
                match reconciler.reconcile(&message, &mut self.have, &mut self.need) {
                    Ok(Some(next)) => Step::Send(encode(&SyncRequest::Reconcile {
                        kind: self.kind(),
                        message: next,
                    })),
                    Ok(None) => self.next_transfer(replica),
                    Err(e) => Step::Abort(e.to_string()),
                }
            }
            SyncResponse::Items { items } => {
                if items.iter().any(|i| i.kind != self.kind()) {
                    return Step::Abort("items of the wrong kind".into());
                }
                let (accepted, rejected) = ingest_all(replica, &items);
                self.accepted += accepted;
                if rejected > 0 {
                    return Step::Abort(format!("{rejected} invalid items"));
                }
                self.next_transfer(replica)
            }
            SyncResponse::Ack { accepted, .. } => {
                // Most of the posts just pushed were not new to the peer: another member is
                // sending it the same ones (it came back and several of us connected at once).
                // The rest would mostly travel twice, so they are left to that member, and to
                // the next session if that one fails.
                if self.kind() == SetKind::Envelopes && accepted.saturating_mul(2) < self.pushing {
                    self.push_cut_short = !self.have.is_empty();
                    self.have.clear();
                } else {
                    self.push_limit = (self.push_limit * 2).min(MAX_PUSH_BYTES);
                }
                self.pushing = 0;
                self.next_transfer(replica)
            }
            SyncResponse::Error { reason } => Step::Abort(reason),
        }
    }

    /// Fetch what we need, then push what they need, then move to the next set.
    fn next_transfer(&mut self, replica: &mut Replica) -> Step {
        // Ids that arrived meanwhile (gossip, or a push from another member's session) are
        // not fetched again.
        let kind = self.kind();
        let mut ids = Vec::new();
        let mut taken = 0;
        for id in &self.need {
            taken += 1;
            if !replica.holds(kind, id) {
                ids.push(*id);
                if ids.len() == MAX_FETCH_IDS {
                    break;
                }
            }
        }
        self.need.drain(..taken);
        if !ids.is_empty() {
            return Step::Send(encode(&SyncRequest::Fetch { kind, ids }));
        }
        if !self.have.is_empty() {
            let mut items = Vec::new();
            let mut size = 0;
            while let Some(id) = self.have.pop() {
                let Ok(mut found) = replica.fetch(self.kind(), &[id]) else {
                    continue;
                };
                let Some(bytes) = found.pop() else { continue };
                if size + bytes.len() + 8 > self.push_limit && !items.is_empty() {
                    self.have.push(id);
                    break;
                }
                size += bytes.len() + 8;
                items.push(WireItem {
                    kind: self.kind(),
                    bytes,
                });
            }
            if !items.is_empty() {
                self.pushing = items.len() as u32;
                self.pushed += self.pushing;
                return Step::Send(encode(&SyncRequest::Push { items }));
            }
        }
        if let Some(request) = self.ask_for_keys(replica) {
            return Step::Send(request);
        }
        if self.kind_index + 1 < SetKind::ORDER.len() {
            self.kind_index += 1;
            return self.begin_kind(replica);
        }
        Step::Done
    }
}

impl Session {
    /// Once the deliveries are reconciled, and before the posts: ask the peer for the keys of
    /// epochs we are entitled to but lack (our share was junk, or we never got one), so that the
    /// posts fetched next can be read. The answer is an [`SyncResponse::Items`] of deliveries,
    /// taken in like fetched ones.
    fn ask_for_keys(&mut self, replica: &Replica) -> Option<Vec<u8>> {
        if self.kind() != SetKind::Deliveries || self.keys_asked {
            return None;
        }
        self.keys_asked = true;
        let epochs = replica.lacking_epochs();
        self.asked_keys = !epochs.is_empty();
        self.asked_keys
            .then(|| encode(&SyncRequest::Keys { epochs }))
    }
}
