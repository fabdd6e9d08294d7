//! Bookkeeping of requests still running: their JSON-RPC ids (to refuse a duplicate id) and
//! their operations (so `$/cancel {operationId}` reaches every request of that operation and the
//! announced instance id is at hand when the SDK answers on a handler's behalf).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use caa_plugin_proto::RequestId;

use crate::ctx::OpState;

/// The requests and operations of one connection.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    ids: Mutex<HashSet<RequestId>>,
    /// Operation id -> (state, number of running requests carrying it).
    ops: Mutex<HashMap<String, (Arc<OpState>, usize)>>,
}

impl InFlight {
    /// Records a request id; false when a request with this id is still running.
    pub(crate) fn begin_request(&self, id: &RequestId) -> bool {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone())
    }

    /// Forgets a request id once its answer is queued.
    pub(crate) fn end_request(&self, id: &RequestId) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Joins (or opens) an operation; the guard leaves it when dropped.
    pub(crate) fn join_op(self: &Arc<Self>, operation_id: &str) -> OpGuard {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let entry = ops.entry(operation_id.to_owned()).or_insert_with(|| (Arc::default(), 0));
        entry.1 += 1;
        OpGuard {
            table: Arc::clone(self),
            operation_id: operation_id.to_owned(),
            state: Arc::clone(&entry.0),
        }
    }

    /// Cancels a running operation; false when no request of it is running.
    pub(crate) fn cancel(&self, operation_id: &str) -> bool {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        match ops.get(operation_id) {
            Some((state, _)) => {
                state.cancel.cancel();
                true
            }
            None => false,
        }
    }
}

/// Membership of one request in an operation.
#[derive(Debug)]
pub(crate) struct OpGuard {
    table: Arc<InFlight>,
    operation_id: String,
    state: Arc<OpState>,
}

impl OpGuard {
    pub(crate) fn state(&self) -> &Arc<OpState> {
        &self.state
    }
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        let mut ops = self.table.ops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = ops.get_mut(&self.operation_id) {
            entry.1 -= 1;
            if entry.1 == 0 {
                ops.remove(&self.operation_id);
            }
        }
    }
}
