//! What a member sees: status, members, proposals, alerts.

use std::collections::BTreeMap;

use lookout_protocol::content::{Alert, Content};
use lookout_protocol::identity::fingerprint;
use lookout_protocol::membership::{PendingKind, Roster};
use lookout_protocol::{ContentId, MemberId, OpId};

use super::{now, Replica};

use crate::api::{
    AlertFilter, AlertView, ApiError, CorroborationView, MemberView, MembersView, ProposalView,
    StatusView, UnreadableShareView,
};

impl Replica {
    /// Status as known to the store (the node adds network figures).
    pub fn status(&self) -> StatusView {
        let me = self.identity.member_id();
        let public = self.identity.public();
        let mut view = StatusView {
            member: me.to_hex(),
            name: self.name.clone(),
            fingerprint: public.fingerprint(),
            listening: self.listen_addresses(),
            ..StatusView::default()
        };
        if let Some(state) = &self.collective {
            let roster = state.log().roster();
            let now = now();
            view.collective = Some(state.log().genesis().genesis().name.clone());
            view.collective_id = Some(state.log().collective().to_hex());
            view.country = Some(roster.policy().country.clone());
            view.is_member = roster.is_member(&me);
            view.is_moderator = roster.is_moderator(&me);
            view.is_removed = roster.is_removed(&me);
            view.members = roster.len();
            view.ops = state.log().len();
            view.alerts = state
                .posts()
                .values()
                .filter(|p| matches!(p.body().content, Content::Alert(_)) && p.body().expires > now)
                .count();
            view.epoch = state.book().write_epoch(roster, now).map(|e| e.short());
            view.held = state.held_count();
            view.unreadable_key_shares = state
                .book()
                .epochs()
                .flat_map(|e| e.unreadable_from.iter().map(move |signer| (e, signer)))
                .map(|(e, signer)| UnreadableShareView {
                    signer: signer.to_hex(),
                    signer_name: super::ingest::member_name(roster, signer).unwrap_or_default(),
                    epoch: e.id.short(),
                    recovered: e.have_key,
                })
                .collect();
            view.outbox = self.store.len(crate::store::Tree::Outbox);
        }
        view
    }

    /// Current and removed members.
    pub fn members(&self) -> Result<MembersView, ApiError> {
        let roster = self.collective()?.log().roster();
        let me = self.identity.member_id();
        let members = roster
            .members()
            .map(|m| MemberView {
                id: m.identity.member.to_hex(),
                name: m.name.clone(),
                moderator: m.moderator,
                fingerprint: m.identity.fingerprint(),
                you: m.identity.member == me,
                self_revoked: false,
            })
            .collect();
        let removed = roster
            .removed()
            .iter()
            .map(|(id, r)| MemberView {
                id: id.to_hex(),
                name: r.name.clone(),
                moderator: false,
                fingerprint: String::new(),
                you: *id == me,
                self_revoked: r.self_revoked,
            })
            .collect();
        Ok(MembersView { members, removed })
    }

    /// Pending proposals.
    pub fn pending(&self) -> Result<Vec<ProposalView>, ApiError> {
        let roster = self.collective()?.log().roster();
        Ok(roster
            .pending()
            .iter()
            .map(|p| self.proposal_view(p.proposal))
            .collect())
    }

    /// A proposal and how far it got.
    pub(super) fn proposal_view(&self, proposal: OpId) -> ProposalView {
        let mut view = ProposalView {
            id: proposal.to_hex(),
            action: String::new(),
            subject: String::new(),
            approvals: 0,
            needed: 0,
            done: true,
            invite: None,
            already: false,
        };
        let Some(state) = &self.collective else {
            return view;
        };
        let roster = state.log().roster();
        if let Some(p) = roster.pending().iter().find(|p| p.proposal == proposal) {
            let (action, subject) = describe(&p.kind, roster);
            view.action = action.into();
            view.subject = subject;
            view.approvals = p.approvals.len();
            view.needed = usize::from(p.needed);
            view.done = false;
            return view;
        }
        if let Some(op) = state.log().get(&proposal) {
            use lookout_protocol::membership::Action;
            let (action, subject) = match &op.body().action {
                Action::ProposeAdd { identity, name } => {
                    ("add", format!("{name} ({})", identity.member.short()))
                }
                Action::ProposePromote { member } => ("promote", name_of(roster, member)),
                Action::ProposeDemote { member } => ("demote", name_of(roster, member)),
                Action::Remove { member, .. } => ("remove", member.short()),
                Action::ProposeMailbox { mailbox, addresses } => (
                    "add mailbox",
                    format!(
                        "mailbox {} at {}",
                        lookout_protocol::MailboxId(*mailbox).short(),
                        addresses.join(" ")
                    ),
                ),
                _ => ("other", String::new()),
            };
            view.action = action.into();
            view.subject = subject;
            view.done = !roster.dropped().contains_key(&proposal);
            view.needed = usize::from(roster.policy().approvals_required);
            view.approvals = view.needed;
        }
        view
    }

    pub(super) fn proposal_view_for_member(&self, member: &MemberId) -> ProposalView {
        let admitted = self
            .collective
            .as_ref()
            .and_then(|c| c.log().roster().member(member))
            .and_then(|m| m.admitted_by);
        match admitted {
            Some(op) => self.proposal_view(op),
            None => ProposalView {
                id: String::new(),
                action: "add".into(),
                subject: member.short(),
                approvals: 0,
                needed: 0,
                done: true,
                invite: None,
                already: true,
            },
        }
    }

