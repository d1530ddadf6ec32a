//! The desktop window (eframe and egui_plot). It reads the nodes' published
//! snapshots and logs and sends them commands; the node runtime knows nothing of egui
//! beyond the waker it is given (`ctx.request_repaint()`).
//!
//! - [`app`]: the window, node or demo, and the eframe glue.
//! - [`panel`]: one node: controls, statistics, progress, plots, log, result.
//! - [`editor`]: the config editor with validation as you type.
//! - [`history`]: the time series behind the plots.
//! - [`stream`]: the task stream: a lane per worker, a bar per job.
//! - [`jobs`]: the jobs table.
//! - [`compare`]: the Compare view: every policy simulated, as bar charts.

pub mod app;
pub mod compare;
pub mod editor;
pub mod history;
pub mod jobs;
pub mod panel;
pub mod stream;

use std::path::PathBuf;

use eframe::egui;

pub use app::{LoadbalApp, Mode};

use crate::config::ConfigFile;

/// What a window writes when each run ends, besides what the user saves.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `--report PATH`: the master's report.
    pub report: Option<PathBuf>,
    /// `--trace PATH`: the run's trace (both nodes' in the demo).
    pub trace: Option<PathBuf>,
}

/// Opens the window and runs until it is closed.
pub fn run(mode: Mode, path: PathBuf, file: ConfigFile, outputs: Outputs) -> Result<(), String> {
    let title = match mode {
        Mode::Node(role) => format!("loadbal {role}"),
        Mode::Demo => "loadbal demo".to_owned(),
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_app_id("loadbal")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([900.0, 600.0]),
        ..Default::default()
    };
    eframe::run_native(
        "loadbal",
        options,
        Box::new(move |_cc| {
            Ok(Box::new(LoadbalApp::with_outputs(
                mode, path, file, outputs,
            )))
        }),
    )
    .map_err(|e| format!("cannot open a window ({e}); without a display, use --headless"))
}
