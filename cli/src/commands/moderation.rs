//! What moderators do: approve, pending, invite, revoke, promote, demote.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use lookout_node::api::{ApiError, ErrorCode, MemberView, ProposalView};
use lookout_protocol::content::display_safe;
use lookout_protocol::invite::JoinRequest;
use serde_json::json;

use super::{request, Out, Outcome};
use crate::codes::{self, CodeKind};
use crate::render::short;
use crate::session::{Context, Session};

/// `lookout approve CODE` or `lookout approve --proposal ID`.
pub async fn approve(
    ctx: &Context,
    code: Option<String>,
    proposal: Option<String>,
    addresses: &[String],
    qr: Option<Option<PathBuf>>,
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
    // A join code names who it is for: show their name and fingerprint before anything is
    // approved, so the moderator compares it with the one the person reads aloud.
    let request = (codes::kind_of(&target) == CodeKind::JoinRequest)
        .then(|| JoinRequest::from_code(&target).ok())
        .flatten();
    let mut session = ctx.open().await?;
    if let Some(request) = &request {
        if !out.json && std::io::stdin().is_terminal() {
            // A member who is no moderator is told so by the node, not asked first.
            let moderator = session
                .client()
                .members()
                .await
                .map(|view| view.members.iter().any(|m| m.you && m.moderator))
                .unwrap_or(true);
            if moderator && !confirm_fingerprint(request)? {
                session.close()?;
                out.text("Nothing was changed.\n");
                return Ok(Outcome::Done);
            }
        }
    }
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
            "{} Your approval is recorded: {} of {} needed.\n{}\
             Other moderators approve with `lookout approve --proposal {}` (or the same join code);\n\
             `lookout pending` lists everything waiting.\n",
            style.good("Approved."),
            view.approvals,
            view.needed,
            request
                .as_ref()
                .map(fingerprint_reminder)
                .unwrap_or_default(),
            short(&view.id)
        )
    } else if let Some(invite) = invite {
        let news = if view.already {
            format!(
                "{} is already a member: nothing was changed. Their invite again, in case they need it:",
                view.subject
            )
        } else {
            format!(
                "{} {} is now a member.",
                style.good("Approved."),
                view.subject
            )
        };
        let check = match &request {
            Some(request) if !view.already => fingerprint_reminder(request),
            _ => String::new(),
        };
        format!(
            "{news}\n{check}\n{}",
            invite_text(&invite, qr.as_ref(), style)?
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

/// What a moderator is asked before approving a join code on a terminal.
fn fingerprint_question(request: &JoinRequest) -> String {
    format!(
        "This join code is for {}.\nFingerprint:  {}\n\n\
         Ask them to read the fingerprint `lookout join-request` shows them, aloud, face to face or\n\
         on a call. Approve only if every digit matches.\n\
         Type yes if it matches: ",
        display_safe(&request.name, false),
        request.identity.fingerprint()
    )
}

/// The fingerprint again after an approval, with what to do if it does not match.
fn fingerprint_reminder(request: &JoinRequest) -> String {
    format!(
        "Fingerprint:  {}\n\
         It must be the one they read to you. If it is not, remove them at once with\n\
         `lookout revoke {}` and give them nothing.\n",
        request.identity.fingerprint(),
        short(&request.identity.member.to_hex())
    )
}

/// Show the join code's name and fingerprint and ask whether it matches; `true` to go ahead.
fn confirm_fingerprint(request: &JoinRequest) -> Result<bool, ApiError> {
    answered_yes(&fingerprint_question(request))
}

/// Print `question` and read the answer: `true` if it is "yes".
pub(super) fn answered_yes(question: &str) -> Result<bool, ApiError> {
    Ok(answer(question)?.trim().eq_ignore_ascii_case("yes"))
}

/// Print `question` and read one line of answer (without its line end).
pub(super) fn answer(question: &str) -> Result<String, ApiError> {
    print!("{question}");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot read your answer: {e}"),
        )
    })?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_owned())
}

