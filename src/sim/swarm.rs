//! The swarm (`loadbal swarm`): thousands of seeded two-node runs in
//! virtual time, each with the faults a run can meet, each checked for
//! safety and liveness and run twice to check it replays exactly, in the
//! manner of TigerBeetle's VOPR and FoundationDB's simulator.
//!
//! A seed draws a [`Scenario`]: the workload's size and shape, workers,
//! policy, throttles and throttle changes (0 included, at any moment of any
//! phase), jobs arriving and added by hand, each direction's link (loss,
//! duplication, reordering, delay, a bottleneck), a slave killed or
//! restarted, a master lost, the two configs differing where they may, and
//! forged hellos, and cores that refuse some of the batches they
//! reassemble. The run goes through the same cores as a real node, in
//! [`Pair`]; nothing here opens a socket or reads a clock for the run.
//!
//! Checks, for every seed:
//! - **safety**: no panic; both cores' job accounting holds its
//!   invariants after every step; a master that finishes has every job exactly
//!   once and every element exact; its report's counts add up; a run that
//!   ends in a failure ends in one the scenario allows;
//! - **liveness**: the run ends within a bound of virtual time computed
//!   from the scenario;
//! - **replay**: a second run of the seed hashes to the same digest (every
//!   datagram, job and log line of both cores, with its virtual time).

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::arrivals::Rng;
use crate::config::{Config, Machine, Role};
use crate::node::core::{End, Failure, JobState};
use crate::node::harness::{CpuModel, Pair};
use crate::protocol::{self, Header, Hello, Message, RunParams};

/// What a scenario does at a moment of its run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Action {
    /// A node's throttle changes (the slider).
    Throttle(Role, f64),
    /// A node's process dies: it neither sends, receives nor computes.
    Kill(Role),
    /// The slave's process is replaced by a fresh one, started.
    RestartSlave,
    /// The master's user adds jobs.
    AddJobs(u32),
    /// A datagram from another program at the master's address reaches
    /// the slave: a hello echoing the slave's nonce with parameters no
    /// config could hold.
    ForgedHello(u8),
}

/// An action and when, in virtual time from the start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timed {
    /// Seconds from the start.
    pub at_s: f64,
    /// What happens.
    pub action: Action,
}

/// One seed's run: two configs, the workers' speeds, and what happens.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The master's config.
    pub master: Config,
    /// The slave's config (its own file: the datagram size may differ).
    pub slave: Config,
    /// Element updates a second of one worker of each node (master, slave).
    pub rates: [f64; 2],
    /// What happens during the run, in time order.
    pub actions: Vec<Timed>,
    /// Virtual seconds by which the run must have ended.
    pub bound_s: f64,
    /// The config files as drawn, for a reader of `-v`.
    pub files: [serde_json::Value; 2],
    /// The CPU that moving data takes from the workers, if modelled.
    pub cpu: Option<CpuModel>,
    /// Each node's core refuses every this many batches it reassembles
    /// (0: none), as one that could not take them would.
    pub refuse_every: [u32; 2],
    /// The field in which the slave's config differs from the master's,
    /// when it does: both nodes must refuse the run, naming it.
    pub mismatch: Option<&'static str>,
}

impl Scenario {
    /// True when some action of `kind` happens.
    fn has(&self, kind: impl Fn(&Action) -> bool) -> bool {
        self.actions.iter().any(|t| kind(&t.action))
    }
}

/// A uniform number in `[lo, hi)`.
fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((rng.next() >> 11) as f64 / (1u64 << 53) as f64)
}

/// True with probability `p`.
fn chance(rng: &mut Rng, p: f64) -> bool {
    uniform(rng, 0.0, 1.0) < p
}

/// One of `items`.
fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[(rng.next() % items.len() as u64) as usize]
}

/// A whole number in `[lo, hi]`.
fn between(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    lo + rng.next() % (hi - lo + 1)
}

