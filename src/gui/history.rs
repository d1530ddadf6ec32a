//! The time series the window plots: both nodes' queues, CPU use and jobs
//! done, sampled from the node a few times a second for the whole run, and
//! the transfers to mark on the time axis.

use egui_plot::PlotPoint;

use crate::ids::Role;
use crate::node::Snapshot;

/// How often a sample is taken, seconds.
pub const SAMPLE_INTERVAL_S: f64 = 0.25;

/// One series: points of (seconds since the run started, value), drawn
/// borrowed (never copied) by the plots.
pub type Series = Vec<PlotPoint>;

/// Both nodes' figures over time, as seen from one node.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Queue length of this node.
    pub queue_local: Series,
    /// Queue length of the peer (from its state messages).
    pub queue_peer: Series,
    /// This process's CPU use, percent of one core.
    pub cpu_local: Series,
    /// The peer's process CPU use.
    pub cpu_peer: Series,
    /// Jobs computed on this node.
    pub done_local: Series,
    /// Jobs computed on the peer.
    pub done_peer: Series,
    last_t: Option<f64>,
}

impl History {
    /// Takes a sample if the last one is old enough. Returns true if it did.
    pub fn sample(&mut self, s: &Snapshot) -> bool {
        let Some(started) = s.phase_started[crate::protocol::Phase::Bootstrap as usize] else {
            return false;
        };
        let t = started.elapsed().as_secs_f64();
        if self.last_t.is_some_and(|last| t - last < SAMPLE_INTERVAL_S) {
            return false;
        }
        self.push(s, t);
        true
    }

    /// The run is over: a last sample at its end (the moment its phase
    /// became done; for a run that failed or was stopped, now), after which
    /// nothing is sampled, so the plots end where the run did.
    pub fn finish(&mut self, s: &Snapshot) {
        let Some(started) = s.phase_started[crate::protocol::Phase::Bootstrap as usize] else {
            return;
        };
        let end = s.phase_started[crate::protocol::Phase::Done as usize]
            .unwrap_or_else(std::time::Instant::now);
        let t = end.saturating_duration_since(started).as_secs_f64();
        // Samples taken after the end (the node lingers to see its peer
        // finish) are dropped: the plots stop where the run did.
        for series in [
            &mut self.queue_local,
            &mut self.queue_peer,
            &mut self.cpu_local,
            &mut self.cpu_peer,
            &mut self.done_local,
            &mut self.done_peer,
        ] {
            series.retain(|p| p.x < t);
        }
        self.push(s, t);
    }

    /// The x of the last sample: the run's end once it is over.
    pub fn last_t(&self) -> Option<f64> {
        self.last_t
    }

    fn push(&mut self, s: &Snapshot, t: f64) {
        self.last_t = Some(t);
        let (queue, done) = (f64::from(s.local.queue), f64::from(s.local.jobs_done));
        self.queue_local.push(PlotPoint { x: t, y: queue });
        self.cpu_local.push(PlotPoint {
            x: t,
            y: f64::from(s.local.cpu_process),
        });
        self.done_local.push(PlotPoint { x: t, y: done });
        if let Some(peer) = s.peer {
            self.queue_peer.push(PlotPoint {
                x: t,
                y: f64::from(peer.queue),
            });
            self.cpu_peer.push(PlotPoint {
                x: t,
                y: f64::from(peer.cpu_process),
            });
            self.done_peer.push(PlotPoint {
                x: t,
                y: f64::from(peer.jobs_done),
            });
        }
    }

    /// Samples taken.
    pub fn len(&self) -> usize {
        self.queue_local.len()
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.queue_local.is_empty()
    }
}

/// A transfer to mark on the plots.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Seconds since the run started.
    pub at_s: f64,
    /// The sending role.
    pub from: Role,
    /// Jobs moved.
    pub jobs: u32,
}

/// Every policy transfer of the run so far.
pub fn transfer_marks(s: &Snapshot) -> Vec<Mark> {
    s.transfers
        .iter()
        .map(|t| Mark {
            at_s: t.at_s,
            from: t.from,
            jobs: t.jobs,
        })
        .collect()
}
