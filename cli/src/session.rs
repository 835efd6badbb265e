//! Reaching this device's Lookout data: through the running node's control socket when
//! `lookout run` is active for the home, or by opening the encrypted store directly.
//!
//! Both answer the same [`Request`]s with the same [`Response`]s, so every command has one code
//! path whichever way it goes.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use lookout_node::api::{ApiError, ErrorCode, Request, Response};
use lookout_node::client::{Client, Transport};
use lookout_node::control::Connection;
use lookout_node::replica::Replica;
use lookout_node::store::KdfUpgrade;
use lookout_protocol::passphrase::KdfParams;
use zeroize::Zeroizing;

/// Selects tiny key-derivation parameters when set to `1`.
///
/// Only for automated tests, which create many homes and cannot spend a second of Argon2 on
/// each. Deliberately absent from `--help`: a store made this way is cheap to brute-force. See
/// the README's testing section.
pub const INSECURE_FAST_KDF_ENV: &str = "LOOKOUT_INSECURE_FAST_KDF";
/// Whether this build may honour [`INSECURE_FAST_KDF_ENV`]: debug builds, and release builds
/// made with the non-default `insecure-test-kdf` feature for the scale benchmark.
const FAST_KDF_BUILD: bool = cfg!(debug_assertions) || cfg!(feature = "insecure-test-kdf");
/// The passphrase, for scripts (less safe than typing it).
pub const PASSPHRASE_ENV: &str = "LOOKOUT_PASSPHRASE";

/// Where the data lives and how to unlock it.
#[derive(Clone, Debug)]
pub struct Context {
    /// The home directory.
    pub home: PathBuf,
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
}

/// An open connection to this device's data.
pub enum Session {
    /// `lookout run` is active: requests go over its control socket.
    Node(Connection),
    /// No node: the store is open in this process.
    Local(Box<Replica>),
}

impl Context {
    /// The home from `--home`, `LOOKOUT_HOME`, or the platform's data directory.
    pub fn new(home: Option<PathBuf>, passphrase_file: Option<PathBuf>) -> Result<Self, ApiError> {
        // LOOKOUT_HOME is read here, not by clap: clap then shows --home as required in every
        // usage line.
        let from_env = std::env::var_os("LOOKOUT_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let home = match home.or(from_env) {
            Some(home) => home,
            None => directories::ProjectDirs::from("org", "Lookout", "lookout")
                .map(|dirs| dirs.data_dir().to_path_buf())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        "cannot find a data directory for your user: give --home DIR",
                    )
                })?,
        };
        Ok(Self {
            home,
            passphrase_file,
        })
    }

    /// Connect to the running node, or open the store with the passphrase.
    pub async fn open(&self) -> Result<Session, ApiError> {
        if let Some(connection) = Connection::connect(&self.home).await {
            return Ok(Session::Node(connection));
        }
        Ok(Session::Local(Box::new(self.open_replica()?)))
    }

    /// Open the store directly (fails with a clear message when a node has it open).
    ///
    /// If the passphrase typed is the duress passphrase, the store has erased itself; what is
    /// left of this home goes too, and the answer is the one a device without Lookout gives.
    pub fn open_replica(&self) -> Result<Replica, ApiError> {
        if !lookout_node::store::Store::exists(&self.home) {
            // Asked all the same, as on a device with Lookout: otherwise a prompt followed by
            // "no Lookout identity" would show that a duress passphrase erased this one. What
            // is typed is not used.
            let _ = self.passphrase(false);
            return Err(self.no_identity());
        }
        let passphrase = self.passphrase(false)?;
        let mut replica = Replica::open(&self.home, passphrase.as_bytes()).map_err(|e| match e.code {
            ErrorCode::WrongPassphrase => ApiError::new(
                ErrorCode::WrongPassphrase,
                "wrong passphrase: check it and try again (if it is lost, `lookout wipe` erases this device's data)",
            ),
            ErrorCode::NotInitialized => {
                forget_home(&self.home);
                self.no_identity()
            }
            _ => e,
        })?;
        upgrade_kdf(&mut replica, passphrase.as_bytes());
        Ok(replica)
    }

    /// What every command answers when this device has no Lookout identity.
    pub fn no_identity(&self) -> ApiError {
        ApiError::new(
            ErrorCode::NotInitialized,
            format!(
                "no Lookout identity in {}: run `lookout init --name NICKNAME` first (or give the right --home)",
                self.home.display()
            ),
        )
    }

    /// Whether a node answers on this home's control socket.
    pub async fn node_running(&self) -> bool {
        Connection::connect(&self.home).await.is_some()
    }

    /// The passphrase from `--passphrase-file`, `LOOKOUT_PASSPHRASE`, or asked on the terminal
    /// (twice when `confirm`, for a new one).
    pub fn passphrase(&self, confirm: bool) -> Result<Zeroizing<String>, ApiError> {
        let passphrase = if let Some(file) = &self.passphrase_file {
            read_passphrase_file(file)?
        } else if let Ok(value) = std::env::var(PASSPHRASE_ENV) {
            Zeroizing::new(value)
        } else if std::io::stdin().is_terminal() {
            prompt(confirm)?
        } else {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "no passphrase: type it on a terminal, or give --passphrase-file FILE (or LOOKOUT_PASSPHRASE)",
            ));
        };
        if passphrase.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "the passphrase is empty",
            ));
        }
        Ok(passphrase)
    }

    /// Key-derivation settings for a new store. The fast test setting exists only in debug
    /// builds and in a release build made with the `insecure-test-kdf` feature (the scale
    /// benchmark's, never a shipped one): any other release binary ignores the variable, so no
    /// real device can be talked into it.
    pub fn kdf_params() -> KdfParams {
        let asked = fast_kdf_asked();
        if asked && !FAST_KDF_BUILD {
            eprintln!("warning: {INSECURE_FAST_KDF_ENV} is ignored by a release build");
            return KdfParams::DEFAULT;
        }
        if asked {
            eprintln!(
                "warning: {INSECURE_FAST_KDF_ENV}=1: weak passphrase protection, for tests only"
            );
            KdfParams::TESTING
        } else {
            KdfParams::DEFAULT
        }
    }
}

