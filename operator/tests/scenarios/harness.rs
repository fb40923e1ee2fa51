//! The scenario harness: the API stand-in with the FlinkJob CRD, the real controller running
//! against it with the simulated job, and fixture builders that read as sentences
//! (`flink_job("orders").with_parallelism(2).in_savepoint_mode()`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use weir_apiserver_standin::ApiServerStandin;
use weir_crds::{FlinkJob, FlinkJobSpec, LifecycleState, UpgradeMode};
use weir_operator::controller::{self, Context, Settings};
use weir_operator::observe::PlanSettings;
use weir_operator::process::metrics::Metrics;

use crate::fake_job::FakeJobs;

/// Generous: scenario steps take milliseconds, but CI machines stall.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Harness {
    pub standin: ApiServerStandin,
    pub client: Client,
    pub fake: Arc<FakeJobs>,
    pub metrics: Arc<Metrics>,
    controller: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// A stand-in with the CRD and a running controller.
    pub async fn start() -> Self {
        let standin = ApiServerStandin::new();
        standin.register_crd(&weir_crds::crd()).unwrap();
        let client = standin.client();
        let fake = Arc::new(FakeJobs::new(standin.clone()));
        let mut harness = Harness {
            standin,
            client,
            fake,
            metrics: Arc::new(Metrics::new()),
            controller: None,
        };
        harness.start_controller();
        harness
    }

    /// Starts a controller (a fresh one: new context, new event recorder).
    pub fn start_controller(&mut self) {
        let settings = Settings {
            plan: PlanSettings {
                stable_after: Duration::ZERO,
                resync: Duration::from_millis(200),
            },
            poll: Duration::from_millis(20),
            error_backoff: Duration::from_millis(50),
        };
        let ctx = Arc::new(Context::new(
            self.client.clone(),
            self.fake.clone(),
            settings,
            self.metrics.clone(),
        ));
        self.controller = Some(tokio::spawn(async move {
            controller::run(ctx, Some("default")).await;
        }));
    }

    /// Drops the controller wherever it is (as a killed operator pod).
    pub async fn kill_controller(&mut self) {
        if let Some(handle) = self.controller.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    fn api(&self) -> Api<FlinkJob> {
        Api::default_namespaced(self.client.clone())
    }

    pub async fn create(&self, job: FlinkJob) {
        self.api()
            .create(&PostParams::default(), &job)
            .await
            .unwrap();
    }

    /// Changes the spec (retrying conflicts with the controller's writes).
    pub async fn change(&self, name: &str, f: impl Fn(&mut FlinkJobSpec)) {
        for _ in 0..20 {
            let mut job = self.api().get(name).await.unwrap();
            f(&mut job.spec);
            match self.api().replace(name, &PostParams::default(), &job).await {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("cannot change {name}: {e}"),
            }
        }
        panic!("cannot change {name}: conflicts");
    }

    pub async fn delete(&self, name: &str) {
        self.api()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    pub fn get(&self, name: &str) -> Option<FlinkJob> {
        self.standin.get(Some("default"), name).unwrap()
    }

    /// Waits until the FlinkJob satisfies `what`; on timeout fails with its status.
    pub async fn wait_until(
        &self,
        name: &str,
        what: &str,
        f: impl Fn(&FlinkJob) -> bool,
    ) -> FlinkJob {
        let found = self
            .standin
            .wait_for::<FlinkJob>(WAIT, |jobs| {
                jobs.iter().any(|j| j.name_any() == name && f(j))
            })
            .await;
        match found {
            Ok(jobs) => jobs.into_iter().find(|j| j.name_any() == name).unwrap(),
            Err(_) => panic!(
                "{name} never became {what}; status: {:#?}\ncalls: {:?}",
                self.get(name).and_then(|j| j.status),
                self.fake.calls()
            ),
        }
    }

    /// Waits until the FlinkJob runs generation `generation` stably and is Ready.
    pub async fn wait_stable(&self, name: &str, generation: i64) -> FlinkJob {
        self.wait_until(name, &format!("Stable at generation {generation}"), |j| {
            let Some(s) = &j.status else { return false };
            s.lifecycle_state == LifecycleState::Stable
                && s.observed_generation == Some(generation)
                && s.upgrade.is_none()
                && s.is_condition_true(weir_crds::ConditionType::Ready)
        })
        .await
    }

    pub async fn wait_lifecycle(&self, name: &str, state: LifecycleState) -> FlinkJob {
        self.wait_until(name, state.as_str(), |j| {
            j.status
                .as_ref()
                .is_some_and(|s| s.lifecycle_state == state)
        })
        .await
    }

    pub fn coordinator(&self, name: &str) -> Option<Deployment> {
        self.standin
            .get(Some("default"), &format!("{name}-coordinator"))
            .unwrap()
    }

    pub fn workers(&self, name: &str) -> Option<StatefulSet> {
        self.standin
            .get(Some("default"), &format!("{name}-workers"))
            .unwrap()
    }

    /// The coordinator's command line.
    pub fn coordinator_args(&self, name: &str) -> Vec<String> {
        let deployment = self.coordinator(name).expect("coordinator Deployment");
        deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap_or_default()
    }

    /// The value after `flag` on the coordinator's command line.
    pub fn coordinator_arg(&self, name: &str, flag: &str) -> Option<String> {
        let args = self.coordinator_args(name);
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
    }

    pub fn workers_replicas(&self, name: &str) -> Option<i32> {
        self.workers(name)
            .and_then(|s| s.spec)
            .and_then(|s| s.replicas)
    }

    /// Waits until an event with this reason was published (events follow the status write
    /// that records the step).
    pub async fn wait_event(&self, reason: &str) {
        let found = self
            .standin
            .wait_for::<Event>(WAIT, |events| {
                events.iter().any(|e| e.reason.as_deref() == Some(reason))
            })
            .await;
        assert!(
            found.is_ok(),
            "no {reason} event in {:?}",
            self.event_reasons()
        );
    }

    /// Reasons of the events published so far.
    pub fn event_reasons(&self) -> Vec<String> {
        self.standin
            .objects::<Event>()
            .unwrap()
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(handle) = self.controller.take() {
            handle.abort();
        }
    }
}

/// A FlinkJob named `name`: inline SQL, parallelism 2, checkpoint and savepoint dirs,
/// stateless.
pub fn flink_job(name: &str) -> FlinkJob {
    let spec: FlinkJobSpec = serde_json::from_value(serde_json::json!({
        "image": "weir:1",
        "job": {"sql": "INSERT INTO out SELECT * FROM src;", "parallelism": 2},
        "checkpointing": {"dir": "s3://bucket/chk"},
        "savepoints": {"dir": "s3://bucket/sp"}
    }))
    .unwrap();
    FlinkJob::new(name, spec)
}

/// Sentence-like changes to a FlinkJob.
pub trait JobFixture: Sized {
    fn spec_mut(&mut self) -> &mut FlinkJobSpec;
    fn with_parallelism(mut self, parallelism: i32) -> Self {
        self.spec_mut().job.parallelism = parallelism;
        self
    }
    fn with_slots(mut self, slots: i32) -> Self {
        self.spec_mut().workers.slots = slots;
        self
    }
    fn in_savepoint_mode(mut self) -> Self {
        self.spec_mut().job.upgrade_mode = UpgradeMode::Savepoint;
        self
    }
    fn in_last_state_mode(mut self) -> Self {
        self.spec_mut().job.upgrade_mode = UpgradeMode::LastState;
        self
    }
    fn with_readiness_timeout(mut self, timeout: &str) -> Self {
        self.spec_mut().rollback.readiness_timeout = timeout.into();
        self
    }
}

impl JobFixture for FlinkJob {
    fn spec_mut(&mut self) -> &mut FlinkJobSpec {
        &mut self.spec
    }
}
