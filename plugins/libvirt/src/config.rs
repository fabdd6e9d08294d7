//! The libvirt plugin's options: the table it advertises (`--describe`, `initialize`), under
//! upstream's environment names and defaults (caa-facts §1.5) plus what a local setup needs
//! (domain type, direct kernel boot, disk bus, serial log), and [`LibvirtConfig`], the typed form
//! parsed once at `initialize`.

use caa_plugin_proto::{ConfigOption, ConfigSchema, OptionKind, Problem, RpcError};
use caa_plugin_sdk::Config;
use serde_json::{Value, json};

/// Option names, as they appear in `initialize.config`.
pub mod name {
    /// libvirt connection URI.
    pub const URI: &str = "uri";
    /// Storage pool for the volumes.
    pub const POOL: &str = "poolName";
    /// libvirt network for the NIC.
    pub const NETWORK: &str = "networkName";
    /// Base image volume.
    pub const VOLUME: &str = "volName";
    /// Default vCPUs.
    pub const CPU: &str = "cpu";
    /// Default memory, MiB.
    pub const MEMORY: &str = "memory";
    /// vCPU pinning set.
    pub const CPUSET: &str = "cpuset";
    /// Root disk size, GiB.
    pub const ROOT_DISK_SIZE: &str = "rootDiskSize";
    /// x86 UEFI loader.
    pub const FIRMWARE: &str = "firmware";
    /// Launch security (`s390-pv`).
    pub const LAUNCH_SECURITY: &str = "launchSecurity";
    /// No confidential VM.
    pub const DISABLE_CVM: &str = "disableCvm";
    /// `<domain type=…>`.
    pub const DOMAIN_TYPE: &str = "domainType";
    /// Direct kernel boot: kernel.
    pub const KERNEL: &str = "kernel";
    /// Direct kernel boot: initrd.
    pub const INITRD: &str = "initrd";
    /// Direct kernel boot: command line.
    pub const CMDLINE: &str = "cmdline";
    /// Bus of the root disk on x86.
    pub const ROOT_DISK_BUS: &str = "rootDiskBus";
    /// Directory for serial console logs.
    pub const SERIAL_LOG_DIR: &str = "serialLogDir";
}

/// Upstream's default URI.
pub const DEFAULT_URI: &str = "qemu+ssh://root@192.168.122.1/system?no_verify=1";
/// Upstream's default x86 UEFI loader.
pub const DEFAULT_FIRMWARE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// Root disk size used when the option is 0.
pub const DEFAULT_ROOT_DISK_GIB: u64 = 10;

fn option(name: &str, env: &str, kind: OptionKind, default: Value, help: &str) -> ConfigOption {
    ConfigOption {
        default: Some(default),
        description: help.to_owned(),
        ..ConfigOption::new(name, env, kind)
    }
}

