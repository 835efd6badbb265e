//! The interface in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, installed by `scripts/install-browser.sh`). Each test has a deadline, and
//! the driver and browser processes are killed at the end whatever happens. Where no browser
//! can be started, each test prints why and passes without checking anything (`.ci/run`
//! installs the browser first, so CI always runs them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use lookout_node::client::Client as NodeClient;
use lookout_node::control::socket_path;
use lookout_protocol::membership::Policy;
use lookout_tests::{draft, fresh_identity, start_node_with, test_config, Collective, TestNode};
use serde_json::json;

/// Deadline of each browser test.
const DEADLINE: Duration = Duration::from_secs(150);

/// A WebDriver session with its driver process (its own process group, killed on drop).
struct Browser {
    client: Option<Client>,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads its own process group: the browser it started goes with it.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Start chromedriver and a headless Chromium, or say why not.
async fn browser(width: u32, height: u32) -> Option<Browser> {
    let Some(driver_path) = which("chromedriver") else {
        eprintln!(
            "SKIPPED: chromedriver is not installed (run scripts/install-browser.sh as root)"
        );
        return None;
    };
    let Some(chromium) = which("chromium").or_else(|| which("chromium-browser")) else {
        eprintln!("SKIPPED: chromium is not installed (run scripts/install-browser.sh as root)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let mut command = Command::new(driver_path);
    command
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let driver = match command.spawn() {
        Ok(driver) => driver,
        Err(e) => {
            eprintln!("SKIPPED: chromedriver does not start: {e}");
            return None;
        }
    };
    let mut browser = Browser {
        client: None,
        driver,
    };
    let url = format!("http://127.0.0.1:{port}");
    let profile = tempfile::tempdir().ok()?;
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--lang=en-US", "--hide-scrollbars",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": { "intl.accept_languages": "en-US,en" }
        },
        "goog:loggingPrefs": { "browser": "ALL" }
    });
    let mut caps = caps.as_object().unwrap().clone();
    if width < 500 {
        // Desktop Chromium windows are at least 500 px wide: emulate a phone's screen instead.
        caps["goog:chromeOptions"]["mobileEmulation"] = json!({
            "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2, "touch": true }
        });
    }
    let started = Instant::now();
    loop {
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed (nor OpenSSL to build).
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                browser.client = Some(client);
                // The profile directory goes when the test ends.
                std::mem::forget(profile);
                return Some(browser);
            }
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                eprintln!("SKIPPED: chromium does not start under chromedriver: {e}");
                return None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Chromedriver's browser console log (`/se/log`).
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// Console entries that are errors, CSP violations or script failures.
async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(ConsoleLog).await.unwrap_or(json!([]));
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| {
            let level = entry["level"].as_str().unwrap_or_default();
            let message = entry["message"].as_str().unwrap_or_default();
            level == "SEVERE"
                || message.contains("Content Security Policy")
                || message.contains("Refused to")
        })
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A collective of a founder (moderator, whose page is served) and `members` more, running.
struct Scene {
    nodes: Vec<TestNode>,
    _controls: Vec<lookout_node::control::ControlSocket>,
    ui: SocketAddr,
    url: String,
    _dir: tempfile::TempDir,
}

