//! The host's side of the create/delete contract: deletes retried within their budget (through
//! plugin restarts and an open breaker), orphans recorded, and deletes that still failed kept
//! for another try after the next successful (re)start.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use caa_plugin_proto::method::{DeleteInstance, ListInstances};
use caa_plugin_proto::{DeleteInstanceParams, DeleteInstanceResult, ErrorCode, Method, tags};

use super::{Busy, Orphan, Supervisor};
use crate::client::CallError;
use crate::timeouts::CallPolicy;

/// An orphan whose delete failed, waiting for the next (re)start.
#[derive(Debug, Clone)]
pub(super) struct Retry {
    instance_id: String,
    operation_id: String,
    sandbox_id: String,
}

impl Supervisor {
    /// Deletes an instance, retrying retryable errors, timeouts, crashes and an unavailable
    /// plugin (restarting, breaker open) with backoff within the delete budget. An instance that
    /// is already gone is a success.
    pub async fn delete_instance(
        &self,
        instance_id: &str,
        sandbox_id: Option<String>,
    ) -> Result<DeleteInstanceResult, CallError> {
        let budget = self.inner.spec.timeouts.delete;
        let deadline = Instant::now() + budget;
        let operation_id = uuid::Uuid::new_v4().to_string();
        let mut backoff = self.inner.policy.initial_backoff;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let params = DeleteInstanceParams {
                operation_id: operation_id.clone(),
                instance_id: instance_id.to_owned(),
                sandbox_id: sandbox_id.clone(),
                deadline_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
            };
            let attempt = async {
                let plugin = self.plugin_until(deadline).await?;
                let remaining = deadline.saturating_duration_since(Instant::now());
                let params = DeleteInstanceParams {
                    deadline_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
                    ..params
                };
                let opts = DeleteInstance::options(&params, &self.inner.spec.timeouts);
                plugin
                    .call_with::<DeleteInstance>(
                        &params,
                        crate::CallOptions { timeout: remaining, ..opts },
                    )
                    .await
            };
            let mut wait = backoff;
            let err = match attempt.await {
                Ok(result) => return Ok(result),
                Err(CallError::Rpc(e)) if e.kind() == ErrorCode::NotFound => {
                    return Ok(DeleteInstanceResult {
                        deleted: false,
                        reason: Some("notFound".to_owned()),
                    });
                }
                Err(CallError::Rpc(e)) if e.retryable() => {
                    if let Some(ms) = e.data.as_ref().and_then(|d| d.retry_after_ms) {
                        wait = wait.max(Duration::from_millis(ms));
                    }
                    CallError::Rpc(e)
                }
                Err(e @ CallError::Unavailable { .. }) if self.is_stopped() => return Err(e),
                Err(
                    e @ (CallError::Timeout { .. }
                    | CallError::Crashed { .. }
                    | CallError::Closed { .. }
                    | CallError::Unavailable { .. }),
                ) => e,
                Err(e) => return Err(e),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining <= wait {
                return Err(err);
            }
            tracing::warn!(plugin = %self.inner.spec.name, instance_id, error = %err, "deleteInstance failed; retrying");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.inner.policy.max_backoff);
        }
    }

    /// The running plugin, waiting through restarts and an open breaker until `deadline`.
    async fn plugin_until(
        &self,
        deadline: Instant,
    ) -> Result<std::sync::Arc<crate::Plugin>, CallError> {
        let mut backoff = self.inner.policy.initial_backoff;
        loop {
            match self.plugin().await {
                Ok(p) => return Ok(p),
                Err(e) if self.is_stopped() => return Err(e),
                Err(e) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining <= backoff {
                        return Err(e);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.inner.policy.max_backoff);
                }
            }
        }
    }

    fn is_stopped(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    /// Deletes a VM a failed create may have left, in the background, and records the outcome.
    pub(super) fn clean_up(&self, instance_id: String, operation_id: &str, sandbox_id: &str) {
        tracing::warn!(
            plugin = %self.inner.spec.name, %instance_id, operation_id, sandbox_id,
            "create failed and may have left an instance; deleting it"
        );
        let retry = Retry {
            instance_id,
            operation_id: operation_id.to_owned(),
            sandbox_id: sandbox_id.to_owned(),
        };
        self.spawn_delete(retry);
    }

    fn spawn_delete(&self, orphan: Retry) {
        let this = self.clone();
        let busy = Busy::new(&self.inner, None);
        tokio::spawn(async move {
            let _busy = busy;
            let Retry { instance_id, operation_id, sandbox_id } = orphan;
            let result = this.delete_instance(&instance_id, Some(sandbox_id.clone())).await;
            if let Err(e) = &result {
                tracing::error!(plugin = %this.inner.spec.name, %instance_id, error = %e, "orphan cleanup failed; retrying after the next plugin start");
                this.inner.retries.lock().unwrap_or_else(PoisonError::into_inner).push(Retry {
                    instance_id: instance_id.clone(),
                    operation_id: operation_id.clone(),
                    sandbox_id: sandbox_id.clone(),
                });
            }
            this.record(Orphan {
                instance_id,
                operation_id,
                sandbox_id,
                cleaned: result.is_ok(),
                error: result.err().map(|e| e.to_string()),
            });
        });
    }

    /// Runs the deletes that failed before; called after each successful (re)start.
    pub(super) fn retry_orphans(&self) {
        let retries =
            std::mem::take(&mut *self.inner.retries.lock().unwrap_or_else(PoisonError::into_inner));
        for orphan in retries {
            tracing::info!(plugin = %self.inner.spec.name, instance_id = %orphan.instance_id, "retrying orphan cleanup");
            self.spawn_delete(orphan);
        }
    }

    /// No id is known: once the plugin is running again, ask it for instances tagged with the
    /// operation id, if it supports `listInstances`; otherwise leave a warning for
    /// reconciliation.
    pub(super) fn clean_up_by_tag(&self, operation_id: &str, sandbox_id: &str) {
        let this = self.clone();
        let busy = Busy::new(&self.inner, None);
        let (op, sandbox) = (operation_id.to_owned(), sandbox_id.to_owned());
        tokio::spawn(async move {
            let _busy = busy;
            let found = this.find_by_tag(&op).await;
            if found.is_empty() {
                tracing::warn!(plugin = %this.inner.spec.name, operation_id = %op, sandbox_id = %sandbox, "possible orphan: create outcome unknown and no instance id known");
            }
            for instance_id in found {
                this.clean_up(instance_id, &op, &sandbox);
            }
        });
    }

    async fn find_by_tag(&self, operation_id: &str) -> Vec<String> {
        let deadline = Instant::now() + self.inner.spec.timeouts.delete;
        let mut backoff = self.inner.policy.initial_backoff;
        loop {
            let plugin = match self.plugin_until(deadline).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(plugin = %self.inner.spec.name, operation_id, error = %e, "cannot look for orphans: plugin unavailable");
                    return Vec::new();
                }
            };
            if !plugin.info().capabilities.optional_methods.iter().any(|m| m == ListInstances::NAME)
            {
                return Vec::new();
            }
            drop(plugin);
            let tags = BTreeMap::from([(tags::OPERATION_ID.to_owned(), operation_id.to_owned())]);
            let err = match self.list_instances(tags).await {
                Ok(r) => return r.instances.into_iter().map(|i| i.instance_id).collect(),
                Err(e @ (CallError::Timeout { .. } | CallError::Crashed { .. })) => e,
                Err(e @ (CallError::Closed { .. } | CallError::Unavailable { .. })) => e,
                Err(e) => {
                    tracing::warn!(plugin = %self.inner.spec.name, operation_id, error = %e, "listInstances failed");
                    return Vec::new();
                }
            };
            if self.is_stopped() || deadline.saturating_duration_since(Instant::now()) <= backoff {
                tracing::warn!(plugin = %self.inner.spec.name, operation_id, error = %err, "listInstances failed");
                return Vec::new();
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.inner.policy.max_backoff);
        }
    }

    pub(super) fn record(&self, orphan: Orphan) {
        self.inner.orphans.lock().unwrap_or_else(PoisonError::into_inner).push(orphan);
        self.inner.orphan_count.send_modify(|n| *n += 1);
    }
}
