//! Leader election against the in-process API server stand-in: one winner among candidates,
//! takeover after a release and after the leader stops renewing, stepping down under a network
//! partition before anyone takes over, and no two leaders when writes conflict.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use weir_apiserver_standin::{ApiServerStandin, Fault, Verb};

use self::interpose::{Gate, Partitionable};
use super::*;

mod interpose;

const NS: &str = "weir-system";
const LEASE: &str = "weir-operator";

/// Fast timings keeping client-go's proportions.
fn fast() -> LeaseTimings {
    LeaseTimings {
        lease_duration: Duration::from_secs(1),
        renew_deadline: Duration::from_millis(600),
        retry_period: Duration::from_millis(100),
    }
}

/// Renewals with seconds to spare: a test that needs the leader to keep its lease must not
/// lose it to a machine busy with other tests (a 600 ms deadline did under load).
fn tolerant() -> LeaseTimings {
    LeaseTimings {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(200),
    }
}

fn candidate(standin: &ApiServerStandin, identity: &str, timings: LeaseTimings) -> LeaderElection {
    LeaderElection::new(standin.client(), NS, LEASE, identity, timings).expect("valid timings")
}

async fn stored_lease(standin: &ApiServerStandin) -> LeaseSpec {
    let api: Api<Lease> = Api::namespaced(standin.client(), NS);
    api.get(LEASE)
        .await
        .expect("the lease exists")
        .spec
        .expect("a spec")
}

async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} within {limit:?}"))
}

#[tokio::test]
async fn one_of_two_candidates_wins_and_the_other_waits() {
    let standin = ApiServerStandin::new();
    let a = candidate(&standin, "a", tolerant());
    let b = candidate(&standin, "b", tolerant());
    let (mut task_a, mut task_b) = (tokio::spawn(async move { a.acquire().await }), {
        tokio::spawn(async move { b.acquire().await })
    });
    let (winner, loser) = within(Duration::from_secs(5), "a leader", async {
        tokio::select! {
            won = &mut task_a => (("a", won), task_b),
            won = &mut task_b => (("b", won), task_a),
        }
    })
    .await;
    let leadership = winner.1.expect("not panicked").expect("acquired");
    // Two lease durations: the winner keeps renewing, so the loser never takes over.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!loser.is_finished(), "both candidates became leader");
    assert!(leadership.is_leading());
    assert_eq!(
        stored_lease(&standin).await.holder_identity.as_deref(),
        Some(winner.0)
    );
    loser.abort();
}

