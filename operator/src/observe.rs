//! Observe: everything reconcile decides from, read in one place. The FlinkJob is read afresh
//! from the API server (not the watch cache, which may not hold the status this controller
//! wrote a moment ago), then its children, the SQL it references, and — when a coordinator
//! should be up — the job's status, the savepoint in flight and, before an upgrade that keeps
//! state, whether the new job can restore it. The result is plain data ([`Observed`]) for the
//! pure [`crate::plan`].

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Client, ResourceExt};
use weir_crds::{FlinkJob, FlinkJobSpec, FlinkJobStatus, RuntimeJobState};

use crate::children::{Names, api_url, secret::token_of};
use crate::error::{Error, JobControlFailure, Result};
use crate::job_client::{
    Compatibility, JobClient, JobTarget, RuntimeCheckpoint, RuntimeJob, SavepointProgress,
};
use crate::plan;

/// Knobs of the plan that are not in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSettings {
    /// How long a newly deployed job must run before it counts as Stable (capped by the spec's
    /// rollback.readinessTimeout).
    pub stable_after: Duration,
    /// How often a settled job is looked at again (job status, checkpoints, periodic savepoints).
    pub resync: Duration,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            stable_after: Duration::from_secs(10),
            resync: Duration::from_secs(30),
        }
    }
}

/// What the coordinator said about the job.
#[derive(Clone, Debug, PartialEq)]
pub enum Runtime {
    /// No coordinator is deployed (or the job is suspended): nothing was asked.
    NotDeployed,
    /// A coordinator is deployed but did not answer.
    Unreachable(String),
    /// The job's status.
    Job(RuntimeJob),
}

impl Runtime {
    /// The job, when it answered.
    pub fn job(&self) -> Option<&RuntimeJob> {
        match self {
            Runtime::Job(job) => Some(job),
            _ => None,
        }
    }

    /// Whether the job answered and runs.
    pub fn is_running(&self) -> bool {
        self.job()
            .is_some_and(|j| j.state == RuntimeJobState::Running)
    }

    /// Whether the job answered and has not ended (a cancel or stop can still reach it).
    pub fn is_alive(&self) -> bool {
        self.job().is_some_and(|j| !j.state.is_terminal())
    }
}

/// The poll of the savepoint trigger recorded in the status (the upgrade's, else the pending
/// one's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SavepointObservation {
    /// The coordinator answered.
    Progress(SavepointProgress),
    /// The coordinator does not know the trigger id (it restarted and lost it).
    Unknown,
    /// The coordinator did not answer.
    Unreachable,
}

/// Everything the plan decides from.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The FlinkJob's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid (part of job ids and savepoint request ids).
    pub uid: String,
    /// Its metadata.generation.
    pub generation: i64,
    /// The spec as the user wrote it.
    pub spec: FlinkJobSpec,
    /// The status as last written.
    pub status: FlinkJobStatus,
    /// metadata.deletionTimestamp, when it is being deleted.
    pub deletion: Option<Time>,
    /// Whether the coordinator Deployment exists.
    pub coordinator_exists: bool,
    /// Whether the operator's job ConfigMap exists.
    pub job_config_map_exists: bool,
    /// SQL read from job.sqlConfigMap references, by (ConfigMap name, key): the text, or why
    /// it could not be read.
    pub sql_config_maps: BTreeMap<(String, String), std::result::Result<String, String>>,
    /// The job as its coordinator reports it.
    pub runtime: Runtime,
    /// The latest completed checkpoint.
    pub checkpoint: Option<RuntimeCheckpoint>,
    /// The savepoint trigger in flight, polled.
    pub savepoint: Option<SavepointObservation>,
    /// Whether the changed spec can restore the running job's state (asked only before an
    /// upgrade that keeps state; `None` when not asked or the coordinator cannot tell).
    pub compatibility: Option<Compatibility>,
    /// The time of this reconcile.
    pub now: Time,
    /// Knobs not in the spec.
    pub settings: PlanSettings,
}

/// Reads everything for one FlinkJob. Returns `None` when it no longer exists.
pub async fn observe(
    client: &Client,
    jobs: &dyn JobClient,
    job: &FlinkJob,
    settings: PlanSettings,
) -> Result<Option<(FlinkJob, Observed, Option<JobTarget>)>> {
    let namespace = job.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let name = job.name_any();
    let api: Api<FlinkJob> = Api::namespaced(client.clone(), &namespace);
    let Some(fresh) = api
        .get_opt(&name)
        .await
        .map_err(|source| Error::GetFlinkJob {
            name: name.clone(),
            source,
        })?
    else {
        return Ok(None);
    };
    let uid = fresh.uid().ok_or(Error::MissingMetadata("uid"))?;
    let status = fresh.status.clone().unwrap_or_default();
    let names = Names::of(&name);

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let coordinator_exists = get_child(&deployments, "Deployment", &names.coordinator)
        .await?
        .is_some();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let job_config_map_exists = get_child(&config_maps, "ConfigMap", &names.config_map)
        .await?
        .is_some();
    let sql_config_maps = read_sql_config_maps(&config_maps, &fresh.spec, &status).await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let token = get_child(&secrets, "Secret", &names.secret)
        .await?
        .as_ref()
        .and_then(token_of);
    let target = token.map(|token| JobTarget {
        namespace: namespace.clone(),
        name: name.clone(),
        url: api_url(&name, &namespace),
        token,
    });

    let mut observed = Observed {
        name,
        namespace,
        uid,
        generation: fresh.metadata.generation.unwrap_or_default(),
        spec: fresh.spec.clone(),
        status,
        deletion: fresh.metadata.deletion_timestamp.clone(),
        coordinator_exists,
        job_config_map_exists,
        sql_config_maps,
        runtime: Runtime::NotDeployed,
        checkpoint: None,
        savepoint: None,
        compatibility: None,
        now: Time(k8s_openapi::jiff::Timestamp::now()),
        settings,
    };
    if let (true, Some(target)) = (coordinator_exists, &target) {
        observe_job(jobs, target, &mut observed).await?;
    }
    Ok(Some((fresh, observed, target)))
}

