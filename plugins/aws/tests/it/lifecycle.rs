//! createInstance / deleteInstance / listInstances against moto through the host library, with
//! the effects checked by EC2 calls of our own: tags, user data and the instance type on the
//! instance; type selection from DescribeInstanceTypes; a retried operation; an unknown AMI;
//! sixteen creates in flight.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::InstanceAttributeName;
use base64::Engine as _;
use caa_plugin_host::{CallError, Plugin};
use caa_plugin_proto::method::{CreateInstance, DeleteInstance, ListInstances, VerifyConfig};
use caa_plugin_proto::{
    CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams, DeleteInstanceResult,
    ErrorCode, InstanceInfo, InstanceSpec, ListInstancesParams, VerifyConfigParams, tags,
};

use crate::moto::Moto;

fn params(sandbox: &str, spec: InstanceSpec) -> CreateInstanceParams {
    CreateInstanceParams {
        operation_id: format!("op-{sandbox}"),
        deadline_ms: 60_000,
        pod_name: "nginx".to_owned(),
        pod_namespace: "default".to_owned(),
        sandbox_id: sandbox.to_owned(),
        user_data: "#cloud-config\nwrite_files: []\n".to_owned(),
        user_data_format: Some("cloud-config".to_owned()),
        spec,
        tags: BTreeMap::from([
            (tags::SANDBOX_ID.to_owned(), sandbox.to_owned()),
            (tags::OPERATION_ID.to_owned(), format!("op-{sandbox}")),
            (tags::NODE.to_owned(), "worker-1".to_owned()),
        ]),
    }
}

async fn create(
    p: &Plugin,
    params: CreateInstanceParams,
) -> Result<CreateInstanceResult, CallError> {
    p.call::<CreateInstance>(&params).await
}

async fn delete(p: &Plugin, instance_id: &str) -> DeleteInstanceResult {
    let params = DeleteInstanceParams {
        operation_id: format!("delete-{instance_id}"),
        instance_id: instance_id.to_owned(),
        sandbox_id: None,
        deadline_ms: 60_000,
    };
    p.call::<DeleteInstance>(&params).await.expect("deleteInstance")
}