/// A link section: a plain one half the time.
fn link(rng: &mut Rng) -> Option<serde_json::Value> {
    if chance(rng, 0.5) {
        return None;
    }
    let bottleneck = chance(rng, 0.3);
    Some(json!({
        "loss": if chance(rng, 0.6) { uniform(rng, 0.0, 0.15) } else { 0.0 },
        "duplicate": if chance(rng, 0.3) { uniform(rng, 0.0, 0.1) } else { 0.0 },
        "reorder": if chance(rng, 0.3) { uniform(rng, 0.0, 0.2) } else { 0.0 },
        "delay_ms": uniform(rng, 0.0, 20.0),
        "jitter_ms": uniform(rng, 0.0, 5.0),
        "bandwidth_mbit": if bottleneck { uniform(rng, 1.0, 100.0) } else { 0.0 },
        "seed": rng.next() >> 12,
    }))
}

fn validate(file: &serde_json::Value) -> Result<Config, String> {
    let text = file.to_string();
    crate::config::parse(&text, "swarm")
        .and_then(|f| {
            f.validate_on(&Machine {
                memory_bytes: 0,
                logical_cpus: 2,
            })
        })
        .map_err(|e| e.to_string())
}

/// Draws seed `seed`'s scenario, with at most `jobs_max` jobs at the start.
pub fn scenario(seed: u64, jobs_max: u32) -> Scenario {
    let mut rng = Rng(seed ^ 0x5eed_5eed_5eed_5eed);
    let r = &mut rng;
    let jobs = between(r, 1, u64::from(jobs_max.max(1))) as u32;
    let elements = pick(r, &[1u32, 3, 16, 64, 200, 700]);
    let iterations = between(r, 1, 12) as u32;
    let policy = pick(r, crate::policy::NAMES);
    let threshold = if chance(r, 0.5) {
        Some(between(r, 0, 8))
    } else {
        None
    };
    let interval = pick(r, &[10u64, 25, 50, 100, 250]);
    // At least twice the state interval, as the config requires.
    let peer_timeout = pick(r, &[300u64, 600, 1000, 2000]).max(interval * 4);
    let datagram = pick(r, &[576u32, 1472, 9000, 65507]);
    // Seconds a job takes at full throttle, about.
    let job_s = uniform(r, 0.0005, 0.02);
    let work = f64::from(elements) * f64::from(iterations);
    let rates = [work / job_s, work / (job_s * uniform(r, 0.3, 3.0))];
    let throttles = [
        pick(r, &[1.0, 1.0, 0.5, 0.25, 0.1, 0.05]),
        pick(r, &[1.0, 1.0, 0.5, 0.25, 0.1, 0.05, 0.0]),
    ];
    let mut workload = json!({
        "jobs": jobs, "elements_per_job": elements, "iterations": iterations,
    });
    if chance(r, 0.2) {
        workload["arrivals"] = json!({
            "rate_per_s": uniform(r, 5.0, 200.0),
            "duration_s": uniform(r, 0.05, 1.0),
            "seed": rng_seed(r),
        });
    } else if chance(r, 0.04) {
        // Sparse: jobs further apart than the watchdog's limit.
        workload["arrivals"] = json!({
            "rate_per_s": uniform(r, 0.03, 0.2),
            "duration_s": uniform(r, 20.0, 90.0),
            "seed": rng_seed(r),
        });
    }
    let mut file = json!({
        "master": { "throttle": throttles[0], "workers": between(r, 1, 3) },
        "slave": { "throttle": throttles[1], "workers": between(r, 1, 3) },
        "workload": workload,
        "policy": { "transfer": policy, "state_interval_ms": interval },
        "network": { "datagram_bytes": datagram, "compression": chance(r, 0.7) },
        "peer_timeout_ms": peer_timeout,
        "connect_timeout_ms": 3000,
    });
    if let Some(t) = threshold {
        file["policy"]["threshold"] = json!(t);
    }
    for role in ["master", "slave"] {
        if let Some(l) = link(r) {
            file[role]["link"] = l;
        }
    }
    let mut slave_file = file.clone();
    if chance(r, 0.15) {
        // The slave's machine has a config of its own: another datagram size.
        slave_file["network"]["datagram_bytes"] = json!(pick(r, &[576u32, 1472, 9000, 65507]));
    }
    if chance(r, 0.1) {
        slave_file["network"]["compression"] = json!(chance(r, 0.5));
    }
    // How long the run takes undisturbed, about: the actions fall in it.
    let total_jobs = f64::from(jobs) + 20.0;
    let slowest = throttles
        .iter()
        .copied()
        .fold(1.0f64, |a, t| if t > 0.0 { a.min(t) } else { a });
    let span_s = (total_jobs * job_s * 3.0 / slowest).clamp(0.05, 5.0);
    let mut actions = Vec::new();
    let at = |r: &mut Rng| uniform(r, 0.0, span_s * 1.3);
    for _ in 0..between(r, 0, 4) {
        let role = pick(r, &[Role::Master, Role::Slave]);
        let value = pick(r, &[0.0, 0.0, 0.05, 0.3, 1.0]);
        actions.push(Timed {
            at_s: at(r),
            action: Action::Throttle(role, value),
        });
    }
    if chance(r, 0.1) {
        actions.push(Timed {
            at_s: at(r),
            action: Action::Kill(Role::Slave),
        });
    } else if chance(r, 0.06) {
        actions.push(Timed {
            at_s: at(r),
            action: Action::RestartSlave,
        });
    }
    if chance(r, 0.04) {
        actions.push(Timed {
            at_s: at(r),
            action: Action::Kill(Role::Master),
        });
    }
    if chance(r, 0.1) {
        actions.push(Timed {
            at_s: at(r),
            action: Action::AddJobs(between(r, 1, 16) as u32),
        });
    }
    if chance(r, 0.05) {
        // Before the master's answer reaches the slave.
        actions.push(Timed {
            at_s: 0.0,
            action: Action::ForgedHello(between(r, 0, 3) as u8),
        });
    }
    actions.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    // A run whose every node ends paused waits for ever, by design (it says
    // so): a user comes back and moves a slider.
    // A node killed (or a slave restarted, which the master's run loses)
    // computes nothing more for the run.
    let mut last = throttles;
    let mut gone = [false, false];
    for t in &actions {
        match t.action {
            Action::Throttle(role, v) => last[role as usize] = v,
            Action::Kill(role) => gone[role as usize] = true,
            Action::RestartSlave => gone[1] = true,
            Action::AddJobs(_) | Action::ForgedHello(_) => {}
        }
    }
    for (t, gone) in last.iter_mut().zip(gone) {
        if gone {
            *t = 0.0;
        }
    }
    let last_at = actions.last().map_or(0.0, |t| t.at_s);
    if last.iter().all(|&t| t <= 0.0) {
        actions.push(Timed {
            at_s: last_at + 1.0,
            action: Action::Throttle(Role::Master, 1.0),
        });
        last[0] = 1.0;
    }
    // Moving data costs the workers CPU (a few nanoseconds a byte at each
    // end, as `loadbal simulate` measures it), on one machine or two.
    let cpu = chance(r, 0.3).then(|| CpuModel {
        cores: between(r, 1, 4) as u32,
        seconds_per_byte: uniform(r, 0.5e-9, 20e-9),
        shared: chance(r, 0.5),
    });
    let mut refuse = || {
        if chance(r, 0.15) {
            between(r, 2, 6) as u32
        } else {
            0
        }
    };
    let refuse_every = [refuse(), refuse()];
    let mismatch = chance(r, 0.04).then(|| spoil_slave_run(r, &file, &mut slave_file));
    let master = validate(&file).unwrap_or_else(|e| panic!("seed {seed}: drew a bad config: {e}"));
    let slave =
        validate(&slave_file).unwrap_or_else(|e| panic!("seed {seed}: drew a bad config: {e}"));
    // The bound: every job computed by the slowest live worker at the
    // slowest throttle it ends with, after the last action, plus the
    // time-outs and the link's worst pace, with room to spare.
    let end_throttle = last
        .iter()
        .copied()
        .filter(|&t| t > 0.0)
        .fold(1.0f64, f64::min)
        .min(slowest);
    // Every job of the run, arrivals and jobs added by hand included.
    let jobs_all = f64::from(master.workload.schedule().total()) + 16.0;
    let compute_s = jobs_all * job_s * 3.0 / end_throttle;
    let bytes = jobs_all * f64::from(elements) * 8.0 * 4.0;
    let link_s = bytes / (1e6 / 8.0);
    let timeouts_s = (peer_timeout as f64 / 1000.0) * 4.0 + 3.0 + 1.0;
    let last_arrival_s = master.workload.schedule().last_arrival();
    let last_s = actions.last().map_or(0.0, |t| t.at_s).max(last_arrival_s);
    let bound_s = (last_s + compute_s + link_s + timeouts_s) * 3.0 + 30.0;
    Scenario {
        seed,
        rates,
        master,
        slave,
        actions,
        bound_s,
        files: [file, slave_file],
        cpu,
        refuse_every,
        mismatch,
    }
}

