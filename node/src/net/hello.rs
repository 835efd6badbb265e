//! `/lookout/hello/3`: the mutual membership proof that runs inside the Noise channel before any
//! collective protocol (see `docs/PROTOCOL.md`, "Hello: proving membership to an unlinkable
//! peer").
//!
//! Transport keys are fresh for every run, so the Noise handshake says nothing about who is
//! behind a connection. The hello then runs two request-response rounds on that connection:
//!
//! 1. dialer → listener `Open { nonce_d, tag_d }`; listener → dialer `Accept { nonce_l, tag_l }`.
//!    Each tag is a BLAKE3 MAC under a key derived from the collective's hello secret (from the
//!    collective secret every member's device holds, never the genesis record a mailbox holds
//!    too) over a transcript naming both transport peer ids and
//!    the nonces so far. Nobody without the secret can make or check one; a tag seen elsewhere
//!    names other peer ids or nonces.
//! 2. dialer → listener `Prove(seal(member_d ‖ sig_d))`; the listener checks that member is on
//!    its current roster and only then answers `Prove(seal(member_l ‖ sig_l))`. Each signature
//!    is the member's Ed25519 key over the whole transcript (both peer ids, both nonces; the
//!    listener's also names the dialer's member id); the seal is ChaCha20-Poly1305 under a key
//!    derived from the secret and the transcript.
//!
//! A peer that fails any check gets no answer at all (the caller closes the connection).
//! Everything here is pure: nonces come in as arguments.

use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, KeyInit};
use ed25519_dalek::{Signature, Signer, SigningKey};
use libp2p::{PeerId, StreamProtocol};
use lookout_protocol::MemberId;
use zeroize::Zeroizing;

/// The protocol name of the hello exchange.
pub const HELLO_PROTOCOL: StreamProtocol = StreamProtocol::new("/lookout/hello/3");

/// Largest hello message either way, in bytes.
pub(crate) const MAX_HELLO_BYTES: usize = 256;

const EPOCH_SECRET_CONTEXT: &str = "lookout hello epoch secret v1";
/// How many of the newest epoch keys a listener accepts besides the genesis secret (a member
/// lagging behind a rotation still proves itself with the one before).
pub(crate) const MAX_EPOCH_SECRETS: usize = 4;
const TRANSCRIPT_CONTEXT: &str = "lookout hello transcript v1";
const DIALER_TAG_CONTEXT: &str = "lookout hello dialer tag v1";
const LISTENER_TAG_CONTEXT: &str = "lookout hello listener tag v1";
const SEAL_CONTEXT: &str = "lookout hello seal v1";
const DIALER_SIG_CONTEXT: &[u8] = b"lookout hello dialer v1";
const LISTENER_SIG_CONTEXT: &[u8] = b"lookout hello listener v1";

const OPEN: u8 = 1;
const ACCEPT: u8 = 2;
const PROVE: u8 = 3;
/// Plaintext of a proof: member id and signature.
const PROOF_BYTES: usize = 32 + 64;
/// Sealed proof: plaintext and the Poly1305 tag.
const SEALED_BYTES: usize = PROOF_BYTES + 16;
const NONCE_BYTES: usize = 32;
const TAG_BYTES: usize = 32;

/// Why a hello message was refused. The peer gets no answer either way; this is for the logs
/// (at debug level) and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// The message has the wrong type or length.
    #[error("malformed hello message")]
    Malformed,
    /// A tag did not verify: the peer does not hold this collective's secret, or the message
    /// was made for another connection.
    #[error("the peer did not prove it holds the collective's secret")]
    BadTag,
    /// The sealed proof did not open or its signature did not verify.
    #[error("the peer's identity proof is invalid")]
    BadProof,
    /// The proof is valid but its member may not connect (not on the roster, removed).
    #[error("the peer is not a current member")]
    NotAllowed,
}

/// A hello secret: derived from the collective secret (`lookout hello secret v2`, see
/// [`lookout_protocol::text::CollectiveSecret::hello_secret`]), which every member ever
/// admitted (and whoever saw an invite code) holds for good but a mailbox does not, or from an
/// epoch key, which only the members of that epoch hold.
#[derive(Clone)]
pub(crate) struct HelloSecret(Zeroizing<[u8; 32]>);

