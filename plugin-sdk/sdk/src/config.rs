//! Resolved plugin configuration: every option of the plugin's [`ConfigSchema`] gets its value
//! from `initialize.config`, else from its environment variable, else from its default. All
//! problems are collected and reported at once as one `invalidConfig` error, and secret values
//! never appear in `Debug` output or in error messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use caa_plugin_proto::{ConfigOption, ConfigSchema, ErrorCode, OptionKind, Problem, RpcError};
use serde_json::Value;

/// The `invalidConfig` error for problems a plugin found in its own parsing of the resolved
/// values: `invalid <plugin> configuration: field: message; …`, with `data.problems`.
pub fn invalid(plugin: &str, problems: Vec<Problem>) -> RpcError {
    let summary: Vec<String> =
        problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
    let message = format!("invalid {plugin} configuration: {}", summary.join("; "));
    RpcError::new(ErrorCode::InvalidConfig, message).with_problems(problems)
}

/// Option values after resolution, normalised to their kind: strings, booleans, integers,
/// arrays of strings and objects of strings.
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    values: BTreeMap<String, Value>,
    secrets: BTreeSet<String>,
}

impl Config {
    /// Resolves every option: `given[name]` > `env(option.env)` > `option.default`.
    /// Required-but-missing options, unparsable values and unknown keys in `given` are all
    /// reported together in one `invalidConfig` (code 1) error with `data.problems`.
    pub fn resolve(
        schema: &ConfigSchema,
        given: &BTreeMap<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, RpcError> {
        let mut problems = Vec::new();
        for key in given.keys() {
            if !schema.options.iter().any(|o| &o.name == key) {
                problems.push(Problem { field: key.clone(), message: "unknown option".to_owned() });
            }
        }
        let mut config = Config::default();
        for option in &schema.options {
            if option.secret {
                config.secrets.insert(option.name.clone());
            }
            match resolve_option(option, given, env) {
                Ok(Some(value)) => {
                    config.values.insert(option.name.clone(), value);
                }
                Ok(None) if option.required => problems.push(Problem {
                    field: option.name.clone(),
                    message: match &option.env {
                        Some(var) => {
                            format!("required: set config key {} or env var {var}", option.name)
                        }
                        None => format!("required: set config key {}", option.name),
                    },
                }),
                Ok(None) => {}
                Err(message) => problems.push(Problem { field: option.name.clone(), message }),
            }
        }
        if problems.is_empty() {
            return Ok(config);
        }
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        let message = format!("invalid configuration: {}", fields.join(", "));
        Err(RpcError::new(ErrorCode::InvalidConfig, message).with_problems(problems))
    }

    /// A config holding exactly these (already normalised) values; for tests and tools.
    pub fn from_values(values: BTreeMap<String, Value>) -> Config {
        Config { values, secrets: BTreeSet::new() }
    }

    /// A string option; `None` when absent or empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// A boolean option; `false` when absent.
    pub fn bool(&self, name: &str) -> bool {
        self.values.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    /// An integer option.
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.values.get(name).and_then(Value::as_i64)
    }

    /// A string-list option; empty when absent.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(Value::Array(items)) => {
                items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        }
    }

    /// A string-map option; empty when absent.
    pub fn map(&self, name: &str) -> BTreeMap<String, String> {
        match self.values.get(name) {
            Some(Value::Object(items)) => items
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The raw resolved value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Whether the option is a secret (its value is never shown).
    pub fn is_secret(&self, name: &str) -> bool {
        self.secrets.contains(name)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.values {
            if self.secrets.contains(name) {
                map.entry(name, &format_args!("<redacted>"));
            } else {
                map.entry(name, &format_args!("{value}"));
            }
        }
        map.finish()
    }
}

/// The value of one option, `Ok(None)` when no source sets it. Error messages name the source
/// (config key, env var or default) and never quote the value.
fn resolve_option(
    option: &ConfigOption,
    given: &BTreeMap<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Value>, String> {
    if let Some(value) = given.get(&option.name).filter(|v| !v.is_null()) {
        return from_json(option.kind, value)
            .map(Some)
            .map_err(|expected| format!("config key {}: expected {expected}", option.name));
    }
    if let Some(var) = &option.env
        && let Some(text) = env(var).filter(|t| !t.trim().is_empty())
    {
        return from_text(option.kind, &text)
            .map(Some)
            .map_err(|expected| format!("env var {var}: expected {expected}"));
    }
    match &option.default {
        Some(value) if !value.is_null() => from_json(option.kind, value)
            .map(Some)
            .map_err(|expected| format!("default of {}: expected {expected}", option.name)),
        _ => Ok(None),
    }
}

/// What a kind accepts, for error messages.
fn expected(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::String => "a string",
        OptionKind::Bool => "a boolean (true/false/1/0)",
        OptionKind::Integer => "an integer",
        OptionKind::StringList => "a list of strings (or comma-separated text)",
        OptionKind::StringMap => "a map of strings (or k=v,k2=v2 text)",
    }
}

/// Normalises a JSON value; strings are also accepted in their env-var text form.
fn from_json(kind: OptionKind, value: &Value) -> Result<Value, &'static str> {
    match (kind, value) {
        (OptionKind::String, Value::String(_)) => Ok(value.clone()),
        (OptionKind::String, Value::Number(_) | Value::Bool(_)) => {
            Ok(Value::String(value.to_string()))
        }
        (OptionKind::Bool, Value::Bool(_)) => Ok(value.clone()),
        (OptionKind::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
        (OptionKind::StringList, Value::Array(items)) if items.iter().all(Value::is_string) => {
            Ok(value.clone())
        }
        (OptionKind::StringMap, Value::Object(items)) if items.values().all(Value::is_string) => {
            Ok(value.clone())
        }
        (_, Value::String(text)) => from_text(kind, text),
        _ => Err(expected(kind)),
    }
}

/// Parses the text form used by environment variables.
fn from_text(kind: OptionKind, text: &str) -> Result<Value, &'static str> {
    let bad = || expected(kind);
    match kind {
        OptionKind::String => Ok(Value::String(text.to_owned())),
        OptionKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        OptionKind::Integer => text.trim().parse::<i64>().map(Value::from).map_err(|_| bad()),
        OptionKind::StringList => Ok(Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        OptionKind::StringMap => {
            let mut map = serde_json::Map::new();
            for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = item.split_once('=').ok_or_else(bad)?;
                let k = k.trim();
                if k.is_empty() {
                    return Err(bad());
                }
                map.insert(k.to_owned(), Value::String(v.trim().to_owned()));
            }
            Ok(Value::Object(map))
        }
    }
}

#[cfg(test)]
mod tests;
