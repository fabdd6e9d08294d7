//! Where the workspace binaries under test live: the cargo profile directory next to the running
//! test executable (`target/debug` for `target/debug/deps/<test>`). When `cloud-api-adaptor` or
//! `caa-provider-mock` or `agent-protocol-forwarder` is missing there (e.g. `cargo test -p caa-e2e` on a fresh checkout), they
//! are built once per test process with `$CARGO build -p caa-adaptor -p caa-provider-mock`.
//! Binaries that exist are used as they are: build the workspace first to test fresh ones.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The daemon's executable name.
pub const ADAPTOR: &str = "cloud-api-adaptor";
/// The mock plugin's executable name.
pub const MOCK_PLUGIN: &str = "caa-provider-mock";
/// The pod VM's forwarder executable name.
pub const FORWARDER: &str = "agent-protocol-forwarder";

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("e2e/ has a parent").to_path_buf()
}

/// The cargo profile directory the running test executable was built into.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("the test executable has a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The directory holding `cloud-api-adaptor` and `caa-provider-mock`, built if missing. The
/// daemon's plugin directory points here.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        let missing =
            [ADAPTOR, MOCK_PLUGIN, FORWARDER].iter().any(|name| !dir.join(name).is_file());
        if missing {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = std::process::Command::new(&cargo)
                .args([
                    "build",
                    "-p",
                    "caa-adaptor",
                    "-p",
                    "caa-provider-mock",
                    "-p",
                    "caa-forwarder",
                ])
                .current_dir(workspace_root())
                .status()
                .unwrap_or_else(|e| panic!("running {cargo} build: {e}"));
            assert!(status.success(), "building {ADAPTOR} and {MOCK_PLUGIN} failed: {status}");
            for name in [ADAPTOR, MOCK_PLUGIN, FORWARDER] {
                assert!(
                    dir.join(name).is_file(),
                    "{name} is not in {} after the build",
                    dir.display()
                );
            }
        }
        dir
    })
}

/// The `agent-protocol-forwarder` executable.
pub fn forwarder() -> PathBuf {
    bin_dir().join(FORWARDER)
}

/// The `cloud-api-adaptor` executable.
pub fn adaptor() -> PathBuf {
    bin_dir().join(ADAPTOR)
}
