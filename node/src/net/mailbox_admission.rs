//! `/lookout/mailbox/1`: a member proving itself to one of its collective's mailboxes, and the
//! mailbox proving itself first (see `docs/PROTOCOL.md`, "Mailbox admission").
//!
//! A mailbox is an always-on node that holds no epoch key and no member key. It cannot run the
//! member hello (it holds no hello secret), so members and mailboxes use this exchange instead.
//! `D` and `L` are the dialer's (member's) and listener's (mailbox's) transport peer ids as
//! multihash bytes; `n_m` and `n_b` fresh 32-byte nonces;
//!
//! ```text
//! T = BLAKE3 derive_key("lookout mailbox transcript v1", len32(D)‖D‖len32(L)‖L‖n_m‖n_b)
//!
//! 1. member  → mailbox  Open   { n_m }
//!    mailbox → member   Accept { n_b, mailbox, bound flag (1 bound, 0 unbound), 32 zero bytes,
//!                                sig_b = Ed25519(mailbox key, "lookout mailbox v1" ‖ T ‖ b) }
//!    where b = 1 ‖ the bound collective id, or 0 ‖ 32 zero bytes while unbound
//! 2. member  → mailbox  Prove  { member, sig_m = Ed25519(member key,
//!                                "lookout mailbox member v1" ‖ T ‖ mailbox),
//!                                (genesis, bind_tag)? }
//!    where bind_tag = BLAKE3 keyed(derive_key("lookout mailbox bind v1", bind secret), T)
//!    mailbox → member   Welcome { provisional } | Refused
//! ```
//!
//! The `Accept` tells a stranger only whether the mailbox is bound, never which collective it
//! serves (from the id follow the envelope tag and gossip topic, and it would link the mailboxes
//! of one collective). A member checks `sig_b` against its own collective id (or against
//! "unbound"): a mailbox bound to another collective fails that check like a forgery. It also
//! checks that `mailbox` is a current mailbox of its roster, all before it sends anything about
//! itself. The mailbox
//! admits the member if its key signed the transcript and it is a current member of the roster
//! the mailbox resolved. An unbound mailbox (fresh from `mailbox init`) admits provisionally
//! only a node that proves the bind secret of its pairing code (`bind_tag`: a moderator's node
//! that ran `lookout mailbox add CODE`): it takes the genesis record sent with the proof and the
//! ops, and serves nothing else until its resolved roster names both itself and that member (the
//! runtime decides that, not this code). Without the secret, a stranger who read the mailbox key
//! off an `Accept` and named it in a collective of its own cannot bind it first.
//!
//! Both sides are pure state machines: nonces come in as arguments, roster checks as closures.
//! Every message has a fixed size except `Prove`, whose genesis record is at most
//! [`MAX_GENESIS_BYTES`].

use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use libp2p::{request_response, PeerId, StreamProtocol};
use lookout_protocol::{CollectiveId, MemberId};

/// The protocol name of mailbox admission.
pub const MAILBOX_PROTOCOL: StreamProtocol = StreamProtocol::new("/lookout/mailbox/1");

/// Largest signed genesis record a member sends to an unbound mailbox, in bytes.
pub const MAX_GENESIS_BYTES: usize = lookout_protocol::membership::MAX_GENESIS_BYTES;

const TRANSCRIPT_CONTEXT: &str = "lookout mailbox transcript v1";
const MAILBOX_SIG_CONTEXT: &[u8] = b"lookout mailbox v1";
const MEMBER_SIG_CONTEXT: &[u8] = b"lookout mailbox member v1";
const BIND_KDF_CONTEXT: &str = "lookout mailbox bind v1";

/// The bind tag's length: it follows the genesis record in a `Prove` to an unbound mailbox.
pub const BIND_TAG_BYTES: usize = 32;

const OPEN: u8 = 1;
const ACCEPT: u8 = 2;
const PROVE: u8 = 3;
const WELCOME: u8 = 4;
const REFUSED: u8 = 5;

const NONCE_BYTES: usize = 32;
const KEY_BYTES: usize = 32;
const SIG_BYTES: usize = 64;
/// `Open`: kind, nonce.
pub const OPEN_BYTES: usize = 1 + NONCE_BYTES;
/// `Accept`: kind, nonce, mailbox key, bound flag, 32 reserved zero bytes (where version 1 sent
/// the collective id: the size stays fixed), signature.
pub const ACCEPT_BYTES: usize = 1 + NONCE_BYTES + KEY_BYTES + 1 + 32 + SIG_BYTES;
/// `Prove` without a genesis record: kind, member key, signature, genesis length (`u16`, 0).
pub const PROVE_BASE_BYTES: usize = 1 + KEY_BYTES + SIG_BYTES + 2;
/// `Welcome` and `Refused`: kind and one flag byte.
pub const VERDICT_BYTES: usize = 2;

