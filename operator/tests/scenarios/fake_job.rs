//! A simulated job behind the [`JobClient`] trait, for scenario tests: it "runs" what the
//! coordinator Deployment in the stand-in says (job id, parallelism, image), and answers like a
//! coordinator would — running once the Deployment exists, restarted when its pod template
//! changes, savepoints completing after a number of polls (stopping the job when asked),
//! triggers deduplicated by request id. Every call is logged so tests can assert that no
//! savepoint was taken twice. Knobs hold savepoints or the job's start, fail images, lose
//! an answer, or report an incompatible plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use weir_apiserver_standin::ApiServerStandin;
use weir_crds::RuntimeJobState;
use weir_operator::error::{Error, JobControlFailure, Result};
use weir_operator::job_client::{
    Compatibility, JobClient, JobTarget, RuntimeCheckpoint, RuntimeJob, SavepointProgress,
};

/// One call the controller made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Job,
    Checkpoints,
    Trigger {
        request_id: String,
        stop: bool,
        started: bool,
    },
    Poll(String),
    Cancel,
    Check,
    Dispose(String),
}

struct SimJob {
    template: Value,
    id: String,
    parallelism: i32,
    image: String,
    state: RuntimeJobState,
    start_ms: i64,
    checkpoints: i64,
}

struct SimSavepoint {
    job: (String, String),
    polls_left: u32,
    path: String,
    stop: bool,
}

#[derive(Default)]
struct State {
    jobs: HashMap<(String, String), SimJob>,
    savepoints: HashMap<String, SimSavepoint>,
    by_request: HashMap<String, String>,
    calls: Vec<Call>,
    next: u64,
    hold_savepoints: bool,
    hold_running: bool,
    failing_images: BTreeSet<String>,
    lose_next_trigger_answer: bool,
    refuse_triggers: bool,
    incompatible: Option<Vec<String>>,
}

/// The simulated job(s).
pub struct FakeJobs {
    standin: ApiServerStandin,
    polls_per_savepoint: u32,
    state: Mutex<State>,
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}

fn failure(operation: &'static str, failure: JobControlFailure, message: &str) -> Error {
    Error::JobControl {
        operation,
        url: "fake".into(),
        failure,
        message: message.into(),
    }
}

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

