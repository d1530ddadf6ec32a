//! The window's top level: a node window (one panel) or the demo window
//! (master and slave side by side, one Start for the run), the header, the
//! tabs (overview, task stream, jobs, log), the config editor, and the
//! eframe glue. `poll` collects what changed without blocking; `show`
//! draws; both are plain methods so tests drive them without a display.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;

use super::Outputs;
use super::compare::CompareView;
use super::editor::{ConfigEditor, EditorCommand};
use super::jobs::JobsTable;
use super::panel::{NodePanel, PanelCommand};
use super::stream::TaskStream;
use crate::config::{ConfigFile, Role};
use crate::node::Outcome;

/// The window's views of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Statistics, progress, the result and the plots.
    Overview,
    /// A lane per worker, a bar per job, the batches between the nodes.
    TaskStream,
    /// Every job: where it is, who computed it, when.
    Jobs,
    /// The nodes' event logs.
    Log,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Overview, Tab::TaskStream, Tab::Jobs, Tab::Log];

    fn name(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::TaskStream => "Task stream",
            Tab::Jobs => "Jobs table",
            Tab::Log => "Log",
        }
    }
}

/// Which window this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One node's window.
    Node(Role),
    /// Both nodes in one window.
    Demo,
}

/// Repaint interval while a run is going, when nothing else asked for one.
const RUNNING_REPAINT: Duration = Duration::from_millis(500);
/// The soonest a node's event repaints the window: events come up to 50
/// times a second, and under software rendering a frame of this window
/// costs about 20 - 25 ms of a core, CPU the workers it watches need. So a
/// run is drawn twice a second whatever happens: 5 - 7 % of a core under
/// Xvfb's llvmpipe (`loadbal bench --only window`), against 10 % at four
/// frames a second and 95 % when every event drew a frame.
pub const EVENT_REPAINT: Duration = RUNNING_REPAINT;
/// The demo shows its nodes side by side at this width and more.
const DEMO_COLUMNS_MIN_WIDTH: f32 = 800.0;
/// Repaint interval when idle (the connection's "last heard" ticks).
const IDLE_REPAINT: Duration = Duration::from_secs(1);

/// The loadbal window.
pub struct LoadbalApp {
    mode: Mode,
    panels: Vec<NodePanel>,
    editor: ConfigEditor,
    show_config: bool,
    compare: CompareView,
    show_compare: bool,
    notice: Option<String>,
    /// The style's animation time, kept here while a run is going and
    /// animations are off: a scroll bar that fades in or a panel that
    /// slides draws a frame every few milliseconds until it is done.
    paused_animation: Option<f32>,
    tab: Tab,
    stream: TaskStream,
    jobs: JobsTable,
    trace_path: String,
    trace_status: Option<String>,
    /// `--trace PATH`: every finished run's trace is written there.
    auto_trace: Option<PathBuf>,
    /// `--report -`: standard output carries the reports, so a trace that
    /// cannot be written goes to a file of its own.
    auto_report_to_stdout: bool,
    /// A node was running at the last poll.
    was_running: bool,
    /// When the jobs table was last rebuilt.
    jobs_updated: Option<std::time::Instant>,
    /// The plan's count of jobs in all, for the workload it was made for
    /// (drawing the arrivals' schedule every frame would cost).
    plan_total: Option<(crate::config::WorkloadConfig, u32)>,
}

impl LoadbalApp {
    /// A window for `mode`, editing the config at `path` (`file` as read).
    pub fn new(mode: Mode, path: PathBuf, file: ConfigFile) -> Self {
        Self::with_outputs(mode, path, file, Outputs::default())
    }

