//! What DataFusion's SQL planner sees of a script: its tables, views and window TVFs as table
//! sources, and the functions, with Flink's versions of those whose meaning differs.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{DataFusionError, TableReference, plan_err};
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::{
    AggregateUDF, AggregateUDFImpl, HigherOrderUDF, ScalarUDF, Signature, TableSource, Volatility,
    WindowUDF,
};

use crate::operators::aggregate::{AggFunction, flink_result_type};

/// A table as the SQL planner sees it: only its schema.
#[derive(Debug)]
pub struct SchemaSource {
    schema: SchemaRef,
}

impl SchemaSource {
    pub fn shared(schema: SchemaRef) -> Arc<dyn TableSource> {
        Arc::new(SchemaSource { schema })
    }
}

impl TableSource for SchemaSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

pub struct PlanningContext {
    tables: HashMap<String, Arc<dyn TableSource>>,
    functions: HashMap<String, Arc<ScalarUDF>>,
    aggregates: HashMap<String, Arc<AggregateUDF>>,
    expr_planners: Vec<Arc<dyn ExprPlanner>>,
    options: ConfigOptions,
}

impl PlanningContext {
    pub fn new() -> Self {
        let mut functions = HashMap::new();
        for f in datafusion_functions::all_default_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                functions.insert(name.to_ascii_lowercase(), f.clone());
            }
        }
        // Flink's versions win where a name exists in both.
        for f in crate::sql::functions::flink_functions() {
            functions.insert(f.name().to_ascii_lowercase(), f.clone());
            for alias in f.aliases() {
                functions.insert(alias.to_ascii_lowercase(), f.clone());
            }
        }
        let mut aggregates = HashMap::new();
        for f in datafusion_functions_aggregate::all_default_aggregate_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                aggregates.insert(name.to_ascii_lowercase(), f.clone());
            }
        }
        // SUM and AVG have Flink's result types (SUM(INT) is INT, AVG(INT) is INT).
        for function in [AggFunction::Sum, AggFunction::Avg] {
            let udaf = Arc::new(AggregateUDF::from(FlinkAggregate::new(function)));
            aggregates.insert(udaf.name().to_string(), udaf);
        }
        let expr_planners: Vec<Arc<dyn ExprPlanner>> = vec![
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
            Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
            Arc::new(datafusion_functions_aggregate::planner::AggregateFunctionPlanner),
        ];
        let mut options = ConfigOptions::default();
        // Flink identifiers are case-sensitive and literals like 0.908 are DECIMAL.
        options.sql_parser.enable_ident_normalization = false;
        options.sql_parser.parse_float_as_decimal = true;
        PlanningContext {
            tables: HashMap::new(),
            functions,
            aggregates,
            expr_planners,
            options,
        }
    }

    pub fn register(&mut self, name: &str, schema: SchemaRef) {
        self.tables
            .insert(name.to_string(), SchemaSource::shared(schema));
    }

    pub fn is_registered(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}

impl Default for PlanningContext {
    fn default() -> Self {
        Self::new()
    }
}

impl ContextProvider for PlanningContext {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        let table = name.table();
        if let Some(source) = self.tables.get(table) {
            return Ok(source.clone());
        }
        // Flink is case-sensitive, but say so when only the case differs.
        if let Some(other) = self
            .tables
            .keys()
            .find(|k| k.eq_ignore_ascii_case(table) && !k.starts_with("__weir"))
        {
            return plan_err!(
                "table '{table}' not found; did you mean '{other}'? (names are case-sensitive)"
            );
        }
        plan_err!("table '{table}' not found")
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.expr_planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregates.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.aggregates.keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// SUM and AVG as Flink types them. Only their result types matter to the planner: the
/// streaming aggregate operators compute them, never DataFusion's accumulators.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FlinkAggregate {
    /// `AggFunction::Sum` or `AggFunction::Avg`.
    avg: bool,
    signature: Signature,
}

impl FlinkAggregate {
    fn new(function: AggFunction) -> Self {
        FlinkAggregate {
            avg: function == AggFunction::Avg,
            signature: Signature::numeric(1, Volatility::Immutable),
        }
    }

    fn function(&self) -> AggFunction {
        if self.avg {
            AggFunction::Avg
        } else {
            AggFunction::Sum
        }
    }
}

impl AggregateUDFImpl for FlinkAggregate {
    fn name(&self) -> &str {
        if self.avg { "avg" } else { "sum" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion_common::Result<DataType> {
        flink_result_type(self.function(), arg_types.first())
            .map_err(|e| DataFusionError::Plan(e.to_string()))
    }

    fn accumulator(
        &self,
        _args: datafusion_expr::function::AccumulatorArgs,
    ) -> datafusion_common::Result<Box<dyn datafusion_expr::Accumulator>> {
        // Not reachable: Weir plans aggregates onto its own streaming operators.
        Err(DataFusionError::Internal(format!(
            "{} is computed by Weir's aggregate operators",
            self.name()
        )))
    }
}
