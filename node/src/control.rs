//! The local control socket: how the CLI talks to a running node.
//!
//! A Unix domain socket `control.sock` in the node's home directory (the directory is 0700, the
//! socket 0600, so only the device's user can reach it). The protocol is JSON lines, version
//! [`API_VERSION`]: the client writes one object per line,
//! `{"v":1,"id":7,"request":{"cmd":"alerts","area":null,...}}` (a [`Request`] with the protocol
//! version and a request number), and reads
//! one reply per request, `{"id":7,"ok":{...Response}}` or
//! `{"id":7,"err":{"code":"not-moderator","message":"..."}}`. After a `watch` request the
//! connection streams `{"event":"alert",...}` lines until the client hangs up. Lines longer than
//! [`MAX_LINE_BYTES`] are refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use crate::api::{ApiError, ErrorCode, Event, Request, Response, API_VERSION};
use crate::node::NodeHandle;

/// Longest request line accepted.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most control connections served at once.
pub(crate) const MAX_CLIENTS: usize = 16;
/// File name of the socket inside the home directory.
pub const SOCKET_NAME: &str = "control.sock";

/// The socket path for a home directory.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join(SOCKET_NAME)
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    id: u64,
    /// Nested, not flattened: requests have fields of their own named `id`.
    request: Request,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<Response>,
    #[serde(skip_serializing_if = "Option::is_none")]
    err: Option<ApiError>,
}

/// A control socket being served (a node's, or a mailbox's). Dropping it stops accepting
/// connections and removes the socket file: the program that started the node keeps it as long
/// as the node runs (the node itself knows nothing of this socket).
#[must_use = "the control socket is removed when this is dropped"]
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long the accept loop pauses after a failed accept (out of file descriptors, say), so it
/// never spins.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(250);

/// Serve the control socket at `path` for `node` (in a background task, until the returned
/// [`ControlSocket`] is dropped).
pub async fn serve(path: &Path, node: NodeHandle) -> std::io::Result<ControlSocket> {
    let listener = bind_private(path, "another node is already running for this home").await?;
    Ok(serve_on(
        listener,
        path,
        MAX_CLIENTS,
        "control",
        move |stream| handle(stream, node.clone()),
    ))
}

/// A Unix socket at `path` that only this user may use (0600; its directory's mode is the
/// caller's business). Refused with `in_use` when a running program already answers there; a
/// stale file left by one that stopped is replaced.
pub(crate) async fn bind_private(
    path: &Path,
    in_use: &'static str,
) -> std::io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, in_use));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accept connections on `listener` in a background task, at most `max` at once, each answered
/// by `handle`; a failed accept pauses the loop for [`ACCEPT_BACKOFF`].
pub(crate) fn serve_on<F, Fut>(
    listener: UnixListener,
    path: &Path,
    max: usize,
    what: &'static str,
    handle: F,
) -> ControlSocket
where
    F: Fn(UnixStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(max));
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error = %e, socket = what, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                warn!(socket = what, "too many connections; refusing one");
                continue;
            };
            let served = handle(stream);
            tokio::spawn(async move {
                if let Err(e) = served.await {
                    debug!(error = %e, socket = what, "connection ended");
                }
                drop(permit);
            });
        }
    });
    ControlSocket {
        path: path.to_owned(),
        task,
    }
}

async fn handle(stream: UnixStream, node: NodeHandle) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut lines)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if n > MAX_LINE_BYTES {
            write_line(
                &mut write,
                &error_reply(0, ErrorCode::InvalidInput, "request too long"),
            )
            .await?;
            return Ok(());
        }
        let parsed: Result<Envelope, _> = serde_json::from_str(&line);
        let reply = match parsed {
            Err(e) => error_reply(
                0,
                ErrorCode::InvalidInput,
                &format!("malformed request: {e}"),
            ),
            Ok(env) if env.v != API_VERSION => error_reply(
                env.id,
                ErrorCode::Unsupported,
                &format!(
                    "control protocol version {} is not supported (this node speaks {API_VERSION})",
                    env.v
                ),
            ),
            Ok(Envelope {
                id,
                request: Request::Watch,
                ..
            }) => {
                let mut events = match node.watch().await {
                    Ok(rx) => rx,
                    Err(e) => {
                        write_line(&mut write, &reply(id, Err(e))).await?;
                        continue;
                    }
                };
                write_line(&mut write, &reply(id, Ok(Response::Watching))).await?;
                loop {
                    match events.recv().await {
                        Ok(event) => {
                            write_line(
                                &mut write,
                                &serde_json::to_string(&event).unwrap_or_default(),
                            )
                            .await?
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return Ok(()),
                    }
                }
            }
            Ok(env) => reply(env.id, node.execute(env.request).await),
        };
        write_line(&mut write, &reply).await?;
    }
}