    /// As [`new`](Self::new); every finished run's master report and trace
    /// are written where `outputs` says (`--report`, `--trace`).
    pub fn with_outputs(mode: Mode, path: PathBuf, file: ConfigFile, outputs: Outputs) -> Self {
        let roles: &[Role] = match mode {
            Mode::Node(Role::Master) => &[Role::Master],
            Mode::Node(Role::Slave) => &[Role::Slave],
            Mode::Demo => &[Role::Master, Role::Slave],
        };
        let mut panels: Vec<NodePanel> = roles
            .iter()
            .map(|&role| NodePanel::new(role, file.node(role).throttle))
            .collect();
        let auto_report_to_stdout = outputs.report.as_deref() == Some(std::path::Path::new("-"));
        if let (Some(report), Some(master)) = (
            outputs.report,
            panels.iter_mut().find(|p| p.role() == Role::Master),
        ) {
            master.write_reports_to(report);
        }
        let mut compare = CompareView::default();
        compare.set_machine(outputs.machine.clone());
        if let Some(path) = &outputs.machine {
            for p in &mut panels {
                p.predict_on(path.clone());
            }
        }
        let trace_path = outputs.trace.as_ref().map_or_else(
            || "loadbal-trace.json".to_owned(),
            |p| p.display().to_string(),
        );
        LoadbalApp {
            mode,
            panels,
            editor: ConfigEditor::new(path, file),
            show_config: false,
            compare,
            show_compare: false,
            notice: None,
            paused_animation: None,
            tab: Tab::Overview,
            stream: TaskStream::default(),
            jobs: JobsTable::default(),
            trace_path,
            trace_status: None,
            auto_trace: outputs.trace,
            auto_report_to_stdout,
            was_running: false,
            jobs_updated: None,
            plan_total: None,
        }
    }

    /// The tab shown.
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// Shows `tab` (the tab bar, or a test).
    pub fn set_tab(&mut self, tab: Tab) {
        self.tab = tab;
    }

    /// The task stream of the current or last run.
    pub fn stream(&self) -> &TaskStream {
        &self.stream
    }

    /// The jobs table, brought up to date.
    pub fn jobs(&mut self) -> &mut JobsTable {
        self.update_jobs();
        &mut self.jobs
    }

    fn update_jobs(&mut self) {
        self.jobs_updated = Some(std::time::Instant::now());
        let snapshots: Vec<_> = self
            .panels
            .iter()
            .filter_map(|p| p.view().map(crate::node::NodeView::snapshot))
            .collect();
        let refs: Vec<&crate::node::Snapshot> = snapshots.iter().map(AsRef::as_ref).collect();
        self.jobs.update(&refs, &self.stream);
    }

    /// The trace of the current or last run (both nodes' in the demo), as
    /// Trace Event Format JSON; `None` before the first run.
    pub fn trace_json(&self) -> Option<String> {
        let views: Vec<&crate::node::NodeView> =
            self.panels.iter().filter_map(NodePanel::view).collect();
        (!views.is_empty()).then(|| crate::trace::of_views(&views))
    }

    /// Writes the trace to `path` and says what happened, for the window.
    fn save_trace(&self, path: &std::path::Path) -> String {
        let Some(json) = self.trace_json() else {
            return "no run to trace yet".to_owned();
        };
        let status = crate::run::save(path, self.editor.path(), |p| crate::trace::write(p, &json));
        match status.strip_prefix("saved ") {
            Some(_) => format!("{status} (open it at https://ui.perfetto.dev)"),
            None => status,
        }
    }

    /// The panel of `role`, if this window shows it.
    pub fn panel(&self, role: Role) -> Option<&NodePanel> {
        self.panels.iter().find(|p| p.role() == role)
    }

    /// The config editor.
    pub fn editor(&self) -> &ConfigEditor {
        &self.editor
    }

    /// True while any node of this window runs.
    pub fn is_running(&self) -> bool {
        self.panels.iter().any(NodePanel::is_running)
    }

    /// The Compare view.
    pub fn compare(&mut self) -> &mut CompareView {
        &mut self.compare
    }

    /// Policies the Compare view has figures for.
    pub fn compare_results(&self) -> usize {
        self.compare.results().len()
    }

    /// True while the Compare view's simulations run.
    pub fn compare_busy(&self) -> bool {
        self.compare.is_busy()
    }

    /// Collects what changed in the nodes and the simulations. Never blocks.
    pub fn poll(&mut self) {
        let mut ended = false;
        for p in &mut self.panels {
            ended |= p.poll();
        }
        let views: Vec<&crate::node::NodeView> =
            self.panels.iter().filter_map(NodePanel::view).collect();
        if !views.is_empty() {
            self.stream.update(&views);
        }
        let running = self.is_running();
        // A node's end collected now counts even when no frame saw the run
        // going (one that ended between two frames).
        if (self.was_running || ended) && !running {
            self.run_ended();
        }
        self.was_running = running;
        self.compare.poll(self.editor.config());
    }