impl HelloSecret {
    /// The collective's hello secret, as [`CollectiveSecret::hello_secret`] derives it.
    ///
    /// [`CollectiveSecret::hello_secret`]: lookout_protocol::text::CollectiveSecret::hello_secret
    pub(crate) fn from_collective(hello_secret: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*hello_secret))
    }

    /// The secret of the epoch whose raw key is `key`.
    pub(crate) fn from_epoch_key(key: &[u8; 32]) -> Self {
        Self(Zeroizing::new(blake3::derive_key(
            EPOCH_SECRET_CONTEXT,
            key,
        )))
    }

    fn subkey(&self, context: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(context, self.0.as_slice()))
    }
}

/// Which secret the dialer keys the hello's first step with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keying {
    /// The genesis secret: for addresses the user gave, the invite's, and members' recent
    /// announcements (a member lagging behind a rotation still reaches those).
    Genesis,
    /// The newest epoch's secret, which members removed before that epoch lack: for peers
    /// nobody vouched for (discovered by mDNS), so that a former member advertising itself
    /// there cannot make a member name itself.
    NewestEpoch,
}

/// What a node needs to run the hello: the collective's secrets and the member's signing key.
pub struct Credentials {
    secret: HelloSecret,
    /// Secrets of the newest epochs whose key this member holds, newest (the write epoch)
    /// first; at most [`MAX_EPOCH_SECRETS`].
    epochs: Vec<HelloSecret>,
    signing: SigningKey,
}

impl Credentials {
    /// Credentials from the collective's hello secret
    /// ([`lookout_protocol::text::CollectiveSecret::hello_secret`]) and the member's Ed25519
    /// seed.
    pub fn new(hello_secret: &[u8; 32], ed25519_seed: &[u8; 32]) -> Self {
        Self {
            secret: HelloSecret::from_collective(hello_secret),
            epochs: Vec::new(),
            signing: SigningKey::from_bytes(ed25519_seed),
        }
    }

    /// Replace the epoch keys the hello may use: raw keys, newest first (only the first
    /// [`MAX_EPOCH_SECRETS`] are kept).
    pub(crate) fn set_epoch_keys<'a>(&mut self, keys: impl IntoIterator<Item = &'a [u8; 32]>) {
        self.epochs = keys
            .into_iter()
            .take(MAX_EPOCH_SECRETS)
            .map(HelloSecret::from_epoch_key)
            .collect();
    }

    /// The secret a dialer uses with `keying`; `None` if it needs an epoch key and holds none.
    fn dialer_secret(&self, keying: Keying) -> Option<&HelloSecret> {
        match keying {
            Keying::Genesis => Some(&self.secret),
            Keying::NewestEpoch => self.epochs.first(),
        }
    }

    /// The member these credentials prove.
    pub fn member(&self) -> MemberId {
        MemberId(self.signing.verifying_key().to_bytes())
    }
}

/// The transcript of one hello: both transport peer ids and the nonces so far.
#[derive(Clone)]
struct Transcript {
    dialer: PeerId,
    listener: PeerId,
    nonce_d: [u8; NONCE_BYTES],
}

impl Transcript {
    fn hash(&self, nonce_l: Option<&[u8; NONCE_BYTES]>) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key(TRANSCRIPT_CONTEXT);
        for part in [self.dialer.to_bytes(), self.listener.to_bytes()] {
            h.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(&part);
        }
        h.update(&self.nonce_d);
        match nonce_l {
            Some(n) => {
                h.update(&[1]);
                h.update(n);
            }
            None => {
                h.update(&[0]);
            }
        }
        *h.finalize().as_bytes()
    }
}

fn tag(secret: &HelloSecret, context: &str, transcript: &[u8; 32]) -> blake3::Hash {
    blake3::keyed_hash(&secret.subkey(context), transcript)
}

fn cipher(secret: &HelloSecret, transcript: &[u8; 32]) -> ChaCha20Poly1305 {
    let key =
        Zeroizing::new(*blake3::keyed_hash(&secret.subkey(SEAL_CONTEXT), transcript).as_bytes());
    ChaCha20Poly1305::new(key.as_slice().into())
}

/// Nonce of the AEAD: 0 for the dialer's proof, 1 for the listener's (one key per hello).
fn aead_nonce(listener: bool) -> chacha20poly1305::Nonce {
    let mut n = [0u8; 12];
    n[0] = u8::from(listener);
    n.into()
}

