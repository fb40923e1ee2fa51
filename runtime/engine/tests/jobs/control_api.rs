//! The control API of `weir run --api` through the real binaries: `weir job status`,
//! `/metrics`, the probes and the token on a running unbounded job, cancel through the API,
//! and a stop-with-savepoint through `weir job savepoint --stop` whose savepoint restores
//! into a run that completes the output exactly once. The upgrade calls: a savepoint trigger
//! repeated with its request id takes no second savepoint, the compatibility check tells a
//! changed aggregation from an added projection, disposal deletes a savepoint and refuses a
//! checkpoint; and `weir coordinator --keep-alive` outlives its stopped job until SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{assert_same_rows, read_lines, weir_run_ok};

/// A `weir run --api 127.0.0.1:0` process, its API URL, and its stderr so far.
struct Served {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

fn serve(dir: &Path, sql: &str, args: &[&str]) -> Served {
    serve_as("run", dir, sql, args)
}

/// `weir <command> job.sql --api 127.0.0.1:0 --quiet <args>` (`run` or `coordinator`).
fn serve_as(command: &str, dir: &Path, sql: &str, args: &[&str]) -> Served {
    std::fs::write(dir.join("job.sql"), sql).expect("write script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg(command)
        .arg(dir.join("job.sql"))
        .args(["--api", "127.0.0.1:0", "--quiet"])
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
    let mut seen = Vec::new();
    let url = loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no 'control API listening on' line in:\n{seen:?}"));
        if let Some(url) = line.strip_prefix("control API listening on ") {
            break url.to_string();
        }
        seen.push(line);
    };
    Served { child, url, stderr }
}

impl Served {
    /// Wait for a stderr line starting with `prefix`; the rest of it.
    fn line(&self, prefix: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no '{prefix}' line"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("poll weir").is_none()
    }

    fn finish(mut self) -> (bool, String, String) {
        let status = self.child.wait().expect("wait for weir");
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).expect("read stdout");
        }
        let stderr: Vec<String> = self.stderr.iter().collect();
        let stderr = stderr.join("\n");
        assert!(!stderr.contains("panicked"), "weir panicked:\n{stderr}");
        (status.success(), stdout, stderr)
    }
}

