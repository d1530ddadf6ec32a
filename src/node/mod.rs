//! A node: its sans-IO [`core`] driven by one event-loop thread, with the
//! other threads as spokes around it. Every spoke only sends inputs into
//! the core's one inbox and takes what the core hands it:
//!
//! | thread            | the assignment's component            | inbox                |
//! |-------------------|---------------------------------------|----------------------|
//! | `ROLE-core`       | state manager, transfer manager, adaptor and the session, all in [`core::NodeCore`] | [`Msg`], bounded |
//! | `ROLE-worker-N`   | worker                                | its jobs ([`Work`])  |
//! | `ROLE-hwmon`      | hardware monitor                      | (sleeps on the stop token) |
//! | `ROLE-net-rx`     | (the socket's receiving side)         | (the socket)         |
//!
//! Supervision: every thread is spawned through one helper whose guard
//! tells the core when the thread ends and whether it panicked; a spoke that
//! ends before the run does fails it at once (exit 3, naming the thread).
//! Shutdown is by dropping senders: when the event loop returns (or
//! unwinds), it drops the stop token and the workers' job channels, every
//! spoke sees them closed and ends, and [`NodeHandle::wait`] joins them all,
//! which closes the socket. Nothing here knows about egui: a viewer passes
//! a waker, called whenever something worth redrawing happened.

pub mod core;
pub mod harness;
mod monitor;
mod progress;
mod reader;
pub mod solo;
mod view;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

pub use self::core::Rejection;
pub use self::core::{End, Failure, Work};
pub use progress::status_line;
pub use reader::receive;
pub use view::{
    EventLog, LogEntry, NodeView, Sample, SampleFigures, Snapshot, Verbosity, peer_cpu_measured,
};

use self::core::{CoreSettings, Event, Input, NodeCore};
use crate::config::{Config, Role};
use crate::report::Report;
use crate::transport::{BindError, Transport};
use worker::Knob;

/// What a user (or the headless runner) can ask of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Begin the run (the Start button).
    Start,
    /// Set this node's throttle (0 to 1).
    SetThrottle(f64),
    /// Abandon the run and tell the peer.
    Stop,
    /// Master: add this many jobs to the run while it goes.
    AddJobs(u32),
}

/// How a node's part ended.
#[derive(Debug)]
pub enum Outcome {
    /// The run finished; the master's verification result (the slave learns
    /// it from the master). The master also has the report.
    Finished {
        /// Every job present once and every element exact.
        verified: bool,
        /// The run report (master only).
        report: Option<Box<Report>>,
    },
    /// A runtime failure (peer lost, peer aborted, a thread failed).
    Failed {
        /// What failed.
        failure: Failure,
        /// The master's report of the run so far: the results held and
        /// verified, the failure, and where every job stood.
        report: Option<Box<Report>>,
    },
    /// Stopped by the user.
    Stopped,
}

impl Outcome {
    /// The run's report, when there is one: the master's, of a run that
    /// finished or failed.
    pub fn report(&self) -> Option<&Report> {
        match self {
            Outcome::Finished { report, .. } | Outcome::Failed { report, .. } => report.as_deref(),
            Outcome::Stopped => None,
        }
    }

    /// The process exit code the contract gives this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Finished { verified: true, .. } => 0,
            Outcome::Finished {
                verified: false, ..
            } => 1,
            Outcome::Failed { failure, .. } => failure.exit_code(),
            Outcome::Stopped => 3,
        }
    }
}

/// A message to the core's event loop: an input, or a datagram in the
/// reader's buffer (its first `len` bytes, tag removed), which goes back to
/// the reader once handled.
#[derive(Debug)]
pub enum Msg {
    /// An input for the core.
    Input(Input),
    /// An authentic datagram from the peer.
    Datagram {
        /// The reader's receive buffer.
        buf: Vec<u8>,
        /// The datagram's length, its tag removed.
        len: usize,
    },
}

/// How to run a node.
#[derive(Clone)]
pub struct NodeOptions {
    /// Echo the event log and progress to stderr, and give up waiting for
    /// the slave after the config's `connect_timeout_ms` (master).
    pub headless: bool,
    /// Print a progress line or bar on stderr (headless only).
    pub progress: bool,
    /// How much of the log a headless node prints.
    pub verbosity: Verbosity,
    /// Called whenever something worth redrawing happened.
    pub waker: Arc<dyn Fn() + Send + Sync>,
    /// For the benchmark only (master): send the bootstrap as random
    /// values, which do not compress, instead of the workload's. The run
    /// cannot verify.
    pub random_bootstrap: bool,
    /// For the supervision tests only: make the named thread panic at its
    /// first check once the trigger has come (see [`PANIC_HOOK_VAR`]).
    pub inject_panic: Option<(String, PanicTrigger)>,
    /// The digits and command kinds: how this node runs their jobs (see
    /// [`crate::workload::kind::ByteWork`]); none for the vector kind.
    pub work: Option<Arc<crate::workload::kind::ByteWork>>,
}