/// Makes the slave's config differ from the master's `file` in one field
/// of the run that both must share, and names it.
fn spoil_slave_run(
    r: &mut Rng,
    file: &serde_json::Value,
    slave_file: &mut serde_json::Value,
) -> &'static str {
    let policy = file["policy"]["transfer"].as_str().unwrap_or("sender");
    match between(r, 0, 4) {
        0 => {
            slave_file["workload"]["jobs"] =
                json!(file["workload"]["jobs"].as_u64().unwrap_or(1) + 1);
            "workload.jobs"
        }
        1 => {
            let iterations = file["workload"]["iterations"].as_u64().unwrap_or(1);
            slave_file["workload"]["iterations"] = json!(iterations + 1);
            "workload.iterations"
        }
        2 => {
            let other = crate::policy::NAMES.iter().find(|&&n| n != policy);
            slave_file["policy"]["transfer"] = json!(other.copied().unwrap_or("sender"));
            // The other policy's default threshold is its own.
            slave_file["policy"]["threshold"] = file["policy"]["threshold"].clone();
            if slave_file["policy"]["threshold"].is_null() {
                slave_file["policy"]["threshold"] = json!(crate::policy::default_threshold(policy));
            }
            "policy.transfer"
        }
        3 => {
            let threshold = file["policy"]["threshold"]
                .as_u64()
                .unwrap_or_else(|| u64::from(crate::policy::default_threshold(policy)));
            slave_file["policy"]["threshold"] = json!(threshold + 1);
            "policy.threshold"
        }
        _ => {
            if file["workload"]["arrivals"].is_null() {
                slave_file["workload"]["arrivals"] =
                    json!({ "rate_per_s": 50.0, "duration_s": 0.5, "seed": 3 });
            } else {
                slave_file["workload"]
                    .as_object_mut()
                    .map(|w| w.remove("arrivals"));
            }
            "workload.arrivals"
        }
    }
}

