//! Round-trip time estimate and retransmission time-out, after RFC 6298:
//! a smoothed RTT and its variation, a time-out of `srtt + 4 * rttvar`,
//! doubled on each time-out (back-off) until a fresh sample arrives.

use std::time::Duration;

/// The RTT estimator.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    backoff: u32,
    /// The reordering window, in quarters of the smoothed RTT.
    reorder_quarters: u32,
    min_rto: Duration,
    max_rto: Duration,
    initial_rto: Duration,
}

impl RttEstimator {
    /// A new estimator with no sample yet.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            backoff: 0,
            reorder_quarters: 1,
            min_rto,
            max_rto,
            initial_rto,
        }
    }

    /// Feeds one sample (from a chunk sent once and then acknowledged).
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        self.backoff = 0;
    }

    /// A time-out fired: double the time-out until the next sample.
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    /// The smoothed RTT, if any sample has arrived.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// How old a chunk must be, once a later one was delivered, to count as
    /// lost: the smoothed RTT plus a reordering window of a quarter RTT or
    /// four deviations, whichever is larger (the time-out before a sample).
    pub fn loss_age(&self) -> Duration {
        match self.srtt {
            None => self.initial_rto,
            Some(srtt) => srtt + (srtt / 4 * self.reorder_quarters).max(self.rttvar * 4),
        }
    }

    /// A chunk declared lost was only late: widen the reordering window by a
    /// quarter RTT, up to two RTTs (RACK's reo_wnd_mult).
    pub fn widen_reordering_window(&mut self) {
        self.reorder_quarters = (self.reorder_quarters + 1).min(8);
    }

    /// How soon after a resend an ack must be the original's: half an RTT.
    pub fn quick_ack(&self) -> Duration {
        self.srtt.map_or(Duration::ZERO, |s| s / 2)
    }

    /// The current retransmission time-out.
    pub fn rto(&self) -> Duration {
        let base = match self.srtt {
            None => self.initial_rto,
            Some(srtt) => srtt + (self.rttvar * 4).max(Duration::from_millis(1)),
        };
        let base = base.clamp(self.min_rto, self.max_rto);
        base.saturating_mul(1 << self.backoff).min(self.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn estimator() -> RttEstimator {
        RttEstimator::new(MS * 200, MS * 10, MS * 2000)
    }

    #[test]
    fn starts_at_the_initial_timeout() {
        assert_eq!(estimator().rto(), MS * 200);
    }

    #[test]
    fn follows_samples_and_respects_the_floor() {
        let mut e = estimator();
        e.sample(MS * 40);
        // srtt 40, rttvar 20: 40 + 80.
        assert_eq!(e.rto(), MS * 120);
        for _ in 0..50 {
            e.sample(MS);
        }
        assert_eq!(e.rto(), MS * 10);
        assert!(e.srtt().unwrap() < MS * 2);
    }

    #[test]
    fn backs_off_exponentially_up_to_the_ceiling_and_recovers() {
        let mut e = estimator();
        e.sample(MS * 40);
        e.back_off();
        assert_eq!(e.rto(), MS * 240);
        e.back_off();
        assert_eq!(e.rto(), MS * 480);
        for _ in 0..10 {
            e.back_off();
        }
        assert_eq!(e.rto(), MS * 2000);
        e.sample(MS * 40);
        assert!(e.rto() < MS * 200);
    }
}
