//! Bad input from the caller and a lost upstream: a status on the affected stream, never a
//! crash, and the connection stays usable.

use std::sync::Arc;
use std::time::Duration;

use caa_agent_relay::{Frame, MAX_DATA_LEN, PassThrough, code, frame};
use caa_test_agent::{ECHO_METHOD, SLEEP_METHOD, TEST_SERVICE, TestAgent};

use crate::fixture::{Fixture, RawClient, call};

#[tokio::test]
async fn malformed_requests_get_a_status_and_the_connection_survives() {
    let fx = Fixture::start(Arc::new(PassThrough), Duration::from_secs(5)).await;
    let mut raw = RawClient::connect(&fx.relay_socket()).await;

    raw.request(2, TEST_SERVICE, ECHO_METHOD, b"x").await;
    let (id, code, msg) = raw.answer().await;
    assert_eq!((id, code), (2, code::INVALID_ARGUMENT), "{msg}");

    raw.send(Frame::new(3, frame::TYPE_REQUEST, 0, &[0x0a, 0x7f, b'a']).as_bytes()).await;
    let (id, code, msg) = raw.answer().await;
    assert_eq!((id, code), (3, code::INVALID_ARGUMENT));
    assert!(msg.contains("unmarshal request error"), "{msg}");

    let mut big = Frame::new(5, frame::TYPE_REQUEST, 0, &[]).as_bytes().to_vec();
    big[..4].copy_from_slice(&((MAX_DATA_LEN + 1) as u32).to_be_bytes());
    raw.send(&big).await;
    raw.send(&vec![0u8; MAX_DATA_LEN + 1]).await;
    let (id, code, msg) = raw.answer().await;
    assert_eq!((id, code), (5, code::RESOURCE_EXHAUSTED), "{msg}");

    // Frames a client never sends (a Response, an unknown type) are ignored.
    raw.send(Frame::new(7, frame::TYPE_RESPONSE, 0, b"").as_bytes()).await;
    raw.send(Frame::new(7, 0x7f, 0, b"zz").as_bytes()).await;

    raw.request(9, TEST_SERVICE, ECHO_METHOD, b"still fine").await;
    assert_eq!(raw.answer().await, (9, 0, String::new()));
}

#[tokio::test]
async fn a_lost_upstream_fails_calls_in_flight_and_later_calls_reconnect() {
    let mut fx = Fixture::start(Arc::new(PassThrough), Duration::from_secs(10)).await;
    let client = fx.client().await;
    call(&client, TEST_SERVICE, ECHO_METHOD, b"warm", &[]).await.unwrap();

    let slow = {
        let client = client.clone();
        tokio::spawn(async move { call(&client, TEST_SERVICE, SLEEP_METHOD, b"8000", &[]).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    fx.agent.take().unwrap().stop().await;
    let err =
        tokio::time::timeout(Duration::from_secs(5), slow).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.0, code::UNAVAILABLE, "{err:?}");

    // The agent comes back a moment later; a call made meanwhile waits for it.
    let socket = fx.agent_socket();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        TestAgent::start(&socket).await.unwrap()
    });
    let answer = call(&client, TEST_SERVICE, ECHO_METHOD, b"again", &[]).await;
    fx.agent = Some(restart.await.unwrap());
    assert_eq!(answer.unwrap(), b"again");
    assert_eq!(fx.agent().requests().len(), 1);
}

#[tokio::test]
async fn a_call_fails_unavailable_when_the_upstream_stays_down() {
    let mut fx = Fixture::start(Arc::new(PassThrough), Duration::from_millis(300)).await;
    fx.agent.take().unwrap().stop().await;
    let client = fx.client().await;
    let err = call(&client, TEST_SERVICE, ECHO_METHOD, b"x", &[]).await.unwrap_err();
    assert_eq!(err.0, code::UNAVAILABLE, "{err:?}");
    assert!(err.1.contains("agent connection unavailable"), "{}", err.1);
}

#[tokio::test]
async fn shutdown_closes_callers_and_the_upstream() {
    let fx = Fixture::start(Arc::new(PassThrough), Duration::from_secs(5)).await;
    let client = fx.client().await;
    call(&client, TEST_SERVICE, ECHO_METHOD, b"x", &[]).await.unwrap();
    fx.relay.shutdown();
    assert!(fx.relay.upstream().is_closed());
    let after = call(&client, TEST_SERVICE, ECHO_METHOD, b"x", &[]).await;
    assert!(after.is_err(), "the caller's connection is closed: {after:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::UnixStream::connect(fx.relay_socket()).await.is_err(), "still listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_and_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let fx = Fixture::start(Arc::new(PassThrough), Duration::from_secs(5)).await;
    // 48 MiB of echo answers for a client that reads none of them while it writes.
    let mut hog = tokio::net::UnixStream::connect(fx.relay_socket()).await.unwrap();
    let payload = vec![7u8; 1 << 20];
    let data = caa_agent_relay::envelope::request(TEST_SERVICE, ECHO_METHOD, &payload, 0);
    for i in 0..48u32 {
        let request = Frame::new(2 * i + 1, frame::TYPE_REQUEST, 0, &data);
        if hog.write_all(request.as_bytes()).await.is_err() {
            break; // already cut off
        }
    }
    let mut answers = 0;
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = frame::read_frame(&mut hog).await {
            answers += 1;
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection ends");
    assert!(answers < 48, "the relay queued {answers} MiB for a client that did not read");
    const { assert!(caa_agent_relay::DOWNSTREAM_BUDGET < 48 << 20) };

    let client = fx.client().await;
    call(&client, TEST_SERVICE, ECHO_METHOD, b"still served", &[]).await.unwrap();
}