fn rng_seed(r: &mut Rng) -> u64 {
    r.next() >> 12
}

/// How one seed's run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// The master verified every job.
    Verified,
    /// It ended in a failure the scenario allows (a lost master, a slave
    /// that never came), named.
    Failure(String),
    /// It had not ended by its bound: the phase and the master's last line.
    Hang(String),
    /// A safety check failed.
    Violation(String),
    /// The two runs of the seed differed.
    ReplayMismatch(String),
}

impl Outcome {
    /// True for an outcome that makes the swarm fail.
    pub fn is_bad(&self) -> bool {
        matches!(
            self,
            Outcome::Hang(_) | Outcome::Violation(_) | Outcome::ReplayMismatch(_)
        )
    }
}

/// One seed's result.
#[derive(Debug, Clone, Serialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Virtual seconds it ran.
    pub virtual_s: f64,
    /// The digest of its run.
    pub digest: String,
}

/// One run of a scenario: its outcome, virtual seconds and digest, and the
/// two nodes' logs for a verbose reader.
struct Run {
    outcome: Outcome,
    virtual_s: f64,
    digest: String,
    logs: [String; 2],
}

fn failure_kind(f: &Failure) -> &'static str {
    match f {
        Failure::PeerLost { .. } => "peer lost",
        Failure::PeerAborted { .. } => "peer aborted",
        Failure::Stale { .. } => "stale slave",
        Failure::NoSlave { .. } => "no slave",
        Failure::Panicked { .. } => "thread panicked",
        Failure::ThreadEnded { .. } => "thread ended",
        Failure::NoProgress { .. } => "no progress",
        Failure::PeerRefuses { .. } => "peer refuses",
        Failure::ConfigMismatch(_) => "configs differ",
        Failure::SecretMismatch { .. } => "secrets differ",
        Failure::Files(_) => "files",
    }
}

