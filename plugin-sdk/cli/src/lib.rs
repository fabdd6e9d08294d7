//! `caa-plugin`: test any provider plugin from a shell, with the same host library the adaptor
//! uses. [`describe`] prints a plugin's self-description, [`call`] runs one method (printing
//! `$/progress` as it arrives, Ctrl-C sends `$/cancel`), [`conformance`] checks the protocol
//! contract and ends with `N passed, N failed`.

pub mod call;
pub mod conformance;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caa_plugin_host::PluginCommand;
use serde_json::Value;

/// Errors of the CLI's library part.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file given on the command line could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A JSON argument did not parse.
    #[error("{what} is not valid JSON")]
    Json {
        /// Which argument.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The config is not a JSON object.
    #[error("the config must be a JSON object")]
    ConfigNotObject,
}

/// A JSON argument given inline or as `@file`.
pub fn json_arg(what: &str, text: &str) -> Result<Value, CliError> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| CliError::Read { path: path.into(), source })?,
        None => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|source| CliError::Json { what: what.to_owned(), source })
}

/// The plugin config from `--config FILE` (a JSON object); empty when absent.
pub fn load_config(path: Option<&Path>) -> Result<BTreeMap<String, Value>, CliError> {
    let Some(path) = path else { return Ok(BTreeMap::new()) };
    let text = std::fs::read_to_string(path)
        .map_err(|source| CliError::Read { path: path.into(), source })?;
    match serde_json::from_str(&text)
        .map_err(|source| CliError::Json { what: path.display().to_string(), source })?
    {
        Value::Object(map) => Ok(map.into_iter().collect()),
        _ => Err(CliError::ConfigNotObject),
    }
}

/// The plugin's `--describe` document.
pub async fn describe(
    plugin: &Path,
) -> Result<caa_plugin_proto::Describe, caa_plugin_host::HostError> {
    PluginCommand::new(plugin).describe().await
}
