//! `createInstance`: validate, adopt the domain a previous attempt of the same operation left
//! (or refuse a clash), create the root overlay and the cidata ISO, define the domain with the
//! plugin's metadata, announce its UUID, start it and wait for its DHCP lease within the call's
//! deadline. Cancellation and the deadline are checked between libvirt steps; a failure after
//! the volumes exist rolls back, and an error carries `instanceId` whenever a domain may remain.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caa_plugin_proto::{
    CreateInstanceParams, CreateInstanceResult, ErrorCode, InstanceSpec, RpcError, Stage,
};
use caa_plugin_sdk::{Ctx, instance_name, request_digest};
use serde_json::json;
use virt::domain::Domain;

use crate::cidata;
use crate::config::LaunchSecurity;
use crate::domain_xml::{self, Instance};
use crate::error::Error;
use crate::host::{Arch, HostInfo};
use crate::metadata::InstanceMeta;
use crate::provider::{LibvirtProvider, blocking};
use crate::session::{self, Found, Session};
use crate::storage::{VolumeRequest, Volumes};

/// First and longest pause between DHCP lease polls.
const LEASE_POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(3));

/// What exists already for this request.
enum Existing {
    /// Nothing: create.
    None,
    /// A domain this operation created before (a retry, maybe after a plugin restart).
    Same(Found),
    /// The operation id created a domain from other params, or the name is taken.
    Clash(String),
}

pub(crate) async fn create(
    provider: &LibvirtProvider,
    ctx: &Ctx,
    params: &CreateInstanceParams,
) -> Result<CreateInstanceResult, RpcError> {
    validate(params)?;
    let session = provider.session().await.map_err(|e| e.to_rpc())?;
    let host = session.host().clone();
    check_host(&params.spec, &host, provider.config.launch_security)?;
    let name = instance_name(&params.pod_name, &params.sandbox_id);
    let digest = request_digest(params);
    let image =
        Some(params.spec.image.trim()).filter(|i| !i.is_empty()).unwrap_or(&provider.config.volume);
    let vcpus = Some(params.spec.vcpus).filter(|n| *n > 0).unwrap_or(provider.config.vcpus);
    let memory_mib =
        Some(params.spec.memory_mib).filter(|n| *n > 0).unwrap_or(provider.config.memory_mib);
    let launched = Launched {
        name: name.clone(),
        provider_data: json!({
            "domain": name, "image": image, "vcpus": vcpus, "memoryMiB": memory_mib,
            "arch": host.arch.protocol_name(),
        }),
    };

    let existing = {
        let (session, op, name, digest) =
            (session.clone(), params.operation_id.clone(), name.clone(), digest.clone());
        blocking(move || find_existing(&session, &op, &name, &digest)).await
    }
    .map_err(|e| e.to_rpc())?;
    match existing {
        Existing::Same(Found { domain, record }) => {
            tracing::info!(instance_id = %record.uuid, name = %record.name, "adopting the domain of this operation");
            ctx.progress(Stage::INSTANCE_CREATED, Some(&record.uuid), Some("adopted"));
            return launch(provider, ctx, session, domain, record.uuid, launched).await;
        }
        Existing::Clash(message) => return Err(Error::Conflict(message).to_rpc()),
        Existing::None => {}
    }
    if let Some(stop) = interrupted(ctx) {
        return Err(stop);
    }
    ctx.progress(Stage::REQUESTED, None, None);
    tracing::info!("Choosing {image} as libvirt volume for the PodVM image");

    let volumes = {
        let session = session.clone();
        let (pool, image, vm) = (provider.config.pool.clone(), image.to_owned(), name.clone());
        let root_disk_gib = provider.config.root_disk_gib;
        let user_data = params.user_data.clone();
        let deadline = deadline_instant(ctx);
        blocking(move || {
            let iso = cidata::seed_iso(&vm, &user_data, SystemTime::now())?;
            let req = VolumeRequest {
                pool: &pool,
                image: &image,
                vm: &vm,
                root_disk_gib,
                iso: &iso,
                deadline,
            };
            session.create_volumes(&req)
        })
        .await
        .map_err(|e| e.to_rpc())?
    };
    if let Some(stop) = interrupted(ctx) {
        return Err(drop_volumes(provider, &session, &volumes, stop).await);
    }

    let instance = Instance {
        name: name.clone(),
        vcpus,
        memory_mib,
        root_disk: volumes.root.clone(),
        cidata: volumes.cidata.clone(),
        meta: InstanceMeta {
            request_digest: digest,
            volumes: vec![volumes.root.clone(), volumes.cidata.clone()],
            tags: params.tags.clone(),
        },
    };
    let xml = domain_xml::render(&provider.config, &host, &instance);
    let defined = {
        let session = session.clone();
        blocking(move || session.define(&xml, &name)).await
    };
    let (domain, uuid) = match defined {
        Ok(defined) => defined,
        Err(e) => return Err(drop_volumes(provider, &session, &volumes, e.to_rpc()).await),
    };
    tracing::info!(instance_id = %uuid, name = %launched.name, "domain defined");
    ctx.progress(Stage::INSTANCE_CREATED, Some(&uuid), None);
    launch(provider, ctx, session, domain, uuid, launched).await
}

