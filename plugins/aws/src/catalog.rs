//! What the plugin learns from EC2 once, at `initialize` (caa-facts §8.1 init): the AMI's root
//! device and size, and the vCPUs, memory and GPUs of every allowed instance type, sorted for the
//! SDK's smallest-fit selection. Either failing aborts start-up, as upstream's does.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::InstanceType;
use caa_plugin_proto::{ErrorCode, RpcError};
use caa_plugin_sdk::instance_type::{InstanceTypeSpec, InstanceTypes};

use crate::error::from_sdk;

/// The AMI's root device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDevice {
    /// e.g. `/dev/xvda`.
    pub name: String,
    /// The image's root volume size, GiB (0 when the image does not say).
    pub size_gib: i32,
}

/// Root device of `image_id`.
pub async fn root_device(ec2: &Client, image_id: &str) -> Result<RootDevice, RpcError> {
    let out = ec2
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .map_err(|e| from_sdk(&format!("unable to get image details of {image_id}"), &e))?;
    let image = out.images().first().ok_or_else(|| {
        RpcError::new(ErrorCode::InvalidConfig, format!("image {image_id} not found"))
            .with_cloud_code("InvalidAMIID.NotFound")
    })?;
    let name = image.root_device_name().unwrap_or_default().to_owned();
    if name.is_empty() {
        return Err(RpcError::new(
            ErrorCode::InvalidConfig,
            format!("image {image_id}: empty device name"),
        ));
    }
    let size_gib = image
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(name.as_str()))
        .or_else(|| image.block_device_mappings().first())
        .and_then(|m| m.ebs()?.volume_size())
        .unwrap_or(0);
    Ok(RootDevice { name, size_gib })
}

/// The root volume size to request: the configured size raised to the image's, capped at
/// 2^31-1 GiB; `None` when the configured size is 0 (use the image's).
pub fn root_volume_gib(configured: i32, image: &RootDevice) -> Option<i32> {
    (configured > 0).then(|| configured.max(image.size_gib))
}

/// The allowed instance types (or only the default) with their resources.
pub async fn instance_types(
    ec2: &Client,
    default: &str,
    allowed: &[String],
) -> Result<InstanceTypes, RpcError> {
    let names: Vec<String> =
        if allowed.is_empty() { vec![default.to_owned()] } else { allowed.to_vec() };
    let mut specs = Vec::new();
    for chunk in names.chunks(100) {
        let mut req = ec2.describe_instance_types();
        for name in chunk {
            req = req.instance_types(InstanceType::from(name.as_str()));
        }
        let out =
            req.send().await.map_err(|e| from_sdk("describing the allowed instance types", &e))?;
        for t in out.instance_types() {
            let Some(name) = t.instance_type() else { continue };
            let vcpus = t.v_cpu_info().and_then(|v| v.default_v_cpus()).unwrap_or(0);
            let memory = t.memory_info().and_then(|m| m.size_in_mib()).unwrap_or(0);
            let gpus: i32 =
                t.gpu_info().map(|g| g.gpus().iter().filter_map(|d| d.count()).sum()).unwrap_or(0);
            let mut spec = InstanceTypeSpec::new(
                name.as_str(),
                u32::try_from(vcpus).unwrap_or(0),
                u64::try_from(memory).unwrap_or(0),
            )
            .with_gpus(u32::try_from(gpus).unwrap_or(0));
            if let Some(arch) = t
                .processor_info()
                .and_then(|p| p.supported_architectures().first())
                .map(|a| if a.as_str() == "arm64" { "arm64" } else { "amd64" })
            {
                spec = spec.with_arch(arch);
            }
            specs.push(spec);
        }
    }
    if let Some(missing) = names.iter().find(|n| !specs.iter().any(|s| &s.name == *n)) {
        return Err(RpcError::new(
            ErrorCode::InvalidConfig,
            format!("instance type {missing} is not offered by EC2"),
        ));
    }
    Ok(if allowed.is_empty() {
        InstanceTypes::default_only(specs.remove(0))
    } else {
        InstanceTypes::new(default, specs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_size_is_raised_to_the_images() {
        let image = RootDevice { name: "/dev/xvda".into(), size_gib: 40 };
        assert_eq!(root_volume_gib(30, &image), Some(40));
        assert_eq!(root_volume_gib(50, &image), Some(50));
        assert_eq!(root_volume_gib(0, &image), None);
    }
}
