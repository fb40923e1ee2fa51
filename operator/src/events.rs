//! Kubernetes Events on a FlinkJob, one per step the plan takes (`kubectl describe fj/NAME`
//! and `kubectl get events` tell the story of every upgrade). Publishing is best effort: an
//! event that cannot be written is logged and reconcile carries on.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use weir_crds::FlinkJob;

use crate::children::FIELD_MANAGER;
use crate::plan::Note;

/// Publishes events about one FlinkJob.
pub struct Events {
    recorder: Recorder,
    reference: ObjectReference,
}

impl Events {
    /// Events about `job`, reported by `recorder`.
    pub fn new(recorder: Recorder, job: &FlinkJob) -> Self {
        Events {
            recorder,
            reference: job.object_ref(&()),
        }
    }

    /// Publishes one event; failures are logged.
    pub async fn publish(&self, note: &Note) {
        if note.warning {
            tracing::warn!(reason = note.reason, message = %note.message, "event");
        } else {
            tracing::info!(reason = note.reason, message = %note.message, "event");
        }
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.to_owned(),
            note: Some(truncate(&note.message, 1000)),
            action: note.reason.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &self.reference).await {
            tracing::warn!(error = %e, reason = note.reason, "cannot publish event");
        }
    }
}

/// The reporter of every event: the operator, and the pod it runs in when known.
pub fn reporter() -> Reporter {
    Reporter {
        controller: FIELD_MANAGER.to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

/// Events notes are limited to 1 kB; cut at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
