//! Runs a job graph: one thread per task (a chain of operators for one parallel subtask),
//! bounded channels between tasks, watermarks combined per task, and a clean end when every
//! bounded source has ended and the final watermark has fired every window.
//!
//! This module builds the tasks (restoring their state when the job restores a checkpoint)
//! and starts them; [`super::task`] is what each task thread runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::checkpoint::coordinator::SinkTables;
use crate::checkpoint::restore::Restore;
use crate::checkpoint::{NodeRef, TaskSnapshot, Trigger};
use crate::connectors::{self, SinkContext, SourceContext};
use crate::dataflow::alignment::{AlignmentSpec, SourceSubtask, WatermarkAlignment};
use crate::dataflow::exchange::{Envelope, OutputEdge, Target, TargetSender};
use crate::dataflow::graph::{JobGraph, NodeId, NodeKind, Partitioning};
use crate::dataflow::metrics::JobMetrics;
use crate::dataflow::operator::{Operator, TaskInfo};
use crate::dataflow::remote::{Inputs, Placement};
use crate::dataflow::start_gate::StartGate;
use crate::dataflow::state::StateProvider;
use crate::dataflow::task::{Chain, Head, SourceAlignment, Tail, Task, TaskCheckpointing};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct ExecutionConfig {
    /// Rows per batch a source should produce.
    pub batch_size: usize,
    /// Messages a task's input channel holds before senders block.
    pub channel_capacity: usize,
    /// `table.exec.source.idle-timeout`: a source with no data for this long is marked idle.
    pub idle_timeout: Option<Duration>,
    pub state: StateProvider,
    /// Snapshots go to these upload threads; `None` when the job takes no checkpoints.
    pub uploads: Option<Sender<TaskSnapshot>>,
    /// The checkpoint or savepoint the job starts from.
    pub restore: Option<Arc<Restore>>,
    /// In a distributed job: the tasks this process runs and the network to the others.
    /// `None` runs every task here.
    pub placement: Option<Placement>,
}

/// A job whose tasks are running.
pub struct RunningJob {
    handles: Vec<JoinHandle<()>>,
    pub metrics: Arc<JobMetrics>,
    cancel: Arc<AtomicBool>,
    error: Arc<Mutex<Option<Error>>>,
    /// Per task, where the coordinator sends barrier triggers (source tasks only).
    pub triggers: Vec<Option<Sender<Trigger>>>,
    /// The sink nodes' tables by uid, for the coordinator's commits.
    pub sinks: SinkTables,
    /// The watermark alignment groups of the source tasks here.
    pub alignment: Arc<WatermarkAlignment>,
}

impl RunningJob {
    /// Stop every task as soon as it notices (used for Ctrl-C and for failures).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// The flag that cancels every task (shared with the checkpoint coordinator).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
    }

    /// Wait for every task; the first task error, if any.
    pub fn wait(self) -> Result<()> {
        let mut panicked = false;
        for handle in self.handles {
            panicked |= handle.join().is_err();
        }
        let error = self
            .error
            .lock()
            .map(|mut e| e.take())
            .unwrap_or_else(|mut poisoned| poisoned.get_mut().take());
        match error {
            Some(e) => Err(e),
            None if panicked => Err(Error::execution("task", "a task thread panicked")),
            None => Ok(()),
        }
    }
}

