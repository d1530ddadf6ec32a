//! What a viewer (the window, the headless progress line, the bench) reads
//! of a running node: the event log and a snapshot of its figures, both
//! published by the node's event loop. Nothing here is written by more than
//! one thread, and no viewer ever holds the node's core.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::core::{JobState, NodeCore, Timeline, TransferRecord};
use crate::ids::Role;
use crate::link::LinkConfig;
use crate::protocol::{Phase, State};
use crate::transport::Rejected;

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Time since the node started.
    pub at: Duration,
    /// What happened.
    pub text: String,
    /// A line only `-v` prints (one batch of the bootstrap or results).
    pub detail: bool,
}

/// How often the event loop takes a point for the plots, run seconds:
/// 20 a second, whatever the window's repaint rate.
pub const SAMPLE_INTERVAL_S: f64 = 0.05;

/// One point of a node's plots, taken by its event loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    /// This node's figures.
    pub local: SampleFigures,
    /// The peer's, from its latest state; `None` before its first state
    /// and once it is lost (its last state is no longer the truth: the
    /// master took its jobs back).
    pub peer: Option<SampleFigures>,
}

/// A node's figures in one [`Sample`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleFigures {
    /// Jobs queued.
    pub queue: u32,
    /// Jobs computed.
    pub jobs_done: u32,
    /// The node's CPU use, percent of one core; `None` before the node's
    /// first measurement.
    pub cpu: Option<f32>,
}

impl Sample {
    /// The point of `s` at `t` run seconds.
    pub fn of(s: &Snapshot, t: f64) -> Sample {
        let figures = |state: &State, measured: bool| SampleFigures {
            queue: state.queue,
            jobs_done: state.jobs_done,
            cpu: measured.then_some(state.cpu_process),
        };
        Sample {
            t,
            local: figures(&s.local, s.cpu_measured),
            peer: s
                .peer
                .filter(|_| !s.peer_lost)
                .map(|p| figures(&p, peer_cpu_measured(&p))),
        }
    }
}

/// Whether a peer's state carries a CPU measurement: the state does not
/// say, so 0 % of the node and of the whole machine is taken as not yet (a
/// machine running the peer's event loop is never that idle).
pub fn peer_cpu_measured(state: &State) -> bool {
    state.cpu_process > 0.0 || state.cpu_system > 0.0
}

/// Most log entries kept in memory; older ones are dropped.
pub const LOG_CAPACITY: usize = 5000;

/// How much of its log a headless node prints on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// None of it (`-q`): the run's errors and result are printed by the
    /// command.
    Quiet,
    /// Phases, connections, policy transfers, bootstrap and results
    /// summarised, errors.
    #[default]
    Normal,
    /// Every line, with every batch and its job ids (`-v`).
    Verbose,
}

/// A bounded, timestamped log of what the node did, echoed to stderr when
/// running headless (best effort: a closed stderr is never fatal).
#[derive(Debug)]
pub struct EventLog {
    /// The kept entries, and how many were ever pushed.
    entries: Mutex<(VecDeque<LogEntry>, u64)>,
    /// What is echoed to stderr (a window's nodes: nothing, `Quiet`).
    echo: Verbosity,
    /// Stderr is a terminal: clear a progress bar's line before a log line.
    terminal: bool,
    prefix: String,
}

impl EventLog {
    /// A log for `role`; lines are copied to stderr as `echo` says.
    pub fn new(role: Role, echo: Verbosity) -> Self {
        EventLog {
            entries: Mutex::new((VecDeque::new(), 0)),
            echo,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            prefix: role.name().to_owned(),
        }
    }

    /// Records an event.
    pub fn push(&self, entry: LogEntry) {
        let shown = match self.echo {
            Verbosity::Quiet => false,
            Verbosity::Normal => !entry.detail,
            Verbosity::Verbose => true,
        };
        if shown {
            crate::say!(
                "{}[{:<6} {:>8.3}s] {}",
                if self.terminal { "\r\x1b[K" } else { "" },
                self.prefix,
                entry.at.as_secs_f64(),
                entry.text
            );
        }
        let mut guard = self.entries.lock();
        let (entries, total) = &mut *guard;
        if entries.len() == LOG_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
        *total += 1;
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries.lock().0.iter().cloned().collect()
    }