#[tokio::test]
async fn a_follower_takes_over_at_once_after_a_release() {
    let standin = ApiServerStandin::new();
    // A long lease: only the release can explain a quick takeover.
    let slow = LeaseTimings {
        lease_duration: Duration::from_secs(30),
        renew_deadline: Duration::from_secs(20),
        retry_period: Duration::from_millis(100),
    };
    let a = candidate(&standin, "a", slow)
        .acquire()
        .await
        .expect("a leads");
    let b = candidate(&standin, "b", slow);
    let waiting = tokio::spawn(async move { b.acquire().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    a.release().await.expect("released");
    let b = within(Duration::from_secs(3), "takeover", waiting).await;
    let b = b.expect("not panicked").expect("b leads");
    assert!(b.is_leading());
    let spec = stored_lease(&standin).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test]
async fn a_follower_takes_over_only_after_the_lease_expires() {
    let standin = ApiServerStandin::new();
    let a = candidate(&standin, "a", fast())
        .acquire()
        .await
        .expect("a leads");
    let b = candidate(&standin, "b", fast());
    let waiting = tokio::spawn(async move { b.acquire().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = Instant::now();
    let a_leading = a.subscribe();
    drop(a); // stops renewing without releasing, as a crashed replica would
    assert!(
        !*a_leading.borrow(),
        "subscribers learn that a dropped leadership ended"
    );
    let b = within(Duration::from_secs(5), "takeover", waiting).await;
    let b = b.expect("not panicked").expect("b leads");
    // b saw a's last renewal at most one retry before `stopped`, and waits a lease duration.
    let waited = stopped.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "took over after {waited:?}"
    );
    assert!(b.is_leading());
    assert_eq!(
        stored_lease(&standin).await.holder_identity.as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn a_cut_off_leader_steps_down_before_the_follower_takes_over() {
    let standin = ApiServerStandin::new();
    let cut = Arc::new(AtomicBool::new(false));
    let service = Partitionable {
        inner: standin.service(),
        cut: cut.clone(),
    };
    let a = LeaderElection::new(kube::Client::new(service, NS), NS, LEASE, "a", fast())
        .expect("valid timings")
        .acquire()
        .await
        .expect("a leads");
    let b = candidate(&standin, "b", fast());
    let waiting = tokio::spawn(async move { b.acquire().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let partitioned = Instant::now();
    cut.store(true, Ordering::SeqCst);
    within(Duration::from_secs(2), "a steps down", a.lost()).await;
    let stepped_down = Instant::now();
    assert!(!a.is_leading());
    assert!(
        stepped_down - partitioned <= fast().renew_deadline + Duration::from_millis(200),
        "stepped down {:?} after the partition",
        stepped_down - partitioned
    );
    assert!(
        !waiting.is_finished(),
        "b took over while a still believed it led"
    );
    let b = within(Duration::from_secs(5), "takeover", waiting).await;
    assert!(b.expect("not panicked").expect("b leads").is_leading());
    assert!(stepped_down + Duration::from_millis(200) < Instant::now());
}

#[tokio::test]
async fn candidates_racing_for_a_free_lease_get_one_winner_and_one_conflict() {
    let standin = ApiServerStandin::new();
    let api: Api<Lease> = Api::namespaced(standin.client(), NS);
    let released = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            lease_duration_seconds: Some(1),
            ..LeaseSpec::default()
        }),
    };
    api.create(&PostParams::default(), &released)
        .await
        .expect("created");
    let gate = Gate {
        inner: standin.service(),
        barrier: Arc::new(tokio::sync::Barrier::new(2)),
        gated: Arc::default(),
    };
    let elect = |identity: &str| {
        LeaderElection::new(
            kube::Client::new(gate.clone(), NS),
            NS,
            LEASE,
            identity,
            fast(),
        )
        .expect("valid timings")
    };
    let (a, b) = (elect("a"), elect("b"));
    let mut task_a = tokio::spawn(async move { a.acquire().await });
    let mut task_b = tokio::spawn(async move { b.acquire().await });
    let (winner, loser) = within(Duration::from_secs(5), "a leader", async {
        tokio::select! {
            won = &mut task_a => ((won, "a"), task_b),
            won = &mut task_b => ((won, "b"), task_a),
        }
    })
    .await;
    let leadership = winner.0.expect("not panicked").expect("acquired");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!loser.is_finished(), "both racing candidates became leader");
    assert!(leadership.is_leading());
    let conflicts = standin
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.code == 409)
        .count();
    assert_eq!(conflicts, 1, "the loser's write was refused as stale");
    assert_eq!(
        stored_lease(&standin).await.holder_identity.as_deref(),
        Some(winner.1)
    );
    loser.abort();
}

#[tokio::test]
async fn conflicting_writes_never_make_two_leaders() {
    let standin = ApiServerStandin::builder().seed(7).build();
    let conflicts = standin.inject(
        Fault::conflict()
            .resource("leases")
            .verb(Verb::Update)
            .probability(0.3),
    );
    let create_conflicts = standin.inject(
        Fault::conflict()
            .resource("leases")
            .verb(Verb::Create)
            .times(2),
    );
    // Who leads, in the order the candidates noticed; pushed under one lock, so a release (or a
    // step-down) is always logged before the takeover it made possible.
    let log: Arc<Mutex<Vec<(&'static str, bool)>>> = Arc::default();
    let mut candidates = Vec::new();
    for identity in ["a", "b", "c"] {
        let election = candidate(&standin, identity, fast());
        let log = log.clone();
        candidates.push(tokio::spawn(async move {
            loop {
                let leadership = election.acquire().await.expect("acquire");
                log.lock().expect("log").push((identity, true));
                // Lead for a while, or until lost.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    () = leadership.lost() => {}
                }
                log.lock().expect("log").push((identity, false));
                leadership.release().await.expect("release");
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for task in &candidates {
        task.abort();
    }
    let log = log.lock().expect("log").clone();
    let mut leader: Option<&str> = None;
    for (identity, leading) in &log {
        if *leading {
            assert_eq!(leader, None, "{identity} led while {leader:?} did: {log:?}");
            leader = Some(identity);
        } else {
            assert_eq!(leader, Some(*identity), "{log:?}");
            leader = None;
        }
    }
    let terms = log.iter().filter(|(_, leading)| *leading).count();
    assert!(
        terms >= 4,
        "too few leadership changes to prove anything: {log:?}"
    );
    assert!(
        standin.fault_hits(conflicts) > 0,
        "no conflict was injected"
    );
    assert_eq!(standin.fault_hits(create_conflicts), 2);
}

#[tokio::test]
async fn an_existing_lease_held_by_a_dead_replica_is_taken_over_after_its_duration() {
    let standin = ApiServerStandin::new();
    let api: Api<Lease> = Api::namespaced(standin.client(), NS);
    let dead = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("gone".to_owned()),
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(Timestamp::now())),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }),
    };
    api.create(&PostParams::default(), &dead)
        .await
        .expect("created");
    let started = Instant::now();
    let a = candidate(&standin, "a", fast())
        .acquire()
        .await
        .expect("a leads");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "took a live-looking lease at once"
    );
    let spec = stored_lease(&standin).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(5));
    assert!(a.is_leading());
}

#[test]
fn timings_that_allow_two_leaders_are_refused() {
    assert!(LeaseTimings::default().validate().is_ok());
    let overlapping = LeaseTimings {
        renew_deadline: Duration::from_secs(20),
        ..LeaseTimings::default()
    };
    assert!(matches!(
        overlapping.validate(),
        Err(Error::LeaseTimings { .. })
    ));
    let no_retry = LeaseTimings {
        retry_period: Duration::from_secs(10),
        ..LeaseTimings::default()
    };
    assert!(no_retry.validate().is_err());
}

#[tokio::test]
async fn a_forbidden_lease_is_an_error_not_an_endless_wait() {
    let standin = ApiServerStandin::new();
    standin.inject(
        Fault::new(weir_apiserver_standin::FaultKind::Status(
            403,
            "Forbidden".to_owned(),
        ))
        .resource("leases"),
    );
    let result = within(
        Duration::from_secs(5),
        "an answer",
        candidate(&standin, "a", fast()).acquire(),
    )
    .await;
    let err = result.err().expect("forbidden");
    assert!(
        matches!(
            err,
            Error::LeaseForbidden {
                verb: "acquire",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("weir-system/weir-operator"),
        "{err}"
    );
}
