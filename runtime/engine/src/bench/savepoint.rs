//! `weir bench --only savepoint-1gb`: a savepoint of about `--state-bytes` of keyed state and
//! its restore at another parallelism, each timed, through `weir run` as a user would do it.
//!
//! 1. A `GROUP BY k` with `MAX` of a 100-character string over `keys` distinct keys (so the
//!    state is RocksDB entries of about 130 bytes each) reads an unbounded `datagen` sequence,
//!    `k = seq % keys`: once `keys` rows went by, every key has its state and the state stops
//!    growing (later rows only update it).
//! 2. When the progress lines (logged every 10 s) add up to 1.2 × `keys` rows, the bench sends
//!    SIGTERM: the job stops with a savepoint. The savepoint's duration (trigger to
//!    `_metadata`) and size come from the coordinator's log line.
//! 3. The same job restores the savepoint at `--restore-parallelism`; the restore time is from
//!    the process start to the last subtask's "restored keyed state" log line (state is
//!    restored before any task starts). The process is then killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::BenchArgs;

pub const NAME: &str = "savepoint-1gb";

/// Savepoint bytes per key, measured: key, row count, the string's MAX state, framing.
const BYTES_PER_KEY: u64 = 130;

/// Give up on a phase after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(900);

fn sql(keys: u64) -> String {
    format!(
        "CREATE TABLE src (seq BIGINT, payload STRING) WITH ('connector' = 'datagen', \
         'rows-per-second' = '1000000000', 'fields.seq.kind' = 'sequence', \
         'fields.seq.start' = '0', 'fields.seq.end' = '{}', 'fields.payload.length' = '100');\n\
         CREATE TABLE sink (k BIGINT, p STRING) WITH ('connector' = 'blackhole');\n\
         INSERT INTO sink SELECT k, MAX(payload) FROM \
         (SELECT MOD(seq, {keys}) AS k, payload FROM src) GROUP BY k;\n",
        i64::MAX - 1
    )
}

/// Starts `weir run` with `args`, logging what the bench reads at info level.
fn spawn(args: &[String]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the weir executable")?;
    Command::new(exe)
        .arg("run")
        .args(args)
        .env(
            "WEIR_LOG",
            "warn,weir_runtime::job=info,weir_runtime::checkpoint=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start weir run")
}

