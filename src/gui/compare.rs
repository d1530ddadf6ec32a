//! The window's Compare view: pick the throttles, the link and the
//! policies, press Simulate, and see each policy's predicted finishing time
//! (against the ideal) as a bar chart, and every figure in a table under it. The
//! simulations run on a thread of their own, one policy after another, and
//! the charts fill in as they come.

use std::time::Instant;

use crossbeam_channel::{Receiver, unbounded};
use eframe::egui;
use egui_plot::{Bar, BarChart, Plot, VLine};

use crate::config::Config;
use crate::sim::compare::{Link, Scenario, scenario_config};

/// The bars' colour, and the ideal's line (apart from every bar's).
const BAR: egui::Color32 = egui::Color32::from_rgb(90, 150, 220);
const IDEAL: egui::Color32 = egui::Color32::from_rgb(120, 200, 90);

/// One policy's predicted figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    /// The policy.
    pub policy: &'static str,
    /// Seconds from the bootstrap to the end.
    pub finish_s: f64,
    /// Jobs the policy moved.
    pub jobs_moved: u32,
    /// Policy transfers.
    pub transfers: u32,
}

enum Msg {
    Rate(crate::sim::MachineModel),
    Row(Predicted),
    Failed(&'static str, String),
    Done(f64),
    /// The thread panicked: what it said.
    Panicked(String),
}

/// The Compare view's state.
pub struct CompareView {
    throttles: [f64; 2],
    link: Link,
    chosen: Vec<bool>,
    rate: Option<crate::sim::MachineModel>,
    ideal_s: Option<f64>,
    results: Vec<Predicted>,
    failures: Vec<String>,
    status: String,
    inbox: Option<Receiver<Msg>>,
    /// The simulations' thread, joined once its last message is in.
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set to have the thread end after the policy it is simulating.
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The machine profile the simulations read (`--machine`), else the
    /// user's.
    machine: Option<std::path::PathBuf>,
}

impl Default for CompareView {
    fn default() -> Self {
        CompareView {
            throttles: [1.0, 0.3],
            link: Link::Plain,
            chosen: crate::policy::NAMES
                .iter()
                .map(|n| !n.starts_with("classic-"))
                .collect(),
            rate: None,
            ideal_s: None,
            results: Vec::new(),
            failures: Vec::new(),
            status: "Pick throttles, a link and policies, then Simulate.".to_owned(),
            inbox: None,
            thread: None,
            cancel: std::sync::Arc::default(),
            machine: None,
        }
    }
}

impl Drop for CompareView {
    /// Cancels simulations still running and waits for their thread (the
    /// rest of the policy it is on, under a second): it never outlives the
    /// window.
    fn drop(&mut self) {
        self.cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl CompareView {
    /// Simulates on the machine profile at `path`.
    pub fn set_machine(&mut self, path: Option<std::path::PathBuf>) {
        self.machine = path;
    }

    /// True while simulations run.
    pub fn is_busy(&self) -> bool {
        self.inbox.is_some()
    }

    /// The figures so far.
    pub fn results(&self) -> &[Predicted] {
        &self.results
    }

    /// The status line.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Sets the throttles (master, slave) the next Simulate uses.
    pub fn set_throttles(&mut self, master: f64, slave: f64) {
        self.throttles = [master.clamp(0.0, 1.0), slave.clamp(0.0, 1.0)];
    }

    /// Starts the simulations of the chosen policies under `base`, the
    /// workload and addresses of the window's config. `wake` asks for a
    /// repaint as results come.
    pub fn simulate(&mut self, base: &Config, wake: impl Fn() + Send + Sync + 'static) {
        let policies: Vec<&'static str> = crate::policy::NAMES
            .iter()
            .zip(&self.chosen)
            .filter(|(_, on)| **on)
            .map(|(n, _)| *n)
            .collect();
        if policies.is_empty() {
            self.status = "Choose at least one policy.".to_owned();
            return;
        }
        let scenario = Scenario {
            name: String::new(),
            throttles: (self.throttles[0], self.throttles[1]),
            link: self.link,
            change: None,
        };
        let base = base.clone();
        let known_rate = self.rate;
        let (tx, rx) = unbounded();
        self.inbox = Some(rx);
        self.results.clear();
        self.failures.clear();
        self.ideal_s = None;
        // The workload may have changed since the last measurement.
        self.rate = None;
        self.status = "Simulating…".to_owned();
        let wake = std::sync::Arc::new(wake);
        let wake_on_panic = std::sync::Arc::clone(&wake);
        let on_panic = move |why: String, tx: &crossbeam_channel::Sender<Msg>| {
            let _ = tx.send(Msg::Panicked(why));
            wake_on_panic();
        };
        self.cancel = std::sync::Arc::default();
        let cancelled = std::sync::Arc::clone(&self.cancel);
        let profile_path = self.machine.clone();
        self.thread = super::spawn_helper("compare", tx, on_panic, move |tx| {
            let started = Instant::now();
            let machine = match known_rate {
                Some(machine) => machine,
                // The machine profile (measured once, and said, if there
                // is none yet): the same answer every time.
                None => {
                    match crate::sim::MachineProfile::obtain(profile_path.as_deref(), &mut |line| {
                        crate::say!("loadbal: {line}");
                    }) {
                        Ok(profile) => profile.model(&base, None),
                        Err(e) => {
                            let _ = tx.send(Msg::Panicked(format!("no machine profile: {e}")));
                            wake();
                            return;
                        }
                    }
                }
            };
            let _ = tx.send(Msg::Rate(machine));
            for policy in policies {
                if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let config = scenario_config(&base, None, &scenario, policy);
                let msg = match crate::sim::simulate(&config, &machine, &[], 1) {
                    Ok(sim) => Msg::Row(Predicted {
                        policy,
                        finish_s: sim.prediction.finish_s,
                        jobs_moved: sim.prediction.jobs_moved,
                        transfers: sim.prediction.transfers,
                    }),
                    Err(e) => Msg::Failed(policy, e.to_string()),
                };
                let _ = tx.send(msg);
                wake();
            }
            let _ = tx.send(Msg::Done(started.elapsed().as_secs_f64()));
            wake();
        })
        .map_err(|e| {
            self.inbox = None;
            self.status = format!("cannot start the simulations: {e}");
        })
        .ok();
    }

    /// Takes the results that came in. Never blocks.
    pub fn poll(&mut self, base: Option<&Config>) {
        let Some(rx) = &self.inbox else {
            return;
        };
        let mut done = false;
        let mut failures = Vec::new();
        loop {
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    if !done {
                        self.status = "The simulations stopped before the end.".to_owned();
                        done = true;
                    }
                    break;
                }
            };
            match msg {
                Msg::Rate(m) => {
                    self.rate = Some(m);
                    if let Some(base) = base {
                        let mut c = base.clone();
                        c.master.throttle = self.throttles[0];
                        c.slave.throttle = self.throttles[1];
                        self.ideal_s = Some(crate::sim::ideal_seconds(&c, m.rate_jobs_per_s, &[]));
                    }
                }
                Msg::Row(p) => self.results.push(p),
                Msg::Failed(policy, why) => failures.push(format!("{policy}: {why}")),
                Msg::Panicked(why) => {
                    self.status = format!("The simulations stopped: {why}.");
                    done = true;
                }
                Msg::Done(seconds) => {
                    self.status = format!(
                        "{} policies simulated in {seconds:.2} s (a worker at {:.0} jobs/s, from this machine's profile).",
                        self.results.len(),
                        self.rate.map_or(0.0, |m| m.rate_jobs_per_s)
                    );
                    done = true;
                }
            }
        }
        if !failures.is_empty() {
            self.failures.extend(failures);
        }
        if done {
            self.inbox = None;
            // Its last message is in: the thread is at its end.
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
            if !self.failures.is_empty() {
                self.status = format!("{} No result for {}", self.status, self.failures.join("; "));
            }
        }
    }

