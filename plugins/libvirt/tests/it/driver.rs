//! The provider against libvirt's test driver, through the `Provider` trait: create (volumes,
//! domain, metadata, lease), list by tags, delete (volumes and domain gone), idempotent delete,
//! adoption of this operation's domain, conflicts, refused specs, deadline and verifyConfig.

use std::collections::BTreeMap;
use std::time::Duration;

use caa_plugin_proto::{DeleteInstanceParams, ErrorCode, ListInstancesParams, Volume, tags};
use caa_plugin_sdk::{Ctx, Provider};
use caa_provider_libvirt::metadata::DomainRecord;
use caa_provider_libvirt::{LibvirtProvider, request_digest};
use serde_json::json;

use crate::support::{BASE, TestHost, request, under};

fn ctx(op: &str) -> Ctx {
    Ctx::detached(op, Duration::from_secs(60))
}

async fn delete(p: &LibvirtProvider, id: &str) -> (bool, Option<String>) {
    let params = DeleteInstanceParams {
        operation_id: format!("del-{id}"),
        instance_id: id.to_owned(),
        sandbox_id: None,
        deadline_ms: 60_000,
    };
    let r = p.delete_instance(ctx("del"), params).await.unwrap();
    (r.deleted, r.reason)
}

async fn listed(p: &LibvirtProvider, filter: &[(&str, &str)]) -> Vec<String> {
    let tags = filter.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let found = p.list_instances(ctx("list"), ListInstancesParams { tags }).await.unwrap();
    found.instances.into_iter().map(|i| i.instance_id).collect()
}

/// Names of the volumes in the pool.
async fn volumes(p: &LibvirtProvider) -> Vec<String> {
    let session = p.session().await.unwrap();
    let pool = session.connect().lookup_storage_pool_by_name("default").unwrap();
    let mut names = pool.list_volumes().unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn create_list_delete_round_trip() {
    let host = TestHost::new();
    let p = host.provider(&[]).await;
    let params = request("nginx-7d9f", "27e11ff35fd1a2b3", "op-1");
    let vm = p.create_instance(ctx("op-1"), params.clone()).await.unwrap();
    assert_eq!(vm.name, "podvm-nginx-7d9f-27e11ff3");
    assert_eq!(vm.instance_id.len(), 36, "a UUID: {}", vm.instance_id);
    assert!(vm.ips[0].starts_with("192.168.122."), "{:?}", vm.ips);
    let data = vm.provider_data.clone().unwrap();
    assert_eq!((data["image"].clone(), data["vcpus"].clone()), (json!(BASE), json!(2)));

    assert_eq!(
        volumes(&p).await,
        [BASE, "podvm-nginx-7d9f-27e11ff3-cloudinit.iso", "podvm-nginx-7d9f-27e11ff3-root.qcow2"]
    );
    let session = p.session().await.unwrap();
    let pool = session.connect().lookup_storage_pool_by_name("default").unwrap();
    let root = pool.lookup_storage_vol_by_name("podvm-nginx-7d9f-27e11ff3-root.qcow2").unwrap();
    let root_xml = root.xml_desc(0).unwrap();
    assert!(root_xml.contains("<capacity unit='bytes'>10737418240</capacity>"), "{root_xml}");
    assert!(
        root_xml.contains(&format!("{}/{BASE}</path>", host.pool_dir().display())),
        "{root_xml}"
    );

    let domain = session.connect().lookup_domain_by_uuid_string(&vm.instance_id).unwrap();
    let record = DomainRecord::from_xml(&domain.xml_desc(0).unwrap()).unwrap();
    let meta = record.meta.unwrap();
    assert_eq!(meta.tags, params.tags);
    assert_eq!(meta.request_digest, request_digest(&params));
    assert_eq!(meta.volumes.len(), 2);
    assert!(meta.volumes.iter().all(|v| under(v, &host.pool_dir())), "{:?}", meta.volumes);
    assert_eq!(record.disk_files, meta.volumes);

    assert_eq!(listed(&p, &[]).await, [vm.instance_id.as_str()]);
    assert_eq!(listed(&p, &[(tags::NODE, "worker-1")]).await, [vm.instance_id.as_str()]);
    assert!(listed(&p, &[(tags::NODE, "worker-2")]).await.is_empty());
    let all = p.list_instances(ctx("l"), ListInstancesParams::default()).await.unwrap();
    assert_eq!(all.instances[0].state, "running");
    assert_eq!(all.instances[0].ips, vm.ips);

    assert_eq!(delete(&p, &vm.instance_id).await, (true, None));
    assert_eq!(volumes(&p).await, [BASE]);
    assert!(listed(&p, &[]).await.is_empty());
    assert_eq!(delete(&p, &vm.instance_id).await, (false, Some("notFound".to_owned())));
    assert_eq!(delete(&p, "not-a-uuid").await, (false, Some("notFound".to_owned())));
    assert_eq!(
        delete(&p, "00000000-0000-0000-0000-000000000000").await,
        (false, Some("notFound".to_owned()))
    );
}

#[tokio::test]
async fn a_retried_operation_adopts_its_domain() {
    let host = TestHost::new();
    let p = host.provider(&[]).await;
    let params = request("web", "aaaabbbbcccc", "op-adopt");
    let first = p.create_instance(ctx("op-adopt"), params.clone()).await.unwrap();
    let mut retry = params.clone();
    retry.deadline_ms = 1234;
    let second = p.create_instance(ctx("op-adopt"), retry).await.unwrap();
    assert_eq!(second.instance_id, first.instance_id);
    assert_eq!(listed(&p, &[]).await.len(), 1);

    // A stopped domain of the operation is started again.
    let session = p.session().await.unwrap();
    let domain = session.connect().lookup_domain_by_uuid_string(&first.instance_id).unwrap();
    domain.destroy().unwrap();
    let third = p.create_instance(ctx("op-adopt"), params).await.unwrap();
    assert_eq!(third.instance_id, first.instance_id);
    assert!(domain.is_active().unwrap());
}

#[tokio::test]
async fn reuse_with_other_params_and_name_clashes_are_conflicts() {
    let foreign = "<domain type='test'><name>podvm-db-12345678</name><memory>1024</memory>\
                   <os><type>hvm</type></os></domain>";
    let host = TestHost::with_domains(foreign);
    let p = host.provider(&[]).await;
    let params = request("web", "aaaabbbbcccc", "op-c");
    let vm = p.create_instance(ctx("op-c"), params.clone()).await.unwrap();
    let mut other = params.clone();
    other.user_data.push_str("# changed\n");
    let e = p.create_instance(ctx("op-c"), other).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::Conflict, "{e:?}");
    assert!(e.instance_id().is_none());

    // The name is taken by a domain this plugin did not make.
    let e = p.create_instance(ctx("op-d"), request("db", "1234567890", "op-d")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::Conflict, "{e:?}");
    assert!(e.message.contains("podvm-db-12345678"), "{}", e.message);
    // The foreign domain is never listed.
    assert_eq!(listed(&p, &[]).await, [vm.instance_id]);
}

