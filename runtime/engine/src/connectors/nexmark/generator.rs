//! The Nexmark event generator, after Beam's and nexmark-flink's `NexmarkGenerator`.
//!
//! Event `n` (0, 1, 2, …) is a pure function of `n` and the configuration: its type comes from
//! `n mod (person + auction + bid proportions)` (1:3:46 by default, persons first), its event
//! time from the event-time rate, and its fields from a random stream seeded with `n` (as Beam
//! seeds `new Random(eventId)`; the stream itself is SplitMix64, not Java's LCG, so values differ
//! from Java's while following the same distributions). Ids refer back to recent persons and
//! auctions with nexmark's hot-seller / hot-auction / hot-bidder skew, so joins find matches.
//!
//! Event time: event `n` happens at `BASE_TIME_MS + n * 1_000_000 / rate` microseconds; with
//! `first-event.rate` ≠ `next-event.rate` the rate alternates every half `rate.period` (Beam's
//! square rate shape). Strings (`extra` padding, item names, e-mail parts) are slices of
//! pre-built random text pools, so generating a row allocates nothing.

use std::sync::OnceLock;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use std::sync::Arc;

use arrow::array::{Int64Array, PrimitiveArray};
use arrow::datatypes::TimestampMillisecondType;

use crate::connectors::generate::{SplitMix64, StrColumn};
use crate::error::Result;

/// Event time of event 0: 2015-07-15 00:00:00 UTC (a fixed instant, so runs repeat exactly;
/// nexmark-flink uses the wall clock at start instead).
pub const BASE_TIME_MS: i64 = 1_436_918_400_000;

pub const FIRST_PERSON_ID: i64 = 1000;
pub const FIRST_AUCTION_ID: i64 = 1000;
pub const FIRST_CATEGORY_ID: i64 = 10;

const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_SELLER_RATIO: i64 = 100;
const HOT_AUCTION_RATIO: i64 = 100;
const HOT_BIDDER_RATIO: i64 = 100;
const NUM_CATEGORIES: u64 = 5;
const HOT_CHANNELS_RATIO: u64 = 2;
const CHANNELS_NUMBER: usize = 10_000;

// nexmark-flink's defaults (`NexmarkConfiguration`).
const HOT_AUCTIONS: u64 = 2;
const HOT_SELLERS: u64 = 4;
const HOT_BIDDERS: u64 = 4;
const NUM_ACTIVE_PEOPLE: i64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: i64 = 100;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
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
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// Which of the three Nexmark tables an event (or a `CREATE TABLE`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Person,
    Auction,
    Bid,
}

/// The SQL type of a Nexmark column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexmarkType {
    Bigint,
    String,
    Timestamp,
}

impl NexmarkType {
    pub fn sql_name(self) -> &'static str {
        match self {
            NexmarkType::Bigint => "BIGINT",
            NexmarkType::String => "STRING",
            NexmarkType::Timestamp => "TIMESTAMP(3)",
        }
    }

    /// Whether a declared Arrow type can hold this column.
    pub fn accepts(self, data_type: &DataType) -> bool {
        match self {
            NexmarkType::Bigint => *data_type == DataType::Int64,
            NexmarkType::String => *data_type == DataType::Utf8,
            NexmarkType::Timestamp => matches!(
                data_type,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, _)
            ),
        }
    }
}

use NexmarkType::{Bigint, String as Str, Timestamp};

const PERSON_COLUMNS: &[(&str, NexmarkType)] = &[
    ("id", Bigint),
    ("name", Str),
    ("emailAddress", Str),
    ("creditCard", Str),
    ("city", Str),
    ("state", Str),
    ("dateTime", Timestamp),
    ("extra", Str),
];
const AUCTION_COLUMNS: &[(&str, NexmarkType)] = &[
    ("id", Bigint),
    ("itemName", Str),
    ("description", Str),
    ("initialBid", Bigint),
    ("reserve", Bigint),
    ("dateTime", Timestamp),
    ("expires", Timestamp),
    ("seller", Bigint),
    ("category", Bigint),
    ("extra", Str),
];
const BID_COLUMNS: &[(&str, NexmarkType)] = &[
    ("auction", Bigint),
    ("bidder", Bigint),
    ("price", Bigint),
    ("channel", Str),
    ("url", Str),
    ("dateTime", Timestamp),
    ("extra", Str),
];

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Person => "person",
            EventKind::Auction => "auction",
            EventKind::Bid => "bid",
        }
    }

    /// nexmark-flink's column names and types for this table, in its order.
    pub fn columns(self) -> &'static [(&'static str, NexmarkType)] {
        match self {
            EventKind::Person => PERSON_COLUMNS,
            EventKind::Auction => AUCTION_COLUMNS,
            EventKind::Bid => BID_COLUMNS,
        }
    }
}

