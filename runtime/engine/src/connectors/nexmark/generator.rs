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
//! square rate shape). Parallel subtasks split the stream by epochs, see [`Walk`].
//!
//! Strings (`extra` padding, item names, e-mail parts, channels and urls) are slices of
//! pre-built pools (`pools.rs`) appended straight to Arrow string builders, so generating a row
//! allocates nothing.

use std::fmt::Write as _;

use super::columns::{Columns, EventKind};
use super::pools::{
    CHANNELS_NUMBER, FIRST_NAMES, HOT_CHANNELS, LAST_NAMES, US_CITIES, US_STATES, pools,
};
use crate::connectors::generate::SplitMix64;

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

// nexmark-flink's defaults (`NexmarkConfiguration`).
const HOT_AUCTIONS: u64 = 2;
const HOT_SELLERS: u64 = 4;
const HOT_BIDDERS: u64 = 4;
const NUM_ACTIVE_PEOPLE: i64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: i64 = 100;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

/// An event number and its place in the cycle of proportions (`event = epoch * total +
/// offset`), carried along so the hot loop needs no division.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub event: u64,
    epoch: u64,
    offset: u64,
}

/// The events of one kind that one of `p` parallel subtasks generates: the whole cycles of
/// the proportions ("epochs", 50 events by default) `subtask, subtask + p, …`, and in each the
/// offsets that hold that kind. Every subtask thus sees all three kinds in proportion, its
/// event time advances steadily, and the subtasks together cover each event exactly once.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    first_offset: u64,
    end_offset: u64,
    epoch_stride: u64,
}

impl Walk {
    /// Epochs between two consecutive epochs of the walk: the parallelism it was made for.
    pub fn epoch_stride(&self) -> u64 {
        self.epoch_stride
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
        self.kind_at(self.position(event))
    }

    /// Where `event` falls in the cycle of proportions.
    #[inline]
    pub fn position(&self, event: u64) -> Position {
        Position {
            event,
            epoch: event / self.total_proportion,
            offset: event % self.total_proportion,
        }
    }

    /// The offsets within an epoch that hold events of `kind`.
    fn offsets(&self, kind: EventKind) -> (u64, u64) {
        let auctions = self.person_proportion + self.auction_proportion;
        match kind {
            EventKind::Person => (0, self.person_proportion),
            EventKind::Auction => (self.person_proportion, auctions),
            EventKind::Bid => (auctions, self.total_proportion),
        }
    }

    /// The first event of `kind` for `subtask` of `parallelism`, and the walk to the next ones
    /// ([`GeneratorConfig::advance`]). Meaningless when `kind`'s proportion is 0.
    pub fn walk(&self, kind: EventKind, subtask: u64, parallelism: u64) -> (Position, Walk) {
        let (first_offset, end_offset) = self.offsets(kind);
        let walk = Walk {
            first_offset,
            end_offset,
            epoch_stride: parallelism.max(1),
        };
        (self.at(subtask, first_offset), walk)
    }

    /// The walk of `kind` with `epoch_stride` resumed at event `event`, which must be an event
    /// of `kind` (as every position of such a walk is); `None` when it is not, i.e. the event
    /// belongs to another table or the proportions changed since it was recorded.
    pub fn walk_from(
        &self,
        kind: EventKind,
        event: u64,
        epoch_stride: u64,
    ) -> Option<(Position, Walk)> {
        let (first_offset, end_offset) = self.offsets(kind);
        let at = self.position(event);
        (first_offset..end_offset).contains(&at.offset).then_some((
            at,
            Walk {
                first_offset,
                end_offset,
                epoch_stride: epoch_stride.max(1),
            },
        ))
    }

    /// The next event of the walk after `position`, without a division.
    #[inline]
    pub fn advance(&self, position: Position, walk: Walk) -> Position {
        if position.offset + 1 < walk.end_offset {
            self.at(position.epoch, position.offset + 1)
        } else {
            self.at(
                position.epoch.saturating_add(walk.epoch_stride),
                walk.first_offset,
            )
        }
    }