    /// The entries pushed after the first `seen` ones (those still kept),
    /// and the new count to pass next time: a viewer copies only what is new.
    pub fn since(&self, seen: u64) -> (Vec<LogEntry>, u64) {
        let guard = self.entries.lock();
        let (entries, total) = &*guard;
        let first_kept = total - entries.len() as u64;
        let skip = seen.saturating_sub(first_kept) as usize;
        (entries.iter().skip(skip).cloned().collect(), *total)
    }
}

/// A node's figures at one moment, as its event loop last published them.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The node's role.
    pub role: Role,
    /// Its address and its peer's.
    pub addresses: (SocketAddr, SocketAddr),
    /// When the node started: the log's clock.
    pub epoch: Instant,
    /// The phase.
    pub phase: Phase,
    /// True once the peer answered the handshake.
    pub connected: bool,
    /// True once the peer was declared lost.
    pub peer_lost: bool,
    /// When the peer was last heard.
    pub last_heard: Option<Instant>,
    /// This node's state, as it sends it.
    pub local: State,
    /// The peer's latest state.
    pub peer: Option<State>,
    /// Jobs delivered to the peer.
    pub delivered_to_peer: u32,
    /// Jobs in the run (0 before its parameters are known).
    pub jobs_total: u32,
    /// Master: results held.
    pub results_held: u32,
    /// Master: jobs taken back from a lost slave.
    pub jobs_reclaimed: u32,
    /// When each phase began.
    pub phase_started: [Option<Instant>; 5],
    /// Policy transfers so far.
    pub transfers: Vec<TransferRecord>,
    /// Every job's state here, by id, for the window's jobs table (empty
    /// before the run's parameters are known, and for a headless node,
    /// which has no table to fill).
    pub states: Vec<JobState>,
    /// Datagrams rejected, by reason (the reader's and the core's).
    pub rejected: Rejected,
    /// Datagrams the emulated link dropped.
    pub link_dropped: u64,
    /// The emulated link, if any.
    pub link: Option<LinkConfig>,
    /// Chunks sent again.
    pub retransmitted: u64,
    /// Whole loadbal datagrams from the peer's address whose tags failed
    /// (what a peer with another secret sends).
    pub bad_tags: u64,
    /// True once the hardware monitor has measured the node's CPU use
    /// (before that, `local.cpu_*` are 0 because nothing was measured).
    pub cpu_measured: bool,
    /// The digits and command kinds, with `with_states`: how the run's
    /// jobs are named, and (master) each job's attempts.
    pub pieces: Option<(
        std::sync::Arc<crate::workload::kind::ByteWork>,
        std::sync::Arc<Vec<crate::workload::kind::PieceRow>>,
    )>,
}

impl Snapshot {
    /// The figures of `core` now; the reader's counts come from the shell.
    /// `with_states` copies every job's state (a byte a job).
    pub fn of(
        core: &NodeCore,
        addresses: (SocketAddr, SocketAddr),
        reader_rejected: Rejected,
        link_dropped: u64,
        with_states: bool,
    ) -> Self {
        let mut rejected = core.counters().rejected;
        rejected.unknown_source += reader_rejected.unknown_source;
        rejected.unauthentic += reader_rejected.unauthentic;
        Snapshot {
            role: core.role(),
            addresses,
            epoch: core.epoch(),
            phase: core.phase(),
            connected: core.is_connected(),
            peer_lost: core.is_peer_lost(),
            last_heard: core.last_heard(),
            local: core.local_state(),
            peer: core.peer().map(|p| p.state),
            delivered_to_peer: core.delivered_to_peer(),
            jobs_total: core.params().map_or(0, |p| p.jobs),
            results_held: core.results().map_or(0, |r| r.len() as u32),
            jobs_reclaimed: core.jobs_reclaimed(),
            phase_started: core.phase_started(),
            transfers: core.transfers().to_vec(),
            states: if with_states {
                core.ledger().states().to_vec()
            } else {
                Vec::new()
            },
            rejected,
            link_dropped,
            link: core.config().node(core.role()).link,
            retransmitted: core.retransmitted(),
            cpu_measured: core.cpu_measured(),
            bad_tags: core.bad_tags(),
            pieces: core
                .work()
                .filter(|_| with_states)
                .map(|w| (w.clone(), core.piece_rows())),
        }
    }

