//! What moderators do with mailboxes: add one from its pairing code (propose, or approve the
//! pending proposal), list them, remove one.

use lookout_protocol::mailbox::MailboxPairing;
use lookout_protocol::membership::{Action, PendingKind, MAX_MAILBOXES};
use lookout_protocol::{MailboxId, MemberId};

use zeroize::Zeroizing;

use super::{store_error, Replica};
use crate::api::{ApiError, ErrorCode, MailboxView, MailboxesView, ProposalView};
use crate::store::Tree;

/// Meta key prefix of a mailbox's bind secret (from its pairing code), per mailbox id.
const KEY_BIND_SECRET: &[u8] = b"mailbox-bind/";

/// Meta key of the networks the device was on when it first saw each roster mailbox address.
const KEY_MAILBOX_NETWORKS: &[u8] = b"mailbox-networks";

fn bind_secret_key(mailbox: &MailboxId) -> Vec<u8> {
    [KEY_BIND_SECRET, &mailbox.0[..]].concat()
}

/// Whether two address lists name the same addresses (in any order).
fn same_addresses(a: &[String], b: &[String]) -> bool {
    fn set(x: &[String]) -> std::collections::BTreeSet<&str> {
        x.iter().map(|s| s.trim()).collect()
    }
    set(a) == set(b)
}

impl Replica {
    /// Propose the mailbox of a pairing code, or approve the pending proposal for it. Keeps the
    /// code's bind secret in the sealed store, so that this node can bind the fresh mailbox
    /// ([`Self::mailbox_bind_secret`]).
    pub fn mailbox_add(&mut self, code: &str) -> Result<ProposalView, ApiError> {
        self.require_moderator()?;
        let pairing = MailboxPairing::from_code(code.trim()).map_err(|e| {
            ApiError::new(
                ErrorCode::BadCode,
                format!("this mailbox pairing code cannot be used: {e}"),
            )
        })?;
        pairing.check_age(super::now()).map_err(|e| {
            ApiError::new(
                ErrorCode::BadCode,
                format!("this mailbox pairing code cannot be used: {e}"),
            )
        })?;
        for address in &pairing.addresses {
            crate::mailbox::check_member_dialable(address).map_err(|e| {
                ApiError::new(
                    ErrorCode::BadCode,
                    format!("this mailbox pairing code cannot be used: {e}"),
                )
            })?;
        }
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
            if !same_addresses(&current.addresses, &pairing.addresses) {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "this mailbox is already in the collective, but at {} while this code says {}: addresses cannot be changed yet; to move the mailbox, remove it (`lookout mailbox remove ID`) and have its operator run `lookout mailbox init` on a fresh home and give you its code",
                        current.addresses.join(" "),
                        pairing.addresses.join(" ")
                    ),
                ));
            }
            self.store
                .put(Tree::Meta, &bind_secret_key(&mailbox), &pairing.bind_secret)
                .map_err(store_error)?;
            let mut view = self.proposal_view(current.admitted_by);
            view.already = true;
            return Ok(view);
        }
        // Approve only a proposal naming exactly the code's addresses: the op carries no
        // signature of the mailbox over its addresses, so another moderator may have proposed
        // this key at an address of her own (which every member would then dial).
        let mut other_addresses = None;
        let existing = roster.pending().iter().find_map(|p| match &p.kind {
            PendingKind::AddMailbox {
                mailbox: m,
                addresses,
            } if *m == mailbox => {
                if same_addresses(addresses, &pairing.addresses) {
                    Some(p.proposal)
                } else {
                    other_addresses = Some((p.proposal, addresses.clone()));
                    None
                }
            }
            _ => None,
        });
        if let (None, Some((proposal, addresses))) = (existing, other_addresses) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "refused: the pending proposal {} for this mailbox names the addresses {}, but this pairing code says {}. Approving it would make every member dial {}, which this mailbox never signed. Ask the moderator who proposed it; if she did not mean it, her key may be in someone else's hands. Removing the proposal (`lookout mailbox remove ID`) bars this mailbox key for good: its operator must then run `lookout mailbox init` on a fresh home",
                    &proposal.to_hex()[..16],
                    addresses.join(" "),
                    pairing.addresses.join(" "),
                    addresses.join(" ")
                ),
            ));
        }
        if existing.is_none() && roster.mailboxes().count() >= MAX_MAILBOXES {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "the collective already has {MAX_MAILBOXES} mailboxes, the most it can have: remove one first (`lookout mailbox remove ID`)"
                ),
            ));
        }
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
                self.store
                    .put(Tree::Meta, &bind_secret_key(&mailbox), &pairing.bind_secret)
                    .map_err(store_error)?;
                self.make_op(Action::Approve { proposal })?;
                proposal
            }
            None => {
                self.store
                    .put(Tree::Meta, &bind_secret_key(&mailbox), &pairing.bind_secret)
                    .map_err(store_error)?;
                self.make_op(Action::ProposeMailbox {
                    mailbox: pairing.mailbox,
                    addresses: pairing.addresses,
                })?
            }
        };
        Ok(self.proposal_view(proposal))
    }

    /// Current, pending and removed mailboxes.
    pub fn mailboxes(&self) -> Result<MailboxesView, ApiError> {
        self.require_member()?;
        let roster = self.collective()?.log().roster();
        let key = self.text_key();
        let names = |ids: &[MemberId]| {
            ids.iter()
                .map(|id| super::views::name_of(roster, key.as_ref(), id))
                .collect()
        };
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
        self.store
            .remove(Tree::Meta, &bind_secret_key(&mailbox))
            .map_err(store_error)?;
        Ok(mailbox)
    }

    /// The networks this device was on when it first saw each roster mailbox address, as stored
    /// by [`Self::set_mailbox_networks`]: `(address, networks)` text pairs (see
    /// [`crate::dial::Networks::to_text`]). Unreadable lines are skipped.
    pub fn mailbox_networks(&self) -> Vec<(String, String)> {
        let Some(bytes) = self
            .store
            .get(Tree::Meta, KEY_MAILBOX_NETWORKS)
            .ok()
            .flatten()
        else {
            return Vec::new();
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, n)| (a.to_owned(), n.to_owned()))
            .collect()
    }

    /// Store the networks of the roster's mailbox addresses (at most 8 mailboxes of 4
    /// addresses: a short value, rewritten whole). Sealed like every meta value.
    pub fn set_mailbox_networks(&self, entries: &[(String, String)]) -> Result<(), ApiError> {
        let text: String = entries.iter().map(|(a, n)| format!("{a} {n}\n")).collect();
        self.store
            .put(Tree::Meta, KEY_MAILBOX_NETWORKS, text.as_bytes())
            .map_err(store_error)
    }

    /// The bind secret of `mailbox`, if this node's moderator added it from its pairing code:
    /// sent (as a tag) with the genesis record when that mailbox is still unbound
    /// ([`crate::net::mailbox_admission::MailboxDialer::on_accept`]).
    pub fn mailbox_bind_secret(&self, mailbox: &MailboxId) -> Option<Zeroizing<[u8; 32]>> {
        let bytes = self
            .store
            .get(Tree::Meta, &bind_secret_key(mailbox))
            .ok()
            .flatten()?;
        let secret: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Zeroizing::new(secret))
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
