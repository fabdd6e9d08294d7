//! The initdata step (caa-facts §3.3, §7 step 3): make sure `/run/peerpod/initdata` exists
//! (writing a default when the userdata had none), decode it (base64, gzip, TOML), check the
//! digest algorithm, write the `[data]` files the VM consumes, and record the digest of the TOML
//! bytes in `/run/peerpod/initdata.digest`, which the systemd unit extends into a TPM PCR.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use caa_userdata::{AA_TOML_PATH, CDH_TOML_PATH, INITDATA_PATH, UserDataError};
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::provision::write_private_file;
use crate::{Error, host_path};

/// The initdata written when the userdata carries none: sha256, version 0.1.0 and an empty
/// `aa.toml` (whose appearance starts the attestation agent with its defaults).
pub const DEFAULT_INITDATA_TOML: &str =
    "algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = \"\"\n";
/// Lowercase hex digest of the initdata TOML bytes.
pub const INITDATA_DIGEST_PATH: &str = "/run/peerpod/initdata.digest";
/// The kata-agent policy, when the initdata carries one.
pub const POLICY_REGO_PATH: &str = "/run/peerpod/policy.rego";

/// `[data]` entries the VM consumes, and where they go.
const DATA_FILES: [(&str, &str); 3] =
    [("aa.toml", AA_TOML_PATH), ("cdh.toml", CDH_TOML_PATH), ("policy.rego", POLICY_REGO_PATH)];
/// Largest initdata file read (base64 of gzip of at most `MAX_INITDATA_TOML_BYTES`).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What [`process`] did.
#[derive(Debug)]
pub(crate) struct Processed {
    pub(crate) defaulted: bool,
    pub(crate) files: Vec<String>,
    pub(crate) digest: String,
}

/// The initdata TOML; unknown keys are ignored, missing ones read as empty.
#[derive(Deserialize)]
struct Initdata {
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

pub(crate) fn process(root: &Path) -> Result<Processed, Error> {
    let path = host_path(root, INITDATA_PATH);
    let defaulted = match path.try_exists() {
        Ok(exists) => !exists,
        Err(e) => return Err(Error::io("checking", &path, e)),
    };
    if defaulted {
        let encoded = caa_userdata::encode_initdata(DEFAULT_INITDATA_TOML)
            .map_err(|e| Error::Initdata(e.to_string()))?;
        write_private_file(root, INITDATA_PATH, encoded.as_bytes())?;
        tracing::info!(path = INITDATA_PATH, "no initdata in the user data, wrote the default");
    }
    let mut encoded = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut encoded))
        .map_err(|e| Error::io("reading", &path, e))?;
    if encoded.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Initdata(format!("file is larger than {MAX_FILE_BYTES} bytes")));
    }
    let encoded = String::from_utf8(encoded)
        .map_err(|_| Error::Initdata("file is not base64 text".to_owned()))?;
    let toml_text = caa_userdata::decode_initdata(&encoded).map_err(|e| match e {
        UserDataError::InitdataDecode(reason) => Error::Initdata(reason),
        other => Error::Initdata(other.to_string()),
    })?;
    let initdata: Initdata =
        toml::from_str(&toml_text).map_err(|e| Error::Initdata(toml_reason(&e, &toml_text)))?;
    let digest = digest(&initdata.algorithm, toml_text.as_bytes()).ok_or_else(|| {
        Error::UnsupportedAlgorithm(initdata.algorithm.chars().take(32).collect())
    })?;
    tracing::info!(algorithm = %initdata.algorithm, version = ?initdata.version, "initdata decoded");
    let mut files = Vec::new();
    for (name, content) in &initdata.data {
        let Some((_, vm_path)) = DATA_FILES.iter().find(|(n, _)| n == name) else {
            tracing::info!(?name, "initdata entry not used in the VM, ignored");
            continue;
        };
        write_private_file(root, vm_path, content.as_bytes())?;
        tracing::info!(path = vm_path, bytes = content.len(), "wrote file from initdata");
        files.push((*vm_path).to_owned());
    }
    write_private_file(root, INITDATA_DIGEST_PATH, digest.as_bytes())?;
    tracing::info!(path = INITDATA_DIGEST_PATH, %digest, "wrote initdata digest");
    Ok(Processed { defaulted, files, digest })
}

/// Lowercase hex of `algorithm` over `bytes`; `None` for an unsupported algorithm.
fn digest(algorithm: &str, bytes: &[u8]) -> Option<String> {
    let raw: Vec<u8> = match algorithm {
        "sha256" => Sha256::digest(bytes).to_vec(),
        "sha384" => Sha384::digest(bytes).to_vec(),
        "sha512" => Sha512::digest(bytes).to_vec(),
        _ => return None,
    };
    let mut hex = String::with_capacity(raw.len() * 2);
    for b in raw {
        let _ = write!(hex, "{b:02x}");
    }
    Some(hex)
}

/// A TOML error by line and kind; the parser's message is dropped when it quotes a value (the
/// data files may hold credentials).
fn toml_reason(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    let message = if message.contains(['"', '\'', '`']) { "unexpected value" } else { message };
    match e.span() {
        Some(span) => {
            let end = span.start.min(text.len());
            let line = text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1;
            format!("TOML line {line}: {message}")
        }
        None => format!("TOML: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex_of_the_right_length() {
        assert_eq!(
            digest("sha256", b"abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest("sha384", b"").unwrap().len(), 96);
        assert_eq!(digest("sha512", b"").unwrap().len(), 128);
        assert_eq!(digest("SHA256", b""), None);
        assert_eq!(digest("md5", b""), None);
    }

    #[test]
    fn toml_errors_do_not_quote_values() {
        for text in ["data = \"s3cr3t\"\n", "algorithm = 's3cr3t\n", "x = 1\n[data]\na = 's3cr3t"] {
            let e = toml::from_str::<Initdata>(text).err().unwrap();
            let reason = toml_reason(&e, text);
            assert!(!reason.contains("s3cr3t"), "{reason}");
            assert!(reason.starts_with("TOML line "), "{reason}");
        }
    }
}
