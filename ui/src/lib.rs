//! The local web interface of a Lookout node: every member's and moderator's flow in a
//! browser, served on loopback by the member's own device.
//!
//! It talks to the node only through the node's typed client over the control socket
//! ([`lookout_node::client::Client`]), like the CLI. Who may use it is decided by [`guard`]: a
//! per-launch token in the opened URL becomes an `HttpOnly; SameSite=Strict` cookie; the `Host`
//! must be exactly the one served; every state change needs the page's own `Origin` and the
//! session's CSRF token; every answer carries a strict Content-Security-Policy. Pages are
//! askama templates (escaping by default), messages are Fluent ([`i18n`]), and every file is
//! embedded in the binary.
//!
//! ```no_run
//! # async fn example(home: std::path::PathBuf) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let ui = lookout_ui::Ui::new(home, &listener, None)?;
//! println!("open {}", ui.url());
//! ui.serve(listener, std::future::pending()).await
//! # }
//! ```

#![forbid(unsafe_code)]

mod first_run;
pub mod guard;
pub mod i18n;
mod pages;
mod text;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use lookout_node::api::ApiError;
use lookout_node::replica::Replica;
use lookout_node::when::Zone;
use lookout_protocol::passphrase::KdfParams;

/// A future the [`Launcher`] returns.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// Runs the node for this home (given by the program that serves the interface, which knows
/// how to run a node; `lookout ui` runs it in its own process).
pub trait Launcher: Send + Sync {
    /// Start the node around `replica` (opened with the passphrase typed in the page, and in
    /// a collective), with its control socket.
    fn start(&self, replica: Replica) -> Pending<'_, ()>;
    /// Stop the node serving this home, whichever process runs it, and return once it has
    /// let go of the store (before a wipe).
    fn stop(&self) -> Pending<'_, ()>;
    /// Key-derivation settings for a new identity's store.
    fn kdf(&self) -> KdfParams {
        KdfParams::DEFAULT
    }
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) guard: Arc<guard::Guard>,
    pub(crate) catalog: Arc<i18n::Catalog>,
    pub(crate) home: Arc<PathBuf>,
    pub(crate) launcher: Option<Arc<dyn Launcher>>,
    /// The store of a device with an identity but no collective yet, between the steps.
    pub(crate) enrolling: Arc<tokio::sync::Mutex<Option<first_run::Enrolling>>>,
    /// The device's time zone: typed times of day are read in it, times are shown in it.
    pub(crate) zone: Zone,
    /// Held while the locked page checks a passphrase against the key file: one Argon2id run
    /// (64 MiB) at a time, however many tries arrive together.
    pub(crate) unlocking: Arc<tokio::sync::Mutex<()>>,
}

/// One launch of the interface.
pub struct Ui {
    state: AppState,
    url: String,
}

impl Ui {
    /// The interface for the node of `home`, to be served on `listener` (which must be bound
    /// to a loopback address). `launcher` starts the node when it is not running.
    pub fn new(
        home: PathBuf,
        listener: &tokio::net::TcpListener,
        launcher: Option<Arc<dyn Launcher>>,
    ) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the web interface listens on loopback only (127.0.0.1 or [::1])",
            ));
        }
        let host = host_of(address);
        let token = guard::secret();
        let url = format!("http://{host}/login?token={token}");
        Ok(Self {
            state: AppState {
                guard: Arc::new(guard::Guard::new(host, token)),
                catalog: Arc::new(i18n::Catalog::load()),
                home: Arc::new(home),
                launcher,
                enrolling: Arc::default(),
                zone: Zone::UTC,
                unlocking: Arc::default(),
            },
            url,
        })
    }

    /// Read and show times of day in `zone` (the device's; UTC unless given).
    pub fn in_zone(mut self, zone: Zone) -> Self {
        self.state.zone = zone;
        self
    }

    /// The address to open, with this launch's token.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Remember the passphrase the node was unlocked with, so the interface can be unlocked
    /// with it after a quick exit.
    pub fn remember_passphrase(&self, passphrase: &[u8]) {
        self.state.guard.remember_passphrase(passphrase);
    }

    /// The routes, with the guard in front (for tests that drive it without a socket).
    pub fn router(&self) -> Router {
        pages::routes(self.state.clone())
    }

    /// Serve until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let enrolling = self.state.enrolling.clone();
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        // A store still waiting for a collective is closed cleanly.
        if let Some(pending) = enrolling.lock().await.take() {
            let _ = pending.replica.close();
        }
        served
    }
}

fn host_of(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}
