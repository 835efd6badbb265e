//! What moderators do with mailboxes: add one from its pairing code (propose, or approve the
//! pending proposal), list them, remove one.

use lookout_protocol::mailbox::MailboxPairing;
use lookout_protocol::membership::{Action, PendingKind, Roster};
use lookout_protocol::{MailboxId, MemberId};

use super::Replica;
use crate::api::{ApiError, ErrorCode, MailboxView, MailboxesView, ProposalView};

impl Replica {
    /// Propose the mailbox of a pairing code, or approve the pending proposal for it.
    pub fn mailbox_add(&mut self, code: &str) -> Result<ProposalView, ApiError> {
        self.require_moderator()?;
        let pairing = MailboxPairing::from_code(code.trim()).map_err(|e| {
            ApiError::new(
                ErrorCode::BadCode,
                format!("this mailbox pairing code cannot be used: {e}"),
            )
        })?;
        let mailbox = pairing.id();
        let roster = self.collective()?.log().roster();
        if roster.is_removed_mailbox(&mailbox) {
            return Err(ApiError::new(
                ErrorCode::Revoked,
                "this mailbox was removed from the collective and can never be added again: its operator must run `lookout mailbox init` on a fresh home",
            ));
        }
        if roster.knows(&MemberId(mailbox.0)) {
            return Err(ApiError::new(
                ErrorCode::BadCode,
                "this key is a member's key, which can never be a mailbox",
            ));
        }
        if let Some(current) = roster.mailbox(&mailbox) {
            let mut view = self.proposal_view(current.admitted_by);
            view.already = true;
            return Ok(view);
        }
        let existing = roster.pending().iter().find_map(|p| match &p.kind {
            PendingKind::AddMailbox { mailbox: m, .. } if *m == mailbox => Some(p.proposal),
            _ => None,
        });
        let proposal = match existing {
            Some(proposal) => {
                let me = self.identity.member_id();
                let mine = roster
                    .pending()
                    .iter()
                    .find(|p| p.proposal == proposal)
                    .filter(|p| p.approvals.contains(&me));
                if let Some(p) = mine {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        format!(
                            "you already approved this mailbox; it needs {} more moderator(s)",
                            usize::from(p.needed).saturating_sub(p.approvals.len())
                        ),
                    ));
                }
                self.make_op(Action::Approve { proposal })?;
                proposal
            }
            None => self.make_op(Action::ProposeMailbox {
                mailbox: pairing.mailbox,
                addresses: pairing.addresses,
            })?,
        };
        Ok(self.proposal_view(proposal))
    }

    /// Current, pending and removed mailboxes.
    pub fn mailboxes(&self) -> Result<MailboxesView, ApiError> {
        self.require_member()?;
        let roster = self.collective()?.log().roster();
        let names = |ids: &[MemberId]| ids.iter().map(|id| member_name(roster, id)).collect();
        let current = roster
            .mailboxes()
            .map(|m| MailboxView {
                id: m.id.to_hex(),
                addresses: m.addresses.clone(),
                proposal: m.admitted_by.to_hex(),
                approvals: 0,
                needed: 0,
                approved_by: Vec::new(),
                removed_by: Vec::new(),
            })
            .collect();
        let pending = roster
            .pending()
            .iter()
            .filter_map(|p| match &p.kind {
                PendingKind::AddMailbox { mailbox, addresses } => Some(MailboxView {
                    id: mailbox.to_hex(),
                    addresses: addresses.clone(),
                    proposal: p.proposal.to_hex(),
                    approvals: p.approvals.len(),
                    needed: usize::from(p.needed),
                    approved_by: names(&p.approvals),
                    removed_by: Vec::new(),
                }),
                _ => None,
            })
            .collect();
        let removed = roster
            .removed_mailboxes()
            .values()
            .map(|r| MailboxView {
                id: r.id.to_hex(),
                addresses: Vec::new(),
                proposal: String::new(),
                approvals: 0,
                needed: 0,
                approved_by: Vec::new(),
                removed_by: names(&r.by),
            })
            .collect();
        Ok(MailboxesView {
            current,
            pending,
            removed,
        })
    }

    /// Remove a mailbox (or withdraw its pending proposal) by id or unique id prefix.
    pub fn mailbox_remove(&mut self, prefix: &str) -> Result<MailboxId, ApiError> {
        self.require_moderator()?;
        let mailbox = self.find_mailbox(prefix)?;
        self.make_op(Action::RemoveMailbox { mailbox: mailbox.0 })?;
        Ok(mailbox)
    }

    /// A current or pending mailbox whose hex id starts with `prefix` (at least 4 digits).
    fn find_mailbox(&self, prefix: &str) -> Result<MailboxId, ApiError> {
        let roster = self.collective()?.log().roster();
        let wanted = prefix
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if wanted.len() < 4 || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a mailbox id is hex, at least 4 characters (as shown by `lookout mailbox list`)",
            ));
        }
        let mut found: Vec<MailboxId> = roster
            .mailboxes()
            .map(|m| m.id)
            .chain(roster.pending().iter().filter_map(|p| match &p.kind {
                PendingKind::AddMailbox { mailbox, .. } => Some(*mailbox),
                _ => None,
            }))
            .filter(|id| id.to_hex().starts_with(&wanted))
            .collect();
        found.sort();
        found.dedup();
        match found.as_slice() {
            [one] => Ok(*one),
            [] if roster
                .removed_mailboxes()
                .keys()
                .any(|id| id.to_hex().starts_with(&wanted)) =>
            {
                Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "that mailbox was already removed: nothing was changed",
                ))
            }
            [] => Err(ApiError::new(
                ErrorCode::UnknownMember,
                format!(
                    "no mailbox matches '{}': see `lookout mailbox list`",
                    prefix.trim()
                ),
            )),
            _ => Err(ApiError::new(
                ErrorCode::Ambiguous,
                format!(
                    "several mailboxes match '{}': use more of the id",
                    prefix.trim()
                ),
            )),
        }
    }
}

fn member_name(roster: &Roster, id: &MemberId) -> String {
    roster
        .member(id)
        .map(|m| m.name.clone())
        .or_else(|| roster.removed().get(id).map(|r| r.name.clone()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("former member {}", id.short()))
}
