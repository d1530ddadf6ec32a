//! Reliable, chunked batch transfer over an unreliable datagram service.
//! Sans-IO, in the manner of quinn-proto: no socket, no clock, no thread.
//! The caller feeds it what arrived (`handle_chunk`, `handle_ack`) and the
//! time (`handle_timeout`), and drains what it must do (`poll_transmit`,
//! `poll_timeout`, `poll_event`).
//!
//! - A batch is split into chunks that each fit one datagram.
//! - The receiver acknowledges cumulatively plus a selective-ack bitmap,
//!   every few chunks, at once on a gap or duplicate, and after a short delay
//!   otherwise.
//! - The sender retransmits on a time-out derived from the measured RTT
//!   (with exponential back-off), and earlier when the acks show a chunk
//!   overtaken by later ones for longer than the RTT plus a reordering
//!   window (RACK, RFC 8985); a resend that proves spurious widens the window.
//!   Lost chunks are resent lowest first, and no chunk is sent beyond what
//!   an ack can describe (the cumulative point plus the bitmap's span).
//! - Flow control is the receiver's: it advertises how many chunks it can
//!   take in flight (sized to its socket's receive buffer), and the sender
//!   never has more than that outstanding.
//! - Congestion control is the sender's, in two parts. The pacer
//!   ([`pacer`]) estimates the bottleneck's rate and the minimum RTT from
//!   the acks, in the manner of BBR, spaces chunks at that rate and keeps
//!   about two bandwidth-delay products in flight, so a bottleneck's queue
//!   is not overrun. Under it, a loss-based window stays a ceiling: it grows
//!   as chunks are acknowledged (slow start, then one chunk per window),
//!   halves when selective acks show a loss, and drops to a few chunks after
//!   a time-out, so a stalled receiver or a lossy link never gets a burst of
//!   resends. When the chunks declared lost turn out to have been only late,
//!   the reduction is undone (the Eifel response, RFC 4015): on a jittery
//!   path lateness is not congestion.
//! - A batch stays the sender's until every chunk is acknowledged
//!   ([`Event::Delivered`]); the receiver delivers each batch exactly once
//!   ([`Event::Received`]), however many duplicates arrive.
//!
//! Mechanism only: which jobs go and when is the policy's business.

mod pacer;
mod recv;
mod rtt;
mod send;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::{Ack, BatchKind, Chunk, Message, RefuseReason};
use pacer::Pacer;
pub use pacer::Phase as PacerPhase;
use recv::{Arrival, Delivered, InBatch};
pub use rtt::RttEstimator;
use send::OutBatch;

/// The congestion window a sender starts with, in chunks.
pub const INITIAL_CWND: u32 = 32;
/// The smallest congestion window, in chunks (after a time-out).
pub const MIN_CWND: u32 = 8;

/// Tunables of an endpoint.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Payload bytes per chunk (the datagram size less the chunk overhead).
    pub chunk_bytes: usize,
    /// Chunks this endpoint can take in flight from its peer (advertised).
    pub local_window: u32,
    /// Outbound batches that may have chunks on the wire at once.
    pub max_open_batches: usize,
    /// Inbound batches reassembled at once; chunks of further ones are dropped
    /// (unacknowledged, so their sender retries later).
    pub max_inbound_batches: usize,
    /// Largest inbound batch accepted, in bytes.
    pub max_batch_bytes: usize,
    /// An inbound batch that receives no new chunk for this long is
    /// abandoned and its memory freed (its sender died or never meant to
    /// finish it); a sender still alive starts it again from its next
    /// retransmission.
    pub inbound_idle_timeout: Duration,
    /// Acknowledge after this many new chunks of a batch.
    pub ack_every: u32,
    /// Acknowledge at the latest this long after a chunk arrived.
    pub ack_delay: Duration,
    /// Retransmission time-out before any RTT sample.
    pub initial_rto: Duration,
    /// Floor of the retransmission time-out.
    pub min_rto: Duration,
    /// Ceiling of the retransmission time-out (after back-off).
    pub max_rto: Duration,
}

