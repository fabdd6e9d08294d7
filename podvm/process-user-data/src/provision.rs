//! Writing the parsed userdata to disk: only [`caa_userdata::ALLOWED_PATHS`], each file
//! replaced atomically (a temporary file in the same directory, then rename) with mode 0600,
//! missing parent directories created 0755. What is skipped is logged by path or key name only.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use caa_userdata::{ALLOWED_PATHS, ParsedUserData};

use crate::{Error, host_path};

/// Mode of every file written: they hold TLS keys and pull secrets, and their readers run as
/// root.
const FILE_MODE: u32 = 0o600;
/// Mode of directories this program creates.
const DIR_MODE: u32 = 0o755;

/// Writes the allow-listed entries in document order (a later entry for the same path wins)
/// and returns their VM paths.
pub(crate) fn write_user_data(root: &Path, parsed: &ParsedUserData) -> Result<Vec<String>, Error> {
    for key in &parsed.ignored_keys {
        tracing::warn!(?key, "ignored unsupported cloud-config key");
    }
    for item in &parsed.ignored_item_keys {
        tracing::warn!(path = ?item.path, key = ?item.key, "ignored unsupported write_files key");
    }
    for skipped in &parsed.skipped_files {
        tracing::warn!(path = ?skipped.path, reason = %skipped.reason, "write_files entry skipped");
    }
    let mut written = Vec::new();
    for file in &parsed.files {
        if !ALLOWED_PATHS.contains(&file.path.as_str()) {
            tracing::warn!(path = ?file.path, "path is not allowed, entry ignored");
            continue;
        }
        if file.owner.is_some() || file.permissions.is_some() {
            tracing::info!(path = %file.path, "owner and permissions ignored: written root-owned 0600");
        }
        write_private_file(root, &file.path, file.content.as_bytes())?;
        tracing::info!(path = %file.path, bytes = file.content.len(), "wrote file");
        written.push(file.path.clone());
    }
    Ok(written)
}

/// Replaces `root` + `vm_path` with `bytes`, mode 0600, atomically.
pub(crate) fn write_private_file(root: &Path, vm_path: &str, bytes: &[u8]) -> Result<(), Error> {
    let target = host_path(root, vm_path);
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(Error::io("writing", &target, io::ErrorKind::InvalidInput.into()));
    };
    create_dirs(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    // A leftover from an earlier run that died mid-write.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&tmp)?;
        // The umask may have removed bits; the mode must be exact.
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("writing", &target, e)
    })
}

/// Creates `dir` and its missing ancestors with mode 0755; existing ones are left alone.
fn create_dirs(dir: &Path) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(d) = current {
        if d.as_os_str().is_empty() || d.symlink_metadata().is_ok() {
            break;
        }
        missing.push(d);
        current = d.parent();
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => fs::set_permissions(d, Permissions::from_mode(DIR_MODE))
                .map_err(|e| Error::io("setting the mode of", d, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("creating directory", d, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_existing_files_and_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        write_private_file(root.path(), "/run/peerpod/a", b"one").unwrap();
        write_private_file(root.path(), "/run/peerpod/a", b"two").unwrap();
        let dir = root.path().join("run/peerpod");
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a"]);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dir.join("a")), FILE_MODE);
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&root.path().join("run")), DIR_MODE);
    }

    #[test]
    fn a_directory_in_the_way_is_an_error_naming_the_path() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("run/peerpod/apf.json")).unwrap();
        let err = write_private_file(root.path(), "/run/peerpod/apf.json", b"x").unwrap_err();
        assert!(err.to_string().contains("run/peerpod/apf.json"), "{err}");
        let names: Vec<_> = fs::read_dir(root.path().join("run/peerpod")).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }
}