fn reply(id: u64, result: Result<Response, ApiError>) -> String {
    let reply = match result {
        Ok(ok) => Reply {
            id,
            ok: Some(ok),
            err: None,
        },
        Err(err) => Reply {
            id,
            ok: None,
            err: Some(err),
        },
    };
    serde_json::to_string(&reply).unwrap_or_default()
}

fn error_reply(id: u64, code: ErrorCode, message: &str) -> String {
    reply(id, Err(ApiError::new(code, message)))
}

async fn write_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    line: &str,
) -> std::io::Result<()> {
    write.write_all(line.as_bytes()).await?;
    write.write_all(b"\n").await
}

impl crate::client::Transport for Connection {
    fn execute(
        &mut self,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Response, ApiError>> + Send {
        self.request(request)
    }
}

/// A connection to a running node's control socket (wrap it in [`crate::client::Client`] for
/// typed requests).
pub struct Connection {
    lines: BufReader<tokio::net::unix::OwnedReadHalf>,
    write: tokio::net::unix::OwnedWriteHalf,
    next_id: u64,
}

impl Connection {
    /// Connect to the node serving `home`, if one is running.
    pub async fn connect(home: &Path) -> Option<Self> {
        let stream = UnixStream::connect(socket_path(home)).await.ok()?;
        let (read, write) = stream.into_split();
        Some(Self {
            lines: BufReader::new(read),
            write,
            next_id: 1,
        })
    }

    /// Send a request and wait for its reply.
    pub async fn request(&mut self, request: Request) -> Result<Response, ApiError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = serde_json::to_string(&Envelope {
            v: API_VERSION,
            id,
            request,
        })
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        write_line(&mut self.write, &line).await.map_err(io_error)?;
        let mut reply = String::new();
        let n = (&mut self.lines)
            .take(16 * 1024 * 1024)
            .read_line(&mut reply)
            .await
            .map_err(io_error)?;
        if n == 0 {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "the node closed the connection",
            ));
        }
        let reply: Reply = serde_json::from_str(&reply)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("bad reply from node: {e}")))?;
        match (reply.ok, reply.err) {
            (Some(ok), _) => Ok(ok),
            (None, Some(err)) => Err(err),
            (None, None) => Err(ApiError::new(ErrorCode::Internal, "empty reply from node")),
        }
    }

    /// Start watching; then call [`Connection::next_event`] repeatedly.
    pub async fn watch(&mut self) -> Result<(), ApiError> {
        self.request(Request::Watch).await.map(|_| ())
    }

    /// The next streamed event (after [`Connection::watch`]); `None` when the node went away.
    pub async fn next_event(&mut self) -> Option<Event> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = (&mut self.lines)
                .take(MAX_LINE_BYTES as u64 * 4)
                .read_line(&mut line)
                .await
                .ok()?;
            if n == 0 {
                return None;
            }
            if let Ok(event) = serde_json::from_str(&line) {
                return Some(event);
            }
        }
    }
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("control socket: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_with_an_id_field_round_trip() {
        let line = serde_json::to_string(&Envelope {
            v: API_VERSION,
            id: 3,
            request: Request::Retract {
                id: "abcd1234".into(),
                reason: "duplicate".into(),
            },
        })
        .unwrap();
        let back: Envelope = serde_json::from_str(&line).unwrap();
        assert_eq!(back.id, 3);
        assert_eq!(
            back.request,
            Request::Retract {
                id: "abcd1234".into(),
                reason: "duplicate".into()
            }
        );
    }
}
