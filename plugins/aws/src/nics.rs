//! The second network interface of `multiNic` (caa-facts §8.1 step 12, upstream's external
//! networking through the pod VM): an ENI in the pod VM's subnet, attached as device 1 once the
//! instance runs and deleted with it; in public-IP mode also an Elastic IP on that ENI. A failed
//! step removes what it made; the instance itself is the caller's to delete.

use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    DomainType, InstanceStateName, NetworkInterfaceAttachmentChanges, ResourceType, Tag,
    TagSpecification,
};
use caa_plugin_proto::{ErrorCode, RpcError};
use caa_plugin_sdk::Ctx;

use crate::error::from_sdk;

/// Where the ENI goes.
#[derive(Debug, Clone)]
pub struct NicPlan<'a> {
    /// The instance.
    pub instance_id: &'a str,
    /// Subnet of the ENI (`None`: EC2 refuses; the config or IMDS must name one).
    pub subnet_id: Option<&'a str>,
    /// Its security groups.
    pub security_group_ids: &'a [String],
    /// Give it an Elastic IP.
    pub public_ip: bool,
}

fn named(resource: ResourceType, name: String) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

/// Creates, attaches and (in public-IP mode) addresses the second interface; returns its id.
pub async fn add_second_nic(
    ec2: &Client,
    ctx: &Ctx,
    plan: &NicPlan<'_>,
) -> Result<String, RpcError> {
    let Some(subnet) = plan.subnet_id else {
        return Err(RpcError::new(
            ErrorCode::InvalidConfig,
            "a second network interface needs a subnet (subnetId or the node's)",
        ));
    };
    let id = plan.instance_id;
    let created = ec2
        .create_network_interface()
        .subnet_id(subnet)
        .set_groups(Some(plan.security_group_ids.to_vec()).filter(|g| !g.is_empty()))
        .tag_specifications(named(ResourceType::NetworkInterface, format!("nic-{id}")))
        .send()
        .await
        .map_err(|e| from_sdk("creating the second network interface", &e))?;
    let eni = created
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .ok_or_else(|| {
            RpcError::new(ErrorCode::InternalError, "CreateNetworkInterface named no interface")
        })?
        .to_owned();
    if let Err(e) = attach(ec2, ctx, id, &eni).await {
        if let Err(d) = ec2.delete_network_interface().network_interface_id(&eni).send().await {
            tracing::warn!(eni, error = %from_sdk("deleting", &d).message, "second interface not deleted");
        }
        return Err(e);
    }
    if plan.public_ip {
        elastic_ip(ec2, id, &eni).await?;
    }
    tracing::info!(instance_id = id, eni, "second network interface attached");
    Ok(eni)
}

async fn attach(ec2: &Client, ctx: &Ctx, id: &str, eni: &str) -> Result<(), RpcError> {
    wait_running(ec2, ctx, id).await?;
    let attached = ec2
        .attach_network_interface()
        .instance_id(id)
        .network_interface_id(eni)
        .device_index(1)
        .send()
        .await
        .map_err(|e| from_sdk("attaching the second network interface", &e))?;
    let attachment = attached.attachment_id().ok_or_else(|| {
        RpcError::new(ErrorCode::InternalError, "AttachNetworkInterface returned no attachment id")
    })?;
    let changes = NetworkInterfaceAttachmentChanges::builder()
        .attachment_id(attachment)
        .delete_on_termination(true)
        .build();
    ec2.modify_network_interface_attribute()
        .network_interface_id(eni)
        .attachment(changes)
        .send()
        .await
        .map_err(|e| from_sdk("marking the second interface delete-on-termination", &e))?;
    Ok(())
}

async fn elastic_ip(ec2: &Client, id: &str, eni: &str) -> Result<(), RpcError> {
    let allocated = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(named(ResourceType::ElasticIp, format!("eip-{id}")))
        .send()
        .await
        .map_err(|e| from_sdk("allocating an Elastic IP", &e))?;
    let Some(allocation) = allocated.allocation_id() else {
        return Err(RpcError::new(
            ErrorCode::InternalError,
            "AllocateAddress returned no allocation id",
        ));
    };
    let associated = ec2
        .associate_address()
        .allocation_id(allocation)
        .network_interface_id(eni)
        .allow_reassociation(true)
        .send()
        .await;
    if let Err(e) = associated {
        if let Err(r) = ec2.release_address().allocation_id(allocation).send().await {
            tracing::warn!(allocation, error = %from_sdk("releasing", &r).message, "Elastic IP not released");
        }
        return Err(from_sdk("associating the Elastic IP", &e));
    }
    Ok(())
}

/// Waits (1 s polls, within the call's deadline) until the instance is `running`.
async fn wait_running(ec2: &Client, ctx: &Ctx, id: &str) -> Result<(), RpcError> {
    loop {
        let out = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describing {id}"), &e))?;
        let state = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.state().and_then(|s| s.name()).cloned());
        if state == Some(InstanceStateName::Running) {
            return Ok(());
        }
        if ctx.is_cancelled() || ctx.remaining() <= Duration::from_secs(1) {
            return Err(RpcError::new(
                ErrorCode::DeadlineExceeded,
                format!("aws: instance {id} was not running in time for its second interface"),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
