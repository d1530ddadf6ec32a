//! One job of a command workload, run: the program of this node's own
//! config (an argv, never a shell unless the user wrote one), the job's
//! input on its stdin, its stdout the job's output. The node's throttle
//! holds for the program as for the vector kernel: in each 100 ms period
//! the program's process group runs for `throttle × 100 ms` and is stopped
//! (SIGSTOP) for the rest, by the same schedule as the worker's
//! ([`crate::throttle`]). A time-out counts only the time it was let run.
//!
//! Nothing is left behind: a program that times out, outgrows its output
//! limit, or whose node stops is killed with its whole process group.
//! Threads feed its stdin and drain its stdout and stderr as it goes, so a
//! program that writes before it has read everything never deadlocks.
//!
//! This is the worker's side of the command kind (issue 21); the kind's
//! config, wire and output files come on top of it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::throttle::{Step, ThrottleSchedule};

/// How much of a failing program's stderr is kept: its last bytes.
pub const STDERR_TAIL_BYTES: usize = 2048;

/// How a job's program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status (0: the job is done).
    Code(i32),
    /// A signal killed it (not one of ours).
    Signal(i32),
    /// It ran longer than its time-out (running time, the throttle's
    /// pauses left out); killed.
    TimedOut,
    /// Its output passed the limit; killed.
    OutputTooLarge,
    /// The node stopped first; killed.
    Stopped,
    /// It could not be started: why.
    CannotStart(String),
}

impl Exit {
    /// True for a job done.
    pub fn succeeded(&self) -> bool {
        *self == Exit::Code(0)
    }
}

/// What running a job's program gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// How it ended.
    pub exit: Exit,
    /// Its stdout (the job's output when it succeeded).
    pub output: Vec<u8>,
    /// The last [`STDERR_TAIL_BYTES`] of its stderr.
    pub stderr_tail: Vec<u8>,
    /// Wall time from start to end.
    pub wall: Duration,
    /// Of it, the time it was let run (not stopped by the throttle).
    pub running: Duration,
}

/// What a run of a job's program is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest running time (the throttle's pauses left out); none: no limit.
    pub timeout: Option<Duration>,
    /// Most bytes of output.
    pub max_output: usize,
}

