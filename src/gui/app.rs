//! The window's top level: a node window (one panel) or the demo window
//! (master and slave side by side, one Start for the run), the header, the
//! config editor, and the eframe glue. `poll` collects what changed without
//! blocking; `show` draws; both are plain methods so tests drive them
//! without a display.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;

use super::compare::CompareView;
use super::editor::{ConfigEditor, EditorCommand};
use super::panel::{NodePanel, PanelCommand};
use crate::config::{ConfigFile, Role};

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
}

impl LoadbalApp {
    /// A window for `mode`, editing the config at `path` (`file` as read).
    pub fn new(mode: Mode, path: PathBuf, file: ConfigFile) -> Self {
        Self::with_report(mode, path, file, None)
    }

    /// As [`new`](Self::new); with `report`, the master's report of every
    /// finished run is written there (`--report`).
    pub fn with_report(
        mode: Mode,
        path: PathBuf,
        file: ConfigFile,
        report: Option<PathBuf>,
    ) -> Self {
        let roles: &[Role] = match mode {
            Mode::Node(Role::Master) => &[Role::Master],
            Mode::Node(Role::Slave) => &[Role::Slave],
            Mode::Demo => &[Role::Master, Role::Slave],
        };
        let mut panels: Vec<NodePanel> = roles
            .iter()
            .map(|&role| NodePanel::new(role, file.node(role).throttle))
            .collect();
        if let (Some(report), Some(master)) =
            (report, panels.iter_mut().find(|p| p.role() == Role::Master))
        {
            master.write_reports_to(report);
        }
        LoadbalApp {
            mode,
            panels,
            editor: ConfigEditor::new(path, file),
            show_config: false,
            compare: CompareView::default(),
            show_compare: false,
            notice: None,
            paused_animation: None,
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

    /// True while the Compare view's simulations run.
    pub fn compare_busy(&self) -> bool {
        self.compare.is_busy()
    }

    /// Collects what changed in the nodes and the simulations. Never blocks.
    pub fn poll(&mut self) {
        for p in &mut self.panels {
            p.poll();
        }
        self.compare.poll(self.editor.config());
    }

    fn start(&mut self, ctx: &egui::Context) {
        let Some(config) = self.editor.config().cloned() else {
            self.notice = Some("The configuration has errors: fix them to start.".to_owned());
            self.show_config = true;
            return;
        };
        self.notice = None;
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
                let phase = self.panels[0].phase();
                ui.label(format!("phase: {}", phase.name()));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.toggle_value(&mut self.show_config, "Configuration");
                    ui.toggle_value(&mut self.show_compare, "Compare policies");
                });
            });
            if let Some(n) = &self.notice {
                ui.colored_label(ui.visuals().warn_fg_color, n);
            }
            if self.mode == Mode::Demo {
                self.panels[0].show_run_progress(ui);
            }
            ui.add_space(4.0);
        });
        if self.show_config {
            egui::Panel::right("config")
                .resizable(true)
                .default_size(420.0)
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
                        if self.editor.show(ui, running) == EditorCommand::Saved {
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
            let ctx = ui.ctx().clone();
            let config = self.editor.config();
            egui::Window::new("Compare policies (simulated)")
                .open(&mut self.show_compare)
                .default_width(900.0)
                .resizable(true)
                .show(ui.ctx(), |ui| {
                    self.compare.show(ui, config, move || ctx.request_repaint());
                });
        }
        // The frame is cleared to the panel colour (`clear_color`), so the
        // largest panel paints no background of its own: under software
        // rendering every pixel filled twice is a cost per frame.
        let central = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
        egui::CentralPanel::default().frame(central).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| match self.mode {
                Mode::Node(_) => start |= self.show_node(ui),
                Mode::Demo => self.show_demo(ui),
            });
        });
        if start {
            let ctx = ui.ctx().clone();
            self.start(&ctx);
        }
    }

    /// One node: header, controls, statistics, progress, plots, log, result.
    fn show_node(&mut self, ui: &mut egui::Ui) -> bool {
        let p = &mut self.panels[0];
        node_header(ui, p, self.editor.config());
        let command = p.show_controls(ui, true);
        ui.separator();
        p.show_stats(ui);
        p.show_progress(ui, true);
        ui.separator();
        p.show_result(ui);
        p.show_plots(ui, 170.0);
        ui.separator();
        p.show_log(ui, 200.0);
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
                let panel = &mut self.panels[index];
                panel.set_throttle(t);
                // Save keeps the throttle the user set.
                self.editor.set_throttle(panel.role(), panel.throttle());
                false
            }
        }
    }

    /// Both nodes side by side, then the master's plots and the result.
    fn show_demo(&mut self, ui: &mut egui::Ui) {
        let mut commands = Vec::new();
        ui.columns(2, |columns| {
            let config = self.editor.config();
            for (p, ui) in self.panels.iter_mut().zip(columns.iter_mut()) {
                node_header(ui, p, config);
                commands.push(p.show_controls(ui, false));
                p.show_stats(ui);
                p.show_progress(ui, false);
                p.show_log(ui, 140.0);
            }
        });
        for (index, command) in commands.into_iter().enumerate() {
            // The demo's Start is in the header, not in the columns.
            let _ = self.carry_out(index, command);
        }
        ui.separator();
        let master = &mut self.panels[0];
        master.show_result(ui);
        master.show_plots(ui, 220.0);
    }
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
        ui.label(format!("· phase: {}", p.phase().name()));
        if config.is_some_and(|c| c.key.is_demo()) {
            ui.colored_label(ui.visuals().warn_fg_color, "· link not secret")
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
