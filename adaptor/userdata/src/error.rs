//! The one error type of the crate. Messages never carry file contents: userdata holds TLS keys
//! and pull secrets, and these errors end up in logs.

/// Everything that can go wrong rendering, size-checking or parsing userdata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserDataError {
    /// apf.json could not be serialized (not expected with the types of this crate).
    #[error("serializing apf.json: {0}")]
    ForwarderEncode(String),
    /// Compressing the initdata failed. The text is upstream's CreateVM error prefix.
    #[error("failed to set initdata from annotation: {0}")]
    InitdataEncode(String),
    /// A file's path or content cannot travel through the cloud-config text unchanged.
    #[error("{path} cannot be written to cloud-config: {reason}")]
    Unrepresentable {
        /// The file path inside the VM.
        path: String,
        /// Why, without quoting the content.
        reason: &'static str,
    },
    /// The rendered userdata exceeds the provider plugin's `limits.maxUserDataBytes`.
    #[error(
        "userdata is {size} bytes, more than the {max} bytes the provider plugin accepts \
         (limits.maxUserDataBytes)"
    )]
    TooLarge {
        /// UTF-8 bytes of the rendered cloud-config.
        size: u64,
        /// The plugin's limit.
        max: u64,
    },
    /// The input handed to the parser is larger than it is willing to read.
    #[error("userdata is {size} bytes, more than the {max} bytes the parser accepts")]
    InputTooLarge {
        /// Bytes offered.
        size: usize,
        /// The parser's cap.
        max: usize,
    },
    /// The cloud-config text is outside the YAML subset the parser understands.
    #[error("userdata line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong, without quoting secret content.
        reason: String,
    },
    /// `/run/peerpod/apf.json` is missing from the userdata.
    #[error("userdata has no {0} entry")]
    MissingFile(&'static str),
    /// `/run/peerpod/apf.json` is not a forwarder config.
    #[error("invalid apf.json: {0}")]
    ForwarderDecode(String),
    /// `/run/peerpod/initdata` is not base64(gzip(UTF-8 TOML)) within the size cap.
    #[error("invalid initdata: {0}")]
    InitdataDecode(String),
}

impl UserDataError {
    /// Describes a serde_json error by kind and position only, never by the offending value.
    pub(crate) fn json_reason(e: &serde_json::Error) -> String {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "i/o error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected field type or value",
            serde_json::error::Category::Eof => "unexpected end of input",
        };
        let text = e.to_string();
        if text.starts_with("missing field") {
            // Names a schema field, never a value.
            text
        } else if e.line() == 0 {
            kind.to_owned()
        } else {
            format!("{kind} at line {} column {}", e.line(), e.column())
        }
    }
}
