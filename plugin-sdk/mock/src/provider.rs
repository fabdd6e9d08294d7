//! [`MockProvider`], the [`Provider`] implementation: validates requests like a real plugin,
//! keeps instances in the [`Store`], honours cancellation and deadlines during its configured
//! delays, and runs the scripted [`Faults`](crate::Faults) and injected errors.

use std::collections::BTreeMap;
use std::time::Duration;

use caa_plugin_proto::envelope::result_line;
use caa_plugin_proto::method::{
    CreateInstance, DeleteInstance, Initialize, ListInstances, Method, Teardown, VerifyConfig,
};
use caa_plugin_proto::{
    Capabilities, Check, CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams,
    DeleteInstanceResult, Describe, ErrorCode, InstanceCapabilities, InstanceInfo, InstanceSpec,
    Limits, ListInstancesParams, ListInstancesResult, PeerInfo, Problem, RpcError, Stage,
    VerifyConfigResult, error_chain,
};
use caa_plugin_sdk::{Config, Ctx, Provider};
use serde_json::json;

use crate::config::{self, BAD_API_KEY, MockConfig};
use crate::faults::{self, GARBAGE_LINE};
use crate::store::{Begin, Instance, Store, StoreError};

/// The provider name.
pub const PROVIDER_NAME: &str = "mock";

/// Architectures the mock accepts.
pub const ARCHES: &[&str] = &["amd64", "arm64", "s390x"];

/// Largest `userData` accepted: 1 MiB plus 64 KiB.
pub const MAX_USER_DATA_BYTES: u64 = 1024 * 1024 + 64 * 1024;

/// Longest instance name.
const MAX_NAME_LEN: usize = 63;

/// How long `crashMidCreate` waits after announcing the instance so that the line gets out.
const CRASH_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// The reference plugin.
#[derive(Debug)]
pub struct MockProvider {
    config: MockConfig,
    store: Store,
}

/// How a configured delay ended.
enum Waited {
    Elapsed,
    Cancelled,
    DeadlineExceeded,
}

impl MockProvider {
    /// A provider from an already parsed configuration (opens the state file, if any).
    pub fn new(config: MockConfig) -> Result<MockProvider, RpcError> {
        let store = match &config.state_file {
            Some(path) => Store::open(path).map_err(|e| {
                let problem = Problem {
                    field: config::name::STATE_FILE.to_owned(),
                    message: error_chain(&e),
                };
                RpcError::new(ErrorCode::InvalidConfig, format!("mock: {}", error_chain(&e)))
                    .with_problems(vec![problem])
            })?,
            None => Store::in_memory(),
        };
        Ok(MockProvider { config, store })
    }

