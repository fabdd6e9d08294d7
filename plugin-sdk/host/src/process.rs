//! The one place that starts plugin processes. [`PluginCommand`] builds the child's environment
//! from an allowlist (never the daemon's whole environment), gives it its own process group,
//! pipes its stdio, and runs pinned binaries from a verified memfd. Nothing secret goes into argv.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use caa_plugin_proto::Describe;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use crate::error::HostError;
use crate::integrity;

/// Host variables every plugin gets when they are set (plus every `LC_*`).
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "TZ",
    "LANG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// How long `--describe` may take.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

const DESCRIBE_MAX_STDOUT: u64 = 4 * 1024 * 1024;
const DESCRIBE_MAX_STDERR: u64 = 64 * 1024;

/// How to start one plugin process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCommand {
    /// The executable.
    pub path: PathBuf,
    /// Arguments (never config values or secrets: argv is world-readable).
    pub args: Vec<OsString>,
    /// The pinned SHA-256 (hex); when set, the verified bytes are executed from a memfd.
    pub sha256: Option<String>,
    /// Extra host variables passed through when set (cloud SDK credential discovery).
    pub pass_env: Vec<String>,
    /// Variables set explicitly.
    pub set_env: Vec<(String, String)>,
    /// The provider name, exported as `CAA_PLUGIN_NAME`.
    pub name: String,
}

/// A started plugin with its pipes taken out of the [`Child`].
#[derive(Debug)]
pub struct SpawnedPlugin {
    /// The child; `kill_on_drop` is set.
    pub child: Child,
    /// Host → plugin messages.
    pub stdin: ChildStdin,
    /// Plugin → host messages.
    pub stdout: ChildStdout,
    /// Plugin logs.
    pub stderr: ChildStderr,
    /// The pid, which is also the process group id.
    pub pid: u32,
}

