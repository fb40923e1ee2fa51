//! The seam between the control API and the job: domain code implements [`JobControl`]; the
//! server calls it for both the gRPC service (here, [`GrpcService`]) and the JSON routes
//! (`crate::http`), so both always give the same answers.
//!
//! The engine is thread-based, so the trait is synchronous; the server calls it on tokio's
//! blocking pool, which keeps a slow answer (a lock held by a checkpoint) off the async
//! workers. Implementations should still answer quickly: a savepoint is triggered, never
//! waited for.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::control as pb;
use crate::convert;
use crate::error::{Error, Result};
use crate::model::{Checkpoints, Compatibility, Job, Savepoint, SavepointRequest};

/// What a running job answers. Errors use [`Error::NotFound`], [`Error::Rejected`],
/// [`Error::Unavailable`] and [`Error::InvalidRequest`], which become the matching HTTP
/// statuses and gRPC codes.
pub trait JobControl: Send + Sync + 'static {
    /// The job's state and metrics.
    fn job(&self) -> Result<Job>;

    /// Checkpoint counts, the latest completed one, and the recent history.
    fn checkpoints(&self) -> Result<Checkpoints>;

    /// Start a savepoint and return its trigger id at once (the savepoint completes later).
    /// A request whose `request_id` the job has seen before starts nothing and answers the
    /// first trigger's id.
    fn trigger_savepoint(&self, request: SavepointRequest) -> Result<String>;

    /// Where the savepoint started under `trigger_id` stands; [`Error::NotFound`] for an id
    /// this job never gave out.
    fn savepoint(&self, trigger_id: &str) -> Result<Savepoint>;

    /// Cancel the job (no savepoint); answers with the job as it is right after the request.
    fn cancel(&self) -> Result<Job>;

    /// Whether the job `sql` with `settings` (as `--set` gives them) could restore this job's
    /// state. A script that does not plan is an answer (`compatible: false`, the error as a
    /// problem), not an error.
    fn check_compatibility(
        &self,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility> {
        let _ = (sql, settings);
        Err(Error::Unimplemented(
            "this job cannot check compatibility".into(),
        ))
    }

    /// Delete the savepoint at `path`; refuse ([`Error::Rejected`]) anything that is not a
    /// savepoint. A savepoint that is already gone is disposed.
    fn dispose_savepoint(&self, path: &str) -> Result<()> {
        let _ = path;
        Err(Error::Unimplemented(
            "this job cannot dispose savepoints".into(),
        ))
    }
}

/// Call `f` on the blocking pool.
pub(crate) async fn call<T, F>(control: &Arc<dyn JobControl>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn JobControl) -> Result<T> + Send + 'static,
{
    let control = control.clone();
    tokio::task::spawn_blocking(move || f(control.as_ref()))
        .await
        .map_err(|e| Error::Unavailable(format!("the job control call did not finish: {e}")))?
}

/// The generated `weir.control.v1.JobControl` service over a [`JobControl`].
pub struct GrpcService {
    control: Arc<dyn JobControl>,
}

impl GrpcService {
    pub fn new(control: Arc<dyn JobControl>) -> Self {
        GrpcService { control }
    }

    /// The tonic service, ready for a server or a `Routes`.
    pub fn into_server(self) -> pb::job_control_server::JobControlServer<GrpcService> {
        pb::job_control_server::JobControlServer::new(self)
    }
}

type Answer<T> = std::result::Result<tonic::Response<T>, tonic::Status>;

fn answer<T>(result: Result<T>) -> Answer<T> {
    result.map(tonic::Response::new).map_err(|e| e.to_status())
}

#[tonic::async_trait]
impl pb::job_control_server::JobControl for GrpcService {
    async fn get_job(&self, _: tonic::Request<pb::GetJobRequest>) -> Answer<pb::Job> {
        answer(
            call(&self.control, |c| c.job())
                .await
                .map(convert::job_to_proto),
        )
    }

    async fn list_checkpoints(
        &self,
        _: tonic::Request<pb::ListCheckpointsRequest>,
    ) -> Answer<pb::Checkpoints> {
        answer(
            call(&self.control, |c| c.checkpoints())
                .await
                .map(convert::checkpoints_to_proto),
        )
    }

    async fn trigger_savepoint(
        &self,
        request: tonic::Request<pb::TriggerSavepointRequest>,
    ) -> Answer<pb::TriggerSavepointResponse> {
        let request = request.into_inner();
        let request = SavepointRequest {
            dir: request.dir.filter(|d| !d.is_empty()),
            stop: request.stop,
            request_id: request.request_id.filter(|r| !r.is_empty()),
        };
        answer(
            call(&self.control, move |c| c.trigger_savepoint(request))
                .await
                .map(|trigger_id| pb::TriggerSavepointResponse { trigger_id }),
        )
    }

    async fn get_savepoint(
        &self,
        request: tonic::Request<pb::GetSavepointRequest>,
    ) -> Answer<pb::Savepoint> {
        let trigger_id = request.into_inner().trigger_id;
        answer(
            call(&self.control, move |c| c.savepoint(&trigger_id))
                .await
                .map(convert::savepoint_to_proto),
        )
    }

    async fn cancel_job(&self, _: tonic::Request<pb::CancelJobRequest>) -> Answer<pb::Job> {
        answer(
            call(&self.control, |c| c.cancel())
                .await
                .map(convert::job_to_proto),
        )
    }

    async fn check_compatibility(
        &self,
        request: tonic::Request<pb::CheckCompatibilityRequest>,
    ) -> Answer<pb::Compatibility> {
        let request = request.into_inner();
        let settings: BTreeMap<String, String> = request.settings.into_iter().collect();
        answer(
            call(&self.control, move |c| {
                c.check_compatibility(&request.sql, &settings)
            })
            .await
            .map(|c| pb::Compatibility {
                compatible: c.compatible,
                problems: c.problems,
            }),
        )
    }

    async fn dispose_savepoint(
        &self,
        request: tonic::Request<pb::DisposeSavepointRequest>,
    ) -> Answer<pb::DisposeSavepointResponse> {
        let path = request.into_inner().path;
        answer(
            call(&self.control, move |c| c.dispose_savepoint(&path))
                .await
                .map(|()| pb::DisposeSavepointResponse {}),
        )
    }
}
