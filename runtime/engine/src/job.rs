//! Running a SQL job: settings from the script and the command line, planning, execution
//! with a progress display, Ctrl-C, and the summary at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod client;
pub mod control;
pub mod launch;
mod run;

pub use control::LiveJob;
pub use run::{run, run_controlled, run_with};

use crate::catalog::Script;
use crate::checkpoint::CheckpointSettings;
use crate::connectors::options::parse_duration;
use crate::dataflow::graph::JobGraph;
use crate::dataflow::key_group::validate_parallelism;
use crate::dataflow::state::BackendKind;
use crate::error::{Error, Result};
use crate::sql::parser::parse_script;
use crate::sql::planner::{PlanOptions, plan_script};

/// Settings of a job, with Flink's key names where Flink has them.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// `parallelism.default`
    pub parallelism: usize,
    /// `pipeline.max-parallelism`
    pub max_parallelism: usize,
    /// `table.exec.source.idle-timeout` (0 disables)
    pub idle_timeout: Option<Duration>,
    /// `pipeline.auto-watermark-interval`
    pub watermark_interval: Duration,
    /// `state.backend.type`
    pub state_backend: BackendKind,
    /// Where RocksDB instances live (`--state-dir`); a temporary directory when unset.
    pub state_dir: Option<PathBuf>,
    /// Rows per source batch (`weir.batch-size`, Weir's own).
    pub batch_size: usize,
    /// Checkpoints and savepoints (`execution.checkpointing.*`, `state.savepoints.dir`).
    pub checkpoint: CheckpointSettings,
    /// `restart-strategy.*`: what happens when a task fails while the job runs.
    pub restart: RestartStrategy,
    /// `execution.savepoint.path` (`--restore`): a checkpoint or savepoint to start from, or
    /// `latest` for the newest complete checkpoint of this job.
    pub restore: Option<String>,
    /// `execution.savepoint.ignore-unclaimed-state` (`--allow-non-restored-state`).
    pub allow_non_restored_state: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            parallelism: 1,
            max_parallelism: 128,
            idle_timeout: None,
            watermark_interval: Duration::from_millis(200),
            state_backend: BackendKind::RocksDb,
            state_dir: None,
            batch_size: 8192,
            checkpoint: CheckpointSettings::default(),
            restart: RestartStrategy::Default,
            restore: None,
            allow_non_restored_state: false,
        }
    }
}

