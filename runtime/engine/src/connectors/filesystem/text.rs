//! The text forms of dates, timestamps, decimals, floating-point numbers and bytes, as Flink's
//! csv and json formats read and write them: dates `yyyy-MM-dd`; timestamps
//! `yyyy-MM-dd HH:mm:ss[.fraction]` with the fraction as short as the value allows (Flink's
//! `SQL_TIMESTAMP_FORMAT`), a `T` instead of the space for ISO-8601, a trailing `Z` for
//! TIMESTAMP_LTZ; decimals plain with their scale; doubles like Java's `Double.toString`;
//! bytes in standard base64.

use arrow::datatypes::TimeUnit;

/// A decimal literal (`-12.5`, `1e3`) as an unscaled value at `scale`, rounding half up like
/// Java's `BigDecimal.setScale(scale, HALF_UP)`; more than `precision` digits is an error.
pub(crate) fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let not_decimal = || "not a decimal number".to_string();
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => {
            let exponent: i32 = rest[at + 1..].parse().map_err(|_| not_decimal())?;
            (&rest[..at], exponent)
        }
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(not_decimal());
    }
    // value = digits × 10^(exponent − fraction length); we want digits × 10^shift.
    let digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes())
        .map(|b| b - b'0')
        .skip_while(|d| *d == 0)
        .collect();
    let shift = i64::from(exponent) - fraction.len() as i64 + i64::from(scale);
    let too_big = || format!("more than {precision} digits at scale {scale}");
    let mut unscaled: i128 = 0;
    let kept = if shift >= 0 {
        digits.len()
    } else {
        digits.len().saturating_sub(shift.unsigned_abs() as usize)
    };
    for digit in &digits[..kept] {
        unscaled = unscaled
            .checked_mul(10)
            .and_then(|u| u.checked_add(i128::from(*digit)))
            .ok_or_else(too_big)?;
    }
    if shift > 0 {
        for _ in 0..shift {
            unscaled = unscaled.checked_mul(10).ok_or_else(too_big)?;
        }
    } else if shift < 0 {
        // The first dropped digit decides the rounding (half up, away from zero).
        let dropped = shift.unsigned_abs() as usize;
        let first_dropped = if dropped <= digits.len() {
            digits[digits.len() - dropped]
        } else {
            0
        };
        if first_dropped >= 5 {
            unscaled += 1;
        }
    }
    if unscaled >= 10_i128.pow(u32::from(precision)) {
        return Err(too_big());
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// `yyyy-MM-dd HH:mm[:ss[.fraction]]`, with a `T` instead of the space and a trailing `Z`
/// accepted, in `unit` since the epoch.
pub(crate) fn parse_timestamp(text: &str, unit: TimeUnit) -> Result<i64, String> {
    let mut cursor = Cursor::new(text);
    let days = cursor.date()?;
    if !cursor.eat(b' ') && !cursor.eat(b'T') {
        return Err("expected 'yyyy-MM-dd HH:mm:ss[.fraction]'".into());
    }
    let (seconds_of_day, nanos) = cursor.time()?;
    // TIMESTAMP_LTZ values are written with a `Z`; accept it on either kind.
    cursor.eat(b'Z');
    cursor.end()?;
    let seconds = i64::from(days) * 86_400 + seconds_of_day;
    let overflow = || "out of range".to_string();
    let (per_second, nanos_per_tick) = match unit {
        TimeUnit::Second => (1, 1_000_000_000),
        TimeUnit::Millisecond => (1_000, 1_000_000),
        TimeUnit::Microsecond => (1_000_000, 1_000),
        TimeUnit::Nanosecond => (1_000_000_000, 1),
    };
    seconds
        .checked_mul(per_second)
        .and_then(|t| t.checked_add(i64::from(nanos) / nanos_per_tick))
        .ok_or_else(overflow)
}

/// `yyyy-MM-dd` as days since the epoch.
pub(crate) fn parse_date(text: &str) -> Result<i32, String> {
    let mut cursor = Cursor::new(text);
    let days = cursor.date()?;
    cursor.end()?;
    Ok(days)
}

/// A small reader over date and time text.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn digits(&mut self, min: usize, max: usize) -> Result<(u64, usize), String> {
        let start = self.at;
        let mut value: u64 = 0;
        while self.at - start < max {
            match self.bytes.get(self.at) {
                Some(b) if b.is_ascii_digit() => {
                    value = value * 10 + u64::from(b - b'0');
                    self.at += 1;
                }
                _ => break,
            }
        }
        let count = self.at - start;
        if count < min {
            return Err(format!("expected a digit at position {}", start + 1));
        }
        Ok((value, count))
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at position {}",
                char::from(byte),
                self.at + 1
            ))
        }
    }

    fn end(&self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!("unexpected text at position {}", self.at + 1))
        }
    }

    /// `[-]yyyy-MM-dd` as days since the epoch.
    fn date(&mut self) -> Result<i32, String> {
        let negative = self.eat(b'-');
        if !negative {
            self.eat(b'+');
        }
        let (year, _) = self.digits(4, 9)?;
        self.expect(b'-')?;
        let (month, _) = self.digits(2, 2)?;
        self.expect(b'-')?;
        let (day, _) = self.digits(2, 2)?;
        let year = if negative {
            -(year as i64)
        } else {
            year as i64
        };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err("no such date".into());
        }
        i32::try_from(days_from_civil(year, month, day)).map_err(|_| "out of range".into())
    }

    /// `HH:mm[:ss[.fraction]]` as (seconds of the day, nanoseconds).
    fn time(&mut self) -> Result<(i64, u32), String> {
        let (hour, _) = self.digits(2, 2)?;
        self.expect(b':')?;
        let (minute, _) = self.digits(2, 2)?;
        let mut second = 0;
        let mut nanos = 0;
        if self.eat(b':') {
            second = self.digits(2, 2)?.0;
            if self.eat(b'.') {
                let (fraction, count) = self.digits(1, 9)?;
                nanos = (fraction * 10_u64.pow((9 - count) as u32)) as u32;
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err("no such time of day".into());
        }
        Ok(((hour * 3600 + minute * 60 + second) as i64, nanos))
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i64;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `yyyy-MM-dd`.
pub(crate) fn format_date(days: i64, out: &mut String) {
    use std::fmt::Write;
    let (year, month, day) = civil_from_days(days);
    let sign = if year < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{:04}-{month:02}-{day:02}", year.unsigned_abs());
}

/// `yyyy-MM-dd HH:mm:ss[.fraction]` (or with `T` for ISO-8601), the fraction as short as
/// possible like Flink's `SQL_TIMESTAMP_FORMAT`; a `Z` follows for TIMESTAMP_LTZ.
pub(crate) fn format_timestamp(
    value: i64,
    unit: TimeUnit,
    zoned: bool,
    iso: bool,
    out: &mut String,
) {
    use std::fmt::Write;
    let per_second: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let seconds = value.div_euclid(per_second);
    let nanos = value.rem_euclid(per_second) * (1_000_000_000 / per_second);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    format_date(days, out);
    out.push(if iso { 'T' } else { ' ' });
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    if zoned {
        out.push('Z');
    }
}

/// An unscaled decimal with its scale: `12.50`, `-0.05`.
pub(crate) fn format_decimal(unscaled: i128, scale: i8, out: &mut String) {
    let digits = unscaled.unsigned_abs().to_string();
    if unscaled < 0 {
        out.push('-');
    }
    let scale = scale.max(0) as usize;
    if scale == 0 {
        out.push_str(&digits);
        return;
    }
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    out.push_str(whole);
    out.push('.');
    out.push_str(fraction);
}

/// Like Java's `Double.toString`: `1.0`, `0.001`, `1.0E7`, `1.5E-4`, `NaN`, `-Infinity`.
pub(crate) fn format_float(value: f64, shortest: impl Fn(bool) -> String, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else if value == 0.0 || (1e-3..1e7).contains(&value.abs()) {
        let plain = shortest(false);
        out.push_str(&plain);
        if !plain.contains('.') {
            out.push_str(".0");
        }
    } else {
        // Rust's `{:e}` gives the shortest digits, `1.5e-4`; Java writes `1.5E-4`, `1.0E7`.
        let scientific = shortest(true);
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        out.push('E');
        out.push_str(exponent);
    }
}

pub(crate) fn format_f64(value: f64, out: &mut String) {
    format_float(
        value,
        |sci| {
            if sci {
                format!("{value:e}")
            } else {
                format!("{value}")
            }
        },
        out,
    );
}

pub(crate) fn format_f32(value: f32, out: &mut String) {
    format_float(
        f64::from(value),
        |sci| {
            if sci {
                format!("{value:e}")
            } else {
                format!("{value}")
            }
        },
        out,
    );
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Jackson writes binary values.
pub(crate) fn base64_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Standard base64; padding optional.
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut bits: u32 = 0;
    let mut count = 0;
    for c in text.bytes() {
        let value = BASE64
            .iter()
            .position(|b| *b == c)
            .ok_or_else(|| format!("'{}' is not a base64 character", char::from(c)))?;
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    if count >= 6 {
        return Err("truncated base64".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_with_half_up_rounding() {
        assert_eq!(parse_decimal("12.5", 10, 2), Ok(1250));
        assert_eq!(parse_decimal("-0.005", 10, 2), Ok(-1));
        assert_eq!(parse_decimal("0.004", 10, 2), Ok(0));
        assert_eq!(parse_decimal("1e3", 10, 2), Ok(100_000));
        assert_eq!(parse_decimal("+7", 3, 0), Ok(7));
        assert!(parse_decimal("1000", 3, 0).is_err());
        assert!(parse_decimal("1.2.3", 10, 2).is_err());
        assert!(parse_decimal(".", 10, 2).is_err());
    }

    #[test]
    fn base64_round_trips() {
        for bytes in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10\x80"] {
            let mut out = String::new();
            base64_encode(bytes, &mut out);
            assert_eq!(base64_decode(&out).unwrap(), bytes, "{out}");
        }
        let mut out = String::new();
        base64_encode(b"ab", &mut out);
        assert_eq!(out, "YWI=");
        assert!(base64_decode("a$").is_err());
    }
}
