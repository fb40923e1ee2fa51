//! Fault injection: a test describes which requests fail (by verb, resource, namespace, name,
//! subresource), how (409, 500, 429, a slow answer, a hung request that then fails the
//! transport), how often (the next `n` matches, or each match with a probability), and the
//! stand-in answers those requests with the fault instead of serving them. Faults hit before the
//! request touches the store, so a faulted write never happens.

use std::time::Duration;

use rand::Rng;

use crate::{error::Error, route::Verb, store::State};

/// What a faulted request gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 409 `Conflict`, as for a stale resourceVersion.
    Conflict,
    /// 500 `InternalError`.
    InternalError,
    /// 429 `TooManyRequests` (API priority and fairness throttling).
    TooManyRequests,
    /// No answer for this long, then 504 `Timeout`.
    Timeout(Duration),
    /// No answer for this long, then the transport fails (kube reports `Error::Service`), as a
    /// dropped connection would.
    Hang(Duration),
    /// Any status code and reason.
    Status(u16, String),
}

/// A fault rule, built with the constructors and narrowed with the builder methods.
///
/// ```
/// use weir_apiserver_standin::{Fault, Verb};
/// let fault = Fault::conflict().verb(Verb::Patch).resource("flinkjobs").subresource("status").times(2);
/// ```
#[derive(Clone, Debug)]
pub struct Fault {
    kind: FaultKind,
    verb: Option<Verb>,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<Option<String>>,
    times: Option<u32>,
    probability: f64,
}

impl Fault {
    /// A fault of this kind that matches every request, every time.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            verb: None,
            resource: None,
            namespace: None,
            name: None,
            subresource: None,
            times: None,
            probability: 1.0,
        }
    }
    /// 409 Conflict.
    pub fn conflict() -> Self {
        Fault::new(FaultKind::Conflict)
    }
    /// 500 InternalError.
    pub fn internal_error() -> Self {
        Fault::new(FaultKind::InternalError)
    }
    /// 429 TooManyRequests.
    pub fn too_many_requests() -> Self {
        Fault::new(FaultKind::TooManyRequests)
    }
    /// Answer 504 Timeout after `delay`.
    pub fn timeout(delay: Duration) -> Self {
        Fault::new(FaultKind::Timeout(delay))
    }
    /// Hang for `delay`, then fail the transport.
    pub fn hang(delay: Duration) -> Self {
        Fault::new(FaultKind::Hang(delay))
    }
    /// Only requests with this verb.
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }
    /// Only requests to this resource (plural, e.g. `flinkjobs`).
    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_owned());
        self
    }
    /// Only requests in this namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }
    /// Only requests for the object with this name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
    /// Only requests to this subresource (`status`, `scale`).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(Some(subresource.to_owned()));
        self
    }
    /// Only requests to the main resource (no subresource).
    pub fn main_resource(mut self) -> Self {
        self.subresource = Some(None);
        self
    }
    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    /// Each matching request fails with this probability (seeded, so runs repeat).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p.clamp(0.0, 1.0);
        self
    }

    fn matches(&self, request: &FaultTarget<'_>) -> bool {
        self.verb.is_none_or(|v| v == request.verb)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| r == request.resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| Some(n) == request.namespace)
            && self.name.as_deref().is_none_or(|n| Some(n) == request.name)
            && self
                .subresource
                .as_ref()
                .is_none_or(|s| s.as_deref() == request.subresource)
    }
}

/// Identifies an injected fault, to read its hit count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultId(pub(crate) u64);

pub(crate) struct FaultRule {
    pub id: FaultId,
    pub fault: Fault,
    pub hits: u32,
}

/// The parts of a request faults match on.
pub(crate) struct FaultTarget<'a> {
    pub verb: Verb,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub subresource: Option<&'a str>,
}

/// The first active fault matching the request, counted as hit.
pub(crate) fn pick(state: &mut State, target: &FaultTarget<'_>) -> Option<FaultKind> {
    let State { faults, rng, .. } = state;
    for rule in faults.iter_mut() {
        let exhausted = rule.fault.times.is_some_and(|n| rule.hits >= n);
        if exhausted || !rule.fault.matches(target) {
            continue;
        }
        if rule.fault.probability < 1.0 && rng.random::<f64>() >= rule.fault.probability {
            continue;
        }
        rule.hits += 1;
        return Some(rule.fault.kind.clone());
    }
    None
}

/// What the service does with a picked fault: how long to wait, then the error to answer with.
pub(crate) fn outcome(kind: &FaultKind) -> (Option<Duration>, Error) {
    let injected = |code: u16, reason: &str, message: &str| Error::Injected {
        code,
        reason: reason.to_owned(),
        message: format!("injected fault: {message}"),
    };
    match kind {
        FaultKind::Conflict => (
            None,
            injected(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
        ),
        FaultKind::InternalError => (
            None,
            injected(
                500,
                "InternalError",
                "an error on the server has prevented the request from succeeding",
            ),
        ),
        FaultKind::TooManyRequests => (
            None,
            injected(
                429,
                "TooManyRequests",
                "too many requests, please try again later",
            ),
        ),
        FaultKind::Timeout(delay) => (
            Some(*delay),
            injected(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
        ),
        FaultKind::Hang(delay) => (
            Some(*delay),
            Error::Transport(format!("no answer within {delay:?}")),
        ),
        FaultKind::Status(code, reason) => (None, injected(*code, reason, reason)),
    }
}
