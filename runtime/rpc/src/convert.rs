//! Between the [`crate::model`] types and the generated `weir.control.v1` messages: the server
//! converts its answers to protobuf, the clients convert them back. An enum value this build
//! does not know (a newer server) is a protocol error naming the field, never a silent default.

use crate::control as pb;
use crate::error::{Error, Result};
use crate::model::{
    Checkpoint, CheckpointKind, CheckpointStatus, Checkpoints, Job, JobState, Network, Operator,
    Savepoint, SavepointStatus,
};

/// Why a message could not be understood; the client adds the URL.
pub(crate) type Decoded<T> = std::result::Result<T, String>;

fn unknown(field: &str, value: i32) -> String {
    format!("unknown {field} value {value}")
}

pub(crate) fn job_state_to_proto(state: JobState) -> pb::JobState {
    match state {
        JobState::Created => pb::JobState::Created,
        JobState::Running => pb::JobState::Running,
        JobState::Restarting => pb::JobState::Restarting,
        JobState::Cancelling => pb::JobState::Cancelling,
        JobState::Canceled => pb::JobState::Canceled,
        JobState::Finished => pb::JobState::Finished,
        JobState::Failing => pb::JobState::Failing,
        JobState::Failed => pb::JobState::Failed,
    }
}

fn job_state_from_proto(value: i32) -> Decoded<JobState> {
    Ok(match pb::JobState::try_from(value) {
        Ok(pb::JobState::Created) => JobState::Created,
        Ok(pb::JobState::Running) => JobState::Running,
        Ok(pb::JobState::Restarting) => JobState::Restarting,
        Ok(pb::JobState::Cancelling) => JobState::Cancelling,
        Ok(pb::JobState::Canceled) => JobState::Canceled,
        Ok(pb::JobState::Finished) => JobState::Finished,
        Ok(pb::JobState::Failing) => JobState::Failing,
        Ok(pb::JobState::Failed) => JobState::Failed,
        Ok(pb::JobState::Unspecified) | Err(_) => return Err(unknown("job state", value)),
    })
}

pub(crate) fn job_to_proto(job: Job) -> pb::Job {
    pb::Job {
        job_id: job.job_id,
        name: job.name,
        state: job_state_to_proto(job.state) as i32,
        start_time_ms: job.start_time_ms,
        uptime_ms: job.uptime_ms,
        parallelism: job.parallelism,
        max_parallelism: job.max_parallelism,
        attempt: job.attempt,
        restarts: job.restarts,
        operators: job
            .operators
            .into_iter()
            .map(|o| pb::Operator {
                uid: o.uid,
                name: o.name,
                parallelism: o.parallelism,
                num_records_in: o.num_records_in,
                num_records_out: o.num_records_out,
                back_pressured_time_ms_per_second: o.back_pressured_time_ms_per_second,
                current_output_watermark_ms: o.current_output_watermark_ms,
            })
            .collect(),
        watermark_ms: job.watermark_ms,
        last_error: job.last_error,
        num_records_in: job.num_records_in,
        num_records_out: job.num_records_out,
        network: job.network.map(|n| pb::Network {
            queued_frames: n.queued_frames,
            peak_queued_frames_per_channel: n.peak_queued_frames_per_channel,
            credits_per_channel: n.credits_per_channel,
            frames_sent: n.frames_sent,
            frames_received: n.frames_received,
            credit_waits: n.credit_waits,
        }),
    }
}

pub(crate) fn job_from_proto(job: pb::Job) -> Decoded<Job> {
    Ok(Job {
        state: job_state_from_proto(job.state)?,
        job_id: job.job_id,
        name: job.name,
        start_time_ms: job.start_time_ms,
        uptime_ms: job.uptime_ms,
        parallelism: job.parallelism,
        max_parallelism: job.max_parallelism,
        attempt: job.attempt,
        restarts: job.restarts,
        num_records_in: job.num_records_in,
        num_records_out: job.num_records_out,
        watermark_ms: job.watermark_ms,
        last_error: job.last_error,
        operators: job
            .operators
            .into_iter()
            .map(|o| Operator {
                uid: o.uid,
                name: o.name,
                parallelism: o.parallelism,
                num_records_in: o.num_records_in,
                num_records_out: o.num_records_out,
                back_pressured_time_ms_per_second: o.back_pressured_time_ms_per_second,
                current_output_watermark_ms: o.current_output_watermark_ms,
            })
            .collect(),
        network: job.network.map(|n| Network {
            queued_frames: n.queued_frames,
            peak_queued_frames_per_channel: n.peak_queued_frames_per_channel,
            credits_per_channel: n.credits_per_channel,
            frames_sent: n.frames_sent,
            frames_received: n.frames_received,
            credit_waits: n.credit_waits,
        }),
    })
}

