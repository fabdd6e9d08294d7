//! The parent watchdog: a backstop to stdin EOF. The plugin drains and exits when its parent
//! process changes (it was re-parented because the host died) or when the host pid announced in
//! `initialize.hostPid` no longer exists.

use std::sync::Mutex;

use nix::errno::Errno;
use nix::unistd::{Pid, getppid};

/// What the watchdog compares against.
#[derive(Debug)]
pub(crate) struct ParentWatch {
    start_ppid: Pid,
    host_pid: Mutex<Option<Pid>>,
}

impl ParentWatch {
    /// Remembers the current parent.
    pub(crate) fn new() -> ParentWatch {
        ParentWatch { start_ppid: getppid(), host_pid: Mutex::new(None) }
    }

    /// Also watch the host process named in `initialize`.
    pub(crate) fn set_host_pid(&self, pid: u32) {
        match i32::try_from(pid) {
            Ok(pid) if pid > 1 => {
                *self.host_pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pid::from_raw(pid));
            }
            _ => tracing::debug!(pid, "ignoring an unusable hostPid"),
        }
    }

    /// Whether the parent changed or the host process no longer exists.
    pub(crate) fn gone(&self) -> bool {
        if getppid() != self.start_ppid {
            return true;
        }
        let host = *self.host_pid.lock().unwrap_or_else(|e| e.into_inner());
        // Signal 0 only checks existence; EPERM means it exists under another uid.
        host.is_some_and(|pid| nix::sys::signal::kill(pid, None) == Err(Errno::ESRCH))
    }
}
