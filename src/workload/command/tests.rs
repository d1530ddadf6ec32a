//! A job's program run for real: its output, its exit, its limits, the
//! throttle's pauses and a node that stops. Programs from any Debian
//! system (`cat`, `sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::*;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

const FREE: Limits = Limits {
    timeout: None,
    max_output: 1 << 30,
};

fn run_at(words: &[&str], input: &[u8], limits: Limits, throttle: f64) -> Ran {
    run(&argv(words), input.to_vec(), limits, &|| throttle, &|| {
        false
    })
}

/// True while a process of group `pgid` lives (one killed but not yet
/// reaped by whoever inherited it is a zombie: not living).
fn group_lives(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // After the name's closing parenthesis: state, ppid, pgrp.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z"
    })
}

#[test]
fn a_program_gets_the_input_on_stdin_and_its_stdout_is_the_output() {
    // More than a pipe holds both ways: the feeder and the reader go on
    // together, so `cat` never blocks.
    let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let ran = run_at(&["cat"], &input, FREE, 1.0);
    assert_eq!(ran.exit, Exit::Code(0));
    assert!(ran.exit.succeeded());
    assert_eq!(ran.output, input);
    assert!(ran.stderr_tail.is_empty());
    // A program that reads nothing is no error either.
    let ran = run_at(&["sh", "-c", "echo done"], &input, FREE, 1.0);
    assert_eq!((ran.exit, ran.output), (Exit::Code(0), b"done\n".to_vec()));
}

#[test]
fn a_failing_program_gives_its_status_or_signal_and_its_stderr_tail() {
    let ran = run_at(
        &[
            "sh",
            "-c",
            "echo first >&2; echo 'no such column' >&2; exit 3",
        ],
        b"",
        FREE,
        1.0,
    );
    assert_eq!(ran.exit, Exit::Code(3));
    assert!(!ran.exit.succeeded());
    assert_eq!(ran.stderr_tail, b"first\nno such column\n");
    let ran = run_at(&["sh", "-c", "kill -TERM $$"], b"", FREE, 1.0);
    assert_eq!(ran.exit, Exit::Signal(libc::SIGTERM));
    // Only the tail of a long stderr is kept.
    let ran = run_at(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 1000 ]; do echo line $i >&2; i=$((i+1)); done",
        ],
        b"",
        FREE,
        1.0,
    );
    assert_eq!(ran.stderr_tail.len(), STDERR_TAIL_BYTES);
    assert!(ran.stderr_tail.ends_with(b"line 999\n"));
    let ran = run_at(&["no-such-program-of-loadbal"], b"", FREE, 1.0);
    let Exit::CannotStart(why) = &ran.exit else {
        panic!("{ran:?}");
    };
    assert!(why.starts_with("no-such-program-of-loadbal: "), "{why}");
    assert_eq!(
        run_at(&[], b"", FREE, 1.0).exit,
        Exit::CannotStart("the command is empty".to_owned())
    );
}

#[test]
fn a_program_past_its_limits_is_killed_with_its_whole_group() {
    // The group's own sleep too, not only the shell.
    let limits = Limits {
        timeout: Some(Duration::from_millis(300)),
        max_output: 1 << 20,
    };
    let path = pid_file("timed-out");
    let script = format!("echo $$ > {}; sleep 300 & sleep 300", path.display());
    let ran = run_at(&["sh", "-c", &script], b"", limits, 1.0);
    assert_eq!(ran.exit, Exit::TimedOut);
    assert!(
        ran.running >= Duration::from_millis(300),
        "{:?}",
        ran.running
    );
    let pid = pid_in(&path);
    wait_until("the group is gone", || !group_lives(pid));
    let limits = Limits {
        timeout: None,
        max_output: 100_000,
    };
    let ran = run_at(&["sh", "-c", "yes"], b"", limits, 1.0);
    assert_eq!(ran.exit, Exit::OutputTooLarge);
    assert!(ran.output.len() <= 100_000);
    // Review of issue 21: a program that wrote too much and exited at once
    // came back as a success (its exit seen before the reader's word), its
    // output cut. However the race goes, it is too large.
    let limits = Limits {
        timeout: None,
        max_output: 10,
    };
    for _ in 0..30 {
        let ran = run_at(&["head", "-c", "1000", "/dev/zero"], b"", limits, 1.0);
        assert_eq!(ran.exit, Exit::OutputTooLarge);
    }
    // Exactly the limit is not too much.
    let ran = run_at(&["head", "-c", "10", "/dev/zero"], b"", limits, 1.0);
    assert_eq!((ran.exit, ran.output.len()), (Exit::Code(0), 10));
}

