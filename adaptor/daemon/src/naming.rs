//! Names derived from what Kata sends: the pod's name and namespace (from the CRI annotations,
//! including CRI-O's `k8s_…` sandbox-name form) and the instance name `podvm-<pod>-<sid[:8]>`.
//!
//! The instance name must equal upstream's byte for byte: it is the TLS server name the agent
//! proxy checks, upstream's e2e suite rebuilds it from our log line, and users look VMs up by it.
//! So upstream's rules are kept as they are, including the quirk of caa-facts §8.0 (no trimming of
//! a trailing `-` left by truncation, e.g. `podvm-aaaa-…-a--27e11ff3`).

use std::collections::HashMap;

use crate::annotations::{SANDBOX_NAME, SANDBOX_NAMESPACE};
use crate::sandbox_id::SandboxId;

/// Longest instance name (all upstream providers and CAA use 63).
pub const MAX_INSTANCE_NAME_LEN: usize = 63;

const PREFIX: &str = "podvm";

/// A pod's identity as the shim reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
}

/// A required annotation is missing or empty. Texts are upstream's (they surface in pod events).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodRefError {
    /// No pod name.
    #[error("pod name {SANDBOX_NAME} is missing in annotations")]
    MissingName,
    /// No pod namespace.
    #[error("pod namespace {SANDBOX_NAMESPACE} is missing in annotations")]
    MissingNamespace,
}

impl PodRef {
    /// Reads the pod name and namespace from `CreateVMRequest.annotations`.
    pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<PodRef, PodRefError> {
        let get = |key: &str| annotations.get(key).map(String::as_str).unwrap_or_default();
        let name = pod_name_from_sandbox_name(get(SANDBOX_NAME));
        if name.is_empty() {
            return Err(PodRefError::MissingName);
        }
        let namespace = get(SANDBOX_NAMESPACE);
        if namespace.is_empty() {
            return Err(PodRefError::MissingNamespace);
        }
        Ok(PodRef { name: name.to_owned(), namespace: namespace.to_owned() })
    }
}

/// The pod name inside a sandbox-name annotation: CRI-O's `k8s_<pod>_<ns>_<uid>_<n>` yields
/// `<pod>`; anything else is the pod name itself. (Pod names cannot contain `_`.)
pub fn pod_name_from_sandbox_name(value: &str) -> &str {
    let mut parts = value.split('_');
    match (parts.next(), parts.next()) {
        (Some("k8s"), Some(pod)) => pod,
        _ => value,
    }
}

/// The instance name for a pod and sandbox, at most [`MAX_INSTANCE_NAME_LEN`] characters.
pub fn instance_name(pod_name: &str, sandbox_id: &SandboxId) -> String {
    generate_instance_name(pod_name, sandbox_id.as_str(), MAX_INSTANCE_NAME_LEN)
}

/// Upstream's rule: lower-case, every character outside `[a-z0-9-]` becomes `-`, then
/// `podvm-<pod>-<sid[:8]>` with the pod part cut to `max_len - 15` characters when the whole name
/// would be longer than `max_len`. A sandbox id shorter than 8 characters is used whole (upstream
/// would panic; [`SandboxId`] never is that short in practice).
pub fn generate_instance_name(pod_name: &str, sandbox_id: &str, max_len: usize) -> String {
    let pod = sanitize(pod_name);
    let sid: String = sanitize(sandbox_id).chars().take(8).collect();
    let budget = max_len.saturating_sub(PREFIX.len() + 10);
    // Sanitized text is ASCII: byte length is character length.
    let pod = if PREFIX.len() + pod.len() + 10 > max_len { &pod[..budget] } else { &pod[..] };
    format!("{PREFIX}-{pod}-{sid}")
}

/// Lower-cases with the simple (one character to one character) Unicode mapping, as Go's
/// `strings.ToLower` does, then replaces anything outside `[a-z0-9-]` with `-`, one per character.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match simple_lowercase(c) {
            l @ ('a'..='z' | '0'..='9' | '-') => l,
            _ => '-',
        })
        .collect()
}

