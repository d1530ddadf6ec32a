//! The window's cost: the demo window under Xvfb (software rendering, as on
//! a machine without a GPU), its own threads' CPU while idle and during a
//! run, and the run's time against the same run headless. Needs Debian's
//! `xvfb` and `xdotool` (the group says so and measures nothing without
//! them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{Figure, Options, median};
use crate::config::WorkloadConfig;
use crate::local::loopback;

/// CPU time (user + system) of a process's threads, split into the node
/// threads (`master-*`, `slave-*`) and the window's own (every other one:
/// the main thread and the renderer's).
#[derive(Debug, Clone, Copy, Default)]
struct ThreadCpu {
    window_s: f64,
    nodes_s: f64,
}

fn thread_cpu(pid: u32) -> anyhow::Result<ThreadCpu> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut cpu = ThreadCpu::default();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot read the threads of process {pid}"))?;
    for task in tasks.flatten() {
        // A thread that ended meanwhile is simply not counted.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        // Fields after the name: state is the first; utime and stime are
        // the 12th and 13th.
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
            continue;
        };
        let seconds = (user + system) / hz;
        if name.starts_with("master-") || name.starts_with("slave-") {
            cpu.nodes_s += seconds;
        } else {
            cpu.window_s += seconds;
        }
    }
    Ok(cpu)
}

