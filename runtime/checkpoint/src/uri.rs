//! From a storage URI to an object store and the folder (prefix) inside it.
//!
//! Local paths and `file://` URIs map to one `LocalFileSystem` rooted at `/` with the absolute
//! folder as prefix, so a folder that does not exist yet is fine (it is created by the first
//! write) and nothing is created by merely opening it. `memory://<name>` maps to a process-wide
//! in-memory store per name, so two opens of the same URI see the same objects (tests). Cloud
//! URIs build `object_store`'s clients from the environment, then from explicit options, with
//! retries and timeouts short enough that a wrong endpoint fails in seconds, not minutes.

use std::collections::HashMap;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::{Path, PathPart};
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use percent_encoding::percent_decode_str;

use crate::{Error, Result};

/// How long to wait for a TCP connection before retrying: a dead endpoint fails fast.
const CONNECT_TIMEOUT: &str = "5s";

/// A parsed storage URI: where the objects live and what to call the folder in messages.
pub(crate) struct Resolved {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URI normalized: absolute for local folders, no trailing slash.
    pub uri: String,
    /// The folder on disk, for local URIs (retention removes the empty folders it leaves).
    pub local_root: Option<PathBuf>,
}

/// Parses `uri` and builds its store; `options` are `object_store` config keys
/// (`aws_endpoint`, `aws_access_key_id`, `google_service_account`, `azure_storage_account_name`
/// ...) that override the environment.
pub(crate) fn resolve(uri: &str, options: &[(&str, &str)]) -> Result<Resolved> {
    let invalid = |reason: &str| Error::InvalidUri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = uri.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return local(uri, PathBuf::from(trimmed));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "file" {
        let path = match rest.strip_prefix("localhost") {
            Some(path) => path,
            None => rest,
        };
        if !path.starts_with('/') {
            return Err(invalid(
                "a file:// uri needs an absolute path (file:///dir)",
            ));
        }
        let decoded = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| invalid("the path is not valid UTF-8 once percent-decoded"))?;
        return local(uri, PathBuf::from(decoded.as_ref()));
    }

    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(invalid("no bucket, container or name after the scheme"));
    }
    let prefix = prefix_from_url_path(path).map_err(|reason| invalid(&reason))?;
    let normalized = normalized_uri(&scheme, authority, path);
    let base_url = format!("{scheme}://{authority}");
    let store: Arc<dyn ObjectStore> = match scheme.as_str() {
        "memory" => memory_store(authority),
        "s3" | "s3a" => s3(&normalized, &base_url, options)?,
        "gs" => gcs(&normalized, &base_url, options)?,
        "az" | "azure" | "abfs" | "abfss" => azure(&normalized, &base_url, options)?,
        other => {
            return Err(invalid(&format!(
                "unsupported scheme {other:?} (use a path, file://, s3://, gs://, az://, or memory://)"
            )));
        }
    };
    Ok(Resolved {
        store,
        prefix,
        uri: normalized,
        local_root: None,
    })
}

/// A local folder: made absolute against the current directory and normalized lexically
/// (`..` would otherwise be refused by `object_store`'s paths).
fn local(uri: &str, path: PathBuf) -> Result<Resolved> {
    let invalid = |reason: String| Error::InvalidUri {
        uri: uri.to_owned(),
        reason,
    };
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|err| invalid(format!("cannot resolve a relative path: {err}")))?
            .join(path)
    };
    let mut normalized = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    let prefix = Path::from_absolute_path(&normalized)
        .map_err(|err| invalid(format!("not a usable local path: {err}")))?;
    Ok(Resolved {
        store: Arc::new(LocalFileSystem::new()),
        prefix,
        uri: normalized.display().to_string(),
        local_root: Some(normalized),
    })
}

fn prefix_from_url_path(path: &str) -> Result<Path, String> {
    let mut parts = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| format!("path segment {segment:?} is not valid UTF-8"))?;
        if decoded == "." || decoded == ".." {
            return Err(format!("path segment {segment:?} is not allowed"));
        }
        parts.push(PathPart::from(decoded.into_owned()));
    }
    Ok(Path::from_iter(parts))
}

fn normalized_uri(scheme: &str, authority: &str, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{}", segments.join("/"))
    }
}

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked while inserting: the map is still fine.
    let mut stores = stores
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = stores
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()));
    Arc::clone(store) as Arc<dyn ObjectStore>
}

/// Retries that ride out a brief outage but give up on a dead endpoint within seconds
/// (`object_store`'s default keeps trying for three minutes). Callers can retry whole
/// operations when [`Error::is_transient`] says so.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 6,
        retry_timeout: Duration::from_secs(30),
    }
}

fn configure_error(uri: &str) -> impl Fn(object_store::Error) -> Error + '_ {
    move |source| Error::Configure {
        uri: uri.to_owned(),
        source,
    }
}

