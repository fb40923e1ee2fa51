//! Token primitives of the script parser over sqlparser's `Parser`: peeking at and consuming
//! words (case-insensitively: many of Flink's words are not sqlparser keywords), punctuation,
//! identifiers and string literals, with errors placed at the next token.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::{ScriptParser, sql_location};
use crate::error::{Error, Result, SqlLocation};

impl ScriptParser<'_> {
    pub(super) fn peek(&self) -> &TokenWithSpan {
        self.parser.peek_token_ref()
    }

    pub(super) fn advance(&mut self) {
        self.parser.advance_token();
    }

    pub(super) fn at_end(&self) -> bool {
        self.peek().token == Token::EOF
    }

    pub(super) fn peek_is(&self, token: &Token) -> bool {
        &self.peek().token == token
    }

    /// Whether the `n`th next token is the unquoted word `name`, case-insensitively (many of
    /// Flink's words are not sqlparser keywords).
    pub(super) fn peek_nth_word(&self, n: usize, name: &str) -> bool {
        matches!(&self.parser.peek_nth_token_ref(n).token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(name))
    }

    pub(super) fn peek_word(&self, name: &str) -> bool {
        self.peek_nth_word(0, name)
    }

    pub(super) fn eat_word(&mut self, name: &str) -> bool {
        let found = self.peek_word(name);
        if found {
            self.advance();
        }
        found
    }

    pub(super) fn expect_word(&mut self, name: &str, context: &str) -> Result<()> {
        if self.eat_word(name) {
            return Ok(());
        }
        let context = if context.is_empty() {
            String::new()
        } else {
            format!(" {context}")
        };
        Err(self.error_here(format!("expected {name}{context}, found {}", self.found())))
    }

    pub(super) fn eat(&mut self, token: &Token) -> bool {
        self.parser.consume_token(token)
    }

    pub(super) fn expect(&mut self, token: &Token, what: &str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error_here(format!("expected {what}, found {}", self.found())))
        }
    }

    /// A plain or backtick-quoted identifier.
    pub(super) fn identifier(&mut self, what: &str) -> Result<(String, SqlLocation)> {
        let at = self.here();
        match &self.peek().token {
            Token::Word(w) => {
                let value = w.value.clone();
                self.advance();
                Ok((value, at))
            }
            _ => Err(self.error_here(format!("expected {what}, found {}", self.found()))),
        }
    }

    /// `name` or `catalog.database.name`, joined with dots.
    pub(super) fn object_name(&mut self, what: &str) -> Result<(String, SqlLocation)> {
        let (mut name, at) = self.identifier(what)?;
        while self.eat(&Token::Period) {
            name.push('.');
            name.push_str(&self.identifier(what)?.0);
        }
        Ok((name, at))
    }

    pub(super) fn string_literal(&mut self, what: &str) -> Result<String> {
        match &self.peek().token {
            Token::SingleQuotedString(s) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => Err(self.error_here(format!("expected {what}, found {}", self.found()))),
        }
    }

    pub(super) fn location_of(&self, token: &TokenWithSpan) -> SqlLocation {
        if token.span.start.line == 0 {
            self.end
        } else {
            sql_location(token.span.start)
        }
    }

    /// Where the next token starts (the end of the script at its end).
    pub(super) fn here(&self) -> SqlLocation {
        self.location_of(self.peek())
    }

    /// The next token as written, for messages.
    pub(super) fn found(&self) -> String {
        match &self.peek().token {
            Token::EOF => "the end of the script".into(),
            token => format!("`{token}`"),
        }
    }

    pub(super) fn peek_text(&self) -> String {
        match &self.peek().token {
            Token::Word(w) => w.value.to_uppercase(),
            token => token.to_string(),
        }
    }

    pub(super) fn error_here(&self, message: impl Into<String>) -> Error {
        Error::sql(self.here(), message)
    }
}