impl TransferConfig {
    /// Defaults for a given chunk payload size and receive window.
    pub fn new(chunk_bytes: usize, local_window: u32) -> Self {
        TransferConfig {
            chunk_bytes,
            local_window,
            max_open_batches: 4,
            max_inbound_batches: 16,
            max_batch_bytes: 256 << 20,
            inbound_idle_timeout: Duration::from_secs(30),
            ack_every: (local_window / 8).clamp(1, 64),
            ack_delay: Duration::from_millis(2),
            initial_rto: Duration::from_millis(200),
            // Far above a loopback RTT, but a receiver thread on a busy
            // machine can be descheduled for tens of milliseconds, and a
            // spurious time-out costs a collapsed congestion window.
            min_rto: Duration::from_millis(50),
            max_rto: Duration::from_secs(2),
        }
    }
}

/// Something the caller must act on.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A whole batch arrived from the peer (delivered once).
    Received {
        /// The peer's transfer id.
        transfer: u32,
        /// What it carries.
        kind: BatchKind,
        /// The reassembled bytes.
        payload: Vec<u8>,
        /// When its first chunk arrived.
        since: Instant,
    },
    /// The peer acknowledged every chunk of one of our batches: it is theirs now.
    Delivered {
        /// Our transfer id.
        transfer: u32,
    },
    /// The peer has every chunk of one of our batches, but its core could
    /// not take it: what it carries is still ours.
    Refused {
        /// Our transfer id.
        transfer: u32,
        /// Why.
        reason: RefuseReason,
    },
}

/// Counters of what the endpoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Chunks transmitted for the first time.
    pub chunks_sent: u64,
    /// Chunks transmitted again.
    pub retransmitted: u64,
    /// Acknowledgements sent.
    pub acks_sent: u64,
    /// New chunks received.
    pub chunks_received: u64,
    /// Chunks of ours the peer acknowledged for the first time.
    pub chunks_acked: u64,
    /// Chunks received that were already held or delivered.
    pub duplicate_chunks: u64,
    /// Chunks dropped: inconsistent with their batch, or over a limit.
    pub refused_chunks: u64,
    /// Retransmission time-outs that fired.
    pub timeouts: u64,
    /// Chunks declared lost that were only late (each widens the reordering window).
    pub spurious: u64,
    /// Window reductions undone because their losses proved spurious.
    pub undone_reductions: u64,
    /// Inbound batches abandoned half-received after the idle time-out.
    pub abandoned_inbound: u64,
    /// Outbound batches given up (the peer was lost).
    pub abandoned_outbound: u64,
    /// Acks naming a chunk never sent or past a batch's end: dropped.
    pub invalid_acks: u64,
    /// Times more chunks left the flight than were in it (a broken
    /// invariant, counted; the count stops at 0).
    pub flight_underflows: u64,
}

/// One side of the reliable transfer: sends our batches, receives the peer's.
#[derive(Debug)]
pub struct Endpoint {
    cfg: TransferConfig,
    // Sending.
    next_transfer: u32,
    outbound: VecDeque<OutBatch>,
    peer_window: u32,
    in_flight: u32,
    /// Congestion window, chunks.
    cwnd: u32,
    /// Slow-start threshold, chunks.
    ssthresh: u32,
    /// Chunks acknowledged towards the next one-chunk growth above ssthresh.
    cwnd_credit: u32,
    /// When the window was last reduced: one reduction per round trip.
    last_reduction: Option<Instant>,
    /// The window and threshold before the last reduction, restored if the
    /// losses that caused it prove spurious (the Eifel response, RFC 4015):
    /// on a jittery path a chunk can be late rather than lost.
    undo: Option<(u32, u32)>,
    rtt: RttEstimator,
    /// Transmissions in time order: (sent at, transfer, chunk). An entry is
    /// stale once its chunk was acknowledged or sent again.
    sent_log: VecDeque<(Instant, u32, u32)>,
    /// Paces chunks at the path's measured rate and caps what is in flight.
    pacer: Pacer,
    // Receiving.
    inbound: HashMap<u32, InBatch>,
    inbound_bytes: usize,
    delivered: Delivered,
    /// Delivered batches the core refused: their complete acks say so.
    refused: recv::Refused,
    /// Transfers to acknowledge right away, oldest first.
    ack_now: VecDeque<u32>,
    ack_deadline: Option<Instant>,
    sack: Vec<u8>,
    events: VecDeque<Event>,
    stats: TransferStats,
}

