//! The mailbox: an always-on node that stores and forwards a collective's items, relays its
//! members' connections and helps them learn whether they are reachable, while holding no key
//! that reads anything (see `SECURITY.md`, "A mailbox", and `docs/PROTOCOL.md`, "Mailboxes").
//!
//! - [`init`] makes the mailbox key, a stable transport key and the bind secret (carried by the
//!   pairing code: its holder may bind the fresh mailbox to a collective) in `HOME/mailbox/`.
//! - [`start`] runs it: its own swarm and event loop ([`runtime`]), the blind store
//!   ([`store::BlindStore`]), `/lookout/mailbox/1` admission
//!   ([`crate::net::mailbox_admission`]), `/lookout/sync/2` over the stored items, a circuit relay
//!   v2 server and an AutoNAT server, all offered only to admitted members.

pub mod control;
pub mod learn;
mod runtime;
pub mod store;

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use libp2p::{identity::Keypair, Multiaddr, PeerId};
use rand::{rngs::OsRng, RngCore};
use zeroize::Zeroizing;

pub use runtime::{start, MailboxConfig, MailboxHandle, MailboxStatus};
pub use store::{BlindStore, StoreLimits, StoreStats, Stored};

/// The mailbox's directory inside a home directory.
pub const MAILBOX_DIR: &str = "mailbox";
const KEY_FILE: &str = "mailbox.key";
const TRANSPORT_KEY_FILE: &str = "transport.key";
const BIND_SECRET_FILE: &str = "bind.key";
const ADDRESSES_FILE: &str = "addresses";
const DB_DIR: &str = "db";

/// Why a mailbox could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxError {
    /// `mailbox init` on a home that already has a mailbox.
    #[error("{0} already holds a mailbox; use another --home or delete it first")]
    AlreadyInitialised(PathBuf),
    /// `mailbox run` on a home without one.
    #[error("no mailbox in {0}; run `lookout --home DIR mailbox init` first")]
    NotInitialised(PathBuf),
    /// A key file is not 32 bytes.
    #[error("{0} is damaged (not a 32-byte key)")]
    DamagedKey(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The network layer could not start.
    #[error("the network layer could not start: {0}")]
    Net(String),
    /// The mailbox stopped.
    #[error("the mailbox is not running")]
    Stopped,
    /// The addresses cannot go into a pairing code.
    #[error("cannot make the pairing code: {0}")]
    Pairing(String),
    /// An address members could not dial.
    #[error("{0}")]
    Address(String),
}

/// Whether members can dial `addr`: an IP address (`/ip4/...` or `/ip6/...`) then TCP or
/// QUIC. Members' nodes have no DNS transport (a lookup would also tell the network's resolver
/// which mailbox a phone uses), so `/dns4/...`, `/dns6/...` and `/dns/...` addresses are
/// refused with a clear error rather than taken and never dialled.
pub fn check_member_dialable(addr: &str) -> Result<(), String> {
    use libp2p::multiaddr::Protocol;
    let parsed: Multiaddr = addr
        .trim()
        .parse()
        .map_err(|e| format!("{addr} is not an address like /ip4/203.0.113.7/tcp/4001: {e}"))?;
    let mut parts = parsed.iter();
    match parts.next() {
        Some(Protocol::Ip4(_) | Protocol::Ip6(_)) => {}
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_)) => {
            return Err(format!(
                "{addr} is a DNS name: members' phones do not look names up (no DNS transport, \
and a lookup would tell the network which mailbox they use). Give the server's IP address, \
e.g. /ip4/203.0.113.7/tcp/4001. A mailbox's addresses cannot be changed yet once it is added: \
if the IP address changes, run `lookout mailbox init` on a fresh home and have the moderators \
add its code (and remove this mailbox)"
            ));
        }
        _ => {
            return Err(format!(
                "{addr} must start with an IP address, e.g. /ip4/203.0.113.7/tcp/4001"
            ))
        }
    }
    match (parts.next(), parts.next()) {
        (Some(Protocol::Tcp(_)), None) | (Some(Protocol::Udp(_)), Some(Protocol::QuicV1)) => Ok(()),
        _ => Err(format!(
            "{addr} must be TCP or QUIC, e.g. /ip4/203.0.113.7/tcp/4001 or /ip4/203.0.113.7/udp/4001/quic-v1"
        )),
    }
}

/// The files of one mailbox.
#[derive(Debug, Clone)]
pub struct MailboxHome {
    dir: PathBuf,
}

impl MailboxHome {
    /// The mailbox under home directory `home`.
    pub fn new(home: &Path) -> Self {
        Self {
            dir: home.join(MAILBOX_DIR),
        }
    }

    /// The mailbox's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its sled database directory.
    pub fn db_dir(&self) -> PathBuf {
        self.dir.join(DB_DIR)
    }

    /// Whether a mailbox was initialised here.
    pub fn exists(&self) -> bool {
        self.dir.join(KEY_FILE).is_file()
    }
}

