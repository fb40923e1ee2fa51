//! Distributed execution through the real binaries on loopback: `weir coordinator` and
//! `weir worker` processes run the windowed job with checkpoints while workers and the
//! coordinator are killed with SIGKILL and replaced, and a job stopped with a savepoint
//! through the control API is restored at another parallelism on another number of workers.
//! The committed output must equal a failure-free run each time.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::checkpoints::{expected, window_job};
use crate::support::{read_lines, sorted};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A process whose stderr lines are collected on a thread (so its pipe never fills).
struct Process {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(args: &[&str], dir: &Path) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weir");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        Process {
            child,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Wait for a stderr line starting with `prefix`; the rest of it.
    fn line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                    self.seen.push(line);
                }
                Err(_) => panic!("no line '{prefix}…' in:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("poll weir").is_none()
    }

    fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Wait for the process to exit; success, stdout, and every stderr line.
    fn finish(mut self, limit: Duration) -> (bool, String, String) {
        let deadline = Instant::now() + limit;
        while self.running() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = self.child.wait_with_output().expect("wait for weir");
        self.seen.extend(self.stderr.try_iter());
        let stderr = self.seen.join("\n");
        assert!(!stderr.contains("panicked"), "weir panicked:\n{stderr}");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr,
        )
    }
}

/// A job folder: the windowed job's script, its output, checkpoint and savepoint folders.
struct JobDir {
    dir: tempfile::TempDir,
}

impl JobDir {
    fn new(rate: i64) -> JobDir {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("out");
        std::fs::write(
            dir.path().join("job.sql"),
            window_job(&out, rate, "SUM", ""),
        )
        .expect("test file I/O");
        JobDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn script(&self) -> String {
        self.path().join("job.sql").display().to_string()
    }

    fn checkpoints(&self) -> String {
        format!("file://{}", self.path().join("ckpt").display())
    }

    fn output(&self) -> Vec<String> {
        sorted(read_lines(&self.path().join("out")))
    }

    fn coordinator(&self, port: u16, parallelism: usize, extra: &[&str]) -> Process {
        let listen = format!("127.0.0.1:{port}");
        let parallelism = parallelism.to_string();
        let checkpoints = self.checkpoints();
        let mut args = vec![
            "coordinator",
            &self.script(),
            "--parallelism",
            &parallelism,
            "--listen",
            &listen,
            "--api",
            "127.0.0.1:0",
            "--checkpoint-dir",
            &checkpoints,
            "--checkpoint-interval",
            "300ms",
            "--heartbeat-interval",
            "200ms",
            "--heartbeat-timeout",
            "3s",
            "--quiet",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Process::start(&args, self.path())
    }

    fn worker(&self, port: u16, slots: usize) -> Process {
        let coordinator = format!("127.0.0.1:{port}");
        let slots = slots.to_string();
        Process::start(
            &[
                "worker",
                "--coordinator",
                &coordinator,
                "--slots",
                &slots,
                "--data-port",
                "0",
            ],
            self.path(),
        )
    }
}

#[test]
fn a_job_on_three_workers_recovers_when_one_is_killed_and_replaced() {
    let job = JobDir::new(6_000);
    let port = free_port();
    let mut coordinator = job.coordinator(port, 3, &[]);
    coordinator.line("coordinator listening on ");
    let workers: Vec<Process> = (0..3).map(|_| job.worker(port, 1)).collect();
    // Let it run and checkpoint, then kill a worker mid-run.
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(coordinator.running(), "the job ended before the kill");
    let mut workers = workers.into_iter();
    let victim = workers.next().expect("a worker");
    victim.kill();
    // A replacement registers; the coordinator restarts the job from its latest checkpoint.
    let replacement = job.worker(port, 1);
    let (ok, _, stderr) = coordinator.finish(Duration::from_secs(180));
    assert!(ok, "the coordinator failed:\n{stderr}");
    assert!(
        stderr.contains("restarting") || stderr.contains("worker lost"),
        "the job never noticed the lost worker:\n{stderr}"
    );
    for w in workers.chain([replacement]) {
        w.kill();
    }
    assert_eq!(job.output(), expected());
}

#[test]
fn a_coordinator_killed_and_started_again_resumes_from_the_latest_checkpoint() {
    let job = JobDir::new(6_000);
    let port = free_port();
    let mut first = job.coordinator(port, 2, &[]);
    first.line("coordinator listening on ");
    let workers: Vec<Process> = (0..2).map(|_| job.worker(port, 1)).collect();
    std::thread::sleep(Duration::from_millis(3_000));
    assert!(first.running(), "the job ended before the kill");
    first.kill();
    let committed = job.output().len();
    // The same command again: the workers find the new coordinator on the same address.
    let second = job.coordinator(port, 2, &[]);
    let (ok, _, stderr) = second.finish(Duration::from_secs(180));
    assert!(ok, "the restarted coordinator failed:\n{stderr}");
    for w in workers {
        w.kill();
    }
    assert!(committed > 0, "nothing was committed before the kill");
    assert_eq!(job.output(), expected());
}

#[test]
fn a_savepoint_taken_through_the_api_restores_at_another_parallelism_on_other_workers() {
    let job = JobDir::new(8_000);
    let savepoints = job.path().join("sp").display().to_string();
    let port = free_port();
    let mut coordinator = job.coordinator(port, 2, &["--savepoint-dir", &savepoints]);
    // The control API starts first, then the coordinator's listener.
    let api = coordinator.line("control API listening on ");
    coordinator.line("coordinator listening on ");
    let workers: Vec<Process> = (0..1).map(|_| job.worker(port, 2)).collect();
    std::thread::sleep(Duration::from_millis(2_000));
    assert!(coordinator.running(), "the job ended too soon");
    let savepoint = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["job", "savepoint", "--stop", "--api", &api])
        .output()
        .expect("weir job savepoint");
    let printed = String::from_utf8_lossy(&savepoint.stdout).into_owned();
    assert!(
        savepoint.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&savepoint.stderr)
    );
    let path = printed
        .lines()
        .map(str::trim)
        .find(|l| l.contains("savepoint-"))
        .map(|l| l.rsplit(' ').next().unwrap_or(l).to_string())
        .unwrap_or_else(|| panic!("no savepoint path in: {printed}"));
    let (ok, _, stderr) = coordinator.finish(Duration::from_secs(60));
    assert!(ok, "stop with savepoint failed:\n{stderr}");
    for w in workers {
        w.kill();
    }
    let partial = job.output().len();
    assert!(
        partial > 0 && partial < expected().len(),
        "{partial} rows after the savepoint"
    );

