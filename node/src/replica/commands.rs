//! What a member or moderator does: found or join a collective, post, retract, approve, revoke.

use rand::rngs::OsRng;
use tracing::info;

use lookout_protocol::content::{Alert, Content, ContentError, Identifiers};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::invite::{Invite, JoinRequest};
use lookout_protocol::membership::{
    Action, NewModerator, Op, OpError, PendingKind, Policy, RevocationCertificate, SignedGenesis,
    MAX_NAME_BYTES,
};
use lookout_protocol::replica::State;
use lookout_protocol::text::CollectiveSecret;
use lookout_protocol::{ContentId, EpochId, MemberId, OpId};

use super::{
    now, store_error, Ingested, Replica, SetKind, WireItem, KEY_BOOTSTRAP, KEY_GENESIS,
    KEY_INVITER, KEY_SEQ,
};
use crate::api::{
    ApiError, CodeKind, Detail, ErrorCode, PostDraft, ProposalView, Request, Response,
};
use crate::store::Tree;

impl Replica {
    /// Execute a request. [`Request::Watch`] is answered by the node, not here. Everything
    /// it wrote is durable when it returns.
    pub fn execute(&mut self, request: Request) -> Result<Response, ApiError> {
        let (result, unflushed) = self.execute_unflushed(request);
        if unflushed {
            self.flush()?;
        }
        result
    }

    /// [`Replica::execute`], except that a post of ours (an alert, retraction or
    /// corroboration) is written to the store and queued for gossip without the fsync: the
    /// second value says whether it still needs one. The node publishes the post at once and
    /// answers only once its group commit made it durable (docs/PROTOCOL.md §9.4).
    pub fn execute_unflushed(&mut self, request: Request) -> (Result<Response, ApiError>, bool) {
        // Owed by something outside this command (the node takes it itself): not this
        // command's to wait for.
        self.unflushed_post = false;
        let result = self.execute_request(request);
        (result, self.take_unflushed())
    }

    /// Whether a post of ours was written since the last call and still needs an fsync; the
    /// node's own posts made outside a command (reachability) are handed to the group commit
    /// with this, so the flag never carries over to an unrelated command's answer.
    pub fn take_unflushed(&mut self) -> bool {
        std::mem::take(&mut self.unflushed_post)
    }

