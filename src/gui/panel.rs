//! One node in the window: its life (started on Start, a new node for each
//! run, so an address change applies at the next start), its throttle
//! slider, both nodes' statistics side by side, progress, plots, the message
//! log and the result of the run. It reads the node's published snapshot and never
//! blocks on it; what the user asks for comes back as a [`PanelCommand`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui_plot::{Line, Plot, PlotPoint, PlotPoints, Text, VLine};

use super::history::{self, History};
use super::stream;
use crate::config::{Config, Role};
use crate::node::{Command, LogEntry, NodeHandle, NodeOptions, NodeView, Outcome};
use crate::protocol::Phase;

/// Marker colour of transfers from the master.
const MASTER_TO_SLAVE: egui::Color32 = egui::Color32::from_rgb(230, 160, 40);
/// Marker colour of transfers from the slave.
const SLAVE_TO_MASTER: egui::Color32 = egui::Color32::from_rgb(190, 90, 220);

/// Most log lines a panel keeps.
const LOG_LINES: usize = 5000;

/// What a panel asks the window to do.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PanelCommand {
    /// Nothing.
    None,
    /// Start a run (the Start button).
    Start,
    /// Stop this node's run (the Stop button).
    Stop,
    /// The throttle slider moved to this value (0 to 1).
    Throttle(f64),
    /// Add this many jobs to the run (the master's Add jobs button).
    AddJobs(u32),
}

/// The peer's own figures, where the window shows the peer too (the demo).
#[derive(Debug, Clone, Copy)]
pub struct PeerOwn {
    /// Its state as it measured it.
    pub state: crate::protocol::State,
    /// Whether its CPU was measured yet.
    pub cpu_measured: bool,
    /// Whether its run ended without finishing.
    pub left_early: bool,
}

/// Jobs the Add jobs button adds unless the user changes it.
const ADD_JOBS_DEFAULT: u32 = 64;

/// One node's part of the window.
pub struct NodePanel {
    role: Role,
    node: Option<NodeHandle>,
    /// The current or last run's node, as viewers see it (kept after the
    /// run ends; the node itself, and its socket, are gone by then).
    view: Option<NodeView>,
    outcome: Option<Outcome>,
    history: History,
    log: Vec<LogEntry>,
    log_seen: u64,
    throttle: f64,
    addresses: Option<(SocketAddr, SocketAddr)>,
    start_error: Option<String>,
    report_path: String,
    report_status: Option<String>,
    /// The config file the window edits: Save report never writes over it.
    config_path: std::path::PathBuf,
    /// The config the last run started with.
    run_config: Option<Config>,
    /// The simulator's finishing time for the last run: made after it
    /// ends (so it takes no CPU from the run), `None` when it did not start
    /// here.
    prediction: Option<crate::run::Predictor>,
    /// Predictions of earlier runs still being made when a new run began:
    /// cancelled, and joined once their threads end (never on a frame).
    retired: Vec<crate::run::Predictor>,
    /// The machine profile the prediction reads (`--machine`), else the
    /// user's.
    machine: Option<std::path::PathBuf>,
    /// Wakes the window (for the prediction's answer).
    waker: Option<Arc<dyn Fn() + Send + Sync>>,
    /// `--report PATH`: every finished run's report is written there.
    auto_report: Option<std::path::PathBuf>,
    /// When the last run ended, by the wall clock.
    ended_at: Option<std::time::SystemTime>,
    /// How many jobs Add jobs adds.
    add_jobs: u32,
}

impl NodePanel {
    /// A panel for `role` with the throttle from the config.
    pub fn new(role: Role, throttle: f64) -> Self {
        NodePanel {
            role,
            node: None,
            view: None,
            outcome: None,
            history: History::default(),
            log: Vec::new(),
            log_seen: 0,
            throttle,
            addresses: None,
            start_error: None,
            report_path: "loadbal-report.json".to_owned(),
            report_status: None,
            config_path: std::path::PathBuf::from("config.json"),
            run_config: None,
            prediction: None,
            retired: Vec::new(),
            machine: None,
            waker: None,
            auto_report: None,
            ended_at: None,
            add_jobs: ADD_JOBS_DEFAULT,
        }
    }

    /// The plots' samples.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// When the last run ended, by the wall clock.
    pub fn ended_at(&self) -> Option<std::time::SystemTime> {
        self.ended_at
    }

    /// Predicts finished runs on the machine profile at `path`.
    pub fn predict_on(&mut self, path: std::path::PathBuf) {
        self.machine = Some(path);
    }

