//! The receiving half of a batch: reassembly into one buffer, the bitmap of
//! chunks held, and the record of batches already delivered so that their
//! late duplicates are acknowledged and never delivered twice.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::protocol::{BatchKind, Chunk, MAX_SACK_BYTES};

/// A batch being reassembled.
#[derive(Debug)]
pub(crate) struct InBatch {
    pub kind: BatchKind,
    pub count: u32,
    pub chunk_bytes: u32,
    pub total_bytes: u32,
    pub data: Vec<u8>,
    have: Vec<u64>,
    pub received: u32,
    /// Every chunk below this has arrived.
    pub next: u32,
    /// Chunks received since the last acknowledgement was sent.
    pub unacked: u32,
    /// When the last new chunk arrived: a batch that stops growing is
    /// abandoned after the endpoint's `inbound_idle_timeout`.
    pub last_arrival: Instant,
    /// When the first chunk arrived.
    pub first_arrival: Instant,
}

/// Whether a chunk was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Stored; `in_order` when it was the lowest missing chunk.
    New { in_order: bool },
    /// Already held.
    Duplicate,
}

impl InBatch {
    /// Starts reassembly from the geometry of a batch's first chunk to arrive.
    pub fn new(first: &Chunk<'_>, now: Instant) -> Self {
        InBatch {
            kind: first.kind,
            count: first.count,
            chunk_bytes: first.chunk_bytes,
            total_bytes: first.total_bytes,
            data: vec![0u8; first.total_bytes as usize],
            have: vec![0u64; (first.count as usize).div_ceil(64)],
            received: 0,
            next: 0,
            unacked: 0,
            last_arrival: now,
            first_arrival: now,
        }
    }

    /// True if the chunk describes the same batch as the first one did.
    pub fn matches(&self, c: &Chunk<'_>) -> bool {
        self.kind == c.kind
            && self.count == c.count
            && self.chunk_bytes == c.chunk_bytes
            && self.total_bytes == c.total_bytes
    }

    fn has(&self, index: u32) -> bool {
        self.have[index as usize / 64] & (1 << (index % 64)) != 0
    }

    /// Stores a chunk whose geometry [`matches`](Self::matches) this batch.
    pub fn insert(&mut self, c: &Chunk<'_>) -> Arrival {
        if self.has(c.index) {
            return Arrival::Duplicate;
        }
        let offset = c.offset();
        self.data[offset..offset + c.payload.len()].copy_from_slice(c.payload);
        self.have[c.index as usize / 64] |= 1 << (c.index % 64);
        self.received += 1;
        self.unacked += 1;
        let in_order = c.index == self.next;
        while self.next < self.count && self.has(self.next) {
            self.next += 1;
        }
        Arrival::New { in_order }
    }

    pub fn is_complete(&self) -> bool {
        self.received == self.count
    }

    /// Fills `out` with the selective-ack bitmap: bit i is chunk `next + 1 + i`.
    pub fn sack(&self, out: &mut Vec<u8>) {
        out.clear();
        let first = u64::from(self.next) + 1;
        let last = u64::from(self.count).min(first + (MAX_SACK_BYTES as u64) * 8);
        let mut used = 0;
        for index in first..last {
            let bit = (index - first) as usize;
            if bit / 8 >= out.len() {
                out.push(0);
            }
            if self.has(index as u32) {
                out[bit / 8] |= 1 << (bit % 8);
                used = bit / 8 + 1;
            }
        }
        out.truncate(used);
    }
}

/// Transfer ids whose batches were delivered: everything below `floor` plus
/// a sparse set above it. Ids are handed out in order, so the set stays small.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    floor: u32,
    above: BTreeSet<u32>,
}

impl Delivered {
    pub fn contains(&self, id: u32) -> bool {
        id < self.floor || self.above.contains(&id)
    }

    pub fn insert(&mut self, id: u32) {
        if id < self.floor {
            return;
        }
        self.above.insert(id);
        while self.above.remove(&self.floor) {
            self.floor += 1;
        }
    }
}

/// Delivered batches the receiver's core refused, with why: the newest
/// [`REFUSALS_KEPT`], oldest forgotten first (a peer that makes this node
/// refuse batch after batch cannot grow it).
#[derive(Debug, Default)]
pub(crate) struct Refused {
    order: std::collections::VecDeque<u32>,
    reasons: std::collections::HashMap<u32, crate::protocol::RefuseReason>,
}

/// Refusals remembered: far more than a sender keeps batches open, so one
/// is forgotten only long after its sender has heard of it.
const REFUSALS_KEPT: usize = 1024;

impl Refused {
    pub fn insert(&mut self, id: u32, reason: crate::protocol::RefuseReason) {
        if self.reasons.insert(id, reason).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > REFUSALS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.reasons.remove(&old);
            }
        }
    }

    pub fn reason(&self, id: u32) -> Option<crate::protocol::RefuseReason> {
        self.reasons.get(&id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: u32, payload: &[u8]) -> Chunk<'_> {
        Chunk {
            transfer: 0,
            kind: BatchKind::Jobs,
            index,
            count: 20,
            chunk_bytes: 2,
            total_bytes: 39,
            payload,
        }
    }

    #[test]
    fn reassembles_out_of_order_and_reports_gaps() {
        let mut b = InBatch::new(&chunk(5, &[0, 0]), Instant::now());
        assert_eq!(
            b.insert(&chunk(1, &[2, 3])),
            Arrival::New { in_order: false }
        );
        assert_eq!(
            b.insert(&chunk(0, &[0, 1])),
            Arrival::New { in_order: true }
        );
        assert_eq!(b.next, 2);
        assert_eq!(b.insert(&chunk(0, &[0, 1])), Arrival::Duplicate);
        b.insert(&chunk(3, &[6, 7]));
        b.insert(&chunk(12, &[24, 25]));
        let mut sack = Vec::new();
        b.sack(&mut sack);
        // next = 2; bit 0 is chunk 3, bit 9 is chunk 12.
        assert_eq!(sack, vec![0b0000_0001, 0b0000_0010]);
        for i in 0..20u32 {
            let bytes = [(2 * i) as u8, (2 * i + 1) as u8];
            let len = if i == 19 { 1 } else { 2 };
            b.insert(&chunk(i, &bytes[..len]));
        }
        assert!(b.is_complete());
        assert_eq!(b.data, (0..39).collect::<Vec<u8>>());
        b.sack(&mut sack);
        assert!(sack.is_empty());
    }

    #[test]
    fn delivered_ids_compact_into_a_floor() {
        let mut d = Delivered::default();
        d.insert(1);
        assert!(!d.contains(0) && d.contains(1));
        d.insert(0);
        d.insert(2);
        assert_eq!(d.floor, 3);
        assert!(d.above.is_empty());
        assert!(d.contains(2) && !d.contains(3));
    }
}