    fn execute_request(&mut self, request: Request) -> Result<Response, ApiError> {
        match request {
            Request::Status => Ok(Response::Status(self.status())),
            Request::Members => Ok(Response::Members(self.members()?)),
            Request::Pending => Ok(Response::Pending {
                proposals: self.pending()?,
            }),
            Request::Alerts(filter) => Ok(Response::Alerts {
                alerts: self.alerts(&filter)?,
            }),
            Request::Check { term } => Ok(Response::Alerts {
                alerts: self.check(&term)?,
            }),
            Request::AlertsPage {
                filter,
                after,
                limit,
            } => {
                let limit = page_limit(limit);
                let (alerts, next) = self.alerts_page(&filter, after.as_deref(), limit)?;
                Ok(Response::AlertsPage { alerts, next })
            }
            Request::CheckPage { term, after, limit } => {
                let limit = page_limit(limit);
                let (alerts, next) = self.check_page(&term, after.as_deref(), limit)?;
                Ok(Response::AlertsPage { alerts, next })
            }
            Request::Post(draft) => Ok(Response::Posted {
                id: self.post(draft)?.to_hex(),
            }),
            Request::Retract { id, reason } => {
                let target = self.find_post(&id)?;
                if let Some(view) = self.alert_view(&target).filter(|a| a.retracted.is_some()) {
                    let by = view
                        .retracted_by
                        .map(|who| format!(" by {who}"))
                        .unwrap_or_default();
                    let why = view
                        .retracted
                        .filter(|reason| !reason.is_empty())
                        .map(|reason| format!(" (\"{reason}\")"))
                        .unwrap_or_default();
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        format!(
                            "alert {} is already retracted{by}{why}: nothing was changed",
                            target.short()
                        ),
                    ));
                }
                let content = Content::Retraction {
                    target,
                    reason: reason.trim().to_owned(),
                };
                Ok(Response::Posted {
                    id: self.post_content(content, None)?.to_hex(),
                })
            }
            Request::Corroborate { id, note } => {
                let target = self.find_post(&id)?;
                let author = self.collective()?.posts().get(&target).map(|p| p.author);
                if author == Some(self.identity.member_id()) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "you posted this alert: corroborating is for other members it happened to (to change it, retract it and post it again)",
                    ));
                }
                let content = Content::Corroboration {
                    target,
                    note: note.trim().to_owned(),
                };
                Ok(Response::Posted {
                    id: self.post_content(content, None)?.to_hex(),
                })
            }
            Request::Approve { target } => Ok(Response::Proposal(self.approve(&target)?)),
            Request::Revoke { member, reason } => {
                let member = self.find_member(&member)?;
                let epoch = self.revoke(member, reason)?;
                Ok(Response::Revoked {
                    member: member.to_hex(),
                    epoch: epoch.map(|e| e.short()),
                })
            }
            Request::PublishRevocation { certificate } => {
                let cert = RevocationCertificate::from_code(&certificate)
                    .map_err(|e| ApiError::new(ErrorCode::BadCode, e.to_string()))?;
                let member = cert.member;
                self.require_member()?;
                let state = self.collective()?;
                let roster = state.log().roster();
                let whose = format!(
                    "this certificate is for member {}",
                    member.to_hex().get(..12).unwrap_or_default()
                );
                let key = self.text_key();
                if let Some(removed) = roster.removed().get(&member) {
                    let name = match &removed.name {
                        None => String::new(),
                        Some(name) => format!(" ({})", name.display(key.as_ref())),
                    };
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("{whose}{name}, who was already removed: nothing was changed"),
                    ));
                }
                let pending = roster.pending().iter().any(|p| {
                    matches!(&p.kind, PendingKind::Add { identity, .. } if identity.member == member)
                });
                if !roster.is_member(&member) && !pending {
                    return Err(ApiError::new(
                        ErrorCode::UnknownMember,
                        format!(
                            "{whose}, who was never in {}: nothing was published (is it from another collective?)",
                            state
                                .log()
                                .genesis()
                                .genesis()
                                .sealed_name()
                                .display(key.as_ref())
                        ),
                    ));
                }
                self.make_op(Action::PublishRevocation { certificate: cert })?;
                let epoch = self.rotate_if_needed()?;
                Ok(Response::Revoked {
                    member: member.to_hex(),
                    epoch: epoch.map(|e| e.short()),
                })
            }
            Request::Promote { member } => {
                let member = self.find_member(&member)?;
                self.require_moderator()?;
                let op = self.make_op(Action::ProposePromote { member })?;
                Ok(Response::Proposal(self.proposal_view(op)))
            }
            Request::Demote { member } => {
                let member = self.find_member(&member)?;
                self.require_moderator()?;
                let op = self.make_op(Action::ProposeDemote { member })?;
                Ok(Response::Proposal(self.proposal_view(op)))
            }
            Request::MailboxAdd { code } => Ok(Response::Proposal(self.mailbox_add(&code)?)),
            Request::Mailboxes => Ok(Response::Mailboxes(self.mailboxes()?)),
            Request::MailboxRemove { mailbox } => Ok(Response::MailboxRemoved {
                mailbox: self.mailbox_remove(&mailbox)?.to_hex(),
            }),
            Request::Invite => Ok(Response::Invite {
                code: self.invite_code()?,
            }),
            Request::Watch => Err(ApiError::new(
                ErrorCode::InvalidInput,
                "watching needs a running node: start it with `lookout run`",
            )),
        }
    }

    /// Found a collective with this device as its first moderator.
    pub fn create_collective(&mut self, name: &str, policy: Policy) -> Result<(), ApiError> {
        self.create_collective_with(name, policy, Vec::new())
    }

    /// Found a collective with co-moderators named in its genesis record (their join requests,
    /// checked in person): a collective needing k approvals is founded by at least k moderators.
    /// Each co-moderator then joins with [`Replica::invite_code`]'s invite.
    pub fn create_collective_with(
        &mut self,
        name: &str,
        policy: Policy,
        co_moderators: Vec<JoinRequest>,
    ) -> Result<(), ApiError> {
        if self.collective.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "this device is already in a collective (use another --home for another one)",
            ));
        }
        if !name_fits(name) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "the collective's name must be 1 to 64 bytes (a letter with an accent takes two), without control characters",
            )
            .with_detail(Detail::Name {
                max: MAX_NAME_BYTES,
            }));
        }
        let co = co_moderators
            .into_iter()
            .map(|r| NewModerator {
                identity: r.identity,
                name: r.name,
            })
            .collect();
        let secret = CollectiveSecret::generate(&mut OsRng);
        let genesis = SignedGenesis::create_with_moderators(
            &self.identity,
            &secret,
            name,
            &self.name,
            co,
            policy,
            now(),
            &mut OsRng,
        )
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
        // The secret is durable (sealed in the secrets file) before the collective exists.
        self.collective_secret = Some(secret);
        self.write_secrets()?;
        self.adopt_genesis(&genesis, &[])?;
        self.rotate()?;
        self.flush()?;
        info!(collective = %genesis.id().short(), "collective founded");
        Ok(())
    }

    /// Join with an invite code.
    pub fn join(&mut self, code: &str) -> Result<Invite, ApiError> {
        let found = CodeKind::of(code);
        if found != CodeKind::Invite {
            return Err(not_an_invite(found));
        }
        let invite = Invite::from_code(code).map_err(|e| {
            let detail = match e {
                OpError::OldInvite | OpError::OldGenesis(_) => Some(Detail::OldInvite),
                OpError::UnsupportedVersion(_) => None,
                _ => Some(Detail::DamagedCode {
                    kind: CodeKind::Invite,
                }),
            };
            let error = ApiError::new(
                ErrorCode::BadCode,
                format!("this invite cannot be used: {e}"),
            );
            match detail {
                Some(detail) => error.with_detail(detail),
                None => error,
            }
        })?;
        if let Some(state) = &self.collective {
            if state.log().collective() == invite.genesis.id() {
                return Ok(invite);
            }
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "this device is already in another collective (use another --home)",
            )
            .with_detail(Detail::OtherCollective));
        }
        self.collective_secret = Some(invite.secret.clone());
        self.write_secrets()?;
        self.adopt_genesis(&invite.genesis, &invite.addresses)?;
        if let Some(inviter) = invite.inviter {
            self.store
                .put(Tree::Meta, KEY_INVITER, &inviter.0)
                .map_err(store_error)?;
        }
        self.flush()?;
        Ok(invite)
    }

    fn adopt_genesis(
        &mut self,
        genesis: &SignedGenesis,
        bootstrap: &[String],
    ) -> Result<(), ApiError> {
        self.store
            .put(Tree::Meta, KEY_GENESIS, genesis.encoded())
            .and_then(|()| {
                self.store.put(
                    Tree::Meta,
                    KEY_BOOTSTRAP,
                    &postcard::to_allocvec(bootstrap).unwrap_or_default(),
                )
            })
            .map_err(store_error)?;
        self.collective = Some(State::new(genesis.clone()));
        Ok(())
    }

    /// This device's join request code.
    pub fn join_request(&self) -> JoinRequest {
        JoinRequest {
            identity: self.identity.public(),
            name: self.name.clone(),
        }
    }

    /// An invite for a newly admitted member: the genesis and this node's addresses.
    pub fn invite_code(&self) -> Result<String, ApiError> {
        let state = self.collective()?;
        // Bare addresses: the node's transport identity changes with every run and must not
        // be the member's key, so an invite names no peer id.
        let addresses = self
            .listen_addresses()
            .into_iter()
            .take(lookout_protocol::invite::MAX_INVITE_ADDRESSES)
            .collect();
        let secret = self.collective_secret.clone().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotInitialized,
                "this device does not hold its collective's secret, so it cannot invite",
            )
        })?;
        Ok(Invite {
            genesis: state.log().genesis().clone(),
            secret,
            addresses,
            inviter: Some(self.identity.member_id()),
        }
        .to_code())
    }

    /// Post an alert.
    pub fn post(&mut self, draft: PostDraft) -> Result<ContentId, ApiError> {
        // Membership first: a removed member hears that, not what is wrong with a field.
        self.require_member()?;
        let state = self.collective()?;
        let policy = state.log().roster().policy().clone();
        let days = draft.expires_in_days.unwrap_or(policy.default_alert_days);
        if days == 0 || days > policy.max_alert_days {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "alerts in this collective last 1 to {} days",
                    policy.max_alert_days
                ),
            ));
        }
        let mut identifiers = Identifiers {
            phones: draft.phones,
            plates: draft.plates,
            names: draft.names,
            handles: draft.handles,
            description: draft.physical.trim().to_owned(),
        };
        if draft.phones_as_typed {
            identifiers.normalise_keeping_phones_as_typed(&policy.country);
        } else {
            identifiers.normalise(&policy.country).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "{e}; to keep it exactly as typed, marked unverified, add --phone-as-typed"
                    ),
                )
            })?;
        }
        if let Some(time) = draft.incident_time {
            crate::when::check_written(time, now()).map_err(|refused| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("when it happened: {refused}"),
                )
            })?;
        }
        let alert = Alert {
            category: draft.category,
            severity: draft.severity,
            description: draft.description.trim().to_owned(),
            identifiers,
            area: draft.area.trim().to_owned(),
            incident_time: draft.incident_time,
            language: if draft.language.trim().is_empty() {
                "und".into()
            } else {
                draft.language.trim().to_owned()
            },
            on_behalf: draft.on_behalf,
        };
        alert.validate().map_err(|e| content_refused(&e, &alert))?;
        self.post_content(Content::Alert(alert), Some(u64::from(days) * 86_400))
    }

    /// Seal and accept a post of ours, then queue it for gossip.
    fn post_content(
        &mut self,
        content: Content,
        lifetime: Option<u64>,
    ) -> Result<ContentId, ApiError> {
        self.require_member()?;
        let epoch = match self.write_epoch() {
            Some(e) => e,
            None => self.rotate()?,
        };
        let now = now();
        let author = self.identity.member_id();
        let state = self.collective_mut()?;
        let policy = state.log().roster().policy().clone();
        let expires = match (&content, lifetime) {
            (_, Some(secs)) => now + secs,
            // Retractions and corroborations live as long as their target could.
            (_, None) => content
                .target()
                .and_then(|t| state.posts().get(&t))
                .map(|p| p.expires)
                .unwrap_or(now + policy.max_alert_secs())
                .max(now + 60),
        };
        let seq = state.next_seq();
        let key = state
            .book()
            .key(&epoch)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "write epoch key missing"))?;
        let body = InnerBody {
            collective: state.log().collective(),
            epoch,
            author,
            seq,
            heads: state.log().writer_heads(&author),
            timestamp: now,
            expires,
            content,
        };
        let sealed = envelope::seal(&self.identity, &key, body, &mut OsRng)
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
        self.put_with_post(Tree::Meta, KEY_SEQ, &seq.to_le_bytes(), None)?;
        self.accept_local(SetKind::Envelopes, sealed.bytes, Some(expires))?;
        Ok(sealed.id)
    }

    /// Ingest an item we made ourselves; it must be accepted, then it is queued for gossip.
    ///
    /// An item that expires (a post, corroboration, retraction: `expires` is its expiry) is
    /// noted in the outbox under the data key of its expiry hour, like the item itself: once
    /// that hour's key is destroyed, nothing on the device says this device wrote it.
    pub(super) fn accept_local(
        &mut self,
        kind: SetKind,
        bytes: Vec<u8>,
        expires: Option<u64>,
    ) -> Result<(), ApiError> {
        let item = WireItem {
            kind,
            bytes: bytes.clone(),
        };
        let outcome = if kind == SetKind::Envelopes {
            // A post: its writes may be held until the node has published it (`held.rs`).
            let (outcome, writes) = self.validate(&item);
            match outcome {
                Ingested::Accepted => self.accept_post(writes)?,
                _ => self.persist(writes)?,
            }
            outcome
        } else {
            self.ingest(&item)?
        };
        match outcome {
            Ingested::Accepted | Ingested::Duplicate => {
                let id = kind.id_of(&bytes);
                if kind == SetKind::Envelopes {
                    self.put_with_post(Tree::Outbox, &id, &[], expires)?;
                } else {
                    match expires {
                        Some(expires) => self.store.put_expiring(Tree::Outbox, &id, &[], expires),
                        None => self.store.put(Tree::Outbox, &id, &[]),
                    }
                    .map_err(store_error)?;
                }
                if kind == SetKind::Envelopes {
                    // Made durable by the caller: `execute` at once, the node's group commit
                    // after publishing it. A post lost to a crash before that fsync was never
                    // acknowledged, and `seq` is no identity (§6), so a post made after the
                    // restart with the same `seq` is simply another post.
                    self.unflushed_post = true;
                } else {
                    // Membership ops and key deliveries extend this member's own chain of
                    // heads: durable before anyone sees them.
                    self.flush()?;
                }
                self.outgoing.push(WireItem { kind, bytes });
                Ok(())
            }
            Ingested::Held => Err(ApiError::new(
                ErrorCode::Internal,
                "this device lacks state to make that; let it sync first",
            )),
            Ingested::Ignored(reason) | Ingested::Rejected(reason) => Err(reason.into()),
        }
    }

    /// Make a membership op with the current heads and accept it.
    pub(super) fn make_op(&mut self, action: Action) -> Result<OpId, ApiError> {
        let state = self.collective()?;
        let op = Op::create(
            &self.identity,
            state.log().collective(),
            state.log().writer_heads(&self.identity.member_id()),
            now(),
            action,
        )
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
        let id = op.id();
        self.accept_local(SetKind::Ops, op.encoded().to_vec(), None)?;
        if let Some(reason) = self.collective()?.log().roster().dropped().get(&id) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("that change has no effect: {reason}"),
            ));
        }
        Ok(id)
    }

    /// The epoch to write under now, if any.
    pub fn write_epoch(&self) -> Option<EpochId> {
        let state = self.collective.as_ref()?;
        state.book().write_epoch(state.log().roster(), now())
    }

    /// Create a fresh epoch for every current member and accept it.
    pub fn rotate(&mut self) -> Result<EpochId, ApiError> {
        self.require_member()?;
        let state = self.collective()?;
        let recipients: Vec<_> = state
            .log()
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect();
        let key = EpochKey::generate(&mut OsRng);
        let delivery = KeyDelivery::create(
            &self.identity,
            state.log().collective(),
            &key,
            DeliveryKind::Rotation,
            state.log().writer_heads(&self.identity.member_id()),
            now(),
            &recipients,
            &mut OsRng,
        )
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        self.accept_local(SetKind::Deliveries, delivery.encoded().to_vec(), None)?;
        info!(epoch = %key.id().short(), members = recipients.len(), "group key rotated");
        Ok(key.id())
    }

    /// Rotate if there is no epoch this device may write under (after a removal, or when the
    /// current one is older than the rotation period) and this device is a member.
    pub fn rotate_if_needed(&mut self) -> Result<Option<EpochId>, ApiError> {
        let Some(state) = self.collective.as_ref() else {
            return Ok(None);
        };
        if !state.log().roster().is_member(&self.identity.member_id()) {
            return Ok(None);
        }
        if self.write_epoch().is_some() {
            return Ok(None);
        }
        self.rotate().map(Some)
    }

    /// Give live epochs to members who lack them (new members). Done by moderators and by each
    /// epoch's creator, so a new member can read what was posted before they joined.
    pub fn share_missing(&mut self) -> Result<usize, ApiError> {
        let Some(state) = self.collective.as_ref() else {
            return Ok(0);
        };
        let me = self.identity.member_id();
        let roster = state.log().roster();
        if !roster.is_member(&me) {
            return Ok(0);
        }
        let moderator = roster.is_moderator(&me);
        let mut work = Vec::new();
        for info in state.book().epochs() {
            if !info.have_key || info.retired(roster) || !(moderator || info.creator == me) {
                continue;
            }
            let missing = state.book().missing_recipients(&info.id, roster);
            if let (false, Some(key)) = (missing.is_empty(), state.book().key(&info.id)) {
                work.push((key.clone(), missing));
            }
        }
        let mut shared = 0;
        for (key, missing) in work {
            let state = self.collective()?;
            let delivery = KeyDelivery::create(
                &self.identity,
                state.log().collective(),
                &key,
                DeliveryKind::Share,
                state.log().writer_heads(&self.identity.member_id()),
                now(),
                &missing,
                &mut OsRng,
            )
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            self.accept_local(SetKind::Deliveries, delivery.encoded().to_vec(), None)?;
            shared += missing.len();
        }
        Ok(shared)
    }

    /// Approve a join request code or a pending proposal.
    pub fn approve(&mut self, target: &str) -> Result<ProposalView, ApiError> {
        self.require_moderator()?;
        let target = target.trim();
        let upper = target.to_ascii_uppercase();
        if upper.starts_with("LK") && !upper.starts_with("LKJOIN1-") {
            return Err(ApiError::new(
                ErrorCode::BadCode,
                "this is not a join request code (those start with LKJOIN1-): ask the new member to run `lookout join-request`",
            )
            .with_detail(Detail::WrongCode {
                expected: CodeKind::JoinRequest,
                found: CodeKind::of(target),
            }));
        }
        let proposal = if upper.starts_with("LKJOIN1-") {
            let request = JoinRequest::from_code(target).map_err(|e| {
                ApiError::new(
                    ErrorCode::BadCode,
                    format!("this join request cannot be used: {e}"),
                )
                .with_detail(Detail::DamagedCode {
                    kind: CodeKind::JoinRequest,
                })
            })?;
            let member = request.identity.member;
            let roster = self.collective()?.log().roster();
            if roster.is_removed(&member) {
                return Err(ApiError::new(
                    ErrorCode::Revoked,
                    "this identity was removed from the collective; they must run `lookout init` on a fresh home to enrol again",
                ));
            }
            if roster.is_member(&member) {
                let mut view = self.proposal_view_for_member(&member);
                view.already = true;
                view.invite = Some(self.invite_code()?);
                return Ok(view);
            }
            let existing = roster.pending().iter().find_map(|p| match &p.kind {
                PendingKind::Add { identity, .. } if identity.member == member => Some(p.proposal),
                _ => None,
            });
            match existing {
                Some(proposal) => self.approve_existing(proposal)?,
                None => {
                    let action = Action::propose_add(
                        &self.require_text_key()?,
                        &self.identity.member_id(),
                        request.identity,
                        &request.name,
                        &mut OsRng,
                    )
                    .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
                    self.make_op(action)?
                }
            }
        } else {
            let proposal = self.find_proposal(target)?;
            self.approve_existing(proposal)?
        };
        self.after_membership_change()?;
        let mut view = self.proposal_view(proposal);
        if view.done && view.action == "add" {
            view.invite = Some(self.invite_code()?);
        }
        Ok(view)
    }

    /// The text key, or why this device cannot write names.
    fn require_text_key(&self) -> Result<lookout_protocol::text::TextKey, ApiError> {
        self.text_key().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotInitialized,
                "this device does not hold its collective's secret: join again with a new invite",
            )
        })
    }

    fn approve_existing(&mut self, proposal: OpId) -> Result<OpId, ApiError> {
        let roster = self.collective()?.log().roster();
        if let Some(p) = roster.pending().iter().find(|p| p.proposal == proposal) {
            if p.approvals.contains(&self.identity.member_id()) {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "you already approved this; it needs {} more moderator(s)",
                        usize::from(p.needed).saturating_sub(p.approvals.len())
                    ),
                ));
            }
        }
        self.make_op(Action::Approve { proposal })?;
        Ok(proposal)
    }

    /// Remove a member, then rotate so they cannot read anything posted afterwards.
    pub fn revoke(
        &mut self,
        member: MemberId,
        reason: String,
    ) -> Result<Option<EpochId>, ApiError> {
        self.require_moderator()?;
        let roster = self.collective()?.log().roster();
        if !roster.is_member(&member) {
            return Err(ApiError::new(
                ErrorCode::UnknownMember,
                "that person is not a current member",
            ));
        }
        let was_moderator = roster.is_moderator(&member);
        let mut reason: String = reason.trim().chars().take(200).collect();
        while reason.len() > lookout_protocol::membership::MAX_REASON_BYTES {
            reason.pop();
        }
        let action = Action::remove(
            &self.require_text_key()?,
            &self.identity.member_id(),
            member,
            &reason,
            &mut OsRng,
        )
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
        self.make_op(action)?;
        if was_moderator && self.collective()?.log().roster().is_member(&member) {
            return Err(ApiError::new(
                ErrorCode::NotModerator,
                "removing a moderator needs more moderators to approve: they can run `lookout pending` and `lookout approve`",
            ));
        }
        self.after_membership_change()
    }

    /// After a removal: rotate; after an admission: share live epochs.
    fn after_membership_change(&mut self) -> Result<Option<EpochId>, ApiError> {
        let epoch = self.rotate_if_needed()?;
        self.share_missing()?;
        Ok(epoch)
    }

    /// Periodic work: expire, rotate when needed, share keys with new members.
    pub fn maintain(&mut self) -> Result<(), ApiError> {
        self.expire(now())?;
        if self.collective.is_some() {
            let me = self.identity.member_id();
            let moderator = self
                .collective
                .as_ref()
                .is_some_and(|c| c.log().roster().is_moderator(&me));
            if moderator {
                self.rotate_if_needed()?;
            }
            self.share_missing()?;
            self.maintain_secrets(now())?;
        }
        Ok(())
    }

    pub(super) fn require_member(&self) -> Result<(), ApiError> {
        let roster = self.collective()?.log().roster();
        let me = self.identity.member_id();
        if roster.is_removed(&me) {
            return Err(ApiError::new(
                ErrorCode::Revoked,
                "this device's identity was removed from the collective",
            ));
        }
        if !roster.is_member(&me) {
            return Err(ApiError::new(
                ErrorCode::NotAMember,
                "this device has not yet learnt that it was admitted: start your node with `lookout run` so it syncs with the collective (if this stays, a moderator has not approved your join request yet)",
            ));
        }
        Ok(())
    }

    pub(super) fn require_moderator(&self) -> Result<(), ApiError> {
        self.require_member()?;
        if !self
            .collective()?
            .log()
            .roster()
            .is_moderator(&self.identity.member_id())
        {
            return Err(ApiError::new(
                ErrorCode::NotModerator,
                "only moderators can do that",
            ));
        }
        Ok(())
    }

    fn find_post(&self, prefix: &str) -> Result<ContentId, ApiError> {
        let state = self.collective()?;
        // Ids are shown as `[695ae73b]`: a pasted one may keep its brackets.
        let prefix = prefix
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim()
            .to_ascii_lowercase();
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "an alert id is hex, at least 4 characters (as shown by `lookout alerts`)",
            ));
        }
        let found: Vec<ContentId> = state
            .posts()
            .keys()
            .filter(|id| id.to_hex().starts_with(&prefix))
            .copied()
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(ApiError::new(
                ErrorCode::UnknownAlert,
                format!("no alert with id {prefix} (it may have expired)"),
            )),
            _ => Err(ApiError::new(
                ErrorCode::Ambiguous,
                format!("several alerts start with {prefix}: give more characters"),
            )),
        }
    }

    fn find_member(&self, who: &str) -> Result<MemberId, ApiError> {
        let state = self.collective()?;
        let roster = state.log().roster();
        let wanted = who.trim().to_lowercase();
        let by_id: Vec<MemberId> = roster
            .members()
            .map(|m| m.identity.member)
            .chain(roster.removed().keys().copied())
            .filter(|id| wanted.len() >= 4 && id.to_hex().starts_with(&wanted))
            .collect();
        let by_name: Vec<MemberId> = roster
            .display_names(self.text_key().as_ref())
            .into_iter()
            .filter(|(_, name)| name.to_lowercase() == wanted)
            .map(|(id, _)| id)
            .collect();
        let found = if by_id.is_empty() { by_name } else { by_id };
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(ApiError::new(
                ErrorCode::UnknownMember,
                format!("no member matches '{}': see `lookout members`", who.trim()),
            )),
            _ => Err(ApiError::new(
                ErrorCode::Ambiguous,
                format!("several members match '{}': use more of the id", who.trim()),
            )),
        }
    }

    fn find_proposal(&self, prefix: &str) -> Result<OpId, ApiError> {
        let roster = self.collective()?.log().roster();
        let prefix = prefix.to_ascii_lowercase();
        let found: Vec<OpId> = roster
            .pending()
            .iter()
            .map(|p| p.proposal)
            .filter(|id| prefix.len() >= 4 && id.to_hex().starts_with(&prefix))
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(ApiError::new(
                ErrorCode::UnknownMember,
                "no pending proposal with that id: see `lookout pending`, or paste the join request code",
            )),
            _ => Err(ApiError::new(ErrorCode::Ambiguous, "several proposals match: give more characters")),
        }
    }
}

