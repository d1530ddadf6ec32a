//! The wire format: every datagram is a fixed 24-byte header followed by one
//! message body. Sans-IO: bytes in, typed messages out, and back.
//!
//! ```text
//!  0      4   5    6       8             16            24
//!  | magic | v | kind | flags | session id | sequence no | body...
//!  "LDBL"   1                  u64 LE       u64 LE
//! ```
//!
//! Decoding never trusts a length it has not checked, never allocates from a
//! length in the datagram and never panics: a datagram is either a complete,
//! well-formed message or a [`DecodeError`] saying whether it was cut short
//! (`Truncated`) or is wrong (`Invalid`). Sequence numbers are 64-bit and
//! start at 1 per run and direction, so they do not wrap within any run.

pub mod batch;
mod codec;
pub mod pieces;

use codec::{Reader, Writer};

/// The first four bytes of every loadbal datagram.
pub const MAGIC: [u8; 4] = *b"LDBL";
/// The wire format's version; a datagram of another version is rejected.
pub const VERSION: u8 = 8;
/// Bytes in the fixed header.
pub const HEADER_BYTES: usize = 24;
/// Bytes in a chunk message before its payload (header included).
pub const CHUNK_OVERHEAD: usize = HEADER_BYTES + 21;
/// Most bytes of selective-ack bitmap in one ack (1024 chunks).
pub const MAX_SACK_BYTES: usize = 128;
/// Most bytes of text in an abort message.
pub const MAX_REASON_BYTES: usize = 200;

/// The header every datagram starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Identifies the run; 0 from a slave that has not yet learnt it.
    pub session: u64,
    /// Per-direction datagram counter, starting at 1.
    pub seq: u64,
}

/// What a batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchKind {
    /// Jobs moved by the transfer policy, not yet started.
    Jobs = 1,
    /// Computed jobs returning to the master.
    Results = 2,
    /// The master's bootstrap share for the slave, not yet started.
    Bootstrap = 3,
}

impl BatchKind {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(BatchKind::Jobs),
            2 => Ok(BatchKind::Results),
            3 => Ok(BatchKind::Bootstrap),
            _ => Err(DecodeError::Invalid("unknown batch kind")),
        }
    }
}

/// A run's phase, as shown to the user and exchanged in state messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Not started, or waiting for the peer.
    Idle = 0,
    /// The master sends half the workload to the slave.
    Bootstrap = 1,
    /// Both nodes compute; the adaptors move jobs.
    Processing = 2,
    /// The last results return to the master.
    Aggregation = 3,
    /// The master has verified the result.
    Done = 4,
}

impl Phase {
    /// Decodes a phase byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Phase::Idle,
            1 => Phase::Bootstrap,
            2 => Phase::Processing,
            3 => Phase::Aggregation,
            4 => Phase::Done,
            _ => return None,
        })
    }

    /// The lower-case name used in logs and the window.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Bootstrap => "bootstrap",
            Phase::Processing => "processing",
            Phase::Aggregation => "aggregation",
            Phase::Done => "done",
        }
    }
}

/// The parameters of a run, from a node's config: the master's fix the
/// run, and the slave's must be the same (see [`RunParams::mismatch`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunParams {
    /// Jobs in the workload.
    pub jobs: u32,
    /// Doubles per job.
    pub elements_per_job: u32,
    /// Additions per element.
    pub iterations: u32,
    /// Initial value of every element.
    pub initial: f64,
    /// The value added.
    pub addend: f64,
    /// The policy's threshold, in the policy's unit.
    pub threshold: u32,
    /// The transfer policy, as its index in [`crate::policy::NAMES`].
    pub policy: u8,
    /// Jobs present from the start; the rest (`jobs - present`) arrive
    /// during the run, as `arrivals` says.
    pub present: u32,
    /// The jobs arriving at each node during the run, if any.
    pub arrivals: Option<crate::arrivals::Arrivals>,
    /// The job kind ([`crate::config::Kind::code`]).
    pub kind: u8,
    /// The digits and command kinds: each spec field's digest
    /// ([`crate::workload::kind::spec_digest`]); zero for the vector kind.
    pub spec: crate::workload::kind::SpecDigest,
}

