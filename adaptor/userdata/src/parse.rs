//! Reading cloud-config back inside the pod VM without a YAML library. The accepted subset is a
//! superset of what upstream's adaptor (and ours) renders:
//!
//! - comment lines, blank lines, an optional leading `---`; `...` ends the document;
//! - top-level `write_files:` with a block sequence (at any indentation, also column 0) or `[]`;
//!   any other top-level key is skipped together with its indented block and reported;
//! - each item a block mapping (`- key: value` then keys aligned under the first) with keys
//!   `path`, `content`, `owner`, `permissions`, `encoding`, `append`;
//! - values: literal block scalars `|` with optional chomping (`-`, `+`) and indentation digit,
//!   single-line plain, 'single-quoted' or "double-quoted" (common escapes) scalars; `~`/`null`
//!   read as empty. Folded (`>`), flow collections, anchors, tags and multi-line flow scalars are
//!   errors in those keys.
//!
//! Unlike upstream's strict reader, unknown things are tolerated where skipping them cannot
//! change what a written file holds:
//!
//! - any other item key (`defer`, `source`, `mode`, ...) is skipped with its value (whatever its
//!   form: the lines indented under it) and reported in [`IgnoredItemKey`];
//! - `encoding: b64` or `base64` content is decoded (ASCII whitespace ignored, padding optional;
//!   it must decode to UTF-8); `text/plain` or no encoding is the content as written;
//! - an item with any other encoding (`gzip`, `gz+b64`, ...) or with `append` true (`true`,
//!   `yes`, `on`, `1`, any case, like cloud-init) is not returned as a file but reported in
//!   [`SkippedFile`]: writing it as-is would be wrong, and the rest of the document stays usable.
//!
//! Errors name a line number and a reason, never the content (it holds secrets).

mod scalar;

use crate::UserDataError;
use crate::cloud_config::WriteFile;

/// Longest path the parser (and the renderer) accepts.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most `write_files` entries the parser accepts.
pub const MAX_FILES: usize = 64;

/// Longest key or encoding name kept in a report (hostile input cannot bloat logs).
const MAX_REPORTED_CHARS: usize = 64;

/// A key inside a `write_files` entry that the parser skipped together with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredItemKey {
    /// The entry's path.
    pub path: String,
    /// The key, cut to 64 characters.
    pub key: String,
}

/// A `write_files` entry that was read but must not be written as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFile {
    /// The entry's path.
    pub path: String,
    /// Why, e.g. `encoding gzip is not supported` (never the content).
    pub reason: String,
}

/// The `write_files` entries and what was skipped.
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) files: Vec<WriteFile>,
    pub(crate) ignored_keys: Vec<String>,
    pub(crate) ignored_item_keys: Vec<IgnoredItemKey>,
    pub(crate) skipped_files: Vec<SkippedFile>,
}

pub(crate) fn parse_document(text: &str) -> Result<Document, UserDataError> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut p = Parser { lines, i: 0 };
    let mut doc = Document::default();
    let mut seen_write_files = false;
    let mut started = false;
    while p.i < p.lines.len() {
        let line = p.lines[p.i];
        if is_blank_or_comment(line) {
            p.i += 1;
            continue;
        }
        if line == "---" && !started {
            started = true;
            p.i += 1;
            continue;
        }
        started = true;
        if line == "..." {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Err(p.err("unexpected indentation at top level"));
        }
        let (key, rest) = p.key_value(line)?;
        if key != "write_files" {
            if doc.ignored_keys.len() < MAX_FILES {
                doc.ignored_keys.push(key.chars().take(MAX_REPORTED_CHARS).collect());
            }
            p.i += 1;
            p.skip_nested_block();
            continue;
        }
        if seen_write_files {
            return Err(p.err("write_files appears twice"));
        }
        seen_write_files = true;
        match strip_comment(rest).trim() {
            "" => {
                p.i += 1;
                p.sequence(&mut doc)?;
            }
            "[]" => p.i += 1,
            _ => return Err(p.err("write_files must be a block sequence or []")),
        }
    }
    Ok(doc)
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    i: usize,
}

/// One parsed `write_files` item: the file, the keys read past, and why it must not be written.
struct Item {
    file: WriteFile,
    ignored_keys: Vec<String>,
    skip: Option<String>,
}

/// cloud-init's reading of `append` (YAML 1.1 booleans and its string forms).
fn is_truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
}

