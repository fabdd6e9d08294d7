//! From the `<provider>` argument to a plugin executable: [`PluginName`] (validated once),
//! the plugin directory search for `caa-provider-<provider>`, an explicit path that wins over
//! the search, and the [`PluginCommand`] that starts it.
//!
//! Provider options are not parsed here: the plugin's `--describe` schema names the upstream env
//! vars it reads (`AWS_REGION`, `PODVM_AMI_ID`, …) and `caa-plugin-host` passes exactly those
//! through, so `cloud-api-adaptor aws` with the usual AWS env vars set just works.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caa_plugin_host::PluginCommand;

use crate::config::PluginConfig;
use crate::config::defaults;

/// File name prefix of provider plugin executables.
pub const PLUGIN_PREFIX: &str = "caa-provider-";

/// Longest provider name.
pub const MAX_PLUGIN_NAME_LEN: usize = 64;

/// A provider name: lowercase ASCII letters, digits, `-` and `_`, starting with a letter or
/// digit, so that `caa-provider-<name>` is a plain file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName(String);

/// A provider name that cannot name a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported cloud provider: {0:?}: a provider name is lowercase letters, digits, '-' and '_'"
)]
pub struct PluginNameError(pub String);

impl PluginName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<PluginName, PluginNameError> {
        let name = name.into();
        let ok = (1..=MAX_PLUGIN_NAME_LEN).contains(&name.len())
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'));
        if ok { Ok(PluginName(name)) } else { Err(PluginNameError(name)) }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The executable's file name, `caa-provider-<name>`.
    pub fn file_name(&self) -> String {
        format!("{PLUGIN_PREFIX}{}", self.0)
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The plugin to run, with its environment policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPlugin {
    /// The provider name (the plugin must report it in `--describe`).
    pub name: PluginName,
    /// The executable.
    pub path: PathBuf,
    /// Pinned SHA-256, checked by the host on the bytes it executes.
    pub sha256: Option<String>,
    /// Extra host env vars for the plugin.
    pub pass_env: Vec<String>,
}

impl ResolvedPlugin {
    /// The command that starts this plugin (environment cleared to the host's allowlist, the
    /// schema's names and `pass_env`).
    pub fn command(&self) -> PluginCommand {
        let mut cmd =
            PluginCommand::new(&self.path).name(self.name.as_str()).pass_env(self.pass_env.clone());
        if let Some(digest) = &self.sha256 {
            cmd = cmd.sha256(digest.clone());
        }
        cmd
    }
}

/// Why no plugin could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No `caa-provider-<name>` in any plugin directory.
    #[error("unsupported cloud provider: {name}: no executable {file} in {}", show_dirs(.searched))]
    NotFound {
        /// The provider.
        name: PluginName,
        /// The file name looked for.
        file: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// The file exists but cannot be run.
    #[error("provider plugin {path} is not an executable file (-plugin-path / -plugin-dir)")]
    NotExecutable {
        /// The file.
        path: PathBuf,
    },
    /// The explicit path does not exist.
    #[error(
        "provider plugin {path} does not exist (-plugin-path / CLOUD_PROVIDER_EXTERNAL_PLUGIN_PATH)"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
}

fn show_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no plugin directory (-plugin-dir / CAA_PLUGIN_DIR is empty)".to_owned();
    }
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The default plugin search list: the adaptor binary's own directory, then
/// `/usr/libexec/cloud-api-adaptor`.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    let own = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
    own.into_iter().chain([PathBuf::from(defaults::PLUGIN_DIR)]).collect()
}

/// Picks the plugin for `name`: the explicit path when one is configured, else the first
/// `caa-provider-<name>` found in the plugin directories.
pub fn resolve(name: &PluginName, config: &PluginConfig) -> Result<ResolvedPlugin, ResolveError> {
    let found = |path: PathBuf| ResolvedPlugin {
        name: name.clone(),
        path,
        sha256: config.sha256.clone(),
        pass_env: config.pass_env.clone(),
    };
    if let Some(path) = &config.path {
        return match std::fs::metadata(path) {
            Err(_) => Err(ResolveError::Missing { path: path.clone() }),
            Ok(meta) if is_executable(&meta) => Ok(found(path.clone())),
            Ok(_) => Err(ResolveError::NotExecutable { path: path.clone() }),
        };
    }
    let file = name.file_name();
    for dir in &config.dirs {
        let candidate = dir.join(&file);
        match std::fs::metadata(&candidate) {
            Ok(meta) if is_executable(&meta) => return Ok(found(candidate)),
            // Shadowing a later directory silently would hide a packaging mistake.
            Ok(_) => return Err(ResolveError::NotExecutable { path: candidate }),
            Err(_) => {}
        }
    }
    Err(ResolveError::NotFound { name: name.clone(), file, searched: config.dirs.clone() })
}

/// The provider names with an executable `caa-provider-<name>` in `dirs`, sorted, for usage text.
pub fn available(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let provider = name.strip_prefix(PLUGIN_PREFIX)?;
            let meta = std::fs::metadata(e.path()).ok()?;
            (PluginName::new(provider).is_ok() && is_executable(&meta)).then(|| provider.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        for ok in ["aws", "ibmcloud-powervs", "mock", "my_cloud2", "0cloud"] {
            assert!(PluginName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "AWS", "-aws", "a/b", "..", "a b", "aws.so", &"a".repeat(65)] {
            assert!(PluginName::new(bad).is_err(), "{bad}");
        }
        assert_eq!(PluginName::new("aws").unwrap().file_name(), "caa-provider-aws");
    }
}
