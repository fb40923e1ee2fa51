//! The operator's Prometheus metrics, rendered in the text exposition format (0.0.4) that
//! `/metrics` serves.
//!
//! A small hand-written registry rather than a crate: neither `prometheus` nor
//! `prometheus-client` is in the dependency tree, the operator exports five fixed families, and
//! rendering them is a few dozen lines. Label values come from the operator's own vocabulary
//! (results, error reasons, lifecycle states) and are escaped all the same.
//!
//! | family | type | labels |
//! |---|---|---|
//! | `weir_operator_reconciliations_total` | counter | `result` |
//! | `weir_operator_reconcile_errors_total` | counter | `reason` |
//! | `weir_operator_flinkjobs` | gauge | `lifecycle_state` |
//! | `weir_operator_upgrade_duration_seconds` | histogram | — |
//! | `weir_operator_leader` | gauge | — |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the upgrade duration buckets: upgrades take from seconds (stateless)
/// to many minutes (a large savepoint), and the rollback timeout bounds them from above.
const UPGRADE_BUCKETS: [f64; 11] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
];

/// The operator's metrics. Shared as `Arc<Metrics>` between reconcile and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    reconciliations: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    lifecycle: BTreeMap<String, u64>,
    upgrades: Histogram,
    leader: bool,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket of [`UPGRADE_BUCKETS`] (not cumulative); the last slot is `+Inf`.
    buckets: [u64; UPGRADE_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Empty metrics: every family is rendered, with no series until something is counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state lock. Nothing panics while holding it, so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one finished reconciliation with its result (e.g. `ok`, `requeue`, `error`).
    pub fn reconciled(&self, result: &str) {
        *self
            .lock()
            .reconciliations
            .entry(result.to_owned())
            .or_default() += 1;
    }

    /// Counts one reconcile error by its reason (a stable, low-cardinality word such as
    /// `invalid_spec` or `apply_statefulset`, never a message).
    pub fn error(&self, reason: &str) {
        *self.lock().errors.entry(reason.to_owned()).or_default() += 1;
    }

    /// Sets the number of FlinkJobs per lifecycle state. States seen before and missing now drop
    /// to 0 rather than vanishing, so dashboards see the decrease.
    pub fn set_lifecycle_counts(&self, counts: &BTreeMap<String, u64>) {
        let mut state = self.lock();
        for value in state.lifecycle.values_mut() {
            *value = 0;
        }
        for (lifecycle, count) in counts {
            state.lifecycle.insert(lifecycle.clone(), *count);
        }
    }

    /// Records how long a finished upgrade took, from its start to Stable (or rolled back).
    pub fn upgrade_finished(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut state = self.lock();
        let slot = UPGRADE_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(UPGRADE_BUCKETS.len());
        state.upgrades.buckets[slot] += 1;
        state.upgrades.sum += seconds;
        state.upgrades.count += 1;
    }

    /// Records whether this replica holds the leader Lease.
    pub fn set_leader(&self, leader: bool) {
        self.lock().leader = leader;
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        family(
            &mut out,
            "weir_operator_reconciliations_total",
            "counter",
            "FlinkJob reconciliations, by result.",
        );
        labelled(
            &mut out,
            "weir_operator_reconciliations_total",
            "result",
            &state.reconciliations,
        );
        family(
            &mut out,
            "weir_operator_reconcile_errors_total",
            "counter",
            "FlinkJob reconcile errors, by reason.",
        );
        labelled(
            &mut out,
            "weir_operator_reconcile_errors_total",
            "reason",
            &state.errors,
        );
        family(
            &mut out,
            "weir_operator_flinkjobs",
            "gauge",
            "FlinkJob resources, by lifecycle state.",
        );
        labelled(
            &mut out,
            "weir_operator_flinkjobs",
            "lifecycle_state",
            &state.lifecycle,
        );
        let name = "weir_operator_upgrade_duration_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time from the start of an upgrade to its end (stable or rolled back).",
        );
        let mut cumulative = 0;
        for (bound, count) in UPGRADE_BUCKETS.iter().zip(&state.upgrades.buckets) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", state.upgrades.count);
        let _ = writeln!(out, "{name}_sum {}", state.upgrades.sum);
        let _ = writeln!(out, "{name}_count {}", state.upgrades.count);
        family(
            &mut out,
            "weir_operator_leader",
            "gauge",
            "1 while this replica holds the leader Lease.",
        );
        let _ = writeln!(out, "weir_operator_leader {}", u8::from(state.leader));
        out
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one series per entry, labelled `label="key"`.
fn labelled(out: &mut String, name: &str, label: &str, series: &BTreeMap<String, u64>) {
    for (value, count) in series {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
}

/// Escapes a label value as the exposition format requires: backslash, quote and newline.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(rendered: &str, series: &str) -> Option<f64> {
        rendered
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_are_rendered_per_label() {
        let metrics = Metrics::new();
        metrics.reconciled("ok");
        metrics.reconciled("ok");
        metrics.reconciled("error");
        metrics.error("apply_statefulset");
        let out = metrics.render();
        let series = "weir_operator_reconciliations_total";
        assert_eq!(
            line_value(&out, &format!("{series}{{result=\"ok\"}}")),
            Some(2.0)
        );
        assert_eq!(
            line_value(&out, &format!("{series}{{result=\"error\"}}")),
            Some(1.0)
        );
        assert!(out.contains("# TYPE weir_operator_reconciliations_total counter\n"));
        assert!(
            out.contains("weir_operator_reconcile_errors_total{reason=\"apply_statefulset\"} 1\n")
        );
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let out = Metrics::new().render();
        let families = [
            ("weir_operator_reconciliations_total", "counter"),
            ("weir_operator_reconcile_errors_total", "counter"),
            ("weir_operator_flinkjobs", "gauge"),
            ("weir_operator_upgrade_duration_seconds", "histogram"),
            ("weir_operator_leader", "gauge"),
        ];
        for (name, kind) in families {
            assert!(
                out.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            assert!(
                out.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} has no TYPE"
            );
        }
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
            assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
            let name = series.split('{').next().unwrap_or(series);
            let declared = families
                .iter()
                .any(|(family, _)| name.strip_prefix(family).is_some());
            assert!(declared, "sample {line:?} of an undeclared family");
        }
    }

    #[test]
    fn lifecycle_gauge_keeps_vanished_states_at_zero() {
        let metrics = Metrics::new();
        let counts = BTreeMap::from([("Running".to_owned(), 2), ("Upgrading".to_owned(), 1)]);
        metrics.set_lifecycle_counts(&counts);
        metrics.set_lifecycle_counts(&BTreeMap::from([("Stable".to_owned(), 3)]));
        let out = metrics.render();
        let gauge = "weir_operator_flinkjobs";
        assert_eq!(
            line_value(&out, &format!("{gauge}{{lifecycle_state=\"Stable\"}}")),
            Some(3.0)
        );
        assert_eq!(
            line_value(&out, &format!("{gauge}{{lifecycle_state=\"Running\"}}")),
            Some(0.0)
        );
        assert_eq!(
            line_value(&out, &format!("{gauge}{{lifecycle_state=\"Upgrading\"}}")),
            Some(0.0)
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_every_upgrade() {
        let metrics = Metrics::new();
        metrics.upgrade_finished(Duration::from_secs(3));
        metrics.upgrade_finished(Duration::from_secs(45));
        metrics.upgrade_finished(Duration::from_secs(60));
        metrics.upgrade_finished(Duration::from_secs(10_000));
        let out = metrics.render();
        let bucket = |le: &str| {
            line_value(
                &out,
                &format!("weir_operator_upgrade_duration_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("5"), Some(1.0));
        assert_eq!(bucket("30"), Some(1.0));
        assert_eq!(bucket("60"), Some(3.0), "60 s falls in the le=60 bucket");
        assert_eq!(bucket("7200"), Some(3.0));
        assert_eq!(bucket("+Inf"), Some(4.0));
        assert_eq!(
            line_value(&out, "weir_operator_upgrade_duration_seconds_count"),
            Some(4.0)
        );
        assert_eq!(
            line_value(&out, "weir_operator_upgrade_duration_seconds_sum"),
            Some(10_108.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.error("a\"b\\c\nd");
        let out = metrics.render();
        assert!(out.contains(r#"weir_operator_reconcile_errors_total{reason="a\"b\\c\nd"} 1"#));
    }

    #[test]
    fn leader_gauge_follows_the_lease() {
        let metrics = Metrics::new();
        assert_eq!(
            line_value(&metrics.render(), "weir_operator_leader"),
            Some(0.0)
        );
        metrics.set_leader(true);
        assert_eq!(
            line_value(&metrics.render(), "weir_operator_leader"),
            Some(1.0)
        );
    }
}
