//! The sending side of edges between tasks: forward, hash by key group, rebalance.
//!
//! Batches are split by target subtask with one `take` per target; watermarks, idleness and
//! the end of the stream are broadcast to every target. Sends block when a target's bounded
//! channel is full, which is how a slow operator back-pressures its inputs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use crossbeam_channel::{Sender, TrySendError};

use crate::dataflow::graph::Partitioning;
use crate::dataflow::key_group::{hash_columns, key_group, subtask_for_key_group};
use crate::dataflow::message::{Message, Timestamp};
use crate::dataflow::remote::RemoteSend;
use crate::error::{Error, Result};

/// A message on a task's input channel, tagged with the channel it came from.
pub type Envelope = (u32, Message);

pub struct Target {
    pub sender: TargetSender,
    /// This sender's channel id in the receiving task's numbering.
    pub channel: u32,
}

/// A downstream task in this process (a bounded queue) or in another one (over the network,
/// with credits).
pub enum TargetSender {
    Local(Sender<Envelope>),
    Remote(Box<dyn RemoteSend>),
}

pub struct OutputEdge {
    pub partitioning: Partitioning,
    pub max_parallelism: usize,
    /// One per downstream subtask for hash and rebalance; just one for forward.
    pub targets: Vec<Target>,
    next: usize,
    last_watermark: Timestamp,
    /// Where blocked time is counted, once the task attached its metrics.
    blocked: Option<Arc<AtomicU64>>,
}

impl OutputEdge {
    pub fn new(partitioning: Partitioning, max_parallelism: usize, targets: Vec<Target>) -> Self {
        OutputEdge {
            partitioning,
            max_parallelism,
            targets,
            next: 0,
            last_watermark: Timestamp::MIN,
            blocked: None,
        }
    }

    /// Add the nanoseconds sends spend blocked on full channels to `counter` (the sending
    /// node's back-pressured time).
    pub fn count_blocked_time(&mut self, counter: Arc<AtomicU64>) {
        self.blocked = Some(counter);
    }

    fn send(&mut self, target: usize, message: Message) -> Result<()> {
        let t = &mut self.targets[target];
        let stopped = || Error::execution("exchange", "a downstream task stopped");
        match &mut t.sender {
            // The common case costs one non-blocking attempt; only a full channel is timed.
            TargetSender::Local(sender) => match sender.try_send((t.channel, message)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(envelope)) => {
                    let blocked = Instant::now();
                    let sent = sender.send(envelope).map_err(|_| stopped());
                    if let Some(counter) = &self.blocked {
                        let nanos = blocked.elapsed().as_nanos() as u64;
                        counter.fetch_add(nanos, Ordering::Relaxed);
                    }
                    sent
                }
                Err(TrySendError::Disconnected(_)) => Err(stopped()),
            },
            TargetSender::Remote(remote) => {
                let waited = remote.send(message)?;
                if let Some(counter) = &self.blocked
                    && !waited.is_zero()
                {
                    counter.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
                }
                Ok(())
            }
        }
    }

    pub fn send_batch(&mut self, batch: RecordBatch) -> Result<()> {
        let n = self.targets.len();
        match &self.partitioning {
            _ if n == 1 => self.send(0, Message::Batch(batch)),
            Partitioning::Forward => self.send(0, Message::Batch(batch)),
            Partitioning::Rebalance => {
                let target = self.next;
                self.next = (self.next + 1) % n;
                self.send(target, Message::Batch(batch))
            }
            Partitioning::Hash(keys) if keys.is_empty() => self.send(0, Message::Batch(batch)),
            Partitioning::Hash(keys) => {
                let columns: Vec<_> = keys.iter().map(|k| batch.column(*k).clone()).collect();
                let hashes = hash_columns(&columns, batch.num_rows())?;
                let mut indices: Vec<Vec<u32>> = vec![Vec::new(); n];
                for (row, hash) in hashes.iter().enumerate() {
                    let kg = key_group(*hash, self.max_parallelism);
                    indices[subtask_for_key_group(kg, self.max_parallelism, n)].push(row as u32);
                }
                for (target, rows) in indices.into_iter().enumerate() {
                    if rows.is_empty() {
                        continue;
                    }
                    let part = if rows.len() == batch.num_rows() {
                        batch.clone()
                    } else {
                        take_record_batch(&batch, &UInt32Array::from(rows))?
                    };
                    self.send(target, Message::Batch(part))?;
                }
                Ok(())
            }
        }
    }

    /// Send what remote targets buffered (see [`RemoteSend`]); local channels hold nothing.
    pub fn flush(&mut self) -> Result<()> {
        for t in &mut self.targets {
            if let TargetSender::Remote(remote) = &mut t.sender {
                let waited = remote.flush()?;
                if let Some(counter) = &self.blocked
                    && !waited.is_zero()
                {
                    counter.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    pub fn broadcast(&mut self, message: Message) -> Result<()> {
        if let Message::Watermark(w) = message {
            if w <= self.last_watermark {
                return Ok(());
            }
            self.last_watermark = w;
        }
        for target in 0..self.targets.len() {
            self.send(target, message.clone())?;
        }
        Ok(())
    }
}
