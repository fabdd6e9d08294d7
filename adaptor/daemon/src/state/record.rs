//! [`SandboxRecord`], the domain view of one sandbox's durable state, and its on-disk form.
//!
//! The serde type (`RecordFile`) is private and separate from the domain type: the file is an
//! interface to our own future versions, so its shape changes only with `schema_version`.
//! Unknown fields are ignored (an older adaptor can read a newer minor addition); an unknown
//! schema version is refused.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::sandbox_id::SandboxId;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Where a sandbox is in its lifecycle, as far as durable state is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `createInstance` was sent (or is about to be); the instance id may not be known yet.
    Creating,
    /// The instance exists and the sandbox is serving.
    Running,
    /// `deleteInstance` was started.
    Stopping,
}

/// One sandbox's durable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    /// The sandbox.
    pub sandbox_id: SandboxId,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Instance name (`podvm-<pod>-<sid[:8]>`).
    pub instance_name: String,
    /// The provider (plugin) name that owns the instance.
    pub plugin: String,
    /// The `operationId` of the create call (idempotency key and cleanup handle).
    pub operation_id: String,
    /// The cloud instance id, once known.
    pub instance_id: Option<String>,
    /// The instance's addresses.
    pub ips: Vec<IpAddr>,
    /// Lifecycle phase.
    pub phase: Phase,
    /// When the record was first written.
    pub created_at: SystemTime,
    /// When the record was last written.
    pub updated_at: SystemTime,
    /// The VXLAN id given to the pod network, once allocated.
    pub vni: Option<u32>,
    /// The worker side of the pod network tunnel, from just before it is built until it is
    /// removed, so a restarted adaptor can remove it (caa-podnet's serialized form).
    pub tunnel: Option<caa_podnet::WorkerTunnel>,
}

/// Why a file is not a usable record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or missing fields.
    #[error("malformed record")]
    Json(#[source] serde_json::Error),
    /// Written by another schema version.
    #[error("unknown schema version {found} (this build reads {SCHEMA_VERSION})")]
    Schema {
        /// The version in the file.
        found: u64,
    },
    /// A field holds an impossible value.
    #[error("invalid field {field}: {reason}")]
    Field {
        /// The field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PhaseFile {
    Creating,
    Running,
    Stopping,
}

#[derive(Serialize, Deserialize)]
struct RecordFile {
    schema_version: u32,
    sandbox_id: String,
    pod_name: String,
    pod_namespace: String,
    instance_name: String,
    plugin: String,
    operation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_id: Option<String>,
    #[serde(default)]
    ips: Vec<IpAddr>,
    phase: PhaseFile,
    /// Milliseconds since the Unix epoch.
    created_at_ms: u64,
    /// Milliseconds since the Unix epoch.
    updated_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tunnel: Option<caa_podnet::WorkerTunnel>,
}

#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u64,
}

impl SandboxRecord {
    /// A new record in phase [`Phase::Creating`], stamped now.
    pub fn creating(
        sandbox_id: SandboxId,
        pod_name: impl Into<String>,
        pod_namespace: impl Into<String>,
        instance_name: impl Into<String>,
        plugin: impl Into<String>,
        operation_id: impl Into<String>,
    ) -> SandboxRecord {
        let now = SystemTime::now();
        SandboxRecord {
            sandbox_id,
            pod_name: pod_name.into(),
            pod_namespace: pod_namespace.into(),
            instance_name: instance_name.into(),
            plugin: plugin.into(),
            operation_id: operation_id.into(),
            instance_id: None,
            ips: Vec::new(),
            phase: Phase::Creating,
            created_at: now,
            updated_at: now,
            vni: None,
            tunnel: None,
        }
    }