/// What a mailbox is: its key, its transport key and the addresses its operator gave.
pub struct MailboxIdentity {
    /// The mailbox key (the collective names it in the roster).
    pub signing: SigningKey,
    /// The stable transport key (relayed addresses stay valid across restarts).
    pub transport: Keypair,
    /// The public addresses given at `init` (bare multiaddrs, no `/p2p/`).
    pub addresses: Vec<Multiaddr>,
    /// The bind secret: the pairing code carries it, and an unbound mailbox takes a genesis
    /// record only from a node that proves it.
    pub bind_secret: Zeroizing<[u8; 32]>,
}

impl MailboxIdentity {
    /// The mailbox key's public half.
    pub fn mailbox_id(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The mailbox key's public half in hex.
    pub fn mailbox_hex(&self) -> String {
        hex::encode(self.mailbox_id())
    }

    /// The transport peer id.
    pub fn peer_id(&self) -> PeerId {
        self.transport.public().to_peer_id()
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MailboxError + '_ {
    move |source| MailboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), MailboxError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

fn read_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, MailboxError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(64)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(MailboxError::DamagedKey(path.to_path_buf()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Makes a new mailbox in `home`: the mailbox key and the transport key (files of mode 0600,
/// not sealed under a passphrase: a mailbox starts unattended) and the public addresses.
pub fn init(home: &Path, addresses: &[Multiaddr]) -> Result<MailboxIdentity, MailboxError> {
    for addr in addresses {
        check_member_dialable(&addr.to_string()).map_err(MailboxError::Address)?;
    }
    let layout = MailboxHome::new(home);
    if layout.exists() {
        return Err(MailboxError::AlreadyInitialised(layout.dir.clone()));
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&layout.dir)
        .map_err(io_error(&layout.dir))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(seed.as_mut());
    let mut transport = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(transport.as_mut());
    write_private(&layout.dir.join(TRANSPORT_KEY_FILE), transport.as_slice())?;
    let mut bind = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bind.as_mut());
    write_private(&layout.dir.join(BIND_SECRET_FILE), bind.as_slice())?;
    let text: String = addresses.iter().map(|a| format!("{a}\n")).collect();
    write_private(&layout.dir.join(ADDRESSES_FILE), text.as_bytes())?;
    // The key file last: its presence means the mailbox is complete.
    write_private(&layout.dir.join(KEY_FILE), seed.as_slice())?;
    load(home)
}

/// The pairing code (`LKMAILBOX2-...`) a moderator pastes into `lookout mailbox add`: the
/// mailbox key, its addresses and its bind secret, signed by that key. Show it only to moderators:
/// whoever holds it can bind the fresh mailbox.
pub fn pairing_code(identity: &MailboxIdentity, now: u64) -> Result<String, MailboxError> {
    let addresses: Vec<String> = identity.addresses.iter().map(ToString::to_string).collect();
    lookout_protocol::mailbox::MailboxPairing::create(
        &identity.signing,
        addresses,
        *identity.bind_secret,
        now,
    )
    .map(|p| p.to_code())
    .map_err(|e| MailboxError::Pairing(e.to_string()))
}

/// Loads the mailbox of `home`.
pub fn load(home: &Path) -> Result<MailboxIdentity, MailboxError> {
    let layout = MailboxHome::new(home);
    if !layout.exists() {
        return Err(MailboxError::NotInitialised(home.to_path_buf()));
    }
    let seed = read_key(&layout.dir.join(KEY_FILE))?;
    let transport_path = layout.dir.join(TRANSPORT_KEY_FILE);
    let mut transport = read_key(&transport_path)?;
    let transport = Keypair::ed25519_from_bytes(transport.as_mut_slice())
        .map_err(|_| MailboxError::DamagedKey(transport_path))?;
    let bind_secret = read_key(&layout.dir.join(BIND_SECRET_FILE))?;
    let addresses_path = layout.dir.join(ADDRESSES_FILE);
    let addresses = match fs::read_to_string(&addresses_path) {
        Ok(text) => text.lines().filter_map(|l| l.trim().parse().ok()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(&addresses_path)(e)),
    };
    Ok(MailboxIdentity {
        signing: SigningKey::from_bytes(&seed),
        transport,
        addresses,
        bind_secret,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn init_makes_private_keys_that_load_back() {
        let home = tempfile::tempdir().unwrap();
        let addr: Multiaddr = "/ip4/203.0.113.7/tcp/4001".parse().unwrap();
        let made = init(home.path(), std::slice::from_ref(&addr)).unwrap();
        let loaded = load(home.path()).unwrap();
        assert_eq!(made.mailbox_id(), loaded.mailbox_id());
        assert_eq!(made.peer_id(), loaded.peer_id());
        assert_eq!(loaded.addresses, vec![addr]);
        assert_eq!(made.bind_secret, loaded.bind_secret);
        assert_ne!(*made.bind_secret, [0; 32]);
        for file in [KEY_FILE, TRANSPORT_KEY_FILE, BIND_SECRET_FILE] {
            let mode = fs::metadata(home.path().join(MAILBOX_DIR).join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            init(home.path(), &[]),
            Err(MailboxError::AlreadyInitialised(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(empty.path()),
            Err(MailboxError::NotInitialised(_))
        ));
    }
}
