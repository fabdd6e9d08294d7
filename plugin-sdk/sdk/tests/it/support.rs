//! The test client and the scripted provider. `createInstance` behaves as its `podName` says:
//! `ok`, `slow` (answers after a short sleep), `gate` (waits for a permit that `verifyConfig`
//! hands out), `cooperative` (announces `i-coop`, answers -32800 itself on cancel),
//! `ignore-cancel` (announces `i-stuck`, never answers), `hang` (never answers, announces
//! nothing), `panic` (announces `i-panic`, then panics), `fail` (answers capacityUnavailable),
//! `late` (announces nothing, ignores cancel, waits for the gate, then announces and returns
//! `i-late-N` and lets a `deleteInstance` of `wait-late` through), `drain-slow` (announces
//! `requested`, answers after 200 ms unless cancelled first). `cooperative` records its operation id in [`ROLLED_BACK`]
//! when cancelled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caa_plugin_sdk::proto::method::ListInstances;
use caa_plugin_sdk::proto::{
    Capabilities, ConfigOption, ConfigSchema, CreateInstanceParams, CreateInstanceResult,
    DeleteInstanceParams, DeleteInstanceResult, Describe, ErrorCode, Method, OptionKind, PeerInfo,
    RpcError, Stage, VerifyConfigResult,
};
use caa_plugin_sdk::{Config, Ctx, Provider, SdkError, ServeOptions, ServeOutcome, serve};
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

/// Generous bound that only prevents a hung test.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(20);

/// Operation ids whose `cooperative` create saw the cancel and rolled back. Tests use unique
/// operation ids, so running in parallel does not mix them up.
pub(crate) static ROLLED_BACK: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) struct Scripted {
    creates: AtomicUsize,
    gate: Semaphore,
    /// A permit per finished `late` create.
    late_done: Semaphore,
}

pub(crate) fn schema() -> ConfigSchema {
    ConfigSchema {
        options: vec![
            ConfigOption {
                default: Some(json!("r-default")),
                ..ConfigOption::new("region", "TEST_REGION", OptionKind::String)
            },
            ConfigOption {
                required: true,
                ..ConfigOption::new("zone", "TEST_ZONE", OptionKind::String)
            },
            ConfigOption {
                secret: true,
                ..ConfigOption::new("token", "TEST_TOKEN", OptionKind::String)
            },
            ConfigOption::new("verbose", "TEST_VERBOSE", OptionKind::Bool),
            ConfigOption::new("subnets", "TEST_SUBNETS", OptionKind::StringList),
            ConfigOption::new("labels", "TEST_LABELS", OptionKind::StringMap),
            ConfigOption::new("maxVms", "TEST_MAX_VMS", OptionKind::Integer),
        ],
    }
}

impl Provider for Scripted {
    fn describe() -> Describe {
        Describe {
            plugin: PeerInfo {
                name: "scripted".to_owned(),
                version: Some("9.9.9".to_owned()),
                sdk: None,
            },
            protocol_versions: Vec::new(),
            capabilities: Capabilities { cancel: true, progress: true, ..Capabilities::default() },
            config_schema: schema(),
        }
    }

    async fn init(config: Config) -> Result<Scripted, RpcError> {
        if config.str("zone") == Some("panic") {
            panic!("init panics on request");
        }
        Ok(Scripted {
            creates: AtomicUsize::new(0),
            gate: Semaphore::new(0),
            late_done: Semaphore::new(0),
        })
    }

    async fn verify_config(&self, _ctx: Ctx) -> Result<VerifyConfigResult, RpcError> {
        self.gate.add_permits(100);
        Ok(VerifyConfigResult { ok: true, checks: Vec::new(), warnings: Vec::new() })
    }

