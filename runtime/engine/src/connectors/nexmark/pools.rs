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
    pub(super) letters: String,
    /// Letters with a space about every 13th character, for names and descriptions.
    pub(super) spaced: String,
    pub(super) names: Vec<String>,
    /// Channel `c` and its url, for the `CHANNELS_NUMBER` channels followed by the hot ones:
    /// one contiguous arena, so a random channel costs one or two cache misses, not four.
    channel_text: String,
    /// `channel_offsets[2c]..[2c + 1]` is channel `c`, `[2c + 1]..[2c + 2]` its url.
    channel_offsets: Vec<u32>,
}

const POOL_LEN: usize = 1 << 16;

pub(super) fn pools() -> &'static Pools {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    POOLS.get_or_init(|| {
        let mut rng = SplitMix64::new(0x004E_4558_4D41_524B);
        let letter = |rng: &mut SplitMix64| char::from(b'a' + rng.below(26) as u8);
        let letters = (0..POOL_LEN).map(|_| letter(&mut rng)).collect();
        let spaced = (0..POOL_LEN)
            .map(|_| {
                if rng.below(13) == 0 {
                    ' '
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
                    .map(|_| if rng.below(13) == 0 { '_' } else { letter(rng) })
                    .collect::<String>()
            };
            let (a, b, c) = (part(), part(), part());
            format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1")
        };
        let hot_urls: Vec<String> = (0..HOT_CHANNELS.len())
            .map(|_| base_url(&mut rng))
            .collect();
        let mut channel_text = String::new();
        let mut channel_offsets = vec![0u32];
        let mut add = |text: &mut String, part: &str| {
            text.push_str(part);
            channel_offsets.push(text.len() as u32);
        };
        for c in 0..CHANNELS_NUMBER {
            let mut url = base_url(&mut rng);
            if rng.below(10) > 0 {
                let id = (c as i32).reverse_bits().wrapping_abs();
                url.push_str(&format!("&channel_id={id}"));
            }
            add(&mut channel_text, &format!("channel-{c}"));
            add(&mut channel_text, &url);
        }
        for (channel, url) in HOT_CHANNELS.iter().zip(&hot_urls) {
            add(&mut channel_text, channel);
            add(&mut channel_text, url);
        }
        Pools {
            letters,
            spaced,
            names,
            channel_text,
            channel_offsets,
        }
    })
}

impl Pools {
    /// Channel `c` (`0..CHANNELS_NUMBER`, then the hot channels) and its url.
    #[inline]
    pub(super) fn channel(&self, c: usize) -> (&str, &str) {
        let at = |i: usize| self.channel_offsets[i] as usize;
        let (start, middle, end) = (at(2 * c), at(2 * c + 1), at(2 * c + 2));
        (
            &self.channel_text[start..middle],
            &self.channel_text[middle..end],
        )
    }

    /// nexmark's `nextString(maxLength)`: 3..maxLength letters with occasional spaces, trimmed.
    #[inline]
    pub(super) fn next_string(&self, rng: &mut SplitMix64, max_len: usize) -> &str {
        let len = 3 + rng.below((max_len - 3) as u64) as usize;
        let start = rng.below((POOL_LEN - len) as u64) as usize;
        self.spaced[start..start + len].trim_matches(' ')
    }

    /// nexmark's `nextExtra`: padding so that the event's size is on average `average` bytes.
    #[inline]
    pub(super) fn next_extra(&self, rng: &mut SplitMix64, current: usize, average: usize) -> &str {
        if current > average {
            return "";
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
        for c in 0..CHANNELS_NUMBER + HOT_CHANNELS.len() {
            let (channel, url) = pools.channel(c);
            assert!(url.starts_with("https://www.nexmark.com/"), "channel {c}");
            let expected = HOT_CHANNELS
                .get(c.wrapping_sub(CHANNELS_NUMBER))
                .map_or_else(|| format!("channel-{c}"), |hot| hot.to_string());
            assert_eq!(channel, expected);
        }
        assert!(pools.letters.bytes().all(|b| b.is_ascii_lowercase()));
        let mut rng = SplitMix64::new(3);
        for _ in 0..1000 {
            let s = pools.next_string(&mut rng, 20);
            assert!(s.len() < 20 && !s.starts_with(' ') && !s.ends_with(' '));
        }
    }
}
