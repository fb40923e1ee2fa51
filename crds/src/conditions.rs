//! The status conditions (`Ready`, `Progressing`, `Degraded`) in the standard metav1.Condition
//! shape, so Argo CD, Flux and `kubectl wait --for=condition=Ready fj/NAME` understand them, and
//! the pure helpers that set them (the caller passes the time: no clock is read here).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::status::FlinkJobStatus;

/// The condition types a FlinkJob reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// True when the job runs the current spec stably (lifecycle Stable).
    Ready,
    /// True while a deployment, upgrade, rollback or deletion is under way.
    Progressing,
    /// True when something needs attention: an invalid spec, a failed job, a rollback, a refused
    /// upgrade. The reason says which, the message what to do.
    Degraded,
}

impl ConditionType {
    /// Every type, in the order they are listed in the status.
    pub const ALL: [Self; 3] = [Self::Ready, Self::Progressing, Self::Degraded];

    /// The type as written in the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
        }
    }
}

/// Builds a condition. `reason` is a CamelCase word (e.g. `UpgradeInProgress`), `message` a
/// sentence for the user; `observed_generation` the metadata.generation it was computed from.
pub fn new_condition(
    type_: ConditionType,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.as_str().to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time: now.clone(),
    }
}

impl FlinkJobStatus {
    /// The condition of this type, if set.
    pub fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_.as_str())
    }

    /// Whether the condition of this type is set and `True`.
    pub fn is_condition_true(&self, type_: ConditionType) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }

    /// Sets a condition, replacing the one of the same type. The lastTransitionTime of the old
    /// condition is kept when the status did not change (as Kubernetes conventions ask). Returns
    /// whether anything changed, so the caller can skip a no-op status patch.
    pub fn set_condition(&mut self, mut condition: Condition) -> bool {
        match self
            .conditions
            .iter_mut()
            .find(|c| c.type_ == condition.type_)
        {
            Some(existing) => {
                if existing.status == condition.status {
                    condition.last_transition_time = existing.last_transition_time.clone();
                }
                let changed = *existing != condition;
                *existing = condition;
                changed
            }
            None => {
                self.conditions.push(condition);
                self.conditions.sort_by_key(|c| {
                    ConditionType::ALL
                        .iter()
                        .position(|t| t.as_str() == c.type_)
                        .unwrap_or(ConditionType::ALL.len())
                });
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn same_status_keeps_the_transition_time() {
        let mut status = FlinkJobStatus::default();
        assert!(status.set_condition(new_condition(
            ConditionType::Ready,
            false,
            "Deploying",
            "deploying",
            Some(1),
            &at(10)
        )));
        assert!(status.set_condition(new_condition(
            ConditionType::Ready,
            false,
            "Upgrading",
            "upgrading",
            Some(2),
            &at(20)
        )));
        let ready = status.condition(ConditionType::Ready).unwrap();
        assert_eq!(ready.last_transition_time, at(10));
        assert_eq!(ready.reason, "Upgrading");
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn status_flip_moves_the_transition_time() {
        let mut status = FlinkJobStatus::default();
        status.set_condition(new_condition(
            ConditionType::Ready,
            false,
            "Deploying",
            "deploying",
            Some(1),
            &at(10),
        ));
        status.set_condition(new_condition(
            ConditionType::Ready,
            true,
            "Stable",
            "running",
            Some(1),
            &at(30),
        ));
        assert!(status.is_condition_true(ConditionType::Ready));
        assert_eq!(
            status
                .condition(ConditionType::Ready)
                .unwrap()
                .last_transition_time,
            at(30)
        );
    }

    #[test]
    fn identical_condition_reports_no_change() {
        let mut status = FlinkJobStatus::default();
        status.set_condition(new_condition(
            ConditionType::Degraded,
            false,
            "Healthy",
            "ok",
            Some(1),
            &at(10),
        ));
        assert!(!status.set_condition(new_condition(
            ConditionType::Degraded,
            false,
            "Healthy",
            "ok",
            Some(1),
            &at(99)
        )));
    }

    #[test]
    fn conditions_are_listed_in_a_fixed_order() {
        let mut status = FlinkJobStatus::default();
        for type_ in [
            ConditionType::Degraded,
            ConditionType::Ready,
            ConditionType::Progressing,
        ] {
            status.set_condition(new_condition(type_, false, "Init", "", None, &at(1)));
        }
        let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Progressing", "Degraded"]);
    }
}
