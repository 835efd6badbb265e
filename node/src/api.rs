//! The operations a member or moderator can ask of their node, as plain data.
//!
//! The same [`Request`] and [`Response`] types travel over the local control socket (one JSON
//! object per line, see [`crate::control`]) and are executed directly on the store when no node
//! is running, so the CLI has one code path for both.

use serde::{Deserialize, Serialize};

use lookout_protocol::content::{Category, Severity};
use lookout_protocol::replica::Refusal;

/// Most alerts one page of [`Request::AlertsPage`] or [`Request::CheckPage`] holds.
pub const MAX_PAGE: u32 = 500;

/// Version of the control protocol; a client sends it with every request.
pub(crate) const API_VERSION: u32 = 1;

/// Something a member asks of their node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Who am I, which collective, how many members, alerts, peers.
    Status,
    /// Current and removed members.
    Members,
    /// Proposals waiting for approvals.
    Pending,
    /// Live alerts, newest first.
    Alerts(AlertFilter),
    /// Alerts naming this phone number, plate, handle or name.
    Check {
        /// What to look for, as typed.
        term: String,
    },
    /// One page of [`Request::Alerts`]: up to `limit` alerts after the cursor `after` (the
    /// `next` of the previous page; none for the first). Answered with [`Response::AlertsPage`].
    AlertsPage {
        /// Which alerts.
        filter: AlertFilter,
        /// Where the previous page ended.
        #[serde(default)]
        after: Option<String>,
        /// Most alerts in this page (at least one; at most [`MAX_PAGE`]).
        limit: u32,
    },
    /// One page of [`Request::Check`], as [`Request::AlertsPage`].
    CheckPage {
        /// What to look for, as typed.
        term: String,
        /// Where the previous page ended.
        #[serde(default)]
        after: Option<String>,
        /// Most alerts in this page (at least one; at most [`MAX_PAGE`]).
        limit: u32,
    },
    /// Post an alert.
    Post(PostDraft),
    /// Withdraw an alert (author or moderator).
    Retract {
        /// Alert id or a unique prefix of it.
        id: String,
        /// Why.
        reason: String,
    },
    /// "This happened to me too."
    Corroborate {
        /// Alert id or a unique prefix of it.
        id: String,
        /// Optional note.
        note: String,
    },
    /// Approve a join request code, or an existing proposal by id.
    Approve {
        /// A join request code (`LKJOIN1-...`) or a proposal id prefix.
        target: String,
    },
    /// Remove a member (moderators).
    Revoke {
        /// Member id prefix or display name.
        member: String,
        /// Why, for the other moderators.
        reason: String,
    },
    /// Publish a self-revocation certificate.
    PublishRevocation {
        /// The certificate code (`LKREVOKE1-...`).
        certificate: String,
    },
    /// Propose making a member a moderator.
    Promote {
        /// Member id prefix or display name.
        member: String,
    },
    /// Propose taking moderator rights away.
    Demote {
        /// Member id prefix or display name.
        member: String,
    },
    /// An invite code for an admitted member.
    Invite,
    /// Stream new alerts as they arrive (control socket only).
    Watch,
    /// Moderators: propose a mailbox from its pairing code, or approve the pending proposal
    /// for that mailbox.
    MailboxAdd {
        /// The pairing code (`LKMAILBOX2-...`).
        code: String,
    },
    /// The collective's mailboxes: current, pending with approvals, removed.
    Mailboxes,
    /// Moderators: remove a mailbox (at once).
    MailboxRemove {
        /// Mailbox id or a unique prefix of it.
        mailbox: String,
    },
}

/// Which alerts to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFilter {
    /// Only alerts whose area contains this text (case-insensitive).
    pub area: Option<String>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only alerts posted at or after this time (seconds since the Unix epoch).
    pub since: Option<u64>,
    /// Include retracted alerts.
    pub include_retracted: bool,
}

