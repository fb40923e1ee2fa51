//! Fixtures for connector tests: tables built in code, sources run to the end, and sources
//! checkpointed mid-stream and restored (at the same or another parallelism) as the engine
//! does it.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;

use crate::catalog::{ColumnDef, ColumnKind, TableDef};
use crate::connectors::{Connector, Source, SourceContext, SourceEvent};
use crate::error::{Result, SqlLocation};
use crate::types::flink_type_name;

/// A table with physical columns and options, as the SQL front end would declare it.
pub fn table(name: &str, columns: &[(&str, DataType)], options: &[(&str, &str)]) -> TableDef {
    TableDef {
        name: name.into(),
        columns: columns
            .iter()
            .map(|(column, data_type)| ColumnDef {
                name: column.to_string(),
                kind: ColumnKind::Physical {
                    data_type: data_type.clone(),
                    nullable: true,
                    sql_type: flink_type_name(data_type),
                },
                location: SqlLocation::default(),
            })
            .collect(),
        watermark: None,
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        location: SqlLocation::default(),
    }
}

pub fn source_context(
    table: &TableDef,
    subtask: usize,
    parallelism: usize,
    batch_size: usize,
) -> SourceContext {
    SourceContext {
        table: Arc::new(table.clone()),
        schema: table.physical_schema(),
        subtask,
        parallelism,
        batch_size,
        restored_splits: None,
    }
}

/// Every batch one subtask produces until it ends (panics after `max_polls` polls).
pub fn run_source(
    connector: &dyn Connector,
    table: &TableDef,
    subtask: usize,
    parallelism: usize,
    batch_size: usize,
) -> Result<Vec<RecordBatch>> {
    let mut source =
        connector.create_source(source_context(table, subtask, parallelism, batch_size))?;
    let mut batches = Vec::new();
    for _ in 0..1_000_000 {
        match source.poll_next()? {
            SourceEvent::Batch(batch) => batches.push(batch),
            SourceEvent::Pending => {}
            SourceEvent::End => return Ok(batches),
        }
    }
    panic!("source did not end");
}

/// All rows of some batches in the print sink's text form.
pub fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |row| super::format::format_row(b, row)))
        .collect()
}

/// Every batch a source produces until it ends (panics after a million polls).
pub fn drain(source: &mut dyn Source) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for _ in 0..1_000_000 {
        match source.poll_next()? {
            SourceEvent::Batch(batch) => batches.push(batch),
            SourceEvent::Pending => {}
            SourceEvent::End => return Ok(batches),
        }
    }
    panic!("source did not end");
}

/// The splits each of `new_parallelism` subtasks gets, as the engine deals them on a restore:
/// at the same parallelism each subtask its own; otherwise all of them, in old-subtask order,
/// round-robin.
pub fn deal_splits(
    old: Vec<Vec<serde_json::Value>>,
    new_parallelism: usize,
) -> Vec<Vec<serde_json::Value>> {
    if old.len() == new_parallelism {
        return old;
    }
    let mut dealt = vec![Vec::new(); new_parallelism];
    for (k, split) in old.into_iter().flatten().enumerate() {
        dealt[k % new_parallelism].push(split);
    }
    dealt
}

/// What a source did around a checkpoint, one entry per subtask.
pub struct Restored {
    /// Rows each old subtask emitted before the checkpoint.
    pub before: Vec<Vec<String>>,
    /// Rows each new subtask emitted after the restore, to the end.
    pub after: Vec<Vec<String>>,
    /// The splits each old subtask recorded.
    pub splits: Vec<Vec<serde_json::Value>>,
}

/// Run `old` subtasks of a source, subtask `i` for `polls(i)` polls; record their splits at a
/// checkpoint; let them run on a little (output the failure then loses); restore `new`
/// subtasks from the dealt splits and run them to the end.
pub fn checkpoint_and_restore(
    connector: &dyn Connector,
    table: &TableDef,
    old: usize,
    new: usize,
    batch_size: usize,
    polls: impl Fn(usize) -> usize,
) -> Result<Restored> {
    let mut before = Vec::new();
    let mut splits = Vec::new();
    for subtask in 0..old {
        let mut source =
            connector.create_source(source_context(table, subtask, old, batch_size))?;
        let mut batches = Vec::new();
        for _ in 0..polls(subtask) {
            if let SourceEvent::Batch(batch) = source.poll_next()? {
                batches.push(batch);
            }
        }
        splits.push(source.snapshot_splits()?);
        // Rows after the barrier are replayed from the splits after the failure.
        for _ in 0..2 {
            source.poll_next()?;
        }
        before.push(rows_as_text(&batches));
    }
    let mut after = Vec::new();
    for (subtask, dealt) in deal_splits(splits.clone(), new).into_iter().enumerate() {
        let mut ctx = source_context(table, subtask, new, batch_size);
        ctx.restored_splits = Some(dealt);
        let mut source = connector.create_source(ctx)?;
        after.push(rows_as_text(&drain(source.as_mut())?));
    }
    Ok(Restored {
        before,
        after,
        splits,
    })
}

/// Assert that a checkpoint and restore of `old` → `new` subtasks lost and repeated nothing:
/// the rows before and after, together, are the rows of a failure-free run of `old` subtasks
/// (in the same order per subtask when the parallelism stays); returns the splits recorded.
pub fn assert_restore_is_exact(
    connector: &dyn Connector,
    table: &TableDef,
    old: usize,
    new: usize,
    batch_size: usize,
    polls: impl Fn(usize) -> usize,
) -> Vec<Vec<serde_json::Value>> {
    let mut expected = Vec::new();
    for subtask in 0..old {
        let batches = run_source(connector, table, subtask, old, batch_size).expect("runs");
        expected.push(rows_as_text(&batches));
    }
    let restored =
        checkpoint_and_restore(connector, table, old, new, batch_size, polls).expect("restores");
    if old == new {
        let runs = expected.iter().zip(&restored.before).zip(&restored.after);
        for (subtask, ((expected, before), after)) in runs.enumerate() {
            let resumed: Vec<String> = before.iter().chain(after).cloned().collect();
            assert!(
                resumed == *expected,
                "{}: subtask {subtask} of {old} differs from a failure-free run \
                 ({} rows before, {} after, {} expected)",
                table.name,
                before.len(),
                after.len(),
                expected.len()
            );
        }
    }
    let mut expected: Vec<String> = expected.into_iter().flatten().collect();
    let mut got: Vec<String> = restored
        .before
        .into_iter()
        .chain(restored.after)
        .flatten()
        .collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(
        got.len(),
        expected.len(),
        "{}: {old} -> {new} subtasks: row count",
        table.name
    );
    assert!(
        got == expected,
        "{}: {old} -> {new} subtasks: rows differ from a failure-free run",
        table.name
    );
    restored.splits
}