    /// Every node of the run has ended: with `--trace`, the trace is
    /// written (and said on stderr, where a script is watching).
    fn run_ended(&mut self) {
        let Some(path) = self.auto_trace.clone() else {
            return;
        };
        let views: Vec<&crate::node::NodeView> =
            self.panels.iter().filter_map(NodePanel::view).collect();
        if let Err(why) = crate::files::check_not_config(&path, self.editor.path()) {
            let status = format!("trace not written: {why}");
            crate::say!("loadbal: {status}");
            self.trace_status = Some(status);
            return;
        }
        let stdout_taken = self.auto_report_to_stdout;
        // As the command line writes it: one that cannot be written goes
        // elsewhere, and stderr has said where.
        let written = crate::run::write_trace(&path, &views, stdout_taken);
        if let crate::run::Written::Done(line) = &written {
            crate::say!("{line}");
        }
        self.trace_status = Some(written.text().to_owned());
    }

    fn start(&mut self, ctx: &egui::Context) {
        let Some(config) = self.editor.config().cloned() else {
            self.notice = Some("The configuration has errors: fix them to start.".to_owned());
            self.show_config = true;
            return;
        };
        self.notice = None;
        self.stream.clear();
        self.jobs = JobsTable::default();
        self.trace_status = None;
        let ctx = ctx.clone();
        let waker: Arc<dyn Fn() + Send + Sync> =
            Arc::new(move || ctx.request_repaint_after(EVENT_REPAINT));
        // The demo starts the slave first, so the master finds it at once.
        let path = self.editor.path().to_owned();
        for p in self.panels.iter_mut().rev() {
            p.start(&config, &path, waker.clone());
        }
    }

    /// Turns the style's animations off while a run is going and back on
    /// after it.
    fn pause_animations_while_running(&mut self, ctx: &egui::Context) {
        match (self.is_running(), self.paused_animation) {
            (true, None) => {
                self.paused_animation = Some(ctx.global_style().animation_time);
                ctx.all_styles_mut(|s| s.animation_time = 0.0);
            }
            (false, Some(time)) => {
                self.paused_animation = None;
                ctx.all_styles_mut(|s| s.animation_time = time);
            }
            _ => {}
        }
    }

    /// One line on the run: not started, running for how long, or over
    /// (when it ended, how long it took, how long ago).
    pub fn run_status(&self) -> String {
        let master = &self.panels[0];
        let Some(view) = master.view() else {
            return "not started".to_owned();
        };
        let s = view.snapshot();
        if self.is_running() {
            return if s.phase_started[crate::protocol::Phase::Bootstrap as usize].is_some() {
                format!(
                    "running for {:.1} s · phase: {}",
                    s.run_seconds(),
                    s.phase.name()
                )
            } else {
                format!("starting · phase: {}", s.phase.name())
            };
        }
        let how = match master.outcome() {
            Some(Outcome::Finished { verified: true, .. }) => "verified",
            Some(Outcome::Finished {
                verified: false, ..
            }) => "NOT verified",
            Some(Outcome::Failed { .. }) => "failed",
            Some(Outcome::Stopped) | None => "stopped",
        };
        let took = master.history().last_t().unwrap_or(0.0);
        match master.ended_at() {
            Some(at) => {
                let ago = at.elapsed().map_or(0, |d| d.as_secs());
                format!(
                    "run over ({how}): ended at {} UTC after {took:.3} s, {ago} s ago",
                    utc_time(at)
                )
            }
            None => format!("run over ({how}) after {took:.3} s"),
        }
    }

