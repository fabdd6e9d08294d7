//! JSON Schema export of every message, generated from the Rust types. The committed copies
//! under `plugin-sdk/proto/schema/` are what third-party plugin authors read; a test fails when
//! they drift from the types.

use schemars::{JsonSchema, schema_for};

use crate::error::RpcError;
use crate::handshake::Describe;
use crate::method::{
    Cancel, CreateInstance, DeleteInstance, Initialize, ListInstances, Method, Notification, Ping,
    Progress, SetLogLevel, Teardown, VerifyConfig,
};

/// `(file name, pretty JSON)` for every schema file, in a stable order.
pub fn all() -> Vec<(String, String)> {
    let mut out = Vec::new();
    method::<Initialize>(&mut out);
    method::<VerifyConfig>(&mut out);
    method::<CreateInstance>(&mut out);
    method::<DeleteInstance>(&mut out);
    method::<ListInstances>(&mut out);
    method::<Teardown>(&mut out);
    method::<Ping>(&mut out);
    notification::<Cancel>(&mut out);
    notification::<Progress>(&mut out);
    notification::<SetLogLevel>(&mut out);
    out.push(file::<RpcError>("error"));
    out.push(file::<Describe>("describe"));
    out
}

fn method<M: Method>(out: &mut Vec<(String, String)>) {
    let base = file_stem(M::NAME);
    out.push(file::<M::Params>(&format!("{base}.params")));
    out.push(file::<M::Result>(&format!("{base}.result")));
}

fn notification<N: Notification>(out: &mut Vec<(String, String)>) {
    out.push(file::<N::Params>(&format!("{}.params", file_stem(N::NAME))));
}

fn file_stem(name: &str) -> String {
    name.replace("$/", "dollar-")
}

fn file<T: JsonSchema>(stem: &str) -> (String, String) {
    let schema = schema_for!(T);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    (format!("{stem}.json"), text)
}
