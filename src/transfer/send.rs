//! The sending half of a batch: its chunks' states, what to send next and
//! what an acknowledgement changes.

use std::collections::VecDeque;
use std::time::Instant;

use crate::protocol::BatchKind;

/// Where one chunk of an outbound batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkState {
    /// Not sent yet.
    Unsent,
    /// Sent and not yet acknowledged; `sends` counts transmissions so far.
    InFlight { sent_at: Instant, sends: u16 },
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
    /// Chunks declared lost, in the order to resend them.
    pub retransmit: VecDeque<u32>,
}

/// What an acknowledgement did to a batch.
#[derive(Debug, Default)]
pub(crate) struct AckEffect {
    /// Chunks newly acknowledged (in flight, lost or unsent before).
    pub newly_acked: u32,
    /// Chunks that were in flight and are now acknowledged.
    pub left_flight: u32,
    /// The RTT sample from the latest-sent chunk newly acknowledged that was
    /// sent only once (Karn's rule).
    pub rtt_sample_sent_at: Option<Instant>,
    /// Chunks now declared lost by selective acknowledgement.
    pub declared_lost: u32,
}

/// Chunks acknowledged after a gap that make the gap count as lost (as TCP's
/// three duplicate acknowledgements).
const REORDER_THRESHOLD: u32 = 3;

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
            retransmit: VecDeque::new(),
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

    /// The next chunk to transmit, retransmissions first, marked in flight.
    pub fn take_next(&mut self, now: Instant) -> Option<(u32, bool)> {
        while let Some(index) = self.retransmit.pop_front() {
            if let ChunkState::Lost { sends } = self.states[index as usize] {
                self.states[index as usize] = ChunkState::InFlight {
                    sent_at: now,
                    sends: sends.saturating_add(1),
                };
                return Some((index, true));
            }
        }
        if self.next_new < self.count() {
            let index = self.next_new;
            self.next_new += 1;
            self.states[index as usize] = ChunkState::InFlight {
                sent_at: now,
                sends: 1,
            };
            return Some((index, false));
        }
        None
    }

    /// True if this batch has something to send now.
    pub fn has_pending(&self) -> bool {
        !self.retransmit.is_empty() || self.next_new < self.count()
    }

    /// Declares chunk `index` lost if it is in flight and was sent at
    /// `sent_at` (an entry of the sent log). Returns true if it was.
    pub fn expire(&mut self, index: u32, sent_at: Instant) -> bool {
        match self.states.get(index as usize) {
            Some(&ChunkState::InFlight { sent_at: t, sends }) if t == sent_at => {
                self.states[index as usize] = ChunkState::Lost { sends };
                self.retransmit.push_back(index);
                true
            }
            _ => false,
        }
    }

    fn mark_acked(&mut self, index: u32, effect: &mut AckEffect, newest: &mut Option<Instant>) {
        let state = &mut self.states[index as usize];
        match *state {
            ChunkState::Acked => return,
            ChunkState::InFlight { sent_at, sends } => {
                effect.left_flight += 1;
                if newest.is_none_or(|n| sent_at > n) {
                    *newest = Some(sent_at);
                }
                if sends == 1 && effect.rtt_sample_sent_at.is_none_or(|prev| sent_at > prev) {
                    effect.rtt_sample_sent_at = Some(sent_at);
                }
            }
            ChunkState::Lost { .. } | ChunkState::Unsent => {}
        }
        *state = ChunkState::Acked;
        self.acked += 1;
        effect.newly_acked += 1;
    }

    /// Applies an acknowledgement: everything below `next`, the bits of
    /// `sack` (bit i is chunk `next + 1 + i`), or the whole batch.
    pub fn handle_ack(&mut self, next: u32, sack: &[u8], complete: bool) -> AckEffect {
        let mut effect = AckEffect::default();
        let mut newest: Option<Instant> = None;
        let count = self.count();
        let cum_end = if complete { count } else { next.min(count) };
        for index in self.cum_acked..cum_end {
            self.mark_acked(index, &mut effect, &mut newest);
        }
        self.cum_acked = self.cum_acked.max(cum_end);
        let mut highest = cum_end.checked_sub(1);
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
                let index = index as u32;
                self.mark_acked(index, &mut effect, &mut newest);
                highest = Some(highest.map_or(index, |h| h.max(index)));
            }
        }
        while self.cum_acked < count && self.states[self.cum_acked as usize] == ChunkState::Acked {
            self.cum_acked += 1;
        }
        // Selective acknowledgement: a chunk still in flight, sent before a
        // chunk that has since been acknowledged and at least three chunks
        // below the highest acknowledged one, is lost.
        if let (Some(highest), Some(newest)) = (highest, newest) {
            let limit = highest.saturating_sub(REORDER_THRESHOLD - 1);
            for index in self.cum_acked..limit {
                if let ChunkState::InFlight { sent_at, sends } = self.states[index as usize]
                    && sent_at <= newest
                {
                    self.states[index as usize] = ChunkState::Lost { sends };
                    self.retransmit.push_back(index);
                    effect.declared_lost += 1;
                }
            }
        }
        effect
    }
}
