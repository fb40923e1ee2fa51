//! The FlinkJob manifests in `examples/k8s/` parse into the types with every value in the field
//! it was meant for, survive a round trip, and pass the CRD's validation.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;
use weir_crds::{FlinkJob, JobState, OnDeletePolicy, UpgradeMode};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/k8s")
}

/// The FlinkJob documents of one example file, as JSON values.
fn flinkjob_documents(file: &str) -> Vec<Value> {
    let path = examples_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    docs.into_iter()
        .filter(|d| d["kind"] == "FlinkJob")
        .collect()
}

fn example(file: &str) -> (FlinkJob, Value) {
    let mut docs = flinkjob_documents(file);
    assert_eq!(docs.len(), 1, "{file} holds one FlinkJob");
    let raw = docs.remove(0);
    let job: FlinkJob = serde_json::from_value(raw.clone()).unwrap();
    (job, raw)
}

/// Every key of `written` is present with the same value in `reread` (which may add defaults).
fn assert_contained(written: &Value, reread: &Value, path: &str) {
    match written {
        Value::Object(map) => {
            for (key, value) in map {
                let other = reread
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} lost in the round trip"));
                assert_contained(value, other, &format!("{path}.{key}"));
            }
        }
        _ => assert_eq!(written, reread, "{path} changed in the round trip"),
    }
}

#[test]
fn every_example_round_trips_without_losing_a_field() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if !file.ends_with(".yaml") {
            continue;
        }
        for raw in flinkjob_documents(&file) {
            let job: FlinkJob = serde_json::from_value(raw.clone()).unwrap();
            let reread = serde_json::to_value(&job).unwrap();
            assert_contained(&raw["spec"], &reread["spec"], &format!("{file}: spec"));
            assert_eq!(serde_json::from_value::<FlinkJob>(reread).unwrap(), job);
            job.spec
                .validate()
                .unwrap_or_else(|v| panic!("{file}: {v:?}"));
            seen += 1;
        }
    }
    assert!(
        seen >= 3,
        "expected at least 3 FlinkJob examples, found {seen}"
    );
}

#[test]
fn savepoint_example_lands_in_the_right_fields() {
    let (job, _) = example("nexmark-savepoint.yaml");
    let spec = &job.spec;
    assert_eq!(job.metadata.name.as_deref(), Some("nexmark-bids"));
    assert_eq!(spec.job.upgrade_mode, UpgradeMode::Savepoint);
    assert_eq!(spec.job.parallelism, 2);
    assert_eq!(spec.job.max_parallelism, 128, "default applied");
    assert!(
        spec.job
            .sql
            .as_deref()
            .unwrap()
            .contains("INSERT INTO bids_per_channel")
    );
    assert_eq!(
        spec.checkpointing.dir.as_deref(),
        Some("s3://my-weir-bucket/checkpoints")
    );
    assert_eq!(spec.checkpointing.retained, 3);
    assert_eq!(spec.checkpoint_interval().unwrap().as_secs(), 10);
    assert_eq!(
        spec.savepoints.dir.as_deref(),
        Some("s3://my-weir-bucket/savepoints")
    );
    assert_eq!(
        spec.periodic_savepoint_interval()
            .unwrap()
            .unwrap()
            .as_secs(),
        6 * 3600
    );
    assert_eq!(
        spec.savepoint_history_max_age().unwrap().unwrap().as_secs(),
        7 * 86_400
    );
    assert_eq!(spec.savepoint_history_max_count(), 5);
    assert_eq!(spec.savepoints.on_delete, OnDeletePolicy::Savepoint);
    assert!(spec.savepoint_on_delete());
    assert_eq!(spec.readiness_timeout().unwrap().as_secs(), 180);
    assert!(spec.rollback.enabled, "default applied");
    let secret = spec.env_from[0].secret_ref.as_ref().unwrap();
    assert_eq!(secret.name, "s3-credentials");
    assert_eq!(spec.env[0].name, "AWS_REGION");
    assert_eq!(spec.env[0].value.as_deref(), Some("eu-west-1"));
    let requests = spec
        .workers
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(requests["memory"].0, "2Gi");
    let coordinator = spec
        .coordinator
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(coordinator["cpu"].0, "250m");
    assert_eq!(spec.config["execution.checkpointing.timeout"], "5m");
    assert_eq!(spec.workers_replicas(), 2);
}

#[test]
fn stateless_example_gets_the_defaults() {
    let (job, _) = example("datagen-stateless.yaml");
    let spec = &job.spec;
    assert_eq!(spec.job.upgrade_mode, UpgradeMode::Stateless);
    assert_eq!(spec.job.state, JobState::Running);
    assert_eq!(spec.job.parallelism, 1);
    assert_eq!(spec.workers.slots, 1);
    assert_eq!(spec.workers_replicas(), 1);
    assert_eq!(spec.checkpoint_interval().unwrap().as_secs(), 30);
    assert!(spec.checkpointing.dir.is_none());
    assert!(
        !spec.savepoint_on_delete(),
        "no savepoint dir: nothing to write a savepoint to"
    );
    assert!(!spec.keeps_state());
}

#[test]
fn configmap_example_lands_in_the_right_fields() {
    let (job, raw) = example("configmap-last-state.yaml");
    let spec = &job.spec;
    let map = spec.job.sql_config_map.as_ref().unwrap();
    assert_eq!(
        (map.name.as_str(), map.key.as_str()),
        ("sensor-windows-sql", "job.sql")
    );
    assert!(spec.job.sql.is_none());
    assert_eq!(spec.job.upgrade_mode, UpgradeMode::LastState);
    assert_eq!(spec.job.max_parallelism, 256);
    assert_eq!(spec.service_account.as_deref(), Some("weir-jobs"));
    assert_eq!(spec.restart_nonce, Some(1));
    assert_eq!(spec.savepoints.delete_timeout.as_str(), "10m");
    assert_eq!(spec.workers.slots, 2);
    assert_eq!(spec.workers_replicas(), 2, "4 tasks in 2 slots per worker");
    let template = spec.workers.pod_template.as_ref().unwrap();
    assert_eq!(
        template, &raw["spec"]["workers"]["podTemplate"],
        "pod template kept verbatim"
    );
    assert_eq!(template["spec"]["tolerations"][0]["key"], "dedicated");

    // The ConfigMap in the same file holds the key the FlinkJob points at.
    let text = std::fs::read_to_string(examples_dir().join("configmap-last-state.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let config_map = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert_eq!(config_map["metadata"]["name"], "sensor-windows-sql");
    assert!(
        config_map["data"]["job.sql"]
            .as_str()
            .unwrap()
            .contains("INSERT INTO per_minute")
    );
}
