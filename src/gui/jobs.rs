//! The jobs table: every job of the run, where it is now (queued,
//! computing, in flight, done, or at the peer when this window sees one
//! node only), the node and worker that computed it and when, filtered by
//! state and node. The same data the report sums up, one row per job.

use eframe::egui;

use super::stream::TaskStream;
use crate::ids::Role;
use crate::node::Snapshot;
use crate::node::core::JobState;

/// Where a job is, as the window can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Not in this node's view of the run yet: before the run starts, or a
    /// job still to arrive (or, in a master's window, arrived at the slave
    /// and not sent on).
    NotStarted,
    /// In a node's queue.
    Queued,
    /// With one of a node's workers.
    Computing,
    /// In a batch on its way.
    InFlight,
    /// Computed; its result is (or is on its way to) the master.
    Done,
    /// With the peer, which this window does not show.
    AtPeer,
}

impl Where {
    /// Every state, in the filter's order.
    pub const ALL: [Where; 6] = [
        Where::NotStarted,
        Where::Queued,
        Where::Computing,
        Where::InFlight,
        Where::Done,
        Where::AtPeer,
    ];

    /// The state as the table writes it.
    pub fn name(self) -> &'static str {
        match self {
            Where::NotStarted => "not started",
            Where::Queued => "queued",
            Where::Computing => "computing",
            Where::InFlight => "in flight",
            Where::Done => "done",
            Where::AtPeer => "at the peer",
        }
    }
}

/// One job's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The job.
    pub id: u32,
    /// Where it is.
    pub state: Where,
    /// The node it is on (the sender, in flight; the one that computed it,
    /// done).
    pub node: Option<Role>,
    /// Who computed it and when (seconds since the run started).
    pub computed: Option<(Role, u16, f64, f64)>,
    /// The digits and command kinds, in a master's view: its attempts.
    pub attempts: Option<crate::workload::kind::PieceRow>,
}

/// Where job `id` is, from the ledgers of the nodes this window shows.
fn locate(id: usize, snapshots: &[&Snapshot]) -> (Where, Option<Role>) {
    let state_on = |role: Role| {
        snapshots
            .iter()
            .find(|s| s.role == role)
            .map(|s| s.states.get(id).copied().unwrap_or(JobState::Absent))
    };
    let master = state_on(Role::Master);
    let slave = state_on(Role::Slave);
    let on = |role: Role, state: JobState| -> Option<(Where, Option<Role>)> {
        Some(match state {
            JobState::Queued => (Where::Queued, Some(role)),
            JobState::Computing => (Where::Computing, Some(role)),
            JobState::InFlight => (Where::InFlight, Some(role)),
            JobState::Computed | JobState::Returned => (Where::Done, Some(role)),
            JobState::Absent | JobState::Lent => return None,
        })
    };
    match (master, slave) {
        // The master holds its result: done, whatever a slave that
        // stopped or was lost last said of it.
        (Some(JobState::Returned), Some(_)) => (Where::Done, Some(Role::Master)),
        (Some(m), Some(s)) => on(Role::Master, m)
            .filter(|_| m != JobState::Returned)
            .or_else(|| on(Role::Slave, s))
            .or_else(|| on(Role::Master, m))
            // Lent by the master and not on the slave yet: on its way.
            .unwrap_or(match m {
                JobState::Lent => (Where::InFlight, Some(Role::Master)),
                _ => (Where::NotStarted, None),
            }),
        (Some(m), None) => on(Role::Master, m).unwrap_or(match m {
            JobState::Lent => (Where::AtPeer, Some(Role::Slave)),
            _ => (Where::NotStarted, None),
        }),
        (None, Some(s)) => on(Role::Slave, s).unwrap_or((Where::AtPeer, Some(Role::Master))),
        (None, None) => (Where::NotStarted, None),
    }
}

/// The table's rows and its filters.
#[derive(Debug, Default)]
pub struct JobsTable {
    rows: Vec<Row>,
    /// The digits and command kinds: what names each job's input.
    work: Option<std::sync::Arc<crate::workload::kind::ByteWork>>,
    state_filter: Option<Where>,
    node_filter: Option<Role>,
}

impl JobsTable {
    /// Rebuilds the rows from the nodes' latest snapshots and the stream.
    pub fn update(&mut self, snapshots: &[&Snapshot], stream: &TaskStream) {
        let jobs = snapshots
            .iter()
            .map(|s| s.jobs_total as usize)
            .max()
            .unwrap_or(0);
        let computed = stream.computed(jobs);
        // A window of one node: a job done with no span here was computed
        // by the peer.
        let peer = match snapshots {
            [one] => Some(one.role.peer()),
            _ => None,
        };
        let pieces = snapshots
            .iter()
            .find_map(|s| s.pieces.clone().filter(|_| s.role == Role::Master));
        self.work = pieces.as_ref().map(|p| p.0.clone());
        self.rows = (0..jobs)
            .map(|id| {
                let (mut state, mut node) = locate(id, snapshots);
                let computed = computed[id];
                if state == Where::Done {
                    node = computed.map(|c| c.0).or(peer).or(node);
                } else if state == Where::AtPeer && computed.is_some() {
                    // A lone master sees a job lent and computed here
                    // before (a reclaimed one's late copy): it is done.
                    state = Where::Done;
                }
                Row {
                    id: id as u32,
                    state,
                    node,
                    computed,
                    attempts: pieces.as_ref().and_then(|p| p.1.get(id).copied()),
                }
            })
            .collect();
    }

