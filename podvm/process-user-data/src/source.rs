//! Where the userdata comes from and how it is fetched (caa-facts §7, §3.5): the NoCloud file
//! first, then Azure (Hyper-V CPUID or DMI vendor) and AWS (DMI vendor) instance metadata over
//! plain HTTP, else none. Fetching retries every interval until the overall timeout; a failure
//! is described by status, connection error or parse error, never by the body.
//!
//! HTTP is `ureq` without TLS: the metadata services are plain HTTP on a link-local address, and
//! ureq gives per-request timeouts, chunked bodies and body size limits in a few small crates.
//! Proxy variables are ignored (metadata must not go through a proxy).

use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use caa_userdata::{MAX_USERDATA_BYTES, ParsedUserData};
use ureq::Agent;

use crate::{CIDATA_USER_DATA_PATH, DMI_DIR, Error, Options, host_path};

/// Where this VM's userdata is, in upstream's order of detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The file on the NoCloud volume (libvirt; also images provisioned by hand).
    Cidata,
    /// Azure instance metadata (`compute/userData`, base64).
    Azure,
    /// AWS instance metadata (IMDSv2 with a v1 fallback).
    Aws,
    /// No known source: only the initdata is processed.
    None,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cidata => write!(f, "file {CIDATA_USER_DATA_PATH}"),
            Source::Azure => f.write_str("Azure IMDS"),
            Source::Aws => f.write_str("AWS IMDS"),
            Source::None => f.write_str("none"),
        }
    }
}

/// DMI `sys_vendor` of Azure (Hyper-V) VMs.
const AZURE_SYS_VENDOR: &str = "Microsoft Corporation";
/// DMI `sys_vendor` of AWS (Nitro) instances.
const AWS_SYS_VENDOR: &str = "Amazon EC2";
/// Upper bound of one request; the remaining fetch time is used when it is shorter.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound of the IMDSv2 token request (upstream's 5 s).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Every request gets at least this long, even when the fetch timeout has nearly run out.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest metadata response read (Azure's is base64 of the userdata).
const MAX_BODY_BYTES: u64 = 2 * MAX_USERDATA_BYTES as u64;
/// Lifetime asked for the IMDSv2 token, in seconds.
const TOKEN_TTL_SECONDS: &str = "60";

pub(crate) fn detect(options: &Options) -> Source {
    let cidata = host_path(&options.root, CIDATA_USER_DATA_PATH);
    if cidata.symlink_metadata().is_ok() {
        return Source::Cidata;
    }
    let vendor = dmi(&options.root, "sys_vendor");
    if options.cpuid && hypervisor_is_hyper_v() {
        tracing::debug!("CPUID hypervisor vendor is Microsoft Hv");
        return Source::Azure;
    }
    match vendor.as_deref() {
        Some(AZURE_SYS_VENDOR) => Source::Azure,
        Some(AWS_SYS_VENDOR) => Source::Aws,
        _ => Source::None,
    }
}

/// A DMI string such as `sys_vendor`, trimmed; `None` when the kernel does not expose it.
fn dmi(root: &Path, name: &str) -> Option<String> {
    let path = host_path(root, DMI_DIR).join(name);
    let mut text = String::new();
    std::fs::File::open(path).ok()?.take(4096).read_to_string(&mut text).ok()?;
    Some(text.trim().to_owned())
}

/// CPUID leaf 0x40000000 names the hypervisor when leaf 1 says one is present.
#[cfg(target_arch = "x86_64")]
fn hypervisor_is_hyper_v() -> bool {
    use std::arch::x86_64::__cpuid;
    const HYPERVISOR_PRESENT: u32 = 1 << 31;
    if __cpuid(1).ecx & HYPERVISOR_PRESENT == 0 {
        return false;
    }
    let leaf = __cpuid(0x4000_0000);
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&leaf.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&leaf.ecx.to_le_bytes());
    vendor[8..].copy_from_slice(&leaf.edx.to_le_bytes());
    &vendor == b"Microsoft Hv"
}

#[cfg(not(target_arch = "x86_64"))]
fn hypervisor_is_hyper_v() -> bool {
    false
}