#[tokio::test]
async fn refused_specs_and_missing_images_leave_nothing() {
    let host = TestHost::new();
    let p = host.provider(&[]).await;
    let mut gpu = request("p", "sandbox01", "op-g");
    gpu.spec.gpus = 1;
    let mut vols = request("p", "sandbox01", "op-v");
    vols.spec.volumes = vec![Volume { disk_id: "d".to_owned(), device_name: None }];
    let mut nic = request("p", "sandbox01", "op-n");
    nic.spec.multi_nic = true;
    let mut arm = request("p", "sandbox01", "op-a");
    arm.spec.arch = "arm64".to_owned();
    for params in [gpu, vols, nic, arm] {
        let e = p.create_instance(ctx("x"), params).await.unwrap_err();
        assert_eq!(e.kind(), ErrorCode::UnsupportedSpec, "{e:?}");
    }
    let mut missing = request("p", "sandbox01", "op-m");
    missing.spec.image = "no-such.qcow2".to_owned();
    let e = p.create_instance(ctx("x"), missing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::NotFound);
    assert_eq!(e.message, "Error in creating volume: Can't retrieve volume no-such.qcow2");
    let mut empty = request("p", "sandbox01", "op-e");
    empty.sandbox_id.clear();
    assert_eq!(
        p.create_instance(ctx("x"), empty).await.unwrap_err().kind(),
        ErrorCode::InvalidParams
    );
    assert_eq!(volumes(&p).await, [BASE]);
    assert!(listed(&p, &[]).await.is_empty());
}

#[tokio::test]
async fn an_exhausted_deadline_creates_nothing() {
    let host = TestHost::new();
    let p = host.provider(&[]).await;
    let late = Ctx::detached("op-late", Duration::ZERO);
    let e = p.create_instance(late, request("p", "sandbox02", "op-late")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::DeadlineExceeded);
    assert!(e.instance_id().is_none());
    assert_eq!(volumes(&p).await, [BASE]);
}

#[tokio::test]
async fn annotations_override_size_and_image() {
    let host = TestHost::new();
    let p = host.provider(&[("cpu", json!(1)), ("memory", json!(1024))]).await;
    let mut params = request("sized", "sandbox03", "op-s");
    params.spec.vcpus = 3;
    params.spec.memory_mib = 2048;
    params.spec.image = BASE.to_owned();
    let vm = p.create_instance(ctx("op-s"), params).await.unwrap();
    let session = p.session().await.unwrap();
    let info =
        session.connect().lookup_domain_by_uuid_string(&vm.instance_id).unwrap().info().unwrap();
    assert_eq!((info.nr_virt_cpu, info.max_mem), (3, 2048 * 1024));
    let defaults =
        p.create_instance(ctx("op-t"), request("plain", "sandbox04", "op-t")).await.unwrap();
    let info = session
        .connect()
        .lookup_domain_by_uuid_string(&defaults.instance_id)
        .unwrap()
        .info()
        .unwrap();
    assert_eq!((info.nr_virt_cpu, info.max_mem), (1, 1024 * 1024));
}

#[tokio::test]
async fn verify_config_checks_the_host() {
    let host = TestHost::new();
    let good = host.provider(&[]).await.verify_config(ctx("v")).await.unwrap();
    assert!(good.ok, "{good:?}");
    let names: Vec<&str> = good.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["connection", "pool", "network", "image", "domainType", "launchSecurity"]);

    let bad = host
        .provider(&[("poolName", json!("nope")), ("domainType", json!("kvm"))])
        .await
        .verify_config(ctx("v"))
        .await
        .unwrap();
    let failed: BTreeMap<&str, bool> = bad.checks.iter().map(|c| (c.name.as_str(), c.ok)).collect();
    assert!(!bad.ok);
    assert_eq!((failed["pool"], failed["domainType"], failed["network"]), (false, false, true));

    let missing = TestHost::new();
    let unreachable = format!("test://{}/absent.xml", missing.pool_dir().display());
    let down =
        host.provider(&[("uri", json!(unreachable))]).await.verify_config(ctx("v")).await.unwrap();
    assert!(!down.ok && down.checks[0].name == "connection", "{down:?}");
}
