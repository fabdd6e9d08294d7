//! Params and results of the instance methods (`verifyConfig`, `createInstance`,
//! `deleteInstance`, `listInstances`, `teardown`, `$/ping`) and of the notifications
//! (`$/cancel`, `$/progress`, `$/setLogLevel`).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::handshake::LogLevel;

/// An empty object (`{}`), the params of `teardown` and `$/ping` and the result of `$/ping`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// `verifyConfig` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyConfigParams {
    /// Correlation id.
    pub operation_id: String,
    /// Budget in milliseconds.
    pub deadline_ms: u64,
}

/// One named check of `verifyConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// What was checked (`credentials`, `image`, ...).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Details for a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `verifyConfig` result. A failed check with `ok: false` is still a result; fatal problems are
/// `invalidConfig` or `unauthorized` errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyConfigResult {
    /// All checks passed.
    pub ok: bool,
    /// The individual checks.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Things worth telling the operator.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A volume to attach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// The cloud's disk id.
    pub disk_id: String,
    /// The device name inside the VM, if the caller cares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
}

/// What to create. Empty strings and zeros mean "plugin default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    /// Explicit instance type (Kata's `machine_type`).
    #[serde(default)]
    pub instance_type: String,
    /// vCPUs requested.
    #[serde(default)]
    pub vcpus: u32,
    /// Memory requested, MiB.
    #[serde(default, rename = "memoryMiB")]
    pub memory_mib: u64,
    /// GPUs requested.
    #[serde(default)]
    pub gpus: u32,
    /// Architecture (`amd64`, `arm64`, `s390x`).
    #[serde(default)]
    pub arch: String,
    /// Image override.
    #[serde(default)]
    pub image: String,
    /// Volumes to attach.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Request a second network interface.
    #[serde(default)]
    pub multi_nic: bool,
}

/// `createInstance` params.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateInstanceParams {
    /// Idempotency key, cancel handle and progress token.
    pub operation_id: String,
    /// Budget in milliseconds.
    pub deadline_ms: u64,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Kata sandbox id.
    pub sandbox_id: String,
    /// Rendered cloud-config. Secret: holds TLS keys and pull secrets.
    pub user_data: String,
    /// Format of `userData` (`cloud-config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data_format: Option<String>,
    /// What to create.
    #[serde(default)]
    pub spec: InstanceSpec,
    /// Tags to apply to the instance.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for CreateInstanceParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateInstanceParams")
            .field("operation_id", &self.operation_id)
            .field("deadline_ms", &self.deadline_ms)
            .field("pod_name", &self.pod_name)
            .field("pod_namespace", &self.pod_namespace)
            .field("sandbox_id", &self.sandbox_id)
            .field("user_data", &format_args!("<redacted {} bytes>", self.user_data.len()))
            .field("user_data_format", &self.user_data_format)
            .field("spec", &self.spec)
            .field("tags", &self.tags)
            .finish()
    }
}

/// `createInstance` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateInstanceResult {
    /// The cloud's instance id.
    pub instance_id: String,
    /// The instance name.
    pub name: String,
    /// Addresses; `ips[0]` is the one the host dials. Never empty.
    pub ips: Vec<String>,
    /// Provider-specific details for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_data: Option<BTreeMap<String, serde_json::Value>>,
}

/// `deleteInstance` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteInstanceParams {
    /// Correlation id.
    pub operation_id: String,
    /// The instance to delete.
    pub instance_id: String,
    /// The sandbox it belonged to, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    /// Budget in milliseconds.
    pub deadline_ms: u64,
}

/// `deleteInstance` result. An instance that is already gone is a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeleteInstanceResult {
    /// This call deleted it (`false`: it was already gone).
    pub deleted: bool,
    /// Why nothing was deleted (`notFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `listInstances` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListInstancesParams {
    /// Only instances carrying all these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One instance as `listInstances` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// The cloud's instance id.
    pub instance_id: String,
    /// The instance name.
    pub name: String,
    /// The cloud's state word (`running`, `pending`, ...).
    #[serde(default)]
    pub state: String,
    /// Its tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Its addresses.
    #[serde(default)]
    pub ips: Vec<String>,
}

/// `listInstances` result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListInstancesResult {
    /// Matching instances.
    pub instances: Vec<InstanceInfo>,
}

/// `$/cancel` params (host → plugin notification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelParams {
    /// The operation to cancel.
    pub operation_id: String,
    /// Why, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Well-known progress stages; the set is open and unknown stages are ignored.
#[derive(Debug)]
pub struct Stage;

impl Stage {
    /// Checking the request.
    pub const VALIDATING: &'static str = "validating";
    /// The cloud accepted the request.
    pub const REQUESTED: &'static str = "requested";
    /// The cloud assigned an instance id (`instanceId` is set).
    pub const INSTANCE_CREATED: &'static str = "instanceCreated";
    /// Waiting for an address.
    pub const WAITING_FOR_IP: &'static str = "waitingForIp";
    /// The instance runs.
    pub const RUNNING: &'static str = "running";
    /// Deleting.
    pub const DELETING: &'static str = "deleting";
}

/// `$/progress` params (plugin → host notification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressParams {
    /// The operation this is about.
    pub operation_id: String,
    /// See [`Stage`].
    pub stage: String,
    /// The instance id, as soon as the cloud assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Text for a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<u8>,
}

/// `$/setLogLevel` params (host → plugin notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SetLogLevelParams {
    /// The new level.
    pub level: LogLevel,
}
