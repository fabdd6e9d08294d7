//! Property-style round trips with a seeded PRNG: whatever the adaptor renders, the VM-side
//! parser reads back unchanged.

use caa_userdata::{
    ForwarderConfig, Initdata, Neighbor, NeighborState, PodNetwork, Route, RouteProtocol,
    RouteScope, UserData, parse, render,
};

use crate::support::Rng;

fn random_forwarder(rng: &mut Rng) -> ForwarderConfig {
    let routes = (0..rng.below(4))
        .map(|_| Route {
            dst: rng.string(18),
            gw: rng.string(15),
            dev: rng.string(6),
            protocol: rng.pick(RouteProtocol::ALL),
            scope: rng.pick(RouteScope::ALL),
        })
        .collect();
    let neighbors = (0..rng.below(3))
        .map(|_| Neighbor {
            ip: rng.string(15),
            hw_addr: rng.string(17),
            dev: rng.string(6),
            state: rng.pick(NeighborState::ALL),
        })
        .collect();
    let bytes = |rng: &mut Rng| (0..rng.below(40)).map(|_| rng.next() as u8).collect::<Vec<u8>>();
    ForwarderConfig {
        pod_network: PodNetwork {
            pod_ip: rng.string(18),
            pod_hw_addr: rng.string(17),
            interface: rng.string(8),
            worker_node_ip: rng.string(18),
            tunnel_type: rng.string(5),
            routes,
            neighbors,
            mtu: rng.next() as u32,
            index: rng.next() as u32,
            vxlan_port: rng.pick(&[0, 4789, u16::MAX]),
            vxlan_id: rng.pick(&[0, 555000, u32::MAX]),
            dedicated: rng.below(2) == 1,
            external_net_via_pod_vm: rng.below(2) == 1,
        },
        pod_namespace: rng.string(20),
        pod_name: rng.string(40),
        tls_server_key: rng.string(300),
        tls_server_cert: rng.string(300),
        tls_client_ca: rng.string(300),
        tls_min_version: rng.string(12),
        tls_cipher_suites: (0..rng.below(3)).map(|_| rng.string(20)).collect(),
        sc_pp_prv: bytes(rng),
        sc_wn_pub: bytes(rng),
    }
}

fn random_userdata(rng: &mut Rng) -> UserData {
    let auth_json = (rng.below(2) == 1).then(|| {
        let mut auths = serde_json::Map::new();
        for _ in 0..rng.below(3) {
            auths.insert(rng.string(20), serde_json::json!({ "auth": rng.string(30) }));
        }
        serde_json::json!({ "auths": auths }).to_string()
    });
    // Initdata travels compressed, so any text survives, control characters included.
    let initdata = (rng.below(2) == 1).then(|| {
        let toml: String = format!("x{}", rng.string(200))
            + &(0..rng.below(20)).map(|_| char::from(rng.next() as u8 & 0x7f)).collect::<String>();
        Initdata::Toml(toml)
    });
    UserData {
        forwarder: random_forwarder(rng),
        auth_json,
        initdata,
        scratch_space: rng.below(2) == 1,
    }
}

#[test]
fn parse_of_render_gives_back_the_input() {
    let mut rng = Rng::new(0x5eed_cafe);
    for case in 0..400 {
        let userdata = random_userdata(&mut rng);
        let text = render(&userdata).unwrap_or_else(|e| panic!("case {case}: render: {e}"));
        let parsed = parse(&text).unwrap_or_else(|e| panic!("case {case}: parse: {e}"));
        let mut back = parsed.to_user_data().unwrap();
        // auth.json may come back with U+2028/U+2029 as JSON escapes: compare as JSON.
        let json = |a: &Option<String>| {
            a.as_deref().map(|a| serde_json::from_str::<serde_json::Value>(a).unwrap())
        };
        assert_eq!(json(&back.auth_json), json(&userdata.auth_json), "case {case}");
        back.auth_json.clone_from(&userdata.auth_json);
        assert_eq!(back, userdata, "case {case}");
        assert!(parsed.ignored_keys.is_empty());
    }
}

#[test]
fn apf_json_round_trips_through_its_own_text() {
    let mut rng = Rng::new(42);
    for _ in 0..200 {
        let cfg = random_forwarder(&mut rng);
        let json = cfg.to_json().unwrap();
        assert_eq!(ForwarderConfig::from_json(json.as_bytes()).unwrap(), cfg);
        // Go's encoder never lets these through raw.
        assert!(!json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']));
    }
}

#[test]
fn encoded_initdata_reads_back_as_its_toml() {
    let mut userdata = UserData::new(ForwarderConfig::default());
    let encoded = caa_userdata::encode_initdata("version = \"0.1.0\"\n").unwrap();
    userdata.initdata = Some(Initdata::Encoded(encoded));
    let parsed = parse(&render(&userdata).unwrap()).unwrap();
    assert_eq!(parsed.initdata.as_deref(), Some("version = \"0.1.0\"\n"));
}

#[test]
fn characters_yaml_cannot_carry_are_escaped_or_refused() {
    // NEL is a YAML line break and Go's JSON encoder leaves it raw; ours escapes it.
    let mut userdata = UserData::new(ForwarderConfig::default());
    userdata.forwarder.pod_name = "a\u{85}\u{7f}b".into();
    userdata.auth_json = Some("{\"auths\":{\"r\u{2028}\u{85}\":{}}}".into());
    let text = render(&userdata).unwrap();
    assert!(text.contains(r#""pod-name": "a\u0085\u007fb""#), "{text}");
    assert!(text.contains(r#"{"auths":{"r\u2028\u0085":{}}}"#), "{text}");
    let back = parse(&text).unwrap();
    assert_eq!(back.forwarder.unwrap().pod_name, "a\u{85}\u{7f}b");
    // Text that is not what a literal block can reproduce is refused, not mangled.
    let mut userdata = UserData::new(ForwarderConfig::default());
    userdata.auth_json = Some(" {}".into());
    let err = render(&userdata).unwrap_err().to_string();
    assert!(err.starts_with("/run/peerpod/auth.json cannot be written"), "{err}");
}
