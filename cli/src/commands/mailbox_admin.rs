//! `lookout mailbox add|list|remove`: moderators admit and remove the collective's mailboxes
//! (the mailbox itself runs with `lookout mailbox init|run`).

use clap::Subcommand;
use lookout_node::api::ApiError;

use super::{request, Out, Outcome};
use crate::render::short;
use crate::session::Context;

/// The moderators' `lookout mailbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Moderators: admit a mailbox from the pairing code its `lookout mailbox init` printed
    /// (needs as many moderators' approvals as adding a member).
    Add {
        /// The pairing code (LKMAILBOX1-…).
        code: String,
    },
    /// The collective's mailboxes.
    List,
    /// Moderators: remove a mailbox at once (members stop using it; it is never added again).
    Remove {
        /// The first hex digits of its id (see `lookout mailbox list`).
        id: String,
    },
}

/// Runs one moderators' `lookout mailbox` command.
pub async fn dispatch(ctx: &Context, command: AdminCommand, out: Out) -> Result<Outcome, ApiError> {
    match command {
        AdminCommand::Add { code } => add(ctx, code, out).await,
        AdminCommand::List => list(ctx, out).await,
        AdminCommand::Remove { id } => remove(ctx, id, out).await,
    }
}

/// Propose admitting the mailbox of a pairing code (done at once where one approval suffices).
pub async fn add(ctx: &Context, code: String, out: Out) -> Result<Outcome, ApiError> {
    let view = request(ctx, async |c| c.mailbox_add(code).await).await?.0;
    if out.json {
        out.json(&view)?;
        return Ok(Outcome::Done);
    }
    let text = if view.done {
        format!(
            "{} {}: members' nodes use it from their next sync on (no setting needed).\n",
            out.style.good("Added."),
            view.subject
        )
    } else {
        format!(
            "{} {}: {} of {} approvals. Other moderators approve with `lookout approve --proposal {}`.\n",
            out.style.good("Proposed."),
            view.subject,
            view.approvals,
            view.needed,
            short(&view.id)
        )
    };
    out.text(&text);
    Ok(Outcome::Done)
}

/// The collective's current mailboxes.
pub async fn list(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    let mailboxes = request(ctx, async |c| c.mailboxes().await).await?.0;
    if out.json {
        out.json(&mailboxes)?;
        return Ok(Outcome::Done);
    }
    if mailboxes.is_empty() {
        out.text("No mailbox. A moderator adds one with `lookout mailbox add CODE`.\n");
        return Ok(Outcome::Done);
    }
    let mut text = String::new();
    for m in &mailboxes {
        text.push_str(&format!("{}  {}\n", short(&m.id), m.addresses.join(" ")));
    }
    out.text(&text);
    Ok(Outcome::Done)
}

/// Remove a mailbox at once.
pub async fn remove(ctx: &Context, id: String, out: Out) -> Result<Outcome, ApiError> {
    let view = request(ctx, async |c| c.mailbox_remove(id).await).await?.0;
    if out.json {
        out.json(&view)?;
        return Ok(Outcome::Done);
    }
    out.text(&format!(
        "{} {}: members' nodes stop using it and close their connections to it.\n",
        out.style.good("Removed."),
        view.subject
    ));
    Ok(Outcome::Done)
}
