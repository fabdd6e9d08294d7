//! A Rust ttrpc client that talks to the daemon the way the Kata shim does: CreateVM with the
//! shim's nine annotations and no deadline, StartVM with a deadline (`timeout_nano`), StopVM
//! without one. Request builders and status extraction for assertions.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use caa_kata_protos::Code;
use caa_kata_protos::hypervisor::{
    CreateVMRequest, HypervisorClient, StartVMRequest, StopVMRequest,
};
use caa_kata_protos::ttrpc::r#async::Client;
use caa_kata_protos::ttrpc::{self, context};

/// The namespace every test pod lives in.
pub const POD_NAMESPACE: &str = "default";

/// A fresh connection to the hypervisor socket.
pub async fn connect(socket: &Path) -> HypervisorClient {
    let address = format!("unix://{}", socket.display());
    let client = Client::connect(&address)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
    HypervisorClient::new(client)
}

/// The nine annotations the shim puts on every CreateVM (values like the Go probe's).
pub fn shim_annotations(pod: &str) -> HashMap<String, String> {
    let hv = "io.katacontainers.config.hypervisor.";
    let mut annotations = HashMap::from([
        ("io.kubernetes.cri.sandbox-name".to_owned(), pod.to_owned()),
        ("io.kubernetes.cri.sandbox-namespace".to_owned(), POD_NAMESPACE.to_owned()),
    ]);
    for (key, value) in [
        ("machine_type", ""),
        ("image", ""),
        ("default_vcpus", "1"),
        ("default_memory", "2048"),
        ("cc_init_data", ""),
        ("default_gpus", "0"),
        ("default_gpu_model", ""),
    ] {
        annotations.insert(format!("{hv}{key}"), value.to_owned());
    }
    annotations
}

/// CreateVM for sandbox `id` of pod `pod`.
pub fn create_request(id: &str, pod: &str) -> CreateVMRequest {
    CreateVMRequest {
        id: id.to_owned(),
        annotations: shim_annotations(pod),
        networkNamespacePath: format!("/var/run/netns/cni-{pod}"),
        ..Default::default()
    }
}

/// StartVM for sandbox `id`.
pub fn start_request(id: &str) -> StartVMRequest {
    StartVMRequest { id: id.to_owned(), ..Default::default() }
}

/// StopVM for sandbox `id`.
pub fn stop_request(id: &str) -> StopVMRequest {
    StopVMRequest { id: id.to_owned(), ..Default::default() }
}

/// A call without a deadline (`timeout_nano` = 0), as the shim sends CreateVM and StopVM.
pub fn no_deadline() -> context::Context {
    context::with_timeout(0)
}

/// A call with a deadline `d` from now, as the shim sends StartVM.
pub fn with_deadline(d: Duration) -> context::Context {
    context::with_timeout(i64::try_from(d.as_nanos()).expect("a deadline that fits in i64 ns"))
}

/// The status code and message of a call that the server answered with a non-OK status.
/// Panics on success or on a client-side error (no answer from the server).
pub fn status<T: std::fmt::Debug>(result: ttrpc::Result<T>) -> (Code, String) {
    match result {
        Err(ttrpc::Error::RpcStatus(s)) => (s.code(), s.message.clone()),
        other => panic!("expected a non-OK status from the server, got {other:?}"),
    }
}

/// One raw unary call on an agent socket (the shim's view of the kata-agent), with a 30 s
/// deadline; returns the response payload.
pub async fn agent_call(
    client: &Client,
    service: &str,
    method: &str,
    payload: Vec<u8>,
) -> ttrpc::Result<Vec<u8>> {
    let mut req = ttrpc::Request::new();
    req.service = service.to_owned();
    req.method = method.to_owned();
    req.payload = payload;
    req.timeout_nano = 30_000_000_000;
    client.request(req).await.map(|r| r.payload)
}
