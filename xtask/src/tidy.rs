//! Tidy checks that linters cannot express, run as ordinary tests (`cargo test -p xtask`):
//! every Rust file says why it exists in a leading `//!` line, stays small, no test is
//! silently switched off with an ignore attribute, and the adaptor's dependency tree holds no
//! cloud SDK.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::steps::root;

    /// Files longer than this are split along the domain.
    const MAX_LINES: usize = 600;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn all_files() -> Vec<PathBuf> {
        let mut files = Vec::new();
        for top in ["plugin-sdk", "plugins", "adaptor", "podvm", "e2e", "xtask"] {
            rust_files(&root().join(top), &mut files);
        }
        assert!(files.len() > 20, "tidy found too few files: {}", files.len());
        files
    }

    #[test]
    fn every_rust_file_starts_with_a_module_doc() {
        let missing: Vec<_> = all_files()
            .into_iter()
            .filter(|f| {
                !std::fs::read_to_string(f).unwrap_or_default().trim_start().starts_with("//!")
            })
            .collect();
        assert!(missing.is_empty(), "files without a leading //! line: {missing:?}");
    }

    #[test]
    fn rust_files_stay_small() {
        let long: Vec<_> = all_files()
            .into_iter()
            .filter_map(|f| {
                let n = std::fs::read_to_string(&f).unwrap_or_default().lines().count();
                (n > MAX_LINES).then_some((f, n))
            })
            .collect();
        assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
    }

    /// Crate-name prefixes of cloud SDKs; only plugin crates may depend on them.
    const CLOUD_SDKS: &[&str] = &["aws-", "azure", "ibm", "virt", "google-cloud", "gcp"];

    #[test]
    fn the_adaptor_depends_on_no_cloud_sdk() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        for package in ["caa-adaptor", "caa-plugin-host"] {
            let out = std::process::Command::new(&cargo)
                .args(["tree", "--offline", "-p", package, "-e", "normal", "--prefix", "none"])
                .current_dir(root())
                .output()
                .expect("running cargo tree");
            assert!(
                out.status.success(),
                "cargo tree -p {package}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let tree = String::from_utf8_lossy(&out.stdout);
            let sdks: Vec<&str> = tree
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|name| CLOUD_SDKS.iter().any(|sdk| name.starts_with(sdk)))
                .collect();
            assert!(sdks.is_empty(), "{package} depends on cloud SDK crates: {sdks:?}");
        }
    }

    /// Each cloud SDK crate and the one plugin crate allowed to depend on it.
    const SDK_OWNERS: &[(&str, &str)] = &[
        ("aws-sdk-ec2", "caa-provider-aws"),
        ("aws-config", "caa-provider-aws"),
        ("virt", "caa-provider-libvirt"),
    ];

    #[test]
    fn each_cloud_sdk_belongs_to_exactly_one_plugin_crate() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        for (sdk, owner) in SDK_OWNERS {
            let out = std::process::Command::new(&cargo)
                .args([
                    "tree",
                    "--offline",
                    "--workspace",
                    "-e",
                    "normal",
                    "--prefix",
                    "none",
                    "-i",
                    sdk,
                ])
                .current_dir(root())
                .output()
                .expect("running cargo tree");
            assert!(
                out.status.success(),
                "cargo tree -i {sdk}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let tree = String::from_utf8_lossy(&out.stdout);
            // Workspace members are the path dependencies: `name vX (/path)`.
            let mut members: Vec<&str> = tree
                .lines()
                .filter(|l| l.contains(" (/"))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            members.sort_unstable();
            members.dedup();
            assert_eq!(members, [*owner], "crates depending on {sdk}");
        }
    }

    #[test]
    fn no_test_is_ignored() {
        let marker = concat!("#[", "ignore");
        let ignored: Vec<_> = all_files()
            .into_iter()
            .filter(|f| std::fs::read_to_string(f).unwrap_or_default().contains(marker))
            .collect();
        assert!(
            ignored.is_empty(),
            "gate heavy tests with an env var instead of an ignore attribute: {ignored:?}"
        );
    }
}
