//! Text tables for `weir checkpoints list` and `inspect`: `Display` for the data of
//! [`mod@crate::inspect`], so the CLI only prints.

use std::fmt::{self, Display, Formatter};

use crate::inspect::{CheckpointListing, CheckpointSummary, Inspection};
use crate::metadata::CheckpointKind;

impl Display for CheckpointListing {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.jobs.is_empty() && self.savepoints.is_empty() {
            return writeln!(f, "no checkpoints or savepoints under {}", self.uri);
        }
        for job in &self.jobs {
            writeln!(
                f,
                "job {} ({} complete checkpoint{})",
                job.job_id,
                job.checkpoints.len(),
                if job.checkpoints.len() == 1 { "" } else { "s" }
            )?;
            summaries(f, &job.checkpoints)?;
            writeln!(f)?;
        }
        if !self.savepoints.is_empty() {
            writeln!(f, "savepoints under {}", self.uri)?;
            summaries(f, &self.savepoints)?;
        }
        Ok(())
    }
}

/// One row per checkpoint, each followed by an indented table of its operators' sizes.
fn summaries(f: &mut Formatter<'_>, checkpoints: &[CheckpointSummary]) -> fmt::Result {
    if checkpoints.is_empty() {
        return writeln!(f, "  (none)");
    }
    let header = row(["ID", "KIND", "TIME (UTC)", "ATTEMPT", "SIZE", "LOCATION"]);
    let rows: Vec<Vec<String>> = checkpoints
        .iter()
        .map(|checkpoint| {
            row([
                &checkpoint.id.to_string(),
                kind(checkpoint.kind),
                &time(checkpoint.timestamp_ms),
                &checkpoint.attempt.to_string(),
                &bytes(checkpoint.size),
                &checkpoint.location,
            ])
        })
        .collect();
    let widths = widths(std::iter::once(&header).chain(&rows));
    write_row(f, "  ", &header, &widths)?;
    for (checkpoint, cells) in checkpoints.iter().zip(&rows) {
        write_row(f, "  ", cells, &widths)?;
        let operators: Vec<Vec<String>> = checkpoint
            .operators
            .iter()
            .map(|op| {
                row([
                    &op.uid,
                    &shorten(&op.name, 60),
                    &format!("p={}", op.parallelism),
                    &bytes(op.size),
                ])
            })
            .collect();
        table(f, "      ", &operators)?;
    }
    Ok(())
}

impl Display for Inspection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let summary = &self.summary;
        writeln!(
            f,
            "{} {} of job {}",
            kind(summary.kind),
            summary.id,
            summary.job_id
        )?;
        writeln!(f, "  location:         {}", summary.location)?;
        writeln!(f, "  files relative to {}", self.root)?;
        writeln!(
            f,
            "  taken:            {} UTC by attempt {}",
            time(summary.timestamp_ms),
            summary.attempt
        )?;
        writeln!(f, "  max parallelism:  {}", self.max_parallelism)?;
        writeln!(f, "  size:             {}", bytes(summary.size))?;
        if let Some(problem) = &self.problem {
            writeln!(f, "  PROBLEM:          {problem}")?;
        }
        for op in &self.operators {
            writeln!(f)?;
            writeln!(
                f,
                "operator {} ({}), parallelism {}, {}",
                op.uid,
                op.name,
                op.parallelism,
                bytes(op.size)
            )?;
            let mut rows = vec![row([
                "SUBTASK",
                "KEYED",
                "KEY GROUPS",
                "FILES",
                "SIZE",
                "OP STATE",
                "SPLITS",
                "COMMIT",
            ])];
            for subtask in &op.subtasks {
                rows.push(row([
                    &subtask.subtask.to_string(),
                    subtask.keyed,
                    &key_groups(&subtask.key_groups),
                    &subtask.files.len().to_string(),
                    &bytes(subtask.size),
                    &subtask.operator_state_items.to_string(),
                    &subtask.splits.to_string(),
                    if subtask.has_committable { "yes" } else { "-" },
                ]));
            }
            table(f, "  ", &rows)?;
            let files: Vec<_> = op.subtasks.iter().flat_map(|s| &s.files).collect();
            if !files.is_empty() {
                writeln!(f, "  files:")?;
                let rows: Vec<_> = files
                    .iter()
                    .map(|(file, size)| vec![file.clone(), bytes(*size)])
                    .collect();
                table(f, "    ", &rows)?;
            }
        }
        Ok(())
    }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|cell| (*cell).to_owned()).collect()
}

/// Left-aligned columns, padded to the widest cell, trailing spaces trimmed.
fn table(f: &mut Formatter<'_>, indent: &str, rows: &[Vec<String>]) -> fmt::Result {
    let widths = widths(rows);
    rows.iter()
        .try_for_each(|cells| write_row(f, indent, cells, &widths))
}

/// The width of each column: its widest cell, in characters.
fn widths<'a>(rows: impl IntoIterator<Item = &'a Vec<String>>) -> Vec<usize> {
    let mut widths: Vec<usize> = Vec::new();
    for cells in rows {
        for (column, cell) in cells.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(column) {
                Some(max) => *max = (*max).max(width),
                None => widths.push(width),
            }
        }
    }
    widths
}

fn write_row(
    f: &mut Formatter<'_>,
    indent: &str,
    cells: &[String],
    widths: &[usize],
) -> fmt::Result {
    let mut line = String::from(indent);
    for (cell, width) in cells.iter().zip(widths) {
        line.push_str(&format!("{cell:<width$}  "));
    }
    writeln!(f, "{}", line.trim_end())
}

/// `text` cut to `max` characters, with an ellipsis when cut (operator names can be long).
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn kind(kind: CheckpointKind) -> &'static str {
    match kind {
        CheckpointKind::Checkpoint => "checkpoint",
        CheckpointKind::Savepoint => "savepoint",
    }
}

fn time(timestamp_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(timestamp_ms).map_or_else(
        || format!("{timestamp_ms} ms"),
        |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// `123 B`, `4.0 KiB`, `1.2 MiB`...
pub(crate) fn bytes(size: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn key_groups(ranges: &[(u16, u16)]) -> String {
    if ranges.is_empty() {
        return "-".to_owned();
    }
    ranges
        .iter()
        .map(|(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_like_a_person_wrote_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(key_groups(&[(0, 3), (7, 7)]), "0-3,7");
        assert_eq!(shorten("WindowAggregate", 6), "Windo…");
        assert_eq!(shorten("Join", 6), "Join");
    }
}
