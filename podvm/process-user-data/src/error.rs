//! The library's one error type. Messages name paths, sources and reasons, never file contents:
//! userdata holds TLS keys and pull secrets, and these errors end up in the journal.

use std::path::PathBuf;
use std::time::Duration;

use crate::Source;

/// Why a run failed; the binary exits non-zero with this text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No attempt produced parseable userdata before the fetch timeout.
    #[error(
        "no usable user data from {origin} within {timeout:?} ({attempts} attempts); \
         last failure: {last}"
    )]
    FetchTimeout {
        /// Where we tried.
        origin: Source,
        /// The overall fetch timeout.
        timeout: Duration,
        /// How many fetches were made.
        attempts: u32,
        /// The last attempt's failure (status, connection or parse error).
        last: String,
    },
    /// A file or directory could not be read or written.
    #[error("{op} {path}: {error}")]
    Io {
        /// What was being done (`writing`, `reading`, `creating directory`, ...).
        op: &'static str,
        /// The host path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The initdata file is not base64(gzip(TOML)) of the expected shape.
    #[error("invalid initdata: {0}")]
    Initdata(String),
    /// The initdata names a digest algorithm other than sha256, sha384 and sha512.
    #[error("initdata algorithm {0:?} is not supported (expected sha256, sha384 or sha512)")]
    UnsupportedAlgorithm(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), error }
    }
}
