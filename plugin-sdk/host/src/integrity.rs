//! Binary integrity: checks a plugin file's type and permissions and, when a SHA-256 digest is
//! pinned, copies the file into a sealed memfd while hashing it, so that the bytes hashed are
//! exactly the bytes executed (no path-based time-of-check/time-of-use gap).
//!
//! A pinned plugin runs as `/proc/self/fd/<memfd>`. That works for compiled (ELF) plugins only:
//! the kernel resolves the path at `execve` time, but a `#!` script's interpreter would open the
//! path again after the close-on-exec descriptor is gone. A pinned file starting with `#!` is
//! therefore refused; pin compiled plugins, or leave scripts unpinned.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use sha2::{Digest, Sha256};

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// The file could not be opened (missing, a symlink while pinned, no permission).
    #[error("open plugin {path}")]
    Open {
        /// The plugin path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The path is not a regular file.
    #[error("plugin {path} is not a regular file")]
    NotRegular {
        /// The plugin path.
        path: PathBuf,
    },
    /// The file (or its directory) can be modified by other users.
    #[error("plugin {path} is writable by group or others (mode {mode:04o})")]
    Writable {
        /// The file or directory that is too open.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file belongs to a user other than root or ourselves.
    #[error("plugin {path} is owned by uid {uid}, expected root or uid {expected}")]
    Owner {
        /// The plugin path.
        path: PathBuf,
        /// The owner.
        uid: u32,
        /// Our effective uid.
        expected: u32,
    },
    /// The pinned digest is not 64 hex digits.
    #[error("pinned sha256 for plugin {path} is not 64 hex digits")]
    BadPin {
        /// The plugin path.
        path: PathBuf,
    },
    /// The file's digest differs from the pinned one.
    #[error("plugin {path} sha256 mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// The plugin path.
        path: PathBuf,
        /// The pinned digest (lowercase).
        expected: String,
        /// The digest of the file's contents.
        actual: String,
    },
    /// A pinned file is a `#!` script, which cannot run from the verified memfd.
    #[error("plugin {path} is a script; scripts cannot be pinned (pin a compiled binary)")]
    Script {
        /// The plugin path.
        path: PathBuf,
    },
    /// Reading the file or building the memfd failed.
    #[error("copy plugin {path} into a sealed memfd")]
    Copy {
        /// The plugin path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A verified copy of a plugin binary in a sealed, read-only memfd. Keep it alive until the child
/// has been spawned (the spawn returns after `execve`), then drop it.
#[derive(Debug)]
pub struct VerifiedExecutable {
    fd: OwnedFd,
    sha256: String,
}

impl VerifiedExecutable {
    /// The path to execute: `/proc/self/fd/<memfd>`.
    pub fn exec_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The verified digest (lowercase hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// Opens `path` without following a final symlink, checks it, hashes it while copying it into a
/// sealed memfd, and compares the digest with `pinned` (hex, case-insensitive).
pub fn verify_pinned(path: &Path, pinned: &str) -> Result<VerifiedExecutable, IntegrityError> {
    let expected = pinned.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IntegrityError::BadPin { path: path.to_owned() });
    }
    let open_err = |source| IntegrityError::Open { path: path.to_owned(), source };
    // std adds O_CLOEXEC itself.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    check_metadata(path, &meta)?;
    check_directory(path)?;

    let copy_err = |source| IntegrityError::Copy { path: path.to_owned(), source };
    if starts_with_shebang(&mut file).map_err(copy_err)? {
        return Err(IntegrityError::Script { path: path.to_owned() });
    }
    let memfd = memfd_create(c"caa-plugin", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(|e| copy_err(e.into()))?;
    let mut copy = File::from(memfd);
    let actual = hash_into(&mut file, Some(&mut copy)).map_err(copy_err)?;
    if actual != expected {
        return Err(IntegrityError::Mismatch { path: path.to_owned(), expected, actual });
    }
    copy.set_permissions(std::fs::Permissions::from_mode(0o500)).map_err(copy_err)?;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| copy_err(e.into()))?;
    // Reopen read-only and drop the writable descriptor: the kernel refuses to execute a file
    // that is open for writing (ETXTBSY).
    let read_only = File::open(format!("/proc/self/fd/{}", copy.as_raw_fd())).map_err(copy_err)?;
    drop(copy);
    Ok(VerifiedExecutable { fd: read_only.into(), sha256: actual })
}

/// Checks an unpinned plugin path (following symlinks): a regular file that only its owner
/// (root or us) can modify.
pub fn check_unpinned(path: &Path) -> Result<(), IntegrityError> {
    let meta = std::fs::metadata(path)
        .map_err(|source| IntegrityError::Open { path: path.to_owned(), source })?;
    check_metadata(path, &meta)
}

/// The SHA-256 of a file's contents as lowercase hex (for `caa-plugin` to print a pin).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    hash_into(&mut file, None)
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata) -> Result<(), IntegrityError> {
    if !meta.file_type().is_file() {
        return Err(IntegrityError::NotRegular { path: path.to_owned() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(IntegrityError::Writable { path: path.to_owned(), mode });
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(IntegrityError::Owner {
            path: path.to_owned(),
            uid: meta.uid(),
            expected: euid,
        });
    }
    Ok(())
}

/// The directory must not let others replace the file (a sticky directory like `/tmp` is fine).
fn check_directory(path: &Path) -> Result<(), IntegrityError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir)
        .map_err(|source| IntegrityError::Open { path: dir.to_owned(), source })?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(IntegrityError::Writable { path: dir.to_owned(), mode });
    }
    Ok(())
}

/// Reads the first two bytes, then rewinds.
fn starts_with_shebang(file: &mut File) -> io::Result<bool> {
    let mut head = Vec::with_capacity(2);
    Read::by_ref(file).take(2).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(head == b"#!")
}

fn hash_into(src: &mut File, mut dst: Option<&mut File>) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(dst) = dst.as_deref_mut() {
            dst.write_all(&buf[..n])?;
        }
    }
    Ok(to_hex(&hasher.finalize()))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_pin_is_refused_before_opening() {
        let err = verify_pinned(Path::new("/nonexistent"), "xyz").unwrap_err();
        assert_eq!(err.to_string(), "pinned sha256 for plugin /nonexistent is not 64 hex digits");
    }

    #[test]
    fn pinned_script_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let digest = sha256_file(&path).unwrap();
        let err = verify_pinned(&path, &digest).unwrap_err();
        assert!(matches!(err, IntegrityError::Script { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "plugin {} is a script; scripts cannot be pinned (pin a compiled binary)",
                path.display()
            )
        );
        // A file merely starting with `#` is hashed as usual.
        std::fs::write(&path, b"# not a script").unwrap();
        let digest = sha256_file(&path).unwrap();
        assert_eq!(verify_pinned(&path, &digest).unwrap().sha256(), digest);
    }

    #[test]
    fn symlink_is_refused_when_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"abc").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = verify_pinned(&link, &"0".repeat(64)).unwrap_err();
        assert!(matches!(err, IntegrityError::Open { .. }), "{err}");
    }
}