    /// The rows that pass the filters.
    pub fn visible(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| self.state_filter.is_none_or(|f| r.state == f))
            .filter(|r| self.node_filter.is_none_or(|f| r.node == Some(f)))
            .collect()
    }

    /// Sets the filters (a test's, or the combo boxes').
    pub fn set_filters(&mut self, state: Option<Where>, node: Option<Role>) {
        self.state_filter = state;
        self.node_filter = node;
    }

    /// Draws the filters, the counts per state and the rows in view.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if self.rows.is_empty() {
            ui.label("No jobs yet: the table fills in when a run starts.");
            return;
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("State");
            egui::ComboBox::from_id_salt("jobs-state")
                .selected_text(self.state_filter.map_or("all", Where::name))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.state_filter, None, "all");
                    for w in Where::ALL {
                        ui.selectable_value(&mut self.state_filter, Some(w), w.name());
                    }
                });
            ui.label("Node");
            egui::ComboBox::from_id_salt("jobs-node")
                .selected_text(self.node_filter.map_or("both", Role::name))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.node_filter, None, "both");
                    for role in [Role::Master, Role::Slave] {
                        ui.selectable_value(&mut self.node_filter, Some(role), role.name());
                    }
                });
            let counts: Vec<String> = Where::ALL
                .iter()
                .filter_map(|&w| {
                    let n = self.rows.iter().filter(|r| r.state == w).count();
                    (n > 0).then(|| format!("{} {n}", w.name()))
                })
                .collect();
            ui.label(format!("· {}", counts.join(", ")));
        });
        let visible = self.visible();
        ui.label(format!(
            "{} of {} jobs shown",
            visible.len(),
            self.rows.len()
        ));
        let mut header = format!(
            "{:>8}  {:<12} {:<7} {:<12} {:>10} {:>10}",
            "job", "state", "node", "computed by", "start s", "end s"
        );
        if self.work.is_some() {
            header.push_str(&format!(
                "  {:>5} {:>6} {:>9} {:>10}  {}",
                "tries", "exit", "runtime s", "output B", "input"
            ));
        }
        ui.label(egui::RichText::new(header).monospace().strong());
        let work = self.work.clone();
        let failed_color = ui.visuals().error_fg_color;
        let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
        egui::ScrollArea::vertical()
            .id_salt("jobs-rows")
            .auto_shrink([false, true])
            .show_rows(ui, row_height, visible.len(), |ui, range| {
                for r in &visible[range] {
                    let (by, start, end) = match r.computed {
                        Some((role, worker, start, end)) => (
                            format!("{} {worker}", role.name()),
                            format!("{start:.4}"),
                            format!("{end:.4}"),
                        ),
                        None => ("–".to_owned(), String::new(), String::new()),
                    };
                    let mut line = format!(
                        "{:>8}  {:<12} {:<7} {:<12} {:>10} {:>10}",
                        r.id,
                        r.state.name(),
                        r.node.map_or("–", Role::name),
                        by,
                        start,
                        end
                    );
                    if let Some(work) = &work {
                        line.push_str(&piece_columns(r.attempts.as_ref()));
                        line.push_str("  ");
                        line.push_str(&work.piece_name(r.id));
                    }
                    let text = egui::RichText::new(line).monospace();
                    if r.attempts.is_some_and(|a| a.failed) {
                        ui.label(text.color(failed_color));
                    } else {
                        ui.label(text);
                    }
                }
            });
    }
}

/// A digits or command job's attempts as the table writes them: tries,
/// the last exit (`sig N` for a signal; `gave up` once given up), its
/// runtime and its output's bytes.
fn piece_columns(a: Option<&crate::workload::kind::PieceRow>) -> String {
    let Some(a) = a else {
        return format!("  {:>5} {:>6} {:>9} {:>10}", "0", "", "", "");
    };
    let exit = if a.given_up {
        "gave up".to_owned()
    } else if a.signal != 0 {
        format!("sig {}", a.signal)
    } else {
        a.exitval.to_string()
    };
    format!(
        "  {:>5} {:>6} {:>9.3} {:>10}",
        a.attempts, exit, a.runtime_s, a.output_bytes
    )
}
