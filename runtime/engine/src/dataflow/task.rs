//! One task: a chain of operators for one parallel subtask, fed by a source or by its input
//! channels, ending in a sink or in output edges. Runs on its own thread.
//!
//! Checkpoints: a source task injects a barrier when the coordinator triggers one; a task with
//! input channels aligns the barrier (a channel that delivered it is held back until every
//! open channel has), then every node of the chain snapshots, the barrier goes downstream,
//! and the snapshot goes to the upload threads — processing does not wait for the upload.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use crate::checkpoint::{NodeRef, NodeSnapshot, SnapshotOf, SnapshotTiming, TaskSnapshot, Trigger};
use crate::connectors::{Sink, Source, SourceEvent};
use crate::dataflow::alignment::{SourceSubtask, WatermarkAlignment};
use crate::dataflow::exchange::OutputEdge;
use crate::dataflow::message::{Barrier, MAX_WATERMARK, Message, Timestamp};
use crate::dataflow::metrics::JobMetrics;
use crate::dataflow::operator::{Emitted, Operator, Output, SnapshotContext};
use crate::dataflow::remote::{Inputs, Received};
use crate::dataflow::start_gate::{START_WAIT, StartGate};
use crate::dataflow::watermark::WatermarkTracker;
use crate::error::{Error, Result};

pub(crate) enum Head {
    Source {
        source: Box<dyn Source>,
        node: NodeRef,
        /// Barriers to inject, from the coordinator (only when checkpointing).
        triggers: Option<Receiver<Trigger>>,
        /// The source's watermark alignment group, if it is in one.
        alignment: Option<SourceAlignment>,
    },
    Input {
        rx: Inputs,
        /// Input index (0 or 1) of each channel.
        inputs: Vec<usize>,
    },
}

pub(crate) enum Tail {
    Sink {
        sink: Box<dyn Sink>,
        node: NodeRef,
        /// This sink subtask's slot in the job metrics.
        index: usize,
    },
    Outputs(Vec<OutputEdge>),
}

pub(crate) struct Chain {
    pub operators: Vec<Box<dyn Operator>>,
    pub nodes: Vec<NodeRef>,
    pub tail: Tail,
    pub metrics: Arc<JobMetrics>,
    /// The highest watermark any node of the chain emitted: in a source task, the source's
    /// watermark (its assigner's; the nodes after it never emit a higher one).
    pub watermark: Option<Timestamp>,
}

impl Chain {
    fn push_batch(&mut self, at: usize, input: usize, batch: RecordBatch) -> Result<()> {
        if at == self.operators.len() {
            return self.tail_batch(batch);
        }
        self.metrics.operator_in(at, batch.num_rows());
        let mut out = Output::default();
        self.operators[at].process_batch(input, batch, &mut out)?;
        self.forward(at + 1, out)
    }

    fn push_watermark(&mut self, at: usize, watermark: Timestamp) -> Result<()> {
        self.metrics.chain_watermark(at, watermark);
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
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
                Emitted::Batch(b) => {
                    self.metrics.operator_out(at - 1, b.num_rows());
                    self.push_batch(at, 0, b)?
                }
                Emitted::Watermark(w) => self.push_watermark(at, w)?,
            }
        }
        Ok(())
    }

    /// Finish operators head to tail, each one's last output flowing through the rest.
    fn finish_operators(&mut self) -> Result<()> {
        for i in 0..self.operators.len() {
            let mut out = Output::default();
            self.operators[i].finish(&mut out)?;
            self.forward(i + 1, out)?;
            self.metrics
                .add_late_rows(self.operators[i].late_rows_dropped());
        }
        Ok(())
    }

    fn tail_batch(&mut self, batch: RecordBatch) -> Result<()> {
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

    /// Send what the outputs to other processes buffered: the task has no more input for
    /// now, and buffered rows must not wait for input that may not come.
    fn flush(&mut self) -> Result<()> {
        if let Tail::Outputs(outputs) = &mut self.tail {
            for o in outputs {
                o.flush()?;
            }
        }
        Ok(())
    }

    /// Snapshot every stateful node of the chain; the sink pre-commits.
    fn snapshot(
        &mut self,
        of: SnapshotOf,
        scratch: &std::path::Path,
        nodes: &mut Vec<NodeSnapshot>,
    ) -> Result<()> {
        let (id, savepoint, label) = match of {
            SnapshotOf::Barrier(b) => (b.id, b.is_savepoint(), b.id.to_string()),
            SnapshotOf::Final => (u64::MAX, false, "final".to_string()),
        };
        for (op, node) in self.operators.iter_mut().zip(&self.nodes) {
            let ctx = SnapshotContext {
                checkpoint_id: id,
                savepoint,
                scratch: scratch.join(format!("{}-{}-{label}", node.uid, node.subtask)),
            };
            if let Some(s) = op.snapshot(&ctx)? {
                let mut snapshot = NodeSnapshot::new(node.clone());
                snapshot.keyed = s.keyed;
                snapshot.operator_state = s.operator_state;
                nodes.push(snapshot);
            }
        }
        if let Tail::Sink { sink, node, .. } = &mut self.tail {
            let mut snapshot = NodeSnapshot::new(node.clone());
            snapshot.committable = sink.pre_commit(id)?;
            nodes.push(snapshot);
        }
        Ok(())
    }
}