/// A small run's valid parameters (8 jobs of 4 doubles), for forgeries to
/// spoil one value of.
pub(crate) const SMALL_PARAMS: RunParams = RunParams {
    jobs: 8,
    elements_per_job: 4,
    iterations: 1,
    initial: 1.0,
    addend: 1.0,
    threshold: 2,
    policy: 0,
    present: 8,
    arrivals: None,
    kind: 0,
    spec: [[0; 8]; 8],
};

/// The forged hello of variant `v`, to a slave whose nonce is `nonce`.
fn forged_hello(v: u8, nonce: u64) -> Vec<u8> {
    let mut params = SMALL_PARAMS;
    match v {
        0 => {
            params.arrivals = Some(crate::arrivals::Arrivals {
                rate_per_s: 1e-300,
                duration_s: 1e300,
                seed: 1,
            })
        }
        1 => {
            params.arrivals = Some(crate::arrivals::Arrivals {
                rate_per_s: 1e300,
                duration_s: 1e-300,
                seed: 1,
            })
        }
        2 => params.jobs = u32::MAX,
        _ => params.elements_per_job = u32::MAX,
    }
    if params.arrivals.is_some() {
        // The jobs its arrivals make, so that only the values are wrong.
        params.jobs = params.schedule().total();
    }
    hello_from_master(nonce, if v == 3 { 0 } else { 1472 }, params)
}

/// A hello "from the master" echoing a slave's `nonce`, with the datagram
/// size and the run's parameters given: what another program at the
/// master's address could send (the swarm's and the tests' forgeries).
pub(crate) fn hello_from_master(nonce: u64, datagram_bytes: u32, params: RunParams) -> Vec<u8> {
    let hello = Hello {
        from_master: true,
        window_chunks: 64,
        datagram_bytes,
        compression: true,
        params,
        nonce,
    };
    let mut bytes = Vec::new();
    protocol::encode(
        &Header {
            session: 0x000b_ad5e_5510,
            seq: 1,
        },
        &Message::Hello(hello),
        &mut bytes,
    );
    bytes
}

/// Runs `s` once.
fn run_once(s: &Scenario) -> Run {
    let mut pair = Pair::with_configs(&s.master, &s.slave, s.rates, s.seed);
    pair.digest = Some(blake3::Hasher::new());
    pair.check_invariants = true;
    pair.cpu = s.cpu;
    pair.master.core.inject_refusals(s.refuse_every[0]);
    pair.slave.core.inject_refusals(s.refuse_every[1]);
    pair.start();
    let result = catch_unwind(AssertUnwindSafe(|| drive(&mut pair, s)));
    let logs = [pair.master.log_text(), pair.slave.log_text()];
    let virtual_s = pair.elapsed().as_secs_f64();
    let digest = pair.digest_hex();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            Outcome::Violation(format!("panic: {text}"))
        }
    };
    Run {
        outcome,
        virtual_s,
        digest,
        logs,
    }
}

