//! The `caa-plugin` command: argument parsing and output only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use caa_plugin::call::{CallOutcome, CallRequest};
use caa_plugin::conformance::{self, Suite, Target};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "caa-plugin",
    version,
    about = "Test cloud-api-adaptor provider plugins from a shell"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a plugin's --describe document (identity, versions, capabilities, config schema).
    Describe { plugin: PathBuf },
    /// Start a plugin, initialize it and call one method.
    Call {
        plugin: PathBuf,
        method: String,
        /// Params as JSON text or @file (default {}); operationId and deadlineMs are filled in.
        params: Option<String>,
        /// initialize.config as a JSON object file (keeps secrets out of argv and shell history).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Host environment variables to pass through besides those the schema declares.
        #[arg(long = "pass-env")]
        pass_env: Vec<String>,
        /// Pinned SHA-256 of the plugin binary.
        #[arg(long, env = "CAA_PLUGIN_SHA256")]
        sha256: Option<String>,
        /// Give up after this many seconds (default: deadlineMs + 30 s).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Check a plugin against the protocol contract; the last line is `N passed, N failed`.
    Conformance {
        plugin: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// protocol, lifecycle, semantic, default (protocol + lifecycle) or all. The semantic
        /// suite creates and deletes instances, so it needs a config that really works.
        #[arg(long, default_value = "default")]
        suite: Suite,
    },
    /// Print the SHA-256 of a plugin binary, for pinning.
    Sha256 { plugin: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("caa-plugin: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("caa-plugin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Describe { plugin } => {
            let describe = caa_plugin::describe(&plugin).await?;
            println!("{}", serde_json::to_string_pretty(&describe)?);
        }
        Command::Call { plugin, method, params, config, pass_env, sha256, timeout } => {
            let params = caa_plugin::json_arg("params", params.as_deref().unwrap_or("{}"))?;
            let config = caa_plugin::load_config(config.as_deref())?;
            let req = CallRequest {
                plugin,
                method,
                params,
                config,
                pass_env,
                sha256,
                timeout: timeout.map(Duration::from_secs),
            };
            let outcome = caa_plugin::call::call(req, |p| println!("{{\"progress\":{p}}}")).await?;
            match outcome {
                CallOutcome::Result(value) => println!("{}", serde_json::to_string_pretty(&value)?),
                CallOutcome::Failed(e) => {
                    eprintln!("caa-plugin: call failed: {e}");
                    if let caa_plugin_host::CallError::Rpc(rpc) = &e {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&serde_json::json!({ "error": rpc }))?
                        );
                    }
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::Conformance { plugin, config, suite } => {
            let config = caa_plugin::load_config(config.as_deref())?;
            let describe = caa_plugin::describe(&plugin).await.context("--describe")?;
            let target = Target {
                plugin,
                config: serde_json::Value::Object(config.into_iter().collect()),
                describe,
            };
            let report = conformance::run(&target, suite, |line| println!("{line}")).await;
            if report.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Sha256 { plugin } => {
            let digest = caa_plugin_host::sha256_file(&plugin)
                .with_context(|| plugin.display().to_string())?;
            println!("{digest}  {}", plugin.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
