//! `GET /metrics`: the job's figures in Prometheus' text format (version 0.0.4), with the
//! metric names Flink users know, prefixed `weir_job_` (job scope) or `weir_operator_`
//! (one series per operator, labelled by uid and name). Like Flink's Prometheus reporter,
//! every metric is exported as a gauge, counters included, so dashboards written for Flink
//! carry over with a prefix change. `docs/control-api.md` lists them.

use std::fmt::Write as _;

use crate::model::{Checkpoints, Job, JobState, Operator};

/// An operator metric: name, help, and its value (absent: no sample).
type OperatorFigure = (&'static str, &'static str, fn(&Operator) -> Option<f64>);

/// The exposition text for `job` and its `checkpoints`.
pub fn render(job: &Job, checkpoints: &Checkpoints) -> String {
    let mut out = String::new();
    let job_labels = [("job_id", job.job_id.as_str())];

    family(
        &mut out,
        "weir_job_uptime",
        "Milliseconds since the job started.",
    );
    sample(
        &mut out,
        "weir_job_uptime",
        &job_labels,
        job.uptime_ms as f64,
    );
    family(
        &mut out,
        "weir_job_numRestarts",
        "Restarts after task failures.",
    );
    sample(
        &mut out,
        "weir_job_numRestarts",
        &job_labels,
        f64::from(job.restarts),
    );
    family(
        &mut out,
        "weir_job_state",
        "1 for the job's current state (CREATED, RUNNING, ...), 0 for the others.",
    );
    for state in JobState::ALL {
        let labels = [("job_id", job.job_id.as_str()), ("state", state.as_str())];
        let value = if state == job.state { 1.0 } else { 0.0 };
        sample(&mut out, "weir_job_state", &labels, value);
    }
    family(
        &mut out,
        "weir_job_numRecordsIn",
        "Rows the sources read (this attempt).",
    );
    sample(
        &mut out,
        "weir_job_numRecordsIn",
        &job_labels,
        job.num_records_in as f64,
    );
    family(
        &mut out,
        "weir_job_numRecordsOut",
        "Rows the sinks wrote (this attempt).",
    );
    sample(
        &mut out,
        "weir_job_numRecordsOut",
        &job_labels,
        job.num_records_out as f64,
    );
    if let Some(watermark) = job.watermark_ms {
        family(
            &mut out,
            "weir_job_currentOutputWatermark",
            "The minimum watermark over the sinks, ms since the epoch.",
        );
        sample(
            &mut out,
            "weir_job_currentOutputWatermark",
            &job_labels,
            watermark as f64,
        );
    }

    let counts = [
        (
            "weir_job_numberOfCompletedCheckpoints",
            "Checkpoints and savepoints completed.",
            checkpoints.number_of_completed_checkpoints,
        ),
        (
            "weir_job_numberOfFailedCheckpoints",
            "Checkpoints and savepoints that failed.",
            checkpoints.number_of_failed_checkpoints,
        ),
        (
            "weir_job_numberOfInProgressCheckpoints",
            "Checkpoints and savepoints in progress.",
            checkpoints.number_of_in_progress_checkpoints,
        ),
    ];
    for (name, help, value) in counts {
        family(&mut out, name, help);
        sample(&mut out, name, &job_labels, value as f64);
    }
    if let Some(last) = &checkpoints.latest_completed {
        let figures = [
            (
                "weir_job_lastCheckpointDuration",
                "Milliseconds the latest completed checkpoint took.",
                last.duration_ms,
            ),
            (
                "weir_job_lastCheckpointSize",
                "Bytes the latest completed checkpoint wrote.",
                last.size_bytes,
            ),
            (
                "weir_job_lastCheckpointAlignmentTime",
                "Milliseconds the longest barrier alignment of the latest completed checkpoint took.",
                last.alignment_ms,
            ),
            (
                "weir_job_lastCheckpointId",
                "The id of the latest completed checkpoint.",
                Some(last.id),
            ),
        ];
        for (name, help, value) in figures {
            if let Some(value) = value {
                family(&mut out, name, help);
                sample(&mut out, name, &job_labels, value as f64);
            }
        }
    }

    if let Some(network) = &job.network {
        let figures = [
            (
                "weir_job_network_queuedFrames",
                "Frames received from other workers and not yet taken by their task.",
                network.queued_frames as f64,
            ),
            (
                "weir_job_network_peakQueuedFramesPerChannel",
                "The most frames one receiving channel held at once (at most its credits).",
                f64::from(network.peak_queued_frames_per_channel),
            ),
            (
                "weir_job_network_creditsPerChannel",
                "Credits (frames in flight) each channel between workers has.",
                f64::from(network.credits_per_channel),
            ),
            (
                "weir_job_network_framesSent",
                "Frames sent to other workers (this attempt).",
                network.frames_sent as f64,
            ),
            (
                "weir_job_network_framesReceived",
                "Frames received from other workers (this attempt).",
                network.frames_received as f64,
            ),
            (
                "weir_job_network_creditWaits",
                "Sends that waited for a credit: back-pressure across workers (this attempt).",
                network.credit_waits as f64,
            ),
        ];
        for (name, help, value) in figures {
            family(&mut out, name, help);
            sample(&mut out, name, &job_labels, value);
        }
    }

    let per_operator: [OperatorFigure; 4] = [
        (
            "weir_operator_numRecordsIn",
            "Rows into the operator (this attempt).",
            |o| Some(o.num_records_in as f64),
        ),
        (
            "weir_operator_numRecordsOut",
            "Rows out of the operator (this attempt).",
            |o| Some(o.num_records_out as f64),
        ),
        (
            "weir_operator_backPressuredTimeMsPerSecond",
            "Milliseconds per second the operator's task was blocked by a full downstream channel.",
            |o| Some(o.back_pressured_time_ms_per_second),
        ),
        (
            "weir_operator_currentOutputWatermark",
            "The operator's output watermark (minimum over subtasks), ms since the epoch.",
            |o| o.current_output_watermark_ms.map(|w| w as f64),
        ),
    ];
    for (name, help, value) in per_operator {
        let mut first = true;
        for operator in &job.operators {
            let Some(value) = value(operator) else {
                continue;
            };
            if std::mem::take(&mut first) {
                family(&mut out, name, help);
            }
            let labels = [
                ("job_id", job.job_id.as_str()),
                ("operator_uid", operator.uid.as_str()),
                ("operator_name", operator.name.as_str()),
            ];
            sample(&mut out, name, &labels, value);
        }
    }
    out
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 9.0e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}