/// The option table, in documentation order.
pub fn schema() -> ConfigSchema {
    use OptionKind::{Bool, Integer, String as Text};
    let options = vec![
        option(name::URI, "LIBVIRT_URI", Text, json!(DEFAULT_URI), "libvirt connection URI"),
        option(name::POOL, "LIBVIRT_POOL", Text, json!("default"), "storage pool for the volumes"),
        option(name::NETWORK, "LIBVIRT_NET", Text, json!("default"), "libvirt network of the NIC"),
        option(
            name::VOLUME,
            "LIBVIRT_VOL_NAME",
            Text,
            json!("podvm-base.qcow2"),
            "base image volume in the pool (the image annotation overrides it)",
        ),
        option(name::CPU, "LIBVIRT_CPU", Integer, json!(2), "vCPUs when the pod asks for none"),
        option(
            name::MEMORY,
            "LIBVIRT_MEMORY",
            Integer,
            json!(8192),
            "MiB when the pod asks for none",
        ),
        option(name::CPUSET, "LIBVIRT_CPUSET", Text, json!(""), "vCPU pinning set, e.g. 0-3,8"),
        option(
            name::ROOT_DISK_SIZE,
            "LIBVIRT_ROOT_DISK_SIZE",
            Integer,
            json!(DEFAULT_ROOT_DISK_GIB),
            "root disk GiB (0 means 10; never below the base volume)",
        ),
        option(
            name::FIRMWARE,
            "LIBVIRT_EFI_FIRMWARE",
            Text,
            json!(DEFAULT_FIRMWARE),
            "x86 UEFI loader; empty (config) or \"none\" (env too) boots BIOS",
        ),
        option(
            name::LAUNCH_SECURITY,
            "LIBVIRT_LAUNCH_SECURITY",
            Text,
            json!(""),
            "s390-pv, or empty to pick by host (s390x: s390-pv); ignored when disableCvm",
        ),
        option(
            name::DISABLE_CVM,
            "DISABLECVM",
            Bool,
            json!(true),
            "create plain, non-confidential VMs",
        ),
        option(
            name::DOMAIN_TYPE,
            "LIBVIRT_DOMAIN_TYPE",
            Text,
            json!("kvm"),
            "libvirt domain type: kvm, or qemu for TCG (no usable /dev/kvm)",
        ),
        option(
            name::KERNEL,
            "LIBVIRT_KERNEL",
            Text,
            json!(""),
            "direct kernel boot: kernel path on the libvirt host",
        ),
        option(name::INITRD, "LIBVIRT_INITRD", Text, json!(""), "direct kernel boot: initrd path"),
        option(
            name::CMDLINE,
            "LIBVIRT_CMDLINE",
            Text,
            json!(""),
            "direct kernel boot: kernel command line",
        ),
        option(
            name::ROOT_DISK_BUS,
            "LIBVIRT_ROOT_DISK_BUS",
            Text,
            json!(""),
            "x86 root disk bus: sata (upstream) or virtio (kernels without AHCI); empty: sata",
        ),
        option(
            name::SERIAL_LOG_DIR,
            "LIBVIRT_SERIAL_LOG_DIR",
            Text,
            json!(""),
            "directory on the libvirt host for <name>-serial.log console logs; empty: none",
        ),
    ];
    ConfigSchema { options }
}

/// Confidential-computing technology requested for the VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchSecurity {
    /// Pick by host: s390x hosts get [`LaunchSecurity::S390Pv`], others none.
    Auto,
    /// IBM Secure Execution.
    S390Pv,
    /// No confidential VM (`disableCvm`).
    None,
}

/// Disk bus of the x86 root disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// `sda` on SATA (upstream's layout).
    Sata,
    /// `vda` on virtio.
    Virtio,
}

/// Direct kernel boot files, paths on the libvirt host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBoot {
    /// Kernel image.
    pub kernel: String,
    /// Initial ramdisk, if any.
    pub initrd: Option<String>,
    /// Kernel command line, if any.
    pub cmdline: Option<String>,
}

/// The plugin's configuration after parsing. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtConfig {
    /// Connection URI.
    pub uri: String,
    /// Storage pool name.
    pub pool: String,
    /// Network name.
    pub network: String,
    /// Base volume name.
    pub volume: String,
    /// Default vCPUs.
    pub vcpus: u32,
    /// Default memory, MiB.
    pub memory_mib: u64,
    /// vCPU pinning set.
    pub cpuset: Option<String>,
    /// Root disk size, GiB (at least 1).
    pub root_disk_gib: u64,
    /// x86 UEFI loader (`None`: BIOS).
    pub firmware: Option<String>,
    /// Launch security.
    pub launch_security: LaunchSecurity,
    /// `<domain type=…>`.
    pub domain_type: String,
    /// Direct kernel boot.
    pub kernel_boot: Option<KernelBoot>,
    /// x86 root disk bus.
    pub root_disk_bus: DiskBus,
    /// Directory for serial logs.
    pub serial_log_dir: Option<String>,
}

impl LibvirtConfig {
    /// Parses the resolved option values; every bad value becomes one `invalidConfig` problem
    /// (the checks of upstream's config verifier, plus ours).
    pub fn from_config(config: &Config) -> Result<LibvirtConfig, RpcError> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: &str| {
            problems.push(Problem { field: field.to_owned(), message: message.to_owned() });
        };
        let text = |key: &str| config.str(key).map(str::trim).filter(|s| !s.is_empty());
        let mut required = |key: &str| {
            text(key).map(str::to_owned).unwrap_or_else(|| {
                problem(key, "must not be empty");
                String::new()
            })
        };
        let uri = required(name::URI);
        let pool = required(name::POOL);
        let network = required(name::NETWORK);
        let volume = required(name::VOLUME);
        let domain_type = required(name::DOMAIN_TYPE);

