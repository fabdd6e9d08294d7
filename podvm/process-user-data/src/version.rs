//! The `-v` output, upstream's three-line version block (caa-facts §1.1, §9.6) with our build
//! facts: `<program> version <VERSION>`, `  commit: <COMMIT>`, `  rust: <rustc version>`.
//! `CAA_VERSION` and `CAA_COMMIT` are stamped by release builds, as for the adaptor.

const VERSION: &str = match option_env!("CAA_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

const COMMIT: &str = match option_env!("CAA_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

const RUSTC: &str = env!("CAA_RUSTC_VERSION");

/// The version block for `program`, ending with a newline.
pub fn block(program: &str) -> String {
    format!("{program} version {VERSION}\n  commit: {COMMIT}\n  rust: {RUSTC}\n")
}