    /// Writes each finished run's report to `path` as the run ends (the
    /// window's `--report`), as well as offering Save report.
    pub fn write_reports_to(&mut self, path: std::path::PathBuf) {
        self.report_path = path.display().to_string();
        self.auto_report = Some(path);
    }

    /// This panel's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True while a node is running.
    pub fn is_running(&self) -> bool {
        self.node.is_some()
    }

    /// The throttle shown on the slider.
    pub fn throttle(&self) -> f64 {
        self.throttle
    }

    /// The address of the current or last run's node.
    pub fn own_address(&self) -> Option<SocketAddr> {
        self.addresses.map(|(own, _)| own)
    }

    /// The current or last run's node, for viewers.
    pub fn view(&self) -> Option<&NodeView> {
        self.view.as_ref()
    }

    /// How the last run ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Starts a node for a new run with `config` (and this panel's
    /// throttle), read from `config_path`.
    pub fn start(
        &mut self,
        config: &Config,
        config_path: &std::path::Path,
        waker: Arc<dyn Fn() + Send + Sync>,
    ) {
        if self.node.is_some() {
            return;
        }
        config_path.clone_into(&mut self.config_path);
        let mut config = config.clone();
        config.node_mut(self.role).throttle = self.throttle;
        self.waker = Some(waker.clone());
        let options = NodeOptions {
            waker,
            ..NodeOptions::quiet()
        };
        match crate::run::start_node(self.role, &config, options) {
            Ok((handle, config)) => {
                self.start_error = None;
                self.outcome = None;
                self.ended_at = None;
                self.report_status = None;
                if let Some(old) = self.prediction.take() {
                    old.cancel();
                    self.retired.push(old);
                }
                self.addresses = Some((
                    config.node(self.role).address,
                    config.node(self.role.peer()).address,
                ));
                self.run_config = Some(config);
                self.view = Some(handle.view().clone());
                self.node = Some(handle);
                self.history = History::default();
                self.log.clear();
                self.log_seen = 0;
            }
            Err(e) => self.start_error = Some(e),
        }
    }

    /// Sets the throttle (the slider), live if a node runs.
    pub fn set_throttle(&mut self, throttle: f64) {
        self.throttle = throttle.clamp(0.0, 1.0);
        if let Some(node) = &self.node {
            node.command(Command::SetThrottle(self.throttle));
        }
    }

    /// Master: adds `n` jobs to the running run (the Add jobs button).
    pub fn add_jobs(&mut self, n: u32) {
        if let Some(node) = &self.node {
            node.command(Command::AddJobs(n));
        }
    }

    /// Stops this node's run (the Stop button): the peer sees it go.
    pub fn stop(&mut self) {
        if let Some(node) = &self.node {
            node.command(Command::Stop);
        }
    }

    /// Collects what changed: the node's end, plot samples, new log lines.
    /// Never blocks. Returns true when the node's end was collected now.
    pub fn poll(&mut self) -> bool {
        let mut ended = false;
        if self.node.as_ref().is_some_and(NodeHandle::is_finished)
            && let Some(node) = self.node.take()
        {
            ended = true;
            // Every thread of the node has ended: this join returns at
            // once, and the socket is free for the next Start.
            self.outcome = Some(node.wait());
            self.ended_at = Some(std::time::SystemTime::now());
            if let Some(view) = &self.view {
                self.history.finish(view);
            }
            self.write_auto_report();
            self.predict();
        }
        if let Some(prediction) = &mut self.prediction {
            prediction.poll();
        }
        // A finished thread joins at once when its predictor is dropped.
        self.retired.retain(|p| !p.thread_ended());
        let Some(view) = &self.view else {
            return ended;
        };
        if self.node.is_some() {
            self.history.update(view);
        }
        let (new, seen) = view.log.since(self.log_seen);
        self.log_seen = seen;
        self.log.extend(new);
        if self.log.len() > LOG_LINES {
            let excess = self.log.len() - LOG_LINES;
            self.log.drain(..excess);
        }
        ended
    }

    /// With `--report`, writes the report of the run that just ended and
    /// says so in the window and on stderr (where a script is watching).
    fn write_auto_report(&mut self) {
        let (Some(path), Some(r)) = (
            &self.auto_report,
            self.outcome.as_ref().and_then(Outcome::report),
        ) else {
            return;
        };
        // As the command line writes it: one that cannot be written goes
        // to standard output, and stderr has said so.
        let status = match crate::files::check_not_config(path, &self.config_path) {
            Err(why) => format!("not written: {why}"),
            Ok(()) => match crate::run::write_report(r, path) {
                crate::run::Written::Done(line) => {
                    crate::say!("{}: {line}", self.role);
                    line
                }
                other => other.text().to_owned(),
            },
        };
        self.report_status = Some(status);
    }

