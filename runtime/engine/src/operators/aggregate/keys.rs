//! Group keys as bytes: the key columns of a row in Arrow's row format, which is compact,
//! cheap to hash and compare, and order-preserving (sorting the bytes sorts by key), and the way
//! back from bytes to key columns for the output.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use arrow::row::{RowConverter, RowParser, Rows, SortField};

use crate::dataflow::key_group::{KeyGroup, hash_columns, key_group};
use crate::error::{Error, Result};

/// Encodes the key columns of batches to bytes and decodes them back.
pub(crate) struct GroupKeys {
    columns: Vec<usize>,
    types: Vec<DataType>,
    /// `None` when there are no key columns: every row has the empty key.
    codec: Option<(RowConverter, RowParser)>,
}

/// The encoded keys of one batch.
pub(crate) enum KeyRows {
    /// No key columns.
    Empty,
    Rows(Rows),
}

impl KeyRows {
    /// The key bytes of row `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        match self {
            KeyRows::Empty => &[],
            KeyRows::Rows(rows) => rows.row(i).data(),
        }
    }
}

impl GroupKeys {
    /// Keys made of `columns` of batches with schema `input`.
    pub(crate) fn new(columns: &[usize], input: &Schema) -> Result<GroupKeys> {
        let mut types = Vec::with_capacity(columns.len());
        for &c in columns {
            let field = input.fields().get(c).ok_or_else(|| {
                Error::execution(
                    "aggregate",
                    format!(
                        "key column {c} is missing from the input ({} columns)",
                        input.fields().len()
                    ),
                )
            })?;
            types.push(field.data_type().clone());
        }
        let codec = if types.is_empty() {
            None
        } else {
            let converter =
                RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
            let parser = converter.parser();
            Some((converter, parser))
        };
        Ok(GroupKeys {
            columns: columns.to_vec(),
            types,
            codec,
        })
    }

    /// The key columns of `batch`, cast to the types of the first batch if they differ.
    pub(crate) fn columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.columns
            .iter()
            .zip(&self.types)
            .map(|(&c, t)| {
                let column = batch.columns().get(c).ok_or_else(|| {
                    Error::execution("aggregate", format!("key column {c} is missing"))
                })?;
                super::cast_to(column, t)
            })
            .collect()
    }

    /// The key bytes of every row of the key columns `columns` (from [`Self::columns`]).
    pub(crate) fn encode(&self, columns: &[ArrayRef]) -> Result<KeyRows> {
        match &self.codec {
            None => Ok(KeyRows::Empty),
            Some((converter, _)) => Ok(KeyRows::Rows(converter.convert_columns(columns)?)),
        }
    }

    /// Key columns holding `keys` (bytes from [`Self::encode`]), in order.
    pub(crate) fn decode<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<ArrayRef>> {
        match &self.codec {
            None => Ok(Vec::new()),
            Some((converter, parser)) => {
                Ok(converter.convert_rows(keys.into_iter().map(|k| parser.parse(k)))?)
            }
        }
    }
}

/// The key groups of a batch's rows, computed when asked for: most batches of a running job
/// create no new group and never need one, and many create only a few (a window's last keys),
/// so the first few are hashed one row at a time and only then the whole batch at once.
pub(crate) struct LazyKeyGroups<'a> {
    columns: &'a [ArrayRef],
    num_rows: usize,
    max_parallelism: usize,
    /// Rows hashed one at a time so far.
    singles: usize,
    groups: Option<Vec<KeyGroup>>,
}

/// Rows hashed one at a time before a batch is hashed whole (a row costs a few slices of the
/// key columns; the whole batch, about as much as a hundred rows).
const SINGLE_ROWS: usize = 32;

impl<'a> LazyKeyGroups<'a> {
    /// Key groups of the key columns `columns` (from [`GroupKeys::columns`]).
    pub(crate) fn new(columns: &'a [ArrayRef], num_rows: usize, max_parallelism: usize) -> Self {
        LazyKeyGroups {
            columns,
            num_rows,
            max_parallelism,
            singles: 0,
            groups: None,
        }
    }

    pub(crate) fn get(&mut self, row: usize) -> Result<KeyGroup> {
        if let Some(groups) = &self.groups {
            return Ok(groups[row]);
        }
        if self.singles < SINGLE_ROWS {
            self.singles += 1;
            let columns: Vec<ArrayRef> = self.columns.iter().map(|c| c.slice(row, 1)).collect();
            let hash = hash_columns(&columns, 1)?;
            return Ok(hash
                .first()
                .map_or(0, |&h| key_group(h, self.max_parallelism)));
        }
        let hashes = hash_columns(self.columns, self.num_rows)?;
        let groups: Vec<KeyGroup> = hashes
            .into_iter()
            .map(|h| key_group(h, self.max_parallelism))
            .collect();
        let group = groups[row];
        self.groups = Some(groups);
        Ok(group)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};

    use super::*;

    #[test]
    fn key_groups_of_single_rows_equal_those_of_the_whole_batch() {
        let n = 200;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter(
                (0..n as i32).map(|i| (i % 7 != 0).then_some(i)),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("k{i}")),
            )),
        ];
        let whole: Vec<KeyGroup> = hash_columns(&columns, n)
            .unwrap()
            .into_iter()
            .map(|h| key_group(h, 128))
            .collect();
        let mut lazy = LazyKeyGroups::new(&columns, n, 128);
        // Past the single-row budget the rest come from one pass over the batch.
        let rows: Vec<usize> = (0..n).rev().step_by(3).chain(0..n).collect();
        for row in rows {
            assert_eq!(lazy.get(row).unwrap(), whole[row], "row {row}");
        }
    }
}
