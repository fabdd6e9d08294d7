//! process-user-data: the pod VM's first boot step (caa-facts §7, §5.4). It finds where this
//! cloud delivers the userdata, fetches and parses it (retrying until a timeout), writes the
//! allow-listed `/run/peerpod` files, then unpacks the initdata and records its digest, which
//! the systemd unit extends into a TPM PCR. Later units wait on the files it writes.
//!
//! Reading order: [`provision_files`] (the whole run), `source` (detection and fetching),
//! `provision` (atomic owner-only writes), `initdata`, [`cli`] (the command line).
//!
//! Differences from upstream, on purpose: unknown cloud-config keys (top level and inside
//! `write_files` items) are skipped and logged instead of failing the boot; `encoding: b64`
//! content is decoded; files are written atomically with mode 0600 (they hold TLS keys and pull
//! secrets; every reader runs as root). Nothing here logs or returns file contents.

pub mod cli;
mod error;
mod initdata;
mod provision;
mod source;
mod version;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::Error;
pub use initdata::{DEFAULT_INITDATA_TOML, INITDATA_DIGEST_PATH, POLICY_REGO_PATH};
pub use source::Source;
pub use version::block as version_block;

/// Where the NoCloud volume (label `cidata`) is mounted and the userdata file in it.
pub const CIDATA_USER_DATA_PATH: &str = "/media/cidata/user-data";
/// Where the kernel exposes the DMI strings.
pub const DMI_DIR: &str = "/sys/class/dmi/id";

/// Everything a run needs; [`cli::ProvisionArgs::options`] builds it from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Prefix for every absolute path read or written (`/` in the VM).
    pub root: PathBuf,
    /// Base URL of the Azure instance metadata service, without a trailing path.
    pub azure_imds_url: String,
    /// Base URL of the AWS instance metadata service, without a trailing path.
    pub aws_imds_url: String,
    /// How long to keep trying to fetch usable userdata.
    pub fetch_timeout: Duration,
    /// Pause between fetch attempts.
    pub retry_interval: Duration,
    /// Whether to ask the CPU for the hypervisor vendor (Azure's Hyper-V) before DMI.
    pub cpuid: bool,
}

/// What a successful run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Where the userdata came from.
    pub source: Source,
    /// VM paths written from the userdata, in order (a path repeated in the document appears
    /// once per entry; the last one wins on disk).
    pub written: Vec<String>,
    /// The initdata was missing from the userdata and the default was written.
    pub default_initdata: bool,
    /// VM paths written from the initdata's `[data]` table.
    pub initdata_files: Vec<String>,
    /// Lowercase hex digest of the initdata TOML, as written to [`INITDATA_DIGEST_PATH`].
    pub initdata_digest: String,
}

/// The whole `provision-files` run: detect the userdata source, fetch and parse it (retrying
/// every [`Options::retry_interval`] until [`Options::fetch_timeout`]), write the allow-listed
/// files, then process the initdata (the default one when the userdata had none).
pub fn provision_files(options: &Options) -> Result<Outcome, Error> {
    let source = source::detect(options);
    tracing::info!(%source, "user data source detected");
    let written = match &source {
        Source::None => {
            tracing::info!("no user data source found, processing initdata only");
            Vec::new()
        }
        source => {
            let parsed = source::fetch_and_parse(source, options)?;
            provision::write_user_data(&options.root, &parsed)?
        }
    };
    let init = initdata::process(&options.root)?;
    Ok(Outcome {
        source,
        written,
        default_initdata: init.defaulted,
        initdata_files: init.files,
        initdata_digest: init.digest,
    })
}

/// `vm_path` (absolute, as the VM sees it) under `root`.
pub(crate) fn host_path(root: &Path, vm_path: &str) -> PathBuf {
    root.join(vm_path.trim_start_matches('/'))
}