    async fn create_instance(
        &self,
        ctx: Ctx,
        params: CreateInstanceParams,
    ) -> Result<CreateInstanceResult, RpcError> {
        let n = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        let made = |id: &str| CreateInstanceResult {
            instance_id: id.to_owned(),
            name: params.pod_name.clone(),
            ips: vec!["10.0.0.1".to_owned()],
            provider_data: None,
        };
        match params.pod_name.as_str() {
            "ok" => Ok(made(&format!("i-{n}"))),
            "slow" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(made(&format!("i-{n}")))
            }
            "gate" => {
                self.gate
                    .acquire()
                    .await
                    .map_err(|_| RpcError::new(ErrorCode::InternalError, "gate"))?
                    .forget();
                Ok(made(&format!("i-{n}")))
            }
            "cooperative" => {
                ctx.progress(Stage::INSTANCE_CREATED, Some("i-coop"), None);
                ctx.cancelled().await;
                // Rolling back takes a few trips through the scheduler.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                ROLLED_BACK.lock().unwrap().push(ctx.operation_id().to_owned());
                Err(RpcError::new(ErrorCode::RequestCancelled, "cancelled by the host")
                    .with_instance_id("i-coop"))
            }
            "ignore-cancel" => {
                ctx.progress(Stage::INSTANCE_CREATED, Some("i-stuck"), Some("ignoring cancel"));
                std::future::pending().await
            }
            "hang" => std::future::pending().await,
            "late" => {
                self.gate
                    .acquire()
                    .await
                    .map_err(|_| RpcError::new(ErrorCode::InternalError, "gate"))?
                    .forget();
                let id = format!("i-late-{n}");
                ctx.progress(Stage::INSTANCE_CREATED, Some(&id), None);
                self.late_done.add_permits(1);
                Ok(made(&id))
            }
            "drain-slow" => {
                ctx.progress(Stage::REQUESTED, None, None);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => Ok(made(&format!("i-{n}"))),
                    () = ctx.cancelled() => Err(RpcError::new(ErrorCode::RequestCancelled, "cancelled")),
                }
            }
            "panic" => {
                ctx.progress(Stage::INSTANCE_CREATED, Some("i-panic"), None);
                panic!("provider bug");
            }
            _ => Err(RpcError::new(ErrorCode::CapacityUnavailable, "no capacity")
                .with_cloud_code("Stockout")),
        }
    }

    async fn delete_instance(
        &self,
        _ctx: Ctx,
        params: DeleteInstanceParams,
    ) -> Result<DeleteInstanceResult, RpcError> {
        if params.instance_id == "wait-late" {
            self.late_done
                .acquire()
                .await
                .map_err(|_| RpcError::new(ErrorCode::InternalError, "late"))?
                .forget();
        }
        Ok(DeleteInstanceResult { deleted: true, reason: None })
    }
}

/// A provider that lists `listInstances` but keeps the trait's default.
pub(crate) struct Listing;

impl Provider for Listing {
    fn describe() -> Describe {
        let mut describe = Scripted::describe();
        describe.plugin.name = "listing".to_owned();
        describe.config_schema = ConfigSchema::default();
        describe.capabilities.optional_methods = vec![ListInstances::NAME.to_owned()];
        describe
    }
    async fn init(_config: Config) -> Result<Listing, RpcError> {
        Ok(Listing)
    }
    async fn verify_config(&self, _ctx: Ctx) -> Result<VerifyConfigResult, RpcError> {
        Ok(VerifyConfigResult { ok: true, checks: Vec::new(), warnings: Vec::new() })
    }
    async fn create_instance(
        &self,
        _ctx: Ctx,
        _p: CreateInstanceParams,
    ) -> Result<CreateInstanceResult, RpcError> {
        Err(RpcError::new(ErrorCode::InternalError, "unused"))
    }
    async fn delete_instance(
        &self,
        _ctx: Ctx,
        _p: DeleteInstanceParams,
    ) -> Result<DeleteInstanceResult, RpcError> {
        Err(RpcError::new(ErrorCode::InternalError, "unused"))
    }
}

