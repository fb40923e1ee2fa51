//! WATCH: a chunked response of JSON lines `{"type": ..., "object": ...}`, as kube's
//! `Client::request_events` reads them. A watch starts from the current objects (no
//! resourceVersion or `0`, with a closing `k8s.io/initial-events-end` bookmark when
//! `sendInitialEvents=true`), or replays the history after a resourceVersion; one older than the
//! history answers a single `ERROR` event with a 410 `Expired` Status, which makes kube's watcher
//! relist. `timeoutSeconds` ends the stream; when bookmarks are allowed a final `BOOKMARK` carries
//! the resourceVersion to resume from, so a quiet watch never resumes from a compacted version.
//! No periodic bookmarks are sent.

use std::{convert::Infallible, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    Shared,
    error::{Error, status_body},
    read,
    registry::KindInfo,
    route::Query,
    selector::{FieldSelector, LabelSelector},
    store::{WatchFilter, WatchMessage, WatchStart},
};

/// The response body type of every answer.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What a watch request asked for.
pub(crate) struct WatchRequest {
    info: KindInfo,
    filter: WatchFilter,
    start: Option<u64>,
    initial_events: bool,
    timeout: Duration,
    bookmarks: bool,
    metadata_only: bool,
}

impl WatchRequest {
    pub fn parse(
        info: &KindInfo,
        namespace: Option<&str>,
        query: &Query,
        metadata_only: bool,
    ) -> Result<Self, Error> {
        let start = match query.get("resourceVersion") {
            None | Some("0") => None,
            Some(rv) => Some(
                rv.parse()
                    .map_err(|_| Error::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
            ),
        };
        Ok(WatchRequest {
            info: info.clone(),
            filter: WatchFilter {
                resource: info.key.clone(),
                namespace: namespace.map(str::to_owned),
                labels: LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
                fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?,
            },
            start,
            initial_events: query.flag("sendInitialEvents"),
            // The API server's default minimum request timeout is 1800s; kube always sends one.
            timeout: Duration::from_secs(query.number("timeoutSeconds")?.unwrap_or(1800)),
            bookmarks: query.flag("allowWatchBookmarks"),
            metadata_only,
        })
    }
}

/// Subscribes (under the state lock) and returns the streaming body.
pub(crate) fn open(shared: Arc<Shared>, request: WatchRequest) -> Body {
    let start = match request.start {
        None => WatchStart::Current(request.initial_events),
        Some(rv) => WatchStart::After(rv),
    };
    let subscription = shared.lock().subscribe(request.filter.clone(), start);
    let Some((id, rx)) = subscription else {
        let rv = request.start.unwrap_or_default();
        let status = {
            let mut s = status_body(410, "Expired", &format!("too old resource version: {rv}"));
            s["metadata"] = json!({});
            s
        };
        let line = event_line("ERROR", &status);
        return stream_body(futures::stream::iter([line]));
    };
    let deadline = Box::pin(tokio::time::sleep(request.timeout));
    let phase = Phase::Live { rx, id, deadline };
    let request = Arc::new(request);
    let stream = futures::stream::unfold(phase, move |phase| {
        let shared = shared.clone();
        let request = request.clone();
        async move { next_line(&shared, &request, phase).await }
    });
    stream_body(stream)
}

enum Phase {
    Live {
        rx: mpsc::UnboundedReceiver<WatchMessage>,
        id: u64,
        deadline: Pin<Box<tokio::time::Sleep>>,
    },
    Draining {
        rx: mpsc::UnboundedReceiver<WatchMessage>,
        bookmark: Option<Bytes>,
    },
}

async fn next_line(
    shared: &Shared,
    request: &WatchRequest,
    mut phase: Phase,
) -> Option<(Bytes, Phase)> {
    loop {
        phase = match phase {
            Phase::Live {
                mut rx,
                id,
                mut deadline,
            } => {
                tokio::select! {
                    // The deadline first: a busy watch still ends on time, as on the API server.
                    biased;
                    () = &mut deadline => {
                        // Unsubscribing under the lock fixes which events are queued; the bookmark
                        // after them carries a resourceVersion no unsent event is below.
                        let rv = shared.lock().unsubscribe(id);
                        let bookmark = request.bookmarks.then(|| bookmark_line(request, rv, false));
                        Phase::Draining { rx, bookmark }
                    }
                    message = rx.recv() => {
                        // `None`: the stand-in closed every watch, as a dropped connection would.
                        let line = render(request, message?);
                        return Some((line, Phase::Live { rx, id, deadline }));
                    }
                }
            }
            Phase::Draining { mut rx, bookmark } => {
                return match rx.recv().await {
                    Some(message) => {
                        Some((render(request, message), Phase::Draining { rx, bookmark }))
                    }
                    None => bookmark.map(|b| (b, Phase::Draining { rx, bookmark: None })),
                };
            }
        }
    }
}

fn render(request: &WatchRequest, message: WatchMessage) -> Bytes {
    match message {
        WatchMessage::Event(kind, object) => {
            let object = if request.metadata_only {
                read::to_metadata_only(&object)
            } else {
                object
            };
            event_line(kind.as_str(), &object)
        }
        WatchMessage::InitialEventsEnd(rv) => bookmark_line(request, rv, true),
    }
}

fn bookmark_line(request: &WatchRequest, rv: u64, initial_events_end: bool) -> Bytes {
    let (api_version, kind) = if request.metadata_only {
        (
            "meta.k8s.io/v1".to_owned(),
            "PartialObjectMetadata".to_owned(),
        )
    } else {
        (request.info.key.api_version(), request.info.kind.clone())
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}),
    )
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn stream_body(stream: impl futures::Stream<Item = Bytes> + Send + 'static) -> Body {
    StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b)))).boxed_unsync()
}
