//! [`LibvirtProvider`], the [`Provider`] implementation. It holds the parsed configuration and
//! one lazily opened libvirt connection (reopened when it dies); every libvirt call runs on the
//! blocking pool, since the SDK drives the plugin on a single-threaded runtime. `createInstance`
//! lives in [`crate::create`].

use std::collections::BTreeMap;
use std::sync::Arc;

use caa_plugin_proto::method::{ListInstances, Method};
use caa_plugin_proto::{
    Capabilities, Check, CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams,
    DeleteInstanceResult, Describe, ErrorCode, InstanceCapabilities, InstanceInfo, Limits,
    ListInstancesParams, ListInstancesResult, PeerInfo, RpcError, Stage, VerifyConfigResult,
};
use caa_plugin_sdk::{Config, Ctx, Provider};
use tokio::sync::Mutex;

use crate::config::LibvirtConfig;
use crate::error::Error;
use crate::host::Arch;
use crate::session::{self, Found, Session};

/// The provider name.
pub const PROVIDER_NAME: &str = "libvirt";

/// The libvirt provider.
#[derive(Debug)]
pub struct LibvirtProvider {
    pub(crate) config: Arc<LibvirtConfig>,
    session: Mutex<Option<Arc<Session>>>,
}

/// Runs blocking libvirt work off the runtime thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Task(e.to_string()))?
}

impl LibvirtProvider {
    /// A provider for an already parsed configuration; connects on first use.
    pub fn new(config: LibvirtConfig) -> LibvirtProvider {
        LibvirtProvider { config: Arc::new(config), session: Mutex::new(None) }
    }

    /// The parsed configuration.
    pub fn config(&self) -> &LibvirtConfig {
        &self.config
    }

    /// The open connection, opening (or reopening a dead) one.
    pub async fn session(&self) -> Result<Arc<Session>, Error> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| s.is_alive()) {
            return Ok(session.clone());
        }
        let uri = self.config.uri.clone();
        let session = Arc::new(blocking(move || Session::open(&uri)).await?);
        tracing::info!(
            uri = %self.config.uri,
            arch = session.host().arch.libvirt_name(),
            test_driver = session.is_test_driver(),
            "connected to libvirt"
        );
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Deletes the instance `uuid`: stops it, deletes the volumes it was created with, undefines
    /// it. `Ok(false)` when no such domain exists.
    pub(crate) async fn remove(&self, session: Arc<Session>, uuid: String) -> Result<bool, Error> {
        let pool = self.config.pool.clone();
        blocking(move || {
            let Some(found) = session.by_uuid(&uuid)? else {
                return Ok(false);
            };
            session.remove(&found, &pool)?;
            Ok(true)
        })
        .await
    }
}

impl Provider for LibvirtProvider {
    fn describe() -> Describe {
        Describe {
            plugin: PeerInfo {
                name: PROVIDER_NAME.to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                sdk: None,
            },
            protocol_versions: caa_plugin_proto::PROTOCOL_VERSIONS.to_vec(),
            capabilities: Capabilities {
                cancel: true,
                progress: true,
                idempotent_create: true,
                max_concurrent_requests: 16,
                instance: InstanceCapabilities {
                    arch: Arch::ALL.iter().map(|a| a.protocol_name().to_owned()).collect(),
                    gpus: false,
                    volumes: false,
                    multi_nic: false,
                    instance_types: false,
                },
                limits: Limits { max_user_data_bytes: None },
                optional_methods: vec![ListInstances::NAME.to_owned()],
            },
            config_schema: crate::config::schema(),
        }
    }

    async fn init(config: Config) -> Result<LibvirtProvider, RpcError> {
        let config = LibvirtConfig::from_config(&config)?;
        session::quiet_libvirt();
        tracing::info!(config = ?config, "libvirt provider ready");
        Ok(LibvirtProvider::new(config))
    }

    async fn verify_config(&self, _ctx: Ctx) -> Result<VerifyConfigResult, RpcError> {
        let session = match self.session().await {
            Ok(session) => session,
            Err(e) if e.to_rpc().kind() == ErrorCode::Unauthorized => return Err(e.to_rpc()),
            Err(e) => {
                let check =
                    Check { name: "connection".to_owned(), ok: false, detail: Some(e.to_string()) };
                return Ok(VerifyConfigResult {
                    ok: false,
                    checks: vec![check],
                    warnings: Vec::new(),
                });
            }
        };
        let config = self.config.clone();
        let checks = blocking(move || Ok(crate::verify::checks(&session, &config)))
            .await
            .map_err(|e| e.to_rpc())?;
        let ok = checks.iter().all(|c| c.ok);
        Ok(VerifyConfigResult { ok, checks, warnings: Vec::new() })
    }

    async fn create_instance(
        &self,
        ctx: Ctx,
        params: CreateInstanceParams,
    ) -> Result<CreateInstanceResult, RpcError> {
        crate::create::create(self, &ctx, &params).await
    }

    async fn delete_instance(
        &self,
        ctx: Ctx,
        params: DeleteInstanceParams,
    ) -> Result<DeleteInstanceResult, RpcError> {
        ctx.progress(Stage::DELETING, Some(&params.instance_id), None);
        let id = params.instance_id.clone();
        let fail = |e: Error| e.to_rpc().with_instance_id(&id);
        let session = self.session().await.map_err(fail)?;
        if self.remove(session, params.instance_id.clone()).await.map_err(fail)? {
            tracing::info!(instance_id = %id, "instance deleted");
            Ok(DeleteInstanceResult { deleted: true, reason: None })
        } else {
            Ok(DeleteInstanceResult { deleted: false, reason: Some("notFound".to_owned()) })
        }
    }

    async fn list_instances(
        &self,
        _ctx: Ctx,
        params: ListInstancesParams,
    ) -> Result<ListInstancesResult, RpcError> {
        let session = self.session().await.map_err(|e| e.to_rpc())?;
        let wanted: BTreeMap<String, String> = params.tags;
        let instances = blocking(move || {
            let mut out = Vec::new();
            for Found { domain, record } in session.domains()? {
                let Some(meta) = record.meta.filter(|m| m.matches(&wanted)) else { continue };
                let state = session::state_word(&domain);
                let ips = if state == "running" {
                    session::lease_addresses(&domain, &record.name).unwrap_or_default()
                } else {
                    Vec::new()
                };
                out.push(InstanceInfo {
                    instance_id: record.uuid,
                    name: record.name,
                    state,
                    tags: meta.tags,
                    ips,
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| e.to_rpc())?;
        Ok(ListInstancesResult { instances })
    }

    async fn teardown(&self) -> Result<(), RpcError> {
        if let Some(session) = self.session.lock().await.take() {
            // Closing a remote connection may wait on the network.
            let _ = tokio::task::spawn_blocking(move || drop(session)).await;
        }
        Ok(())
    }
}
