//! apf.json, the agent-protocol-forwarder's config (upstream `forwarder.Config` and
//! `tunneler.Config`): field names, order and omission rules of upstream's JSON, written like Go's
//! `json.MarshalIndent` and read like Go's decoder (case-insensitive keys, unknown keys ignored,
//! `null` leaves the zero value). TLS material never shows in `Debug`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::UserDataError;
use crate::go_json;
use crate::netenum::{NeighborState, RouteProtocol, RouteScope};

/// The forwarder daemon config written to `/run/peerpod/apf.json` (`forwarder.Config`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwarderConfig {
    /// `pod-network`; required by APF.
    #[serde(rename = "pod-network")]
    pub pod_network: PodNetwork,
    /// `pod-namespace`.
    #[serde(rename = "pod-namespace", default)]
    pub pod_namespace: String,
    /// `pod-name`.
    #[serde(rename = "pod-name", default)]
    pub pod_name: String,
    /// `tls-server-key`: PEM PKCS#8 EC key of the VM (auto-TLS only). Secret.
    #[serde(rename = "tls-server-key", default, skip_serializing_if = "String::is_empty")]
    pub tls_server_key: String,
    /// `tls-server-cert`: PEM, CN/SAN = instance name (auto-TLS only).
    #[serde(rename = "tls-server-cert", default, skip_serializing_if = "String::is_empty")]
    pub tls_server_cert: String,
    /// `tls-client-ca`: PEM of the adaptor's client certificate (auto mode).
    #[serde(rename = "tls-client-ca", default, skip_serializing_if = "String::is_empty")]
    pub tls_client_ca: String,
    /// `tls-min-version`: `VersionTLS12` or `VersionTLS13`.
    #[serde(rename = "tls-min-version", default, skip_serializing_if = "String::is_empty")]
    pub tls_min_version: String,
    /// `tls-cipher-suites`: IANA names.
    #[serde(rename = "tls-cipher-suites", default, skip_serializing_if = "Vec::is_empty")]
    pub tls_cipher_suites: Vec<String>,
    /// `sc-pp-prv`: legacy secure-comms private key (base64 in JSON); never set by the adaptor.
    #[serde(rename = "sc-pp-prv", default, skip_serializing_if = "Vec::is_empty", with = "b64")]
    pub sc_pp_prv: Vec<u8>,
    /// `sc-wn-pub`: legacy secure-comms public key (base64 in JSON); never set by the adaptor.
    #[serde(rename = "sc-wn-pub", default, skip_serializing_if = "Vec::is_empty", with = "b64")]
    pub sc_wn_pub: Vec<u8>,
}

/// The pod network the VM recreates (`tunneler.Config`). Addresses are kept in their text form
/// (`10.244.1.7/24`; the zero value is `""`) so the JSON round-trips byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodNetwork {
    /// `podip`: pod IPv4 with prefix length.
    #[serde(rename = "podip")]
    pub pod_ip: String,
    /// `pod-hw-addr`: MAC of the pod interface.
    #[serde(rename = "pod-hw-addr")]
    pub pod_hw_addr: String,
    /// `interface`: pod interface name, usually `eth0`.
    #[serde(rename = "interface")]
    pub interface: String,
    /// `worker-node-ip`: first IPv4 (with prefix) of the worker's tunnel interface.
    #[serde(rename = "worker-node-ip")]
    pub worker_node_ip: String,
    /// `tunnel-type`: `vxlan`.
    #[serde(rename = "tunnel-type")]
    pub tunnel_type: String,
    /// `routes`; an empty list is written as `null` like Go's nil slice.
    #[serde(
        rename = "routes",
        serialize_with = "empty_as_null",
        deserialize_with = "null_as_empty"
    )]
    pub routes: Vec<Route>,
    /// `neighbors`: PERMANENT entries; an empty list is written as `null`.
    #[serde(
        rename = "neighbors",
        serialize_with = "empty_as_null",
        deserialize_with = "null_as_empty"
    )]
    pub neighbors: Vec<Neighbor>,
    /// `mtu` of the pod interface.
    #[serde(rename = "mtu")]
    pub mtu: u32,
    /// `index`: per-process pod counter.
    #[serde(rename = "index")]
    pub index: u32,
    /// `vxlan-port`, omitted when 0.
    #[serde(rename = "vxlan-port", skip_serializing_if = "is_zero_u16")]
    pub vxlan_port: u16,
    /// `vxlan-id` (VNI), omitted when 0.
    #[serde(rename = "vxlan-id", skip_serializing_if = "is_zero_u32")]
    pub vxlan_id: u32,
    /// `dedicated`: the tunnel uses the VM's second NIC.
    #[serde(rename = "dedicated")]
    pub dedicated: bool,
    /// `external-net-via-pod-vm`.
    #[serde(rename = "external-net-via-pod-vm")]
    pub external_net_via_pod_vm: bool,
}

