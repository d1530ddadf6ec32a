//! The digits and command kinds at run time: what a node needs to run
//! their jobs, and (on the master) to read their input, keep their output
//! and log their attempts. The core holds one [`ByteWork`] and calls it;
//! the vector kind has none.
//!
//! The master lists its input once, before the run: a file's pieces (byte
//! ranges) or a directory's files. Job `id` of the run is piece
//! `todo[id]`: a resumed run numbers only the pieces not done yet, so the
//! core, the wire and the slave see a run like any other, and never a path.
//! Part files, joblog lines and outputs are named by piece.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::command::{self, Exit};
use super::output::Spool;
use super::split::{self, Split};
use super::{JobId, Outcome, digits, joblog};
use crate::config::{Kind, WorkloadConfig, limits};
use crate::ids::Role;

/// The most output one job may give, bytes.
pub const MAX_OUTPUT_BYTES: usize = limits::MAX_PIECE_BYTES as usize;

/// The workload spec's fields that both nodes must share, in the order the
/// hello carries their digests.
pub const SPEC_FIELDS: [&str; 8] = [
    "workload.kind",
    "workload.command",
    "workload.input",
    "workload.split",
    "workload.align",
    "workload.output",
    "workload.timeout_s",
    "workload.retries",
];

/// Each spec field's digest (the first 8 bytes of its BLAKE3), as the
/// hello carries them. Two nodes whose digests differ run different work.
pub type SpecDigest = [[u8; 8]; 8];

/// The digests of `w`'s spec fields (the vector kind: all zero). The
/// digits kind's chunk size counts as its split.
pub fn spec_digest(w: &WorkloadConfig) -> SpecDigest {
    let mut out = [[0u8; 8]; 8];
    if w.kind.is_vector() {
        return out;
    }
    let split = match (w.kind, &w.split) {
        (Kind::Digits, _) => format!(
            "chunk_bytes {}",
            w.chunk_bytes.unwrap_or(digits::DEFAULT_CHUNK_BYTES)
        ),
        (_, s) => format!("{s:?}"),
    };
    let values = [
        w.kind.name().to_owned(),
        format!("{:?}", w.command),
        format!("{:?}", w.input),
        split,
        format!("{:?}", w.align.as_deref().unwrap_or("none")),
        format!("{:?}", w.output),
        format!("{:?}", w.timeout_s),
        format!("{}", retries_of(w)),
    ];
    for (slot, value) in out.iter_mut().zip(values) {
        slot.copy_from_slice(&blake3::hash(value.as_bytes()).as_bytes()[..8]);
    }
    out
}

fn retries_of(w: &WorkloadConfig) -> u32 {
    w.retries.unwrap_or(1)
}

/// What the master was asked for on its command line.
#[derive(Debug, Clone, Default)]
pub struct MasterOptions {
    /// Keep the jobs a killed run finished; run only the others.
    pub resume: bool,
    /// Write a GNU parallel joblog here.
    pub joblog: Option<PathBuf>,
}

/// How the master's input is cut.
#[derive(Debug)]
enum Pieces {
    /// A file's byte ranges.
    Ranges(Vec<Range<u64>>),
    /// A directory's files.
    Files(Vec<OsString>),
}

impl Pieces {
    fn len(&self) -> usize {
        match self {
            Pieces::Ranges(r) => r.len(),
            Pieces::Files(f) => f.len(),
        }
    }
}

