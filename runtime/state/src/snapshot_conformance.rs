//! The snapshot half of the [`StateBackend`] contract, checked against every backend:
//! [`StateBackend::for_each_entry`] and [`StateBackend::snapshot`].
//!
//! Snapshots of both backends are read back the way a restore would (RocksDB's folder opened
//! read-only, the in-memory entries as they are) and compared with what was written, after the
//! live backend has moved on.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use crate::{
    Entry, KeyGroup, LocalSnapshot, MemoryBackend, RocksDbBackend, StateBackend, StateId, canonical,
};

fn on_both_backends(check: impl Fn(&mut dyn StateBackend, &Path)) {
    let scratch = tempfile::tempdir().expect("tempdir");
    check(&mut MemoryBackend::new(), scratch.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rocks = RocksDbBackend::open(dir.path()).expect("open rocksdb");
    check(&mut rocks, scratch.path());
}

fn collect(
    backend: &dyn StateBackend,
    key_groups: std::ops::RangeInclusive<KeyGroup>,
) -> Vec<(KeyGroup, Entry)> {
    let mut out = Vec::new();
    backend
        .for_each_entry(key_groups, &mut |key_group, entry| {
            out.push((key_group, entry.clone()));
            Ok(())
        })
        .expect("for_each_entry");
    out
}

/// What a snapshot holds, grouped by key group, whichever backend made it.
fn read_snapshot(snapshot: &LocalSnapshot) -> BTreeMap<KeyGroup, Vec<Entry>> {
    match snapshot {
        LocalSnapshot::Entries(groups) => groups.clone(),
        LocalSnapshot::RocksDb { dir, .. } => {
            let restored = RocksDbBackend::open_read_only(dir).expect("open snapshot");
            let mut groups: BTreeMap<KeyGroup, Vec<Entry>> = BTreeMap::new();
            for (key_group, entry) in collect(&restored, 0..=KeyGroup::MAX) {
                groups.entry(key_group).or_default().push(entry);
            }
            groups
        }
    }
}

fn entry(state: u16, key: &[u8], value: &[u8]) -> Entry {
    Entry {
        state: StateId(state),
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn check_for_each_entry_respects_the_key_group_range(backend: &mut dyn StateBackend, _: &Path) {
    for key_group in [0, 1, 2, 3, 300, u16::MAX] {
        for state in [StateId(2), StateId(0)] {
            backend
                .put(state, key_group, b"k", &key_group.to_be_bytes())
                .expect("put");
        }
    }
    let groups_of = |found: Vec<(KeyGroup, Entry)>| -> Vec<(KeyGroup, u16)> {
        found
            .into_iter()
            .map(|(key_group, entry)| (key_group, entry.state.0))
            .collect()
    };
    assert_eq!(
        groups_of(collect(backend, 1..=3)),
        vec![(1, 0), (1, 2), (2, 0), (2, 2), (3, 0), (3, 2)],
        "inclusive on both ends, ordered by key group then state"
    );
    assert_eq!(
        groups_of(collect(backend, 300..=u16::MAX)),
        vec![(300, 0), (300, 2), (u16::MAX, 0), (u16::MAX, 2)]
    );
    assert_eq!(groups_of(collect(backend, 4..=299)), vec![]);
    assert_eq!(collect(backend, 0..=KeyGroup::MAX).len(), 12);
    let (from, to) = (3, 2);
    assert_eq!(collect(backend, from..=to).len(), 0, "an empty range");

    let err = backend
        .for_each_entry(0..=KeyGroup::MAX, &mut |_, _| {
            Err(crate::Error::visitor("upload failed"))
        })
        .expect_err("the visitor's error stops the iteration");
    assert!(matches!(err, crate::Error::Visitor { .. }), "{err:?}");
}

fn check_snapshot_is_a_point_in_time_view(backend: &mut dyn StateBackend, scratch: &Path) {
    backend.put(StateId(1), 5, b"a", b"1").expect("put");
    backend.put(StateId(1), 5, b"b", b"2").expect("put");
    backend.put(StateId(2), 7, b"c", b"3").expect("put");
    let snapshot = backend.snapshot(&scratch.join("snap")).expect("snapshot");

    backend.put(StateId(1), 5, b"a", b"changed").expect("put");
    backend.delete(StateId(1), 5, b"b").expect("delete");
    backend.put(StateId(3), 9, b"new", b"x").expect("put");
    backend.flush().expect("flush");

    let expected = BTreeMap::from([
        (5, vec![entry(1, b"a", b"1"), entry(1, b"b", b"2")]),
        (7, vec![entry(2, b"c", b"3")]),
    ]);
    assert_eq!(read_snapshot(&snapshot), expected);
}

#[test]
fn for_each_entry_respects_the_key_group_range() {
    on_both_backends(check_for_each_entry_respects_the_key_group_range);
}

#[test]
fn snapshot_is_a_point_in_time_view() {
    on_both_backends(check_snapshot_is_a_point_in_time_view);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The savepoint path end to end: random state, snapshot, one canonical file per key group,
    /// decoded again, equals what was written, on both backends.
    #[test]
    fn canonical_files_of_a_snapshot_round_trip_the_state(
        writes in prop::collection::btree_map(
            (0u16..4, prop::sample::select(vec![0u16, 1, 77, u16::MAX]), prop::collection::vec(any::<u8>(), 0..6)),
            prop::collection::vec(any::<u8>(), 0..6),
            0..30,
        ),
    ) {
        let mut expected: BTreeMap<KeyGroup, Vec<Entry>> = BTreeMap::new();
        for ((state, key_group, key), value) in &writes {
            expected.entry(*key_group).or_default().push(entry(*state, key, value));
        }
        for group in expected.values_mut() {
            group.sort();
        }

        let scratch = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut memory = MemoryBackend::new();
        let mut rocks = RocksDbBackend::open(dir.path()).expect("open rocksdb");
        let backends: [(&mut dyn StateBackend, &str); 2] = [(&mut memory, "memory"), (&mut rocks, "rocks")];
        for (backend, name) in backends {
            for ((state, key_group, key), value) in &writes {
                backend.put(StateId(*state), *key_group, key, value).expect("put");
            }
            let snapshot = backend.snapshot(&scratch.path().join(name)).expect("snapshot");
            let mut restored = BTreeMap::new();
            for (key_group, entries) in read_snapshot(&snapshot) {
                let (decoded_group, decoded) =
                    canonical::decode(&canonical::encode(key_group, &entries)).expect("decode");
                prop_assert_eq!(decoded_group, key_group);
                restored.insert(key_group, decoded);
            }
            prop_assert_eq!(&restored, &expected, "{} backend", name);
        }
    }
}
