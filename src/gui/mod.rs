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
    /// `--machine PATH`: the machine profile the predictions read (else
    /// the one in the user's cache directory).
    pub machine: Option<PathBuf>,
}

/// Spawns one of the window's helper threads (the predictor, the Compare
/// view's simulations), supervised as a node's threads are: its work runs
/// under `catch_unwind`, and a panic is said on stderr and handed to
/// `on_panic` with the thread's sender (which tells the window, then wakes
/// it), so the window names it instead of falling silent. Returns the
/// thread, which its owner joins once its last message is in (no thread of
/// the window is left detached); an error means it could not be started.
pub(crate) fn spawn_helper<T: Send + 'static>(
    name: &'static str,
    tx: crossbeam_channel::Sender<T>,
    on_panic: impl FnOnce(String, &crossbeam_channel::Sender<T>) + Send + 'static,
    work: impl FnOnce(&crossbeam_channel::Sender<T>) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| work(&tx));
            if let Err(payload) = std::panic::catch_unwind(run) {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "no message".to_owned());
                let said = format!("the window's {name} thread panicked: {message}");
                crate::say!("loadbal: {said}");
                on_panic(said, &tx);
            }
        })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    // Issue 20: the window's helper threads were detached: a panic in one
    // left the window waiting with nothing said. Now it is named.
    #[test]
    fn a_helper_that_panics_is_named_and_one_that_works_answers() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let on_panic = |why, tx: &crossbeam_channel::Sender<Result<f64, String>>| {
            let _ = tx.send(Err(why));
        };
        let thread =
            super::spawn_helper("predict", tx, on_panic, |_| panic!("no machine profile")).unwrap();
        let got: Result<f64, String> = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(
            got,
            Err("the window's predict thread panicked: no machine profile".to_owned())
        );
        // The panic was caught: the thread ends normally.
        assert!(thread.join().is_ok());
        let (tx, rx) = crossbeam_channel::bounded::<Result<f64, String>>(1);
        let thread = super::spawn_helper(
            "predict",
            tx,
            |_, _| {},
            |tx| {
                let _ = tx.send(Ok(2.5));
            },
        )
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), Ok(2.5));
        assert!(thread.join().is_ok());
    }
}
