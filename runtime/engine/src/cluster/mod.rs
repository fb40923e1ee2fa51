//! Distributed execution: `weir coordinator` and `weir worker` as separate processes.
//!
//! The coordinator plans the job, waits until registered workers offer enough slots, and
//! deploys each attempt: every worker plans the same SQL itself (the plan is deterministic,
//! and a digest of it is checked) and builds only the tasks placed on it. Slot `i` runs
//! subtask `i` of every operator chain, as Flink's slot sharing does, so a job needs as many
//! slots as its highest parallelism.
//!
//! - [`spec`]: what a deployment carries (the SQL and settings) and where tasks go;
//! - [`codec`], [`data_plane`], [`connect`]: batches between workers with credit-based flow
//!   control, over one stream per worker pair;
//! - [`registry`]: the coordinator's view of its workers (sessions, heartbeats, failures);
//! - [`remote`]: the [`crate::job::launch::Launcher`] that runs an attempt on the workers,
//!   so the run loop (restarts, checkpoints, savepoints, the control API) is the one `weir
//!   run` uses;
//! - [`coordinator`] and [`worker`]: the two commands.
//!
//! The checkpoint coordinator stays in the coordinator process; workers upload their own
//! snapshots and send the acknowledgements (with state handles) over their session. Sinks
//! are committed by the coordinator, so a filesystem sink's path must be storage the
//! coordinator can reach too (in Kubernetes: a shared volume).

pub mod codec;
pub mod connect;
pub mod coordinator;
pub mod data_plane;
pub mod registry;
pub mod remote;
pub mod spec;
pub mod worker;
