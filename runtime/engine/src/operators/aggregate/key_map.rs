//! A hash map from group-key bytes to a value that keeps short keys inline.
//!
//! Most group keys are short in the row format (an INT key is 5 bytes, a BIGINT 9), and a map
//! of boxed byte strings pays a pointer chase and a `memcmp` call per probe. Keys of up to 7
//! bytes are therefore packed into one word with their length ([`Word`]), keys of up to 16 bytes
//! into two words and a length ([`Inline`]); longer keys live in a map of boxed bytes.
//!
//! The word form matters for speed: with 10,000 INT keys its table (16-byte entries) is half the
//! size of the two-word one, and a window aggregate's time goes mostly to waiting for the memory
//! of these probes. Keys are read with fixed-size loads, not a variable-length copy into a
//! buffer that is then read back, which stalls on store forwarding.

use super::FastMap;

/// Bytes `0..len` of `key` (`len <= 8`) as a little-endian word, zero-padded, read with two
/// overlapping fixed-size loads.
#[inline]
fn load(key: &[u8]) -> u64 {
    let n = key.len();
    debug_assert!(n <= 8);
    if n >= 4 {
        let lo = u64::from(u32::from_le_bytes(array(&key[..4])));
        let hi = u64::from(u32::from_le_bytes(array(&key[n - 4..])));
        lo | (hi << ((n - 4) * 8))
    } else if n >= 2 {
        let lo = u64::from(u16::from_le_bytes(array(&key[..2])));
        let hi = u64::from(u16::from_le_bytes(array(&key[n - 2..])));
        lo | (hi << ((n - 2) * 8))
    } else {
        key.first().map_or(0, |&b| u64::from(b))
    }
}

/// The first `N` bytes of `bytes` (which has at least `N`).
#[inline]
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// A key of at most 7 bytes: its bytes little-endian in the low 7 bytes, its length in the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Word(u64);

const WORD_MAX: usize = 7;

impl Word {
    #[inline]
    fn new(key: &[u8]) -> Option<Word> {
        (key.len() <= WORD_MAX).then(|| Word(load(key) | ((key.len() as u64) << 56)))
    }

    fn bytes(&self) -> Vec<u8> {
        let len = (self.0 >> 56) as usize;
        self.0.to_le_bytes()[..len].to_vec()
    }

    /// A number that orders words as their bytes order: the bytes big-endian (zero-padded,
    /// so a prefix comes first), then the length.
    #[inline]
    fn order(&self) -> u64 {
        (self.0 & ((1 << 56) - 1)).swap_bytes() | (self.0 >> 56)
    }
}

/// A key of 8 to 16 bytes: its bytes as two little-endian words, zero-padded, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Inline {
    words: [u64; 2],
    len: u8,
}

const INLINE_MAX: usize = 16;

impl Inline {
    #[inline]
    fn new(key: &[u8]) -> Option<Inline> {
        let n = key.len();
        if n > INLINE_MAX {
            return None;
        }
        if n <= 8 {
            return Some(Inline {
                words: [load(key), 0],
                len: n as u8,
            });
        }
        let lo = u64::from_le_bytes(array(key));
        // The last 8 bytes, shifted so that byte 8 of the key comes first.
        let hi = u64::from_le_bytes(array(&key[n - 8..])) >> ((16 - n) * 8);
        Some(Inline {
            words: [lo, hi],
            len: n as u8,
        })
    }

    /// Orders inline keys as their bytes order (see [`Word::order`]).
    #[inline]
    fn order(&self) -> (u128, u8) {
        let high = u128::from(self.words[0].swap_bytes()) << 64;
        (high | u128::from(self.words[1].swap_bytes()), self.len)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(INLINE_MAX);
        bytes.extend_from_slice(&self.words[0].to_le_bytes());
        bytes.extend_from_slice(&self.words[1].to_le_bytes());
        bytes.truncate(usize::from(self.len));
        bytes
    }
}

/// Where a key of a given length is kept.
enum Slot<'a> {
    Word(Word),
    Inline(Inline),
    Boxed(&'a [u8]),
}

#[inline]
fn slot(key: &[u8]) -> Slot<'_> {
    if let Some(word) = Word::new(key) {
        Slot::Word(word)
    } else if let Some(inline) = Inline::new(key) {
        Slot::Inline(inline)
    } else {
        Slot::Boxed(key)
    }
}

/// Group-key bytes → `V`.
#[derive(Debug)]
pub(crate) struct KeyMap<V> {
    words: FastMap<Word, V>,
    inline: FastMap<Inline, V>,
    boxed: FastMap<Box<[u8]>, V>,
    /// Room to reserve in the map that receives the first key.
    capacity_hint: usize,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            words: FastMap::default(),
            inline: FastMap::default(),
            boxed: FastMap::default(),
            capacity_hint: 0,
        }
    }
}

impl<V> KeyMap<V> {
    /// A map with room for `capacity` short keys. Which kind of short keys (up to 7 bytes, or
    /// up to 16) is not known yet: the room goes to the first kind inserted.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        KeyMap {
            capacity_hint: capacity,
            ..KeyMap::default()
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        match slot(key) {
            Slot::Word(k) => self.words.get(&k),
            Slot::Inline(k) => self.inline.get(&k),
            Slot::Boxed(k) => self.boxed.get(k),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        match slot(key) {
            Slot::Word(k) => self.words.get_mut(&k),
            Slot::Inline(k) => self.inline.get_mut(&k),
            Slot::Boxed(k) => self.boxed.get_mut(k),
        }
    }

