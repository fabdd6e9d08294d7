//! A running `caa-provider-mock` process over pipes: writes requests to its stdin, reads and
//! checks every stdout line, and drains stderr concurrently into a buffer so that a chatty
//! plugin never stalls. The child is killed when the fixture is dropped.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Generous bound on every wait, only there to turn a hang into a failure.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_caa-provider-mock");

/// One stdout line.
#[derive(Debug)]
pub(crate) enum Line {
    /// A line that parsed as JSON.
    Json(Value),
    /// Anything else, verbatim.
    Raw(String),
}

pub(crate) struct Plugin {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    /// Notifications seen while waiting for responses.
    pub(crate) notifications: Vec<Value>,
    next_id: i64,
}

impl Plugin {
    /// Starts the plugin with a clean environment plus `env`.
    pub(crate) fn spawn(env: &[(&str, &str)]) -> Plugin {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CAA_PLUGIN_PROTOCOL", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn caa-provider-mock");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let stderr_task = tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Plugin {
            child,
            stdin,
            stdout,
            stderr,
            stderr_task: Some(stderr_task),
            notifications: Vec::new(),
            next_id: 1,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Writes one message line.
    pub(crate) async fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(&line).await.expect("write to plugin");
        stdin.flush().await.unwrap();
    }

    /// Sends a request and returns its id.
    pub(crate) async fn request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        id
    }

    /// The next stdout line, `None` at EOF.
    pub(crate) async fn next_line(&mut self) -> Option<Line> {
        let line = tokio::time::timeout(TIMEOUT, self.stdout.next_line())
            .await
            .expect("timed out waiting for a stdout line")
            .expect("read stdout")?;
        Some(match serde_json::from_str(&line) {
            Ok(v) => Line::Json(v),
            Err(_) => Line::Raw(line),
        })
    }

    /// The next stdout message, which must be JSON.
    pub(crate) async fn next_message(&mut self) -> Option<Value> {
        match self.next_line().await? {
            Line::Json(v) => Some(v),
            Line::Raw(line) => panic!("stdout line is not JSON: {line:?}"),
        }
    }

    /// Reads messages until the response to `id`, keeping notifications.
    pub(crate) async fn response(&mut self, id: i64) -> Value {
        loop {
            let message = self.next_message().await.expect("plugin closed stdout before answering");
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            assert!(message.get("method").is_some(), "unexpected message {message}");
            self.notifications.push(message);
        }
    }

    /// Sends a request and returns its `result`, failing on an error answer.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        let response = self.response(id).await;
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {response}"),
        }
    }

    /// Runs `initialize` with `config` and returns the result.
    pub(crate) async fn initialize(&mut self, config: Value) -> Value {
        let params = json!({"protocolVersions": [1], "host": {"name": "test"}, "provider": "mock", "config": config});
        self.call("initialize", params).await
    }

    /// Closes stdin (EOF for the plugin).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the exit, then for the stderr reader to see EOF.
    pub(crate) async fn wait(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("plugin did not exit")
            .expect("wait for plugin");
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(TIMEOUT, task).await;
        }
        status
    }

    /// Everything read from stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Bytes read from stderr so far.
    pub(crate) fn stderr_len(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }
}

/// `createInstance` params for a pod.
pub(crate) fn create_params(operation_id: &str, sandbox_id: &str) -> Value {
    json!({
        "operationId": operation_id,
        "deadlineMs": 60000,
        "podName": "nginx",
        "podNamespace": "default",
        "sandboxId": sandbox_id,
        "userData": "#cloud-config\n",
        "spec": {"vcpus": 0, "memoryMiB": 0},
        "tags": {"caa/sandbox-id": sandbox_id, "caa/operation-id": operation_id},
    })
}

/// `deleteInstance` params.
pub(crate) fn delete_params(instance_id: &str) -> Value {
    json!({"operationId": "del-1", "instanceId": instance_id, "deadlineMs": 10000})
}
