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

/// The key groups of a batch's rows, computed when first asked for (most batches of a running
/// job create no new group and never need them).
pub(crate) struct LazyKeyGroups<'a> {
    columns: &'a [ArrayRef],
    num_rows: usize,
    max_parallelism: usize,
    groups: Option<Vec<KeyGroup>>,
}

impl<'a> LazyKeyGroups<'a> {
    /// Key groups of the key columns `columns` (from [`GroupKeys::columns`]).
    pub(crate) fn new(columns: &'a [ArrayRef], num_rows: usize, max_parallelism: usize) -> Self {
        LazyKeyGroups {
            columns,
            num_rows,
            max_parallelism,
            groups: None,
        }
    }

    pub(crate) fn get(&mut self, row: usize) -> Result<KeyGroup> {
        if self.groups.is_none() {
            let hashes = hash_columns(self.columns, self.num_rows)?;
            self.groups = Some(
                hashes
                    .into_iter()
                    .map(|h| key_group(h, self.max_parallelism))
                    .collect(),
            );
        }
        Ok(self.groups.as_ref().map_or(0, |g| g[row]))
    }
}
