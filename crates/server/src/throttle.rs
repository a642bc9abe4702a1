//! A failure that can repeat thousands of times a second (accepting while out of file
//! descriptors, say) is logged when it first happens and then once per interval with how
//! often it happened meanwhile, not once per try. A leaf: it imports nothing from the crate.

use std::time::{Duration, Instant};

/// How often a repeated failure is reported.
pub const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Throttle {
    /// When the last report was made.
    reported: Option<Instant>,
    /// Failures since then, not reported yet.
    unreported: u64,
}

/// What to log for a failure that just happened.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// Nothing now: it is counted for the next report.
    Counted,
    /// The first failure since the last report an interval or more ago; `also` more happened
    /// since that report.
    Log { also: u64 },
}

impl Throttle {
    pub fn failed(&mut self, now: Instant) -> Report {
        match self.reported {
            Some(at) if now.duration_since(at) < INTERVAL => {
                self.unreported += 1;
                Report::Counted
            }
            _ => {
                self.reported = Some(now);
                Report::Log { also: std::mem::take(&mut self.unreported) }
            }
        }
    }

    /// It worked this time. Once the interval since the last report is over, answers the
    /// failures not reported yet, if any, and forgets the episode: a failure now and then between
    /// successes is still logged once per interval.
    pub fn recovered(&mut self, now: Instant) -> Option<u64> {
        let at = self.reported?;
        if now.duration_since(at) < INTERVAL {
            return None;
        }
        self.reported = None;
        Some(std::mem::take(&mut self.unreported)).filter(|&count| count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_logged_then_counted_until_the_interval_is_over() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.failed(start), Report::Log { also: 0 });
        assert_eq!(throttle.failed(start + Duration::from_millis(10)), Report::Counted);
        assert_eq!(throttle.failed(start + Duration::from_secs(9)), Report::Counted);
        assert_eq!(throttle.failed(start + INTERVAL), Report::Log { also: 2 });
        assert_eq!(throttle.recovered(start + INTERVAL + Duration::from_secs(1)), None, "the interval is not over");
        assert_eq!(throttle.failed(start + INTERVAL + Duration::from_secs(2)), Report::Counted);
        assert_eq!(throttle.recovered(start + INTERVAL * 2), Some(1));
        assert_eq!(throttle.recovered(start + INTERVAL * 2), None, "nothing left to report");
        assert_eq!(throttle.failed(start + INTERVAL * 3), Report::Log { also: 0 }, "a new episode starts at once");
        assert_eq!(throttle.recovered(start + INTERVAL * 4), None, "no failure went unreported");
    }
}
