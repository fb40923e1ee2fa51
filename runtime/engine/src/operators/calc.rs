//! Calc: a filter and a projection, evaluated with DataFusion physical expressions over whole
//! batches. On an updating stream the hidden row-kind column is carried through untouched.
//!
//! The expressions are prepared for the input schema when the first batch arrives
//! ([`fast::optimize`] swaps in exact faster versions of some Arrow kernels), and filtering
//! copies fixed-width columns branch-free ([`filter::filter_batch`]).

mod fast;
mod filter;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion_physical_expr::PhysicalExpr;

use crate::dataflow::message::row_kinds;
use crate::dataflow::operator::{Operator, Output};
use crate::error::{Error, Result};

pub struct Calc {
    name: String,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// `None`: keep the input columns as they are.
    projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
    /// With the row-kind column last when `updating`.
    schema: SchemaRef,
    updating: bool,
    /// The expressions prepared for the input schema they were last used with.
    prepared: Option<Prepared>,
}

struct Prepared {
    input: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
}

impl Calc {
    pub fn new(
        name: String,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
        schema: SchemaRef,
        updating: bool,
    ) -> Self {
        Calc {
            name,
            predicate,
            projection,
            schema,
            updating,
            prepared: None,
        }
    }

    /// Optimize the expressions for batches of `input`, once per input schema.
    fn prepare(&mut self, input: &SchemaRef) {
        let stale = self
            .prepared
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(&p.input, input) && p.input.as_ref() != input.as_ref());
        if stale {
            self.prepared = Some(Prepared {
                input: Arc::clone(input),
                predicate: self.predicate.as_ref().map(|e| fast::optimize(e, input)),
                projection: self
                    .projection
                    .as_ref()
                    .map(|exprs| exprs.iter().map(|e| fast::optimize(e, input)).collect()),
            });
        }
    }

    fn evaluate(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        // The expressions see the visible columns only.
        let (visible, kinds) = if self.updating && row_kinds(&batch).is_some() {
            let n = batch.num_columns() - 1;
            let keep: Vec<usize> = (0..n).collect();
            (batch.project(&keep)?, Some(batch.column(n).clone()))
        } else {
            (batch, None)
        };
        self.prepare(&visible.schema());
        let (name, schema) = (&self.name, Arc::clone(&self.schema));
        let exprs = self
            .prepared
            .as_ref()
            .ok_or_else(|| Error::execution(name, "expressions not prepared"))?;
        let (visible, kinds) = match &exprs.predicate {
            None => (visible, kinds),
            Some(predicate) => {
                let mask = predicate
                    .evaluate(&visible)?
                    .into_array(visible.num_rows())?;
                if mask.data_type() != &DataType::Boolean {
                    return Err(Error::execution(name, "filter condition is not BOOLEAN"));
                }
                let mask = mask.as_boolean();
                if mask.true_count() == visible.num_rows() && mask.null_count() == 0 {
                    (visible, kinds)
                } else {
                    let kinds = match kinds {
                        Some(k) => Some(arrow::compute::filter(&k, mask)?),
                        None => None,
                    };
                    (filter::filter_batch(&visible, mask)?, kinds)
                }
            }
        };
        let mut columns: Vec<ArrayRef> = match &exprs.projection {
            None => visible.columns().to_vec(),
            Some(exprs) => {
                let mut columns = Vec::with_capacity(exprs.len() + 1);
                for expr in exprs {
                    columns.push(expr.evaluate(&visible)?.into_array(visible.num_rows())?);
                }
                columns
            }
        };
        if let Some(k) = kinds {
            columns.push(k);
        }
        // Expressions may produce a different but compatible type (e.g. a non-null literal where
        // the schema says nullable); cast where the declared type differs.
        for (column, field) in columns.iter_mut().zip(schema.fields()) {
            if column.data_type() != field.data_type() {
                *column = arrow::compute::cast(column, field.data_type())?;
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(visible.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            schema, columns, &options,
        )?)
    }
}

impl Operator for Calc {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let result = self.evaluate(batch).map_err(|e| match e {
            Error::Execution { .. } => e,
            other => Error::execution(&self.name, other.to_string()),
        })?;
        out.batch(result);
        Ok(())
    }
}
