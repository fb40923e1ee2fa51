//! Calc: a filter and a projection, evaluated with DataFusion physical expressions over whole
//! batches. On an updating stream the hidden row-kind column is carried through untouched.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::compute::filter_record_batch;
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
        }
    }

    fn evaluate(&self, batch: RecordBatch) -> Result<RecordBatch> {
        // The expressions see the visible columns only.
        let (visible, kinds) = if self.updating && row_kinds(&batch).is_some() {
            let n = batch.num_columns() - 1;
            let keep: Vec<usize> = (0..n).collect();
            (batch.project(&keep)?, Some(batch.column(n).clone()))
        } else {
            (batch, None)
        };
        let (visible, kinds) = match &self.predicate {
            None => (visible, kinds),
            Some(predicate) => {
                let mask = predicate
                    .evaluate(&visible)?
                    .into_array(visible.num_rows())?;
                if mask.data_type() != &DataType::Boolean {
                    return Err(Error::execution(
                        &self.name,
                        "filter condition is not BOOLEAN",
                    ));
                }
                let mask = mask.as_boolean();
                if mask.true_count() == visible.num_rows() && mask.null_count() == 0 {
                    (visible, kinds)
                } else {
                    let kinds = match kinds {
                        Some(k) => Some(arrow::compute::filter(&k, mask)?),
                        None => None,
                    };
                    (filter_record_batch(&visible, mask)?, kinds)
                }
            }
        };
        let mut columns: Vec<ArrayRef> = match &self.projection {
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
        for (column, field) in columns.iter_mut().zip(self.schema.fields()) {
            if column.data_type() != field.data_type() {
                *column = arrow::compute::cast(column, field.data_type())?;
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(visible.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
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
