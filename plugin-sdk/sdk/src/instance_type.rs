//! Instance-type selection shared by the cloud plugins (aws, azure, ibmcloud): turns the
//! `spec` of a `createInstance` request (explicit type, or GPUs/vCPUs/memory) into the name of an
//! allowed instance type, with the upstream cloud-api-adaptor's error texts.
//!
//! The candidates are sorted by GPUs, then memory, then vCPUs, and a resource request picks the
//! *first* candidate that fits, i.e. the true smallest fit in that order. Upstream runs a binary
//! search over the same order, but its "fits" predicate is not monotone over it, so it can skip a
//! smaller fitting type; we deliberately do a linear first-fit instead.

use caa_plugin_proto::{ErrorCode, InstanceSpec, RpcError};

/// The resources of one instance type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeSpec {
    /// The cloud's name of the type (`t3.medium`, `Standard_DC2as_v5`, `bx2-2x8`).
    pub name: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPUs.
    pub gpus: u32,
    /// Architecture (`amd64`, `arm64`, `s390x`); informational, selection does not filter on it.
    pub arch: String,
}

impl InstanceTypeSpec {
    /// A spec without GPUs and without a recorded architecture.
    pub fn new(name: impl Into<String>, vcpus: u32, memory_mib: u64) -> InstanceTypeSpec {
        InstanceTypeSpec { name: name.into(), vcpus, memory_mib, gpus: 0, arch: String::new() }
    }

    /// The same spec with `gpus` GPUs.
    pub fn with_gpus(mut self, gpus: u32) -> InstanceTypeSpec {
        self.gpus = gpus;
        self
    }

    /// The same spec with an architecture.
    pub fn with_arch(mut self, arch: impl Into<String>) -> InstanceTypeSpec {
        self.arch = arch.into();
        self
    }

    fn fits(&self, gpus: u32, vcpus: u32, memory_mib: u64) -> bool {
        self.gpus >= gpus && self.vcpus >= vcpus && self.memory_mib >= memory_mib
    }
}

/// The instance types a plugin may launch, and the selection rules over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypes {
    default: String,
    /// The operator's allowed type names; empty means "only the default type".
    allowed: Vec<String>,
    /// Selection candidates, sorted by (gpus, memory, vcpus).
    specs: Vec<InstanceTypeSpec>,
}

impl InstanceTypes {
    /// Types from an operator's allowed list: `allowed` holds the resources of every allowed type.
    /// An empty `allowed` means only `default` may be used; when its resources are known, prefer
    /// [`InstanceTypes::default_only`] so that resource requests can still be checked against it.
    pub fn new(default: impl Into<String>, allowed: Vec<InstanceTypeSpec>) -> InstanceTypes {
        let names = allowed.iter().map(|s| s.name.clone()).collect();
        InstanceTypes::build(default.into(), names, allowed)
    }

    /// No allowed list: only the default type, whose resources are `default`.
    pub fn default_only(default: InstanceTypeSpec) -> InstanceTypes {
        InstanceTypes::build(default.name.clone(), Vec::new(), vec![default])
    }

    fn build(
        default: String,
        allowed: Vec<String>,
        mut specs: Vec<InstanceTypeSpec>,
    ) -> InstanceTypes {
        specs.sort_by_key(|s| (s.gpus, s.memory_mib, s.vcpus));
        InstanceTypes { default, allowed, specs }
    }

    /// The default type's name.
    pub fn default_type(&self) -> &str {
        &self.default
    }

    /// The selection candidates in selection order (GPUs, then memory, then vCPUs, ascending).
    pub fn specs(&self) -> &[InstanceTypeSpec] {
        &self.specs
    }

