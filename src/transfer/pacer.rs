//! Pacing from the path's measured delivery rate and minimum RTT, in the
//! manner of BBR (Cardwell et al., "BBR: Congestion-Based Congestion
//! Control", ACM Queue 2016): the acks say how fast chunks reach the peer,
//! the sender spaces its chunks at that rate and keeps about two
//! bandwidth-delay products in flight, so a bottleneck's queue is not
//! overrun; loss does not set the pace but still tells (a lossy round ends
//! the start-up and cuts a probe short, and the endpoint's loss-based
//! window stays a ceiling).
//!
//! - **Rate samples.** Every chunk sent remembers how many chunks had been
//!   delivered then and when; when it is acknowledged, the chunks delivered
//!   since over the time since is one sample of the delivery rate (the
//!   longer of the send and ack intervals, so bunched acks do not inflate
//!   it). Samples taken while the sender had nothing to send only count if
//!   they raise the estimate.
//! - **Bottleneck rate**: the largest sample of the last ten round trips
//!   (and at least 100 ms); a round that loses more than 2 % in steady
//!   state scales it by 0.85 (the estimate ran high, or the path's share
//!   shrank). **Minimum RTT**: the smallest RTT sample of the last
//!   ten seconds.
//! - **Phases.** Start-up paces at 2.89x the estimate (doubling each round
//!   trip) until three rounds bring under 25 % more or a round loses more
//!   than 2 % of its chunks; drain paces below the rate until the queue it
//!   built is gone; then steady state cycles gains 1.25, 0.75, 1 x 6, one
//!   minimum RTT each, probing for more rate and draining what the probe
//!   queued.
//! - **Pacing** allows a burst of one millisecond's worth (at least two
//!   chunks), so a fast path is not held to one chunk per timer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Start-up's pacing gain, 2/ln 2: the rate doubles every round trip.
const STARTUP_GAIN: f64 = 2.885;
/// Steady state's pacing gains, one minimum RTT each.
const CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Chunks in flight allowed, in bandwidth-delay products.
const CWND_GAIN: f64 = 2.0;
/// Rounds without 25 % more rate that end start-up.
const FULL_ROUNDS: u32 = 3;
/// A round that loses more than this share of its chunks is lossy.
const LOSS_THRESHOLD: f64 = 0.02;
/// A lossy round in steady state scales the rate estimate by this.
const LOSS_BACKOFF: f64 = 0.85;
/// The bottleneck rate is the largest sample over this many round trips...
const BW_ROUNDS: u32 = 10;
/// ... and at least this long.
const BW_WINDOW_MIN: Duration = Duration::from_millis(100);
/// How long a minimum RTT sample counts.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// The burst pacing allows, in time at the pacing rate.
const QUANTUM: Duration = Duration::from_millis(1);
/// Time the receiver may hold an ack back, allowed for in the window.
const ACK_ALLOWANCE: Duration = Duration::from_millis(2);

/// What a chunk remembers of the path when it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendSnapshot {
    /// Chunks delivered before it was sent.
    pub delivered: u64,
    /// When the latest of those was delivered (or the first send).
    pub delivered_at: Instant,
    /// When the latest of those had been sent.
    pub first_sent: Instant,
    /// The sender had less to send than it was allowed.
    pub app_limited: bool,
}

/// An acknowledged chunk's snapshot, for a rate sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acked {
    pub sent_at: Instant,
    pub snapshot: SendSnapshot,
}

/// Where the pacer is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Doubling the rate each round trip until the path is full.
    Startup,
    /// Draining the queue start-up built.
    Drain,
    /// Steady state: probing up and down around the estimate.
    ProbeBw,
}

/// The pacer of one sender.
#[derive(Debug)]
pub(crate) struct Pacer {
    phase: Phase,
    delivered: u64,
    delivered_at: Option<Instant>,
    /// When the latest delivered chunk was sent.
    last_acked_sent_at: Option<Instant>,
    /// Rate samples (at, round, chunks per second) within the window,
    /// oldest first.
    samples: VecDeque<(Instant, u64, f64)>,
    min_rtt: Option<(Duration, Instant)>,
    /// Smoothed RTT (gain 1/8).
    srtt: Option<Duration>,
    round: u64,
    next_round_delivered: u64,
    round_delivered: u64,
    round_lost: u64,
    full_bw: f64,
    full_rounds: u32,
    cycle_index: usize,
    cycle_start: Option<Instant>,
    /// Sends count as app-limited until this many chunks are delivered.
    app_limited_until: u64,
    /// The earliest the next chunk may go.
    next_send: Option<Instant>,
    /// The estimate before the last cut for a lossy round, until the
    /// losses prove spurious (and the cut is undone) or a new cut replaces
    /// it.
    cut_from: Option<f64>,
}

