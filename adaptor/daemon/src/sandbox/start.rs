//! StartVM: create the instance through the plugin, record it durably as soon as its id is known,
//! wait for the pod VM's forwarder, and on any failure delete what was made. The flow runs in its
//! own task, so a caller that goes away (the shim's deadline, a dropped connection) never leaves
//! a half-made VM behind.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use caa_plugin_proto::{CreateInstanceParams, CreateInstanceResult, tags};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::manager::{Sandbox, SandboxManager, SandboxState};
use super::{AgentTarget, SandboxError};
use crate::metrics::PluginMethod;
use crate::sandbox_id::SandboxId;
use crate::state::{Phase, SandboxRecord};

/// Time kept back from the plugin's budget for the network and agent steps after the create.
const MAX_RESERVE: Duration = Duration::from_secs(60);

impl SandboxManager {
    /// StartVM. `deadline` is the shim's (from `timeout_nano`); without one the default budget
    /// applies. Answers by the deadline whatever the plugin does.
    pub async fn start_vm(&self, id: &str, deadline: Option<Instant>) -> Result<(), SandboxError> {
        let this = self.clone();
        let id = id.to_owned();
        let task = tokio::spawn(async move { this.start_attached(&id, deadline).await });
        task.await.unwrap_or(Err(SandboxError::ShuttingDown))
    }

