//! The data plane between workers: one `DataPlane.Exchange` stream from each sending worker
//! to each receiving one carries every channel between their tasks, with credit-based flow
//! control per channel.
//!
//! A sender starts with [`CREDITS`] credits per channel and spends one per frame; the
//! receiving worker queues frames per task without ever blocking the stream, and gives the
//! credit back when the task takes the frame off its queue. So a slow task stops exactly the
//! channels that feed it, the shared stream keeps flowing for the others, and at most
//! `CREDITS` frames per channel wait in memory. Frames are decoded on the receiving task's
//! thread, not on the network threads.
//!
//! A frame is not one message: like Flink's network buffers, it gathers a channel's batches
//! and the watermarks between them (a watermark assigner splits batches at each watermark,
//! so batches are often a few hundred rows) until about [`FRAME_BYTES`], and goes out
//! earlier for a barrier, idleness, the end, after [`FRAME_LINGER`], or when the sending
//! task runs out of input.
//!
//! [`FlowStats`] counts what that bound is about: the frames each receiving channel holds
//! (and the most it ever held), and the sends that had to wait for a credit. Workers report
//! them in their heartbeats.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use futures::Stream;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use weir_rpc::cluster::data_plane_client::DataPlaneClient;
use weir_rpc::cluster::data_plane_server::DataPlane;
use weir_rpc::cluster::{CreditGrant, DataFrame, DataPlaneMetrics};

use super::codec::{self, FrameBuilder};
use super::connect::Auth;
use crate::dataflow::message::Message;
use crate::dataflow::remote::{Network, RemoteEnvelope, RemoteInput, RemoteSend};
use crate::error::{Error, Result};

/// Credits per remote channel: frames in flight (sent, not yet taken by the task). With
/// frames of about [`FRAME_BYTES`] this bounds what one channel buffers to a few MB.
pub const CREDITS: u32 = 4;

/// Largest frame accepted: a batch of a few hundred MB is a configuration mistake.
pub const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// How long a frame for a task that is not deployed yet waits for it (workers deploy at
/// slightly different moments).
const DEPLOY_WAIT: Duration = Duration::from_secs(60);

/// Flow-control counters of one worker's data plane in one attempt, both directions.
#[derive(Debug, Default)]
pub struct FlowStats {
    /// Frames received and not yet taken by their task.
    queued: AtomicU64,
    /// The most frames one receiving channel held at once.
    peak: AtomicU32,
    received: AtomicU64,
    sent: AtomicU64,
    /// Sends that found no credit and waited for one.
    credit_waits: AtomicU64,
}

impl FlowStats {
    /// The figures a heartbeat carries.
    pub fn snapshot(&self, credits: u32) -> DataPlaneMetrics {
        DataPlaneMetrics {
            queued_frames: self.queued.load(Ordering::Relaxed),
            peak_queued_frames_per_channel: self.peak.load(Ordering::Relaxed),
            frames_received: self.received.load(Ordering::Relaxed),
            frames_sent: self.sent.load(Ordering::Relaxed),
            credit_waits: self.credit_waits.load(Ordering::Relaxed),
            credits,
        }
    }
}

/// The receiving side, shared by every incoming stream of a worker: the queue of each local
/// task of the current attempt.
#[derive(Default)]
pub struct Inboxes {
    state: Mutex<InboxState>,
}

#[derive(Default)]
struct InboxState {
    attempt: u64,
    queues: HashMap<u32, Sender<RemoteEnvelope>>,
    /// Per (task, channel): frames on the task's queue.
    held: HashMap<(u32, u32), Arc<AtomicU32>>,
    stats: Arc<FlowStats>,
}

/// Where a received frame goes, and what counts it while it waits there.
struct Slot {
    queue: Sender<RemoteEnvelope>,
    held: Arc<AtomicU32>,
    stats: Arc<FlowStats>,
}

impl Inboxes {
    /// Start receiving for `attempt`: a queue per local task, and new counters (shared with
    /// the attempt's senders, see [`AttemptNetwork::new`]). Frames of older attempts are
    /// dropped from now on.
    pub fn open(
        &self,
        attempt: u64,
        tasks: &[u32],
    ) -> (HashMap<u32, Receiver<RemoteEnvelope>>, Arc<FlowStats>) {
        let mut receivers = HashMap::new();
        let mut queues = HashMap::new();
        for task in tasks {
            let (tx, rx) = unbounded();
            queues.insert(*task, tx);
            receivers.insert(*task, rx);
        }
        let stats = Arc::new(FlowStats::default());
        if let Ok(mut state) = self.state.lock() {
            state.attempt = attempt;
            state.queues = queues;
            state.held.clear();
            state.stats = stats.clone();
        }
        (receivers, stats)
    }

