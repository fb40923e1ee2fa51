//! The crate's own tokio runtime, so blocking callers can drive the async `object_store`.
//!
//! The engine is thread-based: tasks, upload threads and the coordinator are std threads. Every
//! storage call runs its future to completion with [`block_on`] on the calling thread, while one
//! lazily started multi-thread runtime (two workers) owns the I/O and timer drivers and runs
//! what `object_store` spawns (multipart parts, local file reads). `Runtime::block_on` takes
//! `&self`, so any number of threads can call at once.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::{Error, Result};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("weir-checkpoint-io")
                .enable_all()
                .build()
                .map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|reason| Error::Runtime {
            reason: reason.clone(),
        })
}

/// Runs `future` to completion on the crate's runtime, blocking the calling thread.
///
/// Called from inside some tokio runtime (an async test, or an engine thread that happens to
/// be a runtime worker), `Runtime::block_on` would panic; the future then runs on a scoped
/// helper thread, which has no runtime context.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    if Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|scope| {
        let helper = scope.spawn(|| runtime.block_on(future));
        match helper.join() {
            Ok(output) => Ok(output),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_works_from_many_threads_at_once() {
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                std::thread::spawn(move || {
                    block_on(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        i * 2
                    })
                    .expect("runtime")
                })
            })
            .collect();
        let results: Vec<u64> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        assert_eq!(results, (0..8).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn block_on_inside_another_runtime_does_not_panic() {
        let outer = Builder::new_current_thread().build().expect("runtime");
        let value = outer.block_on(async { block_on(async { 7 }).expect("runtime") });
        assert_eq!(value, 7);
    }
}