/// Largest admission request either way (`Prove` with the largest genesis record and its tag).
pub const MAX_MAILBOX_REQUEST_BYTES: usize = PROVE_BASE_BYTES + MAX_GENESIS_BYTES + BIND_TAG_BYTES;
/// Largest admission response (`Accept`).
pub const MAX_MAILBOX_RESPONSE_BYTES: usize = ACCEPT_BYTES;

/// How long one admission round may take before the request fails.
pub const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The admission codec: one length-prefixed frame each way.
pub type MailboxCodec =
    super::codec::FrameCodec<MAX_MAILBOX_REQUEST_BYTES, MAX_MAILBOX_RESPONSE_BYTES>;

/// Which end of admission a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionRole {
    /// A member: sends `Open` and `Prove`, never answers.
    Member,
    /// A mailbox: answers, never asks.
    Mailbox,
}

/// The request-response behaviour carrying `/lookout/mailbox/1` for `role`.
pub fn admission_behaviour(role: AdmissionRole) -> request_response::Behaviour<MailboxCodec> {
    let support = match role {
        AdmissionRole::Member => request_response::ProtocolSupport::Outbound,
        AdmissionRole::Mailbox => request_response::ProtocolSupport::Inbound,
    };
    request_response::Behaviour::with_codec(
        MailboxCodec::default(),
        [(MAILBOX_PROTOCOL, support)],
        request_response::Config::default()
            .with_request_timeout(ADMISSION_TIMEOUT)
            .with_max_concurrent_streams(2),
    )
}

/// Why an admission message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// The message has the wrong kind or length, or came at the wrong step.
    #[error("malformed mailbox admission message")]
    Malformed,
    /// The mailbox's signature over this connection's transcript and our collective does not
    /// verify: forged, replayed, or a mailbox bound to another collective.
    #[error("the mailbox did not prove its key for this connection and our collective")]
    BadMailboxSignature,
    /// The mailbox key is not a current mailbox of the member's roster.
    #[error("this peer is not a current mailbox of the collective")]
    NotOurMailbox,
    /// The member's signature over this connection's transcript does not verify.
    #[error("the member's proof is invalid")]
    BadMemberSignature,
    /// The proof is valid but the key is not a current member.
    #[error("not a current member of the mailbox's collective")]
    NotMember,
    /// An unbound mailbox needs the genesis record and none came (or it is too long).
    #[error("an unbound mailbox needs the collective's genesis record")]
    MissingGenesis,
    /// The mailbox is unbound and we do not hold its bind secret: the node of a moderator who
    /// added it (from its pairing code) binds it. Nothing about us was sent.
    #[error("this mailbox is not bound yet; the node of a moderator who added it binds it")]
    NoBindSecret,
    /// A genesis record came without a valid bind tag: not from a holder of the pairing code.
    #[error("the genesis record did not come with this mailbox's bind secret")]
    BadBindTag,
    /// The mailbox refused the member.
    #[error("the mailbox refused admission")]
    Refused,
}

/// How a mailbox admitted a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A current member of the mailbox's bound collective: every service.
    Member(MemberId),
    /// An unbound mailbox's provisional admission: op sync only, until its roster names both.
    Provisional {
        /// The member who proved its key.
        member: MemberId,
        /// The signed genesis record it sent (unchecked; the runtime decodes it).
        genesis: Vec<u8>,
    },
}

impl Admission {
    /// The admitted member.
    pub fn member(&self) -> MemberId {
        match self {
            Self::Member(m) | Self::Provisional { member: m, .. } => *m,
        }
    }
}

/// What the mailbox told an admitted member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Welcome {
    /// Every service of a bound mailbox.
    Full,
    /// Op sync only: the mailbox has not bound to the collective yet.
    Provisional,
}

fn transcript(dialer: &PeerId, listener: &PeerId, n_m: &[u8; 32], n_b: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(TRANSCRIPT_CONTEXT);
    for part in [dialer.to_bytes(), listener.to_bytes()] {
        h.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(&part);
    }
    h.update(n_m);
    h.update(n_b);
    *h.finalize().as_bytes()
}

fn bound_bytes(bound: Option<&CollectiveId>) -> [u8; 33] {
    let mut out = [0u8; 33];
    if let Some(c) = bound {
        out[0] = 1;
        out[1..].copy_from_slice(&c.0);
    }
    out
}

/// The bind tag a holder of `bind_secret` sends with the genesis record on the connection whose
/// transcript is `t`.
fn bind_tag(bind_secret: &[u8; 32], t: &[u8; 32]) -> blake3::Hash {
    let key = blake3::derive_key(BIND_KDF_CONTEXT, bind_secret);
    blake3::keyed_hash(&key, t)
}

fn mailbox_signed(t: &[u8; 32], bound: Option<&CollectiveId>) -> Vec<u8> {
    let mut m = Vec::with_capacity(MAILBOX_SIG_CONTEXT.len() + 32 + 33);
    m.extend_from_slice(MAILBOX_SIG_CONTEXT);
    m.extend_from_slice(t);
    m.extend_from_slice(&bound_bytes(bound));
    m
}