/// What shapes the event stream: proportions and event-time rates.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    person_proportion: u64,
    auction_proportion: u64,
    total_proportion: u64,
    /// Microseconds between events, per rate step (one entry when the rate is constant).
    delays_us: Vec<f64>,
    /// Events in each rate step, and in a whole cycle of steps.
    events_per_step: Vec<u64>,
    events_per_epoch: u64,
    epoch_period_ms: i64,
}

impl GeneratorConfig {
    /// Rates are events per second (positive); `rate_period_sec` is the period of the square
    /// rate shape, used only when the two rates differ. `proportions` are (person, auction,
    /// bid) and must not all be zero.
    pub fn new(
        proportions: (u64, u64, u64),
        first_event_rate: u64,
        next_event_rate: u64,
        rate_period_sec: u64,
    ) -> GeneratorConfig {
        let (person, auction, bid) = proportions;
        let rates = if first_event_rate == next_event_rate {
            vec![first_event_rate]
        } else {
            vec![first_event_rate, next_event_rate]
        };
        let delays_us: Vec<f64> = rates
            .iter()
            .map(|r| 1_000_000.0 / *r.max(&1) as f64)
            .collect();
        // Beam's SQUARE shape: each rate holds for half the period.
        let step_sec = rate_period_sec.div_ceil(delays_us.len() as u64).max(1);
        let events_per_step: Vec<u64> = delays_us
            .iter()
            .map(|d| ((step_sec as f64 * 1_000_000.0) / d).max(1.0) as u64)
            .collect();
        let epoch_period_ms = events_per_step
            .iter()
            .zip(&delays_us)
            .map(|(n, d)| (*n as f64 * d) as i64 / 1000)
            .sum();
        GeneratorConfig {
            person_proportion: person,
            auction_proportion: auction,
            total_proportion: (person + auction + bid).max(1),
            events_per_epoch: events_per_step.iter().sum(),
            delays_us,
            events_per_step,
            epoch_period_ms,
        }
    }

    pub fn proportion(&self, kind: EventKind) -> u64 {
        match kind {
            EventKind::Person => self.person_proportion,
            EventKind::Auction => self.auction_proportion,
            EventKind::Bid => {
                self.total_proportion - self.person_proportion - self.auction_proportion
            }
        }
    }

    pub fn total_proportion(&self) -> u64 {
        self.total_proportion
    }

    #[inline]
    pub fn kind(&self, event: u64) -> EventKind {
        let offset = event % self.total_proportion;
        if offset < self.person_proportion {
            EventKind::Person
        } else if offset < self.person_proportion + self.auction_proportion {
            EventKind::Auction
        } else {
            EventKind::Bid
        }
    }

    /// Event time of event `event`, milliseconds since the epoch.
    #[inline]
    pub fn timestamp(&self, event: u64) -> i64 {
        if self.delays_us.len() == 1 {
            return BASE_TIME_MS + (event as f64 * self.delays_us[0]) as i64 / 1000;
        }
        let epoch = event / self.events_per_epoch;
        let mut n = event % self.events_per_epoch;
        let mut offset_ms = 0i64;
        for (count, delay) in self.events_per_step.iter().zip(&self.delays_us) {
            if n < *count {
                offset_ms += (n as f64 * delay) as i64 / 1000;
                break;
            }
            n -= count;
            offset_ms += (*count as f64 * delay) as i64 / 1000;
        }
        BASE_TIME_MS + epoch as i64 * self.epoch_period_ms + offset_ms
    }

