//! What the libvirt host offers, read once from its capabilities XML: the CPU architecture that
//! picks the domain layout, and for s390x and aarch64 the canonical machine type and the
//! emulator (caa-facts §8.4).

use roxmltree::{Document, Node};

use crate::error::Error;

/// The host architectures the plugin has a domain layout for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86_64 (libvirt's test driver reports `i686`, treated the same).
    X86_64,
    /// aarch64.
    Aarch64,
    /// s390x.
    S390x,
}

impl Arch {
    /// The libvirt/QEMU name (`<type arch=…>`).
    pub fn libvirt_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::S390x => "s390x",
        }
    }

    /// The protocol's name (`spec.arch`, `capabilities.instance.arch`).
    pub fn protocol_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::S390x => "s390x",
        }
    }

    /// All layouts, in protocol order.
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Aarch64, Arch::S390x];

    fn from_libvirt(name: &str) -> Option<Arch> {
        match name {
            "x86_64" | "i686" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            "s390x" => Some(Arch::S390x),
            _ => None,
        }
    }

    /// The machine type the layout asks for (none on x86: libvirt's default).
    fn machine(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => None,
            Arch::Aarch64 => Some("virt"),
            Arch::S390x => Some("s390-ccw-virtio"),
        }
    }
}

/// The host facts the domain XML depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Host CPU architecture.
    pub arch: Arch,
    /// Canonical machine type (aarch64: for `virt`; s390x: for `s390-ccw-virtio`).
    pub machine: Option<String>,
    /// Emulator path for the architecture's hvm guests, when listed.
    pub emulator: Option<String>,
    /// Domain types the host offers for that architecture (`kvm`, `qemu`, `test`).
    pub domain_types: Vec<String>,
}

impl HostInfo {
    /// Reads the capabilities XML (`virConnectGetCapabilities`).
    pub fn from_capabilities(xml: &str) -> Result<HostInfo, Error> {
        let doc = Document::parse(xml).map_err(|e| Error::xml("capabilities", e))?;
        let root = doc.root_element();
        let arch_name = child(root, "host")
            .and_then(|host| child(host, "cpu"))
            .and_then(|cpu| child(cpu, "arch"))
            .and_then(|arch| arch.text())
            .map(str::trim)
            .ok_or_else(|| Error::xml("capabilities", "no host/cpu/arch"))?;
        let arch = Arch::from_libvirt(arch_name).ok_or_else(|| {
            Error::Unsupported(format!(
                "libvirt host architecture {arch_name} is not supported (x86_64, aarch64, s390x)"
            ))
        })?;
        // The hvm guest of the host's architecture (the test driver lists i686 for itself).
        let guest_arch = root
            .children()
            .filter(|n| n.has_tag_name("guest"))
            .filter(|g| child(*g, "os_type").and_then(|t| t.text()) == Some("hvm"))
            .filter_map(|g| child(g, "arch"))
            .find(|a| a.attribute("name") == Some(arch_name));
        let emulator = guest_arch
            .and_then(|a| child(a, "emulator"))
            .and_then(|e| e.text())
            .map(|e| e.trim().to_owned());
        let machine = arch.machine().map(|wanted| {
            guest_arch
                .into_iter()
                .flat_map(|a| a.descendants())
                .filter(|m| m.has_tag_name("machine") && m.text() == Some(wanted))
                .find_map(|m| m.attribute("canonical"))
                .unwrap_or(wanted)
                .to_owned()
        });
        let domain_types = guest_arch
            .into_iter()
            .flat_map(|a| a.children())
            .filter(|d| d.has_tag_name("domain"))
            .filter_map(|d| d.attribute("type"))
            .map(str::to_owned)
            .collect();
        Ok(HostInfo { arch, machine, emulator, domain_types })
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S390X: &str = r#"<capabilities>
      <host><cpu><arch>s390x</arch></cpu></host>
      <guest><os_type>hvm</os_type>
        <arch name='s390x'><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-s390x</emulator>
          <machine maxCpus='248'>s390-ccw-virtio-rhel9.2.0</machine>
          <machine canonical='s390-ccw-virtio-rhel9.2.0' maxCpus='248'>s390-ccw-virtio</machine>
          <domain type='qemu'/><domain type='kvm'/></arch></guest>
    </capabilities>"#;

    #[test]
    fn s390x_gets_the_canonical_machine_and_emulator() {
        let host = HostInfo::from_capabilities(S390X).unwrap();
        assert_eq!(host.arch, Arch::S390x);
        assert_eq!(host.machine.as_deref(), Some("s390-ccw-virtio-rhel9.2.0"));
        assert_eq!(host.emulator.as_deref(), Some("/usr/bin/qemu-system-s390x"));
        assert_eq!(host.domain_types, ["qemu", "kvm"]);
    }

    #[test]
    fn aarch64_without_a_canonical_name_keeps_virt() {
        let xml = "<capabilities><host><cpu><arch>aarch64</arch></cpu></host>\
                   <guest><os_type>hvm</os_type><arch name='aarch64'><machine>virt</machine>\
                   </arch></guest></capabilities>";
        let host = HostInfo::from_capabilities(xml).unwrap();
        assert_eq!((host.arch, host.machine.as_deref()), (Arch::Aarch64, Some("virt")));
        assert_eq!(host.emulator, None);
    }

    #[test]
    fn the_test_drivers_i686_is_the_x86_layout() {
        let xml = "<capabilities><host><cpu><arch>i686</arch></cpu></host>\
                   <guest><os_type>hvm</os_type><arch name='i686'>\
                   <emulator>/usr/bin/test-hv</emulator><domain type='test'/></arch></guest>\
                   </capabilities>";
        let host = HostInfo::from_capabilities(xml).unwrap();
        assert_eq!((host.arch, host.machine), (Arch::X86_64, None));
        assert_eq!(host.domain_types, ["test"]);
    }

    #[test]
    fn unknown_architectures_and_broken_xml_are_errors() {
        let ppc = "<capabilities><host><cpu><arch>ppc64le</arch></cpu></host></capabilities>";
        assert!(matches!(HostInfo::from_capabilities(ppc), Err(Error::Unsupported(_))));
        assert!(matches!(HostInfo::from_capabilities("<capabilities"), Err(Error::Xml { .. })));
        assert!(matches!(HostInfo::from_capabilities("<capabilities/>"), Err(Error::Xml { .. })));
    }
}
