//! A real libvirt host for end-to-end tests, brought up by the test itself on a machine without
//! systemd: `qemu.conf` set to run QEMU as root (otherwise every define takes ~56 s here,
//! testbeds-local.md §2), `virtlogd` and `libvirtd` started by hand, the `default` NAT network
//! started, a directory pool for the pod VM volumes, and the local test pod VM image built and
//! its base volume uploaded. Gated by `CAA_TEST_LIBVIRT=1`; `.ci/run` installs the packages
//! (`podvm/image/install-deps.sh`) and sets the gate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binaries;
use crate::daemon::{DaemonBuilder, DaemonProcess};

/// The libvirt URI the tests use.
pub const URI: &str = "qemu:///system";
/// The pool holding pod VM volumes.
pub const POOL: &str = "caa-e2e";
/// The base volume name (the image's empty root disk).
pub const BASE_VOLUME: &str = "caa-podvm-base.qcow2";
/// The network pod VMs attach to.
pub const NETWORK: &str = "default";

/// Whether the libvirt end-to-end tests should run.
pub fn gate_open() -> bool {
    if std::env::var("CAA_TEST_LIBVIRT").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "skipping: set CAA_TEST_LIBVIRT=1 to run against a real libvirtd + QEMU (needs root)"
    );
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn virsh(args: &[&str]) -> Command {
    let mut c = Command::new("virsh");
    c.arg("-q").arg("-c").arg(URI).args(args);
    c
}

fn virsh_ok(args: &[&str]) -> bool {
    virsh(args).output().is_ok_and(|o| o.status.success())
}

/// Paths of the built test image.
#[derive(Debug, Clone)]
pub struct PodVmImage {
    /// Kernel for direct kernel boot.
    pub kernel: PathBuf,
    /// The initramfs with our pod VM programs.
    pub initrd: PathBuf,
}

/// Makes sure libvirtd runs with the network, pool and base volume in place, and the test
/// image is built. Idempotent; safe to call from every test.
pub fn ensure_host() -> PodVmImage {
    let started = Instant::now();
    configure_qemu_as_root();
    if !virsh_ok(&["version"]) {
        std::fs::create_dir_all("/run/libvirt").expect("creating /run/libvirt");
        let _ = Command::new("virtlogd").arg("-d").status();
        run(Command::new("libvirtd").arg("-d"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !virsh_ok(&["version"]) {
            assert!(Instant::now() < deadline, "libvirtd did not answer within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if !virsh(&["net-info", NETWORK]).output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("Active:") && l.ends_with("yes"))
    }) {
        run(&mut virsh(&["net-start", NETWORK]));
    }
    let pool_dir = Path::new("/var/lib/caa-e2e/pool");
    std::fs::create_dir_all(pool_dir).expect("creating the pool dir");
    if !virsh_ok(&["pool-info", POOL]) {
        run(&mut virsh(&["pool-define-as", POOL, "dir", "--target", pool_dir.to_str().unwrap()]));
    }
    if !virsh(&["pool-info", POOL])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("running"))
    {
        run(&mut virsh(&["pool-start", POOL]));
    }
    let image = build_image();
    let base = image.kernel.parent().unwrap().join("base.qcow2");
    if !virsh_ok(&["vol-info", BASE_VOLUME, "--pool", POOL]) {
        let size = std::fs::metadata(&base).expect("base.qcow2").len().to_string();
        run(&mut virsh(&["vol-create-as", POOL, BASE_VOLUME, &size, "--format", "qcow2"]));
        run(&mut virsh(&["vol-upload", BASE_VOLUME, base.to_str().unwrap(), "--pool", POOL]));
    }
    eprintln!("libvirt host ready in {:.1} s", started.elapsed().as_secs_f64());
    image
}

fn configure_qemu_as_root() {
    let path = Path::new("/etc/libvirt/qemu.conf");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let has =
        |key: &str| text.lines().any(|l| l.trim_start().starts_with(&format!("{key} = \"root\"")));
    if has("user") && has("group") {
        return;
    }
    let mut text = text;
    text.push_str("\n# Added by the caa e2e harness: QEMU runs as root (no usable /dev/kvm here).\nuser = \"root\"\ngroup = \"root\"\n");
    std::fs::write(path, text).expect("writing /etc/libvirt/qemu.conf");
    // A libvirtd already running must re-read it.
    if virsh_ok(&["version"]) {
        let _ = Command::new("pkill").args(["-x", "libvirtd"]).status();
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Builds the test pod VM image from the workspace binaries (again whenever a binary or one of
/// the image's source files changed).
pub fn build_image() -> PodVmImage {
    let bins = binaries::profile_dir();
    let out = binaries::workspace_root().join("target/podvm");
    let script = binaries::workspace_root().join("podvm/image/build.sh");
    let stamp = out.join("inputs.sha");
    let programs = ["process-user-data", "agent-protocol-forwarder", "caa-test-kata-agent"];
    // `cargo test --workspace` builds binaries only of packages with integration tests, so
    // build them here (a no-op when they are fresh).
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        run(Command::new(cargo)
            .args([
                "build",
                "-p",
                "caa-process-user-data",
                "-p",
                "caa-forwarder",
                "-p",
                "caa-test-agent",
            ])
            .current_dir(binaries::workspace_root()));
    }
    let mut inputs: String = programs
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(bins.join(p))
                .unwrap_or_else(|e| panic!("{p} in {}: {e}", bins.display()));
            format!("{p}:{}:{:?}\n", meta.len(), meta.modified().ok())
        })
        .collect();
    for source in ["build.sh", "init", "udhcpc.script"] {
        let path = script.with_file_name(source);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&bytes, &mut hasher);
        inputs.push_str(&format!("{source}:{:016x}\n", std::hash::Hasher::finish(&hasher)));
    }
    let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s == inputs)
        && out.join("initrd.img").is_file();
    if !fresh {
        run(Command::new("bash").arg(&script).arg(&out).arg(&bins));
        std::fs::write(&stamp, inputs).expect("writing the image stamp");
        // A new image needs a new base volume.
        let _ = virsh(&["vol-delete", BASE_VOLUME, "--pool", POOL]).output();
    }
    PodVmImage { kernel: out.join("vmlinuz"), initrd: out.join("initrd.img") }
}