fn simple_lowercase(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        // Only U+0130 (capital I with dot) lowercases to two characters; its simple mapping is
        // plain `i`, which is what Go produces.
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "27e11ff35fd1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b";

    fn check(pod: &str, expected: &str) {
        let sid = SandboxId::new(SID).unwrap();
        let name = instance_name(pod, &sid);
        assert_eq!(name, expected, "pod {pod:?}");
        assert!(name.len() <= MAX_INSTANCE_NAME_LEN);
    }

    #[test]
    fn instance_names_match_upstream() {
        check("nginx-7d9f", "podvm-nginx-7d9f-27e11ff3");
        check("Nginx", "podvm-nginx-27e11ff3");
        check("web.app_1", "podvm-web-app-1-27e11ff3");
        check("", "podvm--27e11ff3");
        check("café", "podvm-caf--27e11ff3");
        check("KELVIN\u{212A}", "podvm-kelvink-27e11ff3");
        check("\u{130}stanbul", "podvm-istanbul-27e11ff3");
        // 48 characters fit exactly: 5 + 48 + 10 = 63.
        let p48 = "p".repeat(48);
        check(&p48, &format!("podvm-{p48}-27e11ff3"));
        // One more and the pod part is cut to 48.
        check(&"q".repeat(49), &format!("podvm-{}-27e11ff3", "q".repeat(48)));
        // Upstream keeps a dash left at the cut (caa-facts §8.0); so do we.
        let cut_at_dash = format!("{}-tail", "a".repeat(47));
        check(&cut_at_dash, &format!("podvm-{}--27e11ff3", "a".repeat(47)));
    }

    #[test]
    fn short_sandbox_ids_are_used_whole() {
        assert_eq!(generate_instance_name("pod", "abc", 63), "podvm-pod-abc");
    }

    #[test]
    fn other_limits_follow_the_same_rule() {
        assert_eq!(generate_instance_name("abcdefghij", SID, 20), "podvm-abcde-27e11ff3");
    }

    fn pod(name: Option<&str>, namespace: Option<&str>) -> Result<PodRef, PodRefError> {
        let mut a = HashMap::new();
        if let Some(n) = name {
            a.insert(SANDBOX_NAME.to_owned(), n.to_owned());
        }
        if let Some(ns) = namespace {
            a.insert(SANDBOX_NAMESPACE.to_owned(), ns.to_owned());
        }
        PodRef::from_annotations(&a)
    }

    #[test]
    fn pod_ref_from_annotations() {
        let ok = |name: &str, ns: &str| Ok(PodRef { name: name.into(), namespace: ns.into() });
        assert_eq!(pod(Some("nginx"), Some("default")), ok("nginx", "default"));
        assert_eq!(
            pod(Some("k8s_nginx_default_1234-uid_0"), Some("default")),
            ok("nginx", "default")
        );
        assert_eq!(pod(Some("k8s_nginx"), Some("ns")), ok("nginx", "ns"));
        assert_eq!(pod(Some("k8s"), Some("ns")), ok("k8s", "ns"));
        assert_eq!(pod(Some("k8s-app"), Some("ns")), ok("k8s-app", "ns"));
        assert_eq!(pod(Some("k8s_"), Some("ns")), Err(PodRefError::MissingName));
        assert_eq!(pod(None, Some("ns")), Err(PodRefError::MissingName));
        assert_eq!(pod(Some(""), Some("ns")), Err(PodRefError::MissingName));
        assert_eq!(pod(Some("nginx"), None), Err(PodRefError::MissingNamespace));
        assert_eq!(pod(Some("nginx"), Some("")), Err(PodRefError::MissingNamespace));
    }

    #[test]
    fn missing_name_text_is_upstreams() {
        assert_eq!(
            PodRefError::MissingName.to_string(),
            "pod name io.kubernetes.cri.sandbox-name is missing in annotations"
        );
    }
}