/// The master's side: its input, its output and its joblog.
#[derive(Debug)]
struct Master {
    input: PathBuf,
    /// The bytes of every piece together.
    input_bytes: u64,
    pieces: Pieces,
    /// Job id to piece index.
    todo: Vec<u32>,
    output: Option<PathBuf>,
    spool: Mutex<Option<Spool>>,
    /// Digits: each job's sum, by job id.
    sums: Mutex<Vec<Option<u64>>>,
    joblog: Mutex<Option<std::fs::File>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct ByteWork {
    kind: Kind,
    argv: Vec<String>,
    limits: command::Limits,
    retries: u32,
    /// The share of the slave's jobs the master runs again and compares.
    verify_sample: f64,
    /// `memory_mb`, bytes.
    memory_budget: Option<u64>,
    master: Option<Master>,
}

/// One job's attempts as the master saw them, for the window's jobs table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PieceRow {
    /// Attempts made (both nodes').
    pub attempts: u16,
    /// The last attempt's exit value and signal (the joblog's columns).
    pub exitval: i32,
    /// See `exitval`.
    pub signal: i32,
    /// The last attempt failed.
    pub failed: bool,
    /// Given up: failed `retries + 1` times.
    pub given_up: bool,
    /// The last attempt's wall time, seconds.
    pub runtime_s: f32,
    /// The last attempt's output, bytes.
    pub output_bytes: u64,
}

/// What the master's last step gives the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// Everything checked out (every job present, digits' total equal to
    /// the straight pass).
    pub verified: bool,
    /// Digits: the sum of the jobs' sums, and the straight pass's.
    pub digits_total: Option<(u64, u64)>,
    /// Command: bytes of output written.
    pub output_bytes: u64,
    /// What happened, for the log.
    pub text: String,
}