/// A new alert as the member described it; identifiers are normalised by the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostDraft {
    /// What happened.
    pub category: Category,
    /// How dangerous.
    pub severity: Severity,
    /// What happened, in the poster's words.
    pub description: String,
    /// Phone numbers as written.
    #[serde(default)]
    pub phones: Vec<String>,
    /// Keep a phone number that cannot be read as a number exactly as typed (shown as
    /// unverified) instead of refusing the post.
    #[serde(default)]
    pub phones_as_typed: bool,
    /// Plates as written.
    #[serde(default)]
    pub plates: Vec<String>,
    /// Names or aliases.
    #[serde(default)]
    pub names: Vec<String>,
    /// Advert handles or emails.
    #[serde(default)]
    pub handles: Vec<String>,
    /// Physical description.
    #[serde(default)]
    pub physical: String,
    /// Where.
    #[serde(default)]
    pub area: String,
    /// When it happened (seconds since the Unix epoch).
    #[serde(default)]
    pub incident_time: Option<u64>,
    /// Days until it expires (default: the collective's).
    #[serde(default)]
    pub expires_in_days: Option<u16>,
    /// Language tag.
    #[serde(default)]
    pub language: String,
    /// Posted on behalf of someone without the app.
    #[serde(default)]
    pub on_behalf: bool,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// A status is answered once per request; boxing it would change every caller for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    /// For [`Request::Status`].
    Status(StatusView),
    /// For [`Request::Members`].
    Members(MembersView),
    /// For [`Request::Pending`].
    Pending {
        /// Waiting proposals.
        proposals: Vec<ProposalView>,
    },
    /// For [`Request::Alerts`] and [`Request::Check`].
    Alerts {
        /// Matching alerts, newest first.
        alerts: Vec<AlertView>,
    },
    /// For [`Request::AlertsPage`] and [`Request::CheckPage`].
    AlertsPage {
        /// This page's alerts, newest first.
        alerts: Vec<AlertView>,
        /// The cursor of the next page (`after`), if there is more.
        next: Option<String>,
    },
    /// For posts, retractions and corroborations.
    Posted {
        /// The new post's id.
        id: String,
    },
    /// For [`Request::Approve`], promote and demote.
    Proposal(ProposalView),
    /// For revocations.
    Revoked {
        /// Member removed.
        member: String,
        /// The new epoch that excludes them, if this node rotated.
        epoch: Option<String>,
    },
    /// For [`Request::Invite`].
    Invite {
        /// The code.
        code: String,
    },
    /// Acknowledges [`Request::Watch`]; events follow.
    Watching,
    /// For [`Request::Mailboxes`].
    Mailboxes(MailboxesView),
    /// For [`Request::MailboxRemove`].
    MailboxRemoved {
        /// The mailbox removed (hex).
        mailbox: String,
    },
}

/// Error codes clients can match on (also the CLI's exit codes, see [`ErrorCode::exit_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed request or bad argument.
    InvalidInput,
    /// No identity on this device yet.
    NotInitialized,
    /// Not in a collective yet.
    NoCollective,
    /// This device's identity is not (or no longer) a member.
    NotAMember,
    /// Only moderators may do that.
    NotModerator,
    /// No such alert.
    UnknownAlert,
    /// No such member or proposal.
    UnknownMember,
    /// A prefix matches several.
    Ambiguous,
    /// A pasted code is damaged, of the wrong kind or for another collective.
    BadCode,
    /// The identity was removed from the collective.
    Revoked,
    /// Wrong passphrase.
    WrongPassphrase,
    /// The store is in use by another process.
    Busy,
    /// Something on this device failed (disk, database).
    Internal,
    /// The protocol version is not supported.
    Unsupported,
}

impl ErrorCode {
    /// The process exit code the CLI uses for this error.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::InvalidInput => 2,
            ErrorCode::NotInitialized | ErrorCode::NoCollective => 3,
            ErrorCode::WrongPassphrase => 4,
            ErrorCode::NotAMember | ErrorCode::Revoked => 5,
            ErrorCode::NotModerator => 6,
            ErrorCode::UnknownAlert | ErrorCode::UnknownMember | ErrorCode::Ambiguous => 7,
            ErrorCode::BadCode => 8,
            ErrorCode::Busy => 9,
            ErrorCode::Internal | ErrorCode::Unsupported => 10,
        }
    }
}