    /// Live alerts matching `filter`, newest first.
    pub fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertView>, ApiError> {
        let state = self.collective()?;
        let now = now();
        let area = filter.area.as_ref().map(|a| a.to_lowercase());
        let mut views: Vec<AlertView> = state
            .posts()
            .iter()
            .filter(|(_, p)| matches!(p.body().content, Content::Alert(_)))
            .filter(|(_, p)| p.body().expires > now)
            .filter_map(|(id, _)| self.alert_view(id))
            .filter(|v| filter.include_retracted || v.retracted.is_none())
            .filter(|v| filter.category.is_none_or(|c| v.category == c))
            .filter(|v| filter.since.is_none_or(|s| v.posted >= s))
            .filter(|v| {
                area.as_ref()
                    .is_none_or(|a| v.area.to_lowercase().contains(a.as_str()))
            })
            .collect();
        views.sort_by(|a, b| b.posted.cmp(&a.posted).then(a.id.cmp(&b.id)));
        Ok(views)
    }

    /// Live, unretracted alerts naming `term` (phone, plate, handle or name).
    pub fn check(&self, term: &str) -> Result<Vec<AlertView>, ApiError> {
        let term = term.trim();
        if term.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "give a phone number, plate, handle or name to check",
            ));
        }
        let country = self.collective()?.log().roster().policy().country.clone();
        let mut out = Vec::new();
        for mut view in self.alerts(&AlertFilter::default())? {
            let alert = alert_from_view(&view);
            if let Some(kind) = alert.matches(term, &country) {
                view.matched = Some(format!("{kind:?}").to_lowercase());
                out.push(view);
            }
        }
        Ok(out)
    }

    /// An alert with its latest edit, retraction and corroborations applied.
    pub(super) fn alert_view(&self, id: &ContentId) -> Option<AlertView> {
        let state = self.collective.as_ref()?;
        let stored = state.posts().get(id)?;
        let body = stored.body();
        let Content::Alert(original) = &body.content else {
            return None;
        };
        let mut alert = original;
        let mut edited = false;
        let mut edit_time = 0;
        let mut retracted = None;
        // Each member other than the author counts once, with their latest note.
        let mut corroborations: BTreeMap<MemberId, (u64, &str)> = BTreeMap::new();
        let mut retracted_at = u64::MAX;
        let referring = state.referring(id);
        for other in referring.iter().filter_map(|r| state.posts().get(r)) {
            let b = other.body();
            match &b.content {
                Content::Edit { target, alert: new }
                    if target == id && b.timestamp >= edit_time =>
                {
                    alert = new;
                    edited = true;
                    edit_time = b.timestamp;
                }
                // Only a retraction by the author or a current moderator withdraws the alert; the
                // first such retraction stands (a later one does not replace its reason).
                Content::Retraction { reason, .. }
                    if b.timestamp < retracted_at
                        && other.retracts(stored, state.log().roster()) =>
                {
                    retracted_at = b.timestamp;
                    retracted = Some(if reason.is_empty() {
                        "retracted".to_owned()
                    } else {
                        reason.clone()
                    });
                }
                Content::Corroboration { target, note }
                    if target == id && b.author != body.author =>
                {
                    let latest = corroborations
                        .get(&b.author)
                        .is_none_or(|(at, _)| b.timestamp >= *at);
                    if latest {
                        corroborations.insert(b.author, (b.timestamp, note.as_str()));
                    }
                }
                _ => {}
            }
        }
        let roster = state.log().roster();
        let ids = &alert.identifiers;
        Some(AlertView {
            id: id.to_hex(),
            category: alert.category,
            severity: alert.severity,
            description: alert.description.clone(),
            phones: ids.phones.clone(),
            plates: ids.plates.clone(),
            names: ids.names.clone(),
            handles: ids.handles.clone(),
            physical: ids.description.clone(),
            area: alert.area.clone(),
            incident_time: alert.incident_time,
            posted: body.timestamp,
            expires: body.expires,
            language: alert.language.clone(),
            on_behalf: alert.on_behalf,
            author: name_of(roster, &body.author),
            retracted,
            corroborations: corroborations.len(),
            corroborated_by: {
                let mut by: Vec<CorroborationView> = corroborations
                    .iter()
                    .map(|(member, (posted, note))| CorroborationView {
                        member: name_of(roster, member),
                        note: (*note).to_owned(),
                        posted: *posted,
                    })
                    .collect();
                by.sort_by_key(|c| c.posted);
                by
            },
            edited,
            matched: None,
        })
    }
}

use crate::api::ErrorCode;

fn alert_from_view(view: &AlertView) -> Alert {
    Alert {
        category: view.category,
        severity: view.severity,
        description: String::new(),
        identifiers: lookout_protocol::content::Identifiers {
            phones: view.phones.clone(),
            plates: view.plates.clone(),
            names: view.names.clone(),
            handles: view.handles.clone(),
            description: String::new(),
        },
        area: String::new(),
        incident_time: None,
        language: String::new(),
        on_behalf: false,
    }
}

fn name_of(roster: &Roster, member: &MemberId) -> String {
    roster
        .member(member)
        .map(|m| m.name.clone())
        .or_else(|| roster.removed().get(member).map(|r| r.name.clone()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("former member {}", member.short()))
}

fn describe(kind: &PendingKind, roster: &Roster) -> (&'static str, String) {
    match kind {
        PendingKind::Add { identity, name } => (
            "add",
            format!(
                "{name} ({}, fingerprint {})",
                identity.member.short(),
                fingerprint(&identity.member, &identity.agreement)
            ),
        ),
        PendingKind::Promote(m) => ("promote", name_of(roster, m)),
        PendingKind::Demote(m) => ("demote", name_of(roster, m)),
        PendingKind::RemoveModerator(m) => ("remove moderator", name_of(roster, m)),
        PendingKind::AddMailbox { mailbox, addresses } => (
            "add mailbox",
            format!("mailbox {} at {}", mailbox.short(), addresses.join(" ")),
        ),
    }
}