impl ByteWork {
    /// The run-time side of `w` for a node of `role`: none for the vector
    /// kind. The master lists its input (and, with `resume`, finds the
    /// parts a killed run left); an error says what is wrong in words.
    pub fn new(
        w: &WorkloadConfig,
        role: Role,
        options: &MasterOptions,
    ) -> Result<Option<ByteWork>, String> {
        if w.kind.is_vector() {
            if options.resume {
                return Err(
                    "--resume applies to a command workload (workload.kind \"command\")".to_owned(),
                );
            }
            return Ok(None);
        }
        if options.resume && w.kind != Kind::Command {
            return Err(
                "--resume applies to a command workload (workload.kind \"command\")".to_owned(),
            );
        }
        let mut work = ByteWork {
            kind: w.kind,
            argv: w.command.clone().unwrap_or_default(),
            limits: command::Limits {
                timeout: w.timeout_s.map(Duration::from_secs_f64),
                max_output: MAX_OUTPUT_BYTES,
            },
            retries: retries_of(w),
            verify_sample: w.verify_sample.unwrap_or(0.0),
            memory_budget: w.memory_mb.map(|m| m << 20),
            master: None,
        };
        if role == Role::Master {
            work.master = Some(Master::open(w, options)?);
        }
        Ok(Some(work))
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Retries a failed job gets.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The most input bytes lent to the slave at once: `memory_mb`, or an
    /// eighth of `machine_bytes` (the master's memory; 0: unknown, 1 GiB)
    /// kept within 64 MiB and 2 GiB.
    pub fn memory_budget(&self, machine_bytes: u64) -> u64 {
        self.memory_budget.unwrap_or(if machine_bytes == 0 {
            1 << 30
        } else {
            (machine_bytes / 8).clamp(64 << 20, 2 << 30)
        })
    }

    /// Whether the master runs job `id` again when the slave has done it,
    /// and compares the outputs (`verify_sample`): the same jobs for the
    /// same run, about that share of them.
    pub fn sampled(&self, id: JobId) -> bool {
        if self.verify_sample <= 0.0 {
            return false;
        }
        let h = blake3::hash(&u64::from(self.piece_of(id)).to_le_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.as_bytes()[..8]);
        (u64::from_le_bytes(first) as f64) < self.verify_sample * 2f64.powi(64)
    }

    /// The command as a shell would show it (the joblog's last column).
    pub fn command_line(&self) -> String {
        match self.kind {
            Kind::Command => joblog::shell_words(&self.argv),
            _ => "digit sum".to_owned(),
        }
    }

    /// Master: the mean bytes of a piece (what batch sizes are reckoned
    /// by); None on a slave, which has no input.
    pub fn mean_piece_bytes(&self) -> Option<u64> {
        let m = self.master.as_ref()?;
        let n = m.pieces.len().max(1) as u64;
        Some((m.input_bytes / n).max(1))
    }

    /// Master: the run's jobs (the pieces still to do).
    pub fn jobs(&self) -> u32 {
        self.master.as_ref().map_or(0, |m| m.todo.len() as u32)
    }

    /// Master: pieces in the input, and of them those a resumed run found
    /// done.
    pub fn pieces(&self) -> (u32, u32) {
        self.master.as_ref().map_or((0, 0), |m| {
            let all = m.pieces.len() as u32;
            (all, all - m.todo.len() as u32)
        })
    }

    /// Master: the input and output, for the window and the log.
    pub fn describe(&self) -> String {
        let program = match self.kind {
            Kind::Command => format!("`{}`", joblog::shell_words(&self.argv)),
            _ => "the digit sum".to_owned(),
        };
        match &self.master {
            None => format!("{} {program}", self.kind.name()),
            Some(m) => {
                let output = m
                    .output
                    .as_ref()
                    .map(|o| format!(" -> {}", o.display()))
                    .unwrap_or_default();
                format!(
                    "{} {program} over {} ({} pieces){output}",
                    self.kind.name(),
                    m.input.display(),
                    m.pieces.len()
                )
            }
        }
    }

    /// Master: the piece job `id` runs (its number in the input, from 0).
    pub fn piece_of(&self, id: JobId) -> u32 {
        self.master
            .as_ref()
            .and_then(|m| m.todo.get(id as usize).copied())
            .unwrap_or(id)
    }

    /// Master: what job `id`'s input is, in words (a byte range or a file).
    pub fn piece_name(&self, id: JobId) -> String {
        let Some(m) = &self.master else {
            return format!("job {id}");
        };
        let Some(&piece) = m.todo.get(id as usize) else {
            return format!("job {id}");
        };
        match &m.pieces {
            Pieces::Ranges(r) => {
                let r = &r[piece as usize];
                format!("bytes {}..{}", r.start, r.end)
            }
            Pieces::Files(f) => f[piece as usize].to_string_lossy().into_owned(),
        }
    }

    /// Master: reads job `id`'s input.
    pub fn read(&self, id: JobId) -> std::io::Result<Vec<u8>> {
        let m = self.master.as_ref().ok_or_else(not_master)?;
        let piece = *m
            .todo
            .get(id as usize)
            .ok_or_else(|| std::io::Error::other(format!("job {id} is not in this run")))?;
        match &m.pieces {
            Pieces::Ranges(ranges) => {
                let r = ranges[piece as usize].clone();
                let mut file = std::fs::File::open(&m.input)?;
                file.seek(SeekFrom::Start(r.start))?;
                let mut bytes = vec![0u8; (r.end - r.start) as usize];
                file.read_exact(&mut bytes).map_err(|e| {
                    std::io::Error::other(format!(
                        "{}: bytes {}..{}: {e} (did the file change during the run?)",
                        m.input.display(),
                        r.start,
                        r.end
                    ))
                })?;
                Ok(bytes)
            }
            Pieces::Files(names) => {
                let path = m.input.join(&names[piece as usize]);
                let len = std::fs::metadata(&path)?.len();
                if len > limits::MAX_PIECE_BYTES {
                    return Err(std::io::Error::other(format!(
                        "{} is {len} bytes: a job carries at most {}",
                        path.display(),
                        limits::MAX_PIECE_BYTES
                    )));
                }
                std::fs::read(&path)
            }
        }
    }

    /// Runs one job on `input` under the throttle `throttle()` until it
    /// ends or `stop()`; returns its output, how it went, and the time it
    /// was let run (the throttle's pauses left out).
    pub fn run(
        &self,
        input: Vec<u8>,
        throttle: &dyn Fn() -> f64,
        stop: &dyn Fn() -> bool,
    ) -> (Vec<u8>, Outcome, Duration) {
        let start_unix_s = unix_now();
        let input_bytes = input.len() as u64;
        let started = Instant::now();
        let (output, exit, stderr_tail, running) = match self.kind {
            Kind::Command => {
                let ran = command::run(&self.argv, input, self.limits, throttle, stop);
                (ran.output, ran.exit, ran.stderr_tail, ran.running)
            }
            _ => match run_digits(&input, throttle, stop) {
                Some((sum, running)) => (
                    sum.to_le_bytes().to_vec(),
                    Exit::Code(0),
                    Vec::new(),
                    running,
                ),
                None => (Vec::new(), Exit::Stopped, Vec::new(), Duration::ZERO),
            },
        };
        let (exitval, signal) = joblog::exit_columns(&exit);
        let failed = (!exit.succeeded()).then(|| describe_exit(&exit));
        let outcome = Outcome {
            exitval,
            signal,
            failed,
            start_unix_s,
            runtime_s: started.elapsed().as_secs_f64(),
            input_bytes,
            stderr_tail,
            digest: *blake3::hash(&output).as_bytes(),
        };
        (output, outcome, running)
    }

    /// Master: runs `k` of the jobs (spread over the input) at full speed,
    /// for the simulator: their mean running time (seconds) and mean bytes
    /// of input. An attempt that fails is an error naming it.
    pub fn sample(&self, k: u32) -> Result<(u32, f64, f64), String> {
        let jobs = self.jobs();
        if jobs == 0 {
            return Err("the input makes no jobs".to_owned());
        }
        let k = k.clamp(1, jobs);
        let (mut seconds, mut bytes) = (0.0, 0.0);
        for i in 0..k {
            let id = (u64::from(i) * u64::from(jobs) / u64::from(k)) as JobId;
            let input = self
                .read(id)
                .map_err(|e| format!("{}: {e}", self.piece_name(id)))?;
            bytes += input.len() as f64;
            let (_, outcome, running) = self.run(input, &|| 1.0, &|| false);
            if let Some(why) = outcome.failed {
                return Err(format!(
                    "a sample job ({}) failed: {why}",
                    self.piece_name(id)
                ));
            }
            seconds += running.as_secs_f64();
        }
        Ok((k, seconds / f64::from(k), bytes / f64::from(k)))
    }

    /// The failed outcome of a job whose input could not be read.
    pub fn cannot_read(&self, e: &std::io::Error) -> (Vec<u8>, Outcome, Duration) {
        let output = Vec::new();
        let outcome = Outcome {
            exitval: -1,
            signal: 0,
            failed: Some(format!("its input could not be read here: {e}")),
            start_unix_s: unix_now(),
            runtime_s: 0.0,
            input_bytes: 0,
            stderr_tail: Vec::new(),
            digest: *blake3::hash(&output).as_bytes(),
        };
        (output, outcome, Duration::ZERO)
    }

    /// Master: keeps job `id`'s output (a part file, or the digits' sum).
    pub fn keep(&self, id: JobId, output: &[u8]) -> std::io::Result<()> {
        let m = self.master.as_ref().ok_or_else(not_master)?;
        match self.kind {
            Kind::Digits => {
                let sum: [u8; 8] = output.try_into().map_err(|_| {
                    std::io::Error::other(format!(
                        "job {id}'s sum is {} bytes, not 8",
                        output.len()
                    ))
                })?;
                if let Some(slot) = m.sums.lock().get_mut(id as usize) {
                    *slot = Some(u64::from_le_bytes(sum));
                }
                Ok(())
            }
            _ => {
                let piece = m.todo[id as usize];
                match m.spool.lock().as_ref() {
                    Some(spool) => spool.put(piece, output),
                    None => Err(std::io::Error::other("the output is already written")),
                }
            }
        }
    }

    /// Master: writes one joblog line for an attempt at job `id` by `host`.
    pub fn log_attempt(
        &self,
        id: JobId,
        host: Role,
        outcome: &Outcome,
        sent: u64,
        received: u64,
    ) -> std::io::Result<()> {
        let Some(m) = &self.master else {
            return Ok(());
        };
        let mut log = m.joblog.lock();
        let Some(file) = log.as_mut() else {
            return Ok(());
        };
        let seq = u64::from(m.todo.get(id as usize).copied().unwrap_or(id)) + 1;
        let line = joblog::line(&joblog::Attempt {
            seq,
            host: host.name().to_owned(),
            start_unix_s: outcome.start_unix_s,
            runtime_s: outcome.runtime_s,
            sent,
            received,
            exitval: outcome.exitval,
            signal: outcome.signal,
            command: self.command_line(),
        });
        file.write_all(line.as_bytes())
    }

    /// Master, the run over: writes the output (the parts of the jobs
    /// done; the spool is removed only when every job is done), or checks
    /// the digits' total against a straight pass over the input.
    pub fn finish(&self, failed: &[JobId]) -> Result<Finish, String> {
        let m = self
            .master
            .as_ref()
            .ok_or_else(|| not_master().to_string())?;
        match self.kind {
            Kind::Digits => {
                let sums = m.sums.lock();
                let missing = sums.iter().filter(|s| s.is_none()).count();
                let total: u64 = sums.iter().flatten().sum();
                let (straight, bytes) = digits::total_of(&m.input)
                    .map_err(|e| format!("{}: {e}", m.input.display()))?;
                let verified = missing == 0 && total == straight;
                let text = format!(
                    "digit sum of {} ({bytes} bytes, {} jobs): {total}; a straight pass over \
                     the file gives {straight}: {}",
                    m.input.display(),
                    sums.len(),
                    if verified { "verified" } else { "NOT equal" }
                );
                Ok(Finish {
                    verified,
                    digits_total: Some((total, straight)),
                    output_bytes: 0,
                    text,
                })
            }
            _ => {
                let output = m.output.clone().unwrap_or_default();
                let spool = m
                    .spool
                    .lock()
                    .take()
                    .ok_or("the output is already written")?;
                let names = match &m.pieces {
                    Pieces::Files(names) => Some(names.as_slice()),
                    Pieces::Ranges(_) => None,
                };
                if failed.is_empty() {
                    let bytes = match names {
                        None => spool.assemble(&output),
                        Some(names) => spool.assemble_dir(&output, names),
                    }
                    .map_err(|e| format!("writing {}: {e}", output.display()))?;
                    return Ok(Finish {
                        verified: true,
                        digits_total: None,
                        output_bytes: bytes,
                        text: format!("wrote {} ({bytes} bytes)", output.display()),
                    });
                }
                let bytes = spool
                    .write_present(&output, names)
                    .map_err(|e| format!("writing {}: {e}", output.display()))?;
                let pieces: Vec<JobId> = failed.iter().map(|&id| m.todo[id as usize]).collect();
                Ok(Finish {
                    verified: false,
                    digits_total: None,
                    output_bytes: bytes,
                    text: format!(
                        "wrote {} ({bytes} bytes) without the output of the {} failed jobs \
                         (pieces {}); the other jobs' outputs stay in {} for a run with --resume",
                        output.display(),
                        failed.len(),
                        super::format_id_ranges(&pieces),
                        Spool::dir_of(&output).display()
                    ),
                })
            }
        }
    }
}

impl Master {
    fn open(w: &WorkloadConfig, options: &MasterOptions) -> Result<Master, String> {
        // Checked by the config: these kinds have an input.
        let input = w.input.clone().unwrap_or_default();
        let shown = input.display();
        let meta = std::fs::metadata(&input).map_err(|e| format!("workload.input {shown}: {e}"))?;
        let max = u64::from(limits::MAX_JOBS);
        let pieces = if meta.is_dir() {
            if w.kind == Kind::Digits {
                return Err(format!(
                    "workload.input {shown} is a directory: the digits kind takes a file"
                ));
            }
            if w.split.is_some() {
                return Err(format!(
                    "workload.split: {shown} is a directory, whose files are one job each; \
                     remove split"
                ));
            }
            Pieces::Files(
                split::files_of(&input, max).map_err(|e| format!("workload.input {shown}: {e}"))?,
            )
        } else {
            let how = match w.kind {
                Kind::Digits => Split::Bytes {
                    bytes: w.chunk_bytes.unwrap_or(digits::DEFAULT_CHUNK_BYTES),
                    align_lines: false,
                },
                _ => match w.split {
                    Some(crate::config::SplitConfig { lines: Some(n), .. }) => Split::Lines(n),
                    Some(crate::config::SplitConfig { bytes: Some(n), .. }) => Split::Bytes {
                        bytes: n,
                        align_lines: w.align.as_deref() == Some("lines"),
                    },
                    _ => {
                        return Err(format!(
                            "workload.split: {shown} is a file: say how to cut it, \
                             {{\"lines\": N}} or {{\"bytes\": N}}"
                        ));
                    }
                },
            };
            let mut file =
                std::fs::File::open(&input).map_err(|e| format!("workload.input {shown}: {e}"))?;
            let ranges = split::pieces(&mut file, meta.len(), how, max)
                .map_err(|e| format!("workload.input {shown}: {e}"))?;
            if let Some(big) = ranges
                .iter()
                .find(|r| r.end - r.start > limits::MAX_PIECE_BYTES)
            {
                return Err(format!(
                    "workload.split: a piece of {shown} is {} bytes (bytes {}..{}): a job \
                     carries at most {}; use a smaller split",
                    big.end - big.start,
                    big.start,
                    big.end,
                    limits::MAX_PIECE_BYTES
                ));
            }
            Pieces::Ranges(ranges)
        };
        if pieces.len() == 0 {
            return Err(format!("workload.input {shown} makes no jobs: it is empty"));
        }
        let mut done = Vec::new();
        let (output, spool) = if w.kind == Kind::Command {
            let output = w.output.clone().unwrap_or_default();
            check_output(&input, &output, matches!(pieces, Pieces::Files(_)))?;
            let spec = run_identity(w, &input, &pieces);
            let (spool, left) = Spool::open(&output, pieces.len() as u32, &spec, options.resume)
                .map_err(|e| format!("workload.output {}: {e}", output.display()))?;
            done = left;
            (Some(output), Some(spool))
        } else {
            (None, None)
        };
        let todo: Vec<u32> = (0..pieces.len() as u32)
            .filter(|p| done.binary_search(p).is_err())
            .collect();
        let joblog = match &options.joblog {
            None => None,
            Some(path) => Some(open_joblog(path, options.resume)?),
        };
        let input_bytes = match &pieces {
            Pieces::Ranges(r) => r.iter().map(|r| r.end - r.start).sum(),
            Pieces::Files(names) => names
                .iter()
                .map(|n| std::fs::metadata(input.join(n)).map_or(0, |m| m.len()))
                .sum(),
        };
        Ok(Master {
            input_bytes,
            input,
            sums: Mutex::new(vec![None; todo.len()]),
            pieces,
            todo,
            output,
            spool: Mutex::new(spool),
            joblog: Mutex::new(joblog),
        })
    }
}

/// What makes a run's outputs what they are, for the spool: the program,
/// how the input is cut and into which pieces, and each piece's file (its
/// size and modification time) — not the retries or the time-out, which a
/// resumed run may change. In hex, short.
fn run_identity(w: &WorkloadConfig, input: &Path, pieces: &Pieces) -> String {
    let mut h = blake3::Hasher::new();
    let stamp = |path: &Path| {
        std::fs::metadata(path).map_or((0, 0), |m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (m.len(), t)
        })
    };
    h.update(format!("{:?} {:?} {:?} {:?}", w.kind, w.command, w.split, w.align).as_bytes());
    match pieces {
        Pieces::Ranges(ranges) => {
            h.update(format!("{:?}", stamp(input)).as_bytes());
            for r in ranges {
                h.update(&r.start.to_le_bytes());
                h.update(&r.end.to_le_bytes());
            }
        }
        Pieces::Files(names) => {
            for name in names {
                h.update(name.as_encoded_bytes());
                h.update(format!("{:?}", stamp(&input.join(name))).as_bytes());
            }
        }
    }
    h.finalize().to_hex()[..16].to_owned()
}

