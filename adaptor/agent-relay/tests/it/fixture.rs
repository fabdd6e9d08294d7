//! A relay on a unix socket in front of a test agent, plus a raw-frame client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use caa_agent_relay::{
    Backoff, Frame, Interceptor, Relay, UnixDialer, Upstream, bind_unix, envelope, frame,
};
use caa_kata_protos::ttrpc;
use caa_test_agent::TestAgent;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) agent: Option<TestAgent>,
    pub(crate) relay: Relay,
}

impl Fixture {
    pub(crate) async fn start(interceptor: Arc<dyn Interceptor>, call_wait: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let agent = TestAgent::start(&dir.path().join("agent.sock")).await.unwrap();
        let backoff = Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(2),
        };
        let dialer = Arc::new(UnixDialer(dir.path().join("agent.sock")));
        let upstream = Upstream::new(dialer, backoff, Duration::from_secs(10));
        let relay = Relay::new(upstream, interceptor, call_wait);
        let listener = bind_unix(&dir.path().join("relay.sock")).unwrap();
        let serving = relay.clone();
        tokio::spawn(async move { serving.serve_unix(listener).await });
        Fixture { dir, agent: Some(agent), relay }
    }

    pub(crate) fn agent_socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    pub(crate) fn relay_socket(&self) -> PathBuf {
        self.dir.path().join("relay.sock")
    }

    pub(crate) fn agent(&self) -> &TestAgent {
        self.agent.as_ref().unwrap()
    }

    pub(crate) async fn client(&self) -> ttrpc::r#async::Client {
        client(&self.relay_socket()).await
    }
}

pub(crate) async fn client(path: &Path) -> ttrpc::r#async::Client {
    ttrpc::r#async::Client::connect(&format!("unix://{}", path.display())).await.unwrap()
}

/// One unary call with the raw envelope: `Ok(payload)` or `Err((code, message))`.
pub(crate) async fn call(
    client: &ttrpc::r#async::Client,
    service: &str,
    method: &str,
    payload: &[u8],
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>, (i32, String)> {
    let mut req = ttrpc::Request::new();
    req.service = service.to_owned();
    req.method = method.to_owned();
    req.payload = payload.to_vec();
    req.timeout_nano = Duration::from_secs(20).as_nanos() as i64;
    for (k, v) in metadata {
        let mut kv = ttrpc::proto::KeyValue::new();
        kv.key = (*k).to_owned();
        kv.value = (*v).to_owned();
        req.metadata.push(kv);
    }
    match client.request(req).await {
        Ok(resp) => Ok(resp.payload),
        Err(ttrpc::Error::RpcStatus(s)) => Err((s.code.value(), s.message)),
        Err(e) => Err((-1, e.to_string())),
    }
}

/// A client writing raw frames, to send what well-behaved clients never would.
pub(crate) struct RawClient(UnixStream);

impl RawClient {
    pub(crate) async fn connect(path: &Path) -> RawClient {
        RawClient(UnixStream::connect(path).await.unwrap())
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.unwrap();
    }

    pub(crate) async fn request(&mut self, id: u32, service: &str, method: &str, payload: &[u8]) {
        let data = envelope::request(service, method, payload, 0);
        self.send(Frame::new(id, frame::TYPE_REQUEST, 0, &data).as_bytes()).await;
    }

    /// The next frame's stream id and status `(code, message)`.
    pub(crate) async fn answer(&mut self) -> (u32, i32, String) {
        let f = tokio::time::timeout(Duration::from_secs(10), frame::read_frame(&mut self.0))
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .expect("a frame, not end of stream");
        assert_eq!(f.kind(), frame::TYPE_RESPONSE);
        let (code, message) = envelope::response_status(f.data()).unwrap();
        (f.stream_id(), code, message)
    }
}
