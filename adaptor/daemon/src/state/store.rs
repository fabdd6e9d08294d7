//! [`StateStore`]: one file per sandbox, `<dir>/<sandbox id>.json`, written atomically.
//!
//! A write creates a temp file in the same directory with `O_EXCL` (mode 0600), writes, fsyncs,
//! renames over the record and fsyncs the directory, so a crash leaves either the old or the new
//! record, never a torn one. Temp names carry a random per-process token: [`StateStore::list`]
//! deletes temp files of earlier processes (crash leftovers) and leaves this process's own.
//! File names are only ever built from a [`SandboxId`], which cannot hold `/` or `..`.
//!
//! The API is blocking (small files, a few syscalls); async callers use `spawn_blocking`.

use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sandbox_id::SandboxId;
use crate::state::record::{DecodeError, SandboxRecord};

const RECORD_SUFFIX: &str = ".json";
const TEMP_SUFFIX: &str = ".tmp";
/// Suffix given to records that could not be read, so they are kept for inspection but never
/// loaded again.
pub const CORRUPT_SUFFIX: &str = ".corrupt";

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A filesystem call failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The state path exists but is not a directory.
    #[error("state directory {path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A record file could not be decoded.
    #[error("read state record {path}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The file's name and the id inside it disagree.
    #[error("state record {path} holds sandbox {inside}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The id found inside.
        inside: String,
    },
    /// A `.json` file whose name is not a valid sandbox id.
    #[error("state file {path} is not named after a valid sandbox id")]
    BadName {
        /// The file.
        path: PathBuf,
    },
}

/// A record file [`StateStore::list`] could not load.
#[derive(Debug)]
pub struct LoadFailure {
    /// The file as found.
    pub path: PathBuf,
    /// Where it was moved (`<name>.corrupt`), or `None` if moving it failed too.
    pub quarantined: Option<PathBuf>,
    /// Why it could not be loaded.
    pub error: StateError,
}

/// The per-sandbox record directory.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    token: String,
    counter: AtomicU64,
}

impl StateStore {
    /// Opens (creating if needed) the state directory with mode 0700. Missing parents are
    /// created with the default mode; an existing directory that is group/other accessible is
    /// tightened to 0700.
    pub fn open(dir: impl Into<PathBuf>) -> Result<StateStore, StateError> {
        let dir = dir.into();
        let io_err = |op, source| StateError::Io { op, path: dir.clone(), source };
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| io_err("create parent of state directory", e))?;
        }
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => sync_dir(dir.parent().unwrap_or(Path::new(".")))
                .map_err(|e| io_err("sync parent of state directory", e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create state directory", e)),
        }
        let meta = fs::metadata(&dir).map_err(|e| io_err("stat state directory", e))?;
        if !meta.is_dir() {
            return Err(StateError::NotADirectory { path: dir });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_err("restrict state directory to 0700", e))?;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        Ok(StateStore { dir, token, counter: AtomicU64::new(0) })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record's file path.
    pub fn path_of(&self, id: &SandboxId) -> PathBuf {
        self.dir.join(format!("{id}{RECORD_SUFFIX}"))
    }

    /// Writes `record` atomically, replacing any earlier version.
    pub fn put(&self, record: &SandboxRecord) -> Result<(), StateError> {
        let target = self.path_of(&record.sandbox_id);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!(".{}.{}-{n}{TEMP_SUFFIX}", record.sandbox_id, self.token));
        caa_durable::write_private_via(&target, &temp, &record.encode()).map_err(|source| {
            StateError::Io { op: "write state record", path: target.clone(), source }
        })
    }

    /// Reads one record; `Ok(None)` when there is none.
    pub fn get(&self, id: &SandboxId) -> Result<Option<SandboxRecord>, StateError> {
        let path = self.path_of(id);
        match fs::read(&path) {
            Ok(bytes) => load(&path, &bytes, id).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { op: "read state record", path, source }),
        }
    }

    /// Deletes one record; `Ok(false)` when there was none.
    pub fn remove(&self, id: &SandboxId) -> Result<bool, StateError> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(StateError::Io { op: "remove state record", path, source }),
        }
        sync_dir(&self.dir).map_err(|source| StateError::Io {
            op: "sync state directory",
            path: self.dir.clone(),
            source,
        })?;
        Ok(true)
    }

    /// Every record, sorted by file name. A file that cannot be loaded is reported and moved
    /// aside to `<name>.corrupt`; temp files left by an earlier process are deleted. Only an
    /// unreadable directory is an error.
    pub fn list(&self) -> Result<Vec<Result<SandboxRecord, LoadFailure>>, StateError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| StateError::Io {
            op: "list state directory",
            path: self.dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = Vec::new();
        for entry in entries.flatten() {
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let path = self.dir.join(&name);
            if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                if !name.contains(&self.token) {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            let Some(stem) = name.strip_suffix(RECORD_SUFFIX) else { continue };
            let loaded = match SandboxId::new(stem) {
                Err(_) => Err(StateError::BadName { path: path.clone() }),
                Ok(id) => fs::read(&path)
                    .map_err(|source| StateError::Io {
                        op: "read state record",
                        path: path.clone(),
                        source,
                    })
                    .and_then(|bytes| load(&path, &bytes, &id)),
            };
            out.push(loaded.map_err(|error| self.quarantine(path, error)));
        }
        Ok(out)
    }

    fn quarantine(&self, path: PathBuf, error: StateError) -> LoadFailure {
        let mut aside = path.clone().into_os_string();
        aside.push(CORRUPT_SUFFIX);
        let aside = PathBuf::from(aside);
        let moved = fs::rename(&path, &aside).is_ok() && sync_dir(&self.dir).is_ok();
        LoadFailure { path, quarantined: moved.then_some(aside), error }
    }
}

fn load(path: &Path, bytes: &[u8], expected: &SandboxId) -> Result<SandboxRecord, StateError> {
    let record = SandboxRecord::decode(bytes)
        .map_err(|source| StateError::Decode { path: path.to_owned(), source })?;
    if *expected != record.sandbox_id {
        return Err(StateError::Mismatch {
            path: path.to_owned(),
            inside: record.sandbox_id.to_string(),
        });
    }
    Ok(record)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