    /// The last person id (base 0) generated at or before `event`.
    #[inline]
    fn last_base0_person_id(&self, event: u64) -> i64 {
        let epoch = (event / self.total_proportion) as i64;
        let offset = (event % self.total_proportion).min(self.person_proportion.saturating_sub(1));
        epoch * self.person_proportion as i64 + offset as i64
    }

    /// The last auction id (base 0) generated at or before `event`.
    #[inline]
    fn last_base0_auction_id(&self, event: u64) -> i64 {
        let mut epoch = (event / self.total_proportion) as i64;
        let mut offset = (event % self.total_proportion) as i64;
        let person = self.person_proportion as i64;
        let auction = self.auction_proportion as i64;
        if offset < person {
            // A person event: the last auction of the previous epoch.
            epoch -= 1;
            offset = auction - 1;
        } else if offset >= person + auction {
            // A bid: the last auction of this epoch.
            offset = auction - 1;
        } else {
            offset -= person;
        }
        epoch * auction + offset
    }

    /// A random person among the active ones, plus a few not yet created.
    #[inline]
    fn next_base0_person_id(&self, event: u64, rng: &mut SplitMix64) -> i64 {
        let people = self.last_base0_person_id(event) + 1;
        let active = people.min(NUM_ACTIVE_PEOPLE);
        let n = rng.below(active as u64 + PERSON_ID_LEAD) as i64;
        people - active + n
    }

    /// A random auction among those likely still open, plus a few not yet created.
    #[inline]
    fn next_base0_auction_id(&self, event: u64, rng: &mut SplitMix64) -> i64 {
        let max = self.last_base0_auction_id(event);
        let min = (max - NUM_IN_FLIGHT_AUCTIONS).max(0);
        min + rng.below((max - min + 1) as u64 + AUCTION_ID_LEAD) as i64
    }

    /// How long an auction stays open: on average until `NUM_IN_FLIGHT_AUCTIONS` more auctions
    /// have been created.
    fn next_auction_length_ms(&self, event: u64, timestamp: i64, rng: &mut SplitMix64) -> i64 {
        let events_for_auctions = (NUM_IN_FLIGHT_AUCTIONS as u64 * self.total_proportion)
            / self.auction_proportion.max(1);
        let future = self.timestamp(event + events_for_auctions);
        let horizon = future - timestamp;
        1 + rng.below((horizon * 2).max(1) as u64) as i64
    }
}

/// Pre-built random text and the channel/url tables, shared by every generator.
struct Pools {
    letters: Vec<u8>,
    /// Letters with a space about every 13th character, for names and descriptions.
    spaced: Vec<u8>,
    names: Vec<String>,
    channels: Vec<String>,
    urls: Vec<String>,
    hot_urls: Vec<String>,
}

const POOL_LEN: usize = 1 << 16;

