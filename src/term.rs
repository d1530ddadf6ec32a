//! Best-effort output to the terminal. A closed pipe (`loadbal ... | head`),
//! a full disk or `2>/dev/full` must never stop a run: `eprintln!` panics on
//! such a stderr, these functions never do. The first failed write to
//! stderr silences it for the rest of the process; every line is one
//! `write` call, so lines from several threads never interleave.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stderr has failed: nothing more is tried.
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stderr as it is (no newline added), ignoring failure.
pub fn err(text: &str) {
    if STDERR_GONE.load(Ordering::Relaxed) {
        return;
    }
    // Stderr is unbuffered: one `write_all` is one write unless the kernel
    // takes part of it, which a pipe or a file does not for a short line.
    if std::io::stderr().lock().write_all(text.as_bytes()).is_err() {
        STDERR_GONE.store(true, Ordering::Relaxed);
    }
}

/// Writes `line` and a newline to stderr, ignoring failure.
pub fn err_line(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    err(&text);
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

/// `eprintln!` that never panics: formats, then [`err_line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::term::err_line(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn writing_never_panics() {
        // Whatever the test harness did with stderr, these return.
        super::err_line("term: a line");
        super::err("");
        crate::say!("term: {}", 1);
    }
}
