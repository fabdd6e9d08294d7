//! Fixtures: a private libvirt test-driver host per test (a node XML file in a temp dir, opened
//! as `test:///<file>`, so every connection gets its own pool, network and domains), the
//! plugin's config for it, and create-request builders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caa_plugin_proto::{CreateInstanceParams, InstanceSpec, tags};
use caa_plugin_sdk::{Config, Provider};
use caa_provider_libvirt::LibvirtProvider;
use caa_provider_libvirt::config::schema;
use serde_json::{Value, json};

/// The plugin binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_caa-provider-libvirt");

/// The base image volume the node file declares.
pub(crate) const BASE: &str = "podvm-base.qcow2";

/// A test-driver host: pool `default` (with the base image), NAT network `default` with DHCP.
pub(crate) struct TestHost {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl TestHost {
    /// A host without domains.
    pub(crate) fn new() -> TestHost {
        TestHost::with_domains("")
    }

    /// A host that also holds the given `<domain>` elements.
    pub(crate) fn with_domains(domains: &str) -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let pool_dir = dir.path().join("pool");
        let node = format!(
            "<node>
  {domains}
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <forward mode='nat'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default</name>
    <capacity unit='GiB'>100</capacity>
    <allocation>0</allocation>
    <available unit='GiB'>100</available>
    <target><path>{pool}</path></target>
    <volume type='file'>
      <name>{BASE}</name>
      <capacity unit='GiB'>4</capacity>
      <target><path>{pool}/{BASE}</path><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
",
            pool = pool_dir.display()
        );
        let file = dir.path().join("node.xml");
        std::fs::write(&file, node).unwrap();
        TestHost { dir, file }
    }

    /// `test:///<file>`.
    pub(crate) fn uri(&self) -> String {
        format!("test://{}", self.file.display())
    }

    /// The pool's directory (nothing is written there by the test driver).
    pub(crate) fn pool_dir(&self) -> PathBuf {
        self.dir.path().join("pool")
    }

    /// The plugin config for this host: domain type `test`, BIOS, plus `extra`.
    pub(crate) fn config(&self, extra: &[(&str, Value)]) -> Value {
        let mut config = serde_json::Map::from_iter([
            ("uri".to_owned(), json!(self.uri())),
            ("domainType".to_owned(), json!("test")),
            ("firmware".to_owned(), json!("")),
        ]);
        config.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        Value::Object(config)
    }

    /// A provider for this host, initialised like the SDK does.
    pub(crate) async fn provider(&self, extra: &[(&str, Value)]) -> LibvirtProvider {
        let Value::Object(map) = self.config(extra) else { unreachable!() };
        let given: BTreeMap<String, Value> = map.into_iter().collect();
        let config = Config::resolve(&schema(), &given, &|_| None).unwrap();
        LibvirtProvider::init(config).await.unwrap()
    }
}

/// Whether `path` is below `dir`.
pub(crate) fn under(path: &str, dir: &Path) -> bool {
    Path::new(path).starts_with(dir)
}

/// A create request for pod `pod` of sandbox `sandbox`, tagged like the host does.
pub(crate) fn request(pod: &str, sandbox: &str, operation: &str) -> CreateInstanceParams {
    CreateInstanceParams {
        operation_id: operation.to_owned(),
        deadline_ms: 60_000,
        pod_name: pod.to_owned(),
        pod_namespace: "ns".to_owned(),
        sandbox_id: sandbox.to_owned(),
        user_data: "#cloud-config\nwrite_files: []\n".to_owned(),
        user_data_format: Some("cloud-config".to_owned()),
        spec: InstanceSpec::default(),
        tags: BTreeMap::from([
            (tags::SANDBOX_ID.to_owned(), sandbox.to_owned()),
            (tags::OPERATION_ID.to_owned(), operation.to_owned()),
            (tags::POD.to_owned(), format!("ns/{pod}")),
            (tags::NODE.to_owned(), "worker-1".to_owned()),
        ]),
    }
}
