//! [`SandboxManager`]: the live sandboxes and the CreateVM / StopVM / GetInfo flows (StartVM is
//! in `start.rs`). Every sandbox has its own async lock; the table lock is never held across an
//! await. Durable records go through [`StateStore`] before and after every cloud call.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use caa_plugin_host::{CallError, Supervisor};
use caa_plugin_proto::{CreateInstanceResult, DeleteInstanceResult, InstanceSpec};
use caa_userdata::{ForwarderConfig, Initdata, UserData};
use tokio::sync::watch;
use tokio::time::Instant;

use super::agent::AgentConnector;
use super::request::{CreateVm, VmRequestSpec};
use super::{InfoError, SandboxError};
use crate::metrics::{Metrics, PluginMethod, SandboxCounts};
use crate::naming::{PodRef, instance_name};
use crate::pod_network::PodNetworking;
use crate::sandbox_id::SandboxId;
use crate::state::{Phase, StateStore};

/// What the manager needs from the configuration.
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// `<pods-dir>`: per-sandbox directories holding `agent.ttrpc` and the debug `apf.json`.
    pub pods_dir: PathBuf,
    /// The agent-protocol-forwarder port in the pod VM.
    pub forwarder_port: u16,
    /// How long StartVM waits for the forwarder (`PROXY_TIMEOUT`).
    pub proxy_timeout: Duration,
    /// This worker node's name, put on every instance as the `caa/node` tag.
    pub node_name: Option<String>,
    /// The provider name (recorded with every instance).
    pub provider: String,
    /// Global `INITDATA` (already base64(gzip(toml))), used when a pod has none.
    pub initdata: Option<String>,
    /// `ENABLE_SCRATCH_SPACE`.
    pub scratch_space: bool,
    /// StartVM budget when the shim sends no deadline.
    pub default_start_budget: Duration,
    /// Largest userdata the plugin accepts (its `limits.maxUserDataBytes`).
    pub max_user_data_bytes: Option<u64>,
    /// Pod networking (VXLAN tunnels); `None` with `-disable-pod-network`.
    pub pod_network: Option<Arc<PodNetworking>>,
}

/// One live sandbox. Its `Debug` leaves out the userdata (it holds the VM's TLS key).
pub(super) struct Sandbox {
    pub(super) id: SandboxId,
    pub(super) pod: PodRef,
    pub(super) netns: String,
    pub(super) spec: InstanceSpec,
    pub(super) instance_name: String,
    /// The rendered cloud-config; secret (holds TLS keys), never logged.
    pub(super) userdata: String,
    pub(super) agent_socket: PathBuf,
    pub(super) instance: Option<CreateInstanceResult>,
    pub(super) started: bool,
    /// The pod network read at CreateVM (`None`: no pod networking for this sandbox).
    pub(super) network: Option<caa_podnet::PodNetwork>,
    /// The worker side of the tunnel, once planned at StartVM.
    pub(super) tunnel: Option<caa_podnet::WorkerTunnel>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("id", &self.id)
            .field("pod", &self.pod)
            .field("instance_name", &self.instance_name)
            .field("userdata", &format_args!("<redacted {} bytes>", self.userdata.len()))
            .field("instance", &self.instance)
            .field("started", &self.started)
            .field("tunnel", &self.tunnel)
            .finish_non_exhaustive()
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Sandbox>>>;

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) settings: ManagerSettings,
    pub(super) plugin: Supervisor,
    pub(super) store: Arc<StateStore>,
    pub(super) agent: Arc<dyn AgentConnector>,
    pub(super) metrics: Arc<Metrics>,
    table: Mutex<HashMap<SandboxId, Slot>>,
    /// What each live sandbox is doing, for the `caa_sandboxes` gauges only.
    states: Mutex<HashMap<SandboxId, SandboxState>>,
    /// Recently stopped ids, so a repeated StopVM succeeds.
    stopped: Mutex<VecDeque<SandboxId>>,
    /// Instance ids by sandbox, with the pod they belong to (GetInfo reads only this).
    vm_ids: Mutex<HashMap<SandboxId, (PodRef, String)>>,
    /// Bumped whenever a sandbox gets or loses an instance id (GetInfo waiters).
    info: watch::Sender<u64>,
}

/// The live sandboxes of this node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SandboxManager {
    pub(super) inner: Arc<Inner>,
}

const STOPPED_MEMORY: usize = 1024;

/// A live sandbox's state as the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SandboxState {
    /// Registered by CreateVM; StartVM not finished.
    Creating,
    /// StartVM succeeded, or re-adopted at start-up.
    Running,
    /// StopVM in progress, or StartVM failed and its instance is being deleted.
    Stopping,
}