    /// The queue of `task` in `attempt`, waiting for the deployment if it is a newer attempt
    /// than this worker has; `None` for frames of a superseded attempt.
    async fn queue(&self, attempt: u64, task: u32, channel: u32) -> Option<Slot> {
        let deadline = Instant::now() + DEPLOY_WAIT;
        loop {
            {
                let mut state = self.state.lock().ok()?;
                if attempt < state.attempt {
                    return None;
                }
                if attempt == state.attempt
                    && let Some(queue) = state.queues.get(&task).cloned()
                {
                    let stats = state.stats.clone();
                    let held = state.held.entry((task, channel)).or_default().clone();
                    return Some(Slot { queue, held, stats });
                }
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    attempt,
                    task,
                    "frames for a task that was never deployed here"
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The `DataPlane` gRPC service of a worker.
pub struct DataPlaneService {
    pub inboxes: Arc<Inboxes>,
}

type CreditStream = Pin<Box<dyn Stream<Item = std::result::Result<CreditGrant, Status>> + Send>>;

#[tonic::async_trait]
impl DataPlane for DataPlaneService {
    type ExchangeStream = CreditStream;

    async fn exchange(
        &self,
        request: Request<Streaming<DataFrame>>,
    ) -> std::result::Result<Response<CreditStream>, Status> {
        let mut frames = request.into_inner();
        let (credits_tx, credits_rx) = mpsc::unbounded_channel::<CreditGrant>();
        let inboxes = self.inboxes.clone();
        tokio::spawn(async move {
            loop {
                let frame = match frames.message().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "data stream ended");
                        break;
                    }
                };
                if let Some(slot) = inboxes
                    .queue(frame.attempt, frame.task, frame.channel)
                    .await
                {
                    // Counted before it is queued, so the task never takes it uncounted.
                    let held = slot.held.fetch_add(1, Ordering::Relaxed) + 1;
                    slot.stats.peak.fetch_max(held, Ordering::Relaxed);
                    slot.stats.queued.fetch_add(1, Ordering::Relaxed);
                    slot.stats.received.fetch_add(1, Ordering::Relaxed);
                    let incoming = Incoming {
                        frame,
                        credits: credits_tx.clone(),
                        held: slot.held.clone(),
                        stats: slot.stats.clone(),
                    };
                    // The task may have ended (cancelled): its queue is gone, drop the frame.
                    if slot.queue.send(Box::new(incoming)).is_err() {
                        slot.held.fetch_sub(1, Ordering::Relaxed);
                        slot.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        });
        let credits = futures::stream::unfold(credits_rx, |mut rx| async move {
            rx.recv().await.map(|grant| (Ok(grant), rx))
        });
        Ok(Response::new(Box::pin(credits)))
    }
}

/// A received frame, waiting on its task's queue.
struct Incoming {
    frame: DataFrame,
    credits: mpsc::UnboundedSender<CreditGrant>,
    held: Arc<AtomicU32>,
    stats: Arc<FlowStats>,
}

impl RemoteInput for Incoming {
    fn take(self: Box<Self>) -> Result<(u32, Vec<Message>)> {
        let Incoming {
            frame,
            credits,
            held,
            stats,
        } = *self;
        // Uncounted before the credit goes back, so a channel never counts more frames
        // than its credits.
        held.fetch_sub(1, Ordering::Relaxed);
        stats.queued.fetch_sub(1, Ordering::Relaxed);
        // The frame is off the queue: its credit goes back even if it does not decode (the
        // task then fails, and the job restarts).
        let _ = credits.send(CreditGrant {
            task: frame.task,
            channel: frame.channel,
            credits: 1,
        });
        Ok((frame.channel, codec::decode(frame.messages, frame.batches)?))
    }
}

/// The sending side of one attempt on one worker: a connection per receiving worker, opened
/// when the first channel to it is built.
pub struct AttemptNetwork {
    pub attempt: u64,
    /// Per global task index, the worker that runs it.
    pub task_workers: Vec<String>,
    pub data_addresses: HashMap<String, String>,
    pub credits: u32,
    pub runtime: tokio::runtime::Handle,
    pub auth: Auth,
    pub cancel: Arc<AtomicBool>,
    pub inboxes: Mutex<HashMap<u32, Receiver<RemoteEnvelope>>>,
    stats: Arc<FlowStats>,
    links: Mutex<HashMap<String, Arc<Link>>>,
}

impl AttemptNetwork {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        attempt: u64,
        task_workers: Vec<String>,
        data_addresses: HashMap<String, String>,
        credits: u32,
        runtime: tokio::runtime::Handle,
        auth: Auth,
        cancel: Arc<AtomicBool>,
        (inboxes, stats): (HashMap<u32, Receiver<RemoteEnvelope>>, Arc<FlowStats>),
    ) -> Self {
        AttemptNetwork {
            attempt,
            task_workers,
            data_addresses,
            credits,
            runtime,
            auth,
            cancel,
            inboxes: Mutex::new(inboxes),
            stats,
            links: Mutex::new(HashMap::new()),
        }
    }

    fn link(&self, worker: &str) -> Result<Arc<Link>> {
        let mut links = self
            .links
            .lock()
            .map_err(|_| Error::execution("network", "link table poisoned"))?;
        if let Some(link) = links.get(worker) {
            return Ok(link.clone());
        }
        let address = self.data_addresses.get(worker).ok_or_else(|| {
            Error::execution("network", format!("no data address for worker {worker}"))
        })?;
        let link = Link::open(worker, address, &self.runtime, &self.auth)?;
        links.insert(worker.to_string(), link.clone());
        Ok(link)
    }
}

impl Network for AttemptNetwork {
    fn sender(&self, task: usize, channel: u32) -> Result<Box<dyn RemoteSend>> {
        let worker = self.task_workers.get(task).ok_or_else(|| {
            Error::execution(
                "network",
                format!("task {task} is not placed on any worker"),
            )
        })?;
        let link = self.link(worker)?;
        let gate = link.gate(task as u32, channel, self.credits);
        Ok(Box::new(LinkSender {
            link,
            gate,
            attempt: self.attempt,
            task: task as u32,
            channel,
            cancel: self.cancel.clone(),
            stats: self.stats.clone(),
            frame: FrameBuilder::default(),
            since: None,
        }))
    }

    fn inbox(&self, task: usize) -> Receiver<RemoteEnvelope> {
        self.inboxes
            .lock()
            .ok()
            .and_then(|mut inboxes| inboxes.remove(&(task as u32)))
            // A task this worker was not given: a queue nobody sends to.
            .unwrap_or_else(|| unbounded().1)
    }
}

/// The stream to one receiving worker.
struct Link {
    worker: String,
    frames: mpsc::Sender<DataFrame>,
    gates: Mutex<HashMap<(u32, u32), Arc<Gate>>>,
    broken: Mutex<Option<String>>,
}

impl Link {
    fn open(
        worker: &str,
        address: &str,
        runtime: &tokio::runtime::Handle,
        auth: &Auth,
    ) -> Result<Arc<Link>> {
        // The lazy channel spawns its connection task on the runtime.
        let _entered = runtime.enter();
        let channel = auth.channel_to(address)?;
        let (frames, rx) = mpsc::channel::<DataFrame>(64);
        let link = Arc::new(Link {
            worker: worker.to_string(),
            frames,
            gates: Mutex::new(HashMap::new()),
            broken: Mutex::new(None),
        });
        let mut client = DataPlaneClient::with_interceptor(channel, auth.interceptor()?)
            .max_encoding_message_size(MAX_FRAME_BYTES)
            .max_decoding_message_size(MAX_FRAME_BYTES);
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let reader = link.clone();
        runtime.spawn(async move {
            let reason = match client.exchange(outbound).await {
                Ok(response) => {
                    let mut grants = response.into_inner();
                    loop {
                        match grants.message().await {
                            Ok(Some(grant)) => reader.grant(&grant),
                            Ok(None) => break "the receiving worker closed the stream".to_string(),
                            Err(status) => break status.message().to_string(),
                        }
                    }
                }
                Err(status) => status.message().to_string(),
            };
            reader.fail(reason);
        });
        Ok(link)
    }

    fn gate(&self, task: u32, channel: u32, credits: u32) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .entry((task, channel))
            .or_insert_with(|| Arc::new(Gate::new(credits)))
            .clone()
    }

    fn grant(&self, grant: &CreditGrant) {
        let gate = self
            .gates
            .lock()
            .ok()
            .and_then(|g| g.get(&(grant.task, grant.channel)).cloned());
        if let Some(gate) = gate {
            gate.add(grant.credits);
        }
    }

    fn fail(&self, reason: String) {
        if let Ok(mut broken) = self.broken.lock() {
            broken.get_or_insert(reason);
        }
        if let Ok(gates) = self.gates.lock() {
            gates.values().for_each(|g| g.wake());
        }
    }

    fn error(&self) -> Option<Error> {
        let broken = self.broken.lock().ok()?.clone()?;
        Some(Error::execution(
            "network",
            format!("connection to worker {} lost: {broken}", self.worker),
        ))
    }
}

/// The credits of one channel.
struct Gate {
    credits: Mutex<u32>,
    available: Condvar,
}

impl Gate {
    fn new(credits: u32) -> Self {
        Gate {
            credits: Mutex::new(credits),
            available: Condvar::new(),
        }
    }

    fn add(&self, n: u32) {
        if let Ok(mut credits) = self.credits.lock() {
            *credits += n;
            self.available.notify_all();
        }
    }

    fn wake(&self) {
        self.available.notify_all();
    }

    /// Take a credit, waiting while there is none: whether it had to wait, or `None` when
    /// `stop` says to give up.
    fn acquire(&self, stop: impl Fn() -> bool) -> Option<bool> {
        let mut credits = self.credits.lock().unwrap_or_else(|p| p.into_inner());
        let mut waited = false;
        loop {
            if *credits > 0 {
                *credits -= 1;
                return Some(waited);
            }
            if stop() {
                return None;
            }
            waited = true;
            credits = match self
                .available
                .wait_timeout(credits, Duration::from_millis(100))
            {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// A frame is sent once it holds this many bytes of batches: large enough that the per-frame
/// costs (a credit, an HTTP/2 message, waking the receiver) are small against the rows, small
/// enough that [`CREDITS`] frames per channel stay a few MB.
pub const FRAME_BYTES: usize = 1024 * 1024;

/// The longest a message waits in a frame while the task keeps sending (a task that runs out
/// of input flushes at once).
pub const FRAME_LINGER: Duration = Duration::from_millis(20);

/// One channel's sending end: messages gather in a frame, which goes out when it is full or
/// old, when a barrier, idleness or the end joins it, or when the task asks.
struct LinkSender {
    link: Arc<Link>,
    gate: Arc<Gate>,
    attempt: u64,
    task: u32,
    channel: u32,
    cancel: Arc<AtomicBool>,
    stats: Arc<FlowStats>,
    frame: FrameBuilder,
    /// When the frame's first message came.
    since: Option<Instant>,
}

impl RemoteSend for LinkSender {
    fn send(&mut self, message: Message) -> Result<Duration> {
        let mut waited = Duration::ZERO;
        if let Message::Batch(batch) = &message
            && !self.frame.accepts(batch)
        {
            waited += self.flush()?;
        }
        self.frame.push(&message)?;
        self.since.get_or_insert_with(Instant::now);
        let full = self.frame.bytes() >= FRAME_BYTES;
        let old = self.since.is_some_and(|t| t.elapsed() >= FRAME_LINGER);
        if full || old || !matches!(message, Message::Batch(_) | Message::Watermark(_)) {
            waited += self.flush()?;
        }
        Ok(waited)
    }

    fn flush(&mut self) -> Result<Duration> {
        if self.frame.is_empty() {
            return Ok(Duration::ZERO);
        }
        let link = &self.link;
        let cancel = &self.cancel;
        let started = Instant::now();
        let acquired = self.gate.acquire(|| {
            cancel.load(Ordering::Relaxed) || link.broken.lock().is_ok_and(|b| b.is_some())
        });
        let Some(waited) = acquired else {
            return Err(link.error().unwrap_or_else(|| {
                Error::execution("network", "the job was cancelled while sending")
            }));
        };
        let waited = match waited {
            true => {
                self.stats.credit_waits.fetch_add(1, Ordering::Relaxed);
                started.elapsed()
            }
            false => Duration::ZERO,
        };
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        let (messages, batches) = self.frame.finish()?;
        self.since = None;
        let frame = DataFrame {
            sender: String::new(),
            attempt: self.attempt,
            task: self.task,
            channel: self.channel,
            messages,
            batches,
        };
        self.link.frames.blocking_send(frame).map_err(|_| {
            link.error()
                .unwrap_or_else(|| Error::execution("network", "the connection task stopped"))
        })?;
        Ok(waited)
    }
}