/// The output must not be the input, nor hold it, nor be a special file;
/// a directory input's output is a directory (made if need be).
fn check_output(input: &Path, output: &Path, dir: bool) -> Result<(), String> {
    let shown = output.display();
    if crate::files::same_path(input, output) || crate::files::same_file(input, output) {
        return Err(format!(
            "workload.output {shown} is the input: the output would overwrite it"
        ));
    }
    if dir {
        if output.exists() && !output.is_dir() {
            return Err(format!(
                "workload.output {shown}: the input is a directory, so the output is one too \
                 (one file per input file), and this is not a directory"
            ));
        }
        if crate::files::within(output, input) {
            return Err(format!(
                "workload.output {shown} is inside the input directory: its files would \
                 become jobs of the next run"
            ));
        }
        return Ok(());
    }
    match std::fs::metadata(output) {
        Ok(m) if !m.is_file() => Err(format!(
            "workload.output {shown} is not a regular file (a directory or a device); name a \
             file"
        )),
        _ => Ok(()),
    }
}

fn open_joblog(path: &Path, resume: bool) -> Result<std::fs::File, String> {
    let shown = path.display();
    let fresh = !resume || std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(resume)
        .write(true)
        .truncate(!resume)
        .open(path)
        .map_err(|e| format!("--joblog {shown}: {e}"))?;
    if fresh {
        file.write_all(joblog::HEADER.as_bytes())
            .map_err(|e| format!("--joblog {shown}: {e}"))?;
    }
    Ok(file)
}

