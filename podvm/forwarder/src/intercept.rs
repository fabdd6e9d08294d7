//! What the forwarder changes on its way to the kata-agent (caa-facts §5.3): CreateContainer
//! joins the pod network namespace and gets missing bind-mount sources created; CreateSandbox
//! loses its DNS list so the agent leaves the VM's resolv.conf alone. Every other call passes
//! untouched. Decoding keeps fields we do not model (they are re-encoded as unknown fields).

use std::path::{Component, Path, PathBuf};

use caa_agent_relay::{Call, Interceptor, Verdict, code};
use caa_kata_protos::AGENT_SERVICE;
use caa_kata_protos::agent::{CreateContainerRequest, CreateSandboxRequest, LinuxNamespace};
use caa_kata_protos::protobuf::Message;

/// The forwarder's interceptor.
#[derive(Debug, Clone)]
pub struct VmInterceptor {
    /// The netns containers join (`-pod-namespace`).
    pub pod_namespace: PathBuf,
    /// Create missing bind-mount sources (off in tests that run outside a VM).
    pub create_bind_sources: bool,
}

impl Interceptor for VmInterceptor {
    fn intercept(&self, call: &Call<'_>) -> Verdict {
        if call.service != AGENT_SERVICE {
            return Verdict::Forward;
        }
        match call.method {
            "CreateContainer" => self.create_container(call.payload),
            "CreateSandbox" => create_sandbox(call.payload),
            "StartContainer" | "RemoveContainer" | "DestroySandbox" => {
                tracing::info!(method = call.method, "agent call");
                Verdict::Forward
            }
            _ => Verdict::Forward,
        }
    }
}

fn undecodable(what: &str, e: &caa_kata_protos::protobuf::Error) -> Verdict {
    Verdict::Reject { code: code::INVALID_ARGUMENT, message: format!("decoding {what}: {e}") }
}

fn encoded(msg: &impl Message, what: &str) -> Verdict {
    match msg.write_to_bytes() {
        Ok(bytes) => Verdict::Rewrite(bytes),
        Err(e) => {
            Verdict::Reject { code: code::INTERNAL, message: format!("encoding {what}: {e}") }
        }
    }
}

impl VmInterceptor {
    fn create_container(&self, payload: &[u8]) -> Verdict {
        let mut req = match CreateContainerRequest::parse_from_bytes(payload) {
            Ok(r) => r,
            Err(e) => return undecodable("CreateContainerRequest", &e),
        };
        let netns = self.pod_namespace.to_string_lossy().into_owned();
        let spec = req.OCI.mut_or_insert_default();
        let linux = spec.Linux.mut_or_insert_default();
        match linux.Namespaces.iter_mut().find(|ns| ns.Type == "network") {
            Some(ns) => ns.Path = netns.clone(),
            None => {
                let mut ns = LinuxNamespace::new();
                ns.Type = "network".to_owned();
                ns.Path = netns.clone();
                linux.Namespaces.push(ns);
            }
        }
        if self.create_bind_sources {
            for m in spec.Mounts.iter().filter(|m| is_bind(&m.type_, &m.options)) {
                if let Some(src) = safe_absolute(&m.source)
                    && !src.exists()
                    && let Err(e) = std::fs::create_dir_all(src)
                {
                    tracing::warn!(source = %src.display(), error = %e, "could not create a bind-mount source");
                }
            }
        }
        tracing::info!(container_id = %req.container_id, %netns, "CreateContainer joins the pod network namespace");
        encoded(&req, "CreateContainerRequest")
    }
}

fn create_sandbox(payload: &[u8]) -> Verdict {
    let mut req = match CreateSandboxRequest::parse_from_bytes(payload) {
        Ok(r) => r,
        Err(e) => return undecodable("CreateSandboxRequest", &e),
    };
    tracing::info!(sandbox_id = %req.sandbox_id, hostname = %req.hostname, dns_entries = req.dns.len(), "CreateSandbox (DNS list cleared)");
    if req.dns.is_empty() {
        return Verdict::Forward;
    }
    req.dns.clear();
    encoded(&req, "CreateSandboxRequest")
}

fn is_bind(kind: &str, options: &[String]) -> bool {
    kind == "bind" || options.iter().any(|o| o == "bind" || o == "rbind")
}

/// `source` when it is an absolute path without `..`, else `None`.
fn safe_absolute(source: &str) -> Option<&Path> {
    let p = Path::new(source);
    let ok = p.is_absolute() && p.components().all(|c| !matches!(c, Component::ParentDir));
    ok.then_some(p)
}