impl JobSettings {
    /// Apply one `key = value` setting. Unknown keys are accepted and ignored with a warning,
    /// as Flink's `SET` accepts any key.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |message: String| Error::Config {
            key: key.to_string(),
            message,
        };
        let count = |value: &str| -> Result<usize> {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("'{value}' is not a whole number")))
        };
        let duration = |value: &str| -> Result<Duration> {
            parse_duration(value)
                .ok_or_else(|| bad(format!("'{value}' is not a duration like '5s' or '200 ms'")))
        };
        match key {
            "parallelism.default" => self.parallelism = count(value)?,
            "pipeline.max-parallelism" => self.max_parallelism = count(value)?,
            "table.exec.source.idle-timeout" => {
                let d = duration(value)?;
                self.idle_timeout = (!d.is_zero()).then_some(d);
            }
            "pipeline.auto-watermark-interval" => self.watermark_interval = duration(value)?,
            "state.backend.type" | "state.backend" => {
                self.state_backend = BackendKind::parse(value)?
            }
            "weir.batch-size" => {
                self.batch_size = count(value)?;
                if self.batch_size == 0 {
                    return Err(bad("must be at least 1".into()));
                }
            }
            "execution.checkpointing.interval" => {
                let d = duration(value)?;
                self.checkpoint.interval = (!d.is_zero()).then_some(d);
            }
            "execution.checkpointing.dir" | "state.checkpoints.dir" => {
                self.checkpoint.dir = Some(value.to_string())
            }
            "state.savepoints.dir" | "execution.checkpointing.savepoint-dir" => {
                self.checkpoint.savepoint_dir = Some(value.to_string())
            }
            "execution.checkpointing.num-retained" | "state.checkpoints.num-retained" => {
                self.checkpoint.retained = count(value)?;
                if self.checkpoint.retained == 0 {
                    return Err(bad("must be at least 1".into()));
                }
            }
            "execution.checkpointing.timeout" => self.checkpoint.timeout = duration(value)?,
            "execution.checkpointing.tolerable-failed-checkpoints" => {
                self.checkpoint.tolerable_failures = Some(
                    value
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| bad(format!("'{value}' is not a whole number")))?,
                )
            }
            "pipeline.name" => self.checkpoint.job_id = job_id_from(value).map_err(bad)?,
            "execution.savepoint.path" => self.restore = Some(value.to_string()),
            "execution.savepoint.ignore-unclaimed-state" => {
                self.allow_non_restored_state = parse_bool(value).map_err(bad)?
            }
            key if key.starts_with("restart-strategy") => {
                self.restart.apply(key, value).map_err(bad)?
            }
            "execution.runtime-mode" => {
                if !value.eq_ignore_ascii_case("streaming") {
                    return Err(bad(format!(
                        "only 'streaming' is supported, not '{value}' (bounded inputs still end the job)"
                    )));
                }
            }
            "table.local-time-zone" => {
                if !matches!(value, "UTC" | "GMT" | "Z" | "+00:00" | "Etc/UTC") {
                    return Err(bad(format!(
                        "only UTC is supported as the session time zone, not '{value}'"
                    )));
                }
            }
            _ => tracing::warn!(key, value, "setting not used by Weir; ignored"),
        }
        Ok(())
    }

    /// The script's `SET`s, then `overrides` (from the command line), which win.
    pub fn resolve(script: &Script, overrides: &[(String, String)]) -> Result<JobSettings> {
        Self::resolve_with_defaults(script, &[], overrides)
    }

    /// `defaults` first (the job id from the file name), then the script's `SET`s, then
    /// `overrides`.
    pub fn resolve_with_defaults(
        script: &Script,
        defaults: &[(String, String)],
        overrides: &[(String, String)],
    ) -> Result<JobSettings> {
        let mut settings = JobSettings::default();
        for (key, value) in defaults.iter().chain(&script.settings).chain(overrides) {
            settings.apply(key, value)?;
        }
        validate_parallelism(settings.parallelism, settings.max_parallelism)?;
        Ok(settings)
    }

    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            parallelism: self.parallelism,
            max_parallelism: self.max_parallelism,
            watermark_interval: self.watermark_interval,
        }
    }
}

/// A job id usable as a folder name: letters, digits, `-`, `_` and `.`.
pub fn job_id_from(name: &str) -> std::result::Result<String, String> {
    let id: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.chars().all(|c| c == '.') {
        return Err(format!("'{name}' cannot name a job folder"));
    }
    Ok(id)
}

fn parse_bool(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("'{other}' is not true or false")),
    }
}

/// Flink's restart strategies, for failures while the job runs. Failures that another run
/// would meet again (bad SQL, a malformed input row, a wrong option) are never retried.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// Flink's default: exponential delay when checkpointing is on, no restarts otherwise.
    Default,
    None,
    FixedDelay {
        attempts: u32,
        delay: Duration,
    },
    ExponentialDelay {
        initial: Duration,
        max: Duration,
        multiplier: f64,
        /// Weir's own cap (`restart-strategy.exponential-delay.max-attempts`); none by default.
        max_attempts: Option<u32>,
    },
}

impl RestartStrategy {
    const EXPONENTIAL: RestartStrategy = RestartStrategy::ExponentialDelay {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
        multiplier: 1.5,
        max_attempts: None,
    };

