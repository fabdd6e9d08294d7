//! A **test** kata agent: a real ttrpc server (the Rust `ttrpc` crate, as the real kata-agent
//! uses) that answers `grpc.Health` and the `grpc.AgentService` calls a sandbox start makes,
//! plus a method no agent has ([`FUTURE_METHOD`]) to prove the relays pass unknown methods
//! through, and a `caa.TestAgent` service to read back what it received. Every request is
//! recorded with its stream id, so tests can check what the proxy and forwarder changed and
//! that stream ids arrive in increasing order. Not a kata-agent: it runs no containers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use caa_kata_protos::agent::{HealthCheckResponse, VersionCheckResponse, health_check_response};
use caa_kata_protos::protobuf::Message as _;
use caa_kata_protos::ttrpc::{
    self,
    r#async::{MethodHandler, Server, Service, TtrpcContext},
};
use caa_kata_protos::{AGENT_SERVICE, HEALTH_SERVICE, async_trait};
use serde::{Deserialize, Serialize};

/// The test agent's own service.
pub const TEST_SERVICE: &str = "caa.TestAgent";
/// `caa.TestAgent/Requests`: the recorded requests as JSON ([`Recorded`] list).
pub const REQUESTS_METHOD: &str = "Requests";
/// `caa.TestAgent/Echo`: answers with the request payload.
pub const ECHO_METHOD: &str = "Echo";
/// `caa.TestAgent/Sleep`: waits the number of milliseconds in the payload (decimal text).
pub const SLEEP_METHOD: &str = "Sleep";
/// A `grpc.AgentService` method that no kata agent has; answers `future:` + the payload.
pub const FUTURE_METHOD: &str = "FutureMethod";
/// Agent version reported by `grpc.Health/Version`.
pub const AGENT_VERSION: &str = concat!("caa-test-agent ", env!("CARGO_PKG_VERSION"));

/// The `grpc.AgentService` methods answered with an empty message.
const AGENT_METHODS: &[&str] = &[
    "CreateSandbox",
    "DestroySandbox",
    "CreateContainer",
    "StartContainer",
    "RemoveContainer",
    "SetPolicy",
    "CopyFile",
    "SignalProcess",
    "UpdateInterface",
    "UpdateRoutes",
];

/// Payloads up to this size are kept in the record; larger ones only by size.
const KEEP_PAYLOAD: usize = 64 * 1024;
/// Records kept (oldest dropped first).
const KEEP_RECORDS: usize = 4096;

/// One request as the agent received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// Service name.
    pub service: String,
    /// Method name.
    pub method: String,
    /// Stream id on the agent's connection.
    pub stream_id: u32,
    /// Payload size in bytes.
    pub size: usize,
    /// Payload, base64, when it is at most 64 KiB.
    pub payload_base64: Option<String>,
    /// Metadata, sorted.
    pub metadata: Vec<(String, String)>,
}

impl Recorded {
    /// The decoded payload, if it was kept.
    pub fn payload(&self) -> Option<Vec<u8>> {
        let b64 = self.payload_base64.as_ref()?;
        base64::engine::general_purpose::STANDARD.decode(b64).ok()
    }
}

type Log = Arc<Mutex<Vec<Recorded>>>;

#[derive(Debug, Clone, Copy)]
enum Answer {
    Empty,
    Check,
    Version,
    Requests,
    Echo,
    Sleep,
    Future,
}

struct Handler {
    service: &'static str,
    method: String,
    answer: Answer,
    log: Log,
}

fn ok(payload: Vec<u8>) -> ttrpc::Response {
    let mut r = ttrpc::Response::new();
    r.set_status(ttrpc::get_status(ttrpc::Code::OK, ""));
    r.payload = payload;
    r
}

#[async_trait]
impl MethodHandler for Handler {
    async fn handler(
        &self,
        ctx: TtrpcContext,
        req: ttrpc::Request,
    ) -> ttrpc::Result<ttrpc::Response> {
        let mut metadata: Vec<(String, String)> = ctx
            .metadata
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        metadata.sort();
        let record = Recorded {
            service: self.service.to_owned(),
            method: self.method.clone(),
            stream_id: ctx.mh.stream_id,
            size: req.payload.len(),
            payload_base64: (req.payload.len() <= KEEP_PAYLOAD)
                .then(|| base64::engine::general_purpose::STANDARD.encode(&req.payload)),
            metadata,
        };
        if !matches!(self.answer, Answer::Requests) {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.len() >= KEEP_RECORDS {
                log.remove(0);
            }
            log.push(record);
        }
        let payload = match self.answer {
            Answer::Empty => Vec::new(),
            Answer::Check => {
                let mut r = HealthCheckResponse::new();
                r.status = health_check_response::ServingStatus::SERVING.into();
                r.write_to_bytes().unwrap_or_default()
            }
            Answer::Version => {
                let mut r = VersionCheckResponse::new();
                r.grpc_version = "0.0.1".to_owned();
                r.agent_version = AGENT_VERSION.to_owned();
                r.write_to_bytes().unwrap_or_default()
            }
            Answer::Requests => {
                let log = self.log.lock().unwrap_or_else(PoisonError::into_inner).clone();
                serde_json::to_vec(&log).unwrap_or_default()
            }
            Answer::Echo => req.payload,
            Answer::Sleep => {
                let ms = std::str::from_utf8(&req.payload)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Vec::new()
            }
            Answer::Future => [b"future:".as_slice(), &req.payload].concat(),
        };
        Ok(ok(payload))
    }
}

/// A running test agent.
pub struct TestAgent {
    server: Server,
    log: Log,
}

impl std::fmt::Debug for TestAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAgent").finish_non_exhaustive()
    }
}

impl TestAgent {
    /// Listens on the unix socket `path` (a stale socket file is replaced).
    pub async fn start(path: &Path) -> ttrpc::Result<TestAgent> {
        let _ = std::fs::remove_file(path);
        let log: Log = Arc::default();
        let mut services: HashMap<String, Service> = HashMap::new();
        let mut add = |service: &'static str, method: &str, answer: Answer| {
            let handler = Handler { service, method: method.to_owned(), answer, log: log.clone() };
            services
                .entry(service.to_owned())
                .or_insert_with(|| Service { methods: HashMap::new(), streams: HashMap::new() })
                .methods
                .insert(method.to_owned(), Box::new(handler));
        };
        add(HEALTH_SERVICE, "Check", Answer::Check);
        add(HEALTH_SERVICE, "Version", Answer::Version);
        for m in AGENT_METHODS {
            add(AGENT_SERVICE, m, Answer::Empty);
        }
        add(AGENT_SERVICE, FUTURE_METHOD, Answer::Future);
        add(TEST_SERVICE, REQUESTS_METHOD, Answer::Requests);
        add(TEST_SERVICE, ECHO_METHOD, Answer::Echo);
        add(TEST_SERVICE, SLEEP_METHOD, Answer::Sleep);
        let addr = format!("unix://{}", path.display());
        let mut server = Server::new().bind(&addr)?.register_service(services);
        server.start().await?;
        Ok(TestAgent { server, log })
    }

    /// Every request received so far (except `caa.TestAgent/Requests`).
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stops listening and drops its connections.
    pub async fn stop(mut self) {
        let _ = self.server.shutdown().await;
    }
}
