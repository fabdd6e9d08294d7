//! `cargo xtask fuzz [SECONDS] [TARGET…]`: runs each cargo-fuzz target of the agent relay for a
//! bounded time, names the input of any crash, and ends with `fuzz: N passed, N failed` (one
//! test per target) so `cargo xtask ci` can count it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::steps::root;

/// The crate whose `fuzz/` holds the cargo-fuzz project (excluded from the workspace);
/// `cargo fuzz` runs from here.
const CRATE_DIR: &str = "adaptor/agent-relay";
/// Every target in `fuzz_targets/`.
pub(crate) const TARGETS: &[&str] = &["frame_decode", "create_container_rewrite"];
/// Seconds per target when none are given.
const DEFAULT_SECONDS: u64 = 60;
/// One input running longer than this is a hang, reported like a crash.
const INPUT_TIMEOUT_SECONDS: u64 = 10;

/// How cargo-fuzz gets the nightly-only flags (`-Zsanitizer`) it passes to rustc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    /// A rustup `nightly` toolchain is installed.
    Nightly,
    /// Only stable: unlock its nightly features with `RUSTC_BOOTSTRAP=1`.
    StableBootstrap,
}

impl Toolchain {
    fn detect() -> Toolchain {
        let nightly = Command::new("rustup")
            .args(["run", "nightly", "rustc", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if nightly { Toolchain::Nightly } else { Toolchain::StableBootstrap }
    }

    /// `cargo fuzz <args>` on this toolchain, from the fuzz project's parent directory.
    fn cargo_fuzz(self, args: &[&str]) -> Command {
        let mut cmd = match self {
            Toolchain::Nightly => {
                let mut cmd = Command::new("rustup");
                cmd.args(["run", "nightly", "cargo"]);
                cmd
            }
            Toolchain::StableBootstrap => {
                let mut cmd = Command::new("cargo");
                cmd.env("RUSTC_BOOTSTRAP", "1");
                cmd
            }
        };
        // Under `cargo xtask` these point at the stable toolchain and the workspace's own
        // target dir; sanitizer builds live in the fuzz project's target dir instead.
        cmd.env_remove("RUSTUP_TOOLCHAIN").env_remove("CARGO").env_remove("CARGO_TARGET_DIR");
        cmd.arg("fuzz").args(args).current_dir(root().join(CRATE_DIR));
        cmd
    }
}

/// How one target's run ended.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    /// The input libFuzzer saved for a crash, hang or leak.
    artifact: Option<String>,
    /// `Done N runs in S second(s)`.
    runs: Option<(u64, u64)>,
    /// `stat::average_exec_per_sec`.
    execs_per_sec: Option<u64>,
}

impl Outcome {
    /// Picks what matters out of one line of libFuzzer's output.
    fn read(&mut self, line: &str) {
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            self.artifact = Some(path.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // "Done 651221 runs in 61 second(s)"
            let mut words = rest.split_whitespace();
            let runs = words.next().and_then(|n| n.parse().ok());
            let secs = words.nth(2).and_then(|n| n.parse().ok());
            self.runs = runs.zip(secs);
        } else if let Some(rest) = line.strip_prefix("stat::average_exec_per_sec:") {
            self.execs_per_sec = rest.trim().parse().ok();
        }
    }
}

/// `cargo xtask fuzz [SECONDS] [TARGET…]`.
pub(crate) fn run(args: &[String]) -> Result<bool> {
    let (seconds, targets) = match args.split_first() {
        Some((first, rest)) if first.chars().all(|c| c.is_ascii_digit()) => {
            (first.parse().context("SECONDS")?, rest)
        }
        _ => (DEFAULT_SECONDS, args),
    };
    if seconds == 0 {
        bail!("SECONDS must be at least 1");
    }
    if let Some(unknown) = targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        bail!("unknown fuzz target {unknown:?}; targets: {}", TARGETS.join(", "));
    }
    let targets: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets.iter().map(String::as_str).collect()
    };

    let toolchain = Toolchain::detect();
    let installed = toolchain
        .cargo_fuzz(&["--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`");
    }
    eprintln!("==> fuzz: {toolchain:?} toolchain, {seconds}s per target");

    let (mut passed, mut failed) = (0u64, 0u64);
    for target in targets {
        if run_target(toolchain, target, seconds)? {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    #[allow(clippy::print_stdout)]
    {
        println!("fuzz: {passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}

/// Fuzzes one target; whether it ran its time without finding anything.
fn run_target(toolchain: Toolchain, target: &str, seconds: u64) -> Result<bool> {
    // New inputs go to the first (git-ignored) corpus dir; the committed seeds are only read.
    let corpus = format!("fuzz/corpus/{target}");
    let seeds = format!("fuzz/seeds/{target}");
    std::fs::create_dir_all(root().join(CRATE_DIR).join(&corpus))?;
    let max_time = format!("-max_total_time={seconds}");
    let timeout = format!("-timeout={INPUT_TIMEOUT_SECONDS}");
    let args = ["run", target, &corpus, &seeds, "--", &max_time, &timeout, "-print_final_stats=1"];
    eprintln!("==> fuzz {target}: cargo fuzz {}", args.join(" "));
    let mut child = toolchain
        .cargo_fuzz(&args)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo fuzz")?;
    let mut outcome = Outcome::default();
    let stderr = child.stderr.take().context("stderr pipe")?;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        eprintln!("{line}");
        outcome.read(&line);
    }
    let status = child.wait()?;
    if status.success() {
        let runs = outcome.runs.map_or("?".to_owned(), |(n, s)| format!("{n} runs in {s}s"));
        let rate = outcome.execs_per_sec.map_or("?".to_owned(), |r| r.to_string());
        eprintln!("==> fuzz {target}: passed ({runs}, {rate} exec/s)");
        return Ok(true);
    }
    match &outcome.artifact {
        Some(path) => {
            eprintln!("==> fuzz {target}: FAILED ({status}); crash input: {path}");
            eprintln!("    reproduce: cd {CRATE_DIR} && cargo +nightly fuzz run {target} {path}");
        }
        None => {
            eprintln!("==> fuzz {target}: FAILED ({status}) without a crash input (build error?)");
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_lines_give_artifact_runs_and_rate() {
        let mut o = Outcome::default();
        for line in [
            "#6320\tNEW    cov: 1317 ft: 2823 corp: 210/863b exec/s: 6320 rss: 103Mb",
            "Done 651221 runs in 61 second(s)",
            "stat::average_exec_per_sec:     10675",
            "artifact_prefix='/w/fuzz/artifacts/t/'; Test unit written to /w/fuzz/artifacts/t/crash-2d4e47",
        ] {
            o.read(line);
        }
        assert_eq!(
            o,
            Outcome {
                artifact: Some("/w/fuzz/artifacts/t/crash-2d4e47".to_owned()),
                runs: Some((651_221, 61)),
                execs_per_sec: Some(10_675),
            }
        );
    }
}
