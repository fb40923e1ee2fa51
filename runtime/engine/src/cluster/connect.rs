//! Connections between the processes of a distributed job: gRPC channels tuned for bulk
//! data, and the shared token every request carries when `--token-file` is set.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use weir_rpc::{AttachToken, Token};

use crate::error::{Error, Result};

/// HTTP/2 windows large enough that a multi-MB batch is not throttled by the transport
/// (credits, not the window, are the flow control that matters).
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// The token requests carry (none: the cluster runs without one).
#[derive(Clone, Default)]
pub struct Auth {
    pub token: Option<Token>,
}

impl Auth {
    pub fn interceptor(&self) -> Result<AttachToken> {
        AttachToken::new(self.token.as_ref()).map_err(|e| Error::Config {
            key: "--token-file".into(),
            message: e.to_string(),
        })
    }
}

/// A lazily connecting channel to `address` (`host:port` or a URL).
pub fn channel_to(address: &str) -> Result<Channel> {
    endpoint(address).map(|e| e.connect_lazy())
}

/// The endpoint for `address` (`host:port` or a URL), with the transport settings every
/// connection of the cluster uses.
pub fn endpoint(address: &str) -> Result<Endpoint> {
    let url = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| Error::Config {
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

/// Server-side transport settings matching [`endpoint`].
pub fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
}
