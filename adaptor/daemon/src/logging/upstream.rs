//! The `upstream` log format: lines as upstream's Go `log` package writes them with its standard
//! flags in UTC, `YYYY/MM/DD HH:MM:SS <message>`, where messages of the sandbox core carry
//! upstream's `[adaptor/cloud] ` prefix. Upstream's e2e suite parses such lines (caa-facts
//! §10.3). The event's structured fields follow the message as `k=v`, then the fields of its
//! spans; the level is added as `level=…` unless it is INFO (Go's `log` has no levels).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Message prefixes by event target (module path): the first entry the target starts with wins.
const PREFIXES: &[(&str, &str)] = &[
    ("caa_adaptor::sandbox", "[adaptor/cloud] "),
    ("caa_adaptor::hypervisor", "[adaptor/cloud] "),
];

/// The prefix upstream puts before the messages of `target` (empty when it has none).
pub fn prefix(target: &str) -> &'static str {
    PREFIXES
        .iter()
        .find(|(module, _)| {
            target
                .strip_prefix(module)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
        .map_or("", |(_, prefix)| prefix)
}

/// The event formatter. The clock is replaceable so tests can check whole lines. Build the
/// subscriber with ANSI off: span fields are formatted by the subscriber, not here.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamFormat {
    clock: fn() -> SystemTime,
}

impl Default for UpstreamFormat {
    fn default() -> UpstreamFormat {
        UpstreamFormat { clock: SystemTime::now }
    }
}

impl UpstreamFormat {
    /// The formatter reading the system clock.
    pub fn new() -> UpstreamFormat {
        UpstreamFormat::default()
    }

    /// The formatter reading `clock`.
    pub fn with_clock(clock: fn() -> SystemTime) -> UpstreamFormat {
        UpstreamFormat { clock }
    }
}

impl<S, N> FormatEvent<S, N> for UpstreamFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "{} {}", timestamp((self.clock)()), prefix(meta.target()))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        writer.write_str(&fields.message)?;
        writer.write_str(&fields.rest)?;
        if *meta.level() != Level::INFO {
            write!(writer, " level={}", meta.level().as_str().to_ascii_lowercase())?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>()
                    && !formatted.is_empty()
                {
                    write!(writer, " {formatted}")?;
                }
            }
        }
        writeln!(writer)
    }
}

/// The message, and the other fields as ` k=v` pairs in recording order.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            push_pair(&mut self.rest, field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            push_pair(&mut self.rest, field.name(), &format!("{value:?}"));
        }
    }
}

/// ` k=v`, quoting `v` when it is empty or would not read back as one token.
fn push_pair(out: &mut String, key: &str, value: &str) {
    let plain = !value.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
    if plain {
        let _ = write!(out, " {key}={value}");
    } else {
        let _ = write!(out, " {key}={value:?}");
    }
}

/// `YYYY/MM/DD HH:MM:SS` in UTC, as Go's `log.LstdFlags | log.LUTC` writes it.
pub fn timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use caa_test_support::LogCapture;

    use super::*;

    #[test]
    fn timestamps_are_go_log_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970/01/01 00:00:00");
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(timestamp(at(951_782_400)), "2000/02/29 00:00:00");
        assert_eq!(timestamp(at(1_709_251_199)), "2024/02/29 23:59:59");
        assert_eq!(timestamp(at(1_735_689_600 - 1)), "2024/12/31 23:59:59");
        assert_eq!(timestamp(at(4_102_444_800)), "2100/01/01 00:00:00");
        assert_eq!(
            timestamp(at(1_700_000_000) + Duration::from_millis(999)),
            "2023/11/14 22:13:20"
        );
    }

    #[test]
    fn prefixes_follow_the_module() {
        assert_eq!(prefix("caa_adaptor::sandbox"), "[adaptor/cloud] ");
        assert_eq!(prefix("caa_adaptor::sandbox::manager"), "[adaptor/cloud] ");
        assert_eq!(prefix("caa_adaptor::hypervisor::service"), "[adaptor/cloud] ");
        assert_eq!(prefix("caa_adaptor::sandboxes"), "");
        assert_eq!(prefix("caa_adaptor::daemon"), "");
        assert_eq!(prefix("caa_plugin_host::supervisor"), "");
    }

    #[test]
    fn lines_carry_prefix_message_fields_level_and_spans() {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(Level::DEBUG)
            .event_format(UpstreamFormat::with_clock(|| UNIX_EPOCH + Duration::from_secs(86_399)))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "caa_adaptor::sandbox::start", sandbox_id = "abc", n = 3, "starting the pod VM");
            let span = tracing::info_span!("sandbox", id = "s1");
            let _entered = span.enter();
            tracing::warn!(target: "caa_adaptor::daemon", error = "no such file", empty = "", "shutting down");
        });
        let text = capture.text();
        assert_eq!(
            text,
            "1970/01/01 23:59:59 [adaptor/cloud] starting the pod VM sandbox_id=abc n=3\n\
             1970/01/01 23:59:59 shutting down error=\"no such file\" empty=\"\" level=warn id=\"s1\"\n"
        );
    }
}
