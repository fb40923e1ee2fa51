//! The control API end to end on loopback, with a job stand-in: JSON and gRPC give the same
//! answers, the token is required on both (and not on the probes), `/metrics` is valid
//! Prometheus text, errors name the URL, and TLS works with a CA file.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::model::*;
use crate::{BlockingClient, ClientConfig, ControlServer, Error, JobControl, ServerConfig, Token};
use crate::{Result, TlsFiles};

/// A job that answers from memory: savepoints complete on the second poll; a new job is
/// compatible unless its SQL mentions `COUNT`; savepoints live under `file:///sp/`.
struct FakeJob {
    state: Mutex<JobState>,
    savepoints: Mutex<HashMap<String, (Savepoint, u32)>>,
    requests: Mutex<HashMap<String, String>>,
    disposed: Mutex<Vec<String>>,
}

impl FakeJob {
    fn running() -> Arc<FakeJob> {
        Arc::new(FakeJob {
            state: Mutex::new(JobState::Running),
            savepoints: Mutex::new(HashMap::new()),
            requests: Mutex::new(HashMap::new()),
            disposed: Mutex::new(Vec::new()),
        })
    }
}

/// A job that leaves the defaulted methods alone.
struct MinimalJob;

impl JobControl for MinimalJob {
    fn job(&self) -> Result<Job> {
        FakeJob::running().job()
    }
    fn checkpoints(&self) -> Result<Checkpoints> {
        Ok(Checkpoints::default())
    }
    fn trigger_savepoint(&self, _: SavepointRequest) -> Result<String> {
        Err(Error::Rejected("no".into()))
    }
    fn savepoint(&self, id: &str) -> Result<Savepoint> {
        Err(Error::NotFound(id.into()))
    }
    fn cancel(&self) -> Result<Job> {
        self.job()
    }
}

impl JobControl for FakeJob {
    fn job(&self) -> Result<Job> {
        Ok(Job {
            job_id: "orders".into(),
            name: "orders".into(),
            state: *self.state.lock().unwrap(),
            start_time_ms: 1_700_000_000_000,
            uptime_ms: 42_000,
            parallelism: 2,
            max_parallelism: 128,
            attempt: 3,
            restarts: 1,
            num_records_in: 1000,
            num_records_out: 990,
            watermark_ms: Some(1_700_000_000_500),
            last_error: Some("task failed: boom".into()),
            operators: vec![Operator {
                uid: "Calc(select=[a, \"b\"])".into(),
                name: "Calc(select=[a, \"b\"])\nline".into(),
                parallelism: 2,
                num_records_in: 1000,
                num_records_out: 990,
                back_pressured_time_ms_per_second: 12.5,
                current_output_watermark_ms: None,
            }],
            network: Some(Network {
                queued_frames: 2,
                peak_queued_frames_per_channel: 4,
                credits_per_channel: 4,
                frames_sent: 100,
                frames_received: 90,
                credit_waits: 7,
            }),
        })
    }

    fn checkpoints(&self) -> Result<Checkpoints> {
        let latest = Checkpoint {
            id: 7,
            kind: CheckpointKind::Checkpoint,
            status: CheckpointStatus::Completed,
            trigger_time_ms: Some(1_700_000_001_000),
            duration_ms: Some(120),
            size_bytes: Some(4096),
            alignment_ms: Some(3),
            path: Some("file:///tmp/cp/orders/chk-7".into()),
            failure: None,
        };
        Ok(Checkpoints {
            number_of_completed_checkpoints: 7,
            number_of_failed_checkpoints: 1,
            number_of_in_progress_checkpoints: 0,
            latest_completed: Some(latest.clone()),
            history: vec![latest],
        })
    }