fn seal(
    secret: &HelloSecret,
    transcript: &[u8; 32],
    listener: bool,
    member: &MemberId,
    signature: &Signature,
) -> Vec<u8> {
    let mut plain = Zeroizing::new(Vec::with_capacity(PROOF_BYTES));
    plain.extend_from_slice(&member.0);
    plain.extend_from_slice(&signature.to_bytes());
    let sealed = cipher(secret, transcript)
        .encrypt(&aead_nonce(listener), plain.as_slice())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + SEALED_BYTES);
    out.push(PROVE);
    out.extend_from_slice(&sealed);
    out
}

fn open(
    secret: &HelloSecret,
    transcript: &[u8; 32],
    listener: bool,
    message: &[u8],
) -> Result<(MemberId, Signature), HelloError> {
    let body = match message.split_first() {
        Some((&PROVE, body)) if body.len() == SEALED_BYTES => body,
        _ => return Err(HelloError::Malformed),
    };
    let plain = Zeroizing::new(
        cipher(secret, transcript)
            .decrypt(&aead_nonce(listener), body)
            .map_err(|_| HelloError::BadProof)?,
    );
    let member: [u8; 32] = plain
        .get(..32)
        .and_then(|b| b.try_into().ok())
        .ok_or(HelloError::BadProof)?;
    let signature: [u8; 64] = plain
        .get(32..PROOF_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(HelloError::BadProof)?;
    Ok((MemberId(member), Signature::from_bytes(&signature)))
}

fn signed(context: &[u8], transcript: &[u8; 32], dialer_member: Option<&MemberId>) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + 64);
    m.extend_from_slice(context);
    m.extend_from_slice(transcript);
    if let Some(d) = dialer_member {
        m.extend_from_slice(&d.0);
    }
    m
}

fn verify(member: &MemberId, message: &[u8], signature: &Signature) -> Result<(), HelloError> {
    // The one signature rule (ZIP-215, small-order keys refused): lookout_protocol::sig.
    if lookout_protocol::sig::verify_message(&member.0, message, &signature.to_bytes()) {
        Ok(())
    } else {
        Err(HelloError::BadProof)
    }
}

fn split_pair(message: &[u8], kind: u8) -> Result<([u8; 32], [u8; 32]), HelloError> {
    match message.split_first() {
        Some((&k, body)) if k == kind && body.len() == NONCE_BYTES + TAG_BYTES => {
            let nonce = body[..NONCE_BYTES]
                .try_into()
                .map_err(|_| HelloError::Malformed)?;
            let tag = body[NONCE_BYTES..]
                .try_into()
                .map_err(|_| HelloError::Malformed)?;
            Ok((nonce, tag))
        }
        _ => Err(HelloError::Malformed),
    }
}

fn pair(kind: u8, nonce: &[u8; 32], tag: &blake3::Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + NONCE_BYTES + TAG_BYTES);
    out.push(kind);
    out.extend_from_slice(nonce);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// The dialer's side of a hello.
pub struct Dialer {
    state: DialerState,
    secret: HelloSecret,
}

enum DialerState {
    /// `Open` sent; waiting for `Accept`.
    Opened(Transcript),
    /// Our proof sent; waiting for the listener's.
    Proved([u8; 32]),
}

impl Dialer {
    /// Start a hello on a connection we dialled: returns the state and the `Open` request.
    /// The first step is keyed with the genesis secret ([`Keying::Genesis`]).
    pub fn start(
        creds: &Credentials,
        local: PeerId,
        remote: PeerId,
        nonce: [u8; NONCE_BYTES],
    ) -> (Self, Vec<u8>) {
        let secret = creds.secret.clone();
        Self::start_with_secret(secret, local, remote, nonce)
    }

    /// Start a hello keyed as `keying` says; `None` (send nothing, hang up) if that needs an
    /// epoch key and this member holds none.
    pub(crate) fn start_keyed(
        creds: &Credentials,
        keying: Keying,
        local: PeerId,
        remote: PeerId,
        nonce: [u8; NONCE_BYTES],
    ) -> Option<(Self, Vec<u8>)> {
        let secret = creds.dialer_secret(keying)?.clone();
        Some(Self::start_with_secret(secret, local, remote, nonce))
    }

    fn start_with_secret(
        secret: HelloSecret,
        local: PeerId,
        remote: PeerId,
        nonce: [u8; NONCE_BYTES],
    ) -> (Self, Vec<u8>) {
        let transcript = Transcript {
            dialer: local,
            listener: remote,
            nonce_d: nonce,
        };
        let t = tag(&secret, DIALER_TAG_CONTEXT, &transcript.hash(None));
        (
            Self {
                state: DialerState::Opened(transcript),
                secret,
            },
            pair(OPEN, &nonce, &t),
        )
    }