    /// The parsed configuration.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// Panics, hangs or fails as scripted for `method`, then waits its configured delay.
    async fn enter(&self, ctx: Option<&Ctx>, method: &str) -> Result<(), RpcError> {
        self.config.faults.on_entry(method).await;
        if let Some(error) = self.config.injected_error(method) {
            return Err(error);
        }
        let delay = self.config.latency(method);
        match ctx {
            Some(ctx) => match wait(ctx, delay).await {
                Waited::Elapsed => Ok(()),
                Waited::Cancelled => Err(cancelled(method)),
                Waited::DeadlineExceeded => Err(deadline_exceeded(method)),
            },
            None => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
    }

    fn validate(&self, params: &CreateInstanceParams) -> Result<(), RpcError> {
        let invalid = |message: String| Err(RpcError::new(ErrorCode::InvalidParams, message));
        let unsupported = |message: String| Err(RpcError::new(ErrorCode::UnsupportedSpec, message));
        let spec = &params.spec;
        if params.operation_id.is_empty() {
            return invalid("operationId must not be empty".to_owned());
        }
        if params.sandbox_id.is_empty() {
            return invalid("sandboxId must not be empty".to_owned());
        }
        let user_data = params.user_data.len() as u64;
        if user_data > MAX_USER_DATA_BYTES {
            return invalid(format!(
                "userData is {user_data} bytes, the limit is {MAX_USER_DATA_BYTES}"
            ));
        }
        if spec.multi_nic {
            return unsupported("mock: multiNic is not supported".to_owned());
        }
        if !spec.arch.is_empty() && !ARCHES.contains(&spec.arch.as_str()) {
            return unsupported(format!("mock: architecture {:?} is not supported", spec.arch));
        }
        if spec.gpus > 0 && self.config.instance_types.is_none() {
            return unsupported(
                "mock: GPUs requested but no instance types are configured".to_owned(),
            );
        }
        Ok(())
    }

    /// The instance type to report: chosen from the catalogue when there is one, else the
    /// explicit request, if any.
    fn select_type(&self, spec: &InstanceSpec) -> Result<Option<String>, RpcError> {
        match &self.config.instance_types {
            Some(types) => types.select(spec).map(Some),
            None => Ok(Some(spec.instance_type.clone()).filter(|t| !t.is_empty())),
        }
    }

    fn new_instance(
        &self,
        params: &CreateInstanceParams,
        instance_type: Option<String>,
    ) -> Instance {
        let hex = uuid::Uuid::new_v4().simple().to_string();
        let sandbox_prefix: String = params.sandbox_id.chars().take(8).collect();
        let name: String = format!("podvm-{}-{sandbox_prefix}", params.pod_name)
            .chars()
            .take(MAX_NAME_LEN)
            .collect();
        let ips = if self.config.faults.no_ip { Vec::new() } else { vec![self.config.ip.clone()] };
        Instance {
            instance_id: format!("mock-{}", &hex[..12]),
            name,
            state: "pending".to_owned(),
            ips,
            tags: params.tags.clone(),
            sandbox_id: params.sandbox_id.clone(),
            operation_id: params.operation_id.clone(),
            request_digest: caa_plugin_sdk::request_digest(params),
            user_data_bytes: params.user_data.len() as u64,
            instance_type,
        }
    }
}

impl Provider for MockProvider {
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
                max_concurrent_requests: 4096,
                instance: InstanceCapabilities {
                    arch: ARCHES.iter().map(|a| (*a).to_owned()).collect(),
                    gpus: true,
                    volumes: true,
                    multi_nic: false,
                    instance_types: true,
                },
                limits: Limits { max_user_data_bytes: Some(MAX_USER_DATA_BYTES) },
                optional_methods: vec![ListInstances::NAME.to_owned()],
            },
            config_schema: config::schema(),
        }
    }

    async fn init(config: Config) -> Result<MockProvider, RpcError> {
        let config = MockConfig::from_config(&config)?;
        let provider = MockProvider::new(config)?;
        // Lets hosts test their start-up timeout and init failures.
        provider.enter(None, Initialize::NAME).await?;
        tracing::info!(config = ?provider.config, instances = provider.store.len(), "mock provider ready");
        Ok(provider)
    }

    async fn verify_config(&self, ctx: Ctx) -> Result<VerifyConfigResult, RpcError> {
        self.enter(Some(&ctx), VerifyConfig::NAME).await?;
        if self.config.api_key.as_deref() == Some(BAD_API_KEY) {
            return Err(RpcError::new(ErrorCode::Unauthorized, "mock: apiKey was rejected"));
        }
        let credentials =
            if self.config.api_key.is_some() { "apiKey accepted" } else { "no apiKey configured" };
        let state = match &self.config.state_file {
            Some(path) => format!("instances persisted in {}", path.display()),
            None => "instances kept in memory".to_owned(),
        };
        let check = |name: &str, detail: String| Check {
            name: name.to_owned(),
            ok: true,
            detail: Some(detail),
        };
        let mut warnings = Vec::new();
        if !self.config.faults.is_empty() {
            warnings.push("faults are scripted; this plugin misbehaves on purpose".to_owned());
        }
        Ok(VerifyConfigResult {
            ok: true,
            checks: vec![
                check("config", "configuration parsed".to_owned()),
                check("credentials", credentials.to_owned()),
                check("state", state),
            ],
            warnings,
        })
    }

    async fn create_instance(
        &self,
        ctx: Ctx,
        params: CreateInstanceParams,
    ) -> Result<CreateInstanceResult, RpcError> {
        let method = CreateInstance::NAME;
        let faults = &self.config.faults;
        faults.on_entry(method).await;
        if faults.garbage {
            ctx.fault_send_raw_line(GARBAGE_LINE.to_vec());
        }
        if faults.stdout_print {
            faults::print_to_stdout();
        }
        if faults.stderr_flood {
            tokio::task::spawn_blocking(faults::flood_stderr).await.map_err(|e| {
                RpcError::new(ErrorCode::InternalError, format!("mock: stderr flood failed: {e}"))
            })?;
        }
        self.validate(&params)?;
        if let Some(error) = self.config.injected_error(method) {
            return Err(error);
        }
        let instance_type = self.select_type(&params.spec)?;
        ctx.progress(Stage::REQUESTED, None, None);

        let new = self.new_instance(&params, instance_type);
        let id = new.instance_id.clone();
        match self.store.begin_create(new, self.config.max_instances).map_err(store_error)? {
            Begin::Inserted => {}
            Begin::Replay(existing) => {
                tracing::info!(instance_id = %existing.instance_id, "createInstance replayed");
                ctx.progress(
                    Stage::INSTANCE_CREATED,
                    Some(&existing.instance_id),
                    Some("replayed"),
                );
                return Ok(result_of(&existing));
            }
            Begin::Conflict { instance_id } => {
                return Err(RpcError::new(
                    ErrorCode::Conflict,
                    format!("operation id already created {instance_id} from different params"),
                ));
            }
            Begin::QuotaExceeded { max } => {
                return Err(RpcError::new(
                    ErrorCode::QuotaExceeded,
                    format!("mock: instance quota of {max} reached"),
                ));
            }
        }
        tracing::info!(instance_id = %id, sandbox_id = %params.sandbox_id, "instance created");
        ctx.progress(Stage::INSTANCE_CREATED, Some(&id), None);
        if faults.crash_mid_create {
            tokio::time::sleep(CRASH_FLUSH_DELAY).await;
            faults::crash();
        }

        match wait(&ctx, self.config.latency(method)).await {
            Waited::Elapsed => {}
            Waited::Cancelled => {
                self.store.remove(&id).map_err(|e| store_error(e).with_instance_id(&id))?;
                tracing::info!(instance_id = %id, "createInstance cancelled; instance rolled back");
                return Err(RpcError::new(
                    ErrorCode::RequestCancelled,
                    "mock: createInstance cancelled; the instance was rolled back",
                ));
            }
            Waited::DeadlineExceeded => return Err(deadline_exceeded(method).with_instance_id(&id)),
        }

        let instance = self
            .store
            .mark_running(&id)
            .map_err(|e| store_error(e).with_instance_id(&id))?
            .ok_or_else(|| {
                RpcError::new(
                    ErrorCode::Conflict,
                    format!("mock: instance {id} was deleted while being created"),
                )
            })?;
        ctx.progress(Stage::RUNNING, Some(&id), None);
        let result = result_of(&instance);
        if faults.answer_twice {
            // The duplicate goes out just before the real answer; either way the host sees two.
            ctx.fault_send_raw_line(result_line(&ctx.fault_request_id(), &result));
        }
        Ok(result)
    }

    async fn delete_instance(
        &self,
        ctx: Ctx,
        params: DeleteInstanceParams,
    ) -> Result<DeleteInstanceResult, RpcError> {
        ctx.progress(Stage::DELETING, Some(&params.instance_id), None);
        self.enter(Some(&ctx), DeleteInstance::NAME)
            .await
            .map_err(|e| e.with_instance_id(&params.instance_id))?;
        if self.store.remove(&params.instance_id).map_err(store_error)? {
            tracing::info!(instance_id = %params.instance_id, "instance deleted");
            Ok(DeleteInstanceResult { deleted: true, reason: None })
        } else {
            Ok(DeleteInstanceResult { deleted: false, reason: Some("notFound".to_owned()) })
        }
    }

    async fn list_instances(
        &self,
        ctx: Ctx,
        params: ListInstancesParams,
    ) -> Result<ListInstancesResult, RpcError> {
        self.enter(Some(&ctx), ListInstances::NAME).await?;
        let instances = self
            .store
            .list(&params.tags)
            .into_iter()
            .map(|i| InstanceInfo {
                instance_id: i.instance_id,
                name: i.name,
                state: i.state,
                tags: i.tags,
                ips: i.ips,
            })
            .collect();
        Ok(ListInstancesResult { instances })
    }

    async fn teardown(&self) -> Result<(), RpcError> {
        self.enter(None, Teardown::NAME).await?;
        if self.config.faults.slow_teardown {
            tokio::time::sleep(faults::SLOW_TEARDOWN).await;
        }
        Ok(())
    }
}