impl SandboxManager {
    /// A manager over a running plugin and a state store, with a registry of its own.
    pub fn new(
        settings: ManagerSettings,
        plugin: Supervisor,
        store: StateStore,
        agent: Arc<dyn AgentConnector>,
    ) -> Self {
        Self::with_metrics(settings, plugin, store, agent, Arc::new(Metrics::new()))
    }

    /// A manager that counts its plugin calls and reconciliation in `metrics`.
    pub fn with_metrics(
        settings: ManagerSettings,
        plugin: Supervisor,
        store: StateStore,
        agent: Arc<dyn AgentConnector>,
        metrics: Arc<Metrics>,
    ) -> Self {
        SandboxManager {
            inner: Arc::new(Inner {
                settings,
                plugin,
                store: Arc::new(store),
                agent,
                metrics,
                table: Mutex::new(HashMap::new()),
                states: Mutex::new(HashMap::new()),
                stopped: Mutex::new(VecDeque::new()),
                vm_ids: Mutex::new(HashMap::new()),
                info: watch::Sender::new(0),
            }),
        }
    }

    /// The plugin supervisor.
    pub fn plugin(&self) -> &Supervisor {
        &self.inner.plugin
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Live sandboxes by state.
    pub fn sandbox_counts(&self) -> SandboxCounts {
        let states = self.inner.states.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counts = SandboxCounts::default();
        for state in states.values() {
            match state {
                SandboxState::Creating => counts.creating += 1,
                SandboxState::Running => counts.running += 1,
                SandboxState::Stopping => counts.stopping += 1,
            }
        }
        counts
    }

    /// Records what a live sandbox is doing (metrics only).
    pub(super) fn set_state(&self, id: &SandboxId, state: SandboxState) {
        let mut states = self.inner.states.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = states.get_mut(id) {
            *current = state;
        }
    }

    /// `deleteInstance` through the supervisor, counted in the metrics.
    pub(super) async fn delete_instance(
        &self,
        instance_id: &str,
        sandbox_id: Option<String>,
    ) -> Result<DeleteInstanceResult, CallError> {
        let call = self.inner.plugin.delete_instance(instance_id, sandbox_id);
        self.inner.metrics.timed(PluginMethod::DeleteInstance, call).await
    }

    /// Number of live sandboxes.
    pub fn len(&self) -> usize {
        self.inner.table.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no sandbox is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn slot(&self, id: &SandboxId) -> Option<Slot> {
        self.inner.table.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    fn insert(&self, id: SandboxId, sandbox: Sandbox) -> Result<(), SandboxError> {
        let mut table = self.inner.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.contains_key(&id) {
            return Err(SandboxError::AlreadyExists(id.as_str().to_owned()));
        }
        self.track(&id, SandboxState::Creating);
        table.insert(id, Arc::new(tokio::sync::Mutex::new(Some(sandbox))));
        Ok(())
    }

    /// Puts a sandbox restored from its durable record back into the table (reconciliation).
    pub(super) fn adopt(&self, sandbox: Sandbox) {
        let id = sandbox.id.clone();
        if let Some(vm) = &sandbox.instance {
            self.publish_instance(&id, &sandbox.pod, &vm.instance_id);
        }
        let mut table = self.inner.table.lock().unwrap_or_else(PoisonError::into_inner);
        self.track(&id, SandboxState::Running);
        table.insert(id, Arc::new(tokio::sync::Mutex::new(Some(sandbox))));
    }

    fn track(&self, id: &SandboxId, state: SandboxState) {
        self.inner.states.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), state);
    }

    /// Makes a sandbox's instance id visible to GetInfo and wakes its waiters.
    pub(super) fn publish_instance(&self, id: &SandboxId, pod: &PodRef, instance_id: &str) {
        self.inner
            .vm_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), (pod.clone(), instance_id.to_owned()));
        self.inner.info.send_modify(|n| *n += 1);
    }

    /// Hides a sandbox's instance id from GetInfo (the instance is gone or never came up).
    pub(super) fn unpublish_instance(&self, id: &SandboxId) {
        self.inner.vm_ids.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    fn forget(&self, id: &SandboxId) {
        self.unpublish_instance(id);
        self.inner.table.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        self.inner.states.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        let mut stopped = self.inner.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        stopped.push_back(id.clone());
        if stopped.len() > STOPPED_MEMORY {
            stopped.pop_front();
        }
    }

    fn recently_stopped(&self, id: &SandboxId) -> bool {
        self.inner.stopped.lock().unwrap_or_else(PoisonError::into_inner).contains(id)
    }

    /// CreateVM: validates the request, reads the pod network, renders the userdata and
    /// registers the sandbox. No cloud call. Returns the agent socket path.
    pub async fn create_vm(&self, req: CreateVm) -> Result<PathBuf, SandboxError> {
        if req.id.is_empty() {
            return Err(SandboxError::EmptyId);
        }
        let id = SandboxId::new(req.id.clone())?;
        let pod = PodRef::from_annotations(&req.annotations)?;
        if self.slot(&id).is_some() {
            return Err(SandboxError::AlreadyExists(id.as_str().to_owned()));
        }
        let network = self.inspect_network(&id, &req.netns).await?;
        let registered = self.register(id.clone(), pod, req, network);
        if registered.is_err()
            && let Some(networking) = &self.inner.settings.pod_network
            && !matches!(registered, Err(SandboxError::AlreadyExists(_)))
        {
            networking.release(id.as_str());
        }
        registered
    }

    fn register(
        &self,
        id: SandboxId,
        pod: PodRef,
        req: CreateVm,
        network: Option<caa_podnet::PodNetwork>,
    ) -> Result<PathBuf, SandboxError> {
        let spec = VmRequestSpec::from_annotations(&req.annotations);
        let name = instance_name(&pod.name, &id);
        let dir = self.inner.settings.pods_dir.join(id.as_str());
        create_private_dir(&dir)?;
        let agent_socket = dir.join("agent.ttrpc");

        let tls = self.inner.agent.vm_tls(&name).map_err(SandboxError::Tls)?;
        let forwarder = ForwarderConfig {
            pod_name: pod.name.clone(),
            pod_namespace: pod.namespace.clone(),
            tls_server_cert: tls.server_cert,
            tls_server_key: tls.server_key,
            tls_client_ca: tls.client_ca,
            tls_min_version: tls.min_version,
            tls_cipher_suites: tls.cipher_suites,
            pod_network: network.clone().unwrap_or_default(),
            ..ForwarderConfig::default()
        };
        let apf = forwarder.to_json()?;
        write_private(&dir.join("apf.json"), apf.as_bytes())?;
        let mut userdata = UserData::new(forwarder);
        userdata.initdata = match (spec.initdata, &self.inner.settings.initdata) {
            (Some(toml), _) => Some(Initdata::Toml(toml)),
            (None, Some(global)) if !global.is_empty() => Some(Initdata::Encoded(global.clone())),
            _ => None,
        };
        userdata.scratch_space = self.inner.settings.scratch_space;
        let rendered = caa_userdata::render(&userdata)?;
        caa_userdata::check_size(&rendered, self.inner.settings.max_user_data_bytes)?;

        let sandbox = Sandbox {
            id: id.clone(),
            pod: pod.clone(),
            netns: req.netns.clone(),
            spec: spec.instance,
            instance_name: name,
            userdata: rendered,
            agent_socket: agent_socket.clone(),
            instance: None,
            started: false,
            network,
            tunnel: None,
        };
        self.insert(id.clone(), sandbox)?;
        tracing::info!(
            sandbox_id = %id,
            "create a sandbox {id} for pod {} in namespace {} (netns: {})",
            pod.name,
            pod.namespace,
            req.netns
        );
        Ok(agent_socket)
    }

    /// StopVM: deletes the instance (with retries) and forgets the sandbox. Never fails for a
    /// known sandbox: an instance that cannot be deleted stays recorded for reconciliation.
    pub async fn stop_vm(&self, id: &str) -> Result<(), SandboxError> {
        // Its own task: a caller that goes away (deadline, closed connection) must not cancel
        // a delete half-way and leave the sandbox neither live nor forgotten.
        let this = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move { this.stop_attached(&id).await })
            .await
            .unwrap_or(Err(SandboxError::ShuttingDown))
    }

    async fn stop_attached(&self, id: &str) -> Result<(), SandboxError> {
        let sid = SandboxId::new(id.to_owned())
            .map_err(|_| SandboxError::UnknownOnStop(id.to_owned()))?;
        let Some(slot) = self.slot(&sid) else {
            if self.recently_stopped(&sid) {
                return Ok(());
            }
            return Err(SandboxError::UnknownOnStop(id.to_owned()));
        };
        let mut guard = slot.lock().await;
        let Some(sandbox) = guard.take() else {
            return Ok(()); // stopped by a concurrent StopVM
        };
        self.set_state(&sid, SandboxState::Stopping);
        self.inner.agent.disconnect(sid.as_str());
        // The agent socket of a stopped sandbox is stale; the directory and its debug apf.json
        // stay, as upstream leaves them.
        let _ = std::fs::remove_file(&sandbox.agent_socket);
        // The instance to delete: the live one, else whatever the record still names (a failed
        // start whose cleanup has not finished), else what carries the record's operation tag
        // (a start that ended before the plugin announced an id).
        let record = self.inner.store.get(&sid).ok().flatten();
        let record_was_creating =
            record.as_ref().is_some_and(|r| r.phase == Phase::Creating && r.instance_id.is_none());
        let tunnel = sandbox.tunnel.clone().or_else(|| record.as_ref()?.tunnel.clone());
        let mut ids: Vec<String> =
            sandbox.instance.as_ref().map(|vm| vm.instance_id.clone()).into_iter().collect();
        if ids.is_empty() {
            ids.extend(record.as_ref().and_then(|r| r.instance_id.clone()));
        }
        if ids.is_empty()
            && let Some(r) = record.as_ref().filter(|r| r.phase == Phase::Creating)
        {
            ids =
                self.instances_tagged(caa_plugin_proto::tags::OPERATION_ID, &r.operation_id).await;
        }
        if let Some(mut r) = record.filter(|_| !ids.is_empty()) {
            r.phase = Phase::Stopping;
            r.instance_id = ids.first().cloned();
            if let Err(e) = self.inner.store.put(&r) {
                tracing::warn!(sandbox_id = %sid, error = %e, "could not record the stopping phase");
            }
        }
        // A start that failed before the plugin named an instance may still be creating one
        // (the plugin's create outlives the shim's deadline): keep its record so start-up
        // reconciliation looks for the instance by its operation tag.
        let mut deleted = !(ids.is_empty() && record_was_creating);
        for instance_id in &ids {
            match self.delete_instance(instance_id, Some(sid.as_str().to_owned())).await {
                Ok(r) => {
                    tracing::info!(sandbox_id = %sid, %instance_id, deleted = r.deleted, "deleted the instance");
                }
                Err(e) => {
                    deleted = false;
                    tracing::error!(sandbox_id = %sid, %instance_id, error = %e, "failed to delete the instance; it stays recorded for reconciliation");
                }
            }
        }
        // Upstream tears the tunnel down after the delete too; a tunnel that cannot be removed
        // keeps the record (and its VNI) for the next start-up.
        let tunnel_gone = self.remove_tunnel(&sid, tunnel.as_ref()).await;
        if deleted
            && tunnel_gone
            && let Err(e) = self.inner.store.remove(&sid)
        {
            tracing::warn!(sandbox_id = %sid, error = %e, "could not remove the sandbox record");
        }
        if tunnel_gone {
            self.forget_tunnel(&sid);
        }
        drop(guard);
        self.forget(&sid);
        tracing::info!(sandbox_id = %sid, pod = %sandbox.pod.name, "stopped the sandbox");
        Ok(())
    }

    /// GetInfo: the instance id of the pod's sandbox; with `wait`, blocks until one exists or
    /// `deadline` passes (upstream can block past the caller's deadline; we do not).
    pub async fn get_info(
        &self,
        name: &str,
        namespace: &str,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<String, InfoError> {
        let mut changes = self.inner.info.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(id) = self.instance_of(name, namespace) {
                return Ok(id);
            }
            let not_found =
                || InfoError::NotFound { namespace: namespace.to_owned(), name: name.to_owned() };
            if !wait {
                return Err(not_found());
            }
            let changed = changes.changed();
            match deadline {
                Some(d) => match tokio::time::timeout_at(d, changed).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(not_found()),
                    Err(_) => {
                        return Err(InfoError::Deadline {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                },
                None => {
                    if changed.await.is_err() {
                        return Err(not_found());
                    }
                }
            }
        }
    }

    fn instance_of(&self, name: &str, namespace: &str) -> Option<String> {
        let ids = self.inner.vm_ids.lock().unwrap_or_else(PoisonError::into_inner);
        ids.values()
            .find(|(pod, _)| pod.name == name && pod.namespace == namespace)
            .map(|(_, id)| id.clone())
    }
}

fn create_private_dir(dir: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SandboxError::Files { path: dir.display().to_string(), source })
}

/// The debug copy of apf.json holds the VM's TLS private key: owner-only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let files = |source| SandboxError::Files { path: path.display().to_string(), source };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(files)?;
    file.write_all(bytes).map_err(files)
}