async fn list(p: &Plugin, key: &str, value: &str) -> Vec<InstanceInfo> {
    let params = ListInstancesParams { tags: BTreeMap::from([(key.to_owned(), value.to_owned())]) };
    p.call::<ListInstances>(&params).await.expect("listInstances").instances
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_tags_user_data_type_then_delete_twice() {
    let Some(moto) = Moto::start().await else { return };
    let p = moto.plugin(&[]).await;
    let vm = create(&p, params("sb0001", InstanceSpec::default())).await.unwrap();
    assert!(vm.instance_id.starts_with("i-"), "{vm:?}");
    assert_eq!(vm.name, "podvm-nginx-sb0001");
    assert!(!vm.ips.is_empty() && vm.ips[0].parse::<std::net::Ipv4Addr>().is_ok(), "{vm:?}");

    let ec2 = moto.ec2().await;
    let out = ec2.describe_instances().instance_ids(&vm.instance_id).send().await.unwrap();
    let i = &out.reservations()[0].instances()[0];
    let tag = |k: &str| i.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value());
    assert_eq!(tag("Name"), Some("podvm-nginx-sb0001"));
    assert_eq!(tag("team"), Some("peerpods"), "TAGS");
    assert_eq!(tag(tags::SANDBOX_ID), Some("sb0001"));
    assert_eq!(tag(tags::NODE), Some("worker-1"));
    assert_eq!(i.instance_type().map(|t| t.as_str()), Some("t3.small"), "the default type");
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(&vm.instance_id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = attr.user_data().and_then(|u| u.value()).unwrap();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    assert_eq!(decoded, b"#cloud-config\nwrite_files: []\n");

    let listed = list(&p, tags::SANDBOX_ID, "sb0001").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].instance_id, vm.instance_id);
    assert_eq!(listed[0].name, "podvm-nginx-sb0001");

    assert!(delete(&p, &vm.instance_id).await.deleted);
    delete(&p, &vm.instance_id).await;
    let unknown = delete(&p, "i-0123456789abcdef0").await;
    assert!(!unknown.deleted, "{unknown:?}");
    let listed = list(&p, tags::SANDBOX_ID, "sb0001").await;
    assert!(listed.iter().all(|i| i.state != "running"), "{listed:?}");
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smallest_allowed_type_that_fits_is_launched() {
    let Some(moto) = Moto::start().await else { return };
    let p = moto.plugin(&[]).await;
    let spec = InstanceSpec { vcpus: 2, memory_mib: 8192, ..InstanceSpec::default() };
    let vm = create(&p, params("sb0002", spec)).await.unwrap();
    let ec2 = moto.ec2().await;
    let out = ec2.describe_instances().instance_ids(&vm.instance_id).send().await.unwrap();
    let launched =
        out.reservations()[0].instances()[0].instance_type().map(|t| t.as_str().to_owned());
    assert_eq!(launched.as_deref(), Some("m5.large"), "2 vCPUs / 8 GiB among t3.small..m5.xlarge");
    let too_big = InstanceSpec { vcpus: 64, memory_mib: 1 << 20, ..InstanceSpec::default() };
    match create(&p, params("sb0003", too_big)).await {
        Err(CallError::Rpc(e)) => {
            assert_eq!(e.kind(), ErrorCode::UnsupportedSpec);
            assert!(e.message.contains("no instance type found"), "{}", e.message);
        }
        other => panic!("expected unsupportedSpec, got {other:?}"),
    }
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_operation_gets_the_same_instance_and_other_params_conflict() {
    let Some(moto) = Moto::start().await else { return };
    let p = moto.plugin(&[]).await;
    let first = create(&p, params("sb0004", InstanceSpec::default())).await.unwrap();
    let again = create(&p, params("sb0004", InstanceSpec::default())).await.unwrap();
    assert_eq!(first.instance_id, again.instance_id);
    let mut other = params("sb0004", InstanceSpec::default());
    other.pod_name = "other".to_owned();
    match create(&p, other).await {
        Err(CallError::Rpc(e)) => assert_eq!(e.kind(), ErrorCode::Conflict, "{e:?}"),
        other => panic!("expected conflict, got {other:?}"),
    }
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ami_fails_with_the_aws_code_in_the_message() {
    let Some(moto) = Moto::start().await else { return };
    let p = moto.plugin(&[]).await;
    let spec = InstanceSpec { image: "ami-12345678".to_owned(), ..InstanceSpec::default() };
    match create(&p, params("sb0005", spec)).await {
        Err(CallError::Rpc(e)) => {
            assert!(e.message.contains("InvalidAMIID.NotFound"), "{}", e.message);
            assert_eq!(
                e.data.as_ref().and_then(|d| d.cloud_code.as_deref()),
                Some("InvalidAMIID.NotFound")
            );
            assert_eq!(e.kind(), ErrorCode::UnsupportedSpec);
            assert!(e.instance_id().is_none(), "nothing was launched");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_creates_in_flight_get_sixteen_instances() {
    let Some(moto) = Moto::start().await else { return };
    let p = moto.plugin(&[]).await;
    let calls = (0..16).map(|i| create(&p, params(&format!("par{i:04}"), InstanceSpec::default())));
    let results = futures_util::future::join_all(calls).await;
    let mut ids: Vec<String> = results.into_iter().map(|r| r.unwrap().instance_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16);
    assert_eq!(list(&p, tags::NODE, "worker-1").await.len(), 16);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_a_second_interface_are_attached_and_busy_volumes_refused() {
    let Some(moto) = Moto::start().await else { return };
    let p = moto.plugin(&[]).await;
    let ec2 = moto.ec2().await;
    let volume = ec2.create_volume().availability_zone("us-east-1a").size(1).send().await.unwrap();
    let volume = volume.volume_id().unwrap().to_owned();
    let disk = |id: &str| caa_plugin_proto::Volume { disk_id: id.to_owned(), device_name: None };
    let spec =
        InstanceSpec { volumes: vec![disk(&volume)], multi_nic: true, ..InstanceSpec::default() };
    let vm = create(&p, params("sb0006", spec.clone())).await.unwrap();
    let again = create(&p, params("sb0006", spec)).await.unwrap();
    assert_eq!(again.instance_id, vm.instance_id, "a retry adopts, its volumes stay attached");
    let nic = |vm: &caa_plugin_proto::CreateInstanceResult| {
        vm.provider_data.as_ref().and_then(|d| d.get("secondNetworkInterfaceId")).cloned()
    };
    assert_eq!(nic(&again), nic(&vm), "and keeps its second interface");
    assert!(nic(&vm).is_some_and(|v| v.is_string()), "{:?}", vm.provider_data);

    let out = ec2.describe_volumes().volume_ids(&volume).send().await.unwrap();
    let attachment = &out.volumes()[0].attachments()[0];
    assert_eq!(attachment.instance_id(), Some(vm.instance_id.as_str()));
    assert_eq!(attachment.device(), Some("/dev/xvdb"));
    let out = ec2.describe_instances().instance_ids(&vm.instance_id).send().await.unwrap();
    let nics = out.reservations()[0].instances()[0].network_interfaces();
    let second = nics
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(1))
        .unwrap_or_else(|| panic!("no device-1 interface in {nics:?}"));
    // moto ignores ModifyNetworkInterfaceAttribute's Attachment, so delete-on-termination is
    // not observable here; the interface and its name tag are.
    let eni = second.network_interface_id().unwrap();
    let out = ec2.describe_network_interfaces().network_interface_ids(eni).send().await.unwrap();
    let name = out.network_interfaces()[0].tag_set().iter().find(|t| t.key() == Some("Name"));
    assert_eq!(name.and_then(|t| t.value()), Some(format!("nic-{}", vm.instance_id).as_str()));

    let busy = InstanceSpec { volumes: vec![disk(&volume)], ..InstanceSpec::default() };
    match create(&p, params("sb0007", busy)).await {
        Err(CallError::Rpc(e)) => assert_eq!(e.kind(), ErrorCode::Conflict, "{e:?}"),
        other => panic!("an attached volume must be refused, got {other:?}"),
    }
    let malformed = InstanceSpec { volumes: vec![disk("vol-1")], ..InstanceSpec::default() };
    match create(&p, params("sb0008", malformed)).await {
        Err(CallError::Rpc(e)) => assert_eq!(e.kind(), ErrorCode::UnsupportedSpec, "{e:?}"),
        other => panic!("a malformed volume id must be refused, got {other:?}"),
    }
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_config_reports_each_problem() {
    let Some(moto) = Moto::start().await else { return };
    let verify = VerifyConfigParams { operation_id: "verify".to_owned(), deadline_ms: 30_000 };
    let p = moto.plugin(&[]).await;
    let ok = p.call::<VerifyConfig>(&verify).await.unwrap();
    assert!(ok.ok, "{ok:?}");
    let names: Vec<&str> = ok.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["credentials", "image"]);
    p.shutdown().await.unwrap();

    let bad = [
        ("subnetId", serde_json::json!("subnet-0nope")),
        ("securityGroupIds", serde_json::json!(["sg-0nope"])),
    ];
    let p = moto.plugin(&bad).await;
    let result = p.call::<VerifyConfig>(&verify).await.unwrap();
    assert!(!result.ok);
    let failed: Vec<&str> =
        result.checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["subnet", "securityGroups"], "{result:?}");
    p.shutdown().await.unwrap();
}