    /// Starts the simulator on the run just finished: the same config at
    /// the throttles the report ends with, the worker's rate measured now.
    fn predict(&mut self) {
        let (
            Some(Outcome::Finished {
                report: Some(report),
                ..
            }),
            Some(config),
        ) = (&self.outcome, &self.run_config)
        else {
            return;
        };
        let mut config = config.clone();
        config.master.throttle = report.throttle.master;
        config.slave.throttle = report.throttle.slave;
        let wake = self.waker.clone().unwrap_or_else(|| Arc::new(|| {}));
        self.prediction = Some(crate::run::Predictor::start(
            config,
            self.machine.clone(),
            wake,
        ));
    }

    /// The simulator's prediction of the last run: `None` before it is in.
    pub fn predicted_s(&self) -> Option<&Result<f64, String>> {
        self.prediction
            .as_ref()
            .and_then(crate::run::Predictor::answer)
    }

    /// True once this node's run is over without finishing (stopped or
    /// failed): its last figures are those of when it left.
    pub fn left_early(&self) -> bool {
        matches!(
            self.outcome,
            Some(Outcome::Stopped | Outcome::Failed { .. })
        )
    }

    /// The phase for the header: the node's, and once its run is over
    /// without reaching the end, the phase it ended in.
    pub fn phase_text(&self) -> String {
        let phase = self.phase();
        if self.outcome.is_some() && phase != Phase::Done {
            format!("ended in {}", phase.name())
        } else {
            phase.name().to_owned()
        }
    }

    /// The run's phase as this node sees it.
    pub fn phase(&self) -> Phase {
        self.view
            .as_ref()
            .map_or(Phase::Idle, |v| v.snapshot().phase)
    }

    /// One line on the connection: waiting, connected and last heard, lost.
    pub fn connection_text(&self) -> String {
        let peer = self.role.peer();
        let peer_address = self
            .addresses
            .map_or_else(String::new, |(_, p)| format!(" at {p}"));
        if let Some(Outcome::Failed { failure: why, .. }) = &self.outcome {
            return why.to_string();
        }
        let Some(view) = &self.view else {
            return "not started".to_owned();
        };
        if self.outcome.is_some() {
            return "run over".to_owned();
        }
        let s = view.snapshot();
        if !s.connected {
            let mut text = format!("waiting for the {peer}{peer_address}");
            if s.bad_tags > 0 {
                // The peer runs, with another secret: say so, rather than
                // leave the user to think it is not there.
                let (n, peer) = (s.bad_tags, s.addresses.1);
                text.push_str(&if n == 1 {
                    format!(": a datagram from {peer} failed authentication")
                } else {
                    format!(
                        ": {n} datagrams from {peer} fail authentication: the two configs' \
                         secrets differ?"
                    )
                });
            }
            return text;
        }
        if s.peer_lost {
            let reclaimed = s.jobs_reclaimed;
            return format!(
                "the {peer}{peer_address} was lost: {reclaimed} of its jobs reclaimed, computed here"
            );
        }
        let heard = s.silence().unwrap_or(Duration::ZERO);
        format!(
            "connected to the {peer}{peer_address}, last heard {} ms ago",
            heard.as_millis()
        )
    }

    /// The Start button's text and whether it can be pressed.
    pub fn start_button(&self) -> (String, bool) {
        match &self.view {
            Some(view) if self.node.is_some() => {
                if view.snapshot().connected {
                    ("Running…".to_owned(), false)
                } else {
                    let peer = self
                        .addresses
                        .map_or_else(String::new, |(_, p)| format!(" at {p}"));
                    (
                        format!("Waiting for the {}{peer}…", self.role.peer()),
                        false,
                    )
                }
            }
            _ => ("Start".to_owned(), true),
        }
    }

