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
        // The jobs counted in flight are exactly those of the bootstrap not
        // sent yet and of our batches of jobs not yet delivered or refused
        // (a count that leaked upward would hold the run up for ever).
        let outbound: usize = self
            .pending
            .values()
            .filter(|p| p.kind != crate::protocol::BatchKind::Results)
            .map(|p| p.ids.len())
            .sum();
        if self.in_flight_jobs as usize != self.bootstrap.len() + outbound {
            return fail(format!(
                "{} jobs counted in flight, {} of the bootstrap unsent and {outbound} in batches \
                 on their way",
                self.in_flight_jobs,
                self.bootstrap.len()
            ));
        }
        // A batch's jobs leave the ledger's state in flight when it is
        // delivered; one whose result came first has left it before.
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
