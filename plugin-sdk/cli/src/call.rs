//! `caa-plugin call`: start a plugin, initialize it with a config, run one method and print the
//! result. Progress notifications are printed as they arrive; the first Ctrl-C sends `$/cancel`
//! for the operation and keeps waiting for the plugin's answer, the second gives up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use caa_plugin_host::{CallError, CallOptions, Plugin, PluginCommand, PluginSpec};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One `call` invocation.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// Plugin executable.
    pub plugin: PathBuf,
    /// Method name.
    pub method: String,
    /// Params object.
    pub params: Value,
    /// `initialize.config`.
    pub config: BTreeMap<String, Value>,
    /// Host env vars to pass through besides the schema's.
    pub pass_env: Vec<String>,
    /// Optional pinned digest.
    pub sha256: Option<String>,
    /// Overall time limit for the call.
    pub timeout: Option<Duration>,
}

/// How a call ended.
#[derive(Debug)]
pub enum CallOutcome {
    /// The plugin's result.
    Result(Value),
    /// The call failed.
    Failed(CallError),
}

/// Default budgets per method, in milliseconds (docs/plugin-protocol.md, "Deadlines").
fn default_deadline_ms(method: &str) -> Option<u64> {
    match method {
        "createInstance" => Some(540_000),
        "deleteInstance" => Some(300_000),
        "verifyConfig" => Some(60_000),
        _ => None,
    }
}

/// Fills `operationId` and `deadlineMs` for the methods that carry them, when absent.
pub fn complete_params(method: &str, params: &mut Value) -> Option<String> {
    let deadline = default_deadline_ms(method)?;
    let obj = params.as_object_mut()?;
    let op = obj
        .entry("operationId")
        .or_insert_with(|| json!(format!("cli-{}", uuid::Uuid::new_v4())))
        .as_str()
        .map(str::to_owned);
    obj.entry("deadlineMs").or_insert(json!(deadline));
    op
}

/// Runs the call; `on_progress` sees every `$/progress` of the operation.
pub async fn call(
    mut req: CallRequest,
    mut on_progress: impl FnMut(&Value),
) -> anyhow::Result<CallOutcome> {
    let mut command = PluginCommand::new(&req.plugin).pass_env(req.pass_env.clone());
    if let Some(sha) = &req.sha256 {
        command = command.sha256(sha.clone());
    }
    let describe = command.describe().await?;
    let mut spec = PluginSpec::new(describe.plugin.name.clone(), command);
    spec.config = req.config.clone();
    let plugin = Plugin::start(&spec).await?;
    let operation = complete_params(&req.method, &mut req.params);
    let deadline = req.params.get("deadlineMs").and_then(Value::as_u64).map(Duration::from_millis);
    let timeout = req
        .timeout
        .or(deadline.map(|d| d + Duration::from_secs(30)))
        .unwrap_or(Duration::from_secs(60));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut opts = CallOptions::new(timeout).progress(tx);
    if let Some(op) = &operation {
        opts = opts.operation(op.clone());
    }
    let outcome = {
        let client = plugin.client();
        let call = client.call_raw(&req.method, req.params.clone(), opts);
        tokio::pin!(call);
        let mut interrupts = 0;
        let mut announced: Option<String> = None;
        loop {
            tokio::select! {
                result = &mut call => break result,
                Some(progress) = rx.recv() => {
                    if progress.instance_id.is_some() {
                        announced.clone_from(&progress.instance_id);
                    }
                    on_progress(&serde_json::to_value(progress)?);
                }
                _ = tokio::signal::ctrl_c() => {
                    interrupts += 1;
                    match (&operation, interrupts) {
                        (Some(op), 1) => {
                            tracing::warn!(operation_id = %op, "interrupted: sent $/cancel, waiting for the plugin's answer (Ctrl-C again to give up)");
                            client.cancel(op, "interrupted by the user");
                        }
                        _ => match &announced {
                            Some(id) => anyhow::bail!(
                                "interrupted before the plugin answered; instance {id} may exist: delete it with `caa-plugin call {} deleteInstance '{{\"instanceId\":\"{id}\"}}'`",
                                req.plugin.display()
                            ),
                            None => anyhow::bail!("interrupted before the plugin answered"),
                        },
                    }
                }
            }
        }
    };
    while let Ok(progress) = rx.try_recv() {
        on_progress(&serde_json::to_value(progress)?);
    }
    if let Err(e) = plugin.shutdown().await {
        tracing::warn!("plugin shutdown: {e}");
    }
    Ok(match outcome {
        Ok(value) => CallOutcome::Result(value),
        Err(e) => CallOutcome::Failed(e),
    })
}
