//! Durable per-sandbox state: the one module that owns files under the state directory
//! (default `/run/peerpod/state`, env `CAA_STATE_DIR`). Upstream keeps sandboxes in memory only;
//! we keep one versioned record per sandbox so a restarted adaptor can re-adopt its sandboxes and
//! delete instances nobody owns.
//!
//! - [`record`]: [`SandboxRecord`] and its private on-disk form;
//! - [`store`]: [`StateStore`], atomic put/get/remove/list over a directory.

pub mod record;
pub mod store;

pub use record::{DecodeError, Phase, SCHEMA_VERSION, SandboxRecord};
pub use store::{CORRUPT_SUFFIX, LoadFailure, StateError, StateStore};
