//! [`AwsProvider`], the [`Provider`] implementation: start-up (config, node defaults from IMDS,
//! the EC2 client, the AMI's root device, the allowed instance types), `verifyConfig`,
//! `deleteInstance` (Elastic IPs released, then terminate; an unknown instance is success) and
//! `listInstances` by tags. `createInstance` lives in [`crate::create`].

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;
use caa_plugin_proto::method::{ListInstances, Method};
use caa_plugin_proto::{
    Capabilities, Check, CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams,
    DeleteInstanceResult, Describe, InstanceCapabilities, InstanceInfo, Limits,
    ListInstancesParams, ListInstancesResult, PeerInfo, RpcError, Stage, VerifyConfigResult,
};
use caa_plugin_sdk::instance_type::InstanceTypes;
use caa_plugin_sdk::{Config, Ctx, Provider};

use crate::catalog::{self, RootDevice};
use crate::cloud;
use crate::config::AwsConfig;
use crate::error::{aws_code, from_sdk};

/// The provider name.
pub const PROVIDER_NAME: &str = "aws";
/// EC2's user data limit (16 KiB, before base64).
pub const MAX_USER_DATA_BYTES: u64 = 16 * 1024;

/// The aws provider.
#[derive(Debug)]
pub struct AwsProvider {
    pub(crate) config: AwsConfig,
    pub(crate) ec2: Client,
    pub(crate) types: InstanceTypes,
    pub(crate) root: Option<RootDevice>,
    pub(crate) root_volume_gib: Option<i32>,
    pub(crate) subnet_id: Option<String>,
    pub(crate) security_group_ids: Vec<String>,
    pub(crate) key_name: Option<String>,
}

impl AwsProvider {
    /// Connects with a parsed configuration and learns the image and instance types.
    pub async fn start(config: AwsConfig) -> Result<AwsProvider, RpcError> {
        let node = cloud::node_defaults(&config).await;
        let region = config.region.clone().or(node.region);
        let ec2 = cloud::ec2_client(&config, region.as_deref()).await?;
        let (root, root_volume_gib) =
            if config.launch_template.is_none() && config.root_volume_gib > 0 {
                let root = catalog::root_device(&ec2, &config.image_id).await?;
                let size = catalog::root_volume_gib(config.root_volume_gib, &root);
                (Some(root), size)
            } else {
                (None, None)
            };
        let types =
            catalog::instance_types(&ec2, &config.instance_type, &config.instance_types).await?;
        Ok(AwsProvider {
            subnet_id: config.subnet_id.clone().or(node.subnet_id),
            security_group_ids: if config.security_group_ids.is_empty() {
                node.security_group_ids
            } else {
                config.security_group_ids.clone()
            },
            key_name: config.key_name.clone().or(node.key_name),
            config,
            ec2,
            types,
            root,
            root_volume_gib,
        })
    }
}

fn check(name: &str, result: Result<(), String>) -> Check {
    match result {
        Ok(()) => Check { name: name.to_owned(), ok: true, detail: None },
        Err(detail) => Check { name: name.to_owned(), ok: false, detail: Some(detail) },
    }
}

impl Provider for AwsProvider {
    fn describe() -> Describe {
        Describe {
            plugin: PeerInfo {
                name: PROVIDER_NAME.to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                sdk: None,
            },
            protocol_versions: caa_plugin_proto::PROTOCOL_VERSIONS.to_vec(),
            capabilities: Capabilities {
                cancel: true,
                progress: true,
                idempotent_create: true,
                max_concurrent_requests: 32,
                instance: InstanceCapabilities {
                    arch: vec!["amd64".to_owned(), "arm64".to_owned()],
                    gpus: true,
                    volumes: true,
                    multi_nic: true,
                    instance_types: true,
                },
                limits: Limits { max_user_data_bytes: Some(MAX_USER_DATA_BYTES) },
                optional_methods: vec![ListInstances::NAME.to_owned()],
            },
            config_schema: crate::config::schema(),
        }
    }

    async fn init(config: Config) -> Result<AwsProvider, RpcError> {
        let config = AwsConfig::from_config(&config)?;
        let provider = AwsProvider::start(config).await?;
        tracing::info!(config = ?provider.config, types = provider.types.specs().len(),
            subnet = ?provider.subnet_id, "aws provider ready");
        Ok(provider)
    }

