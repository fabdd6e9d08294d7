//! The `caa-ctl` binary: parse the command line, make the one ttrpc call, print its answer;
//! exit 1 with `caa-ctl: <method>: <code>: <message>` on failure and 2 on usage errors.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match caa_ctl::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("caa-ctl: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(caa_ctl::run(&cli)) {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("caa-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}
