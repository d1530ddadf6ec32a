//! One job of a command workload, run: the program of this node's own
//! config (an argv, never a shell unless the user wrote one), the job's
//! input on its stdin, its stdout the job's output. The node's throttle
//! holds for the program as for the vector kernel: in each 100 ms period
//! the program's process group runs for `throttle × 100 ms` and is stopped
//! (SIGSTOP) for the rest, by the same schedule as the worker's
//! ([`crate::throttle`]). A time-out counts only the time it was let run.
//!
//! Nothing of its group is left behind: a program that times out, outgrows
//! its output limit, or whose node stops is killed with its whole process
//! group, and what it left running in its group when it ended goes too.
//! (A process it started outside its group, with `setsid`, is beyond
//! reach: if it holds the program's stdout open, the run gives up on it
//! after a grace period and the job fails.) Threads feed its stdin and
//! drain its stdout and stderr as it goes, so a program that writes before
//! it has read everything never deadlocks.
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
    /// It ended, but its stdout stayed open (a process it started outside
    /// its group holds it): its output cannot be known whole.
    PipeHeldOpen,
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
    if let Some(mut pipe) = stdin {
        // Never joined: a program that does not read all of its input
        // closes the pipe (its business, not an error), and one that left
        // a process holding it must not hold us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let (pipes_tx, pipes) = mpsc::channel();
    let (out_events, out_tx) = (events.clone(), pipes_tx.clone());
    if let Some(pipe) = stdout {
        std::thread::spawn(move || {
            let read = read_capped(pipe, limits.max_output, &out_events);
            let _ = out_tx.send(Pipe::Stdout(read));
        });
    }
    if let Some(pipe) = stderr {
        std::thread::spawn(move || {
            let _ = pipes_tx.send(Pipe::Stderr(read_tail(pipe)));
        });
    }
    // The waiter sees the program end without reaping it: until it is
    // reaped its group cannot be another's, so the signals below reach only
    // what it started. It reaps when told.
    let (reap_tx, reap_rx) = mpsc::channel::<()>();
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        wait_unreaped(pid);
        let _ = events.send(Event::Exited);
        let _ = reap_rx.recv();
        child.wait()
    });

    let mut schedule = ThrottleSchedule::new(started);
    let mut running_since = Some(started);
    let mut running = Duration::ZERO;
    let mut exited = false;
    let mut killed: Option<Exit> = None;
    while !exited {
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
        // One reading of the throttle per step; a bad value pauses, as in
        // the worker's schedule.
        let throttle = match throttle() {
            t if t.is_nan() => 0.0,
            t => t.clamp(0.0, 1.0),
        };
        // Until when to wait for the program: the end of its budget in
        // this period, or of the pause; never long, so a stop or a changed
        // throttle is seen within a period.
        let wake = match (killed.is_some(), schedule.next(now, throttle)) {
            (true, _) => now + Duration::from_millis(10),
            (false, Step::Compute) => {
                if running_since.is_none() {
                    group.signal(Signal::Continue);
                    running_since = Some(now);
                }
                let budget = crate::throttle::PERIOD.mul_f64(throttle);
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
            Ok(Event::OutputTooLarge) if killed.is_none() => {
                group.signal(Signal::Kill);
                killed = Some(Exit::OutputTooLarge);
            }
            Ok(Event::OutputTooLarge) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The waiter sends before it ends.
            Ok(Event::Exited) | Err(mpsc::RecvTimeoutError::Disconnected) => exited = true,
        }
    }
    if let Some(since) = running_since {
        running += since.elapsed();
    }
    // Processes the program left in its group go too (it is not reaped
    // yet, so the group is still its own); then it is reaped.
    group.signal(Signal::Kill);
    let _ = reap_tx.send(());
    let status = waiter.join().ok();
    // Its pipes close once every process holding them is gone. One it
    // started outside its group (a daemon) may hold them on: the run does
    // not wait for it past a grace period, and fails.
    let mut output = None;
    let mut stderr_tail = Vec::new();
    let grace = Instant::now() + PIPE_GRACE;
    for _ in 0..2 {
        match pipes.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok(Pipe::Stdout(read)) => output = Some(read),
            Ok(Pipe::Stderr(tail)) => stderr_tail = tail,
            Err(_) => break,
        }
    }
    let exit = match (killed, output.as_ref(), status) {
        (Some(reason), _, _) => reason,
        (None, None, _) => Exit::PipeHeldOpen,
        (None, Some((_, true)), _) => Exit::OutputTooLarge,
        (None, Some(_), Some(Ok(status))) => exit_of(status),
        (None, Some(_), Some(Err(e))) => Exit::CannotStart(format!("{program}: {e}")),
        (None, Some(_), None) => Exit::CannotStart(format!("{program}: its waiter failed")),
    };
    Ran {
        exit,
        output: output.map(|(kept, _)| kept).unwrap_or_default(),
        stderr_tail,
        wall: started.elapsed(),
        running,
    }
}

/// How long a finished program's pipes may stay open (held by a process
/// it started outside its group) before the run gives up on them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// What a pipe's reader ends with.
enum Pipe {
    /// The output kept, and whether there was more than the limit.
    Stdout((Vec<u8>, bool)),
    /// The stderr's tail.
    Stderr(Vec<u8>),
}

/// Blocks until process `pid` has ended, leaving it unreaped.
fn wait_unreaped(pid: u32) {
    #[cfg(unix)]
    {
        let id: libc::id_t = pid;
        loop {
            // SAFETY: waitid writes only into `info`, a zeroed siginfo_t we
            // own; WNOWAIT leaves the child to be reaped by `Child::wait`.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r =
                unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if r == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

enum Event {
    Exited,
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
/// before it is killed. Returns what it kept, and whether there was more.
fn read_capped(mut pipe: impl Read, max: usize, events: &mpsc::Sender<Event>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut block = vec![0u8; 64 << 10];
    let mut told = false;
    loop {
        match pipe.read(&mut block) {
            Ok(0) => return (kept, told),
            Ok(n) if kept.len() + n <= max => kept.extend_from_slice(&block[..n]),
            Ok(_) => {
                if !told {
                    told = true;
                    let _ = events.send(Event::OutputTooLarge);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (kept, told),
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
