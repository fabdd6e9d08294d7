//! The domain XML of a pod VM, per host architecture (caa-facts §8.4): x86_64 (SATA root disk,
//! IDE cidata cdrom, or SATA with UEFI), aarch64 (UEFI, virtio root, SCSI cdrom) and s390x
//! (virtio disks with IOMMU, SCLP console), plus the local variants (domain type, direct kernel
//! boot, virtio root disk on x86, serial log file). Rendering is a pure function so that it is
//! pinned by golden files.

use std::fmt::Write as _;

use crate::config::{DiskBus, LibvirtConfig};
use crate::host::{Arch, HostInfo};
use crate::metadata::InstanceMeta;

/// The domain description upstream gives every pod VM.
pub const DESCRIPTION: &str = "This Virtual Machine is the peer-pod VM";

/// What differs between the VMs of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Domain name.
    pub name: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Path of the qcow2 root overlay.
    pub root_disk: String,
    /// Path of the cidata ISO.
    pub cidata: String,
    /// The plugin's metadata element.
    pub meta: InstanceMeta,
}

/// Renders the domain XML for `instance` on `host` under `config`.
pub fn render(config: &LibvirtConfig, host: &HostInfo, instance: &Instance) -> String {
    let mut x = Xml::default();
    x.open(&format!("domain type='{}'", escape(&config.domain_type)));
    x.leaf("name", &instance.name);
    x.leaf("description", DESCRIPTION);
    x.open("metadata");
    x.raw(&instance.meta.to_xml(x.depth * 2));
    x.close("metadata");
    x.line(&format!("<memory unit='MiB' dumpCore='on'>{}</memory>", instance.memory_mib));
    match &config.cpuset {
        Some(set) => x.line(&format!(
            "<vcpu placement='static' cpuset='{}'>{}</vcpu>",
            escape(set),
            instance.vcpus
        )),
        None => x.line(&format!("<vcpu placement='static'>{}</vcpu>", instance.vcpus)),
    }
    os(&mut x, config, host);
    if host.arch == Arch::X86_64 {
        x.open("features");
        x.line("<acpi/>");
        x.line("<apic/>");
        x.line("<vmport state='off'/>");
        x.close("features");
    }
    let kvm = config.domain_type == "kvm";
    match (host.arch, kvm) {
        (Arch::Aarch64, true) => x.line("<cpu mode='host-passthrough'/>"),
        // TCG: QEMU's default aarch64 CPU on `virt` is 32-bit; ask for everything it emulates.
        (Arch::Aarch64, false) => x.line("<cpu mode='maximum'/>"),
        (_, true) => x.line("<cpu mode='host-model'/>"),
        (_, false) => {}
    }
    if host.arch == Arch::S390x {
        x.line("<clock offset='utc'/>");
    }
    x.leaf("on_reboot", "restart");
    x.open("devices");
    if host.arch == Arch::S390x
        && let Some(emulator) = &host.emulator
    {
        x.leaf("emulator", emulator);
    }
    disks(&mut x, config, host.arch, instance);
    x.open("interface type='network'");
    x.line(&format!("<source network='{}'/>", escape(&config.network)));
    x.line("<model type='virtio'/>");
    if host.arch != Arch::X86_64 {
        x.line("<driver iommu='on'/>");
    }
    x.close("interface");
    console(&mut x, config, host.arch, &instance.name);
    if host.arch != Arch::X86_64 {
        x.open("memballoon model='virtio'");
        x.line("<driver iommu='on'/>");
        x.close("memballoon");
    }
    if host.arch == Arch::S390x {
        x.open("rng model='virtio'");
        x.line("<backend model='random'>/dev/urandom</backend>");
        x.line("<driver iommu='on'/>");
        x.close("rng");
    }
    x.close("devices");
    x.close("domain");
    x.out
}

fn os(x: &mut Xml, config: &LibvirtConfig, host: &HostInfo) {
    // x86 names its UEFI loader; libvirt before 9.2 refuses a loader path together with
    // firmware autoselection (`firmware='efi'`), so only aarch64 autoselects.
    let loader = config.firmware.as_deref().filter(|_| host.arch == Arch::X86_64);
    x.open(if host.arch == Arch::Aarch64 { "os firmware='efi'" } else { "os" });
    let arch = host.arch.libvirt_name();
    match &host.machine {
        Some(machine) => {
            x.line(&format!("<type arch='{arch}' machine='{}'>hvm</type>", escape(machine)));
        }
        None => x.line(&format!("<type arch='{arch}'>hvm</type>")),
    }
    if let Some(loader) = loader {
        x.line(&format!("<loader readonly='yes' type='pflash'>{}</loader>", escape(loader)));
    }
    if let Some(boot) = &config.kernel_boot {
        x.leaf("kernel", &boot.kernel);
        if let Some(initrd) = &boot.initrd {
            x.leaf("initrd", initrd);
        }
        if let Some(cmdline) = &boot.cmdline {
            x.leaf("cmdline", cmdline);
        }
    }
    x.close("os");
}

