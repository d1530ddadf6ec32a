//! The adaptive policy: `completion` with the cost of moving weighed in,
//! as Dask's work stealing weighs a task's transfer cost against its
//! compute time. Moving m jobs takes T(m) = RTT + m x bytes per job / link
//! rate (both measured); the peer starts them no sooner than that, so after
//! the move this node finishes at F_l - m / r_l and the peer at
//! max(F_p, T(m)) + m / r_p. The policy picks the m that makes the later of
//! the two earliest, and moves only if that saves more than `threshold`
//! milliseconds. On a slow link it moves fewer jobs, or none; before the
//! link's rate is known it sends one job at a time, which measures it.

use super::completion::{Forecast, Move, plan};
use super::{Decision, PolicyInput, TransferPolicy};

/// Completion-time balancing that pays for the move; threshold in ms.
#[derive(Debug, Clone)]
pub struct Adaptive {
    threshold_s: f64,
}

impl Adaptive {
    /// A policy that moves jobs when doing so saves more than
    /// `threshold_ms` milliseconds, the move included.
    pub fn new(threshold_ms: u32) -> Self {
        Adaptive {
            threshold_s: f64::from(threshold_ms) / 1000.0,
        }
    }
}

/// Seconds to move `jobs` jobs to the peer.
fn move_seconds(input: &PolicyInput, jobs: f64) -> f64 {
    let rtt = input.rtt.map_or(0.0, |r| r.as_secs_f64());
    rtt + jobs * input.bytes_per_job as f64 / input.link_bytes_per_s
}

/// When the later of the two nodes finishes if `jobs` move.
fn makespan(input: &PolicyInput, f: &Forecast, jobs: f64) -> f64 {
    let (local, peer) = f.finish();
    let local_after = local - jobs / f.local_rate;
    let peer_after = peer.max(move_seconds(input, jobs)) + jobs / f.peer_rate;
    local_after.max(peer_after)
}

/// When the master and the slave would finish if the master keeps `kept`
/// of the `unsent` bootstrap jobs: the master computes them after its own;
/// the slave's jobs arrive no sooner than the link carries them (those sent
/// before them included), and its last result comes back over it.
fn bootstrap_times(input: &PolicyInput, f: &Forecast, unsent: f64, kept: f64) -> (f64, f64) {
    let per_job = input.bytes_per_job as f64 / input.link_bytes_per_s;
    let rtt = input.rtt.map_or(0.0, |r| r.as_secs_f64());
    let master = (f.local_load + kept) / f.local_rate;
    let to_slave = f64::from(input.in_flight) + unsent - kept;
    let computed = (f.peer_load + to_slave) / f.peer_rate;
    let last_arrival = rtt + to_slave * per_job + 1.0 / f.peer_rate;
    (master, computed.max(last_arrival) + per_job)
}

