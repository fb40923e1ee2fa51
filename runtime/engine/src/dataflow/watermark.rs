//! Combining watermarks over a task's input channels.
//!
//! The task's watermark is the minimum over its input channels, leaving out channels that are
//! idle (marked by their source after `table.exec.source.idle-timeout`) or have ended. When every
//! channel has ended it is [`MAX_WATERMARK`]; it never goes backwards.

use crate::dataflow::message::{MAX_WATERMARK, Timestamp};

#[derive(Debug, Clone, Copy)]
struct Channel {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
}

#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    channels: Vec<Channel>,
    current: Timestamp,
}

impl WatermarkTracker {
    pub fn new(channels: usize) -> Self {
        WatermarkTracker {
            channels: vec![
                Channel {
                    watermark: Timestamp::MIN,
                    idle: false,
                    ended: false,
                };
                channels
            ],
            current: Timestamp::MIN,
        }
    }

    pub fn current(&self) -> Timestamp {
        self.current
    }

    pub fn all_ended(&self) -> bool {
        self.channels.iter().all(|c| c.ended)
    }

    /// Whether `channel` has ended (barrier alignment no longer waits for it).
    pub fn is_ended(&self, channel: usize) -> bool {
        self.channels[channel].ended
    }

    /// A channel sent data: it is active again. Returns the new combined watermark if it
    /// advanced (it cannot, but an active channel may now hold it back).
    pub fn on_data(&mut self, channel: usize) {
        self.channels[channel].idle = false;
    }

    /// A channel sent a watermark; returns the combined watermark if it advanced.
    pub fn on_watermark(&mut self, channel: usize, watermark: Timestamp) -> Option<Timestamp> {
        let c = &mut self.channels[channel];
        c.idle = false;
        c.watermark = c.watermark.max(watermark);
        self.advance()
    }

    /// How far the most advanced live channel's watermark is ahead of the least advanced
    /// one's (0 with fewer than two live channels that have a watermark).
    pub fn spread(&self) -> Timestamp {
        let live = self
            .channels
            .iter()
            .filter(|c| !c.ended && !c.idle)
            .filter(|c| c.watermark != Timestamp::MIN && c.watermark < MAX_WATERMARK);
        let (min, max) = live.fold((Timestamp::MAX, Timestamp::MIN), |(lo, hi), c| {
            (lo.min(c.watermark), hi.max(c.watermark))
        });
        if min > max { 0 } else { max - min }
    }

    pub fn on_idle(&mut self, channel: usize) -> Option<Timestamp> {
        self.channels[channel].idle = true;
        self.advance()
    }

    pub fn on_end(&mut self, channel: usize) -> Option<Timestamp> {
        self.channels[channel].ended = true;
        self.advance()
    }

    fn advance(&mut self) -> Option<Timestamp> {
        let combined = if self.all_ended() {
            MAX_WATERMARK
        } else {
            // Active channels hold the watermark back; if all live channels are idle, nothing
            // moves (Flink: the output becomes idle too).
            let active = self
                .channels
                .iter()
                .filter(|c| !c.ended && !c.idle)
                .map(|c| c.watermark)
                .min();
            active?
        };
        if combined > self.current {
            self.current = combined;
            Some(combined)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_slowest_active_channel_holds_the_watermark() {
        let mut t = WatermarkTracker::new(2);
        assert_eq!(t.on_watermark(0, 100), None);
        assert_eq!(t.on_watermark(1, 50), Some(50));
        assert_eq!(t.on_watermark(1, 150), Some(100));
    }

    #[test]
    fn idle_channels_do_not_hold_it_back_until_they_send_again() {
        let mut t = WatermarkTracker::new(2);
        t.on_watermark(0, 100);
        assert_eq!(t.on_idle(1), Some(100));
        assert_eq!(t.on_watermark(0, 200), Some(200));
        t.on_data(1);
        assert_eq!(
            t.on_watermark(0, 300),
            None,
            "channel 1 is active again at MIN"
        );
    }

    #[test]
    fn spread_is_between_live_channels_with_a_watermark() {
        let mut t = WatermarkTracker::new(3);
        assert_eq!(t.spread(), 0, "no watermark yet");
        t.on_watermark(0, 100);
        assert_eq!(t.spread(), 0, "one channel alone");
        t.on_watermark(1, 350);
        assert_eq!(t.spread(), 250);
        t.on_idle(0);
        assert_eq!(t.spread(), 0, "idle channels do not count");
        t.on_watermark(2, MAX_WATERMARK);
        assert_eq!(t.spread(), 0, "the end-of-input watermark does not count");
    }

    #[test]
    fn all_channels_ended_gives_the_max_watermark() {
        let mut t = WatermarkTracker::new(2);
        t.on_end(0);
        assert_eq!(t.on_end(1), Some(MAX_WATERMARK));
    }

    proptest! {
        #[test]
        fn combined_watermark_is_monotonic_and_never_above_an_active_channel(
            events in proptest::collection::vec((0usize..4, 0u8..4, -1000i64..1000), 0..200)
        ) {
            let mut t = WatermarkTracker::new(4);
            let mut model = [(Timestamp::MIN, false, false); 4];
            let mut last = Timestamp::MIN;
            for (ch, kind, wm) in events {
                let out = match kind {
                    0 | 1 => { model[ch].0 = model[ch].0.max(wm); model[ch].1 = false; t.on_watermark(ch, wm) }
                    2 => { model[ch].1 = true; t.on_idle(ch) }
                    _ => { model[ch].2 = true; t.on_end(ch) }
                };
                if let Some(w) = out {
                    prop_assert!(w > last);
                    last = w;
                    // When it advances, no active channel is behind it.
                    for (cw, idle, ended) in model {
                        if !idle && !ended { prop_assert!(w <= cw); }
                    }
                }
                prop_assert_eq!(t.current(), last);
            }
        }
    }
}