/// True if `program` is on the PATH.
pub(super) fn have(program: &str) -> bool {
    Process::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills and reaps a child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An X display number nobody uses.
fn free_display() -> anyhow::Result<u32> {
    (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .context("no free X display number")
}

/// The run's total time from a report file, once it is there.
fn report_total(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["elapsed_s"]["total"].as_f64()
}

/// What one windowed run measured.
struct Windowed {
    idle_share: f64,
    run_share: f64,
    run_s: f64,
}

/// Opens the demo window on `display`, measures its threads idle, presses
/// Start, measures them until the run's report is written.
fn windowed_run(exe: &Path, dir: &Path, display: u32, idle: Duration) -> anyhow::Result<Windowed> {
    let report = dir.join("window-report.json");
    let _ = std::fs::remove_file(&report);
    let app = Process::new(exe)
        .args(["demo", "--config"])
        .arg(dir.join("config.json"))
        .arg("--report")
        .arg(&report)
        .env("DISPLAY", format!(":{display}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the demo window")?;
    let mut app = Reaped(app);
    // Read as it comes, so the window never waits on it; kept to say why
    // a window did not open.
    let said = app.0.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let pid = app.0.id();
    let xdotool = |args: &[&str]| {
        Process::new("xdotool")
            .args(args)
            .env("DISPLAY", format!(":{display}"))
            .stderr(Stdio::null())
            .output()
    };
    let opened = Instant::now();
    let window = loop {
        let found = xdotool(&["search", "--name", "loadbal demo"])?;
        let id = String::from_utf8_lossy(&found.stdout);
        if let Some(id) = id.split_whitespace().next() {
            break id.to_owned();
        }
        let exited = app.0.try_wait().ok().flatten();
        if exited.is_some() || opened.elapsed() > Duration::from_secs(20) {
            let _ = app.0.kill();
            let _ = app.0.wait();
            let text = said.and_then(|t| t.join().ok()).unwrap_or_default();
            let last = text.lines().last().unwrap_or("").trim().to_owned();
            if last.contains("display") {
                return Err(NoDisplay(last).into());
            }
            bail!(
                "the demo window did not open{}: {}",
                if exited.is_some() { "" } else { " within 20 s" },
                if last.is_empty() {
                    "it said nothing"
                } else {
                    &last
                }
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let the first frames settle before measuring it idle.
    std::thread::sleep(Duration::from_secs(1));
    let a = thread_cpu(pid)?;
    let t = Instant::now();
    std::thread::sleep(idle);
    let b = thread_cpu(pid)?;
    let idle_share = (b.window_s - a.window_s) / t.elapsed().as_secs_f64();
    // Start sits in the header, right of the title.
    xdotool(&["mousemove", "--window", &window, "147", "16", "click", "1"])?;
    let a = thread_cpu(pid)?;
    let t = Instant::now();
    let run_s = loop {
        if let Some(total) = report_total(&report) {
            break total;
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("the windowed run wrote no report within 600 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let b = thread_cpu(pid)?;
    let run_share = (b.window_s - a.window_s) / t.elapsed().as_secs_f64();
    Ok(Windowed {
        idle_share,
        run_share,
        run_s,
    })
}

/// The same run headless, as a process; its total time.
fn headless_run(exe: &Path, dir: &Path) -> anyhow::Result<f64> {
    let report = dir.join("headless-report.json");
    let _ = std::fs::remove_file(&report);
    let status = Process::new(exe)
        .args(["demo", "--headless", "--config"])
        .arg(dir.join("config.json"))
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot start a headless demo")?;
    if !status.success() {
        bail!("the headless demo ended with {status}");
    }
    report_total(&report).context("the headless demo wrote no report")
}

/// The demo could not open a window on the display it was given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NoDisplay(String);

/// The window group: idle and running CPU of the window's own threads, and
/// a windowed run against a headless one, interleaved.
pub fn window(options: &Options, log: &mut dyn Write, out: &mut Vec<Figure>) -> anyhow::Result<()> {
    if !have("Xvfb") || !have("xdotool") {
        let _ = writeln!(
            log,
            "window: skipped: needs Xvfb and xdotool (Debian packages xvfb, xdotool)"
        );
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find this program")?;
    let dir: PathBuf = std::env::temp_dir().join(format!("loadbal-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = (|| -> anyhow::Result<_> {
        // Three times the reference iterations: a run of a few seconds,
        // long enough to measure the window's share.
        let workload = WorkloadConfig {
            iterations: 3000,
            ..WorkloadConfig::default()
        };
        std::fs::write(dir.join("config.json"), loopback(workload)?.to_json())?;
        let display = free_display()?;
        let xvfb = Process::new("Xvfb")
            .arg(format!(":{display}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start Xvfb")?;
        let _xvfb = Reaped(xvfb);
        std::thread::sleep(Duration::from_secs(1));
        let idle = Duration::from_secs(if options.quick { 2 } else { 4 });
        let (mut idle_shares, mut run_shares, mut windowed, mut headless) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..options.reps(3) {
            let w = windowed_run(&exe, &dir, display, idle)?;
            idle_shares.push(w.idle_share);
            run_shares.push(w.run_share);
            windowed.push(w.run_s);
            headless.push(headless_run(&exe, &dir)?);
        }
        Ok((idle_shares, run_shares, windowed, headless))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (idle_shares, run_shares, windowed, headless) = match result {
        Err(e) if e.downcast_ref::<NoDisplay>().is_some() => {
            let _ = writeln!(
                log,
                "window: skipped: the demo cannot open a window here: {e}"
            );
            return Ok(());
        }
        other => other?,
    };
    let n = windowed.len();
    let (idle, running) = (median(&idle_shares), median(&run_shares));
    let (windowed, headless) = (median(&windowed), median(&headless));
    let _ = writeln!(
        log,
        "window: {:.1} % of a core idle, {:.1} % during a run; run {windowed:.2} s in the \
         window, {headless:.2} s headless",
        idle * 100.0,
        running * 100.0
    );
    out.push(
        Figure::new(
            "window",
            "window's threads, idle",
            idle * 100.0,
            "% of a core",
        )
        .target("≤ 3 %", idle <= 0.03)
        .note("Xvfb, software rendering (llvmpipe)")
        .samples(n),
    );
    out.push(
        Figure::new(
            "window",
            "window's threads, during a run",
            running * 100.0,
            "% of a core",
        )
        .target("≤ 10 %", running <= 0.10)
        .note("the reference vector, 3000 iterations, throttles (1, 1)")
        .samples(n),
    );
    out.push(
        Figure::new("window", "that run in the window", windowed, "s")
            .against("headless", headless)
            .target("within 5 %", windowed <= 1.05 * headless)
            .samples(n),
    );
    Ok(())
}