    fn trigger_savepoint(&self, request: SavepointRequest) -> Result<String> {
        let Some(dir) = request.dir else {
            return Err(Error::Rejected("no savepoint directory".into()));
        };
        let mut requests = self.requests.lock().unwrap();
        if let Some(id) = request.request_id.as_ref().and_then(|r| requests.get(r)) {
            return Ok(id.clone());
        }
        let mut savepoints = self.savepoints.lock().unwrap();
        let id = format!("sp-{}", savepoints.len() + 1);
        if let Some(request_id) = request.request_id {
            requests.insert(request_id, id.clone());
        }
        let savepoint = Savepoint {
            trigger_id: id.clone(),
            status: SavepointStatus::InProgress,
            stop: request.stop,
            path: Some(format!("{dir}/savepoint-1")),
            failure: None,
        };
        savepoints.insert(id.clone(), (savepoint, 0));
        Ok(id)
    }

    fn savepoint(&self, trigger_id: &str) -> Result<Savepoint> {
        let mut savepoints = self.savepoints.lock().unwrap();
        let (savepoint, polls) = savepoints.get_mut(trigger_id).ok_or_else(|| {
            Error::NotFound(format!("no savepoint with trigger id '{trigger_id}'"))
        })?;
        *polls += 1;
        let mut answer = savepoint.clone();
        if *polls < 2 {
            answer.path = None;
        } else {
            answer.status = SavepointStatus::Completed;
        }
        Ok(answer)
    }

    fn cancel(&self) -> Result<Job> {
        *self.state.lock().unwrap() = JobState::Cancelling;
        self.job()
    }

