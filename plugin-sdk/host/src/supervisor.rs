//! Keeps one provider plugin available: restarts it with exponential backoff when it dies, opens
//! a circuit breaker after repeated crashes, and owns the host's side of the create/delete
//! contract: an indeterminate create is cleaned up by deleting the instance it may have made
//! (after the restart, if the plugin crashed), and deletes are retried until they succeed.
//! Shutdown cancels the creates in flight and lets their cleanup finish before the plugin stops.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use caa_plugin_proto::method::{CreateInstance, ListInstances, VerifyConfig};
use caa_plugin_proto::{
    CreateInstanceParams, CreateInstanceResult, ListInstancesParams, ListInstancesResult, Method,
    ProgressParams, VerifyConfigParams, VerifyConfigResult,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::client::CallError;
use crate::error::HostError;
use crate::plugin::{Plugin, PluginSpec};
use crate::timeouts::CallPolicy;

mod cleanup;
mod restart;

/// When and how often to restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// First restart delay; doubled per recent crash.
    pub initial_backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
    /// Crashes within `breaker_window` that open the breaker.
    pub breaker_crashes: usize,
    /// The window crashes are counted in.
    pub breaker_window: Duration,
    /// How long the breaker stays open before restarts are tried again.
    pub breaker_cooldown: Duration,
    /// How long a call waits for a restart in progress.
    pub restart_wait: Duration,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            breaker_crashes: 5,
            breaker_window: Duration::from_secs(180),
            breaker_cooldown: Duration::from_secs(600),
            restart_wait: Duration::from_secs(30),
        }
    }
}

/// What the supervisor is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorStatus {
    /// The plugin runs.
    Running {
        /// Its pid.
        pid: u32,
    },
    /// The plugin died; restart number `attempt` is pending.
    Restarting {
        /// Restarts tried since the last crash.
        attempt: u32,
    },
    /// The breaker is open; calls fail fast.
    Unavailable {
        /// Why, with the last stderr lines.
        reason: String,
    },
    /// Shut down.
    Stopped,
}

/// An instance a failed create may have left behind, and what its cleanup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The instance.
    pub instance_id: String,
    /// The create's operation id.
    pub operation_id: String,
    /// The create's sandbox.
    pub sandbox_id: String,
    /// Whether `deleteInstance` succeeded.
    pub cleaned: bool,
    /// The delete's error otherwise.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
struct Current {
    status: SupervisorStatus,
    plugin: Option<Arc<Plugin>>,
}

#[derive(Debug)]
struct Inner {
    spec: PluginSpec,
    policy: RestartPolicy,
    current: watch::Sender<Current>,
    orphans: Mutex<Vec<Orphan>>,
    orphan_count: watch::Sender<usize>,
    /// Deletes that failed, run again after the next successful (re)start.
    retries: Mutex<Vec<cleanup::Retry>>,
    /// Creates and cleanups in flight; shutdown waits for zero.
    busy: watch::Sender<usize>,
    /// The operation ids of the creates in flight (one entry per call).
    creating: Mutex<Vec<String>>,
    /// Shutdown has begun: no new creates.
    draining: AtomicBool,
    /// The plugin is being stopped: no restarts, calls fail.
    stopping: AtomicBool,
    restarter: Mutex<Option<AbortHandle>>,
    /// Successful restarts since the first start.
    restarts: AtomicU64,
}

/// Counts one create or cleanup in flight for as long as it lives.
#[derive(Debug)]
struct Busy {
    inner: Arc<Inner>,
    operation_id: Option<String>,
}

impl Busy {
    fn new(inner: &Arc<Inner>, operation_id: Option<String>) -> Busy {
        inner.busy.send_modify(|n| *n += 1);
        if let Some(op) = &operation_id {
            inner.creating.lock().unwrap_or_else(PoisonError::into_inner).push(op.clone());
        }
        Busy { inner: inner.clone(), operation_id }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(op) = &self.operation_id {
            let mut creating = self.inner.creating.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = creating.iter().position(|o| o == op) {
                creating.swap_remove(i);
            }
        }
        self.inner.busy.send_modify(|n| *n -= 1);
    }
}

