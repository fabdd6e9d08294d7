//! Running one CI step: a command whose output is streamed to the terminal and scanned for the
//! test counts its runner prints, so the final summary line adds up every runner.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Passed and failed counts of one or more runs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `program args` in the workspace root, streaming its output; returns whether it exited
/// 0 and the counts scanned from its output.
pub(crate) fn run(title: &str, program: &str, args: &[&str]) -> Result<(bool, Tally)> {
    eprintln!("==> {title}: {program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let stderr = child.stderr.take().context("stderr pipe")?;
    let err_thread = std::thread::spawn(move || scan(BufReader::new(stderr), false));
    let stdout = child.stdout.take().context("stdout pipe")?;
    let mut tally = scan(BufReader::new(stdout), true);
    tally.add(err_thread.join().unwrap_or_default());
    let status = child.wait()?;
    if !status.success() {
        eprintln!("==> {title}: FAILED ({status})");
    }
    Ok((status.success(), tally))
}

fn scan(reader: impl BufRead, to_stdout: bool) -> Tally {
    let mut tally = Tally::default();
    let mut unittest_ran = None;
    for line in reader.lines().map_while(Result::ok) {
        if to_stdout {
            #[allow(clippy::print_stdout)]
            {
                println!("{line}");
            }
        } else {
            eprintln!("{line}");
        }
        tally.add(counts(&line));
        tally.add(unittest_counts(&line, &mut unittest_ran));
    }
    tally
}

/// Python unittest prints `Ran N tests in …` and then `OK` or `FAILED (failures=a, errors=b)`.
fn unittest_counts(line: &str, ran: &mut Option<u64>) -> Tally {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("Ran ") {
        *ran = rest.split(' ').next().and_then(|n| n.parse().ok());
        return Tally::default();
    }
    let Some(n) = *ran else { return Tally::default() };
    if line == "OK" || line.starts_with("OK (") {
        *ran = None;
        return Tally { passed: n, failed: 0 };
    }
    if line.starts_with("FAILED (") {
        *ran = None;
        let failed = line.split("failures=").nth(1).map_or(0, leading_number)
            + line.split("errors=").nth(1).map_or(0, leading_number);
        return Tally { passed: n.saturating_sub(failed), failed };
    }
    Tally::default()
}

fn leading_number(text: &str) -> u64 {
    text.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
}

/// Test counts from one output line of cargo test, our conformance runner or `cargo xtask fuzz`.
fn counts(line: &str) -> Tally {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("test result: ") {
        // "test result: ok. 4 passed; 0 failed; 0 ignored; ..."
        return Tally {
            passed: number_before(rest, " passed"),
            failed: number_before(rest, " failed"),
        };
    }
    if let Some(rest) = line.strip_prefix("conformance: ").or_else(|| line.strip_prefix("fuzz: ")) {
        return Tally {
            passed: number_before(rest, " passed"),
            failed: number_before(rest, " failed"),
        };
    }
    Tally::default()
}

fn number_before(text: &str, marker: &str) -> u64 {
    text.find(marker)
        .and_then(|end| text[..end].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_runner_lines() {
        let t = counts("test result: ok. 12 passed; 3 failed; 0 ignored; 0 measured");
        assert_eq!((t.passed, t.failed), (12, 3));
        let t = counts("conformance: 20 passed, 1 failed");
        assert_eq!((t.passed, t.failed), (20, 1));
        let t = counts("fuzz: 1 passed, 1 failed");
        assert_eq!((t.passed, t.failed), (1, 1));
        let t = counts("==> fuzz frame_decode: passed (651221 runs in 61s, 10675 exec/s)");
        assert_eq!((t.passed, t.failed), (0, 0));
        let mut ran = None;
        assert_eq!(unittest_counts("Ran 7 tests in 0.3s", &mut ran).passed, 0);
        let t = unittest_counts("FAILED (failures=1, errors=2)", &mut ran);
        assert_eq!((t.passed, t.failed), (4, 3));
        let t = counts("something else 5 passed");
        assert_eq!((t.passed, t.failed), (0, 0));
    }
}
