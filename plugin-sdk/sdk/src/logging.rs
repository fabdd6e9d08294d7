//! Logging of a plugin process: `tracing` to stderr, one line per event starting with a
//! `[LEVEL]` tag that the host maps onto its own levels. The level comes from
//! `CAA_PLUGIN_LOG_LEVEL` at start and changes at runtime with `initialize.logLevel` and
//! `$/setLogLevel` through a reload handle.

use std::fmt;
use std::sync::Arc;

use caa_plugin_proto::LogLevel;

use crate::serve::LogLevelHook;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, reload};

/// The environment variable holding the initial log level.
pub const LOG_LEVEL_ENV: &str = "CAA_PLUGIN_LOG_LEVEL";

/// Installs the global subscriber; the returned function changes the level. `None` when a
/// subscriber was already installed (the level then cannot be changed).
pub(crate) fn init(initial: Option<&str>) -> Option<LogLevelHook> {
    let level = initial.and_then(parse_level).unwrap_or(LevelFilter::INFO);
    let (filter, handle) = reload::Layer::<LevelFilter, Registry>::new(level);
    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Tagged(
            tracing_subscriber::fmt::format().without_time().with_level(false).with_ansi(false),
        ));
    tracing_subscriber::registry().with(filter).with(fmt_layer).try_init().ok()?;
    Some(Arc::new(move |level: LogLevel| {
        if handle.modify(|f| *f = to_filter(level)).is_ok() {
            tracing::info!(level = level.as_str(), "log level changed");
        }
    }))
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    let level: LogLevel =
        serde_json::from_value(serde_json::Value::String(text.trim().to_ascii_lowercase())).ok()?;
    Some(to_filter(level))
}

fn to_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

/// The default single-line format behind a `[LEVEL]` tag.
struct Tagged<F>(Format<F, ()>);

impl<S, N, F> FormatEvent<S, N> for Tagged<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    Format<F, ()>: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "[{}] ", event.metadata().level())?;
        self.0.format_event(ctx, writer, event)
    }
}
