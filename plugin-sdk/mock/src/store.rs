//! The mock's "cloud": a table of instances behind a mutex, optionally mirrored to a JSON state
//! file (rewritten atomically: temp file in the same directory, fsync, rename) so that a restarted
//! mock still knows the instances a crashed one created. The table is also the idempotency record:
//! each instance remembers the operation that created it and a digest of that request.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// Version of the state file layout.
const SCHEMA_VERSION: u32 = 1;

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// `mock-` plus 12 hex digits.
    pub instance_id: String,
    /// `podvm-<pod>-<sandbox prefix>`.
    pub name: String,
    /// `pending` until the create finishes, then `running`.
    pub state: String,
    /// Addresses.
    pub ips: Vec<String>,
    /// Tags from the create request.
    pub tags: BTreeMap<String, String>,
    /// The sandbox it was created for.
    pub sandbox_id: String,
    /// The createInstance operation that created it.
    pub operation_id: String,
    /// Digest of that request (without its deadline), to tell a replay from a conflicting reuse.
    pub request_digest: String,
    /// Size of the user data it was created with.
    pub user_data_bytes: u64,
    /// The selected instance type, when a catalogue is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state file could not be read.
    #[error("cannot read state file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not a valid state document.
    #[error("state file {path} is not valid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The state file could not be written.
    #[error("cannot write state file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateDoc {
    schema_version: u32,
    instances: Vec<Instance>,
}

/// What [`Store::begin_create`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// The new instance was inserted.
    Inserted,
    /// The same operation already created this instance with the same request.
    Replay(Instance),
    /// The operation already created an instance from a different request.
    Conflict {
        /// The instance the first request created.
        instance_id: String,
    },
    /// The quota is used up.
    QuotaExceeded {
        /// The quota.
        max: usize,
    },
}

/// The instance table.
#[derive(Debug)]
pub struct Store {
    instances: Mutex<BTreeMap<String, Instance>>,
    state_file: Option<PathBuf>,
}

impl Store {
    /// An empty in-memory store.
    pub fn in_memory() -> Store {
        Store { instances: Mutex::default(), state_file: None }
    }

