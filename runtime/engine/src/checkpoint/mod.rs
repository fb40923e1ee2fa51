//! Checkpoints of a running job: what tasks hand over at a barrier, how it is uploaded, how the
//! coordinator completes a checkpoint, and how a restore hands old state to new subtasks.
//!
//! The storage side (folders, `_metadata`, retention, fencing) is the `weir-checkpoint` crate;
//! this module is the engine side. See `docs/checkpoints.md` for the whole design.
//!
//! - [`upload`]: background threads turn local snapshots into uploaded state handles;
//! - [`coordinator`]: triggers barriers, collects acknowledgements, completes checkpoints,
//!   commits sinks, applies retention;
//! - [`restore`]: maps a checkpoint onto a (possibly different) plan and parallelism.

pub mod coordinator;
pub mod restore;
pub mod upload;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_checkpoint::metadata::SubtaskState;
use weir_state::LocalSnapshot;

use crate::dataflow::message::Barrier;

/// Threads that write a savepoint's canonical files, or read a restore's key groups, of one
/// subtask: one per core, at most 4, each over its own part of the key-group range. Both are
/// bound by the CPU (iterating, encoding, building SST files), and a job stopping for an upgrade
/// or a rescale waits for them.
pub(crate) fn key_group_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// `f` applied to every item, each on its own scoped thread; the results in item order, or
/// the first error.
pub(crate) fn on_threads<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> crate::error::Result<R> + Sync,
) -> crate::error::Result<Vec<R>> {
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Checkpoint settings of a job, with Flink's key names.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// `execution.checkpointing.dir` / `state.checkpoints.dir` (`--checkpoint-dir`).
    pub dir: Option<String>,
    /// `execution.checkpointing.interval` (`--checkpoint-interval`); none = no periodic checkpoints.
    pub interval: Option<Duration>,
    /// `execution.checkpointing.num-retained`.
    pub retained: usize,
    /// `execution.checkpointing.timeout`.
    pub timeout: Duration,
    /// `execution.checkpointing.tolerable-failed-checkpoints`: consecutive failed checkpoints
    /// after which the job fails (`None`: never, the default here, so a flaky store only
    /// delays checkpoints).
    pub tolerable_failures: Option<u32>,
    /// `state.savepoints.dir` (`--savepoint-dir`).
    pub savepoint_dir: Option<String>,
    /// `pipeline.name` / `--job-id`: names the job's folder under the checkpoint dir.
    pub job_id: String,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings {
            dir: None,
            interval: None,
            retained: 1,
            timeout: Duration::from_secs(600),
            tolerable_failures: None,
            savepoint_dir: None,
            job_id: "job".into(),
        }
    }
}

impl CheckpointSettings {
    /// Checkpointing is on: there is somewhere to write checkpoints to. Sinks then publish
    /// output only when a checkpoint completes.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }
}

/// Which node of the plan a piece of state belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    pub subtask: usize,
}

/// The local state of one node of one task at a barrier, before upload.
#[derive(Debug)]
pub struct NodeSnapshot {
    pub node: NodeRef,
    pub keyed: Option<LocalSnapshot>,
    pub operator_state: Vec<Value>,
    pub splits: Vec<Value>,
    pub committable: Option<Value>,
}

impl NodeSnapshot {
    pub fn new(node: NodeRef) -> Self {
        NodeSnapshot {
            node,
            keyed: None,
            operator_state: Vec::new(),
            splits: Vec::new(),
            committable: None,
        }
    }
}

/// What a task's snapshot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotOf {
    Barrier(Barrier),
    /// The task finished (its inputs ended): this is its state for every later checkpoint.
    Final,
}

/// A task's snapshot, handed from the task thread to the upload threads.
#[derive(Debug)]
pub struct TaskSnapshot {
    pub task: usize,
    pub of: SnapshotOf,
    pub nodes: Vec<NodeSnapshot>,
    pub timing: SnapshotTiming,
}

/// How long a task spent on a barrier before processing went on, reported with its
/// acknowledgement (the coordinator keeps the largest over the tasks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTiming {
    /// From the first input channel's barrier to the last one's (zero for sources and tasks
    /// with one input); the channels that delivered the barrier are held back meanwhile.
    pub alignment: Duration,
    /// The synchronous part of the snapshot on the task thread (the upload is not in it).
    pub sync: Duration,
    /// The asynchronous part: writing the snapshot's files on an upload thread.
    #[serde(default)]
    pub asynchronous: Duration,
}

/// One node's uploaded state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub node: NodeRef,
    pub state: SubtaskState,
}

/// What the coordinator hears from tasks and upload threads (in a distributed job, from the
/// workers' upload threads, as JSON).
#[derive(Debug, Serialize, Deserialize)]
pub enum Event {
    /// A task's snapshot is uploaded and verified.
    Acknowledged {
        task: usize,
        of: SnapshotOf,
        nodes: Vec<NodeState>,
        #[serde(default)]
        timing: SnapshotTiming,
    },
    /// A task's snapshot could not be taken or uploaded. What its sinks pre-committed is
    /// still returned: those files must be published with a later checkpoint.
    Declined {
        task: usize,
        of: SnapshotOf,
        reason: String,
        committables: Vec<(NodeRef, Value)>,
    },
}

/// What a source task receives from the coordinator.
#[derive(Debug, Clone, Copy)]
pub struct Trigger {
    pub barrier: Barrier,
    /// Stop after this barrier (stop with savepoint, or a final checkpoint on Ctrl-C): emit no
    /// more data, wait for the job to be cancelled.
    pub stop: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn on_threads_keeps_the_item_order_and_reports_a_failure() {
        let squares = on_threads((1..=5u64).collect(), |n| Ok(n * n)).expect("no failure");
        assert_eq!(squares, vec![1, 4, 9, 16, 25]);
        let failed = on_threads(vec![1u64, 2, 3], |n| match n {
            2 => Err(Error::execution("test", "part 2 failed")),
            n => Ok(n),
        });
        let err = failed.expect_err("one part failed");
        assert!(err.to_string().contains("part 2 failed"), "{err}");
    }
}