impl RunParams {
    /// The parameters `config` gives a run.
    pub fn from_config(config: &crate::config::Config) -> RunParams {
        let w = &config.workload;
        RunParams {
            jobs: w.schedule().total(),
            elements_per_job: w.elements_per_job,
            iterations: w.iterations,
            initial: w.initial,
            addend: w.addend,
            threshold: config.policy.threshold(),
            policy: crate::policy::index_of(&config.policy.transfer).unwrap_or(0),
            present: w.jobs,
            arrivals: w.arrivals,
            kind: w.kind.code(),
            spec: crate::workload::kind::spec_digest(w),
        }
    }

    /// True for the vector kind (a job is doubles); false for the digits
    /// and command kinds (a job is bytes).
    pub fn is_vector(&self) -> bool {
        self.kind == 0
    }

    /// The first field in which the master's parameters and the slave's
    /// differ, with both values as a config would write them; None when
    /// the two nodes can run together.
    pub fn mismatch(master: &RunParams, slave: &RunParams) -> Option<Mismatch> {
        type Show = fn(&RunParams) -> String;
        // Each value as a config would write it (f64's Display gives back
        // the same value, so two configs that differ show different text).
        let fields: [(&'static str, Show); 8] = [
            ("workload.jobs", |p| p.present.to_string()),
            ("workload.elements_per_job", |p| {
                p.elements_per_job.to_string()
            }),
            ("workload.iterations", |p| p.iterations.to_string()),
            ("workload.initial", |p| p.initial.to_string()),
            ("workload.addend", |p| p.addend.to_string()),
            ("workload.arrivals", |p| match &p.arrivals {
                None => "none".to_owned(),
                Some(a) => format!(
                    "{} a second for {} s, seed {}",
                    a.rate_per_s, a.duration_s, a.seed
                ),
            }),
            ("policy.transfer", |p| {
                let name = crate::policy::NAMES.get(usize::from(p.policy));
                name.map_or_else(|| format!("number {}", p.policy), |n| format!("\"{n}\""))
            }),
            ("policy.threshold", |p| p.threshold.to_string()),
        ];
        let kind = |p: &RunParams| {
            crate::config::Kind::from_code(p.kind).map_or_else(
                || format!("number {}", p.kind),
                |k| format!("\"{}\"", k.name()),
            )
        };
        if master.kind != slave.kind {
            return Some(Mismatch {
                field: "workload.kind",
                master: kind(master),
                slave: kind(slave),
            });
        }
        if !master.is_vector() {
            // The vector's fields do not apply (the master's input makes
            // the jobs; the slave has none), the spec's do.
            let digest = |d: &[u8; 8]| {
                let hex: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("the one whose digest begins {hex}")
            };
            let spec = crate::workload::kind::SPEC_FIELDS
                .iter()
                .zip(master.spec.iter().zip(&slave.spec))
                .find(|(_, (m, s))| m != s)
                .map(|(field, (m, s))| Mismatch {
                    field,
                    master: digest(m),
                    slave: digest(s),
                });
            return spec.or_else(|| {
                fields[6..].iter().find_map(|&(field, show)| {
                    let (master, slave) = (show(master), show(slave));
                    (master != slave).then_some(Mismatch {
                        field,
                        master,
                        slave,
                    })
                })
            });
        }
        fields.into_iter().find_map(|(field, show)| {
            let (master, slave) = (show(master), show(slave));
            (master != slave).then_some(Mismatch {
                field,
                master,
                slave,
            })
        })
    }

    /// The run's jobs: those present from the start and those arriving.
    pub fn schedule(&self) -> crate::arrivals::Schedule {
        crate::arrivals::Schedule::new(
            self.present,
            self.arrivals.as_ref(),
            crate::config::limits::MAX_JOBS,
        )
    }

    /// Checks every value as the master's config was checked (one
    /// validation for both: the same ranges, the same messages), and that
    /// the jobs are those the arrivals make. A slave adopts parameters only
    /// once they pass, so nothing a datagram carries can take the core
    /// where a config cannot.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::{ConfigError, check_range, limits};
        if !self.is_vector() {
            if crate::config::Kind::from_code(self.kind).is_none() {
                return Err(ConfigError::Invalid {
                    field: "workload.kind".to_owned(),
                    message: format!("kind number {} is not a known kind", self.kind),
                });
            }
            if self.arrivals.is_some() || self.present != self.jobs {
                return Err(ConfigError::Invalid {
                    field: "workload.arrivals".to_owned(),
                    message: "jobs arrive only in the vector kind".to_owned(),
                });
            }
            check_range("workload.jobs", self.jobs, 1, limits::MAX_JOBS)?;
            if usize::from(self.policy) >= crate::policy::NAMES.len() {
                return Err(ConfigError::Invalid {
                    field: "policy.transfer".to_owned(),
                    message: format!("policy number {} is not a known policy", self.policy),
                });
            }
            return check_range("policy.threshold", self.threshold, 0, limits::MAX_THRESHOLD);
        }
        let workload = crate::config::WorkloadConfig {
            jobs: self.present,
            arrivals: self.arrivals,
            ..self.workload()
        };
        workload.validate()?;
        let total = self.schedule().total();
        if total != self.jobs {
            return Err(ConfigError::Invalid {
                field: "workload.jobs".to_owned(),
                message: format!(
                    "{} jobs in the run do not match the {total} its jobs present and arrivals make",
                    self.jobs
                ),
            });
        }
        if usize::from(self.policy) >= crate::policy::NAMES.len() {
            return Err(ConfigError::Invalid {
                field: "policy.transfer".to_owned(),
                message: format!("policy number {} is not a known policy", self.policy),
            });
        }
        check_range("policy.threshold", self.threshold, 0, limits::MAX_THRESHOLD)
    }

