//! The state manager thread: sends this node's state to the peer every
//! `state_interval_ms` and at once on a phase or throttle change or when
//! a worker finds the queue empty, measures
//! this node's job rate, and keeps the peer's latest state (the newest
//! sequence number wins, so a late or duplicated state is ignored).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::StateMsg;
use super::adaptor::AdaptorMsg;
use super::control::ControlMsg;
use super::shared::{PeerView, Shared};
use crate::protocol::{self, Header, Message};

/// Weight of the newest rate sample in the smoothed job rate.
const RATE_SMOOTHING: f64 = 0.3;

/// Runs the state manager until told to stop.
pub fn run(
    shared: Arc<Shared>,
    inbox: Receiver<StateMsg>,
    interval: Duration,
    workers: u16,
    adaptor: Sender<AdaptorMsg>,
    control: Sender<ControlMsg>,
) {
    let mut buf = Vec::with_capacity(128);
    let mut next_send = Instant::now();
    let mut rate = RateMeter::new(Instant::now());
    loop {
        let msg = inbox.recv_deadline(next_send);
        match msg {
            Ok(StateMsg::Peer { seq, state }) => {
                let mut peer = shared.peer.lock();
                if peer.is_some_and(|p| p.seq >= seq) {
                    continue;
                }
                *peer = Some(PeerView {
                    state,
                    seq,
                    at: Instant::now(),
                });
                drop(peer);
                let _ = adaptor.send(AdaptorMsg::Evaluate);
                let _ = control.send(ControlMsg::PeerState);
                shared.wake();
            }
            Ok(StateMsg::LocalChanged) => {
                send_state(&shared, workers, &mut buf);
                let _ = adaptor.send(AdaptorMsg::Evaluate);
            }
            Ok(StateMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let done = shared.queue.lock().done;
                shared.rate.set(rate.update(now, done));
                send_state(&shared, workers, &mut buf);
                let _ = adaptor.send(AdaptorMsg::Evaluate);
                next_send = now + interval;
            }
        }
    }
}

/// Sends the state if a session is open.
fn send_state(shared: &Shared, workers: u16, buf: &mut Vec<u8>) {
    let session = shared.session.load(std::sync::atomic::Ordering::Relaxed);
    // Only to a peer in the session: not before the handshake, not after
    // the peer was lost.
    let connected = shared.connected.load(std::sync::atomic::Ordering::Relaxed);
    if session == 0 || !connected || shared.peer_lost.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut state = shared.local_state();
    state.workers = workers;
    let header = Header {
        session,
        seq: shared.next_seq(),
    };
    protocol::encode(&header, &Message::State(state), buf);
    shared.transport.send(buf);
}

/// Jobs per second, smoothed over successive samples.
struct RateMeter {
    last: Instant,
    last_done: u32,
    rate: f64,
}

impl RateMeter {
    fn new(now: Instant) -> Self {
        RateMeter {
            last: now,
            last_done: 0,
            rate: 0.0,
        }
    }

    fn update(&mut self, now: Instant, done: u32) -> f64 {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        if dt > 0.0 {
            let sample = f64::from(done.saturating_sub(self.last_done)) / dt;
            self.rate = if self.rate == 0.0 {
                sample
            } else {
                RATE_SMOOTHING * sample + (1.0 - RATE_SMOOTHING) * self.rate
            };
        }
        self.last = now;
        self.last_done = done;
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_smoothed_jobs_per_second() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        assert_eq!(m.update(t0 + Duration::from_millis(500), 10), 20.0);
        // 0 jobs in the next half second: 0.3 * 0 + 0.7 * 20.
        let r = m.update(t0 + Duration::from_secs(1), 10);
        assert!((r - 14.0).abs() < 1e-9, "{r}");
    }
}
