//! Connections between the processes of a distributed job: gRPC channels tuned for bulk
//! data, the shared token every request carries when `--token-file` is set, and TLS when
//! certificates are given (`--tls-cert`/`--tls-key` to serve, `--tls-ca` to verify).

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use weir_rpc::{AttachToken, TlsFiles, Token};

use crate::error::{Error, Result};

/// HTTP/2 windows large enough that a multi-MB batch is not throttled by the transport
/// (credits, not the window, are the flow control that matters).
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// How this process proves itself and checks the others: the token requests carry, and TLS.
#[derive(Clone, Default)]
pub struct Auth {
    /// The token (none: the cluster runs without one).
    pub token: Option<Token>,
    /// This process's certificate and key, for what it serves (the coordinator's `--listen`,
    /// a worker's data port); none: plain HTTP/2.
    pub tls: Option<TlsFiles>,
    /// The authority that signed the certificates of what this process connects to; with
    /// it, connections use TLS (`https`).
    pub tls_ca: Option<PathBuf>,
}

impl Auth {
    pub fn interceptor(&self) -> Result<AttachToken> {
        AttachToken::new(self.token.as_ref()).map_err(|e| Error::Config {
            key: "--token-file".into(),
            message: e.to_string(),
        })
    }

    /// The endpoint for `address` (`host:port` or a URL): `https` when a CA is set.
    pub fn endpoint(&self, address: &str) -> Result<Endpoint> {
        let https = self.tls_ca.is_some();
        let url = match address.split_once("://") {
            Some(("https", _)) if !https => {
                return Err(Error::Config {
                    key: "--tls-ca".into(),
                    message: format!(
                        "'{address}' is https: give the certificate authority that signed \
                         its certificate"
                    ),
                });
            }
            Some(("http", rest)) if https => format!("https://{rest}"),
            Some(_) => address.to_string(),
            None if https => format!("https://{address}"),
            None => format!("http://{address}"),
        };
        let mut endpoint = tuned(&url, address)?;
        if let Some(ca) = &self.tls_ca {
            let tls = weir_rpc::client_tls(ca).map_err(|e| tls_error("--tls-ca", e))?;
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| tls_error("--tls-ca", e))?;
        }
        Ok(endpoint)
    }

    /// A lazily connecting channel to `address`.
    pub fn channel_to(&self, address: &str) -> Result<Channel> {
        self.endpoint(address).map(|e| e.connect_lazy())
    }

    /// Server-side transport settings matching [`Auth::endpoint`], with TLS when this
    /// process has a certificate.
    pub fn server(&self) -> Result<tonic::transport::Server> {
        let mut server = tonic::transport::Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)));
        if let Some(files) = &self.tls {
            let tls = weir_rpc::server_tls(files).map_err(|e| tls_error("--tls-cert", e))?;
            server = server
                .tls_config(tls)
                .map_err(|e| tls_error("--tls-cert", e))?;
        }
        Ok(server)
    }
}

fn tls_error(key: &str, e: impl std::fmt::Display) -> Error {
    Error::Config {
        key: key.into(),
        message: e.to_string(),
    }
}

/// The endpoint of `url` with the transport settings every connection of the cluster uses.
fn tuned(url: &str, address: &str) -> Result<Endpoint> {
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| Error::Config {
        key: "address".into(),
        message: format!("'{address}' is not a usable address: {e}"),
    })?;
    Ok(endpoint
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_ca_turns_addresses_into_https_and_https_needs_one() {
        let plain = Auth::default();
        assert_eq!(
            plain.endpoint("127.0.0.1:1").expect("endpoint").uri(),
            "http://127.0.0.1:1/"
        );
        let error = plain
            .endpoint("https://localhost:1")
            .expect_err("https without a CA");
        assert!(error.to_string().contains("--tls-ca"), "{error}");
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpc/testdata/ca.pem");
        let tls = Auth {
            tls_ca: Some(ca),
            ..Auth::default()
        };
        for address in ["127.0.0.1:1", "http://127.0.0.1:1"] {
            assert_eq!(
                tls.endpoint(address).expect("endpoint").uri(),
                "https://127.0.0.1:1/"
            );
        }
    }
}
