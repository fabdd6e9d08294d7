//! The Go ttrpc probe (`../shared/tools/ttrpc-go-probe`: containerd/ttrpc from Debian packages)
//! as a test tool: the gate (`CAA_TEST_GO_PROBE=1`), building it from a private copy of its
//! read-only sources, running it, and the hex encoding its `raw-call` payloads use. Shared by
//! every crate whose tests play the Kata shim (or an agent peer) with an independent
//! implementation.

use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

use crate::binaries;

/// The variable that switches the Go probe tests on.
pub const GATE: &str = "CAA_TEST_GO_PROBE";

/// Whether the Go probe tests run (`CAA_TEST_GO_PROBE=1`). Prints a skip line when not; once
/// open, a probe that cannot be built or run fails the test.
pub fn gate_open() -> bool {
    if std::env::var(GATE).is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!("skipped: set {GATE}=1 (and install the Go packages, see the probe README) to run");
    false
}

/// `<workspace root>/../shared/tools/ttrpc-go-probe`, read-only in CI.
pub fn probe_sources() -> PathBuf {
    binaries::workspace_root().join("../shared/tools/ttrpc-go-probe")
}

/// The Go build cache, kept under the cargo target dir for reuse across runs (`GOCACHE` wins).
fn go_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("GOCACHE") {
        return PathBuf::from(dir);
    }
    let profile = binaries::profile_dir();
    profile.parent().unwrap_or(&profile).join("tmp/ttrpc-go-probe-gocache")
}

/// Copies the probe sources into `dir` and builds there, so nothing is written next to the
/// (read-only) originals. Returns the `ttrpc-probe` executable.
pub async fn build_probe(dir: &Path) -> PathBuf {
    let src = probe_sources();
    let copy = dir.join("ttrpc-go-probe");
    std::fs::create_dir_all(copy.join("proto")).expect("creating the probe build dir");
    for file in ["build.sh", "main.go", "proto/hvprobe.proto"] {
        std::fs::copy(src.join(file), copy.join(file))
            .unwrap_or_else(|e| panic!("copying {} from {}: {e}", file, src.display()));
    }
    let output = Command::new("sh")
        .arg(copy.join("build.sh"))
        .env("TMPDIR", dir)
        .env("TTRPC_PROBE_GOPATH", dir.join("gopath"))
        .env("GOCACHE", go_cache())
        .output()
        .await
        .expect("running the probe's build.sh (is sh installed?)");
    assert!(output.status.success(), "building the Go probe failed: {}", output_text(&output));
    copy.join("bin/ttrpc-probe")
}

/// Runs the probe with `args` and collects its output.
pub async fn run_probe(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().await.expect("running ttrpc-probe")
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The message of the probe's `error: code=N(Name) msg="..."` line, unquoted (Go `%q`
/// escapes are undone for `\"` and `\\` only, enough for our texts).
pub fn error_message(output: &Output) -> Option<(String, String)> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find_map(|l| l.strip_prefix("error: code="))?;
    let (code, rest) = line.split_once(" msg=")?;
    let quoted = rest.strip_prefix('"')?.strip_suffix('"')?;
    Some((code.to_owned(), quoted.replace("\\\"", "\"").replace("\\\\", "\\")))
}

/// Lower-case hex of `bytes` (the probe's `-payload-hex` format).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from the probe's hex output.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from the probe"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{ExitStatus, Output};

    use super::*;

    #[test]
    fn the_status_line_is_parsed_and_unquoted() {
        let output = Output {
            status: ExitStatus::from_raw(1 << 8),
            stdout: Vec::new(),
            stderr: b"noise\nerror: code=8(ResourceExhausted) msg=\"creating an instance : \\\"x\\\"\"\n"
                .to_vec(),
        };
        let (code, message) = error_message(&output).unwrap();
        assert_eq!(code, "8(ResourceExhausted)");
        assert_eq!(message, "creating an instance : \"x\"");
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex(&hex(&bytes)), bytes);
    }
}