    async fn start_attached(
        &self,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<(), SandboxError> {
        let unknown = || SandboxError::Unknown(id.to_owned());
        let sid = SandboxId::new(id.to_owned()).map_err(|_| unknown())?;
        let slot = self.slot(&sid).ok_or_else(unknown)?;
        let mut guard = slot.lock().await;
        let sandbox = guard.as_mut().ok_or_else(unknown)?;
        if sandbox.started {
            return Err(SandboxError::AlreadyStarted(id.to_owned()));
        }
        sandbox.started = true;
        let started = Instant::now();
        tracing::info!(sandbox_id = %sid, netns = %sandbox.netns, deadline = ?deadline.map(|d| d - started), "starting the pod VM");
        let deadline = deadline.unwrap_or(started + self.inner.settings.default_start_budget);
        let operation_id = uuid::Uuid::new_v4().to_string();
        let mut record = SandboxRecord::creating(
            sid.clone(),
            sandbox.pod.name.clone(),
            sandbox.pod.namespace.clone(),
            sandbox.instance_name.clone(),
            self.inner.settings.provider.clone(),
            operation_id.clone(),
        );
        self.inner.store.put(&record)?;

        // The deadline bounds the create and the forwarder wait inside `bring_up`, never the
        // bookkeeping in between: a create that returned is always recorded and handled.
        let error = match self.bring_up(sandbox, &mut record, deadline, started).await {
            Ok(()) => {
                self.set_state(&sid, SandboxState::Running);
                tracing::info!(sandbox_id = %sid, took = ?started.elapsed(), "agent proxy is ready");
                return Ok(());
            }
            Err(e) => e,
        };
        tracing::warn!(sandbox_id = %sid, error = %error, "StartVM failed; cleaning up");
        // Could the plugin have made an instance we were not told about?
        let maybe_left = match &error {
            SandboxError::Create(e) => e.is_indeterminate(),
            SandboxError::Deadline(_) => true,
            _ => false,
        };
        self.set_state(&sid, SandboxState::Stopping);
        self.abort_start(sandbox, record, maybe_left);
        Err(error)
    }

    /// Create, record, wait for the forwarder.
    async fn bring_up(
        &self,
        sandbox: &mut Sandbox,
        record: &mut SandboxRecord,
        deadline: Instant,
        started: Instant,
    ) -> Result<(), SandboxError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        let reserve = MAX_RESERVE.min(budget / 5);
        let params = self.create_params(sandbox, &record.operation_id, budget - reserve);

        // Record the instance id durably the moment the plugin announces it.
        let (tx, mut rx) = mpsc::unbounded_channel::<caa_plugin_proto::ProgressParams>();
        let store = self.inner.store.clone();
        let mut announced_record = record.clone();
        let announced_id = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = announced_id.clone();
        let recorder = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if let Some(instance_id) = p.instance_id
                    && announced_record.instance_id.as_deref() != Some(instance_id.as_str())
                {
                    *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(instance_id.clone());
                    announced_record.instance_id = Some(instance_id);
                    announced_record.updated_at = std::time::SystemTime::now();
                    if let Err(e) = store.put(&announced_record) {
                        tracing::error!(sandbox_id = %announced_record.sandbox_id, error = %e, "could not record the announced instance");
                    }
                }
            }
            announced_record.instance_id
        });
        let call = self.inner.plugin.create_instance(params, Some(tx));
        let timed = self.inner.metrics.timed(PluginMethod::CreateInstance, call);
        let Ok(created) = tokio::time::timeout_at(deadline, timed).await else {
            // The plugin's create goes on; its supervisor deletes whatever it returns now that
            // nobody waits. An id it already announced is ours to delete.
            record.instance_id =
                announced_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            return Err(SandboxError::Deadline(started.elapsed()));
        };
        let announced = recorder.await.ok().flatten();
        let vm = match created {
            Ok(vm) => vm,
            Err(e) => {
                record.instance_id = e.instance_id().map(str::to_owned).or(announced);
                return Err(SandboxError::Create(Box::new(e)));
            }
        };
        record.instance_id = Some(vm.instance_id.clone());
        record.ips = vm.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        record.updated_at = std::time::SystemTime::now();
        self.inner.store.put(record)?;
        sandbox.instance = Some(vm.clone());
        self.publish_instance(&sandbox.id, &sandbox.pod, &vm.instance_id);
        tracing::info!(sandbox_id = %sandbox.id, instance_id = %vm.instance_id, "created an instance {} for sandbox {}", vm.name, sandbox.id);

        let ips: Vec<IpAddr> = vm.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        let ip = *ips.first().ok_or(SandboxError::NoIp)?;
        self.setup_tunnel(sandbox, record, &ips).await?;
        let endpoint = SocketAddr::new(ip, self.inner.settings.forwarder_port);
        let ready_by = deadline.min(Instant::now() + self.inner.settings.proxy_timeout);
        let target = AgentTarget {
            sandbox_id: sandbox.id.as_str(),
            socket: &sandbox.agent_socket,
            endpoint,
            instance_name: &sandbox.instance_name,
        };
        self.inner
            .agent
            .connect(target, ready_by)
            .await
            .map_err(|message| SandboxError::Agent { endpoint: endpoint.to_string(), message })?;
        record.phase = Phase::Running;
        record.updated_at = std::time::SystemTime::now();
        self.inner.store.put(record)?;
        Ok(())
    }

    fn create_params(
        &self,
        sandbox: &Sandbox,
        operation_id: &str,
        budget: Duration,
    ) -> CreateInstanceParams {
        let mut tags = BTreeMap::from([
            (tags::SANDBOX_ID.to_owned(), sandbox.id.as_str().to_owned()),
            (tags::OPERATION_ID.to_owned(), operation_id.to_owned()),
            (tags::POD.to_owned(), format!("{}/{}", sandbox.pod.namespace, sandbox.pod.name)),
        ]);
        if let Some(node) = &self.inner.settings.node_name {
            tags.insert(tags::NODE.to_owned(), node.clone());
        }
        CreateInstanceParams {
            operation_id: operation_id.to_owned(),
            deadline_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX).max(1),
            pod_name: sandbox.pod.name.clone(),
            pod_namespace: sandbox.pod.namespace.clone(),
            sandbox_id: sandbox.id.as_str().to_owned(),
            user_data: sandbox.userdata.clone(),
            user_data_format: Some("cloud-config".to_owned()),
            spec: sandbox.spec.clone(),
            tags,
        }
    }

    /// Forgets the failed start's instance and deletes it in the background (bounded retries in
    /// the supervisor), after removing its tunnel. The record stays until both are gone, so
    /// StopVM or a restart finishes them; without an instance id it stays when the plugin may
    /// still create one. The VNI stays with the sandbox until StopVM.
    fn abort_start(&self, sandbox: &mut Sandbox, mut record: SandboxRecord, maybe_left: bool) {
        self.inner.agent.disconnect(sandbox.id.as_str());
        self.unpublish_instance(&sandbox.id);
        let instance_id = sandbox
            .instance
            .take()
            .map(|vm: CreateInstanceResult| vm.instance_id)
            .or(record.instance_id.clone());
        let tunnel = sandbox.tunnel.take();
        let this = self.clone();
        tokio::spawn(async move {
            let sid = record.sandbox_id.clone();
            if !this.remove_tunnel(&sid, tunnel.as_ref()).await {
                // Leave the record naming the tunnel; StopVM or the next start-up retries.
                tracing::warn!(sandbox_id = %sid, "keeping the record of the failed start for its tunnel");
            } else if tunnel.is_some() {
                record.tunnel = None;
                let _ = this.inner.store.put(&record);
            }
            let keep_for_tunnel = record.tunnel.is_some();
            let Some(instance_id) = instance_id else {
                if maybe_left {
                    // The plugin may still finish the create (its supervisor deletes what it
                    // returns); keep the record so StopVM or the next start-up looks for the
                    // instance by its operation tag.
                    tracing::warn!(sandbox_id = %sid, operation_id = %record.operation_id, "start failed before the plugin named an instance; keeping the record until StopVM");
                } else if !keep_for_tunnel && let Err(e) = this.inner.store.remove(&sid) {
                    tracing::warn!(sandbox_id = %sid, error = %e, "could not remove the sandbox record");
                }
                return;
            };
            record.phase = Phase::Stopping;
            record.instance_id = Some(instance_id.clone());
            let _ = this.inner.store.put(&record);
            match this.delete_instance(&instance_id, Some(sid.as_str().to_owned())).await {
                Ok(_) => {
                    tracing::info!(sandbox_id = %sid, %instance_id, "deleted the instance of the failed start");
                    if keep_for_tunnel {
                        return;
                    }
                    if let Err(e) = this.inner.store.remove(&sid) {
                        tracing::warn!(sandbox_id = %sid, error = %e, "could not remove the sandbox record");
                    }
                }
                Err(e) => {
                    tracing::error!(sandbox_id = %sid, %instance_id, error = %e, "could not delete the instance of a failed start; it stays recorded for reconciliation");
                }
            }
        });
    }
}