async fn approve_in(
    session: &mut Session,
    target: String,
    addresses: &[String],
) -> Result<(ProposalView, Option<String>), ApiError> {
    let view = session.client().approve(target).await?;
    let invite = match &view.invite {
        Some(code) => Some(add_addresses(session, code, addresses).await?),
        None => None,
    };
    Ok((view, invite))
}

/// `lookout pending`.
pub async fn pending(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    let proposals = request(ctx, async |c| c.pending().await).await?.0;
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
    qr: Option<Option<PathBuf>>,
    out: Out,
) -> Result<Outcome, ApiError> {
    let mut session = ctx.open().await?;
    let result = async {
        let code = session.client().invite().await?;
        add_addresses(&mut session, &code, addresses).await
    }
    .await;
    session.close()?;
    let code = result?;
    if out.json {
        out.json(&json!({ "code": code, "addresses": codes::invite_addresses(&code) }))?;
    } else {
        out.text(&invite_text(&code, qr.as_ref(), out.style)?);
    }
    Ok(Outcome::Done)
}

/// `lookout revoke MEMBER` or `lookout revoke --certificate FILE`.
pub async fn revoke(
    ctx: &Context,
    member: Option<String>,
    reason: String,
    certificate: Option<PathBuf>,
    yes: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    if let (None, Some(member)) = (&certificate, &member) {
        if !confirm_loss(ctx, member, Loss::Removal, yes).await? {
            out.text("Nothing was changed.\n");
            return Ok(Outcome::Done);
        }
    }
    let removal = match (certificate, member) {
        (Some(path), _) => Removal::Certificate(read_certificate(&path)?),
        (None, Some(member)) => Removal::Member(member),
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "say whom to remove (name or id), or give --certificate FILE",
            ))
        }
    };
    let self_revocation = matches!(removal, Removal::Certificate(_));
    let mut session = ctx.open().await?;
    let result = async {
        let names = member_names(&mut session).await;
        let mut client = session.client();
        let revoked = match removal {
            Removal::Certificate(certificate) => client.publish_revocation(certificate).await?,
            Removal::Member(member) => client.revoke(member, reason).await?,
        };
        Ok::<_, ApiError>((revoked.member, revoked.epoch, names))
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
    yes: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    if !promote && !confirm_loss(ctx, &member, Loss::Demotion, yes).await? {
        out.text("Nothing was changed.\n");
        return Ok(Outcome::Done);
    }
    let view = if promote {
        request(ctx, async |c| c.promote(member).await).await?.0
    } else {
        request(ctx, async |c| c.demote(member).await).await?.0
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

/// What an action takes away from a member.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// `revoke`: membership (and moderator rights with it).
    Removal,
    /// `demote`: moderator rights.
    Demotion,
}

/// Before removing or demoting a moderator or yourself: refuse what would leave the collective
/// without a moderator, and otherwise say what it means and ask (or require `--yes` when there
/// is no terminal to ask on). `Ok(false)` when the person said no. Whom `who` names is left to
/// the node when it is unclear here (it answers with the precise error).
async fn confirm_loss(ctx: &Context, who: &str, loss: Loss, yes: bool) -> Result<bool, ApiError> {
    let view = request(ctx, async |c| c.members().await).await?.0;
    let wanted = who.trim().to_lowercase();
    let by_id: Vec<&MemberView> = view
        .members
        .iter()
        .filter(|m| wanted.len() >= 4 && m.id.starts_with(&wanted))
        .collect();
    let by_name: Vec<&MemberView> = view
        .members
        .iter()
        .filter(|m| m.name.to_lowercase() == wanted)
        .collect();
    let [target] = (if by_id.is_empty() { by_name } else { by_id })[..] else {
        return Ok(true);
    };
    // Only a moderator can remove or demote anyone: a member is told so by the node, not asked
    // to confirm something that cannot happen.
    if !view.members.iter().any(|m| m.you && m.moderator) {
        return Ok(true);
    }
    if !target.you && !target.moderator {
        return Ok(true);
    }
    let moderators = view.members.iter().filter(|m| m.moderator).count();
    if target.you && target.moderator && moderators <= 1 {
        let what = match loss {
            Loss::Removal => "remove yourself",
            Loss::Demotion => "step down",
        };
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "you are the last moderator: without one nobody could ever approve or remove a member again. Make someone else a moderator first (`lookout promote NAME`), then {what}"
            ),
        ));
    }
    let left = moderators.saturating_sub(1);
    let meaning = match (loss, target.you) {
        (Loss::Removal, true) => "This removes you from the collective: this device stops receiving alerts, and this identity can never rejoin.".to_owned(),
        (Loss::Demotion, true) => format!(
            "You will no longer be a moderator: you cannot approve or remove members, nor undo this yourself ({left} moderator(s) remain)."
        ),
        (Loss::Removal, false) => format!(
            "{} is a moderator: this removes them from the collective and takes their moderator rights ({left} moderator(s) remain).",
            target.name
        ),
        (Loss::Demotion, false) => format!(
            "{} will no longer be a moderator ({left} moderator(s) remain).",
            target.name
        ),
    };
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{meaning} Add --yes to go ahead."),
        ));
    }
    answered_yes(&format!("{meaning}\nType yes to go ahead: "))
}