    /// A store mirrored to `path`, starting from its contents (a missing file is an empty store).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let instances = match std::fs::read(path) {
            Ok(bytes) => {
                let doc: StateDoc = serde_json::from_slice(&bytes)
                    .map_err(|source| StoreError::Parse { path: path.to_owned(), source })?;
                doc.instances.into_iter().map(|i| (i.instance_id.clone(), i)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StoreError::Read { path: path.to_owned(), source }),
        };
        Ok(Store { instances: Mutex::new(instances), state_file: Some(path.to_owned()) })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Instance>> {
        // A panicking handler (the `panic:` fault) never holds this lock, but stay usable anyway.
        self.instances.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Atomically: replays or rejects a reused operation id, enforces the quota, or inserts
    /// `new` and persists it.
    pub fn begin_create(&self, new: Instance, max: Option<usize>) -> Result<Begin, StoreError> {
        let mut table = self.lock();
        if let Some(existing) = table.values().find(|i| i.operation_id == new.operation_id) {
            return Ok(if existing.request_digest == new.request_digest {
                Begin::Replay(existing.clone())
            } else {
                Begin::Conflict { instance_id: existing.instance_id.clone() }
            });
        }
        if let Some(max) = max.filter(|&max| table.len() >= max) {
            return Ok(Begin::QuotaExceeded { max });
        }
        table.insert(new.instance_id.clone(), new);
        self.persist(&table)?;
        Ok(Begin::Inserted)
    }

    /// Marks an instance running and returns it (`None` if it is gone).
    pub fn mark_running(&self, instance_id: &str) -> Result<Option<Instance>, StoreError> {
        let mut table = self.lock();
        let Some(instance) = table.get_mut(instance_id) else { return Ok(None) };
        instance.state = "running".to_owned();
        let instance = instance.clone();
        self.persist(&table)?;
        Ok(Some(instance))
    }

    /// Removes an instance; `false` if it was not there.
    pub fn remove(&self, instance_id: &str) -> Result<bool, StoreError> {
        let mut table = self.lock();
        if table.remove(instance_id).is_none() {
            return Ok(false);
        }
        self.persist(&table)?;
        Ok(true)
    }

    /// Instances carrying all of `tags`.
    pub fn list(&self, tags: &BTreeMap<String, String>) -> Vec<Instance> {
        self.lock()
            .values()
            .filter(|i| tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)))
            .cloned()
            .collect()
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no instances.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rewrites the state file from `table`. Called with the lock held, so writes never race.
    fn persist(&self, table: &BTreeMap<String, Instance>) -> Result<(), StoreError> {
        let Some(path) = &self.state_file else { return Ok(()) };
        let write_err = |source| StoreError::Write { path: path.clone(), source };
        let doc = StateDoc {
            schema_version: SCHEMA_VERSION,
            instances: table.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| write_err(e.into()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
        tmp.write_all(&bytes).map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(path).map_err(|e| write_err(e.error))?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, op: &str, digest: &str, tags: &[(&str, &str)]) -> Instance {
        Instance {
            instance_id: id.to_owned(),
            name: format!("podvm-{id}"),
            state: "pending".to_owned(),
            ips: vec!["127.0.0.1".to_owned()],
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            sandbox_id: "sb".to_owned(),
            operation_id: op.to_owned(),
            request_digest: digest.to_owned(),
            user_data_bytes: 0,
            instance_type: None,
        }
    }

    #[test]
    fn operation_ids_replay_or_conflict() {
        let store = Store::in_memory();
        assert_eq!(
            store.begin_create(instance("i1", "op1", "d1", &[]), None).unwrap(),
            Begin::Inserted
        );
        let again = store.begin_create(instance("i2", "op1", "d1", &[]), None).unwrap();
        assert_eq!(again, Begin::Replay(instance("i1", "op1", "d1", &[])));
        let other = store.begin_create(instance("i3", "op1", "d2", &[]), None).unwrap();
        assert_eq!(other, Begin::Conflict { instance_id: "i1".to_owned() });
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn quota_and_removal() {
        let store = Store::in_memory();
        store.begin_create(instance("i1", "op1", "d", &[]), Some(1)).unwrap();
        assert_eq!(
            store.begin_create(instance("i2", "op2", "d", &[]), Some(1)).unwrap(),
            Begin::QuotaExceeded { max: 1 }
        );
        assert!(store.remove("i1").unwrap());
        assert!(!store.remove("i1").unwrap());
        assert!(store.is_empty());
    }

    #[test]
    fn list_filters_by_all_tags() {
        let store = Store::in_memory();
        store.begin_create(instance("i1", "op1", "d", &[("a", "1"), ("b", "2")]), None).unwrap();
        store.begin_create(instance("i2", "op2", "d", &[("a", "1")]), None).unwrap();
        let ids = |tags: &[(&str, &str)]| {
            let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            store.list(&tags).into_iter().map(|i| i.instance_id).collect::<Vec<_>>()
        };
        assert_eq!(ids(&[]), ["i1", "i2"]);
        assert_eq!(ids(&[("a", "1")]), ["i1", "i2"]);
        assert_eq!(ids(&[("a", "1"), ("b", "2")]), ["i1"]);
        assert!(ids(&[("a", "2")]).is_empty());
    }

    #[test]
    fn state_file_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path).unwrap();
        store.begin_create(instance("i1", "op1", "d", &[]), None).unwrap();
        store.mark_running("i1").unwrap();
        drop(store);
        let reopened = Store::open(&path).unwrap();
        let all = reopened.list(&BTreeMap::new());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, "running");
        // Only the state file remains: the temp files were renamed over it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Read { .. })));
    }
}
