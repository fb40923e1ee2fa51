//! `MOD`, which DataFusion only has as the `%` operator.

use arrow::compute::kernels::numeric::rem;
use arrow::compute::{cast, cast_with_options};
use arrow::datatypes::DataType;
use datafusion_common::{Result, plan_err};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::{argument_count, invoke_arrays};
use crate::types;

/// `MOD(a, b)`: the remainder of `a / b`, with the sign of `a`. Integers give the type of `b`
/// (as in Flink), decimals an exact decimal, anything with a float a DOUBLE. `MOD(a, 0)` on
/// integers and decimals is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Mod {
    signature: Signature,
}

impl Mod {
    pub(super) fn new() -> Self {
        Mod {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The decimal an integer type fits in without loss.
fn as_decimal(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
        DataType::Int8 | DataType::UInt8 => DataType::Decimal128(3, 0),
        DataType::Int16 | DataType::UInt16 => DataType::Decimal128(5, 0),
        DataType::Int32 | DataType::UInt32 => DataType::Decimal128(10, 0),
        _ => DataType::Decimal128(20, 0),
    }
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        argument_count("MOD", arg_types.len(), 2..=2)?;
        let (a, b) = (&arg_types[0], &arg_types[1]);
        let integer = |t: &DataType| t.is_integer() || t == &DataType::Null;
        let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..));
        let numeric = |t: &DataType| integer(t) || decimal(t) || t.is_floating();
        if !numeric(a) || !numeric(b) {
            return plan_err!(
                "MOD expects numeric arguments, got {} and {}",
                types::flink_type_name(a),
                types::flink_type_name(b)
            );
        }
        Ok(if integer(a) && integer(b) {
            let b = if b == &DataType::Null {
                DataType::Int32
            } else {
                b.clone()
            };
            vec![DataType::Int64, b]
        } else if a.is_floating() || b.is_floating() {
            vec![DataType::Float64, DataType::Float64]
        } else {
            vec![as_decimal(a), as_decimal(b)]
        })
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)] => {
                // Arrow's decimal remainder: scale max(s1, s2), integer digits min of both.
                let scale = *s1.max(s2);
                let digits = (*p1 as i8 - s1).min(*p2 as i8 - s2).max(1);
                let precision = u8::try_from(i16::from(scale) + i16::from(digits))
                    .unwrap_or(38)
                    .clamp(1, 38);
                DataType::Decimal128(precision, scale)
            }
            [_, b] => b.clone(),
            _ => DataType::Null,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_type().clone();
        invoke_arrays(&args.args, |arrays| {
            let (a, b) = (&arrays[0], &arrays[1]);
            let remainder = if a.data_type().is_integer() {
                // |a % b| < |b|, so the result fits back in b's type.
                let b = cast(b, &DataType::Int64)?;
                rem(a, &b)?
            } else {
                rem(a, b)?
            };
            Ok(cast_with_options(
                &remainder,
                &return_type,
                &Default::default(),
            )?)
        })
    }
}
