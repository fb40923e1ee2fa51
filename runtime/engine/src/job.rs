//! Running a SQL job: settings from the script and the command line, planning, execution
//! with a progress display, Ctrl-C, and the summary at the end.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::catalog::Script;
use crate::connectors::options::parse_duration;
use crate::dataflow::executor::{ExecutionConfig, execute};
use crate::dataflow::graph::JobGraph;
use crate::dataflow::key_group::validate_parallelism;
use crate::dataflow::state::{BackendKind, StateProvider};
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
        let mut settings = JobSettings::default();
        for (key, value) in script.settings.iter().chain(overrides) {
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

/// A script read, parsed, and planned.
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
    let script = parse_script(sql)?;
    let settings = JobSettings::resolve(&script, overrides)?;
    let graph = plan_script(&script, &settings.plan_options())?;
    Ok(PlannedJob { settings, graph })
}

#[derive(Debug, Clone)]
pub struct JobSummary {
    pub rows_in: u64,
    pub rows_out: u64,
    pub late_rows_dropped: u64,
    pub elapsed: Duration,
    pub cancelled: bool,
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

/// Run a planned job to the end (bounded sources) or until `stop` is set (Ctrl-C).
pub fn run(job: &PlannedJob, progress: Progress, stop: Arc<AtomicBool>) -> Result<JobSummary> {
    let run_dir = format!("weir-{}-{}", std::process::id(), unique_suffix());
    let state_dir = match &job.settings.state_dir {
        Some(dir) => dir.join(run_dir),
        None => std::env::temp_dir().join(run_dir),
    };
    let config = ExecutionConfig {
        batch_size: job.settings.batch_size,
        channel_capacity: 16,
        idle_timeout: job.settings.idle_timeout,
        state: StateProvider::new(job.settings.state_backend, state_dir.clone()),
    };
    let started = Instant::now();
    let running = execute(&job.graph, &config)?;
    let terminal = std::io::stderr().is_terminal();
    let mut last_report = Instant::now();
    let mut last_rows = (0u64, 0u64);
    let mut cancelled = false;
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        if stop.load(Ordering::SeqCst) && !cancelled {
            cancelled = true;
            running.cancel();
        }
        let every = if terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        if progress == Progress::Auto && last_report.elapsed() >= every {
            let m = &running.metrics;
            let secs = last_report.elapsed().as_secs_f64();
            let (rows_in, rows_out) = (m.rows_in(), m.rows_out());
            let line = format!(
                "{:>7.1}s  in {:>10}/s  out {:>10}/s  watermark {}  late {}",
                started.elapsed().as_secs_f64(),
                human((rows_in - last_rows.0) as f64 / secs),
                human((rows_out - last_rows.1) as f64 / secs),
                m.watermark()
                    .map(format_watermark)
                    .unwrap_or_else(|| "-".into()),
                m.late_rows(),
            );
            if terminal {
                eprint!("\r{line}");
                let _ = std::io::stderr().flush();
            } else {
                tracing::info!("{line}");
            }
            last_rows = (rows_in, rows_out);
            last_report = Instant::now();
        }
    }
    if terminal && progress == Progress::Auto {
        eprintln!();
    }
    let metrics = running.metrics.clone();
    let result = running.wait();
    let summary = JobSummary {
        rows_in: metrics.rows_in(),
        rows_out: metrics.rows_out(),
        late_rows_dropped: metrics.late_rows(),
        elapsed: started.elapsed(),
        cancelled,
    };
    // Without checkpoints, a finished job's state has no further use.
    if state_dir.exists() {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    result.map(|()| summary)
}

fn unique_suffix() -> u128 {
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