/// The lines of the child's stderr, as they come, on a channel.
fn lines(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// The value of `name=` in a log line.
fn field(line: &str, name: &str) -> Option<f64> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

/// The input rate of a progress line (`… in 1.23M/s …`) in rows per second.
fn input_rate(line: &str) -> Option<f64> {
    let start = line.find(" in ")? + 4;
    let rest = line[start..].trim_start();
    let end = rest.find("/s")?;
    let number = &rest[..end];
    let (digits, scale) = match number.chars().last()? {
        'M' => (&number[..number.len() - 1], 1e6),
        'K' => (&number[..number.len() - 1], 1e3),
        _ => (number, 1.0),
    };
    digits.trim().parse::<f64>().ok().map(|v| v * scale)
}

fn terminate(child: &Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    if !status.success() {
        bail!("kill -TERM {} failed", child.id());
    }
    Ok(())
}

pub fn run(args: &BenchArgs, dir: &Path) -> anyhow::Result<()> {
    let keys = (args.state_bytes / BYTES_PER_KEY).max(1);
    let sql_path = dir.join("savepoint_1gb.sql");
    std::fs::write(&sql_path, sql(keys))?;
    let savepoints = dir.join("savepoints");
    let sql_arg = sql_path.display().to_string();

    // 1–2: build the state, then stop with a savepoint.
    let started = Instant::now();
    let mut build = spawn(&[
        "--parallelism".into(),
        args.parallelism.to_string(),
        "--state-dir".into(),
        dir.join("state-build").display().to_string(),
        "--savepoint-dir".into(),
        format!("file://{}", savepoints.display()),
        sql_arg.clone(),
    ])?;
    let log = lines(&mut build)?;
    let mut built = None;
    let mut savepoint_line = None;
    let mut rows = 0.0;
    let mut last_report = Duration::ZERO;
    while started.elapsed() < PHASE_TIMEOUT {
        let Ok(line) = log.recv_timeout(Duration::from_secs(1)) else {
            if build.try_wait()?.is_some() {
                break;
            }
            continue;
        };
        if line.contains("savepoint complete") {
            savepoint_line = Some(line);
            continue;
        }
        if built.is_none()
            && line.contains("watermark")
            && let Some(rate) = input_rate(&line)
        {
            let now = started.elapsed();
            rows += rate * (now - last_report).as_secs_f64();
            last_report = now;
            if rows >= 1.2 * keys as f64 {
                built = Some(now);
                terminate(&build)?;
            }
        }
    }
    let output = build.wait_with_output()?;
    while let Ok(line) = log.try_recv() {
        if line.contains("savepoint complete") {
            savepoint_line = Some(line);
        }
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .map(str::to_owned)
        .with_context(|| format!("the build run printed no savepoint path: {stdout}"))?;
    let line = savepoint_line.context("no 'savepoint complete' log line")?;
    let savepoint_ms = field(&line, "duration_ms").context("no duration in the log line")?;
    let size = field(&line, "size").context("no size in the log line")?;
    // The parts of the duration the tasks report (the largest of any task).
    let alignment_ms = field(&line, "alignment_ms").unwrap_or(0.0);
    let sync_ms = field(&line, "sync_ms").unwrap_or(0.0);
    let async_ms = field(&line, "async_ms").unwrap_or(0.0);
    let built = built.unwrap_or_default();

    // 3: restore at another parallelism.
    let started = Instant::now();
    let mut restore = spawn(&[
        "--parallelism".into(),
        args.restore_parallelism.to_string(),
        "--state-dir".into(),
        dir.join("state-restore").display().to_string(),
        "--restore".into(),
        path.clone(),
        sql_arg,
    ])?;
    let log = lines(&mut restore)?;
    let mut restored = 0;
    let mut restore_time = None;
    while started.elapsed() < PHASE_TIMEOUT {
        let Ok(line) = log.recv_timeout(Duration::from_secs(1)) else {
            if restore.try_wait()?.is_some() {
                break;
            }
            continue;
        };
        if line.contains("restored keyed state") {
            restored += 1;
            if restored == args.restore_parallelism {
                restore_time = Some(started.elapsed());
                break;
            }
        }
    }
    let _ = restore.kill();
    let _ = restore.wait();
    let restore_time = restore_time.context("the restore did not finish")?;

    println!(
        "{NAME}: {keys} keys, parallelism {} -> {}",
        args.parallelism, args.restore_parallelism
    );
    println!("  state built in        {:>8.2} s", built.as_secs_f64());
    println!(
        "  savepoint             {:>8.2} s  {:.0} MB  {path}",
        savepoint_ms / 1e3,
        size / 1e6
    );
    println!(
        "    slowest task: alignment {:.2} s, synchronous snapshot {:.2} s, files written in \
         {:.2} s (the rest is the barrier's way through in-flight data)",
        alignment_ms / 1e3,
        sync_ms / 1e3,
        async_ms / 1e3
    );
    println!(
        "  restore at p={:<2}       {:>8.2} s  (process start to the last subtask's state)",
        args.restore_parallelism,
        restore_time.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir.join("state-build"));
    let _ = std::fs::remove_dir_all(dir.join("state-restore"));
    let _ = std::fs::remove_dir_all(&savepoints);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_and_log_fields_parse() {
        let line = "2026-11-22T05:00:00Z  INFO weir_runtime::job::run:    20.0s  in      1.23M/s  out      5.0K/s  watermark -  late 0";
        assert_eq!(input_rate(line), Some(1.23e6));
        assert_eq!(
            input_rate("   30.0s  in          1/s  out 1/s  watermark -"),
            Some(1.0)
        );
        let done = "INFO weir_runtime::checkpoint::coordinator: savepoint complete id=3 location=file:///x duration_ms=4567 size=1073741824";
        assert_eq!(field(done, "duration_ms"), Some(4567.0));
        assert_eq!(field(done, "size"), Some(1073741824.0));
    }
}
