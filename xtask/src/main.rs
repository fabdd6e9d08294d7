//! `cargo xtask <ci|demo|fuzz>`: the one command CI runs and the one command a new user runs, so
//! both stay identical on a laptop and on the CI machine.

mod ci;
mod demo;
mod fuzz;
mod steps;
mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("demo") => demo::run(),
        Some("fuzz") => fuzz::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|demo|fuzz>\n  ci    fmt, clippy, every test and the conformance suites (and fuzzing when CAA_FUZZ_SECONDS is set); ends with `N passed, N failed`\n  demo  (root) install libvirt + QEMU, build the test pod VM image and walk one pod sandbox through its lifecycle on a local QEMU VM\n  fuzz [SECONDS] [TARGET...]  run each agent-relay fuzz target for SECONDS (default 60); ends with `fuzz: N passed, N failed`"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