async fn get_child<K>(api: &Api<K>, kind: &'static str, name: &str) -> Result<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|source| Error::ReadChild {
        kind,
        name: name.to_owned(),
        source,
    })
}

/// Reads the SQL of every job.sqlConfigMap the plan may deploy: the current spec's, the
/// in-flight upgrade's target's and the last stable spec's.
async fn read_sql_config_maps(
    api: &Api<ConfigMap>,
    spec: &FlinkJobSpec,
    status: &FlinkJobStatus,
) -> Result<BTreeMap<(String, String), std::result::Result<String, String>>> {
    let mut refs = vec![spec.job.sql_config_map.clone()];
    if let Some(upgrade) = &status.upgrade
        && let Ok(target) = FlinkJobSpec::from_snapshot(&upgrade.target_spec)
    {
        refs.push(target.job.sql_config_map);
    }
    if let Ok(Some(stable)) = status.last_stable_spec() {
        refs.push(stable.job.sql_config_map);
    }
    let mut out = BTreeMap::new();
    for reference in refs.into_iter().flatten() {
        let key = (reference.name.clone(), reference.key.clone());
        if out.contains_key(&key) {
            continue;
        }
        let found =
            api.get_opt(&reference.name)
                .await
                .map_err(|source| Error::ReadSqlConfigMap {
                    name: reference.name.clone(),
                    source,
                })?;
        let sql = match found {
            None => Err(format!(
                "ConfigMap {} (job.sqlConfigMap) does not exist",
                reference.name
            )),
            Some(cm) => cm
                .data
                .and_then(|d| d.get(&reference.key).cloned())
                .ok_or_else(|| {
                    format!(
                        "ConfigMap {} has no key {:?} (job.sqlConfigMap.key)",
                        reference.name, reference.key
                    )
                }),
        };
        out.insert(key, sql);
    }
    Ok(out)
}

/// Asks the coordinator about the job; an unreachable coordinator is an observation, not an
/// error (the plan decides what it means), other failures end this reconcile for a retry.
async fn observe_job(jobs: &dyn JobClient, target: &JobTarget, o: &mut Observed) -> Result<()> {
    let unreachable = |e: &Error| e.job_control_failure() == Some(JobControlFailure::Unreachable);
    o.runtime = match jobs.job(target).await {
        Ok(job) => Runtime::Job(job),
        Err(e) if unreachable(&e) => Runtime::Unreachable(e.to_string()),
        Err(e) => return Err(e),
    };
    if !matches!(o.runtime, Runtime::Job(_)) {
        o.savepoint = in_flight_trigger(&o.status).map(|_| SavepointObservation::Unreachable);
        return Ok(());
    }
    o.checkpoint = match jobs.latest_checkpoint(target).await {
        Ok(checkpoint) => checkpoint,
        Err(e) if unreachable(&e) => None,
        Err(e) => return Err(e),
    };
    if let Some(trigger_id) = in_flight_trigger(&o.status) {
        o.savepoint = Some(match jobs.savepoint(target, trigger_id).await {
            Ok(progress) => SavepointObservation::Progress(progress),
            Err(e) if e.job_control_failure() == Some(JobControlFailure::NotFound) => {
                SavepointObservation::Unknown
            }
            Err(e) if unreachable(&e) => SavepointObservation::Unreachable,
            Err(e) => return Err(e),
        });
    }
    if plan::needs_compatibility_check(o) {
        let sql = plan::sql_of(o, &o.spec).ok();
        if let Some(sql) = sql {
            // The coordinator gets `--max-parallelism` from `spec.job`, not from `config`:
            // send it too, so a changed maxParallelism is checked as the restore will see it.
            let mut settings = o.spec.config.clone();
            settings.insert(
                "pipeline.max-parallelism".to_owned(),
                o.spec.job.max_parallelism.to_string(),
            );
            o.compatibility = match jobs.check_compatibility(target, &sql, &settings).await {
                Ok(answer) => Some(answer),
                // An older coordinator cannot tell; the upgrade goes ahead as Flink's would
                // (the restore then fails unless allowNonRestoredState) and the logs say so.
                Err(e) if e.job_control_failure() == Some(JobControlFailure::Unsupported) => {
                    tracing::info!(error = %e, "compatibility check not available; upgrading without it");
                    None
                }
                Err(e) => return Err(e),
            };
        }
    }
    Ok(())
}

/// The trigger id observe polls: the upgrade's, else the pending savepoint's.
fn in_flight_trigger(status: &FlinkJobStatus) -> Option<&str> {
    status
        .upgrade
        .as_ref()
        .and_then(|u| u.savepoint_trigger_id.as_deref())
        .or(status
            .pending_savepoint
            .as_ref()
            .map(|p| p.trigger_id.as_str()))
}
