//! [`SandboxId`]: the Kata sandbox id, checked once at construction so that every later use
//! (state file names, `<pods-dir>/<sid>` directories, instance names, log fields) is path-safe.
//!
//! The character rules follow Kata's own id check (first character alphanumeric, then
//! alphanumerics, `.`, `-`, `_`, at least two characters), restricted to ASCII. On top of that we
//! refuse `..` anywhere and cap the length at 64 (containerd and CRI-O use 64 hex digits), which
//! keeps `<pods-dir>/<sid>/agent.ttrpc` inside a unix socket path.

use std::fmt;

/// Longest accepted sandbox id.
pub const MAX_SANDBOX_ID_LEN: usize = 64;

/// A validated sandbox id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SandboxId(String);

/// Why a sandbox id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxIdError {
    /// Upstream's text, kept because Kata users see it in pod events.
    #[error("empty sandbox id")]
    Empty,
    /// Too long.
    #[error("invalid sandbox id {shown}: longer than {MAX_SANDBOX_ID_LEN} characters")]
    TooLong {
        /// The id, escaped and shortened for display.
        shown: String,
    },
    /// A character or sequence outside the allowed set.
    #[error("invalid sandbox id {shown}: {reason}")]
    Invalid {
        /// The id, escaped and shortened for display.
        shown: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl SandboxId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<SandboxId, SandboxIdError> {
        let id = id.into();
        let shown = || shorten(&id);
        if id.is_empty() {
            return Err(SandboxIdError::Empty);
        }
        if id.len() > MAX_SANDBOX_ID_LEN {
            return Err(SandboxIdError::TooLong { shown: shown() });
        }
        let invalid = |reason| Err(SandboxIdError::Invalid { shown: shown(), reason });
        if id.len() < 2 {
            return invalid("shorter than 2 characters");
        }
        if !id.as_bytes()[0].is_ascii_alphanumeric() {
            return invalid("must start with an ASCII letter or digit");
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
            return invalid("only ASCII letters, digits, '.', '-' and '_' are allowed");
        }
        if id.contains("..") {
            return invalid("must not contain '..'");
        }
        Ok(SandboxId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters (the whole id when shorter), as used in instance names.
    pub fn short(&self) -> &str {
        // ASCII only, so byte slicing is character slicing.
        &self.0[..self.0.len().min(8)]
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SandboxId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SandboxId {
    type Err = SandboxIdError;

    fn from_str(s: &str) -> Result<SandboxId, SandboxIdError> {
        SandboxId::new(s)
    }
}

/// A hostile id may be huge or hold control characters: show an escaped prefix only.
fn shorten(id: &str) -> String {
    let prefix: String = id.chars().take(MAX_SANDBOX_ID_LEN + 8).collect();
    let more = if prefix.len() < id.len() { "…" } else { "" };
    format!("{prefix:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kata_style_ids() {
        for id in [
            "27e11ff35fd1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b",
            "ab",
            "sandbox-1",
            "my_pod.v2",
            "A9",
        ] {
            assert!(SandboxId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_hostile_ids() {
        let long = "a".repeat(MAX_SANDBOX_ID_LEN + 1);
        for id in [
            "",
            "a",
            "../etc",
            "a/b",
            "a..b",
            ".hidden",
            "-dash",
            "_under",
            "a b",
            "a\0b",
            "a\nb",
            "é1",
            "a\\b",
            long.as_str(),
        ] {
            assert!(SandboxId::new(id).is_err(), "{id:?} must be refused");
        }
    }

    #[test]
    fn empty_id_keeps_upstream_text() {
        assert_eq!(SandboxId::new("").unwrap_err().to_string(), "empty sandbox id");
    }

    #[test]
    fn error_text_escapes_control_characters() {
        let err = SandboxId::new("a\nb").unwrap_err().to_string();
        assert!(err.contains("\"a\\nb\""), "{err}");
    }

    #[test]
    fn short_is_the_first_eight_characters() {
        assert_eq!(SandboxId::new("0123456789abcdef").unwrap().short(), "01234567");
        assert_eq!(SandboxId::new("abc").unwrap().short(), "abc");
    }
}