/// The digits and command kinds: builds how this node runs their jobs
/// (the master lists its input, and with `--resume` finds what a killed
/// run finished) and makes the config's job count the master's pieces.
/// None for the vector kind; an error says in words what is wrong.
pub fn prepare_work(
    config: &mut Config,
    role: Role,
    options: &crate::workload::kind::MasterOptions,
) -> Result<Option<Arc<crate::workload::kind::ByteWork>>, String> {
    let Some(work) = crate::workload::kind::ByteWork::new(&config.workload, role, options)? else {
        return Ok(None);
    };
    if role == Role::Master {
        config.workload.jobs = work.jobs();
    }
    Ok(Some(Arc::new(work)))
}

impl NodeOptions {
    /// Options for a node driven by its caller (a window or the bench):
    /// no progress, no log on stderr, no waker, the vector kind.
    pub fn quiet() -> Self {
        NodeOptions {
            headless: false,
            progress: false,
            verbosity: Verbosity::Quiet,
            waker: Arc::new(|| {}),
            random_bootstrap: false,
            inject_panic: None,
            work: None,
        }
    }

    /// Options for a headless run.
    pub fn headless() -> Self {
        NodeOptions {
            headless: true,
            progress: true,
            verbosity: Verbosity::Normal,
            waker: Arc::new(|| {}),
            random_bootstrap: false,
            inject_panic: None,
            work: None,
        }
    }
}

/// When an injected panic fires (the supervision tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicTrigger {
    /// This long after the node started.
    After(Duration),
    /// Once the node has computed this many jobs: an event of the run, not
    /// a time that a slow or a fast machine may reach at another point.
    Jobs(u32),
}

/// Reads [`PANIC_HOOK_VAR`] (`THREAD-NAME@MILLISECONDS` or
/// `THREAD-NAME@jobs:N`), for the binary: the supervision tests set it on a
/// child process, never on their own.
pub fn panic_hook_from_env() -> Option<(String, PanicTrigger)> {
    let value = std::env::var(PANIC_HOOK_VAR).ok()?;
    let (thread, when) = value.rsplit_once('@')?;
    let trigger = match when.strip_prefix("jobs:") {
        Some(n) => PanicTrigger::Jobs(n.parse().ok()?),
        None => PanicTrigger::After(Duration::from_millis(when.parse().ok()?)),
    };
    Some((thread.to_owned(), trigger))
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A thread could not be spawned.
    #[error("cannot start thread {name}: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The core's inbox holds this many messages; a datagram that finds it
/// full is dropped and counted.
const INBOX_CAPACITY: usize = 4096;
/// Most messages handled before the event loop transmits.
const INBOX_BURST: usize = 256;
/// The event loop publishes a snapshot (and prints progress) at least this
/// often: 20 times a second, the window's plot points (`view::SAMPLE_INTERVAL_S`).
const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
/// ... and at most this often, however much happens (a snapshot copies the
/// transfers so far, and wakes the window).
const PUBLISH_MIN_INTERVAL: Duration = Duration::from_millis(20);

/// The environment variable of the test-only panic hook:
/// `THREAD-NAME@MILLISECONDS` makes that thread panic at its first check
/// after that long, `THREAD-NAME@jobs:N` at its first check once its node
/// has computed N jobs. For the supervision tests; never set in normal use.
pub const PANIC_HOOK_VAR: &str = "LOADBAL_TEST_PANIC";

/// The test-only panic hook of one thread ([`NodeOptions::inject_panic`]).
#[derive(Debug, Clone)]
struct PanicHook {
    /// When to panic: at this instant, or at this many jobs done.
    at: Option<Instant>,
    jobs: Option<(u32, Arc<AtomicU32>)>,
}

impl PanicHook {
    /// The hook of thread `name`; `done` counts the node's jobs computed.
    fn for_thread(
        name: &str,
        inject: Option<&(String, PanicTrigger)>,
        done: &Arc<AtomicU32>,
    ) -> PanicHook {
        let trigger = inject.filter(|(thread, _)| thread == name).map(|(_, t)| *t);
        PanicHook {
            at: match trigger {
                Some(PanicTrigger::After(after)) => Some(Instant::now() + after),
                _ => None,
            },
            jobs: match trigger {
                Some(PanicTrigger::Jobs(n)) => Some((n, done.clone())),
                _ => None,
            },
        }
    }

    fn check(&self) {
        let by_time = self.at.is_some_and(|at| Instant::now() >= at);
        let by_jobs = self
            .jobs
            .as_ref()
            .is_some_and(|(n, done)| done.load(Ordering::Relaxed) >= *n);
        if by_time || by_jobs {
            panic!("panic injected for a test ({PANIC_HOOK_VAR})");
        }
    }
}

/// Tells the core that its thread ended, and how, when dropped (also
/// during a panic's unwinding).
struct Guard {
    name: String,
    inbox: Sender<Msg>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.inbox.send(Msg::Input(Input::ThreadEnded {
            name: std::mem::take(&mut self.name),
            panicked: std::thread::panicking(),
        }));
    }
}