impl Pacer {
    pub fn new() -> Self {
        Pacer {
            phase: Phase::Startup,
            delivered: 0,
            delivered_at: None,
            last_acked_sent_at: None,
            samples: VecDeque::new(),
            min_rtt: None,
            srtt: None,
            round: 0,
            next_round_delivered: 0,
            round_delivered: 0,
            round_lost: 0,
            full_bw: 0.0,
            full_rounds: 0,
            cycle_index: 2,
            cycle_start: None,
            app_limited_until: 0,
            next_send: None,
            cut_from: None,
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The bottleneck rate estimate, chunks per second.
    pub fn bandwidth(&self) -> Option<f64> {
        self.samples.iter().map(|&(_, _, r)| r).reduce(f64::max)
    }

    /// The minimum RTT seen lately.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(d, _)| d)
    }

    fn pacing_gain(&self) -> f64 {
        match self.phase {
            Phase::Startup => STARTUP_GAIN,
            Phase::Drain => 1.0 / STARTUP_GAIN,
            Phase::ProbeBw => CYCLE[self.cycle_index],
        }
    }

    /// Chunks per second the sender paces at; none before the first sample.
    pub fn pacing_rate(&self) -> Option<f64> {
        self.bandwidth().map(|bw| bw * self.pacing_gain())
    }

    /// The bandwidth-delay product, chunks.
    fn bdp(&self) -> Option<f64> {
        Some(self.bandwidth()? * (self.min_rtt()? + ACK_ALLOWANCE).as_secs_f64())
    }

    /// Chunks in flight the path should hold: about two bandwidth-delay
    /// products (start-up's gain while it lasts); none before an estimate.
    /// The delay is the smoothed RTT where that is longer than the minimum:
    /// acks that queue behind the peer's own data on the way back (results
    /// flowing while jobs go out) hold chunks in flight longer, and a
    /// window of the unloaded RTT would throttle the sender below the rate
    /// it paces at, and its estimate with it. Pacing, not the window, keeps
    /// the queue short.
    pub fn window(&self) -> Option<u32> {
        let gain = match self.phase {
            Phase::Startup => STARTUP_GAIN,
            _ => CWND_GAIN,
        };
        let floor = self.min_rtt()? + ACK_ALLOWANCE;
        let rtt = match self.phase {
            Phase::ProbeBw => floor.max(self.srtt.unwrap_or_default()),
            // Start-up's own queue would grow the smoothed RTT, and the
            // window with it, without end.
            _ => floor,
        };
        let bdp = self.bandwidth()? * rtt.as_secs_f64();
        Some(((gain * bdp).ceil().min(f64::from(u32::MAX)) as u32).saturating_add(4))
    }

    /// When pacing lets the next chunk go: the pacing clock less the burst
    /// allowed (a millisecond's worth, at least two chunks' time up to ten
    /// milliseconds); none while unpaced.
    pub fn send_time(&self) -> Option<Instant> {
        let rate = self.pacing_rate()?;
        let at = self.next_send?;
        let two = Duration::from_secs_f64((2.0 / rate.max(1e-9)).min(1.0));
        at.checked_sub(QUANTUM.max(two).min(QUANTUM * 10))
    }

    /// When the next chunk may be sent, if pacing holds it back at `now`.
    pub fn next_send(&self, now: Instant) -> Option<Instant> {
        self.send_time().filter(|&t| t > now)
    }

    /// A chunk goes now, with `in_flight` chunks already out: advances the
    /// pacing clock and returns what the chunk remembers.
    pub fn on_send(&mut self, now: Instant, in_flight: u32) -> SendSnapshot {
        if in_flight == 0 && self.delivered_at.is_some() {
            // Nothing in flight: the path was idle, so the next sample's
            // interval starts now rather than at an old delivery.
            self.delivered_at = Some(now);
            self.last_acked_sent_at = Some(now);
        }
        if let Some(rate) = self.pacing_rate() {
            let gap = Duration::from_secs_f64(1.0 / rate.max(1e-9)).min(Duration::from_secs(1));
            let from = self.next_send.map_or(now, |t| t.max(now));
            self.next_send = Some(from + gap);
        }
        SendSnapshot {
            delivered: self.delivered,
            delivered_at: *self.delivered_at.get_or_insert(now),
            first_sent: *self.last_acked_sent_at.get_or_insert(now),
            app_limited: self.delivered < self.app_limited_until,
        }
    }

    /// The sender had room to send and nothing to send, with `in_flight`
    /// chunks out: samples until those are delivered understate the path.
    pub fn on_app_limited(&mut self, in_flight: u32) {
        self.app_limited_until = self.delivered + u64::from(in_flight).max(1);
    }

    /// An ack newly delivered `delivered` chunks (and showed `lost` lost),
    /// `in_flight` remaining; `latest` is the latest-sent chunk it
    /// acknowledged, `rtt` its RTT sample if it had one.
    pub fn on_ack(
        &mut self,
        now: Instant,
        delivered: u32,
        lost: u32,
        latest: Option<Acked>,
        rtt: Option<Duration>,
        in_flight: u32,
    ) {
        if let Some(rtt) = rtt {
            self.srtt = Some(self.srtt.map_or(rtt, |s| (s * 7 + rtt) / 8));
            let stale = self.min_rtt.is_none_or(|(d, at)| {
                rtt <= d || now.saturating_duration_since(at) > MIN_RTT_WINDOW
            });
            if stale {
                self.min_rtt = Some((rtt, now));
            }
        }
        self.round_lost += u64::from(lost);
        if delivered == 0 {
            return;
        }
        self.delivered += u64::from(delivered);
        self.round_delivered += u64::from(delivered);
        self.delivered_at = Some(now);
        let Some(acked) = latest else {
            return;
        };
        self.last_acked_sent_at = Some(
            self.last_acked_sent_at
                .map_or(acked.sent_at, |t| t.max(acked.sent_at)),
        );
        let s = acked.snapshot;
        let ack_elapsed = now.saturating_duration_since(s.delivered_at);
        let send_elapsed = acked.sent_at.saturating_duration_since(s.first_sent);
        let interval = ack_elapsed.max(send_elapsed);
        if !interval.is_zero() {
            let rate = (self.delivered - s.delivered) as f64 / interval.as_secs_f64();
            if !s.app_limited || self.bandwidth().is_none_or(|bw| rate >= bw) {
                self.samples.push_back((now, self.round, rate));
            }
        }
        // Samples older than ten rounds and than the time floor go.
        while self.samples.len() > 1
            && self.samples.front().is_some_and(|&(at, round, _)| {
                self.round.saturating_sub(round) > u64::from(BW_ROUNDS)
                    && now.saturating_duration_since(at) > BW_WINDOW_MIN
            })
        {
            self.samples.pop_front();
        }
        if s.delivered >= self.next_round_delivered {
            self.next_round_delivered = self.delivered;
            self.round += 1;
            self.end_round(now, s.app_limited);
        }
        self.advance(now, in_flight);
    }

    /// `count` chunks declared lost proved only late (their acks came):
    /// they no longer count against this round, and a cut they caused is
    /// undone, as the endpoint undoes its window's (the Eifel response), so
    /// a link that reorders does not pace lower and lower.
    pub fn on_spurious(&mut self, now: Instant, count: u32) {
        self.round_lost = self.round_lost.saturating_sub(u64::from(count));
        if let Some(bw) = self.cut_from.take() {
            self.samples.push_back((now, self.round, bw));
        }
    }

    /// A round trip ended: judge whether start-up has filled the path, and
    /// whether a probe met loss.
    fn end_round(&mut self, now: Instant, app_limited: bool) {
        let total = self.round_delivered + self.round_lost;
        let lossy = self.round_lost >= 3 && self.round_lost as f64 > LOSS_THRESHOLD * total as f64;
        (self.round_delivered, self.round_lost) = (0, 0);
        match self.phase {
            Phase::Startup => {
                let bw = self.bandwidth().unwrap_or(0.0);
                if bw >= self.full_bw * 1.25 {
                    self.full_bw = bw;
                    self.full_rounds = 0;
                } else if !app_limited {
                    self.full_rounds += 1;
                }
                if self.full_rounds >= FULL_ROUNDS || lossy {
                    self.phase = Phase::Drain;
                }
            }
            Phase::ProbeBw if lossy => {
                // The queue overflowed: the estimate runs high (bunched
                // acks) or the path's share shrank. Pace 15 % lower and
                // stop any probe at once.
                if let Some(bw) = self.bandwidth() {
                    self.cut_from = Some(bw);
                    self.samples.clear();
                    self.samples.push_back((now, self.round, bw * LOSS_BACKOFF));
                }
                self.cycle_index = 1;
                self.cycle_start = Some(now);
            }
            _ => {}
        }
    }

    /// Drain ends when the queue is gone; steady state moves through its
    /// gains, one minimum RTT each.
    fn advance(&mut self, now: Instant, in_flight: u32) {
        match self.phase {
            Phase::Drain => {
                if self.bdp().is_some_and(|bdp| f64::from(in_flight) <= bdp) {
                    self.phase = Phase::ProbeBw;
                    self.cycle_index = 2;
                    self.cycle_start = Some(now);
                }
            }
            Phase::ProbeBw => {
                let length = self.min_rtt().unwrap_or(Duration::from_millis(10));
                if self
                    .cycle_start
                    .is_none_or(|t| now.saturating_duration_since(t) >= length)
                {
                    self.cycle_index = (self.cycle_index + 1) % CYCLE.len();
                    self.cycle_start = Some(now);
                }
            }
            Phase::Startup => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path of `rate` chunks per second and `rtt`, with a sender that
    /// always has data: each chunk sent is acked one RTT after the
    /// bottleneck lets it through. Returns the pacer after `seconds`.
    fn steady(rate: f64, rtt: Duration, seconds: f64) -> (Pacer, Vec<f64>) {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        let mut now = t0;
        let mut bottleneck = t0;
        // (ack time, sent at, snapshot)
        let mut flight: VecDeque<(Instant, Instant, SendSnapshot)> = VecDeque::new();
        let mut queue_delays = Vec::new();
        let end = t0 + Duration::from_secs_f64(seconds);
        let gap = Duration::from_secs_f64(1.0 / rate);
        while now < end {
            // Send while the window and the pacing clock allow.
            let window = p.window().unwrap_or(10);
            while (flight.len() as u32) < window && p.next_send(now).is_none() {
                let snap = p.on_send(now, flight.len() as u32);
                bottleneck = bottleneck.max(now) + gap;
                queue_delays.push((bottleneck - now).as_secs_f64());
                flight.push_back((bottleneck + rtt, now, snap));
            }
            // The next event: an ack or the pacing clock.
            let next_ack = flight.front().map(|f| f.0);
            let next_send = p.next_send(now);
            now = [next_ack, next_send, Some(now + Duration::from_micros(100))]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            while flight.front().is_some_and(|f| f.0 <= now) {
                let (_, sent_at, snapshot) = flight.pop_front().unwrap();
                let remaining = flight.len() as u32;
                p.on_ack(
                    now,
                    1,
                    0,
                    Some(Acked { sent_at, snapshot }),
                    Some(now - sent_at),
                    remaining,
                );
            }
        }
        (p, queue_delays)
    }

    /// One flight with nothing else out: sent at `at`, `delivered` chunks
    /// (and `lost`) acknowledged `after` later with an RTT sample of `rtt`.
    /// Returns what the send remembered.
    fn flight(
        p: &mut Pacer,
        at: Instant,
        after: Duration,
        delivered: u32,
        lost: u32,
        rtt: Duration,
    ) -> SendSnapshot {
        let snapshot = p.on_send(at, 0);
        let acked = Acked {
            sent_at: at,
            snapshot,
        };
        p.on_ack(at + after, delivered, lost, Some(acked), Some(rtt), 0);
        snapshot
    }

    #[test]
    fn it_learns_the_bottleneck_rate_and_the_path_rtt_and_settles() {
        let rtt = Duration::from_millis(40);
        let (p, delays) = steady(850.0, rtt, 10.0);
        let bw = p.bandwidth().unwrap();
        assert!((bw - 850.0).abs() < 850.0 * 0.05, "{bw}");
        let min = p.min_rtt().unwrap();
        assert!(
            min >= rtt && min < rtt + Duration::from_millis(5),
            "{min:?}"
        );
        assert_eq!(p.phase(), Phase::ProbeBw);
        // In steady state the bottleneck's queue stays under a round trip
        // of data: the last seconds' delays, at most 1.25 x the probe.
        let tail = &delays[delays.len() * 3 / 4..];
        let worst = tail.iter().copied().fold(0.0, f64::max);
        assert!(worst < 0.040, "{worst}");
    }

    #[test]
    fn startup_doubles_until_the_rate_stops_growing() {
        let (p, _) = steady(10_000.0, Duration::from_millis(10), 0.05);
        // 5 round trips: still growing from its first sample.
        assert_eq!(p.phase(), Phase::Startup);
        let (p, _) = steady(10_000.0, Duration::from_millis(10), 1.0);
        assert_ne!(p.phase(), Phase::Startup);
    }

    #[test]
    fn a_lossy_round_ends_startup() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        let rtt = Duration::from_millis(10);
        flight(&mut p, t0, rtt, 10, 0, rtt);
        assert_eq!(p.phase(), Phase::Startup);
        flight(&mut p, t0 + rtt, rtt, 50, 5, rtt);
        assert_eq!(
            p.phase(),
            Phase::ProbeBw,
            "drained at once: nothing in flight"
        );
    }

    #[test]
    fn a_cut_for_losses_that_prove_spurious_is_undone() {
        let rtt = Duration::from_millis(10);
        let (mut p, _) = steady(10_000.0, rtt, 3.0);
        assert_eq!(p.phase(), Phase::ProbeBw);
        let bw = p.bandwidth().unwrap();
        // A round that loses half its chunks: the estimate is cut.
        let now = Instant::now() + Duration::from_secs(4);
        flight(&mut p, now, rtt, 20, 20, rtt);
        let cut = p.bandwidth().unwrap();
        assert!((cut - bw * LOSS_BACKOFF).abs() < 1e-6, "{cut} from {bw}");
        // The losses were reordering: their acks come, the cut goes.
        p.on_spurious(now + rtt * 2, 20);
        assert_eq!(p.bandwidth(), Some(bw));
        // Only once.
        p.on_spurious(now + rtt * 3, 20);
        assert_eq!(p.bandwidth(), Some(bw));
    }

    #[test]
    fn an_absurd_sample_saturates_the_window_instead_of_overflowing() {
        // Four million chunks acknowledged a millisecond after they left,
        // with a one-second RTT: a bandwidth-delay product beyond u32.
        let t0 = Instant::now();
        let mut p = Pacer::new();
        flight(
            &mut p,
            t0,
            Duration::from_millis(1),
            4_000_000,
            0,
            Duration::from_secs(1),
        );
        assert_eq!(p.window(), Some(u32::MAX));
        // The pacing clock still moves forward.
        let next = p.on_send(t0 + Duration::from_millis(2), 0);
        assert_eq!(next.delivered, 4_000_000);
        assert!(p.send_time().is_some());
    }

    #[test]
    fn app_limited_samples_do_not_lower_the_estimate() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        let ms = Duration::from_millis;
        flight(&mut p, t0, ms(10), 100, 0, ms(10));
        let bw = p.bandwidth().unwrap();
        assert!((bw - 10_000.0).abs() < 1.0, "{bw}");
        // The sender then has little to send: one chunk in 10 ms.
        p.on_app_limited(0);
        let snap = flight(&mut p, t0 + ms(20), ms(10), 1, 0, ms(10));
        assert!(snap.app_limited);
        assert_eq!(p.bandwidth(), Some(bw));
    }

    #[test]
    fn pacing_spaces_chunks_at_the_rate_with_a_small_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        assert_eq!(p.next_send(t0), None, "no estimate: unpaced");
        let ms = Duration::from_millis;
        // 1000 chunks per second measured; start-up paces at 2.885x.
        flight(&mut p, t0, ms(100), 100, 0, ms(100));
        let now = t0 + ms(100);
        let mut sent = 0;
        while p.next_send(now).is_none() && sent < 100 {
            p.on_send(now, sent);
            sent += 1;
        }
        // A millisecond's burst at 2885 chunks/s: about three chunks.
        assert!((3..=5).contains(&sent), "{sent}");
        let next = p.next_send(now).unwrap();
        assert!(next > now && next < now + ms(2), "{:?}", next - now);
    }
}