    /// The workload these parameters describe (its jobs: every job of the
    /// run, arrivals included).
    pub fn workload(&self) -> crate::config::WorkloadConfig {
        crate::config::WorkloadConfig {
            jobs: self.jobs,
            elements_per_job: self.elements_per_job,
            iterations: self.iterations,
            initial: self.initial,
            addend: self.addend,
            arrivals: None,
            kind: crate::config::Kind::from_code(self.kind).unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// A field that both nodes' configs must give the same value, and does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The config field, as config.json names it.
    pub field: &'static str,
    /// The master's value.
    pub master: String,
    /// The slave's value.
    pub slave: String,
}

/// Opens and keeps a session: sent by both nodes until each has heard the other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hello {
    /// The sender's role: true for the master.
    pub from_master: bool,
    /// Chunks the sender can take in flight (its receive window).
    pub window_chunks: u32,
    /// The largest datagram the sender will send.
    pub datagram_bytes: u32,
    /// Whether the sender's config compresses batches: they are
    /// compressed only when both nodes' do.
    pub compression: bool,
    /// The run's parameters from the sender's config (the slave's, once it
    /// has joined, the master's, which are the same).
    pub params: RunParams,
    /// The slave's: a random number fresh for each of its runs. The
    /// master's: the number of the slave hello it answers (0 before it has
    /// heard one). A slave joins only a session whose hello echoes its own
    /// number, so a replayed hello of an earlier run cannot draw it in.
    pub nonce: u64,
}

impl Hello {
    /// Checks every value as a config is checked: the datagram size in the
    /// config's range, a window, and the run parameters.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::{check_range, limits};
        let (min, max) = limits::DATAGRAM_BYTES;
        check_range("network.datagram_bytes", self.datagram_bytes, min, max)?;
        check_range("window_chunks", self.window_chunks, 1, u32::MAX)?;
        self.params.validate()
    }
}