    /// The file contents for this record (pretty JSON, trailing newline).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let file = RecordFile {
            schema_version: SCHEMA_VERSION,
            sandbox_id: self.sandbox_id.as_str().to_owned(),
            pod_name: self.pod_name.clone(),
            pod_namespace: self.pod_namespace.clone(),
            instance_name: self.instance_name.clone(),
            plugin: self.plugin.clone(),
            operation_id: self.operation_id.clone(),
            instance_id: self.instance_id.clone(),
            ips: self.ips.clone(),
            phase: match self.phase {
                Phase::Creating => PhaseFile::Creating,
                Phase::Running => PhaseFile::Running,
                Phase::Stopping => PhaseFile::Stopping,
            },
            created_at_ms: unix_ms(self.created_at),
            updated_at_ms: unix_ms(self.updated_at),
            vni: self.vni,
            tunnel: self.tunnel.clone(),
        };
        // A struct of strings, numbers and addresses always serializes.
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Parses file contents, checking the schema version first so a newer layout is reported as
    /// such rather than as malformed JSON.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SandboxRecord, DecodeError> {
        let probe: VersionProbe = serde_json::from_slice(bytes).map_err(DecodeError::Json)?;
        if probe.schema_version != u64::from(SCHEMA_VERSION) {
            return Err(DecodeError::Schema { found: probe.schema_version });
        }
        let file: RecordFile = serde_json::from_slice(bytes).map_err(DecodeError::Json)?;
        let sandbox_id = SandboxId::new(file.sandbox_id)
            .map_err(|e| DecodeError::Field { field: "sandbox_id", reason: e.to_string() })?;
        Ok(SandboxRecord {
            sandbox_id,
            pod_name: file.pod_name,
            pod_namespace: file.pod_namespace,
            instance_name: file.instance_name,
            plugin: file.plugin,
            operation_id: file.operation_id,
            instance_id: file.instance_id,
            ips: file.ips,
            phase: match file.phase {
                PhaseFile::Creating => Phase::Creating,
                PhaseFile::Running => Phase::Running,
                PhaseFile::Stopping => Phase::Stopping,
            },
            created_at: UNIX_EPOCH + Duration::from_millis(file.created_at_ms),
            updated_at: UNIX_EPOCH + Duration::from_millis(file.updated_at_ms),
            vni: file.vni,
            tunnel: file.tunnel,
        })
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SandboxRecord {
        let mut r = SandboxRecord::creating(
            SandboxId::new("abcdef0123456789").unwrap(),
            "nginx",
            "default",
            "podvm-nginx-abcdef01",
            "mock",
            "op-1",
        );
        r.instance_id = Some("i-123".into());
        r.ips = vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        r.phase = Phase::Running;
        r.vni = Some(555_001);
        r.tunnel = Some(caa_podnet::WorkerTunnel {
            pod_netns: "/var/run/netns/cni-1".into(),
            host_netns: "/proc/self/ns/net".into(),
            pod_interface: "eth0".into(),
            vxlan_interface: "vxlan1".into(),
            temp_interface: "caavx555001".into(),
            vni: 555_001,
            port: 4789,
            remote: "10.0.0.5".parse().unwrap(),
            local: "10.0.0.1".parse().unwrap(),
            conntrack_table: "caa-vxlan-555001".into(),
            pod_ingress_created: true,
        });
        // Millisecond precision is what the file keeps.
        r.created_at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        r.updated_at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_456);
        r
    }

    #[test]
    fn encode_decode_round_trip() {
        let r = sample();
        assert_eq!(SandboxRecord::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["future_field"] = serde_json::json!({"x": 1});
        assert_eq!(SandboxRecord::decode(&serde_json::to_vec(&v).unwrap()).unwrap(), sample());
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["schema_version"] = 2.into();
        let err = SandboxRecord::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, DecodeError::Schema { found: 2 }), "{err}");
    }

    #[test]
    fn a_bad_sandbox_id_inside_the_file_is_refused() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["sandbox_id"] = "../x".into();
        let err = SandboxRecord::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, DecodeError::Field { field: "sandbox_id", .. }), "{err}");
    }
}