impl From<&Refusal> for ErrorCode {
    /// The code a person gets when the core refuses something they made: what they can do
    /// about it decides the code (as rustls maps its errors to TLS alerts).
    fn from(refusal: &Refusal) -> Self {
        match refusal {
            Refusal::NoCollective => ErrorCode::NoCollective,
            Refusal::AuthorRemoved => ErrorCode::Revoked,
            Refusal::NotAMember | Refusal::NeverAMember | Refusal::DeliveryNotAllowed(_) => {
                ErrorCode::NotAMember
            }
            Refusal::NotAModerator | Refusal::NoLongerModerator | Refusal::NotTheAuthor => {
                ErrorCode::NotModerator
            }
            Refusal::UnsupportedVersion { .. } => ErrorCode::Unsupported,
            Refusal::SealFailed => ErrorCode::Internal,
            // Over a quota, expired, dated ahead, too large, malformed: change the input.
            _ => ErrorCode::InvalidInput,
        }
    }
}

impl From<Refusal> for ErrorCode {
    fn from(refusal: Refusal) -> Self {
        Self::from(&refusal)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::new(ErrorCode::from(&refusal), format!("refused: {refusal}"))
    }
}

/// A failed request: a code to match on and one line for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What happened and what to do, in one line.
    pub message: String,
    /// What exactly was refused, for a client that says it in its own words (the web page, in
    /// the reader's language). Absent from most errors, and from older nodes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "detail_if_known"
    )]
    pub detail: Option<Detail>,
}

/// An error's detail if this version knows its kind and fields; none otherwise, so an error from
/// a newer node that says more is still read, with its message (PROTOCOL §10: clients ignore
/// what they do not know; Review 21).
fn detail_if_known<'de, D>(deserializer: D) -> Result<Option<Detail>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// The same error, saying exactly what was refused.
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// What a refusal is about, as data: [`ApiError::message`] says it in English, and a client that
/// speaks another language words it from this (Trial 12's T12-19: the page in Portuguese showed
/// the node's English).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refused", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Detail {
    /// A name (a person's or a group's) is empty, has control characters, or is longer than
    /// `max` bytes (a letter with an accent takes two).
    Name {
        /// The limit, in bytes.
        max: usize,
    },
    /// A text is longer than the protocol allows.
    TooLong {
        /// The field, as the protocol names it (`description`, `area`, `names`, ...).
        field: String,
        /// The limit, in bytes.
        max: usize,
        /// Its length as given, in bytes.
        given: usize,
    },
    /// A pasted code is of another kind than the one asked for.
    WrongCode {
        /// The kind asked for.
        expected: CodeKind,
        /// The kind it is.
        found: CodeKind,
    },
    /// A code of the right kind that cannot be read: cut short, mistyped or altered.
    DamagedCode {
        /// Its kind.
        kind: CodeKind,
    },
    /// An invite made by an older version of Lookout, which this one cannot use.
    OldInvite,
    /// An invite to another collective than the one this device is in.
    OtherCollective,
}

/// The kinds of code a person might paste, told by the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeKind {
    /// `LKJOIN1-`: a new member's join request.
    JoinRequest,
    /// `LKINVITE2-`: a moderator's invite (and `LKINVITE1-`, an older one, refused when read).
    Invite,
    /// `LKREVOKE1-`: a self-revocation certificate.
    Revocation,
    /// Some other `LK...-` code.
    OtherCode,
    /// Hex digits: an id.
    Id,
    /// Anything else.
    Unknown,
}

impl CodeKind {
    /// Recognise a pasted code by its prefix (white space and case forgiven, as the codes are).
    pub fn of(text: &str) -> Self {
        use lookout_protocol::invite::{
            INVITE_CODE_PREFIX, JOIN_CODE_PREFIX, OLD_INVITE_CODE_PREFIX,
        };
        use lookout_protocol::membership::REVOCATION_CODE_PREFIX;
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let prefixed = |prefix: &str| {
            cleaned
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('-'))
        };
        if prefixed(JOIN_CODE_PREFIX) {
            CodeKind::JoinRequest
        } else if prefixed(INVITE_CODE_PREFIX) || prefixed(OLD_INVITE_CODE_PREFIX) {
            CodeKind::Invite
        } else if prefixed(REVOCATION_CODE_PREFIX) {
            CodeKind::Revocation
        } else if cleaned.starts_with("LK") && cleaned.contains('-') {
            CodeKind::OtherCode
        } else if !cleaned.is_empty() && cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
            CodeKind::Id
        } else {
            CodeKind::Unknown
        }
    }
}

