//! `createInstance` on EC2 (caa-facts §8.1): validate, adopt the instance an earlier attempt of
//! the same operation launched (found by its operation tag; other params under the same
//! operationId are a conflict), choose the type, `RunInstances` with a ClientToken derived from
//! the operationId, announce the instance id, then poll for its addresses within the call's
//! deadline (upstream does not poll), attach CSI volumes and add the second interface of
//! `multiNic`. Every error after the launch
//! carries `instanceId`, so the caller deletes what is left.

use std::time::Duration;

use aws_sdk_ec2::types::{
    AmdSevSnpSpecification, BlockDeviceMapping, CpuOptionsRequest, EbsBlockDevice, Filter,
    Instance, InstanceNetworkInterfaceSpecification, InstanceType, LaunchTemplateSpecification,
    ResourceType, Tag, TagSpecification,
};
use base64::Engine as _;
use caa_plugin_proto::{
    CreateInstanceParams, CreateInstanceResult, ErrorCode, RpcError, Stage, tags,
};
use caa_plugin_sdk::{Ctx, instance_name, request_digest};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::from_sdk;
use crate::nics::{self, NicPlan};
use crate::provider::AwsProvider;
use crate::volumes;

/// The tag holding the request digest (retry or clash under one operationId).
pub const DIGEST_TAG: &str = "caa/request-digest";
/// States of an instance that still counts as made by its operation.
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];
/// First and longest pause between address polls.
const POLL: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(3));

pub(crate) async fn create(
    p: &AwsProvider,
    ctx: &Ctx,
    params: &CreateInstanceParams,
) -> Result<CreateInstanceResult, RpcError> {
    validate(params)?;
    let name = instance_name(&params.pod_name, &params.sandbox_id);
    let digest = request_digest(params);
    match find_by_operation(p, &params.operation_id).await? {
        Some((id, found)) if found == digest => {
            tracing::info!(instance_id = %id, "adopting the instance of this operation");
            ctx.progress(Stage::INSTANCE_CREATED, Some(&id), Some("adopted"));
            return finish(p, ctx, params, id, name).await;
        }
        Some((id, _)) => {
            return Err(RpcError::new(
                ErrorCode::Conflict,
                format!(
                    "operation id {} already launched {id} from different params",
                    params.operation_id
                ),
            ));
        }
        None => {}
    }
    let instance_type =
        if p.config.launch_template.is_some() { None } else { Some(p.types.select(&params.spec)?) };
    volumes::check_available(&p.ec2, &params.spec.volumes).await?;
    if ctx.is_cancelled() {
        return Err(RpcError::new(ErrorCode::RequestCancelled, "aws: createInstance cancelled"));
    }
    let request = run_request(p, params, &name, &digest, instance_type.as_deref());
    ctx.progress(Stage::REQUESTED, None, None);
    let launched =
        request.send().await.map_err(|e| from_sdk(&format!("creating instance {name}"), &e))?;
    let id = launched
        .instances()
        .first()
        .and_then(Instance::instance_id)
        .map(str::to_owned)
        .ok_or_else(|| RpcError::new(ErrorCode::InternalError, "RunInstances named no instance"))?;
    tracing::info!(instance_id = %id, %name, instance_type = ?instance_type, "instance launched");
    ctx.progress(Stage::INSTANCE_CREATED, Some(&id), None);
    finish(p, ctx, params, id, name).await
}

fn validate(params: &CreateInstanceParams) -> Result<(), RpcError> {
    for (field, value) in [
        ("operationId", &params.operation_id),
        ("sandboxId", &params.sandbox_id),
        ("podName", &params.pod_name),
    ] {
        if value.is_empty() {
            return Err(RpcError::new(
                ErrorCode::InvalidParams,
                format!("{field} must not be empty"),
            ));
        }
    }
    let spec = &params.spec;
    if !spec.arch.is_empty() && spec.arch != "amd64" && spec.arch != "arm64" {
        return Err(RpcError::new(
            ErrorCode::UnsupportedSpec,
            format!("aws: architecture {:?} is not supported", spec.arch),
        ));
    }
    Ok(())
}