/// A node's state, sent periodically and on every phase or throttle change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    /// The sender's phase.
    pub phase: Phase,
    /// Jobs waiting in the sender's queue (not started).
    pub queue: u32,
    /// Jobs the sender has computed.
    pub jobs_done: u32,
    /// Jobs the sender has received from the peer (bootstrap and transfers).
    pub jobs_received: u32,
    /// Jobs in the sender's unacknowledged outbound job batches.
    pub in_flight: u32,
    /// Jobs being computed right now.
    pub busy: u16,
    /// Worker threads.
    pub workers: u16,
    /// The sender's throttle, 0 to 1.
    pub throttle: f32,
    /// Whole-machine CPU use, percent of one core (N busy cores: N × 100).
    pub cpu_system: f32,
    /// The sender process's CPU use, percent of one core.
    pub cpu_process: f32,
    /// Measured jobs per second.
    pub rate: f32,
    /// Measured jobs per second of one worker at full throttle (0 before
    /// the first job is done): what the policies predict finishing times by.
    pub capacity: f32,
}

/// An acknowledgement of a batch's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<'a> {
    /// The batch.
    pub transfer: u32,
    /// Every chunk below this index has arrived.
    pub next: u32,
    /// Chunks the receiver can take in flight from now on.
    pub window: u32,
    /// The whole batch has arrived (and was delivered once).
    pub complete: bool,
    /// With `complete`: the receiver's core could not take the batch, and
    /// why; its jobs are still the sender's.
    pub refused: Option<RefuseReason>,
    /// Bit `i` set: chunk `next + 1 + i` has arrived.
    pub sack: &'a [u8],
}

/// One piece of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The batch.
    pub transfer: u32,
    /// What the batch carries.
    pub kind: BatchKind,
    /// This chunk's index.
    pub index: u32,
    /// Chunks in the batch.
    pub count: u32,
    /// Payload bytes of every chunk but possibly the last.
    pub chunk_bytes: u32,
    /// Bytes in the whole batch.
    pub total_bytes: u32,
    /// This chunk's bytes.
    pub payload: &'a [u8],
}

impl Chunk<'_> {
    /// Where this chunk's payload starts in the batch.
    pub fn offset(&self) -> usize {
        self.index as usize * self.chunk_bytes as usize
    }
}

/// Every message loadbal sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    /// Session opening.
    Hello(Hello),
    /// A node's state.
    State(State),
    /// A piece of a batch.
    Chunk(Chunk<'a>),
    /// Acknowledgement of chunks.
    Ack(Ack<'a>),
    /// Master to slave: every result is in; the slave may exit.
    Finish {
        /// The master's verification outcome.
        verified: bool,
    },
    /// Slave to master: the finish was received.
    FinishAck,
    /// Master to slave: the finish acknowledgement arrived, so the finish
    /// will not be repeated and the slave need not stay to answer it.
    Bye,
    /// The sender is stopping the run, with a reason.
    Abort {
        /// Why, in words for the log.
        reason: &'a str,
    },
    /// Master to a slave that is not in its run (a slave restarted while
    /// the master's run goes on): this session is not yours; stop.
    GoAway {
        /// The nonce of the slave hello this answers.
        nonce: u64,
    },
    /// A receiver-initiated policy asks the peer for jobs.
    Request {
        /// How many jobs the sender would take.
        jobs: u32,
    },
}

/// Why a node's core refused a batch it had whole: carried by the batch's
/// complete ack, so the sender learns it as reliably as it learns of the
/// delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The run's parameters were not known yet.
    NotReady = 1,
    /// The batch did not decode (or named jobs past the run).
    Malformed = 2,
    /// Not for this role (results sent to a slave).
    WrongRole = 3,
    /// Refused on purpose, by a test's or the swarm's fault injection.
    Injected = 4,
}

