//! What every provider computes the same way from a create request: upstream's instance name
//! (`podvm-<pod>-<sandbox[:8]>`, the name Kata users and upstream's tooling look for) and the
//! request digest plugins keep with an instance to tell a retry of the same `createInstance` from
//! a clash (same operationId, other params).

use caa_plugin_proto::CreateInstanceParams;
use sha2::{Digest, Sha256};

/// Longest instance name (upstream's limit).
pub const MAX_NAME_LEN: usize = 63;

/// Upstream's instance name: lower-cased, every character outside `[a-z0-9-]` replaced by
/// `-`, `podvm-<pod>-<first 8 of sandbox id>`, the pod part cut so that the whole fits 63.
pub fn instance_name(pod_name: &str, sandbox_id: &str) -> String {
    let sanitize = |text: &str| -> String {
        text.chars()
            .map(|c| {
                let mut lower = c.to_lowercase();
                let l = match (lower.next(), lower.next()) {
                    (Some(l), None) => l,
                    _ if c == '\u{130}' => 'i',
                    _ => c,
                };
                if l.is_ascii_lowercase() || l.is_ascii_digit() || l == '-' { l } else { '-' }
            })
            .collect()
    };
    let pod = sanitize(pod_name);
    let sid: String = sanitize(sandbox_id).chars().take(8).collect();
    let pod = if 5 + pod.len() + 10 > MAX_NAME_LEN { &pod[..MAX_NAME_LEN - 15] } else { &pod[..] };
    format!("podvm-{pod}-{sid}")
}

/// Identifies a create request for idempotency: everything but the deadline, which shrinks
/// between retries. Hashed, so the user data is never stored in clear.
pub fn request_digest(params: &CreateInstanceParams) -> String {
    let mut canonical = params.clone();
    canonical.deadline_ms = 0;
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use caa_plugin_proto::InstanceSpec;

    #[test]
    fn names_follow_upstreams_rule() {
        assert_eq!(instance_name("nginx-7d9f", "27e11ff35fd1a2b3"), "podvm-nginx-7d9f-27e11ff3");
        assert_eq!(instance_name("My_Pod.x", "ABCDEF0123"), "podvm-my-pod-x-abcdef01");
        let long = instance_name(&"a".repeat(70), "27e11ff35fd1");
        assert_eq!(long.len(), MAX_NAME_LEN);
        assert!(long.ends_with("-27e11ff3"));
    }

    #[test]
    fn the_digest_ignores_only_the_deadline() {
        let params = CreateInstanceParams {
            operation_id: "op".into(),
            deadline_ms: 1,
            pod_name: "p".into(),
            pod_namespace: "ns".into(),
            sandbox_id: "sb".into(),
            user_data: "secret".into(),
            user_data_format: None,
            spec: InstanceSpec::default(),
            tags: Default::default(),
        };
        let mut later = params.clone();
        later.deadline_ms = 999;
        assert_eq!(request_digest(&params), request_digest(&later));
        later.user_data.push('!');
        assert_ne!(request_digest(&params), request_digest(&later));
        assert_eq!(request_digest(&params).len(), 64);
    }
}
