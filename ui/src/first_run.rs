//! A device without Lookout yet, and one leaving it: create the identity, found a collective
//! or ask to join and paste the invite, and the emergency wipe.
//!
//! Each step is the node's own operation, the one the CLI's commands use
//! ([`Replica::create`], [`Replica::create_collective`], [`Replica::join_request`],
//! [`Replica::join`], [`lookout_node::device::wipe`]); this module only asks for what they need
//! and shows what they return. Between creating the identity and founding or joining, the open
//! store waits in [`AppState::enrolling`]; once the device is in a collective it is handed to
//! the [`crate::Launcher`], which starts the node. Passphrases travel only in POST bodies
//! (never an address, a cookie or a log) and are zeroized after use.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use lookout_node::api::{ApiError, ErrorCode};
use lookout_node::device;
use lookout_node::replica::Replica;
use lookout_node::store::Store;
use lookout_protocol::membership::Policy;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::guard::Session;
use crate::pages::{failed, page, qr_svg, Chrome, Failure};
use crate::text::{clean, refusal};
use crate::AppState;

/// The open store of a device that has an identity but no collective yet.
pub struct Enrolling {
    /// The store, opened with the passphrase.
    pub replica: Replica,
    /// The self-revocation certificate, shown once right after the identity was created.
    pub certificate: Option<Zeroizing<String>>,
}

// ---------------------------------------------------------------------------------------------
// Create the identity.

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage {
    c: Chrome,
    name: String,
    error: String,
    can: bool,
}

/// The first page of a device without an identity.
pub async fn welcome_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    if Store::exists(&state.home) {
        return Redirect::to("/start").into_response();
    }
    page(WelcomePage {
        c: Chrome::new(&state, &session, &headers, "/welcome"),
        name: String::new(),
        error: String::new(),
        can: state.launcher.is_some(),
    })
}

/// The create-identity form.
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    again: String,
}

/// Create the identity and the encrypted store; keep the store open for founding or joining.
pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    let passphrase = Zeroizing::new(form.passphrase);
    let again = Zeroizing::new(form.again);
    let c = Chrome::new(&state, &session, &headers, "/welcome");
    let Some(launcher) = state.launcher.clone() else {
        return Redirect::to("/welcome").into_response();
    };
    if Store::exists(&state.home) {
        return Redirect::to("/start").into_response();
    }
    let name = form.name.trim().to_owned();
    let refuse = |c: Chrome, error: String| {
        (
            StatusCode::BAD_REQUEST,
            page(WelcomePage {
                c,
                name: clean(&name),
                error,
                can: true,
            }),
        )
            .into_response()
    };
    if name.is_empty() {
        let error = c.t.msg("welcome-need-name");
        return refuse(c, error);
    }
    if passphrase.is_empty() || *passphrase != *again {
        let error = c.t.msg("welcome-passphrases-differ");
        return refuse(c, error);
    }
    if device::strength(&passphrase, &name).guessable() {
        let error = c.t.msg("welcome-too-weak");
        return refuse(c, error);
    }
    let home = state.home.to_path_buf();
    let params = launcher.kdf();
    let secret = passphrase.clone();
    let who = name.clone();
    let created = tokio::task::spawn_blocking(move || {
        Replica::create(&home, secret.as_bytes(), &who, params)
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::new(ErrorCode::Internal, e.to_string())));
    match created {
        Ok((replica, certificate)) => {
            state.guard.remember_passphrase(passphrase.as_bytes());
            *state.enrolling.lock().await = Some(Enrolling {
                replica,
                certificate: Some(Zeroizing::new(certificate.to_code())),
            });
            Redirect::to("/enrol").into_response()
        }
        Err(error) => {
            let error = refusal(&c.t, &error);
            refuse(c, error)
        }
    }
}

/// What the strength meter is asked about.
#[derive(Deserialize)]
pub struct StrengthForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    passphrase: String,
}

