//! `createInstance` idempotency inside the SDK: the same operation id with the same params is
//! answered with the same outcome (shared while the first call runs, replayed from memory once
//! it succeeded), and with different params gets `conflict`. Failures are not remembered, so a
//! retry runs the provider again. Memory is bounded to the most recent operations.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use caa_plugin_proto::{CreateInstanceParams, CreateInstanceResult, ErrorCode, RpcError};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// How many operations are remembered.
const CAPACITY: usize = 4096;

type Outcome = Result<CreateInstanceResult, RpcError>;

/// The replay memory of one connection.
#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Insertion order for eviction: (operation id, generation).
    order: VecDeque<(String, u64)>,
    next_generation: u64,
}

#[derive(Debug)]
struct Entry {
    hash: [u8; 32],
    generation: u64,
    state: EntryState,
}

#[derive(Debug)]
enum EntryState {
    Running(watch::Receiver<Option<Outcome>>),
    Done(CreateInstanceResult),
}

/// What a create call should do.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Nobody ran this operation: run the provider and report through the guard.
    Run(RunGuard),
    /// The same call is running: wait for its outcome.
    Wait(watch::Receiver<Option<Outcome>>),
    /// The same call succeeded before.
    Done(CreateInstanceResult),
    /// The operation id was used with different params.
    Conflict,
}

impl ReplayCache {
    /// Looks the operation up, registering a new run when it is unknown.
    pub(crate) fn claim(self: &Arc<Self>, params: &CreateInstanceParams) -> Claim {
        let hash = params_hash(params);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = inner.entries.get(&params.operation_id) {
            if entry.hash != hash {
                return Claim::Conflict;
            }
            return match &entry.state {
                EntryState::Running(rx) => Claim::Wait(rx.clone()),
                EntryState::Done(result) => Claim::Done(result.clone()),
            };
        }
        let generation = inner.next_generation;
        inner.next_generation += 1;
        let (tx, rx) = watch::channel(None);
        let op = params.operation_id.clone();
        inner
            .entries
            .insert(op.clone(), Entry { hash, generation, state: EntryState::Running(rx) });
        inner.order.push_back((op.clone(), generation));
        while inner.order.len() > CAPACITY {
            if let Some((old, old_generation)) = inner.order.pop_front()
                && inner.entries.get(&old).is_some_and(|e| e.generation == old_generation)
            {
                inner.entries.remove(&old);
            }
        }
        Claim::Run(RunGuard { cache: Arc::clone(self), operation_id: op, generation, tx: Some(tx) })
    }

    fn settle(&self, operation_id: &str, generation: u64, success: Option<&CreateInstanceResult>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) =
            inner.entries.get_mut(operation_id).filter(|e| e.generation == generation)
        else {
            return;
        };
        match success {
            Some(result) => entry.state = EntryState::Done(result.clone()),
            None => {
                inner.entries.remove(operation_id);
            }
        }
    }
}

/// The running call of an operation. Dropped without [`RunGuard::finish`] (a panic), it forgets
/// the operation and waiting duplicates learn that no outcome will come.
#[derive(Debug)]
pub(crate) struct RunGuard {
    cache: Arc<ReplayCache>,
    operation_id: String,
    generation: u64,
    tx: Option<watch::Sender<Option<Outcome>>>,
}

impl RunGuard {
    /// Records the outcome and hands it to waiting duplicates.
    pub(crate) fn finish(mut self, outcome: &Outcome) {
        self.cache.settle(&self.operation_id, self.generation, outcome.as_ref().ok());
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(outcome.clone()));
        }
    }
}

impl RunGuard {
    /// The SDK answered for this call before it finished: its outcome is not remembered (a
    /// success reached no host, so a retry must not be told "done"), but duplicates still
    /// waiting get it.
    pub(crate) fn abandon(mut self, outcome: &Outcome) {
        self.cache.settle(&self.operation_id, self.generation, None);
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(outcome.clone()));
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.cache.settle(&self.operation_id, self.generation, None);
        }
    }
}

/// Waits for the outcome of the running duplicate.
pub(crate) async fn wait(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(vanished())),
        Err(_) => Err(vanished()),
    }
}

fn vanished() -> RpcError {
    RpcError::new(
        ErrorCode::InternalError,
        "the first createInstance of this operation ended without an answer",
    )
}

/// SHA-256 of the params' canonical JSON (sorted keys), without `deadlineMs`: a retry carries a
/// smaller budget but asks for the same instance.
fn params_hash(params: &CreateInstanceParams) -> [u8; 32] {
    let mut value = serde_json::to_value(params).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("deadlineMs");
    }
    let mut hasher = Sha256::new();
    canonical(&value, &mut hasher);
    hasher.finalize().into()
}

fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                canonical(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}
