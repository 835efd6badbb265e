//! `lookout mailbox ...`: set up and run a blind mailbox (an always-on node that stores and
//! forwards a collective's items and relays its members' connections, but reads nothing).

use std::path::PathBuf;

use clap::Subcommand;
use libp2p::Multiaddr;
use lookout_node::api::{ApiError, ErrorCode};
use lookout_node::mailbox::{self, MailboxConfig, MailboxError};

use crate::out::{Out, Outcome};
use crate::session::Context;

/// `lookout mailbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Make a mailbox in this home and print its pairing code for a moderator.
    #[command(
        after_help = "The mailbox's keys are kept in HOME/mailbox/ in files only this user can read, \
not under a passphrase: a mailbox must start unattended. They let it relay and store ciphertext for \
the collective; they open no alert."
    )]
    Init {
        /// A public address where members reach this mailbox, e.g. /ip4/203.0.113.7/tcp/4001 or
        /// /ip4/203.0.113.7/udp/4001/quic-v1 (repeatable, at most 4; an IP address, not a DNS
        /// name: members' phones do not look names up).
        #[arg(long, value_name = "MULTIADDR")]
        address: Vec<String>,
        /// Also draw the pairing code as a QR code (or write it to FILE.svg).
        #[arg(long, value_name = "FILE", num_args = 0..=1)]
        qr: Option<Option<PathBuf>>,
    },
    /// Print a fresh pairing code for this home's mailbox (same key; dated now), with its
    /// `init` addresses or the ones given here.
    Code {
        /// Put these addresses in the code instead of those given at `init` (repeatable, at
        /// most 4; IP addresses, TCP or QUIC).
        #[arg(long, value_name = "MULTIADDR")]
        address: Vec<String>,
        /// Also draw the pairing code as a QR code (or write it to FILE.svg).
        #[arg(long, value_name = "FILE", num_args = 0..=1)]
        qr: Option<Option<PathBuf>>,
    },
    /// Run the mailbox until interrupted (Ctrl-C or SIGTERM).
    Run {
        /// Address to listen on, e.g. /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/udp/4001/quic-v1
        /// (repeatable; at least one).
        #[arg(long, value_name = "MULTIADDR", required = true)]
        listen: Vec<String>,
        /// Public address to announce when it differs from the ones given at `init` (a port
        /// forward, a new IP address). Repeatable. With none here and none at `init`, the
        /// mailbox learns it from what at least two admitted members observe.
        #[arg(long, value_name = "MULTIADDR")]
        external_address: Vec<String>,
    },
    /// Ask the mailbox running in this home how it is doing: bound or not, what it stores, the
    /// members connected, reservations and circuits, its addresses. (No pairing code: it holds
    /// the bind secret, and `mailbox init` printed it.)
    Status,
    /// Moderators: add, list and remove the collective's mailboxes.
    #[command(flatten)]
    Admin(super::mailbox_admin::AdminCommand),
}

fn parse(addr: &str) -> Result<Multiaddr, ApiError> {
    addr.trim().parse().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{addr} is not an address like /ip4/203.0.113.7/tcp/4001: {e}"),
        )
    })
}

