//! The annotation keys the Kata shim sends in `CreateVMRequest.annotations` (caa-facts §2.3,
//! kata-protocols §3.3). One place for the names so no module spells them twice.

/// Pod name (containerd form, or CRI-O's `k8s_<pod>_<ns>_<uid>_<n>`).
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
/// Pod namespace.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// Pod UID (not sent by either Kata runtime; read when present).
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
/// Explicit instance type / flavor / size / profile.
pub const MACHINE_TYPE: &str = "io.katacontainers.config.hypervisor.machine_type";
/// vCPUs (decimal integer).
pub const DEFAULT_VCPUS: &str = "io.katacontainers.config.hypervisor.default_vcpus";
/// Memory in MiB (decimal integer).
pub const DEFAULT_MEMORY: &str = "io.katacontainers.config.hypervisor.default_memory";
/// GPU count (decimal integer).
pub const DEFAULT_GPUS: &str = "io.katacontainers.config.hypervisor.default_gpus";
/// GPU model (sent, not used for selection).
pub const DEFAULT_GPU_MODEL: &str = "io.katacontainers.config.hypervisor.default_gpu_model";
/// Pod VM image override.
pub const IMAGE: &str = "io.katacontainers.config.hypervisor.image";
/// Initdata as raw TOML text (the shim already decoded the pod annotation).
pub const CC_INIT_DATA: &str = "io.katacontainers.config.hypervisor.cc_init_data";