/// This device, its collective and its node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// Member id (hex).
    pub member: String,
    /// Display name.
    pub name: String,
    /// Fingerprint to compare in person.
    pub fingerprint: String,
    /// Collective name, if joined.
    pub collective: Option<String>,
    /// Collective id (hex), if joined.
    pub collective_id: Option<String>,
    /// The country phone numbers written without +country are read with (ISO 3166 alpha-2).
    #[serde(default)]
    pub country: Option<String>,
    /// Whether this device is a current member.
    pub is_member: bool,
    /// Whether this device is a moderator.
    pub is_moderator: bool,
    /// Whether this device's identity was removed.
    pub is_removed: bool,
    /// Current members.
    pub members: usize,
    /// Live alerts.
    pub alerts: usize,
    /// Membership ops held.
    pub ops: usize,
    /// The epoch new posts are written under (short id).
    pub epoch: Option<String>,
    /// Messages waiting for missing state.
    pub held: usize,
    /// Posts found damaged in this device's store since it opened (a pack of posts that no
    /// longer reads: a flipped bit on flash). They are dropped from its index and forgotten,
    /// so the next sync fetches them again from a peer.
    #[serde(default)]
    pub damaged_posts: usize,
    /// Parts of this device's post index that did not read when the store opened: the posts
    /// they listed are not claimed as held, so sync fetches them again.
    #[serde(default)]
    pub damaged_index_chunks: usize,
    /// Posts waiting to reach a peer.
    pub outbox: usize,
    /// Whether a node is running (answered through the control socket).
    pub running: bool,
    /// Addresses the node listens on.
    pub listening: Vec<String>,
    /// Connected member peers.
    pub peers: usize,
    /// Seconds since the Unix epoch of the last completed sync.
    pub last_sync: Option<u64>,
    /// When this node last synced with each member (since it started).
    #[serde(default)]
    pub synced_with: Vec<MemberSync>,
    /// Bytes received from peers since start.
    pub bytes_received: u64,
    /// Key shares sent to this device that do not open: their signer sent junk (or a damaged
    /// copy), which moderators should look into. Kept while the epoch lives.
    #[serde(default)]
    pub unreadable_key_shares: Vec<UnreadableShareView>,
    /// How this node can be reached: `direct`, `relayed`, `unreachable` or `unknown` (see
    /// [`crate::reach`]). Only a running node knows; `unknown` otherwise.
    #[serde(default)]
    pub reachability: crate::reach::Reachability,
    /// The collective's mailboxes and how this node stands with each (running node only).
    #[serde(default)]
    pub mailboxes: Vec<MailboxLinkView>,
    /// Connected members with a direct connection (running node only).
    #[serde(default)]
    pub direct_peers: usize,
    /// Connected members reached only through a mailbox's relay (running node only).
    #[serde(default)]
    pub relayed_peers: usize,
    /// Relayed connections upgraded to direct ones by hole punching since start.
    #[serde(default)]
    pub hole_punches: u64,
    /// Hole-punch rounds (DCUtR) that failed on this node's side since start.
    #[serde(default)]
    pub hole_punch_failures: u64,
    /// Members redialled through a relay to give the hole punch another round, since start
    /// (see `policy::punch`).
    #[serde(default)]
    pub hole_punch_retries: u64,
}

/// How this node stands with one of the collective's mailboxes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxLinkView {
    /// The mailbox's id (its key, first 16 hex digits).
    pub id: String,
    /// The address it was last dialled at (from the roster).
    pub address: Option<String>,
    /// `dialing`, `connected` (admission under way), `admitted`, `refused` or `unreachable`.
    pub state: String,
    /// Whether it holds a relay reservation for this node.
    pub reserved: bool,
    /// When this node last completed a sync with it (UNIX seconds).
    pub last_sync: Option<u64>,
}

/// A member who signed a key share for this device that does not open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableShareView {
    /// The signer's member id (hex).
    pub signer: String,
    /// The signer's display name.
    pub signer_name: String,
    /// The epoch (short id).
    pub epoch: String,
    /// Whether this device has since got the key from another member.
    pub recovered: bool,
}

