//! The `_metadata` of a checkpoint or savepoint: what every operator's subtasks stored, and
//! where.
//!
//! The JSON shape is the contract of `docs/checkpoints.md`. File paths in it are relative: to
//! the job folder (`<checkpoint-dir>/<job-id>/`) for checkpoints, to the savepoint folder for
//! savepoints, so a copied savepoint folder stays restorable. A `_metadata` is written last and
//! create-only, so its presence is what makes a checkpoint complete.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The `format_version` this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The name of the file that completes a checkpoint or savepoint folder.
pub const METADATA_FILE: &str = "_metadata";

/// The shared-folder path of a state file: `shared/<uid>-<subtask>-a<attempt>-c<checkpoint>-<name>`.
///
/// Attempt and checkpoint make the name unique across runs, so an upload never overwrites a
/// file another checkpoint references.
pub fn shared_file(
    uid: &str,
    subtask: u32,
    attempt: u64,
    checkpoint_id: u64,
    name: &str,
) -> String {
    format!("shared/{uid}-{subtask}-a{attempt}-c{checkpoint_id}-{name}")
}

/// Everything needed to restore a job as of one checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    pub format_version: u32,
    pub job_id: String,
    pub checkpoint_id: u64,
    /// The attempt (run) of the job that took it.
    pub attempt: u64,
    pub kind: CheckpointKind,
    /// When the checkpoint was triggered, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The number of key groups; a restore with another value is refused.
    pub max_parallelism: u32,
    pub operators: Vec<OperatorState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    Checkpoint,
    Savepoint,
}

/// The state of one operator (by stable uid) across its subtasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    pub uid: String,
    pub name: String,
    pub parallelism: u32,
    pub subtasks: Vec<SubtaskState>,
}

/// The state of one subtask of an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskState {
    pub subtask: u32,
    /// Absent for operators without keyed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyed: Option<KeyedStateHandle>,
    /// Union-redistributed on restore.
    #[serde(default)]
    pub operator_state: Vec<serde_json::Value>,
    /// Sources only: split-redistributed on restore.
    #[serde(default)]
    pub splits: Vec<serde_json::Value>,
    /// Sinks only: what the commit after completion needs.
    #[serde(default)]
    pub committable: Option<serde_json::Value>,
}

/// Where a subtask's keyed state is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KeyedStateHandle {
    /// Canonical bytes per non-empty key group (savepoints, the in-memory backend): a file
    /// per key group, or ranges of one file shared by a subtask's key groups.
    Canonical { key_groups: Vec<KeyGroupFile> },
    /// A RocksDB native checkpoint of the subtask's key-group range.
    RocksDb {
        key_group_start: u16,
        key_group_end: u16,
        files: Vec<RocksFile>,
    },
}

/// Where one key group's canonical bytes are: `size` bytes at `offset` in `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGroupFile {
    pub key_group: u16,
    pub file: String,
    pub size: u64,
    /// Non-zero when several key groups share `file` (absent in older metadata: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One file of a RocksDB checkpoint: its `name` in the checkpoint folder and where it was
/// uploaded (possibly by an earlier checkpoint, for an unchanged SST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RocksFile {
    pub name: String,
    pub file: String,
    pub size: u64,
}

impl CheckpointMetadata {
    /// Every file path (relative, as stored) the checkpoint needs.
    pub fn referenced_files(&self) -> BTreeSet<String> {
        self.operators
            .iter()
            .flat_map(|op| &op.subtasks)
            .flat_map(SubtaskState::files)
            .map(|(file, _)| file.to_owned())
            .collect()
    }

    /// The bytes of all referenced files (a file shared by two subtasks counts once).
    pub fn total_size(&self) -> u64 {
        let mut seen = BTreeSet::new();
        self.operators
            .iter()
            .flat_map(|op| &op.subtasks)
            .flat_map(SubtaskState::files)
            .filter(|(file, _)| seen.insert(*file))
            .map(|(_, size)| size)
            .sum()
    }

