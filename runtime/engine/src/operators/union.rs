//! UNION ALL: batches from every input pass through unchanged; the executor already combines
//! the inputs' watermarks (minimum over channels).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::dataflow::operator::{Operator, Output};
use crate::error::Result;

pub struct Union {
    schema: SchemaRef,
}

impl Union {
    pub fn new(schema: SchemaRef) -> Self {
        Union { schema }
    }
}

impl Operator for Union {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        // Inputs may differ in field names or nullability only; relabel to the union's schema.
        out.batch(RecordBatch::try_new(
            self.schema.clone(),
            batch.columns().to_vec(),
        )?);
        Ok(())
    }
}
