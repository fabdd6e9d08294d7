//! The command line, upstream's grammar (caa-facts §7): `process-user-data [-v|--version]` and
//! `process-user-data provision-files [-t|--user-data-fetch-timeout <SECONDS>]`. The hidden
//! options exist for tests and unusual images; each can also come from an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::Options;

/// Where both clouds serve their instance metadata (link-local, plain HTTP).
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";

/// `process-user-data`.
#[derive(Debug, Parser)]
#[command(
    name = "process-user-data",
    about = "Provision the pod VM's /run/peerpod files from user data and initdata",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the user data, write the allow-listed files, then the initdata files and digest.
    ProvisionFiles(ProvisionArgs),
}

/// Options of `provision-files`.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// How long to keep trying to fetch usable user data.
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 180)]
    pub user_data_fetch_timeout: u64,
    /// Prefix for every absolute path read or written (/media/cidata, /run/peerpod,
    /// /sys/class/dmi/id).
    #[arg(long, env = "PROCESS_USER_DATA_ROOT", default_value = "/", hide = true)]
    pub root: PathBuf,
    /// Base URL of the Azure instance metadata service.
    #[arg(
        long,
        env = "PROCESS_USER_DATA_AZURE_IMDS_URL",
        default_value = DEFAULT_IMDS_URL,
        hide = true
    )]
    pub azure_imds_url: String,
    /// Base URL of the AWS instance metadata service.
    #[arg(
        long,
        env = "PROCESS_USER_DATA_AWS_IMDS_URL",
        default_value = DEFAULT_IMDS_URL,
        hide = true
    )]
    pub aws_imds_url: String,
    /// Seconds between fetch attempts (fractions allowed).
    #[arg(
        long,
        env = "PROCESS_USER_DATA_RETRY_INTERVAL",
        default_value = "5",
        value_parser = parse_interval,
        hide = true
    )]
    pub retry_interval: Duration,
    /// Do not ask the CPU for the hypervisor vendor (detect Azure from DMI only); for tests on
    /// hosts that run under Hyper-V.
    #[arg(long, env = "PROCESS_USER_DATA_NO_CPUID", hide = true)]
    pub no_cpuid: bool,
}

impl ProvisionArgs {
    /// The library options these arguments stand for.
    pub fn options(&self) -> Options {
        Options {
            root: self.root.clone(),
            azure_imds_url: self.azure_imds_url.clone(),
            aws_imds_url: self.aws_imds_url.clone(),
            fetch_timeout: Duration::from_secs(self.user_data_fetch_timeout),
            retry_interval: self.retry_interval,
            cpuid: !self.no_cpuid,
        }
    }
}

/// A positive number of seconds, at most a day.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{text:?} is not between 0 (exclusive) and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn provision(args: &[&str]) -> ProvisionArgs {
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.command {
            Some(Command::ProvisionFiles(p)) => p,
            None => panic!("no sub-command"),
        }
    }

    #[test]
    fn defaults_are_upstreams() {
        let p = provision(&["process-user-data", "provision-files"]);
        let o = p.options();
        assert_eq!(o.fetch_timeout, Duration::from_secs(180));
        assert_eq!(o.retry_interval, Duration::from_secs(5));
        assert_eq!(o.root, PathBuf::from("/"));
        assert_eq!(o.azure_imds_url, DEFAULT_IMDS_URL);
        assert_eq!(o.aws_imds_url, DEFAULT_IMDS_URL);
        assert!(o.cpuid);
    }

    #[test]
    fn short_and_long_flags() {
        let p = provision(&["p", "provision-files", "-t", "7", "--retry-interval", "0.25"]);
        assert_eq!(p.user_data_fetch_timeout, 7);
        assert_eq!(p.retry_interval, Duration::from_millis(250));
        let p = provision(&["p", "provision-files", "--user-data-fetch-timeout=9", "--no-cpuid"]);
        assert_eq!(p.user_data_fetch_timeout, 9);
        assert!(!p.options().cpuid);
        assert!(Cli::try_parse_from(["p", "-v"]).unwrap().version);
        assert!(Cli::try_parse_from(["p", "--version"]).unwrap().version);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["0", "-1", "x", "NaN", "inf", "100000"] {
            assert!(
                Cli::try_parse_from(["p", "provision-files", "--retry-interval", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Cli::try_parse_from(["p", "provision-files", "-t", "-5"]).is_err());
        assert!(Cli::try_parse_from(["p", "bogus"]).is_err());
    }
}