fn checkpoint_to_proto(c: Checkpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        id: c.id,
        kind: match c.kind {
            CheckpointKind::Checkpoint => pb::CheckpointKind::Checkpoint,
            CheckpointKind::Savepoint => pb::CheckpointKind::Savepoint,
        } as i32,
        status: match c.status {
            CheckpointStatus::InProgress => pb::CheckpointStatus::InProgress,
            CheckpointStatus::Completed => pb::CheckpointStatus::Completed,
            CheckpointStatus::Failed => pb::CheckpointStatus::Failed,
        } as i32,
        trigger_time_ms: c.trigger_time_ms,
        duration_ms: c.duration_ms,
        size_bytes: c.size_bytes,
        alignment_ms: c.alignment_ms,
        path: c.path,
        failure: c.failure,
    }
}

fn checkpoint_from_proto(c: pb::Checkpoint) -> Decoded<Checkpoint> {
    Ok(Checkpoint {
        id: c.id,
        kind: match pb::CheckpointKind::try_from(c.kind) {
            Ok(pb::CheckpointKind::Checkpoint) => CheckpointKind::Checkpoint,
            Ok(pb::CheckpointKind::Savepoint) => CheckpointKind::Savepoint,
            _ => return Err(unknown("checkpoint kind", c.kind)),
        },
        status: match pb::CheckpointStatus::try_from(c.status) {
            Ok(pb::CheckpointStatus::InProgress) => CheckpointStatus::InProgress,
            Ok(pb::CheckpointStatus::Completed) => CheckpointStatus::Completed,
            Ok(pb::CheckpointStatus::Failed) => CheckpointStatus::Failed,
            _ => return Err(unknown("checkpoint status", c.status)),
        },
        trigger_time_ms: c.trigger_time_ms,
        duration_ms: c.duration_ms,
        size_bytes: c.size_bytes,
        alignment_ms: c.alignment_ms,
        path: c.path,
        failure: c.failure,
    })
}

pub(crate) fn checkpoints_to_proto(c: Checkpoints) -> pb::Checkpoints {
    pb::Checkpoints {
        number_of_completed_checkpoints: c.number_of_completed_checkpoints,
        number_of_failed_checkpoints: c.number_of_failed_checkpoints,
        number_of_in_progress_checkpoints: c.number_of_in_progress_checkpoints,
        latest_completed: c.latest_completed.map(checkpoint_to_proto),
        history: c.history.into_iter().map(checkpoint_to_proto).collect(),
    }
}

pub(crate) fn checkpoints_from_proto(c: pb::Checkpoints) -> Decoded<Checkpoints> {
    Ok(Checkpoints {
        number_of_completed_checkpoints: c.number_of_completed_checkpoints,
        number_of_failed_checkpoints: c.number_of_failed_checkpoints,
        number_of_in_progress_checkpoints: c.number_of_in_progress_checkpoints,
        latest_completed: c.latest_completed.map(checkpoint_from_proto).transpose()?,
        history: c
            .history
            .into_iter()
            .map(checkpoint_from_proto)
            .collect::<Decoded<_>>()?,
    })
}

pub(crate) fn savepoint_to_proto(s: Savepoint) -> pb::Savepoint {
    pb::Savepoint {
        trigger_id: s.trigger_id,
        status: match s.status {
            SavepointStatus::InProgress => pb::SavepointStatus::InProgress,
            SavepointStatus::Completed => pb::SavepointStatus::Completed,
            SavepointStatus::Failed => pb::SavepointStatus::Failed,
        } as i32,
        path: s.path,
        failure: s.failure,
        stop: s.stop,
    }
}

pub(crate) fn savepoint_from_proto(s: pb::Savepoint) -> Decoded<Savepoint> {
    Ok(Savepoint {
        status: match pb::SavepointStatus::try_from(s.status) {
            Ok(pb::SavepointStatus::InProgress) => SavepointStatus::InProgress,
            Ok(pb::SavepointStatus::Completed) => SavepointStatus::Completed,
            Ok(pb::SavepointStatus::Failed) => SavepointStatus::Failed,
            _ => return Err(unknown("savepoint status", s.status)),
        },
        trigger_id: s.trigger_id,
        stop: s.stop,
        path: s.path,
        failure: s.failure,
    })
}

/// A decoding failure as the client reports it, naming the server.
pub(crate) fn decode<T>(url: &str, decoded: Decoded<T>) -> Result<T> {
    decoded.map_err(|reason| Error::Protocol {
        url: url.to_string(),
        reason,
    })
}
