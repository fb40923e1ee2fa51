//! The operator's log output: one JSON object per line (the default, for log collectors) or
//! human-readable text (for running the operator locally), filtered by `WEIR_LOG` (first) or
//! `RUST_LOG`, with `info` when neither is set.
//!
//! In JSON every line carries the fields of all the spans it was logged in (`spans`, outermost
//! first), not just the innermost one: kube's HTTP spans nest inside the controller's
//! `reconciling object` span, and the resource's name and namespace must still be on the line.
//! A JSON line looks like:
//!
//! ```text
//! {"timestamp":"…","level":"INFO","message":"applied statefulset","target":"weir_operator::…",
//!  "spans":[{"name":"reconcile","flinkjob":"orders","namespace":"shop"}]}
//! ```

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use super::Error;

/// The filter used when neither `WEIR_LOG` nor `RUST_LOG` is set.
const DEFAULT_FILTER: &str = "info";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line with the span fields; for clusters.
    #[default]
    Json,
    /// Human-readable lines; for a terminal.
    Text,
}

/// Installs the global log subscriber writing to stderr, in `format`, filtered by `WEIR_LOG`
/// or else `RUST_LOG`. Fails on an unparsable filter or when a subscriber is already installed.
pub fn init(format: LogFormat) -> Result<(), Error> {
    let filter = filter_from(|var| std::env::var(var).ok())?;
    tracing_subscriber::registry()
        .with(layer(format, std::io::stderr).with_filter(filter))
        .try_init()
        .map_err(|source| Error::LogInit { source })
}

/// The filter from the first of `WEIR_LOG`, `RUST_LOG` that `lookup` finds non-empty.
fn filter_from(lookup: impl Fn(&str) -> Option<String>) -> Result<EnvFilter, Error> {
    for var in ["WEIR_LOG", "RUST_LOG"] {
        if let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) {
            return EnvFilter::builder()
                .parse(&value)
                .map_err(|source| Error::LogFilter { var, value, source });
        }
    }
    Ok(EnvFilter::new(DEFAULT_FILTER))
}

/// The formatting layer for `format`, writing to `writer`.
fn layer<W>(format: LogFormat, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed(),
        LogFormat::Text => fmt.with_ansi(false).boxed(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer collecting everything logged, for assertions.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8 logs")
        }
    }

    /// Logs one line inside a resource span and a nested request span, as reconcile does.
    fn log_in_spans(format: LogFormat) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(format, captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let resource =
                tracing::info_span!("reconcile", flinkjob = "orders", namespace = "shop");
            let _resource = resource.enter();
            let request = tracing::info_span!("HTTP", method = "PATCH");
            let _request = request.enter();
            tracing::info!(step = "apply", "applied statefulset");
        });
        captured.text()
    }

    #[test]
    fn json_lines_carry_the_resource_span_fields_even_inside_nested_spans() {
        let out = log_in_spans(LogFormat::Json);
        let line: serde_json::Value =
            serde_json::from_str(out.trim()).expect("one JSON object per line");
        assert_eq!(line["message"], "applied statefulset");
        assert_eq!(line["step"], "apply", "event fields are flattened");
        assert_eq!(line["level"], "INFO");
        let spans = line["spans"].as_array().expect("a span list");
        assert_eq!(spans[0]["flinkjob"], "orders");
        assert_eq!(spans[0]["namespace"], "shop");
        assert_eq!(spans[1]["method"], "PATCH");
    }

    #[test]
    fn text_lines_name_the_resource_too() {
        let out = log_in_spans(LogFormat::Text);
        assert!(out.contains("applied statefulset"), "{out}");
        assert!(out.contains("flinkjob=\"orders\""), "{out}");
        assert!(out.contains("namespace=\"shop\""), "{out}");
        assert!(serde_json::from_str::<serde_json::Value>(out.trim()).is_err());
    }

    #[test]
    fn weir_log_wins_over_rust_log_and_info_is_the_default() {
        let both = |var: &str| match var {
            "WEIR_LOG" => Some("debug".to_owned()),
            "RUST_LOG" => Some("error".to_owned()),
            _ => None,
        };
        assert_eq!(filter_from(both).expect("valid").to_string(), "debug");
        let rust_only = |var: &str| (var == "RUST_LOG").then(|| "warn,kube=error".to_owned());
        let filter = filter_from(rust_only).expect("valid").to_string();
        assert!(
            filter.contains("warn") && filter.contains("kube=error"),
            "{filter}"
        );
        let blank = |_: &str| Some("  ".to_owned());
        assert_eq!(
            filter_from(blank).expect("valid").to_string(),
            DEFAULT_FILTER
        );
    }

    #[test]
    fn an_invalid_filter_names_its_variable() {
        let bad = |var: &str| (var == "WEIR_LOG").then(|| "info,weir=[".to_owned());
        let err = filter_from(bad).expect_err("invalid directive");
        assert!(err.to_string().contains("WEIR_LOG"), "{err}");
    }
}