impl TransferPolicy for Adaptive {
    fn name(&self) -> &'static str {
        "adaptive"
    }

    fn on_bootstrap(&mut self, input: &PolicyInput, unsent: u32) -> u32 {
        let forecast = Forecast::of(input);
        if unsent == 0
            || input.link_bytes_per_s <= 0.0
            || forecast.local_rate <= 0.0
            || forecast.peer_rate <= 0.0
            || !input.rates_measured()
        {
            return 0;
        }
        let unsent = f64::from(unsent);
        let times = |kept: f64| bootstrap_times(input, &forecast, unsent, kept);
        let makespan = |kept: f64| {
            let (m, s) = times(kept);
            m.max(s)
        };
        // The master's time rises with what it keeps and the slave's
        // falls: bisect for the crossing over whole jobs.
        let (mut lo, mut hi) = (0.0_f64, unsent);
        while hi - lo > 1.0 {
            let mid = ((lo + hi) / 2.0).floor();
            let (m, s) = times(mid);
            if m < s {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let best = if makespan(lo) <= makespan(hi) { lo } else { hi };
        let saved = makespan(0.0) - makespan(best);
        if best >= 1.0 && saved > self.threshold_s {
            best as u32
        } else {
            0
        }
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        let Move {
            forecast,
            local,
            peer,
            most,
        } = match plan(input, self.threshold_s) {
            Ok(m) => m,
            Err(decision) => return decision,
        };
        if input.link_bytes_per_s <= 0.0 {
            // The link's rate is unknown: a probe of one job measures it.
            return Decision::Send(1);
        }
        // The local finish falls with m and the peer's rises: the best m is
        // where they cross, found by bisection over whole jobs.
        let (mut lo, mut hi) = (0.0_f64, most);
        while hi - lo > 1.0 {
            let mid = ((lo + hi) / 2.0).floor();
            let local_after = local - mid / forecast.local_rate;
            let peer_after = peer.max(move_seconds(input, mid)) + mid / forecast.peer_rate;
            if peer_after < local_after {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let best = [lo, hi].into_iter().filter(|&m| m >= 1.0).min_by(|a, b| {
            makespan(input, &forecast, *a).total_cmp(&makespan(input, &forecast, *b))
        });
        match best {
            Some(m) if local - makespan(input, &forecast, m) > self.threshold_s => {
                Decision::Send(m as u32)
            }
            _ => Decision::Hold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Alike nodes at 100 jobs/s per worker, 256 KiB jobs.
    fn input(local: u32, peer: u32, throttle: (f64, f64), link: f64, rtt_ms: u64) -> PolicyInput {
        PolicyInput {
            local_queue: local,
            peer_queue: peer,
            local_capacity: 100.0,
            peer_capacity: 100.0,
            local_throttle: throttle.0,
            peer_throttle: throttle.1,
            local_workers: 1,
            peer_workers: 1,
            bytes_per_job: 256 << 10,
            link_bytes_per_s: link,
            rtt: Some(Duration::from_millis(rtt_ms)),
            ..PolicyInput::default()
        }
    }

    const GBIT: f64 = 125e6;
    const WAN: f64 = 1.25e6; // 10 Mbit/s

    #[test]
    fn decision_table() {
        // (local, peer, throttles, link bytes/s, rtt ms, threshold ms) -> decision
        let table = [
            // A fast link: as `completion` (275 jobs), give or take one.
            (
                512,
                512,
                (0.3, 1.0),
                10.0 * GBIT,
                0,
                10,
                Decision::Send(275),
            ),
            // 1 Gbit/s: 2 ms a job on the wire against 10 ms of compute.
            (512, 512, (0.3, 1.0), GBIT, 0, 10, Decision::Send(275)),
            // 10 Mbit/s: 210 ms a job: 67 jobs, where both finish at 14.8 s.
            (512, 512, (0.3, 1.0), WAN, 54, 10, Decision::Send(67)),
            // ... but a job that takes 10 ms to compute never pays for its
            // 210 ms on the wire near the end.
            (3, 0, (1.0, 1.0), WAN, 54, 10, Decision::Hold),
            (3, 0, (1.0, 1.0), 10.0 * GBIT, 0, 10, Decision::Send(1)),
            // The link's rate not known yet: one job, to measure it.
            (512, 0, (1.0, 1.0), 0.0, 0, 10, Decision::Send(1)),
            // Paused: everything, whatever the cost.
            (28, 200, (0.0, 1.0), WAN, 54, 10, Decision::Send(28)),
            (100, 100, (1.0, 1.0), GBIT, 0, 10, Decision::Hold),
        ];
        for (local, peer, throttle, link, rtt, ms, expected) in table {
            let mut policy = Adaptive::new(ms);
            let i = input(local, peer, throttle, link, rtt);
            assert_eq!(
                policy.on_state(&i),
                expected,
                "local {local}, peer {peer}, throttles {throttle:?}, link {link}, rtt {rtt} ms"
            );
        }
    }

    #[test]
    fn keeps_the_bootstrap_a_slow_link_cannot_carry_in_time() {
        // The master with 500 of its own jobs to do, 500 of the slave's not
        // sent yet and 12 on their way.
        let at = |link: f64| {
            let mut i = input(500, 0, (1.0, 1.0), link, 100);
            i.in_flight = 12;
            Adaptive::new(10).on_bootstrap(&i, 500)
        };
        // A fast link: the slave gets its half, give or take a few.
        assert!(at(10.0 * GBIT) <= 8, "{}", at(10.0 * GBIT));
        // 10 Mbit/s: 210 ms a job on the wire against 10 ms of compute:
        // the master keeps nearly all of it.
        let kept = at(WAN);
        assert!((450..=500).contains(&kept), "{kept}");
        // 100 Mbit/s: 21 ms a job: about 190.
        let kept = at(0.1 * GBIT);
        assert!((170..=210).contains(&kept), "{kept}");
        // An idle master keeps half, whatever the link.
        let mut idle = input(0, 0, (1.0, 1.0), 10.0 * GBIT, 0);
        idle.in_flight = 0;
        assert_eq!(Adaptive::new(10).on_bootstrap(&idle, 500), 250);
        // Not before the link was measured, nor by the other policies.
        assert_eq!(at(0.0), 0);
        let i = input(0, 20, (1.0, 1.0), WAN, 100);
        assert_eq!(super::super::Completion::new(10).on_bootstrap(&i, 500), 0);
    }

    #[test]
    fn moves_less_on_a_slower_link() {
        let mut previous = u32::MAX;
        for link in [100.0 * GBIT, GBIT, 0.1 * GBIT, WAN, 0.1 * WAN] {
            let mut policy = Adaptive::new(10);
            let moved = match policy.on_state(&input(800, 200, (0.5, 1.0), link, 10)) {
                Decision::Send(n) => n,
                _ => 0,
            };
            assert!(
                moved <= previous,
                "{moved} jobs at {link} B/s, {previous} on a faster link"
            );
            previous = moved;
        }
        assert!(previous < 10, "{previous} jobs moved on a 1 Mbit/s link");
    }
}
