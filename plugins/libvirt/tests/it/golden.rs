//! Domain XML snapshots per layout (x86_64 BIOS and UEFI, direct kernel boot under TCG,
//! aarch64, s390x) against `tests/golden/*.xml`; `CAA_UPDATE_GOLDEN=1` rewrites them. Each
//! snapshot must also be accepted by libvirt's own domain parser (the test driver's define) and
//! give its metadata back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use caa_plugin_proto::tags;
use caa_plugin_sdk::Config;
use caa_provider_libvirt::LibvirtConfig;
use caa_provider_libvirt::config::{DiskBus, KernelBoot, schema};
use caa_provider_libvirt::domain_xml::{Instance, render};
use caa_provider_libvirt::host::{Arch, HostInfo};
use caa_provider_libvirt::metadata::{DomainRecord, InstanceMeta};
use caa_provider_libvirt::session::quiet_libvirt;
use virt::connect::Connect;

use crate::support::TestHost;

fn defaults() -> LibvirtConfig {
    let config = Config::resolve(&schema(), &BTreeMap::new(), &|_| None).unwrap();
    LibvirtConfig::from_config(&config).unwrap()
}

fn host(arch: Arch) -> HostInfo {
    let (machine, emulator) = match arch {
        Arch::X86_64 => (None, None),
        Arch::Aarch64 => (Some("virt-7.2"), None),
        Arch::S390x => (Some("s390-ccw-virtio-7.2"), Some("/usr/bin/qemu-system-s390x")),
    };
    HostInfo {
        arch,
        machine: machine.map(str::to_owned),
        emulator: emulator.map(str::to_owned),
        domain_types: vec!["qemu".to_owned(), "kvm".to_owned()],
    }
}

fn instance() -> Instance {
    let root = "/var/lib/libvirt/images/podvm-nginx-27e11ff3-root.qcow2".to_owned();
    let cidata = "/var/lib/libvirt/images/podvm-nginx-27e11ff3-cloudinit.iso".to_owned();
    Instance {
        name: "podvm-nginx-27e11ff3".to_owned(),
        vcpus: 2,
        memory_mib: 8192,
        root_disk: root.clone(),
        cidata: cidata.clone(),
        meta: InstanceMeta {
            request_digest: "0f".repeat(32),
            volumes: vec![root, cidata],
            tags: BTreeMap::from([
                (tags::SANDBOX_ID.to_owned(), "27e11ff35fd1a2b3".to_owned()),
                (tags::OPERATION_ID.to_owned(), "6f1c0b1e-6a4e-4b7f-9a38-0c2d9e1f7a11".to_owned()),
                (tags::POD.to_owned(), "default/nginx".to_owned()),
                (tags::NODE.to_owned(), "worker-1".to_owned()),
            ]),
        },
    }
}

/// Every snapshot: name, config, host.
fn cases() -> Vec<(&'static str, LibvirtConfig, HostInfo)> {
    let bios = LibvirtConfig { firmware: None, cpuset: Some("0-3,8".to_owned()), ..defaults() };
    let kernel = LibvirtConfig {
        firmware: None,
        domain_type: "qemu".to_owned(),
        root_disk_bus: DiskBus::Virtio,
        serial_log_dir: Some("/var/log/libvirt/qemu".to_owned()),
        kernel_boot: Some(KernelBoot {
            kernel: "/var/lib/libvirt/boot/vmlinuz".to_owned(),
            initrd: Some("/var/lib/libvirt/boot/initrd.img".to_owned()),
            cmdline: Some("root=/dev/vda rw console=ttyS0 net.ifnames=0".to_owned()),
        }),
        ..defaults()
    };
    vec![
        ("x86_64-bios", bios, host(Arch::X86_64)),
        ("x86_64-efi", defaults(), host(Arch::X86_64)),
        ("x86_64-kernel-boot-tcg", kernel, host(Arch::X86_64)),
        ("aarch64", defaults(), host(Arch::Aarch64)),
        (
            "aarch64-tcg",
            LibvirtConfig { domain_type: "qemu".to_owned(), ..defaults() },
            host(Arch::Aarch64),
        ),
        ("s390x", defaults(), host(Arch::S390x)),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.xml"))
}

#[test]
fn domain_xml_matches_the_golden_files() {
    let update = std::env::var_os("CAA_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, config, host) in cases() {
        let xml = render(&config, &host, &instance());
        let path = golden_path(name);
        if update {
            std::fs::write(&path, &xml).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with CAA_UPDATE_GOLDEN=1)", path.display()));
        if want != xml {
            stale.push(format!("--- {name}: want\n{want}\n--- got\n{xml}"));
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ (CAA_UPDATE_GOLDEN=1 rewrites):\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_layout_is_accepted_by_libvirts_parser_and_reads_back() {
    quiet_libvirt();
    let test_host = TestHost::new();
    let conn = Connect::open(Some(&test_host.uri())).unwrap();
    for (name, config, host) in cases() {
        // The test driver only runs domains of its own type; the layout is what is checked.
        let config = LibvirtConfig { domain_type: "test".to_owned(), ..config };
        let xml = render(&config, &host, &instance());
        let domain = conn.define_domain_xml(&xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        let record = DomainRecord::from_xml(&domain.xml_desc(0).unwrap()).unwrap();
        assert_eq!(record.meta, Some(instance().meta), "{name}");
        assert_eq!(record.disk_files, instance().meta.volumes, "{name}");
        domain.undefine().unwrap();
    }
}