/// Fetches and parses until one attempt succeeds or the fetch timeout passes.
pub(crate) fn fetch_and_parse(source: &Source, options: &Options) -> Result<ParsedUserData, Error> {
    let agent: Agent =
        Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let deadline = Instant::now() + options.fetch_timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        tracing::info!(%source, attempt = attempts, "fetching user data");
        let failure = match fetch(source, options, &agent, deadline) {
            Ok(text) => match caa_userdata::parse(&text) {
                Ok(parsed) => {
                    tracing::info!(%source, entries = parsed.files.len(), "user data parsed");
                    return Ok(parsed);
                }
                Err(e) => format!("parsing user data: {e}"),
            },
            Err(reason) => reason,
        };
        let timed_out = || Error::FetchTimeout {
            origin: source.clone(),
            timeout: options.fetch_timeout,
            attempts,
            last: failure.clone(),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timed_out());
        }
        tracing::warn!(%source, attempt = attempts, reason = %failure, "user data not usable yet");
        std::thread::sleep(options.retry_interval.min(remaining));
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
    }
}

/// One attempt: the userdata text, or why there is none.
fn fetch(
    source: &Source,
    options: &Options,
    agent: &Agent,
    deadline: Instant,
) -> Result<String, String> {
    let budget = |cap: Duration| {
        deadline.saturating_duration_since(Instant::now()).clamp(MIN_REQUEST_TIMEOUT, cap)
    };
    match source {
        Source::Cidata => read_cidata(&options.root),
        Source::Azure => {
            let url = format!(
                "{}/metadata/instance/compute/userData?api-version=2021-01-01&format=text",
                options.azure_imds_url.trim_end_matches('/')
            );
            let body = get(agent, &url, &[("Metadata", "true")], budget(REQUEST_TIMEOUT))?;
            let compact: Vec<u8> = body.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| format!("GET {url}: body is not base64"))?;
            utf8(decoded)
        }
        Source::Aws => {
            let base = options.aws_imds_url.trim_end_matches('/');
            let token = match aws_token(agent, base, budget(TOKEN_TIMEOUT)) {
                Ok(token) => Some(token),
                Err(reason) => {
                    tracing::info!(%reason, "no IMDSv2 token, falling back to IMDSv1");
                    None
                }
            };
            let url = format!("{base}/latest/user-data");
            let headers: Vec<(&str, &str)> =
                token.iter().map(|t| ("X-aws-ec2-metadata-token", t.as_str())).collect();
            utf8(get(agent, &url, &headers, budget(REQUEST_TIMEOUT))?)
        }
        Source::None => Err("no user data source".to_owned()),
    }
}

fn read_cidata(root: &Path) -> Result<String, String> {
    let path = host_path(root, CIDATA_USER_DATA_PATH);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_USERDATA_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    if bytes.len() > MAX_USERDATA_BYTES {
        return Err(format!("{} is larger than {MAX_USERDATA_BYTES} bytes", path.display()));
    }
    utf8(bytes)
}

fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "user data is not UTF-8".to_owned())
}

/// IMDSv2: `PUT /latest/api/token`; any failure means "use IMDSv1".
fn aws_token(agent: &Agent, base: &str, timeout: Duration) -> Result<String, String> {
    let url = format!("{base}/latest/api/token");
    let response = agent
        .put(&url)
        .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .send_empty();
    let body = read_ok("PUT", &url, response)?;
    let token = String::from_utf8(body).map_err(|_| format!("PUT {url}: token is not UTF-8"))?;
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("PUT {url}: unusable token"));
    }
    Ok(token.to_owned())
}

fn get(
    agent: &Agent,
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.config().timeout_global(Some(timeout)).build().call();
    read_ok("GET", url, response)
}

/// The body of a 200 response, bounded; anything else is a failure naming method, URL, status.
fn read_ok(
    method: &str,
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Vec<u8>, String> {
    let response = response.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status();
    if status != 200 {
        return Err(format!("{method} {url}: HTTP {}", status.as_u16()));
    }
    response
        .into_body()
        .into_with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))
}
