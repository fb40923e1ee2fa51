//! COUNT(*) and COUNT(x): a row count per slot (COUNT(x) skips NULLs). Never NULL.

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;

use super::result::{ResultKind, put_int};
use super::{Accumulator, NO_SLOT, codec};
use crate::error::Result;

pub(crate) struct Count {
    /// COUNT(*): every row counts, the argument is not read.
    star: bool,
    counts: Vec<i64>,
}

impl Count {
    pub(crate) fn new(star: bool) -> Count {
        Count {
            star,
            counts: Vec::new(),
        }
    }
}

impl Accumulator for Count {
    fn prepare(&self, arg: &ArrayRef) -> Result<ArrayRef> {
        Ok(arg.clone())
    }

    fn ensure(&mut self, n: usize) {
        if self.counts.len() < n {
            self.counts.resize(n, 0);
        }
    }

    fn clear(&mut self, slot: u32) {
        self.counts[slot as usize] = 0;
    }

    fn update_batch(&mut self, arg: Option<&ArrayRef>, slots: &[u32]) -> Result<()> {
        let nulls = if self.star {
            None
        } else {
            arg.and_then(|a| a.logical_nulls())
        };
        match nulls {
            None => {
                for &slot in slots {
                    if slot != NO_SLOT {
                        self.counts[slot as usize] += 1;
                    }
                }
            }
            Some(nulls) => {
                for (i, &slot) in slots.iter().enumerate() {
                    if slot != NO_SLOT && nulls.is_valid(i) {
                        self.counts[slot as usize] += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn update_row(
        &mut self,
        arg: Option<&ArrayRef>,
        row: usize,
        slot: u32,
        retract: bool,
    ) -> Result<()> {
        if !self.star && arg.is_some_and(|a| a.data_type() == &DataType::Null || a.is_null(row)) {
            return Ok(());
        }
        let count = &mut self.counts[slot as usize];
        *count += if retract { -1 } else { 1 };
        Ok(())
    }

    fn merge(&mut self, dst: u32, src: u32) {
        self.counts[dst as usize] += self.counts[src as usize];
    }

    fn write_result(&self, slot: u32, out: &mut Vec<u8>) {
        put_int(out, ResultKind::Int64, self.counts[slot as usize]);
    }

    fn write_state(&self, slot: u32, out: &mut Vec<u8>) {
        codec::put_i64(out, self.counts[slot as usize]);
    }

    fn read_state(&mut self, slot: u32, input: &mut &[u8]) -> Result<()> {
        self.counts[slot as usize] = codec::get_i64(input)?;
        Ok(())
    }
}
