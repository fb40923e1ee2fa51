//! The CRD's validation rules (schema bounds, patterns and CEL rules) restated in Rust, for the
//! controller's validate step: an object that reached the operator without the API server's
//! checks (an older CRD installed, a test API stand-in) still gets a clear, field-named error
//! instead of a half-applied deployment. A test checks these agree with the CEL rules.

use std::fmt;

use crate::spec::{FlinkJobSpec, MAX_MAX_PARALLELISM, UpgradeMode};
use crate::storage::STORAGE_URI_PATTERN;

/// One broken rule: the manifest field path and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecViolation {
    /// Path of the field, e.g. `spec.job.parallelism`.
    pub field: &'static str,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for SpecViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl FlinkJobSpec {
    /// Checks every rule the CRD enforces on a spec on its own. Returns all violations.
    pub fn validate(&self) -> Result<(), Vec<SpecViolation>> {
        let mut out = Vec::new();
        let mut fail =
            |field: &'static str, message: String| out.push(SpecViolation { field, message });
        let job = &self.job;

        if self.image.is_empty() {
            fail("spec.image", "must not be empty".into());
        }
        if job.sql.is_some() == job.sql_config_map.is_some() {
            fail(
                "spec.job",
                "set exactly one of job.sql and job.sqlConfigMap".into(),
            );
        }
        if job.sql.as_deref() == Some("") {
            fail("spec.job.sql", "must not be empty".into());
        }
        if let Some(map) = &job.sql_config_map {
            if map.name.is_empty() {
                fail("spec.job.sqlConfigMap.name", "must not be empty".into());
            }
            if map.key.is_empty() {
                fail("spec.job.sqlConfigMap.key", "must not be empty".into());
            }
        }
        if job.parallelism < 1 {
            fail(
                "spec.job.parallelism",
                format!("must be at least 1, got {}", job.parallelism),
            );
        }
        if !(1..=MAX_MAX_PARALLELISM).contains(&job.max_parallelism) {
            fail(
                "spec.job.maxParallelism",
                format!(
                    "must be between 1 and {MAX_MAX_PARALLELISM}, got {}",
                    job.max_parallelism
                ),
            );
        }
        if job.parallelism > job.max_parallelism {
            fail(
                "spec.job.parallelism",
                format!(
                    "job.parallelism must not exceed job.maxParallelism ({} > {})",
                    job.parallelism, job.max_parallelism
                ),
            );
        }
        if job.initial_savepoint_path.as_deref() == Some("") {
            fail("spec.job.initialSavepointPath", "must not be empty".into());
        }
        if !(1..=1024).contains(&self.workers.slots) {
            fail(
                "spec.workers.slots",
                format!("must be between 1 and 1024, got {}", self.workers.slots),
            );
        }
        if !(1..=100).contains(&self.checkpointing.retained) {
            fail(
                "spec.checkpointing.retained",
                format!(
                    "must be between 1 and 100, got {}",
                    self.checkpointing.retained
                ),
            );
        }
        if !(1..=100).contains(&self.savepoints.history_max_count) {
            fail(
                "spec.savepoints.historyMaxCount",
                format!(
                    "must be between 1 and 100, got {}",
                    self.savepoints.history_max_count
                ),
            );
        }
        let durations = [
            (
                "spec.checkpointing.interval",
                Some(&self.checkpointing.interval),
            ),
            (
                "spec.savepoints.periodicInterval",
                self.savepoints.periodic_interval.as_ref(),
            ),
            (
                "spec.savepoints.historyMaxAge",
                self.savepoints.history_max_age.as_ref(),
            ),
            (
                "spec.savepoints.deleteTimeout",
                Some(&self.savepoints.delete_timeout),
            ),
            (
                "spec.rollback.readinessTimeout",
                Some(&self.rollback.readiness_timeout),
            ),
        ];
        for (field, value) in durations {
            if let Some(Err(err)) = value.map(|v| v.duration()) {
                fail(field, err.to_string());
            }
        }
        let dirs = [
            ("spec.checkpointing.dir", self.checkpointing.dir.as_deref()),
            ("spec.savepoints.dir", self.savepoints.dir.as_deref()),
        ];
        for (field, dir) in dirs {
            if let Some(dir) = dir.filter(|d| !is_storage_uri(d)) {
                fail(
                    field,
                    format!("{dir:?} is not a URI like s3://bucket/prefix ({STORAGE_URI_PATTERN})"),
                );
            }
        }
        let has_savepoint_dir = self.savepoints.dir.is_some();
        if job.upgrade_mode == UpgradeMode::Savepoint && !has_savepoint_dir {
            fail(
                "spec.savepoints.dir",
                "job.upgradeMode savepoint needs savepoints.dir: the upgrade savepoint is written there".into(),
            );
        }
        if job.upgrade_mode == UpgradeMode::LastState && self.checkpointing.dir.is_none() {
            fail(
                "spec.checkpointing.dir",
                "job.upgradeMode last-state needs checkpointing.dir: the upgrade restores the latest checkpoint found there".into(),
            );
        }
        if self.savepoints.periodic_interval.is_some() && !has_savepoint_dir {
            fail(
                "spec.savepoints.dir",
                "savepoints.periodicInterval needs savepoints.dir".into(),
            );
        }
        if job.savepoint_trigger_nonce.is_some() && !has_savepoint_dir {
            fail(
                "spec.savepoints.dir",
                "job.savepointTriggerNonce needs savepoints.dir: the manual savepoint is written there".into(),
            );
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    /// Checks the rules on a change from `old` (the CRD's transition rules) plus [`Self::validate`].
    pub fn validate_update(&self, old: &FlinkJobSpec) -> Result<(), Vec<SpecViolation>> {
        let mut out = self.validate().err().unwrap_or_default();
        if self.job.max_parallelism != old.job.max_parallelism
            && self.job.upgrade_mode != UpgradeMode::Stateless
        {
            out.push(SpecViolation {
                field: "spec.job.maxParallelism",
                message: format!(
                    "job.maxParallelism fixes how the job's state is split into key groups and cannot change while the state is kept ({} -> {}); change it only together with upgradeMode stateless, or create a new FlinkJob",
                    old.job.max_parallelism, self.job.max_parallelism
                ),
            });
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }
}

/// `^[a-zA-Z][a-zA-Z0-9+.-]*://.+$` without a regex engine.
fn is_storage_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        && !rest.is_empty()
        && !rest.contains('\n')
}