    async fn verify_config(&self, _ctx: Ctx) -> Result<VerifyConfigResult, RpcError> {
        let ec2 = &self.ec2;
        let credentials = ec2.describe_regions().send().await;
        let mut checks = vec![check(
            "credentials",
            credentials.map(|_| ()).map_err(|e| from_sdk("calling EC2", &e).message),
        )];
        let image = ec2.describe_images().image_ids(&self.config.image_id).send().await;
        checks.push(check(
            "image",
            match image {
                Ok(out) if !out.images().is_empty() => Ok(()),
                Ok(_) => Err(format!("image {} not found", self.config.image_id)),
                Err(e) => Err(from_sdk("describing the image", &e).message),
            },
        ));
        if let Some(subnet) = &self.subnet_id {
            let found = ec2.describe_subnets().subnet_ids(subnet).send().await;
            checks
                .push(check("subnet", found.map(|_| ()).map_err(|e| from_sdk(subnet, &e).message)));
        }
        if !self.security_group_ids.is_empty() {
            let ids = Some(self.security_group_ids.clone());
            let found = ec2.describe_security_groups().set_group_ids(ids).send().await;
            checks.push(check(
                "securityGroups",
                found.map(|_| ()).map_err(|e| from_sdk("security groups", &e).message),
            ));
        }
        let ok = checks.iter().all(|c| c.ok);
        Ok(VerifyConfigResult { ok, checks, warnings: Vec::new() })
    }

    async fn create_instance(
        &self,
        ctx: Ctx,
        params: CreateInstanceParams,
    ) -> Result<CreateInstanceResult, RpcError> {
        crate::create::create(self, &ctx, &params).await
    }

    async fn delete_instance(
        &self,
        ctx: Ctx,
        params: DeleteInstanceParams,
    ) -> Result<DeleteInstanceResult, RpcError> {
        let id = params.instance_id;
        ctx.progress(Stage::DELETING, Some(&id), None);
        let not_found =
            || DeleteInstanceResult { deleted: false, reason: Some("notFound".to_owned()) };
        if !id.starts_with("i-") {
            return Ok(not_found());
        }
        release_addresses(&self.ec2, &id).await;
        match self.ec2.terminate_instances().instance_ids(&id).send().await {
            Ok(_) => {
                tracing::info!(instance_id = %id, "instance terminated");
                Ok(DeleteInstanceResult { deleted: true, reason: None })
            }
            Err(e) if aws_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
                Ok(not_found())
            }
            Err(e) => Err(from_sdk(&format!("terminating {id}"), &e).with_instance_id(&id)),
        }
    }

    async fn list_instances(
        &self,
        _ctx: Ctx,
        params: ListInstancesParams,
    ) -> Result<ListInstancesResult, RpcError> {
        let mut req = self.ec2.describe_instances().filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped", "shutting-down"]
                        .map(str::to_owned)
                        .to_vec(),
                ))
                .build(),
        );
        for (k, v) in &params.tags {
            req = req.filters(Filter::builder().name(format!("tag:{k}")).values(v).build());
        }
        let mut instances = Vec::new();
        let mut pages = req.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("listing instances", &e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = i.instance_id() else { continue };
                let tags: BTreeMap<String, String> = i
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect();
                instances.push(InstanceInfo {
                    instance_id: id.to_owned(),
                    name: tags.get("Name").cloned().unwrap_or_default(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map_or("unknown", |n| n.as_str())
                        .to_owned(),
                    ips: crate::create::addresses(i, false).unwrap_or_default(),
                    tags,
                });
            }
        }
        Ok(ListInstancesResult { instances })
    }

    async fn teardown(&self) -> Result<(), RpcError> {
        Ok(())
    }
}

/// Releases the Elastic IPs associated with the instance; failures are logged (upstream's
/// behaviour: the terminate must still happen).
async fn release_addresses(ec2: &Client, instance_id: &str) {
    let filter = Filter::builder().name("instance-id").values(instance_id).build();
    let addresses = match ec2.describe_addresses().filters(filter).send().await {
        Ok(out) => out.addresses().to_vec(),
        Err(e) => {
            tracing::warn!(instance_id, error = %from_sdk("describing addresses", &e).message, "Elastic IPs not released");
            return;
        }
    };
    for a in addresses {
        if let Some(association) = a.association_id()
            && let Err(e) = ec2.disassociate_address().association_id(association).send().await
        {
            tracing::warn!(instance_id, error = %from_sdk("disassociating", &e).message, "Elastic IP not disassociated");
        }
        if let Some(allocation) = a.allocation_id()
            && let Err(e) = ec2.release_address().allocation_id(allocation).send().await
        {
            tracing::warn!(instance_id, error = %from_sdk("releasing", &e).message, "Elastic IP not released");
        }
    }
}
