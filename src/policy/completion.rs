//! The completion-time policy: balances predicted finishing times rather
//! than queue lengths. A node's finishing time is its jobs (queued, plus
//! half of those being computed) over its predicted rate, workers x
//! throttle x capacity, with capacities measured live from the jobs done.
//! When this node would finish more than `threshold` milliseconds, plus a
//! tenth of its predicted time, after the peer it sends
//! (q_l r_p - q_p r_l) / (r_l + r_p) jobs, which levels the two times.
//! Hysteresis: it moves only past that band, to the level, and never while
//! a move in either direction is still on its way, so noise in the
//! measured rates (a tenth is what two nodes sharing a machine's cores
//! show) cannot bounce jobs back and forth. A paused node (rate 0) gives
//! away every job it has not started.

use super::{Decision, PolicyInput, TransferPolicy};

/// Balances predicted finishing times; threshold in milliseconds.
#[derive(Debug, Clone)]
pub struct Completion {
    threshold_s: f64,
}

/// The two nodes' predicted loads and rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Forecast {
    /// Jobs still to do here (queued plus half of those being computed).
    pub local_load: f64,
    /// The same at the peer.
    pub peer_load: f64,
    /// Predicted jobs per second here.
    pub local_rate: f64,
    /// Predicted jobs per second at the peer.
    pub peer_rate: f64,
}

impl Forecast {
    pub(super) fn of(input: &PolicyInput) -> Self {
        let (local_rate, peer_rate) = input.predicted_rates();
        Forecast {
            local_load: f64::from(input.local_queue) + 0.5 * f64::from(input.local_busy),
            peer_load: f64::from(input.peer_queue) + 0.5 * f64::from(input.peer_busy),
            local_rate,
            peer_rate,
        }
    }

    /// Seconds until this node, and the peer, would finish.
    pub(super) fn finish(&self) -> (f64, f64) {
        (
            self.local_load / self.local_rate,
            self.peer_load / self.peer_rate,
        )
    }

    /// Jobs to move from here to the peer to level the finishing times.
    pub(super) fn level(&self) -> f64 {
        (self.local_load * self.peer_rate - self.peer_load * self.local_rate)
            / (self.local_rate + self.peer_rate)
    }
}

/// Measured rates are this uncertain: a difference of finishing times
/// within this share of the later one is noise.
const RATE_NOISE: f64 = 0.1;

/// A move the finishing times call for: the forecast, both predicted
/// finishing times, and the most jobs worth moving (whole, at least one).
pub(super) struct Move {
    pub forecast: Forecast,
    pub local: f64,
    pub peer: f64,
    pub most: f64,
}

/// What every completion-time policy does first: `Err` with the answer
/// when the times do not call for a move (nothing to move, a move on its
/// way, a paused node, a difference within the threshold and the noise
/// band, less than a job to level), else the move they call for.
pub(super) fn plan(input: &PolicyInput, threshold_s: f64) -> Result<Move, Decision> {
    let forecast = Forecast::of(input);
    if let Some(decision) = settled(input, &forecast) {
        return Err(decision);
    }
    let (local, peer) = forecast.finish();
    if local - peer <= threshold_s + RATE_NOISE * local {
        return Err(Decision::Hold);
    }
    let most = forecast.level().floor().min(f64::from(input.local_queue));
    if most < 1.0 {
        return Err(Decision::Hold);
    }
    Ok(Move {
        forecast,
        local,
        peer,
        most,
    })
}

/// The answers that do not depend on the times.
fn settled(input: &PolicyInput, forecast: &Forecast) -> Option<Decision> {
    if input.local_queue == 0 || input.in_flight > 0 || input.peer_in_flight > 0 {
        return Some(Decision::Hold);
    }
    if forecast.peer_rate <= 0.0 {
        return Some(Decision::Hold);
    }
    if forecast.local_rate <= 0.0 {
        return Some(Decision::Send(input.local_queue));
    }
    if !input.rates_measured() {
        // Times in seconds need one measured rate.
        return Some(Decision::Hold);
    }
    None
}

impl Completion {
    /// A policy that levels finishing times differing by more than
    /// `threshold_ms` milliseconds.
    pub fn new(threshold_ms: u32) -> Self {
        Completion {
            threshold_s: f64::from(threshold_ms) / 1000.0,
        }
    }
}