    /// Draws the view; `base` is the window's config, if valid.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        base: Option<&Config>,
        wake: impl Fn() + Send + Sync + 'static,
    ) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Master throttle");
            ui.add(egui::Slider::new(&mut self.throttles[0], 0.0..=1.0).step_by(0.05));
            ui.label("Slave throttle");
            ui.add(egui::Slider::new(&mut self.throttles[1], 0.0..=1.0).step_by(0.05));
        });
        ui.horizontal(|ui| {
            ui.label("Link");
            ui.radio_value(&mut self.link, Link::Plain, "loopback");
            ui.radio_value(
                &mut self.link,
                Link::Wan,
                "the assignment's WAN (10 Mbit/s, 54 ± 32 ms, 0.2 % loss)",
            );
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("Policies");
            for (name, on) in crate::policy::NAMES.iter().zip(self.chosen.iter_mut()) {
                ui.checkbox(on, *name);
            }
        });
        ui.horizontal(|ui| {
            let can = base.is_some() && !self.is_busy();
            if ui.add_enabled(can, egui::Button::new("Simulate")).clicked()
                && let Some(base) = base
            {
                self.simulate(base, wake);
            }
            if base.is_none() {
                ui.label("The configuration has errors: fix them to simulate.");
            } else {
                ui.label(&self.status);
            }
        });
        if self.results.is_empty() {
            return;
        }
        self.show_chart(ui);
        self.show_table(ui);
    }

    /// The predicted finish times as horizontal bars, one a row, each
    /// named on the axis and its value on hover; the ideal as a vertical
    /// line. The scale is linear from 0; the key is a line above the chart,
    /// never over the bars.
    fn show_chart(&self, ui: &mut egui::Ui) {
        let ideal = self.ideal_s.filter(|i| i.is_finite());
        ui.label(match ideal {
            Some(ideal) => format!(
                "Predicted finish time, seconds (linear scale from 0); the vertical line is the \
                 ideal, {ideal:.3} s. Hover over a bar for its figures."
            ),
            None => "Predicted finish time, seconds (linear scale from 0). Hover over a bar for \
                     its figures."
                .to_owned(),
        });
        // The first policy at the top.
        let rows = self.results.len();
        let row_of = |i: usize| (rows - 1 - i) as f64;
        let names: Vec<&'static str> = self.results.iter().map(|r| r.policy).collect();
        let name_at = move |mark: egui_plot::GridMark, _: &std::ops::RangeInclusive<f64>| {
            let row = mark.value.round();
            if (mark.value - row).abs() > 1e-9 || row < 0.0 || row as usize >= names.len() {
                return String::new();
            }
            names[names.len() - 1 - row as usize].to_owned()
        };
        // A mark at every row, so every bar is named.
        let every_row = move |input: egui_plot::GridInput| -> Vec<egui_plot::GridMark> {
            let (lo, hi) = input.bounds;
            (lo.ceil().max(0.0) as usize..=hi.floor().max(0.0) as usize)
                .filter(|&row| row < rows)
                .map(|row| egui_plot::GridMark {
                    value: row as f64,
                    step_size: 1.0,
                })
                .collect()
        };
        let bars: Vec<Bar> = self
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| Bar::new(row_of(i), r.finish_s).name(r.policy).width(0.6))
            .collect();
        let widest = self
            .results
            .iter()
            .map(|r| r.policy.len())
            .max()
            .unwrap_or(8);
        let ideal_for_hover = ideal;
        let hover = move |bar: &Bar, _: &BarChart| match ideal_for_hover {
            Some(ideal) if ideal > 0.0 => format!(
                "{}: {:.3} s, {:+.0} % of the ideal",
                bar.name,
                bar.value,
                100.0 * (bar.value / ideal - 1.0)
            ),
            _ => format!("{}: {:.3} s", bar.name, bar.value),
        };
        Plot::new("compare-finish")
            .height((28.0 * rows as f32 + 40.0).clamp(120.0, 320.0))
            .include_x(0.0)
            .include_y(-0.5)
            .include_y(rows as f64 - 0.5)
            .y_grid_spacer(every_row)
            .y_axis_formatter(name_at)
            .y_axis_min_width(7.0 * widest as f32)
            .x_axis_label("seconds")
            .show_grid([true, false])
            .allow_scroll(false)
            .allow_zoom(false)
            .allow_drag(false)
            .allow_boxed_zoom(false)
            .show(ui, |p| {
                p.bar_chart(
                    BarChart::new("finish time", bars)
                        .horizontal()
                        .color(BAR)
                        .element_formatter(Box::new(hover)),
                );
                if let Some(ideal) = ideal {
                    p.vline(VLine::new("ideal", ideal).color(IDEAL).width(2.0));
                }
            });
    }

    /// Every policy's figures, as the chart shows them and more.
    fn show_table(&self, ui: &mut egui::Ui) {
        let ideal = self.ideal_s.filter(|i| i.is_finite() && *i > 0.0);
        egui::Grid::new("compare-table")
            .num_columns(5)
            .striped(true)
            .spacing([24.0, 4.0])
            .show(ui, |ui| {
                for head in [
                    "Policy",
                    "Predicted finish",
                    "Against the ideal",
                    "Jobs moved",
                    "Transfers",
                ] {
                    ui.strong(head);
                }
                ui.end_row();
                for r in &self.results {
                    ui.label(r.policy);
                    ui.label(format!("{:.3} s", r.finish_s));
                    ui.label(ideal.map_or_else(
                        || "–".to_owned(),
                        |i| format!("{:+.0} %", 100.0 * (r.finish_s / i - 1.0)),
                    ));
                    ui.label(r.jobs_moved.to_string());
                    ui.label(r.transfers.to_string());
                    ui.end_row();
                }
            });
    }
}
