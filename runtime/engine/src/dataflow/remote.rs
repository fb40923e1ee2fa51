//! Channels to and from tasks in other processes, as the executor sees them.
//!
//! In local mode every task runs in this process and channels are bounded in-memory queues.
//! When a job is spread over workers ([`crate::cluster`]), the executor builds only this
//! worker's tasks ([`Placement::local`]); an edge to a task elsewhere sends through a
//! [`RemoteSend`], and a task fed from elsewhere also reads a second queue of
//! [`RemoteEnvelope`]s. The network side (framing, credits, connections) implements
//! [`Network`]; the dataflow only needs these few calls, so tasks, operators and barrier
//! alignment are the same code in both modes.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Select};

use crate::dataflow::exchange::Envelope;
use crate::dataflow::message::Message;
use crate::error::Result;

/// The sending end of one channel to a task in another process.
pub trait RemoteSend: Send {
    /// Send `message`, waiting for a credit when the receiver has none to give: that wait is
    /// the back-pressure of a slow remote task. The answer is how long it waited (counted
    /// as the sending node's back-pressured time, as a wait on a full local channel is).
    fn send(&mut self, message: Message) -> Result<Duration>;
}

/// A message from another process, not yet decoded. Decoding happens on the receiving
/// task's thread (so the network threads only move bytes), and taking the message returns
/// its credit to the sender.
pub trait RemoteInput: Send {
    /// The channel (in the receiving task's numbering) and the message.
    fn take(self: Box<Self>) -> Result<(u32, Message)>;
}

pub type RemoteEnvelope = Box<dyn RemoteInput>;

/// The network of a distributed job, seen from one worker.
pub trait Network: Send + Sync {
    /// A sender to `channel` of the task with global index `task`, which runs elsewhere.
    fn sender(&self, task: usize, channel: u32) -> Result<Box<dyn RemoteSend>>;
    /// Where messages from other processes to local task `task` arrive.
    fn inbox(&self, task: usize) -> Receiver<RemoteEnvelope>;
}

/// Which tasks of the job this process runs, and how it reaches the others.
#[derive(Clone)]
pub struct Placement {
    /// Per global task index: runs in this process.
    pub local: Vec<bool>,
    pub network: Arc<dyn Network>,
}

impl Placement {
    pub fn is_local(&self, task: usize) -> bool {
        self.local.get(task).copied().unwrap_or(false)
    }
}

/// What a task with input channels receives from: its local queue and, in a distributed
/// job, its queue of messages from other processes.
pub struct Inputs {
    local: Receiver<Envelope>,
    remote: Option<Receiver<RemoteEnvelope>>,
    /// Every local sender is gone (in a distributed job a task may have none at all).
    local_closed: bool,
}

/// One receive on a task's inputs.
pub enum Received {
    Message(u32, Message),
    Timeout,
    /// No sender can send any more (an upstream task stopped without ending its stream).
    Disconnected,
}

impl Inputs {
    pub fn new(local: Receiver<Envelope>, remote: Option<Receiver<RemoteEnvelope>>) -> Self {
        Inputs {
            local,
            remote,
            local_closed: false,
        }
    }

    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Received> {
        let Some(remote) = &self.remote else {
            return Ok(match self.local.recv_timeout(timeout) {
                Ok((channel, message)) => Received::Message(channel, message),
                Err(RecvTimeoutError::Timeout) => Received::Timeout,
                Err(RecvTimeoutError::Disconnected) => Received::Disconnected,
            });
        };
        if self.local_closed {
            return Ok(match remote.recv_timeout(timeout) {
                Ok(envelope) => {
                    let (channel, message) = envelope.take()?;
                    Received::Message(channel, message)
                }
                Err(RecvTimeoutError::Timeout) => Received::Timeout,
                Err(RecvTimeoutError::Disconnected) => Received::Disconnected,
            });
        }
        let mut select = Select::new();
        let local_index = select.recv(&self.local);
        let remote_index = select.recv(remote);
        let Ok(ready) = select.select_timeout(timeout) else {
            return Ok(Received::Timeout);
        };
        match ready.index() {
            i if i == local_index => match ready.recv(&self.local) {
                Ok((channel, message)) => Ok(Received::Message(channel, message)),
                Err(_) => {
                    self.local_closed = true;
                    Ok(Received::Timeout)
                }
            },
            i if i == remote_index => match ready.recv(remote) {
                Ok(envelope) => {
                    let (channel, message) = envelope.take()?;
                    Ok(Received::Message(channel, message))
                }
                Err(_) => Ok(Received::Disconnected),
            },
            _ => Ok(Received::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{bounded, unbounded};

    struct Decoded(u32, Message);

    impl RemoteInput for Decoded {
        fn take(self: Box<Self>) -> Result<(u32, Message)> {
            Ok((self.0, self.1))
        }
    }

    #[test]
    fn a_task_without_local_senders_still_reads_its_remote_queue() {
        let (local_tx, local_rx) = bounded::<Envelope>(1);
        drop(local_tx);
        let (remote_tx, remote_rx) = unbounded::<RemoteEnvelope>();
        let mut inputs = Inputs::new(local_rx, Some(remote_rx));
        remote_tx
            .send(Box::new(Decoded(3, Message::Watermark(7))))
            .expect("send");
        let mut seen = None;
        for _ in 0..3 {
            if let Received::Message(channel, Message::Watermark(w)) = inputs
                .recv_timeout(Duration::from_millis(50))
                .expect("recv")
            {
                seen = Some((channel, w));
                break;
            }
        }
        assert_eq!(seen, Some((3, 7)));
    }

    #[test]
    fn local_messages_arrive_alongside_remote_ones() {
        let (local_tx, local_rx) = bounded::<Envelope>(4);
        let (remote_tx, remote_rx) = unbounded::<RemoteEnvelope>();
        let mut inputs = Inputs::new(local_rx, Some(remote_rx));
        local_tx.send((0, Message::End)).expect("send");
        remote_tx
            .send(Box::new(Decoded(1, Message::End)))
            .expect("send");
        let mut channels = Vec::new();
        while channels.len() < 2 {
            if let Received::Message(channel, _) = inputs
                .recv_timeout(Duration::from_millis(50))
                .expect("recv")
            {
                channels.push(channel);
            }
        }
        channels.sort();
        assert_eq!(channels, vec![0, 1]);
    }
}