        let vcpus = config.i64(name::CPU).and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
        if vcpus.is_none() {
            problem(name::CPU, "must be a positive number of vCPUs");
        }
        let memory_mib =
            config.i64(name::MEMORY).and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0);
        if memory_mib.is_none() {
            problem(name::MEMORY, "must be a positive number of MiB");
        }
        let cpuset = text(name::CPUSET).map(str::to_owned);
        if cpuset.as_deref().is_some_and(|set| !valid_cpuset(set)) {
            problem(name::CPUSET, "must look like 0-3,8 (numbers and ranges, comma-separated)");
        }
        let root_disk_gib = match config.i64(name::ROOT_DISK_SIZE).unwrap_or(0) {
            0 => DEFAULT_ROOT_DISK_GIB,
            n => u64::try_from(n).unwrap_or_else(|_| {
                problem(name::ROOT_DISK_SIZE, "must be 0 or a positive number of GiB");
                DEFAULT_ROOT_DISK_GIB
            }),
        };
        let firmware =
            text(name::FIRMWARE).filter(|f| !f.eq_ignore_ascii_case("none")).map(str::to_owned);
        let launch_security = if config.bool(name::DISABLE_CVM) {
            LaunchSecurity::None
        } else {
            match text(name::LAUNCH_SECURITY) {
                None => LaunchSecurity::Auto,
                Some("s390-pv") => LaunchSecurity::S390Pv,
                Some(_) => {
                    problem(name::LAUNCH_SECURITY, "only s390-pv (or empty) is supported");
                    LaunchSecurity::Auto
                }
            }
        };
        let kernel_boot = match (text(name::KERNEL), text(name::INITRD), text(name::CMDLINE)) {
            (Some(kernel), initrd, cmdline) => Some(KernelBoot {
                kernel: kernel.to_owned(),
                initrd: initrd.map(str::to_owned),
                cmdline: cmdline.map(str::to_owned),
            }),
            (None, None, None) => None,
            (None, _, _) => {
                problem(name::KERNEL, "initrd or cmdline is set but kernel is not");
                None
            }
        };
        let root_disk_bus = match text(name::ROOT_DISK_BUS) {
            None | Some("sata") => DiskBus::Sata,
            Some("virtio") => DiskBus::Virtio,
            Some(_) => {
                problem(name::ROOT_DISK_BUS, "must be sata or virtio");
                DiskBus::Sata
            }
        };
        let serial_log_dir = text(name::SERIAL_LOG_DIR).map(|d| d.trim_end_matches('/').to_owned());

        let parsed = LibvirtConfig {
            uri,
            pool,
            network,
            volume,
            vcpus: vcpus.unwrap_or(1),
            memory_mib: memory_mib.unwrap_or(1),
            cpuset,
            root_disk_gib,
            firmware,
            launch_security,
            domain_type,
            kernel_boot,
            root_disk_bus,
            serial_log_dir,
        };
        if problems.is_empty() {
            return Ok(parsed);
        }
        Err(caa_plugin_sdk::config::invalid(crate::provider::PROVIDER_NAME, problems))
    }
}