/// Spawns a named spoke whose end is reported to the core.
fn spawn_spoke(
    name: String,
    inbox: &Sender<Msg>,
    inject: Option<&(String, PanicTrigger)>,
    done: &Arc<AtomicU32>,
    f: impl FnOnce(PanicHook) + Send + 'static,
) -> Result<JoinHandle<()>, StartError> {
    let guard = Guard {
        name: name.clone(),
        inbox: inbox.clone(),
    };
    let hook = PanicHook::for_thread(&name, inject, done);
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _guard = guard;
            f(hook);
        })
        .map_err(|source| StartError::Spawn { name, source })
}

/// A running node.
pub struct NodeHandle {
    role: Role,
    inbox: Sender<Msg>,
    view: NodeView,
    event_loop: Option<JoinHandle<Outcome>>,
    spokes: Vec<JoinHandle<()>>,
}

impl NodeHandle {
    /// Sends a command to the node.
    pub fn command(&self, command: Command) {
        let input = match command {
            Command::Start => Input::Start {
                random: random_nonzero(),
            },
            Command::SetThrottle(t) => Input::SetThrottle(t),
            Command::Stop => Input::Stop,
            Command::AddJobs(n) => Input::AddJobs(n),
        };
        let _ = self.inbox.send(Msg::Input(input));
    }

    /// The node's log and figures, for viewers; they stay readable after
    /// the node has ended.
    pub fn view(&self) -> &NodeView {
        &self.view
    }

    /// True once the node's part is over and every one of its threads has
    /// ended, so [`wait`](Self::wait) returns at once (a window calls it
    /// from its UI thread).
    pub fn is_finished(&self) -> bool {
        self.event_loop.as_ref().is_none_or(JoinHandle::is_finished)
            && self.spokes.iter().all(JoinHandle::is_finished)
    }

    /// Waits for the node's part to end and for every one of its threads;
    /// the socket is closed when this returns.
    pub fn wait(mut self) -> Outcome {
        self.join()
    }

    fn join(&mut self) -> Outcome {
        let outcome = match self.event_loop.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Outcome::Failed {
                failure: Failure::Panicked {
                    name: format!("{}-core", self.role.name()),
                },
                report: None,
            },
            None => Outcome::Stopped,
        };
        for spoke in self.spokes.drain(..) {
            let _ = spoke.join();
        }
        outcome
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if self.event_loop.is_some() {
            self.command(Command::Stop);
            let _ = self.join();
        }
    }
}

/// A random nonzero number for a session id or a hello nonce. If the
/// system's generator fails, the clock and the process id stand in: these
/// only have to differ between runs, and authentication never rests on them.
fn random_nonzero() -> u64 {
    let n = getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ u64::from(std::process::id()) << 32
    });
    n.max(1)
}