    /// The operator with `uid`, if any.
    pub fn operator(&self, uid: &str) -> Option<&OperatorState> {
        self.operators.iter().find(|op| op.uid == uid)
    }

    /// Pretty JSON, as written to `_metadata`.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses a `_metadata` read from `uri`, refusing other format versions.
    pub fn from_json(bytes: &[u8], uri: &str) -> Result<Self> {
        let not_ours = |reason: String| Error::NotACheckpoint {
            uri: uri.to_owned(),
            reason,
        };
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|err| not_ours(format!("invalid JSON: {err}")))?;
        match value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(version) if version == u64::from(FORMAT_VERSION) => {}
            Some(version) => {
                return Err(not_ours(format!(
                    "format_version {version}, this build reads {FORMAT_VERSION}"
                )));
            }
            None => return Err(not_ours("no format_version".to_owned())),
        }
        serde_json::from_value(value).map_err(|err| not_ours(format!("unexpected content: {err}")))
    }
}

impl OperatorState {
    /// The bytes of this operator's files over all subtasks.
    pub fn total_size(&self) -> u64 {
        self.subtasks.iter().map(SubtaskState::total_size).sum()
    }
}

impl SubtaskState {
    /// `(path, size)` of every file of this subtask's keyed state, each file once (key groups
    /// sharing a file add up to its size).
    pub fn files(&self) -> Vec<(&str, u64)> {
        match &self.keyed {
            None => Vec::new(),
            Some(KeyedStateHandle::Canonical { key_groups }) => {
                let mut files: Vec<(&str, u64)> = Vec::with_capacity(key_groups.len());
                for kg in key_groups {
                    match files.iter_mut().find(|(file, _)| *file == kg.file) {
                        Some((_, size)) => *size += kg.size,
                        None => files.push((kg.file.as_str(), kg.size)),
                    }
                }
                files
            }
            Some(KeyedStateHandle::RocksDb { files, .. }) => {
                files.iter().map(|f| (f.file.as_str(), f.size)).collect()
            }
        }
    }

