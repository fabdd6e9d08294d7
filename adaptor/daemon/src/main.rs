//! `cloud-api-adaptor`: parse the command line, set up logging, run. All logic is in the
//! `caa_adaptor` library; exit codes are 0 (ok), 1 (runtime failure), 2 (usage or config error).

use std::process::ExitCode;

use caa_adaptor::cli::{self, Invocation, USAGE_EXIT_CODE};

#[allow(clippy::print_stdout)] // `version` and `help` write to stdout, as upstream.
fn main() -> ExitCode {
    let config = match cli::parse(std::env::args_os()) {
        Ok(Invocation::Run(config)) => config,
        Ok(Invocation::Version(text) | Invocation::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cloud-api-adaptor: {e}");
            return ExitCode::from(USAGE_EXIT_CODE);
        }
    };
    if let Err(e) = caa_adaptor::logging::init(&config.log) {
        eprintln!("cloud-api-adaptor: {e}");
        return ExitCode::from(USAGE_EXIT_CODE);
    }
    eprint!("{}", caa_adaptor::version::block("cloud-api-adaptor"));
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let plugin = match caa_adaptor::provider::resolve(&config.provider, &config.plugin) {
        Ok(plugin) => plugin,
        Err(e) => {
            eprintln!("cloud-api-adaptor: {e}");
            return ExitCode::from(USAGE_EXIT_CODE);
        }
    };
    tracing::info!(provider = %plugin.name, plugin = %plugin.path.display(), "starting Cloud API Adaptor daemon for {:?}", plugin.name.as_str());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloud-api-adaptor: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(caa_adaptor::daemon::run(*config, plugin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("cloud-api-adaptor: {e}");
            ExitCode::FAILURE
        }
    }
}