impl PluginCommand {
    /// A command for `path`; the name defaults to the file name.
    pub fn new(path: impl Into<PathBuf>) -> PluginCommand {
        let path = path.into();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        PluginCommand {
            path,
            args: Vec::new(),
            sha256: None,
            pass_env: Vec::new(),
            set_env: Vec::new(),
            name,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> PluginCommand {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> PluginCommand {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Pins the binary's SHA-256 (hex, any case). Pinned plugins must be compiled binaries: a
    /// `#!` script cannot run from the verified memfd (see [`crate::integrity`]).
    pub fn sha256(mut self, digest: impl Into<String>) -> PluginCommand {
        self.sha256 = Some(digest.into());
        self
    }

    /// Passes these host variables through when they are set.
    pub fn pass_env<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        names: I,
    ) -> PluginCommand {
        self.pass_env.extend(names.into_iter().map(Into::into));
        self
    }

    /// Sets a variable in the child's environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> PluginCommand {
        self.set_env.push((key.into(), value.into()));
        self
    }

    /// Sets the provider name.
    pub fn name(mut self, name: impl Into<String>) -> PluginCommand {
        self.name = name.into();
        self
    }

    /// The environment the child gets, in order: allowlist, `LC_*`, `pass_env`, `set_env`,
    /// then the protocol's own variables.
    pub fn child_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut push = |k: OsString, v: OsString| {
            env.retain(|(old, _)| *old != k);
            env.push((k, v));
        };
        for (key, value) in std::env::vars_os() {
            let allowed = key.to_str().is_some_and(|k| {
                ENV_ALLOWLIST.contains(&k)
                    || k.starts_with("LC_")
                    || self.pass_env.iter().any(|p| p == k)
            });
            if allowed {
                push(key, value);
            }
        }
        for (k, v) in &self.set_env {
            push(k.into(), v.into());
        }
        push("CAA_PLUGIN_PROTOCOL".into(), caa_plugin_proto::PROTOCOL_VERSION.to_string().into());
        push("CAA_PLUGIN_NAME".into(), self.name.clone().into());
        env
    }

    /// Starts the plugin with piped stdio in its own process group. Pinned binaries are hashed
    /// here (blocking read of the file) and executed from a sealed memfd.
    pub fn spawn(&self) -> Result<SpawnedPlugin, HostError> {
        self.spawn_with(&[])
    }

    fn spawn_with(&self, extra_args: &[&str]) -> Result<SpawnedPlugin, HostError> {
        let verified = match &self.sha256 {
            Some(pin) => Some(integrity::verify_pinned(&self.path, pin)?),
            None => {
                integrity::check_unpinned(&self.path)?;
                None
            }
        };
        let program = verified.as_ref().map_or_else(|| self.path.clone(), |v| v.exec_path());
        let arg0 = self
            .path
            .file_name()
            .map_or_else(|| self.path.clone().into_os_string(), |n| n.to_owned());
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg0(arg0)
            .args(&self.args)
            .args(extra_args)
            .env_clear()
            .envs(self.child_env())
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawn_err = |source| HostError::Spawn { path: self.path.clone(), source };
        let mut child = spawn_retrying_busy(&mut cmd).map_err(spawn_err)?;
        // The child has exec'ed (spawn reports exec failures), so the memfd may go now.
        drop(verified);
        let missing = || spawn_err(std::io::Error::other("child pipe missing"));
        let pid = child.id().ok_or_else(missing)?;
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        Ok(SpawnedPlugin { child, stdin, stdout, stderr, pid })
    }

    /// Runs `<plugin> --describe` (same environment policy, [`DESCRIBE_TIMEOUT`]) and parses the
    /// JSON document it prints.
    pub async fn describe(&self) -> Result<Describe, HostError> {
        let fail = |reason: String| HostError::Describe { path: self.path.clone(), reason };
        let SpawnedPlugin { mut child, stdin, stdout, stderr, pid } =
            self.spawn_with(&["--describe"])?;
        drop(stdin);
        let run = async {
            let (out, err, status) = tokio::join!(
                read_capped(stdout, DESCRIBE_MAX_STDOUT),
                read_capped(stderr, DESCRIBE_MAX_STDERR),
                child.wait()
            );
            (out, err, status)
        };
        let Ok((out, err, status)) = tokio::time::timeout(DESCRIBE_TIMEOUT, run).await else {
            signal_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
            return Err(fail(format!("no answer within {DESCRIBE_TIMEOUT:?}")));
        };
        let status = status.map_err(|e| fail(format!("wait: {e}")))?;
        let stderr_tail = || {
            let text = String::from_utf8_lossy(&err);
            let lines: Vec<&str> = text.lines().rev().take(5).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        };
        if !status.success() {
            return Err(fail(format!("{}; stderr: {}", exit_text(&status), stderr_tail())));
        }
        parse_describe(&out).ok_or_else(|| fail("stdout is not a describe document".to_owned()))
    }
}

fn parse_describe(out: &[u8]) -> Option<Describe> {
    if let Ok(d) = serde_json::from_slice(out) {
        return Some(d);
    }
    out.split(|&b| b == b'\n').find_map(|line| serde_json::from_slice(line).ok())
}

async fn read_capped<R: AsyncRead + Unpin>(reader: R, cap: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut limited = reader.take(cap);
    let _ = limited.read_to_end(&mut buf).await;
    // Keep draining past the cap so the child never blocks on a full pipe.
    let mut rest = limited.into_inner();
    let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
    buf
}

/// Sends `signal` to the process group `pid` (the plugin and its children). A group that no
/// longer exists is not an error.
pub fn signal_group(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw <= 1 {
        return;
    }
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid, %signal, error = %e, "signal plugin process group"),
    }
}

/// A short text for an exit status: `exit status: 3`, `signal: 9 (SIGKILL)`.
pub fn exit_text(status: &std::process::ExitStatus) -> String {
    status.to_string()
}

/// Spawns, retrying briefly on `ETXTBSY`. A binary that was just written (an upgrade, or a test
/// fixture) is "busy" while any process forked in that window — by any thread of this process —
/// still holds the writer's descriptor until it execs; that clears within milliseconds.
fn spawn_retrying_busy(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < 50 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_protocol_variables_and_set_env_wins() {
        let cmd = PluginCommand::new("/x/caa-provider-aws").env("PATH", "/only").env("A", "b");
        let env = cmd.child_env();
        let get = |k: &str| {
            env.iter().find(|(key, _)| key == k).map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("PATH").as_deref(), Some("/only"));
        assert_eq!(get("A").as_deref(), Some("b"));
        assert_eq!(get("CAA_PLUGIN_PROTOCOL").as_deref(), Some("1"));
        assert_eq!(get("CAA_PLUGIN_NAME").as_deref(), Some("caa-provider-aws"));
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }

    #[test]
    fn describe_document_is_found_among_lines() {
        let doc = r#"{"plugin":{"name":"x"},"protocolVersions":[1],"capabilities":{},"configSchema":{"options":[]}}"#;
        let out = format!("noise\n{doc}\n");
        assert_eq!(parse_describe(out.as_bytes()).unwrap().plugin.name, "x");
        assert!(parse_describe(b"nothing").is_none());
    }
}
