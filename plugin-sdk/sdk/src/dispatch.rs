//! Request routing: checks the connection phase, parses typed params, and runs each request in
//! its own task under a supervisor that answers on the handler's behalf when it panics, ignores
//! `$/cancel` past the grace, overruns its deadline, or is still running when the drain ends.
//! A handler answered for is left to run to completion (stopping a cloud call midway could
//! leak worse); what it reports afterwards goes nowhere, and a VM it still creates is logged as
//! an error and kept out of the replay memory.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use caa_plugin_proto::envelope::{error_line, result_line};
use caa_plugin_proto::method::{
    CreateInstance, DeleteInstance, Initialize, ListInstances, Ping, Teardown, VerifyConfig,
};
use caa_plugin_proto::{
    CreateInstanceParams, DeleteInstanceParams, Empty, ErrorCode, InitializeParams,
    InitializeResult, ListInstancesParams, Method, PROTOCOL_VERSIONS, RequestId, RpcError,
    VerifyConfigParams,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::Instrument;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::inflight::OpGuard;
use crate::overrun::{Overrun, report_abandoned_create, sdk_error};
use crate::provider::Provider;
use crate::replay::{self, Claim};
use crate::serve::{Conn, Phase};

type Answer = Result<Box<RawValue>, RpcError>;

impl<P: Provider> Conn<P> {
    /// Answers or starts one request. Runs in the read loop; never awaits.
    pub(crate) fn handle_request(
        self: &Arc<Self>,
        id: RequestId,
        method: &str,
        params: Option<&RawValue>,
        tasks: &mut JoinSet<()>,
    ) {
        if method == Ping::NAME {
            self.outbox.send(result_line(&id, &Empty {}));
            return;
        }
        if let Err(error) = self.route(&id, method, params, tasks) {
            tracing::debug!(method = %short(method), %id, code = error.code, "request refused");
            self.outbox.send(error_line(Some(&id), &error));
        }
    }

    fn route(
        self: &Arc<Self>,
        id: &RequestId,
        method: &str,
        params: Option<&RawValue>,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), RpcError> {
        if self.is_draining() {
            return Err(RpcError::new(ErrorCode::InvalidRequest, "plugin is shutting down"));
        }
        if self.is_torn_down() {
            return Err(RpcError::new(ErrorCode::InvalidRequest, "plugin was torn down"));
        }
        let provider = match &*self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Ready(_) if method == Initialize::NAME => {
                return Err(RpcError::new(ErrorCode::InvalidRequest, "already initialized"));
            }
            Phase::Initializing if method == Initialize::NAME => {
                return Err(RpcError::new(ErrorCode::InvalidRequest, "already initializing"));
            }
            Phase::New if method == Initialize::NAME => None,
            Phase::New | Phase::Initializing => {
                return Err(RpcError::new(
                    ErrorCode::NotInitialized,
                    "not initialized: send initialize first",
                ));
            }
            Phase::Ready(p) => Some(Arc::clone(p)),
        };
        if !self.inflight.begin_request(id) {
            return Err(RpcError::new(ErrorCode::InvalidRequest, "duplicate request id"));
        }
        let routed = match provider {
            None => self.initialize(id, params),
            Some(provider) => self.start(id, method, params, provider, tasks),
        };
        if routed.is_err() {
            self.inflight.end_request(id);
        }
        routed
    }

    /// Starts a method on a ready provider.
    fn start(
        self: &Arc<Self>,
        id: &RequestId,
        method: &str,
        params: Option<&RawValue>,
        provider: Arc<P>,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), RpcError> {
        match method {
            VerifyConfig::NAME => {
                let p: VerifyConfigParams = parse(params, false)?;
                self.spawn(
                    id,
                    VerifyConfig::NAME,
                    Some(p.operation_id),
                    p.deadline_ms,
                    tasks,
                    move |ctx| async move { raw(provider.verify_config(ctx).await) },
                );
            }
            CreateInstance::NAME => {
                let p: CreateInstanceParams = parse(params, false)?;
                let replay = Arc::clone(&self.replay);
                let (op, ms) = (p.operation_id.clone(), p.deadline_ms);
                self.spawn(id, CreateInstance::NAME, Some(op), ms, tasks, move |ctx| async move {
                    raw(match replay.claim(&p) {
                        Claim::Run(guard) => {
                            let outcome = provider.create_instance(ctx.clone(), p).await;
                            if ctx.complete() {
                                guard.finish(&outcome);
                            } else {
                                report_abandoned_create(&outcome);
                                guard.abandon(&outcome);
                            }
                            outcome
                        }
                        Claim::Wait(rx) => replay::wait(rx).await,
                        Claim::Done(result) => Ok(result),
                        Claim::Conflict => Err(RpcError::new(
                            ErrorCode::Conflict,
                            "operationId was already used with different params",
                        )),
                    })
                });
            }
            DeleteInstance::NAME => {
                let p: DeleteInstanceParams = parse(params, false)?;
                let (op, ms) = (p.operation_id.clone(), p.deadline_ms);
                self.spawn(id, DeleteInstance::NAME, Some(op), ms, tasks, move |ctx| async move {
                    raw(provider.delete_instance(ctx, p).await)
                });
            }
            ListInstances::NAME => {
                if !self
                    .describe
                    .capabilities
                    .optional_methods
                    .iter()
                    .any(|m| m == ListInstances::NAME)
                {
                    return Err(crate::provider::method_not_found(ListInstances::NAME));
                }
                let p: ListInstancesParams = parse(params, true)?;
                self.spawn(id, ListInstances::NAME, None, 0, tasks, move |ctx| async move {
                    raw(provider.list_instances(ctx, p).await)
                });
            }
            Teardown::NAME => {
                let _: Empty = parse(params, true)?;
                // Torn down as soon as the request is read: a request on the very next line
                // must already be refused, whatever the scheduler does with this task.
                self.torn_down.store(true, Ordering::SeqCst);
                self.spawn(id, Teardown::NAME, None, 0, tasks, move |_ctx| async move {
                    raw(provider.teardown().await)
                });
            }
            other => return Err(crate::provider::method_not_found(&short(other))),
        }
        Ok(())
    }

    /// Runs a handler in its own task under a supervisor task.
    fn spawn<F, Fut>(
        self: &Arc<Self>,
        id: &RequestId,
        method: &'static str,
        operation_id: Option<String>,
        deadline_ms: u64,
        tasks: &mut JoinSet<()>,
        handler: F,
    ) where
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let has_operation = operation_id.is_some();
        let operation_id = operation_id.unwrap_or_else(|| format!("{method}-{id}"));
        let budget = match deadline_ms {
            0 => self.opts.default_deadline,
            ms => std::time::Duration::from_millis(ms),
        };
        let deadline = Instant::now() + budget;
        let op = self.inflight.join_op(&operation_id);
        let span = tracing::info_span!("request", method, id = %id, operation_id = %operation_id);
        tracing::debug!(parent: &span, deadline_ms = budget.as_millis() as u64, "request started");
        let ctx = Ctx::new(
            operation_id,
            id.clone(),
            deadline,
            Arc::clone(op.state()),
            self.shutdown.clone(),
            has_operation && self.send_progress.load(Ordering::SeqCst),
            self.outbox.clone(),
        );
        let run = handler(ctx.clone());
        let own = ctx.clone();
        let handle = tokio::spawn(
            async move {
                let answer = run.await;
                if !own.complete() {
                    tracing::debug!("handler finished after the SDK answered for it");
                }
                answer
            }
            .instrument(span.clone()),
        );
        let conn = Arc::clone(self);
        let id = id.clone();
        tasks.spawn(
            async move { conn.supervise(id, method, op, ctx, deadline, handle).await }
                .instrument(span),
        );
    }

    /// Waits for the handler or answers for it, then queues the answer.
    async fn supervise(
        self: Arc<Self>,
        id: RequestId,
        method: &'static str,
        op: OpGuard,
        ctx: Ctx,
        deadline: Instant,
        mut handle: JoinHandle<Answer>,
    ) {
        let state = Arc::clone(op.state());
        let cancel_expired = async {
            tokio::select! {
                () = state.cancel.cancelled() => {}
                () = self.shutdown.cancelled() => {}
            }
            sleep(self.opts.cancel_grace).await;
        };
        let overrun = tokio::select! {
            biased;
            joined = &mut handle => Err(joined),
            () = cancel_expired => Ok(if state.cancel.is_cancelled() {
                Overrun::Cancel
            } else {
                Overrun::Drain
            }),
            () = sleep_until(deadline + self.opts.deadline_grace) => Ok(Overrun::Deadline),
        };
        let joined = match overrun {
            Err(joined) => joined,
            Ok(overrun) => {
                let error = overrun.error(method, &state);
                // The id is free before the answer is out, so the host may reuse it at once.
                self.inflight.end_request(&id);
                if ctx.answer(true, || error_line(Some(&id), &error)) {
                    tracing::warn!(
                        code = error.code,
                        "{}; answered for the handler, which keeps running detached",
                        overrun.reason()
                    );
                    return;
                }
                // The handler completed just now; its own answer is on the way.
                handle.await
            }
        };
        let answer = match joined {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => {
                tracing::error!(panic = %panic_message(e.into_panic()), "provider panicked");
                Err(sdk_error(ErrorCode::InternalError, "provider panicked", &state))
            }
            Err(_) => Err(sdk_error(ErrorCode::InternalError, "handler was aborted", &state)),
        };
        match &answer {
            Ok(_) => tracing::debug!("request answered"),
            Err(e) => tracing::debug!(code = e.code, "request failed"),
        }
        self.inflight.end_request(&id);
        drop(op);
        ctx.answer(false, || match answer {
            Ok(result) => result_line(&id, &result),
            Err(error) => error_line(Some(&id), &error),
        });
    }

    /// Checks `initialize` and starts `P::init` in a task that the read loop waits for.
    fn initialize(
        self: &Arc<Self>,
        id: &RequestId,
        params: Option<&RawValue>,
    ) -> Result<(), RpcError> {
        let params: InitializeParams = parse(params, false)?;
        let supported: Vec<u32> = self
            .describe
            .protocol_versions
            .iter()
            .copied()
            .filter(|v| PROTOCOL_VERSIONS.contains(v))
            .collect();
        let Some(version) =
            params.protocol_versions.iter().copied().filter(|v| supported.contains(v)).max()
        else {
            let mut error = RpcError::new(
                ErrorCode::InvalidParams,
                format!(
                    "no common protocol version: the plugin speaks {supported:?}, the host offered {:?}",
                    params.protocol_versions
                ),
            );
            error.data_mut().supported = supported;
            error.data_mut().requested = params.protocol_versions;
            return Err(error);
        };
        let name = &self.describe.plugin.name;
        if let Some(wanted) = params.provider.as_deref().filter(|w| *w != name) {
            return Err(RpcError::new(
                ErrorCode::InvalidParams,
                format!(
                    "provider mismatch: the host expects {:?}, this plugin is {name:?}",
                    short(wanted)
                ),
            ));
        }
        if let Some(level) = params.log_level {
            self.set_log_level(level);
        }
        let config =
            Config::resolve(&self.describe.config_schema, &params.config, &*self.opts.env)?;
        tracing::debug!(host = %params.host.name, version, ?config, "initializing");
        // Absent `hostCapabilities` (an older host) keeps progress on.
        let progress = params.host_capabilities.is_none_or(|c| c.progress);
        self.send_progress.store(progress, Ordering::SeqCst);
        if let Some(pid) = params.host_pid {
            self.parent.set_host_pid(pid);
        }
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::Initializing;
        let result = InitializeResult {
            protocol_version: version,
            plugin: self.describe.plugin.clone(),
            capabilities: self.describe.capabilities.clone(),
            config_schema: self.describe.config_schema.clone(),
        };
        let conn = Arc::clone(self);
        let id = id.clone();
        let task = tokio::spawn(async move {
            let outcome = match tokio::spawn(P::init(config)).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(error = %e, "provider init failed");
                    Err(RpcError::new(ErrorCode::InternalError, "provider panicked during init"))
                }
            };
            let line = {
                let mut phase = conn.phase.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok(provider) => {
                        *phase = Phase::Ready(Arc::new(provider));
                        result_line(&id, &result)
                    }
                    Err(error) => {
                        *phase = Phase::New;
                        error_line(Some(&id), &error)
                    }
                }
            };
            conn.inflight.end_request(&id);
            conn.outbox.send(line);
        });
        *self.pending_init.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(())
    }
}

