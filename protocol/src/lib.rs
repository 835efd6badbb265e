//! The Lookout protocol core: every message, cryptographic construction and trust rule of a
//! Lookout collective, as pure code.
//!
//! Lookout is a peer-to-peer safety alert network for sex worker collectives. This crate does no
//! I/O: no network, no disk, no clock and no operating-system randomness. Time comes in as a
//! `now: u64` (seconds since the Unix epoch) and randomness as an `R: RngCore + CryptoRng`, so
//! every rule is testable deterministically and a phone app can embed the same core.
//!
//! - [`identity`]: member keys (Ed25519 for signing, X25519 for receiving epoch keys).
//! - [`membership`]: the genesis record, signed membership ops, and the resolver that turns any
//!   set of ops into the same roster on every replica.
//! - [`epoch`]: group key epochs, sealed to each member with HPKE, rotated on every removal.
//! - [`content`] and [`envelope`]: alerts and other posts, signed then encrypted and padded.
//! - [`reconcile`]: range-based set reconciliation for catch-up sync.
//! - [`replica`]: the rules for taking in a peer's item, as a state machine returning effects.
//! - [`mailbox`]: a mailbox's pairing code (its key, addresses and proof of possession).
//! - [`passphrase`]: sealing secrets under a passphrase (Argon2id + XChaCha20-Poly1305).
//!
//! ```
//! use lookout_protocol::{content::*, envelope, epoch::*, identity::Identity, membership::*};
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! let mut rng = ChaCha20Rng::seed_from_u64(7); // a real node passes OsRng
//! let now = 1_790_000_000;
//! let founder = Identity::generate(&mut rng);
//! let secret = lookout_protocol::text::CollectiveSecret::generate(&mut rng); // goes in invites
//! let genesis = SignedGenesis::create(
//!     &founder, &secret, "Night Shift", "Ana", Policy::default(), now, &mut rng)?;
//! let log = MembershipLog::new(genesis.clone());
//! assert!(log.roster().is_moderator(&founder.member_id()));
//!
//! // The founder rotates in the first group key and posts an alert under it.
//! let key = EpochKey::generate(&mut rng);
//! let delivery = KeyDelivery::create(&founder, genesis.id(), &key, DeliveryKind::Rotation,
//!     log.roster().heads().to_vec(), now, &[founder.public()], &mut rng)?;
//! let mut book = EpochBook::new();
//! book.record(&delivery, &founder, log.roster())?;
//! let alert = Alert {
//!     category: Category::Violence, severity: Severity::High,
//!     description: "Became violent when asked to pay".into(),
//!     identifiers: Identifiers::default(), area: "Station Road".into(),
//!     incident_time: None, language: "en".into(), on_behalf: false,
//! };
//! let body = envelope::InnerBody {
//!     collective: genesis.id(), epoch: key.id(), author: founder.member_id(), seq: 1,
//!     heads: log.roster().heads().to_vec(), timestamp: now, expires: now + 86_400,
//!     content: Content::Alert(alert),
//! };
//! let sealed = envelope::seal(&founder, &key, body, &mut rng)?;
//!
//! // Any member holding the epoch key opens it; the rules then authorize it.
//! let opened = envelope::open(&sealed.bytes, genesis.id(), |id| book.key(id))?;
//! let info = book.info(&key.id()).unwrap();
//! let verified = opened.authorize(log.roster(), log.roster(), info, now, 0)?;
//! assert_eq!(verified.author(), founder.member_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod codec;
pub mod content;
pub mod envelope;
pub mod epoch;
pub mod identity;
pub mod ids;
pub mod invite;
pub mod mailbox;
pub mod membership;
pub mod passphrase;
pub mod reconcile;
pub mod replica;
mod serde_bytes64;
pub mod sig;
pub mod text;
pub mod textcode;

pub use ids::{CollectiveId, ContentId, DeliveryId, EpochId, MailboxId, MemberId, OpId};