/// Whether the environment asks for the fast test key derivation.
fn fast_kdf_asked() -> bool {
    std::env::var(INSECURE_FAST_KDF_ENV).is_ok_and(|v| v == "1")
}

/// What [`Context::kdf_params`] answers, without its warnings (said at every open otherwise).
fn kdf_target() -> KdfParams {
    if FAST_KDF_BUILD && fast_kdf_asked() {
        KdfParams::TESTING
    } else {
        KdfParams::DEFAULT
    }
}

/// Right after a successful unlock: re-seal what a test build sealed with weaker key-derivation
/// parameters than this process would use for a new home (a debug build's or the scale
/// benchmark's `KdfParams::TESTING`, opened by a normal build), with one line on stderr. A
/// failure leaves the old files in place (each is replaced atomically) and only warns.
fn upgrade_kdf(replica: &mut Replica, passphrase: &[u8]) {
    let target = kdf_target();
    match replica.upgrade_kdf(passphrase, target) {
        Ok(done) => {
            if let KdfUpgrade::DuressSet { was } = done.key_file {
                eprintln!(
                    "warning: this home's passphrase protection is test-strength ({} KiB, {} pass), and the duress passphrase cannot be carried over to stronger settings: run `lookout passphrase duress --clear`, then `lookout passphrase duress` to set it again",
                    was.memory_kib, was.iterations
                );
            }
            if done.any() {
                eprintln!(
                    "notice: this home was sealed with test-strength passphrase protection; re-sealed with at least {} MiB, {} passes",
                    target.memory_kib / 1024,
                    target.iterations
                );
            }
        }
        Err(e) => eprintln!(
            "warning: this home's passphrase protection is test-strength and could not be strengthened ({}); it is unchanged",
            e.message
        ),
    }
}

impl Transport for Session {
    async fn execute(&mut self, request: Request) -> Result<Response, ApiError> {
        match self {
            Session::Node(connection) => connection.request(request).await,
            Session::Local(replica) => replica.execute(request),
        }
    }
}

impl Session {
    /// The typed client over this session.
    pub fn client(&mut self) -> Client<&mut Session> {
        Client::new(self)
    }

    /// Whether requests go through a running node.
    pub fn through_node(&self) -> bool {
        matches!(self, Session::Node(_))
    }

    /// The open store, for the few operations that have no [`Request`] (join, founding).
    pub fn replica(&mut self, what: &str) -> Result<&mut Replica, ApiError> {
        match self {
            Session::Local(replica) => Ok(replica),
            Session::Node(_) => Err(ApiError::new(
                ErrorCode::Busy,
                format!("stop `lookout run` for this home (Ctrl-C) before you {what}"),
            )),
        }
    }

    /// Close the store cleanly (nothing to do for a node connection).
    pub fn close(self) -> Result<(), ApiError> {
        match self {
            Session::Node(_) => Ok(()),
            Session::Local(replica) => replica.close(),
        }
    }
}