    fn check_compatibility(
        &self,
        sql: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Compatibility> {
        let mut problems: Vec<String> = Vec::new();
        if sql.contains("COUNT") {
            problems.push("the state of operator GroupAggregate (uid agg-1) has no match".into());
        }
        problems.extend(settings.iter().map(|(k, v)| format!("setting {k}={v}")));
        Ok(Compatibility {
            compatible: problems.is_empty(),
            problems,
        })
    }

    fn dispose_savepoint(&self, path: &str) -> Result<()> {
        if !path.starts_with("file:///sp/") {
            return Err(Error::InvalidRequest(format!("{path} is not a savepoint")));
        }
        self.disposed.lock().unwrap().push(path.to_string());
        Ok(())
    }
}

fn start(token: Option<&str>) -> (ControlServer, Arc<FakeJob>) {
    let job = FakeJob::running();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.token = token.map(|t| Token::new(t).unwrap());
    (ControlServer::start(config, job.clone()).unwrap(), job)
}

fn client(server: &ControlServer, token: Option<&str>) -> Result<BlockingClient> {
    let token = token.map(|t| Token::new(t).unwrap());
    BlockingClient::connect(&ClientConfig::new(server.url()).with_token(token))
}

/// A plain HTTP/1.1 request: the status and the body.
fn http(
    server: &ControlServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{auth}\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

#[test]
fn json_and_grpc_give_the_same_answers() {
    let (server, _job) = start(Some("tok"));
    let mut grpc = client(&server, Some("tok")).unwrap();

    let (status, body) = http(&server, "GET", "/v1/job", Some("tok"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Job>(&body).unwrap(),
        grpc.job().unwrap()
    );
    let raw: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(raw["state"], "RUNNING");
    assert_eq!(raw["operators"][0]["backPressuredTimeMsPerSecond"], 12.5);
    assert!(raw["operators"][0]["currentOutputWatermarkMs"].is_null());
    assert_eq!(raw["network"]["creditWaits"], 7);

    let (status, body) = http(&server, "GET", "/v1/job/checkpoints", Some("tok"), "");
    assert_eq!(status, 200, "{body}");
    let checkpoints: Checkpoints = serde_json::from_str(&body).unwrap();
    assert_eq!(checkpoints, grpc.checkpoints().unwrap());
    assert!(
        body.contains("\"numberOfCompletedCheckpoints\":7"),
        "{body}"
    );

    let body = r#"{"dir": "file:///sp", "stop": true}"#;
    let (status, answer) = http(&server, "POST", "/v1/job/savepoints", Some("tok"), body);
    assert_eq!(status, 202, "{answer}");
    let triggered: SavepointTriggered = serde_json::from_str(&answer).unwrap();
    let path = format!("/v1/job/savepoints/{}", triggered.trigger_id);
    let (_, first) = http(&server, "GET", &path, Some("tok"), "");
    assert!(first.contains("\"status\":\"IN_PROGRESS\""), "{first}");
    let over_grpc = grpc.savepoint(&triggered.trigger_id).unwrap();
    assert_eq!(over_grpc.status, SavepointStatus::Completed);
    assert_eq!(over_grpc.path.as_deref(), Some("file:///sp/savepoint-1"));
    assert!(over_grpc.stop);

    let request = SavepointRequest {
        dir: Some("s3://b/sp".into()),
        stop: false,
        request_id: None,
    };
    let id = grpc.trigger_savepoint(request).unwrap();
    let (_, first) = http(
        &server,
        "GET",
        &format!("/v1/job/savepoints/{id}"),
        Some("tok"),
        "",
    );
    let first: Savepoint = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (first.trigger_id.as_str(), first.stop),
        (id.as_str(), false)
    );

    let (status, body) = http(&server, "POST", "/v1/job/cancel", Some("tok"), "");
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("\"state\":\"CANCELLING\""), "{body}");
    assert_eq!(grpc.job().unwrap().state, JobState::Cancelling);
}

#[test]
fn a_repeated_request_id_answers_the_first_trigger_id_on_json_and_grpc() {
    let (server, job) = start(None);
    let mut grpc = client(&server, None).unwrap();
    let request = SavepointRequest {
        dir: Some("file:///sp".into()),
        stop: true,
        request_id: Some("upgrade-7".into()),
    };
    let first = grpc.trigger_savepoint(request.clone()).unwrap();
    assert_eq!(grpc.trigger_savepoint(request).unwrap(), first);
    let body = r#"{"dir": "file:///sp", "stop": true, "requestId": "upgrade-7"}"#;
    let (status, answer) = http(&server, "POST", "/v1/job/savepoints", None, body);
    assert_eq!(status, 202, "{answer}");
    let triggered: SavepointTriggered = serde_json::from_str(&answer).unwrap();
    assert_eq!(triggered.trigger_id, first);
    let other = grpc
        .trigger_savepoint(SavepointRequest {
            dir: Some("file:///sp".into()),
            ..SavepointRequest::default()
        })
        .unwrap();
    assert_ne!(other, first, "no request id: a new savepoint");
    assert_eq!(job.savepoints.lock().unwrap().len(), 2);
}

#[test]
fn compatibility_and_disposal_answer_the_same_on_json_and_grpc() {
    let (server, job) = start(Some("tok"));
    let mut grpc = client(&server, Some("tok")).unwrap();
    let settings = BTreeMap::from([("parallelism.default".to_string(), "4".to_string())]);
    let answer = grpc
        .check_compatibility("INSERT INTO o SELECT COUNT(*) FROM s", &settings)
        .unwrap();
    assert!(!answer.compatible);
    assert_eq!(answer.problems.len(), 2, "{answer:?}");
    assert!(answer.problems[0].contains("GroupAggregate"), "{answer:?}");
    assert_eq!(answer.problems[1], "setting parallelism.default=4");
    let body = r#"{"sql": "INSERT INTO o SELECT COUNT(*) FROM s", "settings": {"parallelism.default": "4"}}"#;
    let (status, json) = http(&server, "POST", "/v1/job/compatibility", Some("tok"), body);
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        serde_json::from_str::<Compatibility>(&json).unwrap(),
        answer
    );
    let (_, json) = http(
        &server,
        "POST",
        "/v1/job/compatibility",
        Some("tok"),
        r#"{"sql": "INSERT INTO o SELECT a FROM s"}"#,
    );
    assert_eq!(json, r#"{"compatible":true,"problems":[]}"#);
    let (status, _) = http(&server, "POST", "/v1/job/compatibility", Some("tok"), "{}x");
    assert_eq!(status, 400);

    grpc.dispose_savepoint("file:///sp/savepoint-1").unwrap();
    let (status, json) = http(
        &server,
        "POST",
        "/v1/savepoint-disposal",
        Some("tok"),
        r#"{"path": "file:///sp/savepoint-2"}"#,
    );
    assert_eq!((status, json.as_str()), (200, "{}"));
    let err = grpc.dispose_savepoint("file:///cp/job/chk-3").unwrap_err();
    assert!(err.to_string().contains("InvalidArgument"), "{err}");
    assert!(err.to_string().contains("not a savepoint"), "{err}");
    let (status, json) = http(
        &server,
        "POST",
        "/v1/savepoint-disposal",
        Some("tok"),
        r#"{"path": "file:///cp/job/chk-3"}"#,
    );
    assert_eq!(status, 400, "{json}");
    assert_eq!(
        *job.disposed.lock().unwrap(),
        ["file:///sp/savepoint-1", "file:///sp/savepoint-2"]
    );
    let (status, _) = http(&server, "POST", "/v1/savepoint-disposal", None, "{}");
    assert_eq!(status, 401);
}

#[test]
fn a_job_without_the_newer_calls_answers_unimplemented() {
    let server = ControlServer::start(
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
        Arc::new(MinimalJob),
    )
    .unwrap();
    let mut grpc = client(&server, None).unwrap();
    let err = grpc.dispose_savepoint("file:///sp/x").unwrap_err();
    assert!(
        matches!(&err, Error::Remote { code, .. } if code == "Unimplemented"),
        "{err}"
    );
    let err = grpc
        .check_compatibility("SELECT 1", &BTreeMap::new())
        .unwrap_err();
    assert!(err.to_string().contains("Unimplemented"), "{err}");
    let (status, _) = http(
        &server,
        "POST",
        "/v1/savepoint-disposal",
        None,
        r#"{"path": "x"}"#,
    );
    assert_eq!(status, 501);
}

#[test]
fn errors_map_to_http_statuses_and_grpc_codes() {
    let (server, _job) = start(None);
    let mut grpc = client(&server, None).unwrap();
    let (status, body) = http(&server, "GET", "/v1/job/savepoints/nope", None, "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nope"), "{body}");
    let err = grpc.savepoint("nope").unwrap_err();
    assert!(matches!(err, Error::RemoteNotFound { .. }), "{err}");
    assert!(err.to_string().contains(&server.url()), "{err}");