/// A source task's place in its watermark alignment group (see [`super::alignment`]).
pub(crate) struct SourceAlignment {
    pub groups: Arc<WatermarkAlignment>,
    pub group: String,
    pub max_drift: Timestamp,
    pub subtask: SourceSubtask,
}

impl SourceAlignment {
    /// Report the source's `watermark`; whether it is more than the drift ahead of the
    /// group's slowest and must wait. A source without a watermark yet cannot be ahead (it
    /// still holds the group back, see [`super::alignment`]).
    fn must_wait(&self, watermark: Option<Timestamp>) -> bool {
        let Some(watermark) = watermark else {
            return false;
        };
        self.groups
            .report(&self.group, &self.subtask, Some(watermark))
            .is_some_and(|min| watermark > min.saturating_add(self.max_drift))
    }

    /// The source ended or went idle: it holds nobody back.
    fn leave(&self) {
        self.groups.report(&self.group, &self.subtask, None);
    }
}

/// How long a source ahead of its alignment group sleeps before it looks again.
const ALIGNMENT_WAIT: Duration = Duration::from_millis(1);

/// What a task needs for checkpoints; absent when the job takes none.
pub(crate) struct TaskCheckpointing {
    pub uploads: Sender<TaskSnapshot>,
    /// Where backends put their local snapshots before upload.
    pub scratch: PathBuf,
}

pub(crate) struct Task {
    pub index: usize,
    pub name: String,
    pub head: Head,
    pub chain: Chain,
    pub cancel: Arc<AtomicBool>,
    pub idle_timeout: Option<Duration>,
    pub checkpointing: Option<TaskCheckpointing>,
    /// Shared by the process's source tasks (see [`StartGate`]); `None` for other tasks.
    pub start_gate: Option<Arc<StartGate>>,
}

impl Task {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn run(mut self) -> Result<()> {
        tracing::debug!(task = %self.name, "task started");
        self.chain.attach_metrics(&self.head);
        let head = std::mem::replace(
            &mut self.head,
            Head::Input {
                rx: Inputs::new(crossbeam_channel::never(), None),
                inputs: Vec::new(),
            },
        );
        let result = match head {
            Head::Source {
                source,
                node,
                triggers,
                alignment,
            } => self.run_source(source, node, triggers, alignment),
            Head::Input { rx, inputs } => self.run_input(rx, inputs),
        };
        match result {
            // A send that failed because the job was cancelled is not a failure of its own.
            Err(_) if self.cancelled() => Ok(()),
            other => other,
        }
    }

    /// Snapshot the chain for `of`, hand it to the upload threads, and for a barrier send it
    /// downstream.
    ///
    /// `alignment` is how long the barrier waited for every input channel (reported with the
    /// acknowledgement).
    fn checkpoint(
        &mut self,
        of: SnapshotOf,
        source: Option<(NodeRef, Vec<Value>)>,
        alignment: Duration,
    ) -> Result<()> {
        let Some(checkpointing) = &self.checkpointing else {
            return Ok(());
        };
        let (scratch, uploads) = (checkpointing.scratch.clone(), checkpointing.uploads.clone());
        let mut nodes = Vec::new();
        if let Some((node, splits)) = source {
            let mut snapshot = NodeSnapshot::new(node);
            snapshot.splits = splits;
            nodes.push(snapshot);
        }
        let started = Instant::now();
        self.chain.snapshot(of, &scratch, &mut nodes)?;
        let timing = SnapshotTiming {
            alignment,
            sync: started.elapsed(),
            asynchronous: Duration::ZERO,
        };
        if let SnapshotOf::Barrier(barrier) = of {
            tracing::debug!(
                task = %self.name,
                checkpoint = barrier.id,
                alignment_ms = alignment.as_secs_f64() * 1e3,
                sync_ms = timing.sync.as_secs_f64() * 1e3,
                "snapshot taken"
            );
        }
        let snapshot = TaskSnapshot {
            timing,
            task: self.index,
            of,
            nodes,
        };
        uploads
            .send(snapshot)
            .map_err(|_| Error::execution(&self.name, "the checkpoint coordinator stopped"))?;
        if let SnapshotOf::Barrier(barrier) = of {
            self.chain.tail_message(Message::Barrier(barrier))?;
        }
        Ok(())
    }

