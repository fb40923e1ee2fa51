//! Deletion: with `savepoints.onDelete: savepoint` (and a savepoint dir) a running job is
//! stopped with a savepoint first, recorded in the history and an event (never disposed);
//! with `none` it is cancelled. Deletion never blocks for longer than
//! `savepoints.deleteTimeout` after the deletion was asked for: then it proceeds with a
//! Warning event. The children go with the FlinkJob (owner references).

use weir_crds::{LifecycleState, SavepointKind};

use super::{Action, Planner, Requeue, SavepointTrigger, TriggerPurpose, ms_of};
use crate::job_client::SavepointProgress;
use crate::observe::SavepointObservation;

impl Planner<'_> {
    pub(super) fn delete(&mut self) {
        let o = self.o;
        self.set_lifecycle(LifecycleState::Deleting);
        let deadline = o.deletion.as_ref().map_or(i64::MAX, |t| {
            let timeout = o.spec.delete_timeout().map_or(300_000, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            });
            ms_of(t).saturating_add(timeout)
        });
        if self.now_ms() >= deadline {
            self.event(
                true,
                "DeleteTimeout",
                format!(
                    "no on-delete savepoint within {}; deleting without it",
                    o.spec.savepoints.delete_timeout
                ),
            );
            self.release = true;
            return;
        }
        if let Some(pending) = o.status.pending_savepoint.clone() {
            if pending.kind != SavepointKind::Delete {
                // A periodic or manual savepoint is under way: let it finish (or fail) first.
                self.pending_savepoint();
                self.requeue(Requeue::Soon);
                return;
            }
            match &o.savepoint {
                Some(SavepointObservation::Progress(SavepointProgress::Completed(path))) => {
                    self.status.pending_savepoint = None;
                    self.record_savepoint(path, SavepointKind::Delete, None);
                    self.event(
                        false,
                        "DeleteSavepoint",
                        format!("stopped with savepoint {path} before deletion; it is kept"),
                    );
                    self.release = true;
                }
                Some(SavepointObservation::Progress(SavepointProgress::Failed(reason))) => {
                    self.status.pending_savepoint = None;
                    self.event(
                        true,
                        "DeleteSavepointFailed",
                        format!("the on-delete savepoint failed ({reason}); deleting without it"),
                    );
                    self.release = true;
                }
                Some(SavepointObservation::Unknown) => {
                    self.status.pending_savepoint = None;
                    self.event(
                        true,
                        "DeleteSavepointFailed",
                        "the coordinator lost the on-delete savepoint; deleting without it".into(),
                    );
                    self.release = true;
                }
                _ => self.requeue(Requeue::Soon),
            }
            return;
        }
        let savepoint_wanted = o.spec.savepoint_on_delete() && !o.spec.is_suspended();
        if savepoint_wanted && o.runtime.is_running() {
            self.actions
                .push(Action::TriggerSavepoint(SavepointTrigger {
                    request_id: format!("{}-delete", o.uid),
                    dir: o.spec.savepoints.dir.clone(),
                    stop: true,
                    purpose: TriggerPurpose::Pending {
                        kind: SavepointKind::Delete,
                        nonce: None,
                        reconciled_spec: None,
                    },
                }));
            self.requeue(Requeue::Soon);
        } else if savepoint_wanted
            && o.coordinator_exists
            && !o.runtime.job().is_some_and(|j| j.state.is_terminal())
        {
            // Starting, restarting or unreachable: wait for it (bounded by the timeout).
            self.requeue(Requeue::Soon);
        } else {
            if o.runtime.is_alive() {
                self.actions.push(Action::Cancel);
            }
            self.event(false, "Deleted", "released: no savepoint was needed".into());
            self.release = true;
        }
    }
}
