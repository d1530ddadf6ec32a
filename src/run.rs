//! A run's life around its nodes, for the command line and the window
//! alike: starting a node for a run (its own kind of work prepared, Start
//! sent), waiting for the demo's two nodes together, and writing what a run
//! leaves behind (its report and its trace) so that neither is ever lost.
//! `main.rs` parses arguments and calls these; the window's panels keep
//! their UI and call the same functions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::ids::Role;
use crate::node::{self, Command, NodeHandle, NodeOptions, NodeView, Outcome};

/// Starts `role`'s node for a run on `config` with `options` (its work, a
/// command workload's pieces, prepared here when the options carry none)
/// and presses its Start. Returns the node and the config it runs (a
/// master's job count is its input's). An error says why, for the user.
pub fn start_node(
    role: Role,
    config: &Config,
    mut options: NodeOptions,
) -> Result<(NodeHandle, Config), String> {
    let mut config = config.clone();
    if options.work.is_none() {
        options.work = node::prepare_work(
            &mut config,
            role,
            &crate::workload::kind::MasterOptions::default(),
        )?;
    }
    let handle =
        node::start(role, &config, options).map_err(|e| format!("cannot start the {role}: {e}"))?;
    handle.command(Command::Start);
    Ok((handle, config))
}

/// The demo's pair: if either node has ended without finishing the run,
/// stops the other, so neither waits for a peer that is gone. Returns true
/// when it stopped one. (A slave the user stopped is not such an end: the
/// master takes its jobs back and finishes alone, so only a slave's
/// failure or a master that did not finish stops the other.)
pub fn stop_the_other(
    master: (bool, Option<&Outcome>),
    slave: (bool, Option<&Outcome>),
) -> Option<Role> {
    let failed = |o: Option<&Outcome>| matches!(o, Some(Outcome::Failed { .. }));
    let ended_early =
        |o: Option<&Outcome>| matches!(o, Some(Outcome::Failed { .. } | Outcome::Stopped));
    let (master_running, master_end) = master;
    let (slave_running, slave_end) = slave;
    if slave_running && ended_early(master_end) {
        Some(Role::Slave)
    } else if master_running && failed(slave_end) {
        Some(Role::Master)
    } else {
        None
    }
}

