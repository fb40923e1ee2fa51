//! The [`StateBackend`] contract, checked against every backend.
//!
//! Each `check_*` function states one part of the contract against a `&mut dyn StateBackend`;
//! each test runs its check on a fresh [`MemoryBackend`] and a fresh [`RocksDbBackend`], and a
//! property test drives both with random writes next to a plain `HashMap` model.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::{KeyGroup, MemoryBackend, RocksDbBackend, StateBackend, StateId, WriteOp};

const COUNTS: StateId = StateId(1);
const SUMS: StateId = StateId(2);

fn on_both_backends(check: impl Fn(&mut dyn StateBackend)) {
    check(&mut MemoryBackend::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rocks = RocksDbBackend::open(dir.path()).expect("open rocksdb");
    check(&mut rocks);
}

fn put(state: StateId, key_group: KeyGroup, key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        state,
        key_group,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn delete(state: StateId, key_group: KeyGroup, key: &[u8]) -> WriteOp {
    WriteOp::Delete {
        state,
        key_group,
        key: key.to_vec(),
    }
}

fn entries(pairs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn check_get_sees_latest_put_and_none_after_delete(backend: &mut dyn StateBackend) {
    assert_eq!(backend.get(COUNTS, 7, b"k").expect("get"), None);
    backend.put(COUNTS, 7, b"k", b"1").expect("put");
    assert_eq!(
        backend.get(COUNTS, 7, b"k").expect("get"),
        Some(b"1".to_vec())
    );
    backend.put(COUNTS, 7, b"k", b"2").expect("overwrite");
    assert_eq!(
        backend.get(COUNTS, 7, b"k").expect("get"),
        Some(b"2".to_vec())
    );
    backend
        .put(COUNTS, 7, b"", b"")
        .expect("put empty key and value");
    assert_eq!(backend.get(COUNTS, 7, b"").expect("get"), Some(Vec::new()));

    backend.delete(COUNTS, 7, b"k").expect("delete");
    assert_eq!(backend.get(COUNTS, 7, b"k").expect("get"), None);
    backend
        .delete(COUNTS, 7, b"never-written")
        .expect("deleting a missing key is fine");
    assert_eq!(backend.get(COUNTS, 7, b"").expect("get"), Some(Vec::new()));
}

fn check_write_batch_applies_ops_in_order(backend: &mut dyn StateBackend) {
    backend.put(COUNTS, 0, b"old", b"x").expect("put");
    backend
        .write_batch(vec![
            put(COUNTS, 0, b"a", b"1"),
            put(COUNTS, 0, b"b", b"1"),
            delete(COUNTS, 0, b"b"),
            delete(COUNTS, 0, b"c"),
            put(COUNTS, 0, b"c", b"3"),
            put(COUNTS, 0, b"a", b"2"),
            delete(COUNTS, 0, b"old"),
            put(SUMS, 9, b"a", b"s"),
        ])
        .expect("write batch");
    assert_eq!(
        backend.scan_prefix(COUNTS, 0, b"").expect("scan"),
        entries(&[(b"a", b"2"), (b"c", b"3")])
    );
    assert_eq!(
        backend.get(SUMS, 9, b"a").expect("get"),
        Some(b"s".to_vec())
    );
    backend
        .write_batch(Vec::new())
        .expect("an empty batch is fine");
}

fn check_scan_prefix_returns_matching_keys_in_order(backend: &mut dyn StateBackend) {
    for key in [
        &b"b2"[..],
        b"a",
        b"b",
        b"b1",
        b"c",
        b"b\xff",
        b"\xff\xff",
        b"\xff",
    ] {
        backend.put(COUNTS, 3, key, key).expect("put");
    }
    let scan = |backend: &dyn StateBackend, prefix: &[u8]| -> Vec<Vec<u8>> {
        let found = backend.scan_prefix(COUNTS, 3, prefix).expect("scan");
        found
            .into_iter()
            .map(|(key, value)| {
                assert_eq!(key, value);
                key
            })
            .collect()
    };
    assert_eq!(
        scan(backend, b"b"),
        [&b"b"[..], b"b1", b"b2", b"b\xff"].map(<[u8]>::to_vec)
    );
    assert_eq!(scan(backend, b"b1"), [b"b1".to_vec()]);
    assert_eq!(
        scan(backend, b"\xff"),
        [b"\xff".to_vec(), b"\xff\xff".to_vec()]
    );
    assert_eq!(scan(backend, b"zzz"), Vec::<Vec<u8>>::new());
    assert_eq!(
        scan(backend, b""),
        [
            &b"a"[..],
            b"b",
            b"b1",
            b"b2",
            b"b\xff",
            b"c",
            b"\xff",
            b"\xff\xff"
        ]
        .map(<[u8]>::to_vec)
    );
}

fn check_states_and_key_groups_never_leak_into_each_others_scans(backend: &mut dyn StateBackend) {
    let states = [StateId(0), COUNTS, SUMS, StateId(u16::MAX)];
    let key_groups = [0, 1, 2, 255, 256, u16::MAX - 1, u16::MAX];
    // Key group 2 holds entries of the states on either side of COUNTS, but none of COUNTS.
    let stored = |state: StateId, key_group: KeyGroup| state != COUNTS || key_group != 2;
    for state in states {
        for key_group in key_groups.into_iter().filter(|&g| stored(state, g)) {
            let value = format!("{}/{key_group}", state.0).into_bytes();
            backend.put(state, key_group, b"k", &value).expect("put");
            backend.put(state, key_group, b"\xff", &value).expect("put");
        }
    }

    for state in states {
        for key_group in key_groups.into_iter().filter(|&g| stored(state, g)) {
            let value = format!("{}/{key_group}", state.0).into_bytes();
            assert_eq!(
                backend.scan_prefix(state, key_group, b"").expect("scan"),
                vec![(b"k".to_vec(), value.clone()), (b"\xff".to_vec(), value)],
                "scan_prefix of state {} in key group {key_group}",
                state.0,
            );
        }
        let expected: Vec<_> = key_groups
            .into_iter()
            .filter(|&g| stored(state, g))
            .flat_map(|key_group| {
                let value = format!("{}/{key_group}", state.0).into_bytes();
                [
                    (key_group, b"k".to_vec(), value.clone()),
                    (key_group, b"\xff".to_vec(), value),
                ]
            })
            .collect();
        assert_eq!(
            backend.scan_state(state).expect("scan state"),
            expected,
            "scan_state of state {}",
            state.0
        );
    }
    assert!(
        backend
            .scan_prefix(COUNTS, 2, b"")
            .expect("scan")
            .is_empty()
    );
    assert!(
        backend
            .scan_state(StateId(3))
            .expect("scan state")
            .is_empty()
    );
}

fn check_delete_range_removes_exactly_the_range(backend: &mut dyn StateBackend) {
    let keys: [&[u8]; 6] = [b"", b"a", b"ab", b"b", b"c", b"\xff"];
    let neighbours = [(COUNTS, 6), (COUNTS, 8), (SUMS, 7), (StateId(0), 7)];
    for key in keys {
        backend.put(COUNTS, 7, key, b"v").expect("put");
        for (state, key_group) in neighbours {
            backend.put(state, key_group, key, b"n").expect("put");
        }
    }
    let left = |backend: &dyn StateBackend| -> Vec<Vec<u8>> {
        let found = backend.scan_prefix(COUNTS, 7, b"").expect("scan");
        found.into_iter().map(|(key, _)| key).collect()
    };

    backend
        .delete_range(COUNTS, 7, b"b", Some(b"a"))
        .expect("an inverted range deletes nothing");
    backend
        .delete_range(COUNTS, 7, b"a", Some(b"a"))
        .expect("an empty range deletes nothing");
    assert_eq!(left(backend).len(), keys.len());

    backend
        .delete_range(COUNTS, 7, b"a", Some(b"b"))
        .expect("delete [a, b)");
    assert_eq!(
        left(backend),
        [b"".as_slice(), b"b", b"c", b"\xff"].map(<[u8]>::to_vec)
    );
    backend
        .delete_range(COUNTS, 7, b"c", None)
        .expect("delete [c, end)");
    assert_eq!(left(backend), [b"".as_slice(), b"b"].map(<[u8]>::to_vec));
    backend
        .delete_range(COUNTS, 7, b"", None)
        .expect("delete the whole state in the key group");
    assert!(left(backend).is_empty());

    for (state, key_group) in neighbours {
        assert_eq!(
            backend
                .scan_prefix(state, key_group, b"")
                .expect("scan")
                .len(),
            keys.len(),
            "state {} in key group {key_group} is untouched",
            state.0
        );
    }

    // The last state of the last key group has no encoded upper bound.
    let last = StateId(u16::MAX);
    backend.put(last, u16::MAX, b"a", b"v").expect("put");
    backend.put(last, u16::MAX, b"b", b"v").expect("put");
    backend
        .delete_range(last, u16::MAX, b"b", None)
        .expect("delete to the very end");
    assert_eq!(
        backend.scan_prefix(last, u16::MAX, b"").expect("scan"),
        entries(&[(b"a", b"v")])
    );
}

#[test]
fn delete_range_removes_exactly_the_range() {
    on_both_backends(check_delete_range_removes_exactly_the_range);
}

#[test]
fn get_sees_latest_put_and_none_after_delete() {
    on_both_backends(check_get_sees_latest_put_and_none_after_delete);
}

#[test]
fn write_batch_applies_ops_in_order() {
    on_both_backends(check_write_batch_applies_ops_in_order);
}

#[test]
fn scan_prefix_returns_matching_keys_in_order() {
    on_both_backends(check_scan_prefix_returns_matching_keys_in_order);
}

#[test]
fn states_and_key_groups_never_leak_into_each_others_scans() {
    on_both_backends(check_states_and_key_groups_never_leak_into_each_others_scans);
}

/// One write, from a small key space so that random sequences hit the same keys often.
fn write_op() -> impl Strategy<Value = WriteOp> {
    let state = (0u16..3).prop_map(StateId);
    let key_group = prop::sample::select(vec![0, 1, 300, u16::MAX]);
    let key = prop::collection::vec(prop::sample::select(vec![0u8, 1, 0xff]), 0..3);
    let value = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        (state.clone(), key_group.clone(), key.clone(), value).prop_map(
            |(state, key_group, key, value)| WriteOp::Put {
                state,
                key_group,
                key,
                value
            }
        ),
        (state, key_group, key).prop_map(|(state, key_group, key)| WriteOp::Delete {
            state,
            key_group,
            key
        }),
    ]
}

/// Applies a single-op group with `put`/`delete`, a larger one with `write_batch`.
fn apply(backend: &mut dyn StateBackend, mut group: Vec<WriteOp>) {
    match (group.pop(), group.is_empty()) {
        (
            Some(WriteOp::Put {
                state,
                key_group,
                key,
                value,
            }),
            true,
        ) => backend.put(state, key_group, &key, &value).expect("put"),
        (
            Some(WriteOp::Delete {
                state,
                key_group,
                key,
            }),
            true,
        ) => backend.delete(state, key_group, &key).expect("delete"),
        (last, _) => {
            group.extend(last);
            backend.write_batch(group).expect("write batch");
        }
    }
}

type ModelKey = (StateId, KeyGroup, Vec<u8>);

fn apply_to_model(model: &mut HashMap<ModelKey, Vec<u8>>, op: WriteOp) {
    match op {
        WriteOp::Put {
            state,
            key_group,
            key,
            value,
        } => {
            model.insert((state, key_group, key), value);
        }
        WriteOp::Delete {
            state,
            key_group,
            key,
        } => {
            model.remove(&(state, key_group, key));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_writes_leave_both_backends_equal_to_a_hashmap_model(
        groups in prop::collection::vec(prop::collection::vec(write_op(), 1..5), 0..40),
    ) {
        let mut model = HashMap::new();
        let mut memory = MemoryBackend::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rocks = RocksDbBackend::open(dir.path()).expect("open rocksdb");
        for group in groups {
            for op in group.clone() {
                apply_to_model(&mut model, op);
            }
            apply(&mut memory, group.clone());
            apply(&mut rocks, group);
        }

        for state in (0..3).map(StateId) {
            let mut expected: Vec<_> = model
                .iter()
                .filter(|((s, _, _), _)| *s == state)
                .map(|((_, key_group, key), value)| (*key_group, key.clone(), value.clone()))
                .collect();
            expected.sort();
            prop_assert_eq!(&memory.scan_state(state).expect("scan memory"), &expected);
            prop_assert_eq!(&rocks.scan_state(state).expect("scan rocks"), &expected);

            for key_group in [0, 1, 300, u16::MAX] {
                let in_group: Vec<_> = expected
                    .iter()
                    .filter(|(g, _, _)| *g == key_group)
                    .map(|(_, key, value)| (key.clone(), value.clone()))
                    .collect();
                prop_assert_eq!(&memory.scan_prefix(state, key_group, b"").expect("scan"), &in_group);
                prop_assert_eq!(&rocks.scan_prefix(state, key_group, b"").expect("scan"), &in_group);
                for (key, value) in &in_group {
                    prop_assert_eq!(memory.get(state, key_group, key).expect("get"), Some(value.clone()));
                    prop_assert_eq!(rocks.get(state, key_group, key).expect("get"), Some(value.clone()));
                }
            }
        }
    }
}
