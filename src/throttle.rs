//! The throttle schedule: in each 100 ms period a worker computes for
//! `throttle * 100 ms` and sleeps the rest. Pure: the worker passes in the
//! time and the time it spent computing, and is told whether to compute or
//! until when to sleep.

use std::time::{Duration, Instant};

/// The throttle period.
pub const PERIOD: Duration = Duration::from_millis(100);

/// What a worker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Compute one more slice.
    Compute,
    /// Sleep until this instant (the end of the current period).
    SleepUntil(Instant),
}

/// One worker's position in its throttle periods.
#[derive(Debug, Clone)]
pub struct ThrottleSchedule {
    period_start: Instant,
    used: Duration,
}

impl ThrottleSchedule {
    /// A schedule whose first period starts at `now`.
    pub fn new(now: Instant) -> Self {
        ThrottleSchedule {
            period_start: now,
            used: Duration::ZERO,
        }
    }

    /// Decides the next step at `now` for `throttle` (clamped to 0..=1). A
    /// changed throttle applies from this call on, so within one period.
    pub fn next(&mut self, now: Instant, throttle: f64) -> Step {
        if now >= self.period_start + PERIOD {
            // A new period starts now: a worker that slept past the end, or
            // whose last slice ran over it, gets a full budget again.
            self.period_start = now;
            self.used = Duration::ZERO;
        }
        let budget = PERIOD.mul_f64(if throttle.is_nan() {
            0.0
        } else {
            throttle.clamp(0.0, 1.0)
        });
        if self.used < budget {
            Step::Compute
        } else {
            Step::SleepUntil(self.period_start + PERIOD)
        }
    }

    /// Records time spent computing in the current period.
    pub fn record(&mut self, computed: Duration) {
        self.used += computed;
    }

    /// Time computed so far in the current period.
    pub fn used(&self) -> Duration {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs a schedule for `periods` periods with slices of `slice`, returning
    /// the computed time in each period.
    fn simulate(throttle: f64, slice: Duration, periods: u32) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = ThrottleSchedule::new(now);
        let mut per_period = vec![Duration::ZERO; periods as usize];
        while now < t0 + PERIOD * periods {
            match s.next(now, throttle) {
                Step::Compute => {
                    let index = ((now - t0).as_micros() / PERIOD.as_micros()) as usize;
                    per_period[index] += slice;
                    s.record(slice);
                    now += slice;
                }
                Step::SleepUntil(until) => {
                    assert!(until > now, "a sleep must move time forward");
                    now = until;
                }
            }
        }
        per_period
    }

    #[test]
    fn each_period_computes_its_share_then_sleeps() {
        for (throttle, expected_ms) in [(0.1, 10), (0.25, 25), (0.5, 50), (0.75, 75), (1.0, 100)] {
            let periods = simulate(throttle, MS, 5);
            for p in periods {
                assert_eq!(p, MS * expected_ms, "throttle {throttle}");
            }
        }
    }

    #[test]
    fn zero_pauses_the_worker() {
        let periods = simulate(0.0, MS, 3);
        assert!(periods.iter().all(|p| p.is_zero()));
    }

    #[test]
    fn a_slice_longer_than_the_budget_overshoots_by_one_slice_only() {
        // A 4 ms slice at a 10 % throttle: three slices (12 ms) per period.
        let periods = simulate(0.1, MS * 4, 4);
        assert_eq!(periods[0], MS * 12);
    }

    #[test]
    fn a_new_throttle_applies_within_the_period() {
        let t0 = Instant::now();
        let mut s = ThrottleSchedule::new(t0);
        assert_eq!(s.next(t0, 1.0), Step::Compute);
        s.record(MS * 30);
        // Lowered to 20 % after 30 ms of work: sleep to the end of the period.
        assert_eq!(s.next(t0 + MS * 30, 0.2), Step::SleepUntil(t0 + PERIOD));
        // Next period: 20 ms of budget.
        assert_eq!(s.next(t0 + PERIOD, 0.2), Step::Compute);
        s.record(MS * 20);
        assert_eq!(
            s.next(t0 + PERIOD + MS * 20, 0.2),
            Step::SleepUntil(t0 + PERIOD * 2)
        );
        assert_eq!(s.used(), MS * 20);
    }
}