// Review of issue 21: a process started outside the program's group (with
// setsid) that kept its stdout open held the run until it ended. The run
// now gives up on the pipe after a grace period, and the job fails.
#[test]
fn a_process_outside_the_group_holding_stdout_does_not_hold_the_run() {
    let path = pid_file("escaped");
    // The program waits until the other process has left its group, and
    // ends.
    let script = format!(
        "setsid sh -c 'echo $$ > {0}; exec sleep 30' & while [ ! -s {0} ]; do sleep 0.01; done; echo hi",
        path.display()
    );
    let ran = run_at(&["sh", "-c", &script], b"", FREE, 1.0);
    assert_eq!(ran.exit, Exit::PipeHeldOpen);
    let escaped = pid_in(&path);
    // Not a time limit on the machine: the escaped process lives 30 s.
    assert!(ran.wall < Duration::from_secs(20), "{:?}", ran.wall);
    // SAFETY: kills the test's own escaped process, by its group.
    unsafe {
        libc::kill(-escaped, libc::SIGKILL);
    }
}

/// A fresh path for a program to write its pid to.
fn pid_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loadbal-command-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Waits (a minute at most) until `check` holds, looking every 10 ms.
fn wait_until(what: &str, check: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid a program wrote to `path`, once it has.
fn pid_in(path: &std::path::Path) -> i32 {
    wait_until("the program wrote its pid", || {
        std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n'))
    });
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The state letter of process `pid` in /proc ('T' stopped, 'R' running,
/// 'S' sleeping...).
fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name's closing parenthesis.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

/// A program under the test's control: run on a thread with a throttle
/// and a stop the test holds, after it has written its pid. Returns the
/// runner, the throttle, the stop and the pid.
fn controlled(
    name: &str,
    body: &str,
) -> (
    std::thread::JoinHandle<Ran>,
    Arc<AtomicU64>,
    Arc<AtomicBool>,
    i32,
) {
    let throttle = Arc::new(AtomicU64::new(1f64.to_bits()));
    let stop = Arc::new(AtomicBool::new(false));
    let path = pid_file(name);
    let script = format!("echo $$ > {}; {body}", path.display());
    let (t, s) = (Arc::clone(&throttle), Arc::clone(&stop));
    let runner = std::thread::spawn(move || {
        run(
            &argv(&["sh", "-c", &script]),
            Vec::new(),
            FREE,
            &|| f64::from_bits(t.load(Ordering::Relaxed)),
            &|| s.load(Ordering::Relaxed),
        )
    });
    let pid = pid_in(&path);
    (runner, throttle, stop, pid)
}

#[test]
fn the_throttle_stops_the_program_and_lets_it_go_on_and_a_stop_kills_it() {
    // A CPU-bound loop that never ends by itself.
    let (runner, throttle, stop, pid) = controlled("throttled", "while :; do :; done");
    // Paused: the program is stopped, and stays so.
    throttle.store(0f64.to_bits(), Ordering::Relaxed);
    wait_until("stopped at throttle 0", || state(pid) == 'T');
    // Raised: it runs again (running, or between two of its steps).
    throttle.store(1f64.to_bits(), Ordering::Relaxed);
    wait_until("running at throttle 1", || {
        matches!(state(pid), 'R' | 'S' | 'D')
    });
    // The node stops: killed, its group gone.
    stop.store(true, Ordering::Relaxed);
    let ran = runner.join().unwrap();
    assert_eq!(ran.exit, Exit::Stopped);
    assert!(!group_lives(pid));
    assert!(ran.running <= ran.wall, "{ran:?}");
}

#[test]
fn a_program_killed_while_paused_is_gone_too() {
    let (runner, throttle, stop, pid) = controlled("paused", "exec sleep 300");
    throttle.store(0f64.to_bits(), Ordering::Relaxed);
    wait_until("stopped at throttle 0", || state(pid) == 'T');
    stop.store(true, Ordering::Relaxed);
    let ran = runner.join().unwrap();
    assert_eq!(ran.exit, Exit::Stopped);
    assert!(!group_lives(pid));
}