/// When this node last synced with one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSync {
    /// Member id (hex).
    pub member: String,
    /// Display name.
    pub name: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// Members of the collective.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersView {
    /// Current members.
    pub members: Vec<MemberView>,
    /// Removed members.
    pub removed: Vec<MemberView>,
}

/// One member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Member id (hex).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Moderator.
    pub moderator: bool,
    /// Fingerprint.
    pub fingerprint: String,
    /// This device.
    pub you: bool,
    /// For removed members: whether by self-revocation.
    pub self_revoked: bool,
}

/// The collective's mailboxes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxesView {
    /// Current mailboxes.
    pub current: Vec<MailboxView>,
    /// Proposed mailboxes waiting for approvals.
    pub pending: Vec<MailboxView>,
    /// Removed mailboxes (never admitted again).
    pub removed: Vec<MailboxView>,
}

/// One mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxView {
    /// Mailbox id (hex).
    pub id: String,
    /// Addresses members dial it at.
    pub addresses: Vec<String>,
    /// The proposal that admitted it, or that is waiting (hex); empty for a removed mailbox
    /// that never completed.
    pub proposal: String,
    /// For a pending one: approvals so far.
    pub approvals: usize,
    /// For a pending one: approvals needed.
    pub needed: usize,
    /// For a pending one: the moderators who approved (display names).
    pub approved_by: Vec<String>,
    /// For a removed one: the moderators who removed it (display names).
    pub removed_by: Vec<String>,
}

/// A proposal and how far it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Proposal id (hex).
    pub id: String,
    /// What it does, in words.
    pub action: String,
    /// Who it is about.
    pub subject: String,
    /// Approvals so far.
    pub approvals: usize,
    /// Approvals needed.
    pub needed: usize,
    /// Whether it has taken effect.
    pub done: bool,
    /// For an admitted member: the invite code to hand them.
    pub invite: Option<String>,
    /// Nothing was done: it had already taken effect (such as approving the join code of
    /// someone who is already a member).
    #[serde(default)]
    pub already: bool,
    /// Who or what it is about, in parts a client words in its own language ([`Self::subject`]
    /// says it in English). Empty from older nodes.
    #[serde(default)]
    pub about: Subject,
}

/// Who or what a proposal is about, as data (Trial 12's T12-19: "fingerprint" and "former
/// member" reached a page in Portuguese in English).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The member's name as shown, if this device knows it (`None`: a former member whose name
    /// is gone, or a mailbox).
    #[serde(default)]
    pub name: Option<String>,
    /// The member's or mailbox's short id (hex).
    #[serde(default)]
    pub id: String,
    /// For a join waiting for approvals: the fingerprint to compare.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// For a mailbox: its addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// One alert as shown to members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    /// Alert id (hex).
    pub id: String,
    /// Category.
    pub category: Category,
    /// Severity.
    pub severity: Severity,
    /// Text.
    pub description: String,
    /// Phone numbers (E.164).
    pub phones: Vec<String>,
    /// Plates.
    pub plates: Vec<String>,
    /// Names.
    pub names: Vec<String>,
    /// Handles.
    pub handles: Vec<String>,
    /// Physical description.
    pub physical: String,
    /// Area.
    pub area: String,
    /// When it happened.
    pub incident_time: Option<u64>,
    /// When it was posted.
    pub posted: u64,
    /// When it expires.
    pub expires: u64,
    /// Language.
    pub language: String,
    /// Posted on behalf of someone.
    pub on_behalf: bool,
    /// Display name of the member who posted it.
    pub author: String,
    /// Whether this device's member posted it (a moderator retracting someone else's alert is
    /// asked first).
    #[serde(default)]
    pub yours: bool,
    /// The member id (hex) of the member who posted it.
    #[serde(default)]
    pub author_id: String,
    /// Its author's sequence number (each of her posts counts one up): orders her alerts posted
    /// within the same second (see [`listing_order`]).
    #[serde(default)]
    pub seq: u64,
    /// Retraction reason, if retracted (empty if none was given).
    pub retracted: Option<String>,
    /// Display name of the member who withdrew it (its author, or a moderator), if retracted.
    #[serde(default)]
    pub retracted_by: Option<String>,
    /// How many members other than its author corroborated it (each counted once).
    pub corroborations: usize,
    /// The corroborations counted: each member's latest, oldest first.
    #[serde(default)]
    pub corroborated_by: Vec<CorroborationView>,
    /// Whether the text was edited.
    pub edited: bool,
    /// For `check`: how it matched.
    pub matched: Option<String>,
}