    #[inline]
    fn at(&self, epoch: u64, offset: u64) -> Position {
        Position {
            event: epoch
                .saturating_mul(self.total_proportion)
                .saturating_add(offset),
            epoch,
            offset,
        }
    }

    #[inline]
    pub fn kind_at(&self, position: Position) -> EventKind {
        let offset = position.offset;
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

    /// The last person id (base 0) generated at or before the event.
    #[inline]
    fn last_base0_person_id(&self, at: Position) -> i64 {
        let offset = at.offset.min(self.person_proportion.saturating_sub(1));
        at.epoch as i64 * self.person_proportion as i64 + offset as i64
    }

    /// The last auction id (base 0) generated at or before the event.
    #[inline]
    fn last_base0_auction_id(&self, at: Position) -> i64 {
        let mut epoch = at.epoch as i64;
        let mut offset = at.offset as i64;
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
    fn next_base0_person_id(&self, at: Position, rng: &mut SplitMix64) -> i64 {
        let people = self.last_base0_person_id(at) + 1;
        let active = people.min(NUM_ACTIVE_PEOPLE);
        let n = rng.below(active as u64 + PERSON_ID_LEAD) as i64;
        people - active + n
    }

    /// A random auction among those likely still open, plus a few not yet created.
    #[inline]
    fn next_base0_auction_id(&self, at: Position, rng: &mut SplitMix64) -> i64 {
        let max = self.last_base0_auction_id(at);
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

/// nexmark's price: log-uniform between 1.00 and 1,000,000.00 (in cents), rounded like
/// Java's `Math.round`.
#[inline]
fn next_price(rng: &mut SplitMix64) -> i64 {
    (exp10(rng.unit_f64() * 6.0) * 100.0 + 0.5) as i64
}

/// `10^x` for `x` in `[0, 6]`, to about 1e-9 relative error (a price is off by at most one
/// cent) at a fraction of `powf`'s cost: `2^k` from the exponent bits times `e^y` for the
/// remainder `|y| <= ln 2 / 2` by its Taylor series.
#[inline]
fn exp10(x: f64) -> f64 {
    let t = x * std::f64::consts::LOG2_10;
    let k = t.round();
    let y = (t - k) * std::f64::consts::LN_2;
    let mut e = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        e = e * y + c;
    }
    e * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

impl GeneratorConfig {
    /// Append the person event at `at` (which must be a person) to `out`.
    pub fn push_person(&self, at: Position, out: &mut Columns) {
        let event = at.event;
        let pools = pools();
        let mut rng = SplitMix64::new(event);
        let timestamp = self.timestamp(event);
        out.long(0, self.last_base0_person_id(at) + FIRST_PERSON_ID);

        let first = rng.below(FIRST_NAMES.len() as u64) as usize;
        let last = rng.below(LAST_NAMES.len() as u64) as usize;
        let name = &pools.names[first * LAST_NAMES.len() + last];
        out.string(1, name);

        let user = pools.next_string(&mut rng, 7);
        let domain = pools.next_string(&mut rng, 5);
        if let Some(email) = out.strings(2) {
            // Writing to a string builder cannot fail.
            let _ = write!(email, "{user}@{domain}.com");
            email.append_value("");
        }

        let groups: [u64; 4] = std::array::from_fn(|_| rng.below(10_000));
        if let Some(card) = out.strings(3) {
            let [a, b, c, d] = groups;
            let _ = write!(card, "{a:04} {b:04} {c:04} {d:04}");
            card.append_value("");
        }

        let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize];
        let state = US_STATES[rng.below(US_STATES.len() as u64) as usize];
        out.string(4, city);
        out.string(5, state);
        out.long(6, timestamp);

        let email_len = user.len() + 1 + domain.len() + 4;
        let size = 8 + name.len() + email_len + 19 + city.len() + state.len();
        out.string(7, pools.next_extra(&mut rng, size, AVG_PERSON_BYTES));
    }

    /// Append the auction event at `at` (which must be an auction) to `out`.
    pub fn push_auction(&self, at: Position, out: &mut Columns) {
        let event = at.event;
        let pools = pools();
        let mut rng = SplitMix64::new(event);
        let timestamp = self.timestamp(event);
        out.long(0, self.last_base0_auction_id(at) + FIRST_AUCTION_ID);

        let seller = if rng.below(HOT_SELLERS) > 0 {
            (self.last_base0_person_id(at) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            self.next_base0_person_id(at, &mut rng)
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

    /// Append the bid event at `at` (which must be a bid) to `out`.
    pub fn push_bid(&self, at: Position, out: &mut Columns) {
        let event = at.event;
        let pools = pools();
        let mut rng = SplitMix64::new(event);
        let timestamp = self.timestamp(event);

        let auction = if rng.below(HOT_AUCTIONS) > 0 {
            (self.last_base0_auction_id(at) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            self.next_base0_auction_id(at, &mut rng)
        };
        let bidder = if rng.below(HOT_BIDDERS) > 0 {
            (self.last_base0_person_id(at) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            self.next_base0_person_id(at, &mut rng)
        };
        let price = next_price(&mut rng);
        let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
            let hot = rng.below(HOT_CHANNELS.len() as u64) as usize;
            pools.channel(CHANNELS_NUMBER + hot)
        } else {
            pools.channel(rng.below(CHANNELS_NUMBER as u64) as usize)
        };
        let extra = pools.next_extra(&mut rng, 8 + 8 + 8 + 8, AVG_BID_BYTES);

        out.long(0, auction + FIRST_AUCTION_ID);
        out.long(1, bidder + FIRST_PERSON_ID);
        out.long(2, price);
        out.string(3, channel);
        out.string(4, url);
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
    fn exp10_is_close_to_powf_over_the_price_range() {
        for i in 0..=6000 {
            let x = f64::from(i) / 1000.0;
            let relative = (exp10(x) - 10f64.powf(x)).abs() / 10f64.powf(x);
            assert!(relative < 1e-8, "10^{x}: relative error {relative}");
        }
    }

    #[test]
    fn walks_of_all_subtasks_cover_each_kind_once_and_every_subtask_gets_some() {
        let config = default_config();
        for parallelism in [1u64, 2, 3, 5, 50, 51] {
            for kind in [EventKind::Person, EventKind::Auction, EventKind::Bid] {
                let mut events = Vec::new();
                for subtask in 0..parallelism {
                    let (mut at, walk) = config.walk(kind, subtask, parallelism);
                    let before = events.len();
                    while at.event < 10_000 {
                        assert_eq!(at, config.position(at.event));
                        events.push(at.event);
                        at = config.advance(at, walk);
                    }
                    assert!(
                        events.len() > before,
                        "{kind:?}: subtask {subtask} of {parallelism}"
                    );
                }
                events.sort_unstable();
                let expected: Vec<u64> = (0..10_000).filter(|n| config.kind(*n) == kind).collect();
                assert_eq!(events, expected, "{kind:?} over {parallelism} subtasks");
            }
        }
    }

    #[test]
    fn ids_count_up_from_the_first_ids() {
        let config = default_config();
        // Person events 0, 50, 100 are persons 0, 1, 2; auctions 1..4 are auctions 0..3.
        assert_eq!(config.last_base0_person_id(config.position(100)), 2);
        assert_eq!(config.last_base0_auction_id(config.position(1)), 0);
        assert_eq!(config.last_base0_auction_id(config.position(3)), 2);
        assert_eq!(config.last_base0_auction_id(config.position(53)), 5);
        // A bid sees the epoch's last auction; a person the previous epoch's.
        assert_eq!(config.last_base0_auction_id(config.position(60)), 5);
        assert_eq!(config.last_base0_auction_id(config.position(100)), 5);
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
}
