//! What moderators do: approve, pending, invite, revoke, promote, demote.

use std::io::Read;
use std::path::PathBuf;

use lookout_node::api::{ApiError, ErrorCode, ProposalView, Request, Response};
use lookout_protocol::MemberId;
use serde_json::json;

use super::{request, status_view, Out, Outcome};
use crate::codes::{self, CodeKind};
use crate::render::short;
use crate::session::{unexpected, Context, Session};

/// `lookout approve CODE` or `lookout approve --proposal ID`.
pub async fn approve(
    ctx: &Context,
    code: Option<String>,
    proposal: Option<String>,
    addresses: &[String],
    qr: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    let target = match (proposal, code) {
        (Some(id), _) => {
            if codes::kind_of(&id) != CodeKind::Id {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "a proposal id is hex, as shown by `lookout pending` (to approve a join code, give it without --proposal)",
                ));
            }
            id
        }
        (None, Some(code)) => {
            let code = codes::argument(&code)?;
            match codes::kind_of(&code) {
                CodeKind::JoinRequest | CodeKind::Id => code,
                other => {
                    return Err(
                        codes::misplaced(other, CodeKind::JoinRequest).unwrap_or_else(|| {
                            ApiError::new(ErrorCode::BadCode, "this is not a join request code")
                        }),
                    )
                }
            }
        }
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "give the join code to approve, or --proposal ID",
            ))
        }
    };
    let mut session = ctx.open().await?;
    let result = approve_in(&mut session, target, addresses).await;
    session.close()?;
    let (view, invite) = result?;
    if out.json {
        let mut view = view;
        view.invite = invite;
        out.json(&view)?;
        return Ok(Outcome::Done);
    }
    let style = out.style;
    let text = if !view.done {
        format!(
            "{} Your approval is recorded: {} of {} needed.\n\
             Other moderators approve with `lookout approve --proposal {}` (or the same join code);\n\
             `lookout pending` lists everything waiting.\n",
            style.good("Approved."),
            view.approvals,
            view.needed,
            short(&view.id)
        )
    } else if let Some(invite) = invite {
        format!(
            "{} {} is now a member.\n\n{}",
            style.good("Approved."),
            view.subject,
            invite_text(&invite, qr, style)?
        )
    } else {
        format!(
            "{} Done: {} {}.\n",
            style.good("Approved."),
            view.action,
            view.subject
        )
    };
    out.text(&text);
    Ok(Outcome::Done)
}

async fn approve_in(
    session: &mut Session,
    target: String,
    addresses: &[String],
) -> Result<(ProposalView, Option<String>), ApiError> {
    let view = match session.execute(Request::Approve { target }).await? {
        Response::Proposal(view) => view,
        other => return Err(unexpected(&other)),
    };
    let invite = match &view.invite {
        Some(code) => Some(add_addresses(session, code, addresses).await?),
        None => None,
    };
    Ok((view, invite))
}

/// `lookout pending`.
pub async fn pending(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    let proposals = match request(ctx, Request::Pending).await?.0 {
        Response::Pending { proposals } => proposals,
        other => return Err(unexpected(&other)),
    };
    if out.json {
        out.json(&proposals)?;
    } else {
        out.text(&crate::render::proposals(&proposals));
    }
    Ok(Outcome::Done)
}

/// `lookout invite`.
pub async fn invite(
    ctx: &Context,
    addresses: &[String],
    qr: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    let mut session = ctx.open().await?;
    let result = async {
        match session.execute(Request::Invite).await? {
            Response::Invite { code } => add_addresses(&mut session, &code, addresses).await,
            other => Err(unexpected(&other)),
        }
    }
    .await;
    session.close()?;
    let code = result?;
    if out.json {
        out.json(&json!({ "code": code, "addresses": codes::invite_addresses(&code) }))?;
    } else {
        out.text(&invite_text(&code, qr, out.style)?);
    }
    Ok(Outcome::Done)
}

