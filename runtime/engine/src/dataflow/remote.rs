//! Channels to and from tasks in other processes, as the executor sees them.
//!
//! In local mode every task runs in this process and channels are bounded in-memory queues.
//! When a job is spread over workers ([`crate::cluster`]), the executor builds only this
//! worker's tasks ([`Placement::local`]); an edge to a task elsewhere sends through a
//! [`RemoteSend`], and a task fed from elsewhere also reads a second queue of
//! [`RemoteEnvelope`]s. The network side (framing, credits, connections) implements
//! [`Network`]; the dataflow only needs these few calls, so tasks, operators and barrier
//! alignment are the same code in both modes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, TryRecvError};

use crate::dataflow::exchange::Envelope;
use crate::dataflow::message::Message;
use crate::error::Result;

/// The sending end of one channel to a task in another process.
///
/// Messages may wait in a buffer to travel together (as Flink's network buffers do); the
/// sender flushes on its own when the buffer is large or old, or holds a barrier, idleness
/// or the end, and the task calls [`RemoteSend::flush`] when it runs out of input, so
/// nothing waits for more data that is not coming.
pub trait RemoteSend: Send {
    /// Send `message`, waiting for a credit when the receiver has none to give: that wait is
    /// the back-pressure of a slow remote task. The answer is how long it waited (counted
    /// as the sending node's back-pressured time, as a wait on a full local channel is).
    fn send(&mut self, message: Message) -> Result<Duration>;

    /// Send what is buffered now; how long it waited for a credit.
    fn flush(&mut self) -> Result<Duration>;
}

