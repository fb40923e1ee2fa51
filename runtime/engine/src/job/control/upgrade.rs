//! The control API's upgrade helpers: whether a new job could restore the running job's state
//! ([`check_compatibility`]) and deleting a savepoint the caller no longer needs
//! ([`dispose_savepoint`]).
//!
//! The compatibility check plans the new SQL as `weir run --set …` would and asks the restore
//! path's own checks ([`crate::checkpoint::restore::mismatches`]: max parallelism, and every
//! operator with state finding its uid in the new plan) about the job's latest completed
//! checkpoint — the state a stop-with-savepoint would carry over. Before the job has completed
//! one, only its plan is known, not which operators hold state, so every source and operator
//! that the new plan lacks counts as a problem (conservative: a stateless one may be named).

use std::collections::BTreeMap;

use weir_rpc::Compatibility;

use crate::checkpoint::restore::mismatches;

/// A node of the running plan, as the fallback check needs it.
pub(super) struct RunningNode {
    pub uid: String,
    pub name: String,
    /// A source or an operator (sinks keep no state a restore needs).
    pub may_hold_state: bool,
}

/// What the running job knows about its state.
pub(super) struct RunningJob<'a> {
    pub job_id: &'a str,
    pub max_parallelism: usize,
    pub nodes: &'a [RunningNode],
    /// The latest completed checkpoint or savepoint, else the one the job started from.
    pub snapshot: Option<String>,
}

/// Plan `sql` with `settings` and check that it restores `running`'s state.
pub(super) fn check_compatibility(
    running: &RunningJob<'_>,
    sql: &str,
    settings: &BTreeMap<String, String>,
) -> weir_rpc::Result<Compatibility> {
    // Unless the new job says otherwise, it keeps the running job's name and key groups.
    let defaults = [
        ("pipeline.name".to_string(), running.job_id.to_string()),
        (
            "pipeline.max-parallelism".to_string(),
            running.max_parallelism.to_string(),
        ),
    ];
    let overrides: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let planned = match crate::job::plan_sql_with_defaults(sql, &defaults, &overrides) {
        Ok(planned) => planned,
        Err(e) => {
            return Ok(Compatibility {
                compatible: false,
                problems: vec![format!("the new job does not plan: {e}")],
            });
        }
    };
    let graph = &planned.graph;
    let problems: Vec<String> = match &running.snapshot {
        Some(path) => {
            let restorable = weir_checkpoint::load(path).map_err(|e| {
                weir_rpc::Error::Unavailable(format!(
                    "cannot read the job's latest checkpoint {path}: {e}"
                ))
            })?;
            mismatches(&restorable.metadata, graph)
                .iter()
                .map(|m| format!("restoring {path}: {m}"))
                .collect()
        }
        None => {
            let mut problems = Vec::new();
            if graph.max_parallelism != running.max_parallelism {
                problems.push(format!(
                    "the running job has max parallelism {}, the new job {}; key groups cannot \
                     be mapped (set pipeline.max-parallelism = {})",
                    running.max_parallelism, graph.max_parallelism, running.max_parallelism
                ));
            }
            problems.extend(
                running
                    .nodes
                    .iter()
                    .filter(|n| n.may_hold_state && !graph.nodes.iter().any(|g| g.uid == n.uid))
                    .map(|n| {
                        format!(
                            "operator {} (uid {}) matches no operator of the new job, and the \
                             job has no completed checkpoint yet to tell whether it holds state",
                            n.name, n.uid
                        )
                    }),
            );
            problems
        }
    };
    Ok(Compatibility {
        compatible: problems.is_empty(),
        problems,
    })
}

/// Delete the savepoint at `path`; anything that is not a savepoint is refused.
pub(super) fn dispose_savepoint(path: &str) -> weir_rpc::Result<()> {
    match weir_checkpoint::dispose_savepoint(path) {
        Ok(disposed) => {
            tracing::info!(
                path,
                ?disposed,
                "savepoint disposed through the control API"
            );
            Ok(())
        }
        Err(
            e @ (weir_checkpoint::Error::NotASavepoint { .. }
            | weir_checkpoint::Error::InvalidUri { .. }),
        ) => Err(weir_rpc::Error::InvalidRequest(e.to_string())),
        Err(e) if e.is_transient() => Err(weir_rpc::Error::Unavailable(error_chain(&e))),
        Err(e) => Err(weir_rpc::Error::Rejected(error_chain(&e))),
    }
}

/// An error and its causes on one line, so the store's reason reaches the caller.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
