//! What a deployment carries: the job as SQL plus settings (each worker plans it itself),
//! a digest of the plan so a worker with a different build refuses it, and the placement of
//! tasks on slots.

use serde::{Deserialize, Serialize};

use crate::dataflow::graph::{JobGraph, NodeKind};
use crate::error::{Error, Result};
use crate::job::{PlannedJob, plan_sql_with_defaults};

/// The job as the coordinator was given it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub sql: String,
    /// Settings applied before the script's `SET`s (the job id from the file name).
    pub defaults: Vec<(String, String)>,
    /// Settings applied after them (the command line).
    pub overrides: Vec<(String, String)>,
}

impl JobSpec {
    pub fn plan(&self) -> Result<PlannedJob> {
        plan_sql_with_defaults(&self.sql, &self.defaults, &self.overrides)
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::execution("cluster", e.to_string()))
    }

    pub fn from_json(bytes: &[u8]) -> Result<JobSpec> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::execution("cluster", format!("unreadable job in deployment: {e}")))
    }
}

/// One task of the job graph, in the global numbering every process shares (chain by chain,
/// subtask by subtask — the executor's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSlot {
    pub subtask: usize,
    pub is_source: bool,
}

/// Every task of `graph` in global order.
pub fn tasks(graph: &JobGraph) -> Vec<TaskSlot> {
    let mut out = Vec::new();
    for chain in graph.chains() {
        let head = &graph.nodes[chain[0]];
        for subtask in 0..head.parallelism {
            out.push(TaskSlot {
                subtask,
                is_source: matches!(head.kind, NodeKind::Source { .. }),
            });
        }
    }
    out
}

/// Slots a job needs: one per subtask of its widest operator (slot sharing).
pub fn slots_needed(graph: &JobGraph) -> usize {
    graph.nodes.iter().map(|n| n.parallelism).max().unwrap_or(1)
}

/// Which worker runs each task: slot `i` of the job (slots counted over `workers` in order)
/// runs subtask `i` of every chain. `None` when the workers have too few slots.
pub fn place(graph: &JobGraph, workers: &[(String, usize)]) -> Option<Vec<String>> {
    let needed = slots_needed(graph);
    let mut slot_owner = Vec::with_capacity(needed);
    for (worker, slots) in workers {
        for _ in 0..*slots {
            if slot_owner.len() < needed {
                slot_owner.push(worker.clone());
            }
        }
    }
    if slot_owner.len() < needed {
        return None;
    }
    Some(
        tasks(graph)
            .iter()
            .map(|t| slot_owner[t.subtask].clone())
            .collect(),
    )
}

/// A digest of what makes two plans interchangeable: operators (uid, parallelism), their
/// chaining and the edges. FNV-1a, so it is the same in every build.
pub fn plan_digest(graph: &JobGraph) -> String {
    let mut text = format!("max={};", graph.max_parallelism);
    for node in &graph.nodes {
        text.push_str(&format!("{}:{}:{};", node.id, node.uid, node.parallelism));
    }
    for edge in &graph.edges {
        text.push_str(&format!(
            "{}>{}:{}:{:?};",
            edge.from, edge.to, edge.input, edge.partitioning
        ));
    }
    for chain in graph.chains() {
        text.push_str(&format!("{chain:?};"));
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "
        CREATE TABLE src (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
        CREATE TABLE out (k BIGINT, c BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO out SELECT k, COUNT(*) FROM src GROUP BY k;";

    fn planned(parallelism: usize) -> PlannedJob {
        JobSpec {
            sql: SQL.into(),
            defaults: vec![],
            overrides: vec![("parallelism.default".into(), parallelism.to_string())],
        }
        .plan()
        .expect("plan")
    }

    #[test]
    fn slot_i_runs_subtask_i_of_every_chain() {
        let job = planned(3);
        let workers = vec![("a".to_string(), 2), ("b".to_string(), 2)];
        let placement = place(&job.graph, &workers).expect("enough slots");
        let tasks = tasks(&job.graph);
        assert_eq!(placement.len(), tasks.len());
        for (task, worker) in tasks.iter().zip(&placement) {
            let expected = if task.subtask < 2 { "a" } else { "b" };
            assert_eq!(worker, expected, "{task:?}");
        }
    }

    #[test]
    fn too_few_slots_place_nothing() {
        let job = planned(3);
        assert_eq!(place(&job.graph, &[("a".to_string(), 2)]), None);
    }

    #[test]
    fn the_digest_tells_plans_apart_and_is_stable() {
        assert_eq!(
            plan_digest(&planned(2).graph),
            plan_digest(&planned(2).graph)
        );
        assert_ne!(
            plan_digest(&planned(2).graph),
            plan_digest(&planned(3).graph)
        );
    }
}
