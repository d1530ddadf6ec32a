//! The job book's invariants, in one place: the ledger, the queue, the
//! workers, the jobs in flight and the results must agree after every
//! move. Debug builds check them after every input of the core; the swarm
//! after every step of every run.

use super::{JobBook, JobState};

impl JobBook {
    /// The book's invariants: the ledger, the queue, the workers, the jobs
    /// in flight and the results agree. An error names the first that
    /// does not hold.
    pub(in crate::node::core) fn check(&self) -> Result<(), String> {
        let count = |s| self.ledger.count(s);
        // Every queued job has exactly one entry; the rest are stale.
        if self.queue.len() != (count(JobState::Queued) + self.stale) as usize {
            return Err(format!(
                "{} jobs queued in the ledger and {} stale entries, {} in the queue",
                count(JobState::Queued),
                self.stale,
                self.queue.len()
            ));
        }
        // A worker keeps a job put back by a pause until it returns it.
        let assigned: u32 = self.assigned.iter().sum();
        if count(JobState::Computing) > assigned {
            return Err(format!(
                "{} jobs computing, {assigned} given to workers",
                count(JobState::Computing)
            ));
        }
        // A batch's jobs leave the ledger's state in flight when it is
        // delivered; one whose result came first has left it before.
        if count(JobState::InFlight) > self.in_flight() {
            return Err(format!(
                "{} jobs in flight in the ledger, {} on their way",
                count(JobState::InFlight),
                self.in_flight()
            ));
        }
        if let Some(results) = &self.results {
            if results.len() != count(JobState::Returned) as usize {
                return Err(format!(
                    "{} results held, {} jobs returned",
                    results.len(),
                    count(JobState::Returned)
                ));
            }
            if (self.done + self.results_received) as usize != results.len() {
                return Err(format!(
                    "{} computed here + {} received, {} results held",
                    self.done,
                    self.results_received,
                    results.len()
                ));
            }
        }
        if self.ready.len() > count(JobState::Computed) as usize {
            return Err(format!(
                "{} results ready to send, {} jobs computed",
                self.ready.len(),
                count(JobState::Computed)
            ));
        }
        Ok(())
    }
}
