//! Headless progress on stderr: a progress bar redrawn in place when stderr
//! is a terminal, a plain line every few seconds otherwise (logs, CI).

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::config::Role;
use crate::protocol::Phase;

/// How often a plain progress line is printed.
const LINE_INTERVAL: Duration = Duration::from_secs(2);
/// How often the bar is redrawn.
const BAR_INTERVAL: Duration = Duration::from_millis(200);
/// Width of the bar in characters.
const BAR_WIDTH: usize = 30;

/// The progress printer of one node.
pub struct Progress {
    enabled: bool,
    terminal: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A printer; `enabled` only when running headless.
    pub fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    /// Prints if it is time to.
    pub fn tick(&mut self, shared: &Shared, now: Instant) {
        let phase = shared.phase();
        if !self.enabled || phase == Phase::Idle || phase == Phase::Done {
            return;
        }
        let interval = if self.terminal {
            BAR_INTERVAL
        } else {
            LINE_INTERVAL
        };
        if self.last.is_some_and(|t| now.duration_since(t) < interval) {
            return;
        }
        self.last = Some(now);
        let line = status_line(shared);
        if self.terminal {
            crate::term::err(&format!("\r\x1b[K{line}"));
            self.drawn = true;
        } else {
            crate::term::err_line(&line);
        }
    }

    /// Ends the bar's line so what follows starts on a fresh one.
    pub fn finish(&mut self) {
        if self.drawn {
            crate::term::err("\n");
            self.drawn = false;
        }
    }
}

/// One line describing where the node stands.
pub fn status_line(shared: &Shared) -> String {
    let total = shared.params().map_or(0, |p| p.jobs);
    let q = shared.queue.lock();
    let (queue, busy, done, received) = (q.jobs.len(), q.busy, q.done, q.received);
    drop(q);
    let peer = *shared.peer.lock();
    let peer_queue = peer.map_or(0, |p| p.state.queue);
    let (finished, of) = match shared.role {
        Role::Master => {
            let results = shared.results.lock().as_ref().map_or(0, |r| r.len());
            (results as u32, total)
        }
        Role::Slave => (done, received),
    };
    let fraction = if of == 0 {
        0.0
    } else {
        f64::from(finished) / f64::from(of)
    };
    let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    format!(
        "[{:<6} {:>7.1}s] {:<11} [{}{}] {finished}/{of} {} | queue {queue} (peer {peer_queue}), \
         computing {busy}, {:.1} jobs/s, in flight {}",
        shared.role.name(),
        shared.run_seconds(),
        shared.phase().name(),
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        if shared.role == Role::Master {
            "results"
        } else {
            "done"
        },
        shared.rate.get(),
        shared.in_flight_jobs.load(Ordering::Relaxed),
    )
}