/// Add `--address` values to an invite (bare: no peer id), and keep it short.
async fn add_addresses(
    _session: &mut Session,
    code: &str,
    addresses: &[String],
) -> Result<String, ApiError> {
    if addresses.is_empty() {
        return codes::compact_invite(code);
    }
    codes::compact_invite(&codes::with_addresses(code, addresses)?)
}

/// The invite with what to do with it, and a warning when it carries no address.
fn invite_text(
    code: &str,
    qr: Option<&Option<PathBuf>>,
    style: crate::render::Style,
) -> Result<String, ApiError> {
    let mut text = format!(
        "Give them this invite code, privately (in person, or a private message):\n\n{code}\n"
    );
    if let Some(file) = qr {
        text.push('\n');
        text.push_str(&codes::qr_section(code, file.as_deref(), style.colour)?);
    }
    text.push_str("\nThey run:  lookout join   (and paste it when asked)\n");
    if codes::invite_addresses(code).is_empty() {
        text.push_str(&format!(
            "\n{} your node has never run, so the invite cannot say where to find it, and their node\n\
             cannot find yours without it (not even on the same Wi-Fi). Start your node with\n\
             `lookout run`, then print the invite again with `lookout invite`; or add your address\n\
             with --address /ip4/YOUR-IP/tcp/PORT.\n",
            style.warn("Warning:")
        ));
    }
    Ok(text)
}

/// Whom `revoke` removes.
enum Removal {
    /// A member, by name or id prefix.
    Member(String),
    /// Whoever the self-revocation certificate names.
    Certificate(String),
}

/// (member id, name) of current members, for messages; empty when unavailable.
async fn member_names(session: &mut Session) -> Vec<(String, String)> {
    match session.client().members().await {
        Ok(view) => view.members.into_iter().map(|m| (m.id, m.name)).collect(),
        Err(_) => Vec::new(),
    }
}

fn read_certificate(path: &std::path::Path) -> Result<String, ApiError> {
    // The code itself, as `lookout init` showed it, or a file holding it.
    if let Some(code) = path
        .to_str()
        .filter(|p| p.trim().to_ascii_uppercase().starts_with("LKREVOKE1-"))
        .and_then(codes::certificate_in)
    {
        return Ok(code);
    }
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

#[cfg(test)]
mod certificate_tests {
    #![allow(clippy::unwrap_used)]
    use super::read_certificate;

    /// `revoke --certificate` takes the code `init` showed, as well as a file holding it.
    #[test]
    fn a_certificate_is_given_as_its_code_or_a_file() {
        let code = read_certificate(std::path::Path::new("LKREVOKE1-ABCDEF")).unwrap();
        assert_eq!(code, "LKREVOKE1-ABCDEF");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cert.txt");
        std::fs::write(&file, "Keep this\n\nLKREVOKE1-XYZ\n").unwrap();
        assert_eq!(read_certificate(&file).unwrap(), "LKREVOKE1-XYZ");
        assert!(read_certificate(&dir.path().join("missing")).is_err());
    }
}