/// What the result reports besides id and addresses.
struct Launched {
    name: String,
    provider_data: serde_json::Value,
}

/// Starts the defined domain and waits for its lease; on any failure the domain is rolled back.
async fn launch(
    provider: &LibvirtProvider,
    ctx: &Ctx,
    session: Arc<Session>,
    domain: Domain,
    uuid: String,
    launched: Launched,
) -> Result<CreateInstanceResult, RpcError> {
    if let Some(stop) = interrupted(ctx) {
        return Err(rollback(provider, session, uuid, stop).await);
    }
    let started = {
        let (domain, name) = (domain.clone(), launched.name.clone());
        blocking(move || session::start(&domain, &name)).await
    };
    if let Err(e) = started {
        return Err(rollback(provider, session, uuid, e.to_rpc()).await);
    }
    ctx.progress(Stage::WAITING_FOR_IP, Some(&uuid), None);
    let ips = match wait_for_lease(ctx, &domain, &launched.name, &uuid).await {
        Ok(ips) => ips,
        Err(stop) => return Err(rollback(provider, session, uuid, stop).await),
    };
    tracing::info!(instance_id = %uuid, ips = ?ips, "instance running");
    ctx.progress(Stage::RUNNING, Some(&uuid), None);
    let provider_data = match launched.provider_data {
        serde_json::Value::Object(map) => Some(map.into_iter().collect()),
        _ => None,
    };
    Ok(CreateInstanceResult { instance_id: uuid, name: launched.name, ips, provider_data })
}

/// Polls the domain's DHCP leases until one appears, the call is cancelled or its deadline
/// passes (upstream waits without a bound; the host's budget is the bound here).
async fn wait_for_lease(
    ctx: &Ctx,
    domain: &Domain,
    name: &str,
    uuid: &str,
) -> Result<Vec<String>, RpcError> {
    let mut pause = LEASE_POLL.0;
    loop {
        let (domain, name_owned) = (domain.clone(), name.to_owned());
        match blocking(move || session::lease_addresses(&domain, &name_owned)).await {
            Ok(ips) if !ips.is_empty() => return Ok(ips),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "no lease yet"),
        }
        tokio::select! {
            biased;
            () = ctx.cancelled() => return Err(cancelled()),
            () = tokio::time::sleep_until(ctx.deadline()) => {
                return Err(RpcError::new(
                    ErrorCode::DeadlineExceeded,
                    format!("Domain (uuid={uuid}) IP addresses not found within the deadline"),
                ));
            }
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LEASE_POLL.1);
    }
}

/// Deletes the domain `uuid` after a failed create; the error names it if that fails too.
async fn rollback(
    provider: &LibvirtProvider,
    session: Arc<Session>,
    uuid: String,
    error: RpcError,
) -> RpcError {
    match provider.remove(session, uuid.clone()).await {
        Ok(_) => {
            tracing::info!(instance_id = %uuid, code = error.code, "create failed; domain rolled back");
            error
        }
        Err(e) => {
            tracing::warn!(instance_id = %uuid, error = %e, "create failed and the rollback failed");
            error.with_instance_id(uuid)
        }
    }
}

