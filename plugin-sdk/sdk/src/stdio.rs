//! What a plugin's `main` calls: argument handling (`--describe`, `--version`, `--help`), the
//! stdout guard (the protocol gets private copies of fds 0 and 1; fd 1 then points at stderr and
//! fd 0 at `/dev/null`, so stray prints and child processes cannot corrupt the protocol), logging,
//! signals, and the runtime that drives [`serve`].

use std::ffi::OsString;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt;
use std::process::ExitCode;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::unistd::{dup, dup2_stdin, dup2_stdout};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::signal::unix::{SignalKind, signal};

use crate::logging;
use crate::provider::Provider;
use crate::serve::{SdkError, ServeOptions, ServeOutcome, describe_filled, serve};

/// Exit code for usage errors.
const EXIT_USAGE: u8 = 2;
/// Exit code for internal failures (sysexits `EX_SOFTWARE`).
const EXIT_INTERNAL: u8 = 70;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Serve,
    Describe,
    Version,
    Help,
    Usage(String),
}

fn parse_args(args: &[OsString]) -> Mode {
    match args {
        [] => Mode::Serve,
        [one] => match one.to_str() {
            Some("--describe") => Mode::Describe,
            Some("--version" | "-V") => Mode::Version,
            Some("--help" | "-h") => Mode::Help,
            _ => Mode::Usage(format!("unknown argument {:?}", one.to_string_lossy())),
        },
        _ => Mode::Usage("expected at most one argument".to_owned()),
    }
}

/// Runs a plugin: `fn main() -> std::process::ExitCode { caa_plugin_sdk::run::<MyProvider>() }`.
///
/// Exit codes: 0 after a normal end (EOF, teardown then EOF, signal drain, parent gone, the host
/// closed the protocol stream), 2 for usage errors, 70 for internal failures.
pub fn run<P: Provider>() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let describe = describe_filled::<P>();
    let name = describe.plugin.name.clone();
    match parse_args(&args) {
        Mode::Describe => {
            let mut line = serde_json::to_vec(&describe).unwrap_or_default();
            line.push(b'\n');
            match std::io::stdout().lock().write_all(&line) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(EXIT_INTERNAL),
            }
        }
        Mode::Version => {
            let version = describe.plugin.version.as_deref().unwrap_or("unknown");
            match writeln!(std::io::stdout().lock(), "{name} {version}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(EXIT_INTERNAL),
            }
        }
        Mode::Help => {
            let _ = write!(std::io::stderr().lock(), "{}", usage(&name));
            ExitCode::SUCCESS
        }
        Mode::Usage(problem) => {
            let _ = write!(std::io::stderr().lock(), "{name}: {problem}\n{}", usage(&name));
            ExitCode::from(EXIT_USAGE)
        }
        Mode::Serve => match serve_stdio::<P>(&name) {
            Ok(ServeOutcome::Eof | ServeOutcome::Shutdown | ServeOutcome::ParentGone) => {
                ExitCode::SUCCESS
            }
            Ok(ServeOutcome::WriteError) => {
                // Nothing to tell a host that is gone; in-flight work was cancelled to roll back.
                tracing::error!("the host stopped reading the protocol stream; exiting");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "plugin failed");
                let _ = writeln!(std::io::stderr().lock(), "{name}: {e}");
                ExitCode::from(EXIT_INTERNAL)
            }
        },
    }
}

fn usage(name: &str) -> String {
    format!(
        "usage: {name} [--describe | --version | --help]\n\
         \n\
         A cloud-api-adaptor provider plugin. Without arguments it speaks the caa plugin protocol\n\
         (JSON-RPC 2.0, one message per line) on stdin/stdout and logs to stderr.\n\
         \x20 --describe  print identity, capabilities and config schema as JSON, then exit\n\
         \x20 --version   print the plugin version\n\
         Environment: CAA_PLUGIN_LOG_LEVEL=trace|debug|info|warn|error\n"
    )
}