    // Parallelism 3 on three workers of one slot each, from the savepoint.
    let port = free_port();
    let coordinator = job.coordinator(port, 3, &["--restore", &path]);
    let workers: Vec<Process> = (0..3).map(|_| job.worker(port, 1)).collect();
    let (ok, _, stderr) = coordinator.finish(Duration::from_secs(180));
    assert!(ok, "the restored job failed:\n{stderr}");
    for w in workers {
        w.kill();
    }
    assert_eq!(job.output(), expected());
}

#[test]
fn a_worker_with_the_wrong_token_is_refused() {
    let job = JobDir::new(1_000);
    std::fs::write(job.path().join("token"), "s3cret\n").expect("test file I/O");
    std::fs::write(job.path().join("wrong"), "guess\n").expect("test file I/O");
    let token = job.path().join("token").display().to_string();
    let wrong = job.path().join("wrong").display().to_string();
    let port = free_port();
    let mut coordinator = job.coordinator(port, 1, &["--token-file", &token]);
    coordinator.line("coordinator listening on ");
    let coordinator_address = format!("127.0.0.1:{port}");
    let mut intruder = Process::start(
        &[
            "worker",
            "--coordinator",
            &coordinator_address,
            "--data-port",
            "0",
            "--token-file",
            &wrong,
        ],
        job.path(),
    );
    let refusal = intruder.line("");
    let mut lines = vec![refusal];
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !lines.iter().any(|l| l.contains("token")) {
        if let Ok(line) = intruder.stderr.recv_timeout(Duration::from_secs(1)) {
            lines.push(line);
        }
    }
    intruder.kill();
    coordinator.kill();
    assert!(
        lines.iter().any(|l| l.contains("token")),
        "the worker was not told its token is wrong:\n{}",
        lines.join("\n")
    );
}
