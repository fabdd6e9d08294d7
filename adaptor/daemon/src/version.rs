//! The version block, upstream's three-line format (caa-facts §9.6) with our build facts:
//! `<program> version <VERSION>`, `  commit: <COMMIT>`, `  rust: <rustc version>`.
//! `CAA_VERSION` and `CAA_COMMIT` are stamped by release builds (defaults: the crate version and
//! `unknown`). The ttrpc `Version` RPC answers upstream's constant instead ([`RPC_VERSION`]).

/// What the hypervisor service's `Version` RPC returns (upstream's constant).
pub const RPC_VERSION: &str = "0.0.0";

/// This build's version.
pub const VERSION: &str = match option_env!("CAA_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// This build's commit.
pub const COMMIT: &str = match option_env!("CAA_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// The compiler that built this binary.
pub const RUSTC: &str = env!("CAA_RUSTC_VERSION");

/// The version block for `program`, ending with a newline.
pub fn block(program: &str) -> String {
    format!("{program} version {VERSION}\n  commit: {COMMIT}\n  rust: {RUSTC}\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_has_three_lines_in_upstream_shape() {
        let b = super::block("cloud-api-adaptor");
        let lines: Vec<_> = b.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("cloud-api-adaptor version "));
        assert!(lines[1].starts_with("  commit: "));
        assert!(lines[2].starts_with("  rust: "));
    }
}
