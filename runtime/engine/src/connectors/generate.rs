//! Pieces shared by the generating sources ([`super::datagen`] and [`super::nexmark`]): a
//! wall-clock throttle that hands out rows in batch-sized buckets, a string column buffer that
//! becomes an Arrow `StringArray` without copying (for generators that write bytes, like
//! datagen's hex strings), and cheap random-number helpers.
//!
//! Generators build columns straight into `Vec`s and turn them into Arrow arrays at the end of a
//! batch, so nothing here allocates per row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// How long one throttled batch should cover: the throttle waits until about this much of the
/// rate has accrued, so a slow source still emits a few sizeable batches per second instead of
/// a stream of one-row batches.
const BUCKET: Duration = Duration::from_millis(50);

/// The longest a single `acquire` sleeps; the source then returns `Pending` and is polled again.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// Limits a source to `per_second` units (rows, or events) on average, granted in buckets.
#[derive(Debug)]
pub struct Throttle {
    per_second: f64,
    /// Units worth one bucket of time (at least one).
    bucket: f64,
    start: Option<Instant>,
    granted: u64,
    /// The most units that may accrue unused (see [`Throttle::bursting_at_most`]).
    max_stored: Option<f64>,
}

impl Throttle {
    /// A throttle for `per_second` units per second, or `None` (unthrottled) when the rate is
    /// not positive.
    pub fn new(per_second: f64) -> Option<Throttle> {
        (per_second > 0.0 && per_second.is_finite()).then(|| Throttle {
            per_second,
            bucket: (per_second * BUCKET.as_secs_f64()).max(1.0),
            start: None,
            granted: 0,
            max_stored: None,
        })
    }

    /// Let at most `burst` worth of the rate accrue while the caller does not acquire (it was
    /// back-pressured or paused): afterwards it goes on at the rate instead of catching up on
    /// everything it missed at once. Flink's datagen rate limiter (Guava's) stores one second.
    pub fn bursting_at_most(mut self, burst: Duration) -> Self {
        self.max_stored = Some((self.per_second * burst.as_secs_f64()).max(self.bucket));
        self
    }

    /// How many units the caller may produce now, at most `max`. Sleeps briefly (up to
    /// [`MAX_SLEEP`]) when less than a bucket has accrued; 0 means "return `Pending`".
    pub fn acquire(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        // The first bucket is available at once; then the rate accrues.
        let accrued = |elapsed: Duration| self.per_second * elapsed.as_secs_f64() + self.bucket;
        let mut available = accrued(start.elapsed()) - self.granted as f64;
        if let Some(max) = self.max_stored
            && available > max
        {
            // Forfeit what accrued beyond the burst.
            self.granted += (available - max) as u64;
            available = max;
        }
        let wanted = self.bucket.min(max as f64);
        if available < wanted {
            let wait = Duration::from_secs_f64((wanted - available) / self.per_second);
            std::thread::sleep(wait.min(MAX_SLEEP));
            available = accrued(start.elapsed()) - self.granted as f64;
        }
        if available < 1.0 {
            return 0;
        }
        let n = (available as u64).min(max);
        self.granted += n;
        n
    }
}

/// A `Utf8` column under construction: offsets and bytes, turned into a `StringArray` without
/// copying. A row is either pushed whole ([`StrColumn::push`]) or assembled from parts
/// ([`StrColumn::push_part`] … [`StrColumn::end_row`]).
#[derive(Debug)]
pub struct StrColumn {
    offsets: Vec<i32>,
    values: Vec<u8>,
    overflow: bool,
}