impl Endpoint {
    /// A new endpoint. Until the peer advertises its window, `peer_window`
    /// chunks may be in flight.
    pub fn new(cfg: TransferConfig, peer_window: u32) -> Self {
        let rtt = RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto);
        Endpoint {
            cfg,
            next_transfer: 0,
            outbound: VecDeque::new(),
            peer_window: peer_window.max(1),
            in_flight: 0,
            cwnd: INITIAL_CWND,
            ssthresh: u32::MAX,
            cwnd_credit: 0,
            last_reduction: None,
            undo: None,
            rtt,
            sent_log: VecDeque::new(),
            pacer: Pacer::new(),
            inbound: HashMap::new(),
            inbound_bytes: 0,
            delivered: Delivered::default(),
            refused: recv::Refused::default(),
            ack_now: VecDeque::new(),
            ack_deadline: None,
            sack: Vec::with_capacity(crate::protocol::MAX_SACK_BYTES),
            events: VecDeque::new(),
            stats: TransferStats::default(),
        }
    }

    /// Queues a batch for sending and returns its transfer id.
    pub fn send_batch(&mut self, kind: BatchKind, payload: Vec<u8>) -> u32 {
        let id = self.next_transfer;
        self.next_transfer = self.next_transfer.wrapping_add(1);
        self.outbound
            .push_back(OutBatch::new(id, kind, payload, self.cfg.chunk_bytes));
        id
    }

    /// Batches of ours not yet fully acknowledged.
    pub fn outbound_batches(&self) -> usize {
        self.outbound.len()
    }

    /// Chunks of ours on the wire and unacknowledged.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The peer's advertised window, in chunks.
    pub fn peer_window(&self) -> u32 {
        self.peer_window
    }

    /// The congestion window, in chunks: the loss-based window, capped by
    /// the pacer's two bandwidth-delay products once it has an estimate.
    pub fn congestion_window(&self) -> u32 {
        self.pacer
            .window()
            .map_or(self.cwnd, |w| self.cwnd.min(w.max(MIN_CWND)))
    }

    /// The pacer's estimate of the path: bottleneck rate in bytes per
    /// second, minimum RTT, and its phase.
    pub fn path_estimate(&self) -> (Option<f64>, Option<Duration>, PacerPhase) {
        (
            self.pacer
                .bandwidth()
                .map(|chunks| chunks * self.cfg.chunk_bytes as f64),
            self.pacer.min_rtt(),
            self.pacer.phase(),
        )
    }

    /// Sets the payload of each chunk of batches made from now on (the
    /// datagram size both nodes agreed on, less the overheads).
    pub fn set_chunk_bytes(&mut self, chunk_bytes: usize) {
        self.cfg.chunk_bytes = chunk_bytes.max(1);
    }

    /// Sets the peer's window (from its hello, before any ack).
    pub fn set_peer_window(&mut self, window: u32) {
        self.peer_window = window.max(1);
    }

    /// The RTT estimator.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// What the endpoint has done so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    /// True when nothing of ours is unacknowledged and no acknowledgement is owed.
    pub fn is_idle(&self) -> bool {
        self.outbound.is_empty() && self.ack_now.is_empty() && self.ack_deadline.is_none()
    }

    /// Handles a chunk of one of the peer's batches.
    pub fn handle_chunk(&mut self, now: Instant, chunk: &Chunk<'_>) {
        let id = chunk.transfer;
        if self.delivered.contains(id) {
            // The sender missed our final ack: repeat it.
            self.stats.duplicate_chunks += 1;
            self.queue_ack_now(id);
            return;
        }
        if !self.inbound.contains_key(&id) {
            let size = chunk.total_bytes as usize;
            if size > self.cfg.max_batch_bytes
                || self.inbound.len() >= self.cfg.max_inbound_batches
                || self.inbound_bytes + size > self.cfg.max_batch_bytes * 2
            {
                self.stats.refused_chunks += 1;
                return;
            }
            self.inbound_bytes += size;
            self.inbound.insert(id, InBatch::new(chunk, now));
        }
        let Some(batch) = self.inbound.get_mut(&id) else {
            return;
        };
        if !batch.matches(chunk) {
            self.stats.refused_chunks += 1;
            return;
        }
        match batch.insert(chunk) {
            Arrival::Duplicate => {
                self.stats.duplicate_chunks += 1;
                self.queue_ack_now(id);
            }
            Arrival::New { in_order } => {
                self.stats.chunks_received += 1;
                batch.last_arrival = now;
                if batch.is_complete() {
                    let batch = self.inbound.remove(&id);
                    if let Some(batch) = batch {
                        self.inbound_bytes -= batch.total_bytes as usize;
                        self.delivered.insert(id);
                        self.events.push_back(Event::Received {
                            transfer: id,
                            kind: batch.kind,
                            payload: batch.data,
                            since: batch.first_arrival,
                        });
                    }
                    self.queue_ack_now(id);
                } else if !in_order || batch.unacked >= self.cfg.ack_every {
                    self.queue_ack_now(id);
                } else if self.ack_deadline.is_none() {
                    self.ack_deadline = Some(now + self.cfg.ack_delay);
                }
            }
        }
    }

    /// The caller could not take the peer's batch `transfer` (delivered
    /// whole): its complete ack, now and whenever repeated, says so and why.
    pub fn refuse(&mut self, transfer: u32, reason: RefuseReason) {
        if self.delivered.contains(transfer) {
            self.refused.insert(transfer, reason);
        }
    }

    fn queue_ack_now(&mut self, id: u32) {
        if !self.ack_now.contains(&id) {
            self.ack_now.push_back(id);
        }
    }

    /// Handles an acknowledgement of one of our batches.
    pub fn handle_ack(&mut self, now: Instant, ack: &Ack<'_>) {
        self.peer_window = ack.window.max(1);
        let Some(pos) = self.outbound.iter().position(|b| b.id == ack.transfer) else {
            // Late ack of a batch already delivered, or of none of ours.
            return;
        };
        let (loss_age, quick) = (self.rtt.loss_age(), self.rtt.quick_ack());
        let batch = &mut self.outbound[pos];
        let effect = batch.handle_ack(ack.next, ack.sack, ack.complete, now, loss_age, quick);
        if effect.invalid {
            self.stats.invalid_acks += 1;
            return;
        }
        let delivered = batch.is_delivered().then_some(batch.id);
        self.stats.chunks_acked += u64::from(effect.newly_acked);
        self.leave_flight(effect.left_flight + effect.declared_lost);
        let rtt_sample = effect
            .rtt_sample_sent_at
            .map(|sent_at| now.saturating_duration_since(sent_at));
        if let Some(sample) = rtt_sample {
            self.rtt.sample(sample);
        }
        self.pacer.on_ack(
            now,
            effect.newly_acked,
            effect.declared_lost,
            effect.latest,
            rtt_sample,
            self.in_flight,
        );
        // A chunk declared lost was only late. If another was really lost,
        // its loss is detected again and the window reduced again.
        if effect.spurious > 0
            && let Some((cwnd, ssthresh)) = self.undo.take()
        {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = ssthresh;
            self.stats.undone_reductions += 1;
        }
        if effect.spurious > 0 {
            self.pacer.on_spurious(now, effect.spurious);
            self.stats.spurious += u64::from(effect.spurious);
            self.rtt.widen_reordering_window();
        }
        self.grow_window(effect.newly_acked);
        if effect.declared_lost > 0 {
            self.reduce_window(now, false);
        }
        if let Some(id) = delivered {
            self.outbound.remove(pos);
            self.events.push_back(match ack.refused {
                Some(reason) => Event::Refused {
                    transfer: id,
                    reason,
                },
                None => Event::Delivered { transfer: id },
            });
        }
    }

    /// Gives up every outbound batch (the peer is gone): nothing more of
    /// them is sent, and no event will ever come for them. Returns their
    /// transfer ids.
    pub fn abandon_outbound(&mut self) -> Vec<u32> {
        let ids: Vec<u32> = self.outbound.drain(..).map(|b| b.id).collect();
        self.stats.abandoned_outbound += ids.len() as u64;
        self.in_flight = 0;
        self.sent_log.clear();
        ids
    }

    /// Inbound batches being reassembled, and their bytes.
    pub fn inbound_usage(&self) -> (usize, usize) {
        (self.inbound.len(), self.inbound_bytes)
    }

    /// Handles the passage of time: fires the delayed ack and retransmission
    /// time-outs that are due, and abandons inbound batches gone idle.
    pub fn handle_timeout(&mut self, now: Instant) {
        let idle = self.cfg.inbound_idle_timeout;
        let before = self.inbound.len();
        let mut freed = 0;
        self.inbound.retain(|_, b| {
            let keep = now.saturating_duration_since(b.last_arrival) < idle;
            if !keep {
                freed += b.total_bytes as usize;
            }
            keep
        });
        self.inbound_bytes -= freed;
        self.stats.abandoned_inbound += (before - self.inbound.len()) as u64;
        if self.ack_deadline.is_some_and(|d| d <= now) {
            self.ack_deadline = None;
            let mut due: Vec<u32> = self
                .inbound
                .iter()
                .filter(|(_, b)| b.unacked > 0)
                .map(|(&id, _)| id)
                .collect();
            due.sort_unstable();
            for id in due {
                self.queue_ack_now(id);
            }
        }
        // RACK's timer: suspects that have come of age are lost.
        let loss_age = self.rtt.loss_age();
        let mut declared = 0;
        for batch in &mut self.outbound {
            if batch.loss_deadline.is_some_and(|d| d <= now) {
                declared += batch.detect_losses(now, loss_age);
            }
        }
        if declared > 0 {
            self.leave_flight(declared);
            self.reduce_window(now, false);
        }
        let rto = self.rtt.rto();
        let mut fired = false;
        while let Some(&(sent_at, transfer, index)) = self.sent_log.front() {
            let Some(batch) = self.outbound.iter_mut().find(|b| b.id == transfer) else {
                self.sent_log.pop_front();
                continue;
            };
            let live = matches!(
                batch.states.get(index as usize),
                Some(send::ChunkState::InFlight { sent_at: t, .. }) if *t == sent_at
            );
            if !live {
                self.sent_log.pop_front();
                continue;
            }
            if sent_at + rto > now {
                break;
            }
            self.sent_log.pop_front();
            if batch.expire(index, sent_at) {
                self.leave_flight(1);
                fired = true;
            }
        }
        if fired {
            self.stats.timeouts += 1;
            self.rtt.back_off();
            self.reduce_window(now, true);
        }
    }

    /// `n` chunks left the flight (acked, or declared lost). More than are
    /// in flight would break the sender's invariant: it is counted, never
    /// wrapped (a wrapped count would stall the sender without a word).
    fn leave_flight(&mut self, n: u32) {
        match self.in_flight.checked_sub(n) {
            Some(left) => self.in_flight = left,
            None => {
                debug_assert!(false, "{n} chunks left a flight of {}", self.in_flight);
                self.stats.flight_underflows += 1;
                self.in_flight = 0;
            }
        }
    }

    /// Slow start below the threshold, one chunk per window above it, never
    /// beyond what the peer lets us have in flight.
    fn grow_window(&mut self, acked: u32) {
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.saturating_add(acked);
        } else {
            self.cwnd_credit += acked;
            while self.cwnd_credit >= self.cwnd {
                self.cwnd_credit -= self.cwnd;
                self.cwnd += 1;
            }
        }
        self.cwnd = self.cwnd.min(self.peer_window.max(MIN_CWND));
    }

    /// Halves the window on a loss (once per round trip) or drops it to the
    /// minimum after a time-out.
    fn reduce_window(&mut self, now: Instant, timeout: bool) {
        let round_trip = self.rtt.srtt().unwrap_or(self.cfg.initial_rto);
        let recent = self
            .last_reduction
            .is_some_and(|t| now.saturating_duration_since(t) < round_trip);
        if recent && !timeout {
            return;
        }
        // Keep the oldest window of a run of reductions, to restore in full.
        if self.undo.is_none() {
            self.undo = Some((self.cwnd, self.ssthresh));
        }
        self.ssthresh = (self.cwnd / 2).max(MIN_CWND);
        self.cwnd = if timeout { MIN_CWND } else { self.ssthresh };
        self.cwnd_credit = 0;
        self.last_reduction = Some(now);
    }

    /// When `handle_timeout` must next be called, if ever.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // Drop stale log entries so the front is the oldest live transmission.
        while let Some(&(sent_at, transfer, index)) = self.sent_log.front() {
            let live = self.outbound.iter().any(|b| {
                b.id == transfer
                    && matches!(
                        b.states.get(index as usize),
                        Some(send::ChunkState::InFlight { sent_at: t, .. }) if *t == sent_at
                    )
            });
            if live {
                break;
            }
            self.sent_log.pop_front();
        }
        let retransmit = self
            .sent_log
            .front()
            .map(|&(sent_at, _, _)| sent_at + self.rtt.rto());
        let loss = self.outbound.iter().filter_map(|b| b.loss_deadline).min();
        let idle = self
            .inbound
            .values()
            .map(|b| b.last_arrival + self.cfg.inbound_idle_timeout)
            .min();
        // The pacing clock, when it alone holds back a chunk waiting to go.
        let pace = self.pacer.send_time().filter(|_| {
            self.in_flight < self.peer_window.min(self.congestion_window())
                && self
                    .outbound
                    .iter()
                    .take(self.cfg.max_open_batches)
                    .any(|b| b.has_pending())
        });
        [retransmit, self.ack_deadline, loss, idle, pace]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next message to send, if any: acknowledgements first, then
    /// retransmissions and new chunks while the peer's window allows.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Message<'_>> {
        if let Some(id) = self.ack_now.pop_front() {
            self.stats.acks_sent += 1;
            let window = self.cfg.local_window;
            return Some(match self.inbound.get_mut(&id) {
                Some(batch) => {
                    batch.unacked = 0;
                    batch.sack(&mut self.sack);
                    Message::Ack(Ack {
                        transfer: id,
                        next: batch.next,
                        window,
                        complete: false,
                        refused: None,
                        sack: &self.sack,
                    })
                }
                None => Message::Ack(Ack {
                    transfer: id,
                    next: 0,
                    window,
                    complete: true,
                    refused: self.refused.reason(id),
                    sack: &[],
                }),
            });
        }
        if self.in_flight >= self.peer_window.min(self.congestion_window())
            || self.pacer.next_send(now).is_some()
        {
            return None;
        }
        let open = self.cfg.max_open_batches.min(self.outbound.len());
        let Some(pos) = self
            .outbound
            .iter()
            .take(open)
            .position(|b| b.has_pending())
        else {
            // Room to send and nothing to send: the rate samples of what
            // is in flight understate the path.
            self.pacer.on_app_limited(self.in_flight);
            return None;
        };
        let snapshot = self.pacer.on_send(now, self.in_flight);
        let batch = &mut self.outbound[pos];
        let (index, again) = batch.take_next(now, snapshot)?;
        self.in_flight += 1;
        if again {
            self.stats.retransmitted += 1;
        } else {
            self.stats.chunks_sent += 1;
        }
        self.sent_log.push_back((now, batch.id, index));
        let batch = &self.outbound[pos];
        Some(Message::Chunk(Chunk {
            transfer: batch.id,
            kind: batch.kind,
            index,
            count: batch.count(),
            chunk_bytes: batch.chunk_bytes as u32,
            total_bytes: batch.payload.len() as u32,
            payload: batch.chunk(index),
        }))
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;
