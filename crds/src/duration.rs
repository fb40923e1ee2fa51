//! Durations as users write them in a `FlinkJob` (`"30s"`, `"5m"`, `"1h30m"`, `"7d"`).
//!
//! The spec keeps them as strings ([`DurationString`]) so that deserializing a stored object can
//! never fail on a duration (a typed watch that chokes on one object stops the whole controller);
//! the CRD schema restricts them with [`DURATION_PATTERN`], and [`parse_duration`] turns them into
//! a [`std::time::Duration`] with exactly the same grammar. A test checks the two agree.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The schema pattern of every duration field: one or more `<digits><unit>` parts, with the units
/// `ms`, `s`, `m`, `h` and `d` (no fractions, no sign, no spaces).
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

/// A duration as written in the manifest, e.g. `"30s"`, `"5m"`, `"1h30m"`, `"7d"`.
///
/// Serialized as the plain string; parse it with [`DurationString::duration`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DurationString(pub String);

impl DurationString {
    /// Wraps a duration string without checking it (the schema checks stored objects).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The string as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the string; see [`parse_duration`].
    pub fn duration(&self) -> Result<Duration, Error> {
        parse_duration(&self.0)
    }
}

impl From<&str> for DurationString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Display for DurationString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for DurationString {
    fn schema_name() -> Cow<'static, str> {
        "DurationString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

/// Parses a duration of the manifest grammar ([`DURATION_PATTERN`]): one or more
/// `<digits><unit>` parts with units `ms`, `s`, `m`, `h`, `d`, summed (`"1h30m"` is 90 minutes).
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let invalid = |reason: &'static str| Error::InvalidDuration {
        value: text.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid("each part must start with a number"));
        }
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| invalid("the number is too large"))?;
        let (unit_millis, unit_len) = if tail.starts_with("ms") {
            (1, 2)
        } else if tail.starts_with('s') {
            (1_000, 1)
        } else if tail.starts_with('m') {
            (60_000, 1)
        } else if tail.starts_with('h') {
            (3_600_000, 1)
        } else if tail.starts_with('d') {
            (86_400_000, 1)
        } else {
            return Err(invalid("each number needs a unit: ms, s, m, h or d"));
        };
        let millis = number
            .checked_mul(unit_millis)
            .ok_or_else(|| invalid("the duration is too large"))?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| invalid("the duration is too large"))?;
        rest = &tail[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_durations() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7_200)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("1h30m", Duration::from_secs(5_400)),
            ("1m500ms", Duration::from_millis(60_500)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn rejects_what_the_schema_pattern_rejects() {
        for text in [
            "", "10", "s", "1.5s", "-1s", "10 s", "10sec", "1w", "PT5M", "5m ", "m5",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

    #[test]
    fn schema_carries_the_pattern() {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<DurationString>();
        assert_eq!(
            schema.get("pattern").and_then(|p| p.as_str()),
            Some(DURATION_PATTERN)
        );
    }
}