/// Drives the pair through the scenario's actions, then to its end or its
/// bound, and checks what it ended with.
fn drive(pair: &mut Pair, s: &Scenario) -> Outcome {
    let mut restarted = false;
    for t in &s.actions {
        let Ok(at) = Duration::try_from_secs_f64(t.at_s) else {
            continue;
        };
        pair.run_until(at);
        let now = pair.now;
        match t.action {
            Action::Throttle(role, v) => {
                if pair.node(role).alive {
                    pair.node(role).set_throttle(now, v);
                }
            }
            Action::Kill(role) => pair.kill(role),
            Action::RestartSlave => {
                if pair.slave.alive {
                    pair.restart_slave();
                    restarted = true;
                }
            }
            Action::AddJobs(n) => {
                if pair.master.alive {
                    pair.master
                        .core
                        .handle(now, crate::node::core::Input::AddJobs(n));
                }
            }
            Action::ForgedHello(v) => {
                let bytes = forged_hello(v, pair.slave.core.hello_nonce());
                pair.inject(Role::Slave, &bytes);
            }
        }
    }
    let bound = Duration::from_secs_f64(s.bound_s);
    // A slave left out of the run (restarted after the master took another,
    // or never connected to a master that died) waits for a master for
    // ever, as a real one does: the run is over without it.
    // A slave whose config differs must refuse the run too, unless the
    // master died, or a lossy link or a kill kept the master's answers
    // from it.
    let excused = lossy(s) || s.has(|a| matches!(a, Action::Kill(_) | Action::RestartSlave));
    let over = |pair: &Pair| {
        let master_over = !pair.master.alive || pair.master.core.end().is_some();
        let slave = &pair.slave;
        let waits =
            !slave.core.is_connected() && (s.mismatch.is_none() || excused || !pair.master.alive);
        let slave_over = !slave.alive || slave.core.end().is_some() || waits;
        master_over && slave_over
    };
    while !over(pair) && pair.elapsed() < bound {
        // A paused master alone (its slave lost, on a link that lost too
        // much, or dead) waits for its user, as it says: the user comes back.
        let m = &pair.master;
        if m.alive && m.core.end().is_none() && m.core.throttle() <= 0.0 && m.core.is_peer_lost() {
            let now = pair.now;
            pair.master.set_throttle(now, 1.0);
        }
        let next = (pair.elapsed() + Duration::from_secs(1)).min(bound);
        if pair.run_until(next) || pair.stuck.is_some() {
            break;
        }
    }
    if let Some(stuck) = &pair.stuck {
        return Outcome::Hang(stuck.clone());
    }
    if !over(pair) {
        let m = &pair.master;
        let last = m.log.last().map_or("", |(_, l)| l.as_str()).to_owned();
        return Outcome::Hang(format!(
            "not ended after {:.1} s of virtual time: master {} in phase {}, slave {} in phase \
             {}; the master's last line: {last}",
            pair.elapsed().as_secs_f64(),
            if m.alive { "alive" } else { "dead" },
            m.core.phase().name(),
            if pair.slave.alive { "alive" } else { "dead" },
            pair.slave.core.phase().name(),
        ));
    }
    check(pair, s, restarted)
}

/// True when a link of the scenario loses datagrams.
fn lossy(s: &Scenario) -> bool {
    [(&s.master, Role::Master), (&s.slave, Role::Slave)]
        .iter()
        .any(|(config, role)| config.node(*role).link.is_some_and(|l| l.loss > 0.0))
}