    /// Draws the Start button and the throttle slider; what the user did
    /// comes back as a command for the window to carry out.
    pub fn show_controls(&mut self, ui: &mut egui::Ui, with_start: bool) -> PanelCommand {
        let mut command = PanelCommand::None;
        ui.horizontal(|ui| {
            if with_start {
                let (text, enabled) = self.start_button();
                if ui.add_enabled(enabled, egui::Button::new(text)).clicked() {
                    command = PanelCommand::Start;
                }
            }
            let mut percent = self.throttle * 100.0;
            // Whole percent, as every other throttle in the window.
            let slider = egui::Slider::new(&mut percent, 0.0..=100.0)
                .fixed_decimals(0)
                .suffix(" %")
                .text(format!("{} throttle", self.role));
            if ui.add(slider).changed() {
                command = PanelCommand::Throttle(percent / 100.0);
            }
        });
        if self.is_running() {
            ui.horizontal(|ui| {
                if ui.button(format!("Stop the {}", self.role)).clicked() {
                    command = PanelCommand::Stop;
                }
                // Work added while running: the master's, before its
                // aggregation (the policy moves the new jobs like any other).
                let phase = self.phase();
                if self.role == Role::Master {
                    let open = matches!(phase, Phase::Bootstrap | Phase::Processing);
                    ui.add(
                        egui::DragValue::new(&mut self.add_jobs)
                            .range(1..=crate::config::limits::MAX_JOBS)
                            .suffix(" jobs"),
                    );
                    let button = ui
                        .add_enabled(open, egui::Button::new("Add jobs"))
                        .on_hover_text("More jobs of the same kind, queued on the master")
                        .on_disabled_hover_text("Only while the run computes");
                    if button.clicked() {
                        command = PanelCommand::AddJobs(self.add_jobs);
                    }
                }
            });
        }
        if let Some(e) = &self.start_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        command
    }

