//! Runs a job graph: one thread per task (a chain of operators for one parallel subtask),
//! bounded channels between tasks, watermarks combined per task, and a clean end when every
//! bounded source has ended and the final watermark has fired every window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};

use crate::connectors::{self, Sink, SinkContext, Source, SourceContext, SourceEvent};
use crate::dataflow::exchange::{Envelope, OutputEdge, Target};
use crate::dataflow::graph::{JobGraph, NodeId, NodeKind, Partitioning};
use crate::dataflow::message::{MAX_WATERMARK, Message, Timestamp};
use crate::dataflow::metrics::JobMetrics;
use crate::dataflow::operator::{Emitted, Operator, Output, TaskInfo};
use crate::dataflow::state::StateProvider;
use crate::dataflow::watermark::WatermarkTracker;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ExecutionConfig {
    /// Rows per batch a source should produce.
    pub batch_size: usize,
    /// Messages a task's input channel holds before senders block.
    pub channel_capacity: usize,
    /// `table.exec.source.idle-timeout`: a source with no data for this long is marked idle.
    pub idle_timeout: Option<Duration>,
    pub state: StateProvider,
}

/// A job whose tasks are running.
pub struct RunningJob {
    handles: Vec<JoinHandle<()>>,
    pub metrics: Arc<JobMetrics>,
    cancel: Arc<AtomicBool>,
    error: Arc<Mutex<Option<Error>>>,
}

impl RunningJob {
    /// Stop every task as soon as it notices (used for Ctrl-C and for failures).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
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
    for (ci, chain) in chains.iter().enumerate() {
        let head = &graph.nodes[chain[0]];
        let tail = &graph.nodes[*chain.last().unwrap_or(&chain[0])];
        for subtask in 0..head.parallelism {
            let task_info = |node: NodeId| TaskInfo {
                operator: graph.nodes[node].name.clone(),
                uid: graph.nodes[node].uid.clone(),
                subtask,
                parallelism: graph.nodes[node].parallelism,
                max_parallelism: graph.max_parallelism,
            };
            let mut operators: Vec<Box<dyn Operator>> = Vec::new();
            let mut names = Vec::new();
            for node in chain {
                if let NodeKind::Operator { factory } = &graph.nodes[*node].kind {
                    operators.push(factory.create(&task_info(*node), &config.state)?);
                    names.push(graph.nodes[*node].name.clone());
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
                    })?;
                    Tail::Sink {
                        sink,
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
                        let targets: Vec<Target> = if edge.partitioning == Partitioning::Forward {
                            if target_parallelism != tail.parallelism {
                                return Err(Error::execution(
                                    &tail.name,
                                    "forward edge between different parallelisms",
                                ));
                            }
                            vec![Target {
                                sender: senders[&(target_chain, subtask)].clone(),
                                channel: base,
                            }]
                        } else {
                            (0..target_parallelism)
                                .map(|d| Target {
                                    sender: senders[&(target_chain, d)].clone(),
                                    channel: base + subtask as u32,
                                })
                                .collect()
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
            let head_kind = match &head.kind {
                NodeKind::Source { table } => {
                    let connector = connectors::connector_for(table)?;
                    let source = connector.create_source(SourceContext {
                        table: table.clone(),
                        schema: table.physical_schema(),
                        subtask,
                        parallelism: head.parallelism,
                        batch_size: config.batch_size,
                    })?;
                    Head::Source(source)
                }
                _ => {
                    let rx = receivers
                        .remove(&(ci, subtask))
                        .ok_or_else(|| Error::execution(&head.name, "task has no input channel"))?;
                    Head::Input {
                        rx,
                        inputs: channel_inputs[&ci].clone(),
                    }
                }
            };
            tasks.push(Task {
                name: format!("{} ({}/{})", head.name, subtask + 1, head.parallelism),
                head: head_kind,
                chain: Chain {
                    operators,
                    names,
                    tail: tail_kind,
                    metrics: metrics.clone(),
                },
                cancel: cancel.clone(),
                idle_timeout: config.idle_timeout,
            });
        }
    }
    drop(senders);

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
    })
}

enum Head {
    Source(Box<dyn Source>),
    Input {
        rx: Receiver<Envelope>,
        /// Input index (0 or 1) of each channel.
        inputs: Vec<usize>,
    },
}

enum Tail {
    Sink { sink: Box<dyn Sink>, index: usize },
    Outputs(Vec<OutputEdge>),
}

struct Chain {
    operators: Vec<Box<dyn Operator>>,
    names: Vec<String>,
    tail: Tail,
    metrics: Arc<JobMetrics>,
}

impl Chain {
    fn push_batch(
        &mut self,
        at: usize,
        input: usize,
        batch: arrow::array::RecordBatch,
    ) -> Result<()> {
        if at == self.operators.len() {
            return self.tail_batch(batch);
        }
        let mut out = Output::default();
        self.operators[at].process_batch(input, batch, &mut out)?;
        self.forward(at + 1, out)
    }

