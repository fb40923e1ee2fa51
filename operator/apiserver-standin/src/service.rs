//! The tower `Service` kube's `Client` sends its HTTP requests to. It routes each request to the
//! verb handlers under the state lock, answers errors with `metav1.Status` bodies, applies
//! injected faults before anything is served, records every request for inspection, and hands
//! watches a streaming body.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::{
    Shared,
    delete::{self, DeleteOptions},
    error::Error,
    faults::{self, FaultTarget},
    inspect::RequestRecord,
    patch::PatchType,
    read,
    registry::KindInfo,
    route::{self, Query, Route, Verb},
    scale,
    selector::{FieldSelector, LabelSelector},
    store::State,
    watch::{self, Body, WatchRequest},
    write::{self, PatchRequest, Scope},
};

/// The stand-in as a tower service; hand it to `kube::Client::new` (or use
/// [`ApiServerStandin::client`](crate::ApiServerStandin::client)).
#[derive(Clone)]
pub struct StandinService {
    pub(crate) shared: Arc<Shared>,
}

impl tower_service::Service<Request<kube::client::Body>> for StandinService {
    type Response = Response<Body>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(serve(shared, request))
    }
}

/// What a handler answers.
enum Reply {
    Json(u16, Value),
    Watch(Box<WatchRequest>),
}

async fn serve(
    shared: Arc<Shared>,
    request: Request<kube::client::Body>,
) -> Result<Response<Body>, Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect_bytes().await.map_err(Error::ReadBody)?;
    let header_str = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let metadata_only = read::wants_metadata_only(header_str(header::ACCEPT).as_deref());
    let content_type = header_str(header::CONTENT_TYPE);
    let query = Query::parse(parts.uri.query());
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        verb: None,
        subresource: None,
        patch_type: None,
        field_manager: query.get("fieldManager").map(str::to_owned),
        code: 200,
    };
    if parts.uri.path() == "/version" {
        return Ok(json_response(200, &version()));
    }
    let outcome = {
        let mut state = shared.lock();
        let incoming = Incoming {
            query: &query,
            body: &body,
            content_type: content_type.as_deref(),
            metadata_only,
        };
        let outcome = route_request(
            &mut state,
            &parts.method,
            parts.uri.path(),
            &incoming,
            &mut record,
        );
        record.code = match &outcome {
            Ok(Routed::Reply(Reply::Json(code, _))) => *code,
            Ok(Routed::Reply(Reply::Watch(_))) => 200,
            Ok(Routed::Fault(_, err)) | Err(err) => err.code(),
        };
        state.requests.push(record);
        outcome
    };
    match outcome {
        Ok(Routed::Reply(Reply::Json(code, value))) => {
            let value = if metadata_only && code < 300 {
                read::to_metadata_only(&value)
            } else {
                value
            };
            Ok(json_response(code, &value))
        }
        Ok(Routed::Reply(Reply::Watch(watch))) => {
            Ok(streaming_response(watch::open(shared, *watch)))
        }
        Ok(Routed::Fault(delay, err)) => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            match err {
                Error::Transport(_) => Err(err),
                err => Ok(json_response(err.code(), &err.to_status())),
            }
        }
        Err(err) => Ok(json_response(err.code(), &err.to_status())),
    }
}

enum Routed {
    Reply(Reply),
    Fault(Option<std::time::Duration>, Error),
}

/// The parts of a request the handlers read.
struct Incoming<'a> {
    query: &'a Query,
    body: &'a Bytes,
    content_type: Option<&'a str>,
    metadata_only: bool,
}

