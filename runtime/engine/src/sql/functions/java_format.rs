//! Java date-time patterns (`yyyy-MM-dd HH:mm:ss.SSS`), as Flink's DATE_FORMAT, TO_TIMESTAMP,
//! UNIX_TIMESTAMP and FROM_UNIXTIME take them, translated to chrono format items.
//!
//! Supported letters: `y` (year; `yy` two-digit), `M`/`L` (month; `MMM` short and `MMMM` long
//! name), `d`, `D` (day of year), `H`, `h`, `m`, `s`, `S` (fraction: `SSS`, `SSSSSS`,
//! `SSSSSSSSS`), `E` (weekday name), `a` (AM/PM), `Z`/`X`/`x` (offset)
//! and `z` (zone name, formatting only). Text in single quotes is literal, `''` is a quote.
//! Other letters are refused rather than misread.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// A translated pattern.
#[derive(Debug, Clone)]
pub(crate) struct JavaFormat {
    items: Vec<Item<'static>>,
}

impl JavaFormat {
    /// Translates a Java pattern; the error names the offending letter.
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        let mut items = Vec::new();
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // 'literal text', with '' for a quote (inside or outside the literal).
                if chars.get(i + 1) == Some(&'\'') {
                    items.push(Item::OwnedLiteral("'".into()));
                    i += 2;
                    continue;
                }
                let mut literal = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("unterminated quote in date format '{pattern}'"));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            literal.push(other);
                            i += 1;
                        }
                    }
                }
                items.push(Item::OwnedLiteral(literal.into()));
                continue;
            }
            if !c.is_ascii_alphabetic() {
                let mut literal = String::new();
                while let Some(&l) = chars.get(i) {
                    if l.is_ascii_alphabetic() || l == '\'' {
                        break;
                    }
                    literal.push(l);
                    i += 1;
                }
                items.push(if literal.chars().all(char::is_whitespace) {
                    Item::OwnedSpace(literal.into())
                } else {
                    Item::OwnedLiteral(literal.into())
                });
                continue;
            }
            let mut count = 1;
            while chars.get(i + count) == Some(&c) {
                count += 1;
            }
            items.push(letter(c, count, pattern)?);
            i += count;
        }
        Ok(JavaFormat { items })
    }

    pub(crate) fn items(&self) -> impl Iterator<Item = &Item<'static>> + Clone {
        self.items.iter()
    }

    /// Parses `text` as a date-time; a missing time of day is midnight and an offset in the
    /// text converts to UTC. `allow_trailing` ignores text after the pattern, as Java's
    /// `SimpleDateFormat.parse` does.
    pub(crate) fn parse(&self, text: &str, allow_trailing: bool) -> Option<NaiveDateTime> {
        let mut parsed = Parsed::new();
        if allow_trailing {
            chrono::format::parse_and_remainder(&mut parsed, text, self.items()).ok()?;
        } else {
            chrono::format::parse(&mut parsed, text, self.items()).ok()?;
        }
        from_parsed(&mut parsed)
    }
}

fn from_parsed(parsed: &mut Parsed) -> Option<NaiveDateTime> {
    let date = parsed.to_naive_date().ok()?;
    if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
        parsed.set_hour(0).ok()?;
    }
    if parsed.minute().is_none() {
        parsed.set_minute(0).ok()?;
    }
    if parsed.second().is_none() {
        parsed.set_second(0).ok()?;
    }
    let time = parsed.to_naive_time().ok()?;
    let local = NaiveDateTime::new(date, time);
    match parsed.offset() {
        Some(offset) => local.checked_sub_signed(chrono::TimeDelta::seconds(offset.into())),
        None => Some(local),
    }
}

/// Flink's lenient default for timestamp strings: `yyyy-MM-dd[( |T)HH:mm[:ss[.fraction]]]`.
pub(crate) fn parse_default_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| NaiveDateTime::new(d, NaiveTime::MIN))
}

