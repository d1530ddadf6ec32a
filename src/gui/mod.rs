//! The desktop window (eframe and egui_plot). It reads the nodes' published
//! snapshots and logs and sends them commands; the node runtime knows nothing of egui
//! beyond the waker it is given (`ctx.request_repaint()`).
//!
//! - [`app`]: the window, node or demo, and the eframe glue.
//! - [`panel`]: one node: controls, statistics, progress, plots, log, result.
//! - [`editor`]: the config editor with validation as you type.
//! - [`history`]: the time series behind the plots.
//! - [`compare`]: the Compare view: every policy simulated, as bar charts.

pub mod app;
pub mod compare;
pub mod editor;
pub mod history;
pub mod panel;

use std::path::PathBuf;

use eframe::egui;

pub use app::{LoadbalApp, Mode};

use crate::config::ConfigFile;

/// Opens the window and runs until it is closed.
pub fn run(
    mode: Mode,
    path: PathBuf,
    file: ConfigFile,
    report: Option<PathBuf>,
) -> Result<(), String> {
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
        Box::new(move |_cc| Ok(Box::new(LoadbalApp::with_report(mode, path, file, report)))),
    )
    .map_err(|e| format!("cannot open a window ({e}); without a display, use --headless"))
}