/// Starts a node of `role`: binds its socket and spawns its threads. The
/// run begins on [`Command::Start`].
pub fn start(role: Role, config: &Config, options: NodeOptions) -> Result<NodeHandle, StartError> {
    let me = *config.node(role);
    let peer = *config.node(role.peer());
    let name = role.name();
    let inject = options.inject_panic.as_ref();
    // Jobs this node computed, for the panic hook's trigger.
    let done = Arc::new(AtomicU32::new(0));
    let (inbox_tx, inbox_rx) = crossbeam_channel::bounded(INBOX_CAPACITY);
    // The link emulator's thread is the transport's, but supervised like
    // every spoke: its guard tells the core's inbox when it ends.
    let link_hook = PanicHook::for_thread(&format!("{name}-link"), inject, &done);
    // (Only where there is such a thread: an emulated link that is not plain.)
    let link_guard = me.link.filter(|l| !l.is_plain()).map(|_| Guard {
        name: format!("{name}-link"),
        inbox: inbox_tx.clone(),
    });
    let transport = Arc::new(Transport::bind_supervised(
        me.address,
        peer.address,
        me.link,
        config.key.clone(),
        format!("{name}-link"),
        Box::new(move || link_hook.check()),
        Box::new(link_guard),
    )?);
    let datagram_bytes = config.datagram_bytes as usize;
    let now = Instant::now();
    let core = NodeCore::new(
        role,
        config,
        CoreSettings {
            window_chunks: transport.window_chunks(datagram_bytes),
            headless: options.headless,
            random_bootstrap: options.random_bootstrap,
            memory_bytes: crate::config::Machine::probe().memory_bytes,
            work: options.work.clone(),
        },
        now,
    );
    let addresses = (me.address, peer.address);
    // Only a headless node prints its log; a window shows it.
    let echo = if options.headless {
        options.verbosity
    } else {
        Verbosity::Quiet
    };
    let log = Arc::new(EventLog::new(role, echo));
    let view = NodeView::new(
        log,
        Snapshot::of(&core, addresses, Default::default(), 0, false),
    );

    // Dropped by the event loop when it ends: every spoke then stops.
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    // Receive buffers the event loop hands back to the reader: enough for
    // a full window in flight between the two.
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(256);
    let knob = Arc::new(Knob::new(me.throttle));

    let mut spokes = Vec::new();
    let mut work_txs = Vec::new();
    let spawned = (|| -> Result<(), StartError> {
        for i in 0..me.workers.max(1) {
            let (tx, rx) = crossbeam_channel::unbounded::<Work>();
            work_txs.push(tx);
            let (inbox, knob, stop) = (inbox_tx.clone(), knob.clone(), stop_rx.clone());
            spokes.push(spawn_spoke(
                format!("{name}-worker-{i}"),
                &inbox_tx,
                inject,
                &done,
                move |hook: PanicHook| {
                    worker::run(
                        &rx,
                        &knob,
                        &stop,
                        |job, started, preparing, computing| {
                            let done = Input::JobDone {
                                worker: i,
                                job,
                                started,
                                preparing,
                                computing,
                            };
                            inbox.send(Msg::Input(done)).is_ok()
                        },
                        || hook.check(),
                    );
                },
            )?);
        }
        let (inbox, stop) = (inbox_tx.clone(), stop_rx.clone());
        spokes.push(spawn_spoke(
            format!("{name}-hwmon"),
            &inbox_tx,
            inject,
            &done,
            move |hook: PanicHook| {
                monitor::run(
                    &stop,
                    name,
                    |system, process| {
                        let cpu = Input::Cpu { system, process };
                        inbox.send(Msg::Input(cpu)).is_ok()
                    },
                    || hook.check(),
                );
            },
        )?);
        let (inbox, stop, t) = (inbox_tx.clone(), stop_rx.clone(), transport.clone());
        spokes.push(spawn_spoke(
            format!("{name}-net-rx"),
            &inbox_tx,
            inject,
            &done,
            move |hook: PanicHook| {
                reader::run(&t, &inbox, &recycle_rx, &stop, datagram_bytes, || {
                    hook.check();
                });
            },
        )?);
        Ok(())
    })();
    if let Err(e) = spawned {
        drop(stop_tx);
        drop(work_txs);
        for s in spokes {
            let _ = s.join();
        }
        return Err(e);
    }

    let shell = Shell {
        core,
        transport,
        inbox: inbox_rx,
        recycle: recycle_tx,
        workers: work_txs,
        knob,
        _stop: stop_tx,
        view: view.clone(),
        addresses,
        waker: options.waker.clone(),
        progress: progress::Progress::new(options.headless && options.progress),
        hook: PanicHook::for_thread(&format!("{name}-core"), inject, &done),
        done,
        headless: options.headless,
    };
    let event_loop = std::thread::Builder::new()
        .name(format!("{name}-core"))
        .spawn(move || shell.run())
        .map_err(|source| StartError::Spawn {
            name: format!("{name}-core"),
            source,
        });
    let event_loop = match event_loop {
        Ok(join) => join,
        Err(e) => {
            // The shell (with the stop token) was dropped unrun: the spokes end.
            for s in spokes {
                let _ = s.join();
            }
            return Err(e);
        }
    };
    Ok(NodeHandle {
        role,
        inbox: inbox_tx,
        view,
        event_loop: Some(event_loop),
        spokes,
    })
}