impl StrColumn {
    pub fn with_capacity(rows: usize, bytes: usize) -> StrColumn {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrColumn {
            offsets,
            values: Vec::with_capacity(bytes),
            overflow: false,
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn push(&mut self, value: &str) {
        self.values.extend_from_slice(value.as_bytes());
        self.end_row();
    }

    /// Append part of the current row; [`StrColumn::end_row`] closes it.
    #[inline]
    pub fn push_part(&mut self, part: &str) {
        self.values.extend_from_slice(part.as_bytes());
    }

    /// The byte buffer of the current row, for generators that write ASCII directly. Callers
    /// must only append valid UTF-8 (the array constructor checks it).
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.values
    }

    #[inline]
    pub fn end_row(&mut self) {
        match i32::try_from(self.values.len()) {
            Ok(end) => self.offsets.push(end),
            Err(_) => {
                self.overflow = true;
                self.offsets.push(i32::MAX);
            }
        }
    }

    /// Close a null row (an empty value; the caller supplies the null mask).
    #[inline]
    pub fn push_null(&mut self) {
        self.end_row();
    }

    /// The finished array, leaving this buffer empty for the next batch.
    pub fn finish(&mut self, nulls: Option<arrow::buffer::NullBuffer>) -> Result<StringArray> {
        if self.overflow {
            self.clear();
            return Err(Error::execution(
                "string generator",
                "a batch's string column exceeds 2 GiB; use a smaller batch size or length",
            ));
        }
        // The buffers move into the array; the next batch starts with room for as much as
        // this one held, so it does not regrow (and copy) its way up.
        let mut next_offsets = Vec::with_capacity(self.offsets.len());
        next_offsets.push(0);
        let offsets = std::mem::replace(&mut self.offsets, next_offsets);
        let next_values = Vec::with_capacity(self.values.len());
        let values = std::mem::replace(&mut self.values, next_values);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        Ok(StringArray::try_new(
            offsets,
            Buffer::from_vec(values),
            nulls,
        )?)
    }

    fn clear(&mut self) {
        self.offsets.clear();
        self.offsets.push(0);
        self.values.clear();
        self.overflow = false;
    }
}

/// A batch with the given columns; works for a schema without columns too (a row count only).
pub fn make_batch(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}

/// A uniform value in `0..n` from a random `u64` (Lemire's multiply-shift; the bias is at most
/// `n / 2^64`, far below anything a test or benchmark can see). `n = 0` gives 0.
#[inline]
pub fn below(random: u64, n: u64) -> u64 {
    ((u128::from(random) * u128::from(n)) >> 64) as u64
}

/// A uniform `f64` in `[0, 1)` from a random `u64`.
#[inline]
pub fn unit_f64(random: u64) -> f64 {
    (random >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// SplitMix64: a tiny, fast generator whose whole state is one `u64`, used where a stream of
/// random numbers must be a pure function of a seed (a Nexmark event number).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    #[inline]
    pub fn new(seed: u64) -> SplitMix64 {
        // Mix the seed once so consecutive seeds start far apart.
        let mut rng = SplitMix64(seed ^ 0x6A09_E667_F3BC_C909);
        rng.next_u64();
        rng
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        below(self.next_u64(), n)
    }

    #[inline]
    pub fn unit_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        for n in [1u64, 2, 3, 10, 1000, u64::MAX] {
            for _ in 0..1000 {
                assert!(rng.below(n) < n);
            }
        }
        assert_eq!(below(u64::MAX, 0), 0);
    }

    #[test]
    fn throttle_grants_about_the_rate() {
        let mut throttle = Throttle::new(2_000.0).expect("positive rate");
        let start = Instant::now();
        let mut total = 0;
        while start.elapsed() < Duration::from_millis(300) {
            total += throttle.acquire(10_000);
        }
        // 300 ms at 2000/s = 600, plus the first bucket of 100; allow scheduling slack.
        assert!((500..=900).contains(&total), "granted {total}");
        assert!(Throttle::new(0.0).is_none());
        assert!(Throttle::new(-1.0).is_none());
    }

    #[test]
    fn a_throttle_with_a_burst_limit_does_not_catch_up_after_a_pause() {
        let mut capped = Throttle::new(1_000.0)
            .expect("positive rate")
            .bursting_at_most(Duration::from_millis(200));
        let mut free = Throttle::new(1_000.0).expect("positive rate");
        assert!(capped.acquire(1) > 0 && free.acquire(1) > 0);
        std::thread::sleep(Duration::from_millis(600));
        // 600 ms at 1000/s accrued; the capped one keeps 200 of it (plus a little time).
        let capped = capped.acquire(100_000);
        let free = free.acquire(100_000);
        assert!((150..=350).contains(&capped), "capped granted {capped}");
        assert!(free >= 550, "uncapped granted {free}");
    }

    #[test]
    fn string_column_builds_an_array_per_batch() {
        let mut column = StrColumn::with_capacity(4, 16);
        column.push("ab");
        column.push_part("c");
        column.push_part("d");
        column.end_row();
        column.push_null();
        let array = column.finish(None).expect("valid utf-8");
        assert_eq!(array.value(0), "ab");
        assert_eq!(array.value(1), "cd");
        assert_eq!(array.value(2), "");
        assert!(column.is_empty());
        column.push("x");
        assert_eq!(column.finish(None).expect("valid").value(0), "x");
    }
}