/// The safety checks of an ended run.
fn check(pair: &Pair, s: &Scenario, restarted: bool) -> Outcome {
    if let Some(field) = s.mismatch {
        return check_refused(pair, s, field);
    }
    let slave_troubled = s.has(|a| matches!(a, Action::Kill(Role::Slave) | Action::RestartSlave));
    let m = &pair.master.core;
    if !pair.master.alive {
        // The slave, if it was in the run and lives, must have noticed.
        return match pair.slave.core.end() {
            Some(End::Failed(f @ (Failure::PeerLost { .. } | Failure::Stale { .. }))) => {
                Outcome::Failure(format!("master lost: {}", failure_kind(f)))
            }
            Some(End::Finished { verified: true }) | None => {
                Outcome::Failure("master lost".to_owned())
            }
            Some(other) => {
                Outcome::Violation(format!("the master died; the slave ended {other:?}"))
            }
        };
    }
    match m.end() {
        Some(End::Finished { verified: true }) => {}
        // A slave gone, or a handshake whose every try was lost (a link
        // losing a datagram in seven each way can lose the six the connect
        // time-out allows: seed 29342).
        Some(End::Failed(f @ Failure::NoSlave { .. })) if slave_troubled || lossy(s) => {
            return Outcome::Failure(failure_kind(f).to_owned());
        }
        other => {
            return Outcome::Violation(format!("the master ended {other:?}, not verified"));
        }
    }
    let Some(v) = m.verification() else {
        return Outcome::Violation("finished without a verification".to_owned());
    };
    let jobs = m.params().map_or(0, |p| p.jobs);
    if !(v.verified && v.missing.is_empty() && v.duplicated.is_empty() && v.wrong_elements == 0) {
        return Outcome::Violation(format!(
            "verification: {} missing, {} duplicated, {} wrong",
            v.missing.len(),
            v.duplicated.len(),
            v.wrong_elements
        ));
    }
    if m.ledger().count(JobState::Returned) != jobs {
        return Outcome::Violation(format!(
            "{} of {jobs} jobs returned in the ledger",
            m.ledger().count(JobState::Returned)
        ));
    }
    if m.jobs_done() + m.results_received() != jobs {
        return Outcome::Violation(format!(
            "counted twice or lost: {} done here + {} received != {jobs}",
            m.jobs_done(),
            m.results_received()
        ));
    }
    let report = crate::report::Report::build(m, &crate::report::SocketCounts::default(), v);
    if report.jobs_done.master + report.jobs_done.slave != report.jobs_total
        || report.jobs_total != jobs
    {
        return Outcome::Violation(format!(
            "report: {} + {} jobs done, {} in all",
            report.jobs_done.master, report.jobs_done.slave, report.jobs_total
        ));
    }
    // A slave in the run that lives must have ended too, and not failed
    // unless the master went on without it.
    let slave = &pair.slave;
    if slave.alive && !restarted && slave.core.is_connected() {
        match slave.core.end() {
            Some(End::Finished { verified: true }) => {}
            // The master's finish, repeated, all lost on a lossy link; or a
            // slave the master lost (on such a link) and went on without.
            Some(End::Failed(Failure::PeerLost { .. })) if lossy(s) || slave_troubled => {}
            other => {
                return Outcome::Violation(format!(
                    "the master verified; the slave ended {other:?}"
                ));
            }
        }
    }
    Outcome::Verified
}

/// The checks of a run whose configs differ in `field`: no job may have
/// moved, and each node that ended must have refused the run naming it (a
/// slave whose every answer was lost still waits for a master; a master
/// that never heard the slave, gone or behind a lossy link, says so).
fn check_refused(pair: &Pair, s: &Scenario, field: &str) -> Outcome {
    let names = |end: Option<&End>| match end {
        Some(End::Failed(Failure::ConfigMismatch(m))) => m.field == field,
        _ => false,
    };
    let slave_troubled = s.has(|a| matches!(a, Action::Kill(Role::Slave) | Action::RestartSlave));
    let m = &pair.master;
    let unheard = matches!(m.core.end(), Some(End::Failed(Failure::NoSlave { .. })))
        && (slave_troubled || lossy(s));
    if m.alive && !names(m.core.end()) && !unheard {
        return Outcome::Violation(format!(
            "the configs differ in {field}; the master ended {:?}",
            m.core.end()
        ));
    }
    let slave = &pair.slave;
    if slave.alive && slave.core.end().is_some() && !names(slave.core.end()) {
        return Outcome::Violation(format!(
            "the configs differ in {field}; the slave ended {:?}",
            slave.core.end()
        ));
    }
    if slave.core.is_connected() || m.core.is_connected() {
        return Outcome::Violation(format!(
            "the configs differ in {field}, yet the nodes connected"
        ));
    }
    Outcome::Failure(
        if unheard {
            "configs differ: no slave"
        } else {
            "configs differ"
        }
        .to_owned(),
    )
}

