//! `caa-plugin conformance`: checks that a plugin executable keeps the protocol contract
//! (docs/plugin-protocol.md). Three suites: `protocol` (framing and error answers, no cloud),
//! `lifecycle` (EOF, teardown, signals, parent death, process group) and `semantic` (instance
//! behaviour; needs a working config). The report's last line is `N passed, N failed`.

mod lifecycle;
mod protocol;
mod raw;
mod semantic;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use caa_plugin_proto::Describe;
use serde_json::Value;

/// Which checks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Framing and error answers.
    Protocol,
    /// Process behaviour.
    Lifecycle,
    /// Instance semantics (creates real instances: opt-in).
    Semantic,
    /// `protocol` and `lifecycle`: everything that needs no working cloud.
    Default,
    /// All three.
    All,
}

impl std::str::FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Suite, String> {
        match s {
            "protocol" => Ok(Suite::Protocol),
            "lifecycle" => Ok(Suite::Lifecycle),
            "semantic" => Ok(Suite::Semantic),
            "default" => Ok(Suite::Default),
            "all" => Ok(Suite::All),
            _ => Err(format!("unknown suite {s:?} (protocol, lifecycle, semantic, default, all)")),
        }
    }
}

/// What the checks run against.
#[derive(Debug, Clone)]
pub struct Target {
    /// The plugin executable.
    pub plugin: PathBuf,
    /// `initialize.config`.
    pub config: Value,
    /// Its `--describe` document.
    pub describe: Describe,
}

/// The result of one check.
#[derive(Debug)]
pub enum Outcome {
    /// The plugin behaved as specified.
    Pass,
    /// The check does not apply (e.g. an optional capability is absent).
    Skip(String),
}

type CheckFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Outcome>> + Send + 'a>>;
type CheckFn = for<'a> fn(&'a Target) -> CheckFuture<'a>;

/// One named check.
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) run: CheckFn,
}

/// Counts of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that did not apply.
    pub skipped: usize,
}

/// Runs the chosen suites, printing one line per check through `out`.
pub async fn run(target: &Target, suite: Suite, mut out: impl FnMut(&str)) -> Report {
    let mut report = Report::default();
    let suites: Vec<(&str, Vec<Check>)> = [
        ("protocol", Suite::Protocol, protocol::checks as fn() -> Vec<Check>),
        ("lifecycle", Suite::Lifecycle, lifecycle::checks),
        ("semantic", Suite::Semantic, semantic::checks),
    ]
    .into_iter()
    .filter(|(_, s, _)| match suite {
        Suite::All => true,
        Suite::Default => *s != Suite::Semantic,
        only => only == *s,
    })
    .map(|(name, _, checks)| (name, checks()))
    .collect();
    for (suite_name, checks) in suites {
        for check in checks {
            let name = format!("{suite_name}/{}", check.name);
            let outcome =
                tokio::time::timeout(std::time::Duration::from_secs(60), (check.run)(target)).await;
            match outcome {
                Ok(Ok(Outcome::Pass)) => {
                    report.passed += 1;
                    out(&format!("PASS {name}"));
                }
                Ok(Ok(Outcome::Skip(why))) => {
                    report.skipped += 1;
                    out(&format!("SKIP {name}: {why}"));
                }
                Ok(Err(e)) => {
                    report.failed += 1;
                    out(&format!("FAIL {name}: {e:#}"));
                }
                Err(_) => {
                    report.failed += 1;
                    out(&format!("FAIL {name}: check did not finish within 60 s"));
                }
            }
        }
    }
    out(&format!(
        "conformance: {} passed, {} failed, {} skipped",
        report.passed, report.failed, report.skipped
    ));
    report
}

/// Wraps an async check function into a [`Check`].
macro_rules! check {
    ($f:ident) => {
        $crate::conformance::Check { name: stringify!($f), run: |t| Box::pin($f(t)) }
    };
}
pub(crate) use check;

/// Fails a check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            anyhow::bail!($($msg)+);
        }
    };
}
pub(crate) use ensure;
