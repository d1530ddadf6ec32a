//! The time series the window plots: both nodes' queues, CPU use and jobs
//! done, taken by the node's event loop 20 times a second for the whole run
//! (whatever the window's repaint rate), and the transfers to mark on the
//! time axis.

use egui_plot::PlotPoint;

use crate::ids::Role;
use crate::node::{NodeView, Sample, Snapshot};

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
    /// This node's CPU use, percent of one core (from its first
    /// measurement).
    pub cpu_local: Series,
    /// The peer's CPU use.
    pub cpu_peer: Series,
    /// Jobs computed on this node.
    pub done_local: Series,
    /// Jobs computed on the peer.
    pub done_peer: Series,
    /// Samples of the node's view copied so far.
    seen: usize,
    /// Samples copied (the plots' points, each series a subset).
    taken: usize,
    last_t: Option<f64>,
    /// Set once the run is over: nothing is copied after.
    ended: bool,
}

impl History {
    /// Copies the samples the node took since the last call. Returns how
    /// many.
    pub fn update(&mut self, view: &NodeView) -> usize {
        if self.ended {
            return 0;
        }
        let mut new = Vec::new();
        self.seen = view.samples_into(self.seen, &mut new);
        for sample in &new {
            self.push(sample);
        }
        new.len()
    }

    /// The run is over: the samples up to its end (the moment its phase
    /// became done; for a run that failed or was stopped, now), then a last
    /// one at the end, after which nothing is copied, so the plots end
    /// where the run did.
    pub fn finish(&mut self, view: &NodeView) {
        let s = view.snapshot();
        let Some(started) = s.phase_started[crate::protocol::Phase::Bootstrap as usize] else {
            return;
        };
        self.update(view);
        self.ended = true;
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
        self.push(&Sample::of(&s, t));
    }

    /// The x of the last sample: the run's end once it is over.
    pub fn last_t(&self) -> Option<f64> {
        self.last_t
    }

    fn push(&mut self, sample: &Sample) {
        let t = sample.t;
        self.last_t = Some(t);
        self.taken += 1;
        let point = |y: f64| PlotPoint { x: t, y };
        let local = sample.local;
        self.queue_local.push(point(f64::from(local.queue)));
        self.done_local.push(point(f64::from(local.jobs_done)));
        if let Some(cpu) = local.cpu {
            self.cpu_local.push(point(f64::from(cpu)));
        }
        if let Some(peer) = sample.peer {
            self.queue_peer.push(point(f64::from(peer.queue)));
            self.done_peer.push(point(f64::from(peer.jobs_done)));
            if let Some(cpu) = peer.cpu {
                self.cpu_peer.push(point(f64::from(cpu)));
            }
        }
    }

    /// Samples taken.
    pub fn len(&self) -> usize {
        self.taken
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.taken == 0
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
