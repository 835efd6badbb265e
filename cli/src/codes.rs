//! The codes people pass between devices: join requests, invites, revocation certificates.
//!
//! The node checks each code fully; this module only recognises which kind a pasted code is,
//! so a code pasted into the wrong command gets a message that says what to do with it.

use std::io::Read;

use lookout_node::api::{ApiError, ErrorCode};
use lookout_protocol::invite::Invite;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

pub use lookout_node::api::CodeKind;

/// Recognise a pasted code by its prefix.
pub fn kind_of(text: &str) -> CodeKind {
    CodeKind::of(text)
}

/// A code argument as given, or read from stdin when it is `-`: at a terminal one pasted line
/// (after a prompt on stderr), otherwise everything piped in (at most 64 KiB).
pub fn argument(text: &str) -> Result<String, ApiError> {
    use std::io::{BufRead, IsTerminal};
    if text.trim() != "-" {
        return Ok(text.trim().to_owned());
    }
    let mut input = String::new();
    let stdin = std::io::stdin();
    let read = if stdin.is_terminal() {
        eprint!("Paste the code and press Enter: ");
        stdin.lock().take(64 * 1024).read_line(&mut input)
    } else {
        stdin.lock().take(64 * 1024).read_to_string(&mut input)
    };
    read.map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("cannot read stdin: {e}")))?;
    let code: String = input.split_whitespace().collect();
    if code.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "no code on stdin: paste the code, or pipe it in (`lookout join < invite.txt`)",
        ));
    }
    Ok(code)
}

/// The error for a code pasted into the wrong command, or `None` if it is the wanted kind.
pub fn misplaced(kind: CodeKind, wanted: CodeKind) -> Option<ApiError> {
    if kind == wanted {
        return None;
    }
    let what = match kind {
        CodeKind::JoinRequest => {
            "this is a join request code (LKJOIN1-...): it goes to a moderator, who runs `lookout approve CODE`"
        }
        CodeKind::Invite => {
            "this is an invite code (LKINVITE2-...): the new member runs `lookout join` and pastes it when asked"
        }
        CodeKind::Revocation => {
            "this is a revocation certificate (LKREVOKE1-...): publish it with `lookout revoke --certificate FILE`"
        }
        CodeKind::OtherCode | CodeKind::Id | CodeKind::Unknown => match wanted {
            CodeKind::JoinRequest => {
                "this is not a join request code: it should start with LKJOIN1- (copy all of it)"
            }
            CodeKind::Invite => {
                "this is not an invite code: it should start with LKINVITE2- (copy all of it)"
            }
            _ => "this is not a revocation certificate: it should contain LKREVOKE1-...",
        },
    };
    Some(ApiError::new(ErrorCode::BadCode, what))
}

/// Add addresses of this node to an invite code. Addresses are bare: a `/p2p/` part is
/// dropped, since the node's transport identity changes with every run.
pub fn with_addresses(code: &str, extra: &[String]) -> Result<String, ApiError> {
    let mut invite = Invite::from_code(code).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the node made a bad invite: {e}"),
        )
    })?;
    for address in extra {
        let parsed: libp2p::Multiaddr = address.trim().parse().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("'{address}' is not a multiaddress such as /ip4/192.168.1.20/tcp/4001"),
            )
        })?;
        let full = lookout_node::node::without_p2p(&parsed).to_string();
        if !invite.addresses.contains(&full) {
            invite.addresses.insert(0, full);
        }
    }
    invite
        .addresses
        .truncate(lookout_protocol::invite::MAX_INVITE_ADDRESSES);
    Ok(invite.to_code())
}

/// The invite without loopback addresses when it has others: 127.0.0.1 is useless on another
/// device, and every address makes the code longer to paste and the QR code harder to scan.
pub fn compact_invite(code: &str) -> Result<String, ApiError> {
    let mut invite = Invite::from_code(code).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the node made a bad invite: {e}"),
        )
    })?;
    let loopback = |a: &String| a.starts_with("/ip4/127.") || a.starts_with("/ip6/::1/");
    if invite.addresses.iter().any(|a| !loopback(a)) {
        invite.addresses.retain(|a| !loopback(a));
    }
    Ok(invite.to_code())
}

/// The addresses an invite code carries.
pub fn invite_addresses(code: &str) -> Vec<String> {
    Invite::from_code(code)
        .map(|i| i.addresses)
        .unwrap_or_default()
}

/// Lines a QR code may take so that it fits an 80×24 terminal with a line to spare.
pub const QR_MAX_LINES: usize = 23;
/// Columns a QR code may take.
pub const QR_MAX_COLUMNS: usize = 80;