/// `weir job <args>`.
fn weir_job(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("job")
        .args(args)
        .output()
        .expect("start weir job")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `weir job status --json` until the job runs and its sources read rows.
fn wait_until_running(url: &str, token: &str) -> serde_json::Value {
    for _ in 0..600 {
        let out = weir_job(&["status", "--api", url, "--token-file", token, "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        if job["state"] == "RUNNING" && job["numRecordsIn"].as_u64() > Some(0) {
            return job;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the job never ran");
}

/// A plain HTTP/1.1 GET: the status code and the body.
fn get(url: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (code, body.to_string())
}

/// `seq` counts from 0 to `rows - 1` (bounded), or is random (unbounded).
fn datagen(out: &Path, rows: Option<u64>, rate: u64) -> String {
    let seq = match rows {
        Some(n) => format!(
            "'number-of-rows' = '{n}', 'fields.seq.kind' = 'sequence',
             'fields.seq.start' = '0', 'fields.seq.end' = '{}',",
            n - 1
        ),
        None => String::new(),
    };
    format!(
        "CREATE TABLE src (seq BIGINT) WITH (
            {seq} 'connector' = 'datagen', 'rows-per-second' = '{rate}');
        CREATE TABLE out (seq BIGINT, k BIGINT)
        WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
        INSERT INTO out SELECT seq, MOD(seq, 7) FROM src WHERE seq >= 0;",
        out.display()
    )
}

#[test]
fn control_api_reports_a_running_job_requires_the_token_and_cancels_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("write token");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-it").expect("write token");
    let (token, wrong) = (token.to_str().unwrap(), wrong.to_str().unwrap());
    let sql = datagen(&dir.path().join("out"), None, 2_000);
    let served = serve(
        dir.path(),
        &sql,
        &["--parallelism", "2", "--token-file", token],
    );
    let url = served.url.clone();

    let job = wait_until_running(&url, token);
    assert_eq!(job["parallelism"], 2);
    let operators = job["operators"].as_array().expect("operators");
    let source = operators
        .iter()
        .find(|o| o["name"].as_str().is_some_and(|n| n.starts_with("Source")))
        .expect("a source operator");
    assert!(source["numRecordsOut"].as_u64() > Some(0), "{job}");
    assert!(
        operators
            .iter()
            .all(|o| o["backPressuredTimeMsPerSecond"].is_number())
    );

    let table = weir_job(&["status", "--api", &url, "--token-file", token]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    assert!(
        text(&table.stdout).contains("RUNNING"),
        "{}",
        text(&table.stdout)
    );

    let (code, metrics) = get(&url, "/metrics", Some("s3cret-token"));
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("weir_operator_numRecordsIn{"), "{metrics}");
    assert!(
        metrics.contains("weir_job_state{job_id=\"job\",state=\"RUNNING\"} 1"),
        "{metrics}"
    );
    assert_eq!(get(&url, "/metrics", None).0, 401);
    assert_eq!(get(&url, "/v1/job", Some("not-it")).0, 401);
    assert_eq!(get(&url, "/healthz", None).0, 200);
    assert_eq!(get(&url, "/readyz", None).0, 200);

    for refused in [
        vec!["status", "--api", &url],
        vec!["status", "--api", &url, "--token-file", wrong],
    ] {
        let out = weir_job(&refused);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("401") && stderr.contains(&url), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }

    // No savepoint directory: refused with the reason, the job goes on.
    let out = weir_job(&["savepoint", "--api", &url, "--token-file", token]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--savepoint-dir"),
        "{}",
        text(&out.stderr)
    );

    let out = weir_job(&["cancel", "--api", &url, "--token-file", token]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, _, stderr) = served.finish();
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let gone = weir_job(&["status", "--api", &url, "--token-file", token]);
    assert!(!gone.status.success());
    assert!(text(&gone.stderr).contains(&url), "{}", text(&gone.stderr));
}

#[test]
fn control_api_stop_with_savepoint_restores_exactly_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok").expect("write token");
    let token = token.to_str().unwrap();
    let out = dir.path().join("out");
    let savepoints = dir.path().join("sp").display().to_string();
    let rows = 40_000;
    let sql = datagen(&out, Some(rows), 4_000);
    let args = [
        "--parallelism",
        "2",
        "--savepoint-dir",
        &savepoints,
        "--token-file",
        token,
    ];
    let served = serve(dir.path(), &sql, &args);
    let url = served.url.clone();
    wait_until_running(&url, token);

    let out_savepoint = weir_job(&["savepoint", "--stop", "--api", &url, "--token-file", token]);
    let stdout = text(&out_savepoint.stdout);
    assert!(
        out_savepoint.status.success(),
        "{}",
        text(&out_savepoint.stderr)
    );
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .unwrap_or_else(|| panic!("no savepoint path in {stdout}"))
        .to_string();
    let (ok, _, stderr) = served.finish();
    assert!(ok, "{stderr}");
    let partial = read_lines(&out).len();
    assert!(
        partial < rows as usize,
        "the job ended before the savepoint"
    );

    let inspect = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["checkpoints", "inspect", &path])
        .output()
        .expect("start weir");
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));

    weir_run_ok(
        dir.path(),
        &sql,
        &["--parallelism", "2", "--restore", &path],
    );
    let expected: Vec<String> = (0..rows).map(|s| format!("{s},{}", s % 7)).collect();
    assert_same_rows(read_lines(&out), expected, "committed output");
}

/// A plain HTTP/1.1 POST with a JSON body: the status code and the body.
fn post(url: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (code, body.to_string())
}

/// Counts per key of an unbounded source, into a sink that takes the changelog; `select`
/// and `group` shape the aggregation.
fn counting(select: &str, from: &str) -> String {
    format!(
        "CREATE TABLE src (k BIGINT, x BIGINT) WITH (
            'connector' = 'datagen', 'rows-per-second' = '2000',
            'fields.k.kind' = 'random', 'fields.k.min' = '0', 'fields.k.max' = '9');
        CREATE TABLE out (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO out SELECT {select} FROM {from} GROUP BY k;"
    )
}

