//! `lookout mailbox ...`: moderators add, list and remove the collective's mailboxes
//! (always-on nodes that store and forward encrypted items and relay connections, holding no
//! key of the collective).

use clap::Subcommand;
use lookout_node::api::{ApiError, MailboxView, MailboxesView};
use serde_json::json;
use std::fmt::Write as _;

use super::{request, Out, Outcome};
use crate::codes::{self, CodeKind};
use crate::render::short;
use crate::session::Context;

/// `lookout mailbox ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Moderators: propose a mailbox from the pairing code it printed (or approve the waiting
    /// proposal for it, when another moderator proposed it already).
    #[command(
        after_help = "The collective needs as many moderators to approve a mailbox as to let in a \
member: each of them runs `lookout mailbox add CODE` with the same code. Members' nodes then use \
it with no configuration."
    )]
    Add {
        /// The pairing code (LKMAILBOX1-...), or `-` to read it from stdin.
        code: String,
    },
    /// The collective's mailboxes: current, waiting for approvals, removed.
    List,
    /// Moderators: remove a mailbox at once (or withdraw a waiting proposal). A removed mailbox
    /// can never be added again.
    Remove {
        /// The mailbox id, or the start of it (at least 4 hex digits), from `lookout mailbox list`.
        id: String,
    },
}

/// Run a `lookout mailbox` command.
pub async fn dispatch(ctx: &Context, command: AdminCommand, out: Out) -> Result<Outcome, ApiError> {
    match command {
        AdminCommand::Add { code } => add(ctx, &code, out).await,
        AdminCommand::List => list(ctx, out).await,
        AdminCommand::Remove { id } => remove(ctx, &id, out).await,
    }
}

async fn add(ctx: &Context, code: &str, out: Out) -> Result<Outcome, ApiError> {
    let code = codes::argument(code)?;
    let kind = codes::kind_of(&code);
    if matches!(
        kind,
        CodeKind::JoinRequest | CodeKind::Invite | CodeKind::Revocation
    ) {
        if let Some(error) = codes::misplaced(kind, CodeKind::OtherCode) {
            return Err(error);
        }
    }
    let view = request(ctx, async |c| c.mailbox_add(code).await).await?.0;
    if out.json {
        out.json(&view)?;
        return Ok(Outcome::Done);
    }
    let style = out.style;
    let text = if view.already {
        format!(
            "{} is already a mailbox of the collective: nothing was changed.\n",
            view.subject
        )
    } else if view.done {
        format!(
            "{} {} is now a mailbox of the collective: members' nodes will use it.\n",
            style.good("Added."),
            view.subject
        )
    } else {
        format!(
            "{} Your approval is recorded: {} of {} needed.\n\
             Other moderators approve with `lookout mailbox add` and the same code;\n\
             `lookout mailbox list` shows what is waiting.\n",
            style.good("Proposed."),
            view.approvals,
            view.needed
        )
    };
    out.text(&text);
    Ok(Outcome::Done)
}

async fn list(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    let view = request(ctx, async |c| c.mailboxes().await).await?.0;
    if out.json {
        out.json(&view)?;
    } else {
        out.text(&render(&view));
    }
    Ok(Outcome::Done)
}

async fn remove(ctx: &Context, id: &str, out: Out) -> Result<Outcome, ApiError> {
    let id = id.to_owned();
    let mailbox = request(ctx, async |c| c.mailbox_remove(id).await).await?.0;
    if out.json {
        out.json(&json!({ "mailbox": mailbox }))?;
    } else {
        out.text(&format!(
            "{} Mailbox {} is removed: members' nodes stop using it, and it can never be added again.\n",
            out.style.good("Removed."),
            short(&mailbox)
        ));
    }
    Ok(Outcome::Done)
}

/// The list as text.
fn render(view: &MailboxesView) -> String {
    let mut out = String::new();
    let line = |m: &MailboxView| {
        if m.addresses.is_empty() {
            format!("[{}]", short(&m.id))
        } else {
            format!("[{}] {}", short(&m.id), m.addresses.join(" "))
        }
    };
    if view.current.is_empty() {
        out.push_str("No mailbox: members reach each other only directly.\n");
    } else {
        out.push_str("Mailboxes:\n");
        for m in &view.current {
            let _ = writeln!(out, "  {}", line(m));
        }
    }
    if !view.pending.is_empty() {
        out.push_str("\nWaiting for approvals:\n");
        for m in &view.pending {
            let _ = writeln!(
                out,
                "  {}: {} of {} approvals ({})",
                line(m),
                m.approvals,
                m.needed,
                m.approved_by.join(", ")
            );
        }
    }
    if !view.removed.is_empty() {
        out.push_str("\nRemoved (never added again):\n");
        for m in &view.removed {
            let _ = writeln!(out, "  {} by {}", line(m), m.removed_by.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_each_section() {
        let m = |id: &str| MailboxView {
            id: id.into(),
            addresses: vec!["/ip4/203.0.113.7/tcp/4001".into()],
            proposal: "ab".repeat(32),
            approvals: 1,
            needed: 2,
            approved_by: vec!["Ana".into()],
            removed_by: vec!["Bea".into()],
        };
        let text = render(&MailboxesView {
            current: vec![m(&"11".repeat(32))],
            pending: vec![m(&"22".repeat(32))],
            removed: vec![m(&"33".repeat(32))],
        });
        assert!(text.contains("[11111111] /ip4/203.0.113.7/tcp/4001"));
        assert!(text.contains("1 of 2 approvals (Ana)"));
        assert!(text.contains("by Bea"));
        assert!(render(&MailboxesView::default()).contains("No mailbox"));
    }
}
