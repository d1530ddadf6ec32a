//! Best-effort output to the terminal. A closed pipe (`loadbal ... | head`),
//! a full disk or `2>/dev/full` must never stop a run: `eprintln!` panics on
//! such a stderr, these functions never do. Nor must a stderr that nobody
//! reads: a parent that stopped reading a piped stderr fills the pipe, and
//! a write to it blocks. So lines for stderr go through a bounded queue to
//! one writer thread, the only one that ever waits on stderr; a caller (a
//! node's core among them) never does. When the queue is full a line is
//! dropped and counted ([`dropped`]). Once the run is over, and for
//! commands that run no node ([`keep_every_line`]), every line is queued,
//! however many wait (the few lines of a result): none is dropped, and
//! still nobody waits, so the report file is written whether or not
//! stderr is read. [`flush`], at the process's end, waits until all are
//! written.
//! The first failed write silences stderr for the rest of the process;
//! every line is one `write` call, so lines never interleave.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::Sender;

/// Set once a write to stderr has failed: nothing more is tried.
static STDERR_GONE: AtomicBool = AtomicBool::new(false);
/// Lines dropped because the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Set by [`keep_every_line`]: no line is dropped any more.
static KEEP_EVERY_LINE: AtomicBool = AtomicBool::new(false);
/// Lines queued and not yet written.
static QUEUED: AtomicUsize = AtomicUsize::new(0);
/// The writer's queue; `None` if its thread could not be started (then
/// lines are written directly).
static WRITER: OnceLock<Option<Sender<Item>>> = OnceLock::new();

/// Lines the queue holds during a run: a few seconds of the most verbose
/// output.
pub const QUEUE_LINES: usize = 1024;

/// What the writer thread is given.
enum Item {
    /// Text to write as it is.
    Text(String),
    /// Everything before has been written: say so on this channel.
    Flushed(Sender<()>),
}

/// Writes `text` to stderr now, on the calling thread.
fn write_now(text: &str) {
    if STDERR_GONE.load(Ordering::Relaxed) {
        return;
    }
    // Stderr is unbuffered: one `write_all` is one write unless the kernel
    // takes part of it, which a pipe or a file does not for a short line.
    if std::io::stderr().lock().write_all(text.as_bytes()).is_err() {
        STDERR_GONE.store(true, Ordering::Relaxed);
    }
}

/// The writer's queue, its thread started on first use.
fn writer() -> Option<&'static Sender<Item>> {
    WRITER
        .get_or_init(|| {
            // Unbounded as a channel; bounded by QUEUED while a run goes.
            let (tx, rx) = crossbeam_channel::unbounded::<Item>();
            // Not a node's spoke: it outlives every node, serves them all,
            // and its only failure (stderr gone) is already handled here.
            std::thread::Builder::new()
                .name("stderr-writer".to_owned())
                .spawn(move || {
                    for item in rx {
                        match item {
                            Item::Text(text) => {
                                write_now(&text);
                                QUEUED.fetch_sub(1, Ordering::Relaxed);
                            }
                            Item::Flushed(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Writes `text` to stderr as it is (no newline added): queued, never
/// waited on; while a run goes, dropped and counted if [`QUEUE_LINES`]
/// already wait.
pub fn err(text: &str) {
    if STDERR_GONE.load(Ordering::Relaxed) {
        return;
    }
    let Some(tx) = writer() else {
        write_now(text);
        return;
    };
    if !KEEP_EVERY_LINE.load(Ordering::Relaxed) && QUEUED.load(Ordering::Relaxed) >= QUEUE_LINES {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    QUEUED.fetch_add(1, Ordering::Relaxed);
    if tx.send(Item::Text(text.to_owned())).is_err() {
        QUEUED.fetch_sub(1, Ordering::Relaxed);
        write_now(text);
    }
}

/// Writes `line` and a newline to stderr, as [`err`].
pub fn err_line(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    err(&text);
}

/// Lines dropped so far because stderr was not read fast enough.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// From now on no line is dropped, however many wait to be written: for
/// when the run is over (the result must come out), and for commands that
/// run no node. The count of lines dropped before is said, once.
pub fn keep_every_line() {
    if KEEP_EVERY_LINE.swap(true, Ordering::Relaxed) {
        return;
    }
    let n = dropped();
    if n > 0 {
        err_line(&format!(
            "loadbal: {n} lines of output were dropped: stderr was not read as fast as the run \
             wrote it"
        ));
    }
}

/// How long the process's end waits for a stderr nobody reads.
pub const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until every queued line is written (or stderr has failed), for
/// the end of the process; at most [`FLUSH_LIMIT`], so a parent that never
/// reads stderr and waits for the exit does not wait for ever (it then
/// misses the lines that did not fit in the pipe).
pub fn flush() {
    let Some(tx) = WRITER.get().and_then(Option::as_ref) else {
        return;
    };
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    if tx.send(Item::Flushed(done_tx)).is_ok() {
        let _ = done_rx.recv_timeout(FLUSH_LIMIT);
    }
}

/// True once stderr has failed (and is no longer written).
pub fn stderr_gone() -> bool {
    STDERR_GONE.load(Ordering::Relaxed)
}

/// Writes `text` to stdout and flushes it; the error is the caller's to
/// judge (the report on stdout matters, a progress line does not).
pub fn out(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// `eprintln!` that never panics and never waits: formats, then [`err_line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::term::err_line(&format!($($arg)*))
    };
}
