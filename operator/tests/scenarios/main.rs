//! Scenario tests: the real controller against the in-process API stand-in, with a simulated
//! job behind the job-control trait. Each test states one claim about the operator's
//! behaviour; waits are generous and no test asserts on timing.

// The fixtures (the simulated job, the harness) are test code outside `#[test]` functions: a
// failed unwrap there is a failed test, as in the tests themselves.
#![allow(clippy::unwrap_used)]

mod fake_job;
mod harness;

mod crash;
mod faults;
mod lifecycle;
mod savepoints;
mod upgrades;