    /// This node's and its peer's figures side by side. The peer's are
    /// those of its last state message, or, with `peer_own` (the demo,
    /// where this window shows the peer too), the peer's own figures and
    /// whether its CPU was measured: the same the peer's column shows.
    pub fn show_stats(&self, ui: &mut egui::Ui, peer_own: Option<PeerOwn>) {
        let Some(view) = &self.view else {
            ui.label("Not started: press Start to begin.");
            return;
        };
        let snapshot = view.snapshot();
        if self.outcome.is_some() {
            ui.label(
                egui::RichText::new(format!(
                    "Run over: the figures as it ended ({:.3} s)",
                    self.history.last_t().unwrap_or(0.0)
                ))
                .italics(),
            );
        }
        let local = snapshot.local;
        let (peer, peer_measured, peer_left) = match peer_own {
            Some(own) => (Some(own.state), Some(own.cpu_measured), own.left_early),
            None => (snapshot.peer, None, false),
        };
        let seconds = self.history.last_t().unwrap_or(0.0);
        let received = local.jobs_received;
        let sent = snapshot.delivered_to_peer;
        let me = self.role.name();
        let other = self.role.peer().name();
        // Wide enough for every figure, so a figure that grows a digit does
        // not change the columns (each change costs a frame), within the
        // room there is: the grid never runs under its neighbour.
        let column = ((ui.available_width() - 2.0 * 16.0) / 3.0).clamp(60.0, 130.0);
        egui::Grid::new(("stats", me))
            .num_columns(3)
            .min_col_width(column)
            .striped(true)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                ui.strong("");
                ui.strong(format!("{me} (this node)"));
                ui.strong(other);
                ui.end_row();
                let peer_or = |f: &dyn Fn(&crate::protocol::State) -> String| {
                    peer.as_ref().map_or_else(|| "–".to_owned(), f)
                };
                let rows: [(&str, String, String); 7] = [
                    (
                        "Queue",
                        if self.left_early() && local.queue > 0 {
                            format!("{} when it left", local.queue)
                        } else {
                            local.queue.to_string()
                        },
                        peer_or(&|p| {
                            if peer_left && p.queue > 0 {
                                format!("{} when it left", p.queue)
                            } else {
                                p.queue.to_string()
                            }
                        }),
                    ),
                    (
                        "Jobs done",
                        local.jobs_done.to_string(),
                        peer_or(&|p| p.jobs_done.to_string()),
                    ),
                    (
                        "Throttle",
                        format!("{:.0} %", local.throttle * 100.0),
                        peer_or(&|p| format!("{:.0} %", p.throttle * 100.0)),
                    ),
                    (
                        "CPU node / machine",
                        cpu_text(&local, snapshot.cpu_measured),
                        peer_or(&|p| {
                            let measured =
                                peer_measured.unwrap_or(crate::node::peer_cpu_measured(p));
                            cpu_text(p, measured)
                        }),
                    ),
                    (
                        "Jobs per second",
                        rate_text(&local, seconds),
                        peer_or(&|p| rate_text(p, seconds)),
                    ),
                    ("Jobs sent", sent.to_string(), received.to_string()),
                    ("Jobs received", received.to_string(), sent.to_string()),
                ];
                for (name, mine, theirs) in rows {
                    let label = ui.label(name);
                    if name.starts_with("CPU") {
                        label.on_hover_text(
                            "Percent of one core: the node's own threads, then the whole \
                             machine (N busy cores: N × 100 %). Each node measures its own; \
                             the peer's figures come with its state, a state interval late.",
                        );
                    }
                    ui.label(mine);
                    ui.label(theirs);
                    ui.end_row();
                }
            });
        let rejected = snapshot.rejected;
        let mut text = format!("Datagrams rejected: {rejected}");
        if snapshot.link.is_some() {
            let dropped = snapshot.link_dropped;
            text.push_str(&format!(" · dropped by the emulated link: {dropped}"));
        }
        if rejected.unauthentic + rejected.replayed + rejected.unknown_source > 0 {
            ui.colored_label(ui.visuals().warn_fg_color, text);
        } else {
            ui.label(text);
        }
    }

    /// Progress of the whole run: jobs computed on both nodes.
    pub fn show_run_progress(&self, ui: &mut egui::Ui) {
        let Some(view) = &self.view else {
            return;
        };
        let s = view.snapshot();
        let total = s.jobs_total;
        if total == 0 {
            return;
        }
        // The master's count is the run's truth: the results it holds (a
        // stopped or lost slave's computed jobs whose results never came
        // back are not done). A slave's window has only the two states.
        let done = if s.role == Role::Master {
            s.results_held
        } else {
            s.local.jobs_done + s.peer.map_or(0, |p| p.jobs_done)
        }
        .min(total);
        let what = if s.role == Role::Master {
            "results held by the master"
        } else {
            "jobs computed"
        };
        ui.add(
            egui::ProgressBar::new(done as f32 / total as f32)
                .text(format!("run: {done} / {total} {what}")),
        );
    }

    /// Progress of this node (and, with `whole_run`, of the run).
    pub fn show_progress(&self, ui: &mut egui::Ui, whole_run: bool) {
        let Some(view) = &self.view else {
            return;
        };
        if whole_run {
            self.show_run_progress(ui);
        }
        let local = view.snapshot().local;
        let mine = local.jobs_done + local.queue + u32::from(local.busy);
        let fraction = if mine == 0 {
            0.0
        } else {
            local.jobs_done as f32 / mine as f32
        };
        let held = local.queue + u32::from(local.busy);
        let text = if self.left_early() && held > 0 {
            // The jobs it held are not its own any more: it gave them up.
            format!(
                "{}: left the run after computing {} jobs, giving up the {held} it held",
                self.role, local.jobs_done
            )
        } else {
            format!("{}: {} / {} of its jobs", self.role, local.jobs_done, mine)
        };
        ui.add(egui::ProgressBar::new(fraction).text(text));
    }

    /// The live plots: queues, CPU and cumulative jobs done, with every
    /// transfer marked. Before a run they are drawn empty, with their axes;
    /// after it they end where the run did. Their legend is a line above
    /// them, never over the data.
    ///
    /// With `peer_own` (the demo), the peer's lines are the peer's own
    /// samples, 20 a second, rather than its state messages' figures.
    pub fn show_plots(&self, ui: &mut egui::Ui, height: f32, peer_own: Option<&History>) {
        let marks = self
            .view
            .as_ref()
            .map(|v| history::transfer_marks(&v.snapshot()))
            .unwrap_or_default();
        let h = &self.history;
        let (queue_peer, cpu_peer, done_peer) = match peer_own {
            Some(p) => (&p.queue_local, &p.cpu_local, &p.done_local),
            None => (&h.queue_peer, &h.cpu_peer, &h.done_peer),
        };
        let (me, other) = (self.role, self.role.peer());
        ui.horizontal_wrapped(|ui| {
            // Named by role: in the demo the plots show both nodes, and in
            // a node's window the colour says which line is whose.
            stream::swatch(ui, stream::node_color(me), me.name());
            stream::swatch(ui, stream::node_color(other), other.name());
            stream::swatch(ui, MASTER_TO_SLAVE, "jobs moved master to slave");
            stream::swatch(ui, SLAVE_TO_MASTER, "jobs moved slave to master");
        });
        let plots: [(&str, &str, &Vec<_>, &Vec<_>); 3] = [
            ("Queue length (jobs)", "queue", &h.queue_local, queue_peer),
            ("CPU use (% of a core)", "cpu", &h.cpu_local, cpu_peer),
            ("Jobs done (cumulative)", "done", &h.done_local, done_peer),
        ];
        // Three plots side by side where they fit at 240 px each, else
        // two or one to a row: none is cut off at the panel's side.
        let room = ui.available_width();
        let per_row = ((room / 248.0).floor() as usize).clamp(1, 3);
        let width = (room / per_row as f32 - 8.0).max(120.0);
        // The run's length so far: each marker's label takes the next row
        // down when it would overlap the one before (about 8 px a digit).
        let span = h.last_t().unwrap_or(1.0).max(0.1);
        let px = span / f64::from(width - 50.0).max(50.0);
        let rows = label_rows(&marks, px);
        for row_plots in plots.chunks(per_row) {
            ui.horizontal(|ui| {
                for &(title, id, local, peer) in row_plots {
                    ui.vertical(|ui| {
                        ui.set_width(width);
                        ui.label(title);
                        Plot::new((id, me.name()))
                            .height(height)
                            .width(width)
                            .x_axis_label("seconds")
                            .include_x(0.0)
                            .include_x(span)
                            .include_y(0.0)
                            .allow_scroll(false)
                            .show(ui, |p| {
                                p.line(
                                    Line::new(me.name(), PlotPoints::Borrowed(local))
                                        .color(stream::node_color(me)),
                                );
                                p.line(
                                    Line::new(other.name(), PlotPoints::Borrowed(peer))
                                        .color(stream::node_color(other)),
                                );
                                let top = local
                                    .iter()
                                    .chain(peer.iter())
                                    .map(|q| q.y)
                                    .fold(1.0, f64::max);
                                for (m, row) in marks.iter().zip(&rows) {
                                    let (name, color) = match m.from {
                                        Role::Master => {
                                            ("transfer master to slave", MASTER_TO_SLAVE)
                                        }
                                        Role::Slave => {
                                            ("transfer slave to master", SLAVE_TO_MASTER)
                                        }
                                    };
                                    p.vline(VLine::new(name, m.at_s).color(color));
                                    let Some(row) = row else { continue };
                                    let y = top * (1.0 - 0.12 * f64::from(*row));
                                    p.text(
                                        Text::new(
                                            name,
                                            PlotPoint::new(m.at_s, y),
                                            format!("{}", m.jobs),
                                        )
                                        .color(color),
                                    );
                                }
                            });
                    });
                }
            });
        }
    }

    /// The message log, newest at the bottom, with a copy button.
    pub fn show_log(&self, ui: &mut egui::Ui, height: f32) {
        ui.horizontal(|ui| {
            ui.strong(format!("{} log", self.role));
            if ui.button("Copy log").clicked() {
                let text: String = self
                    .log
                    .iter()
                    .map(|e| format!("{:9.3} s  {}\n", e.at.as_secs_f64(), e.text))
                    .collect();
                ui.ctx().copy_text(text);
            }
        });
        let row = ui.text_style_height(&egui::TextStyle::Monospace);
        // One row per entry, never wrapped, so only the visible rows are laid out.
        egui::ScrollArea::both()
            .id_salt(("log", self.role.name()))
            .max_height(height)
            .stick_to_bottom(true)
            .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::AlwaysVisible)
            .auto_shrink([false, true])
            .show_rows(ui, row, self.log.len(), |ui, rows| {
                ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                    for e in &self.log[rows] {
                        let line = format!("{:9.3} s  {}", e.at.as_secs_f64(), e.text);
                        ui.add(egui::Label::new(egui::RichText::new(line).monospace()).extend());
                    }
                });
            });
    }

    /// The result of the run, once over: verified or not, times, jobs per
    /// node, moves each way, and saving the report.
    ///
    /// `slave_computed` (the demo): the jobs the slave computed by its own
    /// count, so the line can say how many of their results never reached
    /// the master.
    pub fn show_result(&mut self, ui: &mut egui::Ui, slave_computed: Option<u32>) {
        // Borrowed field by field: the report is read while the path and
        // status are edited, without copying the report every frame.
        let NodePanel {
            role,
            outcome,
            report_path,
            report_status,
            config_path,
            prediction,
            ..
        } = self;
        let Some(outcome) = outcome.as_ref() else {
            return;
        };
        match outcome {
            Outcome::Finished { verified, report } => {
                let (text, color) = if *verified {
                    ("Result: verified", egui::Color32::from_rgb(40, 160, 70))
                } else {
                    ("Result: NOT verified", ui.visuals().error_fg_color)
                };
                let Some(r) = report else {
                    ui.colored_label(color, egui::RichText::new(text).strong().size(18.0));
                    ui.label("The master verified every result.");
                    return;
                };
                let (text, color) = match &r.work {
                    Some(w) if w.has_failures() => {
                        ("Result: jobs failed", ui.visuals().error_fg_color)
                    }
                    _ => (text, color),
                };
                // One line and Save report in view; the rest folded, so the
                // plots stay on a 1280 x 800 screen.
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(color, egui::RichText::new(text).strong().size(18.0));
                    // Phrases kept whole: the line wraps between them.
                    for phrase in [
                        format!("in {:.3} s", r.elapsed_s.total),
                        format!(
                            "· results kept: master {}, slave {}",
                            r.jobs_done.master, r.jobs_done.slave
                        ),
                        format!(
                            "· moved: {} to the slave, {} to the master",
                            r.jobs_moved.to_slave, r.jobs_moved.to_master
                        ),
                    ] {
                        ui.add(egui::Label::new(phrase).extend());
                    }
                    let lost = slave_computed.map_or(0, |n| n.saturating_sub(r.jobs_done.slave));
                    if lost > 0 {
                        // Every job's result is held in a verified run: the
                        // master computed those again.
                        let again = if r.verified {
                            " (the master computed them again)"
                        } else {
                            ""
                        };
                        ui.add(
                            egui::Label::new(format!(
                                "· {lost} more computed by the slave and not kept{again}"
                            ))
                            .extend(),
                        );
                    }
                });
                ui.horizontal(|ui| {
                    let label = ui.label("Report file");
                    ui.add(egui::TextEdit::singleline(report_path).desired_width(220.0))
                        .labelled_by(label.id);
                    if ui.button("Save report").clicked() {
                        let path = std::path::PathBuf::from(report_path.trim());
                        *report_status = Some(crate::run::save(&path, config_path, |p| r.write(p)));
                    }
                    if let Some(s) = report_status {
                        ui.label(s.as_str());
                    }
                });
                egui::CollapsingHeader::new("Run details")
                    .id_salt(("result-details", role.name()))
                    .show(ui, |ui| {
                egui::Grid::new(("result", role.name())).num_columns(2).show(ui, |ui| {
                    let e = &r.elapsed_s;
                    let checked = match &r.work {
                        None => ("Expected value", format!("{:.9}", r.expected_value)),
                        Some(w) => (
                            "Work",
                            format!(
                                "{} · {} attempts · failed for good: {}{}",
                                w.describe,
                                w.attempts,
                                if w.jobs_failed.is_empty() {
                                    "none".to_owned()
                                } else {
                                    crate::workload::format_id_ranges(&w.jobs_failed)
                                },
                                match (w.digits_total, w.straight_total, w.output_bytes) {
                                    (Some(t), Some(s), _) => {
                                        format!(" · digit sum {t} (a straight pass: {s})")
                                    }
                                    (_, _, Some(b)) => format!(" · {b} bytes written"),
                                    _ => w
                                        .output_error
                                        .as_ref()
                                        .map_or_else(String::new, |e| format!(" · {e}")),
                                },
                            ),
                        ),
                    };
                    let rows = [
                        checked,
                        (
                            "Time",
                            format!(
                                "{:.3} s (bootstrap {:.3} s, processing {:.3} s, aggregation {:.3} s)",
                                e.total, e.bootstrap, e.processing, e.aggregation
                            ),
                        ),
                        (
                            "Jobs computed",
                            format!("master {}, slave {}", r.jobs_done.master, r.jobs_done.slave),
                        ),
                        (
                            "Jobs moved",
                            format!(
                                "{} to the slave, {} to the master, in {} transfers",
                                r.jobs_moved.to_slave,
                                r.jobs_moved.to_master,
                                r.transfers.len()
                            ),
                        ),
                        (
                            "Slave lost",
                            r.peer_lost_at_s.map_or_else(
                                || "no".to_owned(),
                                |at| {
                                    format!(
                                        "at {at:.3} s; the master reclaimed {} of its jobs",
                                        r.jobs_reclaimed
                                    )
                                },
                            ),
                        ),
                        (
                            "Simulator's prediction",
                            match prediction.as_ref().map(crate::run::Predictor::answer) {
                                None => "none (the run did not start here)".to_owned(),
                                Some(None) => "simulating…".to_owned(),
                                Some(Some(Ok(p))) => format!(
                                    "{p:.3} s at the throttles the run ended with: the run took {:.2} × that",
                                    e.total / p.max(1e-9)
                                ),
                                Some(Some(Err(why))) => format!("none: {why}"),
                            },
                        ),
                        (
                            "Datagrams rejected",
                            r.network.rejected_by_reason.to_string(),
                        ),
                        (
                            "Response times",
                            r.response_s.map_or_else(
                                || "none: every job was there from the start".to_owned(),
                                |t| {
                                    format!(
                                        "of the {} jobs that came during the run: mean {:.4} s, \
                                         median {:.4} s, 99th percentile {:.4} s",
                                        t.jobs, t.mean, t.p50, t.p99
                                    )
                                },
                            ),
                        ),
                    ];
                    for (k, v) in rows {
                        ui.label(k);
                        ui.label(v);
                        ui.end_row();
                    }
                });
                    });
            }
            Outcome::Failed { failure: why, .. } => {
                ui.colored_label(ui.visuals().error_fg_color, format!("Run failed: {why}"));
            }
            Outcome::Stopped => {
                ui.label("Run stopped.");
            }
        }
    }
}