    let (status, body) = http(&server, "POST", "/v1/job/savepoints", None, "");
    assert_eq!(status, 409, "{body}");
    let err = grpc
        .trigger_savepoint(SavepointRequest::default())
        .unwrap_err();
    assert!(err.to_string().contains("FailedPrecondition"), "{err}");

    let (status, body) = http(&server, "POST", "/v1/job/savepoints", None, "{\"stop\": 1}");
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(&server, "GET", "/v1/nothing", None, "");
    assert_eq!(status, 404);
}

#[test]
fn the_token_is_required_on_json_and_grpc() {
    let (server, _job) = start(Some("right"));
    for token in [None, Some("wrong"), Some("righ"), Some("right2")] {
        let (status, body) = http(&server, "GET", "/v1/job", token, "");
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(!body.contains("right"), "{body}");
        let (status, _) = http(&server, "GET", "/metrics", token, "");
        assert_eq!(status, 401);
        let err = client(&server, token).unwrap().job().unwrap_err();
        assert!(
            matches!(err, Error::Unauthenticated { .. }),
            "{token:?}: {err}"
        );
        assert!(err.to_string().contains(&server.url()), "{err}");
    }
    assert_eq!(http(&server, "GET", "/v1/job", Some("right"), "").0, 200);
    assert!(client(&server, Some("right")).unwrap().job().is_ok());
}

