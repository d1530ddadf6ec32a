//! `--joblog PATH` (issue 21): one line per attempt at a job, in GNU
//! parallel's joblog format, so the tools that read parallel's logs read
//! loadbal's: a header, then tab-separated Seq, Host, Starttime (Unix
//! seconds, three decimals), JobRuntime (seconds, three decimals, right
//! aligned in ten columns as parallel writes it), Send and Receive (bytes
//! of input and output), Exitval, Signal and Command. Host is the node that
//! ran the attempt (`master` or `slave`). Reading one back gives the jobs a
//! resumed run need not run again.

use super::command::Exit;

/// The joblog's first line.
pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// One attempt at a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The job's number, from 1 (its id + 1), as parallel counts.
    pub seq: u64,
    /// The node that ran it.
    pub host: String,
    /// When it started, Unix seconds.
    pub start_unix_s: f64,
    /// How long it took, seconds.
    pub runtime_s: f64,
    /// Bytes of input it was given.
    pub sent: u64,
    /// Bytes of output it gave.
    pub received: u64,
    /// Its exit status (0 when a signal ended it; -1 when killed by us).
    pub exitval: i32,
    /// The signal that ended it (0: none).
    pub signal: i32,
    /// The command, as a shell would show it.
    pub command: String,
}

/// Exitval and Signal for how a job's program ended, as GNU parallel
/// writes them (checked against parallel 20221122's own joblog): a status
/// is the status; a signal has exit value 0 and the signal; a kill of ours
/// (time-out, output too large, the node stopping) has exit value -1, as
/// parallel's time-out has, and signal 9, the SIGKILL we send (parallel
/// sends TERM first and writes 15); a program that could not be started
/// has 127, as a shell says for a command not found.
pub fn exit_columns(exit: &Exit) -> (i32, i32) {
    match exit {
        Exit::Code(code) => (*code, 0),
        Exit::Signal(signal) => (0, *signal),
        Exit::TimedOut | Exit::OutputTooLarge | Exit::Stopped => (-1, libc::SIGKILL),
        Exit::CannotStart(_) => (127, 0),
        // It ended, its output unknown: no status to give.
        Exit::PipeHeldOpen => (-1, 0),
    }
}

/// `argv` as a shell would show it: each word that holds anything but
/// letters, digits and `-_./=:,+@%` in single quotes.
pub fn shell_words(argv: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    argv.iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(plain) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The attempt's line (ending in a newline). A command's tabs and
/// newlines become spaces, so that a reader splitting at tabs finds nine
/// columns (parallel writes them as they are).
pub fn line(a: &Attempt) -> String {
    let command: String = a
        .command
        .chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\r' {
                ' '
            } else {
                c
            }
        })
        .collect();
    format!(
        "{}\t{}\t{:.3}\t{:10.3}\t{}\t{}\t{}\t{}\t{}\n",
        a.seq,
        a.host,
        a.start_unix_s,
        a.runtime_s,
        a.sent,
        a.received,
        a.exitval,
        a.signal,
        command
    )
}

/// The jobs a joblog shows done (an attempt with exit value 0 and no
/// signal), by Seq, in order: what a resumed run skips. Failed attempts
/// run again, as with parallel's `--resume-failed` (its `--resume` skips
/// them too). Lines that are not whole attempts (the header, a last line
/// cut short by a kill: no newline) are passed over.
pub fn done_seqs(text: &str) -> Vec<u64> {
    let mut done: Vec<u64> = text
        .split_inclusive('\n')
        .filter_map(|line| {
            let line = line.strip_suffix('\n')?;
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 9 {
                return None;
            }
            let seq = f[0].trim().parse::<u64>().ok()?;
            let ok = f[6].trim() == "0" && f[7].trim() == "0";
            ok.then_some(seq)
        })
        .collect();
    done.sort_unstable();
    done.dedup();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(seq: u64, exit: &Exit) -> Attempt {
        let (exitval, signal) = exit_columns(exit);
        Attempt {
            seq,
            host: "slave".to_owned(),
            start_unix_s: 1_765_000_000.123_4,
            runtime_s: 0.5,
            sent: 1_048_576,
            received: 312_000,
            exitval,
            signal,
            command: shell_words(&["gzip".to_owned(), "-c".to_owned()]),
        }
    }

    #[test]
    fn an_attempt_is_one_line_in_parallels_columns() {
        assert_eq!(
            line(&attempt(3, &Exit::Code(0))),
            "3\tslave\t1765000000.123\t     0.500\t1048576\t312000\t0\t0\tgzip -c\n"
        );
        assert_eq!(HEADER.split('\t').count(), 9);
        let mut a = attempt(4, &Exit::Signal(libc::SIGSEGV));
        a.command = "sh -c 'a\tb\nc'".to_owned();
        assert_eq!(
            line(&a),
            "4\tslave\t1765000000.123\t     0.500\t1048576\t312000\t0\t11\tsh -c 'a b c'\n"
        );
    }

    #[test]
    fn exits_map_to_parallels_exitval_and_signal() {
        assert_eq!(exit_columns(&Exit::Code(3)), (3, 0));
        assert_eq!(exit_columns(&Exit::TimedOut), (-1, libc::SIGKILL));
        assert_eq!(exit_columns(&Exit::CannotStart("x".into())), (127, 0));
    }

    #[test]
    fn words_are_quoted_only_where_a_shell_needs_it() {
        let words =
            |w: &[&str]| shell_words(&w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(words(&["gzip", "-c"]), "gzip -c");
        assert_eq!(words(&["sh", "-c", "wc -l"]), "sh -c 'wc -l'");
        assert_eq!(words(&["echo", "it's", ""]), r"echo 'it'\''s' ''");
    }

    #[test]
    fn a_resumed_run_skips_the_jobs_done_and_only_those() {
        let mut log = String::from(HEADER);
        log.push_str(&line(&attempt(1, &Exit::Code(0))));
        log.push_str(&line(&attempt(2, &Exit::Code(1))));
        log.push_str(&line(&attempt(3, &Exit::TimedOut)));
        log.push_str(&line(&attempt(2, &Exit::Code(0))));
        log.push_str(&line(&attempt(5, &Exit::Code(0))));
        // The last line, cut short when the master was killed (even in
        // its last column).
        log.push_str(&line(&attempt(6, &Exit::Code(0))).replace("-c\n", ""));
        assert_eq!(done_seqs(&log), [1, 2, 5]);
    }
}