impl FakeJobs {
    pub fn new(standin: ApiServerStandin) -> Self {
        FakeJobs {
            standin,
            polls_per_savepoint: 2,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Savepoints actually started (a deduplicated trigger starts none).
    pub fn savepoints_started(&self) -> Vec<(String, bool)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Trigger {
                    request_id,
                    stop,
                    started: true,
                } => Some((request_id, stop)),
                _ => None,
            })
            .collect()
    }

    pub fn disposed(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Dispose(path) => Some(path),
                _ => None,
            })
            .collect()
    }

    pub fn hold_savepoints(&self, hold: bool) {
        self.lock().hold_savepoints = hold;
    }

    pub fn hold_running(&self, hold: bool) {
        self.lock().hold_running = hold;
    }

    /// Jobs with this image fail at once (a broken release).
    pub fn fail_image(&self, image: &str) {
        self.lock().failing_images.insert(image.to_owned());
    }

    /// The next new savepoint starts, but its answer is lost (as when the operator dies
    /// right after sending the request).
    pub fn lose_next_trigger_answer(&self) {
        self.lock().lose_next_trigger_answer = true;
    }

    /// Triggers fail before anything starts (the coordinator is briefly unreachable).
    pub fn refuse_triggers(&self, refuse: bool) {
        self.lock().refuse_triggers = refuse;
    }

    pub fn report_incompatible(&self, problems: &[&str]) {
        self.lock().incompatible = Some(problems.iter().map(|p| (*p).to_owned()).collect());
    }

    /// Brings the simulated job in line with the coordinator Deployment in the stand-in.
    fn sync(&self, target: &JobTarget, state: &mut State) -> Result<()> {
        let key = (target.namespace.clone(), target.name.clone());
        let secret: Option<Secret> = self
            .standin
            .get(Some(&target.namespace), &format!("{}-token", target.name))
            .unwrap();
        let token = secret
            .and_then(|s| s.data)
            .and_then(|d| d.get("token").cloned())
            .map(|t| String::from_utf8(t.0).unwrap());
        if token.as_deref() != Some(target.token.as_str()) {
            return Err(failure(
                "job",
                JobControlFailure::Other,
                "401: the token was refused",
            ));
        }
        let deployment: Option<Deployment> = self
            .standin
            .get(
                Some(&target.namespace),
                &format!("{}-coordinator", target.name),
            )
            .unwrap();
        let Some(deployment) = deployment else {
            state.jobs.remove(&key);
            return Err(failure(
                "job",
                JobControlFailure::Unreachable,
                "connection refused",
            ));
        };
        let template = serde_json::to_value(&deployment.spec.as_ref().unwrap().template).unwrap();
        let restarted = state.jobs.get(&key).is_none_or(|j| j.template != template);
        if restarted {
            let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
            let args = container.args.clone().unwrap_or_default();
            let image = container.image.clone().unwrap_or_default();
            let state_now = if state.failing_images.contains(&image) {
                RuntimeJobState::Failed
            } else {
                RuntimeJobState::Created
            };
            state.jobs.insert(
                key.clone(),
                SimJob {
                    template,
                    id: arg(&args, "--job-id").unwrap_or_default(),
                    parallelism: arg(&args, "--parallelism").unwrap().parse().unwrap(),
                    image,
                    state: state_now,
                    start_ms: now_ms(),
                    checkpoints: 0,
                },
            );
        }
        let hold = state.hold_running;
        let slots = self.worker_slots(target);
        let job = state.jobs.get_mut(&key).unwrap();
        // Like the coordinator: tasks are scheduled once the workers offer enough slots.
        if job.state == RuntimeJobState::Created && !hold && slots >= job.parallelism {
            job.state = RuntimeJobState::Running;
            job.start_ms = now_ms();
        }
        Ok(())
    }

    /// Slots the workers StatefulSet offers (replicas × `--slots`).
    fn worker_slots(&self, target: &JobTarget) -> i32 {
        let workers: Option<StatefulSet> = self
            .standin
            .get(Some(&target.namespace), &format!("{}-workers", target.name))
            .unwrap();
        let Some(spec) = workers.and_then(|w| w.spec) else {
            return 0;
        };
        let args = spec
            .template
            .spec
            .map(|p| p.containers[0].args.clone().unwrap_or_default())
            .unwrap_or_default();
        let slots: i32 = arg(&args, "--slots")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        spec.replicas.unwrap_or(1) * slots
    }

    fn job_of<'a>(&self, target: &JobTarget, state: &'a mut State) -> Result<&'a mut SimJob> {
        self.sync(target, state)?;
        Ok(state
            .jobs
            .get_mut(&(target.namespace.clone(), target.name.clone()))
            .unwrap())
    }
}

#[async_trait]
impl JobClient for FakeJobs {
    async fn job(&self, target: &JobTarget) -> Result<RuntimeJob> {
        let mut state = self.lock();
        state.calls.push(Call::Job);
        let job = self.job_of(target, &mut state)?;
        Ok(RuntimeJob {
            id: job.id.clone(),
            state: job.state,
            start_time_ms: job.start_ms,
            parallelism: job.parallelism,
            last_error: (job.state == RuntimeJobState::Failed)
                .then(|| format!("image {} crashed", job.image)),
        })
    }

    async fn latest_checkpoint(&self, target: &JobTarget) -> Result<Option<RuntimeCheckpoint>> {
        let mut state = self.lock();
        state.calls.push(Call::Checkpoints);
        let job = self.job_of(target, &mut state)?;
        if job.state != RuntimeJobState::Running {
            return Ok(None);
        }
        job.checkpoints += 1;
        Ok(Some(RuntimeCheckpoint {
            id: job.checkpoints,
            path: format!("s3://bucket/chk/{}/chk-{}", job.id, job.checkpoints),
            time_ms: now_ms(),
        }))
    }