    /// The listener's answer to `Open`: if it proves the secret, returns our sealed proof to
    /// send next. Only now does anything about our member leave this node.
    pub fn on_accept(&mut self, creds: &Credentials, reply: &[u8]) -> Result<Vec<u8>, HelloError> {
        let DialerState::Opened(transcript) = &self.state else {
            return Err(HelloError::Malformed);
        };
        let (nonce_l, their_tag) = split_pair(reply, ACCEPT)?;
        let full = transcript.hash(Some(&nonce_l));
        if tag(&self.secret, LISTENER_TAG_CONTEXT, &full) != blake3::Hash::from(their_tag) {
            return Err(HelloError::BadTag);
        }
        let signature = creds.signing.sign(&signed(DIALER_SIG_CONTEXT, &full, None));
        let message = seal(&self.secret, &full, false, &creds.member(), &signature);
        self.state = DialerState::Proved(full);
        Ok(message)
    }

    /// The listener's proof: the member behind the listener, if the proof is valid and
    /// `allowed` admits that member.
    pub fn on_proof(
        &self,
        creds: &Credentials,
        reply: &[u8],
        allowed: impl FnOnce(&MemberId) -> bool,
    ) -> Result<MemberId, HelloError> {
        let DialerState::Proved(full) = &self.state else {
            return Err(HelloError::Malformed);
        };
        let (member, signature) = open(&self.secret, full, true, reply)?;
        verify(
            &member,
            &signed(LISTENER_SIG_CONTEXT, full, Some(&creds.member())),
            &signature,
        )?;
        if member == creds.member() || !allowed(&member) {
            return Err(HelloError::NotAllowed);
        }
        Ok(member)
    }
}

/// The listener's side of a hello.
pub struct Listener {
    full: [u8; 32],
    /// The secret the dialer keyed its `Open` with (genesis or one of the newest epochs').
    secret: HelloSecret,
}

impl Listener {
    /// A dialer's `Open`: if its tag proves the genesis secret or one of the newest epochs'
    /// secrets, returns the state and our `Accept` (keyed with the same secret).
    pub fn on_open(
        creds: &Credentials,
        local: PeerId,
        remote: PeerId,
        request: &[u8],
        nonce: [u8; NONCE_BYTES],
    ) -> Result<(Self, Vec<u8>), HelloError> {
        let (nonce_d, their_tag) = split_pair(request, OPEN)?;
        let transcript = Transcript {
            dialer: remote,
            listener: local,
            nonce_d,
        };
        let t1 = transcript.hash(None);
        let their_tag = blake3::Hash::from(their_tag);
        let secret = std::iter::once(&creds.secret)
            .chain(&creds.epochs)
            .find(|s| tag(s, DIALER_TAG_CONTEXT, &t1) == their_tag)
            .ok_or(HelloError::BadTag)?
            .clone();
        let full = transcript.hash(Some(&nonce));
        let t = tag(&secret, LISTENER_TAG_CONTEXT, &full);
        Ok((Self { full, secret }, pair(ACCEPT, &nonce, &t)))
    }

    /// The dialer's proof: if valid and `allowed` admits its member, returns that member and
    /// our own sealed proof. A member not admitted learns nothing about ours.
    pub fn on_proof(
        &self,
        creds: &Credentials,
        request: &[u8],
        allowed: impl FnOnce(&MemberId) -> bool,
    ) -> Result<(MemberId, Vec<u8>), HelloError> {
        let (member, signature) = open(&self.secret, &self.full, false, request)?;
        verify(
            &member,
            &signed(DIALER_SIG_CONTEXT, &self.full, None),
            &signature,
        )?;
        if member == creds.member() || !allowed(&member) {
            return Err(HelloError::NotAllowed);
        }
        let ours = creds
            .signing
            .sign(&signed(LISTENER_SIG_CONTEXT, &self.full, Some(&member)));
        Ok((
            member,
            seal(&self.secret, &self.full, true, &creds.member(), &ours),
        ))
    }
}

