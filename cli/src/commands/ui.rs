//! `lookout ui`: the web interface on loopback, with the node started for it when needed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use lookout_node::api::{ApiError, ErrorCode};
use lookout_node::control::ControlSocket;
use lookout_node::replica::Replica;
use lookout_node::NodeHandle;
use lookout_protocol::passphrase::KdfParams;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Mutex;

use super::{identity, run, Out, Outcome, PID_FILE};
use crate::session::{Context, PASSPHRASE_ENV};

/// File in the home the browser is pointed at (so the secret address never appears on a
/// command line, which other users of the device can read); removed once the browser had
/// time to open it.
const OPEN_FILE: &str = "ui-open.html";
/// How long the file above stays.
const OPEN_FILE_LIFETIME: Duration = Duration::from_secs(20);

/// `lookout ui`.
pub async fn ui(
    ctx: &Context,
    listen: SocketAddr,
    no_open: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    if !listen.ip().is_loopback() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{listen} is not a loopback address: the page is only served on this device (use 127.0.0.1:PORT)"),
        ));
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot serve the page on {listen}: {e}"),
        )
    })?;
    let launcher = Arc::new(Launcher {
        ctx: ctx.clone(),
        node: Mutex::new(None),
    });
    let ui = lookout_ui::Ui::new(ctx.home.clone(), &listener, Some(launcher.clone()))
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?
        .in_zone(out.style.zone);
    // With a passphrase given non-interactively, start the node now; otherwise the page asks
    // (and on a device without an identity, offers to create one).
    let given = ctx.passphrase_file.is_some() || std::env::var_os(PASSPHRASE_ENV).is_some();
    if given && lookout_node::store::Store::exists(&ctx.home) && !ctx.node_running().await {
        let passphrase = ctx.passphrase(false)?;
        let replica = ctx.open_replica()?;
        if replica.membership().is_some() {
            launcher.launch(replica).await?;
            ui.remember_passphrase(passphrase.as_bytes());
        } else {
            replica.close()?;
        }
    }
    let url = ui.url().to_owned();
    if out.json {
        out.json(&serde_json::json!({ "url": url }))?;
    } else {
        out.text(&format!(
            "Lookout is open at:\n  {url}\nThis address is secret for this launch: do not share it.\nPress Ctrl-C here to stop.\n"
        ));
    }
    if !no_open {
        open_browser(ctx, &url);
    }
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("cannot watch for signals: {e}"),
        )
    })?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    let served = ui.serve(listener, stop).await;
    let _ = std::fs::remove_file(ctx.home.join(OPEN_FILE));
    if let Some((node, _control)) = launcher.node.lock().await.take() {
        node.shutdown().await;
        let _ = std::fs::remove_file(ctx.home.join(PID_FILE));
    }
    served.map_err(|e| ApiError::new(ErrorCode::Internal, format!("the page stopped: {e}")))?;
    if !out.json {
        out.text("Stopped.\n");
    }
    Ok(Outcome::Done)
}

/// Starts the node for the page.
struct Launcher {
    ctx: Context,
    /// The node this process runs, with its control socket.
    node: Mutex<Option<(NodeHandle, ControlSocket)>>,
}

impl Launcher {
    async fn launch(&self, replica: Replica) -> Result<(), ApiError> {
        let mut node = self.node.lock().await;
        if node.is_some() || self.ctx.node_running().await {
            replica.close()?;
            return Ok(());
        }
        *node = Some(run::start_default(&self.ctx, replica).await?);
        Ok(())
    }

    /// The node this process runs stops here; one run by another process (`lookout run`) is
    /// stopped as `lookout wipe` stops it.
    async fn halt(&self) -> Result<(), ApiError> {
        if let Some((node, _control)) = self.node.lock().await.take() {
            node.shutdown().await;
            return Ok(());
        }
        identity::stop_node(&self.ctx).await
    }
}

impl lookout_ui::Launcher for Launcher {
    fn start(&self, replica: Replica) -> lookout_ui::Pending<'_, ()> {
        Box::pin(self.launch(replica))
    }

    fn stop(&self) -> lookout_ui::Pending<'_, ()> {
        Box::pin(self.halt())
    }

    fn kdf(&self) -> KdfParams {
        Context::kdf_params()
    }
}

/// Point the default browser at a private file that forwards to the address.
fn open_browser(ctx: &Context, url: &str) {
    let path = ctx.home.join(OPEN_FILE);
    let page = format!(
        "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer><meta http-equiv=refresh content=\"0;url={url}\"><title>Notes</title>"
    );
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(page.as_bytes()));
    if written.is_err() {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("Could not open a browser: open the address above yourself.");
    }
    tokio::spawn(async move {
        tokio::time::sleep(OPEN_FILE_LIFETIME).await;
        let _ = std::fs::remove_file(path);
    });
}
