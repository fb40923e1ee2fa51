//! Watermark alignment between source subtasks, as Flink's `scan.watermark.alignment.*`
//! table options (FLIP-182): a source subtask whose watermark is more than `max-drift` ahead
//! of the slowest subtask of its alignment group stops reading until the group catches up.
//!
//! Why a job wants it: a task with several inputs holds its watermark at the slowest one,
//! so whatever a faster source sends ahead waits in window (or join) state until the slower
//! one catches up. Two sources that drift apart grow that state with the drift; alignment
//! bounds it by `max-drift`.
//!
//! Membership follows Flink: every subtask of an aligned source is in its group from the
//! start. One that has emitted no watermark yet holds the group at the lowest time (so the
//! others wait for its first watermark), and one that ended or went idle
//! (`table.exec.source.idle-timeout`) holds nobody back. A source that may have no data must
//! therefore have an idle timeout, as in Flink.
//!
//! - In one process the group's minimum is exact: every watermark a source emits updates it.
//! - In a distributed job each worker also sends its subtasks' watermarks to the coordinator
//!   every `scan.watermark.alignment.update-interval` (and once more when its tasks end), and
//!   gets back each group's minimum over the *other* workers' subtasks with how many
//!   reported. Until every subtask of the group on other workers has reported, the remote
//!   minimum is the lowest time. A subtask compares with the lower of the exact local minimum
//!   and the remote one. The remote figure is at most an interval old, so it only ever holds
//!   a source back more than the group's true minimum would; leaving the worker's own
//!   subtasks out of it keeps a subtask from waiting on its own old value. A source can get
//!   at most about `max-drift` ahead per interval, so a job catching up on old data wants an
//!   interval well under the time its sources take to cover `max-drift` of event time.
//! - The check runs after every batch, so a source can overshoot by one batch's event time.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::catalog::TableDef;
use crate::connectors::options::ConnectorOptions;
use crate::dataflow::message::Timestamp;
use crate::error::{Error, Result};

pub const GROUP: &str = "scan.watermark.alignment.group";
pub const MAX_DRIFT: &str = "scan.watermark.alignment.max-drift";
pub const UPDATE_INTERVAL: &str = "scan.watermark.alignment.update-interval";
/// The alignment options: table options of every source connector.
pub const OPTION_KEYS: &[&str] = &[GROUP, MAX_DRIFT, UPDATE_INTERVAL];

/// Flink's default for `scan.watermark.alignment.update-interval`.
const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(1);

/// A source table's alignment options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignmentSpec {
    pub group: String,
    /// Milliseconds of event time a subtask may be ahead of its group's slowest.
    pub max_drift: Timestamp,
    /// How often a worker exchanges its subtasks' watermarks with the coordinator.
    pub update_interval: Duration,
}

impl AlignmentSpec {
    /// The table's alignment, `None` without `scan.watermark.alignment.group`. As in Flink,
    /// the group and the drift go together, and only a table with a watermark can align.
    pub fn of_table(table: &TableDef) -> Result<Option<AlignmentSpec>> {
        let options = ConnectorOptions::new(table);
        let group = options.get(GROUP).map(str::trim);
        let max_drift = options.duration(MAX_DRIFT)?;
        let update_interval = options.duration(UPDATE_INTERVAL)?;
        let error = |message: String| Error::table_options(&table.name, message);
        let (group, max_drift) = match (group, max_drift) {
            (None, None) if update_interval.is_none() => return Ok(None),
            (Some(""), _) => return Err(error(format!("option '{GROUP}' must not be empty"))),
            (Some(group), Some(drift)) => (group, drift),
            (None, _) => {
                return Err(error(format!(
                    "option '{GROUP}' is missing: '{MAX_DRIFT}' and '{UPDATE_INTERVAL}' \
                     only apply to a source in a watermark alignment group"
                )));
            }
            (Some(_), None) => {
                return Err(error(format!(
                    "option '{MAX_DRIFT}' is missing: a watermark alignment group needs the \
                     drift its sources may have"
                )));
            }
        };
        if table.watermark.is_none() {
            return Err(error(format!(
                "option '{GROUP}' needs a WATERMARK declaration on the table: sources are \
                 aligned by their watermarks"
            )));
        }
        let update_interval = update_interval.unwrap_or(DEFAULT_UPDATE_INTERVAL);
        if update_interval.is_zero() {
            return Err(error(format!("option '{UPDATE_INTERVAL}' must be above 0")));
        }
        Ok(Some(AlignmentSpec {
            group: group.to_string(),
            max_drift: i64::try_from(max_drift.as_millis()).unwrap_or(i64::MAX),
            update_interval,
        }))
    }
}