#[derive(Template)]
#[template(path = "strength.html")]
struct StrengthFragment {
    score: u8,
    label: String,
    enough: bool,
}

/// How guessable the passphrase being typed is (for the page's script: a POST, so it never
/// lands in an address).
pub async fn strength(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<StrengthForm>,
) -> Response {
    let passphrase = Zeroizing::new(form.passphrase);
    let c = Chrome::new(&state, &session, &headers, "/welcome");
    if passphrase.is_empty() {
        return page(StrengthFragment {
            score: 0,
            label: String::new(),
            enough: false,
        });
    }
    let estimate = device::strength(&passphrase, form.name.trim());
    page(StrengthFragment {
        score: estimate.score,
        label: c.t.msg(&format!("strength-{}", estimate.score.min(4))),
        enough: !estimate.guessable(),
    })
}

// ---------------------------------------------------------------------------------------------
// Found a collective, or ask to join and paste the invite.

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    c: Chrome,
    certificate: String,
    name: String,
    fingerprint: String,
    join_code: String,
    join_qr: String,
    error: String,
    typed: Typed,
}

/// What was typed in the found-a-collective form, shown again with a refusal so that nothing
/// typed is lost (Review 21: a name that fits the box's 64 characters can be over 64 bytes).
#[derive(Default)]
struct Typed {
    name: String,
    country: String,
}

async fn enrol_page_with(state: &AppState, c: Chrome, error: String) -> Response {
    enrol_page_typed(state, c, error, Typed::default()).await
}

async fn enrol_page_typed(state: &AppState, c: Chrome, error: String, typed: Typed) -> Response {
    let mut enrolling = state.enrolling.lock().await;
    let Some(pending) = enrolling.as_mut() else {
        return Redirect::to("/").into_response();
    };
    let status = pending.replica.status();
    let join_code = pending.replica.join_request().to_code();
    // Shown once (SECURITY.md): the first page after creation takes it out of memory.
    let certificate = pending
        .certificate
        .take()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let code = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let join_qr = qr_svg(&join_code);
    (
        code,
        page(EnrolPage {
            c,
            certificate,
            name: clean(&status.name),
            fingerprint: status.fingerprint,
            join_qr,
            join_code,
            error,
            typed,
        }),
    )
        .into_response()
}

/// Found a collective, or ask to join.
pub async fn enrol_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    let c = Chrome::new(&state, &session, &headers, "/enrol");
    enrol_page_with(&state, c, String::new()).await
}

/// The found-a-collective form.
#[derive(Deserialize)]
pub struct FoundForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    country: String,
}

/// Found a collective with this device as its first moderator, then start the node.
pub async fn found(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<FoundForm>,
) -> Response {
    let c = Chrome::new(&state, &session, &headers, "/enrol");
    let country = form.country.trim().to_ascii_uppercase();
    let typed = || Typed {
        name: form.name.clone(),
        country: form.country.clone(),
    };
    // No silent default: numbers written without +country are read for this country for the
    // group's whole life, and a wrong one makes local numbers match nothing.
    if country.is_empty() {
        let error = c.t.msg("found-need-country");
        return enrol_page_typed(&state, c, error, typed()).await;
    }
    let policy = Policy {
        country,
        ..Policy::default()
    };
    if policy.validate().is_err() {
        let error = c.t.msg("found-need-country");
        return enrol_page_typed(&state, c, error, typed()).await;
    }
    let name = form.name.trim().to_owned();
    if name.is_empty() {
        let error = c.t.msg("found-need-name");
        return enrol_page_typed(&state, c, error, typed()).await;
    }
    enter(&state, c, typed(), "/?done=founded", move |replica| {
        replica.create_collective(&name, policy)
    })
    .await
}

/// The paste-the-invite form.
#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    invite: String,
}