    /// The inputs ended: finish the operators, then either take the final snapshot (the
    /// coordinator commits the sink's output with the final checkpoint) or finish the sink.
    fn finish(&mut self, source: Option<(NodeRef, Vec<Value>)>) -> Result<()> {
        self.chain.finish_operators()?;
        if self.checkpointing.is_some() {
            self.checkpoint(SnapshotOf::Final, source, Duration::ZERO)?;
        } else if let Tail::Sink { sink, .. } = &mut self.chain.tail {
            sink.finish()?;
        }
        if let Tail::Outputs(outputs) = &mut self.chain.tail {
            for o in outputs {
                o.broadcast(Message::End)?;
            }
        }
        Ok(())
    }

    fn run_source(
        &mut self,
        mut source: Box<dyn Source>,
        node: NodeRef,
        triggers: Option<Receiver<Trigger>>,
        alignment: Option<SourceAlignment>,
    ) -> Result<()> {
        // An empty source ends before any source emits (see `StartGate`); the others start
        // together once every source task polled once.
        let first = source.poll_next();
        let ends_at_once = matches!(first, Ok(SourceEvent::End));
        if !ends_at_once {
            self.pass_start_gate();
        }
        let mut first = Some(first);
        let mut last_data = Instant::now();
        let mut idle = false;
        let mut stopped = false;
        // Time spent ahead of the alignment group, and since when (while it waits).
        let mut aligning = Duration::ZERO;
        let mut waiting_since: Option<Instant> = None;
        loop {
            if self.cancelled() {
                return Ok(());
            }
            if let Some(triggers) = &triggers {
                while let Ok(trigger) = triggers.try_recv() {
                    if stopped {
                        continue;
                    }
                    let splits = source.snapshot_splits()?;
                    self.checkpoint(
                        SnapshotOf::Barrier(trigger.barrier),
                        Some((node.clone(), splits)),
                        Duration::ZERO,
                    )?;
                    stopped = trigger.stop;
                }
            }
            if stopped {
                // Stop with savepoint: nothing after the barrier; wait to be cancelled.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            // An idle source is out of its group until it has data again.
            if let Some(alignment) = &alignment
                && !idle
            {
                if alignment.must_wait(self.chain.watermark) {
                    if waiting_since.is_none() {
                        // What is buffered for other processes must not wait with it.
                        self.chain.flush()?;
                        waiting_since = Some(Instant::now());
                    }
                    std::thread::sleep(ALIGNMENT_WAIT);
                    continue;
                }
                if let Some(since) = waiting_since.take() {
                    aligning += since.elapsed();
                    // Waiting is not having no data: the idle timeout starts again.
                    last_data = Instant::now();
                }
            }
            let event = match first.take() {
                Some(event) => event?,
                None => source.poll_next()?,
            };
            match event {
                SourceEvent::Batch(batch) => {
                    last_data = Instant::now();
                    idle = false;
                    self.chain.metrics.add_rows_in(batch.num_rows() as u64);
                    self.chain.push_batch(0, 0, batch)?;
                }
                SourceEvent::Pending => {
                    self.chain.flush()?;
                    if let Some(timeout) = self.idle_timeout
                        && !idle
                        && last_data.elapsed() >= timeout
                    {
                        idle = true;
                        if let Some(alignment) = &alignment {
                            alignment.leave();
                        }
                        self.chain.tail_message(Message::Idle)?;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                SourceEvent::End => break,
            }
        }
        if let Some(alignment) = &alignment {
            alignment.leave();
            tracing::debug!(
                task = %self.name,
                group = %alignment.group,
                waited_ms = aligning.as_millis() as u64,
                "source ended; time it waited for its watermark alignment group"
            );
        }
        // A bounded source ends with the watermark that fires everything, as in Flink.
        self.chain.push_watermark(0, MAX_WATERMARK)?;
        let splits = match self.checkpointing {
            Some(_) => source.snapshot_splits()?,
            None => Vec::new(),
        };
        let finished = self.finish(Some((node, splits)));
        if ends_at_once {
            self.pass_start_gate();
        }
        finished
    }

    fn pass_start_gate(&mut self) {
        if let Some(gate) = self.start_gate.take() {
            gate.arrive_and_wait(START_WAIT);
        }
    }

    fn run_input(&mut self, mut rx: Inputs, inputs: Vec<usize>) -> Result<()> {
        let mut tracker = WatermarkTracker::new(inputs.len());
        let mut aligner = Aligner::new(inputs.len());
        // How far apart the input channels' watermarks got: the event time the operators had
        // to keep open state for beyond the slowest input (sources running at different speeds).
        // Only followed when it will be logged: it is a pass over the channels per watermark.
        let follow_spread = tracing::enabled!(tracing::Level::DEBUG);
        let mut max_spread: Timestamp = 0;
        while !tracker.all_ended() {
            let (channel, message) = match aligner.released.pop_front() {
                Some(envelope) => envelope,
                None => match receive(&mut rx, &mut self.chain)? {
                    Received::Message(channel, message) => (channel as usize, message),
                    Received::Timeout => {
                        if self.cancelled() {
                            return Ok(());
                        }
                        continue;
                    }
                    Received::Disconnected => {
                        if self.cancelled() {
                            return Ok(());
                        }
                        return Err(Error::execution(&self.name, "an upstream task stopped"));
                    }
                },
            };
            if aligner.holds(channel) {
                aligner.hold(channel, message);
                continue;
            }
            let advanced = match message {
                Message::Batch(batch) => {
                    tracker.on_data(channel);
                    self.chain.push_batch(0, inputs[channel], batch)?;
                    None
                }
                Message::Watermark(w) => {
                    let advanced = tracker.on_watermark(channel, w);
                    if follow_spread {
                        max_spread = max_spread.max(tracker.spread());
                    }
                    advanced
                }
                Message::Idle => tracker.on_idle(channel),
                Message::End => {
                    let advanced = tracker.on_end(channel);
                    if let Some((barrier, alignment)) = aligner.complete(&tracker) {
                        self.checkpoint(SnapshotOf::Barrier(barrier), None, alignment)?;
                    }
                    advanced
                }
                Message::Barrier(barrier) => {
                    aligner.on_barrier(channel, barrier)?;
                    if let Some((barrier, alignment)) = aligner.complete(&tracker) {
                        self.checkpoint(SnapshotOf::Barrier(barrier), None, alignment)?;
                    }
                    None
                }
            };
            if let Some(w) = advanced {
                self.chain.push_watermark(0, w)?;
            }
        }
        if follow_spread {
            tracing::debug!(
                task = %self.name,
                max_input_watermark_spread_ms = max_spread,
                "inputs ended"
            );
        }
        self.finish(None)
    }
}

/// The next input, or a timeout after 100 ms. When none is ready at once, what the chain
/// buffered for other processes is sent before waiting.
fn receive(rx: &mut Inputs, chain: &mut Chain) -> Result<Received> {
    match rx.recv_timeout(Duration::ZERO)? {
        Received::Timeout => {
            chain.flush()?;
            rx.recv_timeout(Duration::from_millis(100))
        }
        received => Ok(received),
    }
}

/// Barrier alignment over a task's input channels (Flink's aligned checkpoints): after a
/// channel delivers barrier `n`, its messages are held until every channel still open has
/// delivered `n` too, so the snapshot holds exactly the effects of what came before `n`.
struct Aligner {
    pending: Option<Barrier>,
    /// When the first channel delivered the pending barrier.
    first_arrival: Option<Instant>,
    arrived: Vec<bool>,
    held: Vec<VecDeque<Message>>,
    /// Held messages released after alignment, processed before new ones.
    released: VecDeque<(usize, Message)>,
}

impl Aligner {
    fn new(channels: usize) -> Self {
        Aligner {
            pending: None,
            first_arrival: None,
            arrived: vec![false; channels],
            held: (0..channels).map(|_| VecDeque::new()).collect(),
            released: VecDeque::new(),
        }
    }

    fn holds(&self, channel: usize) -> bool {
        self.pending.is_some() && self.arrived[channel]
    }

    fn hold(&mut self, channel: usize, message: Message) {
        self.held[channel].push_back(message);
    }

    fn on_barrier(&mut self, channel: usize, barrier: Barrier) -> Result<()> {
        match self.pending {
            None => {
                self.pending = Some(barrier);
                self.first_arrival = Some(Instant::now());
            }
            Some(p) if p.id == barrier.id => {}
            Some(p) => {
                return Err(Error::execution(
                    "checkpoint",
                    format!(
                        "barrier {} arrived while aligning barrier {}",
                        barrier.id, p.id
                    ),
                ));
            }
        }
        self.arrived[channel] = true;
        Ok(())
    }

    /// The barrier and how long it took to align, once every open channel delivered it; held
    /// messages are then released in channel order (each channel's own order is kept, which
    /// is all that is promised).
    fn complete(&mut self, tracker: &WatermarkTracker) -> Option<(Barrier, Duration)> {
        let barrier = self.pending?;
        let aligned = (0..self.arrived.len()).all(|c| self.arrived[c] || tracker.is_ended(c));
        if !aligned {
            return None;
        }
        self.pending = None;
        for (channel, held) in self.held.iter_mut().enumerate() {
            self.released
                .extend(held.drain(..).map(|message| (channel, message)));
        }
        self.arrived.iter_mut().for_each(|a| *a = false);
        let alignment = self
            .first_arrival
            .take()
            .map_or(Duration::ZERO, |t| t.elapsed());
        Some((barrier, alignment))
    }
}
