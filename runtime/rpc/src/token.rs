//! The shared token of a job (`--token-file`, a Kubernetes Secret mounted as a file) and the
//! pieces that check and attach it: [`RequireToken`] for gRPC servers (the control API and the
//! coordinator/worker protocol), [`AttachToken`] for gRPC clients, and
//! [`Token::verify_header`] for plain HTTP. Requests carry `authorization: Bearer <token>`;
//! the comparison takes the same time wherever the first difference is. The token never
//! appears in a `Debug` output, a log line or an error message.

use std::path::Path;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::error::{Error, Result};

/// The header every authenticated request carries.
pub const AUTHORIZATION: &str = "authorization";

#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// A token from its text (surrounding whitespace trimmed). It must be non-empty printable
    /// ASCII without spaces, since it travels in an HTTP header.
    pub fn new(text: &str) -> Result<Token> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::InvalidToken("is empty".into()));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidToken(
                "must be printable ASCII without spaces (it travels in an HTTP header)".into(),
            ));
        }
        Ok(Token(text.into()))
    }

    /// Read `--token-file`: the file's content, whitespace trimmed (a trailing newline from
    /// `echo` or a Secret is fine). An empty file is an error naming the path.
    pub fn from_file(path: &Path) -> Result<Token> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadTokenFile {
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(Error::EmptyTokenFile {
                path: path.to_path_buf(),
            });
        }
        Token::new(&text).map_err(|e| match e {
            Error::InvalidToken(reason) => {
                Error::InvalidToken(format!("in {} {reason}", path.display()))
            }
            other => other,
        })
    }

    /// `--token-file` when given.
    pub fn from_optional_file(path: Option<&Path>) -> Result<Option<Token>> {
        path.map(Token::from_file).transpose()
    }

    /// Whether `candidate` is this token, in time independent of where they differ (the
    /// length is not secret).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate))
    }

    /// Whether an `authorization` header value is `Bearer <this token>`.
    pub fn verify_header(&self, header: Option<&[u8]>) -> bool {
        header
            .and_then(|h| h.strip_prefix(b"Bearer "))
            .is_some_and(|candidate| self.matches(candidate))
    }

    /// The `authorization` header value for this token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// The header value, marked sensitive (never indexed by HPACK, hidden from `Debug`).
    fn metadata_value(&self) -> Result<AsciiMetadataValue> {
        let mut value: AsciiMetadataValue = self
            .bearer()
            .parse()
            .map_err(|_| Error::InvalidToken("cannot be sent as a header".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a request was refused, for the 401 body: says what is missing, never the token.
pub(crate) fn refusal(header: Option<&[u8]>) -> &'static str {
    match header {
        None => "missing authorization header: send 'authorization: Bearer <token>'",
        Some(h) if !h.starts_with(b"Bearer ") => "the authorization header is not a bearer token",
        Some(_) => "invalid token",
    }
}

/// A tonic interceptor that refuses calls without the token (`UNAUTHENTICATED`); lets every
/// call through when the server has no token. Use it on a gRPC service with
/// `FooServer::with_interceptor(service, RequireToken::new(token))`.
#[derive(Clone, Debug)]
pub struct RequireToken {
    token: Option<Token>,
}

impl RequireToken {
    pub fn new(token: Option<Token>) -> Self {
        RequireToken { token }
    }

    /// Check one call's metadata.
    pub fn check(&self, metadata: &MetadataMap) -> std::result::Result<(), tonic::Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let header = metadata.get(AUTHORIZATION).map(|v| v.as_bytes());
        if token.verify_header(header) {
            Ok(())
        } else {
            Err(tonic::Status::unauthenticated(refusal(header)))
        }
    }
}

impl tonic::service::Interceptor for RequireToken {
    fn call(
        &mut self,
        request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

/// A tonic interceptor that adds `authorization: Bearer <token>` to every call (nothing when
/// there is no token). Use it with `FooClient::with_interceptor(channel, AttachToken::new(token)?)`.
#[derive(Clone)]
pub struct AttachToken {
    value: Option<AsciiMetadataValue>,
}

impl std::fmt::Debug for AttachToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.value.as_ref().map(|_| "<redacted>");
        f.debug_struct("AttachToken")
            .field("value", &shown)
            .finish()
    }
}

impl AttachToken {
    pub fn new(token: Option<&Token>) -> Result<Self> {
        Ok(AttachToken {
            value: token.map(Token::metadata_value).transpose()?,
        })
    }
}

impl tonic::service::Interceptor for AttachToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.value {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    #[test]
    fn token_file_is_trimmed_and_an_empty_one_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let token = Token::from_file(&path).unwrap();
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cret\n"));

        std::fs::write(&path, " \n\t").unwrap();
        let err = Token::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains(&path.display().to_string()),
            "{err}"
        );

        let missing = dir.path().join("missing");
        let err = Token::from_file(&missing).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(Token::new("two words").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = Token::new("hunter2").unwrap();
        let shown = format!("{token:?} {:?}", RequireToken::new(Some(token.clone())));
        assert!(!shown.contains("hunter2"), "{shown}");
        let attach = AttachToken::new(Some(&token)).unwrap();
        assert!(!format!("{attach:?}").contains("hunter2"));
    }

    #[test]
    fn bearer_header_must_match_exactly() {
        let token = Token::new("abc").unwrap();
        assert!(token.verify_header(Some(b"Bearer abc")));
        assert!(!token.verify_header(Some(b"Bearer abd")));
        assert!(!token.verify_header(Some(b"Bearer ab")));
        assert!(!token.verify_header(Some(b"Basic abc")));
        assert!(!token.verify_header(Some(b"abc")));
        assert!(!token.verify_header(None));
    }

    #[test]
    fn interceptors_attach_and_require_the_token() {
        let token = Token::new("abc").unwrap();
        let mut attach = AttachToken::new(Some(&token)).unwrap();
        let mut require = RequireToken::new(Some(token));
        let sent = attach.call(tonic::Request::new(())).unwrap();
        assert!(require.call(sent).is_ok());
        let status = require.call(tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut open = RequireToken::new(None);
        assert!(open.call(tonic::Request::new(())).is_ok());
    }
}