fn pools() -> &'static Pools {
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
    fn next_string(&self, rng: &mut SplitMix64, max_len: usize) -> &[u8] {
        let len = 3 + rng.below((max_len - 3) as u64) as usize;
        let start = rng.below((POOL_LEN - len) as u64) as usize;
        self.spaced[start..start + len].trim_ascii()
    }

    /// nexmark's `nextExtra`: padding so that the event's size is on average `average` bytes.
    #[inline]
    fn next_extra(&self, rng: &mut SplitMix64, current: usize, average: usize) -> &[u8] {
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

/// nexmark's price: log-uniform between 1.00 and 1,000,000.00 (in cents).
#[inline]
fn next_price(rng: &mut SplitMix64) -> i64 {
    (10f64.powf(rng.unit_f64() * 6.0) * 100.0).round() as i64
}

/// One output column under construction; `Skip` for a column the table does not declare.
enum ColumnBuf {
    Long(Vec<i64>),
    Str(StrColumn),
    Skip,
}

/// The columns of one Nexmark table for the batch being built, indexed like
/// [`EventKind::columns`].
pub struct Columns {
    bufs: Vec<ColumnBuf>,
    capacity: usize,
}

impl Columns {
    /// Buffers for the columns whose `wanted` flag is set.
    pub fn new(kind: EventKind, wanted: &[bool], capacity: usize) -> Columns {
        let bufs = kind
            .columns()
            .iter()
            .zip(wanted)
            .map(|((_, t), want)| Self::empty(*want, *t, capacity))
            .collect();
        Columns { bufs, capacity }
    }

    fn empty(want: bool, t: NexmarkType, capacity: usize) -> ColumnBuf {
        match (want, t) {
            (false, _) => ColumnBuf::Skip,
            (true, NexmarkType::String) => ColumnBuf::Str(StrColumn::with_capacity(capacity, 0)),
            (true, _) => ColumnBuf::Long(Vec::with_capacity(capacity)),
        }
    }

    #[inline]
    fn long(&mut self, column: usize, value: i64) {
        if let ColumnBuf::Long(values) = &mut self.bufs[column] {
            values.push(value);
        }
    }

    #[inline]
    fn string(&mut self, column: usize, value: &[u8]) {
        if let ColumnBuf::Str(strings) = &mut self.bufs[column] {
            strings.bytes_mut().extend_from_slice(value);
            strings.end_row();
        }
    }

    #[inline]
    fn strings(&mut self, column: usize) -> Option<&mut StrColumn> {
        match &mut self.bufs[column] {
            ColumnBuf::Str(strings) => Some(strings),
            _ => None,
        }
    }

    /// Hand over column `column` as an array of `data_type`, leaving an empty buffer.
    pub fn finish(&mut self, column: usize, data_type: &DataType) -> Result<ArrayRef> {
        let array: ArrayRef = match &mut self.bufs[column] {
            ColumnBuf::Long(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(self.capacity));
                match data_type {
                    DataType::Timestamp(..) => Arc::new(
                        PrimitiveArray::<TimestampMillisecondType>::from(values)
                            .with_data_type(data_type.clone()),
                    ),
                    _ => Arc::new(Int64Array::from(values)),
                }
            }
            ColumnBuf::Str(strings) => Arc::new(strings.finish(None)?),
            ColumnBuf::Skip => Arc::new(Int64Array::from(Vec::<i64>::new())),
        };
        Ok(array)
    }
}

impl GeneratorConfig {
    /// Append person event `event` (which must be a person) to `out`.
    pub fn push_person(&self, event: u64, out: &mut Columns) {
        let pools = pools();
        let mut rng = SplitMix64::new(event);
        let timestamp = self.timestamp(event);
        out.long(0, self.last_base0_person_id(event) + FIRST_PERSON_ID);

        let first = rng.below(FIRST_NAMES.len() as u64) as usize;
        let last = rng.below(LAST_NAMES.len() as u64) as usize;
        let name = &pools.names[first * LAST_NAMES.len() + last];
        out.string(1, name.as_bytes());

        let user = pools.next_string(&mut rng, 7);
        let domain = pools.next_string(&mut rng, 5);
        if let Some(email) = out.strings(2) {
            let bytes = email.bytes_mut();
            bytes.extend_from_slice(user);
            bytes.push(b'@');
            bytes.extend_from_slice(domain);
            bytes.extend_from_slice(b".com");
            email.end_row();
        }

        let groups: [u64; 4] = std::array::from_fn(|_| rng.below(10_000));
        if let Some(card) = out.strings(3) {
            let bytes = card.bytes_mut();
            for (i, group) in groups.iter().enumerate() {
                if i > 0 {
                    bytes.push(b' ');
                }
                for divisor in [1000, 100, 10, 1] {
                    bytes.push(b'0' + (group / divisor % 10) as u8);
                }
            }
            card.end_row();
        }

        let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize];
        let state = US_STATES[rng.below(US_STATES.len() as u64) as usize];
        out.string(4, city.as_bytes());
        out.string(5, state.as_bytes());
        out.long(6, timestamp);

