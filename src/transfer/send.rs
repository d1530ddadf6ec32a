//! The sending half of a batch: its chunks' states, what to send next and
//! what an acknowledgement changes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::pacer::{Acked, SendSnapshot};
use crate::protocol::{BatchKind, MAX_SACK_BYTES};

/// How far past the cumulative ack a receiver's ack can describe: chunk
/// `next` and the bitmap's chunks after it. No chunk beyond is sent, or its
/// arrival could never be acknowledged until the gap before it closes and
/// it would be resent again and again in the meantime.
pub(crate) const ACK_SPAN: u32 = 1 + MAX_SACK_BYTES as u32 * 8;

/// Where one chunk of an outbound batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkState {
    /// Not sent yet.
    Unsent,
    /// Sent and not yet acknowledged; `sends` counts transmissions so far;
    /// `snapshot` is what the pacer knew when it went.
    InFlight {
        sent_at: Instant,
        sends: u16,
        snapshot: SendSnapshot,
    },
    /// Declared lost, waiting in the retransmit queue.
    Lost { sends: u16 },
    /// Acknowledged by the receiver.
    Acked,
}

/// An outbound batch, kept whole until every chunk is acknowledged.
#[derive(Debug)]
pub(crate) struct OutBatch {
    pub id: u32,
    pub kind: BatchKind,
    pub payload: Vec<u8>,
    pub chunk_bytes: usize,
    pub states: Vec<ChunkState>,
    /// Chunks acknowledged so far.
    pub acked: u32,
    /// Every chunk below this is acknowledged.
    pub cum_acked: u32,
    /// The next never-sent chunk.
    pub next_new: u32,
    /// Chunks declared lost, resent lowest first (the lowest holds back
    /// the cumulative ack).
    pub retransmit: BTreeSet<u32>,
    /// The latest transmission known delivered: (sent at, chunk).
    delivered_latest: Option<(Instant, u32)>,
    /// The highest chunk acknowledged.
    highest_acked: Option<u32>,
    /// When the oldest chunk that a later delivery makes suspect becomes old
    /// enough to count as lost (RACK's timer).
    pub loss_deadline: Option<Instant>,
}

/// What an acknowledgement did to a batch.
#[derive(Debug, Default)]
pub(crate) struct AckEffect {
    /// Chunks newly acknowledged (in flight, lost or unsent before).
    pub newly_acked: u32,
    /// The ack named a chunk never sent, or past the batch's end: a
    /// protocol error, and nothing was applied.
    pub invalid: bool,
    /// Chunks that were in flight and are now acknowledged.
    pub left_flight: u32,
    /// The RTT sample from the latest-sent chunk newly acknowledged that was
    /// sent only once (Karn's rule).
    pub rtt_sample_sent_at: Option<Instant>,
    /// Chunks now declared lost by selective acknowledgement.
    pub declared_lost: u32,
    /// Chunks declared lost whose original turned out to be only late: acked
    /// before the resend went out, or too soon after it to be the resend's.
    pub spurious: u32,
    /// The latest-sent chunk newly acknowledged that was in flight, for the
    /// pacer's rate sample.
    pub latest: Option<Acked>,
}

impl OutBatch {
    pub fn new(id: u32, kind: BatchKind, payload: Vec<u8>, chunk_bytes: usize) -> Self {
        let count = payload.len().div_ceil(chunk_bytes).max(1);
        OutBatch {
            id,
            kind,
            payload,
            chunk_bytes,
            states: vec![ChunkState::Unsent; count],
            acked: 0,
            cum_acked: 0,
            next_new: 0,
            retransmit: BTreeSet::new(),
            delivered_latest: None,
            highest_acked: None,
            loss_deadline: None,
        }
    }

    pub fn count(&self) -> u32 {
        self.states.len() as u32
    }

    pub fn is_delivered(&self) -> bool {
        self.acked == self.count()
    }

    /// The bytes of chunk `index`.
    pub fn chunk(&self, index: u32) -> &[u8] {
        let start = index as usize * self.chunk_bytes;
        let end = (start + self.chunk_bytes).min(self.payload.len());
        &self.payload[start..end]
    }

    /// The next chunk to transmit, retransmissions first, marked in flight
    /// with what the pacer knows at `snapshot`.
    pub fn take_next(&mut self, now: Instant, snapshot: SendSnapshot) -> Option<(u32, bool)> {
        while let Some(index) = self.retransmit.pop_first() {
            if let ChunkState::Lost { sends } = self.states[index as usize] {
                self.states[index as usize] = ChunkState::InFlight {
                    sent_at: now,
                    sends: sends.saturating_add(1),
                    snapshot,
                };
                return Some((index, true));
            }
        }
        if self.next_new < self.new_limit() {
            let index = self.next_new;
            self.next_new += 1;
            self.states[index as usize] = ChunkState::InFlight {
                sent_at: now,
                sends: 1,
                snapshot,
            };
            return Some((index, false));
        }
        None
    }

    /// New chunks may be sent below this index: the end of the batch, or
    /// the end of what an ack can describe.
    fn new_limit(&self) -> u32 {
        self.count().min(self.cum_acked.saturating_add(ACK_SPAN))
    }

    /// True if this batch has something to send now.
    pub fn has_pending(&self) -> bool {
        !self.retransmit.is_empty() || self.next_new < self.new_limit()
    }