#[test]
fn control_api_deduplicates_savepoints_checks_compatibility_and_disposes_savepoints() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok").expect("write token");
    let token = token.to_str().unwrap();
    let savepoints = dir.path().join("sp");
    let checkpoints = dir.path().join("cp");
    let sql = counting("k, COUNT(*)", "src");
    let args = [
        "--savepoint-dir",
        savepoints.to_str().unwrap(),
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
        "--checkpoint-interval",
        "500ms",
        "--set",
        "state.checkpoints.num-retained=100",
        "--token-file",
        token,
    ];
    let served = serve(dir.path(), &sql, &args);
    let url = served.url.clone();
    wait_until_running(&url, token);

    // The same request id twice (JSON, then gRPC through `weir job`): one savepoint.
    let body = r#"{"requestId": "upgrade-1"}"#;
    let (code, first) = post(&url, "/v1/job/savepoints", "tok", body);
    assert_eq!(code, 202, "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).expect("trigger JSON");
    let trigger_id = first["triggerId"].as_str().expect("trigger id").to_string();
    let again = weir_job(&[
        "savepoint",
        "--api",
        &url,
        "--token-file",
        token,
        "--request-id",
        "upgrade-1",
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains(&format!("trigger id {trigger_id}")),
        "{}",
        text(&again.stderr)
    );
    let path = text(&again.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .expect("a savepoint path")
        .to_string();
    let taken: Vec<_> = std::fs::read_dir(&savepoints)
        .expect("savepoint dir")
        .collect();
    assert_eq!(taken.len(), 1, "one savepoint for one request id");

    // Wait for a checkpoint after the savepoint, so both kinds exist.
    let checkpoint = (0..600)
        .find_map(|_| {
            let out = weir_job(&[
                "checkpoints",
                "--api",
                &url,
                "--token-file",
                token,
                "--json",
            ]);
            let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let latest = &listed["latestCompleted"];
            if latest["kind"] == "CHECKPOINT" {
                return latest["path"].as_str().map(str::to_string);
            }
            std::thread::sleep(Duration::from_millis(100));
            None
        })
        .expect("a checkpoint after the savepoint");

    let check = |sql: &str| {
        let file = dir.path().join("new.sql");
        std::fs::write(&file, sql).expect("write script");
        let file = file.to_str().unwrap().to_string();
        weir_job(&[
            "check-compatibility",
            "--api",
            &url,
            "--token-file",
            token,
            &file,
        ])
    };
    let changed = check(&counting("k, SUM(x)", "src"));
    assert!(!changed.status.success());
    let said = text(&changed.stdout);
    assert!(said.contains("not compatible"), "{said}");
    assert!(said.contains("Aggregate") && said.contains("uid"), "{said}");
    let projected = check(&counting("k, COUNT(*)", "(SELECT k, x + 1 AS y FROM src)"));
    assert!(
        projected.status.success(),
        "{}{}",
        text(&projected.stdout),
        text(&projected.stderr)
    );
    assert!(text(&projected.stdout).starts_with("compatible"));
    let broken = check("INSERT INTO out SELEC k FROM src;");
    assert!(!broken.status.success());
    assert!(
        text(&broken.stdout).contains("line"),
        "{}",
        text(&broken.stdout)
    );

    // Disposal: the savepoint folder goes, twice is fine, a checkpoint is refused.
    let dispose = |path: &str| {
        weir_job(&[
            "dispose-savepoint",
            "--api",
            &url,
            "--token-file",
            token,
            path,
        ])
    };
    for _ in 0..2 {
        let out = dispose(&path);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let folder = path.trim_start_matches("file://");
    assert!(!Path::new(folder).exists(), "{folder} still exists");
    let refused = dispose(&checkpoint);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("not a savepoint"),
        "{}",
        text(&refused.stderr)
    );
    let kept = checkpoint.trim_start_matches("file://");
    assert!(
        Path::new(kept).join("_metadata").exists(),
        "{kept} was touched"
    );

    let out = weir_job(&["cancel", "--api", &url, "--token-file", token]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    served.finish();
}

#[test]
fn a_kept_alive_coordinator_serves_its_finished_job_until_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok").expect("write token");
    let token = token.to_str().unwrap();
    let savepoints = dir.path().join("sp").display().to_string();
    let sql = datagen(&dir.path().join("out"), None, 2_000);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--savepoint-dir",
        &savepoints,
        "--token-file",
        token,
        "--keep-alive",
    ];
    let mut coordinator = serve_as("coordinator", dir.path(), &sql, &args);
    let url = coordinator.url.clone();
    let listen = coordinator.line("coordinator listening on ");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["worker", "--coordinator", &listen, "--data-port", "0"])
        .args(["--token-file", token])
        .stderr(Stdio::null())
        .spawn()
        .expect("start weir worker");
    wait_until_running(&url, token);

    let stopped = weir_job(&["savepoint", "--stop", "--api", &url, "--token-file", token]);
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    let stderr = text(&stopped.stderr);
    let trigger_id = stderr
        .split("trigger id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("a trigger id")
        .to_string();
    coordinator.line("job FINISHED; serving the control API until SIGTERM");
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(coordinator.running(), "the coordinator exited");
    let status = weir_job(&["status", "--api", &url, "--token-file", token, "--json"]);
    let job: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(job["state"], "FINISHED", "{job}");
    let (code, savepoint) = get(
        &url,
        &format!("/v1/job/savepoints/{trigger_id}"),
        Some("tok"),
    );
    assert_eq!(code, 200, "{savepoint}");
    assert!(savepoint.contains("\"COMPLETED\""), "{savepoint}");
    assert_eq!(get(&url, "/healthz", None).0, 200);
    assert_eq!(get(&url, "/readyz", None).0, 503);

    let pid = coordinator.child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(term.expect("kill").success());
    let (ok, _, stderr) = coordinator.finish();
    assert!(ok, "{stderr}");
    let _ = worker.kill();
    let _ = worker.wait();
}