/// The order alerts are listed in, on the terminal and on the page (Trial 12's T12-25): newest
/// posted first. Posting times are whole seconds; within one second a member's alerts come
/// newest first by her sequence number (the order she posted them), and different members'
/// alerts (whose clocks and posts cannot be ordered against each other) by member id; the alert
/// id decides last, so the order is total and the same everywhere.
pub fn listing_order(a: &AlertView, b: &AlertView) -> std::cmp::Ordering {
    b.posted
        .cmp(&a.posted)
        .then_with(|| a.author_id.cmp(&b.author_id))
        .then_with(|| b.seq.cmp(&a.seq))
        .then_with(|| a.id.cmp(&b.id))
}

/// The order of a printed sheet, from `lookout export` and from the page alike: most severe
/// first (a sheet on a wall is read from the top, and a danger to life must not sit below
/// older warnings), then when it happened (or was posted) newest first, then
/// [`listing_order`]. The author signs the incident time and readers accept any value, so
/// for the order it counts no later than a day after the alert was posted (no honest writer
/// goes further ahead; Review 19's R19-5): a date years ahead does not pin an alert to the top.
pub fn sheet_order(a: &AlertView, b: &AlertView) -> std::cmp::Ordering {
    let happened = |alert: &AlertView| {
        alert
            .incident_time
            .unwrap_or(alert.posted)
            .min(alert.posted.saturating_add(crate::when::DAY))
    };
    b.severity
        .cmp(&a.severity)
        .then_with(|| happened(b).cmp(&happened(a)))
        .then_with(|| listing_order(a, b))
}

/// One member's corroboration of an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorroborationView {
    /// Display name of the member.
    pub member: String,
    /// Their note (may be empty).
    pub note: String,
    /// When they posted it (seconds since the Unix epoch).
    pub posted: u64,
}

