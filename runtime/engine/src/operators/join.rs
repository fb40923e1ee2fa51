//! What the three streaming joins share: the [`JoinSpec`] the planner hands them, and the
//! machinery that turns input batches into keyed, serialised rows and candidate pairs back into
//! output batches.
//!
//! Every join works the same way on a batch: encode the equi-key columns of the batch into
//! comparable bytes with an [`arrow::row::RowConverter`] (both sides coerced to one common key
//! type, so an `INT` key finds its `BIGINT` partner), encode the visible columns of every row into
//! the row format too (that is what the in-memory state holds and what is written to the state
//! backend), walk the rows against the other side's in-memory state collecting candidate pairs,
//! and finally build the joined batch in one go: `take` for the probing side, one
//! `convert_rows` for the stored side, then the non-equi condition evaluated once over the whole
//! candidate batch ([`JoinCore::emit`]).
//!
//! Rows whose equi key holds a NULL never match (SQL `=`; Flink's `filterNullKeys`), so the
//! inner joins neither store nor probe them.
//!
//! State is written through to the [`StateBackend`] in batches ([`PendingWrites`]), at
//! watermarks and at the end of input, never once per row.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int8Array, Int64Array, RecordBatch, RecordBatchOptions,
    UInt32Array,
};
use arrow::compute::{cast, filter, filter_record_batch, take};
use arrow::datatypes::{DataType, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, RowParser, Rows, SortField};
use datafusion_expr::type_coercion::binary::comparison_coercion;
use datafusion_physical_expr::PhysicalExpr;
use weir_state::{StateBackend, StateId, WriteOp};

use crate::dataflow::key_group::{KeyGroup, hash_columns, key_group};
use crate::dataflow::message::{ROW_KIND_COLUMN, RowKind, Timestamp, row_kinds};
use crate::dataflow::operator::TaskInfo;
use crate::error::{Error, Result};

/// The two inputs of a join and their equi-join condition.
#[derive(Clone)]
pub struct JoinSpec {
    /// Equi-join key columns of the left input (visible columns).
    pub left_keys: Vec<usize>,
    /// Same count and compatible types on the right.
    pub right_keys: Vec<usize>,
    /// Number of visible columns of the left input.
    pub left_width: usize,
    pub right_width: usize,
    /// Extra (non-equi) condition over the joined row: left columns then right columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Left columns ++ right columns (+ the Int8 `ROW_KIND_COLUMN` last when the output is
    /// updating).
    pub output_schema: SchemaRef,
}

impl JoinSpec {
    /// Whether the output carries the hidden row-kind column (the output is a changelog).
    pub fn output_is_updating(&self) -> bool {
        self.output_schema
            .fields()
            .last()
            .is_some_and(|f| f.name() == ROW_KIND_COLUMN)
    }
}

/// Index of the left input (`process_batch`'s `input`), also used as the side tag in state keys.
pub(crate) const LEFT: usize = 0;
/// Index of the right input.
pub(crate) const RIGHT: usize = 1;

/// A `HashMap` whose iteration order is the same on every run (SipHash with fixed keys), so a
/// job's output order does not change from run to run.
pub(crate) type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// The encoded equi keys of one batch.
pub(crate) struct Keys {
    /// `None` when the join has no equi keys: every row has the same (empty) key.
    rows: Option<Rows>,
    /// Rows with a NULL in some key column; they never match.
    null: Vec<bool>,
    pub groups: Vec<KeyGroup>,
}

