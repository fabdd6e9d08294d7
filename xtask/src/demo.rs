//! `cargo xtask demo`: the README's main job. It installs libvirt, QEMU and the image tools
//! (`podvm/image/install-deps.sh`, idempotent), builds the adaptor, the libvirt plugin and the pod
//! VM programs, then runs `caa-quickstart`, which walks one pod sandbox through its lifecycle on
//! a local QEMU pod VM and prints each step with its duration. Needs root; safe to run twice.

use anyhow::{Result, bail};

use crate::steps;

pub(crate) fn run() -> Result<bool> {
    if !is_root() {
        bail!(
            "the demo sets up libvirtd, QEMU and network namespaces on this machine: run it as root"
        );
    }
    let (ok, _) = steps::run(
        "install libvirt, QEMU and the image tools",
        "bash",
        &["podvm/image/install-deps.sh"],
    )?;
    if !ok {
        bail!("installing the packages failed");
    }
    let mut build = vec!["build", "--locked"];
    for p in [
        "caa-adaptor",
        "caa-provider-libvirt",
        "caa-provider-mock",
        "caa-forwarder",
        "caa-process-user-data",
        "caa-test-agent",
    ] {
        build.extend(["-p", p]);
    }
    let (ok, _) = steps::run("build", "cargo", &build)?;
    if !ok {
        bail!("build failed");
    }
    let (ok, _) = steps::run(
        "build the quick start",
        "cargo",
        &["build", "--locked", "-p", "caa-e2e", "--bin", "caa-quickstart"],
    )?;
    if !ok {
        bail!("build failed");
    }
    let (ok, _) = steps::run("quick start", "target/debug/caa-quickstart", &[])?;
    Ok(ok)
}

/// Whether this process runs as root (reads `/proc/self/status`; xtask has no libc binding).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .is_some_and(|euid| euid == "0")
    })
}
