//! Tower services between kube's client and the API server stand-in, to stage what a real
//! cluster does by chance: a network partition ([`Partitionable`]) and two writes racing for
//! the same resourceVersion ([`Gate`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use weir_apiserver_standin::StandinService;

/// The stand-in behind a switch: while cut off, requests hang, as across a network partition.
#[derive(Clone)]
pub(super) struct Partitionable {
    pub(super) inner: StandinService,
    pub(super) cut: Arc<AtomicBool>,
}

type Req = http::Request<kube::client::Body>;

impl tower_service::Service<Req> for Partitionable {
    type Response = <StandinService as tower_service::Service<Req>>::Response;
    type Error = <StandinService as tower_service::Service<Req>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if self.cut.load(Ordering::SeqCst) {
            Box::pin(std::future::pending())
        } else {
            Box::pin(self.inner.call(request))
        }
    }
}

/// The stand-in with a gate: the first two lease updates wait for each other, so two
/// candidates' read-then-write windows are sure to overlap.
#[derive(Clone)]
pub(super) struct Gate {
    pub(super) inner: StandinService,
    pub(super) barrier: Arc<tokio::sync::Barrier>,
    pub(super) gated: Arc<AtomicUsize>,
}

impl tower_service::Service<Req> for Gate {
    type Response = <StandinService as tower_service::Service<Req>>::Response;
    type Error = <StandinService as tower_service::Service<Req>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let is_update =
            request.method() == http::Method::PUT && request.uri().path().contains("/leases/");
        let gate = is_update && self.gated.fetch_add(1, Ordering::SeqCst) < 2;
        let (barrier, mut inner) = (self.barrier.clone(), self.inner.clone());
        Box::pin(async move {
            if gate {
                barrier.wait().await;
            }
            inner.call(request).await
        })
    }
}