/// Domains whose name starts with `prefix`.
pub fn domains(prefix: &str) -> Vec<String> {
    run(&mut virsh(&["list", "--all", "--name"]))
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Volumes in the pool other than the base volume.
pub fn volumes() -> Vec<String> {
    run(&mut virsh(&["vol-list", POOL]))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != BASE_VOLUME)
        .map(str::to_owned)
        .collect()
}

/// The real adaptor with the libvirt plugin on this host's libvirt, booting `image` by direct
/// kernel boot with TLS to the forwarder on 15150 (the VM's serial console goes to
/// `serial_logs`). Pod networking stays off unless the caller turns it on.
pub fn adaptor(image: &PodVmImage, serial_logs: &Path) -> DaemonBuilder {
    DaemonProcess::builder()
        .with_tls()
        .forwarder_port(15150)
        .provider("libvirt")
        .env("LIBVIRT_URI", URI)
        .env("LIBVIRT_POOL", POOL)
        .env("LIBVIRT_NET", NETWORK)
        .env("LIBVIRT_VOL_NAME", BASE_VOLUME)
        .env("LIBVIRT_CPU", "1")
        .env("LIBVIRT_MEMORY", "512")
        .env("LIBVIRT_DOMAIN_TYPE", "qemu")
        .env("LIBVIRT_EFI_FIRMWARE", "none")
        .env("LIBVIRT_ROOT_DISK_BUS", "virtio")
        .env("LIBVIRT_ROOT_DISK_SIZE", "1")
        .env("LIBVIRT_KERNEL", image.kernel.display().to_string())
        .env("LIBVIRT_INITRD", image.initrd.display().to_string())
        .env("LIBVIRT_CMDLINE", "console=ttyS0 quiet")
        .env("LIBVIRT_SERIAL_LOG_DIR", serial_logs.display().to_string())
        .env("PROXY_TIMEOUT", "2m")
}

/// Everything the VMs wrote to their serial consoles in `dir`.
pub fn serial_logs(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}
