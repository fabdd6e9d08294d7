//! One way to write the adaptor's durable files (sandbox records, VNI allocations, the CA's
//! keys): the bytes go to a temporary file created owner-only (0600), are synced, renamed over
//! the target, and the directory is synced, so a crash at any point leaves either the old file
//! or the new one, never a torn or world-readable one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `<dir>/<name>.tmp` next to `path`: the temporary file of a single writer.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` (mode 0600) through `temp`, which must be in the same directory and
/// belong to this writer alone: a leftover from a crashed writer is replaced, and on failure
/// `temp` is removed again.
pub fn write_private_via(path: &Path, temp: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = fs::remove_file(temp);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(temp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(temp);
        return Err(e);
    }
    sync_parent(path)
}

/// [`write_private_via`] through [`temp_path`].
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_private_via(path, &temp_path(path), bytes)
}

/// Syncs the directory holding `path`, so a rename or removal in it is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_the_file_owner_only_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(temp_path(&path), b"stale, world-readable").unwrap();
        fs::set_permissions(temp_path(&path), fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_private(&path, b"old").unwrap();
        // Renaming a file over a non-empty directory fails after the temporary is written.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        let temp = dir.path().join("blocked.tmp");
        assert!(write_private_via(&blocked, &temp, b"new").is_err());
        assert!(!temp.exists());
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }
}