/// One parallel subtask of a source node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceSubtask {
    /// The source node's uid (as in checkpoints).
    pub uid: String,
    pub subtask: usize,
}

/// The watermark of a subtask that has emitted none yet: it holds its group at the lowest
/// time.
const NO_WATERMARK: Timestamp = Timestamp::MIN;
/// The watermark of a subtask that ended or is idle: it holds nobody back.
const LEFT: Timestamp = Timestamp::MAX;

/// The alignment groups of one process's source subtasks (one per attempt).
#[derive(Default)]
pub struct WatermarkAlignment {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per group, the watermark of each of its subtasks here.
    local: HashMap<String, HashMap<SourceSubtask, Timestamp>>,
    /// Per group with subtasks in other processes: how many, and their minimum as the
    /// coordinator last sent it ([`NO_WATERMARK`] until all of them reported).
    remote: HashMap<String, (usize, Timestamp)>,
    /// The shortest update interval of the sources here.
    update_interval: Option<Duration>,
}

impl State {
    fn minimum(&self, group: &str) -> Option<Timestamp> {
        let local = self
            .local
            .get(group)
            .and_then(|m| m.values().copied().min());
        let remote = self.remote.get(group).map(|(_, min)| *min);
        local.into_iter().chain(remote).min()
    }
}

impl WatermarkAlignment {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `subtask`, aligned by `spec`, runs here.
    pub fn register(&self, spec: &AlignmentSpec, subtask: SourceSubtask) {
        let mut state = self.lock();
        state
            .local
            .entry(spec.group.clone())
            .or_default()
            .insert(subtask, NO_WATERMARK);
        state.update_interval = Some(match state.update_interval {
            Some(interval) => interval.min(spec.update_interval),
            None => spec.update_interval,
        });
    }

    /// `count` subtasks of `group` run in other processes: the group waits for them too.
    pub fn expect_remote(&self, group: &str, count: usize) {
        self.lock()
            .remote
            .insert(group.to_string(), (count, NO_WATERMARK));
    }

    /// How often to exchange watermarks with the other processes; `None` when no source
    /// here is aligned.
    pub fn update_interval(&self) -> Option<Duration> {
        self.lock().update_interval
    }

    /// Record `subtask`'s watermark in `group` (`None`: it ended or went idle); the group's
    /// minimum.
    pub fn report(
        &self,
        group: &str,
        subtask: &SourceSubtask,
        watermark: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let mut state = self.lock();
        if let Some(slot) = state
            .local
            .get_mut(group)
            .and_then(|members| members.get_mut(subtask))
        {
            *slot = watermark.unwrap_or(LEFT);
        }
        state.minimum(group)
    }

    /// Every aligned subtask here with its group and watermark, for the coordinator (the
    /// lowest time for one without a watermark yet, the highest for one that left).
    pub fn local_watermarks(&self) -> Vec<(String, SourceSubtask, Timestamp)> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .local
            .iter()
            .flat_map(|(group, members)| {
                members
                    .iter()
                    .map(move |(s, w)| (group.clone(), s.clone(), *w))
            })
            .collect();
        out.sort();
        out
    }

    /// What the coordinator last sent: per group, the minimum over the subtasks in other
    /// processes and how many of them reported.
    pub fn set_remote_minima(&self, minima: &HashMap<String, (Timestamp, usize)>) {
        let mut state = self.lock();
        for (group, (expected, min)) in state.remote.iter_mut() {
            *min = match minima.get(group) {
                Some((m, reported)) if reported >= expected => *m,
                _ => NO_WATERMARK,
            };
        }
    }
}