/// A route of the worker-side pod netns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Route {
    /// `dst`: CIDR (`0.0.0.0/0` for the default route); always written, `""` when unset.
    pub dst: String,
    /// `gw`: IP or `""`; always written.
    pub gw: String,
    /// `dev`, omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dev: String,
    /// `protocol`, omitted when unspecified.
    #[serde(skip_serializing_if = "RouteProtocol::is_unspec")]
    pub protocol: RouteProtocol,
    /// `scope`, omitted when `universe`.
    #[serde(skip_serializing_if = "RouteScope::is_universe")]
    pub scope: RouteScope,
}

/// A neighbor (ARP) entry on the pod interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Neighbor {
    /// `ip`: always written, `""` when unset.
    pub ip: String,
    /// `hw-addr`, omitted when empty.
    #[serde(rename = "hw-addr", skip_serializing_if = "String::is_empty")]
    pub hw_addr: String,
    /// `dev`, omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dev: String,
    /// `state`, omitted when `none`.
    #[serde(skip_serializing_if = "NeighborState::is_none")]
    pub state: NeighborState,
}

impl ForwarderConfig {
    /// apf.json text exactly as upstream writes it (Go `json.MarshalIndent`, four spaces, no
    /// trailing newline). The adaptor also writes this text as its debug copy.
    pub fn to_json(&self) -> Result<String, UserDataError> {
        go_json::to_string_indented(self)
            .map_err(|e| UserDataError::ForwarderEncode(UserDataError::json_reason(&e)))
    }

    /// Reads apf.json the way Go's decoder does: keys match case-insensitively (upstream
    /// fixtures use `Dst`, `GW`), unknown keys are ignored, and `null` leaves a field at its zero
    /// value. `pod-network` must be present.
    pub fn from_json(text: &[u8]) -> Result<Self, UserDataError> {
        let reason = |e: serde_json::Error| UserDataError::json_reason(&e);
        let mut value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| UserDataError::ForwarderDecode(reason(e)))?;
        fold_keys(&mut value);
        serde_json::from_value(value).map_err(|e| UserDataError::ForwarderDecode(reason(e)))
    }
}

/// Lower-cases every object key (ASCII folding) and drops `null` members, recursively. Later
/// duplicates win, as in Go.
fn fold_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (key, mut v) in old {
                if v.is_null() {
                    continue;
                }
                fold_keys(&mut v);
                map.insert(key.to_ascii_lowercase(), v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fold_keys),
        _ => {}
    }
}

/// Shows the length of a secret, never its text.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 { f.write_str("<empty>") } else { write!(f, "<redacted {} bytes>", self.0) }
    }
}

impl fmt::Debug for ForwarderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwarderConfig")
            .field("pod_network", &self.pod_network)
            .field("pod_namespace", &self.pod_namespace)
            .field("pod_name", &self.pod_name)
            .field("tls_server_key", &Redacted(self.tls_server_key.len()))
            .field("tls_server_cert", &Redacted(self.tls_server_cert.len()))
            .field("tls_client_ca", &Redacted(self.tls_client_ca.len()))
            .field("tls_min_version", &self.tls_min_version)
            .field("tls_cipher_suites", &self.tls_cipher_suites)
            .field("sc_pp_prv", &Redacted(self.sc_pp_prv.len()))
            .field("sc_wn_pub", &Redacted(self.sc_wn_pub.len()))
            .finish()
    }
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn empty_as_null<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() { s.serialize_none() } else { v.serialize(s) }
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Go marshals `[]byte` as standard padded base64.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("invalid base64 in a byte field"))
    }
}