fn member_signed(t: &[u8; 32], mailbox: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MEMBER_SIG_CONTEXT.len() + 64);
    m.extend_from_slice(MEMBER_SIG_CONTEXT);
    m.extend_from_slice(t);
    m.extend_from_slice(mailbox);
    m
}

/// The one signature rule (ZIP-215, small-order keys refused; PROTOCOL.md §1.3.1); the
/// message carries its own context, as the hello's do.
fn verify(key: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
    lookout_protocol::sig::verify_message(key, message, sig)
}

/// A fixed-size field at `at..at + N` of `bytes`.
fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], AdmissionError> {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or(AdmissionError::Malformed)
}

/// The member's side of admission.
pub struct MailboxDialer {
    local: PeerId,
    remote: PeerId,
    n_m: [u8; 32],
    state: DialerState,
}

enum DialerState {
    Opened,
    Proved { mailbox: [u8; 32] },
    Done,
}

impl MailboxDialer {
    /// Start admission on a connection from `local` to the mailbox at `remote`; returns the state
    /// and the `Open` request (a nonce: nothing about the member).
    pub fn start(local: PeerId, remote: PeerId, nonce: [u8; 32]) -> (Self, Vec<u8>) {
        let mut open = Vec::with_capacity(OPEN_BYTES);
        open.push(OPEN);
        open.extend_from_slice(&nonce);
        (
            Self {
                local,
                remote,
                n_m: nonce,
                state: DialerState::Opened,
            },
            open,
        )
    }

    /// The mailbox's `Accept`. If it proves a current mailbox (`is_current_mailbox`) of our
    /// `collective` (or an unbound one), returns our `Prove` to send next; `genesis` (the encoded
    /// signed genesis record) goes with it only to an unbound mailbox, and only if we hold that
    /// mailbox's `bind_secret` (from its pairing code: a moderator's node that added it), with
    /// the bind tag; without it an unbound mailbox gets [`AdmissionError::NoBindSecret`] and
    /// nothing is sent. On error send nothing more and close the connection.
    pub fn on_accept(
        &mut self,
        signing: &SigningKey,
        collective: CollectiveId,
        genesis: &[u8],
        bind_secret: Option<&[u8; 32]>,
        reply: &[u8],
        is_current_mailbox: impl FnOnce(&[u8; 32]) -> bool,
    ) -> Result<Vec<u8>, AdmissionError> {
        if !matches!(self.state, DialerState::Opened) {
            return Err(AdmissionError::Malformed);
        }
        self.state = DialerState::Done;
        if reply.len() != ACCEPT_BYTES || reply.first() != Some(&ACCEPT) {
            return Err(AdmissionError::Malformed);
        }
        let n_b: [u8; 32] = field(reply, 1)?;
        let mailbox: [u8; 32] = field(reply, 33)?;
        // Only a flag in clear: the signature covers the bound collective, which must be ours.
        let bound = match (reply.get(65), field::<32>(reply, 66)?) {
            (Some(0), zeros) if zeros == [0; 32] => None,
            (Some(1), zeros) if zeros == [0; 32] => Some(collective),
            _ => return Err(AdmissionError::Malformed),
        };
        let sig: [u8; 64] = field(reply, 98)?;
        let t = transcript(&self.local, &self.remote, &self.n_m, &n_b);
        if !verify(&mailbox, &mailbox_signed(&t, bound.as_ref()), &sig) {
            return Err(AdmissionError::BadMailboxSignature);
        }
        if !is_current_mailbox(&mailbox) {
            return Err(AdmissionError::NotOurMailbox);
        }
        let send_genesis = bound.is_none();
        let genesis: &[u8] = if send_genesis { genesis } else { &[] };
        let len = u16::try_from(genesis.len())
            .ok()
            .filter(|_| genesis.len() <= MAX_GENESIS_BYTES)
            .ok_or(AdmissionError::MissingGenesis)?;
        if send_genesis && genesis.is_empty() {
            return Err(AdmissionError::MissingGenesis);
        }
        let tag = match (send_genesis, bind_secret) {
            (false, _) => None,
            (true, Some(secret)) => Some(bind_tag(secret, &t)),
            (true, None) => return Err(AdmissionError::NoBindSecret),
        };
        let sig_m = signing.sign(&member_signed(&t, &mailbox));
        let mut prove = Vec::with_capacity(PROVE_BASE_BYTES + genesis.len() + BIND_TAG_BYTES);
        prove.push(PROVE);
        prove.extend_from_slice(&signing.verifying_key().to_bytes());
        prove.extend_from_slice(&sig_m.to_bytes());
        prove.extend_from_slice(&len.to_be_bytes());
        prove.extend_from_slice(genesis);
        if let Some(tag) = tag {
            prove.extend_from_slice(tag.as_bytes());
        }
        self.state = DialerState::Proved { mailbox };
        Ok(prove)
    }