/// The hello codec: one length-prefixed frame each way, at most [`MAX_HELLO_BYTES`].
pub type HelloCodec = super::codec::FrameCodec<MAX_HELLO_BYTES, MAX_HELLO_BYTES>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn test_secret(collective: &[u8]) -> HelloSecret {
        let secret = lookout_protocol::text::CollectiveSecret::from_bytes(
            *blake3::hash(collective).as_bytes(),
        );
        HelloSecret::from_collective(&secret.hello_secret())
    }

    fn creds(collective: &[u8], seed: u8) -> Credentials {
        let secret = lookout_protocol::text::CollectiveSecret::from_bytes(
            *blake3::hash(collective).as_bytes(),
        );
        Credentials::new(&secret.hello_secret(), &[seed; 32])
    }

    /// Runs a whole hello; returns what each side concluded.
    fn run(
        d: &Credentials,
        l: &Credentials,
        dp: PeerId,
        lp: PeerId,
    ) -> Result<(MemberId, MemberId), HelloError> {
        let (mut dialer, open) = Dialer::start(d, dp, lp, [1; 32]);
        let (listener, accept) = Listener::on_open(l, lp, dp, &open, [2; 32])?;
        let proof = dialer.on_accept(d, &accept)?;
        let (seen_by_l, reply) = listener.on_proof(l, &proof, |_| true)?;
        let seen_by_d = dialer.on_proof(d, &reply, |_| true)?;
        Ok((seen_by_l, seen_by_d))
    }

    #[test]
    fn members_of_one_collective_prove_each_other() {
        let (a, b) = (creds(b"genesis", 1), creds(b"genesis", 2));
        let (dp, lp) = (PeerId::random(), PeerId::random());
        assert_eq!(run(&a, &b, dp, lp), Ok((a.member(), b.member())));
    }

    #[test]
    fn an_outsider_gets_no_accept_and_sees_no_identity() {
        let member = creds(b"genesis", 1);
        let outsider = creds(b"other", 2);
        let (dp, lp) = (PeerId::random(), PeerId::random());
        // Outsider dials: refused at the first message.
        let (_, open) = Dialer::start(&outsider, dp, lp, [1; 32]);
        assert!(matches!(
            Listener::on_open(&member, lp, dp, &open, [2; 32]),
            Err(HelloError::BadTag)
        ));
        // Outsider listens (a stale address): its accept cannot carry a valid tag, so the
        // member never sends a proof.
        let (mut dialer, open) = Dialer::start(&member, dp, lp, [1; 32]);
        assert!(Listener::on_open(&outsider, lp, dp, &open, [2; 32]).is_err());
        let accept = pair(ACCEPT, &[2; 32], &blake3::hash(b"a guess"));
        assert_eq!(dialer.on_accept(&member, &accept), Err(HelloError::BadTag));
        // The open message itself is a nonce and a MAC: nothing the outsider can tie to the
        // member (a different run of the same member gives unrelated bytes).
        let (_, again) = Dialer::start(&member, PeerId::random(), lp, [3; 32]);
        assert_ne!(open[33..], again[33..]);
    }

    #[test]
    fn a_replayed_or_relayed_open_fails() {
        let (a, b) = (creds(b"genesis", 1), creds(b"genesis", 2));
        let (dp, lp, mallory) = (PeerId::random(), PeerId::random(), PeerId::random());
        // An open made for a connection between dp and mallory, replayed by mallory to lp.
        let (_, open) = Dialer::start(&a, dp, mallory, [1; 32]);
        assert!(matches!(
            Listener::on_open(&b, lp, mallory, &open, [2; 32]),
            Err(HelloError::BadTag)
        ));
    }

    #[test]
    fn a_proof_made_for_another_connection_fails() {
        let (a, b) = (creds(b"genesis", 1), creds(b"genesis", 2));
        let (dp, lp) = (PeerId::random(), PeerId::random());
        let (mut d1, open1) = Dialer::start(&a, dp, lp, [1; 32]);
        let (_, accept1) = Listener::on_open(&b, lp, dp, &open1, [2; 32]).unwrap();
        let proof1 = d1.on_accept(&a, &accept1).unwrap();
        // The same open again (same nonce): the listener's fresh nonce changes the transcript.
        let (l2, _) = Listener::on_open(&b, lp, dp, &open1, [9; 32]).unwrap();
        assert_eq!(
            l2.on_proof(&b, &proof1, |_| true).map(|x| x.0),
            Err(HelloError::BadProof)
        );
    }

    #[test]
    fn a_listener_names_itself_only_to_an_allowed_dialer() {
        let (a, b) = (creds(b"genesis", 1), creds(b"genesis", 2));
        let (dp, lp) = (PeerId::random(), PeerId::random());
        let (mut dialer, open) = Dialer::start(&a, dp, lp, [1; 32]);
        let (listener, accept) = Listener::on_open(&b, lp, dp, &open, [2; 32]).unwrap();
        let proof = dialer.on_accept(&a, &accept).unwrap();
        assert_eq!(
            listener.on_proof(&b, &proof, |_| false).map(|x| x.0),
            Err(HelloError::NotAllowed)
        );
        // And the dialer refuses a listener it does not admit.
        let (seen, reply) = listener.on_proof(&b, &proof, |_| true).unwrap();
        assert_eq!(seen, a.member());
        assert_eq!(
            dialer.on_proof(&a, &reply, |_| false),
            Err(HelloError::NotAllowed)
        );
    }

    /// A member dialling a peer discovered by mDNS keys the first step with the newest epoch's
    /// secret: a former member (genesis and the epochs before its removal) listening there
    /// cannot answer, so the member never names itself. A member lagging one rotation behind
    /// still proves itself to a current one.
    #[test]
    fn a_former_member_cannot_answer_an_epoch_keyed_hello() {
        let (old_epoch, new_epoch) = ([10u8; 32], [11u8; 32]);
        let mut member = creds(b"genesis", 1);
        member.set_epoch_keys([&new_epoch, &old_epoch]);
        let mut former = creds(b"genesis", 2);
        former.set_epoch_keys([&old_epoch]);
        let (dp, lp) = (PeerId::random(), PeerId::random());

        // Control, the old behaviour: keyed with the genesis secret, the former member passes
        // step 1 and would receive the member's identity proof.
        let (mut genesis_dialer, open) = Dialer::start(&member, dp, lp, [1; 32]);
        let (_, accept) = Listener::on_open(&former, lp, dp, &open, [2; 32]).unwrap();
        assert!(genesis_dialer.on_accept(&member, &accept).is_ok());

        let (mut dialer, open) =
            Dialer::start_keyed(&member, Keying::NewestEpoch, dp, lp, [1; 32]).unwrap();
        assert!(matches!(
            Listener::on_open(&former, lp, dp, &open, [2; 32]),
            Err(HelloError::BadTag)
        ));
        // Whatever it answers, keyed with what it holds, the member sends nothing more.
        for secret in [
            test_secret(b"genesis"),
            HelloSecret::from_epoch_key(&old_epoch),
        ] {
            let full = Transcript {
                dialer: dp,
                listener: lp,
                nonce_d: [1; 32],
            }
            .hash(Some(&[2; 32]));
            let accept = pair(ACCEPT, &[2; 32], &tag(&secret, LISTENER_TAG_CONTEXT, &full));
            assert_eq!(dialer.on_accept(&member, &accept), Err(HelloError::BadTag));
        }
        // A member without any epoch key does not start an epoch-keyed hello at all.
        assert!(
            Dialer::start_keyed(&creds(b"genesis", 3), Keying::NewestEpoch, dp, lp, [1; 32])
                .is_none()
        );

        // A member lagging behind the rotation (old epoch only) dials a current member: the
        // listener still accepts the older epoch's secret, and the hello completes.
        let (mut lagging_dialer, open) =
            Dialer::start_keyed(&former, Keying::NewestEpoch, dp, lp, [1; 32]).unwrap();
        let (listener, accept) = Listener::on_open(&member, lp, dp, &open, [2; 32]).unwrap();
        let proof = lagging_dialer.on_accept(&former, &accept).unwrap();
        let (seen, reply) = listener.on_proof(&member, &proof, |_| true).unwrap();
        assert_eq!(seen, former.member());
        assert_eq!(
            lagging_dialer.on_proof(&former, &reply, |_| true),
            Ok(member.member())
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let b = creds(b"genesis", 2);
        for junk in [
            &[][..],
            &[1][..],
            &[1; 65][..],
            &[3; 113][..],
            &[0xff; 256][..],
        ] {
            assert!(
                Listener::on_open(&b, PeerId::random(), PeerId::random(), junk, [0; 32]).is_err()
            );
            let l = Listener {
                full: [0; 32],
                secret: test_secret(b"genesis"),
            };
            assert!(l.on_proof(&b, junk, |_| true).is_err());
        }
    }
}
