//! Distributed execution through the real binaries on loopback: `weir coordinator` and
//! `weir worker` processes run the windowed job with checkpoints while workers and the
//! coordinator are killed with SIGKILL and replaced, and a job stopped with a savepoint
//! through the control API is restored at another parallelism on another number of workers.
//! The committed output must equal a failure-free run each time. The control API of a
//! distributed job reports per-operator figures; a slow sink back-pressures the sources
//! through the credits without the data plane buffering more than they allow; the
//! cluster's connections run over TLS; and source subtasks on different workers keep within
//! their watermark alignment drift.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::checkpoints::{expected, window_job};
use crate::support::{assert_same_rows, read_lines, sorted};

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
        Process::start_with_env(args, dir, &[])
    }

    fn start_with_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .envs(env.iter().copied())
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

    /// Wait for a stderr line containing `needle`.
    fn line_containing(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with '{needle}' in:\n{}", self.seen.join("\n")),
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
    assert_same_rows(job.output(), expected(), "committed output");
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
    assert_same_rows(job.output(), expected(), "committed output");
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
    assert_same_rows(job.output(), expected(), "committed output");
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

/// `weir job status --json` of the job at `api`.
fn job_status(api: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["job", "status", "--json", "--api", api])
        .output()
        .expect("weir job status");
    assert!(
        output.status.success(),
        "weir job status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("status JSON")
}

fn figure(operator: &serde_json::Value, field: &str) -> u64 {
    operator[field].as_u64().unwrap_or(0)
}

/// The operator whose name starts with `prefix`.
fn operator<'a>(status: &'a serde_json::Value, prefix: &str) -> &'a serde_json::Value {
    status["operators"]
        .as_array()
        .and_then(|ops| {
            ops.iter()
                .find(|o| o["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        })
        .unwrap_or_else(|| panic!("no operator {prefix}… in {status:#}"))
}

/// `GET /metrics` of the control API at `api` (`http://host:port`).
fn prometheus(api: &str) -> String {
    use std::io::{Read, Write};
    let address = api.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the API");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request /metrics");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read /metrics");
    answer
}

/// The value of the first sample in the exposition `metrics` whose line `matches`.
fn sample(metrics: &str, matches: impl Fn(&str) -> bool) -> f64 {
    let line = metrics
        .lines()
        .find(|l| matches(l))
        .unwrap_or_else(|| panic!("no such sample in:\n{metrics}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {line}"))
}

#[test]
fn a_distributed_job_reports_per_operator_metrics_through_the_api() {
    let job = JobDir::new(4_000);
    let port = free_port();
    let stats = job.path().join("stats.json");
    let mut coordinator = job.coordinator(port, 2, &["--stats-json", &stats.display().to_string()]);
    let api = coordinator.line("control API listening on ");
    coordinator.line("coordinator listening on ");
    let workers: Vec<Process> = (0..2).map(|_| job.worker(port, 1)).collect();
    // Every operator counts records and the sink has a watermark once windows fire.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = job_status(&api);
        let operators = status["operators"].as_array().cloned().unwrap_or_default();
        let counted = !operators.is_empty()
            && operators
                .iter()
                .all(|o| figure(o, "numRecordsIn") + figure(o, "numRecordsOut") > 0)
            && !operators[operators.len() - 1]["currentOutputWatermarkMs"].is_null();
        if counted {
            break status;
        }
        assert!(
            Instant::now() < deadline && coordinator.running(),
            "the operators never all counted records:\n{status:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let source = operator(&status, "Source");
    assert_eq!(source["parallelism"], 2, "{status:#}");
    assert_eq!(figure(source, "numRecordsIn"), 0, "{status:#}");
    assert!(figure(source, "numRecordsOut") <= 40_000, "{status:#}");
    // The window aggregate is fed through a hash exchange, over the network for half of it.
    let aggregate = operator(&status, "WindowAggregate");
    assert!(figure(aggregate, "numRecordsIn") > 0, "{status:#}");
    let sink = operator(&status, "Sink");
    assert_eq!(
        figure(sink, "numRecordsIn"),
        figure(sink, "numRecordsOut"),
        "{status:#}"
    );
    let metrics = prometheus(&api);
    let source_uid = source["uid"].as_str().expect("uid");
    let value = sample(&metrics, |l| {
        l.starts_with("weir_operator_numRecordsOut{")
            && l.contains(&format!("operator_uid=\"{source_uid}\""))
    });
    assert!(value > 0.0, "source numRecordsOut {value}");
    let (ok, _, stderr) = coordinator.finish(Duration::from_secs(120));
    assert!(ok, "the coordinator failed:\n{stderr}");
    for w in workers {
        w.kill();
    }
    assert_same_rows(job.output(), expected(), "committed output");
    // The summary counts every row the workers read and wrote, not what the last heartbeat
    // before the end had seen.
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats file"))
            .expect("stats JSON");
    assert_eq!(stats["rows_in"], 40_000, "{stats}");
    assert_eq!(stats["rows_out"], expected().len(), "{stats}");
}

/// Read a child's stdout slowly — a few hundred bytes at a time — like a consumer that
/// cannot keep up: a `print` sink writing to it blocks once the pipe is full.
fn read_slowly(process: &mut Process) {
    use std::io::Read;
    let mut stdout = process.child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 256];
        while matches!(stdout.read(&mut buffer), Ok(n) if n > 0) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}

/// A log line's `key=value` figure (logs to a pipe have no colours).
fn logged(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_slow_sink_throttles_the_sources_through_the_credits() {
    const BATCH_ROWS: u64 = 256;
    const CREDITS: u64 = 4;
    const LOCAL_CHANNEL_CAPACITY: u64 = 16;
    let dir = tempfile::tempdir().expect("temporary directory");
    // An unthrottled source, a hash exchange to a keyed aggregate (one output row per input
    // row), and a print sink whose stdout is read slowly.
    std::fs::write(
        dir.path().join("job.sql"),
        format!(
            "SET 'weir.batch-size' = '{BATCH_ROWS}';
            CREATE TABLE src (seq BIGINT) WITH (
                'connector' = 'datagen', 'rows-per-second' = '0',
                'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0',
                'fields.seq.end' = '1000000000');
            CREATE TABLE out (seq BIGINT, c BIGINT) WITH ('connector' = 'print');
            INSERT INTO out SELECT seq, COUNT(*) AS c FROM src GROUP BY seq;"
        ),
    )
    .expect("test file I/O");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let script = dir.path().join("job.sql").display().to_string();
    let mut coordinator = Process::start_with_env(
        &[
            "coordinator",
            &script,
            "--parallelism",
            "2",
            "--listen",
            &listen,
            "--api",
            "127.0.0.1:0",
            "--heartbeat-interval",
            "100ms",
            "--quiet",
        ],
        dir.path(),
        &[
            ("WEIR_LOG", "warn,weir_runtime::cluster::registry=info"),
            ("NO_COLOR", "1"),
        ],
    );
    let api = coordinator.line("control API listening on ");
    coordinator.line("coordinator listening on ");
    let mut workers: Vec<Process> = (0..2)
        .map(|_| {
            let mut w = Process::start(
                &["worker", "--coordinator", &listen, "--data-port", "0"],
                dir.path(),
            );
            read_slowly(&mut w);
            w
        })
        .collect();

    // Each source subtask feeds two aggregate subtasks: one in its process through a bounded
    // queue, one in the other worker through the data plane.
    let local_rows = 2 * LOCAL_CHANNEL_CAPACITY * BATCH_ROWS;
    let remote_rows = 2 * CREDITS * BATCH_ROWS;
    // The batch each source holds, and what one heartbeat of skew between the workers'
    // reports may hide.
    let in_hand = 2 * BATCH_ROWS + 2 * (CREDITS + LOCAL_CHANNEL_CAPACITY) * BATCH_ROWS;
    let in_flight_limit = local_rows + remote_rows + in_hand;

    let mut samples = 0;
    let mut waited = false;
    let mut peak = 0;
    let mut back_pressured = 0.0f64;
    let deadline = Instant::now() + Duration::from_secs(90);
    while samples < 20 || !waited || back_pressured == 0.0 {
        assert!(
            Instant::now() < deadline && coordinator.running(),
            "no back-pressure seen: {samples} samples, credit waits {waited}, back-pressured \
             {back_pressured} ms/s\n{}",
            coordinator.seen.join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
        for line in coordinator.stderr.try_iter() {
            assert!(
                !line.contains("more frames on a channel than its credits allow"),
                "{line}"
            );
            if line.contains("data plane") {
                let line_peak = logged(&line, "peak_queued_frames_per_channel").unwrap_or(0);
                assert!(line_peak <= CREDITS, "{line}");
                assert_eq!(logged(&line, "credits"), Some(CREDITS), "{line}");
                peak = peak.max(line_peak);
                waited |= logged(&line, "credit_waits").unwrap_or(0) > 0;
            }
            coordinator.seen.push(line);
        }
        let status = job_status(&api);
        let source = figure(operator(&status, "Source"), "numRecordsOut");
        let aggregate = figure(operator(&status, "GroupAggregate"), "numRecordsIn");
        if source == 0 {
            continue;
        }
        samples += 1;
        // Whatever the source read and the aggregate has not taken in waits in the
        // channels between them: bounded by their capacities, however long the sink is slow.
        assert!(
            source.saturating_sub(aggregate) <= in_flight_limit,
            "{source} rows read, {aggregate} into the aggregate: more in flight than the \
             channels hold ({in_flight_limit})\n{status:#}"
        );
        back_pressured = back_pressured.max(
            operator(&status, "Source")["backPressuredTimeMsPerSecond"]
                .as_f64()
                .unwrap_or(0.0),
        );
    }
    assert!(peak >= 1, "the data plane never held a frame");
    // The same flow control through the control API and /metrics.
    let network = job_status(&api)["network"].clone();
    assert_eq!(network["creditsPerChannel"], CREDITS, "{network}");
    let peak_reported = network["peakQueuedFramesPerChannel"].as_u64().unwrap_or(0);
    assert!((1..=CREDITS).contains(&peak_reported), "{network}");
    assert!(
        network["creditWaits"].as_u64().unwrap_or(0) > 0,
        "{network}"
    );
    let peak_metric = sample(&prometheus(&api), |l| {
        l.starts_with("weir_job_network_peakQueuedFramesPerChannel{")
    });
    assert!(
        peak_metric >= 1.0 && peak_metric <= CREDITS as f64,
        "weir_job_network_peakQueuedFramesPerChannel {peak_metric}"
    );
    coordinator.kill();
    for w in workers.drain(..) {
        w.kill();
    }
}

fn testdata(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rpc/testdata")
        .join(file)
        .display()
        .to_string()
}

#[test]
fn a_tls_cluster_runs_the_job_and_a_worker_without_the_ca_is_refused() {
    let job = JobDir::new(8_000);
    let (cert, key, ca) = (
        testdata("server.pem"),
        testdata("server.key"),
        testdata("ca.pem"),
    );
    let port = free_port();
    let mut coordinator = job.coordinator(
        port,
        2,
        &["--cluster-tls-cert", &cert, "--cluster-tls-key", &key],
    );
    coordinator.line("coordinator listening on ");
    // Plain HTTP/2 to a TLS listener: the worker cannot register.
    let plain = format!("127.0.0.1:{port}");
    let mut intruder = Process::start(
        &["worker", "--coordinator", &plain, "--data-port", "0"],
        job.path(),
    );
    let refusal = intruder.line("");
    let mut lines = vec![refusal];
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !lines.iter().any(|l| l.contains("registering with")) {
        if let Ok(line) = intruder.stderr.recv_timeout(Duration::from_secs(1)) {
            lines.push(line);
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("registering with")),
        "the worker without the CA was not refused:\n{}",
        lines.join("\n")
    );
    let secure = format!("https://localhost:{port}");
    let workers: Vec<Process> = (0..2)
        .map(|_| {
            Process::start(
                &[
                    "worker",
                    "--coordinator",
                    &secure,
                    "--data-port",
                    "0",
                    "--tls-ca",
                    &ca,
                    "--tls-cert",
                    &cert,
                    "--tls-key",
                    &key,
                ],
                job.path(),
            )
        })
        .collect();
    let (ok, _, stderr) = coordinator.finish(Duration::from_secs(120));
    assert!(ok, "the coordinator failed:\n{stderr}");
    for w in workers {
        w.kill();
    }
    intruder.kill();
    assert_same_rows(job.output(), expected(), "committed output");
}

/// Rows of the aligned job, per source subtask at parallelism 2: subtask 0 reads the even
/// `seq`s and subtask 1 the odd ones (datagen interleaves a sequence over its subtasks).
const ALIGNED_ROWS: i64 = 8_000;
/// An even row is `EVEN_STEP_MS` of event time on from the last, an odd one 2 ms: subtask 0
/// runs through event time ten times as fast as subtask 1, at the same rate of rows.
const EVEN_STEP_MS: i64 = 20;
const ALIGNED_DRIFT_MS: i64 = 2_000;

fn aligned_event_time(seq: i64) -> i64 {
    match seq % 2 {
        0 => seq / 2 * EVEN_STEP_MS,
        _ => seq,
    }
}

#[test]
fn source_subtasks_on_two_workers_stay_within_their_alignment_drift() {
    let job = JobDir::new(1_000);
    let out = job.path().join("out");
    // Small batches: a source looks at its group between batches, and a throttled one
    // paused for a while has up to a second's rows stored up (40 s of event time here).
    let sql = format!(
        "SET 'weir.batch-size' = '20';
        CREATE TABLE src (
            seq BIGINT,
            k AS MOD(seq, 4),
            ts AS TO_TIMESTAMP_LTZ(CASE WHEN MOD(seq, 2) = 0 THEN seq / 2 * {EVEN_STEP_MS} ELSE seq END, 3),
            WATERMARK FOR ts AS ts
        ) WITH (
            'connector' = 'datagen', 'rows-per-second' = '4000',
            'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{end}',
            'scan.watermark.alignment.group' = 'src',
            'scan.watermark.alignment.max-drift' = '{ALIGNED_DRIFT_MS} ms',
            'scan.watermark.alignment.update-interval' = '50 ms'
        );
        CREATE TABLE out (k BIGINT, window_start TIMESTAMP(3), c BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
        INSERT INTO out SELECT k, window_start, COUNT(*)
        FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
        GROUP BY k, window_start, window_end;",
        end = ALIGNED_ROWS - 1,
        out = out.display(),
    );
    std::fs::write(job.path().join("job.sql"), sql).expect("test file I/O");
    let port = free_port();
    let mut coordinator = job.coordinator(port, 2, &[]);
    coordinator.line("coordinator listening on ");
    let coordinator_address = format!("127.0.0.1:{port}");
    // One slot each: each worker runs one source subtask, so only the coordinator's relay
    // of watermarks can keep them together. The window tasks log how far apart their
    // inputs' watermarks got.
    let mut workers: Vec<Process> = (0..2)
        .map(|_| {
            Process::start_with_env(
                &[
                    "worker",
                    "--coordinator",
                    &coordinator_address,
                    "--slots",
                    "1",
                    "--data-port",
                    "0",
                ],
                job.path(),
                &[("WEIR_LOG", "warn,weir_runtime::dataflow::task=debug")],
            )
        })
        .collect();
    let (ok, _, stderr) = coordinator.finish(Duration::from_secs(120));
    assert!(ok, "the coordinator failed:\n{stderr}");
    let mut spreads = Vec::new();
    for worker in &mut workers {
        let line = worker.line_containing("max_input_watermark_spread_ms");
        let value = logged(&line, "max_input_watermark_spread_ms")
            .unwrap_or_else(|| panic!("no spread in: {line}"));
        spreads.push(value);
    }
    for w in workers {
        w.kill();
    }
    // Without alignment subtask 0 ends 72 s of event time ahead. With it, the drift plus
    // what a source emits between two looks (a batch of 20 rows: 400 ms of event time for
    // subtask 0), the watermark's 200 ms emit interval, and the time a watermark takes to
    // reach the window task (subtask 1 covers 4 s of event time a second). Seen: 2.5 s.
    for spread in &spreads {
        assert!(
            *spread <= (ALIGNED_DRIFT_MS + 2_000) as u64,
            "the window tasks' inputs drifted {spreads:?} ms apart"
        );
    }
    let mut counts: std::collections::BTreeMap<(i64, i64), i64> = Default::default();
    for seq in 0..ALIGNED_ROWS {
        let window = aligned_event_time(seq).div_euclid(1_000) * 1_000;
        *counts.entry((seq % 4, window)).or_default() += 1;
    }
    // The CSV format writes whole-second timestamps without a fraction, as Flink's.
    let second = |ms: i64| crate::support::ts(ms).trim_end_matches(".000").to_string();
    let want = counts
        .into_iter()
        .map(|((k, window), c)| format!("{k},{},{c}", second(window)))
        .collect();
    assert_same_rows(job.output(), sorted(want), "committed output");
}