    /// The mailbox's verdict on our proof.
    pub fn on_verdict(&mut self, reply: &[u8]) -> Result<Welcome, AdmissionError> {
        if !matches!(self.state, DialerState::Proved { .. }) {
            return Err(AdmissionError::Malformed);
        }
        let verdict = match reply {
            [WELCOME, 0] => Ok(Welcome::Full),
            [WELCOME, 1] => Ok(Welcome::Provisional),
            [REFUSED, 0] => Err(AdmissionError::Refused),
            _ => Err(AdmissionError::Malformed),
        };
        if verdict.is_err() {
            self.state = DialerState::Done;
        }
        verdict
    }

    /// The mailbox key this connection proved, once its `Accept` was taken.
    pub fn mailbox(&self) -> Option<[u8; 32]> {
        match self.state {
            DialerState::Proved { mailbox } => Some(mailbox),
            _ => None,
        }
    }
}

/// The mailbox's side of admission, after it answered an `Open`.
pub struct MailboxListener {
    t: [u8; 32],
    mailbox: [u8; 32],
    bound: Option<CollectiveId>,
    used: bool,
}

impl MailboxListener {
    /// A member's `Open` on a connection from `remote` to us (`local`): returns the state and our
    /// `Accept`, signed with the mailbox key `signing`. `bound` is the collective this mailbox
    /// serves, `None` while unbound.
    pub fn on_open(
        signing: &SigningKey,
        bound: Option<CollectiveId>,
        local: PeerId,
        remote: PeerId,
        request: &[u8],
        nonce: [u8; 32],
    ) -> Result<(Self, Vec<u8>), AdmissionError> {
        if request.len() != OPEN_BYTES || request.first() != Some(&OPEN) {
            return Err(AdmissionError::Malformed);
        }
        let n_m: [u8; 32] = field(request, 1)?;
        let t = transcript(&remote, &local, &n_m, &nonce);
        let mailbox = signing.verifying_key().to_bytes();
        let sig = signing.sign(&mailbox_signed(&t, bound.as_ref()));
        let mut accept = Vec::with_capacity(ACCEPT_BYTES);
        accept.push(ACCEPT);
        accept.extend_from_slice(&nonce);
        accept.extend_from_slice(&mailbox);
        accept.push(u8::from(bound.is_some()));
        accept.extend_from_slice(&[0; 32]);
        accept.extend_from_slice(&sig.to_bytes());
        Ok((
            Self {
                t,
                mailbox,
                bound,
                used: false,
            },
            accept,
        ))
    }

    /// The member's `Prove`: the admission and our `Welcome` if its key signed this transcript
    /// and `is_current_member` admits it (a bound mailbox), or it sent a genesis record with a
    /// valid tag of our `bind_secret` (an unbound one). On error answer [`refused()`] and close
    /// the connection. One proof per `Open`: a second one is refused.
    pub fn on_prove(
        &mut self,
        request: &[u8],
        bind_secret: &[u8; 32],
        is_current_member: impl FnOnce(&MemberId) -> bool,
    ) -> Result<(Admission, Vec<u8>), AdmissionError> {
        if self.used {
            return Err(AdmissionError::Malformed);
        }
        self.used = true;
        if request.len() < PROVE_BASE_BYTES || request.first() != Some(&PROVE) {
            return Err(AdmissionError::Malformed);
        }
        let member = MemberId(field(request, 1)?);
        let sig: [u8; 64] = field(request, 33)?;
        let len = usize::from(u16::from_be_bytes(field(request, 97)?));
        let rest = request
            .get(PROVE_BASE_BYTES..)
            .ok_or(AdmissionError::Malformed)?;
        // `len` bytes of genesis record, then (only if there is one) the bind tag.
        let (genesis, tag) = match len {
            0 if rest.is_empty() => (rest, None),
            0 => return Err(AdmissionError::Malformed),
            _ if rest.len() == len + BIND_TAG_BYTES => {
                let (genesis, tag) = rest.split_at(len);
                (genesis, Some(field::<BIND_TAG_BYTES>(tag, 0)?))
            }
            _ => return Err(AdmissionError::Malformed),
        };
        if !verify(&member.0, &member_signed(&self.t, &self.mailbox), &sig) {
            return Err(AdmissionError::BadMemberSignature);
        }
        match self.bound {
            Some(_) => {
                if !genesis.is_empty() {
                    return Err(AdmissionError::Malformed);
                }
                if !is_current_member(&member) {
                    return Err(AdmissionError::NotMember);
                }
                Ok((Admission::Member(member), vec![WELCOME, 0]))
            }
            None => {
                if genesis.is_empty() || genesis.len() > MAX_GENESIS_BYTES {
                    return Err(AdmissionError::MissingGenesis);
                }
                // `blake3::Hash` compares in constant time.
                let valid = tag.is_some_and(|tag| {
                    blake3::Hash::from_bytes(tag) == bind_tag(bind_secret, &self.t)
                });
                if !valid {
                    return Err(AdmissionError::BadBindTag);
                }
                Ok((
                    Admission::Provisional {
                        member,
                        genesis: genesis.to_vec(),
                    },
                    vec![WELCOME, 1],
                ))
            }
        }
    }
}

