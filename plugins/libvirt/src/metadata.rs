//! What the plugin keeps inside each domain it creates, in its own XML namespace under
//! `<metadata>`: the request tags (how `listInstances` and idempotency find a VM after a
//! restart), a digest of the create request (to tell a retry from a conflicting reuse of an
//! operation id) and the volumes it made (what `deleteInstance` removes). Also the reading of
//! a domain's XML back into a [`DomainRecord`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use caa_plugin_proto::tags;
use roxmltree::{Document, Node};

use crate::domain_xml::escape;
use crate::error::Error;

/// The namespace URI of the plugin's metadata element.
pub const NAMESPACE: &str = "urn:caa:libvirt:instance:1";

/// The prefix the element is written with (libvirt keeps it).
pub const PREFIX: &str = "caa";

/// The plugin's record of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceMeta {
    /// SHA-256 (hex) of the create request without its deadline.
    pub request_digest: String,
    /// Paths of the volumes created for the instance (root overlay, cidata ISO).
    pub volumes: Vec<String>,
    /// The request's tags.
    pub tags: BTreeMap<String, String>,
}

impl InstanceMeta {
    /// The `caa/sandbox-id` tag.
    pub fn sandbox_id(&self) -> Option<&str> {
        self.tags.get(tags::SANDBOX_ID).map(String::as_str)
    }

    /// The `caa/operation-id` tag.
    pub fn operation_id(&self) -> Option<&str> {
        self.tags.get(tags::OPERATION_ID).map(String::as_str)
    }

    /// Whether this instance carries every tag in `wanted` (an empty filter matches every
    /// instance the host created, i.e. every one with a sandbox id).
    pub fn matches(&self, wanted: &BTreeMap<String, String>) -> bool {
        self.sandbox_id().is_some() && wanted.iter().all(|(k, v)| self.tags.get(k) == Some(v))
    }

    /// The `<caa:instance>` element, indented by `indent` spaces.
    pub fn to_xml(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let mut out = String::new();
        let _ = writeln!(out, "{pad}<{PREFIX}:instance xmlns:{PREFIX}=\"{NAMESPACE}\">");
        let _ =
            writeln!(out, "{pad}  <{PREFIX}:request digest=\"{}\"/>", escape(&self.request_digest));
        for volume in &self.volumes {
            let _ = writeln!(out, "{pad}  <{PREFIX}:volume>{}</{PREFIX}:volume>", escape(volume));
        }
        for (key, value) in &self.tags {
            let _ = writeln!(
                out,
                "{pad}  <{PREFIX}:tag key=\"{}\">{}</{PREFIX}:tag>",
                escape(key),
                escape(value)
            );
        }
        let _ = writeln!(out, "{pad}</{PREFIX}:instance>");
        out
    }

    fn from_node(node: Node<'_, '_>) -> InstanceMeta {
        let mut meta = InstanceMeta::default();
        for child in node.children().filter(|c| c.tag_name().namespace() == Some(NAMESPACE)) {
            match child.tag_name().name() {
                "request" => {
                    meta.request_digest = child.attribute("digest").unwrap_or_default().to_owned();
                }
                "volume" => meta.volumes.extend(child.text().map(str::to_owned)),
                "tag" => {
                    if let Some(key) = child.attribute("key") {
                        meta.tags
                            .insert(key.to_owned(), child.text().unwrap_or_default().to_owned());
                    }
                }
                _ => {}
            }
        }
        meta
    }
}

/// A domain as read back from its XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// Domain name.
    pub name: String,
    /// Domain UUID (the instance id).
    pub uuid: String,
    /// The plugin's metadata; `None` for domains the plugin did not create.
    pub meta: Option<InstanceMeta>,
    /// Source files of the disks and cdroms.
    pub disk_files: Vec<String>,
}

impl DomainRecord {
    /// Reads a domain XML (`virDomainGetXMLDesc`).
    pub fn from_xml(xml: &str) -> Result<DomainRecord, Error> {
        let doc = Document::parse(xml).map_err(|e| Error::xml("domain", e))?;
        let root = doc.root_element();
        let text = |tag: &str| {
            root.children()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
        };
        let name = text("name").ok_or_else(|| Error::xml("domain", "no <name>"))?;
        let uuid = text("uuid").unwrap_or_default();
        let meta = root
            .children()
            .filter(|n| n.has_tag_name("metadata"))
            .flat_map(|m| m.children())
            .find(|n| {
                n.tag_name().namespace() == Some(NAMESPACE) && n.tag_name().name() == "instance"
            })
            .map(InstanceMeta::from_node);
        let disk_files = root
            .descendants()
            .filter(|n| n.has_tag_name("disk") && n.attribute("type") == Some("file"))
            .filter_map(|disk| disk.children().find(|n| n.has_tag_name("source")))
            .filter_map(|source| source.attribute("file"))
            .map(str::to_owned)
            .collect();
        Ok(DomainRecord { name, uuid, meta, disk_files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> InstanceMeta {
        InstanceMeta {
            request_digest: "ab12".to_owned(),
            volumes: vec!["/pool/x-root.qcow2".to_owned(), "/pool/x-cloudinit.iso".to_owned()],
            tags: BTreeMap::from([
                (tags::SANDBOX_ID.to_owned(), "sb1".to_owned()),
                (tags::OPERATION_ID.to_owned(), "op1".to_owned()),
                ("odd<&>\"key".to_owned(), "v'al<ue>".to_owned()),
            ]),
        }
    }

    #[test]
    fn metadata_survives_a_round_trip_through_a_domain_xml() {
        let xml = format!(
            "<domain type='kvm'><name>x</name><uuid>u-1</uuid><metadata>\n<other:thing \
             xmlns:other='urn:else'/>\n{}</metadata><devices>\
             <disk type='file' device='disk'><source file='/pool/x-root.qcow2'/></disk>\
             <disk type='file' device='cdrom'><source file='/pool/x-cloudinit.iso'/></disk>\
             <disk type='block' device='disk'><source dev='/dev/sdz'/></disk>\
             </devices></domain>",
            meta().to_xml(2)
        );
        let record = DomainRecord::from_xml(&xml).unwrap();
        assert_eq!((record.name.as_str(), record.uuid.as_str()), ("x", "u-1"));
        assert_eq!(record.meta, Some(meta()));
        assert_eq!(record.disk_files, ["/pool/x-root.qcow2", "/pool/x-cloudinit.iso"]);
    }

    #[test]
    fn domains_without_our_element_have_no_meta() {
        let record = DomainRecord::from_xml("<domain><name>y</name></domain>").unwrap();
        assert_eq!((record.meta, record.disk_files.len()), (None, 0));
        assert!(DomainRecord::from_xml("<domain/>").is_err());
    }

    #[test]
    fn tag_filters_need_every_tag_and_a_sandbox_id() {
        let m = meta();
        assert!(m.matches(&BTreeMap::new()));
        assert!(m.matches(&BTreeMap::from([(tags::SANDBOX_ID.to_owned(), "sb1".to_owned())])));
        assert!(!m.matches(&BTreeMap::from([(tags::SANDBOX_ID.to_owned(), "sb2".to_owned())])));
        assert!(!m.matches(&BTreeMap::from([("caa/node".to_owned(), "n".to_owned())])));
        assert!(!InstanceMeta::default().matches(&BTreeMap::new()));
        assert_eq!((m.sandbox_id(), m.operation_id()), (Some("sb1"), Some("op1")));
    }
}
