//! `cargo xtask ci`: format, lints, every Rust test, the Python plugin's own tests and the
//! conformance suites against both example plugins, then the fuzz targets for
//! `CAA_FUZZ_SECONDS` each when that is set. The last line is `ci: N passed, N failed`.

use anyhow::Result;

use crate::steps::{self, Tally};

const PYMOCK: &str = "plugin-sdk/examples/python/caa-provider-pymock";

pub(crate) fn run() -> Result<bool> {
    let mut ok = true;
    let mut total = Tally::default();
    let mut step = |title: &str, program: &str, args: &[&str]| -> Result<()> {
        let (passed, tally) = steps::run(title, program, args)?;
        ok &= passed;
        total.add(tally);
        Ok(())
    };
    step("format", "cargo", &["fmt", "--all", "--check"])?;
    step(
        "lint",
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
    )?;
    step("test", "cargo", &["test", "--workspace", "--locked", "--no-fail-fast"])?;
    step(
        "python plugin",
        "python3",
        &["-m", "unittest", "discover", "-s", "plugin-sdk/examples/python", "-v"],
    )?;
    let cli = "target/debug/caa-plugin";
    let mock = "target/debug/caa-provider-mock";
    // `cargo test --workspace` built every binary of the workspace with the test feature set;
    // building them again with `cargo build -p` would recompile tokio with other features.
    step("conformance mock", cli, &["conformance", mock, "--suite", "all"])?;
    step("conformance pymock", cli, &["conformance", PYMOCK, "--suite", "all"])?;
    // Fuzzing needs cargo-fuzz and a sanitizer build of its own, so it is opt-in; each target
    // counts as one test through the `fuzz: N passed, N failed` line.
    if let Some(seconds) = std::env::var("CAA_FUZZ_SECONDS").ok().filter(|s| !s.trim().is_empty()) {
        step("fuzz", "cargo", &["xtask", "fuzz", seconds.trim()])?;
    }
    eprintln!("==> ci: {}", if ok { "all steps passed" } else { "some steps FAILED" });
    #[allow(clippy::print_stdout)]
    {
        println!(
            "ci: {} passed, {} failed",
            total.passed,
            total.failed + u64::from(!ok && total.failed == 0)
        );
    }
    Ok(ok)
}
