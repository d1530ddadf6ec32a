//! The job accounting's invariants, in one place: the ledger, the queue,
//! the workers, the jobs in flight and the results must agree after every
//! step. Debug builds check them inside the core after every input; the
//! swarm checks them after every step of every run. It reads the core and
//! changes nothing.

use super::{JobState, NodeCore};

impl NodeCore {
    /// The job accounting's invariants, checked after every step in debug
    /// builds and by the swarm after every step of every run: the ledger,
    /// the queue, the workers, the jobs in flight and the results agree.
    /// (Kept together here until the job book owns them all.)
    pub fn check_invariants(&self) -> Result<(), String> {
        let l = &self.ledger;
        let count = |s| l.count(s);
        let fail = |what: String| Err(format!("{} invariant: {what}", self.role));
        // A queue entry can be stale (a job moved on while it waited); a
        // queued job always has its entry.
        if count(JobState::Queued) as usize > self.queue.len() {
            return fail(format!(
                "{} jobs queued in the ledger, {} in the queue",
                count(JobState::Queued),
                self.queue.len()
            ));
        }
        // A worker keeps a job put back by a pause until it returns it.
        let assigned: u32 = self.assigned.iter().sum();
        if count(JobState::Computing) > assigned {
            return fail(format!(
                "{} jobs computing, {assigned} given to workers",
                count(JobState::Computing)
            ));
        }
        // A batch's jobs leave the count of jobs in flight when it is
        // delivered; one whose result came first has left the state before.
        if count(JobState::InFlight) > self.in_flight_jobs {
            return fail(format!(
                "{} jobs in flight in the ledger, {} counted in flight",
                count(JobState::InFlight),
                self.in_flight_jobs
            ));
        }
        if let Some(results) = &self.results {
            if results.len() != count(JobState::Returned) as usize {
                return fail(format!(
                    "{} results held, {} jobs returned",
                    results.len(),
                    count(JobState::Returned)
                ));
            }
            if (self.done + self.results_received) as usize != results.len() {
                return fail(format!(
                    "{} computed here + {} received, {} results held",
                    self.done,
                    self.results_received,
                    results.len()
                ));
            }
        }
        if self.ready_results.len() > count(JobState::Computed) as usize {
            return fail(format!(
                "{} results ready to send, {} jobs computed",
                self.ready_results.len(),
                count(JobState::Computed)
            ));
        }
        Ok(())
    }
}
