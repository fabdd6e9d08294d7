//! Continuous draining of a plugin's stderr. Every line is re-emitted through `tracing` with
//! `plugin` and `pid` fields at the level the line asks for (JSON `level`, `[WARN]`-style
//! prefixes, or the Rust `tracing` fmt layout), and the last lines are kept for crash reports.
//! The reader is bounded and never stops early, so a chatty plugin cannot block on a full pipe.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use caa_plugin_wire::{Frame, LineReader};
use tokio::io::AsyncRead;
use tokio::task::JoinHandle;
use tracing::Level;

/// Longest stderr line forwarded; longer lines are replaced by a marker.
pub const MAX_STDERR_LINE: usize = 64 * 1024;

/// Lines kept for crash reports.
pub const TAIL_LINES: usize = 200;

/// Longest line stored in the tail (characters); the log gets the whole line.
const TAIL_LINE_CHARS: usize = 2048;

/// The last stderr lines of a plugin. Cheap to clone; clones share the buffer.
#[derive(Debug, Clone, Default)]
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl StderrTail {
    /// An empty tail.
    pub fn new() -> StderrTail {
        StderrTail::default()
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        let lines = self.lock();
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect()
    }

    fn push(&self, line: &str) {
        let mut stored: String = line.chars().take(TAIL_LINE_CHARS).collect();
        if stored.len() < line.len() {
            stored.push_str(" <cut>");
        }
        let mut lines = self.lock();
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(stored);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts the drain task. It ends at EOF or on a read error.
pub fn spawn_drain<R>(reader: R, plugin: String, pid: u32, tail: StderrTail) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = LineReader::new(reader, MAX_STDERR_LINE);
        let mut classifier = Classifier::default();
        loop {
            match lines.next_frame().await {
                Ok(Some(Frame::Line(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let line = classifier.classify(&text);
                    emit(&plugin, pid, &line);
                    tail.push(&text);
                }
                Ok(Some(Frame::TooLong { len })) => {
                    let marker = format!("<truncated {len} bytes>");
                    tracing::warn!(target: "caa_plugin", plugin = %plugin, pid, "{marker}");
                    tail.push(&marker);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(plugin = %plugin, pid, error = %e, "plugin stderr read failed");
                    break;
                }
            }
        }
    })
}

/// One classified line.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    level: Level,
    message: String,
    operation_id: Option<String>,
    sandbox_id: Option<String>,
    /// Other JSON fields, compact.
    fields: Option<String>,
}

/// Maps lines to levels; remembers whether a panic started.
#[derive(Debug, Default)]
struct Classifier {
    panicking: bool,
}

impl Classifier {
    fn classify(&mut self, text: &str) -> Line {
        let trimmed = text.trim_start();
        if trimmed.starts_with("panic:")
            || trimmed.starts_with("fatal error:")
            || (trimmed.starts_with("thread '") && trimmed.contains("panicked"))
        {
            self.panicking = true;
        }
        let mut line = json_line(text).unwrap_or_else(|| Line {
            level: text_level(text).unwrap_or(Level::INFO),
            message: text.to_owned(),
            operation_id: None,
            sandbox_id: None,
            fields: None,
        });
        if self.panicking {
            line.level = Level::ERROR;
        }
        line
    }
}

fn parse_level(word: &str) -> Option<Level> {
    match word.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "error" | "fatal" | "critical" => Some(Level::ERROR),
        _ => None,
    }
}

fn json_line(text: &str) -> Option<Line> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let serde_json::Value::Object(mut map) = serde_json::from_str(text).ok()? else { return None };
    let level = map.get("level").and_then(|v| v.as_str()).and_then(parse_level)?;
    let take_str = |map: &mut serde_json::Map<String, serde_json::Value>, keys: &[&str]| {
        keys.iter().find_map(|k| match map.remove(*k) {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        })
    };
    let message = take_str(&mut map, &["msg", "message"]).unwrap_or_default();
    let operation_id = take_str(&mut map, &["operationId", "operation_id"]);
    let sandbox_id = take_str(&mut map, &["sandboxId", "sandbox_id"]);
    map.remove("level");
    map.remove("ts");
    map.remove("time");
    map.remove("timestamp");
    let fields = (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string());
    Some(Line { level, message, operation_id, sandbox_id, fields })
}