/// A supervised plugin. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// Starts the plugin with the default restart policy. A first start failure is returned.
    pub async fn start(spec: PluginSpec) -> Result<Supervisor, HostError> {
        Supervisor::start_with(spec, RestartPolicy::default()).await
    }

    /// Starts the plugin with a restart policy. A first start failure is returned.
    pub async fn start_with(
        spec: PluginSpec,
        policy: RestartPolicy,
    ) -> Result<Supervisor, HostError> {
        let plugin = Arc::new(Plugin::start(&spec).await?);
        let current = Current {
            status: SupervisorStatus::Running { pid: plugin.pid() },
            plugin: Some(plugin.clone()),
        };
        let inner = Arc::new(Inner {
            spec,
            policy,
            current: watch::Sender::new(current),
            orphans: Mutex::new(Vec::new()),
            orphan_count: watch::Sender::new(0),
            retries: Mutex::new(Vec::new()),
            busy: watch::Sender::new(0),
            creating: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            restarter: Mutex::new(None),
            restarts: AtomicU64::new(0),
        });
        let task = tokio::spawn(restart::restart_loop(inner.clone(), plugin));
        *inner.restarter.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        Ok(Supervisor { inner })
    }

    /// The current status.
    pub fn status(&self) -> SupervisorStatus {
        self.inner.current.borrow().status.clone()
    }

    /// How many times the plugin was restarted successfully since the first start.
    pub fn restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::Relaxed)
    }

    /// The running plugin; waits up to `restart_wait` for a restart in progress and fails fast
    /// while the breaker is open.
    pub async fn plugin(&self) -> Result<Arc<Plugin>, CallError> {
        let name = &self.inner.spec.name;
        let unavailable = |reason: String| CallError::Unavailable { plugin: name.clone(), reason };
        let mut rx = self.inner.current.subscribe();
        let wait = async {
            loop {
                {
                    let current = rx.borrow_and_update();
                    match (&current.status, &current.plugin) {
                        (SupervisorStatus::Running { .. }, Some(p)) if p.exited().is_none() => {
                            return Ok(p.clone());
                        }
                        (SupervisorStatus::Unavailable { reason }, _) => {
                            return Err(unavailable(reason.clone()));
                        }
                        (SupervisorStatus::Stopped, _) => {
                            return Err(unavailable("stopped".to_owned()));
                        }
                        _ => {}
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(unavailable("stopped".to_owned()));
                }
            }
        };
        let limit = self.inner.policy.restart_wait;
        tokio::time::timeout(limit, wait)
            .await
            .unwrap_or_else(|_| Err(unavailable(format!("not restarted within {limit:?}"))))
    }

    /// Creates an instance. When the outcome is unknown or the error names an instance, that
    /// instance is deleted in the background and recorded as an [`Orphan`]. A result without
    /// addresses is an error, and its instance is deleted too.
    ///
    /// The call runs in its own task: a caller that gives up (its future is dropped, e.g. the
    /// Kata `StartVM` was cancelled) does not abandon the plugin's answer — a VM created anyway
    /// is deleted and recorded as an orphan instead of leaking. Once [`Supervisor::shutdown`]
    /// has begun, creates fail with [`CallError::Unavailable`].
    pub async fn create_instance(
        &self,
        params: CreateInstanceParams,
        progress: Option<mpsc::UnboundedSender<ProgressParams>>,
    ) -> Result<CreateInstanceResult, CallError> {
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(self.shutting_down());
        }
        let (tx, rx) = oneshot::channel();
        let this = self.clone();
        let busy = Busy::new(&self.inner, Some(params.operation_id.clone()));
        tokio::spawn(async move {
            let _busy = busy;
            let (op, sandbox) = (params.operation_id.clone(), params.sandbox_id.clone());
            let outcome = this.create_attached(params, progress).await;
            if let Err(Ok(vm)) = tx.send(outcome) {
                tracing::warn!(plugin = %this.inner.spec.name, instance_id = %vm.instance_id, operation_id = %op, "caller gave up on a create that succeeded");
                this.clean_up(vm.instance_id, &op, &sandbox);
            }
        });
        rx.await.unwrap_or_else(|_| {
            Err(CallError::Closed { plugin: self.inner.spec.name.clone(), instance_id: None })
        })
    }

    async fn create_attached(
        &self,
        params: CreateInstanceParams,
        progress: Option<mpsc::UnboundedSender<ProgressParams>>,
    ) -> Result<CreateInstanceResult, CallError> {
        let plugin = self.plugin().await?;
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(self.shutting_down());
        }
        // Bounded by the client, which passes at most `PROGRESS_PER_CALL` notes per call (plus
        // new instance ids, which count as pollution), and which drops this sender when the
        // call ends, so the forwarder ends with it.
        let (tx, mut rx) = mpsc::unbounded_channel::<ProgressParams>();
        let forward = tokio::spawn(async move {
            let mut announced = None;
            while let Some(p) = rx.recv().await {
                if p.instance_id.is_some() {
                    announced.clone_from(&p.instance_id);
                }
                if let Some(caller) = &progress {
                    let _ = caller.send(p);
                }
            }
            announced
        });
        let opts = CreateInstance::options(&params, &self.inner.spec.timeouts).progress(tx);
        let result = plugin.call_with::<CreateInstance>(&params, opts).await;
        drop(plugin);
        let announced = forward.await.unwrap_or(None);
        let (op, sandbox) = (&params.operation_id, &params.sandbox_id);
        match result {
            Ok(r) if r.ips.is_empty() => {
                self.clean_up(r.instance_id.clone(), op, sandbox);
                Err(CallError::InvalidResult {
                    plugin: self.inner.spec.name.clone(),
                    method: CreateInstance::NAME.to_owned(),
                    message: "plugin returned no IP addresses".to_owned(),
                    instance_id: Some(r.instance_id),
                })
            }
            Ok(r) => Ok(r),
            Err(e) => {
                // A VM announced by progress may remain whatever the error: deleting one that
                // is gone is harmless.
                match e.instance_id().map(str::to_owned).or(announced) {
                    Some(id) => self.clean_up(id, op, sandbox),
                    None if e.is_indeterminate() => self.clean_up_by_tag(op, sandbox),
                    None => {}
                }
                Err(e)
            }
        }
    }

    fn shutting_down(&self) -> CallError {
        CallError::Unavailable {
            plugin: self.inner.spec.name.clone(),
            reason: "shutting down".to_owned(),
        }
    }

    /// Runs `verifyConfig`.
    pub async fn verify_config(&self) -> Result<VerifyConfigResult, CallError> {
        let params = VerifyConfigParams {
            operation_id: uuid::Uuid::new_v4().to_string(),
            deadline_ms: u64::try_from(self.inner.spec.timeouts.verify.as_millis())
                .unwrap_or(u64::MAX),
        };
        self.plugin().await?.call::<VerifyConfig>(&params).await
    }

    /// Runs `listInstances` (an optional method: -32601 when the plugin lacks it).
    pub async fn list_instances(
        &self,
        tags: BTreeMap<String, String>,
    ) -> Result<ListInstancesResult, CallError> {
        self.plugin().await?.call::<ListInstances>(&ListInstancesParams { tags }).await
    }

    /// Takes the orphans recorded so far. An orphan whose delete failed is listed with
    /// `cleaned: false`; its delete is tried again after the plugin's next (re)start and
    /// recorded again.
    pub fn take_orphans(&self) -> Vec<Orphan> {
        std::mem::take(&mut *self.inner.orphans.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The number of orphans recorded since start (never decreases); wait on it with
    /// `wait_for`.
    pub fn orphans_changed(&self) -> watch::Receiver<usize> {
        self.inner.orphan_count.subscribe()
    }

    /// Shuts down: refuses new creates, sends `$/cancel` for the creates in flight, waits up to
    /// [`crate::Timeouts::shutdown_grace`] for them and for the deletes of what they left, then
    /// stops restarting and shuts the plugin down.
    pub async fn shutdown(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        let creating = self.inner.creating.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let plugin = self.inner.current.borrow().plugin.clone();
        if let Some(plugin) = plugin {
            for op in &creating {
                plugin.client().cancel(op, "host shutting down");
            }
        }
        let grace = self.inner.spec.timeouts.shutdown_grace;
        let mut busy = self.inner.busy.subscribe();
        if tokio::time::timeout(grace, busy.wait_for(|n| *n == 0)).await.is_err() {
            tracing::warn!(plugin = %self.inner.spec.name, ?grace, "creates or orphan deletes still running at shutdown");
        }
        let mut previous = None;
        // Under the watch lock, so the restart loop cannot publish a new plugin after this.
        self.inner.current.send_modify(|current| {
            self.inner.stopping.store(true, Ordering::SeqCst);
            previous = std::mem::replace(
                current,
                Current { status: SupervisorStatus::Stopped, plugin: None },
            )
            .plugin;
        });
        if let Some(task) =
            self.inner.restarter.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            task.abort();
        }
        if let Some(plugin) = previous {
            let _ = plugin.stop().await;
        }
    }
}
