//! The CreateVM annotations the Kata shim always sends (kata-protocols §3.3), and the map
//! `caa-ctl create-vm` builds from its options so the daemon sees what a real shim would send.

use std::collections::HashMap;

/// Pod name.
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
/// Pod namespace.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// Instance type / flavor.
pub const MACHINE_TYPE: &str = "io.katacontainers.config.hypervisor.machine_type";
/// Pod VM image.
pub const IMAGE: &str = "io.katacontainers.config.hypervisor.image";
/// vCPUs (decimal integer).
pub const DEFAULT_VCPUS: &str = "io.katacontainers.config.hypervisor.default_vcpus";
/// Memory in MiB (decimal integer).
pub const DEFAULT_MEMORY: &str = "io.katacontainers.config.hypervisor.default_memory";
/// Initdata as plain TOML text (the shim decodes the pod annotation before sending it).
pub const CC_INIT_DATA: &str = "io.katacontainers.config.hypervisor.cc_init_data";
/// GPU count (decimal integer).
pub const DEFAULT_GPUS: &str = "io.katacontainers.config.hypervisor.default_gpus";
/// GPU model.
pub const DEFAULT_GPU_MODEL: &str = "io.katacontainers.config.hypervisor.default_gpu_model";

/// The nine keys the shim sends on every CreateVM, whether or not they have a value.
pub const SHIM_KEYS: [&str; 9] = [
    SANDBOX_NAME,
    SANDBOX_NAMESPACE,
    MACHINE_TYPE,
    IMAGE,
    DEFAULT_VCPUS,
    DEFAULT_MEMORY,
    CC_INIT_DATA,
    DEFAULT_GPUS,
    DEFAULT_GPU_MODEL,
];

/// What a sandbox asks for; unset fields go out empty (strings) or `"0"` (numbers), as the
/// shim sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmSpec {
    /// Pod name.
    pub pod: String,
    /// Pod namespace.
    pub namespace: String,
    /// vCPUs.
    pub vcpus: Option<u32>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Instance type.
    pub instance_type: Option<String>,
    /// Pod VM image.
    pub image: Option<String>,
    /// Initdata TOML text.
    pub initdata: Option<String>,
}

impl VmSpec {
    /// The nine shim keys filled from this spec, then `extra` applied in order (later entries
    /// override earlier ones and the shim keys; new keys are added).
    pub fn annotations(&self, extra: &[(String, String)]) -> HashMap<String, String> {
        let number = |n: Option<u64>| n.unwrap_or(0).to_string();
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let mut map = HashMap::from([
            (SANDBOX_NAME, self.pod.clone()),
            (SANDBOX_NAMESPACE, self.namespace.clone()),
            (MACHINE_TYPE, text(&self.instance_type)),
            (IMAGE, text(&self.image)),
            (DEFAULT_VCPUS, number(self.vcpus.map(u64::from))),
            (DEFAULT_MEMORY, number(self.memory_mib)),
            (CC_INIT_DATA, text(&self.initdata)),
            (DEFAULT_GPUS, number(None)),
            (DEFAULT_GPU_MODEL, String::new()),
        ])
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect::<HashMap<_, _>>();
        map.extend(extra.iter().cloned());
        map
    }
}

/// Parses one `--annotation` value of the form `key=value` (the value may be empty or contain
/// `=`; the key may not be empty).
pub fn parse_annotation(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected key=value, got {arg:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_values_are_empty_or_zero_and_extras_override() {
        let spec = VmSpec { pod: "web".into(), namespace: "default".into(), ..Default::default() };
        let extra = [(IMAGE.to_string(), "img".to_string()), ("x".to_string(), "y".to_string())];
        let map = spec.annotations(&extra);
        assert_eq!(map.len(), 10);
        assert!(SHIM_KEYS.iter().all(|k| map.contains_key(*k)));
        assert_eq!(map[SANDBOX_NAME], "web");
        assert_eq!(map[DEFAULT_VCPUS], "0");
        assert_eq!(map[DEFAULT_GPUS], "0");
        assert_eq!(map[MACHINE_TYPE], "");
        assert_eq!(map[IMAGE], "img");
        assert_eq!(map["x"], "y");
    }

    #[test]
    fn annotation_arguments_need_a_key() {
        assert_eq!(parse_annotation("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_annotation("a="), Ok(("a".into(), String::new())));
        assert!(parse_annotation("=b").is_err());
        assert!(parse_annotation("ab").is_err());
    }
}
