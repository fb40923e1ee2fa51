//! The control API of `weir run --api` through the real binaries: `weir job status`,
//! `/metrics`, the probes and the token on a running unbounded job, cancel through the API,
//! and a stop-with-savepoint through `weir job savepoint --stop` whose savepoint restores
//! into a run that completes the output exactly once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{read_lines, sorted, weir_run_ok};

/// A `weir run --api 127.0.0.1:0` process, its API URL, and its stderr so far.
struct Served {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

fn serve(dir: &Path, sql: &str, args: &[&str]) -> Served {
    std::fs::write(dir.join("job.sql"), sql).expect("write script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
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
    assert_eq!(sorted(read_lines(&out)), sorted(expected));
}
