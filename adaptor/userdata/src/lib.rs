//! The userdata the adaptor hands to a provider plugin for each pod VM: a `#cloud-config`
//! document whose only key is `write_files`, rendered byte for byte like upstream's adaptor so
//! upstream pod VM images read it, and parsed back on the VM side (process-user-data).
//!
//! Reading order: [`UserData`] and [`render`] (adaptor side), [`check_size`] (against the plugin's
//! `limits.maxUserDataBytes`), [`parse`] and [`ParsedUserData`] (VM side), [`ForwarderConfig`]
//! (apf.json), [`encode_initdata`]/[`decode_initdata`], [`render_files`] (the raw template).
//! Facts: `caa-facts.md` §2.4 steps 10–15, §3, §7.

mod cloud_config;
mod error;
mod forwarder;
mod go_json;
mod initdata;
mod netenum;
mod parse;

use std::fmt;

pub use cloud_config::{CLOUD_CONFIG_HEADER, WriteFile, render_files};
pub use error::UserDataError;
pub use forwarder::{ForwarderConfig, Neighbor, PodNetwork, Route};
pub use initdata::{MAX_INITDATA_TOML_BYTES, decode_initdata, encode_initdata};
pub use netenum::{NeighborState, RouteProtocol, RouteScope};
pub use parse::{IgnoredItemKey, MAX_FILES, MAX_PATH_BYTES, SkippedFile};

use forwarder::Redacted;

/// The forwarder config inside the VM.
pub const APF_JSON_PATH: &str = "/run/peerpod/apf.json";
/// Registry credentials for image pulls inside the VM.
pub const AUTH_JSON_PATH: &str = "/run/peerpod/auth.json";
/// base64(gzip(initdata TOML)).
pub const INITDATA_PATH: &str = "/run/peerpod/initdata";
/// Empty file whose presence enables the scratch-space service.
pub const SCRATCH_SPACE_MARKER_PATH: &str = "/run/peerpod/scratch-space.marker";
/// Attestation agent config; accepted by the VM, never sent by the adaptor.
pub const AA_TOML_PATH: &str = "/run/peerpod/aa.toml";
/// Confidential data hub config; accepted by the VM, never sent by the adaptor.
pub const CDH_TOML_PATH: &str = "/run/peerpod/cdh.toml";
/// The paths process-user-data writes; other entries are logged and ignored.
pub const ALLOWED_PATHS: &[&str] = &[
    AA_TOML_PATH,
    CDH_TOML_PATH,
    APF_JSON_PATH,
    AUTH_JSON_PATH,
    INITDATA_PATH,
    SCRATCH_SPACE_MARKER_PATH,
];
/// auth.json larger than this is left out of the userdata (upstream `DefaultAuthfileLimit`).
pub const AUTH_JSON_LIMIT: usize = 12288;
/// Largest userdata text [`parse`] reads (IMDS limits are 16–64 KiB; libvirt has none).
pub const MAX_USERDATA_BYTES: usize = 1024 * 1024;

/// Where the initdata comes from, which decides whether the adaptor encodes it.
#[derive(Clone, PartialEq, Eq)]
pub enum Initdata {
    /// Raw TOML (the `cc_init_data` annotation as Kata passes it): gzip+base64 on render.
    Toml(String),
    /// The global `INITDATA` setting: already base64(gzip(toml)), written unchanged except for
    /// surrounding whitespace.
    Encoded(String),
}

/// Everything CreateVM puts into the userdata (§2.4 steps 10–15). aa.toml, cdh.toml and
/// policy.rego are not here: the adaptor never writes them; they reach the VM inside initdata.
#[derive(Clone, PartialEq, Eq)]
pub struct UserData {
    /// `/run/peerpod/apf.json`, always present.
    pub forwarder: ForwarderConfig,
    /// `/run/peerpod/auth.json` text (`{"auths":{…}}`); left out when over [`AUTH_JSON_LIMIT`].
    /// Characters YAML cannot carry raw (U+2028, DEL, C1 controls, …) are written as JSON
    /// `\uXXXX` escapes, which assumes (as upstream does) that the text is JSON.
    pub auth_json: Option<String>,
    /// `/run/peerpod/initdata`; `None` or an empty string writes nothing.
    pub initdata: Option<Initdata>,
    /// Writes `/run/peerpod/scratch-space.marker` (`ENABLE_SCRATCH_SPACE`).
    pub scratch_space: bool,
}

impl UserData {
    /// Userdata with only the forwarder config.
    pub fn new(forwarder: ForwarderConfig) -> Self {
        UserData { forwarder, auth_json: None, initdata: None, scratch_space: false }
    }
}

impl fmt::Debug for Initdata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Initdata::Toml(t) => f.debug_tuple("Toml").field(&Redacted(t.len())).finish(),
            Initdata::Encoded(t) => f.debug_tuple("Encoded").field(&Redacted(t.len())).finish(),
        }
    }
}

impl fmt::Debug for UserData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserData")
            .field("forwarder", &self.forwarder)
            .field("auth_json", &self.auth_json.as_ref().map(|a| Redacted(a.len())))
            .field("initdata", &self.initdata)
            .field("scratch_space", &self.scratch_space)
            .finish()
    }
}