/// Upstream's cpuset rule: `^\d+(-\d+)?(,\d+(-\d+)?)*$`.
pub fn valid_cpuset(set: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    set.split(',').all(|item| match item.split_once('-') {
        Some((from, to)) => number(from) && number(to),
        None => number(item),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use caa_plugin_proto::ErrorCode;

    use super::*;

    fn parse(given: &[(&str, Value)]) -> Result<LibvirtConfig, RpcError> {
        let given: BTreeMap<String, Value> =
            given.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let config = Config::resolve(&schema(), &given, &|_| None)?;
        LibvirtConfig::from_config(&config)
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.uri, DEFAULT_URI);
        assert_eq!((c.pool.as_str(), c.network.as_str()), ("default", "default"));
        assert_eq!(c.volume, "podvm-base.qcow2");
        assert_eq!((c.vcpus, c.memory_mib, c.root_disk_gib), (2, 8192, 10));
        assert_eq!(c.firmware.as_deref(), Some(DEFAULT_FIRMWARE));
        assert_eq!(c.launch_security, LaunchSecurity::None);
        assert_eq!((c.domain_type.as_str(), c.root_disk_bus), ("kvm", DiskBus::Sata));
        assert_eq!((c.cpuset, c.kernel_boot, c.serial_log_dir), (None, None, None));
    }

    #[test]
    fn env_names_are_upstreams_plus_the_local_ones() {
        let schema = schema();
        let names: Vec<&str> = schema.env_names().collect();
        for upstream in [
            "LIBVIRT_URI",
            "LIBVIRT_POOL",
            "LIBVIRT_NET",
            "LIBVIRT_VOL_NAME",
            "LIBVIRT_CPU",
            "LIBVIRT_MEMORY",
            "LIBVIRT_CPUSET",
            "LIBVIRT_ROOT_DISK_SIZE",
            "LIBVIRT_EFI_FIRMWARE",
            "LIBVIRT_LAUNCH_SECURITY",
            "DISABLECVM",
        ] {
            assert!(names.contains(&upstream), "{upstream}");
        }
        assert_eq!(names.len(), schema.options.len());
        assert!(schema.options.iter().all(|o| !o.secret));
    }

    #[test]
    fn local_options_parse() {
        let c = parse(&[
            (name::FIRMWARE, json!("none")),
            (name::DOMAIN_TYPE, json!("qemu")),
            (name::KERNEL, json!("/k")),
            (name::CMDLINE, json!("console=ttyS0")),
            (name::ROOT_DISK_BUS, json!("virtio")),
            (name::SERIAL_LOG_DIR, json!("/var/log/x/")),
            (name::ROOT_DISK_SIZE, json!(0)),
            (name::DISABLE_CVM, json!(false)),
            (name::CPUSET, json!("0-3,8")),
        ])
        .unwrap();
        assert_eq!(c.firmware, None);
        assert_eq!(c.domain_type, "qemu");
        let boot = c.kernel_boot.unwrap();
        assert_eq!(
            (boot.kernel.as_str(), boot.initrd, boot.cmdline.as_deref()),
            ("/k", None, Some("console=ttyS0"))
        );
        assert_eq!(c.root_disk_bus, DiskBus::Virtio);
        assert_eq!(c.serial_log_dir.as_deref(), Some("/var/log/x"));
        assert_eq!(c.root_disk_gib, 10);
        assert_eq!(c.launch_security, LaunchSecurity::Auto);
        assert_eq!(c.cpuset.as_deref(), Some("0-3,8"));
        assert_eq!(parse(&[(name::FIRMWARE, json!(""))]).unwrap().firmware, None);
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let e = parse(&[
            (name::URI, json!(" ")),
            (name::CPU, json!(0)),
            (name::MEMORY, json!(-1)),
            (name::CPUSET, json!("0-")),
            (name::DISABLE_CVM, json!(false)),
            (name::LAUNCH_SECURITY, json!("sev")),
            (name::INITRD, json!("/i")),
            (name::ROOT_DISK_BUS, json!("ide")),
            (name::ROOT_DISK_SIZE, json!(-2)),
        ])
        .unwrap_err();
        assert_eq!(e.kind(), ErrorCode::InvalidConfig);
        let fields: Vec<&str> =
            e.data.as_ref().unwrap().problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                name::URI,
                name::CPU,
                name::MEMORY,
                name::CPUSET,
                name::ROOT_DISK_SIZE,
                name::LAUNCH_SECURITY,
                name::KERNEL,
                name::ROOT_DISK_BUS
            ]
        );
    }

    #[test]
    fn cpuset_rule() {
        for ok in ["0", "0-3", "0-3,8", "1,2,3", "10-20,30"] {
            assert!(valid_cpuset(ok), "{ok}");
        }
        for bad in ["", "a", "0-", "-1", "0,,1", "0-1-2", "0 1", "1,"] {
            assert!(!valid_cpuset(bad), "{bad}");
        }
    }
}