fn disks(x: &mut Xml, config: &LibvirtConfig, arch: Arch, instance: &Instance) {
    // With direct kernel boot the firmware boots no disk: no boot order.
    let boot = config.kernel_boot.is_none();
    let iommu = if arch == Arch::X86_64 { "" } else { " iommu='on'" };
    x.open("disk type='file' device='disk'");
    x.line(&format!("<driver name='qemu' type='qcow2'{iommu}/>"));
    x.line(&format!("<source file='{}'/>", escape(&instance.root_disk)));
    let sata_root = arch == Arch::X86_64 && config.root_disk_bus == DiskBus::Sata;
    if sata_root {
        x.line("<target dev='sda' bus='sata'/>");
    } else {
        x.line("<target dev='vda' bus='virtio'/>");
    }
    if boot {
        x.line("<boot order='1'/>");
    }
    if sata_root {
        x.line("<address type='drive' controller='0' bus='0' target='0' unit='0'/>");
    }
    x.close("disk");

    let cidata = escape(&instance.cidata);
    match arch {
        Arch::X86_64 => {
            x.open("disk type='file' device='cdrom'");
            x.line("<driver name='qemu' type='raw'/>");
            x.line(&format!("<source file='{cidata}'/>"));
            if config.firmware.is_some() {
                // Upstream: UEFI images (mkosi) want SATA, BIOS images (packer) IDE.
                x.line("<target dev='sdb' bus='sata'/>");
                x.line("<readonly/>");
                x.line("<address type='drive' controller='0' bus='0' target='0' unit='1'/>");
            } else {
                x.line("<target dev='hda' bus='ide'/>");
                x.line("<readonly/>");
            }
            x.close("disk");
        }
        Arch::Aarch64 => {
            x.open("disk type='file' device='cdrom'");
            x.line("<driver name='qemu' type='raw'/>");
            x.line(&format!("<source file='{cidata}'/>"));
            x.line("<target dev='sda' bus='scsi'/>");
            x.line("<readonly/>");
            x.close("disk");
            x.line("<controller type='scsi' index='0' model='virtio-scsi'/>");
        }
        Arch::S390x => {
            x.open("disk type='file' device='disk'");
            x.line("<driver name='qemu' type='raw' iommu='on'/>");
            x.line(&format!("<source file='{cidata}'/>"));
            x.line("<target dev='vdb' bus='virtio'/>");
            x.close("disk");
        }
    }
}

fn console(x: &mut Xml, config: &LibvirtConfig, arch: Arch, name: &str) {
    let log = config.serial_log_dir.as_ref().map(|dir| {
        format!("<log file='{}' append='off'/>", escape(&format!("{dir}/{name}-serial.log")))
    });
    if arch == Arch::S390x {
        x.open("console type='pty'");
        if let Some(log) = &log {
            x.line(log);
        }
        x.line("<target type='sclp' port='0'/>");
        x.close("console");
        return;
    }
    x.open("serial type='pty'");
    if let Some(log) = &log {
        x.line(log);
    }
    x.line("<target port='0'/>");
    x.close("serial");
    x.open("console type='pty'");
    x.line("<target type='serial' port='0'/>");
    x.close("console");
}

/// Escapes text for XML content and for attributes in either quote style.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An indenting line writer.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{:width$}{text}", "", width = self.depth * 2);
    }

    fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn leaf(&mut self, tag: &str, text: &str) {
        self.line(&format!("<{tag}>{}</{tag}>", escape(text)));
    }

    fn open(&mut self, tag_and_attributes: &str) {
        self.line(&format!("<{tag_and_attributes}>"));
        self.depth += 1;
    }

    fn close(&mut self, tag: &str) {
        self.depth -= 1;
        self.line(&format!("</{tag}>"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("plain/path-1.qcow2"), "plain/path-1.qcow2");
    }
}