/// The `write_files` entries for `userdata`, in upstream's order: apf.json, auth.json,
/// initdata, scratch-space marker.
pub fn files(userdata: &UserData) -> Result<Vec<WriteFile>, UserDataError> {
    let mut files = vec![WriteFile::new(APF_JSON_PATH, userdata.forwarder.to_json()?)];
    if let Some(auth) = &userdata.auth_json {
        if auth.len() <= AUTH_JSON_LIMIT {
            let auth = go_json::escape_yaml_unsafe(auth).into_owned();
            files.push(WriteFile::new(AUTH_JSON_PATH, auth));
        } else {
            tracing::warn!(
                size = auth.len(),
                limit = AUTH_JSON_LIMIT,
                "image pull secrets skipped: auth.json is larger than the userdata allows"
            );
        }
    }
    match &userdata.initdata {
        Some(Initdata::Toml(toml)) if !toml.is_empty() => {
            files.push(WriteFile::new(INITDATA_PATH, encode_initdata(toml)?));
        }
        // Surrounding whitespace means nothing to the base64 reader but would break the block.
        Some(Initdata::Encoded(encoded)) if !encoded.trim().is_empty() => {
            files.push(WriteFile::new(INITDATA_PATH, encoded.trim()));
        }
        _ => {}
    }
    if userdata.scratch_space {
        files.push(WriteFile::new(SCRATCH_SPACE_MARKER_PATH, ""));
    }
    Ok(files)
}

/// Renders the `#cloud-config` text for `userdata` exactly as upstream's adaptor does.
/// Deterministic: the same input always gives the same bytes.
pub fn render(userdata: &UserData) -> Result<String, UserDataError> {
    render_files(&files(userdata)?)
}

/// Checks the rendered userdata against a plugin's `limits.maxUserDataBytes` (UTF-8 bytes before
/// any encoding the plugin applies); `None` means no limit.
pub fn check_size(rendered: &str, max: Option<u64>) -> Result<(), UserDataError> {
    let size = rendered.len() as u64;
    match max {
        Some(max) if size > max => Err(UserDataError::TooLarge { size, max }),
        _ => Ok(()),
    }
}

/// The VM-side view of a userdata document.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedUserData {
    /// Every `write_files` entry in document order, content as a YAML reader sees it (non-empty
    /// content ends with the newline the literal block adds; `encoding: b64` content decoded). Callers write only
    /// [`ALLOWED_PATHS`]; for duplicate paths the last entry wins.
    pub files: Vec<WriteFile>,
    /// Top-level keys other than `write_files`, skipped (upstream's reader fails on them).
    pub ignored_keys: Vec<String>,
    /// Keys inside `write_files` entries that were skipped (`defer`, unknown ones).
    pub ignored_item_keys: Vec<IgnoredItemKey>,
    /// Entries left out of [`files`](Self::files): an unsupported `encoding` or `append` true.
    pub skipped_files: Vec<SkippedFile>,
    /// Decoded `/run/peerpod/apf.json`.
    pub forwarder: Option<ForwarderConfig>,
    /// `/run/peerpod/auth.json` without the trailing newline the literal block added.
    pub auth_json: Option<String>,
    /// `/run/peerpod/initdata` decoded to its TOML text.
    pub initdata: Option<String>,
    /// `/run/peerpod/scratch-space.marker` is present.
    pub scratch_space: bool,
}

impl fmt::Debug for ParsedUserData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedUserData")
            .field("files", &self.files)
            .field("ignored_keys", &self.ignored_keys)
            .field("ignored_item_keys", &self.ignored_item_keys)
            .field("skipped_files", &self.skipped_files)
            .field("forwarder", &self.forwarder)
            .field("auth_json", &self.auth_json.as_ref().map(|a| Redacted(a.len())))
            .field("initdata", &self.initdata.as_ref().map(|a| Redacted(a.len())))
            .field("scratch_space", &self.scratch_space)
            .finish()
    }
}

impl ParsedUserData {
    /// The last entry for `path`.
    pub fn file(&self, path: &str) -> Option<&WriteFile> {
        self.files.iter().rev().find(|f| f.path == path)
    }

    /// Back to the adaptor-side value (initdata as TOML). Fails without apf.json.
    pub fn to_user_data(&self) -> Result<UserData, UserDataError> {
        Ok(UserData {
            forwarder: self.forwarder.clone().ok_or(UserDataError::MissingFile(APF_JSON_PATH))?,
            auth_json: self.auth_json.clone(),
            initdata: self.initdata.clone().map(Initdata::Toml),
            scratch_space: self.scratch_space,
        })
    }
}

/// Parses userdata inside the VM: the `write_files` entries, then apf.json and initdata decoded.
/// Input over [`MAX_USERDATA_BYTES`] and anything outside the documented YAML subset are errors;
/// no input panics.
pub fn parse(text: &str) -> Result<ParsedUserData, UserDataError> {
    if text.len() > MAX_USERDATA_BYTES {
        return Err(UserDataError::InputTooLarge { size: text.len(), max: MAX_USERDATA_BYTES });
    }
    let doc = parse::parse_document(text)?;
    let mut out = ParsedUserData {
        files: doc.files,
        ignored_keys: doc.ignored_keys,
        ignored_item_keys: doc.ignored_item_keys,
        skipped_files: doc.skipped_files,
        forwarder: None,
        auth_json: None,
        initdata: None,
        scratch_space: false,
    };
    if let Some(apf) = out.file(APF_JSON_PATH) {
        out.forwarder = Some(ForwarderConfig::from_json(apf.content.as_bytes())?);
    }
    if let Some(auth) = out.file(AUTH_JSON_PATH) {
        let text = auth.content.strip_suffix('\n').unwrap_or(&auth.content);
        out.auth_json = Some(text.to_owned());
    }
    if let Some(init) = out.file(INITDATA_PATH) {
        out.initdata = Some(decode_initdata(&init.content)?);
    }
    out.scratch_space = out.file(SCRATCH_SPACE_MARKER_PATH).is_some();
    Ok(out)
}
