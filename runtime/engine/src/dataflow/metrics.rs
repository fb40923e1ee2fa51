//! Counters a running job exposes: rows in and out, the watermark at the sinks, late rows,
//! and per node of the graph (by uid, summed over its subtasks) Flink's operator metrics:
//! `numRecordsIn`, `numRecordsOut`, the time its task spent back-pressured, and its current
//! output watermark. Shared between task threads, the progress display and the control API
//! with relaxed atomics.
//!
//! The executor creates one [`JobMetrics`] per attempt; each task, when it starts, takes a
//! view of it ([`Chain::attach_metrics`]) that holds its own nodes' counters, so counting on
//! the hot path is an index and an atomic add, never a lookup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_rpc::model::Network;

use crate::checkpoint::NodeRef;
use crate::dataflow::message::Timestamp;
use crate::dataflow::task::{Chain, Head, Tail};

#[derive(Debug)]
pub struct JobMetrics {
    shared: Arc<Shared>,
    /// In a task's view: its chain's nodes. `None` in the job-wide object.
    chain: Option<ChainNodes>,
}

#[derive(Debug)]
struct Shared {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    late_rows: AtomicU64,
    /// Per sink subtask: the last watermark it saw. The job's watermark is their minimum.
    sink_watermarks: Vec<AtomicI64>,
    /// Per node uid, registered by its tasks as they start.
    nodes: Mutex<BTreeMap<String, Arc<NodeMetrics>>>,
    /// A distributed job's data plane, summed over its workers' latest heartbeats.
    network: Mutex<Option<Network>>,
}

/// One node's counters over all its subtasks.
#[derive(Debug)]
pub struct NodeMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    /// Nanoseconds its tasks spent blocked sending to a full downstream channel.
    back_pressured: Arc<AtomicU64>,
    /// Per subtask, the last watermark it emitted.
    watermarks: Vec<AtomicI64>,
}

/// What [`JobMetrics::node`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeFigures {
    pub records_in: u64,
    pub records_out: u64,
    pub back_pressured_nanos: u64,
    /// Minimum over subtasks; `None` until every subtask emitted one.
    pub output_watermark: Option<Timestamp>,
}

/// One node's figures as this process counts them (over the subtasks it runs), with the
/// last watermark of each subtask that has one: what a worker reports to its coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeReport {
    pub uid: String,
    pub records_in: u64,
    pub records_out: u64,
    pub back_pressured_nanos: u64,
    pub watermarks: Vec<(usize, Timestamp)>,
}

/// A node of a task's chain and the subtask the task runs.
type Slot = (Arc<NodeMetrics>, usize);

#[derive(Debug, Default)]
struct ChainNodes {
    source: Option<Slot>,
    operators: Vec<Slot>,
    sink: Option<Slot>,
}

impl JobMetrics {
    pub fn new(sink_subtasks: usize) -> Self {
        JobMetrics {
            shared: Arc::new(Shared {
                rows_in: AtomicU64::new(0),
                rows_out: AtomicU64::new(0),
                late_rows: AtomicU64::new(0),
                sink_watermarks: (0..sink_subtasks)
                    .map(|_| AtomicI64::new(Timestamp::MIN))
                    .collect(),
                nodes: Mutex::new(BTreeMap::new()),
                network: Mutex::new(None),
            }),
            chain: None,
        }
    }

    fn register(&self, node: &NodeRef) -> Slot {
        let mut nodes = self.shared.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = nodes.entry(node.uid.clone()).or_insert_with(|| {
            Arc::new(NodeMetrics {
                records_in: AtomicU64::new(0),
                records_out: AtomicU64::new(0),
                back_pressured: Arc::new(AtomicU64::new(0)),
                watermarks: (0..node.parallelism.max(node.subtask + 1))
                    .map(|_| AtomicI64::new(Timestamp::MIN))
                    .collect(),
            })
        });
        (metrics.clone(), node.subtask)
    }

    /// A task's view: the same job-wide counters, plus its chain's nodes (registered here).
    fn for_chain(
        &self,
        source: Option<&NodeRef>,
        operators: &[NodeRef],
        sink: Option<&NodeRef>,
    ) -> Self {
        JobMetrics {
            shared: self.shared.clone(),
            chain: Some(ChainNodes {
                source: source.map(|n| self.register(n)),
                operators: operators.iter().map(|n| self.register(n)).collect(),
                sink: sink.map(|n| self.register(n)),
            }),
        }
    }