/// Waits for both of the demo's nodes (the command line's): when either
/// ends as [`stop_the_other`] says, the other is stopped (once).
pub fn wait_together(master: NodeHandle, slave: NodeHandle) -> (Outcome, Outcome) {
    let mut handles = [Some(master), Some(slave)];
    let mut ended: [Option<Outcome>; 2] = [None, None];
    let mut stopped = false;
    loop {
        for (slot, handle) in ended.iter_mut().zip(handles.iter_mut()) {
            if slot.is_none() && handle.as_ref().is_some_and(NodeHandle::is_finished) {
                *slot = handle.take().map(NodeHandle::wait);
            }
        }
        if let [Some(m), Some(s)] = ended {
            return (m, s);
        }
        let state = |i: usize| (handles[i].is_some(), ended[i].as_ref());
        if !stopped && let Some(role) = stop_the_other(state(0), state(1)) {
            let i = usize::from(role == Role::Slave);
            if let Some(handle) = &handles[i] {
                handle.command(Command::Stop);
            }
            stopped = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What became of a file a run writes: one line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written where asked; the line says where.
    Done(String),
    /// Written to standard output, as asked (`-`).
    ToStdout,
    /// Not written where asked, and the line says where it went instead
    /// (standard output, or a spare file) or that it is lost.
    Elsewhere(String),
}

impl Written {
    /// The line to show or print.
    pub fn text(&self) -> &str {
        match self {
            Written::Done(s) | Written::Elsewhere(s) => s,
            Written::ToStdout => "written to standard output",
        }
    }

    fn map_done(self, f: impl FnOnce(String) -> String) -> Written {
        match self {
            Written::Done(p) => Written::Done(f(p)),
            other => other,
        }
    }
}

/// Writes a run's trace (`views`: the nodes the run showed) to `path`.
/// One that cannot be written is not lost: it goes to standard output,
/// or, when standard output carries the report (`stdout_taken`), to a file
/// of its own in the temporary directory; either is said on stderr at once
/// (the [`Written::Elsewhere`] line), so a caller says only a
/// [`Written::Done`].
pub fn write_trace(path: &Path, views: &[&NodeView], stdout_taken: bool) -> Written {
    let json = crate::trace::of_views(views);
    write_with_fallback(path, "trace", &json, stdout_taken, |p, text| {
        crate::trace::write(p, text)
    })
    .map_done(|p| {
        format!(
            "trace written to {} (open it at https://ui.perfetto.dev)",
            p
        )
    })
}

/// Writes a run's report to `path`; one that cannot be written goes to
/// standard output (a trace never shares it with a report).
pub fn write_report(report: &crate::report::Report, path: &Path) -> Written {
    let json = report.to_json();
    write_with_fallback(path, "report", &json, false, |p, _| report.write(p))
        .map_done(|p| format!("report written to {p}"))
}

/// Saves a file of the run the user looks at (the window's Save report
/// and Save trace): never over the config file the window edits. The line
/// says what happened, for the window to show.
pub fn save(
    path: &Path,
    config_path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> String {
    match crate::files::check_not_config(path, config_path) {
        Err(why) => format!("not saved: {why}"),
        Ok(()) => match write(path) {
            Ok(()) if path.as_os_str() == "-" => "written to standard output".to_owned(),
            Ok(()) => format!("saved {}", path.display()),
            Err(e) => format!("cannot save {}: {e}", path.display()),
        },
    }
}

/// A spare file's name: the process and a count, so a second run's spare
/// never takes the place of the first's.
fn spare_path(what: &str) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = if n == 0 {
        format!("loadbal-{what}-{}.json", std::process::id())
    } else {
        format!("loadbal-{what}-{}-{n}.json", std::process::id())
    };
    std::env::temp_dir().join(name)
}

fn write_with_fallback(
    path: &Path,
    what: &str,
    text: &str,
    stdout_taken: bool,
    write: impl Fn(&Path, &str) -> std::io::Result<()>,
) -> Written {
    match write(path, text) {
        Ok(()) if path.as_os_str() == "-" => Written::ToStdout,
        Ok(()) => Written::Done(path.display().to_string()),
        Err(e) if stdout_taken => {
            let spare = spare_path(what);
            let said = match write(&spare, text) {
                Ok(()) => format!(
                    "loadbal: cannot write the {what} to {}: {e}; written to {} instead",
                    path.display(),
                    spare.display()
                ),
                Err(e2) => format!(
                    "loadbal: cannot write the {what} to {} ({e}) nor to {} ({e2}); it is lost",
                    path.display(),
                    spare.display()
                ),
            };
            crate::say!("{said}");
            Written::Elsewhere(said)
        }
        Err(e) => {
            let said = format!(
                "loadbal: cannot write the {what} to {}: {e}; here it is on standard output",
                path.display()
            );
            // Said first, so a reader of stderr knows what stdout carries.
            crate::say!("{said}");
            let _ = crate::term::out(&format!("{text}\n"));
            Written::Elsewhere(said)
        }
    }
}

/// The simulator's prediction of a finished run, made on a thread of its
/// own after the run (so it takes no CPU from it) and joined when its
/// answer is taken: no thread is left behind.
#[derive(Debug, Default)]
pub struct Predictor {
    pending: Option<Pending>,
    done: Option<Result<f64, String>>,
    /// Set to have the thread end after the step it is in.
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// A prediction being made: where its answer comes, and its thread.
type Pending = (
    crossbeam_channel::Receiver<Result<f64, String>>,
    std::thread::JoinHandle<()>,
);

impl Predictor {
    /// Predicts `config`'s run at its throttles on the machine profile at
    /// `machine` (else the user's); `wake` is called when the answer is in.
    pub fn start(
        config: Config,
        machine: Option<PathBuf>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Predictor {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cancelled = Arc::clone(&cancel);
        let on_panic_wake = Arc::clone(&wake);
        let on_panic = move |why, tx: &crossbeam_channel::Sender<Result<f64, String>>| {
            let _ = tx.send(Err(why));
            on_panic_wake();
        };
        let spawned = crate::gui::spawn_helper("predict", tx, on_panic, move |tx| {
            let profile = crate::sim::MachineProfile::obtain(machine.as_deref(), &mut |line| {
                crate::say!("loadbal: {line}");
            });
            if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let result = profile
                .and_then(|p| {
                    crate::sim::simulate(&config, &p.model(&config, None), &[], 1)
                        .map_err(|e| e.to_string())
                })
                .map(|s| s.prediction.finish_s);
            let _ = tx.send(result);
            wake();
        });
        match spawned {
            Ok(thread) => Predictor {
                pending: Some((rx, thread)),
                done: None,
                cancel,
            },
            Err(e) => Predictor {
                pending: None,
                done: Some(Err(format!("cannot start the simulator: {e}"))),
                cancel,
            },
        }
    }

    /// Takes the answer if it is in. Never blocks (the thread has sent its
    /// answer, or ended, before it is joined).
    pub fn poll(&mut self) {
        let Some((rx, _)) = &self.pending else {
            return;
        };
        let answer = match rx.try_recv() {
            Ok(result) => result,
            Err(crossbeam_channel::TryRecvError::Empty) => return,
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                Err("the simulator stopped before the end".to_owned())
            }
        };
        if let Some((_, thread)) = self.pending.take() {
            // Its answer is sent: the thread is at its end.
            let _ = thread.join();
        }
        self.done = Some(answer);
    }

    /// The prediction, once it is in.
    pub fn answer(&self) -> Option<&Result<f64, String>> {
        self.done.as_ref()
    }

    /// Asks the thread to end after the step it is in (reading the machine
    /// profile, or measuring it the first time), without its answer.
    pub fn cancel(&self) {
        self.cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// True when no thread is left to wait for: dropping it then does not
    /// block.
    pub fn thread_ended(&self) -> bool {
        self.pending
            .as_ref()
            .is_none_or(|(_, thread)| thread.is_finished())
    }
}

impl Drop for Predictor {
    /// Cancels a prediction still being made and waits for its thread (the
    /// rest of its step, under a second): it never outlives the window. A
    /// panel drops a running one only when the window closes; a new run
    /// retires the old one instead (see [`Predictor::thread_ended`]).
    fn drop(&mut self) {
        self.cancel();
        if let Some((_, thread)) = self.pending.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_stops_the_slave_when_the_master_ends_early_and_not_the_other_way_for_a_stop() {
        let stopped = Outcome::Stopped;
        let failed = Outcome::Failed {
            failure: crate::node::Failure::Files("input gone".to_owned()),
            report: None,
        };
        // The master stopped or failed: the slave is stopped.
        assert_eq!(
            stop_the_other((false, Some(&stopped)), (true, None)),
            Some(Role::Slave)
        );
        assert_eq!(
            stop_the_other((false, Some(&failed)), (true, None)),
            Some(Role::Slave)
        );
        // The slave stopped by the user: the master finishes alone.
        assert_eq!(stop_the_other((true, None), (false, Some(&stopped))), None);
        // The slave failed: the master is stopped.
        assert_eq!(
            stop_the_other((true, None), (false, Some(&failed))),
            Some(Role::Master)
        );
        // Nothing to stop once both have ended, or while both run.
        assert_eq!(
            stop_the_other((false, Some(&stopped)), (false, Some(&failed))),
            None
        );
        assert_eq!(stop_the_other((true, None), (true, None)), None);
    }

    #[test]
    fn a_trace_that_cannot_be_written_goes_elsewhere_and_says_where() {
        let dir = std::env::temp_dir().join(format!("loadbal-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("no-such-dir").join("t.json");
        let written =
            write_with_fallback(&missing, "trace", "{}", true, |p, t| std::fs::write(p, t));
        let Written::Elsewhere(said) = &written else {
            panic!("{written:?}");
        };
        assert!(
            said.starts_with(&format!(
                "loadbal: cannot write the trace to {}",
                missing.display()
            )),
            "{said}"
        );
        let spare = std::env::temp_dir().join(format!("loadbal-trace-{}.json", std::process::id()));
        assert!(
            said.ends_with(&format!("written to {} instead", spare.display())),
            "{said}"
        );
        assert_eq!(std::fs::read_to_string(&spare).unwrap(), "{}");
        let _ = std::fs::remove_file(spare);
        let ok = dir.join("t.json");
        assert_eq!(
            write_with_fallback(&ok, "trace", "{}", false, |p, t| std::fs::write(p, t)),
            Written::Done(ok.display().to_string())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
