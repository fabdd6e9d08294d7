//! Handshake checks: protocol version overlap, the provider name, and the redaction of secret
//! config values before the config is logged.

use std::collections::BTreeMap;

use caa_plugin_proto::{ConfigSchema, PROTOCOL_VERSIONS};

use super::PluginSpec;
use crate::error::HostError;

/// Config with the values of secret options replaced, for logs.
pub fn redact_config(
    schema: &ConfigSchema,
    config: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, serde_json::Value> {
    config
        .iter()
        .map(|(k, v)| {
            let v =
                if schema.is_secret(k) { serde_json::Value::from("<redacted>") } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

pub(super) fn check_versions(plugin: &str, theirs: &[u32]) -> Result<(), HostError> {
    if theirs.iter().any(|v| PROTOCOL_VERSIONS.contains(v)) {
        return Ok(());
    }
    Err(version_mismatch(plugin, theirs.to_vec()))
}

pub(super) fn version_mismatch(plugin: &str, theirs: Vec<u32>) -> HostError {
    let upgrade =
        if theirs.iter().max() > PROTOCOL_VERSIONS.iter().max() { "host" } else { "plugin" };
    HostError::VersionMismatch {
        plugin: plugin.to_owned(),
        plugin_versions: theirs,
        host_versions: PROTOCOL_VERSIONS.to_vec(),
        upgrade,
    }
}

pub(super) fn check_name(spec: &PluginSpec, actual: &str) -> Result<(), HostError> {
    if actual == spec.name {
        return Ok(());
    }
    Err(HostError::NameMismatch {
        path: spec.command.path.clone(),
        expected: spec.name.clone(),
        actual: actual.to_owned(),
    })
}
