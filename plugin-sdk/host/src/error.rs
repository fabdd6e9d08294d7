//! `HostError`: why a plugin could not be started, described, initialized or stopped. Errors of
//! individual calls are [`crate::CallError`].

use std::path::PathBuf;

use crate::client::CallError;
use crate::integrity::IntegrityError;

/// A failure to bring a plugin up (or down).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The process could not be started.
    #[error("spawn plugin {path}")]
    Spawn {
        /// The plugin path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The plugin file was refused (permissions, pinned digest).
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// `--describe` failed or printed something that is not a describe document.
    #[error("describe plugin {path}: {reason}")]
    Describe {
        /// The plugin path.
        path: PathBuf,
        /// What went wrong, including the last stderr lines when there are any.
        reason: String,
    },
    /// `initialize` failed.
    #[error("initialize plugin {plugin}")]
    Initialize {
        /// The provider name.
        plugin: String,
        /// The call error (the plugin's own error, a timeout, a crash with its stderr tail).
        #[source]
        source: CallError,
    },
    /// No protocol version in common.
    #[error(
        "plugin {plugin} speaks protocol versions {plugin_versions:?}, host speaks {host_versions:?}: upgrade the {upgrade}"
    )]
    VersionMismatch {
        /// The provider name.
        plugin: String,
        /// What the plugin speaks.
        plugin_versions: Vec<u32>,
        /// What the host speaks.
        host_versions: Vec<u32>,
        /// `host` or `plugin`: the side that is behind.
        upgrade: &'static str,
    },
    /// The plugin reports another provider name than configured.
    #[error(
        "plugin at {path} calls itself {actual:?}, but it is configured as provider {expected:?}"
    )]
    NameMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The configured provider name.
        expected: String,
        /// The name the plugin reported.
        actual: String,
    },
    /// The plugin's settings cannot work together.
    #[error("plugin {plugin}: {reason}")]
    Config {
        /// The provider name.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
}