    async fn trigger_savepoint(
        &self,
        target: &JobTarget,
        dir: Option<&str>,
        stop: bool,
        request_id: &str,
    ) -> Result<String> {
        let mut state = self.lock();
        if let Some(trigger) = state.by_request.get(request_id).cloned() {
            state.calls.push(Call::Trigger {
                request_id: request_id.into(),
                stop,
                started: false,
            });
            return Ok(trigger);
        }
        if state.refuse_triggers {
            state.calls.push(Call::Trigger {
                request_id: request_id.into(),
                stop,
                started: false,
            });
            return Err(failure(
                "trigger savepoint",
                JobControlFailure::Unreachable,
                "connection refused",
            ));
        }
        let job = self.job_of(target, &mut state)?;
        if job.state != RuntimeJobState::Running {
            return Err(failure(
                "trigger savepoint",
                JobControlFailure::Rejected,
                "the job is not running",
            ));
        }
        let job_id = job.id.clone();
        state.next += 1;
        let n = state.next;
        let trigger = format!("trigger-{n}");
        state.savepoints.insert(
            trigger.clone(),
            SimSavepoint {
                job: (target.namespace.clone(), target.name.clone()),
                polls_left: self.polls_per_savepoint,
                path: format!(
                    "{}/savepoint-{job_id}-{n}",
                    dir.unwrap_or("file:///default")
                ),
                stop,
            },
        );
        state
            .by_request
            .insert(request_id.to_owned(), trigger.clone());
        state.calls.push(Call::Trigger {
            request_id: request_id.into(),
            stop,
            started: true,
        });
        if std::mem::take(&mut state.lose_next_trigger_answer) {
            return Err(failure(
                "trigger savepoint",
                JobControlFailure::Unreachable,
                "connection reset before the answer",
            ));
        }
        Ok(trigger)
    }

    async fn savepoint(&self, _target: &JobTarget, trigger_id: &str) -> Result<SavepointProgress> {
        let mut state = self.lock();
        state.calls.push(Call::Poll(trigger_id.into()));
        let hold = state.hold_savepoints;
        let Some(savepoint) = state.savepoints.get_mut(trigger_id) else {
            return Err(failure(
                "get savepoint",
                JobControlFailure::NotFound,
                "unknown trigger id",
            ));
        };
        if hold {
            return Ok(SavepointProgress::InProgress);
        }
        if savepoint.polls_left > 0 {
            savepoint.polls_left -= 1;
            if savepoint.polls_left > 0 {
                return Ok(SavepointProgress::InProgress);
            }
            if savepoint.stop {
                let key = savepoint.job.clone();
                if let Some(job) = state.jobs.get_mut(&key) {
                    job.state = RuntimeJobState::Finished;
                }
            }
        }
        let path = state.savepoints[trigger_id].path.clone();
        Ok(SavepointProgress::Completed(path))
    }

    async fn cancel(&self, target: &JobTarget) -> Result<()> {
        let mut state = self.lock();
        state.calls.push(Call::Cancel);
        let job = self.job_of(target, &mut state)?;
        if job.state.is_terminal() {
            return Err(failure(
                "cancel",
                JobControlFailure::Rejected,
                "the job has ended",
            ));
        }
        job.state = RuntimeJobState::Canceled;
        Ok(())
    }

    async fn check_compatibility(
        &self,
        _target: &JobTarget,
        _sql: &str,
        _settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility> {
        let mut state = self.lock();
        state.calls.push(Call::Check);
        Ok(match &state.incompatible {
            Some(problems) => Compatibility {
                compatible: false,
                problems: problems.clone(),
            },
            None => Compatibility {
                compatible: true,
                problems: Vec::new(),
            },
        })
    }

    async fn dispose_savepoint(&self, _target: &JobTarget, path: &str) -> Result<()> {
        self.lock().calls.push(Call::Dispose(path.to_owned()));
        Ok(())
    }
}