fn raw<T: Serialize>(outcome: Result<T, RpcError>) -> Answer {
    let value = outcome?;
    serde_json::value::to_raw_value(&value).map_err(|e| {
        RpcError::new(ErrorCode::InternalError, format!("serialising the result: {e}"))
    })
}

/// Deserialises params; absent params count as `{}` when `empty_ok`. The error names what is
/// wrong without quoting param values (they may be secrets).
fn parse<T: DeserializeOwned>(params: Option<&RawValue>, empty_ok: bool) -> Result<T, RpcError> {
    let text = match params {
        Some(raw) => raw.get(),
        None if empty_ok => "{}",
        None => {
            return Err(RpcError::new(
                ErrorCode::InvalidParams,
                "invalid params: params are missing",
            ));
        }
    };
    serde_json::from_str(text).map_err(|e| {
        RpcError::new(ErrorCode::InvalidParams, format!("invalid params: {}", redact_serde(&e)))
    })
}

/// A serde message without the offending value: `invalid type: string "s3cr3t", expected u64`
/// becomes `invalid type: string, expected u64`.
fn redact_serde(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (unexpected, expected) =
                rest.rsplit_once(", expected ").unwrap_or((rest, "something else"));
            let kind = unexpected.split([' ', '`']).next().unwrap_or("value");
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let expected = rest.rsplit_once(", expected ").map_or("", |(_, e)| e);
        return format!("unknown variant, expected {expected}");
    }
    message.to_owned()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "unknown panic".to_owned(), |s| (*s).to_owned()),
    }
}

/// Untrusted names in messages and logs are cut short.
fn short(text: &str) -> String {
    text.chars().take(64).collect()
}
