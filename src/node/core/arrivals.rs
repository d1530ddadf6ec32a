//! Jobs that come during the run: those of `workload.arrivals`, each node's
//! own and (on a master whose slave was lost) the slave's, admitted when
//! their time comes; and the master's Add jobs, which grow the run.

use std::time::{Duration, Instant};

use super::{JobState, NodeCore, Origin};
use crate::ids::Role;
use crate::protocol::Phase;
use crate::workload::{JobId, format_id_ranges};

impl NodeCore {
    /// Jobs whose arrival time has come join this node's queue.
    pub(super) fn admit_arrivals(&mut self, now: Instant) {
        if self.session.end.is_some()
            || self.session.phase_started[Phase::Bootstrap as usize].is_none()
        {
            return;
        }
        let (first, _) = self.schedule.arrivals(self.role);
        let mut arrived = Vec::new();
        // The same instants as the timer's, so a due timer always admits.
        while self.own_arrival_at().is_some_and(|t| t <= now) {
            arrived.push((first + self.next_arrival as u32, Origin::Added));
            self.next_arrival += 1;
        }
        // Master: a lost slave's arrivals, taken on as they come.
        let (slave_first, _) = self.schedule.arrivals(Role::Slave);
        while self.adopted_arrival_at().is_some_and(|t| t <= now) {
            if let Some(next) = self.adopted.as_mut() {
                arrived.push((slave_first + *next as u32, Origin::Reclaimed));
                *next += 1;
            }
        }
        if arrived.is_empty() {
            return;
        }
        for &(id, origin) in &arrived {
            // Only a job nobody holds yet arrives.
            if self.book.ledger().state(id) == JobState::Absent {
                self.queue_unmade(id, Some(origin));
            }
        }
        let arrived: Vec<JobId> = arrived.into_iter().map(|(id, _)| id).collect();
        self.log_detail(
            now,
            format!(
                "{} jobs arrived [{}]",
                arrived.len(),
                format_id_ranges(&arrived)
            ),
        );
        self.adaptor.state_due = true;
        self.adaptor.evaluate_due = true;
    }

    /// When the next job arrives here, if one does.
    pub(super) fn next_arrival_at(&self) -> Option<Instant> {
        match (self.own_arrival_at(), self.adopted_arrival_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn own_arrival_at(&self) -> Option<Instant> {
        self.arrival_instant(self.role, self.next_arrival)
    }

    fn adopted_arrival_at(&self) -> Option<Instant> {
        self.arrival_instant(Role::Slave, self.adopted?)
    }

    /// When arrival `index` of `role`'s stream comes, by this node's clock.
    fn arrival_instant(&self, role: Role, index: usize) -> Option<Instant> {
        let start = self.session.phase_started[Phase::Bootstrap as usize]?;
        let t = *self.schedule.arrivals(role).1.get(index)?;
        // Validated arrivals come within a day; a bad value is never due.
        start.checked_add(Duration::try_from_secs_f64(t).ok()?)
    }

    /// Master: `n` more jobs of the run's kind, queued here (the policy
    /// moves them like any other). Refused, and said, once the run is in
    /// its aggregation or over, past the largest workload, or past the
    /// machine's memory.
    pub(super) fn add_jobs(&mut self, now: Instant, n: u32) {
        if n == 0 {
            return;
        }
        let refuse = |core: &mut Self, why: String| core.log(now, format!("add {n} jobs: {why}"));
        let Some(params) = self.session.params else {
            return refuse(self, "the run has not started".to_owned());
        };
        if self.role != Role::Master {
            return refuse(self, "only the master adds jobs".to_owned());
        }
        if self.session.end.is_some()
            || !matches!(self.session.phase, Phase::Bootstrap | Phase::Processing)
        {
            return refuse(
                self,
                format!(
                    "the run is past its processing ({})",
                    self.session.phase.name()
                ),
            );
        }
        let limit = crate::config::limits::MAX_JOBS;
        let total = u64::from(params.jobs) + u64::from(n);
        let vector = total * u64::from(params.elements_per_job);
        if total > u64::from(limit) || vector > crate::config::limits::MAX_TOTAL_ELEMENTS {
            return refuse(
                self,
                format!(
                    "the run would have {total} jobs of {} doubles; at most {limit} jobs and {} \
                     doubles in all",
                    params.elements_per_job,
                    crate::config::limits::MAX_TOTAL_ELEMENTS
                ),
            );
        }
        let memory = self.settings.memory_bytes;
        if memory > 0 && vector * 8 > memory {
            return refuse(
                self,
                format!(
                    "the run would hold {:.1} GiB of doubles, more than this machine's {:.1} GiB",
                    (vector * 8) as f64 / f64::from(1u32 << 30),
                    memory as f64 / f64::from(1u32 << 30)
                ),
            );
        }
        let first = params.jobs;
        let jobs = first + n;
        self.grow_to(jobs);
        let at_s = self.run_seconds(now);
        self.added_at.extend(std::iter::repeat_n(at_s, n as usize));
        for id in first..jobs {
            self.queue_unmade(id, Some(Origin::Added));
        }
        self.log(
            now,
            format!(
                "added {n} jobs [{}]: the run has {jobs} jobs now",
                format_id_ranges(&(first..jobs).collect::<Vec<_>>())
            ),
        );
        self.adaptor.state_due = true;
        self.adaptor.evaluate_due = true;
    }

    /// Makes the run `jobs` long (jobs added by the master): the job book
    /// and the timeline grow together; never shrinks.
    pub(super) fn grow_to(&mut self, jobs: u32) {
        let Some(params) = self.session.params.as_mut() else {
            return;
        };
        if jobs <= params.jobs {
            return;
        }
        params.jobs = jobs;
        self.book.grow_to(jobs);
        self.timeline.grow_to(jobs);
    }
}
