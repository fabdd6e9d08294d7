//! A raw NDJSON session with a plugin process: the conformance suites write exact bytes
//! (garbage, batches, oversized lines) and read every stdout line, checking that each one is a
//! JSON-RPC message. Spawning still goes through the host's single spawn helper.

use std::path::Path;
use std::time::Duration;

use caa_plugin_host::PluginCommand;
use caa_plugin_wire::{Frame, LineReader};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout};

/// How long a suite waits for any single answer.
pub(crate) const ANSWER: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct RawSession {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    stdin: Option<ChildStdin>,
    stdout: LineReader<ChildStdout>,
    /// Stdout lines that were not JSON-RPC messages.
    pub(crate) bad_lines: Vec<String>,
    /// Notifications seen while waiting for responses.
    pub(crate) notifications: Vec<Value>,
    /// Responses read while waiting for another id.
    unclaimed: Vec<Value>,
}

impl RawSession {
    pub(crate) async fn start(plugin: &Path, args: &[&str]) -> anyhow::Result<RawSession> {
        let mut cmd = PluginCommand::new(plugin);
        for a in args {
            cmd = cmd.arg(*a);
        }
        let spawned = cmd.spawn()?;
        // Drain stderr so a chatty plugin never blocks on a full pipe.
        let mut stderr = spawned.stderr;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match tokio::io::AsyncReadExt::read(&mut stderr, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        });
        Ok(RawSession {
            child: spawned.child,
            pid: spawned.pid,
            stdin: Some(spawned.stdin),
            stdout: LineReader::new(spawned.stdout, 64 * 1024 * 1024),
            bad_lines: Vec::new(),
            notifications: Vec::new(),
            unclaimed: Vec::new(),
        })
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow::anyhow!("stdin already closed"))?;
        stdin.write_all(bytes).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    pub(crate) async fn send(&mut self, msg: &Value) -> anyhow::Result<()> {
        self.send_bytes(&serde_json::to_vec(msg)?).await
    }

    pub(crate) async fn request_nowait(
        &mut self,
        id: i64,
        method: &str,
        params: Value,
    ) -> anyhow::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await
    }

    /// Sends a request and waits for the response with that id.
    pub(crate) async fn request(
        &mut self,
        id: i64,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.request_nowait(id, method, params).await?;
        self.response(&json!(id)).await
    }

    /// Waits for the response whose id equals `id` (use `Value::Null` for `"id": null`).
    pub(crate) async fn response(&mut self, id: &Value) -> anyhow::Result<Value> {
        if let Some(pos) = self.unclaimed.iter().position(|m| m.get("id") == Some(id)) {
            return Ok(self.unclaimed.remove(pos));
        }
        let wait = async {
            loop {
                let Some(msg) = self.next_message().await? else {
                    anyhow::bail!("plugin closed stdout before answering id {id}");
                };
                if msg.get("method").is_some() {
                    self.notifications.push(msg);
                } else if msg.get("id") == Some(id) {
                    return Ok(msg);
                } else {
                    self.unclaimed.push(msg);
                }
            }
        };
        tokio::time::timeout(ANSWER, wait)
            .await
            .map_err(|_| anyhow::anyhow!("no answer for id {id} within {ANSWER:?}"))?
    }

    /// The next JSON-RPC message on stdout; records lines that are not.
    pub(crate) async fn next_message(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            match self.stdout.next_frame().await? {
                None => return Ok(None),
                Some(Frame::TooLong { len }) => self.bad_lines.push(format!("<{len}-byte line>")),
                Some(Frame::Line(line)) => match serde_json::from_slice::<Value>(&line) {
                    Ok(v) if v.get("jsonrpc") == Some(&json!("2.0")) => return Ok(Some(v)),
                    _ => self
                        .bad_lines
                        .push(String::from_utf8_lossy(&line).chars().take(200).collect()),
                },
            }
        }
    }

    /// The next stdout line as text, whatever it is (used to read a wrapper's output).
    pub(crate) async fn next_raw_line(&mut self) -> anyhow::Result<String> {
        match tokio::time::timeout(ANSWER, self.stdout.next_frame()).await {
            Ok(Ok(Some(Frame::Line(line)))) => Ok(String::from_utf8_lossy(&line).into_owned()),
            other => anyhow::bail!("no line on stdout: {other:?}"),
        }
    }

    pub(crate) async fn initialize(&mut self, config: &Value) -> anyhow::Result<Value> {
        let resp = self.request(1, "initialize", initialize_params(config)).await?;
        if resp.get("result").is_none() {
            anyhow::bail!("initialize failed: {}", resp.get("error").unwrap_or(&Value::Null));
        }
        Ok(resp)
    }

    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads stdout to EOF (recording bad lines) and waits for exit, within `limit`.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let drain = async {
            while let Ok(Some(msg)) = self.next_message().await {
                if msg.get("method").is_some() {
                    self.notifications.push(msg);
                }
            }
            self.child.wait().await.ok()
        };
        tokio::time::timeout(limit, drain).await.ok().flatten()
    }

    pub(crate) fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), sig);
    }
}

impl Drop for RawSession {
    fn drop(&mut self) {
        // Never leave a plugin's process group behind, whatever the suite did.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

pub(crate) fn initialize_params(config: &Value) -> Value {
    json!({
        "protocolVersions": caa_plugin_proto::PROTOCOL_VERSIONS,
        "host": {"name": "caa-plugin-conformance", "version": env!("CARGO_PKG_VERSION")},
        "hostPid": std::process::id(),
        "config": config,
        "hostCapabilities": {"progress": true, "cancel": true},
    })
}

/// The error code of a response, if it is an error response.
pub(crate) fn error_code(resp: &Value) -> Option<i64> {
    resp.get("error")?.get("code")?.as_i64()
}