pub(crate) fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>, ApiError> {
    let file = std::fs::File::open(path).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot read the passphrase file {}: {e}", path.display()),
        )
    })?;
    let mut line = Zeroizing::new(String::new());
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("cannot read the passphrase file {}: {e}", path.display()),
            )
        })?;
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}

/// After the store vanished under a command (the duress passphrase erased it, or a wipe ran):
/// stop a node still holding it, remove what is left of the store and the files the CLI keeps
/// in the home, and the home itself if it is then empty, so the device shows no trace of
/// Lookout. Errors are ignored: whoever typed the duress passphrase must see nothing different.
fn forget_home(home: &Path) {
    use lookout_node::store::Store;
    if !Store::remove_leftovers(home) && home.join(lookout_node::control::SOCKET_NAME).exists() {
        // A node runs on a key that no longer exists: stop it (as `lookout wipe` does), then
        // remove the files it held.
        if let Some(pid) = node_pid(home) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let started = std::time::Instant::now();
            while !Store::remove_leftovers(home)
                && started.elapsed() < std::time::Duration::from_secs(10)
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    for name in [
        crate::commands::identity::CERTIFICATE_FILE,
        crate::commands::run::PID_FILE,
        crate::commands::run::WIPING_FILE,
        lookout_node::control::SOCKET_NAME,
    ] {
        let _ = std::fs::remove_file(home.join(name));
    }
    let _ = std::fs::remove_dir(home);
}

/// The process id of the `lookout run` serving this home, to stop it.
///
/// Asked of the kernel first: the peer credentials of a connection to the home's control
/// socket name the process that listens on it, which is this home's node whatever the pid file
/// says. Only when no node answers there (its socket file was removed) is the pid file read,
/// and then trusted only if `/proc/PID/cmdline` shows a `lookout ... run` process: a stale
/// file whose pid an unrelated program now has is ignored. The limit: such a fallback process
/// could be a `lookout run` of another home of the same user (the command line does not always
/// name the home); its node then stops, which loses nothing.
pub(crate) fn node_pid(home: &Path) -> Option<u32> {
    if let Some(pid) = socket_peer_pid(home) {
        return Some(pid);
    }
    let pid = std::fs::read_to_string(home.join(crate::commands::run::PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|&pid| pid > 1 && pid != std::process::id())?;
    is_lookout_run(pid).then_some(pid)
}

fn socket_peer_pid(home: &Path) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let stream =
        std::os::unix::net::UnixStream::connect(lookout_node::control::socket_path(home)).ok()?;
    let credentials = getsockopt(&stream, PeerCredentials).ok()?;
    u32::try_from(credentials.pid())
        .ok()
        .filter(|&pid| pid > 1 && pid != std::process::id())
}

/// Whether process `pid` runs `lookout ... run` (its command line, which any user can read).
fn is_lookout_run(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut args = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty());
    let Some(program) = args.next() else {
        return false;
    };
    let name = program.rsplit(|&b| b == b'/').next().unwrap_or(program);
    name.starts_with(b"lookout") && args.any(|a| a == b"run")
}

pub(crate) fn prompt(confirm: bool) -> Result<Zeroizing<String>, ApiError> {
    let label = if confirm {
        "Choose a passphrase (you need it every time; nobody can recover it): "
    } else {
        "Passphrase: "
    };
    prompt_labelled(label, confirm)
}

pub(crate) fn prompt_labelled(label: &str, confirm: bool) -> Result<Zeroizing<String>, ApiError> {
    let failed = |e: std::io::Error| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot read the passphrase: {e}"),
        )
    };
    let first = Zeroizing::new(rpassword::prompt_password(label).map_err(failed)?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("Type it again: ").map_err(failed)?);
        if *again != *first {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "the two passphrases differ: nothing was created, try again",
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug builds (the tests) may use the fast setting; a release build never does unless
    /// built with the `insecure-test-kdf` feature. Run `cargo test --release -p lookout-cli
    /// --bin lookout session` to check the release side.
    #[test]
    fn the_fast_test_kdf_exists_only_in_debug_builds() {
        std::env::set_var(INSECURE_FAST_KDF_ENV, "1");
        let params = Context::kdf_params();
        std::env::remove_var(INSECURE_FAST_KDF_ENV);
        if cfg!(debug_assertions) || cfg!(feature = "insecure-test-kdf") {
            assert_eq!(params, KdfParams::TESTING);
        } else {
            assert_eq!(params, KdfParams::DEFAULT);
        }
        assert_eq!(Context::kdf_params(), KdfParams::DEFAULT);
    }
}