    /// The bytes of this subtask's files.
    pub fn total_size(&self) -> u64 {
        self.files().iter().map(|(_, size)| size).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A checkpoint of one keyed operator with a RocksDB subtask and a canonical subtask, and a
    /// stateless source, referencing `files`.
    pub(crate) fn sample(checkpoint_id: u64, attempt: u64, files: &[&str]) -> CheckpointMetadata {
        let rocks_files = files
            .iter()
            .map(|file| RocksFile {
                name: file.rsplit('-').next().unwrap_or(file).to_owned(),
                file: (*file).to_owned(),
                size: 10,
            })
            .collect();
        CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job_id: "job".to_owned(),
            checkpoint_id,
            attempt,
            kind: CheckpointKind::Checkpoint,
            timestamp_ms: 1_763_780_000_000 + checkpoint_id as i64,
            max_parallelism: 128,
            operators: vec![
                OperatorState {
                    uid: "source-1".to_owned(),
                    name: "Source(kafka)".to_owned(),
                    parallelism: 1,
                    subtasks: vec![SubtaskState {
                        subtask: 0,
                        keyed: None,
                        operator_state: vec![],
                        splits: vec![serde_json::json!({"partition": 0, "offset": 42})],
                        committable: None,
                    }],
                },
                OperatorState {
                    uid: "agg-2".to_owned(),
                    name: "WindowAggregate".to_owned(),
                    parallelism: 2,
                    subtasks: vec![
                        SubtaskState {
                            subtask: 0,
                            keyed: Some(KeyedStateHandle::RocksDb {
                                key_group_start: 0,
                                key_group_end: 63,
                                files: rocks_files,
                            }),
                            operator_state: vec![],
                            splits: vec![],
                            committable: None,
                        },
                        SubtaskState {
                            subtask: 1,
                            keyed: Some(KeyedStateHandle::Canonical { key_groups: vec![] }),
                            operator_state: vec![],
                            splits: vec![],
                            committable: None,
                        },
                    ],
                },
            ],
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let metadata = sample(12, 3, &["shared/agg-2-0-a3-c12-000012.sst"]);
        let json: serde_json::Value =
            serde_json::from_slice(&metadata.to_json()).expect("valid json");
        assert_eq!(json["format_version"], 1);
        assert_eq!(json["kind"], "checkpoint");
        let source = &json["operators"][0]["subtasks"][0];
        assert!(source.get("keyed").is_none(), "absent, not null: {source}");
        assert_eq!(source["committable"], serde_json::Value::Null);
        let rocks = &json["operators"][1]["subtasks"][0]["keyed"];
        assert_eq!(rocks["type"], "rocksdb");
        assert_eq!(rocks["key_group_end"], 63);
        assert_eq!(rocks["files"][0]["name"], "000012.sst");
        assert_eq!(
            json["operators"][1]["subtasks"][1]["keyed"]["type"],
            "canonical"
        );
        assert_eq!(
            CheckpointMetadata::from_json(&metadata.to_json(), "x").expect("parse"),
            metadata
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = r#"{
          "format_version": 1, "job_id": "nexmark_q5", "checkpoint_id": 12, "attempt": 3,
          "kind": "savepoint", "timestamp_ms": 1763780000000, "max_parallelism": 128,
          "operators": [{ "uid": "w-3f2a", "name": "WindowAggregate", "parallelism": 2,
            "subtasks": [{ "subtask": 0,
              "keyed": { "type": "canonical", "key_groups": [ { "key_group": 5, "file": "a", "size": 123 } ] },
              "operator_state": [], "splits": [], "committable": null }] }]
        }"#;
        let metadata = CheckpointMetadata::from_json(doc.as_bytes(), "x").expect("parse");
        assert_eq!(metadata.kind, CheckpointKind::Savepoint);
        assert_eq!(metadata.total_size(), 123);
        assert_eq!(
            metadata.referenced_files(),
            BTreeSet::from(["a".to_owned()])
        );
    }

    #[test]
    fn other_versions_and_bad_json_are_not_checkpoints() {
        let err =
            CheckpointMetadata::from_json(b"{\"format_version\": 2}", "s3://b/chk-1/_metadata")
                .expect_err("version 2");
        assert!(err.to_string().contains("format_version 2"), "{err}");
        assert!(err.to_string().contains("s3://b/chk-1/_metadata"), "{err}");
        let err = CheckpointMetadata::from_json(b"{\"format_ver", "u").expect_err("truncated");
        assert!(err.to_string().contains("invalid JSON"), "{err}");
    }

    #[test]
    fn referenced_files_and_sizes_count_shared_files_once() {
        let mut metadata = sample(1, 1, &["shared/a", "shared/b"]);
        metadata.operators[1].subtasks[1].keyed = Some(KeyedStateHandle::Canonical {
            key_groups: vec![KeyGroupFile {
                key_group: 70,
                file: "shared/a".to_owned(),
                size: 10,
                offset: 0,
            }],
        });
        assert_eq!(metadata.referenced_files().len(), 2);
        assert_eq!(metadata.total_size(), 20);
        assert_eq!(metadata.operators[1].total_size(), 30);
        // Key groups packed into one file add up to that file's size.
        let packed = |key_group, offset| KeyGroupFile {
            key_group,
            file: "shared/packed".to_owned(),
            size: 5,
            offset,
        };
        metadata.operators[1].subtasks[1].keyed = Some(KeyedStateHandle::Canonical {
            key_groups: vec![packed(70, 0), packed(71, 5), packed(72, 10)],
        });
        assert_eq!(
            metadata.operators[1].subtasks[1].files(),
            vec![("shared/packed", 15)]
        );
        assert_eq!(metadata.referenced_files().len(), 3);
        assert_eq!(
            shared_file("agg-2", 1, 3, 12, "000007.sst"),
            "shared/agg-2-1-a3-c12-000007.sst"
        );
    }
}