/// How long a reachability announcement lives.
pub const REACHABILITY_SECS: u64 = 86_400;
const KEY_ANNOUNCED: &[u8] = b"announced";

impl Replica {
    /// Tell the other members where this node can be reached (an encrypted post only members
    /// read). Skipped when the same addresses were announced less than half a lifetime ago.
    pub fn announce_reachability(
        &mut self,
        addresses: &[String],
    ) -> Result<Option<ContentId>, ApiError> {
        let addresses: Vec<String> = addresses
            .iter()
            .filter(|a| a.len() <= lookout_protocol::content::MAX_FIELD_BYTES)
            .take(lookout_protocol::content::MAX_ADDRESSES)
            .cloned()
            .collect();
        if addresses.is_empty() || self.require_member().is_err() {
            return Ok(None);
        }
        let now = now();
        let previous: Option<(u64, Vec<String>)> = self
            .store
            .get(Tree::Meta, KEY_ANNOUNCED)
            .map_err(store_error)?
            .and_then(|v| postcard::from_bytes(&v).ok());
        if let Some((at, before)) = previous {
            if before == addresses && now < at + REACHABILITY_SECS / 2 {
                return Ok(None);
            }
        }
        let id = self.post_content(
            Content::Reachability {
                addresses: addresses.clone(),
            },
            Some(REACHABILITY_SECS),
        )?;
        self.store
            .put(
                Tree::Meta,
                KEY_ANNOUNCED,
                &postcard::to_allocvec(&(now, addresses)).unwrap_or_default(),
            )
            .map_err(store_error)?;
        Ok(Some(id))
    }