    /// Draws the window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.pause_animations_while_running(ui.ctx());
        let running = self.is_running();
        let mut start = false;
        egui::Panel::top("header").show(ui, |ui| {
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                ui.heading(match self.mode {
                    Mode::Node(role) => format!("loadbal {role}"),
                    Mode::Demo => "loadbal demo".to_owned(),
                });
                if self.mode == Mode::Demo {
                    let (text, enabled) = self.panels[0].start_button();
                    if ui.add_enabled(enabled, egui::Button::new(text)).clicked() {
                        start = true;
                    }
                }
                ui.label(self.run_status());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.toggle_value(&mut self.show_config, "Configuration");
                    ui.toggle_value(&mut self.show_compare, "Compare policies");
                    // A notice takes the room left in this row (cut short,
                    // whole on hover): it never pushes the controls down.
                    if let Some(n) = &self.notice {
                        let text = egui::RichText::new(n).color(ui.visuals().warn_fg_color);
                        ui.add(egui::Label::new(text).truncate()).on_hover_text(n);
                    }
                });
            });
            if self.mode == Mode::Demo {
                self.panels[0].show_run_progress(ui);
            }
            ui.horizontal(|ui| {
                for tab in Tab::ALL {
                    ui.selectable_value(&mut self.tab, tab, tab.name());
                }
            });
            ui.add_space(2.0);
        });
        if self.show_config {
            let sliders: Vec<(Role, f64)> = self
                .panels
                .iter()
                .map(|p| (p.role(), p.throttle()))
                .collect();
            egui::Panel::right("config")
                .resizable(true)
                .default_size(440.0)
                .min_size(300.0)
                .show(ui, |ui| {
                    ui.heading("Configuration");
                    ui.label(format!("File: {}", self.editor.path().display()));
                    if running {
                        ui.label(
                            "A run is going: only the addresses can be edited, and they apply \
                             when a node is next started.",
                        );
                    }
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        if self.editor.show(ui, running, &sliders) == EditorCommand::Saved {
                            self.notice = Some(
                                "Configuration saved; address changes take effect when a node \
                                 is next started."
                                    .to_owned(),
                            );
                        }
                    });
                });
        }
        if self.show_compare {
            // A panel under the views, hiding none of the header's
            // controls; its height is the user's to drag.
            let ctx = ui.ctx().clone();
            let config = self.editor.config();
            let height = ui.available_height();
            egui::Panel::bottom("compare")
                .resizable(true)
                .default_size(height * 0.5)
                .min_size(160.0)
                .max_size(height * 0.8)
                .show(ui, |ui| {
                    ui.add_space(4.0);
                    ui.heading("Compare policies (simulated)");
                    // Not shrunk to its content: the panel keeps the
                    // height the chart will need when the results come.
                    egui::ScrollArea::vertical()
                        .auto_shrink([false, false])
                        .show(ui, |ui| {
                            self.compare.show(ui, config, move || ctx.request_repaint());
                        });
                });
        }
        // The frame is cleared to the panel colour (`clear_color`), so the
        // largest panel paints no background of its own: under software
        // rendering every pixel filled twice is a cost per frame.
        let central = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
        egui::CentralPanel::default()
            .frame(central)
            .show(ui, |ui| match self.tab {
                Tab::Overview => {
                    egui::ScrollArea::vertical().show(ui, |ui| match self.mode {
                        Mode::Node(_) => start |= self.show_node(ui),
                        Mode::Demo => self.show_demo(ui),
                    });
                }
                Tab::TaskStream => self.show_stream(ui),
                Tab::Jobs => {
                    self.update_jobs();
                    self.jobs.show(ui);
                }
                Tab::Log => self.show_logs(ui),
            });
        if start {
            let ctx = ui.ctx().clone();
            self.start(&ctx);
        }
    }

    /// Before the first Start: what the run will be.
    fn show_plan(&mut self, ui: &mut egui::Ui) {
        if self.panels.iter().any(|p| p.view().is_some()) {
            return;
        }
        let Some(c) = self.editor.config() else {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "The configuration has errors: open Configuration to fix them.",
            );
            return;
        };
        let w = c.workload.clone();
        let total = match &self.plan_total {
            Some((made_for, total)) if *made_for == w => *total,
            _ => {
                let total = w.schedule().total();
                self.plan_total = Some((w.clone(), total));
                total
            }
        };
        let bytes = u64::from(w.jobs) * u64::from(w.elements_per_job) * 8;
        egui::Grid::new("plan").num_columns(2).show(ui, |ui| {
            let rows = [
                (
                    "Workload",
                    w.kind_text().map_or_else(|| format!(
                        "{} jobs of {} doubles ({}), each element {} + {} × {} times",
                        w.jobs,
                        w.elements_per_job,
                        if bytes < 1 << 20 {
                            format!("{:.0} KiB", bytes as f64 / 1024.0)
                        } else {
                            format!("{:.0} MiB", bytes as f64 / f64::from(1 << 20))
                        },
                        w.initial,
                        w.addend,
                        w.iterations
                    ), |text| format!("{}: {text}", w.kind.name())),
                ),
                (
                    "Arrivals",
                    match &w.arrivals {
                        None => "none: every job is there from the start".to_owned(),
                        Some(a) => format!(
                            "{} more jobs arrive during the run: {} a second at each node for {} s (seed {})",
                            total - w.jobs,
                            a.rate_per_s,
                            a.duration_s,
                            a.seed
                        ),
                    },
                ),
                (
                    "Policy",
                    format!(
                        "{}, threshold {} {}, state every {} ms",
                        c.policy.transfer,
                        c.policy.threshold(),
                        crate::policy::threshold_unit(&c.policy.transfer),
                        c.policy.state_interval_ms
                    ),
                ),
                (
                    "Master",
                    format!(
                        "{} · {} worker(s) · throttle {:.0} %",
                        c.master.address,
                        c.master.workers,
                        self.throttle_of(Role::Master).unwrap_or(c.master.throttle) * 100.0
                    ),
                ),
                (
                    "Slave",
                    format!(
                        "{} · {} worker(s) · throttle {:.0} %",
                        c.slave.address,
                        c.slave.workers,
                        self.throttle_of(Role::Slave).unwrap_or(c.slave.throttle) * 100.0
                    ),
                ),
            ];
            for (k, v) in rows {
                ui.strong(k);
                ui.label(v);
                ui.end_row();
            }
        });
        ui.separator();
    }

    /// The throttle on this window's slider for `role`, if it shows it.
    fn throttle_of(&self, role: Role) -> Option<f64> {
        self.panel(role).map(NodePanel::throttle)
    }

    /// One node: header, controls, statistics, progress, result, plots.
    fn show_node(&mut self, ui: &mut egui::Ui) -> bool {
        self.show_plan(ui);
        let p = &mut self.panels[0];
        node_header(ui, p, self.editor.config());
        let command = p.show_controls(ui, true);
        ui.separator();
        p.show_stats(ui, None);
        p.show_progress(ui, true);
        ui.separator();
        p.show_result(ui, None);
        p.show_plots(ui, 200.0, None);
        self.carry_out(0, command)
    }

    /// Carries out what panel `index` asked for; true for Start.
    fn carry_out(&mut self, index: usize, command: PanelCommand) -> bool {
        match command {
            PanelCommand::None => false,
            PanelCommand::Start => true,
            PanelCommand::Stop => {
                self.panels[index].stop();
                false
            }
            PanelCommand::Throttle(t) => {
                // Not a config edit: Configuration offers to keep it.
                self.panels[index].set_throttle(t);
                false
            }
            PanelCommand::AddJobs(n) => {
                self.panels[index].add_jobs(n);
                false
            }
        }
    }

    /// Both nodes side by side, then the master's result and plots.
    fn show_demo(&mut self, ui: &mut egui::Ui) {
        self.show_plan(ui);
        let mut commands = Vec::new();
        let config = self.editor.config();
        // Each node's own figures, shown in its column and as the other's
        // peer: one set of numbers per node in the demo.
        let own: Vec<Option<super::panel::PeerOwn>> = self
            .panels
            .iter()
            .map(|p| {
                p.view().map(|v| {
                    let s = v.snapshot();
                    super::panel::PeerOwn {
                        state: s.local,
                        cpu_measured: s.cpu_measured,
                        left_early: p.left_early(),
                    }
                })
            })
            .collect();
        let peer_of = |i: usize| own.get(1 - i).copied().flatten();
        // Side by side where both fit (a node's figures need about 400 px),
        // else one above the other.
        if ui.available_width() >= DEMO_COLUMNS_MIN_WIDTH {
            ui.columns(2, |columns| {
                for (i, (p, ui)) in self.panels.iter_mut().zip(columns.iter_mut()).enumerate() {
                    node_header(ui, p, config);
                    commands.push(p.show_controls(ui, false));
                    p.show_stats(ui, peer_of(i));
                    p.show_progress(ui, false);
                }
            });
        } else {
            for (i, p) in self.panels.iter_mut().enumerate() {
                if i > 0 {
                    ui.separator();
                }
                node_header(ui, p, config);
                commands.push(p.show_controls(ui, false));
                p.show_stats(ui, peer_of(i));
                p.show_progress(ui, false);
            }
        }
        for (index, command) in commands.into_iter().enumerate() {
            // The demo's Start is in the header, not in the columns.
            let _ = self.carry_out(index, command);
        }
        ui.separator();
        let (master, slave) = self.panels.split_at_mut(1);
        let master = &mut master[0];
        let slave_computed = slave
            .first()
            .and_then(NodePanel::view)
            .map(|v| v.snapshot().local.jobs_done);
        master.show_result(ui, slave_computed);
        // The slave's lines from its own samples, as its own column shows.
        let slave = slave
            .first()
            .filter(|s| s.view().is_some())
            .map(|s| s.history());
        master.show_plots(ui, 220.0, slave);
    }

    /// The task stream, its summary and Save trace.
    fn show_stream(&mut self, ui: &mut egui::Ui) {
        if self.panels.iter().all(|p| p.view().is_none()) {
            ui.label(
                "Each worker gets a lane here and each job a bar, from the moment its worker \
                 took it to the moment it finished, coloured by where the job came from; \
                 arrows are the batches between the nodes. Press Start.",
            );
        } else {
            ui.label(self.stream.summary());
        }
        ui.horizontal(|ui| {
            let label = ui.label("Trace file");
            ui.add(egui::TextEdit::singleline(&mut self.trace_path).desired_width(260.0))
                .labelled_by(label.id);
            let can = self.panels.iter().any(|p| p.view().is_some());
            if ui
                .add_enabled(can, egui::Button::new("Save trace"))
                .on_hover_text("Trace Event Format JSON: open it at https://ui.perfetto.dev")
                .clicked()
            {
                let path = PathBuf::from(self.trace_path.trim());
                self.trace_status = Some(self.save_trace(&path));
            }
            if let Some(s) = &self.trace_status {
                ui.label(s.as_str());
            }
        });
        let height = (ui.available_height() * 0.62).max(160.0);
        self.stream.show(ui, height);
    }

    /// Each node's log, side by side in the demo.
    fn show_logs(&self, ui: &mut egui::Ui) {
        let height = (ui.available_height() - 40.0).max(120.0);
        match self.mode {
            Mode::Node(_) => self.panels[0].show_log(ui, height),
            Mode::Demo => {
                ui.columns(2, |columns| {
                    for (p, ui) in self.panels.iter().zip(columns.iter_mut()) {
                        p.show_log(ui, height);
                    }
                });
            }
        }
    }
}