/// `encoding: b64` content: whitespace (line breaks of a wrapped block) ignored, padding optional.
fn decode_base64(content: &str) -> Result<String, &'static str> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: Vec<u8> = content.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = ENGINE.decode(compact).map_err(|_| "b64 content is not valid base64")?;
    String::from_utf8(bytes).map_err(|_| "b64 content does not decode to UTF-8")
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

fn is_blank_or_comment(line: &str) -> bool {
    is_blank(line) || line.trim_start_matches([' ', '\t']).starts_with('#')
}

fn indent_of(line: &str) -> usize {
    line.bytes().take_while(|&b| b == b' ').count()
}

fn is_dash(rest: &str) -> bool {
    rest == "-" || rest.starts_with("- ")
}

/// Drops a ` #` comment from a plain value (a `#` right after a non-space is content).
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    let cut = (0..bytes.len())
        .find(|&k| bytes[k] == b'#' && (k == 0 || bytes[k - 1] == b' ' || bytes[k - 1] == b'\t'));
    cut.map_or(value, |k| &value[..k])
}

impl<'a> Parser<'a> {
    fn err(&self, reason: impl Into<String>) -> UserDataError {
        UserDataError::Syntax { line: self.i + 1, reason: reason.into() }
    }

    /// Splits `key: rest` (or `key:` at end of line).
    fn key_value(&self, text: &'a str) -> Result<(&'a str, &'a str), UserDataError> {
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(text.len());
        let (key, rest) = text.split_at(end);
        if key.is_empty() {
            return Err(self.err("expected a plain mapping key"));
        }
        let Some(rest) = rest.strip_prefix(':') else {
            return Err(self.err("expected `key:`"));
        };
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return Err(self.err("expected a space after `key:`"));
        }
        Ok((key, rest))
    }

    /// Skips the indented (or column-0 sequence) block under an ignored top-level key.
    fn skip_nested_block(&mut self) {
        while let Some(line) = self.lines.get(self.i) {
            if is_blank_or_comment(line) || line.starts_with([' ', '\t']) || is_dash(line) {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// The next non-blank, non-comment line index, if any.
    fn next_content_line(&self, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&k| !is_blank_or_comment(self.lines[k]))
    }

    fn sequence(&mut self, doc: &mut Document) -> Result<(), UserDataError> {
        let mut items = 0;
        let mut seq_indent: Option<usize> = None;
        while let Some(k) = self.next_content_line(self.i) {
            self.i = k;
            let line = self.lines[k];
            let ind = indent_of(line);
            let rest = &line[ind..];
            if rest.starts_with('\t') {
                return Err(self.err("tab in indentation"));
            }
            if rest == "..." && ind == 0 {
                return Ok(());
            }
            match seq_indent {
                None if is_dash(rest) => seq_indent = Some(ind),
                None if ind == 0 => return Ok(()),
                None => return Err(self.err("expected a `- ` sequence item")),
                Some(s) if ind < s || (ind == s && ind == 0 && !is_dash(rest)) => return Ok(()),
                Some(s) if ind == s && is_dash(rest) => {}
                Some(_) => return Err(self.err("unexpected indentation in write_files")),
            }
            if items >= MAX_FILES {
                return Err(self.err(format!("more than {MAX_FILES} write_files entries")));
            }
            items += 1;
            let item = self.item(ind)?;
            for key in item.ignored_keys {
                if doc.ignored_item_keys.len() < MAX_FILES {
                    doc.ignored_item_keys
                        .push(IgnoredItemKey { path: item.file.path.clone(), key });
                }
            }
            match item.skip {
                Some(reason) => {
                    doc.skipped_files.push(SkippedFile { path: item.file.path, reason });
                }
                None => doc.files.push(item.file),
            }
        }
        Ok(())
    }

    /// One `- key: value ...` item whose dash is at column `dash`.
    fn item(&mut self, dash: usize) -> Result<Item, UserDataError> {
        let item_line = self.i + 1;
        let line = self.lines[self.i];
        let after = &line[dash + 1..];
        let key_col;
        let mut first: Option<&'a str> = None;
        if after.trim_matches([' ', '\t']).is_empty() {
            let Some(k) = self.next_content_line(self.i + 1) else {
                return Err(self.err("empty write_files item"));
            };
            key_col = indent_of(self.lines[k]);
            if key_col <= dash {
                return Err(self.err("empty write_files item"));
            }
            self.i = k;
        } else {
            let spaces = after.bytes().take_while(|&b| b == b' ').count();
            key_col = dash + 1 + spaces;
            first = Some(&line[key_col..]);
        }
        let mut file = WriteFile::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut ignored_keys = Vec::new();
        let (mut encoding, mut append) = (None, None);
        loop {
            let text = match first.take() {
                Some(t) => t,
                None => {
                    let Some(k) = self.next_content_line(self.i) else { break };
                    let ind = indent_of(self.lines[k]);
                    if ind < key_col {
                        self.i = k;
                        break;
                    }
                    self.i = k;
                    if ind > key_col || self.lines[k][ind..].starts_with('\t') {
                        return Err(self.err("unexpected indentation in a write_files item"));
                    }
                    &self.lines[k][key_col..]
                }
            };
            let (key, rest) = self.key_value(text)?;
            let key_err = |reason: String| UserDataError::Syntax { line: self.i + 1, reason };
            if !matches!(key, "path" | "content" | "owner" | "permissions" | "encoding" | "append")
            {
                ignored_keys.push(key.chars().take(MAX_REPORTED_CHARS).collect());
                self.skip_value(rest, key_col);
                continue;
            }
            if seen.contains(&key) {
                return Err(key_err(format!("duplicate key {key}")));
            }
            seen.push(key);
            let value = self.value(rest, key_col)?;
            match key {
                "path" => file.path = value,
                "content" => file.content = value,
                "owner" => file.owner = Some(value),
                "permissions" => file.permissions = Some(value),
                "encoding" => encoding = Some(value),
                _ => append = Some(value),
            }
        }
        let item_err =
            |reason: &str| UserDataError::Syntax { line: item_line, reason: reason.into() };
        if file.path.is_empty() {
            return Err(item_err("write_files item without a path"));
        }
        if file.path.len() > MAX_PATH_BYTES {
            return Err(item_err("path too long"));
        }
        let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
        let skip = if append.as_deref().is_some_and(is_truthy) {
            Some("append is not supported".to_owned())
        } else {
            match encoding.as_deref() {
                None | Some("" | "text/plain") => None,
                Some("b64" | "base64") => {
                    file.content = decode_base64(&file.content).map_err(item_err)?;
                    None
                }
                Some(other) => {
                    let name: String = other.chars().take(MAX_REPORTED_CHARS).collect();
                    Some(format!("encoding {name} is not supported"))
                }
            }
        };
        Ok(Item { file, ignored_keys, skip })
    }

    /// Skips the value of an ignored key on line `self.i`: the rest of the line and every line
    /// indented under the key (plus a same-column `- ` sequence when the line has no value).
    fn skip_value(&mut self, rest: &str, key_col: usize) {
        let bare = strip_comment(rest).trim_matches([' ', '\t']).is_empty();
        self.i += 1;
        while let Some(line) = self.lines.get(self.i) {
            let ind = indent_of(line);
            let nested = ind > key_col || (bare && ind == key_col && is_dash(&line[ind..]));
            if is_blank_or_comment(line) || nested {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// The value after `key:` on line `self.i`; leaves `self.i` on the next unread line.
    fn value(&mut self, rest: &str, key_col: usize) -> Result<String, UserDataError> {
        let rest = rest.trim_start_matches([' ', '\t']);
        if let Some(header) = rest.strip_prefix('|') {
            return self.literal_block(header, key_col);
        }
        let value = if let Some(body) = rest.strip_prefix('\'') {
            self.single_quoted(body)?
        } else if let Some(body) = rest.strip_prefix('"') {
            self.double_quoted(body)?
        } else {
            let plain = strip_comment(rest).trim_end_matches([' ', '\t']);
            if plain.starts_with(['>', '[', '{', '&', '*', '!', '%', '@', '`', '?']) {
                return Err(self.err("unsupported yaml construct (folded, flow, anchor or tag)"));
            }
            if plain.contains(": ") || plain.ends_with(':') || is_dash(plain) {
                return Err(self.err("nested mappings and sequences are not supported"));
            }
            if plain.is_empty()
                && let Some(k) = self.next_content_line(self.i + 1)
                && indent_of(self.lines[k]) > key_col
            {
                return Err(self.err("nested mappings and sequences are not supported"));
            }
            match plain {
                "~" | "null" | "Null" | "NULL" => String::new(),
                other => other.to_owned(),
            }
        };
        self.i += 1;
        Ok(value)
    }
}