    /// The candidate called `name`, if any.
    pub fn spec(&self, name: &str) -> Option<&InstanceTypeSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Chooses the type for a request: an explicit `instanceType` wins; otherwise GPUs > 0 picks
    /// the smallest type with enough GPUs, vCPUs and memory; otherwise vCPUs *and* memory both set
    /// pick the smallest GPU-less type with enough of both; otherwise the default type. The result
    /// is then checked against the allowed list. Errors are `unsupportedSpec`.
    pub fn select(&self, spec: &InstanceSpec) -> Result<String, RpcError> {
        let (gpus, vcpus, memory) = (spec.gpus, spec.vcpus, spec.memory_mib);
        let chosen = if !spec.instance_type.is_empty() {
            spec.instance_type.clone()
        } else if gpus > 0 {
            let fit = self.specs.iter().find(|s| s.fits(gpus, vcpus, memory));
            match fit {
                Some(s) => s.name.clone(),
                None => {
                    return Err(unsupported(format!(
                        "failed to get instance type based on GPU, vCPU, and memory annotations: no \
                         instance type found for the given GPUs ({gpus}), vCPUs ({vcpus}), and memory \
                         ({memory})"
                    )));
                }
            }
        } else if vcpus != 0 && memory != 0 {
            let fit = self.specs.iter().filter(|s| s.gpus == 0).find(|s| s.fits(0, vcpus, memory));
            match fit {
                Some(s) => s.name.clone(),
                None => {
                    return Err(unsupported(format!(
                        "failed to get instance type based on vCPU and memory annotations: no \
                         instance type found for the given vcpus ({vcpus}) and memory ({memory})"
                    )));
                }
            }
        } else {
            String::new()
        };
        self.verify(chosen).map_err(|e| unsupported(format!("failed to verify instance type: {e}")))
    }

    /// Checks a chosen name against the allowed list; an empty name means the default type.
    fn verify(&self, name: String) -> Result<String, String> {
        if name.is_empty() {
            return Ok(self.default.clone());
        }
        if self.allowed.is_empty() {
            if name == self.default {
                return Ok(name);
            }
            return Err(format!(
                "requested instance type (\"{name}\") is not default (\"{}\") and supported instance \
                 types list is empty",
                self.default
            ));
        }
        if self.allowed.contains(&name) {
            Ok(name)
        } else {
            Err(format!(
                "requested instance type (\"{name}\") is not part of supported instance types list"
            ))
        }
    }
}

