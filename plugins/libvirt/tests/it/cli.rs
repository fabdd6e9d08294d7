//! The command line: `--describe` lists the options under upstream's env names and makes no
//! libvirt call; `caa-plugin call` drives a create and a delete through the host library.

use std::collections::BTreeMap;
use std::process::Command;

use caa_plugin::call::{CallOutcome, CallRequest, call};
use caa_plugin_proto::Describe;
use serde_json::{Value, json};

use crate::support::{BIN, TestHost};

#[test]
fn describe_names_every_option_and_its_env_var() {
    let out = Command::new(BIN).arg("--describe").env_clear().output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let describe: Describe = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(describe.plugin.name, "libvirt");
    let caps = &describe.capabilities;
    assert!(caps.cancel && caps.progress && caps.idempotent_create);
    assert_eq!(caps.instance.arch, ["amd64", "arm64", "s390x"]);
    assert!(!caps.instance.gpus && !caps.instance.volumes && !caps.instance.multi_nic);
    assert_eq!(caps.optional_methods, ["listInstances"]);
    let options: Vec<(&str, &str)> = describe
        .config_schema
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.env.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        options,
        [
            ("uri", "LIBVIRT_URI"),
            ("poolName", "LIBVIRT_POOL"),
            ("networkName", "LIBVIRT_NET"),
            ("volName", "LIBVIRT_VOL_NAME"),
            ("cpu", "LIBVIRT_CPU"),
            ("memory", "LIBVIRT_MEMORY"),
            ("cpuset", "LIBVIRT_CPUSET"),
            ("rootDiskSize", "LIBVIRT_ROOT_DISK_SIZE"),
            ("firmware", "LIBVIRT_EFI_FIRMWARE"),
            ("launchSecurity", "LIBVIRT_LAUNCH_SECURITY"),
            ("disableCvm", "DISABLECVM"),
            ("domainType", "LIBVIRT_DOMAIN_TYPE"),
            ("kernel", "LIBVIRT_KERNEL"),
            ("initrd", "LIBVIRT_INITRD"),
            ("cmdline", "LIBVIRT_CMDLINE"),
            ("rootDiskBus", "LIBVIRT_ROOT_DISK_BUS"),
            ("serialLogDir", "LIBVIRT_SERIAL_LOG_DIR"),
        ]
    );
    let default = |name: &str| {
        describe.config_schema.options.iter().find(|o| o.name == name).unwrap().default.clone()
    };
    assert_eq!(default("uri"), Some(json!("qemu+ssh://root@192.168.122.1/system?no_verify=1")));
    assert_eq!(default("firmware"), Some(json!("/usr/share/OVMF/OVMF_CODE_4M.fd")));
    assert_eq!(default("disableCvm"), Some(json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_creates_with_progress_and_reports_the_lease() {
    let host = TestHost::new();
    let Value::Object(config) = host.config(&[]) else { unreachable!() };
    let req = CallRequest {
        plugin: BIN.into(),
        method: "createInstance".to_owned(),
        params: json!({"podName": "p", "podNamespace": "ns", "sandboxId": "0123456789abcdef",
                       "userData": "#cloud-config\n"}),
        config: config.into_iter().collect::<BTreeMap<_, _>>(),
        pass_env: Vec::new(),
        sha256: None,
        timeout: None,
    };
    let mut stages = Vec::new();
    let outcome = call(req, |p| stages.push(p["stage"].as_str().unwrap_or_default().to_owned()))
        .await
        .unwrap();
    let CallOutcome::Result(result) = outcome else { panic!("call failed: {outcome:?}") };
    assert_eq!(result["name"], "podvm-p-01234567");
    assert!(result["ips"][0].as_str().unwrap().starts_with("192.168.122."), "{result}");
    assert_eq!(stages, ["requested", "instanceCreated", "waitingForIp", "running"]);
}
