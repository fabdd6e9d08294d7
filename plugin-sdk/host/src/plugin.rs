//! One running plugin: `--describe`, spawn with the schema's environment, `initialize`, then
//! supervision of that one process (exit status, stderr tail, `$/ping`, stdout pollution) and
//! the graceful shutdown sequence. Restarts are the [`crate::Supervisor`]'s business.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use caa_plugin_proto::method::{Initialize, Ping, Teardown};
use caa_plugin_proto::{
    Empty, ErrorCode, HostCapabilities, InitializeParams, InitializeResult, LogLevel,
    PROTOCOL_VERSIONS, PeerInfo,
};
use nix::sys::signal::Signal;
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;

use crate::client::{CallError, CallOptions, Client, ClientOptions};
use crate::error::HostError;
use crate::process::{PluginCommand, SpawnedPlugin, exit_text, signal_group};
use crate::stderr::{StderrTail, spawn_drain};
use crate::timeouts::{CallPolicy, Timeouts};

mod handshake;

pub use handshake::redact_config;
use handshake::{check_name, check_versions, version_mismatch};

/// How long the exit handler waits for the last stderr lines (a grandchild may hold the pipe).
const STDERR_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Everything needed to start one plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The provider name; the plugin must report the same name.
    pub name: String,
    /// The executable and its environment policy (`pass_env` holds the operator's extras).
    pub command: PluginCommand,
    /// Option values sent in `initialize` (secrets included: stdin is private).
    pub config: BTreeMap<String, serde_json::Value>,
    /// The plugin's log level.
    pub log_level: LogLevel,
    /// Budgets.
    pub timeouts: Timeouts,
    /// Longest accepted stdout line.
    pub max_line_bytes: usize,
    /// The host's identity in `initialize`.
    pub host: PeerInfo,
}

impl PluginSpec {
    /// A spec with an empty config and default budgets.
    pub fn new(name: impl Into<String>, command: PluginCommand) -> PluginSpec {
        let name = name.into();
        PluginSpec {
            command: command.name(name.clone()),
            name,
            config: BTreeMap::new(),
            log_level: LogLevel::Info,
            timeouts: Timeouts::default(),
            max_line_bytes: caa_plugin_proto::DEFAULT_MAX_LINE_BYTES,
            host: PeerInfo {
                name: "cloud-api-adaptor".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                sdk: None,
            },
        }
    }
}

/// The process side shared by the handshake and the running plugin.
#[derive(Debug)]
struct Process {
    name: String,
    pid: u32,
    client: Client,
    tail: StderrTail,
    exit: watch::Receiver<Option<String>>,
    stopping: Arc<AtomicBool>,
    /// Set as soon as the child is reaped: its pid (and process group id) may then be reused,
    /// so nothing signals it any more.
    reaped: Arc<AtomicBool>,
    timeouts: Timeouts,
    tasks: Vec<AbortHandle>,
}

/// Signals the plugin's process group unless the child has been reaped.
fn signal_unreaped(reaped: &AtomicBool, pid: u32, signal: Signal) {
    if !reaped.load(Ordering::SeqCst) {
        signal_group(pid, signal);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // A plugin dropped without shutdown must not outlive its handle; the exit task reaps it.
        if self.exit.borrow().is_none() {
            signal_unreaped(&self.reaped, self.pid, Signal::SIGKILL);
        }
    }
}

impl Process {
    fn launch(spawned: SpawnedPlugin, spec: &PluginSpec) -> Process {
        let SpawnedPlugin { mut child, stdin, stdout, stderr, pid } = spawned;
        let name = spec.name.clone();
        let tail = StderrTail::new();
        let drain = spawn_drain(stderr, name.clone(), pid, tail.clone());
        let opts = ClientOptions {
            max_line_bytes: spec.max_line_bytes,
            name: name.clone(),
            pid,
            cancel_grace: spec.timeouts.cancel_grace,
        };
        let client = Client::new(stdout, stdin, opts);
        let stopping = Arc::new(AtomicBool::new(false));
        let reaped = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit) = watch::channel(None);
        {
            let (client, tail, stopping, reaped, name) =
                (client.clone(), tail.clone(), stopping.clone(), reaped.clone(), name.clone());
            tokio::spawn(async move {
                let status = match child.wait().await {
                    Ok(status) => exit_text(&status),
                    Err(e) => format!("wait failed: {e}"),
                };
                reaped.store(true, Ordering::SeqCst);
                let _ = tokio::time::timeout(STDERR_FLUSH_WAIT, drain).await;
                if stopping.load(Ordering::SeqCst) {
                    tracing::info!(plugin = %name, pid, %status, "plugin exited");
                } else {
                    let last = tail.last(10).join(" | ");
                    tracing::error!(plugin = %name, pid, %status, stderr = %last, "plugin exited unexpectedly");
                }
                exit_tx.send_replace(Some(status));
                client.close();
            });
        }
        let watcher = {
            let (client, stopping, reaped, name) =
                (client.clone(), stopping.clone(), reaped.clone(), name.clone());
            tokio::spawn(async move {
                client.violated().await;
                if !stopping.load(Ordering::SeqCst) && !reaped.load(Ordering::SeqCst) {
                    tracing::error!(plugin = %name, pid, "killing plugin after a stdout protocol violation");
                    signal_unreaped(&reaped, pid, Signal::SIGKILL);
                }
            })
        };
        Process {
            name,
            pid,
            client,
            tail,
            exit,
            stopping,
            reaped,
            timeouts: spec.timeouts,
            tasks: vec![watcher.abort_handle()],
        }
    }

    fn exited(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    async fn exit_within(&self, limit: Duration) -> Option<String> {
        let mut rx = self.exit.clone();
        match tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await {
            Ok(Ok(status)) => status.clone(),
            Ok(Err(_)) => Some("unknown".to_owned()),
            Err(_) => None,
        }
    }

    fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    fn signal(&self, signal: Signal) {
        signal_unreaped(&self.reaped, self.pid, signal);
    }

    /// Turns a closed connection into a crash report with exit status and stderr tail.
    async fn crash_error(&self, err: CallError) -> CallError {
        let CallError::Closed { instance_id, .. } = err else { return err };
        let mut status = self.exit_within(self.timeouts.exit_wait).await;
        if status.is_none() && !self.stopping.load(Ordering::SeqCst) {
            tracing::error!(plugin = %self.name, pid = self.pid, "plugin closed stdout but keeps running; killing it");
            self.kill();
            status = self.exit_within(self.timeouts.term_wait).await;
        }
        CallError::Crashed {
            plugin: self.name.clone(),
            pid: self.pid,
            status: status.unwrap_or_else(|| "still running".to_owned()),
            stderr_tail: self.tail.lines(),
            instance_id,
        }
    }
}