#[test]
fn probes_need_no_token_and_readiness_follows_the_job() {
    let (server, job) = start(Some("secret"));
    assert_eq!(
        http(&server, "GET", "/healthz", None, ""),
        (200, "ok\n".into())
    );
    assert_eq!(
        http(&server, "GET", "/readyz", None, ""),
        (200, "ready\n".into())
    );
    *job.state.lock().unwrap() = JobState::Restarting;
    assert_eq!(
        http(&server, "GET", "/readyz", None, ""),
        (503, "not ready\n".into())
    );
    assert_eq!(http(&server, "GET", "/healthz", Some("wrong"), "").0, 200);
}

#[test]
fn metrics_are_valid_prometheus_text() {
    let (server, _job) = start(None);
    let (status, text) = http(&server, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    check_exposition(&text);
    for name in [
        "weir_job_numberOfCompletedCheckpoints{job_id=\"orders\"} 7",
        "weir_job_numberOfFailedCheckpoints{job_id=\"orders\"} 1",
        "weir_job_lastCheckpointDuration{job_id=\"orders\"} 120",
        "weir_job_lastCheckpointSize{job_id=\"orders\"} 4096",
        "weir_job_lastCheckpointAlignmentTime{job_id=\"orders\"} 3",
        "weir_job_network_queuedFrames{job_id=\"orders\"} 2",
        "weir_job_network_peakQueuedFramesPerChannel{job_id=\"orders\"} 4",
        "weir_job_network_creditsPerChannel{job_id=\"orders\"} 4",
        "weir_job_network_creditWaits{job_id=\"orders\"} 7",
        "weir_job_numRestarts{job_id=\"orders\"} 1",
        "weir_job_state{job_id=\"orders\",state=\"RUNNING\"} 1",
        "weir_job_currentOutputWatermark{job_id=\"orders\"} 1700000000500",
        "weir_operator_backPressuredTimeMsPerSecond{job_id=\"orders\",operator_uid=\"Calc(select=[a, \\\"b\\\"])\",operator_name=\"Calc(select=[a, \\\"b\\\"])\\nline\"} 12.5",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    assert!(
        !text.contains("weir_operator_currentOutputWatermark"),
        "{text}"
    );
}

/// The text format's rules: `# HELP`/`# TYPE` before a family's samples, metric and label
/// names of the allowed characters, quoted and escaped label values, a float value.
fn check_exposition(text: &str) {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                name_ok(name) && ["gauge", "counter"].contains(&kind),
                "{line}"
            );
            assert!(!typed.contains(&name.to_string()), "family twice: {line}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect(line)),
            None => (series, ""),
        };
        assert!(name_ok(name), "bad name: {line}");
        assert_eq!(
            typed.last().map(String::as_str),
            Some(name),
            "no TYPE before: {line}"
        );
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect(line);
            assert!(name_ok(key), "bad label name: {line}");
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().expect(line) {
                    (_, '\\') => assert!(matches!(chars.next(), Some((_, '\\' | '"' | 'n')))),
                    (i, '"') => break i,
                    _ => {}
                }
            };
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
    }
}

#[test]
fn errors_name_the_url_when_nothing_listens() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let err = BlockingClient::connect(&ClientConfig::new(&url))
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains(&url) && text.contains("refused"), "{text}");
    let err = BlockingClient::connect(&ClientConfig::new("localhost:1"))
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
}

#[test]
fn tls_serves_both_protocols_to_a_client_with_the_ca() {
    let testdata = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls = Some(TlsFiles {
        cert: testdata.join("server.pem"),
        key: testdata.join("server.key"),
    });
    let server = ControlServer::start(config, FakeJob::running()).unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let mut config = ClientConfig::new(server.url());
    config.tls_ca = Some(testdata.join("ca.pem"));
    let job = BlockingClient::connect(&config).unwrap().job().unwrap();
    assert_eq!(job.job_id, "orders");
    let err = BlockingClient::connect(&ClientConfig::new(server.url()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("--tls-ca"), "{err}");
}