    fn push_watermark(&mut self, at: usize, watermark: Timestamp) -> Result<()> {
        if at == self.operators.len() {
            return self.tail_message(Message::Watermark(watermark));
        }
        let mut out = Output::default();
        self.operators[at].process_watermark(watermark, &mut out)?;
        self.forward(at + 1, out)
    }

    fn forward(&mut self, at: usize, out: Output) -> Result<()> {
        for item in out.items {
            match item {
                Emitted::Batch(b) => self.push_batch(at, 0, b)?,
                Emitted::Watermark(w) => self.push_watermark(at, w)?,
            }
        }
        Ok(())
    }

    /// Finish operators head to tail, each one's last output flowing through the rest.
    fn finish(&mut self) -> Result<()> {
        for i in 0..self.operators.len() {
            let mut out = Output::default();
            self.operators[i].finish(&mut out)?;
            self.forward(i + 1, out)?;
            self.metrics
                .add_late_rows(self.operators[i].late_rows_dropped());
        }
        match &mut self.tail {
            Tail::Sink { sink, .. } => sink.finish(),
            Tail::Outputs(outputs) => {
                for o in outputs {
                    o.broadcast(Message::End)?;
                }
                Ok(())
            }
        }
    }

    fn tail_batch(&mut self, batch: arrow::array::RecordBatch) -> Result<()> {
        match &mut self.tail {
            Tail::Sink { sink, .. } => {
                self.metrics.add_rows_out(batch.num_rows() as u64);
                sink.write(&batch)
            }
            Tail::Outputs(outputs) => {
                let last = outputs.len().saturating_sub(1);
                for (i, o) in outputs.iter_mut().enumerate() {
                    if i == last {
                        return o.send_batch(batch);
                    }
                    o.send_batch(batch.clone())?;
                }
                Ok(())
            }
        }
    }

    fn tail_message(&mut self, message: Message) -> Result<()> {
        match &mut self.tail {
            Tail::Sink { index, .. } => {
                if let Message::Watermark(w) = message {
                    self.metrics.set_sink_watermark(*index, w);
                }
                Ok(())
            }
            Tail::Outputs(outputs) => {
                for o in outputs {
                    o.broadcast(message.clone())?;
                }
                Ok(())
            }
        }
    }
}

struct Task {
    name: String,
    head: Head,
    chain: Chain,
    cancel: Arc<AtomicBool>,
    idle_timeout: Option<Duration>,
}

impl Task {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn run(mut self) -> Result<()> {
        tracing::debug!(task = %self.name, operators = ?self.chain.names, "task started");
        let head = std::mem::replace(
            &mut self.head,
            Head::Input {
                rx: crossbeam_channel::never(),
                inputs: Vec::new(),
            },
        );
        let result = match head {
            Head::Source(source) => self.run_source(source),
            Head::Input { rx, inputs } => self.run_input(rx, inputs),
        };
        match result {
            // A send that failed because the job was cancelled is not a failure of its own.
            Err(_) if self.cancelled() => Ok(()),
            other => other,
        }
    }

    fn run_source(&mut self, mut source: Box<dyn Source>) -> Result<()> {
        let mut last_data = Instant::now();
        let mut idle = false;
        loop {
            if self.cancelled() {
                return Ok(());
            }
            match source.poll_next()? {
                SourceEvent::Batch(batch) => {
                    last_data = Instant::now();
                    if idle {
                        idle = false;
                    }
                    self.chain.metrics.add_rows_in(batch.num_rows() as u64);
                    self.chain.push_batch(0, 0, batch)?;
                }
                SourceEvent::Pending => {
                    if let Some(timeout) = self.idle_timeout
                        && !idle
                        && last_data.elapsed() >= timeout
                    {
                        idle = true;
                        self.chain.tail_message(Message::Idle)?;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                SourceEvent::End => break,
            }
        }
        // A bounded source ends with the watermark that fires everything, as in Flink.
        self.chain.push_watermark(0, MAX_WATERMARK)?;
        self.chain.finish()
    }

    fn run_input(&mut self, rx: Receiver<Envelope>, inputs: Vec<usize>) -> Result<()> {
        let mut tracker = WatermarkTracker::new(inputs.len());
        while !tracker.all_ended() {
            let (channel, message) = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(envelope) => envelope,
                Err(RecvTimeoutError::Timeout) => {
                    if self.cancelled() {
                        return Ok(());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if self.cancelled() {
                        return Ok(());
                    }
                    return Err(Error::execution(&self.name, "an upstream task stopped"));
                }
            };
            let channel = channel as usize;
            let advanced = match message {
                Message::Batch(batch) => {
                    tracker.on_data(channel);
                    self.chain.push_batch(0, inputs[channel], batch)?;
                    None
                }
                Message::Watermark(w) => tracker.on_watermark(channel, w),
                Message::Idle => tracker.on_idle(channel),
                Message::End => tracker.on_end(channel),
            };
            if let Some(w) = advanced {
                self.chain.push_watermark(0, w)?;
            }
        }
        self.chain.finish()
    }
}