fn route_request(
    state: &mut State,
    method: &http::Method,
    path: &str,
    incoming: &Incoming<'_>,
    record: &mut RequestRecord,
) -> Result<Routed, Error> {
    let query = incoming.query;
    let route = route::parse_path(path).ok_or_else(|| {
        Error::NotFound("the server could not find the requested resource".into())
    })?;
    let verb = route::verb_of(method, &route, query)?;
    record.verb = Some(verb);
    record.subresource.clone_from(&route.subresource);
    let patch_type = if verb == Verb::Patch {
        Some(PatchType::from_content_type(
            incoming.content_type.unwrap_or_default(),
        )?)
    } else {
        None
    };
    record.patch_type = patch_type;
    let target = FaultTarget {
        verb,
        resource: &route.key.plural,
        namespace: route.namespace.as_deref(),
        name: route.name.as_deref(),
        subresource: route.subresource.as_deref(),
    };
    if let Some(fault) = faults::pick(state, &target) {
        let (delay, err) = faults::outcome(&fault);
        return Ok(Routed::Fault(delay, err));
    }
    let info = state.registry.get(&route.key).cloned().ok_or_else(|| {
        Error::NotFound("the server could not find the requested resource".into())
    })?;
    if !info.namespaced && route.namespace.is_some() {
        return Err(Error::NotFound(
            "the server could not find the requested resource".into(),
        ));
    }
    let reply = dispatch(state, verb, &route, &info, incoming, patch_type)?;
    if !matches!(verb, Verb::Get | Verb::List | Verb::Watch) {
        delete::sweep_foreground(state);
    }
    Ok(Routed::Reply(reply))
}

fn dispatch(
    state: &mut State,
    verb: Verb,
    route: &Route,
    info: &KindInfo,
    incoming: &Incoming<'_>,
    patch_type: Option<PatchType>,
) -> Result<Reply, Error> {
    let (query, body) = (incoming.query, incoming.body.as_ref());
    let namespace = route.namespace.as_deref();
    let sub = route.subresource.as_deref();
    let key = || write::key_of(info, namespace, route.name.as_deref().unwrap_or_default());
    let selectors = || -> Result<(LabelSelector, FieldSelector), Error> {
        Ok((
            LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
            FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?,
        ))
    };
    let decode = || serde_json::from_slice::<Value>(body).map_err(Error::Decode);
    let reply = match (verb, sub) {
        (_, Some(s)) if route.name.is_none() => {
            return Err(Error::NotFound(format!(
                "subresource {s:?} needs an object name"
            )));
        }
        (Verb::List, None) => {
            let (labels, fields) = selectors()?;
            Reply::Json(200, read::list(state, info, namespace, &labels, &fields))
        }
        (Verb::Watch, None) => {
            let watch = WatchRequest::parse(info, namespace, query, incoming.metadata_only)?;
            Reply::Watch(Box::new(watch))
        }
        (Verb::Create, None) => Reply::Json(
            201,
            write::create(state, info, namespace, decode()?, Default::default())?,
        ),
        (Verb::Get, Some("scale")) => Reply::Json(200, scale::get(state, info, &key()?)?),
        (Verb::Update, Some("scale")) => {
            Reply::Json(200, scale::write(state, info, &key()?, None, body)?)
        }
        (Verb::Patch, Some("scale")) => {
            Reply::Json(200, scale::write(state, info, &key()?, patch_type, body)?)
        }
        (Verb::Get, sub) => {
            if Scope::of(sub)? == Scope::Status && !info.status {
                return Err(Error::NotFound(format!(
                    "{} has no status subresource",
                    info.key.qualified()
                )));
            }
            Reply::Json(200, read::get(state, info, &key()?)?)
        }
        (Verb::Update, sub) => Reply::Json(
            200,
            write::replace(state, info, &key()?, Scope::of(sub)?, decode()?)?,
        ),
        (Verb::Patch, sub) => {
            let request = PatchRequest {
                patch_type: patch_type.unwrap_or(PatchType::Merge),
                body,
                field_manager: query.get("fieldManager"),
                force: query.flag("force"),
            };
            let (code, object) = write::patch(state, info, &key()?, Scope::of(sub)?, &request)?;
            Reply::Json(code, object)
        }
        (Verb::Delete, None) => Reply::Json(
            200,
            delete::delete(state, info, &key()?, &DeleteOptions::parse(body, query)?)?,
        ),
        (Verb::DeleteCollection, None) => {
            let (labels, fields) = selectors()?;
            let options = DeleteOptions::parse(body, query)?;
            Reply::Json(
                200,
                delete::delete_collection(state, info, namespace, &labels, &fields, &options)?,
            )
        }
        (verb, Some(s)) => {
            return Err(Error::MethodNotAllowed(format!(
                "{verb:?} is not served on subresource {s:?}"
            )));
        }
    };
    Ok(reply)
}

/// A JSON answer with this status code.
pub(crate) fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed_unsync());
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn streaming_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::TRANSFER_ENCODING,
        header::HeaderValue::from_static("chunked"),
    );
    response
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-weir-standin",
        "platform": "linux/amd64",
    })
}