    /// Rows a source read (and, in a source task's view, the source node emitted).
    pub fn add_rows_in(&self, n: u64) {
        self.shared.rows_in.fetch_add(n, Ordering::Relaxed);
        if let Some((node, _)) = self.chain.as_ref().and_then(|c| c.source.as_ref()) {
            node.records_out.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Rows a sink wrote (in a sink task's view, both in and out of the sink node).
    pub fn add_rows_out(&self, n: u64) {
        self.shared.rows_out.fetch_add(n, Ordering::Relaxed);
        if let Some((node, _)) = self.chain.as_ref().and_then(|c| c.sink.as_ref()) {
            node.records_in.fetch_add(n, Ordering::Relaxed);
            node.records_out.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn add_late_rows(&self, n: u64) {
        self.shared.late_rows.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_sink_watermark(&self, sink_subtask: usize, watermark: Timestamp) {
        if let Some(w) = self.shared.sink_watermarks.get(sink_subtask) {
            w.fetch_max(watermark, Ordering::Relaxed);
        }
        if let Some(sink) = self.chain.as_ref().and_then(|c| c.sink.as_ref()) {
            set_watermark(sink, watermark);
        }
    }

    /// Rows into operator `at` of the task's chain.
    pub fn operator_in(&self, at: usize, n: usize) {
        if let Some((node, _)) = self.chain.as_ref().and_then(|c| c.operators.get(at)) {
            node.records_in.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Rows out of operator `at` of the task's chain.
    pub fn operator_out(&self, at: usize, n: usize) {
        if let Some((node, _)) = self.chain.as_ref().and_then(|c| c.operators.get(at)) {
            node.records_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// A watermark reaching position `at` of the chain: the output watermark of operator
    /// `at - 1`, or at 0 of the source (in a source task; in other tasks it is the input's).
    pub fn chain_watermark(&self, at: usize, watermark: Timestamp) {
        let Some(chain) = &self.chain else {
            return;
        };
        let slot = match at.checked_sub(1) {
            Some(operator) => chain.operators.get(operator),
            None => chain.source.as_ref(),
        };
        if let Some(slot) = slot {
            set_watermark(slot, watermark);
        }
    }

    /// Where the chain's last node counts the time its output edges block.
    fn back_pressure_counter(&self) -> Option<Arc<AtomicU64>> {
        let chain = self.chain.as_ref()?;
        let (node, _) = chain.operators.last().or(chain.source.as_ref())?;
        Some(node.back_pressured.clone())
    }

    /// Record the data plane's figures (a distributed job's coordinator does, from heartbeats).
    pub fn set_network(&self, network: Network) {
        *self
            .shared
            .network
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(network);
    }

    /// The data plane's figures; `None` for a job in one process.
    pub fn network(&self) -> Option<Network> {
        *self
            .shared
            .network
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn rows_in(&self) -> u64 {
        self.shared.rows_in.load(Ordering::Relaxed)
    }

    pub fn rows_out(&self) -> u64 {
        self.shared.rows_out.load(Ordering::Relaxed)
    }

    pub fn late_rows(&self) -> u64 {
        self.shared.late_rows.load(Ordering::Relaxed)
    }

    /// The minimum watermark over sink subtasks, `None` before every sink has seen one.
    pub fn watermark(&self) -> Option<Timestamp> {
        let min = self
            .shared
            .sink_watermarks
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .min()?;
        (min != Timestamp::MIN).then_some(min)
    }

    /// The last watermark sink subtask `sink_subtask` saw, `None` before it saw one.
    pub fn sink_watermark(&self, sink_subtask: usize) -> Option<Timestamp> {
        let w = self.shared.sink_watermarks.get(sink_subtask)?;
        Some(w.load(Ordering::Relaxed)).filter(|w| *w != Timestamp::MIN)
    }

    /// A node's figures by uid; `None` before any of its tasks started.
    pub fn node(&self, uid: &str) -> Option<NodeFigures> {
        let nodes = self.shared.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let node = nodes.get(uid)?;
        let min = node
            .watermarks
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .min()
            .filter(|w| *w != Timestamp::MIN);
        Some(NodeFigures {
            records_in: node.records_in.load(Ordering::Relaxed),
            records_out: node.records_out.load(Ordering::Relaxed),
            back_pressured_nanos: node.back_pressured.load(Ordering::Relaxed),
            output_watermark: min,
        })
    }
}

impl JobMetrics {
    /// Every node a task of this process registered, with what it counted here.
    pub fn node_reports(&self) -> Vec<NodeReport> {
        let nodes = self.shared.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .map(|(uid, node)| NodeReport {
                uid: uid.clone(),
                records_in: node.records_in.load(Ordering::Relaxed),
                records_out: node.records_out.load(Ordering::Relaxed),
                back_pressured_nanos: node.back_pressured.load(Ordering::Relaxed),
                watermarks: node
                    .watermarks
                    .iter()
                    .enumerate()
                    .map(|(subtask, w)| (subtask, w.load(Ordering::Relaxed)))
                    .filter(|(_, w)| *w != Timestamp::MIN)
                    .collect(),
            })
            .collect()
    }

    /// Take in a node's figures counted in other processes (a coordinator, from its
    /// workers' reports): `report` holds totals over all of them, and each subtask's
    /// watermark. Totals and watermarks only grow, so a late or missing report never turns
    /// a figure back.
    pub fn merge_node(&self, report: &NodeReport, parallelism: usize) {
        let mut nodes = self.shared.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let node = nodes.entry(report.uid.clone()).or_insert_with(|| {
            Arc::new(NodeMetrics {
                records_in: AtomicU64::new(0),
                records_out: AtomicU64::new(0),
                back_pressured: Arc::new(AtomicU64::new(0)),
                watermarks: (0..parallelism)
                    .map(|_| AtomicI64::new(Timestamp::MIN))
                    .collect(),
            })
        });
        node.records_in
            .fetch_max(report.records_in, Ordering::Relaxed);
        node.records_out
            .fetch_max(report.records_out, Ordering::Relaxed);
        node.back_pressured
            .fetch_max(report.back_pressured_nanos, Ordering::Relaxed);
        for (subtask, watermark) in &report.watermarks {
            if let Some(w) = node.watermarks.get(*subtask) {
                w.fetch_max(*watermark, Ordering::Relaxed);
            }
        }
    }
}

fn set_watermark((node, subtask): &Slot, watermark: Timestamp) {
    if let Some(w) = node.watermarks.get(*subtask) {
        w.fetch_max(watermark, Ordering::Relaxed);
    }
}

impl Chain {
    /// Called once when the task starts: swap the job-wide metrics for this task's view and
    /// let the output edges count back-pressured time on the chain's last node.
    pub(crate) fn attach_metrics(&mut self, head: &Head) {
        let source = match head {
            Head::Source { node, .. } => Some(node),
            Head::Input { .. } => None,
        };
        let sink = match &self.tail {
            Tail::Sink { node, .. } => Some(node),
            Tail::Outputs(_) => None,
        };
        let view = self.metrics.for_chain(source, &self.nodes, sink);
        if let (Tail::Outputs(outputs), Some(counter)) =
            (&mut self.tail, view.back_pressure_counter())
        {
            for output in outputs {
                output.count_blocked_time(counter.clone());
            }
        }
        self.metrics = Arc::new(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, parallelism: usize, subtask: usize) -> NodeRef {
        NodeRef {
            uid: uid.into(),
            name: uid.into(),
            parallelism,
            subtask,
        }
    }

    #[test]
    fn task_views_count_per_node_over_subtasks() {
        let job = JobMetrics::new(2);
        let operators = [node("calc", 2, 0)];
        let first = job.for_chain(Some(&node("src", 2, 0)), &operators, None);
        let second = job.for_chain(Some(&node("src", 2, 1)), &[node("calc", 2, 1)], None);
        first.add_rows_in(10);
        second.add_rows_in(5);
        first.operator_in(0, 10);
        first.operator_out(0, 4);
        second.chain_watermark(1, 300);
        assert_eq!(job.rows_in(), 15);
        let src = job.node("src").unwrap();
        assert_eq!((src.records_in, src.records_out), (0, 15));
        let calc = job.node("calc").unwrap();
        assert_eq!((calc.records_in, calc.records_out), (10, 4));
        // One subtask has no watermark yet: the node has none.
        assert_eq!(calc.output_watermark, None);
        first.chain_watermark(1, 200);
        assert_eq!(job.node("calc").unwrap().output_watermark, Some(200));
        assert_eq!(job.node("missing"), None);
    }

    #[test]
    fn reports_from_two_processes_merge_into_one_node() {
        let worker = |subtask: usize, rows: u64, watermark: i64| {
            let job = JobMetrics::new(0);
            let view = job.for_chain(Some(&node("src", 2, subtask)), &[], None);
            view.add_rows_in(rows);
            view.chain_watermark(0, watermark);
            job.node_reports()
        };
        let (first, second) = (worker(0, 10, 500), worker(1, 5, 300));
        assert_eq!(first[0].watermarks, vec![(0, 500)]);
        let coordinator = JobMetrics::new(0);
        let mut total = first[0].clone();
        total.records_out += second[0].records_out;
        total
            .watermarks
            .extend(second[0].watermarks.iter().copied());
        coordinator.merge_node(&total, 2);
        let src = coordinator.node("src").unwrap();
        assert_eq!((src.records_out, src.output_watermark), (15, Some(300)));
        // A report from before (smaller totals) does not turn the figures back.
        coordinator.merge_node(&first[0], 2);
        assert_eq!(coordinator.node("src").unwrap().records_out, 15);
    }

    #[test]
    fn sinks_count_rows_and_watermarks_and_input_watermarks_are_not_outputs() {
        let job = JobMetrics::new(1);
        let sink = job.for_chain(None, &[], Some(&node("sink", 1, 0)));
        sink.chain_watermark(0, 50);
        sink.add_rows_out(3);
        sink.set_sink_watermark(0, 70);
        let figures = job.node("sink").unwrap();
        assert_eq!((figures.records_in, figures.records_out), (3, 3));
        assert_eq!(figures.output_watermark, Some(70));
        assert_eq!(job.watermark(), Some(70));
        assert!(sink.back_pressure_counter().is_none());
    }
}
