//! What CreateVM receives, as domain data: the sandbox id, the pod, the annotations read into a
//! VM spec (upstream's parse rules: a bad integer reads as 0), and the network namespace path.

use std::collections::HashMap;

use caa_plugin_proto::InstanceSpec;

use crate::annotations;

/// A CreateVM request.
#[derive(Debug, Clone, Default)]
pub struct CreateVm {
    /// Sandbox id as sent.
    pub id: String,
    /// The 9 annotation keys the shim sends.
    pub annotations: HashMap<String, String>,
    /// The pod network namespace path (may be empty).
    pub netns: String,
}

/// The instance parameters a pod asks for through its annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmRequestSpec {
    /// The spec sent to the plugin.
    pub instance: InstanceSpec,
    /// Raw initdata TOML from `cc_init_data`, if any.
    pub initdata: Option<String>,
}

impl VmRequestSpec {
    /// Reads the annotations.
    pub fn from_annotations(a: &HashMap<String, String>) -> VmRequestSpec {
        let text = |key: &str| a.get(key).map(|v| v.trim().to_owned()).unwrap_or_default();
        let number = |key: &str| text(key).parse::<u64>().unwrap_or(0);
        VmRequestSpec {
            instance: InstanceSpec {
                instance_type: text(annotations::MACHINE_TYPE),
                vcpus: u32::try_from(number(annotations::DEFAULT_VCPUS)).unwrap_or(0),
                memory_mib: number(annotations::DEFAULT_MEMORY),
                gpus: u32::try_from(number(annotations::DEFAULT_GPUS)).unwrap_or(0),
                image: text(annotations::IMAGE),
                ..InstanceSpec::default()
            },
            initdata: a.get(annotations::CC_INIT_DATA).filter(|v| !v.trim().is_empty()).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> VmRequestSpec {
        VmRequestSpec::from_annotations(
            &pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        )
    }

    #[test]
    fn annotations_become_the_instance_spec() {
        let s = spec(&[
            (annotations::MACHINE_TYPE, "t3.small"),
            (annotations::DEFAULT_VCPUS, "2"),
            (annotations::DEFAULT_MEMORY, "4096"),
            (annotations::DEFAULT_GPUS, "0"),
            (annotations::IMAGE, "ami-1"),
            (annotations::CC_INIT_DATA, "algorithm = \"sha256\"\n"),
        ]);
        assert_eq!(s.instance.instance_type, "t3.small");
        assert_eq!((s.instance.vcpus, s.instance.memory_mib, s.instance.gpus), (2, 4096, 0));
        assert_eq!(s.instance.image, "ami-1");
        assert_eq!(s.initdata.as_deref(), Some("algorithm = \"sha256\"\n"));
    }

    #[test]
    fn bad_numbers_read_as_zero_and_empty_initdata_as_none() {
        let s = spec(&[
            (annotations::DEFAULT_VCPUS, "two"),
            (annotations::DEFAULT_MEMORY, "-1"),
            (annotations::CC_INIT_DATA, " "),
        ]);
        assert_eq!((s.instance.vcpus, s.instance.memory_mib), (0, 0));
        assert_eq!(s.initdata, None);
    }
}