        let email_len = user.len() + 1 + domain.len() + 4;
        let size = 8 + name.len() + email_len + 19 + city.len() + state.len();
        out.string(7, pools.next_extra(&mut rng, size, AVG_PERSON_BYTES));
    }

    /// Append auction event `event` (which must be an auction) to `out`.
    pub fn push_auction(&self, event: u64, out: &mut Columns) {
        let pools = pools();
        let mut rng = SplitMix64::new(event);
        let timestamp = self.timestamp(event);
        out.long(0, self.last_base0_auction_id(event) + FIRST_AUCTION_ID);

        let seller = if rng.below(HOT_SELLERS) > 0 {
            (self.last_base0_person_id(event) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            self.next_base0_person_id(event, &mut rng)
        };
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64;
        let initial_bid = next_price(&mut rng);
        let expires = timestamp + self.next_auction_length_ms(event, timestamp, &mut rng);
        let item_name = pools.next_string(&mut rng, 20);
        let description = pools.next_string(&mut rng, 100);
        let reserve = initial_bid + next_price(&mut rng);
        let size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = pools.next_extra(&mut rng, size, AVG_AUCTION_BYTES);

        out.string(1, item_name);
        out.string(2, description);
        out.long(3, initial_bid);
        out.long(4, reserve);
        out.long(5, timestamp);
        out.long(6, expires);
        out.long(7, seller + FIRST_PERSON_ID);
        out.long(8, category);
        out.string(9, extra);
    }

    /// Append bid event `event` (which must be a bid) to `out`.
    pub fn push_bid(&self, event: u64, out: &mut Columns) {
        let pools = pools();
        let mut rng = SplitMix64::new(event);
        let timestamp = self.timestamp(event);

        let auction = if rng.below(HOT_AUCTIONS) > 0 {
            (self.last_base0_auction_id(event) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            self.next_base0_auction_id(event, &mut rng)
        };
        let bidder = if rng.below(HOT_BIDDERS) > 0 {
            (self.last_base0_person_id(event) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            self.next_base0_person_id(event, &mut rng)
        };
        let price = next_price(&mut rng);
        let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            (HOT_CHANNELS[i], pools.hot_urls[i].as_str())
        } else {
            let c = rng.below(CHANNELS_NUMBER as u64) as usize;
            (pools.channels[c].as_str(), pools.urls[c].as_str())
        };
        let extra = pools.next_extra(&mut rng, 8 + 8 + 8 + 8, AVG_BID_BYTES);

        out.long(0, auction + FIRST_AUCTION_ID);
        out.long(1, bidder + FIRST_PERSON_ID);
        out.long(2, price);
        out.string(3, channel.as_bytes());
        out.string(4, url.as_bytes());
        out.long(5, timestamp);
        out.string(6, extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_config() -> GeneratorConfig {
        GeneratorConfig::new((1, 3, 46), 10_000, 10_000, 600)
    }

    #[test]
    fn event_kinds_follow_the_proportions_in_each_group_of_fifty() {
        let config = default_config();
        let kinds: Vec<EventKind> = (0..50).map(|n| config.kind(n)).collect();
        assert_eq!(kinds[0], EventKind::Person);
        assert!(kinds[1..4].iter().all(|k| *k == EventKind::Auction));
        assert!(kinds[4..].iter().all(|k| *k == EventKind::Bid));
        assert_eq!(config.kind(50), EventKind::Person);
    }

    #[test]
    fn ids_count_up_from_the_first_ids() {
        let config = default_config();
        // Person events 0, 50, 100 are persons 0, 1, 2; auctions 1..4 are auctions 0..3.
        assert_eq!(config.last_base0_person_id(100), 2);
        assert_eq!(config.last_base0_auction_id(1), 0);
        assert_eq!(config.last_base0_auction_id(3), 2);
        assert_eq!(config.last_base0_auction_id(53), 5);
        // A bid sees the epoch's last auction; a person the previous epoch's.
        assert_eq!(config.last_base0_auction_id(60), 5);
        assert_eq!(config.last_base0_auction_id(100), 5);
    }

    #[test]
    fn event_time_advances_by_the_inter_event_delay() {
        let config = default_config();
        assert_eq!(config.timestamp(0), BASE_TIME_MS);
        assert_eq!(config.timestamp(10_000), BASE_TIME_MS + 1_000);
        assert_eq!(config.timestamp(15), BASE_TIME_MS + 1);

        // Square shape: 1000/s for 5 s, then 2000/s for 5 s.
        let square = GeneratorConfig::new((1, 3, 46), 1_000, 2_000, 10);
        assert_eq!(square.timestamp(5_000), BASE_TIME_MS + 5_000);
        assert_eq!(square.timestamp(7_000), BASE_TIME_MS + 6_000);
        assert_eq!(square.timestamp(15_000), BASE_TIME_MS + 10_000);
        assert_eq!(square.timestamp(20_000), BASE_TIME_MS + 15_000);
    }

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
