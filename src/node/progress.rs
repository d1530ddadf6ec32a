//! Headless progress on stderr: a progress bar redrawn in place when stderr
//! is a terminal, a plain line every few seconds otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::view::Snapshot;
use crate::ids::Role;
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
    pub fn tick(&mut self, snapshot: &Snapshot, now: Instant) {
        let phase = snapshot.phase;
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
        let line = status_line(snapshot);
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
pub fn status_line(s: &Snapshot) -> String {
    let total = s.jobs_total;
    let (queue, busy, done, received) = (
        s.local.queue,
        s.local.busy,
        s.local.jobs_done,
        s.local.jobs_received,
    );
    let peer_queue = s.peer.map_or(0, |p| p.queue);
    let (finished, of) = match s.role {
        Role::Master => (s.results_held, total),
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
        s.role.name(),
        // The log's clock, so that a progress line and the log lines
        // around it agree.
        s.node_seconds(),
        s.phase.name(),
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        if s.role == Role::Master {
            "results"
        } else {
            "done"
        },
        s.local.rate,
        s.local.in_flight,
    )
}