    /// Addresses other current members announced: newest announcement per member, with its
    /// (author-chosen) timestamp.
    pub fn member_addresses(&self) -> Vec<(MemberId, u64, Vec<String>)> {
        let Some(state) = self.collective.as_ref() else {
            return Vec::new();
        };
        let me = self.identity.member_id();
        let roster = state.log().roster();
        let now = now();
        let mut newest: std::collections::BTreeMap<MemberId, (u64, Vec<String>)> =
            std::collections::BTreeMap::new();
        for (id, meta) in state.posts() {
            if meta.kind != lookout_protocol::envelope::PostKind::Reachability
                || meta.author == me
                || !roster.is_member(&meta.author)
                || meta.expires <= now
            {
                continue;
            }
            let Some(stored) = self.stored_post(&id) else {
                continue;
            };
            let body = &stored;
            let Content::Reachability { addresses } = &body.content else {
                continue;
            };
            let entry = newest.entry(body.author).or_insert((0, Vec::new()));
            if body.timestamp >= entry.0 {
                *entry = (body.timestamp, addresses.clone());
            }
        }
        newest.into_iter().map(|(m, (t, a))| (m, t, a)).collect()
    }

    /// Forget which of our items still had to reach a peer (after a full sync with one).
    pub fn clear_outbox(&mut self) -> Result<(), ApiError> {
        let keys: Vec<Vec<u8>> = self
            .store
            .iter(Tree::Outbox)
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = crate::store::Batch::new();
        for key in &keys {
            batch.remove(Tree::Outbox, key);
        }
        self.store.apply_batch(batch).map_err(store_error)
    }

