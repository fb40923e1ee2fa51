//! Clients of the control API over gRPC: [`ControlClient`] (async, for the Kubernetes
//! operator) and [`BlockingClient`] (its own small runtime, for `weir job …`). Both attach the
//! token to every call, and every error names the URL and what went wrong: the connection
//! was refused, the token was refused (401), the trigger id is unknown (404).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::control as pb;
use crate::control::job_control_client::JobControlClient;
use crate::convert::{self, decode};
use crate::error::{Error, Result, error_chain};
use crate::model::{Checkpoints, Compatibility, Job, Savepoint, SavepointRequest};
use crate::token::{AttachToken, Token};

/// Where the control API is and how to reach it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `--api`: `http://host:port` or `https://host:port`.
    pub url: String,
    pub token: Option<Token>,
    /// `--tls-ca`: the PEM certificate(s) that sign the server's certificate (https only).
    pub tls_ca: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            token: None,
            tls_ca: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    pub fn with_token(mut self, token: Option<Token>) -> Self {
        self.token = token;
        self
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: self.url.clone(),
            reason,
        };
        let https = self.url.starts_with("https://");
        if !https && !self.url.starts_with("http://") {
            return Err(invalid(
                "expected http://host:port or https://host:port".into(),
            ));
        }
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| invalid(error_chain(&e)))?
            .connect_timeout(self.connect_timeout);
        match (&self.tls_ca, https) {
            (Some(ca), true) => {
                let tls = crate::tls::client_tls(ca)?;
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| Error::Tls(error_chain(&e)))?;
            }
            (None, true) => {
                return Err(invalid(
                    "https needs the certificate authority that signed the server's \
                     certificate (--tls-ca)"
                        .into(),
                ));
            }
            (Some(_), false) => return Err(invalid("--tls-ca needs an https:// URL".into())),
            (None, false) => {}
        }
        Ok(endpoint)
    }
}

type Inner = JobControlClient<InterceptedService<Channel, AttachToken>>;

/// An async client of one job's control API.
#[derive(Clone, Debug)]
pub struct ControlClient {
    inner: Inner,
    url: String,
}

impl ControlClient {
    /// Connect now, so a wrong address fails here with the reason.
    pub async fn connect(config: &ClientConfig) -> Result<ControlClient> {
        let endpoint = config.endpoint()?;
        let channel = endpoint.connect().await.map_err(|e| Error::Connect {
            url: config.url.clone(),
            detail: error_chain(&e),
        })?;
        let attach = AttachToken::new(config.token.as_ref())?;
        Ok(ControlClient {
            inner: JobControlClient::with_interceptor(channel, attach),
            url: config.url.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn job(&mut self) -> Result<Job> {
        let answer = self.inner.get_job(pb::GetJobRequest {}).await;
        let job = answer.map_err(|s| Error::from_status(&self.url, s))?;
        decode(&self.url, convert::job_from_proto(job.into_inner()))
    }

    pub async fn checkpoints(&mut self) -> Result<Checkpoints> {
        let answer = self
            .inner
            .list_checkpoints(pb::ListCheckpointsRequest {})
            .await;
        let checkpoints = answer.map_err(|s| Error::from_status(&self.url, s))?;
        decode(
            &self.url,
            convert::checkpoints_from_proto(checkpoints.into_inner()),
        )
    }

    /// Start a savepoint; the answer is its trigger id (poll it with [`Self::savepoint`]).
    pub async fn trigger_savepoint(&mut self, request: SavepointRequest) -> Result<String> {
        let request = pb::TriggerSavepointRequest {
            dir: request.dir,
            stop: request.stop,
            request_id: request.request_id,
        };
        let answer = self.inner.trigger_savepoint(request).await;
        let answer = answer.map_err(|s| Error::from_status(&self.url, s))?;
        Ok(answer.into_inner().trigger_id)
    }

    pub async fn savepoint(&mut self, trigger_id: &str) -> Result<Savepoint> {
        let request = pb::GetSavepointRequest {
            trigger_id: trigger_id.to_string(),
        };
        let answer = self.inner.get_savepoint(request).await;
        let savepoint = answer.map_err(|s| Error::from_status(&self.url, s))?;
        decode(
            &self.url,
            convert::savepoint_from_proto(savepoint.into_inner()),
        )
    }

    pub async fn cancel(&mut self) -> Result<Job> {
        let answer = self.inner.cancel_job(pb::CancelJobRequest {}).await;
        let job = answer.map_err(|s| Error::from_status(&self.url, s))?;
        decode(&self.url, convert::job_from_proto(job.into_inner()))
    }

    /// Whether the job `sql` with `settings` could restore the running job's state.
    pub async fn check_compatibility(
        &mut self,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility> {
        let request = pb::CheckCompatibilityRequest {
            sql: sql.to_string(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let answer = self.inner.check_compatibility(request).await;
        let answer = answer
            .map_err(|s| Error::from_status(&self.url, s))?
            .into_inner();
        Ok(Compatibility {
            compatible: answer.compatible,
            problems: answer.problems,
        })
    }

    /// Delete the savepoint at `path` (an already deleted one is fine).
    pub async fn dispose_savepoint(&mut self, path: &str) -> Result<()> {
        let request = pb::DisposeSavepointRequest {
            path: path.to_string(),
        };
        let answer = self.inner.dispose_savepoint(request).await;
        answer.map_err(|s| Error::from_status(&self.url, s))?;
        Ok(())
    }
}

/// A [`ControlClient`] for synchronous code, on a runtime of its own.
pub struct BlockingClient {
    runtime: tokio::runtime::Runtime,
    client: ControlClient,
}

impl BlockingClient {
    pub fn connect(config: &ClientConfig) -> Result<BlockingClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        let client = runtime.block_on(ControlClient::connect(config))?;
        Ok(BlockingClient { runtime, client })
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    pub fn job(&mut self) -> Result<Job> {
        self.runtime.block_on(self.client.job())
    }

    pub fn checkpoints(&mut self) -> Result<Checkpoints> {
        self.runtime.block_on(self.client.checkpoints())
    }

    pub fn trigger_savepoint(&mut self, request: SavepointRequest) -> Result<String> {
        self.runtime
            .block_on(self.client.trigger_savepoint(request))
    }

    pub fn savepoint(&mut self, trigger_id: &str) -> Result<Savepoint> {
        self.runtime.block_on(self.client.savepoint(trigger_id))
    }

    pub fn cancel(&mut self) -> Result<Job> {
        self.runtime.block_on(self.client.cancel())
    }

    pub fn check_compatibility(
        &mut self,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility> {
        self.runtime
            .block_on(self.client.check_compatibility(sql, settings))
    }

    pub fn dispose_savepoint(&mut self, path: &str) -> Result<()> {
        self.runtime.block_on(self.client.dispose_savepoint(path))
    }
}
