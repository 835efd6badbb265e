//! A member's replica: identity, collective state and posts, kept in the encrypted store.
//!
//! [`Replica`] is the node minus the network. It ingests items from peers, executes a member's
//! [`Request`](crate::api::Request)s and persists everything through [`Store`]. What to accept,
//! hold or refuse is decided by the core's replica state machine
//! ([`lookout_protocol::replica::State`], the code the simulation runs too); this module applies
//! its effects to the store, turns its notes into [`Event`]s and supplies the clock and OS
//! randomness. The event loop
//! owns one and drives it from the swarm; the CLI opens one directly when no node is running.
//! Items made locally are queued in [`Replica::take_outgoing`] for the event loop to gossip, and
//! stay in the store so set reconciliation delivers them whenever a peer is reached.

mod commands;
mod held;
mod ingest;
mod keyshare;
mod mailboxes;
mod passphrase;
mod post_index;
mod post_pack;
pub(crate) mod post_record;
mod secrets;
mod views;

use std::collections::BTreeSet;
use std::path::Path;

use rand::rngs::OsRng;
use tracing::{debug, info, warn};

use lookout_protocol::envelope::{InnerBody, PostMeta};
use lookout_protocol::epoch::KeyDelivery;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{MembershipLog, Op, RevocationCertificate, SignedGenesis};
use lookout_protocol::passphrase::KdfParams;
use lookout_protocol::replica::{PostRecord, State};
use lookout_protocol::text::{CollectiveSecret, TextKey};
use lookout_protocol::{ContentId, MemberId};

use crate::api::{ApiError, ErrorCode, Event};
use crate::store::{Batch, Store, StoreError, Tree};

pub use ingest::{Ingested, Refusal, SetKind, Unpersisted, WireItem};
pub use passphrase::KdfUpgraded;

const KEY_IDENTITY: &[u8] = b"identity";
const KEY_REVOCATION: &[u8] = b"revocation";
const KEY_NAME: &[u8] = b"name";
const KEY_GENESIS: &[u8] = b"genesis";
const KEY_SEQ: &[u8] = b"seq";
const KEY_BOOTSTRAP: &[u8] = b"bootstrap";
const KEY_LISTEN: &[u8] = b"listen";
const KEY_INVITER: &[u8] = b"inviter";
/// Set once [`Tree::PostIndex`] holds, in chunks (`post_index.rs`), an entry for every stored
/// post: written when the store is created, or by the pass that builds the index of a store
/// made before this format (`post_index_v1` held one entry per post; `post_index_v2` the same
/// chunks as now, in a sled tree of their own, which `Store::open` now drops).
const KEY_POST_INDEX: &[u8] = b"post_index_v3";
/// The marker of the format before, removed by the pass that builds the index: a version that
/// reads `post_index_v2` then rebuilds its index from the posts and stops at the first index
/// chunk it meets among them (a clear error) rather than showing no alerts.
const KEY_POST_INDEX_V2: &[u8] = b"post_index_v2";
pub use lookout_protocol::replica::{MAX_HELD, MAX_REFUSED};

/// The current time in seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A member's device state.
pub struct Replica {
    store: Store,
    identity: Identity,
    name: String,
    collective: Option<State>,
    outgoing: Vec<WireItem>,
    events: Vec<Event>,
    /// Membership ops were added since the last [`Replica::take_events`].
    membership_dirty: bool,
    /// The epochs whose keys the secrets file holds.
    secrets_epochs: BTreeSet<lookout_protocol::EpochId>,
    /// The layout of the post index's chunks on disk.
    post_index: post_index::PostIndex,
    /// The collective's secret (kept in the secrets file): names open under it and the hello
    /// secret comes from it.
    collective_secret: Option<CollectiveSecret>,
    /// Every member's display name at one roster ([`Replica::member_name`]): opening them all
    /// costs one decryption per member ever admitted, so an alert view must not redo it.
    names: std::cell::RefCell<Option<NameMemo>>,
    /// A post of ours was written to the store and queued for gossip, not yet flushed
    /// ([`Replica::execute_unflushed`]).
    unflushed_post: bool,
    /// Posts' writes held by the node's event loop until it has forwarded and shown them.
    held: held::HeldWrites,
    /// The pack last opened to read a post (`post_pack.rs`): a listing reads its posts in time
    /// order, and a pack holds posts of neighbouring times. Emptied whenever a pack is
    /// rewritten or removed.
    pack_cache: std::cell::RefCell<Option<(u64, zeroize::Zeroizing<Vec<u8>>)>>,
}

