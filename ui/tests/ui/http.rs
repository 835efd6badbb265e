//! The interface's access rules over plain HTTP (no browser): token, cookie, exact Host,
//! Origin and CSRF token on state changes, security headers on every answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every request has a deadline.
const PATIENCE: Duration = Duration::from_secs(10);

struct Served {
    addr: SocketAddr,
    token: String,
    _home: tempfile::TempDir,
}

async fn serve() -> Served {
    let home = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ui = lookout_ui::Ui::new(home.path().to_path_buf(), &listener, None).unwrap();
    let token = ui.url().split("token=").nth(1).unwrap().to_owned();
    tokio::spawn(ui.serve(listener, std::future::pending()));
    Served {
        addr,
        token,
        _home: home,
    }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// One request with exactly these headers (`Host` included), over a fresh connection.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    tokio::time::timeout(PATIENCE, async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    })
    .await
    .expect("the interface answers in time")
}

fn host(s: &Served) -> String {
    s.addr.to_string()
}

fn origin(s: &Served) -> String {
    format!("http://{}", s.addr)
}

/// Log in with the token; returns the cookie pair `lookout=...`.
async fn login(s: &Served) -> String {
    let answer = send(
        s.addr,
        "GET",
        &format!("/login?token={}", s.token),
        &[("Host", &host(s))],
        "",
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.header("location").as_deref(),
        Some("/"),
        "the token leaves the address bar"
    );
    let cookie = answer.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

/// The page's CSRF token (from the passphrase page shown when no node runs).
async fn csrf(s: &Served, cookie: &str) -> String {
    let answer = send(
        s.addr,
        "GET",
        "/start",
        &[("Host", &host(s)), ("Cookie", cookie)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let at = answer.body.find("name=\"csrf\" content=\"").unwrap() + 21;
    answer.body[at..at + 64].to_owned()
}

#[tokio::test]
async fn no_token_or_a_wrong_token_gets_nothing() {
    let s = serve().await;
    let h = host(&s);
    for path in [
        "/",
        "/status",
        "/check",
        "/moderate",
        "/events",
        "/feed",
        "/sheet",
        "/start",
    ] {
        let answer = send(s.addr, "GET", path, &[("Host", &h)], "").await;
        assert_eq!(answer.status, 403, "{path}");
        assert_eq!(answer.body, "Nothing here.\n", "{path}");
    }
    let wrong = "0".repeat(64);
    for token in [wrong.as_str(), "", &s.token[..63]] {
        let answer = send(
            s.addr,
            "GET",
            &format!("/login?token={token}"),
            &[("Host", &h)],
            "",
        )
        .await;
        assert_eq!(answer.status, 403);
        assert!(answer.header("set-cookie").is_none());
    }
    let forged = send(
        s.addr,
        "GET",
        "/",
        &[("Host", &h), ("Cookie", "lookout=00")],
        "",
    )
    .await;
    assert_eq!(forged.status, 403);
    let cookie = login(&s).await;
    let answer = send(s.addr, "GET", "/", &[("Host", &h), ("Cookie", &cookie)], "").await;
    assert_eq!(
        answer.status, 303,
        "a session gets in (to the passphrase page: no node runs)"
    );
}

#[tokio::test]
async fn a_forged_host_is_refused() {
    let s = serve().await;
    let cookie = login(&s).await;
    let port = s.addr.port();
    for forged in [
        format!("localhost:{port}"),
        format!("evil.example:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.0.0.1:{port}.evil.example"),
    ] {
        let answer = send(
            s.addr,
            "GET",
            "/start",
            &[("Host", &forged), ("Cookie", &cookie)],
            "",
        )
        .await;
        assert_eq!(answer.status, 421, "{forged}");
        assert_eq!(answer.body, "Nothing here.\n");
        let token = send(
            s.addr,
            "GET",
            &format!("/login?token={}", s.token),
            &[("Host", &forged)],
            "",
        )
        .await;
        assert_eq!(token.status, 421, "{forged}: even the right token");
    }
    let missing = send(s.addr, "GET", "/start", &[("Cookie", &cookie)], "").await;
    assert_eq!(missing.status, 421);
}

#[tokio::test]
async fn a_cross_origin_post_or_one_without_the_csrf_token_is_refused() {
    let s = serve().await;
    let h = host(&s);
    let o = origin(&s);
    let cookie = login(&s).await;
    let token = csrf(&s, &cookie).await;
    let form = format!("csrf={token}");
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    // Another site, a missing Origin, a look-alike origin: refused even with the right token.
    for bad in [
        Some("http://evil.example"),
        None,
        Some("http://localhost"),
        Some("null"),
    ] {
        let mut headers = vec![("Host", h.as_str()), ("Cookie", cookie.as_str()), form_type];
        if let Some(bad) = bad {
            headers.push(("Origin", bad));
        }
        let answer = send(s.addr, "POST", "/lock", &headers, &form).await;
        assert_eq!(answer.status, 403, "{bad:?}");
    }
    // The right origin without the token, or with a wrong one.
    for body in ["", "csrf=", &format!("csrf={}", "1".repeat(64))] {
        let answer = send(
            s.addr,
            "POST",
            "/lock",
            &[("Host", &h), ("Cookie", &cookie), ("Origin", &o), form_type],
            body,
        )
        .await;
        assert_eq!(answer.status, 403, "{body}");
    }
    let header_wrong = send(
        s.addr,
        "POST",
        "/lock",
        &[
            ("Host", &h),
            ("Cookie", &cookie),
            ("Origin", &o),
            ("x-csrf-token", "00"),
        ],
        "",
    )
    .await;
    assert_eq!(header_wrong.status, 403);
    // Nothing above locked the session.
    assert_eq!(csrf(&s, &cookie).await, token);
    // The page's own form does.
    let answer = send(
        s.addr,
        "POST",
        "/lock",
        &[("Host", &h), ("Cookie", &cookie), ("Origin", &o), form_type],
        &form,
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location").as_deref(), Some("/exit"));
}

#[tokio::test]
async fn a_quick_exit_locks_every_session_and_retires_the_token() {
    let s = serve().await;
    let h = host(&s);
    let cookie = login(&s).await;
    let other = login(&s).await;
    let token = csrf(&s, &cookie).await;
    let answer = send(
        s.addr,
        "POST",
        "/lock",
        &[
            ("Host", &h),
            ("Cookie", &cookie),
            ("Origin", &origin(&s)),
            ("x-csrf-token", &token),
        ],
        "",
    )
    .await;
    assert_eq!(answer.status, 303);
    for c in [&cookie, &other] {
        let answer = send(s.addr, "GET", "/start", &[("Host", &h), ("Cookie", c)], "").await;
        assert_eq!(answer.status, 403);
    }
    let again = send(
        s.addr,
        "GET",
        &format!("/login?token={}", s.token),
        &[("Host", &h)],
        "",
    )
    .await;
    assert_eq!(again.status, 403, "the launch token is retired");
    let exit = send(s.addr, "GET", "/exit", &[("Host", &h)], "").await;
    assert_eq!(exit.status, 200);
    assert!(exit.body.contains("<title>Notes</title>"));
    assert!(
        !exit.body.to_lowercase().contains("lookout"),
        "the neutral page names nothing"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let s = serve().await;
    let h = host(&s);
    let cookie = login(&s).await;
    let answers = [
        send(s.addr, "GET", "/", &[("Host", &h)], "").await,
        send(s.addr, "GET", "/", &[("Host", "evil.example")], "").await,
        send(
            s.addr,
            "GET",
            "/start",
            &[("Host", &h), ("Cookie", &cookie)],
            "",
        )
        .await,
        send(s.addr, "GET", "/exit", &[("Host", &h)], "").await,
        send(s.addr, "GET", "/assets/app.js", &[("Host", &h)], "").await,
        send(
            s.addr,
            "GET",
            &format!("/login?token={}", s.token),
            &[("Host", &h)],
            "",
        )
        .await,
    ];
    for answer in answers {
        let csp = answer.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(
            answer.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(
            answer.header("referrer-policy").as_deref(),
            Some("same-origin")
        );
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(answer.header("x-frame-options").as_deref(), Some("DENY"));
    }
}

#[tokio::test]
async fn pages_have_no_inline_script_or_external_resource() {
    let s = serve().await;
    let h = host(&s);
    let cookie = login(&s).await;
    let page = send(
        s.addr,
        "GET",
        "/start",
        &[("Host", &h), ("Cookie", &cookie)],
        "",
    )
    .await;
    let body = page.body.to_lowercase();
    assert!(body.contains("<script src=\"/assets/app.js\""));
    assert_eq!(
        body.matches("<script").count(),
        1,
        "one script, from this origin"
    );
    assert!(
        !body.contains(" on") || !body.contains("onclick="),
        "no inline handlers"
    );
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "nothing external"
    );
    assert!(body.contains("<title>notes</title>"), "neutral title");
}

#[tokio::test]
async fn the_interface_refuses_to_listen_beyond_loopback() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let home = tempfile::tempdir().unwrap();
    assert!(lookout_ui::Ui::new(home.path().to_path_buf(), &listener, None).is_err());
}

/// Starts nothing; accepts one passphrase (stands in for the CLI's node launcher).
struct FakeLauncher;

impl lookout_ui::Launcher for FakeLauncher {
    fn unlock(
        &self,
        passphrase: zeroize::Zeroizing<String>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), lookout_node::api::ApiError>> + Send + '_>,
    > {
        Box::pin(async move {
            if passphrase.as_str() == "right horse battery" {
                Ok(())
            } else {
                Err(lookout_node::api::ApiError::new(
                    lookout_node::api::ErrorCode::WrongPassphrase,
                    "wrong passphrase",
                ))
            }
        })
    }
}

#[tokio::test]
async fn after_a_quick_exit_only_the_passphrase_that_unlocked_the_node_opens_a_session() {
    let home = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ui = lookout_ui::Ui::new(
        home.path().to_path_buf(),
        &listener,
        Some(std::sync::Arc::new(FakeLauncher)),
    )
    .unwrap();
    let token = ui.url().split("token=").nth(1).unwrap().to_owned();
    tokio::spawn(ui.serve(listener, std::future::pending()));
    let s = Served {
        addr,
        token,
        _home: home,
    };
    let h = host(&s);
    let o = origin(&s);
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    // Before any quick exit, the passphrase form gives nothing.
    let early = send(
        s.addr,
        "POST",
        "/unlock",
        &[("Host", &h), ("Origin", &o), form_type],
        "passphrase=right+horse+battery",
    )
    .await;
    assert_eq!(early.status, 403);
    let cookie = login(&s).await;
    let csrf = csrf(&s, &cookie).await;
    // The node is started with the passphrase typed in the page.
    let wrong = send(
        s.addr,
        "POST",
        "/start",
        &[("Host", &h), ("Cookie", &cookie), ("Origin", &o), form_type],
        &format!("csrf={csrf}&passphrase=wrong"),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("Wrong passphrase"));
    let right = send(
        s.addr,
        "POST",
        "/start",
        &[("Host", &h), ("Cookie", &cookie), ("Origin", &o), form_type],
        &format!("csrf={csrf}&passphrase=right+horse+battery"),
    )
    .await;
    assert_eq!(right.status, 303, "{}", right.body);
    // Quick exit; then a wrong passphrase gets nothing, the right one a new session.
    let lock = send(
        s.addr,
        "POST",
        "/lock",
        &[
            ("Host", &h),
            ("Cookie", &cookie),
            ("Origin", &o),
            ("x-csrf-token", &csrf),
        ],
        "",
    )
    .await;
    assert_eq!(lock.status, 303);
    let page = send(s.addr, "GET", "/unlock", &[("Host", &h)], "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"passphrase\""));
    let wrong = send(
        s.addr,
        "POST",
        "/unlock",
        &[("Host", &h), ("Origin", &o), form_type],
        "passphrase=wrong",
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.header("set-cookie").is_none());
    let foreign = send(
        s.addr,
        "POST",
        "/unlock",
        &[("Host", &h), ("Origin", "http://evil.example"), form_type],
        "passphrase=right+horse+battery",
    )
    .await;
    assert_eq!(foreign.status, 403, "another site cannot unlock");
    let right = send(
        s.addr,
        "POST",
        "/unlock",
        &[("Host", &h), ("Origin", &o), form_type],
        "passphrase=right+horse+battery",
    )
    .await;
    assert_eq!(right.status, 303);
    let fresh = right
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, cookie);
    let page = send(
        s.addr,
        "GET",
        "/start",
        &[("Host", &h), ("Cookie", &fresh)],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
}
