//! Pre-built values the Nexmark generator draws from: nexmark's name, city and state lists,
//! the bid channels and their urls, and pools of random text that strings are sliced from
//! (so generating a row allocates nothing). Built once per process, deterministically.

use std::sync::OnceLock;

use crate::connectors::generate::SplitMix64;

pub(super) const CHANNELS_NUMBER: usize = 10_000;

pub(super) const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
pub(super) const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
pub(super) const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
pub(super) const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
pub(super) const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// Pre-built random text and the channel/url tables, shared by every generator.
pub(super) struct Pools {
    pub(super) letters: Vec<u8>,
    /// Letters with a space about every 13th character, for names and descriptions.
    pub(super) spaced: Vec<u8>,
    pub(super) names: Vec<String>,
    pub(super) channels: Vec<String>,
    pub(super) urls: Vec<String>,
    pub(super) hot_urls: Vec<String>,
}

const POOL_LEN: usize = 1 << 16;

pub(super) fn pools() -> &'static Pools {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    POOLS.get_or_init(|| {
        let mut rng = SplitMix64::new(0x4E45_584D_4152_4B);
        let letter = |rng: &mut SplitMix64| b'a' + rng.below(26) as u8;
        let letters = (0..POOL_LEN).map(|_| letter(&mut rng)).collect();
        let spaced = (0..POOL_LEN)
            .map(|_| {
                if rng.below(13) == 0 {
                    b' '
                } else {
                    letter(&mut rng)
                }
            })
            .collect();
        let names = FIRST_NAMES
            .iter()
            .flat_map(|first| LAST_NAMES.iter().map(move |last| format!("{first} {last}")))
            .collect();
        let base_url = |rng: &mut SplitMix64| {
            let mut part = || {
                let len = 3 + rng.below(2) as usize;
                (0..len)
                    .map(|_| {
                        if rng.below(13) == 0 {
                            '_'
                        } else {
                            letter(rng) as char
                        }
                    })
                    .collect::<String>()
            };
            let (a, b, c) = (part(), part(), part());
            format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1")
        };
        let hot_urls = (0..HOT_CHANNELS.len())
            .map(|_| base_url(&mut rng))
            .collect();
        let channels = (0..CHANNELS_NUMBER)
            .map(|c| format!("channel-{c}"))
            .collect();
        let urls = (0..CHANNELS_NUMBER)
            .map(|c| {
                let mut url = base_url(&mut rng);
                if rng.below(10) > 0 {
                    let id = (c as i32).reverse_bits().wrapping_abs();
                    url.push_str(&format!("&channel_id={id}"));
                }
                url
            })
            .collect();
        Pools {
            letters,
            spaced,
            names,
            channels,
            urls,
            hot_urls,
        }
    })
}

impl Pools {
    /// nexmark's `nextString(maxLength)`: 3..maxLength letters with occasional spaces, trimmed.
    #[inline]
    pub(super) fn next_string(&self, rng: &mut SplitMix64, max_len: usize) -> &[u8] {
        let len = 3 + rng.below((max_len - 3) as u64) as usize;
        let start = rng.below((POOL_LEN - len) as u64) as usize;
        self.spaced[start..start + len].trim_ascii()
    }

    /// nexmark's `nextExtra`: padding so that the event's size is on average `average` bytes.
    #[inline]
    pub(super) fn next_extra(&self, rng: &mut SplitMix64, current: usize, average: usize) -> &[u8] {
        if current > average {
            return &[];
        }
        let desired = average - current;
        let delta = (desired as f64 * 0.2).round() as usize;
        let len = desired - delta
            + if delta == 0 {
                0
            } else {
                rng.below(2 * delta as u64) as usize
            };
        let start = rng.below((POOL_LEN - len) as u64) as usize;
        &self.letters[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_hold_ascii_and_the_channel_table() {
        let pools = pools();
        assert_eq!(pools.names.len(), 99);
        assert_eq!(pools.urls.len(), CHANNELS_NUMBER);
        assert!(
            pools
                .urls
                .iter()
                .all(|u| u.starts_with("https://www.nexmark.com/"))
        );
        assert!(pools.letters.iter().all(u8::is_ascii_lowercase));
        let mut rng = SplitMix64::new(3);
        for _ in 0..1000 {
            let s = pools.next_string(&mut rng, 20);
            assert!(s.len() < 20 && !s.starts_with(b" ") && !s.ends_with(b" "));
        }
    }
}