/// Rows a transfer marker's label may take, from the top down.
const LABEL_ROWS: usize = 6;

/// The row (0 at the top) of each transfer marker's label, so that no two
/// labels overlap: a label takes the highest row where it starts after the
/// last label there ends (`px` seconds a pixel, 8 px a character). A label
/// with no such row among [`LABEL_ROWS`] is not drawn (its marker is).
pub fn label_rows(marks: &[history::Mark], px: f64) -> Vec<Option<u8>> {
    let mut ends = [f64::NEG_INFINITY; LABEL_ROWS]; // where each row's last label ends
    marks
        .iter()
        .map(|m| {
            let width = (m.jobs.to_string().len() as f64 * 8.0 + 6.0) * px;
            let start = m.at_s - width / 2.0;
            let row = ends.iter().position(|&end| end <= start)?;
            ends[row] = start + width;
            Some(row as u8)
        })
        .collect()
}

/// A node's CPU figures, or "measuring…" before its first measurement (a
/// 0 % then would say the node is idle while it computes).
fn cpu_text(state: &crate::protocol::State, measured: bool) -> String {
    if measured {
        format!("{:.0} % / {:.0} %", state.cpu_process, state.cpu_system)
    } else {
        "measuring…".to_owned()
    }
}

/// A node's jobs per second: its smoothed rate, or before the node's first
/// rate sample (one state interval into the run) its jobs so far over the
/// `seconds` the run has gone.
fn rate_text(state: &crate::protocol::State, seconds: f64) -> String {
    let rate = if state.rate == 0.0 && state.jobs_done > 0 && seconds > 0.0 {
        f64::from(state.jobs_done) / seconds
    } else {
        f64::from(state.rate)
    };
    format!("{rate:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(at_s: f64, jobs: u32) -> history::Mark {
        history::Mark {
            at_s,
            from: Role::Master,
            jobs,
        }
    }

    #[test]
    fn transfer_labels_never_overlap() {
        // 1 ms a pixel: a five-digit label is 46 px, 46 ms wide; markers
        // 5 ms apart.
        let px = 0.001;
        let marks: Vec<_> = (0..11)
            .map(|i| mark(0.1 + f64::from(i) * 0.005, 10_000))
            .collect();
        let rows = label_rows(&marks, px);
        // Six rows, then no room: four go unlabelled, until the top row is
        // free again.
        let none = None;
        assert_eq!(
            rows,
            [
                Some(0),
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                none,
                none,
                none,
                none,
                Some(0)
            ]
        );
        let mut placed: Vec<(u8, f64, f64)> = Vec::new();
        for (m, row) in marks.iter().zip(&rows) {
            let Some(row) = row else { continue };
            let width = (m.jobs.to_string().len() as f64 * 8.0 + 6.0) * px;
            let (a, b) = (m.at_s - width / 2.0, m.at_s + width / 2.0);
            for &(r, x, y) in &placed {
                assert!(r != *row || b <= x || y <= a, "overlap in row {row}");
            }
            placed.push((*row, a, b));
        }
        // Far apart, every label sits in the top row.
        let apart: Vec<_> = (0..5).map(|i| mark(f64::from(i), 7)).collect();
        assert_eq!(label_rows(&apart, px), vec![Some(0); 5]);
    }
}
