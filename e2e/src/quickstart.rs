//! The README's quick start (`cargo xtask demo` runs the `caa-quickstart` binary): one pod
//! sandbox through its whole life on this machine, the way the Kata shim drives it — libvirtd
//! and QEMU set up, the test pod VM image built, the real adaptor started with the libvirt
//! plugin and pod networking, then CreateVM, StartVM (a real VM boots), GetInfo, an agent health
//! check through the proxy, the pod IP answered from inside the VM through the tunnel, StopVM,
//! and a check that nothing is left. Each step is printed with its duration.
//!
//! Safe to run twice: every run starts an adaptor with a fresh state directory under the node
//! name [`NODE`], whose start-up reconciliation deletes any pod VM a killed earlier run left.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use caa_kata_protos::agent::{CheckRequest, HealthCheckResponse};
use caa_kata_protos::podvminfo::{GetInfoRequest, PodVmInfoClient};
use caa_kata_protos::protobuf::Message as _;
use caa_kata_protos::ttrpc::r#async::Client;

use crate::cni::{CniPod, POD_HTTP_BODY, POD_IP, http_get_pod_ip_within};
use crate::kata::{
    POD_NAMESPACE, agent_call, no_deadline, start_request, stop_request, with_deadline,
};
use crate::libvirt;

/// Progress goes to stdout: it is this program's output (the adaptor logs to its own file).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The node name the quick start's adaptor runs as (its instances carry it as a tag).
pub const NODE: &str = "caa-quickstart";
const POD: &str = "quickstart";
const SANDBOX: &str = "quickstart000000000000000000000001";

/// Runs the quick start; the error names the step that failed.
pub async fn run() -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the quick start sets up libvirtd, QEMU and network namespaces: run it as root"
    );
    let total = Instant::now();
    let image = step("libvirtd + QEMU, default network, storage pool, test pod VM image", || {
        Ok(libvirt::ensure_host())
    })?;
    let serial = tempfile::tempdir().context("creating the serial log directory")?;
    let daemon = step("cloud-api-adaptor started with the libvirt provider plugin", || {
        Ok(libvirt::adaptor(&image, serial.path())
            .with_pod_network()
            .env("NODE_NAME", NODE)
            .start())
    })?;
    say!("      adaptor log: {}", daemon.log_file().display());
    let pod = step("a CNI-like pod network namespace on this host", || Ok(CniPod::create()))?;

    let hv = crate::kata::connect(&daemon.socket()).await;
    let mut create = crate::kata::create_request(SANDBOX, POD);
    create.networkNamespacePath = pod.path().display().to_string();
    let hv_create = hv.create_vm(no_deadline(), &create);
    let created = step_async("CreateVM (pod network inspected, userdata rendered)", hv_create)
        .await
        .context("CreateVM")?;
    say!("      agent socket: {}", created.agentSocketPath);

    let start_req = start_request(SANDBOX);
    let start = hv.start_vm(with_deadline(Duration::from_secs(240)), &start_req);
    let started = step_async("StartVM (the pod VM boots under QEMU; forwarder ready)", start).await;
    if let Err(e) = started {
        bail!(
            "StartVM failed: {e}\nadaptor log tail:\n{}\nVM console:\n{}",
            daemon.log_tail(30),
            libvirt::serial_logs(serial.path())
        );
    }
    let info = PodVmInfoClient::new(connect(&daemon.socket()).await?);
    let request = GetInfoRequest {
        PodName: POD.to_owned(),
        PodNamespace: POD_NAMESPACE.to_owned(),
        ..Default::default()
    };
    let vm = step_async("GetInfo", info.get_info(no_deadline(), &request)).await?;
    say!("      pod VM id (libvirt domain UUID): {}", vm.VMID);

    let agent = connect(&PathBuf::from(&created.agentSocketPath)).await?;
    let check = CheckRequest::new().write_to_bytes()?;
    let health = agent_call(&agent, "grpc.Health", "Check", check);
    let health =
        step_async("agent Health.Check through the proxy and the VM's forwarder", health).await?;
    let status = HealthCheckResponse::parse_from_bytes(&health)?.status;
    say!("      test kata agent answers: {status:?}");

    let reached = tokio::task::spawn_blocking(|| {
        step(&format!("HTTP to the pod IP {POD_IP} answered inside the VM (VXLAN tunnel)"), || {
            Ok(http_get_pod_ip_within(Duration::from_secs(30))?)
        })
    })
    .await??;
    let body = reached.lines().last().unwrap_or_default().to_owned();
    ensure!(body.starts_with(POD_HTTP_BODY), "unexpected answer from the pod IP: {reached}");
    say!("      {body}");

    let stop_req = stop_request(SANDBOX);
    step_async("StopVM", hv.stop_vm(no_deadline(), &stop_req)).await?;
    step("nothing left: no domain, no volume, no tunnel", || {
        let (domains, volumes) = (libvirt::domains("podvm-quickstart"), libvirt::volumes());
        ensure!(domains.is_empty() && volumes.is_empty(), "left: {domains:?} {volumes:?}");
        ensure!(!pod.has_tunnel(), "the tunnel device is still in the pod namespace");
        Ok(())
    })?;
    say!("quickstart: one pod sandbox through its lifecycle in {}", secs(total.elapsed()));
    Ok(())
}

async fn connect(socket: &std::path::Path) -> Result<Client> {
    Client::connect(&format!("unix://{}", socket.display()))
        .await
        .with_context(|| format!("connecting to {}", socket.display()))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn step<T>(title: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let out = f().with_context(|| title.to_owned());
    let mark = if out.is_ok() { "ok" } else { "FAILED" };
    say!("[{:>7}] {title}: {mark}", secs(started.elapsed()));
    out
}

async fn step_async<T, E>(title: &str, f: impl Future<Output = Result<T, E>>) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let out = f.await.with_context(|| title.to_owned());
    let mark = if out.is_ok() { "ok" } else { "FAILED" };
    say!("[{:>7}] {title}: {mark}", secs(started.elapsed()));
    out
}
