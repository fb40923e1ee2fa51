//! A small recursive-descent reader of one line of JSON: the top-level object's members, with
//! scalars kept as their text and nested objects and arrays as their raw JSON.

use std::borrow::Cow;

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// A JSON value as found in a line; strings without escapes borrow from it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json<'a> {
    Null,
    Bool(bool),
    /// The number's text, as written.
    Number(&'a str),
    Str(Cow<'a, str>),
    /// An object or array, as its JSON text.
    Nested(&'a str),
}

/// A recursive-descent reader of one line of JSON.
pub(super) struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Parser { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn error(&self, expected: &str) -> String {
        match self.text[self.at..].chars().next() {
            Some(c) => format!(
                "invalid JSON: expected {expected} but found '{c}' at column {}",
                self.at + 1
            ),
            None => format!("invalid JSON: expected {expected} but the line ended"),
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("'{}'", char::from(byte))))
        }
    }

    /// The whole line as one object: calls `field` for each member.
    pub(super) fn object(
        &mut self,
        mut field: impl FnMut(Cow<'a, str>, Json<'a>),
    ) -> Result<(), String> {
        self.expect(b'{')?;
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                self.skip_space();
                if self.peek() != Some(b'"') {
                    return Err(self.error("a field name"));
                }
                let name = self.string()?;
                self.expect(b':')?;
                let value = self.value(1)?;
                field(name, value);
                self.skip_space();
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("',' or '}'")),
                }
            }
        }
        self.skip_space();
        if self.at != self.text.len() {
            return Err(self.error("the end of the line"));
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, String> {
        self.skip_space();
        match self.peek() {
            Some(b'"') => self.string().map(Json::Str),
            Some(b'{' | b'[') => {
                let start = self.at;
                self.skip_nested(depth)?;
                Ok(Json::Nested(&self.text[start..self.at]))
            }
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("a value")),
        }
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Result<Json<'a>, String> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error(&format!("'{word}'")))
        }
    }

    fn number(&mut self) -> Result<Json<'a>, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        if !digits(self) {
            return Err(self.error("a digit"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return Err(self.error("a digit"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return Err(self.error("a digit"));
            }
        }
        Ok(Json::Number(&self.text[start..self.at]))
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.at += 1;
        let start = self.at;
        let bytes = self.bytes();
        // Fast path: no escapes.
        while let Some(&b) = bytes.get(self.at) {
            match b {
                b'"' => {
                    let text = &self.text[start..self.at];
                    self.at += 1;
                    return Ok(Cow::Borrowed(text));
                }
                b'\\' => break,
                _ => self.at += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.at]);
        loop {
            let Some(c) = self.text[self.at..].chars().next() else {
                return Err("invalid JSON: unterminated string".into());
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(Cow::Owned(out)),
                '\\' => {
                    let escape = self.peek().ok_or_else(|| self.error("an escape"))?;
                    self.at += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => {
                            self.at -= 1;
                            return Err(self.error("an escape"));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("4 hex digits"))?;
        let value = u32::from_str_radix(hex, 16).map_err(|_| self.error("4 hex digits"))?;
        self.at += 4;
        Ok(value)
    }

    /// After `\u`: one code point, joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.text[self.at..].starts_with("\\u") {
                return Err(self.error("the second half of a surrogate pair"));
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err("invalid JSON: bad surrogate pair".into());
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| "invalid JSON: bad \\u escape".into())
    }

    fn skip_nested(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("invalid JSON: nested deeper than {MAX_DEPTH}"));
        }
        let object = self.peek() == Some(b'{');
        let close = if object { b'}' } else { b']' };
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            if object {
                self.skip_space();
                if self.peek() != Some(b'"') {
                    return Err(self.error("a field name"));
                }
                self.string()?;
                self.expect(b':')?;
            }
            self.value(depth + 1)?;
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b) if b == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error(&format!("',' or '{}'", char::from(close)))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parser_rejects_trailing_text_and_bad_escapes() {
        let parse = |line: &str| Parser::new(line).object(|_, _| {});
        assert!(parse("{\"a\": 1} x").is_err());
        assert!(parse("{\"a\": \"\\q\"}").is_err());
        assert!(parse("{\"a\": 01x}").is_err());
        assert!(parse("{\"a\": \"\\ud83d\\ude00\", \"b\": [[], {}]}").is_ok());
    }
}
