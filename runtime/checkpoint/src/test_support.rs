//! [`MotoServer`]: a real S3-compatible server (moto) on 127.0.0.1 for tests.
//!
//! Behind the `test-support` feature so the engine's crash and S3 tests can use it too (enable
//! the feature in its dev-dependencies). moto comes from PyPI into a venv that
//! `scripts/setup.sh` makes under `${WEIR_CACHE:-$HOME/.cache/weir}/venv`; without it, starting
//! a server panics with a message saying to run that script, so S3 tests fail rather than skip.
//!
//! The server is moto's `ThreadedMotoServer` on a port the OS picks, run by the venv's Python
//! with a script that exits when its standard input closes: the server dies with the test
//! process even when the process is killed, not only when [`MotoServer`] is dropped. Nothing
//! global is set: storages get their endpoint and credentials explicitly, and [`MotoServer::env`]
//! gives the variables for a child process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use crate::CheckpointStorage;

/// Starts moto on a free port, prints the port, and exits when stdin closes.
const SERVER_SCRIPT: &str = r#"
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"#;

const REGION: &str = "us-east-1";
const ACCESS_KEY: &str = "weir-test";
const SECRET_KEY: &str = "weir-test-secret";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv `scripts/setup.sh` installs moto into.
pub fn venv_dir() -> PathBuf {
    let cache = std::env::var_os("WEIR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache").join("weir")
        });
    cache.join("venv")
}

/// A running moto S3 server, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    endpoint: String,
}

impl MotoServer {
    /// Starts a server of its own. Panics, naming `scripts/setup.sh`, if moto is not installed.
    pub fn start() -> Self {
        let venv = venv_dir();
        let moto_server = venv.join("bin").join("moto_server");
        assert!(
            moto_server.is_file(),
            "moto_server not found at {}: run scripts/setup.sh to install moto (the S3 tests need it)",
            moto_server.display()
        );
        let mut child = Command::new(venv.join("bin").join("python"))
            .args(["-c", SERVER_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start moto from {}: {err}", venv.display()));

        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = match receiver.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("moto did not start within {START_TIMEOUT:?}");
            }
        };
        let Ok(port) = line.trim().parse::<u16>() else {
            let status = child.wait().ok();
            panic!(
                "moto did not report its port (printed {line:?}, exit {status:?}): \
                 run scripts/setup.sh to repair the venv at {}",
                venv.display()
            );
        };
        let server = Self {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        server.wait_until_answering();
        server
    }

    /// One server for the whole test process, started on first use; it exits with the process.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    fn wait_until_answering(&self) {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if let Ok(response) = self.request("GET", "/")
                && response.starts_with("HTTP/1.")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto at {} does not answer", self.endpoint);
    }

    /// One plain HTTP/1.1 request without a body; the whole response as text.
    fn request(&self, method: &str, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates `bucket` with a plain S3 `PUT /<bucket>` (object_store cannot create buckets).
    pub fn create_bucket(&self, bucket: &str) {
        let response = self
            .request("PUT", &format!("/{bucket}"))
            .unwrap_or_else(|err| panic!("creating bucket {bucket} on {}: {err}", self.endpoint));
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "creating bucket {bucket} on {} failed: {response}",
            self.endpoint
        );
    }

    /// A new bucket with a unique name derived from `hint`.
    pub fn unique_bucket(&self, hint: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let clean: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let bucket = format!(
            "{}-{}-{}",
            clean.trim_matches('-'),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        self.create_bucket(&bucket);
        bucket
    }

    /// `object_store` options for [`CheckpointStorage::open_with_options`] and
    /// [`crate::load_with_options`].
    pub fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".to_owned()),
            ("aws_region", REGION.to_owned()),
            ("aws_access_key_id", ACCESS_KEY.to_owned()),
            ("aws_secret_access_key", SECRET_KEY.to_owned()),
        ]
    }

    /// [`options`](Self::options) in the shape `open_with_options` takes.
    pub fn option_refs<'a>(options: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        options
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect()
    }

    /// Environment variables pointing a child process (`weir run`) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ]
    }

    /// A storage on `s3://<bucket>/<prefix>` of this server, built explicitly (nothing from
    /// the environment).
    pub fn storage(&self, bucket: &str, prefix: &str) -> CheckpointStorage {
        let store = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(REGION)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_retry(crate::uri::retry_config())
            .build()
            .expect("an S3 client for moto");
        CheckpointStorage::from_store(std::sync::Arc::new(store), &format!("s3://{bucket}"))
            .child(prefix)
    }

    /// A storage on a new bucket of its own.
    pub fn fresh_storage(&self, hint: &str) -> CheckpointStorage {
        let bucket = self.unique_bucket(hint);
        self.storage(&bucket, "checkpoints")
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing stdin alone would end it too; kill so drop does not depend on the script.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