    /// Whether some of our items are not yet known to have reached a member.
    pub fn has_unconfirmed_posts(&self) -> bool {
        // Asked every tick: `len` would walk every outbox entry each time (and fill the page
        // cache with them).
        !self.store.is_empty(Tree::Outbox)
    }

    /// Our items not yet known to have reached a peer, for publishing at start.
    pub fn outbox(&self) -> Vec<WireItem> {
        let mut items = Vec::new();
        for (key, _) in self.store.iter(Tree::Outbox).filter_map(Result::ok) {
            let Ok(id) = <[u8; 32]>::try_from(key.as_slice()) else {
                continue;
            };
            for kind in SetKind::ORDER {
                if let Ok(mut found) = self.fetch(kind, &[id]) {
                    if let Some(bytes) = found.pop() {
                        items.push(WireItem { kind, bytes });
                        break;
                    }
                }
            }
        }
        items
    }
}

/// A page's size as asked, within 1..=[`crate::api::MAX_PAGE`].
fn page_limit(limit: u32) -> usize {
    usize::try_from(limit.clamp(1, crate::api::MAX_PAGE)).unwrap_or(1)
}

/// A code pasted as an invite that is of another kind (`found`): what it is, and where it goes.
fn not_an_invite(found: CodeKind) -> ApiError {
    let message = match found {
        CodeKind::JoinRequest => {
            "this is a join request code (LKJOIN1-...): it goes to a moderator, who approves it; paste here the invite (LKINVITE2-...) they give you"
        }
        _ => "this is not an invite code: it should start with LKINVITE2- (copy all of it)",
    };
    ApiError::new(ErrorCode::BadCode, message).with_detail(Detail::WrongCode {
        expected: CodeKind::Invite,
        found,
    })
}

/// An alert the protocol refuses: its English message, and for a text over its limit the field
/// and both lengths (a page in another language says it in its own words).
fn content_refused(error: &ContentError, alert: &Alert) -> ApiError {
    let refused = ApiError::new(ErrorCode::InvalidInput, error.to_string());
    let ContentError::TooLong { field, max } = error else {
        return refused;
    };
    let ids = &alert.identifiers;
    let longest = |list: &[String]| list.iter().map(String::len).max().unwrap_or(0);
    let given = match *field {
        "description" => alert.description.len(),
        "area" => alert.area.len(),
        "physical description" => ids.description.len(),
        "phone numbers" => longest(&ids.phones),
        "plates" => longest(&ids.plates),
        "names" => longest(&ids.names),
        "handles" => longest(&ids.handles),
        // Not a field a person types (the language tag).
        _ => return refused,
    };
    refused.with_detail(Detail::TooLong {
        field: (*field).to_owned(),
        max: *max,
        given,
    })
}

/// Whether a name is one the protocol takes: not blank, at most [`MAX_NAME_BYTES`] bytes, no
/// control or text-direction characters.
pub(super) fn name_fits(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name
            .chars()
            .any(|c| lookout_protocol::content::is_unprintable(c, false))
}