/// The item of a one-item strftime spec; chrono keeps some items (`%3f`: three fraction digits
/// without a dot) reachable only this way.
fn strftime_item(spec: &'static str) -> Item<'static> {
    StrftimeItems::new(spec).next().unwrap_or(Item::Error)
}

fn letter(c: char, count: usize, pattern: &str) -> Result<Item<'static>, String> {
    let pad = if count >= 2 { Pad::Zero } else { Pad::None };
    Ok(match c {
        'y' => match count {
            2 => Item::Numeric(Numeric::YearMod100, Pad::Zero),
            _ => Item::Numeric(
                Numeric::Year,
                if count >= 4 { Pad::Zero } else { Pad::None },
            ),
        },
        'M' | 'L' => match count {
            1 | 2 => Item::Numeric(Numeric::Month, pad),
            3 => Item::Fixed(Fixed::ShortMonthName),
            _ => Item::Fixed(Fixed::LongMonthName),
        },
        'd' => Item::Numeric(Numeric::Day, pad),
        'D' => Item::Numeric(Numeric::Ordinal, pad),
        'H' => Item::Numeric(Numeric::Hour, pad),
        'h' => Item::Numeric(Numeric::Hour12, pad),
        'm' => Item::Numeric(Numeric::Minute, pad),
        's' => Item::Numeric(Numeric::Second, pad),
        'S' => match count {
            3 => strftime_item("%3f"),
            6 => strftime_item("%6f"),
            9 => strftime_item("%9f"),
            _ => {
                return Err(format!(
                    "fraction of second '{}' in date format '{pattern}' is not supported; use \
                     SSS, SSSSSS or SSSSSSSSS",
                    "S".repeat(count)
                ));
            }
        },
        'E' => {
            if count >= 4 {
                Item::Fixed(Fixed::LongWeekdayName)
            } else {
                Item::Fixed(Fixed::ShortWeekdayName)
            }
        }
        'a' => Item::Fixed(Fixed::UpperAmPm),
        'Z' | 'x' => Item::Fixed(Fixed::TimezoneOffset),
        'X' => {
            if count >= 3 {
                Item::Fixed(Fixed::TimezoneOffsetColonZ)
            } else {
                Item::Fixed(Fixed::TimezoneOffsetZ)
            }
        }
        'z' => Item::Fixed(Fixed::TimezoneName),
        _ => {
            return Err(format!(
                "pattern letter '{c}' in date format '{pattern}' is not supported"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(pattern: &str, t: NaiveDateTime) -> String {
        let format = JavaFormat::new(pattern).expect("pattern translates");
        t.format_with_items(format.items()).to_string()
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("test timestamp")
    }

    #[test]
    fn common_patterns_format_like_java() {
        let t = at("2024-03-07 09:05:02.045");
        assert_eq!(format("yyyy-MM-dd HH:mm:ss", t), "2024-03-07 09:05:02");
        assert_eq!(
            format("yyyy-MM-dd HH:mm:ss.SSS", t),
            "2024-03-07 09:05:02.045"
        );
        assert_eq!(format("yyyyMMdd", t), "20240307");
        assert_eq!(format("yy/M/d H:m", t), "24/3/7 9:5");
        assert_eq!(format("yyyy-MM-dd'T'HH:mm", t), "2024-03-07T09:05");
        assert_eq!(format("EEE, dd MMM yyyy h a", t), "Thu, 07 Mar 2024 9 AM");
        assert_eq!(format("'it''s' HH", t), "it's 09");
    }

    #[test]
    fn unknown_letters_are_refused() {
        let error = JavaFormat::new("yyyy-ww").expect_err("w is not supported");
        assert!(error.contains("'w'"), "{error}");
    }

    #[test]
    fn parsing_fills_a_missing_time_with_midnight_and_applies_offsets() {
        let date_only = JavaFormat::new("yyyy-MM-dd").expect("pattern");
        assert_eq!(
            date_only.parse("2024-03-07", false),
            Some(at("2024-03-07 00:00:00"))
        );
        let with_offset = JavaFormat::new("yyyy-MM-dd HH:mm:ss XXX").expect("pattern");
        assert_eq!(
            with_offset.parse("2024-03-07 10:00:00 +02:00", false),
            Some(at("2024-03-07 08:00:00"))
        );
        let seconds = JavaFormat::new("yyyy-MM-dd HH:mm:ss").expect("pattern");
        assert_eq!(seconds.parse("2024-03-07 10:00:00.5", false), None);
        assert_eq!(
            seconds.parse("2024-03-07 10:00:00.5", true),
            Some(at("2024-03-07 10:00:00"))
        );
    }

    #[test]
    fn the_default_timestamp_parser_accepts_dates_and_fractions() {
        assert_eq!(
            parse_default_timestamp("2024-03-07"),
            Some(at("2024-03-07 00:00:00"))
        );
        assert_eq!(
            parse_default_timestamp("2024-03-07 10:11:12.123"),
            Some(at("2024-03-07 10:11:12.123"))
        );
        assert_eq!(
            parse_default_timestamp("2024-03-07T10:11"),
            Some(at("2024-03-07 10:11:00"))
        );
        assert_eq!(parse_default_timestamp("not a time"), None);
    }
}
