//! The mailbox's local control socket: how `lookout mailbox status` asks a running mailbox.
//!
//! Same style as the member's ([`crate::control`]): a Unix domain socket, here
//! `HOME/mailbox/control.sock` (the directory is 0700, the socket 0600: only the operator's user
//! reaches it), JSON lines of protocol version [`MAILBOX_API_VERSION`]. The client writes
//! `{"v":1,"id":1,"request":{"cmd":"status"}}` (a [`MailboxRequest`]) and reads one reply per
//! request, `{"id":1,"ok":{"answer":"status",...}}` (a [`MailboxAnswer`]) or
//! `{"id":1,"err":{"code":"invalid-input","message":"..."}}`. Lines longer than
//! [`MAX_LINE_BYTES`] are refused. The answer holds no secret: no pairing code (it carries the
//! bind secret; only `mailbox init` prints it), no member id, only counts and addresses.
//!
//! The directory is made 0700 (even when it existed with a looser mode) *before* the socket is
//! bound in it, so no other local user can reach the socket in the moment before it is 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{MailboxHandle, MailboxHome, MailboxStatus};
use crate::api::{ApiError, ErrorCode};

/// Version of the mailbox control protocol.
pub const MAILBOX_API_VERSION: u32 = 1;
/// File name of the socket inside the mailbox directory.
pub const MAILBOX_SOCKET_NAME: &str = "control.sock";
/// Longest request line accepted.
const MAX_LINE_BYTES: usize = 4 * 1024;
/// Longest answer line a client reads.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// Most control connections served at once.
const MAX_CLIENTS: usize = 8;

/// What a client may ask a running mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MailboxRequest {
    /// Its state: [`MailboxAnswer::Status`].
    Status,
}

/// The answer to a [`MailboxRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MailboxAnswer {
    /// The answer to [`MailboxRequest::Status`].
    Status(MailboxStatus),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    id: u64,
    request: MailboxRequest,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<MailboxAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    err: Option<ApiError>,
}

/// The socket path of the mailbox in home directory `home`.
pub fn mailbox_socket_path(home: &Path) -> PathBuf {
    MailboxHome::new(home).dir().join(MAILBOX_SOCKET_NAME)
}

/// The control socket being served for a mailbox; dropping it stops serving and removes the
/// socket file.
pub use crate::control::ControlSocket as MailboxControl;

/// Serve the control socket of the mailbox in `home` for `mailbox` (in a background task, until
/// the returned [`MailboxControl`] is dropped).
pub async fn serve(home: &Path, mailbox: MailboxHandle) -> std::io::Result<MailboxControl> {
    let path = mailbox_socket_path(home);
    // Only the operator's user may reach the socket: its directory is 0700 before it is bound
    // (the socket is made at the umask's mode, then set 0600). A directory that already existed
    // with a looser mode (copied, restored) is tightened; one we cannot chmod (not ours) is
    // refused by the error.
    let dir = MailboxHome::new(home).dir().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let listener = crate::control::bind_private(&path, "this mailbox is already running").await?;
    Ok(crate::control::serve_on(
        listener,
        &path,
        MAX_CLIENTS,
        "mailbox control",
        move |stream| handle(stream, mailbox.clone()),
    ))
}

async fn handle(stream: UnixStream, mailbox: MailboxHandle) -> std::io::Result<()> {
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
            let refused = reply(
                0,
                Err(ApiError::new(ErrorCode::InvalidInput, "request too long")),
            );
            return write_line(&mut write, &refused).await;
        }
        let answer = match serde_json::from_str::<Envelope>(&line) {
            Err(e) => reply(
                0,
                Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("malformed request: {e}"),
                )),
            ),
            Ok(env) if env.v != MAILBOX_API_VERSION => reply(
                env.id,
                Err(ApiError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "mailbox control protocol version {} is not supported (this mailbox \
                         speaks {MAILBOX_API_VERSION})",
                        env.v
                    ),
                )),
            ),
            Ok(env) => reply(env.id, execute(&mailbox, env.request).await),
        };
        write_line(&mut write, &answer).await?;
    }
}

async fn execute(
    mailbox: &MailboxHandle,
    request: MailboxRequest,
) -> Result<MailboxAnswer, ApiError> {
    match request {
        MailboxRequest::Status => mailbox
            .status()
            .await
            .map(MailboxAnswer::Status)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string())),
    }
}

fn reply(id: u64, result: Result<MailboxAnswer, ApiError>) -> String {
    let (ok, err) = match result {
        Ok(ok) => (Some(ok), None),
        Err(err) => (None, Some(err)),
    };
    serde_json::to_string(&Reply { id, ok, err }).unwrap_or_default()
}

async fn write_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    line: &str,
) -> std::io::Result<()> {
    write.write_all(line.as_bytes()).await?;
    write.write_all(b"\n").await
}

/// Ask the mailbox running in `home`. `None` if none is running there (no socket, or nobody
/// answers on it).
pub async fn ask(home: &Path, request: MailboxRequest) -> Option<Result<MailboxAnswer, ApiError>> {
    let stream = UnixStream::connect(mailbox_socket_path(home)).await.ok()?;
    let (read, mut write) = stream.into_split();
    Some(ask_on(BufReader::new(read), &mut write, request).await)
}

async fn ask_on(
    mut lines: BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    request: MailboxRequest,
) -> Result<MailboxAnswer, ApiError> {
    let io = |e: std::io::Error| {
        ApiError::new(ErrorCode::Internal, format!("mailbox control socket: {e}"))
    };
    let line = serde_json::to_string(&Envelope {
        v: MAILBOX_API_VERSION,
        id: 1,
        request,
    })
    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    write_line(write, &line).await.map_err(io)?;
    let mut answer = String::new();
    let n = (&mut lines)
        .take(MAX_ANSWER_BYTES)
        .read_line(&mut answer)
        .await
        .map_err(io)?;
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "the mailbox closed the connection",
        ));
    }
    let reply: Reply = serde_json::from_str(&answer).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("bad reply from the mailbox: {e}"),
        )
    })?;
    match (reply.ok, reply.err) {
        (Some(ok), _) => Ok(ok),
        (None, Some(err)) => Err(err),
        (None, None) => Err(ApiError::new(
            ErrorCode::Internal,
            "empty reply from the mailbox",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_and_answers_have_one_wire_form() {
        let line = serde_json::to_string(&Envelope {
            v: MAILBOX_API_VERSION,
            id: 1,
            request: MailboxRequest::Status,
        })
        .unwrap();
        assert_eq!(line, r#"{"v":1,"id":1,"request":{"cmd":"status"}}"#);
        assert!(
            serde_json::from_str::<Envelope>(r#"{"v":1,"id":1,"request":{"cmd":"wipe"}}"#).is_err()
        );
    }
}