    /// Declares chunk `index` lost if it is in flight and was sent at
    /// `sent_at` (an entry of the sent log). Returns true if it was.
    pub fn expire(&mut self, index: u32, sent_at: Instant) -> bool {
        match self.states.get(index as usize) {
            Some(&ChunkState::InFlight {
                sent_at: t, sends, ..
            }) if t == sent_at => {
                self.states[index as usize] = ChunkState::Lost { sends };
                self.retransmit.insert(index);
                true
            }
            _ => false,
        }
    }

    fn mark_acked(&mut self, index: u32, effect: &mut AckEffect, now: Instant, quick: Duration) {
        let state = &mut self.states[index as usize];
        match *state {
            ChunkState::Acked => return,
            ChunkState::Lost { .. } => effect.spurious += 1,
            ChunkState::InFlight {
                sent_at,
                sends,
                snapshot,
            } => {
                if sends > 1 && now.saturating_duration_since(sent_at) < quick {
                    effect.spurious += 1;
                }
                effect.left_flight += 1;
                if effect.latest.is_none_or(|l| sent_at > l.sent_at) {
                    effect.latest = Some(Acked { sent_at, snapshot });
                }
                if self
                    .delivered_latest
                    .is_none_or(|latest| (sent_at, index) > latest)
                {
                    self.delivered_latest = Some((sent_at, index));
                }
                if sends == 1 && effect.rtt_sample_sent_at.is_none_or(|prev| sent_at > prev) {
                    effect.rtt_sample_sent_at = Some(sent_at);
                }
            }
            ChunkState::Unsent => {}
        }
        *state = ChunkState::Acked;
        self.acked += 1;
        effect.newly_acked += 1;
        self.highest_acked = Some(self.highest_acked.map_or(index, |h| h.max(index)));
    }

    /// Applies an acknowledgement: everything below `next`, the bits of
    /// `sack` (bit i is chunk `next + 1 + i`), or the whole batch; then
    /// declares lost, in the manner of RACK (RFC 8985), every chunk in flight
    /// that was sent before a chunk since delivered and is older than
    /// `loss_age`. Time, not a count of later chunks, so a link that reorders
    /// heavily (jitter) does not cause spurious resends. An ack within
    /// `quick` of a resend answers the original, so that resend was spurious.
    pub fn handle_ack(
        &mut self,
        next: u32,
        sack: &[u8],
        complete: bool,
        now: Instant,
        loss_age: Duration,
        quick: Duration,
    ) -> AckEffect {
        let mut effect = AckEffect::default();
        let count = self.count();
        let claimed = if complete { count } else { next };
        if !self.acks_only_sent(claimed, if complete { &[] } else { sack }) {
            effect.invalid = true;
            return effect;
        }
        let cum_end = if complete { count } else { next.min(count) };
        for index in self.cum_acked..cum_end {
            self.mark_acked(index, &mut effect, now, quick);
        }
        self.cum_acked = self.cum_acked.max(cum_end);
        for (byte_index, &byte) in sack.iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8 {
                if byte & (1 << bit) == 0 {
                    continue;
                }
                let index = u64::from(next) + 1 + (byte_index * 8 + bit) as u64;
                if index >= u64::from(count) {
                    break;
                }
                self.mark_acked(index as u32, &mut effect, now, quick);
            }
        }
        while self.cum_acked < count && self.states[self.cum_acked as usize] == ChunkState::Acked {
            self.cum_acked += 1;
        }
        effect.declared_lost = self.detect_losses(now, loss_age);
        effect
    }

    /// True when an ack of everything below `next` and the bits of `sack`
    /// (a whole batch: `next` its count) names only chunks of this batch
    /// that were sent: an honest peer can
    /// acknowledge nothing else, and a chunk never sent must never count as
    /// delivered (the batch would be delivered with data the peer never had).
    fn acks_only_sent(&self, next: u32, sack: &[u8]) -> bool {
        let count = self.count();
        if next > count {
            return false;
        }
        let sent = |index: u32| {
            self.states
                .get(index as usize)
                .is_some_and(|s| *s != ChunkState::Unsent)
        };
        if !(self.cum_acked..next).all(sent) {
            return false;
        }
        sack.iter().enumerate().all(|(byte_index, &byte)| {
            (0..8).filter(|bit| byte & (1 << bit) != 0).all(|bit| {
                let index = u64::from(next) + 1 + (byte_index * 8 + bit) as u64;
                u32::try_from(index).is_ok_and(sent)
            })
        })
    }

    /// Declares lost every chunk in flight that was sent before a chunk since
    /// delivered and is at least `loss_age` old; sets `loss_deadline` for the
    /// next one to come of age. Returns how many were declared lost.
    pub fn detect_losses(&mut self, now: Instant, loss_age: Duration) -> u32 {
        self.loss_deadline = None;
        let (Some(latest), Some(highest)) = (self.delivered_latest, self.highest_acked) else {
            return 0;
        };
        let mut declared = 0;
        for index in self.cum_acked..highest {
            if let ChunkState::InFlight { sent_at, sends, .. } = self.states[index as usize]
                && (sent_at, index) < latest
            {
                if now.saturating_duration_since(sent_at) >= loss_age {
                    self.states[index as usize] = ChunkState::Lost { sends };
                    self.retransmit.insert(index);
                    declared += 1;
                } else {
                    let due = sent_at + loss_age;
                    self.loss_deadline = Some(self.loss_deadline.map_or(due, |d| d.min(due)));
                }
            }
        }
        declared
    }
}