/// Short graces so that tests do not wait; the environment is a fixed map.
pub(crate) fn opts(env: &[(&str, &str)]) -> ServeOptions {
    let env: BTreeMap<String, String> =
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ServeOptions {
        max_line_bytes: 4096,
        cancel_grace: Duration::from_millis(50),
        deadline_grace: Duration::from_millis(50),
        drain_timeout: Duration::from_millis(200),
        env: Arc::new(move |name| env.get(name).cloned()),
        ..ServeOptions::default()
    }
}

/// One end of a served connection.
pub(crate) struct Client {
    write: WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    serve: JoinHandle<Result<ServeOutcome, SdkError>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Client {
    pub(crate) fn start<P: Provider>(opts: ServeOptions) -> Client {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (their_read, their_write) = tokio::io::split(theirs);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let serve = tokio::spawn(serve::<P, _, _>(their_read, their_write, opts, async move {
            let _ = stop_rx.await;
        }));
        let (read, write) = tokio::io::split(ours);
        Client { write, lines: BufReader::new(read).lines(), serve, shutdown: Some(stop_tx) }
    }

    /// A client whose connection is initialized with `zone: z1`.
    pub(crate) async fn ready() -> Client {
        let mut client = Client::start::<Scripted>(opts(&[]));
        let answer = client.call(&init_line(json!({"zone": "z1"}))).await;
        assert_eq!(answer["result"]["protocolVersion"], 1, "{answer}");
        client
    }

    pub(crate) async fn send(&mut self, line: &str) {
        self.send_bytes(line.as_bytes()).await;
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write");
        self.write.write_all(b"\n").await.expect("write");
    }

    /// The next line from the plugin, as JSON.
    pub(crate) async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(HANG_GUARD, self.lines.next_line())
            .await
            .expect("no answer from the plugin")
            .expect("read")
            .expect("the plugin closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The next line that is not a `$/progress` notification.
    pub(crate) async fn recv_answer(&mut self) -> Value {
        loop {
            let message = self.recv().await;
            if message["method"] != "$/progress" {
                return message;
            }
        }
    }

    pub(crate) async fn call(&mut self, line: &str) -> Value {
        self.send(line).await;
        self.recv_answer().await
    }

    pub(crate) fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Closes the plugin's input; returns the remaining output lines and why `serve` ended.
    pub(crate) async fn finish(mut self) -> (Vec<Value>, ServeOutcome) {
        self.write.shutdown().await.expect("close input");
        let mut rest = Vec::new();
        while let Some(line) = tokio::time::timeout(HANG_GUARD, self.lines.next_line())
            .await
            .expect("hang")
            .expect("read")
        {
            rest.push(serde_json::from_str(&line).expect("JSON"));
        }
        let outcome = tokio::time::timeout(HANG_GUARD, self.serve)
            .await
            .expect("hang")
            .expect("join")
            .expect("serve");
        (rest, outcome)
    }
}

pub(crate) fn init_line(config: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersions": [1], "host": {"name": "test"}, "provider": "scripted", "config": config}})
    .to_string()
}

pub(crate) fn create_line(id: i64, op: &str, pod: &str, deadline_ms: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "createInstance", "params": {
        "operationId": op, "deadlineMs": deadline_ms, "podName": pod, "podNamespace": "default",
        "sandboxId": "sb-1", "userData": "#cloud-config\nsecret: hunter2"}})
    .to_string()
}

pub(crate) fn request(id: i64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

pub(crate) fn cancel_line(op: &str) -> String {
    json!({"jsonrpc": "2.0", "method": "$/cancel", "params": {"operationId": op}}).to_string()
}

pub(crate) fn verify_line(id: i64) -> String {
    request(id, "verifyConfig", json!({"operationId": format!("verify-{id}"), "deadlineMs": 60000}))
}

/// The error code of an answer (panics on a result).
pub(crate) fn code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {answer}"))
}
