//! What the worker-side proxy changes (caa-facts §4.4): CreateContainer gets the annotations
//! the pod VM needs (CSI target paths, cloud volumes, the GPU CDI device) and its storages are
//! logged in upstream's format; SetPolicy, CreateSandbox and the container lifecycle calls are
//! logged. Everything else, including methods unknown to us, passes as raw bytes.

use std::path::PathBuf;

use caa_agent_relay::{Call, Interceptor, Verdict, code};
use caa_kata_protos::AGENT_SERVICE;
use caa_kata_protos::agent::{CreateContainerRequest, CreateSandboxRequest};
use caa_kata_protos::protobuf::Message;

use super::volumes;

/// Annotation listing CSI volume target paths for the VM to wait on.
pub const TARGET_PATH_ANNOTATION: &str = "io.confidentialcontainers.org.peerpodvolumes.target_path";
/// Annotation carrying the cloud volumes JSON.
pub const CLOUD_VOLUMES_ANNOTATION: &str = "io.confidentialcontainers.org.cloud_volumes";
/// Pod annotation asking for GPUs.
pub const DEFAULT_GPUS_ANNOTATION: &str = "io.katacontainers.config.hypervisor.default_gpus";
/// CDI annotation set for GPU pods.
pub const CDI_ANNOTATION: &str = "cdi.k8s.io/peer-pods";
/// Its value.
pub const CDI_ALL_GPUS: &str = "nvidia.com/gpu=all";

/// The worker-side interceptor.
#[derive(Debug, Clone)]
pub struct WorkerInterceptor {
    /// Kata's direct-volumes dir (`/run/kata-containers/shared/direct-volumes`).
    pub direct_volumes: PathBuf,
}

impl Default for WorkerInterceptor {
    fn default() -> WorkerInterceptor {
        WorkerInterceptor { direct_volumes: volumes::DIRECT_VOLUMES_DIR.into() }
    }
}

impl Interceptor for WorkerInterceptor {
    fn intercept(&self, call: &Call<'_>) -> Verdict {
        if call.service != AGENT_SERVICE {
            return Verdict::Forward;
        }
        match call.method {
            "CreateContainer" => self.create_container(call.payload),
            "CreateSandbox" => {
                if let Ok(req) = CreateSandboxRequest::parse_from_bytes(call.payload) {
                    tracing::info!(sandbox_id = %req.sandbox_id, hostname = %req.hostname, storages = req.storages.len(), "CreateSandbox");
                }
                Verdict::Forward
            }
            "SetPolicy" | "StartContainer" | "RemoveContainer" | "DestroySandbox" => {
                tracing::info!(method = call.method, "agent call");
                Verdict::Forward
            }
            _ => Verdict::Forward,
        }
    }
}

impl WorkerInterceptor {
    fn create_container(&self, payload: &[u8]) -> Verdict {
        let mut req = match CreateContainerRequest::parse_from_bytes(payload) {
            Ok(r) => r,
            Err(e) => {
                return Verdict::Reject {
                    code: code::INVALID_ARGUMENT,
                    message: format!("decoding CreateContainerRequest: {e}"),
                };
            }
        };
        tracing::info!(container_id = %req.container_id, "CreateContainer");
        for s in &req.storages {
            tracing::info!(
                "mount_point:{} source:{} fstype:{} driver:{}",
                s.mount_point,
                s.source,
                s.fstype,
                s.driver
            );
        }
        let spec = req.OCI.mut_or_insert_default();
        let targets = volumes::csi_target_paths(&self.direct_volumes, &spec.Mounts);
        if !targets.is_empty() {
            let entry = spec.Annotations.entry(TARGET_PATH_ANNOTATION.to_owned()).or_default();
            for t in targets {
                if !entry.is_empty() {
                    entry.push(',');
                }
                entry.push_str(&t);
            }
        }
        if spec.Annotations.get(DEFAULT_GPUS_ANNOTATION).is_some_and(|v| !v.is_empty()) {
            spec.Annotations.insert(CDI_ANNOTATION.to_owned(), CDI_ALL_GPUS.to_owned());
        }
        let sandbox_uid = spec.Annotations.get("io.kubernetes.cri.sandbox-uid").cloned();
        match volumes::cloud_volumes(&self.direct_volumes, &spec.Mounts, sandbox_uid.as_deref()) {
            Ok(Some(json)) => {
                spec.Annotations.insert(CLOUD_VOLUMES_ANNOTATION.to_owned(), json);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read cloud volume metadata"),
        }
        match req.write_to_bytes() {
            Ok(bytes) => Verdict::Rewrite(bytes),
            Err(e) => Verdict::Reject {
                code: code::INTERNAL,
                message: format!("encoding CreateContainerRequest: {e}"),
            },
        }
    }
}
