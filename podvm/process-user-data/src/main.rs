//! `process-user-data`: parse the command line, log to stderr, run the library. Exit 0 on
//! success, 1 when provisioning fails (the systemd unit is oneshot), 2 on usage errors.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use caa_process_user_data::cli::{Cli, Command, ProvisionArgs};
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[allow(clippy::print_stdout)] // `-v` writes the version block to stdout, as upstream.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print!("{}", caa_process_user_data::version_block("process-user-data"));
        return ExitCode::SUCCESS;
    }
    let Some(Command::ProvisionFiles(args)) = cli.command else {
        eprintln!("process-user-data: missing sub-command (try --help)");
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match provision(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn provision(args: &ProvisionArgs) -> anyhow::Result<()> {
    let outcome = caa_process_user_data::provision_files(&args.options())
        .context("provision-files failed")?;
    tracing::info!(
        source = %outcome.source,
        files = outcome.written.len(),
        initdata_files = outcome.initdata_files.len(),
        default_initdata = outcome.default_initdata,
        "provisioning done"
    );
    Ok(())
}