/// Runs seed `seed` twice and compares the two runs. With `verbose`, the
/// scenario and both nodes' logs of the first run go into `out`.
pub fn run_seed(seed: u64, jobs_max: u32, verbose: Option<&mut String>) -> SeedResult {
    let s = scenario(seed, jobs_max);
    let first = run_once(&s);
    let second = run_once(&s);
    let outcome = if first.digest != second.digest && !first.outcome.is_bad() {
        Outcome::ReplayMismatch(format!(
            "digests {} and {}",
            &first.digest[..16],
            &second.digest[..16]
        ))
    } else {
        first.outcome.clone()
    };
    if let Some(out) = verbose {
        let _ = writeln!(
            out,
            "seed {seed}: master config {}\nslave config {}\nrates {:?}, cpu {:?}, refusing every \
             {:?} batches, bound {:.1} s\nactions: {}",
            s.files[0],
            s.files[1],
            s.rates,
            s.cpu,
            s.refuse_every,
            s.bound_s,
            serde_json::to_string(&s.actions).unwrap_or_default()
        );
        for (role, log) in ["master", "slave"].iter().zip(&first.logs) {
            let _ = writeln!(out, "--- {role} log");
            out.push_str(log);
        }
        let _ = writeln!(out, "--- outcome: {outcome:?}");
    }
    SeedResult {
        seed,
        outcome,
        virtual_s: first.virtual_s,
        digest: first.digest,
    }
}

/// What a swarm run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Seeds run.
    pub runs: u64,
    /// Of them, verified.
    pub verified: u64,
    /// Named failures the scenarios allow, by kind.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Runs not ended by their bound.
    pub hangs: u64,
    /// Safety violations (a panic among them).
    pub violations: u64,
    /// Seeds whose two runs differed.
    pub replay_mismatches: u64,
    /// The bad seeds, with what went wrong.
    pub bad: Vec<SeedResult>,
    /// Virtual seconds run, first runs only.
    pub virtual_s: f64,
    /// Wall seconds.
    pub wall_s: f64,
}

impl Summary {
    /// True when every seed ended verified or with an allowed failure.
    pub fn passed(&self) -> bool {
        self.hangs == 0 && self.violations == 0 && self.replay_mismatches == 0
    }

    /// Counts one seed's result.
    pub fn add(&mut self, r: SeedResult) {
        self.runs += 1;
        self.virtual_s += r.virtual_s;
        match &r.outcome {
            Outcome::Verified => self.verified += 1,
            Outcome::Failure(kind) => *self.failures.entry(kind.clone()).or_default() += 1,
            Outcome::Hang(_) => self.hangs += 1,
            Outcome::Violation(_) => self.violations += 1,
            Outcome::ReplayMismatch(_) => self.replay_mismatches += 1,
        }
        if r.outcome.is_bad() {
            self.bad.push(r);
        }
    }

    /// The summary's lines, as `loadbal swarm` prints them.
    pub fn text(&self) -> String {
        let mut out = format!(
            "swarm: {} runs, {} verified, {} named failures{}, {} hangs, {} safety violations, \
             {} replay mismatches; {:.0} s of virtual time in {:.1} s",
            self.runs,
            self.verified,
            self.failures.values().sum::<u64>(),
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    self.failures
                        .iter()
                        .map(|(k, n)| format!("{k}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            self.hangs,
            self.violations,
            self.replay_mismatches,
            self.virtual_s,
            self.wall_s
        );
        for r in &self.bad {
            let _ = write!(
                out,
                "\nseed {} failed: {:?}\n  replay: loadbal swarm --from {} --seeds 1 -v",
                r.seed, r.outcome, r.seed
            );
        }
        out
    }
}

/// Runs seeds `from .. from + seeds` on `threads` threads, calling
/// `progress` with the seeds done so far after each.
pub fn run(
    from: u64,
    seeds: u64,
    jobs_max: u32,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Summary {
    let wall = Instant::now();
    let next = std::sync::atomic::AtomicU64::new(from);
    let done = std::sync::atomic::AtomicU64::new(0);
    let end = from.saturating_add(seeds);
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let mut results: Vec<SeedResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, relaxed);
                        if seed >= end {
                            return mine;
                        }
                        mine.push(run_seed(seed, jobs_max, None));
                        progress(done.fetch_add(1, relaxed) + 1);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(mine) => mine,
                // A seed's panic is caught in run_seed; one here is the
                // swarm's own, and the summary must not hide it.
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    results.sort_by_key(|r| r.seed);
    let mut summary = Summary::default();
    for r in results {
        summary.add(r);
    }
    summary.wall_s = wall.elapsed().as_secs_f64();
    summary
}

#[cfg(test)]
mod tests;