fn s3(uri: &str, base_url: &str, options: &[(&str, &str)]) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::from_env().with_url(base_url);
    for (key, value) in options {
        let key: AmazonS3ConfigKey = key.parse().map_err(configure_error(uri))?;
        builder = builder.with_config(key, *value);
    }
    let connect = AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout);
    if builder.get_config_value(&connect).is_none() {
        builder = builder.with_config(connect, CONNECT_TIMEOUT);
    }
    // S3-compatible servers (MinIO, moto, Ceph) behind an endpoint rarely have per-bucket DNS
    // names, so path-style requests, unless the user chose otherwise.
    let style_chosen = std::env::var_os("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some()
        || options
            .iter()
            .any(|(key, _)| key.contains("virtual_hosted_style_request"));
    if builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .is_some()
        && !style_chosen
    {
        builder = builder.with_virtual_hosted_style_request(false);
    }
    let store = builder
        .with_retry(retry_config())
        .build()
        .map_err(configure_error(uri))?;
    Ok(Arc::new(store))
}

fn gcs(uri: &str, base_url: &str, options: &[(&str, &str)]) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = GoogleCloudStorageBuilder::from_env().with_url(base_url);
    for (key, value) in options {
        let key: GoogleConfigKey = key.parse().map_err(configure_error(uri))?;
        builder = builder.with_config(key, *value);
    }
    let connect = GoogleConfigKey::Client(ClientConfigKey::ConnectTimeout);
    if builder.get_config_value(&connect).is_none() {
        builder = builder.with_config(connect, CONNECT_TIMEOUT);
    }
    let store = builder
        .with_retry(retry_config())
        .build()
        .map_err(configure_error(uri))?;
    Ok(Arc::new(store))
}

fn azure(uri: &str, base_url: &str, options: &[(&str, &str)]) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = MicrosoftAzureBuilder::from_env().with_url(base_url);
    for (key, value) in options {
        let key: AzureConfigKey = key.parse().map_err(configure_error(uri))?;
        builder = builder.with_config(key, *value);
    }
    let connect = AzureConfigKey::Client(ClientConfigKey::ConnectTimeout);
    if builder.get_config_value(&connect).is_none() {
        builder = builder.with_config(connect, CONNECT_TIMEOUT);
    }
    let store = builder
        .with_retry(retry_config())
        .build()
        .map_err(configure_error(uri))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(uri: &str) -> String {
        match resolve(uri, &[]) {
            Err(Error::InvalidUri { reason, .. }) => reason,
            Err(other) => panic!("{uri}: expected InvalidUri, got {other:?}"),
            Ok(resolved) => panic!("{uri}: expected InvalidUri, got {}", resolved.uri),
        }
    }

    #[test]
    fn local_paths_become_absolute_and_normalized() {
        let resolved = resolve("/tmp/a/./b/../c/", &[]).expect("resolve");
        assert_eq!(resolved.uri, "/tmp/a/c");
        assert_eq!(resolved.prefix.as_ref(), "tmp/a/c");
        assert_eq!(resolved.local_root, Some(PathBuf::from("/tmp/a/c")));

        let file = resolve("file:///tmp/with%20space", &[]).expect("resolve");
        assert_eq!(file.uri, "/tmp/with space");

        let relative = resolve("rel/dir", &[]).expect("resolve");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(relative.local_root, Some(cwd.join("rel/dir")));
    }

    #[test]
    fn cloud_uris_keep_their_bucket_and_prefix() {
        let options = [
            ("aws_access_key_id", "key"),
            ("aws_secret_access_key", "secret"),
            ("aws_region", "us-east-1"),
        ];
        let s3 = resolve("s3://bucket/ckpt//jobs/", &options).expect("resolve");
        assert_eq!(s3.uri, "s3://bucket/ckpt/jobs");
        assert_eq!(s3.prefix.as_ref(), "ckpt/jobs");
        assert_eq!(s3.local_root, None);

        let memory = resolve("memory://unit/x", &[]).expect("resolve");
        assert_eq!(memory.uri, "memory://unit/x");
        assert_eq!(memory.prefix.as_ref(), "x");
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        assert!(reason("").contains("empty"));
        assert!(reason("s3://").contains("no bucket"));
        assert!(reason("s3:///prefix").contains("no bucket"));
        assert!(reason("s3://bucket/a/../b").contains("not allowed"));
        assert!(reason("http://host/x").contains("unsupported scheme"));
        assert!(reason("file://host/x").contains("absolute path"));
    }

    #[test]
    fn unknown_options_are_configuration_errors_naming_the_uri() {
        let err = resolve("s3://bucket/p", &[("aws_no_such_option", "1")])
            .err()
            .expect("unknown option");
        assert!(matches!(err, Error::Configure { .. }), "{err:?}");
        assert!(err.to_string().contains("s3://bucket/p"), "{err}");
    }
}