/// Messages from another process, not yet decoded. Decoding happens on the receiving task's
/// thread (so the network threads only move bytes), and taking them returns their credit to
/// the sender.
pub trait RemoteInput: Send {
    /// The channel (in the receiving task's numbering) and its messages, in order.
    fn take(self: Box<Self>) -> Result<(u32, Vec<Message>)>;
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
    /// The rest of the last remote frame taken, served in turn with the local queue.
    taken: VecDeque<Envelope>,
    /// Every local sender is gone (in a distributed job a task may have none at all).
    local_closed: bool,
    /// The local queue goes next while a remote frame is being served.
    local_turn: bool,
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
            taken: VecDeque::new(),
            local_closed: false,
            local_turn: false,
        }
    }

    /// Queue a remote frame's messages; the first of them.
    fn take(&mut self, envelope: RemoteEnvelope) -> Result<Received> {
        let (channel, messages) = envelope.take()?;
        self.taken
            .extend(messages.into_iter().map(|message| (channel, message)));
        // The frame's first message is the remote queue's turn.
        self.local_turn = true;
        Ok(match self.taken.pop_front() {
            Some((channel, message)) => Received::Message(channel, message),
            // An empty frame: nothing to hand over yet.
            None => Received::Timeout,
        })
    }

    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Received> {
        if !self.taken.is_empty() {
            // A frame's messages take turns with the local queue's, one for one. Served
            // first, a frame (up to a megabyte of batches) would give the upstream across the
            // network many times the share of a local one, and two unthrottled sources, each
            // favoured by the task in the other's worker, drift apart in event time; the
            // windows open between them then outgrow memory.
            if self.local_turn && !self.local_closed {
                self.local_turn = false;
                match self.local.try_recv() {
                    Ok((channel, message)) => return Ok(Received::Message(channel, message)),
                    Err(TryRecvError::Disconnected) => self.local_closed = true,
                    Err(TryRecvError::Empty) => {}
                }
            }
            self.local_turn = true;
            if let Some((channel, message)) = self.taken.pop_front() {
                return Ok(Received::Message(channel, message));
            }
        }
        let Some(remote) = &self.remote else {
            return Ok(match self.local.recv_timeout(timeout) {
                Ok((channel, message)) => Received::Message(channel, message),
                Err(RecvTimeoutError::Timeout) => Received::Timeout,
                Err(RecvTimeoutError::Disconnected) => Received::Disconnected,
            });
        };
        if self.local_closed {
            return match remote.recv_timeout(timeout) {
                Ok(envelope) => self.take(envelope),
                Err(RecvTimeoutError::Timeout) => Ok(Received::Timeout),
                Err(RecvTimeoutError::Disconnected) => Ok(Received::Disconnected),
            };
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
                Ok(envelope) => self.take(envelope),
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

    struct Decoded(u32, Vec<Message>);

    impl RemoteInput for Decoded {
        fn take(self: Box<Self>) -> Result<(u32, Vec<Message>)> {
            Ok((self.0, self.1))
        }
    }

    #[test]
    fn a_remote_frame_hands_over_its_messages_one_by_one_in_order() {
        let (_local_tx, local_rx) = bounded::<Envelope>(1);
        let (remote_tx, remote_rx) = unbounded::<RemoteEnvelope>();
        let mut inputs = Inputs::new(local_rx, Some(remote_rx));
        let frame = vec![Message::Watermark(1), Message::Watermark(2), Message::End];
        remote_tx.send(Box::new(Decoded(4, frame))).expect("send");
        remote_tx.send(Box::new(Decoded(4, vec![]))).expect("send");
        let mut seen = Vec::new();
        for _ in 0..10 {
            match inputs
                .recv_timeout(Duration::from_millis(20))
                .expect("recv")
            {
                Received::Message(channel, Message::Watermark(w)) => seen.push((channel, w)),
                Received::Message(channel, Message::End) => seen.push((channel, -1)),
                _ => {}
            }
        }
        assert_eq!(seen, vec![(4, 1), (4, 2), (4, -1)]);
    }

    #[test]
    fn a_task_without_local_senders_still_reads_its_remote_queue() {
        let (local_tx, local_rx) = bounded::<Envelope>(1);
        drop(local_tx);
        let (remote_tx, remote_rx) = unbounded::<RemoteEnvelope>();
        let mut inputs = Inputs::new(local_rx, Some(remote_rx));
        remote_tx
            .send(Box::new(Decoded(3, vec![Message::Watermark(7)])))
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
    fn a_remote_frame_takes_turns_with_the_local_queue_message_for_message() {
        let (local_tx, local_rx) = bounded::<Envelope>(8);
        let (remote_tx, remote_rx) = unbounded::<RemoteEnvelope>();
        let mut inputs = Inputs::new(local_rx, Some(remote_rx));
        let frame = (1..=4).map(Message::Watermark).collect();
        remote_tx.send(Box::new(Decoded(1, frame))).expect("send");
        // Wait until the frame is being served before the local messages come.
        let first = loop {
            if let Received::Message(channel, Message::Watermark(w)) = inputs
                .recv_timeout(Duration::from_millis(50))
                .expect("recv")
            {
                break (channel, w);
            }
        };
        for w in 11..=14 {
            local_tx.send((0, Message::Watermark(w))).expect("send");
        }
        let mut seen = vec![first];
        while seen.len() < 8 {
            if let Received::Message(channel, Message::Watermark(w)) = inputs
                .recv_timeout(Duration::from_millis(50))
                .expect("recv")
            {
                seen.push((channel, w));
            }
        }
        // Served whole, the frame would come first: 1, 2, 3, 4, 11, …
        assert_eq!(
            seen,
            vec![
                (1, 1),
                (0, 11),
                (1, 2),
                (0, 12),
                (1, 3),
                (0, 13),
                (1, 4),
                (0, 14)
            ]
        );
    }

    #[test]
    fn local_messages_arrive_alongside_remote_ones() {
        let (local_tx, local_rx) = bounded::<Envelope>(4);
        let (remote_tx, remote_rx) = unbounded::<RemoteEnvelope>();
        let mut inputs = Inputs::new(local_rx, Some(remote_rx));
        local_tx.send((0, Message::End)).expect("send");
        remote_tx
            .send(Box::new(Decoded(1, vec![Message::End])))
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
