//! Flow and block scalars of the cloud-config subset: 'single-quoted' and "double-quoted"
//! one-line scalars (common escapes) and literal blocks `|` with chomping and an indentation
//! digit. Split from the parser so each file stays readable; see `parse.rs` for the subset.

use super::{Parser, indent_of, is_blank, strip_comment};
use crate::UserDataError;

impl Parser<'_> {
    fn after_quote(&self, tail: &str) -> Result<(), UserDataError> {
        let tail = tail.trim_start_matches([' ', '\t']);
        if tail.is_empty() || tail.starts_with('#') {
            Ok(())
        } else {
            Err(self.err("text after a closing quote"))
        }
    }

    pub(super) fn single_quoted(&self, body: &str) -> Result<String, UserDataError> {
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

    pub(super) fn double_quoted(&self, body: &str) -> Result<String, UserDataError> {
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
    pub(super) fn literal_block(
        &mut self,
        header: &str,
        parent: usize,
    ) -> Result<String, UserDataError> {
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