/// A started and initialized plugin process.
#[derive(Debug)]
pub struct Plugin {
    process: Process,
    info: InitializeResult,
    permits: Semaphore,
}

impl Plugin {
    /// Describes, spawns and initializes the plugin. On failure the process is killed.
    pub async fn start(spec: &PluginSpec) -> Result<Plugin, HostError> {
        let describe = spec.command.clone().name(spec.name.clone()).describe().await?;
        check_versions(&spec.name, &describe.protocol_versions)?;
        check_name(spec, &describe.plugin.name)?;
        let schema = describe.config_schema;
        let command = spec
            .command
            .clone()
            .name(spec.name.clone())
            .pass_env(schema.env_names().map(str::to_owned))
            .env("CAA_PLUGIN_LOG_LEVEL", spec.log_level.as_str());
        let process = Process::launch(command.spawn()?, spec);
        tracing::debug!(
            plugin = %spec.name, pid = process.pid,
            config = %serde_json::to_string(&redact_config(&schema, &spec.config)).unwrap_or_default(),
            "initializing plugin"
        );
        let params = InitializeParams {
            protocol_versions: PROTOCOL_VERSIONS.to_vec(),
            host: spec.host.clone(),
            host_pid: Some(std::process::id()),
            provider: Some(spec.name.clone()),
            log_level: Some(spec.log_level),
            config: spec.config.clone(),
            host_capabilities: Some(HostCapabilities { progress: true, cancel: true }),
        };
        let opts = Initialize::options(&params, &spec.timeouts);
        let info = match process.client.call::<Initialize>(&params, opts).await {
            Ok(info) => info,
            Err(CallError::Rpc(e))
                if e.kind() == ErrorCode::InvalidParams
                    && e.data.as_ref().is_some_and(|d| !d.supported.is_empty()) =>
            {
                let supported = e.data.map(|d| d.supported).unwrap_or_default();
                return Err(version_mismatch(&spec.name, supported));
            }
            Err(e) => {
                let source = process.crash_error(e).await;
                return Err(HostError::Initialize { plugin: spec.name.clone(), source });
            }
        };
        check_versions(&spec.name, &[info.protocol_version])?;
        check_name(spec, &info.plugin.name)?;
        tracing::info!(
            plugin = %spec.name, pid = process.pid, version = info.plugin.version.as_deref(),
            "plugin initialized"
        );
        let permits = Semaphore::new(info.capabilities.max_concurrent_requests.max(1) as usize);
        let mut plugin = Plugin { process, info, permits };
        let pinger = tokio::spawn(ping_loop(
            plugin.process.client.clone(),
            plugin.process.name.clone(),
            plugin.process.pid,
            plugin.process.timeouts,
            plugin.process.stopping.clone(),
            plugin.process.reaped.clone(),
        ));
        plugin.process.tasks.push(pinger.abort_handle());
        Ok(plugin)
    }

    /// The `initialize` result.
    pub fn info(&self) -> &InitializeResult {
        &self.info
    }

    /// The process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// The provider name.
    pub fn name(&self) -> &str {
        &self.process.name
    }

