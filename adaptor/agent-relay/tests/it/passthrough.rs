//! What passes through, what is rewritten, and how stream ids are remapped.

use std::sync::Arc;
use std::time::Duration;

use caa_agent_relay::{Call, Interceptor, PassThrough, Verdict, code};
use caa_kata_protos::agent::{CheckRequest, HealthCheckResponse, health_check_response};
use caa_kata_protos::protobuf::Message as _;
use caa_test_agent::{ECHO_METHOD, FUTURE_METHOD, TEST_SERVICE};

use crate::fixture::{Fixture, RawClient, call};

#[derive(Debug)]
struct Rewriter;

impl Interceptor for Rewriter {
    fn intercept(&self, call: &Call<'_>) -> Verdict {
        match (call.service, call.method) {
            ("grpc.AgentService", "CreateContainer") => {
                Verdict::Rewrite([b"rewritten:".as_slice(), call.payload].concat())
            }
            ("grpc.AgentService", "SetPolicy") => Verdict::Reject {
                code: code::FAILED_PRECONDITION,
                message: "policy refused by test".to_owned(),
            },
            _ => Verdict::Forward,
        }
    }
}

#[tokio::test]
async fn known_and_unknown_methods_pass_through_with_metadata() {
    let fx = Fixture::start(Arc::new(PassThrough), Duration::from_secs(5)).await;
    let client = fx.client().await;

    let mut check = CheckRequest::new();
    check.service = "agent".to_owned();
    let answer =
        call(&client, "grpc.Health", "Check", &check.write_to_bytes().unwrap(), &[]).await.unwrap();
    let answer = HealthCheckResponse::parse_from_bytes(&answer).unwrap();
    assert_eq!(answer.status.enum_value(), Ok(health_check_response::ServingStatus::SERVING));

    let answer =
        call(&client, "grpc.AgentService", FUTURE_METHOD, b"xyz", &[("k", "v1"), ("k", "v2")])
            .await
            .unwrap();
    assert_eq!(answer, b"future:xyz");

    let recorded = fx.agent().requests();
    let future = recorded.iter().find(|r| r.method == FUTURE_METHOD).unwrap();
    assert_eq!(future.payload().unwrap(), b"xyz");
    assert_eq!(
        future.metadata,
        vec![("k".to_owned(), "v1".to_owned()), ("k".to_owned(), "v2".to_owned())]
    );
    let check_rec = recorded.iter().find(|r| r.method == "Check").unwrap();
    assert_eq!(check_rec.payload().unwrap(), check.write_to_bytes().unwrap());

    // An unknown service reaches the agent too, which answers as ttrpc does.
    let err = call(&client, "grpc.NoSuchService", "X", b"", &[]).await.unwrap_err();
    assert_ne!(err.0, 0);
}

#[tokio::test]
async fn interceptors_rewrite_and_refuse_calls() {
    let fx = Fixture::start(Arc::new(Rewriter), Duration::from_secs(5)).await;
    let client = fx.client().await;
    call(&client, "grpc.AgentService", "CreateContainer", b"spec", &[("trace", "t1")])
        .await
        .unwrap();
    let err = call(&client, "grpc.AgentService", "SetPolicy", b"package x", &[]).await.unwrap_err();
    assert_eq!(err, (code::FAILED_PRECONDITION, "policy refused by test".to_owned()));

    let recorded = fx.agent().requests();
    let create = recorded.iter().find(|r| r.method == "CreateContainer").unwrap();
    assert_eq!(create.payload().unwrap(), b"rewritten:spec");
    assert_eq!(create.metadata, vec![("trace".to_owned(), "t1".to_owned())]);
    assert!(
        recorded.iter().all(|r| r.method != "SetPolicy"),
        "a refused call must not reach the agent"
    );
}

#[tokio::test]
async fn reused_caller_ids_become_fresh_increasing_upstream_ids() {
    let fx = Fixture::start(Arc::new(PassThrough), Duration::from_secs(5)).await;
    // Two raw clients that both use stream id 1, three times each, plus a ttrpc client.
    let mut a = RawClient::connect(&fx.relay_socket()).await;
    let mut b = RawClient::connect(&fx.relay_socket()).await;
    for _ in 0..3 {
        a.request(1, TEST_SERVICE, ECHO_METHOD, b"a").await;
        assert_eq!(a.answer().await, (1, 0, String::new()));
        b.request(1, TEST_SERVICE, ECHO_METHOD, b"b").await;
        assert_eq!(b.answer().await, (1, 0, String::new()));
    }
    let client = fx.client().await;
    let calls = (0..50).map(|i| {
        let client = client.clone();
        async move { call(&client, TEST_SERVICE, ECHO_METHOD, format!("{i}").as_bytes(), &[]).await }
    });
    for (i, answer) in futures_join(calls).await.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), format!("{i}").as_bytes());
    }
    let ids: Vec<u32> = fx.agent().requests().iter().map(|r| r.stream_id).collect();
    assert_eq!(ids.len(), 56);
    assert!(ids.iter().all(|id| id % 2 == 1));
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "upstream ids are never reused: {ids:?}");
    // The six sequential raw calls arrived in order, so their ids increase.
    assert!(ids[..6].windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
