//! Effective values of a spec for the controller: defaults already applied by serde, optional
//! groups resolved, durations parsed. Pure functions, no I/O.

use std::time::Duration;

use crate::Error;
use crate::spec::{FlinkJobSpec, JobState, UpgradeMode};
use crate::storage::OnDeletePolicy;

impl FlinkJobSpec {
    /// Task slots per worker pod (at least 1).
    pub fn slots_per_worker(&self) -> i32 {
        self.workers.slots.max(1)
    }

    /// Worker pods needed to run the job at its parallelism: ceil(parallelism / slots), and at
    /// least 1. Does not look at job.state: a suspended job runs no workers; the controller
    /// decides that.
    pub fn workers_replicas(&self) -> i32 {
        let parallelism = self.job.parallelism.max(1);
        let slots = self.slots_per_worker();
        (parallelism + slots - 1) / slots
    }

    /// Whether the job should be stopped (job.state suspended).
    pub fn is_suspended(&self) -> bool {
        self.job.state == JobState::Suspended
    }

    /// Time between two checkpoints.
    pub fn checkpoint_interval(&self) -> Result<Duration, Error> {
        self.checkpointing.interval.duration()
    }

    /// Time between two periodic savepoints, if they are enabled.
    pub fn periodic_savepoint_interval(&self) -> Result<Option<Duration>, Error> {
        self.savepoints
            .periodic_interval
            .as_ref()
            .map(|d| d.duration())
            .transpose()
    }

    /// Maximum age of savepoint history entries, if limited.
    pub fn savepoint_history_max_age(&self) -> Result<Option<Duration>, Error> {
        self.savepoints
            .history_max_age
            .as_ref()
            .map(|d| d.duration())
            .transpose()
    }

    /// Maximum number of savepoint history entries (at least 1).
    pub fn savepoint_history_max_count(&self) -> usize {
        usize::try_from(self.savepoints.history_max_count.max(1)).unwrap_or(1)
    }

    /// How long an upgraded job may take to run stably before it is rolled back.
    pub fn readiness_timeout(&self) -> Result<Duration, Error> {
        self.rollback.readiness_timeout.duration()
    }

    /// How long deletion waits for the on-delete savepoint.
    pub fn delete_timeout(&self) -> Result<Duration, Error> {
        self.savepoints.delete_timeout.duration()
    }

    /// Whether deleting the FlinkJob takes a savepoint first: the policy is `savepoint` and there
    /// is a savepoint directory to write it to.
    pub fn savepoint_on_delete(&self) -> bool {
        self.savepoints.on_delete == OnDeletePolicy::Savepoint && self.savepoints.dir.is_some()
    }

    /// Whether stopping the job (upgrade, suspend) keeps its state: savepoint and last-state
    /// modes do, stateless does not.
    pub fn keeps_state(&self) -> bool {
        self.job.upgrade_mode != UpgradeMode::Stateless
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(parallelism: i32, slots: i32) -> FlinkJobSpec {
        serde_json::from_value(serde_json::json!({
            "image": "weir:1",
            "job": {"sql": "x", "parallelism": parallelism},
            "workers": {"slots": slots}
        }))
        .unwrap()
    }

    #[test]
    fn workers_replicas_is_parallelism_over_slots_rounded_up() {
        for (parallelism, slots, workers) in [
            (1, 1, 1),
            (4, 1, 4),
            (4, 2, 2),
            (5, 2, 3),
            (3, 4, 1),
            (128, 3, 43),
        ] {
            assert_eq!(
                spec(parallelism, slots).workers_replicas(),
                workers,
                "p={parallelism} s={slots}"
            );
        }
    }

    #[test]
    fn out_of_range_values_do_not_divide_by_zero() {
        assert_eq!(spec(4, 0).workers_replicas(), 4);
        assert_eq!(spec(0, 2).workers_replicas(), 1);
    }

    #[test]
    fn defaults_apply_to_an_empty_spec() {
        let spec = spec(1, 1);
        assert_eq!(spec.checkpoint_interval().unwrap().as_secs(), 30);
        assert_eq!(spec.readiness_timeout().unwrap().as_secs(), 300);
        assert_eq!(spec.delete_timeout().unwrap().as_secs(), 300);
        assert_eq!(spec.periodic_savepoint_interval().unwrap(), None);
        assert_eq!(spec.savepoint_history_max_count(), 10);
        assert!(!spec.is_suspended());
    }
}
