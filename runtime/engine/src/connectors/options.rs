//! Typed access to a table's `WITH (...)` options, with errors that name the table and option
//! and list the valid keys.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::catalog::TableDef;
use crate::dataflow::alignment;
use crate::error::{Error, Result};

pub struct ConnectorOptions<'a> {
    table: &'a str,
    options: &'a BTreeMap<String, String>,
}

impl<'a> ConnectorOptions<'a> {
    pub fn new(table: &'a TableDef) -> Self {
        ConnectorOptions {
            table: &table.name,
            options: &table.options,
        }
    }

    fn error(&self, message: String) -> Error {
        Error::table_options(self.table, message)
    }

    /// Fail on any key that is not `connector`, not a watermark alignment option (those
    /// apply to any source and are checked by [`alignment::AlignmentSpec`]), and does not
    /// match one of `valid` (where `#` in a pattern matches one field name, as in
    /// `fields.#.kind`).
    pub fn check_known(&self, valid: &[&str]) -> Result<()> {
        for key in self.options.keys() {
            if key == "connector"
                || alignment::OPTION_KEYS.contains(&key.as_str())
                || valid.iter().any(|pattern| key_matches(pattern, key))
            {
                continue;
            }
            let mut listed: Vec<&str> = valid.to_vec();
            listed.sort_unstable();
            return Err(self.error(format!(
                "unsupported option '{key}'; valid options: {}",
                listed.join(", ")
            )));
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.options.get(key).map(String::as_str)
    }

    pub fn required(&self, key: &str) -> Result<&'a str> {
        self.get(key)
            .ok_or_else(|| self.error(format!("missing required option '{key}'")))
    }

    /// Parse an option with `FromStr`, naming the option and expected kind on failure.
    pub fn parse<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => {
                raw.trim().parse::<T>().map(Some).map_err(|_| {
                    self.error(format!("option '{key}' = '{raw}' is not a valid {what}"))
                })
            }
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(raw) => Err(self.error(format!(
                "option '{key}' = '{raw}' must be 'true' or 'false'"
            ))),
        }
    }

    pub fn duration(&self, key: &str) -> Result<Option<Duration>> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => parse_duration(raw).map(Some).ok_or_else(|| {
                self.error(format!(
                    "option '{key}' = '{raw}' is not a duration like '5s' or '200 ms'"
                ))
            }),
        }
    }
}

fn key_matches(pattern: &str, key: &str) -> bool {
    match pattern.split_once('#') {
        None => pattern == key,
        Some((prefix, suffix)) => {
            key.len() > prefix.len() + suffix.len()
                && key.starts_with(prefix)
                && key.ends_with(suffix)
                && !key[prefix.len()..key.len() - suffix.len()].is_empty()
        }
    }
}

/// Flink's duration syntax: a number and an optional unit (`ms`, `s`, `min`, `h`, `d`, long
/// forms too); no unit means milliseconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: u64 = number.parse().ok()?;
    let millis = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => value,
        "s" | "sec" | "secs" | "second" | "seconds" => value.checked_mul(1_000)?,
        "m" | "min" | "mins" | "minute" | "minutes" => value.checked_mul(60_000)?,
        "h" | "hour" | "hours" => value.checked_mul(3_600_000)?,
        "d" | "day" | "days" => value.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_flink() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("200 ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2 min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn per_field_patterns_match_one_field_name() {
        assert!(key_matches("fields.#.kind", "fields.price.kind"));
        assert!(!key_matches("fields.#.kind", "fields..kind"));
        assert!(!key_matches("fields.#.kind", "fields.price.min"));
    }
}
