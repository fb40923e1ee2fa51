//! The job graph: operators with their parallelism, and the edges between them.
//!
//! The planner builds it; the executor runs it; `weir explain` prints it. Nodes joined by a
//! forward edge with equal parallelism, where neither side branches, run chained in one task.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::catalog::TableDef;
use crate::dataflow::key_group::hash_bytes;
use crate::dataflow::operator::{Operator, TaskInfo};
use crate::dataflow::state::StateProvider;
use crate::error::Result;

pub type NodeId = usize;

/// Builds one operator instance per parallel subtask.
pub trait OperatorFactory: Send + Sync {
    fn create(&self, task: &TaskInfo, state: &StateProvider) -> Result<Box<dyn Operator>>;
}

impl<F> OperatorFactory for F
where
    F: Fn(&TaskInfo, &StateProvider) -> Result<Box<dyn Operator>> + Send + Sync,
{
    fn create(&self, task: &TaskInfo, state: &StateProvider) -> Result<Box<dyn Operator>> {
        self(task, state)
    }
}

#[derive(Clone)]
pub enum NodeKind {
    Source {
        table: Arc<TableDef>,
    },
    Operator {
        factory: Arc<dyn OperatorFactory>,
    },
    Sink {
        table: Arc<TableDef>,
        updating: bool,
    },
}

#[derive(Clone)]
pub struct Node {
    pub id: NodeId,
    /// What `weir explain` shows, e.g. `Calc(select=[auction, price])`.
    pub name: String,
    /// Stable id of the node's state in checkpoints and savepoints: derived from what the node
    /// computes (its name), not from its position in the graph, so a changed query still
    /// finds the state of the operators it kept.
    pub uid: String,
    pub parallelism: usize,
    pub kind: NodeKind,
    /// The schema of the batches the node emits (with the hidden row-kind column when updating).
    pub schema: SchemaRef,
    /// True when the node's output is an updating (changelog) stream.
    pub updating: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioning {
    /// Subtask i sends to subtask i of the same parallelism.
    Forward,
    /// By key group of the hash of these columns.
    Hash(Vec<usize>),
    /// Round-robin over the downstream subtasks (batch by batch).
    Rebalance,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    /// Input index at the target: 0, or 1 for the right side of a two-input operator.
    pub input: usize,
    pub partitioning: Partitioning,
}

#[derive(Clone, Default)]
pub struct JobGraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub max_parallelism: usize,
}

impl JobGraph {
    pub fn new(max_parallelism: usize) -> Self {
        JobGraph {
            nodes: Vec::new(),
            edges: Vec::new(),
            max_parallelism,
        }
    }

    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        parallelism: usize,
        kind: NodeKind,
        schema: SchemaRef,
        updating: bool,
    ) -> NodeId {
        let id = self.nodes.len();
        let name = name.into();
        // Sources and sinks are known by their table, so a changed projection keeps their
        // positions and pending commits.
        let uid = match &kind {
            NodeKind::Source { table } => self.unique_uid(&format!("Source {}", table.name)),
            NodeKind::Sink { table, .. } => self.unique_uid(&format!("Sink {}", table.name)),
            NodeKind::Operator { .. } => self.unique_uid(&name),
        };
        self.nodes.push(Node {
            id,
            uid,
            name,
            parallelism,
            kind,
            schema,
            updating,
        });
        id
    }

    /// `<kind>-<hash of the name>`, with a counter when two nodes compute the same thing
    /// (two sinks into one table, say), numbered in plan order.
    fn unique_uid(&self, name: &str) -> String {
        let kind: String = name
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let base = format!("{kind}-{:016x}", hash_bytes(name.as_bytes()));
        let mut uid = base.clone();
        let mut n = 1;
        while self.nodes.iter().any(|node| node.uid == uid) {
            n += 1;
            uid = format!("{base}-{n}");
        }
        uid
    }

    pub fn connect(&mut self, from: NodeId, to: NodeId, input: usize, partitioning: Partitioning) {
        self.edges.push(Edge {
            from,
            to,
            input,
            partitioning,
        });
    }

    pub fn inputs(&self, node: NodeId) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.to == node)
    }

    pub fn outputs(&self, node: NodeId) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.from == node)
    }

    /// The node chained after `node` in the same task, if any.
    pub fn chained_successor(&self, node: NodeId) -> Option<NodeId> {
        let mut outputs = self.outputs(node);
        let edge = outputs.next()?;
        if outputs.next().is_some() || edge.partitioning != Partitioning::Forward {
            return None;
        }
        let target = &self.nodes[edge.to];
        if target.parallelism != self.nodes[node].parallelism || self.inputs(edge.to).count() != 1 {
            return None;
        }
        if matches!(target.kind, NodeKind::Source { .. }) {
            return None;
        }
        Some(edge.to)
    }

    /// The chains (tasks) of the graph, each a list of nodes from head to tail, in node order.
    pub fn chains(&self) -> Vec<Vec<NodeId>> {
        let chained: Vec<bool> = {
            let mut v = vec![false; self.nodes.len()];
            for node in &self.nodes {
                if let Some(next) = self.chained_successor(node.id) {
                    v[next] = true;
                }
            }
            v
        };
        let mut chains = Vec::new();
        for node in &self.nodes {
            if chained[node.id] {
                continue;
            }
            let mut chain = vec![node.id];
            let mut current = node.id;
            while let Some(next) = self.chained_successor(current) {
                chain.push(next);
                current = next;
            }
            chains.push(chain);
        }
        chains
    }

    /// The text `weir explain` prints: tasks with their chained operators, then the exchanges.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let chains = self.chains();
        let task_of = |node: NodeId| chains.iter().position(|c| c.contains(&node)).unwrap_or(0);
        let _ = writeln!(out, "Job graph (max parallelism {}):", self.max_parallelism);
        for (i, chain) in chains.iter().enumerate() {
            let head = &self.nodes[chain[0]];
            let _ = writeln!(out, "Task {i} (parallelism {}):", head.parallelism);
            for (depth, id) in chain.iter().enumerate() {
                let node = &self.nodes[*id];
                let arrow = if depth == 0 { "  " } else { "  -> " };
                let updating = if node.updating { " [changelog]" } else { "" };
                let _ = writeln!(out, "{arrow}{}{updating}", node.name);
            }
        }
        let exchanges: Vec<&Edge> = self
            .edges
            .iter()
            .filter(|e| task_of(e.from) != task_of(e.to))
            .collect();
        if !exchanges.is_empty() {
            let _ = writeln!(out, "Exchanges:");
            for e in exchanges {
                let how = match &e.partitioning {
                    Partitioning::Forward => "FORWARD".to_string(),
                    Partitioning::Rebalance => "REBALANCE".to_string(),
                    Partitioning::Hash(cols) if cols.is_empty() => "SINGLE".to_string(),
                    Partitioning::Hash(cols) => {
                        let schema = &self.nodes[e.from].schema;
                        let names: Vec<&str> = cols
                            .iter()
                            .map(|c| schema.field(*c).name().as_str())
                            .collect();
                        format!("HASH[{}]", names.join(", "))
                    }
                };
                let side = if e.input == 1 { " (right input)" } else { "" };
                let _ = writeln!(
                    out,
                    "  Task {} -> Task {}: {how}{side}",
                    task_of(e.from),
                    task_of(e.to)
                );
            }
        }
        out
    }
}