/// Serves the protocol on the process's stdin/stdout.
fn serve_stdio<P: Provider>(name: &str) -> Result<ServeOutcome, SdkError> {
    let (proto_in, proto_out) = guard_stdio().map_err(SdkError::Stdio)?;
    let on_log_level = logging::init(std::env::var(logging::LOG_LEVEL_ENV).ok().as_deref());
    if proto_in.is_terminal() && std::env::var_os("CAA_PLUGIN_PROTOCOL").is_none() {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{name}: this is a caa provider plugin; it expects JSON-RPC lines on stdin (see --help)"
        );
    }
    // One thread: the read loop, the handlers and the writer never wake each other across cores,
    // which halves the round trip of a call (docs/performance.md). Providers must not block it:
    // blocking cloud SDKs (libvirt) go through `tokio::task::spawn_blocking`.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .thread_name("caa-plugin")
        .enable_all()
        .build()
        .map_err(SdkError::Runtime)?;
    let opts = ServeOptions { watch_parent: true, on_log_level, ..ServeOptions::default() };
    let outcome = runtime.block_on(async move {
        let reader = protocol_reader(proto_in).map_err(SdkError::Stdio)?;
        let writer = protocol_writer(proto_out).map_err(SdkError::Stdio)?;
        let shutdown = termination().map_err(SdkError::Stdio)?;
        let outcome = serve::<P, _, _>(reader, writer, opts, shutdown).await;
        tracing::info!(?outcome, "plugin stopping");
        outcome
    });
    // A blocking read of a terminal may never return; do not wait for it.
    runtime.shutdown_background();
    outcome
}

/// The stdout guard. Returns private close-on-exec copies of stdin and stdout for the protocol,
/// then points fd 1 at stderr and fd 0 at `/dev/null`.
fn guard_stdio() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let proto_out = private_dup(&std::io::stdout())?;
    let proto_in = private_dup(&std::io::stdin())?;
    std::io::stdout().flush()?;
    dup2_stdout(std::io::stderr())?;
    let null = File::open("/dev/null")?;
    dup2_stdin(&null)?;
    Ok((proto_in, proto_out))
}

fn private_dup(fd: &impl std::os::fd::AsFd) -> std::io::Result<OwnedFd> {
    let copy = dup(fd)?;
    fcntl(&copy, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(copy)
}

/// A pipe is driven by the reactor; anything else (file, terminal, socket) by blocking threads.
fn protocol_reader(fd: OwnedFd) -> std::io::Result<Box<dyn AsyncRead + Unpin + Send>> {
    let file = File::from(fd);
    if file.metadata()?.file_type().is_fifo() {
        return Ok(Box::new(tokio::net::unix::pipe::Receiver::from_file(file)?));
    }
    Ok(Box::new(tokio::fs::File::from_std(file)))
}

fn protocol_writer(fd: OwnedFd) -> std::io::Result<Box<dyn AsyncWrite + Unpin + Send>> {
    let file = File::from(fd);
    if file.metadata()?.file_type().is_fifo() {
        return Ok(Box::new(tokio::net::unix::pipe::Sender::from_file(file)?));
    }
    Ok(Box::new(tokio::fs::File::from_std(file)))
}

/// Resolves on the first SIGTERM or SIGINT.
fn termination() -> std::io::Result<impl Future<Output = ()> + Send> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(args: &[&str]) -> Mode {
        parse_args(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_select_the_mode() {
        assert_eq!(mode(&[]), Mode::Serve);
        assert_eq!(mode(&["--describe"]), Mode::Describe);
        assert_eq!(mode(&["--version"]), Mode::Version);
        assert_eq!(mode(&["--help"]), Mode::Help);
        assert!(matches!(mode(&["--bogus"]), Mode::Usage(m) if m.contains("--bogus")));
        assert!(matches!(mode(&["--describe", "x"]), Mode::Usage(_)));
    }
}
