//! Tracing setup: everything goes to stderr (stdout is for `version`/`help` output only), as
//! human-readable text, one JSON object per line, or upstream's Go `log` lines ([`upstream`]),
//! filtered by the configured directives.

pub mod upstream;

use crate::config::{LogConfig, LogFormat};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter directives do not parse (already checked by config validation).
    #[error("invalid log filter {0:?}")]
    Filter(String, #[source] tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadySet,
}

/// Installs the global subscriber for `config`.
pub fn init(config: &LogConfig) -> Result<(), LoggingError> {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&config.filter)
        .map_err(|e| LoggingError::Filter(config.filter.clone(), e))?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Upstream => {
            builder.with_ansi(false).event_format(upstream::UpstreamFormat::new()).try_init()
        }
    };
    result.map_err(|_| LoggingError::AlreadySet)
}
