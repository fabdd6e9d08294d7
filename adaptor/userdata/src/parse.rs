//! Reading cloud-config back inside the pod VM without a YAML library. The accepted subset is a
//! superset of what upstream's adaptor (and ours) renders:
//!
//! - comment lines, blank lines, an optional leading `---`; `...` ends the document;
//! - top-level `write_files:` with a block sequence (at any indentation, also column 0) or `[]`;
//!   any other top-level key is skipped together with its indented block and reported;
//! - each item a block mapping (`- key: value` then keys aligned under the first) with keys
//!   `path`, `content`, `owner`, `permissions`; `encoding`, `append`, `defer` and unknown keys are
//!   errors (their meaning would change what must be written);
//! - values: literal block scalars `|` with optional chomping (`-`, `+`) and indentation digit,
//!   single-line plain, 'single-quoted' or "double-quoted" (common escapes) scalars; `~`/`null`
//!   read as empty. Folded (`>`), flow collections, anchors, tags and multi-line flow scalars are
//!   errors.
//!
//! Errors name a line number and a reason, never the content (it holds secrets).

use crate::UserDataError;
use crate::cloud_config::WriteFile;

/// Longest path the parser (and the renderer) accepts.
pub const MAX_PATH_BYTES: usize = 4096;
/// Most `write_files` entries the parser accepts.
pub const MAX_FILES: usize = 64;

/// The `write_files` entries and the top-level keys that were skipped.
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) files: Vec<WriteFile>,
    pub(crate) ignored_keys: Vec<String>,
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
                doc.ignored_keys.push(key.chars().take(64).collect());
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
                p.sequence(&mut doc.files)?;
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

    fn sequence(&mut self, files: &mut Vec<WriteFile>) -> Result<(), UserDataError> {
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
            if files.len() >= MAX_FILES {
                return Err(self.err(format!("more than {MAX_FILES} write_files entries")));
            }
            files.push(self.item(ind)?);
        }
        Ok(())
    }

    /// One `- key: value ...` item whose dash is at column `dash`.
    fn item(&mut self, dash: usize) -> Result<WriteFile, UserDataError> {
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
            match key {
                "path" | "content" | "owner" | "permissions" => {}
                "encoding" | "append" | "defer" => {
                    return Err(key_err(format!("unsupported write_files key {key}")));
                }
                _ => return Err(key_err("unknown write_files key".to_owned())),
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
                _ => file.permissions = Some(value),
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
        Ok(file)
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

    fn after_quote(&self, tail: &str) -> Result<(), UserDataError> {
        let tail = tail.trim_start_matches([' ', '\t']);
        if tail.is_empty() || tail.starts_with('#') {
            Ok(())
        } else {
            Err(self.err("text after a closing quote"))
        }
    }

    fn single_quoted(&self, body: &str) -> Result<String, UserDataError> {
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((k, c)) = chars.next() {
            if c != '\'' {
                out.push(c);
            } else if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                out.push('\'');
            } else {
                self.after_quote(&body[k + 1..])?;
                return Ok(out);
            }
        }
        Err(self.err("unterminated or multi-line single-quoted scalar"))
    }

    fn double_quoted(&self, body: &str) -> Result<String, UserDataError> {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.after_quote(&body[k + 1..])?;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let hex_len = match e {
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        _ => 0,
                    };
                    if hex_len > 0 {
                        let hex: String = chars.by_ref().take(hex_len).map(|(_, h)| h).collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == hex_len)
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.err("bad escape in double-quoted scalar"))?;
                        out.push(ch);
                        continue;
                    }
                    out.push(match e {
                        '\\' => '\\',
                        '"' => '"',
                        '/' => '/',
                        ' ' => ' ',
                        'n' => '\n',
                        't' | '\t' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        _ => return Err(self.err("unsupported escape in double-quoted scalar")),
                    });
                }
                other => out.push(other),
            }
        }
        Err(self.err("unterminated or multi-line double-quoted scalar"))
    }
}

/// Chomping of a literal block scalar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Chomp {
    Clip,
    Strip,
    Keep,
}

impl Parser<'_> {
    /// `|` block: `header` is what follows the bar; `parent` is the key's column.
    fn literal_block(&mut self, header: &str, parent: usize) -> Result<String, UserDataError> {
        let header = strip_comment(header).trim_end_matches([' ', '\t']);
        let mut chomp = Chomp::Clip;
        let mut explicit: Option<usize> = None;
        for c in header.chars() {
            match c {
                '-' if chomp == Chomp::Clip => chomp = Chomp::Strip,
                '+' if chomp == Chomp::Clip => chomp = Chomp::Keep,
                '1'..='9' if explicit.is_none() => explicit = Some(c as usize - '0' as usize),
                _ => return Err(self.err("bad block scalar header")),
            }
        }
        let start = self.i + 1;
        let indent = match explicit {
            Some(d) => parent + d,
            None => {
                let first = (start..self.lines.len()).find(|&k| !is_blank(self.lines[k]));
                let detected = first.map_or(0, |k| indent_of(self.lines[k]));
                let leading = first.unwrap_or(self.lines.len());
                if detected > parent
                    && self.lines[start..leading].iter().any(|l| indent_of(l) > detected)
                {
                    self.i = start;
                    return Err(self.err("leading blank line indented more than the block"));
                }
                detected
            }
        };
        // None = an empty line, Some = a content line.
        let mut lines: Vec<Option<&str>> = Vec::new();
        let mut k = start;
        if indent > parent {
            while let Some(&line) = self.lines.get(k) {
                let spaces = indent_of(line);
                if is_blank(line) {
                    lines.push((spaces > indent).then(|| &line[indent..]));
                } else if spaces >= indent {
                    lines.push(Some(&line[indent..]));
                } else {
                    break;
                }
                k += 1;
            }
        }
        // A final "line" after the document's last newline is not a line.
        if k == self.lines.len() && lines.last() == Some(&None) {
            lines.pop();
        }
        self.i = k;
        let last = lines.iter().rposition(Option::is_some);
        let mut out = String::new();
        if let Some(last) = last {
            for (n, line) in lines[..=last].iter().enumerate() {
                if n > 0 {
                    out.push('\n');
                }
                out.push_str(line.unwrap_or(""));
            }
        }
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip if last.is_some() => out.push('\n'),
            Chomp::Clip => {}
            Chomp::Keep => {
                let trailing = lines.len() - last.map_or(0, |l| l + 1);
                let breaks = trailing + usize::from(last.is_some());
                out.extend(std::iter::repeat_n('\n', breaks));
            }
        }
        Ok(out)
    }
}
