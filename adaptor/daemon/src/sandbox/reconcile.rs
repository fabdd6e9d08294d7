//! Start-up reconciliation between the durable records and the cloud. A record in `Running`
//! is re-adopted (its pod may still be there; the shim's StopVM will come); a record caught in
//! `Creating` or `Stopping` belongs to a StartVM or StopVM that died with the previous adaptor,
//! so its instance is deleted — found by id, or by its operation-id tag when the id was never
//! announced. With `listInstances`, instances tagged with this node that no record knows are
//! deleted too. Tunnels of abandoned sandboxes are removed from their records, and VNIs whose
//! sandbox has no record left are released.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use caa_plugin_proto::{CreateInstanceResult, InstanceSpec, tags};

use super::AgentTarget;
use super::manager::{Sandbox, SandboxManager};
use crate::metrics::{PluginMethod, ReconcileAction};
use crate::naming::PodRef;
use crate::state::{Phase, SandboxRecord};

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Sandboxes put back into service.
    pub adopted: Vec<String>,
    /// Instances deleted.
    pub deleted: Vec<String>,
    /// Instances that could not be deleted (still recorded).
    pub failed: Vec<String>,
    /// Record files that could not be read (moved aside by the store).
    pub unreadable: usize,
}

impl SandboxManager {
    /// Reconciles the records with the plugin's view. Never fails: problems are logged and
    /// reported.
    pub async fn reconcile(&self) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let records = match self.inner.store.list() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the state directory; nothing reconciled");
                return report;
            }
        };
        let mut known = HashSet::new();
        for record in records {
            let record = match record {
                Ok(r) => r,
                Err(failure) => {
                    tracing::error!(path = %failure.path.display(), error = %failure.error, "unreadable sandbox record");
                    report.unreadable += 1;
                    continue;
                }
            };
            if record.phase == Phase::Running && record.instance_id.is_some() {
                known.extend(record.instance_id.clone());
                report.adopted.push(record.sandbox_id.as_str().to_owned());
                let sandbox = self.restored(&record);
                self.reattach_agent(&sandbox);
                self.adopt(sandbox);
                continue;
            }
            self.finish_abandoned(record, &mut report, &mut known).await;
        }
        self.delete_unrecorded(&known, &mut report).await;
        self.prune_vnis();
        let metrics = &self.inner.metrics;
        metrics.reconciled(ReconcileAction::Adopted, report.adopted.len());
        metrics.reconciled(ReconcileAction::Deleted, report.deleted.len());
        metrics.reconciled(ReconcileAction::Failed, report.failed.len());
        tracing::info!(
            adopted = report.adopted.len(),
            deleted = report.deleted.len(),
            failed = report.failed.len(),
            unreadable = report.unreadable,
            "reconciled sandbox records with the provider"
        );
        report
    }

    /// A re-adopted sandbox gets its agent socket and forwarder connection back (the TLS
    /// material persists in the state dir), so a shim that reconnects finds its agent again.
    fn reattach_agent(&self, sandbox: &Sandbox) {
        let Some(ip) = sandbox.instance.as_ref().and_then(|vm| vm.ips.first()?.parse().ok()) else {
            return;
        };
        let endpoint = std::net::SocketAddr::new(ip, self.inner.settings.forwarder_port);
        let (agent, id, socket, name) = (
            self.inner.agent.clone(),
            sandbox.id.as_str().to_owned(),
            sandbox.agent_socket.clone(),
            sandbox.instance_name.clone(),
        );
        let deadline = tokio::time::Instant::now() + self.inner.settings.proxy_timeout;
        tokio::spawn(async move {
            let target =
                AgentTarget { sandbox_id: &id, socket: &socket, endpoint, instance_name: &name };
            match agent.connect(target, deadline).await {
                Ok(()) => tracing::info!(sandbox_id = %id, "agent proxy re-established"),
                Err(e) => {
                    tracing::warn!(sandbox_id = %id, error = %e, "agent proxy not re-established");
                }
            }
        });
    }

    fn restored(&self, record: &SandboxRecord) -> Sandbox {
        let dir: PathBuf = self.inner.settings.pods_dir.join(record.sandbox_id.as_str());
        Sandbox {
            id: record.sandbox_id.clone(),
            pod: PodRef { name: record.pod_name.clone(), namespace: record.pod_namespace.clone() },
            netns: record
                .tunnel
                .as_ref()
                .map(|t| t.pod_netns.display().to_string())
                .unwrap_or_default(),
            spec: InstanceSpec::default(),
            instance_name: record.instance_name.clone(),
            userdata: String::new(),
            agent_socket: dir.join("agent.ttrpc"),
            instance: record.instance_id.clone().map(|instance_id| CreateInstanceResult {
                instance_id,
                name: record.instance_name.clone(),
                ips: record.ips.iter().map(ToString::to_string).collect(),
                provider_data: None,
            }),
            started: true,
            network: None,
            tunnel: record.tunnel.clone(),
        }
    }

    /// A StartVM or StopVM that died half-way: delete its instance, then drop the record.
    async fn finish_abandoned(
        &self,
        record: SandboxRecord,
        report: &mut ReconcileReport,
        known: &mut HashSet<String>,
    ) {
        let sid = record.sandbox_id.clone();
        let mut ids: Vec<String> = record.instance_id.clone().into_iter().collect();
        if ids.is_empty() {
            ids = self.instances_tagged(tags::OPERATION_ID, &record.operation_id).await;
        }
        let mut all_gone = true;
        for id in ids {
            match self.delete_instance(&id, Some(sid.as_str().to_owned())).await {
                Ok(_) => report.deleted.push(id),
                Err(e) => {
                    tracing::error!(sandbox_id = %sid, instance_id = %id, error = %e, "could not delete an abandoned instance");
                    known.insert(id.clone());
                    report.failed.push(id);
                    all_gone = false;
                }
            }
        }
        let tunnel_gone = self.remove_tunnel(&sid, record.tunnel.as_ref()).await;
        if all_gone
            && tunnel_gone
            && let Err(e) = self.inner.store.remove(&sid)
        {
            tracing::warn!(sandbox_id = %sid, error = %e, "could not remove the sandbox record");
        }
        if tunnel_gone {
            self.forget_tunnel(&sid);
        }
    }

    /// Instances carrying `key=value`, when the plugin can list.
    pub(super) async fn instances_tagged(&self, key: &str, value: &str) -> Vec<String> {
        if !self.lists().await {
            return Vec::new();
        }
        let call =
            self.inner.plugin.list_instances(BTreeMap::from([(key.to_owned(), value.to_owned())]));
        match self.inner.metrics.timed(PluginMethod::ListInstances, call).await {
            Ok(found) => found.instances.into_iter().map(|i| i.instance_id).collect(),
            Err(e) => {
                tracing::warn!(tag = key, value, error = %e, "listInstances failed");
                Vec::new()
            }
        }
    }

    async fn lists(&self) -> bool {
        match self.inner.plugin.plugin().await {
            Ok(p) => p.info().capabilities.optional_methods.iter().any(|m| m == "listInstances"),
            Err(_) => false,
        }
    }

    /// Instances of this node that no record knows.
    async fn delete_unrecorded(&self, known: &HashSet<String>, report: &mut ReconcileReport) {
        let Some(node) = self.inner.settings.node_name.clone() else { return };
        for id in self.instances_tagged(tags::NODE, &node).await {
            if known.contains(&id) || report.deleted.contains(&id) {
                continue;
            }
            tracing::warn!(instance_id = %id, node = %node, "deleting an instance of this node that no sandbox record knows");
            match self.delete_instance(&id, None).await {
                Ok(_) => report.deleted.push(id),
                Err(e) => {
                    tracing::error!(instance_id = %id, error = %e, "could not delete an unrecorded instance");
                    report.failed.push(id);
                }
            }
        }
    }
}