impl Keys {
    pub fn key(&self, row: usize) -> &[u8] {
        match &self.rows {
            Some(rows) => rows.row(row).data(),
            None => &[],
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        self.null[row]
    }
}

/// Rows of the stored side gathered while probing, copied into one buffer so they stay valid
/// while the state they came from changes (expired rows are removed during a probe).
#[derive(Default)]
pub(crate) struct RowArena {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RowArena {
    pub fn push(&mut self, row: &[u8]) {
        self.bytes.extend_from_slice(row);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

/// The joined output of one batch of candidate pairs.
pub(crate) struct Joined {
    pub batch: RecordBatch,
    /// Which candidates passed the non-equi condition; `None` when all did.
    pub mask: Option<BooleanArray>,
}

impl Joined {
    /// Whether candidate `i` made it into the output.
    pub fn kept(&self, i: usize) -> bool {
        self.mask
            .as_ref()
            .is_none_or(|m| m.is_valid(i) && m.value(i))
    }
}

/// Codecs and output building shared by the join operators.
pub(crate) struct JoinCore {
    pub name: String,
    pub spec: JoinSpec,
    max_parallelism: usize,
    /// The common type of each key pair.
    key_types: Vec<DataType>,
    key_converter: Option<RowConverter>,
    /// Row format of the visible columns of each side.
    row_converters: [RowConverter; 2],
    row_parsers: [RowParser; 2],
    /// Output schema without the row-kind column: what the condition is evaluated over.
    joined_schema: SchemaRef,
    updating: bool,
}

impl JoinCore {
    pub fn new(spec: JoinSpec, task: &TaskInfo) -> Result<Self> {
        let name = task.operator.clone();
        let fail = |message: String| Error::execution(&name, message);
        let updating = spec.output_is_updating();
        let width = spec.left_width + spec.right_width;
        let fields = spec.output_schema.fields();
        if fields.len() != width + usize::from(updating) {
            return Err(fail(format!(
                "output schema has {} columns, expected {} left + {} right{}",
                fields.len(),
                spec.left_width,
                spec.right_width,
                if updating { " + row kind" } else { "" }
            )));
        }
        if spec.left_keys.len() != spec.right_keys.len() {
            return Err(fail(format!(
                "{} left keys but {} right keys",
                spec.left_keys.len(),
                spec.right_keys.len()
            )));
        }
        let mut key_types = Vec::with_capacity(spec.left_keys.len());
        for (&l, &r) in spec.left_keys.iter().zip(&spec.right_keys) {
            if l >= spec.left_width || r >= spec.right_width {
                return Err(fail(format!(
                    "key column out of range: left {l}, right {r}"
                )));
            }
            let lt = fields[l].data_type();
            let rt = fields[spec.left_width + r].data_type();
            let common = comparison_coercion(lt, rt)
                .ok_or_else(|| fail(format!("cannot compare join keys of types {lt} and {rt}")))?;
            key_types.push(common);
        }
        let key_converter = if key_types.is_empty() {
            None
        } else {
            Some(row_converter(&key_types, &name)?)
        };
        let side_types = |range: std::ops::Range<usize>| -> Vec<DataType> {
            fields[range]
                .iter()
                .map(|f| f.data_type().clone())
                .collect()
        };
        let left_converter = row_converter(&side_types(0..spec.left_width), &name)?;
        let right_converter = row_converter(&side_types(spec.left_width..width), &name)?;
        let row_parsers = [left_converter.parser(), right_converter.parser()];
        let joined_schema = Arc::new(Schema::new(fields[..width].to_vec()));
        Ok(JoinCore {
            name,
            spec,
            max_parallelism: task.max_parallelism.max(1),
            key_types,
            key_converter,
            row_converters: [left_converter, right_converter],
            row_parsers,
            joined_schema,
            updating,
        })
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.spec.output_schema.clone()
    }

    pub fn output_is_updating(&self) -> bool {
        self.updating
    }

    /// An execution error of this operator.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::execution(&self.name, message)
    }

    /// Tag errors from arrow, DataFusion or the backend with this operator's name.
    pub fn tag(&self, error: Error) -> Error {
        match error {
            Error::Execution { .. } => error,
            other => Error::execution(&self.name, other.to_string()),
        }
    }

    fn width(&self, side: usize) -> usize {
        if side == LEFT {
            self.spec.left_width
        } else {
            self.spec.right_width
        }
    }

    /// Check `input` and split a batch into its visible columns and its row kinds (`None` for an
    /// insert-only batch).
    pub fn split_input(
        &self,
        input: usize,
        batch: &RecordBatch,
    ) -> Result<(RecordBatch, Option<Int8Array>)> {
        if input > RIGHT {
            return Err(self.error(format!("a join has inputs 0 and 1, got {input}")));
        }
        let width = self.width(input);
        let kinds = row_kinds(batch).cloned();
        let expected = width + usize::from(kinds.is_some());
        if batch.num_columns() != expected {
            return Err(self.error(format!(
                "input {input} batch has {} columns, expected {expected}",
                batch.num_columns()
            )));
        }
        let visible = if kinds.is_some() {
            let keep: Vec<usize> = (0..width).collect();
            batch.project(&keep)?
        } else {
            batch.clone()
        };
        Ok((visible, kinds))
    }

    /// Encode the equi keys of `visible` (a batch of input `side`), with their key groups.
    pub fn encode_keys(&self, side: usize, visible: &RecordBatch) -> Result<Keys> {
        let indices = if side == LEFT {
            &self.spec.left_keys
        } else {
            &self.spec.right_keys
        };
        let n = visible.num_rows();
        let columns: Vec<ArrayRef> = indices.iter().map(|&i| visible.column(i).clone()).collect();
        let hashes = hash_columns(&columns, n)?;
        let groups = hashes
            .iter()
            .map(|h| key_group(*h, self.max_parallelism))
            .collect();
        let mut null = vec![false; n];
        for column in &columns {
            if let Some(nulls) = column.logical_nulls() {
                for (i, is_null) in null.iter_mut().enumerate() {
                    *is_null |= nulls.is_null(i);
                }
            }
        }
        let rows = match &self.key_converter {
            None => None,
            Some(converter) => {
                let mut cast_columns = Vec::with_capacity(columns.len());
                for (column, ty) in columns.iter().zip(&self.key_types) {
                    cast_columns.push(if column.data_type() == ty {
                        column.clone()
                    } else {
                        cast(column, ty)?
                    });
                }
                Some(converter.convert_columns(&cast_columns)?)
            }
        };
        Ok(Keys { rows, null, groups })
    }

    /// Encode the visible columns of a batch of input `side` into the row format.
    pub fn encode_rows(&self, side: usize, visible: &RecordBatch) -> Result<Rows> {
        Ok(self.row_converters[side].convert_columns(visible.columns())?)
    }

    /// Decode rows of input `side` (as produced by [`Self::encode_rows`]) back into columns.
    pub fn decode_rows<'a>(
        &self,
        side: usize,
        rows: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Vec<ArrayRef>> {
        let parser = &self.row_parsers[side];
        Ok(self.row_converters[side].convert_rows(rows.map(|r| parser.parse(r)))?)
    }

    /// Take rows `indices` of every column.
    pub fn take_columns(columns: &[ArrayRef], indices: &[u32]) -> Result<Vec<ArrayRef>> {
        let indices = UInt32Array::from(indices.to_vec());
        let mut out = Vec::with_capacity(columns.len());
        for column in columns {
            out.push(take(column, &indices, None)?);
        }
        Ok(out)
    }

    /// Build the joined batch of `rows` candidate pairs (left columns, right columns, and the
    /// row kind of each candidate when the output is updating; `None` means all inserts), apply
    /// the non-equi condition, and shape it to the output schema.
    pub fn emit(
        &self,
        left: Vec<ArrayRef>,
        right: Vec<ArrayRef>,
        kinds: Option<ArrayRef>,
        rows: usize,
    ) -> Result<Joined> {
        let mut columns = left;
        columns.extend(right);
        for (column, field) in columns.iter_mut().zip(self.joined_schema.fields()) {
            if column.data_type() != field.data_type() {
                *column = cast(column, field.data_type())?;
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let joined =
            RecordBatch::try_new_with_options(self.joined_schema.clone(), columns, &options)?;
        let mask = match &self.spec.filter {
            None => None,
            Some(condition) => {
                let mask = condition.evaluate(&joined)?.into_array(rows)?;
                if mask.data_type() != &DataType::Boolean {
                    return Err(self.error("join condition is not BOOLEAN"));
                }
                let mask = mask.as_boolean().clone();
                if mask.true_count() == rows && mask.null_count() == 0 {
                    None
                } else {
                    Some(mask)
                }
            }
        };
        let (joined, kinds) = match &mask {
            None => (joined, kinds),
            Some(mask) => (
                filter_record_batch(&joined, mask)?,
                kinds.map(|k| filter(&k, mask)).transpose()?,
            ),
        };
        let n = joined.num_rows();
        let mut columns = joined.columns().to_vec();
        if self.updating {
            columns.push(match kinds {
                Some(kinds) => kinds,
                None => Arc::new(Int8Array::from(vec![RowKind::Insert as i8; n])),
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        let batch =
            RecordBatch::try_new_with_options(self.spec.output_schema.clone(), columns, &options)?;
        Ok(Joined { batch, mask })
    }

    /// Put the probing side's columns and the stored side's columns in left-right order.
    pub fn order_sides(
        probe_side: usize,
        probe: Vec<ArrayRef>,
        stored: Vec<ArrayRef>,
    ) -> (Vec<ArrayRef>, Vec<ArrayRef>) {
        if probe_side == LEFT {
            (probe, stored)
        } else {
            (stored, probe)
        }
    }
}

fn row_converter(types: &[DataType], operator: &str) -> Result<RowConverter> {
    let fields: Vec<SortField> = types.iter().cloned().map(SortField::new).collect();
    if !RowConverter::supports_fields(&fields) {
        return Err(Error::execution(
            operator,
            format!("cannot keep rows of types {types:?} in join state"),
        ));
    }
    Ok(RowConverter::new(fields)?)
}

/// The event time of every row of `column` in milliseconds (`None` for NULL), from a
/// `TIMESTAMP` column of any unit (the stored epoch value, whatever the time zone), a `DATE` or
/// a `BIGINT` of milliseconds.
pub(crate) fn time_millis(column: &ArrayRef) -> Result<Int64Array> {
    let (raw, scale): (ArrayRef, fn(i64) -> i64) = match column.data_type() {
        DataType::Timestamp(unit, _) => {
            let scale: fn(i64) -> i64 = match unit {
                TimeUnit::Second => |v| v.saturating_mul(1000),
                TimeUnit::Millisecond => |v| v,
                TimeUnit::Microsecond => |v| v.div_euclid(1000),
                TimeUnit::Nanosecond => |v| v.div_euclid(1_000_000),
            };
            (cast(column, &DataType::Int64)?, scale)
        }
        DataType::Date32 => (cast(column, &DataType::Int64)?, |v| {
            v.saturating_mul(86_400_000)
        }),
        DataType::Int64 => (column.clone(), |v| v),
        other => {
            return Err(Error::execution(
                "join",
                format!("a time attribute must be a TIMESTAMP, got {other}"),
            ));
        }
    };
    Ok(raw.as_primitive::<Int64Type>().unary(scale))
}

/// A time as 8 bytes that sort like the number (sign bit flipped, big-endian).
pub(crate) fn sortable_time(t: Timestamp) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Builds a user key for the state backend from fixed and length-prefixed parts.
pub(crate) struct StateKey(Vec<u8>);

impl StateKey {
    /// Every key starts with the side (`LEFT` or `RIGHT`) it belongs to.
    pub fn new(side: usize, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity + 16);
        bytes.push(side as u8);
        StateKey(bytes)
    }

    pub fn time(mut self, t: Timestamp) -> Self {
        self.0.extend_from_slice(&sortable_time(t));
        self
    }

    /// A variable-length part, prefixed by its length so the parts after it stay parseable.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.0
            .extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// The last part: no length prefix.
    pub fn tail(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn seq(mut self, seq: u64) -> Self {
        self.0.extend_from_slice(&seq.to_be_bytes());
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// State writes collected between flushes; a later write to the same key replaces an earlier
/// one, so a row added and removed between two flushes costs nothing in the backend.
pub(crate) struct PendingWrites {
    state: StateId,
    writes: FixedMap<Vec<u8>, (KeyGroup, Option<Vec<u8>>)>,
}

impl PendingWrites {
    pub fn new(state: StateId) -> Self {
        PendingWrites {
            state,
            writes: FixedMap::default(),
        }
    }

    pub fn put(&mut self, key_group: KeyGroup, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, (key_group, Some(value)));
    }

    pub fn delete(&mut self, key_group: KeyGroup, key: Vec<u8>) {
        self.writes.insert(key, (key_group, None));
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Write everything collected so far in one batch.
    pub fn flush(&mut self, backend: &mut dyn StateBackend) -> Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let state = self.state;
        let ops = self
            .writes
            .drain()
            .map(|(key, (key_group, value))| match value {
                Some(value) => WriteOp::Put {
                    state,
                    key_group,
                    key,
                    value,
                },
                None => WriteOp::Delete {
                    state,
                    key_group,
                    key,
                },
            })
            .collect();
        backend.write_batch(ops)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    //! Fixtures shared by the join operators' tests.

    use super::*;
    use arrow::array::{StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::util::display::array_value_to_string;
    use datafusion_expr::Operator as BinaryOp;
    use datafusion_physical_expr::expressions::{BinaryExpr, Column};

    use crate::dataflow::operator::{Emitted, Output};

    pub fn task() -> TaskInfo {
        TaskInfo {
            operator: "join-under-test".into(),
            uid: "test-op".into(),
            subtask: 0,
            parallelism: 1,
            max_parallelism: 128,
        }
    }

    /// `(k BIGINT, v VARCHAR, t TIMESTAMP(3))`, the shape of both test inputs.
    pub fn side_fields(prefix: &str) -> Vec<Field> {
        vec![
            Field::new(format!("{prefix}k"), DataType::Int64, true),
            Field::new(format!("{prefix}v"), DataType::Utf8, true),
            Field::new(
                format!("{prefix}t"),
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]
    }

    /// The join of two `side_schema` inputs on `k`, with an optional row-kind column.
    pub fn spec(filter: Option<Arc<dyn PhysicalExpr>>, updating: bool) -> JoinSpec {
        let mut fields = side_fields("l");
        fields.extend(side_fields("r"));
        if updating {
            fields.push(Field::new(ROW_KIND_COLUMN, DataType::Int8, false));
        }
        JoinSpec {
            left_keys: vec![0],
            right_keys: vec![0],
            left_width: 3,
            right_width: 3,
            filter,
            output_schema: Arc::new(Schema::new(fields)),
        }
    }

    /// `l.v <> r.v` over the joined row.
    pub fn values_differ() -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(
            Arc::new(Column::new("lv", 1)),
            BinaryOp::NotEq,
            Arc::new(Column::new("rv", 4)),
        ))
    }

    /// A batch of `(k, v, t)` rows, with row kinds when `kinds` is given.
    pub fn batch(rows: &[(Option<i64>, &str, i64)], kinds: Option<&[RowKind]>) -> RecordBatch {
        let mut fields = side_fields("");
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ];
        if let Some(kinds) = kinds {
            fields.push(Field::new(ROW_KIND_COLUMN, DataType::Int8, false));
            columns.push(Arc::new(Int8Array::from(
                kinds.iter().map(|k| *k as i8).collect::<Vec<_>>(),
            )));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    /// Every emitted row as text (`+I|k|v|t|k|v|t`), and every emitted watermark.
    pub fn drain(out: &mut Output) -> (Vec<String>, Vec<Timestamp>) {
        let mut rows = Vec::new();
        let mut watermarks = Vec::new();
        for item in out.items.drain(..) {
            match item {
                Emitted::Watermark(w) => watermarks.push(w),
                Emitted::Batch(b) => rows.extend(render(&b)),
            }
        }
        (rows, watermarks)
    }

    pub fn render(batch: &RecordBatch) -> Vec<String> {
        let kinds = row_kinds(batch);
        let visible = batch.num_columns() - usize::from(kinds.is_some());
        (0..batch.num_rows())
            .map(|i| {
                let kind = kinds
                    .and_then(|k| RowKind::from_i8(k.value(i)))
                    .unwrap_or(RowKind::Insert);
                let mut parts = vec![kind.short_string().to_string()];
                for c in 0..visible {
                    parts.push(array_value_to_string(batch.column(c), i).unwrap());
                }
                parts.join("|")
            })
            .collect()
    }

    /// The text of one joined row, as `render` prints it.
    pub fn joined_row(
        kind: RowKind,
        l: (Option<i64>, &str, i64),
        r: (Option<i64>, &str, i64),
    ) -> String {
        let b = |row: (Option<i64>, &str, i64)| batch(&[row], None);
        let mut parts = vec![kind.short_string().to_string()];
        for side in [b(l), b(r)] {
            for c in 0..3 {
                parts.push(array_value_to_string(side.column(c), 0).unwrap());
            }
        }
        parts.join("|")
    }

    pub fn sorted(mut rows: Vec<String>) -> Vec<String> {
        rows.sort();
        rows
    }

    #[test]
    fn keys_of_different_integer_widths_encode_alike() {
        let mut fields = vec![Field::new("a", DataType::Int32, true)];
        fields.push(Field::new("b", DataType::Int64, true));
        let spec = JoinSpec {
            left_keys: vec![0],
            right_keys: vec![0],
            left_width: 1,
            right_width: 1,
            filter: None,
            output_schema: Arc::new(Schema::new(fields)),
        };
        let core = JoinCore::new(spec, &task()).unwrap();
        let left = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)])),
            vec![Arc::new(arrow::array::Int32Array::from(vec![
                Some(7),
                None,
            ]))],
        )
        .unwrap();
        let right = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("b", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![7]))],
        )
        .unwrap();
        let lk = core.encode_keys(LEFT, &left).unwrap();
        let rk = core.encode_keys(RIGHT, &right).unwrap();
        assert_eq!(lk.key(0), rk.key(0));
        assert_eq!(lk.groups[0], rk.groups[0]);
        assert!(lk.is_null(1) && !lk.is_null(0));
    }

    #[test]
    fn join_time_attributes_of_any_unit_read_as_milliseconds() {
        let micros: ArrayRef = Arc::new(arrow::array::TimestampMicrosecondArray::from(vec![
            Some(1_500_999),
            None,
            Some(-1),
        ]));
        let ms = time_millis(&micros).unwrap();
        assert_eq!(ms.value(0), 1_500);
        assert!(ms.is_null(1));
        assert_eq!(ms.value(2), -1);
        let seconds: ArrayRef =
            Arc::new(arrow::array::TimestampSecondArray::from(vec![3]).with_timezone("UTC"));
        assert_eq!(time_millis(&seconds).unwrap().value(0), 3_000);
    }

    #[test]
    fn sortable_join_times_order_like_numbers() {
        let times = [i64::MIN, -5, -1, 0, 1, 42, i64::MAX];
        for pair in times.windows(2) {
            assert!(sortable_time(pair[0]) < sortable_time(pair[1]));
        }
    }

    #[test]
    fn join_row_arena_returns_rows_in_push_order() {
        let mut arena = RowArena::default();
        arena.push(b"ab");
        arena.push(b"");
        arena.push(b"cde");
        let rows: Vec<&[u8]> = arena.iter().collect();
        assert_eq!(rows, vec![&b"ab"[..], &b""[..], &b"cde"[..]]);
        assert_eq!(arena.len(), 3);
    }
}
