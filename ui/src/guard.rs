//! Who may use the interface: the per-launch token, sessions, and the checks every request
//! passes (exact `Host`, session cookie, `Origin` and CSRF token on state changes), plus the
//! security headers on every response.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::AppState;

/// Name of the session cookie.
pub const COOKIE: &str = "lookout";
/// Header a script sends the CSRF token in (forms send a `csrf` field).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most sessions held at once; the oldest goes first.
pub const MAX_SESSIONS: usize = 8;
/// Content-Security-Policy of every response: only this origin's own files, no inline script,
/// no `eval`, no framing, forms post only here.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// Paths served without a session: the token exchange, the neutral page, the passphrase form
/// after a quick exit and the interface's own static files (the same in every installation).
const PUBLIC: &[&str] = &["/login", "/exit", "/unlock"];

/// A random 256-bit secret as lowercase hex.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tokens and sessions of one launch.
pub struct Guard {
    /// `127.0.0.1:PORT` exactly as the URL names it.
    host: String,
    /// `http://127.0.0.1:PORT`.
    origin: String,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The launch token; `None` once the interface was locked by a quick exit.
    token: Option<String>,
    /// Session id → its state, oldest first by `order`.
    sessions: HashMap<String, Session>,
    next_order: u64,
    /// A keyed hash of the passphrase that unlocked the node here, to unlock after a quick exit.
    verifier: Option<(blake3::Hash, [u8; 32])>,
}

/// One browser's session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The session id (cookie value).
    pub id: String,
    /// Its CSRF token.
    pub csrf: String,
    /// The language chosen with the switch, if any.
    pub lang: Option<String>,
    /// The alert filter chosen on the feed.
    pub filter: crate::pages::FeedFilter,
    pub(crate) order: u64,
}

impl Guard {
    /// A guard for the interface served at `host` (`127.0.0.1:PORT`) with this launch token.
    pub fn new(host: String, token: String) -> Self {
        Self {
            origin: format!("http://{host}"),
            host,
            inner: Mutex::new(Inner {
                token: Some(token),
                sessions: HashMap::new(),
                next_order: 0,
                verifier: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exchange the launch token for a new session, if it is right.
    pub fn login(&self, token: &str) -> Option<Session> {
        let mut inner = self.lock();
        let good = inner
            .token
            .as_ref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes())));
        good.then(|| inner.new_session())
    }

    /// The session a cookie names.
    pub fn session(&self, id: &str) -> Option<Session> {
        let inner = self.lock();
        inner
            .sessions
            .iter()
            .find(|(k, _)| bool::from(k.as_bytes().ct_eq(id.as_bytes())))
            .map(|(_, s)| s.clone())
    }

    /// Change a session's settings.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Session)) {
        if let Some(session) = self.lock().sessions.get_mut(id) {
            change(session);
        }
    }

    /// Quick exit: end every session and retire the launch token.
    pub fn lock_all(&self) {
        let mut inner = self.lock();
        inner.sessions.clear();
        inner.token = None;
    }

    /// After a wipe: end every session, retire the token and forget the passphrase, so nothing
    /// opens the interface again in this launch.
    pub fn forget(&self) {
        let mut inner = self.lock();
        inner.sessions.clear();
        inner.token = None;
        inner.verifier = None;
    }

    /// Whether a quick exit locked the interface.
    pub fn is_locked(&self) -> bool {
        self.lock().token.is_none()
    }

    /// Remember the passphrase that unlocked the node (as a keyed hash) for unlocking later.
    pub fn remember_passphrase(&self, passphrase: &[u8]) {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        self.lock().verifier = Some((blake3::keyed_hash(&key, passphrase), key));
    }

    /// Whether a passphrase can unlock the interface after a quick exit.
    pub fn can_unlock(&self) -> bool {
        self.lock().verifier.is_some()
    }

    /// After a quick exit: a new session for the right passphrase.
    pub fn unlock(&self, passphrase: &[u8]) -> Option<Session> {
        let mut inner = self.lock();
        let (hash, key) = inner.verifier?;
        // blake3::Hash compares in constant time.
        (blake3::keyed_hash(&key, passphrase) == hash).then(|| inner.new_session())
    }