#[cfg(test)]
mod tests {
    use caa_kata_protos::agent::{Linux, Mount, Spec};
    use caa_kata_protos::protobuf::MessageField;

    use super::*;

    fn interceptor(create: bool) -> VmInterceptor {
        VmInterceptor { pod_namespace: "/run/netns/podns".into(), create_bind_sources: create }
    }

    fn run(i: &VmInterceptor, method: &str, payload: &[u8]) -> Verdict {
        i.intercept(&Call { service: AGENT_SERVICE, method, payload })
    }

    #[test]
    fn create_container_joins_the_pod_netns_and_keeps_unknown_fields() {
        let mut req = CreateContainerRequest::new();
        req.container_id = "c1".into();
        let mut bytes = req.write_to_bytes().unwrap();
        // An unknown field 11 (stderr_port) and, inside the spec, field 2 (Process) as bytes.
        bytes.extend_from_slice(&[0x58, 0x07]);
        bytes.extend_from_slice(&[0x32, 0x04, 0x12, 0x02, 0x08, 0x01]);
        let Verdict::Rewrite(out) = run(&interceptor(false), "CreateContainer", &bytes) else {
            panic!("expected a rewrite")
        };
        let got = CreateContainerRequest::parse_from_bytes(&out).unwrap();
        assert_eq!(got.container_id, "c1");
        let ns = &got.OCI.Linux.Namespaces;
        assert_eq!(ns.len(), 1);
        assert_eq!((ns[0].Type.as_str(), ns[0].Path.as_str()), ("network", "/run/netns/podns"));
        assert!(out.windows(2).any(|w| w == [0x58, 0x07]), "unknown top-level field kept");
        assert!(out.windows(4).any(|w| w == [0x12, 0x02, 0x08, 0x01]), "unknown spec field kept");
    }

    #[test]
    fn an_existing_network_namespace_gets_the_pod_path() {
        let mut req = CreateContainerRequest::new();
        let mut spec = Spec::new();
        let mut linux = Linux::new();
        for t in ["pid", "network"] {
            let mut ns = LinuxNamespace::new();
            ns.Type = t.into();
            linux.Namespaces.push(ns);
        }
        spec.Linux = MessageField::some(linux);
        req.OCI = MessageField::some(spec);
        let Verdict::Rewrite(out) =
            run(&interceptor(false), "CreateContainer", &req.write_to_bytes().unwrap())
        else {
            panic!("expected a rewrite")
        };
        let got = CreateContainerRequest::parse_from_bytes(&out).unwrap();
        let ns: Vec<_> =
            got.OCI.Linux.Namespaces.iter().map(|n| (n.Type.clone(), n.Path.clone())).collect();
        assert_eq!(
            ns,
            vec![("pid".into(), String::new()), ("network".into(), "/run/netns/podns".into())]
        );
    }

    #[test]
    fn missing_bind_sources_are_created_but_not_outside_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = dir.path().join("a/b");
        let sneaky = format!("{}/x/../../escape", dir.path().display());
        let mut spec = Spec::new();
        for (src, kind) in
            [(wanted.to_str().unwrap(), "bind"), (sneaky.as_str(), "bind"), ("rel", "bind")]
        {
            let mut m = Mount::new();
            m.source = src.into();
            m.type_ = kind.into();
            spec.Mounts.push(m);
        }
        let mut req = CreateContainerRequest::new();
        req.OCI = MessageField::some(spec);
        run(&interceptor(true), "CreateContainer", &req.write_to_bytes().unwrap());
        assert!(wanted.is_dir());
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn create_sandbox_loses_its_dns_list_and_garbage_is_refused() {
        let mut req = CreateSandboxRequest::new();
        req.sandbox_id = "s".into();
        req.dns = vec!["nameserver 10.96.0.10".into()];
        let Verdict::Rewrite(out) =
            run(&interceptor(false), "CreateSandbox", &req.write_to_bytes().unwrap())
        else {
            panic!("expected a rewrite")
        };
        let got = CreateSandboxRequest::parse_from_bytes(&out).unwrap();
        assert!(got.dns.is_empty());
        assert_eq!(got.sandbox_id, "s");
        assert!(matches!(
            run(&interceptor(false), "CreateContainer", &[0x0a, 0x09]),
            Verdict::Reject { code: code::INVALID_ARGUMENT, .. }
        ));
        assert_eq!(run(&interceptor(false), "StartContainer", b"x"), Verdict::Forward);
        assert_eq!(run(&interceptor(false), "FutureMethod", b"x"), Verdict::Forward);
    }
}