fn api_error(e: MailboxError) -> ApiError {
    let code = match e {
        MailboxError::AlreadyInitialised(_)
        | MailboxError::NotInitialised(_)
        | MailboxError::Address(_) => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

/// Runs one `lookout mailbox` command.
pub async fn dispatch(
    ctx: &Context,
    command: MailboxCommand,
    out: Out,
) -> Result<Outcome, ApiError> {
    match command {
        MailboxCommand::Init { address, qr } => init(ctx, &address, qr, out),
        MailboxCommand::Code { address, qr } => code(ctx, &address, qr, out),
        MailboxCommand::Run {
            listen,
            external_address,
        } => run(ctx, &listen, &external_address, out).await,
        MailboxCommand::Status => status(ctx, out).await,
        MailboxCommand::Admin(command) => super::mailbox_admin::dispatch(ctx, command, out).await,
    }
}

fn init(
    ctx: &Context,
    addresses: &[String],
    qr: Option<Option<PathBuf>>,
    out: Out,
) -> Result<Outcome, ApiError> {
    let addresses = addresses
        .iter()
        .map(|a| parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let identity = mailbox::init(&ctx.home, &addresses).map_err(api_error)?;
    let code = mailbox::pairing_code(&identity, lookout_node::replica::now()).map_err(api_error)?;
    if out.json {
        out.json(&serde_json::json!({
            "mailbox": identity.mailbox_hex(),
            "peer_id": identity.peer_id().to_string(),
            "addresses": addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "pairing_code": code,
        }))?;
        return Ok(Outcome::Done);
    }
    let mut text = format!(
        "Mailbox made in {}.\nMailbox id: {}\n\nGive this pairing code to a moderator of your collective \
(`lookout mailbox add CODE`), and to no one else: whoever holds it can bind this fresh mailbox \
to a collective of their own.\n\n{code}\n\n",
        ctx.home.join(mailbox::MAILBOX_DIR).display(),
        identity.mailbox_hex(),
    );
    if addresses.is_empty() {
        text.push_str(
            "No public address was given: members cannot find this mailbox until it is added with one. \
Run init again in a fresh home with --address.\n",
        );
    }
    if let Some(file) = qr {
        text.push_str(&crate::codes::qr_section(
            &code,
            file.as_deref(),
            out.style.colour,
        )?);
    }
    text.push_str(&format!(
        "Then start it: lookout --home {} mailbox run --listen /ip4/0.0.0.0/tcp/4001 --listen /ip4/0.0.0.0/udp/4001/quic-v1\n",
        ctx.home.display()
    ));
    out.text(&text);
    Ok(Outcome::Done)
}

fn code(
    ctx: &Context,
    addresses: &[String],
    qr: Option<Option<PathBuf>>,
    out: Out,
) -> Result<Outcome, ApiError> {
    let mut identity = mailbox::load(&ctx.home).map_err(api_error)?;
    if !addresses.is_empty() {
        let parsed = addresses
            .iter()
            .map(|a| parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        for addr in &parsed {
            mailbox::check_member_dialable(&addr.to_string())
                .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e))?;
        }
        identity.addresses = parsed;
    }
    let code = mailbox::pairing_code(&identity, lookout_node::replica::now()).map_err(api_error)?;
    if out.json {
        out.json(&serde_json::json!({
            "mailbox": identity.mailbox_hex(),
            "addresses": identity.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "pairing_code": code,
        }))?;
        return Ok(Outcome::Done);
    }
    let mut text = format!(
        "A fresh pairing code for mailbox {} (for moderators only, taken for 30 days):\n\n{code}\n\n",
        identity.mailbox_hex()
    );
    if let Some(file) = qr {
        text.push_str(&crate::codes::qr_section(
            &code,
            file.as_deref(),
            out.style.colour,
        )?);
    }
    out.text(&text);
    Ok(Outcome::Done)
}

async fn run(
    ctx: &Context,
    listen: &[String],
    external: &[String],
    out: Out,
) -> Result<Outcome, ApiError> {
    let config = MailboxConfig {
        listen: listen.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
        external: external
            .iter()
            .map(|a| parse(a))
            .collect::<Result<_, _>>()?,
        ..MailboxConfig::default()
    };
    let (handle, task) = mailbox::start(&ctx.home, config).await.map_err(api_error)?;
    let _control = mailbox::control::serve(&ctx.home, handle.clone())
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("cannot open the mailbox's control socket: {e}"),
            )
        })?;
    // Give the listeners a moment to come up, then say where the mailbox is.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let status = handle.status().await.map_err(api_error)?;
    if out.json {
        out.json(&status)?;
    } else {
        out.text(&format!(
            "Mailbox {} running (peer id {}).\nListening on: {}\n{}\nStop it with Ctrl-C.\n",
            &status.mailbox[..12],
            status.peer_id,
            status.listening.join(", "),
            match &status.collective {
                Some(c) => format!("Serving collective {c}."),
                None => "Not bound to a collective yet: it binds when a member of the collective that added it connects.".to_owned(),
            }
        ));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot wait for signals: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = task => {
            return Err(ApiError::new(ErrorCode::Internal, "the mailbox stopped unexpectedly"));
        }
    }
    let _ = handle.shutdown().await;
    if !out.json {
        out.text("Mailbox stopped.\n");
    }
    Ok(Outcome::Done)
}

async fn status(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    use mailbox::control::{ask, MailboxAnswer, MailboxRequest};
    if !mailbox::MailboxHome::new(&ctx.home).exists() {
        return Err(api_error(MailboxError::NotInitialised(ctx.home.clone())));
    }
    let Some(answer) = ask(&ctx.home, MailboxRequest::Status).await else {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "the mailbox in {} is not running; start it with `lookout --home {} mailbox run --listen ...`",
                ctx.home.display(),
                ctx.home.display()
            ),
        ));
    };
    let s = match answer? {
        MailboxAnswer::Status(s) => s,
        _ => {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "the mailbox gave an answer of another kind",
            ))
        }
    };
    if out.json {
        out.json(&s)?;
        return Ok(Outcome::Done);
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let list = |a: &[String]| {
        if a.is_empty() {
            "none".to_owned()
        } else {
            a.join(", ")
        }
    };
    out.text(&format!(
        "Mailbox {} (peer id {})\n\
         Bound to a collective: {}\n\
         Removed by its collective: {}\n\
         Stored: {} items, {} bytes\n\
         Members connected: {} ({} transport ids admitted)\n\
         Reservations: {}, circuits: {}\n\
         Listening on: {}\n\
         Announced addresses: {}\n\
         Learnt from members: {}\n",
        s.mailbox.get(..12).unwrap_or(&s.mailbox),
        s.peer_id,
        match &s.collective {
            Some(c) => format!("yes ({c})"),
            None => "no".to_owned(),
        },
        yes_no(s.removed),
        s.items,
        s.bytes,
        s.members_connected,
        s.admitted,
        s.reservations,
        s.circuits,
        list(&s.listening),
        list(&s.external),
        list(&s.learnt),
    ));
    Ok(Outcome::Done)
}
