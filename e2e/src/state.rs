//! Read-only views of the two durable stores a test checks: the mock plugin's state file (its
//! "cloud": which instances exist) and the daemon's state directory (one record per sandbox).
//! Only the fields the tests assert on are decoded; both formats ignore the rest.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// One instance in the mock's state file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MockInstance {
    /// `mock-<hex>`.
    pub instance_id: String,
    /// The instance name the daemon asked for.
    pub name: String,
    /// `pending` while its create runs, then `running`.
    pub state: String,
    /// The sandbox it was created for.
    pub sandbox_id: String,
    /// The createInstance operation that made it.
    pub operation_id: String,
    /// Tags from the create request (`caa/sandbox-id`, `caa/node`, ...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct MockStateDoc {
    instances: Vec<MockInstance>,
}

/// The instances in the mock's state file; none when the file does not exist yet.
pub fn mock_instances(file: &Path) -> Vec<MockInstance> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading the mock state file {}: {e}", file.display()),
    };
    let doc: MockStateDoc = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing the mock state file {}: {e}\n{text}", file.display()));
    doc.instances
}

/// One sandbox record in the daemon's state directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SandboxRecordView {
    /// The sandbox.
    pub sandbox_id: String,
    /// `creating`, `running` or `stopping`.
    pub phase: String,
    /// The instance, once known.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The create's operation id.
    pub operation_id: String,
}

impl SandboxRecordView {
    /// Whether the record is in phase `running`.
    pub fn is_running(&self) -> bool {
        self.phase == "running"
    }
}

/// Every file in the state directory (records, temp files, quarantined records), by name.
pub fn state_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> =
        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The sandbox records (`*.json`) in the state directory.
pub fn records(dir: &Path) -> Vec<SandboxRecordView> {
    state_files(dir)
        .into_iter()
        .filter(|name| name.ends_with(".json"))
        .filter_map(|name| {
            let path = dir.join(&name);
            // A record removed between the listing and the read is simply gone.
            let text = std::fs::read_to_string(&path).ok()?;
            Some(serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("parsing the sandbox record {}: {e}\n{text}", path.display())
            }))
        })
        .collect()
}