/// Runs `argv` on `input` under the throttle `throttle()` (read at every
/// step: a change applies within a period) until it ends, breaks a limit,
/// or `stop()` says the node stops.
pub fn run(
    argv: &[String],
    input: Vec<u8>,
    limits: Limits,
    throttle: &dyn Fn() -> f64,
    stop: &dyn Fn() -> bool,
) -> Ran {
    let started = Instant::now();
    let cannot = |why: String| Ran {
        exit: Exit::CannotStart(why),
        output: Vec::new(),
        stderr_tail: Vec::new(),
        wall: started.elapsed(),
        running: Duration::ZERO,
    };
    let Some((program, args)) = argv.split_first() else {
        return cannot("the command is empty".to_owned());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A group of its own, so that stopping, continuing and killing reach
    // every process it starts.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return cannot(format!("{program}: {e}")),
    };
    let group = Group(child.id());
    let (events, inbox) = mpsc::channel();
    // The pipes: taken just after the spawn, so present (`Stdio::piped`).
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let feeder = stdin.map(|mut pipe| {
        std::thread::spawn(move || {
            // A program that does not read all of its input closes the
            // pipe: that is its business, not an error.
            let _ = pipe.write_all(&input);
        })
    });
    let out_events = events.clone();
    let reader = stdout
        .map(|pipe| std::thread::spawn(move || read_capped(pipe, limits.max_output, &out_events)));
    let tail = stderr.map(|pipe| std::thread::spawn(move || read_tail(pipe)));
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = events.send(Event::Exited(status));
    });

    let mut schedule = ThrottleSchedule::new(started);
    let mut running_since = Some(started);
    let mut running = Duration::ZERO;
    let mut ended: Option<Exit> = None;
    let mut killed: Option<Exit> = None;
    while ended.is_none() {
        let now = Instant::now();
        if let Some(since) = running_since.take() {
            let ran = now.saturating_duration_since(since);
            schedule.record(ran);
            running += ran;
            running_since = Some(now);
        }
        if killed.is_none() {
            let reason = if stop() {
                Some(Exit::Stopped)
            } else if limits.timeout.is_some_and(|t| running >= t) {
                Some(Exit::TimedOut)
            } else {
                None
            };
            if let Some(reason) = reason {
                group.signal(Signal::Kill);
                killed = Some(reason);
            }
        }
        // Until when to wait for the program: the end of its budget in
        // this period, or of the pause; never long, so a stop or a changed
        // throttle is seen within a period.
        let wake = match (killed.is_some(), schedule.next(now, throttle())) {
            (true, _) => now + Duration::from_millis(10),
            (false, Step::Compute) => {
                if running_since.is_none() {
                    group.signal(Signal::Continue);
                    running_since = Some(now);
                }
                let budget = crate::throttle::PERIOD.mul_f64(throttle().clamp(0.0, 1.0));
                let left = budget.saturating_sub(schedule.used());
                let to_timeout = limits.timeout.map_or(left, |t| t.saturating_sub(running));
                now + left.min(to_timeout).max(Duration::from_millis(1))
            }
            (false, Step::SleepUntil(until)) => {
                if running_since.take().is_some() {
                    group.signal(Signal::Stop);
                    let ran = Instant::now().saturating_duration_since(now);
                    schedule.record(ran);
                    running += ran;
                }
                until.min(now + Duration::from_millis(20))
            }
        };
        match inbox.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(Event::Exited(status)) => {
                ended = Some(match (&killed, status) {
                    (Some(reason), _) => reason.clone(),
                    (None, Ok(status)) => exit_of(status),
                    (None, Err(e)) => Exit::CannotStart(format!("{program}: {e}")),
                });
            }
            Ok(Event::OutputTooLarge) => {
                if killed.is_none() {
                    group.signal(Signal::Kill);
                    killed = Some(Exit::OutputTooLarge);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The waiter always sends before it ends.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                ended = Some(killed.clone().unwrap_or(Exit::Signal(0)));
            }
        }
    }
    if let Some(since) = running_since {
        running += since.elapsed();
    }
    // The group may hold processes the program left running: gone too.
    group.signal(Signal::Kill);
    let _ = waiter.join();
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let output = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let stderr_tail = tail.and_then(|t| t.join().ok()).unwrap_or_default();
    Ran {
        exit: ended.unwrap_or(Exit::Signal(0)),
        output,
        stderr_tail,
        wall: started.elapsed(),
        running,
    }
}

enum Event {
    Exited(std::io::Result<std::process::ExitStatus>),
    OutputTooLarge,
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return Exit::Signal(signal);
    }
    // Without a code and without a signal: not on unix.
    Exit::Code(status.code().unwrap_or(-1))
}

/// Reads `pipe` to its end, keeping at most `max` bytes; past that it says
/// so once and reads on (into nothing) so the program is not blocked
/// before it is killed.
fn read_capped(mut pipe: impl Read, max: usize, events: &mpsc::Sender<Event>) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut block = vec![0u8; 64 << 10];
    let mut told = false;
    loop {
        match pipe.read(&mut block) {
            Ok(0) => return kept,
            Ok(n) if kept.len() + n <= max => kept.extend_from_slice(&block[..n]),
            Ok(_) => {
                if !told {
                    told = true;
                    let _ = events.send(Event::OutputTooLarge);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return kept,
        }
    }
}

/// Reads `pipe` to its end, keeping its last [`STDERR_TAIL_BYTES`].
fn read_tail(mut pipe: impl Read) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut block = [0u8; 4096];
    loop {
        match pipe.read(&mut block) {
            Ok(0) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&block[..n]);
                let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                tail.drain(..excess);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return tail,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Stop,
    Continue,
    Kill,
}

/// A program's process group (its id is the program's pid).
struct Group(u32);

impl Group {
    fn signal(&self, signal: Signal) {
        #[cfg(unix)]
        {
            let number = match signal {
                Signal::Stop => libc::SIGSTOP,
                Signal::Continue => libc::SIGCONT,
                Signal::Kill => libc::SIGKILL,
            };
            let Ok(pid) = libc::pid_t::try_from(self.0) else {
                return;
            };
            // SAFETY: kill(2) with a negative pid signals that process
            // group; it touches no memory of ours. A group that is gone
            // already gives ESRCH, which is what we want.
            unsafe {
                libc::kill(-pid, number);
            }
        }
        #[cfg(not(unix))]
        let _ = signal;
    }
}

#[cfg(test)]
mod tests;
