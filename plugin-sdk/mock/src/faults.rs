//! Scriptable failures of the mock plugin, parsed from the `faults` option (`MOCK_FAULTS`). Each
//! token turns on one misbehaviour that a host must survive: a crash in the middle of a create,
//! a method that never answers, garbage on stdout, a duplicated answer, a panic, a flood of
//! stderr, a stray `println!`, an instance without addresses, or a slow teardown.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

/// The faults switched on, one field per token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// `crashMidCreate`: announce the instance id, then exit with code 3 before answering.
    pub crash_mid_create: bool,
    /// `hang:<method>`: these methods never answer and ignore cancellation.
    pub hang: BTreeSet<String>,
    /// `garbage`: every createInstance first writes a non-JSON line to the protocol stream.
    pub garbage: bool,
    /// `answerTwice`: createInstance's result is also sent as a second, duplicate response.
    pub answer_twice: bool,
    /// `panic:<method>`: these methods' handlers panic.
    pub panic: BTreeSet<String>,
    /// `stderrFlood`: createInstance writes [`STDERR_FLOOD_BYTES`] of log lines to stderr.
    pub stderr_flood: bool,
    /// `stdoutPrint`: createInstance prints to stdout (which the SDK redirects to stderr).
    pub stdout_print: bool,
    /// `noIp`: instances have no addresses.
    pub no_ip: bool,
    /// `slowTeardown`: teardown takes [`SLOW_TEARDOWN`].
    pub slow_teardown: bool,
}

/// How much `stderrFlood` writes.
pub const STDERR_FLOOD_BYTES: usize = 10 * 1024 * 1024;

/// How long `slowTeardown` makes teardown take.
pub const SLOW_TEARDOWN: Duration = Duration::from_secs(2);

/// The exit code of `crashMidCreate`.
pub const CRASH_EXIT_CODE: i32 = 3;

/// The text `stdoutPrint` prints.
pub const STDOUT_PRINT_TEXT: &str = "mock: stray stdout output from createInstance";

/// The line `garbage` sends on the protocol stream.
pub const GARBAGE_LINE: &[u8] = b"mock garbage: this line is not JSON";

impl Faults {
    /// Parses the tokens of the `faults` option; unknown tokens are an error naming the token.
    pub fn parse<S: AsRef<str>>(tokens: &[S]) -> Result<Faults, String> {
        let mut faults = Faults::default();
        for token in tokens.iter().map(|t| t.as_ref().trim()).filter(|t| !t.is_empty()) {
            match token.split_once(':') {
                Some(("hang", method)) if !method.is_empty() => {
                    faults.hang.insert(method.to_owned());
                }
                Some(("panic", method)) if !method.is_empty() => {
                    faults.panic.insert(method.to_owned());
                }
                Some(_) => return Err(format!("unknown fault {token:?}")),
                None => {
                    let flag = match token {
                        "crashMidCreate" => &mut faults.crash_mid_create,
                        "garbage" => &mut faults.garbage,
                        "answerTwice" => &mut faults.answer_twice,
                        "stderrFlood" => &mut faults.stderr_flood,
                        "stdoutPrint" => &mut faults.stdout_print,
                        "noIp" => &mut faults.no_ip,
                        "slowTeardown" => &mut faults.slow_teardown,
                        _ => return Err(format!("unknown fault {token:?}")),
                    };
                    *flag = true;
                }
            }
        }
        Ok(faults)
    }

    /// Whether no fault is switched on.
    pub fn is_empty(&self) -> bool {
        self == &Faults::default()
    }

    /// Runs the per-method faults at the start of a handler: panics for `panic:<method>`, never
    /// returns for `hang:<method>`.
    pub async fn on_entry(&self, method: &str) {
        if self.panic.contains(method) {
            panic!("mock fault: {method} panics");
        }
        if self.hang.contains(method) {
            tracing::warn!(method, "mock fault: hanging forever");
            std::future::pending::<()>().await;
        }
    }
}

/// Prints to stdout on purpose, for the `stdoutPrint` fault.
#[allow(clippy::print_stdout)]
pub fn print_to_stdout() {
    println!("{STDOUT_PRINT_TEXT}");
}

/// Writes [`STDERR_FLOOD_BYTES`] of log lines to stderr. Blocking (a reader that does not drain
/// stderr stalls it), so callers run it on a blocking thread.
pub fn flood_stderr() {
    let filler = "x".repeat(100);
    let mut stderr = std::io::stderr().lock();
    let mut written = 0;
    let mut n = 0u64;
    while written < STDERR_FLOOD_BYTES {
        let line = format!("[DEBUG] mock stderr flood line {n} {filler}\n");
        if stderr.write_all(line.as_bytes()).is_err() {
            return;
        }
        written += line.len();
        n += 1;
    }
    let _ = stderr.flush();
}

/// Ends the process at once with [`CRASH_EXIT_CODE`], skipping every drain and answer: the
/// `crashMidCreate` fault.
#[allow(clippy::exit)]
pub fn crash() -> ! {
    tracing::error!("mock fault: crashing mid-create");
    std::process::exit(CRASH_EXIT_CODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_token() {
        let f = Faults::parse(&[
            "crashMidCreate",
            "hang:createInstance",
            "garbage",
            "answerTwice",
            "panic:deleteInstance",
            "stderrFlood",
            "stdoutPrint",
            "noIp",
            "slowTeardown",
            " ",
        ])
        .unwrap();
        assert!(f.crash_mid_create && f.garbage && f.answer_twice && f.stderr_flood);
        assert!(f.stdout_print && f.no_ip && f.slow_teardown);
        assert_eq!(f.hang.iter().collect::<Vec<_>>(), ["createInstance"]);
        assert_eq!(f.panic.iter().collect::<Vec<_>>(), ["deleteInstance"]);
        assert_eq!(Faults::parse::<&str>(&[]).unwrap(), Faults::default());
    }

    #[test]
    fn rejects_unknown_tokens() {
        assert_eq!(Faults::parse(&["explode"]).unwrap_err(), "unknown fault \"explode\"");
        assert_eq!(Faults::parse(&["hang:"]).unwrap_err(), "unknown fault \"hang:\"");
        assert_eq!(Faults::parse(&["sleep:x"]).unwrap_err(), "unknown fault \"sleep:x\"");
    }
}