/// EC2's idempotency token for an operation: the id itself when it fits (≤ 64 printable ASCII
/// characters), else a hash of it.
pub fn client_token(operation_id: &str) -> String {
    if operation_id.len() <= 64 && operation_id.bytes().all(|b| b.is_ascii_graphic()) {
        return operation_id.to_owned();
    }
    let hex: String =
        Sha256::digest(operation_id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    hex[..64].to_owned()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The instance's tags: `Name`, the operator's `TAGS`, the caller's tags, the request digest.
pub fn instance_tags(
    p: &AwsProvider,
    params: &CreateInstanceParams,
    name: &str,
    digest: &str,
) -> Vec<Tag> {
    let mut tags = vec![tag("Name", name)];
    tags.extend(p.config.tags.iter().map(|(k, v)| tag(k, v)));
    tags.extend(params.tags.iter().map(|(k, v)| tag(k, v)));
    if !params.tags.contains_key(tags::OPERATION_ID) {
        tags.push(tag(tags::OPERATION_ID, &params.operation_id));
    }
    tags.push(tag(DIGEST_TAG, digest));
    tags
}

fn run_request(
    p: &AwsProvider,
    params: &CreateInstanceParams,
    name: &str,
    digest: &str,
    instance_type: Option<&str>,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    let c = &p.config;
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .set_tags(Some(instance_tags(p, params, name, digest)))
        .build();
    let mut req = p
        .ec2
        .run_instances()
        .min_count(1)
        .max_count(1)
        .client_token(client_token(&params.operation_id))
        .user_data(base64::engine::general_purpose::STANDARD.encode(&params.user_data))
        .tag_specifications(tags);
    if let Some(template) = &c.launch_template {
        let spec = LaunchTemplateSpecification::builder().launch_template_name(template).build();
        return req.launch_template(spec);
    }
    let image = Some(params.spec.image.trim()).filter(|i| !i.is_empty());
    if let Some(image) = image {
        tracing::info!("Choosing {image} from annotation as the AWS AMI for the PodVM image");
    }
    req = req.image_id(image.unwrap_or(&c.image_id));
    if let Some(t) = instance_type {
        req = req.instance_type(InstanceType::from(t));
    }
    if let Some(key) = &p.key_name {
        req = req.key_name(key);
    }
    if c.use_public_ip {
        let nic = InstanceNetworkInterfaceSpecification::builder()
            .associate_public_ip_address(true)
            .device_index(0)
            .set_subnet_id(p.subnet_id.clone())
            .set_groups(Some(p.security_group_ids.clone()).filter(|g| !g.is_empty()))
            .delete_on_termination(true)
            .build();
        req = req.network_interfaces(nic);
    } else {
        req = req
            .set_subnet_id(p.subnet_id.clone())
            .set_security_group_ids(Some(p.security_group_ids.clone()).filter(|g| !g.is_empty()));
    }
    if c.cvm {
        let cpu = CpuOptionsRequest::builder().amd_sev_snp(AmdSevSnpSpecification::Enabled).build();
        req = req.cpu_options(cpu);
    }
    if let (Some(root), Some(size)) = (&p.root, p.root_volume_gib) {
        let ebs = EbsBlockDevice::builder().volume_size(size).build();
        let mapping = BlockDeviceMapping::builder().device_name(&root.name).ebs(ebs).build();
        req = req.block_device_mappings(mapping);
    }
    req
}

/// The live instance an earlier attempt of `operation_id` launched, with its request digest.
async fn find_by_operation(
    p: &AwsProvider,
    operation_id: &str,
) -> Result<Option<(String, String)>, RpcError> {
    let out = p
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::OPERATION_ID))
                .values(operation_id)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| (*s).to_owned()).collect()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| from_sdk("looking for an earlier attempt of this operation", &e))?;
    let found = out.reservations().iter().flat_map(|r| r.instances()).find_map(|i| {
        let id = i.instance_id()?.to_owned();
        let digest = i
            .tags()
            .iter()
            .find(|t| t.key() == Some(DIGEST_TAG))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_owned();
        Some((id, digest))
    });
    Ok(found)
}

