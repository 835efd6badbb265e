//! `lookout ui`: one command starts the node and serves the page on loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// One HTTP/1.1 request with a deadline; (status line, whole answer).
fn http(address: &str, path: &str, cookie: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    (answer.lines().next().unwrap_or_default().to_owned(), answer)
}

#[test]
fn ui_starts_the_node_and_serves_the_page_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let home = founded(dir.path());
    fails(
        &home,
        &["ui", "--no-open", "--listen", "0.0.0.0:0"],
        2,
        "loopback",
    );
    let mut child = command(&home)
        .args(["ui", "--no-open", "--listen", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let url = loop {
        let line = received
            .recv_timeout(PATIENCE)
            .expect("lookout ui prints its address");
        if let Some(at) = line.find("http://127.0.0.1:") {
            break line[at..].trim().to_owned();
        }
    };
    let rest = url.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_once('/').unwrap();
    // The node runs (started by `ui` with the passphrase it was given) and answers others.
    let running = eventually("the node started by `lookout ui`", || {
        let running = status(&home);
        (running["running"] == true).then_some(running)
    });
    assert_eq!(running["members"], 1);
    let (line, _) = http(address, "/", None);
    assert!(line.contains(" 403 "), "{line}");
    let (line, answer) = http(address, &format!("/{path}"), None);
    assert!(line.contains(" 303 "), "{line}");
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (line, page) = http(address, "/", Some(&cookie));
    assert!(line.contains(" 200 "), "{line}");
    assert!(page.contains("<h1>Alerts</h1>"), "{page}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut waited = Duration::ZERO;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(waited < PATIENCE, "lookout ui stops on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    };
    assert_eq!(code, Some(0));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(
        status(&home)["running"],
        false,
        "the node stopped with the page: {stderr}"
    );
}