/// The event loop's state: the core and what it drives.
struct Shell {
    core: NodeCore,
    transport: Arc<Transport>,
    inbox: Receiver<Msg>,
    recycle: Sender<Vec<u8>>,
    workers: Vec<Sender<Work>>,
    knob: Arc<Knob>,
    /// Never sent on: dropping it tells every spoke to stop.
    _stop: Sender<()>,
    view: NodeView,
    addresses: (SocketAddr, SocketAddr),
    waker: Arc<dyn Fn() + Send + Sync>,
    progress: progress::Progress,
    hook: PanicHook,
    /// Jobs this node computed, published for the panic hooks.
    done: Arc<AtomicU32>,
    headless: bool,
}

impl Shell {
    /// Runs the core until the node's part is over; returns the outcome.
    fn run(mut self) -> Outcome {
        let mut buf = Vec::with_capacity(self.core.config().datagram_bytes as usize);
        let mut last_publish = Instant::now();
        let mut dirty = false;
        loop {
            let now = Instant::now();
            let next = self
                .core
                .poll_timeout()
                .unwrap_or(now + PUBLISH_INTERVAL)
                .min(now + PUBLISH_INTERVAL);
            match self.inbox.recv_deadline(next) {
                Ok(msg) => {
                    self.handle(msg);
                    for _ in 0..INBOX_BURST {
                        match self.inbox.try_recv() {
                            Ok(msg) => self.handle(msg),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while the handle lives (it holds a sender);
                // after that nobody is left to tell.
                Err(RecvTimeoutError::Disconnected) => {
                    let now = Instant::now();
                    self.core.handle(now, Input::Stop);
                }
            }
            self.done.store(self.core.jobs_done(), Ordering::Relaxed);
            self.hook.check();
            let now = Instant::now();
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
            dirty |= self.drain(now, &mut buf);
            let ended = self.core.end().is_some();
            let since = now.duration_since(last_publish);
            if ended || (dirty && since >= PUBLISH_MIN_INTERVAL) || since >= PUBLISH_INTERVAL {
                last_publish = now;
                dirty = false;
                self.publish();
            }
            if ended {
                break;
            }
        }
        self.progress.finish();
        self.transport.close_receiving();
        self.outcome()
    }

    fn handle(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Input(input) => self.core.handle(now, input),
            Msg::Datagram { buf, len } => {
                self.core.handle_datagram(now, &buf[..len.min(buf.len())]);
                // Back to the reader; a full pool just frees it.
                let _ = self.recycle.try_send(buf);
            }
        }
    }

    /// Carries out what the core asks: datagrams sent, jobs handed to
    /// workers, events logged. True if anything happened.
    fn drain(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        let mut changed = false;
        while self.core.poll_transmit(now, buf) {
            self.transport.send(buf);
        }
        while let Some(work) = self.core.poll_work() {
            // A worker that is gone has told the core through its guard.
            let _ = self.workers[work.worker].send(work);
            changed = true;
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Log { at, text, detail } => {
                    self.view.log.push(LogEntry { at, text, detail });
                }
                Event::Throttle(t) => self.knob.set(t),
                Event::Phase(_) => {}
            }
            changed = true;
        }
        changed
    }

    fn publish(&mut self) {
        let stats = &self.transport.stats;
        let snapshot = Snapshot::of(
            &self.core,
            self.addresses,
            stats.rejected_by_reason(),
            stats
                .link_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            // Only a window has a jobs table to fill.
            !self.headless,
        );
        let now = Instant::now();
        self.progress.tick(&snapshot, now);
        // Only a window plots the samples.
        let sample_at = (!self.headless).then_some(now);
        self.view.publish(snapshot, self.core.timeline(), sample_at);
        (self.waker)();
    }

    fn outcome(&self) -> Outcome {
        match self.core.end() {
            Some(End::Finished { verified }) => Outcome::Finished {
                verified: *verified,
                report: self.core.verification().map(|v| {
                    Box::new(Report::build(&self.core, &self.transport.stats.counts(), v))
                }),
            },
            Some(End::Failed(failure)) => Outcome::Failed {
                failure: failure.clone(),
                report: Report::build_failed(&self.core, &self.transport.stats.counts(), failure)
                    .map(Box::new),
            },
            Some(End::Stopped) | None => Outcome::Stopped,
        }
    }
}
