//! The window's Compare view: pick the throttles, the link and the
//! policies, press Simulate, and see each policy's predicted finishing time
//! (against the ideal) and the jobs it moves, as bar charts. The
//! simulations run on a thread of their own, one policy after another, and
//! the charts fill in as they come.

use std::time::Instant;

use crossbeam_channel::{Receiver, unbounded};
use eframe::egui;
use egui_plot::{Bar, BarChart, HLine, Legend, Plot};

use crate::config::Config;
use crate::sim::compare::{Link, Scenario, scenario_config};

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
        }
    }
}

impl CompareView {
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
        super::spawn_helper("compare", tx, on_panic, move |tx| {
            let started = Instant::now();
            let machine =
                known_rate.unwrap_or_else(|| crate::sim::MachineModel::measure(&base, None));
            let _ = tx.send(Msg::Rate(machine));
            for policy in policies {
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
        .map_err(|e| self.status = format!("cannot start the simulations: {e}"))
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
                        "{} policies simulated in {seconds:.2} s (a worker at {:.0} jobs/s, measured here).",
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
        let names: Vec<&'static str> = self.results.iter().map(|r| r.policy).collect();
        let formatter = move |mark: egui_plot::GridMark, _: &std::ops::RangeInclusive<f64>| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-9 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map_or_else(String::new, |n| (*n).to_owned())
            } else {
                String::new()
            }
        };
        let width = (ui.available_width() / 2.0 - 8.0).max(200.0);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.label("Predicted finish time (s); the line is the ideal");
                let bars: Vec<Bar> = self
                    .results
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Bar::new(i as f64, r.finish_s).name(r.policy).width(0.7))
                    .collect();
                let ideal = self.ideal_s;
                Plot::new("compare-finish")
                    .height(200.0)
                    .width(width)
                    .legend(Legend::default())
                    .include_y(0.0)
                    .x_axis_formatter(formatter.clone())
                    .allow_scroll(false)
                    .show(ui, |p| {
                        p.bar_chart(BarChart::new("finish time", bars));
                        if let Some(ideal) = ideal.filter(|i| i.is_finite()) {
                            p.hline(HLine::new("ideal", ideal));
                        }
                    });
            });
            ui.vertical(|ui| {
                ui.set_width(width);
                ui.label("Jobs moved by the policy");
                let bars: Vec<Bar> = self
                    .results
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        Bar::new(i as f64, f64::from(r.jobs_moved))
                            .name(format!("{}: {} transfers", r.policy, r.transfers))
                            .width(0.7)
                    })
                    .collect();
                Plot::new("compare-moved")
                    .height(200.0)
                    .width(width)
                    .include_y(0.0)
                    .x_axis_formatter(formatter)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        p.bar_chart(BarChart::new("jobs moved", bars));
                    });
            });
        });
    }
}
