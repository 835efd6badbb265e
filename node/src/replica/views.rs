//! What a member sees: status, members, proposals, alerts.

use std::collections::{BTreeMap, HashMap};

use lookout_protocol::content::{Alert, Content};
use lookout_protocol::envelope::{InnerBody, PostKind, PostMeta};
use lookout_protocol::identity::fingerprint;
use lookout_protocol::membership::{PendingKind, Roster};
use lookout_protocol::replica::{PostRecord, State};
use lookout_protocol::text::TextKey;
use lookout_protocol::{ContentId, MemberId, OpId};

use super::{now, Replica};

use crate::api::{
    AlertFilter, AlertView, ApiError, CorroborationView, MemberView, MembersView, ProposalView,
    StatusView, Subject, UnreadableShareView,
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
            view.collective = Some(
                state
                    .log()
                    .genesis()
                    .genesis()
                    .sealed_name()
                    .display(self.text_key().as_ref()),
            );
            view.collective_id = Some(state.log().collective().to_hex());
            view.country = Some(roster.policy().country.clone());
            view.is_member = roster.is_member(&me);
            view.is_moderator = roster.is_moderator(&me);
            view.is_removed = roster.is_removed(&me);
            view.members = roster.len();
            view.ops = state.log().len();
            // Live and not withdrawn, as `alerts` lists them (Trial 12's T12-18: retracted ones
            // were counted), decided from the posts' metadata alone.
            view.alerts = live_alerts(state, now)
                .filter(|(id, meta)| !withdrawn(state, id, meta))
                .count();
            view.epoch = state.book().write_epoch(roster, now).map(|e| e.short());
            view.held = state.held_count();
            view.damaged_posts = self.post_index.damage.lost_posts;
            view.damaged_index_chunks = self.post_index.damage.unreadable_chunks;
            view.unreadable_key_shares = state
                .book()
                .epochs()
                .flat_map(|e| e.unreadable_from.iter().map(move |signer| (e, signer)))
                .map(|(e, signer)| UnreadableShareView {
                    signer: signer.to_hex(),
                    signer_name: name_of(roster, self.text_key().as_ref(), signer),
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
        let key = self.text_key();
        let mut names = roster.display_names(key.as_ref());
        let members = roster
            .members()
            .map(|m| MemberView {
                id: m.identity.member.to_hex(),
                name: names.remove(&m.identity.member).unwrap_or_default(),
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
                name: r
                    .name
                    .as_ref()
                    .map(|n| n.display(key.as_ref()))
                    .unwrap_or_else(|| format!("former member {}", id.short())),
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
            about: Subject::default(),
        };
        let Some(state) = &self.collective else {
            return view;
        };
        let roster = state.log().roster();
        let key = self.text_key();
        if let Some(p) = roster.pending().iter().find(|p| p.proposal == proposal) {
            let (action, subject, about) = describe(&p.kind, roster, key.as_ref());
            view.action = action.into();
            view.subject = subject;
            view.about = about;
            view.approvals = p.approvals.len();
            view.needed = usize::from(p.needed);
            view.done = false;
            return view;
        }
        if let Some(op) = state.log().get(&proposal) {
            use lookout_protocol::membership::Action;
            let (action, subject, about) = match &op.body().action {
                Action::ProposeAdd { identity, .. } => {
                    let member = identity.member;
                    let shown = if roster.is_member(&member) {
                        name_of(roster, key.as_ref(), &member)
                    } else {
                        op.body()
                            .action
                            .sealed_text(op.author())
                            .map(|n| n.display(key.as_ref()))
                            .unwrap_or_default()
                    };
                    let subject = format!("{shown} ({})", member.short());
                    let about = Subject {
                        name: Some(shown),
                        id: member.short(),
                        ..Subject::default()
                    };
                    ("add", subject, about)
                }
                Action::ProposePromote { member } => (
                    "promote",
                    name_of(roster, key.as_ref(), member),
                    about_member(roster, key.as_ref(), member),
                ),
                Action::ProposeDemote { member } => (
                    "demote",
                    name_of(roster, key.as_ref(), member),
                    about_member(roster, key.as_ref(), member),
                ),
                Action::Remove { member, .. } => (
                    "remove",
                    member.short(),
                    about_member(roster, key.as_ref(), member),
                ),
                Action::ProposeMailbox { mailbox, addresses } => {
                    let (subject, about) = about_mailbox(*mailbox, addresses);
                    ("add mailbox", subject, about)
                }
                _ => ("other", String::new(), Subject::default()),
            };
            view.action = action.into();
            view.subject = subject;
            view.about = about;
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
                about: Subject {
                    id: member.short(),
                    ..Subject::default()
                },
            },
        }
    }

    /// Live alerts matching `filter`, newest first (every page of [`Replica::alerts_page`]).
    pub fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertView>, ApiError> {
        Ok(self.alerts_page(filter, None, usize::MAX)?.0)
    }

    /// Up to `limit` live alerts matching `filter`, newest first, after the cursor `after` (from
    /// an earlier page); and the cursor of the next page, if there is more. Only the compact
    /// index is in memory: the alerts examined for this page are read from the store, no others.
    pub fn alerts_page(
        &self,
        filter: &AlertFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AlertView>, Option<String>), ApiError> {
        let state = self.collective()?;
        let area = filter.area.as_ref().map(|a| a.to_lowercase());
        let candidates = newest_first(
            live_alerts(state, now())
                .filter(|(_, m)| filter.since.is_none_or(|s| m.timestamp >= s)),
        );
        page(candidates, after, limit, |id| {
            self.alert_view(id)
                .filter(|v| filter.include_retracted || v.retracted.is_none())
                .filter(|v| filter.category.is_none_or(|c| v.category == c))
                .filter(|v| {
                    area.as_ref()
                        .is_none_or(|a| v.area.to_lowercase().contains(a.as_str()))
                })
        })
    }

    /// Live, unretracted alerts naming `term` (phone, plate, handle or name), newest first (every
    /// page of [`Replica::check_page`]).
    pub fn check(&self, term: &str) -> Result<Vec<AlertView>, ApiError> {
        Ok(self.check_page(term, None, usize::MAX)?.0)
    }

    /// One page of [`Replica::check`], as [`Replica::alerts_page`].
    pub fn check_page(
        &self,
        term: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AlertView>, Option<String>), ApiError> {
        let term = term.trim();
        if term.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "give a phone number, plate, handle or name to check",
            ));
        }
        let state = self.collective()?;
        let country = state.log().roster().policy().country.clone();
        let candidates = newest_first(live_alerts(state, now()));
        page(candidates, after, limit, |id| {
            // An alert nothing refers to is shown as posted: match its text before building the
            // view. Edited, retracted or corroborated ones are matched as shown.
            if state.referring(id).is_empty() {
                let body = self.stored_post(id)?;
                let Content::Alert(alert) = &body.content else {
                    return None;
                };
                alert.matches(term, &country)?;
            }
            let mut view = self.alert_view(id)?;
            if view.retracted.is_some() {
                return None;
            }
            let kind = alert_from_view(&view).matches(term, &country)?;
            view.matched = Some(format!("{kind:?}").to_lowercase());
            Some(view)
        })
    }

    /// An alert with its latest edit, retraction and corroborations applied.
    pub(super) fn alert_view(&self, id: &ContentId) -> Option<AlertView> {
        self.alert_view_with(id, &HashMap::new())
    }

    /// [`Replica::alert_view`], reading posts from `posted` (just written) before the store.
    pub(super) fn alert_view_with(
        &self,
        id: &ContentId,
        posted: &HashMap<ContentId, &PostRecord>,
    ) -> Option<AlertView> {
        let state = self.collective.as_ref()?;
        let meta = state.posts().get(id)?;
        if meta.kind != PostKind::Alert {
            return None;
        }
        let load = |id: &ContentId| -> Option<InnerBody> {
            match posted.get(id) {
                Some(record) => Some(record.body.clone()),
                None => self.stored_post(id),
            }
        };
        let body = load(id)?;
        let Content::Alert(original) = &body.content else {
            return None;
        };
        let referring: Vec<(ContentId, PostMeta, InnerBody)> = state
            .referring(id)
            .iter()
            .filter_map(|r| Some((*r, state.posts().get(r)?, load(r)?)))
            .collect();
        let mut alert = original;
        let mut edited = false;
        let mut edit_time = 0;
        let mut retracted = None;
        let mut retracted_by = None;
        // Each member other than the author counts once, with their latest note.
        let mut corroborations: BTreeMap<MemberId, (u64, &str)> = BTreeMap::new();
        let mut retracted_at = u64::MAX;
        for (_, other, b) in &referring {
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
                        && other.retracts(*id, &meta, state.log().roster()) =>
                {
                    retracted_at = b.timestamp;
                    retracted = Some(reason.clone());
                    retracted_by = Some(b.author);
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
            author: self.member_name(roster, &body.author),
            yours: body.author == self.identity.member_id(),
            author_id: body.author.to_hex(),
            seq: body.seq,
            retracted,
            retracted_by: retracted_by.map(|by| self.member_name(roster, &by)),
            corroborations: corroborations.len(),
            corroborated_by: {
                let mut by: Vec<CorroborationView> = corroborations
                    .iter()
                    .map(|(member, (posted, note))| CorroborationView {
                        member: self.member_name(roster, member),
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

/// Alerts as (date, id), in no order: [`page`] puts them in listing order (newest first, then
/// by id), sorting only as many as a page examines.
fn newest_first(alerts: impl Iterator<Item = (ContentId, PostMeta)>) -> Vec<(u64, ContentId)> {
    alerts.map(|(id, m)| (m.timestamp, id)).collect()
}

/// The listing order: newest first, then by id.
fn listing_order(a: &(u64, ContentId), b: &(u64, ContentId)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

/// A page cursor: the date and id of the last alert a page examined.
fn cursor(entry: &(u64, ContentId)) -> String {
    format!("{}-{}", entry.0, entry.1.to_hex())
}

fn parse_cursor(cursor: &str) -> Result<(u64, ContentId), ApiError> {
    let bad = || ApiError::new(ErrorCode::InvalidInput, "not a page cursor");
    let (time, id) = cursor.split_once('-').ok_or_else(bad)?;
    let time = time.parse().map_err(|_| bad())?;
    let id: [u8; 32] = hex::decode(id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    Ok((time, ContentId(id)))
}

/// Up to `limit` views of `candidates` (in listing order, see [`listing_order`]) after the
/// cursor `after`, each made by `view` (`None`: left out); and the cursor of the next page if
/// candidates remain. Only the candidates a page examines are sorted: the first `limit` after
/// the cursor are selected in linear time, then more if `view` left some out.
fn page<T>(
    mut candidates: Vec<(u64, ContentId)>,
    after: Option<&str>,
    limit: usize,
    view: impl Fn(&ContentId) -> Option<T>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    if let Some(c) = after {
        // The candidates after the cursor in listing order (the cursor's alert may have
        // expired since).
        let (time, id) = parse_cursor(c)?;
        candidates.retain(|(t, i)| *t < time || (*t == time && *i > id));
    }
    let limit = limit.max(1);
    // At most this many views: allocated once, not grown by doubling (a listing of 100,000
    // alerts held its views twice over while the vector moved, docs/BENCHMARKS.md "store2").
    let mut out = Vec::with_capacity(limit.min(candidates.len()));
    let mut rest = candidates.as_mut_slice();
    while !rest.is_empty() {
        let want = (limit - out.len()).min(rest.len());
        if want < rest.len() {
            rest.select_nth_unstable_by(want - 1, listing_order);
        }
        let (head, tail) = rest.split_at_mut(want);
        head.sort_unstable_by(listing_order);
        out.extend(head.iter().filter_map(|entry| view(&entry.1)));
        if out.len() >= limit {
            let next = (!tail.is_empty())
                .then(|| head.last().map(cursor))
                .flatten();
            return Ok((out, next));
        }
        rest = tail;
    }
    Ok((out, None))
}

/// Whether a retraction that counts (by the alert's author or a current moderator) names the
/// alert `id`: what `Replica::alert_view` decides, from the posts' metadata alone.
fn withdrawn(state: &State, id: &ContentId, meta: &PostMeta) -> bool {
    let roster = state.log().roster();
    state.referring(id).iter().any(|r| {
        state
            .posts()
            .get(r)
            .is_some_and(|other| other.retracts(*id, meta, roster))
    })
}

/// The live alerts kept (not retractions, edits or other posts).
fn live_alerts(state: &State, now: u64) -> impl Iterator<Item = (ContentId, PostMeta)> + '_ {
    state
        .posts()
        .iter()
        .filter(move |(_, m)| m.kind == PostKind::Alert && m.expires > now)
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

/// A member's name as shown: opened with the collective's text key (`unreadable name (…)` if it
/// does not open), or `former member …` for someone the roster never admitted.
impl Replica {
    /// [`name_of`], from the names of every member at `roster` opened once per roster (and
    /// collective secret) and kept: an alert view names its author, so taking in a batch of
    /// alerts or listing them would otherwise open every member's name for each alert.
    pub(super) fn member_name(&self, roster: &Roster, member: &MemberId) -> String {
        let known = roster.is_member(member)
            || roster
                .removed()
                .get(member)
                .is_some_and(|r| r.name.is_some());
        if !known {
            return format!("former member {}", member.short());
        }
        let with_secret = self.collective_secret.is_some();
        let mut memo = self.names.borrow_mut();
        let fresh = memo
            .as_ref()
            .is_some_and(|m| m.with_secret == with_secret && m.heads == roster.heads());
        if !fresh {
            *memo = Some(super::NameMemo {
                heads: roster.heads().to_vec(),
                with_secret,
                names: roster.all_display_names(self.text_key().as_ref()),
            });
        }
        memo.as_ref()
            .and_then(|m| m.names.get(member).cloned())
            .unwrap_or_else(|| lookout_protocol::text::unreadable_name(member))
    }
}

pub(super) fn name_of(roster: &Roster, key: Option<&TextKey>, member: &MemberId) -> String {
    let known = roster.is_member(member)
        || roster
            .removed()
            .get(member)
            .is_some_and(|r| r.name.is_some());
    if known {
        roster.display_name(key, member)
    } else {
        format!("former member {}", member.short())
    }
}

/// What a waiting proposal does, who it is about in English, and the same as data.
fn describe(
    kind: &PendingKind,
    roster: &Roster,
    key: Option<&TextKey>,
) -> (&'static str, String, Subject) {
    let member = |action, m: &MemberId| {
        (
            action,
            name_of(roster, key, m),
            about_member(roster, key, m),
        )
    };
    match kind {
        PendingKind::Add { identity, name } => {
            let about = Subject {
                name: Some(name.display(key)),
                id: identity.member.short(),
                fingerprint: Some(fingerprint(&identity.member, &identity.agreement)),
                addresses: Vec::new(),
            };
            // The fingerprint first: the name is the code's maker's choice and can be made to
            // look like "(…, fingerprint …)" (Review 21).
            let subject = format!(
                "fingerprint {}: \"{}\" ({})",
                about.fingerprint.as_deref().unwrap_or_default(),
                about.name.as_deref().unwrap_or_default(),
                about.id
            );
            ("add", subject, about)
        }
        PendingKind::Promote(m) => member("promote", m),
        PendingKind::Demote(m) => member("demote", m),
        PendingKind::RemoveModerator(m) => member("remove moderator", m),
        PendingKind::AddMailbox { mailbox, addresses } => {
            let (subject, about) = about_mailbox(mailbox.0, addresses);
            ("add mailbox", subject, about)
        }
    }
}

/// A member as a proposal's subject: the name [`name_of`] shows, unless it is gone.
fn about_member(roster: &Roster, key: Option<&TextKey>, member: &MemberId) -> Subject {
    let known = roster.is_member(member)
        || roster
            .removed()
            .get(member)
            .is_some_and(|r| r.name.is_some());
    Subject {
        name: known.then(|| roster.display_name(key, member)),
        id: member.short(),
        ..Subject::default()
    }
}

/// A mailbox as a proposal's subject: in English, and as data.
fn about_mailbox(mailbox: [u8; 32], addresses: &[String]) -> (String, Subject) {
    let id = lookout_protocol::MailboxId(mailbox).short();
    let subject = format!("mailbox {id} at {}", addresses.join(" "));
    let about = Subject {
        id,
        addresses: addresses.to_vec(),
        ..Subject::default()
    };
    (subject, about)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The paging before selection: sort every candidate, then walk them.
    fn page_by_full_sort<T>(
        mut candidates: Vec<(u64, ContentId)>,
        after: Option<&str>,
        limit: usize,
        view: impl Fn(&ContentId) -> Option<T>,
    ) -> (Vec<T>, Option<String>) {
        candidates.sort_by(listing_order);
        let start = after.map_or(0, |c| {
            let (time, id) = parse_cursor(c).unwrap();
            candidates.partition_point(|(t, i)| *t > time || (*t == time && *i <= id))
        });
        let mut out = Vec::new();
        let mut next = None;
        for (n, entry) in candidates.iter().enumerate().skip(start) {
            if out.len() >= limit.max(1) {
                next = Some(cursor(&candidates[n - 1]));
                break;
            }
            if let Some(v) = view(&entry.1) {
                out.push(v);
            }
        }
        (out, next)
    }

    /// Every page, followed cursor to cursor, is what a full sort gives: for many sizes, page
    /// limits, shares of candidates left out by the view, and dates shared by many alerts.
    #[test]
    fn selecting_a_page_is_sorting_every_candidate() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next_random = move || {
            // xorshift64*: fixed seed, so every run checks the same cases.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for case in 0..300 {
            let n = (next_random() % 200) as usize;
            let dates = 1 + next_random() % 40;
            let candidates: Vec<(u64, ContentId)> = (0..n)
                .map(|_| {
                    let mut id = [0u8; 32];
                    id[..8].copy_from_slice(&next_random().to_le_bytes());
                    (next_random() % dates, ContentId(id))
                })
                .collect();
            let limit = [0, 1, 2, 3, 7, 50, 500, usize::MAX][case % 8];
            let left_out = next_random() % 4;
            let view = |id: &ContentId| (u64::from(id.0[0]) % 4 >= left_out).then_some(*id);
            let mut after: Option<String> = None;
            let mut pages = 0;
            loop {
                let got = page(candidates.clone(), after.as_deref(), limit, view).unwrap();
                let want = page_by_full_sort(candidates.clone(), after.as_deref(), limit, view);
                assert_eq!(got, want, "case {case}, page {pages}");
                pages += 1;
                match got.1 {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            assert!(pages <= n + 1);
        }
    }
}
