//! Golden wire examples: each file under `tests/wire/` is one NDJSON line exactly as the types
//! serialise it. Any byte change here changes the protocol and needs a version decision (see
//! docs/plugin-protocol.md, "Versioning").

use std::collections::HashMap;
use std::path::Path;

use caa_plugin_proto::method::{
    Cancel, CreateInstance, DeleteInstance, Initialize, ListInstances, Method, Notification, Ping,
    Progress, Teardown, VerifyConfig,
};
use caa_plugin_proto::{Describe, Incoming, RpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wire").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

/// Parses the golden line's `part` ("params", "result" or "error") as `T` and checks that
/// re-serialising it gives exactly the bytes of that part.
fn round_trip<T: Serialize + DeserializeOwned>(name: &str, part: &str) {
    let line = golden(name);
    assert!(!line.contains('\n'), "{name}: a message is one line");
    let parts: HashMap<String, Box<RawValue>> = serde_json::from_str(&line).unwrap();
    let raw = parts.get(part).unwrap_or_else(|| panic!("{name}: no {part}")).get();
    let typed: T = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(serde_json::to_string(&typed).unwrap(), raw, "{name}: bytes changed");
    assert!(Incoming::parse(line.as_bytes()).is_ok(), "{name}: envelope does not parse");
}

fn request<M: Method>(stem: &str) {
    round_trip::<M::Params>(&format!("{stem}.request.json"), "params");
    round_trip::<M::Result>(&format!("{stem}.response.json"), "result");
}

#[test]
fn golden_requests_and_responses_keep_their_bytes() {
    request::<Initialize>("initialize");
    request::<VerifyConfig>("verifyConfig");
    request::<CreateInstance>("createInstance");
    request::<DeleteInstance>("deleteInstance");
    request::<ListInstances>("listInstances");
    request::<Teardown>("teardown");
    request::<Ping>("ping");
}

#[test]
fn golden_notifications_keep_their_bytes() {
    fn note<N: Notification>(stem: &str) {
        round_trip::<N::Params>(&format!("{stem}.json"), "params");
    }
    note::<Cancel>("cancel");
    note::<Progress>("progress");
}

#[test]
fn golden_errors_keep_their_bytes() {
    round_trip::<RpcError>("error.capacity.json", "error");
    round_trip::<RpcError>("error.cancelled.json", "error");
    round_trip::<RpcError>("error.version.json", "error");
}

#[test]
fn golden_describe_keeps_its_bytes() {
    let line = golden("describe.json");
    let typed: Describe = serde_json::from_str(&line).unwrap();
    assert_eq!(serde_json::to_string(&typed).unwrap(), line);
}