/// A code as a QR code for the terminal, with its quiet zone drawn (4 modules of light around
/// it), in the smallest version that holds it, at the strongest error correction that version
/// allows. Two modules per character cell (half blocks). With `colour`, dark modules are forced
/// black on white, so it scans on light and dark terminal themes alike; without, dark modules
/// are drawn as blocks, as on paper. A code too large for an 80×24 terminal says so.
pub fn qr(code: &str, colour: bool) -> Result<String, ApiError> {
    let symbol = smallest_qr(code)?;
    let drawn = symbol
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build();
    let lines: Vec<&str> = drawn.lines().collect();
    let mut text = String::new();
    for line in &lines {
        if colour {
            text.push_str(&format!("\x1b[30;107m{line}\x1b[0m\n"));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    let width = lines.first().map_or(0, |l| l.chars().count());
    if lines.len() > QR_MAX_LINES || width > QR_MAX_COLUMNS {
        text.push_str(&format!(
            "(This QR code needs a window {width} columns wide and {} lines tall; or write it to a file with --qr FILE.svg.)\n",
            lines.len() + 1
        ));
    }
    Ok(text)
}

/// What `--qr` adds to a command's output: the QR code drawn (then a blank line), or the
/// sentence saying which file it was written to.
pub fn qr_section(
    code: &str,
    file: Option<&std::path::Path>,
    colour: bool,
) -> Result<String, ApiError> {
    match file {
        Some(path) => qr_file(code, path),
        None => Ok(format!("{}\n", qr(code, colour)?)),
    }
}

/// Write a code as a QR code into an SVG file (quiet zone included); the sentence to print.
pub fn qr_file(code: &str, path: &std::path::Path) -> Result<String, ApiError> {
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if !is_svg {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "--qr writes SVG files: give a name ending in .svg instead of {} (any browser or image viewer opens it)",
                path.display()
            ),
        ));
    }
    let svg = smallest_qr(code)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(400, 400)
        .quiet_zone(true)
        .build();
    write_private(path, svg.as_bytes()).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    Ok(format!(
        "QR code written to {} (readable by you only: it is as secret as the code)\n",
        path.display()
    ))
}

/// Write `bytes` to `path` readable and writable by the owner only (mode 0600 on Unix, also
/// when the file already existed with a wider mode): an invite's QR code holds the collective
/// secret.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let mut file = file;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// The smallest QR version that holds `code`, at the strongest error correction level that
/// still fits that version.
fn smallest_qr(code: &str) -> Result<QrCode, ApiError> {
    use qrcode::{EcLevel, Version};
    for version in 1..=40 {
        for level in [EcLevel::H, EcLevel::Q, EcLevel::M, EcLevel::L] {
            if let Ok(symbol) =
                QrCode::with_version(code.as_bytes(), Version::Normal(version), level)
            {
                return Ok(symbol);
            }
        }
    }
    Err(ApiError::new(
        ErrorCode::Internal,
        "cannot draw a QR code: the code is too long",
    ))
}

/// The self-revocation certificate inside a file (which may hold explanations around it).
pub fn certificate_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|word| kind_of(word) == CodeKind::Revocation)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_recognised_by_prefix() {
        assert_eq!(kind_of("LKJOIN1-ABC"), CodeKind::JoinRequest);
        assert_eq!(kind_of(" lkinvite1-abc\n"), CodeKind::Invite);
        assert_eq!(kind_of("LKREVOKE1-X"), CodeKind::Revocation);
        assert_eq!(kind_of("LKID1-X"), CodeKind::OtherCode);
        assert_eq!(kind_of("3fa9c2"), CodeKind::Id);
        assert_eq!(kind_of("hello"), CodeKind::Unknown);
        assert!(misplaced(CodeKind::JoinRequest, CodeKind::JoinRequest).is_none());
        let error = misplaced(CodeKind::Invite, CodeKind::JoinRequest).unwrap();
        assert_eq!(error.code, ErrorCode::BadCode);
        assert!(error.message.contains("lookout join"));
    }

    #[test]
    fn certificates_are_found_inside_explanations() {
        let file = "Keep this safe.\n\nLKREVOKE1-ABCDEF\n\nPublish with ...";
        assert_eq!(certificate_in(file).as_deref(), Some("LKREVOKE1-ABCDEF"));
        assert_eq!(certificate_in("nothing here"), None);
    }

    #[test]
    fn invites_drop_loopback_only_when_there_is_something_else() {
        use lookout_protocol::identity::Identity;
        use lookout_protocol::membership::{Policy, SignedGenesis};
        let founder = Identity::generate(&mut rand::rngs::OsRng);
        let secret = lookout_protocol::text::CollectiveSecret::generate(&mut rand::rngs::OsRng);
        let genesis = SignedGenesis::create(
            &founder,
            &secret,
            "c",
            "f",
            Policy::default(),
            1,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        let invite = |addresses: &[&str]| {
            Invite {
                genesis: genesis.clone(),
                secret: secret.clone(),
                addresses: addresses.iter().map(|a| a.to_string()).collect(),
                inviter: None,
            }
            .to_code()
        };
        let both = invite(&["/ip4/127.0.0.1/tcp/1", "/ip4/192.168.1.2/tcp/1"]);
        assert_eq!(
            invite_addresses(&compact_invite(&both).unwrap()),
            vec!["/ip4/192.168.1.2/tcp/1"]
        );
        let alone = invite(&["/ip4/127.0.0.1/tcp/1"]);
        assert_eq!(
            invite_addresses(&compact_invite(&alone).unwrap()),
            vec!["/ip4/127.0.0.1/tcp/1"]
        );
    }

    #[test]
    fn qr_codes_draw() {
        let drawn = qr("LKJOIN1-ABCDEFGHIJKLMNOP", false).unwrap();
        assert!(drawn.lines().count() > 10);
        assert!(drawn.lines().count() <= QR_MAX_LINES);
        // The largest alphanumeric code that fits 23 lines (version 5 at level L, 37 modules
        // plus the quiet zone): 45 columns, 23 lines, and no note.
        let long = format!("LKREVOKE1-{}", "A".repeat(144));
        let drawn = qr(&long, false).unwrap();
        assert_eq!(drawn.lines().count(), 23, "{drawn}");
        assert!(drawn.lines().all(|l| l.chars().count() == 45), "{drawn}");
        assert!(!drawn.contains("needs a window"));
        // A short code gets the strongest error correction.
        assert_eq!(
            smallest_qr("LKJOIN1-AB").unwrap().error_correction_level(),
            qrcode::EcLevel::H
        );
    }
}