async fn scene(members: usize) -> Scene {
    let collective = Collective::new(members, Policy::default());
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    let Collective {
        dir: homes,
        replicas,
    } = collective;
    let mut controls = Vec::new();
    for replica in replicas {
        let home = replica.home().to_path_buf();
        let node = start_node_with(replica, test_config()).await;
        controls.push(
            lookout_node::control::serve(&socket_path(&home), node.handle.clone())
                .await
                .unwrap(),
        );
        nodes.push(node);
    }
    for node in &nodes[1..] {
        lookout_tests::connect(node, &nodes[0]).await;
    }
    for node in &nodes {
        node.wait_members(members + 1).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ui = listener.local_addr().unwrap();
    let served = lookout_ui::Ui::new(nodes[0].home.clone(), &listener, None).unwrap();
    let url = served.url().to_owned();
    tokio::spawn(served.serve(listener, std::future::pending()));
    std::mem::forget(homes);
    Scene {
        nodes,
        ui,
        url,
        _controls: controls,
        _dir: dir,
    }
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The text of the first element matching `css`, or "" while there is none (a page that is
/// still loading): for conditions polled with [`within`].
async fn text_now(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn body(client: &Client) -> String {
    text(client, "body").await
}

/// Wait up to `limit` for the page to contain `needle`; show the page if it does not.
async fn page_has(c: &Client, limit: Duration, what: &str, needle: &str) {
    let started = Instant::now();
    loop {
        let page = c.find(Locator::Css("body")).await.ok();
        let text = match page {
            Some(body) => body.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if text.contains(needle) {
            return;
        }
        if started.elapsed() >= limit {
            panic!("{what}: no {needle:?} within {limit:?}; the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait up to `limit` for `check` to hold.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() >= limit {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_flows_in_a_real_browser() {
    tokio::time::timeout(DEADLINE, member_flows())
        .await
        .expect("browser test deadline");
}

async fn member_flows() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let s = scene(1).await;
    let c = browser.client();

    // Log in through the token URL: the token leaves the address bar.
    c.goto(&s.url).await.unwrap();
    let address = c.current_url().await.unwrap();
    assert_eq!(address.path(), "/");
    assert!(
        address.query().is_none(),
        "token left in the address bar: {address}"
    );
    assert_eq!(c.title().await.unwrap(), "Notes", "neutral title");
    let cookie = c.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(cookie, json!(""), "the session cookie is HttpOnly");

    // An alert posted on another node appears within 2 s, without reload.
    c.wait()
        .for_element(Locator::Css("#feed[data-connected='1']"))
        .await
        .unwrap();
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let id = s.nodes[1]
        .post(draft("Pulled a knife <b>at the door</b>", "07700 900123"))
        .await;
    let short = &id[..8];
    let posted = Instant::now();
    within(
        Duration::from_secs(2),
        "the alert posted elsewhere appears",
        || async {
            c.find(Locator::Css(&format!("#alert-{short}")))
                .await
                .is_ok()
        },
    )
    .await;
    eprintln!("alert from another node shown after {:?}", posted.elapsed());
    assert_eq!(
        c.execute("return window.notReloaded === true", vec![])
            .await
            .unwrap(),
        json!(true)
    );
    let card = text(c, &format!("#alert-{short} .desc")).await;
    assert_eq!(
        card, "Pulled a knife <b>at the door</b>",
        "member text shown as text, escaped"
    );

    // Check a number typed in a local format: answered as you type.
    c.goto(&format!("http://{}/check", s.ui)).await.unwrap();
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.send_keys("+44 7700 900123").await.unwrap();
    page_has(
        c,
        Duration::from_secs(5),
        "the check answers as you type",
        "Careful: 1 alert matches.",
    )
    .await;
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys("07700 900999").await.unwrap();
    page_has(
        c,
        Duration::from_secs(5),
        "no match for another number",
        "Nothing found for",
    )
    .await;

    // Post through the form; it arrives on the other node.
    c.goto(&format!("http://{}/post", s.ui)).await.unwrap();
    c.find(Locator::Css("#p-category option[value='robbery']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("input[name='severity'][value='high']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("p-description"))
        .await
        .unwrap()
        .send_keys("Took the money back by force")
        .await
        .unwrap();
    c.find(Locator::Id("p-phone"))
        .await
        .unwrap()
        .send_keys("07700 900456")
        .await
        .unwrap();
    c.find(Locator::Id("p-area"))
        .await
        .unwrap()
        .send_keys("Harbour Street")
        .await
        .unwrap();
    c.find(Locator::Id("post-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page_has(
        c,
        Duration::from_secs(5),
        "the post is confirmed",
        "Posted.",
    )
    .await;
    let other = &s.nodes[1];
    within(
        Duration::from_secs(10),
        "the post reaches the other node",
        || async {
            other
                .alerts()
                .await
                .iter()
                .any(|a| a.description == "Took the money back by force")
        },
    )
    .await;

    // Languages: Portuguese, then Tetum.
    c.goto(&format!("http://{}/", s.ui)).await.unwrap();
    let select = c.find(Locator::Id("lang")).await.unwrap();
    select.select_by_value("pt").await.unwrap();
    c.find(Locator::Id("lang-switch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    within(Duration::from_secs(5), "Portuguese", || async {
        text_now(c, "h1").await == "Alertas"
    })
    .await;
    assert_eq!(c.title().await.unwrap(), "Notas");
    let select = c.find(Locator::Id("lang")).await.unwrap();
    select.select_by_value("tet").await.unwrap();
    c.find(Locator::Id("lang-switch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    within(Duration::from_secs(5), "Tetum", || async {
        text_now(c, "h1").await == "Alerta sira"
    })
    .await;
    let lang = c
        .execute("return document.documentElement.lang", vec![])
        .await
        .unwrap();
    assert_eq!(lang, json!("tet"));
    let page = body(c).await;
    assert!(
        page.contains("Kona-ba") && !page.contains("Sobre"),
        "Tetum's own messages, not Portuguese fallbacks"
    );

    // Trial 12's T12-19: the description box allowed 2000 characters, the node 2000 bytes. An
    // accented text over the node's limit is refused by the page before it is sent, in the
    // page's language, and stays in the box.
    c.goto(&format!("http://{}/post", s.ui)).await.unwrap();
    let long = "Ameaçada à saída ".repeat(106);
    let validity = c
        .execute(
            "const box = document.getElementById('p-description');
             box.value = arguments[0];
             box.dispatchEvent(new Event('input'));
             return [box.checkValidity(), box.validationMessage, box.value.length];",
            vec![json!(long)],
        )
        .await
        .unwrap();
    assert_eq!(validity[0], json!(false), "{validity}");
    assert!(
        validity[1]
            .as_str()
            .unwrap()
            .starts_with("Deskrisaun naruk liu ba grupu"),
        "{validity}"
    );
    assert_eq!(validity[2], json!(long.chars().count()), "kept");
    let shorter = c
        .execute(
            "const box = document.getElementById('p-description');
             box.value = arguments[0];
             box.dispatchEvent(new Event('input'));
             return box.checkValidity();",
            vec![json!("Ameaçada à saída")],
        )
        .await
        .unwrap();
    assert_eq!(shorter, json!(true));

    // No CSP violation and no script error anywhere so far.
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Quick exit with Esc: a neutral page, nothing to go back to, the session locked.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    within(Duration::from_secs(5), "the neutral page", || async {
        c.current_url()
            .await
            .map(|u| u.path() == "/exit")
            .unwrap_or(false)
    })
    .await;
    assert_eq!(c.title().await.unwrap(), "Notes");
    assert!(body(c).await.contains("No notes yet."));
    c.goto(&format!("http://{}/", s.ui)).await.unwrap();
    assert_eq!(body(c).await, "Nothing here.", "the session is locked");
    c.goto(&s.url).await.unwrap();
    assert_eq!(
        body(c).await,
        "Nothing here.",
        "the launch token is retired"
    );

    browser.close().await;
    for node in s.nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_flows_in_a_real_browser() {
    tokio::time::timeout(DEADLINE, moderator_flows())
        .await
        .expect("browser test deadline");
}

async fn moderator_flows() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let s = scene(1).await;
    let c = browser.client();
    c.goto(&s.url).await.unwrap();

    // Approve a pasted join code: the invite and its QR code are shown.
    let newcomer_home = s._dir.path().join("newcomer");
    let newcomer = fresh_identity(&newcomer_home, "Newcomer");
    let code = newcomer.join_request().to_code();
    c.goto(&format!("http://{}/moderate", s.ui)).await.unwrap();
    c.find(Locator::Id("join-code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    c.find(Locator::Css("#approve-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Trial 12: the code's name and fingerprint come first; only that page's button approves.
    page_has(
        c,
        Duration::from_secs(5),
        "the fingerprint to compare",
        &newcomer.status().fingerprint,
    )
    .await;
    c.find(Locator::Id("approve-confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page_has(
        c,
        Duration::from_secs(5),
        "the approval",
        "is now a member.",
    )
    .await;
    let invite = c
        .find(Locator::Id("invite-code"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(invite.starts_with("LK"), "{invite}");
    c.find(Locator::Css(".qr svg"))
        .await
        .expect("a QR code of the invite");
    let founder = NodeClient::new(s.nodes[0].handle.clone())
        .members()
        .await
        .unwrap();
    assert!(founder.members.iter().any(|m| m.name == "Newcomer"));

    // Revoke, with a confirmation page first.
    c.goto(&format!("http://{}/moderate", s.ui)).await.unwrap();
    let member = s.nodes[1].member.to_hex();
    c.find(Locator::Css(&format!(
        "li[data-member='{member}'] a.revoke"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    page_has(
        c,
        Duration::from_secs(5),
        "the confirmation",
        "Remove member1?",
    )
    .await;
    assert!(
        s.nodes[0].member_ids().await.contains(&member),
        "nothing happens before confirming"
    );
    c.find(Locator::Id("reason"))
        .await
        .unwrap()
        .send_keys("phone stolen")
        .await
        .unwrap();
    c.find(Locator::Id("revoke-confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page_has(c, Duration::from_secs(5), "the removal", "Removed.").await;
    assert!(!s.nodes[0].member_ids().await.contains(&member));

    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    for node in s.nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_adds_and_removes_a_mailbox_in_a_real_browser() {
    tokio::time::timeout(DEADLINE, mailbox_flows())
        .await
        .expect("browser test deadline");
}

async fn mailbox_flows() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let s = scene(1).await;
    let c = browser.client();
    c.goto(&s.url).await.unwrap();
    let mailboxes = || async {
        NodeClient::new(s.nodes[0].handle.clone())
            .mailboxes()
            .await
            .unwrap()
    };

    // Paste a pairing code: the mailbox is listed with its short id and address.
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let pairing = lookout_protocol::mailbox::MailboxPairing::create(
        &key,
        vec!["/ip4/127.0.0.1/tcp/4001".into()],
        [7; 32],
        lookout_node::replica::now(),
    )
    .unwrap();
    let id = hex::encode(key.verifying_key().to_bytes());
    c.goto(&format!("http://{}/moderate", s.ui)).await.unwrap();
    type_into(c, "mailbox-code", &pairing.to_code()).await;
    c.find(Locator::Css("#mailbox-add-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page_has(c, Duration::from_secs(5), "the addition", "Mailbox added.").await;
    let row = format!("li[data-mailbox='{id}']");
    within(Duration::from_secs(5), "the mailbox listed", || async {
        let listed = text_now(c, &row).await;
        listed.contains(&id[..16]) && listed.contains("/ip4/127.0.0.1/tcp/4001")
    })
    .await;
    assert!(mailboxes().await.current.iter().any(|m| m.id == id));

    // Remove it, with a confirmation page first.
    c.find(Locator::Css(&format!("{row} a.mailbox-remove")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page_has(
        c,
        Duration::from_secs(5),
        "the confirmation",
        &format!("Remove mailbox {}?", &id[..16]),
    )
    .await;
    assert!(
        mailboxes().await.current.iter().any(|m| m.id == id),
        "nothing happens before confirming"
    );
    click(c, "mailbox-remove-confirm").await;
    page_has(c, Duration::from_secs(5), "the removal", "Mailbox removed.").await;
    let view = mailboxes().await;
    assert!(view.current.is_empty());
    assert!(view.removed.iter().any(|m| m.id == id));
    assert!(
        c.find(Locator::Css(&row)).await.is_err(),
        "a removed mailbox is no longer listed"
    );

    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    for node in s.nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_one_and_other_sites_get_nothing_in_a_browser() {
    tokio::time::timeout(DEADLINE, outsiders())
        .await
        .expect("browser test deadline");
}

async fn outsiders() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let s = scene(1).await;
    let c = browser.client();
    c.goto(&format!("http://{}/", s.ui)).await.unwrap();
    assert_eq!(body(c).await, "Nothing here.");
    let wrong = s.url.replace("token=", "token=0");
    c.goto(&wrong).await.unwrap();
    assert_eq!(body(c).await, "Nothing here.");
    // localhost is another Host name for the same port (as a rebinding attack would use).
    c.goto(&s.url.replace("127.0.0.1", "localhost"))
        .await
        .unwrap();
    assert_eq!(body(c).await, "Nothing here.");

    // Logged in, then another site's page posts a quick exit at the interface: refused.
    c.goto(&s.url).await.unwrap();
    let evil = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .or(tokio::net::TcpListener::bind("127.0.0.1:0").await)
        .unwrap();
    let evil_addr = evil.local_addr().unwrap();
    let target = format!("http://{}/lock", s.ui);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = evil.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let page = format!("<!doctype html><form id=f method=post action='{target}'><input name=csrf value=x></form><script>document.getElementById('f').submit()</script>");
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len());
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    c.goto(&format!("http://{evil_addr}/")).await.unwrap();
    within(Duration::from_secs(5), "the forged post lands", || async {
        c.current_url()
            .await
            .map(|u| u.path() == "/lock")
            .unwrap_or(false)
    })
    .await;
    assert_eq!(body(c).await, "Nothing here.");
    c.goto(&format!("http://{}/status", s.ui)).await.unwrap();
    assert!(
        body(c).await.contains("Status"),
        "the session survived the forged post"
    );
    browser.close().await;
    for node in s.nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_with_labelled_controls_and_44px_targets() {
    tokio::time::timeout(DEADLINE, phone_pages())
        .await
        .expect("browser test deadline");
}

/// Per page: how far it scrolls sideways, controls under 44 px tall, controls without a label.
const LAYOUT_PROBE: &str = r#"
const small = [], unlabelled = [];
for (const el of document.querySelectorAll('button, a, select, input:not([type=hidden]), textarea, summary')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (el.classList.contains('skip')) continue;
  const target = (el.type === 'checkbox' || el.type === 'radio') ? el.closest('label') : el;
  if (target && target.getBoundingClientRect().height < 44) small.push(el.outerHTML.slice(0, 90));
  if (['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName) && el.labels.length === 0 && !el.getAttribute('aria-label')) unlabelled.push(el.outerHTML.slice(0, 90));
}
return { overflow: document.documentElement.scrollWidth - window.innerWidth, small, unlabelled };
"#;

async fn phone_pages() {
    let Some(browser) = browser(360, 780).await else {
        return;
    };
    let s = scene(1).await;
    s.nodes[1]
        .post(draft("Refused to pay and followed me home", "07700 900777"))
        .await;
    let founder = &s.nodes[0];
    lookout_tests::eventually("the alert arrives", || async {
        (!founder.alerts().await.is_empty()).then_some(())
    })
    .await;
    let c = browser.client();
    c.goto(&s.url).await.unwrap();
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(360), "a phone-sized screen");
    for path in ["/", "/check", "/post", "/status", "/moderate", "/sheet"] {
        c.goto(&format!("http://{}{path}", s.ui)).await.unwrap();
        let probe = c.execute(LAYOUT_PROBE, vec![]).await.unwrap();
        assert!(
            probe["overflow"].as_i64().unwrap() <= 0,
            "{path} scrolls sideways: {probe}"
        );
        assert_eq!(probe["small"], json!([]), "{path}: targets under 44 px");
        assert_eq!(
            probe["unlabelled"],
            json!([]),
            "{path}: controls without a label"
        );
    }
    // The printable sheet names no member.
    c.goto(&format!("http://{}/sheet", s.ui)).await.unwrap();
    let sheet = body(c).await;
    assert!(sheet.contains("Refused to pay and followed me home"));
    assert!(
        !sheet.contains("member1") && !sheet.contains("founder"),
        "{sheet}"
    );
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    for node in s.nodes {
        node.stop().await;
    }
}

/// Runs a real node for the page in this process, as `lookout ui` does (with the test network
/// settings and the fast key derivation).
#[derive(Default)]
struct NodeLauncher {
    node: tokio::sync::Mutex<
        Option<(
            lookout_node::NodeHandle,
            lookout_node::control::ControlSocket,
        )>,
    >,
}

impl lookout_ui::Launcher for NodeLauncher {
    fn start(&self, replica: lookout_node::replica::Replica) -> lookout_ui::Pending<'_, ()> {
        Box::pin(async move {
            let internal = |e: String| {
                lookout_node::api::ApiError::new(lookout_node::api::ErrorCode::Internal, e)
            };
            let home = replica.home().to_path_buf();
            let handle = lookout_node::start(replica, test_config())
                .await
                .map_err(|e| internal(e.to_string()))?;
            let control = lookout_node::control::serve(&socket_path(&home), handle.clone())
                .await
                .map_err(|e| internal(e.to_string()))?;
            *self.node.lock().await = Some((handle, control));
            Ok(())
        })
    }

    fn stop(&self) -> lookout_ui::Pending<'_, ()> {
        Box::pin(async move {
            if let Some((node, _control)) = self.node.lock().await.take() {
                node.shutdown().await;
            }
            Ok(())
        })
    }

    fn kdf(&self) -> lookout_protocol::passphrase::KdfParams {
        lookout_protocol::passphrase::KdfParams::TESTING
    }
}

/// The page for a home where nothing exists yet, with a launcher that runs real nodes.
async fn first_run_scene(home: PathBuf) -> (SocketAddr, String, std::sync::Arc<NodeLauncher>) {
    let launcher = std::sync::Arc::new(NodeLauncher::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ui = listener.local_addr().unwrap();
    let served = lookout_ui::Ui::new(home, &listener, Some(launcher.clone())).unwrap();
    let url = served.url().to_owned();
    tokio::spawn(served.serve(listener, std::future::pending()));
    (ui, url, launcher)
}

const STRONG: &str = "orbit velvet cactus lantern";

async fn type_into(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn value(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Log in on a device without an identity and create one called `name` through the page.
async fn create_identity(c: &Client, url: &str, name: &str) {
    c.goto(url).await.unwrap();
    within(Duration::from_secs(5), "the first-run page", || async {
        c.current_url()
            .await
            .map(|u| u.path() == "/welcome")
            .unwrap_or(false)
    })
    .await;
    assert_eq!(c.title().await.unwrap(), "Notes", "neutral title");
    page_has(c, Duration::from_secs(5), "the welcome", "Welcome").await;
    type_into(c, "w-name", name).await;
    // The meter says how guessable the passphrase is as it is typed.
    type_into(c, "w-passphrase", "password1").await;
    page_has(
        c,
        Duration::from_secs(5),
        "a weak passphrase",
        "Very easy to guess",
    )
    .await;
    c.find(Locator::Id("w-passphrase"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    type_into(c, "w-passphrase", STRONG).await;
    page_has(
        c,
        Duration::from_secs(5),
        "a strong passphrase",
        "hard to guess",
    )
    .await;
    type_into(c, "w-again", STRONG).await;
    click(c, "welcome-submit").await;
    page_has(
        c,
        Duration::from_secs(10),
        "the identity is created",
        &format!("Hello, {name}"),
    )
    .await;
    let address = c.current_url().await.unwrap();
    assert!(
        !address.as_str().contains("orbit") && address.query().is_none(),
        "the passphrase never lands in an address: {address}"
    );
    assert!(
        value(c, "certificate").await.starts_with("LK"),
        "the emergency code"
    );
    c.find(Locator::Css(".qr svg"))
        .await
        .expect("the join code as a QR code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_creates_an_identity_and_founds_a_collective_in_a_real_browser() {
    tokio::time::timeout(DEADLINE, first_run_found())
        .await
        .expect("browser test deadline");
}

async fn first_run_found() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (_ui, url, launcher) = first_run_scene(home.clone()).await;
    let c = browser.client();
    create_identity(c, &url, "Ana").await;
    type_into(c, "f-name", "Harbour Collective").await;
    type_into(c, "f-country", "gb").await;
    click(c, "found-submit").await;
    page_has(
        c,
        Duration::from_secs(10),
        "the collective is founded",
        "Your group is ready.",
    )
    .await;
    assert_eq!(text(c, "h1").await, "Alerts");
    c.find(Locator::Css("nav a[href='/moderate']"))
        .await
        .expect("the founder moderates");
    let status = NodeClient::new(
        lookout_node::control::Connection::connect(&home)
            .await
            .unwrap(),
    )
    .status()
    .await
    .unwrap();
    assert_eq!(status.collective.as_deref(), Some("Harbour Collective"));
    assert!(status.is_moderator);
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    let _ = lookout_ui::Launcher::stop(&*launcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_asks_to_join_and_becomes_a_member_with_the_invite_in_a_real_browser() {
    tokio::time::timeout(DEADLINE, first_run_join())
        .await
        .expect("browser test deadline");
}

async fn first_run_join() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    // A moderator's node elsewhere.
    let Collective { dir, mut replicas } = Collective::new(0, Policy::default());
    let moderator = start_node_with(replicas.remove(0), test_config()).await;
    lookout_tests::listen_addr(&moderator).await;
    let (ui, url, launcher) = first_run_scene(dir.path().join("newcomer")).await;
    let c = browser.client();
    create_identity(c, &url, "Newcomer").await;
    // The join code and the fingerprint to read aloud, on screen.
    let code = value(c, "join-request").await;
    assert!(code.starts_with("LKJOIN"), "{code}");
    let shown = text(c, "#fingerprint").await;
    // The moderator approves it (through the node's client) and hands over the invite.
    let approved = NodeClient::new(moderator.handle.clone())
        .approve(code)
        .await
        .unwrap();
    assert!(approved.done);
    let members = moderator.members().await;
    let newcomer = members
        .members
        .iter()
        .find(|m| m.name == "Newcomer")
        .unwrap();
    assert_eq!(
        newcomer.fingerprint, shown,
        "the moderator sees the fingerprint read aloud"
    );
    type_into(c, "invite", &approved.invite.unwrap()).await;
    click(c, "join-submit").await;
    page_has(c, Duration::from_secs(10), "joined", "Invite saved.").await;
    // The node started for the page learns of its admission from the moderator's.
    let started = Instant::now();
    loop {
        c.goto(&format!("http://{ui}/status")).await.unwrap();
        if body(c).await.contains("Newcomer · member") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not a member within 30 s: {}",
            body(c).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    let _ = lookout_ui::Launcher::stop(&*launcher).await;
    moderator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_wipe_needs_the_word_then_leaves_a_neutral_page_and_no_home() {
    tokio::time::timeout(DEADLINE, emergency_wipe())
        .await
        .expect("browser test deadline");
}

async fn emergency_wipe() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (ui, url, launcher) = first_run_scene(home.clone()).await;
    let c = browser.client();
    create_identity(c, &url, "Ana").await;
    type_into(c, "f-name", "Harbour Collective").await;
    type_into(c, "f-country", "gb").await;
    click(c, "found-submit").await;
    page_has(
        c,
        Duration::from_secs(10),
        "founded",
        "Your group is ready.",
    )
    .await;
    c.goto(&format!("http://{ui}/status")).await.unwrap();
    click(c, "wipe-link").await;
    page_has(
        c,
        Duration::from_secs(5),
        "the confirmation",
        "Erase everything",
    )
    .await;
    assert_eq!(text(c, "#wipe-shown").await, "ERASE");
    let errors = console_errors(c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // Anything but the word shown erases nothing.
    type_into(c, "wipe-word", "yes").await;
    click(c, "wipe-confirm").await;
    page_has(c, Duration::from_secs(5), "refused", "Nothing was erased.").await;
    assert!(lookout_node::store::Store::exists(&home));
    assert!(lookout_node::control::Connection::connect(&home)
        .await
        .is_some());
    type_into(c, "wipe-word", "erase").await;
    click(c, "wipe-confirm").await;
    within(Duration::from_secs(20), "the neutral page", || async {
        c.current_url()
            .await
            .map(|u| u.path() == "/exit")
            .unwrap_or(false)
    })
    .await;
    assert_eq!(c.title().await.unwrap(), "Notes");
    assert!(body(c).await.contains("No notes yet."));
    assert!(!home.exists(), "the home is gone");
    assert!(launcher.node.lock().await.is_none(), "the node stopped");
    c.goto(&format!("http://{ui}/")).await.unwrap();
    assert_eq!(body(c).await, "Nothing here.", "the session is gone");
    c.goto(&url).await.unwrap();
    assert_eq!(
        body(c).await,
        "Nothing here.",
        "the launch token is retired"
    );
    // Only the refusals above (answered 400 and 403): no CSP violation, no script error.
    let errors = console_errors(c).await;
    assert!(
        errors.iter().all(|e| e.contains("Failed to load resource")),
        "console errors: {errors:?}"
    );
    browser.close().await;
}

/// Screenshots of the main screens at phone and desktop width for `docs/screenshots/` (run
/// on demand: `cargo test -p lookout-ui --test ui browser::screenshots -- --ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots; run on demand"]
async fn screenshots() {
    tokio::time::timeout(DEADLINE, take_screenshots())
        .await
        .expect("browser test deadline");
}

async fn take_screenshots() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let s = scene(1).await;
    let mut first = draft(
        "Pulled a knife when asked to pay. Drives a silver hatchback.",
        "07700 900123",
    );
    first.area = "Harbour Street".into();
    first.severity = lookout_protocol::content::Severity::Critical;
    s.nodes[1].post(first).await;
    let mut second = draft(
        "Refused to pay, shouted and followed me to the bus stop.",
        "07700 900456",
    );
    second.area = "Station Road".into();
    second.category = lookout_protocol::content::Category::NonPayment;
    second.severity = lookout_protocol::content::Severity::Medium;
    s.nodes[1].post(second).await;
    let founder = &s.nodes[0];
    lookout_tests::eventually("alerts reach the founder", || async {
        (founder.alerts().await.len() == 2).then_some(())
    })
    .await;
    for (label, width, height) in [("phone", 360, 780), ("desktop", 1280, 860)] {
        let Some(browser) = browser(width, height).await else {
            return;
        };
        let c = browser.client();
        c.goto(&s.url).await.unwrap();
        let shots: [(&str, &str); 5] = [
            ("alerts", "/"),
            ("check", "/check"),
            ("post", "/post"),
            ("moderate", "/moderate"),
            ("wipe", "/wipe"),
        ];
        for (name, path) in shots {
            c.goto(&format!("http://{}{path}", s.ui)).await.unwrap();
            if name == "check" {
                c.find(Locator::Id("q"))
                    .await
                    .unwrap()
                    .send_keys("07700 900123")
                    .await
                    .unwrap();
                page_has(c, Duration::from_secs(5), "check", "Careful").await;
                c.execute("document.activeElement.blur()", vec![])
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let png = c.screenshot().await.unwrap();
            std::fs::write(out.join(format!("{name}-{label}.png")), png).unwrap();
        }
        // The server has locked nothing; a new browser logs in again with a new session.
        browser.close().await;
        // Each launch token opens any number of sessions until a quick exit.
    }
    for node in s.nodes {
        node.stop().await;
    }
    // The first-run screens, on a device without an identity.
    for (label, width, height) in [("phone", 360, 780), ("desktop", 1280, 860)] {
        let Some(browser) = browser(width, height).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (_ui, url, launcher) = first_run_scene(dir.path().join("home")).await;
        let c = browser.client();
        c.goto(&url).await.unwrap();
        page_has(c, Duration::from_secs(5), "welcome", "Welcome").await;
        type_into(c, "w-name", "Ana").await;
        type_into(c, "w-passphrase", STRONG).await;
        page_has(c, Duration::from_secs(5), "meter", "hard to guess").await;
        c.execute("document.activeElement.blur()", vec![])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(out.join(format!("welcome-{label}.png")), png).unwrap();
        type_into(c, "w-again", STRONG).await;
        click(c, "welcome-submit").await;
        page_has(c, Duration::from_secs(10), "enrol", "Hello, Ana").await;
        c.execute("document.getElementById('join-h').scrollIntoView()", vec![])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(out.join(format!("join-{label}.png")), png).unwrap();
        browser.close().await;
        let _ = lookout_ui::Launcher::stop(&*launcher).await;
    }
}
