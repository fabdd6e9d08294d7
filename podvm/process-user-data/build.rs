//! Records the compiler version for the version block (`  rust: …`; upstream prints `  go: …`)
//! and lets release builds stamp `CAA_VERSION` / `CAA_COMMIT`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CAA_VERSION");
    println!("cargo:rerun-if-env-changed=CAA_COMMIT");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CAA_RUSTC_VERSION={version}");
}
