//! Fuzz target: arbitrary bytes as the payload of `grpc.AgentService/CreateContainer` through
//! the worker-side and the VM-side interceptors, and of `CreateSandbox` through the VM side.
//! A payload that decodes must be rewritten, the rewrite must decode, and rewriting the
//! rewrite must give the same message and the same bytes (a relay that retries or chains must
//! not drift); one that does not decode must be refused as INVALID_ARGUMENT. Nothing may panic.
//!
//! rust-protobuf writes map entries and unknown fields in hash-map order, which can change
//! between two decodes of the same message, so bytes may differ only where such fields exist.

#![no_main]

use caa_adaptor::agent_proxy::WorkerInterceptor;
use caa_agent_relay::{Call, Interceptor, Verdict, code};
use caa_forwarder::intercept::VmInterceptor;
use caa_kata_protos::AGENT_SERVICE;
use caa_kata_protos::agent::{CreateContainerRequest, CreateSandboxRequest};
use caa_kata_protos::protobuf::{Message, SpecialFields};
use libfuzzer_sys::fuzz_target;

fn call(i: &impl Interceptor, method: &str, payload: &[u8]) -> Verdict {
    i.intercept(&Call { service: AGENT_SERVICE, method, payload })
}

/// The rewrite of a decodable payload; panics on any other verdict.
fn rewritten(i: &impl Interceptor, method: &str, payload: &[u8]) -> Vec<u8> {
    match call(i, method, payload) {
        Verdict::Rewrite(bytes) => bytes,
        other => panic!("{i:?}: {method} of a decodable payload gave {other:?}"),
    }
}

/// One CreateContainer pass and the idempotence check; returns the rewrite, if any.
fn create_container(i: &impl Interceptor, payload: &[u8]) -> Option<Vec<u8>> {
    let decodes = CreateContainerRequest::parse_from_bytes(payload).is_ok();
    match call(i, "CreateContainer", payload) {
        Verdict::Rewrite(once) => {
            assert!(decodes, "{i:?} rewrote an undecodable payload");
            let first =
                CreateContainerRequest::parse_from_bytes(&once).expect("a rewrite must decode");
            let twice = rewritten(i, "CreateContainer", &once);
            if once != twice {
                let second = CreateContainerRequest::parse_from_bytes(&twice)
                    .expect("a rewrite must decode");
                assert_eq!(first, second, "{i:?}: CreateContainer rewrite is not idempotent");
                assert_eq!(once.len(), twice.len(), "{i:?}: rewrite size drifts");
                assert!(
                    hash_ordered(&first),
                    "{i:?}: rewrite bytes drift without a map or unknown field"
                );
            }
            Some(once)
        }
        Verdict::Reject { code: c, .. } => {
            assert!(
                !decodes && c == code::INVALID_ARGUMENT,
                "{i:?}: reject {c} of a payload that decodes={decodes}"
            );
            None
        }
        Verdict::Forward => panic!("{i:?}: CreateContainer forwarded without a rewrite"),
    }
}

/// Whether the message holds fields rust-protobuf encodes in hash-map order: two or more
/// annotations, or unknown fields at any level.
fn hash_ordered(req: &CreateContainerRequest) -> bool {
    let unknown = |f: &SpecialFields| f.unknown_fields().iter().next().is_some();
    let spec = &req.OCI;
    let linux = &spec.Linux;
    unknown(&req.special_fields)
        || req.storages.iter().any(|s| unknown(&s.special_fields))
        || unknown(&spec.special_fields)
        || spec.Annotations.len() > 1
        || spec.Mounts.iter().any(|m| unknown(&m.special_fields))
        || unknown(&linux.special_fields)
        || linux.Namespaces.iter().any(|n| unknown(&n.special_fields))
}

fuzz_target!(|payload: &[u8]| {
    let vm = VmInterceptor { pod_namespace: "/run/netns/podns".into(), create_bind_sources: false };
    let worker =
        WorkerInterceptor { direct_volumes: "/nonexistent/caa-fuzz/direct-volumes".into() };

    // Worker side first, then the VM side on what the worker sent: the path a call takes.
    if let Some(from_worker) = create_container(&worker, payload) {
        let in_vm = rewritten(&vm, "CreateContainer", &from_worker);
        let req = CreateContainerRequest::parse_from_bytes(&in_vm).expect("a rewrite must decode");
        let net: Vec<_> = req.OCI.Linux.Namespaces.iter().filter(|n| n.Type == "network").collect();
        assert!(
            !net.is_empty() && net[0].Path == "/run/netns/podns",
            "the container must join the pod netns"
        );
    }
    create_container(&vm, payload);

    let sandbox_decodes = CreateSandboxRequest::parse_from_bytes(payload);
    match call(&vm, "CreateSandbox", payload) {
        Verdict::Rewrite(once) => {
            let req = CreateSandboxRequest::parse_from_bytes(&once).expect("a rewrite must decode");
            assert!(req.dns.is_empty(), "CreateSandbox rewrite kept DNS entries");
            assert_eq!(
                call(&vm, "CreateSandbox", &once),
                Verdict::Forward,
                "nothing left to clear"
            );
        }
        Verdict::Forward => {
            let req = sandbox_decodes.expect("only a decodable CreateSandbox is forwarded");
            assert!(req.dns.is_empty(), "CreateSandbox with DNS entries forwarded unchanged");
        }
        Verdict::Reject { code: c, .. } => {
            assert!(
                sandbox_decodes.is_err() && c == code::INVALID_ARGUMENT,
                "CreateSandbox reject {c}"
            );
        }
    }
});
