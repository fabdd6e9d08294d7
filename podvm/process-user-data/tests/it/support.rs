//! Fixtures: a temporary VM root, realistic userdata, and a small HTTP/1.1 server on 127.0.0.1
//! that plays the cloud metadata services (Azure's header check and base64 body, AWS's IMDSv2
//! token dance, refusals and transient errors), recording every request it saw.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use caa_process_user_data::Options;
use caa_userdata::{ForwarderConfig, Initdata, UserData};
use tempfile::TempDir;

/// In the forwarder's TLS key; must never show up in logs or errors.
pub(crate) const SECRET: &str = "MIGHAgEAMBMGSECRETKEYMATERIAL";
pub(crate) const AZURE_PATH: &str =
    "/metadata/instance/compute/userData?api-version=2021-01-01&format=text";
pub(crate) const TOKEN: &str = "AQAEAFakeToken==";

/// A VM root in a temporary directory.
pub(crate) struct Root(TempDir);

impl Root {
    pub(crate) fn new() -> Self {
        Root(tempfile::tempdir().unwrap())
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    /// `vm_path` under the root.
    pub(crate) fn at(&self, vm_path: &str) -> PathBuf {
        self.path().join(vm_path.trim_start_matches('/'))
    }

    pub(crate) fn write(&self, vm_path: &str, content: &str) {
        let path = self.at(vm_path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    pub(crate) fn read(&self, vm_path: &str) -> String {
        fs::read_to_string(self.at(vm_path)).unwrap()
    }

    pub(crate) fn mode(&self, vm_path: &str) -> u32 {
        fs::metadata(self.at(vm_path)).unwrap().permissions().mode() & 0o7777
    }

    pub(crate) fn set_sys_vendor(&self, vendor: &str) {
        self.write("/sys/class/dmi/id/sys_vendor", &format!("{vendor}\n"));
    }

    /// Options for this root: CPUID off, both metadata URLs on `imds`, quick retries.
    pub(crate) fn options(&self, imds: &str) -> Options {
        Options {
            root: self.path().to_owned(),
            azure_imds_url: imds.to_owned(),
            aws_imds_url: imds.to_owned(),
            fetch_timeout: Duration::from_secs(20),
            retry_interval: Duration::from_millis(50),
            cpuid: false,
        }
    }
}

/// A forwarder config carrying [`SECRET`].
pub(crate) fn forwarder() -> ForwarderConfig {
    let mut config = ForwarderConfig {
        pod_name: "nginx".into(),
        tls_server_key: format!(
            "-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
        ),
        ..ForwarderConfig::default()
    };
    config.pod_network.mtu = 1450;
    config
}

/// Userdata as the adaptor renders it: apf.json, auth.json and, optionally, initdata TOML.
pub(crate) fn rendered(initdata_toml: Option<&str>) -> String {
    let mut userdata = UserData::new(forwarder());
    userdata.auth_json = Some(r#"{"auths":{}}"#.into());
    userdata.initdata = initdata_toml.map(|t| Initdata::Toml(t.to_owned()));
    caa_userdata::render(&userdata).unwrap()
}

pub(crate) fn apf_json() -> String {
    forwarder().to_json().unwrap()
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A reply: status, body, and whether to send the body chunked.
pub(crate) struct Reply(pub(crate) u16, pub(crate) String, pub(crate) bool);

impl Reply {
    pub(crate) fn ok(body: impl Into<String>) -> Self {
        Reply(200, body.into(), false)
    }

    pub(crate) fn status(code: u16) -> Self {
        Reply(code, String::new(), false)
    }
}

type Handler = dyn Fn(&Seen, &[Seen]) -> Reply + Send + Sync;

/// The fake metadata server; stops when dropped.
pub(crate) struct Imds {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Imds {
    /// A server answering each request with `handler(request, earlier requests)`.
    pub(crate) fn start(handler: impl Fn(&Seen, &[Seen]) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &*handler, &seen);
                    }
                }
            })
        };
        Imds { url, seen, stop, thread: Some(thread) }
    }

    /// Azure: `Metadata: true` required (else 400), body base64 of `userdata`.
    pub(crate) fn azure(userdata: &str, chunked: bool) -> Self {
        let body = base64::engine::general_purpose::STANDARD.encode(userdata);
        Imds::start(move |req, _| {
            if req.method != "GET" || req.target != AZURE_PATH {
                return Reply::status(404);
            }
            if req.header("Metadata") != Some("true") {
                return Reply(
                    400,
                    r#"{"error":"Bad request. Required metadata header not specified"}"#.into(),
                    false,
                );
            }
            Reply(200, body.clone(), chunked)
        })
    }

    /// AWS: IMDSv2 (token required for the GET) unless `put_refusal` is set, in which case the
    /// token PUT gets that status and the GET works without a token (IMDSv1).
    pub(crate) fn aws(userdata: &str, put_refusal: Option<u16>) -> Self {
        let userdata = userdata.to_owned();
        Imds::start(move |req, _| match (req.method.as_str(), req.target.as_str()) {
            ("PUT", "/latest/api/token") => match put_refusal {
                Some(code) => Reply::status(code),
                None if req.header("X-aws-ec2-metadata-token-ttl-seconds").is_none() => {
                    Reply::status(400)
                }
                None => Reply::ok(TOKEN),
            },
            ("GET", "/latest/user-data") => {
                let token_ok = req.header("X-aws-ec2-metadata-token") == Some(TOKEN);
                if put_refusal.is_none() && !token_ok {
                    Reply::status(401)
                } else {
                    Reply::ok(userdata.clone())
                }
            }
            _ => Reply::status(404),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request per connection (`Connection: close`).
fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or(""));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let request = Seen { method, target: target.to_owned(), headers };
    let length: u64 = request.header("Content-Length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let _ = std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink());
    let reply = {
        let mut seen = seen.lock().unwrap();
        let reply = handler(&request, &seen);
        seen.push(request);
        reply
    };
    let Reply(status, body, chunked) = reply;
    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if chunked {
        out.push_str("Transfer-Encoding: chunked\r\n\r\n");
        for piece in body.as_bytes().chunks(7) {
            out.push_str(&format!("{:x}\r\n{}\r\n", piece.len(), String::from_utf8_lossy(piece)));
        }
        out.push_str("0\r\n\r\n");
    } else {
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    }
    let mut stream = reader.into_inner();
    let _ = stream.write_all(out.as_bytes());
}

/// A raw request to the fake server (to check it behaves like the real service).
pub(crate) fn raw_get(url: &str, target: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(stream, "GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// An address nothing listens on (bound then released).
pub(crate) fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// The initdata TOML with this algorithm and `[data]` entries.
pub(crate) fn initdata_toml(algorithm: &str, data: &[(&str, &str)]) -> String {
    let mut toml = format!("algorithm = \"{algorithm}\"\nversion = \"0.1.0\"\n\n[data]\n");
    for (name, value) in data {
        toml.push_str(&format!("\"{name}\" = '''\n{value}'''\n"));
    }
    toml
}
