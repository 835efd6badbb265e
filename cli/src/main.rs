//! `lookout`: the command every member and moderator of a Lookout collective uses.
//!
//! It is thin: parse the command line ([`args`]), reach this device's data through the running
//! node's control socket or by opening the encrypted store ([`session`]), send the node's
//! [`Request`](lookout_node::api::Request)s, print the answers ([`render`], [`sheet`]). Errors
//! become one line on stderr and an exit code from
//! [`ErrorCode::exit_code`](lookout_node::api::ErrorCode::exit_code), documented in
//! `lookout --help`.
//!
//! ```text
//! lookout init --name Ana
//! lookout collective create --name "Harbour Collective"
//! lookout run
//! ```

#![forbid(unsafe_code)]

mod args;
#[cfg(test)]
mod build_gate;
mod codes;
mod commands;
mod demo;
mod labels;
mod out;
mod render;
mod session;
mod sheet;
mod when;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use lookout_node::api::{ApiError, ErrorCode};
use lookout_node::when::Zone;
use tracing_subscriber::EnvFilter;

use crate::args::Cli;
use crate::out::Outcome;

fn main() -> ExitCode {
    // First, while this process has one thread: reading the offset later is unsound on Unix
    // (another thread may change the environment), and `time` refuses then.
    let zone = device_zone();
    let cli = Cli::parse();
    let json = cli.json;
    init_logging(cli.verbose);
    // Before any passphrase, key or alert is in memory: no core file, no ptrace attachment.
    lookout_node::hardening::harden_process();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(
                &ApiError::new(ErrorCode::Internal, format!("cannot start: {e}")),
                json,
            )
        }
    };
    let result = runtime.block_on(commands::dispatch(cli, zone));
    // Do not wait for background tasks (a node's connections) after the command finished.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingFound) => ExitCode::from(1),
        Err(error) => fail(&error, json),
    }
}

/// The device's time zone (`TZ` honoured): typed times of day are read in it and times are
/// shown in it, named (`14:30 (UTC+9)`), each in the offset in force at that time, so a node
/// running across a daylight-saving change shows and reads times on both sides right. UTC if it
/// cannot be read; the name beside every time then says so.
///
/// `time` reads an offset only while the process has one thread (the C library's reading races
/// with a change of the environment), so every offset is read here, at start: from a year and
/// a month back (the oldest incident time, and a little) to five years ahead (a node left
/// running), every week, each change narrowed to the second. Outside that span the nearest
/// end's offset holds.
fn device_zone() -> Zone {
    const WEEK: i64 = 7 * 86_400;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let offset_at = |at: i64| {
        let instant = time::OffsetDateTime::from_unix_timestamp(at).ok()?;
        let offset = time::UtcOffset::local_offset_at(instant).ok()?;
        Some(offset.whole_seconds())
    };
    match lookout_node::when::Offsets::sampled(now - 57 * WEEK, now + 261 * WEEK, WEEK, offset_at) {
        Some(offsets) => Zone::following(Box::leak(Box::new(offsets))),
        None => Zone::UTC,
    }
}

/// Print one line for the error (a JSON object with `--json`) and pick the exit code.
fn fail(error: &ApiError, json: bool) -> ExitCode {
    if json {
        let line = serde_json::json!({ "error": { "code": error.code, "message": error.message } });
        eprintln!("{line}");
    } else {
        let label = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        eprintln!("{label} {}", error.message);
    }
    ExitCode::from(u8::try_from(error.code.exit_code()).unwrap_or(10))
}

/// Logs go to stderr. Default: errors only (what a person needs is printed as plain sentences;
/// gossipsub alone warns on every alert it has already published); `-v` for warnings and
/// progress, `-vv`, `-vvv` for more; `RUST_LOG` overrides. The CLI itself never logs what the
/// user typed.
fn init_logging(verbose: u8) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose)));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

/// The log filter unless `RUST_LOG` is set: see [`init_logging`].
fn default_filter(verbose: u8) -> String {
    let (ours, others) = match verbose {
        0 => ("error", "error"),
        1 => ("info", "warn"),
        2 => ("debug", "warn"),
        _ => ("trace", "warn"),
    };
    // Other crates (libp2p and its transports) stay at warn even at -vvv: at debug they log
    // peers' IP addresses, which must never reach a log on a member's device.
    // sled logs its own ERROR lines while reading its settings file before returning the error
    // the message then explains (a damaged store/conf, Trial 12's T12-22): those are not shown
    // unless asked for with -v. Its other errors stay: a periodic flush or fsync that failed
    // (a full or failing disk) is said by nothing else (Review 19's R19-7).
    let sled_config = if verbose == 0 { "off" } else { others };
    format!(
        "{others},sled::config={sled_config},lookout={ours},lookout_node={ours},lookout_protocol={ours}"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Review 19's R19-7: hiding sled's settings-file lines (T12-22) switched all of sled's
    /// log off, so a failed periodic flush or fsync (a full or failing disk), which sled only
    /// logs, was said by nothing. Only its settings-file reader is quiet now.
    #[test]
    fn only_sleds_settings_file_lines_are_hidden_by_default() {
        let shown = Shared::default();
        let writer = shown.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_env_filter(EnvFilter::new(default_filter(0)))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "sled::config", "failed to parse persisted config line");
            tracing::error!(target: "sled::flusher", "failed to fsync from periodic flush thread");
            tracing::warn!(target: "libp2p_gossipsub", "a warning at the default level");
        });
        let shown = String::from_utf8(shown.0.lock().unwrap().clone()).unwrap();
        assert!(shown.contains("failed to fsync"), "{shown}");
        assert!(!shown.contains("persisted config"), "{shown}");
        assert!(!shown.contains("a warning"), "{shown}");
    }
}
