//! Fixtures shared by the integration tests, and a tiny deterministic PRNG for property-style
//! tests (no extra dependency, reproducible failures).

use caa_userdata::{
    ForwarderConfig, Initdata, Neighbor, NeighborState, PodNetwork, Route, RouteProtocol,
    RouteScope, UserData,
};

/// The initdata TOML whose gzip+base64 is in `golden/full.yaml`.
pub(crate) const INITDATA_TOML: &str = "algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs]\n[token_configs.kbs]\nurl = \"http://kbs.example:8080\"\n'''\n";
/// Python `base64(gzip.compress(INITDATA_TOML, mtime=0))`.
pub(crate) const INITDATA_ENCODED: &str = "H4sIAAAAAAACA13MQQrDIBCF4b2nCLNxN7GFlhDoSUII09ZGiTpBpyHHr267fN+Dn8LK2YuL3aOD4uh6u4M6bC6eUyODFzSg1PQmoVkBEQrHAPXTWqtJeLNpeXH6+LXMfxu3Z7VvDq3kRPax7yuhPSnuwY6DGWq7dX7NefUbhwAAAA==";
pub(crate) const SECRET_KEY_MARK: &str = "MIGHAgEAMBMGSECRETKEY";
pub(crate) const AUTH_JSON: &str = r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNzU0VDUkVU"}}}"#;
pub(crate) const AUTH_SECRET_MARK: &str = "dXNlcjpwYXNzU0VDUkVU";

pub(crate) fn full_forwarder() -> ForwarderConfig {
    ForwarderConfig {
        pod_network: PodNetwork {
            pod_ip: "10.244.1.7/24".into(),
            pod_hw_addr: "0a:58:0a:f4:01:07".into(),
            interface: "eth0".into(),
            worker_node_ip: "192.168.122.63/24".into(),
            tunnel_type: "vxlan".into(),
            routes: vec![
                Route {
                    dst: "0.0.0.0/0".into(),
                    gw: "10.244.1.1".into(),
                    dev: "eth0".into(),
                    protocol: RouteProtocol::Boot,
                    scope: RouteScope::Universe,
                },
                Route {
                    dst: "10.244.1.0/24".into(),
                    gw: String::new(),
                    dev: "eth0".into(),
                    protocol: RouteProtocol::Kernel,
                    scope: RouteScope::Link,
                },
            ],
            neighbors: vec![Neighbor {
                ip: "10.244.1.1".into(),
                hw_addr: "ee:ee:ee:ee:ee:ee".into(),
                dev: "eth0".into(),
                state: NeighborState::Permanent,
            }],
            mtu: 1450,
            index: 0,
            vxlan_port: 4789,
            vxlan_id: 555000,
            dedicated: false,
            external_net_via_pod_vm: false,
        },
        pod_namespace: "default".into(),
        pod_name: "nginx".into(),
        tls_server_key: format!(
            "-----BEGIN PRIVATE KEY-----\n{SECRET_KEY_MARK}\n-----END PRIVATE KEY-----\n"
        ),
        tls_server_cert:
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgSERVER\n-----END CERTIFICATE-----\n".into(),
        tls_client_ca:
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgCLIENT\n-----END CERTIFICATE-----\n".into(),
        tls_min_version: "VersionTLS13".into(),
        tls_cipher_suites: vec!["TLS_AES_128_GCM_SHA256".into(), "TLS_AES_256_GCM_SHA384".into()],
        sc_pp_prv: Vec::new(),
        sc_wn_pub: Vec::new(),
    }
}

/// Matches `golden/full.yaml`.
pub(crate) fn full() -> UserData {
    UserData {
        forwarder: full_forwarder(),
        auth_json: Some(AUTH_JSON.into()),
        initdata: Some(Initdata::Encoded(INITDATA_ENCODED.into())),
        scratch_space: true,
    }
}

/// Matches `golden/escaping.yaml`.
pub(crate) fn escaping() -> UserData {
    let forwarder = ForwarderConfig {
        pod_network: PodNetwork {
            pod_ip: "10.244.2.9/24".into(),
            pod_hw_addr: "0a:58:0a:f4:02:09".into(),
            interface: "eth0".into(),
            worker_node_ip: "10.0.0.5/16".into(),
            tunnel_type: "vxlan".into(),
            routes: vec![Route {
                dst: String::new(),
                gw: "10.244.2.1".into(),
                dev: String::new(),
                protocol: RouteProtocol::Static,
                scope: RouteScope::Host,
            }],
            neighbors: vec![Neighbor::default()],
            mtu: 9000,
            index: 7,
            vxlan_port: 0,
            vxlan_id: 555007,
            dedicated: true,
            external_net_via_pod_vm: true,
        },
        pod_namespace: "ns<1>".into(),
        pod_name: "a&b \"q\" \\ \u{2028} é\t".into(),
        sc_pp_prv: vec![0, 1, 2, 255],
        sc_wn_pub: b"scpub".to_vec(),
        ..ForwarderConfig::default()
    };
    UserData { scratch_space: true, ..UserData::new(forwarder) }
}

/// xorshift64*: deterministic, good enough to spread test inputs.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A string over an alphabet rich in JSON/YAML/HTML specials, including characters YAML
    /// cannot carry raw (DEL, NEL, BOM, U+2028) that the JSON writers must escape.
    pub(crate) fn string(&mut self, max: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', ' ', '-', ':', '#', '"', '\'', '\\', '/', '<', '>', '&', '|', '\n',
            '\t', '\r', '\u{1}', '\u{7f}', '\u{85}', '\u{feff}', 'é', '\u{2028}', '\u{2029}', '😀',
            '{', '}', '[',
        ];
        let len = self.below(max + 1);
        (0..len).map(|_| self.pick(ALPHABET)).collect()
    }
}