/// Join with the invite a moderator gave, then start the node (it learns of the admission
/// from the collective).
pub async fn join(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<JoinForm>,
) -> Response {
    let c = Chrome::new(&state, &session, &headers, "/enrol");
    let code: String = form.invite.split_whitespace().collect();
    if code.is_empty() {
        let error = c.t.msg("join-need-invite");
        return enrol_page_with(&state, c, error).await;
    }
    enter(
        &state,
        c,
        Typed::default(),
        "/status?done=joined",
        move |replica| replica.join(&code).map(|_| ()),
    )
    .await
}

/// Put the waiting store into a collective with `act`, then have the launcher start the node.
async fn enter(
    state: &AppState,
    c: Chrome,
    typed: Typed,
    done: &str,
    act: impl FnOnce(&mut Replica) -> Result<(), ApiError>,
) -> Response {
    let Some(launcher) = state.launcher.clone() else {
        return Redirect::to("/").into_response();
    };
    let mut enrolling = state.enrolling.lock().await;
    let Some(mut pending) = enrolling.take() else {
        return Redirect::to("/").into_response();
    };
    if let Err(error) = act(&mut pending.replica) {
        *enrolling = Some(pending);
        drop(enrolling);
        let error = refusal(&c.t, &error);
        return enrol_page_typed(state, c, error, typed).await;
    }
    drop(enrolling);
    match launcher.start(pending.replica).await {
        Ok(()) => Redirect::to(done).into_response(),
        Err(error) => failed(c, Failure::Api(error)),
    }
}

// ---------------------------------------------------------------------------------------------
// Emergency wipe.

#[derive(Template)]
#[template(path = "wipe.html")]
struct WipePage {
    c: Chrome,
    word: String,
    error: String,
}

/// The confirmation page: the word to type is shown on it, in the reader's language.
pub async fn wipe_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    let c = Chrome::new(&state, &session, &headers, "/wipe");
    let word = c.t.msg("wipe-word");
    page(WipePage {
        c,
        word,
        error: String::new(),
    })
}

/// The wipe form.
#[derive(Deserialize)]
pub struct WipeForm {
    #[serde(default)]
    word: String,
}

/// Erase everything, as `lookout wipe` does; then the neutral page, every session locked.
pub async fn wipe(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<WipeForm>,
) -> Response {
    let c = Chrome::new(&state, &session, &headers, "/wipe");
    let word = c.t.msg("wipe-word");
    if !same_word(&form.word, &word) {
        let error = c.t.with("wipe-not-confirmed", &word);
        return (StatusCode::BAD_REQUEST, page(WipePage { c, word, error })).into_response();
    }
    // Nobody gets back in: not with the launch token, a session, or the passphrase.
    state.guard.forget();
    // A store waiting for a collective is open in this process: close it so it can go.
    if let Some(pending) = state.enrolling.lock().await.take() {
        let _ = pending.replica.close();
    }
    let launcher = state.launcher.clone();
    let result = device::wipe(&state.home, async || match &launcher {
        Some(launcher) => launcher.stop().await,
        None => Err(ApiError::new(
            ErrorCode::Busy,
            "a Lookout node is running for this home and could not be stopped: stop it and wipe again",
        )),
    })
    .await;
    match result {
        Ok(_) => Redirect::to("/exit").into_response(),
        // Said once, in this answer: the key is gone first, so what the message reports is
        // files left over, and the person must know to wipe again.
        Err(error) => failed(c, Failure::Api(error)),
    }
}

/// Whether the typed confirmation is the word (case and surrounding spaces aside).
fn same_word(typed: &str, word: &str) -> bool {
    let typed = typed.trim().to_lowercase();
    !typed.is_empty() && typed == word.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_word_confirms_a_wipe() {
        assert!(same_word(" erase ", "ERASE"));
        assert!(same_word("APAGAR", "apagar"));
        assert!(!same_word("", ""));
        assert!(!same_word("yes", "ERASE"));
        assert!(!same_word("eras", "ERASE"));
    }
}
