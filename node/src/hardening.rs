//! Process hardening: a process that holds the storage key, the identity and decrypted alerts
//! must not leave them in a core file, and other processes of the same user must not read its
//! memory.
//!
//! [`harden_process`] sets the core-file size limit to zero (soft and hard, so the process cannot
//! raise it again) and, on Linux, clears the "dumpable" flag (`PR_SET_DUMPABLE` 0): no core dump
//! even if the limit were raised, no `ptrace` attachment (a debugger, `gdb -p`, `strace -p`) and
//! no reading of `/proc/PID/mem` by processes of the same user that lack `CAP_SYS_PTRACE`. On
//! Android the core limit is set; the dumpable flag needs a system call the `nix` crate does not
//! wrap there, and an app process of a release build is not dumpable anyway.
//!
//! Debug builds keep the process dumpable when `LOOKOUT_INSECURE_DUMPABLE=1` (a test reading
//! `/proc/PID/fd` as a normal user needs it); a release build ignores the variable, as it does the
//! fast test KDF.

/// Keeps a debug build dumpable; ignored by release builds.
pub(crate) const INSECURE_DUMPABLE_ENV: &str = "LOOKOUT_INSECURE_DUMPABLE";

/// What [`harden_process`] managed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hardening {
    /// The core-file size limit is zero.
    pub no_core_dumps: bool,
    /// The process is not dumpable: no ptrace attachment, no core file (Linux only).
    pub not_dumpable: bool,
}

/// Disables core dumps and ptrace attachment for this process where the OS allows. Call it
/// first thing in `main`, before any secret is in memory. Never fails: what could not be done
/// is reported.
pub fn harden_process() -> Hardening {
    let keep_dumpable =
        cfg!(debug_assertions) && std::env::var(INSECURE_DUMPABLE_ENV).is_ok_and(|v| v == "1");
    let hardening = Hardening {
        no_core_dumps: no_core_dumps(),
        not_dumpable: !keep_dumpable && not_dumpable(),
    };
    tracing::debug!(
        no_core_dumps = hardening.no_core_dumps,
        not_dumpable = hardening.not_dumpable,
        "process hardened"
    );
    hardening
}

#[cfg(unix)]
fn no_core_dumps() -> bool {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).is_ok()
}

#[cfg(not(unix))]
fn no_core_dumps() -> bool {
    false
}

#[cfg(target_os = "linux")]
fn not_dumpable() -> bool {
    use nix::sys::prctl::{get_dumpable, set_dumpable};
    // Read back what the kernel now says.
    set_dumpable(false).is_ok() && get_dumpable().is_ok_and(|dumpable| !dumpable)
}

#[cfg(not(target_os = "linux"))]
fn not_dumpable() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// In a child process (so the test runner stays debuggable): after hardening, the kernel
    /// reports a core limit of zero and the process as not dumpable.
    #[test]
    fn a_hardened_process_has_no_core_limit_and_is_not_dumpable() {
        if std::env::var("LOOKOUT_HARDENING_CHILD").is_ok() {
            let hardening = harden_process();
            assert!(hardening.no_core_dumps);
            let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
            let core = limits
                .lines()
                .find(|l| l.starts_with("Max core file size"))
                .unwrap();
            assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
            assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
            #[cfg(target_os = "linux")]
            {
                assert!(hardening.not_dumpable);
                assert!(!nix::sys::prctl::get_dumpable().unwrap());
            }
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "hardening::tests::a_hardened_process_has_no_core_limit_and_is_not_dumpable",
                "--exact",
                "--nocapture",
            ])
            .env("LOOKOUT_HARDENING_CHILD", "1")
            .env_remove(INSECURE_DUMPABLE_ENV)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