    fn apply(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        let duration = || {
            parse_duration(value).ok_or_else(|| format!("'{value}' is not a duration like '5s'"))
        };
        let number = || {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("'{value}' is not a whole number"))
        };
        match key {
            "restart-strategy.type" | "restart-strategy" => {
                *self = match value.trim().to_ascii_lowercase().as_str() {
                    "none" | "off" | "disable" => RestartStrategy::None,
                    "fixed-delay" | "fixeddelay" => RestartStrategy::FixedDelay {
                        attempts: 1,
                        delay: Duration::from_secs(1),
                    },
                    "exponential-delay" | "exponentialdelay" => Self::EXPONENTIAL,
                    other => {
                        return Err(format!(
                            "unknown restart strategy '{other}'; valid: none, fixed-delay, exponential-delay"
                        ));
                    }
                }
            }
            "restart-strategy.fixed-delay.attempts" => {
                if let RestartStrategy::FixedDelay { attempts, .. } = self {
                    *attempts = number()?;
                }
            }
            "restart-strategy.fixed-delay.delay" => {
                if let RestartStrategy::FixedDelay { delay, .. } = self {
                    *delay = duration()?;
                }
            }
            _ if key.starts_with("restart-strategy.exponential-delay.") => {
                if *self == RestartStrategy::Default {
                    *self = Self::EXPONENTIAL;
                }
                if let RestartStrategy::ExponentialDelay {
                    initial,
                    max,
                    multiplier,
                    max_attempts,
                } = self
                {
                    match key.trim_start_matches("restart-strategy.exponential-delay.") {
                        "initial-backoff" => *initial = duration()?,
                        "max-backoff" => *max = duration()?,
                        "backoff-multiplier" => {
                            *multiplier = value
                                .trim()
                                .parse::<f64>()
                                .ok()
                                .filter(|m| *m >= 1.0)
                                .ok_or_else(|| format!("'{value}' is not a number >= 1"))?
                        }
                        "max-attempts" => *max_attempts = Some(number()?),
                        _ => tracing::warn!(key, "restart setting not used by Weir; ignored"),
                    }
                }
            }
            _ => tracing::warn!(key, "restart setting not used by Weir; ignored"),
        }
        Ok(())
    }

    /// The delay before restart number `attempt` (1-based), or `None` when no restart is left.
    pub fn delay(&self, attempt: u32, checkpointing: bool) -> Option<Duration> {
        match self {
            RestartStrategy::Default if checkpointing => Self::EXPONENTIAL.delay(attempt, true),
            RestartStrategy::Default | RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (attempt <= *attempts).then_some(*delay)
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                max_attempts,
            } => {
                if max_attempts.is_some_and(|m| attempt > m) {
                    return None;
                }
                let factor = multiplier.powi(attempt.saturating_sub(1).min(64) as i32);
                Some(initial.mul_f64(factor).min(*max))
            }
        }
    }
}

/// A script read, parsed, and planned.
#[derive(Clone)]
pub struct PlannedJob {
    pub settings: JobSettings,
    pub graph: JobGraph,
}

pub fn read_script(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn plan_sql(sql: &str, overrides: &[(String, String)]) -> Result<PlannedJob> {
    plan_sql_with_defaults(sql, &[], overrides)
}

/// Plan with `defaults` applied before the script's own `SET`s.
pub fn plan_sql_with_defaults(
    sql: &str,
    defaults: &[(String, String)],
    overrides: &[(String, String)],
) -> Result<PlannedJob> {
    let script = parse_script(sql)?;
    let settings = JobSettings::resolve_with_defaults(&script, defaults, overrides)?;
    let graph = plan_script(&script, &settings.plan_options())?;
    Ok(PlannedJob { settings, graph })
}

#[derive(Debug, Clone)]
pub struct JobSummary {
    pub rows_in: u64,
    pub rows_out: u64,
    pub late_rows_dropped: u64,
    /// From the start to the end, without the time spent waiting for workers' slots.
    pub elapsed: Duration,
    pub cancelled: bool,
    /// Where the savepoint taken on Ctrl-C went.
    pub savepoint: Option<String>,
    /// The last complete checkpoint (id and location), if the job took any.
    pub last_checkpoint: Option<(u64, String)>,
    pub checkpoints_completed: u64,
    pub checkpoints_failed: u64,
    /// Restarts after task failures.
    pub restarts: u32,
}

impl JobSummary {
    pub fn rows_per_second(&self) -> f64 {
        self.rows_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How `run` reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A live line on stderr (a terminal) or a log line every 10 s (no terminal).
    Auto,
    Quiet,
}

pub(crate) fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}K", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

pub fn format_watermark(ms: i64) -> String {
    if ms == i64::MAX {
        return "end".into();
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::connectors::format::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_print_as_utc_timestamps() {
        assert_eq!(format_watermark(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            format_watermark(1_586_937_900_123),
            "2020-04-15 08:05:00.123"
        );
        assert_eq!(format_watermark(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn settings_use_flinks_keys_and_reject_bad_values() {
        let mut s = JobSettings::default();
        s.apply("parallelism.default", "4").unwrap();
        s.apply("table.exec.source.idle-timeout", "5 s").unwrap();
        assert_eq!(s.parallelism, 4);
        assert_eq!(s.idle_timeout, Some(Duration::from_secs(5)));
        let err = s.apply("parallelism.default", "four").unwrap_err();
        assert!(err.to_string().contains("parallelism.default"), "{err}");
        assert!(s.apply("state.backend.type", "leveldb").is_err());
    }
}