fn not_master() -> std::io::Error {
    std::io::Error::other("only the master reads input and keeps output")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The digit sum under the throttle: in blocks of 64 KiB, each a step of
/// the throttle's schedule. None if the node stopped first.
fn run_digits(
    input: &[u8],
    throttle: &dyn Fn() -> f64,
    stop: &dyn Fn() -> bool,
) -> Option<(u64, Duration)> {
    use crate::throttle::{Step, ThrottleSchedule};
    let mut schedule = ThrottleSchedule::new(Instant::now());
    let mut sum = 0u64;
    let mut running = Duration::ZERO;
    let mut blocks = input.chunks(64 << 10);
    let mut next = blocks.next();
    while let Some(block) = next {
        if stop() {
            return None;
        }
        let now = Instant::now();
        match schedule.next(now, throttle()) {
            Step::Compute => {
                sum += digits::sum_digits(block);
                let took = now.elapsed();
                running += took;
                schedule.record(took);
                next = blocks.next();
            }
            Step::SleepUntil(until) => {
                std::thread::sleep(until.saturating_duration_since(now).min(PAUSE_STEP));
            }
        }
    }
    Some((sum, running))
}

/// The longest sleep between two looks at the stop flag.
const PAUSE_STEP: Duration = Duration::from_millis(20);

/// A failed attempt's exit in words.
pub fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exited with status {code}"),
        Exit::Signal(signal) => format!("killed by signal {signal}"),
        Exit::TimedOut => "ran past workload.timeout_s; killed".to_owned(),
        Exit::OutputTooLarge => format!("wrote more than {MAX_OUTPUT_BYTES} bytes; killed"),
        Exit::Stopped => "the node stopped first".to_owned(),
        Exit::PipeHeldOpen => "it ended but a process it started held its output open".to_owned(),
        Exit::CannotStart(why) => format!("could not start: {why}"),
    }
}
