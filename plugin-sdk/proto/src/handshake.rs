//! The `initialize` exchange and the `--describe` document: protocol version negotiation,
//! identities, capabilities and the plugin's configuration schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name and version of one side of the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PeerInfo {
    /// Program name (`cloud-api-adaptor`, `caa-plugin`; for plugins the provider name).
    pub name: String,
    /// Program version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The SDK that implements the plugin side (`caa-plugin-sdk-rust/0.1.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
}

/// Log levels a plugin filters its stderr output at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Failures.
    Error,
}

impl LogLevel {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// What the host can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostCapabilities {
    /// The host routes `$/progress` notifications.
    #[serde(default)]
    pub progress: bool,
    /// The host may send `$/cancel`.
    #[serde(default)]
    pub cancel: bool,
}

/// `initialize` params: the host's first message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// Protocol versions the host speaks; the plugin picks the highest common one.
    pub protocol_versions: Vec<u32>,
    /// The host's identity.
    pub host: PeerInfo,
    /// The host's pid; the plugin exits when its parent changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<u32>,
    /// The provider the host expects; the plugin refuses a different name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The level the plugin logs at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
    /// Option values keyed by option name. They override the plugin's environment.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    /// What the host can handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_capabilities: Option<HostCapabilities>,
}

/// The kind of value an option holds; env var text is parsed accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OptionKind {
    /// A string.
    String,
    /// `true`/`false` (env: `true`, `false`, `1`, `0`, case-insensitive).
    Bool,
    /// A signed integer.
    Integer,
    /// A list of strings (env: comma-separated).
    StringList,
    /// A string map (env: `k=v,k2=v2`).
    StringMap,
}

/// One configuration option of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigOption {
    /// Key in `initialize.config` (camelCase, e.g. `imageId`).
    pub name: String,
    /// Environment variable read when the key is absent (upstream's name, e.g. `PODVM_AMI_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Value type.
    pub kind: OptionKind,
    /// Value used when neither config nor env provide one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The option must be set.
    #[serde(default)]
    pub required: bool,
    /// The value is a secret: never logged, never shown.
    #[serde(default)]
    pub secret: bool,
    /// One line of help.
    #[serde(default)]
    pub description: String,
}

impl ConfigOption {
    /// An optional, non-secret option read from `env`, with no default and no description;
    /// set the other fields with struct update syntax.
    pub fn new(name: impl Into<String>, env: impl Into<String>, kind: OptionKind) -> ConfigOption {
        ConfigOption {
            name: name.into(),
            env: Some(env.into()),
            kind,
            default: None,
            required: false,
            secret: false,
            description: String::new(),
        }
    }
}

/// Every option a plugin reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigSchema {
    /// The options, in documentation order.
    pub options: Vec<ConfigOption>,
}

impl ConfigSchema {
    /// The environment variable names the options read; the host passes exactly these through.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.options.iter().filter_map(|o| o.env.as_deref())
    }

    /// Whether `key` (an option name or env var) is a secret.
    pub fn is_secret(&self, key: &str) -> bool {
        self.options.iter().any(|o| o.secret && (o.name == key || o.env.as_deref() == Some(key)))
    }
}

/// Instance features a plugin supports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceCapabilities {
    /// Supported architectures (`amd64`, `arm64`, `s390x`, ...); empty means "the host's".
    #[serde(default)]
    pub arch: Vec<String>,
    /// GPUs can be requested.
    #[serde(default)]
    pub gpus: bool,
    /// Volumes can be attached.
    #[serde(default)]
    pub volumes: bool,
    /// A second NIC can be requested.
    #[serde(default)]
    pub multi_nic: bool,
    /// `spec.instanceType` is honoured.
    #[serde(default)]
    pub instance_types: bool,
}

/// Size limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Largest `userData` (bytes, before the plugin's own encoding); absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_user_data_bytes: Option<u64>,
}

/// What a plugin can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// `$/cancel` is honoured.
    #[serde(default)]
    pub cancel: bool,
    /// `$/progress` is sent.
    #[serde(default)]
    pub progress: bool,
    /// The same operationId with the same params returns the same instance.
    #[serde(default)]
    pub idempotent_create: bool,
    /// Requests the plugin handles at once; the host queues the rest.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_requests: u32,
    /// Instance features.
    #[serde(default)]
    pub instance: InstanceCapabilities,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Optional methods implemented (`listInstances`).
    #[serde(default)]
    pub optional_methods: Vec<String>,
}

fn default_concurrency() -> u32 {
    8
}

impl Default for Capabilities {
    fn default() -> Capabilities {
        Capabilities {
            cancel: false,
            progress: false,
            idempotent_create: false,
            max_concurrent_requests: default_concurrency(),
            instance: InstanceCapabilities::default(),
            limits: Limits::default(),
            optional_methods: Vec::new(),
        }
    }
}

/// `initialize` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    /// The version the plugin picked.
    pub protocol_version: u32,
    /// The plugin's identity; `name` is the provider name.
    pub plugin: PeerInfo,
    /// What the plugin can do.
    pub capabilities: Capabilities,
    /// The plugin's options.
    pub config_schema: ConfigSchema,
}

/// The document `caa-provider-X --describe` prints: everything but a chosen version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Describe {
    /// The plugin's identity.
    pub plugin: PeerInfo,
    /// Protocol versions the plugin speaks.
    pub protocol_versions: Vec<u32>,
    /// What the plugin can do.
    pub capabilities: Capabilities,
    /// The plugin's options.
    pub config_schema: ConfigSchema,
}