impl RefuseReason {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => RefuseReason::NotReady,
            2 => RefuseReason::Malformed,
            3 => RefuseReason::WrongRole,
            4 => RefuseReason::Injected,
            _ => return None,
        })
    }

    /// In words, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            RefuseReason::NotReady => "the run's parameters were not known yet",
            RefuseReason::Malformed => "it did not decode",
            RefuseReason::WrongRole => "it was not for this node's role",
            RefuseReason::Injected => "a fault was injected",
        }
    }
}

impl Message<'_> {
    fn kind(&self) -> u8 {
        match self {
            Message::Hello(_) => 1,
            Message::State(_) => 2,
            Message::Chunk(_) => 3,
            Message::Ack(_) => 4,
            Message::Finish { .. } => 5,
            Message::FinishAck => 6,
            Message::Abort { .. } => 7,
            Message::GoAway { .. } => 8,
            Message::Request { .. } => 9,
            Message::Bye => 10,
        }
    }

    /// A short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::State(_) => "state",
            Message::Chunk(_) => "chunk",
            Message::Ack(_) => "ack",
            Message::Finish { .. } => "finish",
            Message::FinishAck => "finish-ack",
            Message::Abort { .. } => "abort",
            Message::GoAway { .. } => "go-away",
            Message::Request { .. } => "request",
            Message::Bye => "bye",
        }
    }
}

/// Why a datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The datagram ended before the message did.
    #[error("truncated: needed {needed} bytes, got {got}")]
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Not a loadbal datagram.
    #[error("bad magic")]
    BadMagic,
    /// Another version of the wire format.
    #[error("unsupported version {0}")]
    BadVersion(u8),
    /// An unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A field holds a value that cannot be right.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Appends the encoded datagram to `out` (which is cleared first).
pub fn encode(header: &Header, message: &Message<'_>, out: &mut Vec<u8>) {
    out.clear();
    let mut w = Writer(out);
    w.bytes(&MAGIC);
    w.u8(VERSION);
    w.u8(message.kind());
    w.u16(0);
    w.u64(header.session);
    w.u64(header.seq);
    match message {
        Message::Hello(h) => {
            w.u8(u8::from(h.from_master));
            w.u32(h.window_chunks);
            w.u32(h.datagram_bytes);
            w.u8(u8::from(h.compression));
            let p = &h.params;
            w.u32(p.jobs);
            w.u32(p.elements_per_job);
            w.u32(p.iterations);
            w.f64(p.initial);
            w.f64(p.addend);
            w.u32(p.threshold);
            w.u8(p.policy);
            w.u32(p.present);
            match &p.arrivals {
                None => w.u8(0),
                Some(a) => {
                    w.u8(1);
                    w.f64(a.rate_per_s);
                    w.f64(a.duration_s);
                    w.u64(a.seed);
                }
            }
            w.u8(p.kind);
            for d in &p.spec {
                w.bytes(d);
            }
            w.u64(h.nonce);
        }
        Message::State(s) => {
            w.u8(s.phase as u8);
            w.u32(s.queue);
            w.u32(s.jobs_done);
            w.u32(s.jobs_received);
            w.u32(s.in_flight);
            w.u16(s.busy);
            w.u16(s.workers);
            w.f32(s.throttle);
            w.f32(s.cpu_system);
            w.f32(s.cpu_process);
            w.f32(s.rate);
            w.f32(s.capacity);
        }
        Message::Chunk(c) => {
            w.u32(c.transfer);
            w.u8(c.kind as u8);
            w.u32(c.index);
            w.u32(c.count);
            w.u32(c.chunk_bytes);
            w.u32(c.total_bytes);
            w.bytes(c.payload);
        }
        Message::Ack(a) => {
            w.u32(a.transfer);
            w.u32(a.next);
            w.u32(a.window);
            // 0: not complete; 1: complete; 0x80 | reason: complete, refused.
            w.u8(match (a.complete, a.refused) {
                (false, _) => 0,
                (true, None) => 1,
                (true, Some(reason)) => 0x80 | reason as u8,
            });
            debug_assert!(a.sack.len() <= MAX_SACK_BYTES);
            let len = a.sack.len().min(MAX_SACK_BYTES);
            w.u8(len as u8);
            w.bytes(&a.sack[..len]);
        }
        Message::Finish { verified } => w.u8(u8::from(*verified)),
        Message::FinishAck | Message::Bye => {}
        Message::Abort { reason } => {
            let text = truncate_utf8(reason, MAX_REASON_BYTES);
            w.u8(text.len() as u8);
            w.bytes(text.as_bytes());
        }
        Message::GoAway { nonce } => w.u64(*nonce),
        Message::Request { jobs } => w.u32(*jobs),
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Decodes only the header, checking magic, version and flags.
pub fn decode_header(bytes: &[u8]) -> Result<(Header, u8), DecodeError> {
    let mut r = Reader::new(bytes);
    if r.take(4)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8()?;
    let kind = r.u8()?;
    let flags = r.u16()?;
    let session = r.u64()?;
    let seq = r.u64()?;
    if version != VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    if flags != 0 {
        return Err(DecodeError::Invalid("reserved flags set"));
    }
    if seq == 0 {
        return Err(DecodeError::Invalid("sequence number 0"));
    }
    Ok((Header { session, seq }, kind))
}

fn bool_from(v: u8) -> Result<bool, DecodeError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid("boolean not 0 or 1")),
    }
}