/// Per group, the lowest watermark over `reports` (group, watermark pairs) and how many
/// there were.
pub fn group_minima<'a>(
    reports: impl IntoIterator<Item = (&'a str, Timestamp)>,
) -> HashMap<String, (Timestamp, usize)> {
    let mut minima: HashMap<String, (Timestamp, usize)> = HashMap::new();
    for (group, watermark) in reports {
        match minima.get_mut(group) {
            Some((m, n)) => {
                *m = (*m).min(watermark);
                *n += 1;
            }
            None => {
                minima.insert(group.to_string(), (watermark, 1));
            }
        }
    }
    minima
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subtask(uid: &str, subtask: usize) -> SourceSubtask {
        SourceSubtask {
            uid: uid.into(),
            subtask,
        }
    }

    fn spec(update_interval: Duration) -> AlignmentSpec {
        AlignmentSpec {
            group: "g".into(),
            max_drift: 10,
            update_interval,
        }
    }

    #[test]
    fn every_subtask_holds_its_group_from_the_start_until_it_leaves() {
        let spec = spec(Duration::from_secs(1));
        let a = WatermarkAlignment::default();
        a.register(&spec, subtask("s", 0));
        a.register(&spec, subtask("s", 1));
        // Subtask 1 has no watermark yet: the group is at the lowest time.
        assert_eq!(
            a.report("g", &subtask("s", 0), Some(500)),
            Some(NO_WATERMARK)
        );
        assert_eq!(a.report("g", &subtask("s", 1), Some(100)), Some(100));
        assert_eq!(a.report("g", &subtask("s", 0), Some(900)), Some(100));
        // Another group, or a subtask not registered, does not count.
        assert_eq!(a.report("h", &subtask("t", 0), Some(5)), None);
        assert_eq!(a.report("g", &subtask("x", 0), Some(5)), Some(100));
        // The slow subtask ends (or goes idle): the group is only the fast one.
        assert_eq!(a.report("g", &subtask("s", 1), None), Some(900));
        assert_eq!(a.report("g", &subtask("s", 0), None), Some(LEFT));
    }

    #[test]
    fn subtasks_elsewhere_hold_the_group_until_all_of_them_reported() {
        let spec = spec(Duration::from_millis(50));
        let a = WatermarkAlignment::default();
        a.register(&spec, subtask("s", 0));
        a.expect_remote("g", 2);
        assert_eq!(a.update_interval(), Some(Duration::from_millis(50)));
        assert_eq!(
            a.report("g", &subtask("s", 0), Some(600)),
            Some(NO_WATERMARK)
        );
        // One of the two reported: still waiting for the other.
        a.set_remote_minima(&HashMap::from([("g".to_string(), (200, 1))]));
        assert_eq!(
            a.report("g", &subtask("s", 0), Some(600)),
            Some(NO_WATERMARK)
        );
        a.set_remote_minima(&HashMap::from([("g".to_string(), (200, 2))]));
        assert_eq!(a.report("g", &subtask("s", 0), Some(600)), Some(200));
        // With the subtask here gone, the others still stand.
        assert_eq!(a.report("g", &subtask("s", 0), None), Some(200));
        a.set_remote_minima(&HashMap::from([("g".to_string(), (LEFT, 2))]));
        assert_eq!(a.report("g", &subtask("s", 0), Some(700)), Some(700));
        assert_eq!(
            a.local_watermarks(),
            vec![("g".to_string(), subtask("s", 0), 700)]
        );
    }

    #[test]
    fn minima_are_per_group_with_how_many_reported() {
        let minima = group_minima([("g", 5), ("h", 1), ("g", 3), ("g", 9)]);
        assert_eq!(
            minima,
            HashMap::from([("g".into(), (3, 3)), ("h".into(), (1, 1))])
        );
    }
}
