//! The time series the window plots: both nodes' queues, CPU use and jobs
//! done, taken by the node's event loop 20 times a second for the whole run
//! (whatever the window's repaint rate; a long run's are thinned to at most
//! [`MAX_POINTS`] a series), and the transfers to mark on the time axis.

use egui_plot::PlotPoint;

use crate::ids::Role;
use crate::node::{NodeView, Sample, Snapshot};

/// Points a series keeps at most (of one sample each, then of two, four...).
pub const MAX_POINTS: usize = 4096;

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
    /// One sample in this many is plotted: doubled each time the series
    /// reach [`MAX_POINTS`], when every other point is dropped, so a long
    /// run costs a frame no more than a short one.
    stride: usize,
    /// Samples copied since the last one plotted.
    skipped: usize,
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
            self.take(sample);
        }
        new.len()
    }

    /// One sample of the node's: plotted if it is the stride's, then the
    /// series thinned if they are full.
    fn take(&mut self, sample: &Sample) {
        self.skipped += 1;
        if self.skipped >= self.stride.max(1) {
            self.skipped = 0;
            self.push(sample);
        }
        if self.queue_local.len() >= MAX_POINTS {
            self.thin();
        }
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
        for series in self.every_series() {
            series.retain(|p| p.x < t);
        }
        self.push(&Sample::of(&s, t));
    }

    fn every_series(&mut self) -> [&mut Series; 6] {
        [
            &mut self.queue_local,
            &mut self.queue_peer,
            &mut self.cpu_local,
            &mut self.cpu_peer,
            &mut self.done_local,
            &mut self.done_peer,
        ]
    }

    /// Drops every other point of each series and plots one sample in
    /// twice as many from now on.
    fn thin(&mut self) {
        for series in self.every_series() {
            let mut i = 0;
            series.retain(|_| {
                i += 1;
                i % 2 == 1
            });
        }
        self.stride = self.stride.max(1) * 2;
    }

    /// The x of the last sample: the run's end once it is over.
    pub fn last_t(&self) -> Option<f64> {
        self.last_t
    }

    fn push(&mut self, sample: &Sample) {
        let t = sample.t;
        self.last_t = Some(t);
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

    /// Points plotted (each sample plots one in every series it has a
    /// figure for; the queue has one for every sample).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64) -> Sample {
        let figures = crate::node::SampleFigures {
            queue: 1,
            jobs_done: 2,
            cpu: Some(50.0),
        };
        Sample {
            t,
            local: figures,
            peer: Some(figures),
        }
    }

    #[test]
    fn a_long_run_keeps_at_most_max_points_a_series_over_its_whole_length() {
        let mut h = History::default();
        let n = MAX_POINTS * 5;
        for i in 0..n {
            h.take(&sample(i as f64 * 0.05));
        }
        assert!(h.len() < MAX_POINTS, "{}", h.len());
        assert!(h.len() >= MAX_POINTS / 4, "{}", h.len());
        // From the start to (about) the end, in order.
        assert_eq!(h.queue_local[0].x, 0.0);
        let last = h.queue_local.last().unwrap().x;
        assert!(last > (n as f64 - 20.0) * 0.05, "{last}");
        assert!(h.queue_local.windows(2).all(|w| w[0].x < w[1].x));
        assert_eq!(h.cpu_peer.len(), h.queue_local.len());
    }

    #[test]
    fn a_lost_peer_and_an_unmeasured_cpu_draw_nothing() {
        let mut h = History::default();
        let figures = crate::node::SampleFigures {
            queue: 3,
            jobs_done: 0,
            cpu: None,
        };
        h.push(&Sample {
            t: 0.1,
            local: figures,
            peer: None,
        });
        assert_eq!((h.len(), h.queue_peer.len(), h.cpu_local.len()), (1, 0, 0));
        assert_eq!(h.queue_local[0].y, 3.0);
    }
}