/// `lookout revoke MEMBER` or `lookout revoke --certificate FILE`.
pub async fn revoke(
    ctx: &Context,
    member: Option<String>,
    reason: String,
    certificate: Option<PathBuf>,
    out: Out,
) -> Result<Outcome, ApiError> {
    let request = match (certificate, member) {
        (Some(path), _) => Request::PublishRevocation {
            certificate: read_certificate(&path)?,
        },
        (None, Some(member)) => Request::Revoke { member, reason },
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "say whom to remove (name or id), or give --certificate FILE",
            ))
        }
    };
    let self_revocation = matches!(request, Request::PublishRevocation { .. });
    let mut session = ctx.open().await?;
    let result = async {
        let names = member_names(&mut session).await;
        match session.execute(request).await? {
            Response::Revoked { member, epoch } => Ok((member, epoch, names)),
            other => Err(unexpected(&other)),
        }
    }
    .await;
    session.close()?;
    let (member, epoch, names) = result?;
    if out.json {
        out.json(&json!({ "member": member, "epoch": epoch }))?;
        return Ok(Outcome::Done);
    }
    let id = member.get(..12).unwrap_or(&member);
    let who = names
        .iter()
        .find(|(full, _)| *full == member)
        .map(|(_, name)| format!("{name} ({id})"))
        .unwrap_or_else(|| format!("member {id}"));
    let mut text = if self_revocation {
        format!(
            "{} The identity of {who} is revoked: it can no longer read or post alerts.\n",
            out.style.good("Published.")
        )
    } else {
        format!(
            "{} {who} is no longer a member.\n",
            out.style.good("Removed.")
        )
    };
    match epoch {
        Some(epoch) => text.push_str(&format!(
            "The group key was changed (new key {epoch}): they cannot read anything posted from now on.\n"
        )),
        None => text.push_str(
            "The group key changes as soon as a moderator's node sees the removal.\n",
        ),
    }
    out.text(&text);
    Ok(Outcome::Done)
}

/// `lookout promote` / `lookout demote`.
pub async fn promote(
    ctx: &Context,
    member: String,
    promote: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    let request = if promote {
        Request::Promote { member }
    } else {
        Request::Demote { member }
    };
    let view = match super::request(ctx, request).await?.0 {
        Response::Proposal(view) => view,
        other => return Err(unexpected(&other)),
    };
    if out.json {
        out.json(&view)?;
        return Ok(Outcome::Done);
    }
    let text = if view.done {
        let now = if promote {
            "is now a moderator"
        } else {
            "is no longer a moderator"
        };
        format!("{} {} {now}.\n", out.style.good("Done."), view.subject)
    } else {
        format!(
            "{} {} {}: {} of {} approvals. Other moderators approve with `lookout approve --proposal {}`.\n",
            out.style.good("Proposed."),
            view.action,
            view.subject,
            view.approvals,
            view.needed,
            short(&view.id)
        )
    };
    out.text(&text);
    Ok(Outcome::Done)
}

/// Add `--address` values to an invite (with this node's peer id), and keep it short.
async fn add_addresses(
    session: &mut Session,
    code: &str,
    addresses: &[String],
) -> Result<String, ApiError> {
    if addresses.is_empty() {
        return codes::compact_invite(code);
    }
    let status = status_view(session).await?;
    let peer = MemberId::from_hex(&status.member)
        .and_then(|m| lookout_node::peer_id_of(&m))
        .map(|p| p.to_string())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::Internal, "this device's member id is unreadable")
        })?;
    codes::compact_invite(&codes::with_addresses(code, addresses, &peer)?)
}

/// The invite with what to do with it, and a warning when it carries no address.
fn invite_text(code: &str, qr: bool, style: crate::render::Style) -> Result<String, ApiError> {
    let mut text = format!(
        "Give them this invite code, privately (in person, or a private message):\n\n{code}\n"
    );
    if qr {
        text.push('\n');
        text.push_str(&codes::qr(code)?);
        text.push('\n');
    }
    text.push_str("\nThey run:  lookout join CODE\n");
    if codes::invite_addresses(code).is_empty() {
        text.push_str(&format!(
            "\n{} your node has never run, so the invite cannot say where to find it (it only works\n\
             on the same Wi-Fi). Start your node with `lookout run`, then print the invite again with\n\
             `lookout invite`; or add your address with --address /ip4/YOUR-IP/tcp/PORT.\n",
            style.warn("Warning:")
        ));
    }
    Ok(text)
}

/// (member id, name) of current members, for messages; empty when unavailable.
async fn member_names(session: &mut Session) -> Vec<(String, String)> {
    match session.execute(Request::Members).await {
        Ok(Response::Members(view)) => view.members.into_iter().map(|m| (m.id, m.name)).collect(),
        _ => Vec::new(),
    }
}

fn read_certificate(path: &std::path::Path) -> Result<String, ApiError> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("cannot read the certificate {}: {e}", path.display()),
            )
        })?;
    codes::certificate_in(&text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadCode,
            format!(
                "{} holds no revocation certificate (a line starting with LKREVOKE1-)",
                path.display()
            ),
        )
    })
}
