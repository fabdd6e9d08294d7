//! The command line, upstream's grammar (caa-facts §1.1): `cloud-api-adaptor <provider>
//! [options]`, `cloud-api-adaptor version`, `cloud-api-adaptor help`. Options keep upstream's flag
//! names and env vars; a flag beats a non-empty env var, which beats the default (§1.2).
//!
//! Upstream parses with Go's `flag` package, where `-pods-dir x`, `-pods-dir=x`, `--pods-dir x`
//! and `-tls-skip-verify=false` are all valid. clap only knows `--long`, so `go_flags` first
//! rewrites single-dash long options it recognises into `--name=value` (joining a separate value,
//! which may itself start with `-`), then clap parses. This is the only module that knows clap:
//! it yields [`RawOptions`](crate::config::RawOptions) and [`Config::from_raw`] does the rest.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::config::{Config, ConfigError, Source};
use crate::provider::{self, PluginName};

mod options;

use options::Options;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the daemon.
    Run(Box<Config>),
    /// Print this text (the version block) to stdout and exit 0.
    Version(String),
    /// Print this text (usage or option help) to stdout and exit 0.
    Help(String),
}

/// A command line that cannot run; the binary prints it to stderr and exits 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad grammar: no provider, unknown option, stray argument.
    #[error("{0}")]
    Usage(String),
    /// The options parse but some values are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The exit code for a command line that cannot run.
pub const USAGE_EXIT_CODE: u8 = 2;

/// Parses `args` (including the program name) against the process environment, with the default
/// plugin search list.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, CliError> {
    parse_with_plugin_dirs(args, provider::default_plugin_dirs())
}

/// [`parse`] with an explicit default plugin search list (used when `-plugin-dir` and
/// `CAA_PLUGIN_DIR` are not given).
pub fn parse_with_plugin_dirs(
    args: impl IntoIterator<Item = OsString>,
    default_plugin_dirs: Vec<PathBuf>,
) -> Result<Invocation, CliError> {
    let mut args = args.into_iter().skip(1);
    let Some(first) = args.next() else {
        return Err(CliError::Usage(format!(
            "missing provider name\n\n{}",
            usage(&default_plugin_dirs)
        )));
    };
    let first = first.to_string_lossy().into_owned();
    match first.as_str() {
        "version" | "--version" | "-version" => {
            return Ok(Invocation::Version(crate::version::block("cloud-api-adaptor")));
        }
        "help" | "--help" | "-help" | "-h" => {
            return Ok(Invocation::Help(usage(&default_plugin_dirs)));
        }
        s if s.is_empty() || s.starts_with('-') => {
            return Err(CliError::Usage(format!(
                "unknown option {s:?}: the provider name comes first\n\n{}",
                usage(&default_plugin_dirs)
            )));
        }
        _ => {}
    }
    let provider = PluginName::new(first).map_err(|e| CliError::Usage(e.to_string()))?;

    let command =
        Options::command().no_binary_name(true).bin_name(format!("cloud-api-adaptor {provider}"));
    let rest = caa_go_flags::normalize(&command, args.collect());
    let matches = match command.try_get_matches_from(rest) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return Ok(Invocation::Help(e.render().to_string()));
        }
        Err(e) => return Err(CliError::Usage(usage_error(&e))),
    };
    let options =
        Options::from_arg_matches(&matches).map_err(|e| CliError::Usage(usage_error(&e)))?;
    let raw = options.into_raw(&matches);
    Ok(Invocation::Run(Box::new(Config::from_raw(provider, &raw, default_plugin_dirs)?)))
}

fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    if e.kind() == clap::error::ErrorKind::UnknownArgument {
        format!(
            "{}\nprovider options are not flags: the provider plugin reads them from their \
             environment variables (caa-plugin describe <plugin> lists them)",
            text.trim_end()
        )
    } else {
        text
    }
}

/// Where a value came from; clap reports defaults too, but we give clap none.
pub(crate) fn source_of(matches: &ArgMatches, id: &str) -> Source {
    match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Flag,
    }
}

/// The top-level usage text, listing the provider plugins found in `dirs`.
pub fn usage(dirs: &[PathBuf]) -> String {
    let found = provider::available(dirs);
    let providers = if found.is_empty() { "(none found)".to_owned() } else { found.join(", ") };
    format!(
        "Usage: cloud-api-adaptor <provider> [options]\n\
         \x20      cloud-api-adaptor version\n\
         \x20      cloud-api-adaptor help\n\
         \n\
         <provider> runs the plugin executable caa-provider-<provider>, looked up in\n\
         -plugin-dir / CAA_PLUGIN_DIR (default: this binary's directory, then\n\
         /usr/libexec/cloud-api-adaptor), unless -plugin-path / CLOUD_PROVIDER_EXTERNAL_PLUGIN_PATH\n\
         names it. Provider options are read by the plugin from their usual environment\n\
         variables; `caa-plugin describe <plugin>` lists them.\n\
         \n\
         Providers found: {providers}\n\
         \n\
         Use \"cloud-api-adaptor <provider> -help\" for the adaptor's options.\n"
    )
}

#[cfg(test)]
mod tests;