fn finite32(v: f32) -> Result<f32, DecodeError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DecodeError::Invalid("non-finite number"))
    }
}

/// Decodes a whole datagram. The message borrows its payloads from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<(Header, Message<'_>), DecodeError> {
    let (header, kind) = decode_header(bytes)?;
    let mut r = Reader::new(&bytes[HEADER_BYTES..]);
    r.base = HEADER_BYTES;
    let message = match kind {
        1 => {
            let from_master = bool_from(r.u8()?)?;
            let window_chunks = r.u32()?;
            let datagram_bytes = r.u32()?;
            let compression = bool_from(r.u8()?)?;
            let params = RunParams {
                jobs: r.u32()?,
                elements_per_job: r.u32()?,
                iterations: r.u32()?,
                initial: r.f64()?,
                addend: r.f64()?,
                threshold: r.u32()?,
                policy: r.u8()?,
                present: r.u32()?,
                arrivals: match r.u8()? {
                    0 => None,
                    1 => Some(crate::arrivals::Arrivals {
                        rate_per_s: r.f64()?,
                        duration_s: r.f64()?,
                        seed: r.u64()?,
                    }),
                    _ => return Err(DecodeError::Invalid("bad arrivals flag")),
                },
                kind: r.u8()?,
                spec: {
                    let mut spec = crate::workload::kind::SpecDigest::default();
                    for d in &mut spec {
                        d.copy_from_slice(r.take(8)?);
                    }
                    spec
                },
            };
            let nonce = r.u64()?;
            if params.present > params.jobs {
                return Err(DecodeError::Invalid("more jobs present than in the run"));
            }
            if let Some(a) = &params.arrivals
                && !(a.rate_per_s.is_finite()
                    && a.duration_s.is_finite()
                    && a.rate_per_s > 0.0
                    && a.duration_s > 0.0)
            {
                return Err(DecodeError::Invalid("bad arrivals"));
            }
            if !params.initial.is_finite() || !params.addend.is_finite() {
                return Err(DecodeError::Invalid("non-finite number"));
            }
            if window_chunks == 0 {
                return Err(DecodeError::Invalid("zero window"));
            }
            Message::Hello(Hello {
                from_master,
                window_chunks,
                datagram_bytes,
                compression,
                params,
                nonce,
            })
        }
        2 => {
            let phase = Phase::from_u8(r.u8()?).ok_or(DecodeError::Invalid("unknown phase"))?;
            let state = State {
                phase,
                queue: r.u32()?,
                jobs_done: r.u32()?,
                jobs_received: r.u32()?,
                in_flight: r.u32()?,
                busy: r.u16()?,
                workers: r.u16()?,
                throttle: finite32(r.f32()?)?,
                cpu_system: finite32(r.f32()?)?,
                cpu_process: finite32(r.f32()?)?,
                rate: finite32(r.f32()?)?,
                capacity: finite32(r.f32()?)?,
            };
            if !(0.0..=1.0).contains(&state.throttle) {
                return Err(DecodeError::Invalid("throttle outside 0..=1"));
            }
            if state.rate < 0.0 || state.capacity < 0.0 {
                return Err(DecodeError::Invalid("negative rate"));
            }
            Message::State(state)
        }
        3 => {
            let transfer = r.u32()?;
            let kind = BatchKind::from_u8(r.u8()?)?;
            let index = r.u32()?;
            let count = r.u32()?;
            let chunk_bytes = r.u32()?;
            let total_bytes = r.u32()?;
            let payload = r.rest();
            let chunk = Chunk {
                transfer,
                kind,
                index,
                count,
                chunk_bytes,
                total_bytes,
                payload,
            };
            check_chunk_geometry(&chunk)?;
            return Ok((header, Message::Chunk(chunk)));
        }
        4 => {
            let transfer = r.u32()?;
            let next = r.u32()?;
            let window = r.u32()?;
            let (complete, refused) = match r.u8()? {
                0 => (false, None),
                1 => (true, None),
                v => match RefuseReason::from_u8(v ^ 0x80).filter(|_| v & 0x80 != 0) {
                    Some(reason) => (true, Some(reason)),
                    None => return Err(DecodeError::Invalid("bad ack flags")),
                },
            };
            let len = r.u8()? as usize;
            if len > MAX_SACK_BYTES {
                return Err(DecodeError::Invalid("selective-ack bitmap too long"));
            }
            let sack = r.take(len)?;
            Message::Ack(Ack {
                transfer,
                next,
                window,
                complete,
                refused,
                sack,
            })
        }
        5 => Message::Finish {
            verified: bool_from(r.u8()?)?,
        },
        6 => Message::FinishAck,
        7 => {
            let len = r.u8()? as usize;
            if len > MAX_REASON_BYTES {
                return Err(DecodeError::Invalid("abort reason too long"));
            }
            let text = r.take(len)?;
            let reason =
                std::str::from_utf8(text).map_err(|_| DecodeError::Invalid("reason not UTF-8"))?;
            Message::Abort { reason }
        }
        8 => Message::GoAway { nonce: r.u64()? },
        9 => Message::Request { jobs: r.u32()? },
        10 => Message::Bye,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    r.finish()?;
    Ok((header, message))
}

/// Checks that a chunk's numbers describe one consistent slice of its batch.
fn check_chunk_geometry(c: &Chunk<'_>) -> Result<(), DecodeError> {
    if c.chunk_bytes == 0 || c.count == 0 || c.total_bytes == 0 {
        return Err(DecodeError::Invalid("empty batch geometry"));
    }
    let total = u64::from(c.total_bytes);
    let expected_count = total.div_ceil(u64::from(c.chunk_bytes));
    if expected_count != u64::from(c.count) {
        return Err(DecodeError::Invalid("chunk count does not match sizes"));
    }
    if c.index >= c.count {
        return Err(DecodeError::Invalid("chunk index beyond count"));
    }
    let offset = u64::from(c.index) * u64::from(c.chunk_bytes);
    let expected_len = (total - offset).min(u64::from(c.chunk_bytes));
    if c.payload.len() as u64 != expected_len {
        if (c.payload.len() as u64) < expected_len {
            return Err(DecodeError::Truncated {
                needed: CHUNK_OVERHEAD + expected_len as usize,
                got: CHUNK_OVERHEAD + c.payload.len(),
            });
        }
        return Err(DecodeError::Trailing(
            c.payload.len() - expected_len as usize,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