    /// The last stderr lines.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.process.tail.lines()
    }

    /// The connection, for untyped calls and notifications.
    pub fn client(&self) -> &Client {
        &self.process.client
    }

    /// Calls a protocol method with its default budget and operation id.
    pub async fn call<M: CallPolicy>(&self, params: &M::Params) -> Result<M::Result, CallError> {
        self.call_with::<M>(params, M::options(params, &self.process.timeouts)).await
    }

    /// Calls a protocol method with explicit options; a missing operation id is taken from the
    /// params. Calls above the plugin's `maxConcurrentRequests` wait for a slot, within the
    /// same budget; the time waited is taken off the `deadlineMs` sent (see
    /// [`CallPolicy::after_queue`]).
    pub async fn call_with<M: CallPolicy>(
        &self,
        params: &M::Params,
        mut opts: CallOptions,
    ) -> Result<M::Result, CallError> {
        if opts.operation_id.is_none() {
            opts.operation_id = M::options(params, &self.process.timeouts).operation_id;
        }
        let start = Instant::now();
        let Ok(Ok(_permit)) = tokio::time::timeout(opts.timeout, self.permits.acquire()).await
        else {
            return Err(CallError::Timeout {
                method: M::NAME.to_owned(),
                plugin: self.process.name.clone(),
                pid: self.process.pid,
                elapsed: start.elapsed(),
                instance_id: None,
            });
        };
        let waited = start.elapsed();
        opts.timeout = opts.timeout.saturating_sub(waited);
        let reduced = if waited.as_millis() == 0 { None } else { M::after_queue(params, waited) };
        let params = reduced.as_ref().unwrap_or(params);
        match self.process.client.call::<M>(params, opts).await {
            Ok(result) => Ok(result),
            Err(e @ CallError::Timeout { .. }) if M::HANG_IS_CRASH => {
                if self.process.exited().is_none() && !self.process.stopping.load(Ordering::SeqCst)
                {
                    tracing::error!(plugin = %self.process.name, pid = self.process.pid, method = M::NAME, "plugin hangs past the deadline; killing it");
                    self.process.kill();
                }
                Err(e)
            }
            Err(e) => Err(self.process.crash_error(e).await),
        }
    }

    /// The exit status text once the process has exited.
    pub fn exited(&self) -> Option<String> {
        self.process.exited()
    }

    /// Waits for the process to exit and returns its status text.
    pub async fn wait_exit(&self) -> String {
        let mut rx = self.process.exit.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or_default(),
            Err(_) => "unknown".to_owned(),
        }
    }

    /// Whether [`Plugin::stop`] has begun (the exit is then not a crash).
    pub fn is_stopping(&self) -> bool {
        self.process.stopping.load(Ordering::SeqCst)
    }

    /// SIGKILLs the process group (the exit is a crash unless stopping).
    pub fn kill(&self) {
        self.process.kill();
    }

    /// The shutdown sequence; see [`Plugin::stop`].
    pub async fn shutdown(self) -> Result<String, HostError> {
        self.stop().await
    }

    /// Stops the plugin: mark it stopping, `teardown`, close stdin, wait, SIGTERM the group,
    /// wait, SIGKILL the group. The child is always reaped. Returns the exit status text.
    pub async fn stop(&self) -> Result<String, HostError> {
        let p = &self.process;
        p.stopping.store(true, Ordering::SeqCst);
        if p.exited().is_none() && !p.client.is_closed() {
            let opts = CallOptions::new(p.timeouts.teardown);
            if let Err(e) = p.client.call::<Teardown>(&Empty {}, opts).await {
                tracing::debug!(plugin = %p.name, pid = p.pid, error = %e, "plugin teardown failed");
            }
        }
        p.client.close_input();
        if let Some(status) = p.exit_within(p.timeouts.exit_wait).await {
            return Ok(status);
        }
        tracing::warn!(plugin = %p.name, pid = p.pid, "plugin did not exit after stdin closed; sending SIGTERM");
        p.signal(Signal::SIGTERM);
        if let Some(status) = p.exit_within(p.timeouts.term_wait).await {
            return Ok(status);
        }
        tracing::warn!(plugin = %p.name, pid = p.pid, "plugin ignored SIGTERM; sending SIGKILL");
        p.signal(Signal::SIGKILL);
        Ok(self.wait_exit().await)
    }
}

async fn ping_loop(
    client: Client,
    name: String,
    pid: u32,
    timeouts: Timeouts,
    stopping: Arc<AtomicBool>,
    reaped: Arc<AtomicBool>,
) {
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(timeouts.ping_interval).await;
        if stopping.load(Ordering::SeqCst) || client.is_closed() || reaped.load(Ordering::SeqCst) {
            return;
        }
        match client.call::<Ping>(&Empty {}, CallOptions::new(timeouts.ping)).await {
            // Any answer, even an error, proves the plugin is alive.
            Ok(_) | Err(CallError::Rpc(_)) => failures = 0,
            Err(CallError::Closed { .. }) => return,
            Err(e) => {
                failures += 1;
                tracing::warn!(plugin = %name, pid, failures, error = %e, "plugin ping failed");
                if failures >= timeouts.ping_failures
                    && !stopping.load(Ordering::SeqCst)
                    && !reaped.load(Ordering::SeqCst)
                {
                    tracing::error!(plugin = %name, pid, failures, "plugin stopped answering pings; killing it");
                    signal_unreaped(&reaped, pid, Signal::SIGKILL);
                    return;
                }
            }
        }
    }
}
