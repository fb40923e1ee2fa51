//! The start of a job's sources, in a fixed order: a source subtask with nothing to read (more
//! subtasks than files, say) ends before any source subtask of the process emits a row.
//!
//! Without it, whether such an empty subtask's end reached a downstream task before the rows of
//! the busy subtasks depended on thread scheduling. Until it arrives, the empty channel holds
//! the downstream watermark back, so which rows were late (and dropped) changed from run to
//! run. Every source task polls once, an empty one sends its end, and only then, when every
//! local source task has arrived, do the others go on. Downstream tasks read their local
//! queue in order, so they see the ends first. The wait is bounded ([`START_WAIT`]): a source
//! that is slow to start (or a task that never starts) delays the others, never stops them.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest a source waits for the other source tasks of its process to arrive.
pub const START_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct StartGate {
    expected: usize,
    arrived: Mutex<usize>,
    all: Condvar,
}

impl StartGate {
    /// A gate for `expected` source tasks.
    pub fn new(expected: usize) -> Self {
        StartGate {
            expected,
            arrived: Mutex::new(0),
            all: Condvar::new(),
        }
    }

    /// Arrive, and wait until every source task has (or `limit` has passed).
    pub fn arrive_and_wait(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut arrived = self.arrived.lock().unwrap_or_else(|p| p.into_inner());
        *arrived += 1;
        self.all.notify_all();
        while *arrived < self.expected {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            arrived = match self.all.wait_timeout(arrived, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_gate_opens_when_every_source_arrived() {
        let gate = Arc::new(StartGate::new(3));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let gate = gate.clone();
                std::thread::spawn(move || gate.arrive_and_wait(Duration::from_secs(60)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        assert!(waiting.iter().all(|t| !t.is_finished()), "two of three");
        gate.arrive_and_wait(Duration::from_secs(60));
        for t in waiting {
            t.join().expect("waiter");
        }
    }

    #[test]
    fn a_source_that_never_arrives_delays_the_others_only_up_to_the_limit() {
        let gate = StartGate::new(2);
        let started = Instant::now();
        gate.arrive_and_wait(Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
