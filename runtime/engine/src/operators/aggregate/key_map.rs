//! A hash map from group-key bytes to a value that keeps short keys inline.
//!
//! Most group keys are short in the row format (a BIGINT key is 9 bytes), and a map of boxed
//! byte strings pays a pointer chase and a `memcmp` call per probe. Keys of up to 16 bytes are
//! therefore stored as two words and a length, compared with three integer comparisons; longer
//! keys live in a second map of boxed bytes.

use super::FastMap;

/// A key of at most 16 bytes: its bytes as two little-endian words, zero-padded, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Inline {
    words: [u64; 2],
    len: u8,
}

const INLINE_MAX: usize = 16;

impl Inline {
    #[inline]
    fn new(key: &[u8]) -> Option<Inline> {
        if key.len() > INLINE_MAX {
            return None;
        }
        let mut bytes = [0u8; INLINE_MAX];
        bytes[..key.len()].copy_from_slice(key);
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&bytes[..8]);
        hi.copy_from_slice(&bytes[8..]);
        Some(Inline {
            words: [u64::from_le_bytes(lo), u64::from_le_bytes(hi)],
            len: key.len() as u8,
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(INLINE_MAX);
        bytes.extend_from_slice(&self.words[0].to_le_bytes());
        bytes.extend_from_slice(&self.words[1].to_le_bytes());
        bytes.truncate(usize::from(self.len));
        bytes
    }
}

/// Group-key bytes → `V`.
#[derive(Debug)]
pub(crate) struct KeyMap<V> {
    inline: FastMap<Inline, V>,
    boxed: FastMap<Box<[u8]>, V>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            inline: FastMap::default(),
            boxed: FastMap::default(),
        }
    }
}

impl<V> KeyMap<V> {
    /// A map with room for `capacity` short keys.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        KeyMap {
            inline: FastMap::with_capacity_and_hasher(capacity, Default::default()),
            boxed: FastMap::default(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        match Inline::new(key) {
            Some(k) => self.inline.get(&k),
            None => self.boxed.get(key),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        match Inline::new(key) {
            Some(k) => self.inline.get_mut(&k),
            None => self.boxed.get_mut(key),
        }
    }

    pub(crate) fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        match Inline::new(key) {
            Some(k) => self.inline.insert(k, value),
            None => self.boxed.insert(key.into(), value),
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<V> {
        match Inline::new(key) {
            Some(k) => self.inline.remove(&k),
            None => self.boxed.remove(key),
        }
    }

    /// The value of `key`, inserting `make()` first if it is missing.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> &mut V {
        match Inline::new(key) {
            Some(k) => self.inline.entry(k).or_insert_with(make),
            None => {
                if !self.boxed.contains_key(key) {
                    self.boxed.insert(key.into(), make());
                }
                match self.boxed.get_mut(key) {
                    Some(v) => v,
                    None => unreachable!("the key was just inserted"),
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inline.len() + self.boxed.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry with its key bytes, in no particular order.
    pub(crate) fn into_entries(self) -> Vec<(Vec<u8>, V)> {
        let mut entries = Vec::with_capacity(self.len());
        entries.extend(self.inline.into_iter().map(|(k, v)| (k.bytes(), v)));
        entries.extend(self.boxed.into_iter().map(|(k, v)| (k.into_vec(), v)));
        entries
    }

    /// Remove every entry, returning them with their key bytes.
    pub(crate) fn drain(&mut self) -> Vec<(Vec<u8>, V)> {
        std::mem::take(self).into_entries()
    }

    /// The values, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.inline.values().chain(self.boxed.values())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_of_every_length_are_found_again_and_listed_with_their_bytes(
            keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..40), 1..30)
        ) {
            let mut map = KeyMap::default();
            for (i, k) in keys.iter().enumerate() {
                prop_assert!(map.insert(k, i).is_none());
            }
            for (i, k) in keys.iter().enumerate() {
                prop_assert_eq!(map.get(k), Some(&i));
            }
            prop_assert_eq!(map.len(), keys.len());
            let mut entries = map.into_entries();
            entries.sort();
            let expected: Vec<(Vec<u8>, usize)> =
                keys.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
            let mut expected = expected;
            expected.sort();
            prop_assert_eq!(entries, expected);
        }
    }

    #[test]
    fn a_short_key_and_its_zero_padded_extension_differ() {
        let mut map = KeyMap::default();
        map.insert(&[1, 2], 'a');
        map.insert(&[1, 2, 0], 'b');
        assert_eq!(map.get(&[1, 2]), Some(&'a'));
        assert_eq!(map.get(&[1, 2, 0]), Some(&'b'));
        assert_eq!(map.remove(&[1, 2]), Some('a'));
        assert_eq!(map.get(&[1, 2]), None);
    }
}