/// The `Refused` answer to a proof the mailbox does not admit.
pub fn refused() -> Vec<u8> {
    vec![REFUSED, 0]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const COLLECTIVE: CollectiveId = CollectiveId([7; 32]);
    const GENESIS: &[u8] = b"signed genesis record";
    const BIND: [u8; 32] = [8; 32];

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    struct Run {
        dialer: MailboxDialer,
        listener: MailboxListener,
        accept: Vec<u8>,
        dp: PeerId,
        lp: PeerId,
    }

    fn open(mailbox: &SigningKey, bound: Option<CollectiveId>) -> Run {
        let (dp, lp) = (PeerId::random(), PeerId::random());
        let (dialer, open) = MailboxDialer::start(dp, lp, [1; 32]);
        assert_eq!(open.len(), OPEN_BYTES);
        let (listener, accept) =
            MailboxListener::on_open(mailbox, bound, lp, dp, &open, [2; 32]).unwrap();
        assert_eq!(accept.len(), ACCEPT_BYTES);
        Run {
            dialer,
            listener,
            accept,
            dp,
            lp,
        }
    }

    #[test]
    fn a_member_is_admitted_by_its_bound_mailbox() {
        let (mailbox, member) = (key(1), key(2));
        let mut r = open(&mailbox, Some(COLLECTIVE));
        let prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |m| {
                *m == mailbox.verifying_key().to_bytes()
            })
            .unwrap();
        // A bound mailbox does not get the genesis record: a fixed-size proof.
        assert_eq!(prove.len(), PROVE_BASE_BYTES);
        assert_eq!(r.dialer.mailbox(), Some(mailbox.verifying_key().to_bytes()));
        let mid = MemberId(member.verifying_key().to_bytes());
        let (admission, welcome) = r.listener.on_prove(&prove, &BIND, |m| *m == mid).unwrap();
        assert_eq!(admission, Admission::Member(mid));
        assert_eq!(welcome.len(), VERDICT_BYTES);
        assert_eq!(r.dialer.on_verdict(&welcome), Ok(Welcome::Full));
    }

    #[test]
    fn an_unbound_mailbox_admits_provisionally_with_the_genesis() {
        let (mailbox, member) = (key(1), key(2));
        let mut r = open(&mailbox, None);
        let prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        assert_eq!(
            prove.len(),
            PROVE_BASE_BYTES + GENESIS.len() + BIND_TAG_BYTES
        );
        // The roster check does not apply: the unbound mailbox has no roster yet.
        let (admission, welcome) = r.listener.on_prove(&prove, &BIND, |_| false).unwrap();
        assert_eq!(
            admission,
            Admission::Provisional {
                member: MemberId(member.verifying_key().to_bytes()),
                genesis: GENESIS.to_vec()
            }
        );
        assert_eq!(r.dialer.on_verdict(&welcome), Ok(Welcome::Provisional));
    }

    /// Finding 5 of the first review: a stranger's 33-byte `Open` must not learn which
    /// collective a mailbox serves (its envelope tag and gossip topic follow from the id, and
    /// it links the mailboxes of one collective), only whether it is bound.
    #[test]
    fn an_accept_says_nothing_to_a_stranger() {
        let (mailbox, member) = (key(1), key(2));
        let other = CollectiveId([9; 32]);
        let ours = open(&mailbox, Some(COLLECTIVE));
        let theirs = open(&mailbox, Some(other));
        let unbound = open(&mailbox, None);
        for (accept, id) in [(&ours.accept, COLLECTIVE), (&theirs.accept, other)] {
            assert_eq!(accept.len(), ACCEPT_BYTES);
            assert!(
                !accept.windows(32).any(|w| w == id.0),
                "the collective id is in the accept"
            );
            assert!(
                !accept.windows(16).any(|w| w == &id.0[..16]),
                "part of the collective id is in the accept"
            );
            assert_eq!(accept[65], 1, "bound");
        }
        assert_eq!(unbound.accept.len(), ACCEPT_BYTES);
        assert_eq!(unbound.accept[65], 0, "unbound");
        // Same keys, peers and nonces, two collectives: the frames differ only in the signature.
        assert_eq!(ours.accept[..98], theirs.accept[..98]);
        // The signature still covers the bound collective: its member is admitted, a member of
        // another collective is not.
        let mut d = MailboxDialer::start(ours.dp, ours.lp, [1; 32]).0;
        assert!(d
            .on_accept(
                &member,
                COLLECTIVE,
                GENESIS,
                Some(&BIND),
                &ours.accept,
                |_| true
            )
            .is_ok());
        let mut d = MailboxDialer::start(ours.dp, ours.lp, [1; 32]).0;
        assert_eq!(
            d.on_accept(&member, other, GENESIS, Some(&BIND), &ours.accept, |_| true),
            Err(AdmissionError::BadMailboxSignature)
        );
    }

    /// Finding 5 of the first review, part 2: the mailbox key is public (any `Accept` shows it)
    /// and a `ProposeMailbox` carries no proof of possession, so a stranger can found a
    /// collective naming it. Only the pairing code's bind secret lets a genesis in.
    #[test]
    fn an_unbound_mailbox_takes_a_genesis_only_with_its_bind_secret() {
        let (mailbox, member) = (key(1), key(2));
        // A member without the secret sends nothing to an unbound mailbox.
        let mut r = open(&mailbox, None);
        assert_eq!(
            r.dialer
                .on_accept(&member, COLLECTIVE, GENESIS, None, &r.accept, |_| true),
            Err(AdmissionError::NoBindSecret)
        );
        // But needs none for a bound one.
        let mut r = open(&mailbox, Some(COLLECTIVE));
        assert!(r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, None, &r.accept, |_| true)
            .is_ok());
        // A stranger with another secret: refused.
        let mut r = open(&mailbox, None);
        let prove = r
            .dialer
            .on_accept(
                &member,
                COLLECTIVE,
                GENESIS,
                Some(&[9; 32]),
                &r.accept,
                |_| true,
            )
            .unwrap();
        assert_eq!(
            r.listener.on_prove(&prove, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::BadBindTag)
        );
        // A genesis with the tag cut off, or zeroed: refused.
        let mut r = open(&mailbox, None);
        let mut prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        let good = prove.clone();
        prove.truncate(prove.len() - BIND_TAG_BYTES);
        assert_eq!(
            r.listener.on_prove(&prove, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::Malformed)
        );
        let (mut l, _) = MailboxListener::on_open(
            &mailbox,
            None,
            r.lp,
            r.dp,
            &MailboxDialer::start(r.dp, r.lp, [1; 32]).1,
            [2; 32],
        )
        .unwrap();
        let mut zeroed = good.clone();
        let n = zeroed.len();
        zeroed[n - BIND_TAG_BYTES..].fill(0);
        assert_eq!(
            l.on_prove(&zeroed, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::BadBindTag)
        );
        // A valid proof and tag replayed on another connection (another mailbox nonce): the
        // member's signature and the tag are both bound to the transcript.
        let (mut other, _) = MailboxListener::on_open(
            &mailbox,
            None,
            r.lp,
            r.dp,
            &MailboxDialer::start(r.dp, r.lp, [1; 32]).1,
            [3; 32],
        )
        .unwrap();
        assert!(other.on_prove(&good, &BIND, |_| true).is_err());
        // The holder of the secret, on its own connection: provisional.
        let mut r = open(&mailbox, None);
        let prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        assert!(matches!(
            r.listener.on_prove(&prove, &BIND, |_| false),
            Ok((Admission::Provisional { .. }, _))
        ));
    }

    #[test]
    fn a_member_sends_nothing_to_a_key_that_is_not_its_mailbox() {
        let (mailbox, member) = (key(1), key(2));
        let mut r = open(&mailbox, Some(COLLECTIVE));
        assert_eq!(
            r.dialer
                .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                    false
                }),
            Err(AdmissionError::NotOurMailbox)
        );
        assert_eq!(r.dialer.mailbox(), None);
        // And no second chance on the same dialer.
        assert_eq!(
            r.dialer
                .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                    true
                }),
            Err(AdmissionError::Malformed)
        );
    }

    #[test]
    fn a_mailbox_bound_elsewhere_is_refused_by_the_member() {
        let (mailbox, member) = (key(1), key(2));
        let mut r = open(&mailbox, Some(CollectiveId([9; 32])));
        // The accept does not say which collective; the signature over ours fails.
        assert_eq!(
            r.dialer
                .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                    true
                }),
            Err(AdmissionError::BadMailboxSignature)
        );
    }

    #[test]
    fn an_accept_with_a_forged_or_altered_signature_fails() {
        let (mailbox, member) = (key(1), key(2));
        // Another key's accept relabelled with the mailbox's key.
        let r = open(&key(3), Some(COLLECTIVE));
        let mut forged = r.accept.clone();
        forged[33..65].copy_from_slice(&mailbox.verifying_key().to_bytes());
        let mut d = MailboxDialer::start(r.dp, r.lp, [1; 32]).0;
        assert_eq!(
            d.on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &forged, |_| true),
            Err(AdmissionError::BadMailboxSignature)
        );
        // A bound accept rewritten to claim "unbound" (to get the genesis): signature fails.
        let r = open(&mailbox, Some(COLLECTIVE));
        let mut unbound = r.accept.clone();
        unbound[65] = 0;
        let mut d = MailboxDialer::start(r.dp, r.lp, [1; 32]).0;
        assert_eq!(
            d.on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &unbound, |_| {
                true
            }),
            Err(AdmissionError::BadMailboxSignature)
        );
    }

    #[test]
    fn an_accept_replayed_on_another_connection_fails() {
        let (mailbox, member) = (key(1), key(2));
        let r = open(&mailbox, Some(COLLECTIVE));
        // A relay (another listener peer id) replays the real mailbox's accept.
        let mut d = MailboxDialer::start(r.dp, PeerId::random(), [1; 32]).0;
        assert_eq!(
            d.on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            }),
            Err(AdmissionError::BadMailboxSignature)
        );
        // Another nonce on the member's side: another transcript.
        let mut d = MailboxDialer::start(r.dp, r.lp, [3; 32]).0;
        assert_eq!(
            d.on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            }),
            Err(AdmissionError::BadMailboxSignature)
        );
    }

    #[test]
    fn a_proof_replayed_on_another_connection_fails() {
        let (mailbox, member) = (key(1), key(2));
        let mid = MemberId(member.verifying_key().to_bytes());
        let mut r = open(&mailbox, Some(COLLECTIVE));
        let prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        // An attacker who saw the proof (a compromised relay) replays it on its own connection,
        // with the member's open nonce: the mailbox's fresh nonce and the peer ids differ.
        let attacker = PeerId::random();
        let (_, open) = MailboxDialer::start(attacker, r.lp, [1; 32]);
        let (mut other, _) =
            MailboxListener::on_open(&mailbox, Some(COLLECTIVE), r.lp, attacker, &open, [2; 32])
                .unwrap();
        assert_eq!(
            other.on_prove(&prove, &BIND, |m| *m == mid).map(|x| x.0),
            Err(AdmissionError::BadMemberSignature)
        );
        // Same peers, new mailbox nonce: still fails.
        let (mut again, _) =
            MailboxListener::on_open(&mailbox, Some(COLLECTIVE), r.lp, r.dp, &open, [5; 32])
                .unwrap();
        assert_eq!(
            again.on_prove(&prove, &BIND, |m| *m == mid).map(|x| x.0),
            Err(AdmissionError::BadMemberSignature)
        );
        // The right listener accepts it once, never twice.
        assert!(r.listener.on_prove(&prove, &BIND, |m| *m == mid).is_ok());
        assert_eq!(
            r.listener
                .on_prove(&prove, &BIND, |m| *m == mid)
                .map(|x| x.0),
            Err(AdmissionError::Malformed)
        );
    }

    #[test]
    fn a_proof_for_another_mailbox_key_fails() {
        let (mailbox, other_mailbox, member) = (key(1), key(3), key(2));
        let mut r = open(&mailbox, Some(COLLECTIVE));
        let prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        // A listener with another mailbox key but the same transcript (same peers and nonces).
        let (mut wrong, _) = MailboxListener::on_open(
            &other_mailbox,
            Some(COLLECTIVE),
            r.lp,
            r.dp,
            &MailboxDialer::start(r.dp, r.lp, [1; 32]).1,
            [2; 32],
        )
        .unwrap();
        assert_eq!(
            wrong.on_prove(&prove, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::BadMemberSignature)
        );
    }

    #[test]
    fn a_non_member_or_removed_member_is_refused() {
        let (mailbox, member) = (key(1), key(2));
        let mut r = open(&mailbox, Some(COLLECTIVE));
        let prove = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        assert_eq!(
            r.listener.on_prove(&prove, &BIND, |_| false).map(|x| x.0),
            Err(AdmissionError::NotMember)
        );
        assert_eq!(refused().len(), VERDICT_BYTES);
        assert_eq!(
            r.dialer.on_verdict(&refused()),
            Err(AdmissionError::Refused)
        );
    }

    #[test]
    fn a_proof_signed_by_another_key_than_it_names_fails() {
        let (mailbox, member, impostor) = (key(1), key(2), key(5));
        let mut r = open(&mailbox, Some(COLLECTIVE));
        let mut prove = r
            .dialer
            .on_accept(
                &impostor,
                COLLECTIVE,
                GENESIS,
                Some(&BIND),
                &r.accept,
                |_| true,
            )
            .unwrap();
        // The impostor names a real member's key next to its own signature.
        prove[1..33].copy_from_slice(&member.verifying_key().to_bytes());
        assert_eq!(
            r.listener.on_prove(&prove, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::BadMemberSignature)
        );
    }

    #[test]
    fn an_unbound_mailbox_needs_a_genesis_and_a_bound_one_takes_none() {
        let (mailbox, member) = (key(1), key(2));
        let mut r = open(&mailbox, None);
        assert_eq!(
            r.dialer
                .on_accept(&member, COLLECTIVE, &[], Some(&BIND), &r.accept, |_| true),
            Err(AdmissionError::MissingGenesis)
        );
        let big = vec![0u8; MAX_GENESIS_BYTES + 1];
        let mut r = open(&mailbox, None);
        assert_eq!(
            r.dialer
                .on_accept(&member, COLLECTIVE, &big, Some(&BIND), &r.accept, |_| true),
            Err(AdmissionError::MissingGenesis)
        );
        // A proof with no genesis to an unbound mailbox, made by hand.
        let mut r = open(&mailbox, Some(COLLECTIVE));
        let bare = r
            .dialer
            .on_accept(&member, COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        let (mut unbound, _) = MailboxListener::on_open(
            &mailbox,
            None,
            r.lp,
            r.dp,
            &MailboxDialer::start(r.dp, r.lp, [1; 32]).1,
            [2; 32],
        )
        .unwrap();
        // Same transcript (same nonces and peers) but the signature bound no genesis in; the
        // unbound mailbox still refuses a proof without one.
        assert_eq!(
            unbound.on_prove(&bare, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::MissingGenesis)
        );
        // And a bound mailbox refuses a proof that carries one.
        let mut with_genesis = bare.clone();
        let len = u16::try_from(GENESIS.len()).unwrap().to_be_bytes();
        with_genesis[97..99].copy_from_slice(&len);
        with_genesis.extend_from_slice(GENESIS);
        assert_eq!(
            r.listener
                .on_prove(&with_genesis, &BIND, |_| true)
                .map(|x| x.0),
            Err(AdmissionError::Malformed)
        );
    }

    #[test]
    fn malformed_frames_are_refused_without_panicking() {
        let mailbox = key(1);
        let junk: [&[u8]; 8] = [
            &[],
            &[OPEN],
            &[OPEN; OPEN_BYTES + 1],
            &[ACCEPT; ACCEPT_BYTES],
            &[PROVE; PROVE_BASE_BYTES - 1],
            &[PROVE; PROVE_BASE_BYTES + 3],
            &[WELCOME],
            &[0xff; 512],
        ];
        for j in junk {
            if j.len() != OPEN_BYTES || j.first() != Some(&OPEN) {
                assert!(MailboxListener::on_open(
                    &mailbox,
                    None,
                    PeerId::random(),
                    PeerId::random(),
                    j,
                    [0; 32]
                )
                .is_err());
            }
            let mut r = open(&mailbox, Some(COLLECTIVE));
            assert!(r.listener.on_prove(j, &BIND, |_| true).is_err());
            let mut d = MailboxDialer::start(r.dp, r.lp, [1; 32]).0;
            assert!(d
                .on_accept(&key(2), COLLECTIVE, GENESIS, Some(&BIND), j, |_| true)
                .is_err());
            // A verdict before any accept is out of order.
            let mut d = MailboxDialer::start(r.dp, r.lp, [1; 32]).0;
            assert_eq!(d.on_verdict(&[WELCOME, 0]), Err(AdmissionError::Malformed));
        }
        // An accept whose bound flag is neither 0 nor 1, or whose reserved bytes are not zero.
        for (flag, fill) in [(2u8, 0u8), (0, 1), (1, 7)] {
            let r = open(&mailbox, Some(COLLECTIVE));
            let mut bad = r.accept.clone();
            bad[65] = flag;
            bad[66..98].fill(fill);
            let mut d = MailboxDialer::start(r.dp, r.lp, [1; 32]).0;
            assert_eq!(
                d.on_accept(&key(2), COLLECTIVE, GENESIS, Some(&BIND), &bad, |_| true),
                Err(AdmissionError::Malformed)
            );
        }
        // A genesis length that disagrees with the bytes sent.
        let mut r = open(&mailbox, None);
        let mut prove = r
            .dialer
            .on_accept(&key(2), COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        prove.pop();
        assert_eq!(
            r.listener.on_prove(&prove, &BIND, |_| true).map(|x| x.0),
            Err(AdmissionError::Malformed)
        );
        // Unknown verdicts.
        let mut r = open(&mailbox, Some(COLLECTIVE));
        r.dialer
            .on_accept(&key(2), COLLECTIVE, GENESIS, Some(&BIND), &r.accept, |_| {
                true
            })
            .unwrap();
        assert_eq!(
            r.dialer.on_verdict(&[WELCOME, 2]),
            Err(AdmissionError::Malformed)
        );
    }

    #[test]
    fn sizes_fit_the_codec_caps() {
        assert_eq!(OPEN_BYTES, 33);
        assert_eq!(ACCEPT_BYTES, 162);
        assert_eq!(PROVE_BASE_BYTES, 99);
        assert!(MAX_MAILBOX_RESPONSE_BYTES >= ACCEPT_BYTES.max(VERDICT_BYTES));
        assert!(
            MAX_MAILBOX_REQUEST_BYTES
                >= OPEN_BYTES.max(PROVE_BASE_BYTES + MAX_GENESIS_BYTES + BIND_TAG_BYTES)
        );
    }
}