/// Waits for the instance's addresses, attaches its volumes, and reports it.
async fn finish(
    p: &AwsProvider,
    ctx: &Ctx,
    params: &CreateInstanceParams,
    id: String,
    name: String,
) -> Result<CreateInstanceResult, RpcError> {
    let with_id = |e: RpcError| e.with_instance_id(&id);
    ctx.progress(Stage::WAITING_FOR_IP, Some(&id), None);
    let (instance, ips) = wait_for_addresses(p, ctx, &id).await.map_err(with_id)?;
    if !params.spec.volumes.is_empty() {
        volumes::attach_all(&p.ec2, ctx, &id, &params.spec.volumes).await.map_err(with_id)?;
    }
    // A retried operation adopts its instance, which may have its second interface already.
    let mut second_nic = instance
        .network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(1))
        .and_then(|n| n.network_interface_id())
        .map(str::to_owned);
    if params.spec.multi_nic && second_nic.is_none() {
        let plan = NicPlan {
            instance_id: &id,
            subnet_id: p.subnet_id.as_deref().or(instance.subnet_id()),
            security_group_ids: &p.security_group_ids,
            public_ip: p.config.use_public_ip,
        };
        second_nic = Some(nics::add_second_nic(&p.ec2, ctx, &plan).await.map_err(with_id)?);
    }
    ctx.progress(Stage::RUNNING, Some(&id), None);
    Ok(CreateInstanceResult {
        instance_id: id,
        name,
        ips,
        provider_data: Some(
            [
                ("instanceType", json!(instance.instance_type().map(|t| t.as_str().to_owned()))),
                ("imageId", json!(instance.image_id())),
                ("subnetId", json!(instance.subnet_id())),
                (
                    "availabilityZone",
                    json!(instance.placement().and_then(|pl| pl.availability_zone())),
                ),
                ("secondNetworkInterfaceId", json!(second_nic)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        ),
    })
}

/// Polls `DescribeInstances` until the private address (and in public-IP mode the public one,
/// which then comes first) is known, within the call's deadline.
async fn wait_for_addresses(
    p: &AwsProvider,
    ctx: &Ctx,
    id: &str,
) -> Result<(Instance, Vec<String>), RpcError> {
    let mut pause = POLL.0;
    loop {
        let out = p
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describing {id}"), &e))?;
        if let Some(instance) = out.reservations().iter().flat_map(|r| r.instances()).next() {
            if let Some(ips) = addresses(instance, p.config.use_public_ip) {
                return Ok((instance.clone(), ips));
            }
            let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned());
            if matches!(state.as_deref(), Some("shutting-down" | "terminated")) {
                return Err(RpcError::new(
                    ErrorCode::CapacityUnavailable,
                    format!(
                        "instance {id} is {} before it got an address",
                        state.unwrap_or_default()
                    ),
                ));
            }
        }
        if ctx.is_cancelled() {
            return Err(RpcError::new(
                ErrorCode::RequestCancelled,
                "aws: createInstance cancelled",
            ));
        }
        if ctx.remaining() <= pause {
            return Err(RpcError::new(
                ErrorCode::DeadlineExceeded,
                format!("aws: instance {id} has no address within the deadline"),
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = ctx.cancelled() => {}
        }
        pause = (pause * 2).min(POLL.1);
    }
}

/// The addresses to report, once complete: private addresses of the interfaces in device order
/// (the primary's first), with the public address first in public-IP mode.
pub fn addresses(instance: &Instance, public: bool) -> Option<Vec<String>> {
    let usable = |ip: &str| !ip.is_empty() && ip != "0.0.0.0";
    let mut nics: Vec<_> = instance.network_interfaces().iter().collect();
    nics.sort_by_key(|n| n.attachment().and_then(|a| a.device_index()).unwrap_or(0));
    let mut ips: Vec<String> = nics
        .iter()
        .filter_map(|n| n.private_ip_address())
        .filter(|ip| usable(ip))
        .map(str::to_owned)
        .collect();
    if ips.is_empty() {
        ips.extend(instance.private_ip_address().filter(|ip| usable(ip)).map(str::to_owned));
    }
    if ips.is_empty() {
        return None;
    }
    if public {
        let public_ip = instance.public_ip_address().filter(|ip| usable(ip))?;
        ips[0] = public_ip.to_owned();
    }
    Some(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_fit_ec2s_limit() {
        assert_eq!(
            client_token("2ef8d213-9478-44e3-a557-2dc2a8cccb23"),
            "2ef8d213-9478-44e3-a557-2dc2a8cccb23"
        );
        let long = client_token(&"x".repeat(100));
        assert_eq!(long.len(), 64);
        assert_eq!(long, client_token(&"x".repeat(100)));
        assert_ne!(client_token("op with spaces"), "op with spaces");
    }

    #[test]
    fn addresses_prefer_the_primary_and_the_public_one_in_public_mode() {
        let instance = Instance::builder()
            .private_ip_address("10.0.0.5")
            .public_ip_address("203.0.113.9")
            .build();
        assert_eq!(addresses(&instance, false), Some(vec!["10.0.0.5".to_owned()]));
        assert_eq!(addresses(&instance, true), Some(vec!["203.0.113.9".to_owned()]));
        let pending = Instance::builder().private_ip_address("0.0.0.0").build();
        assert_eq!(addresses(&pending, false), None);
        let no_public = Instance::builder().private_ip_address("10.0.0.5").build();
        assert_eq!(addresses(&no_public, true), None);
    }
}