/// Display names of every member ever admitted, at the roster with these heads, and whether
/// the collective secret (which opens them) was known.
struct NameMemo {
    heads: Vec<lookout_protocol::OpId>,
    with_secret: bool,
    names: std::collections::BTreeMap<lookout_protocol::MemberId, String>,
}

/// A post as kept in the store.
type StoredRecord = PostRecord;

impl Replica {
    /// Create this device's identity and its encrypted store in `home`.
    pub fn create(
        home: &Path,
        passphrase: &[u8],
        name: &str,
        params: KdfParams,
    ) -> Result<(Self, RevocationCertificate), ApiError> {
        let name = name.trim();
        if !commands::name_fits(name) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "the name must be 1 to 64 bytes (a letter with an accent takes two), without control characters: a nickname is best",
            )
            .with_detail(crate::api::Detail::Name {
                max: lookout_protocol::membership::MAX_NAME_BYTES,
            }));
        }
        let store = Store::create(home, passphrase, params).map_err(store_error)?;
        let identity = Identity::generate_at(&mut OsRng, now());
        // The agreement key is replaced every week and must then be gone: it lives in the
        // secrets file, and the database holds the signing key only.
        secrets::write_initial(&store, &identity.agreement_keys())?;
        let sealed = identity
            .seal_without_agreement(passphrase, params, &mut OsRng)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let certificate = RevocationCertificate::create(&identity, now());
        store
            .put(Tree::Identity, KEY_IDENTITY, &sealed)
            .and_then(|()| {
                store.put(
                    Tree::Identity,
                    KEY_REVOCATION,
                    certificate.to_code().as_bytes(),
                )
            })
            .and_then(|()| store.put(Tree::Meta, KEY_NAME, name.as_bytes()))
            // No posts yet, so the (empty) post index is complete: no open builds it.
            .and_then(|()| store.put(Tree::Meta, KEY_POST_INDEX, b"1"))
            .and_then(|()| store.flush())
            .map_err(store_error)?;
        info!(member = %identity.member_id().short(), "identity created");
        Ok((
            Self {
                store,
                identity,
                name: name.to_owned(),
                collective: None,
                outgoing: Vec::new(),
                events: Vec::new(),
                membership_dirty: false,
                secrets_epochs: BTreeSet::new(),
                post_index: post_index::PostIndex::default(),
                collective_secret: None,
                names: Default::default(),
                unflushed_post: false,
                held: Default::default(),
                pack_cache: Default::default(),
            },
            certificate,
        ))
    }

    /// Open the store in `home` with the passphrase and load everything.
    pub fn open(home: &Path, passphrase: &[u8]) -> Result<Self, ApiError> {
        if !Store::exists(home) {
            return Err(ApiError::new(
                ErrorCode::NotInitialized,
                format!(
                    "no Lookout identity in {}: run `lookout init --name NAME` first",
                    home.display()
                ),
            ));
        }
        let mut store = Store::open(home, passphrase).map_err(store_error)?;
        // A store of format 2 keeps each post decoded beside its envelope: rewritten as
        // envelopes only before anything reads them (`post_record.rs`), and marked as of this
        // format. Format 3 differs only in having no packs of posts (`post_pack.rs`): its posts
        // are read as they are, and the mark tells an older version to refuse the store now.
        if store.format() < 3 {
            post_record::migrate(&mut store).map_err(store_error)?;
        } else if store.format() < crate::store::STORE_FORMAT {
            store
                .set_format(crate::store::STORE_FORMAT)
                .map_err(store_error)?;
            info!(
                format = crate::store::STORE_FORMAT,
                "store marked as of the new format"
            );
        }
        let sealed = store
            .get(Tree::Identity, KEY_IDENTITY)
            .map_err(store_error)?
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the store has no identity"))?;
        let next = store
            .get(Tree::Identity, passphrase::KEY_IDENTITY_NEXT)
            .map_err(store_error)?;
        let stored_secrets = secrets::read(&store)?;
        // The passphrase opened the store's key file, so it is right: an identity that does
        // not open now is damage, never a reason to wipe (Trial 12's T12-8).
        let identity = passphrase::unseal_identity(
            &sealed,
            next.as_deref().map(|v| &v[..]),
            passphrase,
            stored_secrets.as_ref().map(|s| s.agreement.as_slice()),
        )
        .ok_or_else(|| {
            identity_unopenable(if stored_secrets.is_none() {
                "this device's secrets file is missing"
            } else {
                "this device's identity does not open with its secrets file"
            })
        })?;
        let name = store
            .get(Tree::Meta, KEY_NAME)
            .map_err(store_error)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let mut replica = Self {
            store,
            identity,
            name,
            collective: None,
            outgoing: Vec::new(),
            events: Vec::new(),
            membership_dirty: false,
            secrets_epochs: BTreeSet::new(),
            post_index: post_index::PostIndex::default(),
            collective_secret: None,
            names: Default::default(),
            unflushed_post: false,
            held: Default::default(),
            pack_cache: Default::default(),
        };
        let (epoch_keys, migrate) = match stored_secrets {
            Some(s) => {
                replica.collective_secret = s.collective;
                (s.epoch_keys, false)
            }
            // A home made before the secrets file: its agreement key moves there now (the
            // database's old record of it stays until its first rotation has been destroyed).
            None => (Vec::new(), true),
        };
        replica.load(epoch_keys)?;
        if migrate {
            replica.write_secrets()?;
        } else {
            replica.secrets_epochs = replica
                .collective
                .as_ref()
                .map(|c| c.book().held_keys().map(|k| k.id()).collect())
                .unwrap_or_default();
        }
        // Posts that expired while the device was off are deleted, and the data keys of hours
        // that have passed destroyed, before anything else happens.
        replica.expire(now())?;
        Ok(replica)
    }

    /// The key the collective's names and removal reasons open under (`None` before this
    /// device founded or joined a collective).
    pub fn text_key(&self) -> Option<TextKey> {
        self.collective_secret
            .as_ref()
            .map(CollectiveSecret::text_key)
    }

    /// The collective's secret, as an invite carries it.
    pub fn collective_secret(&self) -> Option<&CollectiveSecret> {
        self.collective_secret.as_ref()
    }

    /// The collective's hello secret (`docs/PROTOCOL.md`, hello): from the collective secret,
    /// which a mailbox holding only the genesis record lacks.
    pub fn hello_secret(&self) -> Result<zeroize::Zeroizing<[u8; 32]>, ApiError> {
        self.collective_secret
            .as_ref()
            .map(CollectiveSecret::hello_secret)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotInitialized,
                    "this device does not hold its collective's secret: join again with a new invite",
                )
            })
    }

    fn load(&mut self, epoch_keys: Vec<lookout_protocol::epoch::EpochKey>) -> Result<(), ApiError> {
        let Some(genesis) = self
            .store
            .get(Tree::Meta, KEY_GENESIS)
            .map_err(store_error)?
        else {
            return Ok(());
        };
        let genesis = SignedGenesis::decode(&genesis)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("stored genesis: {e}")))?;
        let collective_id = genesis.id();
        let mut state = State::new(genesis);
        let mut ops = Vec::new();
        let mut readings = Vec::new();
        let mut stubs = Vec::new();
        let mut look_ups = Vec::new();
        for entry in self.store.iter(Tree::Membership) {
            let (key, bytes) = entry.map_err(store_error)?;
            if key.len() == READING_KEY_LEN && key.first() == Some(&LOOK_UP_TAG) {
                // Unreadable: dropped, and the op's past is resolved again.
                match decode_look_up(&key, &bytes) {
                    Some(look_up) => look_ups.push(look_up),
                    None => warn!("skipping unreadable stored look-up"),
                }
                continue;
            }
            if key.len() == READING_KEY_LEN && key.first() == Some(&STUB_TAG) {
                match Op::decode(&bytes, collective_id) {
                    Ok(op) => stubs.push(op),
                    Err(e) => warn!(error = %e, "skipping unreadable stored stub"),
                }
                continue;
            }
            if key.len() == READING_KEY_LEN {
                match decode_reading(&key, &bytes) {
                    Some(reading) => readings.push(reading),
                    None => warn!("skipping unreadable stored op reading"),
                }
                continue;
            }
            match Op::decode(&bytes, collective_id) {
                Ok(op) => ops.push(op),
                Err(e) => warn!(error = %e, "skipping unreadable stored op"),
            }
        }
        // Ops that joined read through an op refused over the quota join again as they did.
        state.restore_stubs(stubs);
        state.restore_read_parents(readings);
        state.restore_look_ups(look_ups);
        state.restore_ops(ops);
        // Keys whose deliveries were sealed to an agreement key since destroyed.
        state.preload_epoch_keys(epoch_keys);
        for entry in self.store.iter(Tree::EpochKeys) {
            let (_, bytes) = entry.map_err(store_error)?;
            match KeyDelivery::decode(&bytes, collective_id) {
                Ok(delivery) => {
                    if let Err(why) = state.restore_delivery(delivery, &self.identity) {
                        warn!(why, "stored key delivery not taken in");
                    }
                }
                Err(e) => warn!(error = %e, "skipping unreadable stored key delivery"),
            }
        }
        if self
            .store
            .get(Tree::Meta, KEY_POST_INDEX)
            .map_err(store_error)?
            .is_none()
        {
            self.build_post_index(&state)?;
        }
        // Only the index's chunks are read: the posts stay on disk until shown.
        let (index, entries) =
            post_index::PostIndex::load_located(&self.store).map_err(store_error)?;
        state.restore_post_metas(
            entries
                .into_iter()
                .map(|(id, meta, _)| (id, meta))
                .collect(),
        );
        self.post_index = index;
        self.reindex_own_posts(&mut state)?;
        state.set_seq(
            self.store
                .get(Tree::Meta, KEY_SEQ)
                .map_err(store_error)?
                .and_then(|v| v.as_slice().try_into().ok().map(u64::from_le_bytes))
                .unwrap_or(0),
        );
        debug!(
            ops = state.log().len(),
            deliveries = state.deliveries().len(),
            posts = state.posts().len(),
            "replica loaded"
        );
        self.collective = Some(state);
        Ok(())
    }

    /// Review 10, R10-K2: posts of ours that the outbox lists (no peer is known to have them)
    /// but the index lacks (their chunk did not read at open, `post_index.rs`) are indexed again
    /// from their stored entry, so they are listed, served and sent again rather than lost:
    /// nobody else can send them back. Each is read under its own id, or (one written in a
    /// pack with received posts) by one pass over the packs, made only when an index chunk did
    /// not read at this open; its body must open and be ours. The new index entries are
    /// written (one batch); a post whose bytes do not read either is lost as before. Costs one
    /// lookup per outbox entry at every start.
    fn reindex_own_posts(&mut self, state: &mut State) -> Result<(), ApiError> {
        use lookout_protocol::{DeliveryId, OpId};
        let me = self.identity.member_id();
        let mut lacking = BTreeSet::new();
        for entry in self.store.iter(Tree::Outbox) {
            let Ok((key, _)) = entry else { continue };
            let Ok(id) = <[u8; 32]>::try_from(key.as_slice()) else {
                continue;
            };
            if !state.posts().contains_key(&ContentId(id))
                && !state.log().contains(&OpId(id))
                && state.deliveries().get(&DeliveryId(id)).is_none()
            {
                lacking.insert(ContentId(id));
            }
        }
        if lacking.is_empty() {
            return Ok(());
        }
        let ours = |record: &[u8]| {
            post_record::body_of(record, state)
                .filter(|body| body.author == me)
                .map(|body| PostMeta::of(&body))
        };
        let mut found: Vec<post_index::Located> = Vec::new();
        for id in lacking.clone() {
            if let Ok(Some(record)) = self.store.get(Tree::Alerts, &id.0) {
                if let Some(meta) = ours(&record) {
                    lacking.remove(&id);
                    found.push((id, meta, None));
                }
            }
        }
        // Packs are searched only when an index chunk did not read: otherwise a packed post of
        // ours the index lacks was lost with its pack (dropped from the index and forgotten),
        // and a search at every start would find nothing.
        if !lacking.is_empty() && self.post_index.damage.unreadable_chunks > 0 {
            for entry in self.store.iter(Tree::Alerts) {
                let Ok((key, value)) = entry else { continue };
                let Some(pack) = post_pack::pack_of_key(&key) else {
                    continue;
                };
                for (id, record) in post_pack::decode(&value).unwrap_or_default() {
                    if lacking.contains(&id) {
                        if let Some(meta) = ours(record) {
                            lacking.remove(&id);
                            found.push((id, meta, Some(pack)));
                        }
                    }
                }
                if lacking.is_empty() {
                    break;
                }
            }
        }
        if !lacking.is_empty() {
            warn!(
                items = lacking.len(),
                "outbox entries whose post does not read: not sent again"
            );
        }
        if found.is_empty() {
            return Ok(());
        }
        warn!(
            posts = found.len(),
            "posts of ours missing from the post index indexed again from their stored entries"
        );
        let mut batch = Batch::new();
        let added = self
            .post_index
            .add(&self.store, &mut batch, found.iter().copied())
            .map_err(store_error)?;
        if let Err(error) = self.store.apply_batch(batch) {
            self.post_index.undo(added);
            return Err(store_error(error));
        }
        state.restore_post_metas(found.into_iter().map(|(id, meta, _)| (id, meta)).collect());
        Ok(())
    }

    /// Write the post index of a store made before its format: one pass over the posts.
    fn build_post_index(&mut self, state: &State) -> Result<(), ApiError> {
        self.store.clear(Tree::PostIndex).map_err(store_error)?;
        let mut index = post_index::PostIndex::default();
        let mut entries = Vec::new();
        // A post that fails to open (a flipped bit on flash) or to decode is left out of the
        // index, as it was unreadable before: it must not keep the store from opening, and the
        // next sync fetches it again (Review 5, S1).
        let mut skipped = 0usize;
        for entry in self.store.iter(Tree::Alerts) {
            let (key, bytes) = match entry {
                Ok(entry) => entry,
                Err(error @ StoreError::TamperedValue { .. }) => {
                    warn!(%error, "skipping a stored post that fails authentication");
                    skipped += 1;
                    continue;
                }
                Err(error) => return Err(store_error(error)),
            };
            if let Some(pack) = post_pack::pack_of_key(&key) {
                let Some(posts) = post_pack::decode(&bytes) else {
                    warn!("skipping an unreadable pack of posts");
                    skipped += 1;
                    continue;
                };
                for (id, record) in posts {
                    match post_record::body_of(record, state) {
                        Some(body) => entries.push((id, PostMeta::of(&body), Some(pack))),
                        None => skipped += 1,
                    }
                }
                continue;
            }
            let (Ok(id), Some(body)) = (
                <[u8; 32]>::try_from(key.as_slice()),
                post_record::body_of(&bytes, state),
            ) else {
                warn!("skipping unreadable stored post");
                skipped += 1;
                continue;
            };
            entries.push((ContentId(id), PostMeta::of(&body), None));
        }
        let indexed = entries.len();
        let mut batch = Batch::new();
        // Not applied below: `index` is then dropped with the error.
        let _added = index
            .add(&self.store, &mut batch, entries)
            .map_err(store_error)?;
        batch
            .put(Tree::Meta, KEY_POST_INDEX, b"1")
            .remove(Tree::Meta, KEY_POST_INDEX_V2);
        self.store.apply_batch(batch).map_err(store_error)?;
        self.store.flush().map_err(store_error)?;
        info!(posts = indexed, skipped, "post index built");
        Ok(())
    }

    /// A stored post, read from disk and opened with its epoch key.
    pub(crate) fn stored_post(&self, id: &ContentId) -> Option<InnerBody> {
        let bytes = self.post_record(id).ok()??;
        post_record::body_of(&bytes, self.collective.as_ref()?)
    }

    /// The record of post `id` as stored (`post_record.rs`): its own entry, or its place in
    /// its pack (`post_pack.rs`).
    pub(crate) fn post_record(
        &self,
        id: &ContentId,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        let Some(pack) = self.post_index.pack_of(id) else {
            return match self.store.get(Tree::Alerts, &id.0) {
                // Damaged: this post does not read, the others do; the next rewrite drops it
                // from the index (`post_pack.rs`).
                Err(StoreError::TamperedValue { .. }) => {
                    warn!("a stored post does not read");
                    self.post_index.suspect_alone.borrow_mut().insert(*id);
                    Ok(None)
                }
                other => other,
            };
        };
        let mut cache = self.pack_cache.borrow_mut();
        if cache.as_ref().map(|(held, _)| *held) != Some(pack) {
            let value = match self.store.get(Tree::Alerts, &post_pack::pack_key(pack)) {
                Ok(Some(value)) => value,
                // Damaged (a flipped bit on flash): this post does not read, the others do.
                // The next rewrite drops its posts from the index (`post_pack.rs`).
                Ok(None) | Err(StoreError::TamperedValue { .. }) => {
                    warn!("a pack of posts does not read");
                    self.post_index.suspect.borrow_mut().insert(pack);
                    return Ok(None);
                }
                Err(error) => return Err(error),
            };
            *cache = Some((pack, value));
        }
        let record = cache
            .as_ref()
            .and_then(|(_, value)| post_pack::find(value, id))
            .map(|record| zeroize::Zeroizing::new(record.to_vec()));
        if record.is_none() {
            warn!("a pack of posts lacks a post the index places in it");
            self.post_index.suspect.borrow_mut().insert(pack);
        }
        Ok(record)
    }

    /// This device's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// This device's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The membership log, if in a collective.
    pub fn membership(&self) -> Option<&MembershipLog> {
        self.collective.as_ref().map(State::log)
    }

    /// The store's home directory.
    pub fn home(&self) -> &Path {
        self.store.home()
    }

    /// The self-revocation certificate code made at `init`.
    pub fn revocation_certificate(&self) -> Result<Option<String>, ApiError> {
        Ok(self
            .store
            .get(Tree::Identity, KEY_REVOCATION)
            .map_err(store_error)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Items made locally since the last call, for the event loop to publish.
    pub fn take_outgoing(&mut self) -> Vec<WireItem> {
        std::mem::take(&mut self.outgoing)
    }

    /// Events since the last call, for watchers.
    pub fn take_events(&mut self) -> Vec<Event> {
        if std::mem::take(&mut self.membership_dirty) {
            let members = self
                .collective
                .as_ref()
                .map_or(0, |c| c.log().roster().len());
            self.events.push(Event::MembershipChanged { members });
        }
        std::mem::take(&mut self.events)
    }

    /// Members' node peers allowed to connect: current members except this device.
    pub(crate) fn allowed_members(&self) -> BTreeSet<MemberId> {
        let me = self.identity.member_id();
        self.collective
            .as_ref()
            .map(|c| {
                c.log()
                    .roster()
                    .members()
                    .map(|m| m.identity.member)
                    .filter(|m| *m != me)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Bootstrap addresses from the invite this device joined with.
    pub(crate) fn bootstrap_addresses(&self) -> Vec<String> {
        self.meta_strings(KEY_BOOTSTRAP)
    }

    /// The member who made the invite this device joined with, if the invite named one.
    pub fn inviter(&self) -> Option<MemberId> {
        self.store
            .get(Tree::Meta, KEY_INVITER)
            .ok()
            .flatten()
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .map(MemberId)
    }

    /// Raw keys of the newest epochs this member holds, newest first (the write epoch leads):
    /// the hello's epoch-keyed first step (`net::hello::Keying::NewestEpoch`).
    pub(crate) fn hello_epoch_keys(&self, most: usize) -> Vec<[u8; 32]> {
        let Some(state) = self.collective.as_ref() else {
            return Vec::new();
        };
        let book = state.book();
        let write = book.write_epoch(state.log().roster(), now());
        let mut epochs: Vec<_> = book.epochs().filter(|e| e.have_key).collect();
        epochs.sort_by_key(|e| (Some(e.id) != write, std::cmp::Reverse(e.created)));
        epochs
            .into_iter()
            .filter_map(|e| book.key(&e.id))
            .take(most)
            .map(|k| *k.to_bytes())
            .collect()
    }

    /// Whether the roster names this device's member: it has received its own admission, so
    /// it knows its collective's members (an invite's allowances are over).
    pub(crate) fn roster_names_me(&self) -> bool {
        let me = self.identity.member_id();
        self.collective
            .as_ref()
            .is_some_and(|c| c.log().roster().is_member(&me))
    }

    /// Remember the addresses the node listened on (for invites made while it is stopped).
    pub fn set_listen_addresses(&mut self, addresses: &[String]) -> Result<(), ApiError> {
        self.store
            .put(
                Tree::Meta,
                KEY_LISTEN,
                &postcard::to_allocvec(addresses).unwrap_or_default(),
            )
            .map_err(store_error)
    }

    /// The addresses the node last listened on.
    pub fn listen_addresses(&self) -> Vec<String> {
        self.meta_strings(KEY_LISTEN)
    }

    fn meta_strings(&self, key: &[u8]) -> Vec<String> {
        self.store
            .get(Tree::Meta, key)
            .ok()
            .flatten()
            .and_then(|v| postcard::from_bytes(&v).ok())
            .unwrap_or_default()
    }

    /// Make everything accepted so far durable.
    pub fn flush(&self) -> Result<(), ApiError> {
        self.store.flush().map_err(store_error)
    }

    /// A handle that flushes the store from another thread (the node's group commit).
    pub fn flusher(&self) -> crate::store::Flusher {
        self.store.flusher()
    }

    /// Open the replica again after closing it (tests), waiting up to 5 s while the lock is
    /// still held: as [`Store::open_again_for_tests`] says, a child forked by another test can
    /// hold sled's lock file a few milliseconds past the close (seen in CI: a format test's
    /// reopen failed with "could not acquire lock").
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub(crate) fn open_again_for_tests(home: &Path, passphrase: &[u8]) -> Self {
        crate::store::while_locked(
            || Self::open(home, passphrase),
            |error| {
                error.code == ErrorCode::Busy || error.message.contains("could not acquire lock")
            },
        )
    }

    /// Close the store cleanly.
    pub fn close(self) -> Result<(), ApiError> {
        self.store.close().map_err(store_error)
    }

    /// Emergency erase: make the store unreadable at once, then delete it.
    pub fn wipe(self) -> Result<crate::store::WipeReport, ApiError> {
        self.store.wipe().map_err(store_error)
    }

    fn collective(&self) -> Result<&State, ApiError> {
        self.collective.as_ref().ok_or_else(no_collective)
    }

    fn collective_mut(&mut self) -> Result<&mut State, ApiError> {
        self.collective.as_mut().ok_or_else(no_collective)
    }
}

fn no_collective() -> ApiError {
    ApiError::new(
        ErrorCode::NoCollective,
        "this device is not in a collective yet: create one with `lookout collective create` or join with `lookout join INVITE`",
    )
}

/// Turn a store error into an API error a person can act on.
/// A store the passphrase opened whose identity cannot be opened (`what`: the secrets file is
/// missing or damaged, or does not fit): damage to restore from a backup, never a reason to wipe
/// (Trial 12's T12-8 and T12-22).
pub(super) fn identity_unopenable(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!(
            "{what}: the passphrase is right (it opened the store), but this identity cannot be \
             opened here; do not wipe: restore the Lookout folder from a backup if there is one"
        ),
    )
}

pub(crate) fn store_error(error: StoreError) -> ApiError {
    let code = match &error {
        StoreError::WrongPassphrase => ErrorCode::WrongPassphrase,
        StoreError::Locked { .. } => ErrorCode::Busy,
        StoreError::NotFound { .. } => ErrorCode::NotInitialized,
        StoreError::Incompatible { .. } | StoreError::TooNew { .. } => ErrorCode::Unsupported,
        StoreError::DuressSameAsPassphrase => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, error.to_string())
}

/// Length of the key under which an op's reading is kept in the membership tree (a tag byte
/// and the op id: no op id, 32 bytes, has it).
const READING_KEY_LEN: usize = 33;
/// The tag byte of such a key.
const READING_TAG: u8 = b'r';

/// The tag byte of the key of a stub (a refused op read through, kept to offer it).
const STUB_TAG: u8 = b's';

/// The key of the stub `id` ([`Effect::PutStub`](lookout_protocol::replica::Effect)).
pub(super) fn stub_key(id: &lookout_protocol::OpId) -> [u8; READING_KEY_LEN] {
    let mut key = [0u8; READING_KEY_LEN];
    key[0] = STUB_TAG;
    key[1..].copy_from_slice(&id.0);
    key
}

/// The tag byte of the key of a look-up (what an op's own past admits).
const LOOK_UP_TAG: u8 = b'l';

/// The key of `id`'s look-up ([`Effect::PutLookUp`](lookout_protocol::replica::Effect)).
pub(super) fn look_up_key(id: &lookout_protocol::OpId) -> [u8; READING_KEY_LEN] {
    let mut key = [0u8; READING_KEY_LEN];
    key[0] = LOOK_UP_TAG;
    key[1..].copy_from_slice(&id.0);
    key
}

/// A look-up's value: the keys, 32 bytes each (often none).
pub(super) fn encode_look_up(keys: &[lookout_protocol::MemberId]) -> Vec<u8> {
    keys.iter().flat_map(|k| k.0).collect()
}

/// A stored look-up, if its key and value are well formed.
fn decode_look_up(
    key: &[u8],
    value: &[u8],
) -> Option<(lookout_protocol::OpId, Vec<lookout_protocol::MemberId>)> {
    let id: [u8; 32] = key.get(1..)?.try_into().ok()?;
    if !value.len().is_multiple_of(32) {
        return None;
    }
    let keys = value
        .chunks_exact(32)
        .map(|c| c.try_into().map(lookout_protocol::MemberId))
        .collect::<Result<_, _>>()
        .ok()?;
    Some((lookout_protocol::OpId(id), keys))
}

/// The key of `id`'s reading ([`Effect::PutReadParents`](lookout_protocol::replica::Effect)).
pub(super) fn reading_key(id: &lookout_protocol::OpId) -> [u8; READING_KEY_LEN] {
    let mut key = [0u8; READING_KEY_LEN];
    key[0] = READING_TAG;
    key[1..].copy_from_slice(&id.0);
    key
}

/// Most ids a stored reading holds: parents read (at most `MAX_READ_PARENTS`, and one more per
/// refused op that joined since) and refused ops read through (`MAX_READ_THROUGH`).
const READING_IDS: usize = 2 * lookout_protocol::membership::MAX_READ_PARENTS
    + lookout_protocol::membership::MAX_READ_THROUGH;
/// Every stored reading is this long (padded), so the store's entry sizes show nothing of a
/// split's shape to whoever looks at a seized phone's files.
const READING_VALUE_LEN: usize = 2 + 32 * READING_IDS;

/// A reading's value: the number of parents read and of refused ops read through (a byte
/// each), those parents, those refused ops, then zeros up to [`READING_VALUE_LEN`].
pub(super) fn encode_reading(
    parents: &[lookout_protocol::OpId],
    via: &[lookout_protocol::OpId],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(READING_VALUE_LEN);
    out.push(u8::try_from(parents.len()).unwrap_or(u8::MAX));
    out.push(u8::try_from(via.len()).unwrap_or(u8::MAX));
    for id in parents.iter().chain(via).take(READING_IDS) {
        out.extend_from_slice(&id.0);
    }
    out.resize(READING_VALUE_LEN, 0);
    out
}

/// An op's reading: its id, the parents it is read as naming, the refused ops read through.
type Reading = (
    lookout_protocol::OpId,
    Vec<lookout_protocol::OpId>,
    Vec<lookout_protocol::OpId>,
);

/// A reading read back from the store, `None` if it is not one.
fn decode_reading(key: &[u8], value: &[u8]) -> Option<Reading> {
    let id: [u8; 32] = key.strip_prefix(&[READING_TAG])?.try_into().ok()?;
    if value.len() != READING_VALUE_LEN {
        return None;
    }
    let (counts, rest) = value.split_at(2);
    let (n, m) = (usize::from(counts[0]), usize::from(counts[1]));
    if n + m > READING_IDS || rest[32 * (n + m)..].iter().any(|b| *b != 0) {
        return None;
    }
    let ids: Vec<lookout_protocol::OpId> = rest[..32 * (n + m)]
        .chunks_exact(32)
        .filter_map(|c| c.try_into().ok().map(lookout_protocol::OpId))
        .collect();
    let (parents, via) = ids.split_at(n);
    Some((lookout_protocol::OpId(id), parents.to_vec(), via.to_vec()))
}

#[cfg(test)]
mod reading_tests {
    use super::*;

    /// A reading round-trips through its key and value, every value is the same length, and a
    /// value of another length, with counts past its ids or with non-zero padding is no reading.
    #[test]
    fn a_reading_round_trips_through_the_store_encoding() {
        let id = lookout_protocol::OpId([7; 32]);
        let parents = vec![
            lookout_protocol::OpId([1; 32]),
            lookout_protocol::OpId([2; 32]),
        ];
        let via = vec![lookout_protocol::OpId([3; 32])];
        let key = reading_key(&id);
        let value = encode_reading(&parents, &via);
        assert_eq!(value.len(), READING_VALUE_LEN);
        assert_eq!(encode_reading(&[], &[]).len(), READING_VALUE_LEN);
        assert_eq!(decode_reading(&key, &value), Some((id, parents, via)));
        assert_eq!(decode_reading(&key, &value[..value.len() - 1]), None);
        let mut bad = value.clone();
        bad[READING_VALUE_LEN - 1] = 1;
        assert_eq!(decode_reading(&key, &bad), None);
        let mut bad = value.clone();
        bad[0] = u8::MAX;
        bad[1] = u8::MAX;
        assert_eq!(decode_reading(&key, &bad), None);
        assert_eq!(decode_reading(&id.0, &value), None);
    }

    /// A look-up round-trips through its key and value (no key, or several), and a value that is
    /// not whole keys is no look-up.
    #[test]
    fn a_look_up_round_trips_through_the_store_encoding() {
        let id = lookout_protocol::OpId([7; 32]);
        let key = look_up_key(&id);
        assert_eq!(key.len(), READING_KEY_LEN);
        assert_eq!(key[0], LOOK_UP_TAG);
        for keys in [
            vec![],
            vec![
                lookout_protocol::MemberId([1; 32]),
                lookout_protocol::MemberId([2; 32]),
            ],
        ] {
            let value = encode_look_up(&keys);
            assert_eq!(decode_look_up(&key, &value), Some((id, keys)));
        }
        let value = encode_look_up(&[lookout_protocol::MemberId([1; 32])]);
        assert_eq!(decode_look_up(&key, &value[..31]), None);
        assert_eq!(decode_look_up(&key[..32], &value), None);
    }
}