/// `[WARN] text`, or the tracing fmt layout `2026-01-01T00:00:00Z  WARN target: text`.
fn text_level(text: &str) -> Option<Level> {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix('[') {
        let word = rest.split(']').next()?;
        return parse_level(word);
    }
    let mut words = trimmed.split_whitespace();
    let first = words.next()?;
    if first.chars().all(|c| c.is_ascii_uppercase()) {
        return parse_level(first);
    }
    let looks_like_time =
        first.chars().next().is_some_and(|c| c.is_ascii_digit()) && first.contains([':', '-']);
    let second = words.next()?;
    if looks_like_time && second.chars().all(|c| c.is_ascii_uppercase()) {
        return parse_level(second);
    }
    None
}

fn emit(plugin: &str, pid: u32, line: &Line) {
    let op = line.operation_id.as_deref();
    let sandbox = line.sandbox_id.as_deref();
    let fields = line.fields.as_deref();
    macro_rules! at {
        ($lvl:expr) => {
            tracing::event!(target: "caa_plugin", $lvl, plugin = %plugin, pid, operation_id = op, sandbox_id = sandbox, fields, "{}", line.message)
        };
    }
    match line.level {
        Level::TRACE => at!(Level::TRACE),
        Level::DEBUG => at!(Level::DEBUG),
        Level::INFO => at!(Level::INFO),
        Level::WARN => at!(Level::WARN),
        _ => at!(Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(lines: &[&str]) -> Vec<Level> {
        let mut c = Classifier::default();
        lines.iter().map(|l| c.classify(l).level).collect()
    }

    #[test]
    fn maps_prefixes_and_tracing_layout() {
        assert_eq!(
            levels(&[
                "[DEBUG] a",
                "[WARN] b",
                "[ERROR] c",
                "plain text",
                "2026-01-01T00:00:00.123456Z  WARN caa_provider_aws: slow",
                "2026-01-01T00:00:00Z ERROR x: y",
                " INFO x: y",
                "[unknown] z",
            ]),
            vec![
                Level::DEBUG,
                Level::WARN,
                Level::ERROR,
                Level::INFO,
                Level::WARN,
                Level::ERROR,
                Level::INFO,
                Level::INFO
            ]
        );
    }

    #[test]
    fn json_lines_use_their_level_and_fields() {
        let mut c = Classifier::default();
        let line = c.classify(
            r#"{"ts":"t","level":"warn","msg":"m","operationId":"op","cloudRequestId":"r"}"#,
        );
        assert_eq!(line.level, Level::WARN);
        assert_eq!(line.message, "m");
        assert_eq!(line.operation_id.as_deref(), Some("op"));
        assert_eq!(line.fields.as_deref(), Some(r#"{"cloudRequestId":"r"}"#));
        assert_eq!(c.classify(r#"{"no":"level"}"#).level, Level::INFO);
    }

    #[test]
    fn everything_after_a_panic_is_an_error() {
        assert_eq!(
            levels(&["[DEBUG] a", "panic: boom", "[DEBUG] goroutine 1"]),
            vec![Level::DEBUG, Level::ERROR, Level::ERROR]
        );
        assert_eq!(
            levels(&["thread 'main' panicked at src/main.rs:1:1:", "note: x"]),
            vec![Level::ERROR, Level::ERROR]
        );
        assert_eq!(levels(&["fatal error: out of memory", "x"]), vec![Level::ERROR, Level::ERROR]);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let tail = StderrTail::new();
        for i in 0..250 {
            tail.push(&format!("line {i}"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 50");
        assert_eq!(tail.last(2), vec!["line 248", "line 249"]);
    }

    #[tokio::test]
    async fn drain_marks_oversized_lines_and_goes_on() {
        let mut input = vec![b'x'; MAX_STDERR_LINE + 10];
        input.extend_from_slice(b"\nafter\n");
        let tail = StderrTail::new();
        spawn_drain(std::io::Cursor::new(input), "p".into(), 1, tail.clone()).await.unwrap();
        assert_eq!(
            tail.lines(),
            vec![format!("<truncated {} bytes>", MAX_STDERR_LINE + 10), "after".to_owned()]
        );
    }
}