/// Deletes the volumes of a create that failed before its domain was defined.
async fn drop_volumes(
    provider: &LibvirtProvider,
    session: &Arc<Session>,
    volumes: &Volumes,
    error: RpcError,
) -> RpcError {
    let (session, pool) = (session.clone(), provider.config.pool.clone());
    let paths = vec![volumes.root.clone(), volumes.cidata.clone()];
    if let Err(e) = blocking(move || session.delete_volumes(&paths, &pool)).await {
        tracing::warn!(error = %e, "could not delete the volumes of a failed create");
    }
    error
}

fn find_existing(
    session: &Session,
    operation: &str,
    name: &str,
    digest: &str,
) -> Result<Existing, Error> {
    let mine = session
        .domains()?
        .into_iter()
        .find(|f| f.record.meta.as_ref().and_then(|m| m.operation_id()) == Some(operation));
    if let Some(found) = mine {
        let same = found.record.meta.as_ref().is_some_and(|m| m.request_digest == digest);
        return Ok(if same {
            Existing::Same(found)
        } else {
            Existing::Clash(format!(
                "operation id {operation} already created domain {} ({}) from different params",
                found.record.name, found.record.uuid
            ))
        });
    }
    Ok(match session.by_name(name)? {
        None => Existing::None,
        Some(found) => {
            let owner =
                found.record.meta.as_ref().and_then(|m| m.sandbox_id()).unwrap_or("no sandbox");
            Existing::Clash(format!("a domain named {name} already exists ({owner})"))
        }
    })
}

fn validate(params: &CreateInstanceParams) -> Result<(), RpcError> {
    let invalid = |field: &str| {
        Err(RpcError::new(ErrorCode::InvalidParams, format!("{field} must not be empty")))
    };
    if params.operation_id.is_empty() {
        return invalid("operationId");
    }
    if params.sandbox_id.is_empty() {
        return invalid("sandboxId");
    }
    if params.pod_name.is_empty() {
        return invalid("podName");
    }
    let spec = &params.spec;
    let unsupported = |what: &str| {
        Err(RpcError::new(ErrorCode::UnsupportedSpec, format!("libvirt: {what} not supported")))
    };
    if spec.gpus > 0 {
        return unsupported("GPUs are");
    }
    if !spec.volumes.is_empty() {
        return unsupported("volumes are");
    }
    if spec.multi_nic {
        return unsupported("a second NIC is");
    }
    if !spec.instance_type.is_empty() {
        // Upstream's libvirt provider ignores the machine type; so does this one.
        tracing::debug!(instance_type = %spec.instance_type, "instance type ignored");
    }
    Ok(())
}

fn check_host(
    spec: &InstanceSpec,
    host: &HostInfo,
    security: LaunchSecurity,
) -> Result<(), RpcError> {
    let arch = host.arch.protocol_name();
    if !spec.arch.is_empty() && spec.arch != arch {
        return Err(RpcError::new(
            ErrorCode::UnsupportedSpec,
            format!("libvirt: architecture {} requested, the libvirt host is {arch}", spec.arch),
        ));
    }
    if security == LaunchSecurity::S390Pv && host.arch != Arch::S390x {
        return Err(RpcError::new(
            ErrorCode::UnsupportedSpec,
            format!("libvirt: s390-pv launch security needs an s390x host, this one is {arch}"),
        ));
    }
    Ok(())
}

fn interrupted(ctx: &Ctx) -> Option<RpcError> {
    if ctx.is_cancelled() {
        Some(cancelled())
    } else if ctx.remaining().is_zero() {
        Some(RpcError::new(
            ErrorCode::DeadlineExceeded,
            "libvirt: createInstance reached its deadline",
        ))
    } else {
        None
    }
}

fn cancelled() -> RpcError {
    RpcError::new(ErrorCode::RequestCancelled, "libvirt: createInstance cancelled")
}

/// The call's deadline on the std clock, for blocking code.
fn deadline_instant(ctx: &Ctx) -> std::time::Instant {
    std::time::Instant::now() + ctx.remaining()
}
