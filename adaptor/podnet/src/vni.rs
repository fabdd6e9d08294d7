//! VXLAN ids that survive adaptor restarts. Upstream counts from `vxlan-min-id` again after a
//! restart and collides with tunnels still alive; here every allocation is recorded in a small
//! file (written atomically, mode 0600) and a VNI is reused only after it is released.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::PodNetError;

/// Upstream's default `vxlan-min-id`.
pub const DEFAULT_VXLAN_MIN_ID: u32 = 555_000;
/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// A VNI handed out by [`VniAllocator`], with apf.json's `index` (`id - vxlan_min_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vni {
    /// The VXLAN network identifier (`vxlan-id`).
    pub id: u32,
    /// `index` in apf.json.
    pub index: u32,
}

/// Allocates the lowest free VNI at or above a minimum, durably. One allocator per state file;
/// the file is not locked against other processes (one adaptor per node).
#[derive(Debug)]
pub struct VniAllocator {
    path: PathBuf,
    min: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct State {
    version: u32,
    allocations: Vec<Allocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Allocation {
    vni: u32,
    owner: String,
}

const STATE_VERSION: u32 = 1;

impl VniAllocator {
    /// Opens (or starts) the state at `path`. `min` is the configured `vxlan-min-id`, 1 to
    /// 2^24-1; allocations below it that the file holds stay allocated.
    pub fn open(path: impl Into<PathBuf>, min: u32) -> Result<Self, PodNetError> {
        let path = path.into();
        if min == 0 || min > MAX_VNI {
            return Err(PodNetError::InvalidConfig {
                field: "vxlan-min-id",
                value: min.to_string(),
            });
        }
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes)
                .map_err(|source| PodNetError::VniStateCorrupt { path: path.clone(), source })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(source) => return Err(PodNetError::VniState { path, source }),
        };
        Ok(VniAllocator { path, min, state: Mutex::new(state) })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The VNI for `owner` (a sandbox id): the one it already holds, else the lowest free one
    /// at or above the minimum. Recorded on disk before it is returned.
    pub fn allocate(&self, owner: &str) -> Result<Vni, PodNetError> {
        let mut state = self.lock();
        if let Some(a) = state.allocations.iter().find(|a| a.owner == owner) {
            return Ok(self.vni(a.vni));
        }
        let mut used: Vec<u32> = state.allocations.iter().map(|a| a.vni).collect();
        used.sort_unstable();
        let mut candidate = self.min;
        for v in used.into_iter().filter(|v| *v >= self.min) {
            if v == candidate {
                candidate += 1;
            } else if v > candidate {
                break;
            }
        }
        if candidate > MAX_VNI {
            return Err(PodNetError::VniExhausted { min: self.min });
        }
        let mut next = state.clone();
        next.allocations.push(Allocation { vni: candidate, owner: owner.to_owned() });
        self.persist(&next)?;
        *state = next;
        Ok(self.vni(candidate))
    }

    /// Releases `vni`; false when it was not allocated.
    pub fn release(&self, vni: u32) -> Result<bool, PodNetError> {
        self.release_where(|a| a.vni == vni).map(|r| !r.is_empty())
    }

    /// Releases whatever `owner` holds.
    pub fn release_owner(&self, owner: &str) -> Result<Option<u32>, PodNetError> {
        self.release_where(|a| a.owner == owner).map(|r| r.first().copied())
    }

    /// Releases every allocation whose owner `keep` rejects (reconciliation after a restart);
    /// returns the released VNIs.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) -> Result<Vec<u32>, PodNetError> {
        self.release_where(|a| !keep(&a.owner))
    }

    /// Current allocations as `(vni, owner)`, lowest VNI first.
    pub fn allocations(&self) -> Vec<(u32, String)> {
        let mut out: Vec<_> =
            self.lock().allocations.iter().map(|a| (a.vni, a.owner.clone())).collect();
        out.sort();
        out
    }

    fn vni(&self, id: u32) -> Vni {
        Vni { id, index: id.saturating_sub(self.min) }
    }

    fn release_where(
        &self,
        mut pred: impl FnMut(&Allocation) -> bool,
    ) -> Result<Vec<u32>, PodNetError> {
        let mut state = self.lock();
        let released: Vec<u32> =
            state.allocations.iter().filter(|a| pred(a)).map(|a| a.vni).collect();
        if released.is_empty() {
            return Ok(released);
        }
        let mut next = state.clone();
        next.allocations.retain(|a| !released.contains(&a.vni));
        self.persist(&next)?;
        *state = next;
        Ok(released)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated: it is replaced whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `state` to a temporary file (0600), syncs it and renames it over the state file.
    fn persist(&self, state: &State) -> Result<(), PodNetError> {
        let err = |source| PodNetError::VniState { path: self.path.clone(), source };
        let state = State { version: STATE_VERSION, allocations: state.allocations.clone() };
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| err(io::Error::other(e)))?;
        caa_durable::write_private(&self.path, &bytes).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn lowest_free_from_min_and_same_owner_gets_same_vni() {
        let dir = tempfile::tempdir().unwrap();
        let a = VniAllocator::open(dir.path().join("vni.json"), 555_000).unwrap();
        assert_eq!(a.allocate("a").unwrap(), Vni { id: 555_000, index: 0 });
        assert_eq!(a.allocate("b").unwrap(), Vni { id: 555_001, index: 1 });
        assert_eq!(a.allocate("a").unwrap().id, 555_000);
        assert!(a.release(555_000).unwrap());
        assert!(!a.release(555_000).unwrap());
        assert_eq!(a.allocate("c").unwrap().id, 555_000);
        assert_eq!(a.allocate("d").unwrap().id, 555_002);
        assert_eq!(a.release_owner("b").unwrap(), Some(555_001));
        assert_eq!(a.allocate("e").unwrap().id, 555_001);
    }

    #[test]
    fn restart_never_reuses_a_live_vni() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vni.json");
        {
            let a = VniAllocator::open(&path, 555_000).unwrap();
            a.allocate("live-1").unwrap();
            a.allocate("gone").unwrap();
            a.allocate("live-2").unwrap();
            a.release_owner("gone").unwrap();
        }
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let a = VniAllocator::open(&path, 555_000).unwrap();
        let live: Vec<u32> = a.allocations().into_iter().map(|(v, _)| v).collect();
        assert_eq!(live, vec![555_000, 555_002]);
        for owner in ["n1", "n2", "n3"] {
            let v = a.allocate(owner).unwrap().id;
            assert!(!live.contains(&v), "{v} reused");
        }
        assert_eq!(a.retain(|o| o.starts_with("live")).unwrap(), vec![555_001, 555_003, 555_004]);
    }

    #[test]
    fn exhaustion_bad_min_and_corrupt_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = VniAllocator::open(dir.path().join("v.json"), MAX_VNI).unwrap();
        assert_eq!(a.allocate("x").unwrap().id, MAX_VNI);
        assert!(matches!(a.allocate("y"), Err(PodNetError::VniExhausted { .. })));
        assert!(VniAllocator::open(dir.path().join("w.json"), 0).is_err());
        fs::write(dir.path().join("bad.json"), "{nope").unwrap();
        let e = VniAllocator::open(dir.path().join("bad.json"), 1).unwrap_err();
        assert!(matches!(e, PodNetError::VniStateCorrupt { .. }));
    }
}
