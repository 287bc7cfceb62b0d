//! How the daemon uses its threads: one async worker, and tokio's blocking pool for long work.
//!
//! The daemon's async work is small: read a request, look at a few files, answer; watch the
//! spool; wait for crawls to end. One worker thread does all of it, and the request path's short
//! disk work runs in place on it: for `schedule.json` the egg lookup and the writing of one job,
//! for the answers about jobs a read of each project's change counter and a `stat` of the
//! finished log. So a request wakes one thread of ours, usually the same one. Both halves of that
//! matter on a small machine:
//!
//! - With a worker per core, the worker parked on the event loop often handed a request to the
//!   other worker, and the two woke each other: on two cores that cost more than the request.
//! - Handing the worker off for disk work (tokio's `block_in_place`) moves the event loop to
//!   another thread, and where the kernel then places that thread against the client's is luck:
//!   on the client's core each request took 510-518 µs (`http.client`), on the other 374-379 µs,
//!   whether or not hand-offs happened, once both were pinned.
//!
//! Measured with `schedule.json` (1,000 sequential requests per round, the median of 6 rounds,
//! the variants side by side, with throwaway probes on the 2-CPU development machine, 2026-12-06),
//! through Python's `http.client` and a lean client of prepared requests:
//!
//! | workers | the request's disk work                        | http.client | lean       |
//! |---------|------------------------------------------------|-------------|------------|
//! | 2       | handed off (before)                            | 443-490 µs  | 283-320 µs |
//! | 2       | in place                                       | 451 µs      | 276 µs     |
//! | 1       | handed off                                     | 421 µs      | 275 µs     |
//! | 1       | in place, a settle handed off every 256th      | 422-451 µs  | 272-294 µs |
//! | 1       | in place, settles in the background            | 352-395 µs  | 275-307 µs |
//!
//! In-place work hands the worker off itself only before a wait that may be long (a project lock
//! another process holds, a journal to settle, a project to re-list), through [`may_block`], so
//! the other requests go on. Long work (a `listjobs.json` of a long history, an upload, a
//! project's removal, the supervisor's bookkeeping) goes to the blocking pool through
//! [`blocking`], so an answer like `daemonstatus.json` never waits behind it.

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

/// The daemon's runtime: a multi-threaded scheduler with one worker. Multi-threaded, though it
/// has one worker, because only that scheduler can hand its worker's event loop to another thread
/// while the worker waits ([`may_block`]).
pub fn build() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
}

/// Runs filesystem work that may take long on tokio's blocking pool, so that the other requests
/// go on meanwhile and the async worker stays on its thread.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Runs `wait`, a wait that may be long, from code that may be running in place on the async
/// worker: there, the worker's event loop is handed to another thread first, so other requests
/// go on meanwhile. Anywhere else (a blocking-pool thread, a thread of our own, no runtime at
/// all) it simply runs.
///
/// Each wait under way holds a thread, and each hand-off takes one from tokio's blocking pool
/// (512): hundreds of requests all waiting at once for a lock another instance holds would use
/// it up, and the event loop would then wait for the first of them to end.
pub fn may_block<T>(wait: impl FnOnce() -> T) -> T {
    if on_multi_thread_runtime() { tokio::task::block_in_place(wait) } else { wait() }
}

/// Whether this thread belongs to a multi-threaded tokio runtime, where `block_in_place` is
/// allowed (on a worker it hands the worker off; on a blocking-pool thread it just runs).
fn on_multi_thread_runtime() -> bool {
    Handle::try_current().is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wait_in_place_on_the_one_worker_lets_the_other_tasks_run() {
        let runtime = build().unwrap();
        runtime.block_on(async {
            let (send, receive) = std::sync::mpsc::channel();
            // In place on the worker, as a schedule waiting for its project's lock is.
            let waiter = tokio::spawn(async move { may_block(|| receive.recv_timeout(Duration::from_secs(10))) });
            let sender = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                send.send(()).unwrap();
            });
            sender.await.unwrap();
            assert!(waiter.await.unwrap().is_ok(), "the other task ran while the first one waited");
        });
    }

    #[test]
    fn a_wait_off_the_worker_simply_runs() {
        assert_eq!(may_block(|| 7), 7, "no runtime at all");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(async { may_block(|| 8) }), 8, "a current-thread runtime");
    }
}