fn unsupported(message: String) -> RpcError {
    RpcError::new(ErrorCode::UnsupportedSpec, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, vcpus: u32, memory_mib: u64, gpus: u32) -> InstanceTypeSpec {
        InstanceTypeSpec::new(name, vcpus, memory_mib).with_gpus(gpus)
    }

    /// A mixed catalogue, deliberately given out of order.
    fn catalogue() -> InstanceTypes {
        InstanceTypes::new(
            "small",
            vec![
                s("large", 8, 32768, 0),
                s("small", 2, 4096, 0),
                s("medium", 4, 8192, 0),
                s("wide", 16, 8192, 0),
                s("gpu1", 8, 65536, 1),
                s("gpu4", 32, 262144, 4),
            ],
        )
    }

    fn req(instance_type: &str, gpus: u32, vcpus: u32, memory_mib: u64) -> InstanceSpec {
        InstanceSpec {
            instance_type: instance_type.into(),
            gpus,
            vcpus,
            memory_mib,
            ..InstanceSpec::default()
        }
    }

    /// Selects and renders the outcome as `name` or `error <code>: <message>`.
    fn check(types: &InstanceTypes, spec: InstanceSpec, expected: &str) {
        let got = match types.select(&spec) {
            Ok(name) => name,
            Err(e) => format!("error {}: {}", e.code, e.message),
        };
        assert_eq!(got, expected, "request {spec:?}");
    }

    #[test]
    fn specs_are_sorted_by_gpus_then_memory_then_vcpus() {
        let names: Vec<_> = catalogue().specs().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["small", "medium", "wide", "large", "gpu1", "gpu4"]);
    }

    #[test]
    fn selection_cases() {
        let t = catalogue();
        // Nothing requested, or only one of vcpus/memory: the default type.
        check(&t, req("", 0, 0, 0), "small");
        check(&t, req("", 0, 64, 0), "small");
        check(&t, req("", 0, 0, 999_999), "small");
        // Explicit type wins over resources.
        check(&t, req("large", 4, 64, 999_999), "large");
        // vCPUs and memory: smallest GPU-less fit.
        check(&t, req("", 0, 2, 4096), "small");
        check(&t, req("", 0, 3, 4096), "medium");
        check(&t, req("", 0, 8, 8192), "wide");
        check(&t, req("", 0, 8, 16384), "large");
        // GPUs: smallest fit with enough GPUs, vCPUs and memory.
        check(&t, req("", 1, 0, 0), "gpu1");
        check(&t, req("", 2, 1, 1), "gpu4");
        check(&t, req("", 1, 16, 1), "gpu4");
    }

    #[test]
    fn first_fit_beats_upstream_binary_search() {
        // Sorted: a (8 GiB, 16 vCPUs), b (16 GiB, 2 vCPUs), c (32 GiB, 32 vCPUs). A binary search for
        // "8 vCPUs, 8 GiB" probes b first, sees no fit and continues right, ending at c; the true
        // smallest fit is a.
        let t = InstanceTypes::new(
            "a",
            vec![s("c", 32, 32768, 0), s("b", 2, 16384, 0), s("a", 16, 8192, 0)],
        );
        check(&t, req("", 0, 8, 8192), "a");
        let g = InstanceTypes::new(
            "a",
            vec![s("c", 32, 32768, 1), s("b", 2, 16384, 1), s("a", 16, 8192, 1)],
        );
        check(&g, req("", 1, 8, 8192), "a");
    }

    #[test]
    fn error_texts() {
        let t = catalogue();
        check(
            &t,
            req("", 8, 4, 1024),
            "error 3: failed to get instance type based on GPU, vCPU, and memory annotations: no \
             instance type found for the given GPUs (8), vCPUs (4), and memory (1024)",
        );
        check(
            &t,
            req("", 0, 64, 1024),
            "error 3: failed to get instance type based on vCPU and memory annotations: no instance \
             type found for the given vcpus (64) and memory (1024)",
        );
        check(
            &t,
            req("huge", 0, 0, 0),
            "error 3: failed to verify instance type: requested instance type (\"huge\") is not part \
             of supported instance types list",
        );
        let only = InstanceTypes::default_only(s("t3.small", 2, 2048, 0));
        check(
            &only,
            req("t3.large", 0, 0, 0),
            "error 3: failed to verify instance type: requested instance type (\"t3.large\") is not \
             default (\"t3.small\") and supported instance types list is empty",
        );
    }

    #[test]
    fn default_only_cases() {
        let only = InstanceTypes::default_only(s("t3.small", 2, 2048, 0));
        check(&only, req("", 0, 0, 0), "t3.small");
        check(&only, req("t3.small", 0, 0, 0), "t3.small");
        check(&only, req("", 0, 2, 2048), "t3.small");
        check(
            &only,
            req("", 0, 4, 2048),
            "error 3: failed to get instance type based on vCPU and memory annotations: no instance \
             type found for the given vcpus (4) and memory (2048)",
        );
        // Resources unknown: only the default by name or by not asking.
        let unknown = InstanceTypes::new("t3.small", Vec::new());
        check(&unknown, req("", 0, 0, 0), "t3.small");
        assert!(unknown.specs().is_empty());
    }

    #[test]
    fn implicit_default_need_not_be_in_the_allowed_list() {
        let t = InstanceTypes::new("outside", vec![s("in", 2, 4096, 0)]);
        check(&t, req("", 0, 0, 0), "outside");
        check(
            &t,
            req("outside", 0, 0, 0),
            "error 3: failed to verify instance type: requested instance type (\"outside\") is not \
             part of supported instance types list",
        );
    }
}
