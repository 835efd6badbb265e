//! Each command: turn arguments into [`Request`]s, run them, print the answers.

mod alerts;
pub(crate) mod identity;
mod interactive;
pub(crate) mod mailbox;
mod mailbox_admin;
mod moderation;
pub(crate) mod run;
mod ui;

use lookout_node::api::ApiError;
use lookout_node::client::Client;

use crate::args::{Cli, CollectiveCommand, Command, PassphraseCommand};
use crate::render::Style;
use crate::session::{Context, Session};
use lookout_node::when::Zone;

pub use crate::out::{Out, Outcome};
pub use run::PID_FILE;

/// Run the parsed command line.
pub async fn dispatch(cli: Cli, zone: Zone) -> Result<Outcome, ApiError> {
    let out = Out {
        json: cli.json,
        style: if cli.json {
            Style {
                zone,
                ..Style::default()
            }
        } else {
            Style::detect(zone)
        },
    };
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "lookout", &mut std::io::stdout());
        return Ok(Outcome::Done);
    }
    if let Command::Demo { nodes } = cli.command {
        return crate::demo::run(usize::from(nodes), out).await;
    }
    let ctx = Context::new(cli.home, cli.passphrase_file)?;
    match cli.command {
        Command::Init {
            name,
            revocation_cert,
            allow_weak_passphrase,
        } => identity::init(&ctx, &name, revocation_cert, allow_weak_passphrase, out),
        Command::Collective(CollectiveCommand::Create {
            name,
            approvals,
            co_moderators,
            alert_days,
            country,
        }) => {
            let policy = identity::CollectivePolicy {
                approvals,
                alert_days,
                country,
            };
            identity::create_collective(&ctx, &name, policy, &co_moderators, out).await
        }
        Command::Passphrase(PassphraseCommand::Change {
            new_passphrase_file,
            allow_weak_passphrase,
        }) => identity::change_passphrase(&ctx, new_passphrase_file, allow_weak_passphrase, out),
        Command::Passphrase(PassphraseCommand::Duress {
            duress_passphrase_file,
            clear,
            allow_weak_passphrase,
        }) => identity::set_duress(
            &ctx,
            duress_passphrase_file,
            clear,
            allow_weak_passphrase,
            out,
        ),
        Command::Mailbox(command) => mailbox::dispatch(&ctx, command, out).await,
        Command::JoinRequest { qr } => identity::join_request(&ctx, qr, out).await,
        Command::Join { invite } => identity::join(&ctx, &invite, out).await,
        Command::Status => identity::status(&ctx, out).await,
        Command::Members => identity::members(&ctx, out).await,
        Command::Wipe { yes } => identity::wipe(&ctx, yes, out).await,
        Command::Approve {
            code,
            proposal,
            address,
            qr,
        } => moderation::approve(&ctx, code, proposal, &address, qr, out).await,
        Command::Pending => moderation::pending(&ctx, out).await,
        Command::Invite { address, qr } => moderation::invite(&ctx, &address, qr, out).await,
        Command::Revoke {
            member,
            reason,
            certificate,
            yes,
        } => moderation::revoke(&ctx, member, reason, certificate, yes, out).await,
        Command::Promote { member } => moderation::promote(&ctx, member, true, true, out).await,
        Command::Demote { member, yes } => moderation::promote(&ctx, member, false, yes, out).await,
        Command::Ui { listen, no_open } => ui::ui(&ctx, listen, no_open, out).await,
        Command::Post(args) => alerts::post(&ctx, args, out).await,
        Command::Alerts {
            area,
            category,
            since,
            retracted,
            watch,
        } => alerts::list(&ctx, area, category, since, retracted, watch, out).await,
        Command::Check { value } => {
            let value = alerts::check_term(value)?;
            alerts::check(&ctx, &value, out).await
        }
        Command::Retract { id, reason } => alerts::retract(&ctx, id, reason, out).await,
        Command::Corroborate { id, note } => alerts::corroborate(&ctx, id, note, out).await,
        Command::Export {
            format,
            area,
            out: file,
        } => alerts::export(&ctx, format, area, file, out).await,
        Command::Run {
            listen,
            peer,
            mdns,
            no_mdns: _,
            sync_interval,
            connections,
        } => run::run(&ctx, &listen, &peer, mdns, sync_interval, connections, out).await,
        Command::Completions { .. } | Command::Demo { .. } => Ok(Outcome::Done),
    }
}

/// Open the data, run `call` with the typed client, close; says whether it went through a
/// running node.
async fn request<R>(
    ctx: &Context,
    call: impl AsyncFnOnce(&mut Client<&mut Session>) -> Result<R, ApiError>,
) -> Result<(R, bool), ApiError> {
    let mut session = ctx.open().await?;
    let through_node = session.through_node();
    let result = call(&mut session.client()).await;
    session.close()?;
    Ok((result?, through_node))
}
