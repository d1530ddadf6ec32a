//! The adaptive policy: `completion` with the cost of moving weighed in,
//! as Dask's work stealing weighs a task's transfer cost against its
//! compute time. Moving m jobs takes T(m) = RTT + m x bytes per job / link
//! rate (both measured); the peer starts them no sooner than that, so after
//! the move this node finishes at F_l - m / r_l and the peer at
//! max(F_p, T(m)) + m / r_p. The policy picks the m that makes the later of
//! the two earliest, and moves only if that saves more than `threshold`
//! milliseconds. On a slow link it moves fewer jobs, or none; before the
//! link's rate is known it sends one job at a time, which measures it.

use super::completion::{Forecast, settled};
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

impl TransferPolicy for Adaptive {
    fn name(&self) -> &'static str {
        "adaptive"
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        let forecast = Forecast::of(input);
        if let Some(decision) = settled(input, &forecast) {
            return decision;
        }
        let (local, peer) = forecast.finish();
        if local - peer <= self.threshold_s {
            return Decision::Hold;
        }
        let most = forecast.level().floor().min(f64::from(input.local_queue));
        if most < 1.0 {
            return Decision::Hold;
        }
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