    /// Seconds since the run started (0 before).
    pub fn run_seconds(&self) -> f64 {
        self.phase_started[Phase::Bootstrap as usize].map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// Seconds since the node started, the log's clock.
    pub fn node_seconds(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// How long since the peer was last heard.
    pub fn silence(&self) -> Option<Duration> {
        self.last_heard.map(|t| t.elapsed())
    }
}

/// A viewer's handle on a node: its log, its latest snapshot and its
/// timeline. It stays readable after the node has ended.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The event log.
    pub log: Arc<EventLog>,
    snapshot: Arc<Mutex<Arc<Snapshot>>>,
    timeline: Arc<Mutex<Timeline>>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl NodeView {
    pub(super) fn new(log: Arc<EventLog>, first: Snapshot) -> Self {
        NodeView {
            log,
            snapshot: Arc::new(Mutex::new(Arc::new(first))),
            timeline: Arc::default(),
            samples: Arc::default(),
        }
    }

    /// The plot points taken after the first `seen`, appended to `into`;
    /// returns the new count to pass next time.
    pub fn samples_into(&self, seen: usize, into: &mut Vec<Sample>) -> usize {
        let samples = self.samples.lock();
        into.extend_from_slice(samples.get(seen..).unwrap_or_default());
        samples.len()
    }

    /// Brings `copy` up to date with the node's timeline (as of its last
    /// publication), copying only what is new.
    pub fn timeline_into(&self, copy: &mut Timeline) {
        copy.catch_up(&self.timeline.lock());
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.lock().clone()
    }

    /// Publishes `snapshot` and what is new in `timeline`; with `sample_at`,
    /// also a plot point if the last one is a sampling interval old.
    pub(super) fn publish(
        &self,
        snapshot: Snapshot,
        timeline: &Timeline,
        sample_at: Option<Instant>,
    ) {
        self.timeline.lock().catch_up(timeline);
        if let (Some(now), Some(started)) =
            (sample_at, snapshot.phase_started[Phase::Bootstrap as usize])
        {
            let t = now.saturating_duration_since(started).as_secs_f64();
            let mut samples = self.samples.lock();
            if samples
                .last()
                .is_none_or(|last| t - last.t >= SAMPLE_INTERVAL_S * 0.9)
            {
                samples.push(Sample::of(&snapshot, t));
            }
        }
        *self.snapshot.lock() = Arc::new(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: impl Into<String>) -> LogEntry {
        LogEntry {
            at: Duration::ZERO,
            text: text.into(),
            detail: false,
        }
    }

    #[test]
    fn the_log_hands_out_only_what_is_new_and_stays_bounded() {
        let log = EventLog::new(Role::Master, Verbosity::Quiet);
        log.push(entry("a"));
        log.push(entry("b"));
        let (first, seen) = log.since(0);
        assert_eq!(
            first.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        log.push(entry("c"));
        let (next, seen) = log.since(seen);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].text, "c");
        for i in 0..LOG_CAPACITY + 10 {
            log.push(entry(format!("{i}")));
        }
        assert_eq!(log.entries().len(), LOG_CAPACITY);
        // A viewer that fell behind gets what is still kept.
        let (rest, total) = log.since(seen);
        assert_eq!(rest.len(), LOG_CAPACITY);
        assert_eq!(total, 3 + LOG_CAPACITY as u64 + 10);
        assert_eq!(rest.last().unwrap().text, format!("{}", LOG_CAPACITY + 9));
    }
}