/// A streamed event on a watching control connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A new alert arrived or was posted.
    Alert(Box<AlertView>),
    /// An alert was retracted.
    Retracted {
        /// Alert id.
        id: String,
    },
    /// Membership changed.
    MembershipChanged {
        /// Current member count.
        members: usize,
    },
    /// A member sent this device a key share that does not open. The node asks other members
    /// for the key; moderators should look into the signer.
    UnreadableKeyShare {
        /// The signer's member id (hex).
        signer: String,
        /// The signer's display name.
        signer_name: String,
        /// The epoch (short id).
        epoch: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_code_a_person_can_act_on() {
        let cases = [
            (Refusal::OverQuota, ErrorCode::InvalidInput, 2),
            (Refusal::AuthorRemoved, ErrorCode::Revoked, 5),
            (Refusal::NotAMember, ErrorCode::NotAMember, 5),
            (Refusal::NotAModerator, ErrorCode::NotModerator, 6),
            (Refusal::NoLongerModerator, ErrorCode::NotModerator, 6),
            (Refusal::NotTheAuthor, ErrorCode::NotModerator, 6),
            (Refusal::Expired, ErrorCode::InvalidInput, 2),
        ];
        for (refusal, code, exit) in cases {
            assert_eq!(ErrorCode::from(&refusal), code, "{refusal}");
            assert_eq!(code.exit_code(), exit);
        }
        let error = ApiError::from(Refusal::OverQuota);
        assert_eq!(
            error.message,
            "refused: the author is over the daily posting quota"
        );
    }

    fn view(id: &str, posted: u64, incident_time: Option<u64>) -> AlertView {
        AlertView {
            id: id.into(),
            category: Category::Violence,
            severity: Severity::High,
            description: String::new(),
            phones: Vec::new(),
            plates: Vec::new(),
            names: Vec::new(),
            handles: Vec::new(),
            physical: String::new(),
            area: String::new(),
            incident_time,
            posted,
            expires: posted + 30 * 86_400,
            language: String::new(),
            on_behalf: false,
            author: String::new(),
            yours: false,
            author_id: id.into(),
            seq: 0,
            retracted: None,
            retracted_by: None,
            corroborations: 0,
            corroborated_by: Vec::new(),
            edited: false,
            matched: None,
        }
    }

    /// R19-5 (docs/design/REVIEW19.md): the author signs the incident time and readers accept
    /// any value, so an alert dated years ahead sat at the top of its severity on every printed
    /// sheet for its whole life, above alerts of events that really were newer. An incident
    /// time counts for the order no later than a day after the alert was posted (no honest
    /// writer gets further ahead: a day is refused after today in the poster's zone).
    #[test]
    fn an_incident_time_far_ahead_of_its_posting_does_not_top_the_sheet() {
        let now = 1_795_255_200;
        let pinned = view("aaaa", now - 3 * 86_400, Some(now + 10 * 365 * 86_400));
        let fresh = view("bbbb", now - 60, Some(now - 120));
        let mut sheet = [pinned.clone(), fresh.clone()];
        sheet.sort_by(sheet_order);
        assert_eq!(sheet[0].id, "bbbb", "the newer event first");
        // An honest day typed east of UTC (midnight UTC of a local today, up to 18 h after
        // posting) keeps its place.
        let day = view("cccc", now - 60, Some((now / 86_400 + 1) * 86_400));
        let mut sheet = [fresh, day];
        sheet.sort_by(sheet_order);
        assert_eq!(sheet[0].id, "cccc");
    }

    /// The wire form PROTOCOL §10 documents: an error's detail is tagged `refused`, absent when
    /// there is none (so older clients and nodes read each other's errors), and a code kind is
    /// told by its prefix.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn an_errors_detail_travels_as_documented() {
        let plain = ApiError::new(ErrorCode::BadCode, "no");
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"code": "bad-code", "message": "no"})
        );
        let wrong = plain.with_detail(Detail::WrongCode {
            expected: CodeKind::Invite,
            found: CodeKind::of(" lkjoin1-abc"),
        });
        let json = serde_json::to_value(&wrong).unwrap();
        assert_eq!(
            json["detail"],
            serde_json::json!({"refused": "wrong-code", "expected": "invite", "found": "join-request"})
        );
        assert_eq!(serde_json::from_value::<ApiError>(json).unwrap(), wrong);
        let old: ApiError =
            serde_json::from_str(r#"{"code":"invalid-input","message":"x"}"#).unwrap();
        assert_eq!(old.detail, None);
        assert_eq!(
            serde_json::to_value(Detail::TooLong {
                field: "description".into(),
                max: 2000,
                given: 2119
            })
            .unwrap(),
            serde_json::json!({"refused": "too-long", "field": "description", "max": 2000, "given": 2119})
        );
        assert_eq!(CodeKind::of("LKINVITE1-X"), CodeKind::Invite);
        assert_eq!(CodeKind::of("LKREVOKE1-X"), CodeKind::Revocation);
        assert_eq!(CodeKind::of("3fa9c2"), CodeKind::Id);
        assert_eq!(CodeKind::of("hello"), CodeKind::Unknown);
    }

    /// Review 21: a detail this version does not know (a newer node's new kind of refusal, or
    /// a known kind with other fields) made the whole error unreadable: the client said "bad
    /// reply from node" and lost the node's message. PROTOCOL §10: clients ignore what they do
    /// not know; such a detail is read as none, and the message is kept.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn an_error_with_a_detail_this_version_does_not_know_is_still_read() {
        for detail in [
            r#"{"refused":"too-many-proposals","max":3}"#,
            r#"{"refused":"name"}"#,
            r#"{"refused":"wrong-code","expected":"invite","found":"passport"}"#,
            r#""a string""#,
        ] {
            let line = format!(r#"{{"code":"bad-code","message":"not now","detail":{detail}}}"#);
            let error: ApiError = serde_json::from_str(&line).unwrap();
            assert_eq!(
                error,
                ApiError::new(ErrorCode::BadCode, "not now"),
                "{detail}"
            );
        }
        let known = r#"{"code":"invalid-input","message":"x","detail":{"refused":"old-invite"}}"#;
        let error: ApiError = serde_json::from_str(known).unwrap();
        assert_eq!(error.detail, Some(Detail::OldInvite));
    }
}