    /// The exact origin of this interface.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl Inner {
    fn new_session(&mut self) -> Session {
        while self.sessions.len() >= MAX_SESSIONS {
            let oldest = self
                .sessions
                .values()
                .min_by_key(|s| s.order)
                .map(|s| s.id.clone());
            match oldest {
                Some(id) => self.sessions.remove(&id),
                None => break,
            };
        }
        let session = Session {
            id: secret(),
            csrf: secret(),
            lang: None,
            filter: Default::default(),
            order: self.next_order,
        };
        self.next_order += 1;
        self.sessions.insert(session.id.clone(), session.clone());
        session
    }
}

/// The `Set-Cookie` value for a session.
pub fn cookie(session: &Session) -> String {
    format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", session.id)
}

/// Every request: exact Host, then a session (except public paths), then Origin and CSRF
/// token on anything that changes state; security headers on every answer.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = match admit(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    };
    harden(response.headers_mut());
    response
}

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request got nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` header is not exactly this interface's (DNS rebinding, another name).
    Host,
    /// No session, a wrong one, or a wrong token.
    NoSession,
    /// A state change from another origin or without `Origin`.
    Origin,
    /// A state change without the session's CSRF token.
    Csrf,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::Host => StatusCode::MISDIRECTED_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        // The same neutral body whatever the reason: nothing for a prober to learn.
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Nothing here.\n",
        )
            .into_response()
    }
}

async fn admit(state: &AppState, request: Request<Body>) -> Result<Request<Body>, Refusal> {
    let guard = &state.guard;
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if host != Some(guard.host.as_str()) {
        return Err(Refusal::Host);
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state {
        let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
        if origin != Some(guard.origin()) {
            return Err(Refusal::Origin);
        }
    }
    let path = request.uri().path();
    if PUBLIC.contains(&path) || path.starts_with("/assets/") {
        return Ok(request);
    }
    let session = cookie_value(headers)
        .and_then(|id| guard.session(id))
        .ok_or(Refusal::NoSession)?;
    let mut request = if changes_state {
        // Scripts send the token in a header; forms as the field `csrf`.
        let header_token = headers
            .get(CSRF_HEADER)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| Refusal::Csrf)?;
        let given = header_token.or_else(|| form_field(&bytes, "csrf"));
        let good = given.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())));
        if !good {
            return Err(Refusal::Csrf);
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };
    request.extensions_mut().insert(session);
    Ok(request)
}

/// A field of a form body (the CSRF token is hex: no decoding needed).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn harden(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-content-type-options", "nosniff");
    // Not `no-referrer`: under it Chromium sends `Origin: null` with the page's own form posts,
    // which the exact Origin check must refuse. `same-origin` sends no referrer to any other
    // origin, and this page links to none.
    set(headers, "referrer-policy", "same-origin");
    set(headers, "x-frame-options", "DENY");
    set(headers, "cache-control", "no-store");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    set(
        headers,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_launch_token_opens_a_session_and_a_quick_exit_retires_it() {
        let guard = Guard::new("127.0.0.1:1".into(), "a".repeat(64));
        assert!(guard.login(&"b".repeat(64)).is_none());
        assert!(guard.login("").is_none());
        let session = guard.login(&"a".repeat(64)).unwrap();
        assert!(guard.session(&session.id).is_some());
        guard.lock_all();
        assert!(guard.session(&session.id).is_none());
        assert!(guard.login(&"a".repeat(64)).is_none());
        assert!(
            guard.unlock(b"anything").is_none(),
            "no verifier, no unlock"
        );
        guard.remember_passphrase(b"right");
        assert!(guard.unlock(b"wrong").is_none());
        assert!(guard.unlock(b"right").is_some());
    }

    #[test]
    fn sessions_are_capped() {
        let guard = Guard::new("h".into(), "t".into());
        let first = guard.login("t").unwrap();
        for _ in 0..MAX_SESSIONS {
            guard.login("t").unwrap();
        }
        assert!(guard.session(&first.id).is_none());
    }
}