/// Sleeps `delay`, giving up early on cancellation or at the deadline.
async fn wait(ctx: &Ctx, delay: Duration) -> Waited {
    if delay.is_zero() {
        return Waited::Elapsed;
    }
    tokio::select! {
        biased;
        () = ctx.cancelled() => Waited::Cancelled,
        () = tokio::time::sleep_until(ctx.deadline()) => Waited::DeadlineExceeded,
        () = tokio::time::sleep(delay) => Waited::Elapsed,
    }
}

fn cancelled(method: &str) -> RpcError {
    RpcError::new(ErrorCode::RequestCancelled, format!("mock: {method} cancelled"))
}

fn deadline_exceeded(method: &str) -> RpcError {
    RpcError::new(ErrorCode::DeadlineExceeded, format!("mock: {method} reached its deadline"))
}

fn store_error(e: StoreError) -> RpcError {
    RpcError::new(ErrorCode::InternalError, format!("mock: {}", error_chain(&e)))
}

fn result_of(instance: &Instance) -> CreateInstanceResult {
    let mut provider_data =
        BTreeMap::from([("userDataBytes".to_owned(), json!(instance.user_data_bytes))]);
    if let Some(t) = &instance.instance_type {
        provider_data.insert("instanceType".to_owned(), json!(t));
    }
    CreateInstanceResult {
        instance_id: instance.instance_id.clone(),
        name: instance.name.clone(),
        ips: instance.ips.clone(),
        provider_data: Some(provider_data),
    }
}

#[cfg(test)]
mod tests;
