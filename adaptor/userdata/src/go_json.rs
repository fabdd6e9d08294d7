//! JSON text byte-identical to Go's `json.MarshalIndent(v, "", "    ")`, which is how upstream
//! writes apf.json: serde_json's pretty printer with a four-space indent, plus Go's HTML-safe
//! escaping of `<`, `>`, `&` and of U+2028/U+2029 (serde_json writes those verbatim).
//!
//! One deliberate difference: DEL, C1 controls (NEL is a YAML line break), U+FEFF, U+FFFE and
//! U+FFFF are also escaped. Go writes them raw, which YAML cannot carry, so upstream's userdata
//! would be unreadable in the VM; the escaped form decodes to the same string.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

/// Serializes `value` the way Go's `json.MarshalIndent` with a four-space indent does.
pub(crate) fn to_string_indented<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        GoFormatter(PrettyFormatter::with_indent(b"    ")),
    );
    value.serialize(&mut ser)?;
    // serde_json only ever writes UTF-8.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Characters valid raw in a JSON string that YAML forbids in a literal block.
fn yaml_unsafe(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// Escapes, in JSON text, the characters YAML cannot carry ([`yaml_unsafe`], U+2028, U+2029).
/// In valid JSON they can only occur inside strings, where the `\uXXXX` form means the same.
pub(crate) fn escape_yaml_unsafe(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(|c| yaml_unsafe(c) || matches!(c, '\u{2028}' | '\u{2029}')) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if yaml_unsafe(c) || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Pretty layout from serde_json, string escaping from Go.
struct GoFormatter<'a>(PrettyFormatter<'a>);

impl Formatter for GoFormatter<'_> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                c if yaml_unsafe(c) => "",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            if escaped.is_empty() {
                write!(writer, "\\u{:04x}", u32::from(c))?;
            } else {
                writer.write_all(escaped.as_bytes())?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::to_string_indented;

    #[test]
    fn matches_go_marshal_indent_layout_and_escaping() {
        let v = serde_json::json!({
            "a": "<x & y>\u{2028}\u{2029}\"\\\n\t\u{1}\u{8}\u{c}é",
            "ya": "\u{7f}\u{85}\u{feff}",
            "b": [],
            "c": {},
            "d": [1, {"e": null}],
        });
        let text = to_string_indented(&v).unwrap();
        let want = "{\n    \"a\": \"\\u003cx \\u0026 y\\u003e\\u2028\\u2029\\\"\\\\\\n\\t\\u0001\\b\\fé\",\n    \"b\": [],\n    \"c\": {},\n    \"d\": [\n        1,\n        {\n            \"e\": null\n        }\n    ],\n    \"ya\": \"\\u007f\\u0085\\ufeff\"\n}";
        assert_eq!(text, want);
    }
}
