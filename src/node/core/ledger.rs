//! The job ledger: where every job of the run is, as this node sees it.
//! Each job has exactly one state here, and the counts of each state are
//! kept with it, so a test (or a debug check) can ask at any moment that
//! nothing was lost or counted twice.

use crate::ids::JobId;

/// Where one job is, from this node's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Not this node's: never received, or handed over to the peer.
    Absent,
    /// Waiting in this node's queue.
    Queued,
    /// Given to a worker.
    Computing,
    /// In an outbound batch the peer has not acknowledged yet.
    InFlight,
    /// Master: delivered to the slave, whose result is due back.
    Lent,
    /// Slave: computed; its result waits for, or is in, a results batch.
    Computed,
    /// Master: its result is held. Slave: the master acknowledged its result.
    Returned,
}

const STATES: usize = 7;

impl JobState {
    fn index(self) -> usize {
        self as usize
    }
}

/// Every job's state, with a count per state.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    states: Vec<JobState>,
    counts: [u32; STATES],
}

impl Ledger {
    /// A ledger of `jobs` jobs, all absent.
    pub fn new(jobs: u32) -> Self {
        let mut counts = [0; STATES];
        counts[JobState::Absent.index()] = jobs;
        Ledger {
            states: vec![JobState::Absent; jobs as usize],
            counts,
        }
    }

    /// Makes the run `jobs` jobs long, the new ones absent; never shrinks.
    pub fn grow_to(&mut self, jobs: u32) {
        let old = self.states.len() as u32;
        if jobs > old {
            self.states.resize(jobs as usize, JobState::Absent);
            self.counts[JobState::Absent.index()] += jobs - old;
        }
    }

    /// Jobs in the run (0 before its parameters are known).
    pub fn jobs(&self) -> u32 {
        self.states.len() as u32
    }

    /// A job's state; an id out of range is absent.
    pub fn state(&self, id: JobId) -> JobState {
        self.states
            .get(id as usize)
            .copied()
            .unwrap_or(JobState::Absent)
    }

    /// Moves a job to `to` and returns where it was; an id out of range is
    /// left alone (and reported absent).
    pub fn set(&mut self, id: JobId, to: JobState) -> JobState {
        let Some(slot) = self.states.get_mut(id as usize) else {
            return JobState::Absent;
        };
        let from = std::mem::replace(slot, to);
        self.counts[from.index()] -= 1;
        self.counts[to.index()] += 1;
        from
    }

    /// Every job's state, by id.
    pub fn states(&self) -> &[JobState] {
        &self.states
    }

    /// Jobs in `state`.
    pub fn count(&self, state: JobState) -> u32 {
        self.counts[state.index()]
    }

    /// The ids in `state`, in order.
    pub fn ids_in(&self, state: JobState) -> Vec<JobId> {
        (0..self.jobs())
            .filter(|&id| self.state(id) == state)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_every_move() {
        let mut l = Ledger::new(4);
        assert_eq!(l.count(JobState::Absent), 4);
        assert_eq!(l.set(0, JobState::Queued), JobState::Absent);
        assert_eq!(l.set(1, JobState::InFlight), JobState::Absent);
        assert_eq!(l.set(0, JobState::Computing), JobState::Queued);
        assert_eq!(l.set(1, JobState::Lent), JobState::InFlight);
        assert_eq!(l.count(JobState::Absent), 2);
        assert_eq!(l.count(JobState::Computing), 1);
        assert_eq!(l.count(JobState::Lent), 1);
        assert_eq!(l.ids_in(JobState::Lent), vec![1]);
        // Out of range: nothing moves.
        assert_eq!(l.set(9, JobState::Queued), JobState::Absent);
        assert_eq!(l.state(9), JobState::Absent);
        let total: u32 = [
            JobState::Absent,
            JobState::Queued,
            JobState::Computing,
            JobState::InFlight,
            JobState::Lent,
            JobState::Computed,
            JobState::Returned,
        ]
        .iter()
        .map(|&s| l.count(s))
        .sum();
        assert_eq!(total, 4);
    }
}
