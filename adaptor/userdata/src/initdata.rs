//! The `/run/peerpod/initdata` encoding: base64 (standard alphabet, padded) of gzip of the
//! initdata TOML, on one line. Encoding is deterministic (mtime 0, fixed OS byte) so rendered
//! userdata is stable; decoding is bounded so a gzip bomb cannot exhaust VM memory.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};

use crate::UserDataError;

/// Largest decompressed initdata the decoder returns (the TOML carries at most a policy and two
/// small config files).
pub const MAX_INITDATA_TOML_BYTES: usize = 4 * 1024 * 1024;

/// gzip OS byte for "unknown", what Go's `compress/gzip` writes.
const GZIP_OS_UNKNOWN: u8 = 255;

/// base64(gzip(toml)) as upstream's adaptor writes it for an annotation value.
pub fn encode_initdata(toml: &str) -> Result<String, UserDataError> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(Vec::with_capacity(toml.len() / 2 + 64), Compression::default());
    gz.write_all(toml.as_bytes()).map_err(|e| UserDataError::InitdataEncode(e.to_string()))?;
    let compressed = gz.finish().map_err(|e| UserDataError::InitdataEncode(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(compressed))
}

/// Decodes the file content back to the TOML text. ASCII whitespace (line breaks of a wrapped
/// or newline-terminated file) is ignored; concatenated gzip members are read like Go does.
pub fn decode_initdata(encoded: &str) -> Result<String, UserDataError> {
    let compact: Vec<u8> = encoded.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| UserDataError::InitdataDecode("not standard padded base64".to_owned()))?;
    let mut toml = Vec::new();
    let cap = MAX_INITDATA_TOML_BYTES as u64 + 1;
    MultiGzDecoder::new(compressed.as_slice())
        .take(cap)
        .read_to_end(&mut toml)
        .map_err(|_| UserDataError::InitdataDecode("not gzip data".to_owned()))?;
    if toml.len() > MAX_INITDATA_TOML_BYTES {
        return Err(UserDataError::InitdataDecode(format!(
            "decompresses to more than {MAX_INITDATA_TOML_BYTES} bytes"
        )));
    }
    String::from_utf8(toml)
        .map_err(|_| UserDataError::InitdataDecode("toml is not utf-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_fixed_and_output_deterministic() {
        let a = encode_initdata("algorithm = \"sha256\"\n").unwrap();
        let b = encode_initdata("algorithm = \"sha256\"\n").unwrap();
        assert_eq!(a, b);
        let raw = base64::engine::general_purpose::STANDARD.decode(&a).unwrap();
        // magic, deflate, no flags, mtime 0.
        assert_eq!(&raw[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(raw[9], GZIP_OS_UNKNOWN);
    }

    #[test]
    fn bomb_is_refused() {
        let zeros = "\0".repeat(MAX_INITDATA_TOML_BYTES + 10);
        let bomb = encode_initdata(&zeros).unwrap();
        let err = decode_initdata(&bomb).unwrap_err().to_string();
        assert!(err.contains("decompresses to more than"), "{err}");
    }
}
