//! Storage volume XML: reading the base image volume (path, format, capacity) and writing the
//! two per-VM volumes, the qcow2 root overlay backed by the base image and the raw volume that
//! receives the cidata ISO (caa-facts §8.4 steps 6–7).

use roxmltree::{Document, Node};

use crate::domain_xml::escape;
use crate::error::Error;

const GIB: u64 = 1024 * 1024 * 1024;

/// The base image volume, as its XML describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseVolume {
    /// Path on the libvirt host.
    pub path: String,
    /// Image format (`qcow2`, `raw`, ...).
    pub format: String,
    /// Virtual size, bytes.
    pub capacity: u64,
}

impl BaseVolume {
    /// Reads a volume XML (`virStorageVolGetXMLDesc`).
    pub fn from_xml(xml: &str) -> Result<BaseVolume, Error> {
        let doc = Document::parse(xml).map_err(|e| Error::xml("volume", e))?;
        let root = doc.root_element();
        let target = child(root, "target").ok_or_else(|| Error::xml("volume", "no <target>"))?;
        let path = child(target, "path")
            .and_then(|p| p.text())
            .map(|p| p.trim().to_owned())
            .ok_or_else(|| Error::xml("volume", "no <target><path>"))?;
        let format =
            child(target, "format").and_then(|f| f.attribute("type")).unwrap_or("raw").to_owned();
        let capacity = child(root, "capacity")
            .map(|c| bytes(c.text().unwrap_or_default(), c.attribute("unit").unwrap_or("bytes")))
            .transpose()?
            .unwrap_or(0);
        Ok(BaseVolume { path, format, capacity })
    }
}

fn child<'a, 'i>(parent: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    parent.children().find(|n| n.has_tag_name(tag))
}

/// A capacity with libvirt's unit names.
fn bytes(value: &str, unit: &str) -> Result<u64, Error> {
    let value: u64 = value.trim().parse().map_err(|_| Error::xml("volume", "bad <capacity>"))?;
    let scale: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1_000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => return Err(Error::xml("volume", format!("unknown capacity unit {unit:?}"))),
    };
    value.checked_mul(scale).ok_or_else(|| Error::xml("volume", "capacity overflows"))
}

/// Root disk size: the configured GiB, but never smaller than the base image.
pub fn root_capacity(root_disk_gib: u64, base: &BaseVolume) -> u64 {
    root_disk_gib.saturating_mul(GIB).max(base.capacity)
}

/// The root volume's name for a VM.
pub fn root_name(vm: &str) -> String {
    format!("{vm}-root.qcow2")
}

/// The cidata volume's name for a VM.
pub fn cidata_name(vm: &str) -> String {
    format!("{vm}-cloudinit.iso")
}

/// XML of the qcow2 overlay `name` of `capacity` bytes on top of `base`.
pub fn overlay_xml(name: &str, capacity: u64, base: &BaseVolume) -> String {
    format!(
        "<volume type='file'>\n  <name>{}</name>\n  <capacity unit='bytes'>{capacity}</capacity>\n  \
         <target>\n    <format type='qcow2'/>\n    <permissions><mode>0644</mode></permissions>\n  \
         </target>\n  <backingStore>\n    <path>{}</path>\n    <format type='{}'/>\n  \
         </backingStore>\n</volume>\n",
        escape(name),
        escape(&base.path),
        escape(&base.format)
    )
}

/// XML of the raw volume `name` that holds an ISO of `size` bytes.
pub fn raw_xml(name: &str, size: u64) -> String {
    format!(
        "<volume type='file'>\n  <name>{}</name>\n  <capacity unit='bytes'>{size}</capacity>\n  \
         <target>\n    <format type='raw'/>\n    <permissions><mode>0644</mode></permissions>\n  \
         </target>\n</volume>\n",
        escape(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "<volume type='file'><name>podvm-base.qcow2</name>\
        <key>/images/podvm-base.qcow2</key><capacity unit='G'>4</capacity>\
        <target><path>/images/podvm-base.qcow2</path><format type='qcow2'/></target></volume>";

    #[test]
    fn base_volume_facts_are_read() {
        let base = BaseVolume::from_xml(BASE).unwrap();
        assert_eq!(base.path, "/images/podvm-base.qcow2");
        assert_eq!(base.format, "qcow2");
        assert_eq!(base.capacity, 4 * GIB);
        let raw = BaseVolume::from_xml(
            "<volume><capacity>512</capacity><target><path>/x.img</path></target></volume>",
        )
        .unwrap();
        assert_eq!((raw.format.as_str(), raw.capacity), ("raw", 512));
        assert!(BaseVolume::from_xml("<volume><target/></volume>").is_err());
        assert!(
            BaseVolume::from_xml("<volume><capacity unit='parsec'>1</capacity></volume>").is_err()
        );
    }

    #[test]
    fn the_root_disk_is_never_smaller_than_the_image() {
        let base = BaseVolume { path: "/b".into(), format: "qcow2".into(), capacity: 20 * GIB };
        assert_eq!(root_capacity(10, &base), 20 * GIB);
        assert_eq!(root_capacity(30, &base), 30 * GIB);
    }

    #[test]
    fn volume_xml_reads_back() {
        let base = BaseVolume { path: "/b&c".into(), format: "qcow2".into(), capacity: 1 };
        let xml = overlay_xml(&root_name("podvm-x"), 10 * GIB, &base);
        let doc = Document::parse(&xml).unwrap();
        let text =
            |tag: &str| doc.descendants().find(|n| n.has_tag_name(tag)).and_then(|n| n.text());
        assert_eq!(text("name"), Some("podvm-x-root.qcow2"));
        assert_eq!(text("path"), Some("/b&c"));
        assert_eq!(text("capacity"), Some("10737418240"));
        let raw = raw_xml(&cidata_name("podvm-x"), 6144);
        assert!(
            raw.contains("<name>podvm-x-cloudinit.iso</name>") && raw.contains(">6144<"),
            "{raw}"
        );
    }
}