    pub(crate) fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        let slot = slot(key);
        self.reserve_for(&slot);
        match slot {
            Slot::Word(k) => self.words.insert(k, value),
            Slot::Inline(k) => self.inline.insert(k, value),
            Slot::Boxed(k) => self.boxed.insert(k.into(), value),
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<V> {
        match slot(key) {
            Slot::Word(k) => self.words.remove(&k),
            Slot::Inline(k) => self.inline.remove(&k),
            Slot::Boxed(k) => self.boxed.remove(k),
        }
    }

    /// The value of `key`, inserting `make()` first if it is missing.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> &mut V {
        let slot = slot(key);
        self.reserve_for(&slot);
        match slot {
            Slot::Word(k) => self.words.entry(k).or_insert_with(make),
            Slot::Inline(k) => self.inline.entry(k).or_insert_with(make),
            Slot::Boxed(k) => {
                if !self.boxed.contains_key(k) {
                    self.boxed.insert(k.into(), make());
                }
                match self.boxed.get_mut(k) {
                    Some(v) => v,
                    None => unreachable!("the key was just inserted"),
                }
            }
        }
    }

    /// Reserve the capacity hint, once, in the map that `slot` goes to.
    #[inline]
    fn reserve_for(&mut self, slot: &Slot<'_>) {
        if self.capacity_hint == 0 {
            return;
        }
        let room = std::mem::take(&mut self.capacity_hint);
        match slot {
            Slot::Word(_) => self.words.reserve(room),
            Slot::Inline(_) => self.inline.reserve(room),
            Slot::Boxed(_) => self.boxed.reserve(room),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.words.len() + self.inline.len() + self.boxed.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry with its key bytes, sorted by the bytes. Firing a window emits its groups in
    /// key order: sorting short keys here as integers is several times cheaper than comparing
    /// byte vectors afterwards (and a sort of sorted entries only checks them).
    pub(crate) fn into_entries(self) -> Vec<(Vec<u8>, V)> {
        let kinds = [self.words.len(), self.inline.len(), self.boxed.len()];
        let mut entries = Vec::with_capacity(self.len());
        let mut words: Vec<(u64, Word, V)> = self
            .words
            .into_iter()
            .map(|(k, v)| (k.order(), k, v))
            .collect();
        words.sort_unstable_by_key(|e| e.0);
        entries.extend(words.into_iter().map(|(_, k, v)| (k.bytes(), v)));
        let mut inline: Vec<((u128, u8), Inline, V)> = self
            .inline
            .into_iter()
            .map(|(k, v)| (k.order(), k, v))
            .collect();
        inline.sort_unstable_by_key(|e| e.0);
        entries.extend(inline.into_iter().map(|(_, k, v)| (k.bytes(), v)));
        entries.extend(self.boxed.into_iter().map(|(k, v)| (k.into_vec(), v)));
        // Keys of different lengths interleave; only the boxed ones are unsorted when alone.
        if kinds.iter().filter(|&&n| n > 0).count() > 1 || kinds[2] > 0 {
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        entries
    }

    /// Remove every entry, returning them with their key bytes.
    pub(crate) fn drain(&mut self) -> Vec<(Vec<u8>, V)> {
        std::mem::take(self).into_entries()
    }

    /// Every entry with its key bytes, in no particular order, leaving the map as it is.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Vec<u8>, &V)> {
        self.words
            .iter()
            .map(|(k, v)| (k.bytes(), v))
            .chain(self.inline.iter().map(|(k, v)| (k.bytes(), v)))
            .chain(self.boxed.iter().map(|(k, v)| (k.to_vec(), v)))
    }

    /// The values, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.words
            .values()
            .chain(self.inline.values())
            .chain(self.boxed.values())
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
            let entries = map.into_entries();
            prop_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "sorted by key bytes");
            let expected: Vec<(Vec<u8>, usize)> =
                keys.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
            let mut expected = expected;
            expected.sort();
            prop_assert_eq!(entries, expected);
        }

        #[test]
        fn keys_of_one_length_come_out_sorted_by_their_bytes(
            len in 0usize..20,
            seeds in proptest::collection::btree_set(any::<u64>(), 1..200),
        ) {
            // Bytes of every value, low ones often zero, so prefixes and padding get tested.
            let keys: Vec<Vec<u8>> = seeds
                .iter()
                .map(|s| (0..len).map(|i| (s.rotate_left(i as u32 * 7) % 4) as u8).collect())
                .collect();
            let mut map = KeyMap::default();
            for k in &keys {
                map.insert(k, ());
            }
            let entries: Vec<Vec<u8>> = map.into_entries().into_iter().map(|e| e.0).collect();
            let mut expected = keys.clone();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(entries, expected);
        }
    }

    #[test]
    fn keys_of_every_short_length_keep_their_bytes() {
        let bytes: Vec<u8> = (1..=20).collect();
        let mut map = KeyMap::with_capacity(4);
        for n in 0..=bytes.len() {
            map.insert(&bytes[..n], n);
        }
        for n in 0..=bytes.len() {
            assert_eq!(map.get(&bytes[..n]), Some(&n), "length {n}");
        }
        let mut entries = map.into_entries();
        entries.sort();
        let expected: Vec<(Vec<u8>, usize)> = (0..=bytes.len())
            .map(|n| (bytes[..n].to_vec(), n))
            .collect();
        assert_eq!(entries, expected);
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