/// Start every task of `graph`.
pub fn execute(graph: &JobGraph, config: &ExecutionConfig) -> Result<RunningJob> {
    let chains = graph.chains();
    let chain_of: HashMap<NodeId, usize> = chains
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.iter().map(move |n| (*n, i)))
        .collect();
    // Global task index of subtask 0 of each chain: tasks are numbered chain by chain, the
    // same in every process of a distributed job.
    let mut task_base = Vec::with_capacity(chains.len());
    let mut task_count = 0;
    for chain in &chains {
        task_base.push(task_count);
        task_count += graph.nodes[chain[0]].parallelism;
    }
    let is_local = |ci: usize, subtask: usize| match &config.placement {
        Some(p) => p.is_local(task_base[ci] + subtask),
        None => true,
    };

    // Input channels: for each chain head with inputs, per subtask, one receiver; channel ids
    // numbered over the head's in-edges (forward: one per edge; otherwise one per upstream subtask).
    let mut receivers: HashMap<(usize, usize), Receiver<Envelope>> = HashMap::new();
    let mut senders: HashMap<(usize, usize), crossbeam_channel::Sender<Envelope>> = HashMap::new();
    // (edge index) -> base channel id at the target head
    let mut edge_base: HashMap<usize, u32> = HashMap::new();
    // chain index -> number of input channels and the input index of each
    let mut channel_inputs: HashMap<usize, Vec<usize>> = HashMap::new();
    for (ci, chain) in chains.iter().enumerate() {
        let head = chain[0];
        let mut inputs = Vec::new();
        for (ei, edge) in graph.edges.iter().enumerate() {
            if edge.to != head {
                continue;
            }
            edge_base.insert(ei, inputs.len() as u32);
            let upstream = graph.nodes[edge.from].parallelism;
            let count = if edge.partitioning == Partitioning::Forward {
                1
            } else {
                upstream
            };
            inputs.extend(std::iter::repeat_n(edge.input, count));
        }
        if !inputs.is_empty() {
            for subtask in 0..graph.nodes[head].parallelism {
                if !is_local(ci, subtask) {
                    continue;
                }
                let (tx, rx) = bounded(config.channel_capacity);
                senders.insert((ci, subtask), tx);
                receivers.insert((ci, subtask), rx);
            }
        }
        channel_inputs.insert(ci, inputs);
    }

    let sink_subtasks: usize = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Sink { .. }))
        .map(|n| n.parallelism)
        .sum();
    let metrics = Arc::new(JobMetrics::new(sink_subtasks));
    let cancel = Arc::new(AtomicBool::new(false));
    let alignment = Arc::new(WatermarkAlignment::default());
    let error: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    let mut sink_offsets = HashMap::new();
    let mut offset = 0;
    for node in &graph.nodes {
        if matches!(node.kind, NodeKind::Sink { .. }) {
            sink_offsets.insert(node.id, offset);
            offset += node.parallelism;
        }
    }

    // Build every task before starting any, so a configuration error starts nothing.
    let mut tasks = Vec::new();
    let mut triggers = Vec::new();
    let mut sinks = SinkTables::new();
    let node_ref = |node: NodeId, subtask: usize| NodeRef {
        uid: graph.nodes[node].uid.clone(),
        name: graph.nodes[node].name.clone(),
        parallelism: graph.nodes[node].parallelism,
        subtask,
    };
    let mut remote_members: HashMap<String, usize> = HashMap::new();
    for (ci, chain) in chains.iter().enumerate() {
        let head = &graph.nodes[chain[0]];
        let tail = &graph.nodes[*chain.last().unwrap_or(&chain[0])];
        // The chain's watermark alignment, read once for all its subtasks.
        let aligned = match &head.kind {
            NodeKind::Source { table } => AlignmentSpec::of_table(table)?,
            _ => None,
        };
        for subtask in 0..head.parallelism {
            let index = task_base[ci] + subtask;
            if !is_local(ci, subtask) {
                // An aligned source elsewhere: the group here waits for it too.
                if let Some(spec) = &aligned {
                    *remote_members.entry(spec.group.clone()).or_default() += 1;
                }
                triggers.push(None);
                continue;
            }
            let task_info = |node: NodeId| TaskInfo {
                operator: graph.nodes[node].name.clone(),
                uid: graph.nodes[node].uid.clone(),
                subtask,
                parallelism: graph.nodes[node].parallelism,
                max_parallelism: graph.max_parallelism,
            };
            let mut operators: Vec<Box<dyn Operator>> = Vec::new();
            let mut nodes = Vec::new();
            for node in chain {
                if let NodeKind::Operator { factory } = &graph.nodes[*node].kind {
                    let mut operator = factory.create(&task_info(*node), &config.state)?;
                    if let Some(restore) = &config.restore
                        && restore.has(&graph.nodes[*node].uid)
                    {
                        operator.restore(restore.operator_state(&graph.nodes[*node].uid))?;
                    }
                    operators.push(operator);
                    nodes.push(node_ref(*node, subtask));
                }
            }
            let tail_kind = match &tail.kind {
                NodeKind::Sink { table, updating } => {
                    let connector = connectors::connector_for(table)?;
                    let schema = {
                        let s = tail.schema.clone();
                        if *updating {
                            let fields: Vec<_> = s
                                .fields()
                                .iter()
                                .take(s.fields().len() - 1)
                                .cloned()
                                .collect();
                            Arc::new(arrow::datatypes::Schema::new(fields))
                        } else {
                            s
                        }
                    };
                    let sink = connector.create_sink(SinkContext {
                        table: table.clone(),
                        schema,
                        subtask,
                        parallelism: tail.parallelism,
                        updating: *updating,
                        exactly_once: config.uploads.is_some(),
                    })?;
                    sinks.insert(tail.uid.clone(), table.clone());
                    Tail::Sink {
                        sink,
                        node: node_ref(tail.id, subtask),
                        index: sink_offsets.get(&tail.id).copied().unwrap_or(0) + subtask,
                    }
                }
                _ => {
                    let mut outputs = Vec::new();
                    for (ei, edge) in graph.edges.iter().enumerate() {
                        if edge.from != tail.id {
                            continue;
                        }
                        let target_chain = chain_of[&edge.to];
                        let base = edge_base[&ei];
                        let target_parallelism = graph.nodes[edge.to].parallelism;
                        let target = |d: usize, channel: u32| -> Result<Target> {
                            let sender = match senders.get(&(target_chain, d)) {
                                Some(local) => TargetSender::Local(local.clone()),
                                None => match &config.placement {
                                    Some(p) => TargetSender::Remote(
                                        p.network.sender(task_base[target_chain] + d, channel)?,
                                    ),
                                    None => {
                                        return Err(Error::execution(
                                            &tail.name,
                                            "downstream task has no input channel",
                                        ));
                                    }
                                },
                            };
                            Ok(Target { sender, channel })
                        };
                        let targets: Vec<Target> = if edge.partitioning == Partitioning::Forward {
                            if target_parallelism != tail.parallelism {
                                return Err(Error::execution(
                                    &tail.name,
                                    "forward edge between different parallelisms",
                                ));
                            }
                            vec![target(subtask, base)?]
                        } else {
                            (0..target_parallelism)
                                .map(|d| target(d, base + subtask as u32))
                                .collect::<Result<_>>()?
                        };
                        outputs.push(OutputEdge::new(
                            edge.partitioning.clone(),
                            graph.max_parallelism,
                            targets,
                        ));
                    }
                    Tail::Outputs(outputs)
                }
            };
            let mut trigger = None;
            let head_kind = match &head.kind {
                NodeKind::Source { table } => {
                    let connector = connectors::connector_for(table)?;
                    let restored_splits = config
                        .restore
                        .as_ref()
                        .and_then(|r| r.splits(&head.uid, subtask, head.parallelism));
                    let source = connector.create_source(SourceContext {
                        table: table.clone(),
                        schema: table.physical_schema(),
                        subtask,
                        parallelism: head.parallelism,
                        batch_size: config.batch_size,
                        restored_splits,
                    })?;
                    let triggers = config.uploads.as_ref().map(|_| {
                        let (tx, rx) = crossbeam_channel::unbounded();
                        trigger = Some(tx);
                        rx
                    });
                    let alignment = aligned.as_ref().map(|spec| {
                        let source = SourceSubtask {
                            uid: head.uid.clone(),
                            subtask,
                        };
                        alignment.register(spec, source.clone());
                        SourceAlignment {
                            groups: alignment.clone(),
                            group: spec.group.clone(),
                            max_drift: spec.max_drift,
                            subtask: source,
                        }
                    });
                    Head::Source {
                        source,
                        node: node_ref(head.id, subtask),
                        triggers,
                        alignment,
                    }
                }
                _ => {
                    let rx = receivers
                        .remove(&(ci, subtask))
                        .ok_or_else(|| Error::execution(&head.name, "task has no input channel"))?;
                    let remote = config.placement.as_ref().map(|p| p.network.inbox(index));
                    Head::Input {
                        rx: Inputs::new(rx, remote),
                        inputs: channel_inputs[&ci].clone(),
                    }
                }
            };
            triggers.push(trigger);
            tasks.push(Task {
                index,
                name: format!("{} ({}/{})", head.name, subtask + 1, head.parallelism),
                head: head_kind,
                chain: Chain {
                    operators,
                    nodes,
                    tail: tail_kind,
                    metrics: metrics.clone(),
                    watermark: None,
                },
                cancel: cancel.clone(),
                idle_timeout: config.idle_timeout,
                checkpointing: config.uploads.as_ref().map(|uploads| TaskCheckpointing {
                    uploads: uploads.clone(),
                    scratch: config.state.scratch_dir(),
                }),
                start_gate: None,
            });
        }
    }
    drop(senders);
    for (group, count) in &remote_members {
        alignment.expect_remote(group, *count);
    }

    let sources = tasks
        .iter()
        .filter(|t| matches!(t.head, Head::Source { .. }))
        .count();
    let gate = Arc::new(StartGate::new(sources));
    for task in &mut tasks {
        if matches!(task.head, Head::Source { .. }) {
            task.start_gate = Some(gate.clone());
        }
    }
    let mut handles = Vec::new();
    for task in tasks {
        let error = error.clone();
        let cancel = cancel.clone();
        let name = task.name.clone();
        let handle = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || {
                if let Err(e) = task.run() {
                    let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
                    // The first failure is the cause; later ones are its echoes.
                    if slot.is_none() && !cancel.load(Ordering::SeqCst) {
                        *slot = Some(e);
                    }
                    cancel.store(true, Ordering::SeqCst);
                }
            })
            .map_err(|e| Error::execution(name, format!("cannot start thread: {e}")))?;
        handles.push(handle);
    }
    Ok(RunningJob {
        handles,
        metrics,
        cancel,
        error,
        triggers,
        sinks,
        alignment,
    })
}