impl TransferPolicy for Completion {
    fn name(&self) -> &'static str {
        "completion"
    }

    fn on_state(&mut self, input: &PolicyInput) -> Decision {
        match plan(input, self.threshold_s) {
            Ok(m) => Decision::Send(m.most as u32),
            Err(decision) => decision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(local: u32, peer: u32, capacity: (f64, f64), throttle: (f64, f64)) -> PolicyInput {
        PolicyInput {
            local_queue: local,
            peer_queue: peer,
            local_capacity: capacity.0,
            peer_capacity: capacity.1,
            local_throttle: throttle.0,
            peer_throttle: throttle.1,
            local_workers: 1,
            peer_workers: 1,
            ..PolicyInput::default()
        }
    }

    #[test]
    fn decision_table() {
        // (local, peer, capacities, throttles, threshold ms) -> decision
        let table = [
            // Alike and level: nothing moves.
            (512, 512, (100.0, 100.0), (1.0, 1.0), 10, Decision::Hold),
            // A slave at 30 %: it finishes 512/30 s after 512/100 s, so it
            // sends (512*100 - 512*30)/130 = 275.7 jobs.
            (
                512,
                512,
                (100.0, 100.0),
                (0.3, 1.0),
                10,
                Decision::Send(275),
            ),
            // The faster node never sends to the slower one.
            (512, 512, (100.0, 100.0), (1.0, 0.3), 10, Decision::Hold),
            // 2 jobs apart at 100 jobs/s is 20 ms: within 10 ms and a
            // tenth of 0.52 s, noise.
            (52, 50, (100.0, 100.0), (1.0, 1.0), 10, Decision::Hold),
            // 8 jobs apart: 80 ms, past 10 + 56 ms: sends 4.
            (56, 48, (100.0, 100.0), (1.0, 1.0), 10, Decision::Send(4)),
            // Near the end, 3 jobs against none: 30 ms past 13 ms.
            (3, 0, (100.0, 100.0), (1.0, 1.0), 10, Decision::Send(1)),
            // Capacities differ: the measured ones weigh.
            (100, 100, (50.0, 150.0), (1.0, 1.0), 10, Decision::Send(50)),
            // Only the peer's capacity is known: taken for both.
            (100, 0, (0.0, 100.0), (1.0, 1.0), 10, Decision::Send(50)),
            // No capacity known yet: hold.
            (100, 0, (0.0, 0.0), (1.0, 1.0), 10, Decision::Hold),
            // Paused: gives away every queued job, known rates or not.
            (28, 200, (0.0, 0.0), (0.0, 1.0), 10, Decision::Send(28)),
            // Both paused: nothing helps.
            (28, 200, (100.0, 100.0), (0.0, 0.0), 10, Decision::Hold),
            // The peer paused: keep everything.
            (28, 200, (100.0, 100.0), (1.0, 0.0), 10, Decision::Hold),
            (0, 0, (100.0, 100.0), (1.0, 1.0), 0, Decision::Hold),
        ];
        for (local, peer, capacity, throttle, ms, expected) in table {
            let mut policy = Completion::new(ms);
            let i = input(local, peer, capacity, throttle);
            assert_eq!(
                policy.on_state(&i),
                expected,
                "local {local}, peer {peer}, capacity {capacity:?}, throttle {throttle:?}, {ms} ms"
            );
        }
    }

    #[test]
    fn holds_while_a_move_is_on_its_way() {
        let mut policy = Completion::new(10);
        let mut i = input(512, 0, (100.0, 100.0), (1.0, 1.0));
        assert_eq!(policy.on_state(&i), Decision::Send(256));
        i.in_flight = 256;
        assert_eq!(policy.on_state(&i), Decision::Hold);
        i.in_flight = 0;
        i.peer_in_flight = 3;
        assert_eq!(policy.on_state(&i), Decision::Hold);
    }

    #[test]
    fn a_move_levels_the_times_so_the_next_look_holds() {
        let mut policy = Completion::new(10);
        let i = input(600, 100, (100.0, 100.0), (0.25, 1.0));
        let Decision::Send(n) = policy.on_state(&i) else {
            panic!("no move");
        };
        // After it, each side's view says the times are level: no move back.
        let after = input(600 - n, 100 + n, (100.0, 100.0), (0.25, 1.0));
        assert_eq!(policy.on_state(&after), Decision::Hold);
        let mut peer = Completion::new(10);
        let seen_by_peer = input(100 + n, 600 - n, (100.0, 100.0), (1.0, 0.25));
        assert_eq!(peer.on_state(&seen_by_peer), Decision::Hold);
    }
}