/// `t` as HH:MM:SS, UTC.
fn utc_time(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

fn node_header(ui: &mut egui::Ui, p: &NodePanel, config: Option<&crate::config::Config>) {
    ui.horizontal_wrapped(|ui| {
        ui.strong(p.role().name());
        // The running node's address, or the one it will bind at Start.
        let own = p
            .own_address()
            .or_else(|| config.map(|c| c.node(p.role()).address));
        if let Some(own) = own {
            ui.label(format!("on {own} ·"));
        }
        ui.label(p.connection_text());
        if let Some(link) = config.and_then(|c| c.node(p.role()).link) {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("· sends through an emulated link: {}", link.describe()),
            );
        }
        // Short phrases kept whole: the line wraps between them, never
        // inside one ("phase:" on one line, "processing" on the next).
        ui.add(egui::Label::new(format!("· phase: {}", p.phase_text())).extend());
        if config.is_some_and(|c| c.key.is_demo()) {
            let text = egui::RichText::new("· link not secret").color(ui.visuals().warn_fg_color);
            ui.add(egui::Label::new(text).extend())
                .on_hover_text(crate::auth::DEMO_KEY_NOTICE);
        }
    });
}

impl eframe::App for LoadbalApp {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll();
        // Nodes wake the window on every event; this is the floor.
        ctx.request_repaint_after(if self.is_running() {
            RUNNING_REPAINT
        } else {
            IDLE_REPAINT
        });
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
