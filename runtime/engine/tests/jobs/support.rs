//! Running the `weir` binary on a script and reading what it wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run `weir run` on `sql` (written to a file in `dir`) with extra arguments.
pub fn weir_run(dir: &Path, sql: &str, args: &[&str]) -> Run {
    let script = dir.join("job.sql");
    std::fs::write(&script, sql).expect("write script");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("start weir");
    let run = Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "weir panicked:\n{}",
        run.stderr
    );
    run
}

pub fn weir_run_ok(dir: &Path, sql: &str, args: &[&str]) -> Run {
    let run = weir_run(dir, sql, args);
    assert!(run.success, "weir run failed:\n{}", run.stderr);
    run
}

/// Every line of every visible file under `dir` (part files of the filesystem sink).
pub fn read_lines(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read part file");
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    lines
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The multiset of lines, sorted, for comparing results whose order is not defined.
pub fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Asserts that `got` and `want` hold the same lines as multisets, naming the rows lost and
/// the rows duplicated (or unexpected) instead of printing both whole lists.
#[track_caller]
pub fn assert_same_rows(got: Vec<String>, want: Vec<String>, context: &str) {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for line in want {
        *counts.entry(line).or_default() += 1;
    }
    for line in got {
        *counts.entry(line).or_default() -= 1;
    }
    let lost: Vec<&String> = counts
        .iter()
        .filter(|&(_, &n)| n > 0)
        .map(|(l, _)| l)
        .collect();
    let extra: Vec<&String> = counts
        .iter()
        .filter(|&(_, &n)| n < 0)
        .map(|(l, _)| l)
        .collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "{context}: {} rows lost, {} rows duplicated or unexpected\nlost (first 20): {:?}\nextra (first 20): {:?}",
        lost.len(),
        extra.len(),
        &lost[..lost.len().min(20)],
        &extra[..extra.len().min(20)],
    );
}

/// A small deterministic random generator (xorshift), so inputs are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// Milliseconds since the epoch as Flink prints a TIMESTAMP(3): `yyyy-MM-dd HH:mm:ss.SSS`.
pub fn ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
