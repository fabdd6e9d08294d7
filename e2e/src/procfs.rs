//! Just enough of `/proc` to find the plugin processes a daemon started (its children) and to
//! tell when one is gone. A process is named by pid plus start time, so a recycled pid is never
//! mistaken for the process we meant.

use std::path::Path;

/// One process, robust against pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    start_time: u64,
}

/// What `/proc/<pid>/stat` says about a process: (state, ppid, start time).
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    // Field 22 of the whole line (starttime) is the 20th after the command name.
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start_time))
}

/// The live child processes of `parent`.
pub(crate) fn children(parent: u32) -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir(Path::new("/proc")) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, ppid, start_time) = stat(pid)?;
            (ppid == parent && state != 'Z').then_some(Proc { pid, start_time })
        })
        .collect()
}

/// Whether the process still runs (a zombie counts as gone: it runs no code).
pub(crate) fn alive(p: Proc) -> bool {
    stat(p.pid).is_some_and(|(state, _, start)| start == p.start_time && state != 'Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_found_and_seen_gone_once_reaped() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let found: Vec<Proc> =
            children(std::process::id()).into_iter().filter(|p| p.pid == child.id()).collect();
        assert_eq!(found.len(), 1);
        assert!(alive(found[0]));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(found[0]));
    }
}
