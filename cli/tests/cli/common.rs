//! A small harness for running the real `lookout` binary: one-shot commands with a timeout, and
//! `lookout run` nodes that are killed when dropped, so no test can hang or leak a process.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The passphrase every test home uses.
pub const PASSPHRASE: &str = "correct horse battery staple";
/// Longest a one-shot command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest any condition is waited for.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Parse stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The binary under test, with the environment every test uses.
pub fn command(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lookout"));
    command
        .arg("--home")
        .arg(home)
        .env("LOOKOUT_PASSPHRASE", PASSPHRASE)
        .env("LOOKOUT_INSECURE_FAST_KDF", "1")
        // Debug builds only: keeps /proc/PID/fd readable to tests not running as root.
        .env("LOOKOUT_INSECURE_DUMPABLE", "1")
        .env("NO_COLOR", "1")
        .env_remove("LOOKOUT_HOME")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Run `lookout --home HOME ARGS...` to completion (killed after [`COMMAND_TIMEOUT`]).
pub fn run(home: &Path, args: &[&str]) -> Output {
    run_command(command(home).args(args))
}

/// Run a prepared command to completion (killed after [`COMMAND_TIMEOUT`]).
pub fn run_command(command: &mut Command) -> Output {
    let mut child = command.spawn().expect("start lookout");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lookout {command:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Run and require exit code 0.
pub fn ok(home: &Path, args: &[&str]) -> Output {
    let out = run(home, args);
    assert_eq!(out.code, 0, "lookout {args:?} failed: {out:?}");
    out
}

/// The `code` a command prints with `--json` (an invite, a join code, a pairing code).
pub fn code_from(home: &Path, args: &[&str]) -> String {
    ok(home, args).json()["code"].as_str().unwrap().to_owned()
}

/// Run and require a failure with this exit code and a message containing `message`.
pub fn fails(home: &Path, args: &[&str], code: i32, message: &str) -> Output {
    let out = run(home, args);
    assert_eq!(out.code, code, "lookout {args:?}: wrong exit code: {out:?}");
    assert!(
        out.stderr.contains(message),
        "lookout {args:?}: expected '{message}' in stderr: {out:?}"
    );
    assert_eq!(
        out.stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "exactly one error line: {out:?}"
    );
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

/// Create an identity, its revocation certificate written beside the home (`HOME.revocation`).
pub fn init(home: &Path, name: &str) -> serde_json::Value {
    let certificate = home.with_extension("revocation");
    ok(
        home,
        &[
            "init",
            "--name",
            name,
            "--json",
            "--revocation-cert",
            certificate.to_str().unwrap(),
        ],
    )
    .json()
}

/// Poll `check` until it gives a value, or panic after [`PATIENCE`].
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "timed out after {PATIENCE:?} waiting for: {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Ids of the live alerts a home sees (through its node if it runs).
pub fn alert_ids(home: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["alerts", "--json"];
    args.extend_from_slice(extra);
    ok(home, &args)
        .json()
        .as_array()
        .expect("alerts are an array")
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `status --json`.
pub fn status(home: &Path) -> serde_json::Value {
    ok(home, &["status", "--json"]).json()
}

/// Ana founds "Harbour Collective" (country GB) in `dir/ana`; returns her home.
pub fn founded(dir: &Path) -> PathBuf {
    let ana = dir.join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    ana
}

/// Post an alert; returns its id.
pub fn post(home: &Path, description: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "post",
        "--json",
        "--category",
        "violence",
        "--severity",
        "high",
        "--description",
        description,
    ];
    args.extend_from_slice(extra);
    ok(home, &args).json()["id"].as_str().unwrap().to_owned()
}

/// A `lookout run` process, killed (SIGKILL) when dropped.
pub struct Node {
    child: Child,
    pub home: PathBuf,
    /// Its listen addresses with /p2p/, as printed.
    pub addresses: Vec<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    /// Start a node on loopback, fast sync, no mDNS; wait until it serves commands.
    pub fn start(home: &Path) -> Node {
        Self::start_with(home, |_| {})
    }

    /// Everything the node wrote to stderr (its logs) so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// [`Node::start`], with a chance to change the command first (environment, flags).
    pub fn start_with(home: &Path, adjust: impl FnOnce(&mut Command)) -> Node {
        Self::start_args(home, adjust, &[])
    }

    /// [`Node::start_with`], with more arguments for `run` (such as `--peer ADDR`).
    pub fn start_args(home: &Path, adjust: impl FnOnce(&mut Command), extra: &[&str]) -> Node {
        let mut node = Self::spawn(home, adjust, extra);
        node.wait_ready();
        node
    }

    /// Start `lookout run` without waiting for it to be ready (see [`Node::wait_ready`]).
    pub fn spawn(home: &Path, adjust: impl FnOnce(&mut Command), extra: &[&str]) -> Node {
        Self::spawn_mdns(home, adjust, extra, false)
    }

    /// [`Node::start_args`] with the binary's own mDNS default (the harness otherwise passes
    /// `--no-mdns`).
    pub fn start_mdns_default(home: &Path, extra: &[&str]) -> Node {
        let mut node = Self::spawn_mdns(home, |_| {}, extra, true);
        node.wait_ready();
        node
    }

    fn spawn_mdns(
        home: &Path,
        adjust: impl FnOnce(&mut Command),
        extra: &[&str],
        mdns_default: bool,
    ) -> Node {
        let mut command = command(home);
        adjust(&mut command);
        command.args(["run", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        if !mdns_default {
            command.arg("--no-mdns");
        }
        if !extra.contains(&"--sync-interval") {
            command.args(["--sync-interval", "1"]);
        }
        let mut child = command.args(extra).spawn().expect("start lookout run");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = stdout.clone();
        let out = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let errors = stderr.clone();
        let mut err = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                errors
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Node {
            child,
            home: home.to_path_buf(),
            addresses: Vec::new(),
            stdout,
            stderr,
        }
    }

    /// Whether the node said it serves commands.
    pub fn is_ready(&self) -> bool {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Press Ctrl-C"))
    }

    /// Wait until the node serves commands and note its addresses.
    pub fn wait_ready(&mut self) {
        let started = Instant::now();
        while !self.is_ready() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "lookout run exited with {status}: {}",
                    self.stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < PATIENCE,
                "lookout run did not start: {}",
                self.stderr.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        }
        self.addresses = self
            .stdout
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.trim())
            .filter(|l| l.starts_with("/ip4/"))
            .map(str::to_owned)
            .collect();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the node printed so far.
    pub fn printed(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Stop it as Ctrl-C would (SIGTERM) and wait for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.wait_exit().expect("the node stops on SIGTERM");
        assert_eq!(code, 0, "clean exit: {}", self.stderr.lock().unwrap());
        assert!(self.printed().contains("Stopped."));
    }

    /// [`Node::stop`], then look at everything it logged.
    pub fn stop_and_then(self, check: impl FnOnce(&str)) {
        let logs = self.stderr.clone();
        self.stop();
        check(&logs.lock().unwrap());
    }

    /// Kill it without warning (SIGKILL), as a crash or a flat battery would.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Wait up to [`PATIENCE`] for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < PATIENCE {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}
