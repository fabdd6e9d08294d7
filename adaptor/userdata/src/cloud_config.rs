//! The cloud-config text itself, written exactly like upstream's template: `#cloud-config`, a
//! blank line, `write_files:`, then per file `  - path: <path>` and, for non-empty content,
//! `    content: |` with every line indented by six spaces. Content that a YAML literal block
//! would alter is refused rather than silently changed.

use std::fmt;

use crate::UserDataError;
use crate::forwarder::Redacted;

/// First line of every cloud-config document.
pub const CLOUD_CONFIG_HEADER: &str = "#cloud-config";

/// One `write_files` entry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WriteFile {
    /// Absolute path inside the VM.
    pub path: String,
    /// File content; empty content is rendered without a `content` key.
    pub content: String,
    /// `owner`, only ever read (the adaptor never writes it: upstream's VM parser rejects it).
    pub owner: Option<String>,
    /// `permissions`, only ever read, as written (e.g. `'0644'` → `0644`).
    pub permissions: Option<String>,
}

impl WriteFile {
    /// An entry with a path and content only, the only kind the adaptor renders.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        WriteFile { path: path.into(), content: content.into(), owner: None, permissions: None }
    }
}

impl fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFile")
            .field("path", &self.path)
            .field("content", &Redacted(self.content.len()))
            .field("owner", &self.owner)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// Renders a cloud-config with these `write_files` entries, in order. Entries carrying `owner`
/// or `permissions` are refused: upstream pod VM images reject those keys.
pub fn render_files(files: &[WriteFile]) -> Result<String, UserDataError> {
    let mut out = String::with_capacity(
        64 + files.iter().map(|f| f.path.len() + f.content.len() * 9 / 8 + 32).sum::<usize>(),
    );
    out.push_str(CLOUD_CONFIG_HEADER);
    if !files.is_empty() {
        out.push_str("\n\nwrite_files:");
    }
    for file in files {
        check_path(&file.path)?;
        if file.owner.is_some() || file.permissions.is_some() {
            return Err(unrepresentable(
                &file.path,
                "owner and permissions are rejected by pod VM images",
            ));
        }
        out.push_str("\n  - path: ");
        out.push_str(&file.path);
        if !file.content.is_empty() {
            check_content(&file.path, &file.content)?;
            out.push_str("\n    content: |");
            for line in split_lines(&file.content) {
                out.push_str("\n      ");
                out.push_str(line);
            }
        }
    }
    out.push('\n');
    Ok(out)
}

/// Upstream's `splitLines`: split on `\n`, drop one trailing empty element.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
}

fn unrepresentable(path: &str, reason: &'static str) -> UserDataError {
    UserDataError::Unrepresentable { path: path.to_owned(), reason }
}

/// Paths are written as plain YAML scalars, so only a safe alphabet is allowed.
fn check_path(path: &str) -> Result<(), UserDataError> {
    let safe = path.starts_with('/')
        && path.len() <= crate::parse::MAX_PATH_BYTES
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+@=,".contains(&b));
    if safe {
        Ok(())
    } else {
        Err(UserDataError::Unrepresentable {
            path: path.chars().take(64).collect(),
            reason: "path must be absolute and use only [A-Za-z0-9/._-+@=,]",
        })
    }
}

/// Refuses content that would not read back unchanged (up to the one newline the literal block
/// adds) through a YAML 1.1/1.2 parser such as cloud-init's or Go's.
fn check_content(path: &str, content: &str) -> Result<(), UserDataError> {
    for c in content.chars() {
        let printable = matches!(c, '\t' | '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}');
        if !printable {
            return Err(unrepresentable(
                path,
                "content has a control character, carriage return, bom or unicode line break",
            ));
        }
    }
    let lines: Vec<&str> = split_lines(content).collect();
    let Some(first) = lines.iter().position(|l| l.bytes().any(|b| b != b' ')) else {
        return Err(unrepresentable(path, "content is only blank lines"));
    };
    if lines[..first].iter().any(|l| !l.is_empty()) {
        return Err(unrepresentable(path, "content starts with a line of only spaces"));
    }
    if lines[first].starts_with(' ') {
        return Err(unrepresentable(path, "first non-blank content line starts with a space"));
    }
    if lines.last().is_some_and(|l| l.is_empty()) {
        return Err(unrepresentable(path, "content ends with a blank line"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_is_the_header_line() {
        assert_eq!(render_files(&[]).unwrap(), "#cloud-config\n");
    }

    #[test]
    fn inner_blank_lines_carry_six_spaces() {
        let text = render_files(&[WriteFile::new("/a", "x\n\ny\n")]).unwrap();
        assert_eq!(
            text,
            "#cloud-config\n\nwrite_files:\n  - path: /a\n    content: |\n      x\n      \n      y\n"
        );
    }

    #[test]
    fn unsafe_inputs_are_refused() {
        for (path, content) in [
            ("/a", " leading"),
            ("/a", "\n  \nx"),
            ("/a", "x\r\ny"),
            ("/a", "x\u{2028}"),
            ("/a", "x\u{1}"),
            ("/a", "x\n\n"),
            ("/a", "\n"),
            ("relative", "x"),
            ("/a b", "x"),
            ("/a: b", "x"),
        ] {
            assert!(
                render_files(&[WriteFile::new(path, content)]).is_err(),
                "{path:?} {content:?}"
            );
        }
    }
}
