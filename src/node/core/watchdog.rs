//! The progress watchdog: a run in which nothing moves ends, named, instead
//! of waiting for ever. Progress is any job changing state here, a chunk of
//! a batch received or acknowledged, or the peer's state showing a job done
//! or received; a worker computing (here or at the peer) is progress too,
//! a paused node is waiting for its user and a run with jobs still to
//! arrive is waiting for them, not stalled. When none of
//! that happens for [`NodeCore::watchdog_limit`], the node fails with
//! [`Failure::NoProgress`], saying where every job stands.

use std::time::{Duration, Instant};

use super::{Failure, JobState, NodeCore};
use crate::protocol::Phase;

/// The watchdog never fires sooner than this after the last progress.
pub const MIN_WATCHDOG: Duration = Duration::from_secs(10);

/// What the watchdog keeps between two looks.
#[derive(Debug, Default)]
pub(super) struct Watchdog {
    /// The progress counters' sum at the last change.
    mark: u64,
    /// When they last changed (None: not watching).
    since: Option<Instant>,
    /// The longest a job took here, from its worker taking it to its result.
    slowest_job: Duration,
}

impl Watchdog {
    /// A job took `took` from its worker taking it to its result.
    pub(super) fn job_took(&mut self, took: Duration) {
        self.slowest_job = self.slowest_job.max(took);
    }
}

impl NodeCore {
    /// How long the run may go without progress: ten times the slowest job
    /// seen here, plus the peer time-out, plus ten datagrams' time at the
    /// link's measured rate (a link of a few kbit/s takes seconds over
    /// one), and never under [`MIN_WATCHDOG`].
    pub fn watchdog_limit(&self) -> Duration {
        let peer = Duration::from_millis(self.config.peer_timeout_ms);
        let datagrams = match self.endpoint.path_estimate().0 {
            Some(rate) if rate > 0.0 => {
                let seconds = 10.0 * f64::from(self.config.datagram_bytes) / rate;
                Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
            }
            _ => Duration::ZERO,
        };
        self.watchdog
            .slowest_job
            .saturating_mul(10)
            .saturating_add(peer)
            .saturating_add(datagrams)
            .max(MIN_WATCHDOG)
    }

    /// When the watchdog fires if nothing moves, while it watches.
    pub(super) fn watchdog_deadline(&self) -> Option<Instant> {
        self.watchdog
            .since
            .and_then(|t| t.checked_add(self.watchdog_limit()))
    }

    /// Looks for progress at `now`, and fails the node when there has been
    /// none for the limit.
    pub(super) fn watch(&mut self, now: Instant) {
        let live = self.session.connected
            && self.session.end.is_none()
            && matches!(self.session.ending, super::Ending::No)
            && matches!(
                self.session.phase,
                Phase::Bootstrap | Phase::Processing | Phase::Aggregation
            );
        if !live {
            self.watchdog.since = None;
            return;
        }
        let peer = self
            .adaptor
            .peer
            .filter(|_| !self.session.peer_lost)
            .map(|p| p.state);
        let stats = self.endpoint.stats();
        // Counts that only grow when the run gets somewhere: jobs computed
        // or held, jobs taken by either node, chunks through. Not the
        // ledger's moves: a batch refused and sent again moves its jobs
        // back and forth for ever without getting anywhere.
        let mark = [
            u64::from(self.book.done()),
            u64::from(self.book.results_received()),
            u64::from(self.book.received()),
            u64::from(self.book.delivered_to_peer()),
            stats.chunks_received,
            stats.chunks_acked,
            peer.map_or(0, |p| u64::from(p.jobs_done) + u64::from(p.jobs_received)),
        ]
        .iter()
        .fold(0u64, |a, &b| a.wrapping_add(b));
        let computing_here = self.throttle > 0.0 && self.book.count(JobState::Computing) > 0;
        let computing_there = peer.is_some_and(|p| p.throttle > 0.0 && p.busy > 0);
        // A pause is waiting for the user only where it holds the run up:
        // this node paused with jobs nobody else can take, or both paused.
        // A pause elsewhere must not hide a stall (a link that drops every
        // batch while a paused slave looks on).
        // A program of the command kind is stopped where it is by a pause,
        // its job held: that node waits for its user too.
        let holding = self.settings.work.is_some()
            && ((self.throttle <= 0.0 && self.book.count(JobState::Computing) > 0)
                || peer.is_some_and(|p| p.throttle <= 0.0 && p.busy > 0));
        let paused = self.adaptor.paused_waiting
            || holding
            || (self.throttle <= 0.0 && peer.is_some_and(|p| p.throttle <= 0.0));
        // Jobs still to arrive (here, or at the peer by this node's clock)
        // are worth waiting for, however far apart they come.
        let arrivals_to_come = self.next_arrival_at().is_some()
            || self.run_seconds(now) < self.schedule.last_arrival();
        let moving = computing_here || computing_there || paused || arrivals_to_come;
        if moving || self.watchdog.since.is_none() || mark != self.watchdog.mark {
            self.watchdog.mark = mark;
            self.watchdog.since = Some(now);
            return;
        }
        let Some(deadline) = self.watchdog_deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        let seconds = self.watchdog_limit().as_secs_f64();
        let detail = self.where_jobs_stand(now);
        self.fail(now, Failure::NoProgress { seconds, detail });
    }

    /// Where the run's jobs stand, for the watchdog's message: the ledger's
    /// counts that are not zero and whether the peer is alive.
    fn where_jobs_stand(&self, now: Instant) -> String {
        let peer = self.role.peer();
        let states = [
            (JobState::Queued, "queued here".to_owned()),
            (JobState::Computing, "computing here".to_owned()),
            (JobState::InFlight, format!("in flight to the {peer}")),
            (JobState::Lent, format!("lent to the {peer}")),
            (
                JobState::Computed,
                "computed, results not acknowledged".to_owned(),
            ),
            (JobState::Returned, "returned".to_owned()),
            (JobState::Absent, format!("at the {peer} or not arrived")),
        ];
        let mut parts: Vec<String> = states
            .iter()
            .filter_map(|(state, what)| {
                let n = self.book.count(*state);
                (n > 0).then(|| format!("{n} jobs {what}"))
            })
            .collect();
        parts.push(match (self.session.peer_lost, self.silence(now)) {
            (true, _) => format!("the {peer} lost"),
            (false, Some(s)) => format!("the {peer} alive (heard {:.1} s ago)", s.as_secs_f64()),
            (false, None) => format!("the {peer} never heard"),
        });
        parts.join(", ")
    }
}
