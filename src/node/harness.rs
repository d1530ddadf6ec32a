//! A deterministic two-node harness, in the style of quinn-proto's test
//! `Pair`: a master's and a slave's [`NodeCore`] joined by the seeded link
//! model ([`crate::link`]), in virtual time, with modelled workers. A job
//! takes `elements * iterations / rate` virtual seconds, divided by the
//! node's throttle, and its data is computed for real (so small workloads
//! keep it cheap), so a run verifies exactly as a real one does. The same
//! logic as the real node, only the shell changed: tests of whole runs under
//! loss, peer death and replays take milliseconds, and the simulator builds
//! on it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::core::{CoreSettings, End, Event, Input, NodeCore};
use crate::config::{Config, Role};
use crate::link::{LinkConfig, LinkModel};
use crate::protocol::{self, Message};
use crate::workload::{self, Job};

/// A filter on datagrams in flight: returns true to drop one. It sees the
/// sender's role and the decoded message.
pub type DropFilter = Box<dyn FnMut(Role, &Message<'_>) -> bool>;

/// One node of the pair: its core and its modelled workers.
pub struct SimNode {
    /// The node's logic.
    pub core: NodeCore,
    /// Element updates per second of one worker at full throttle.
    pub rate: f64,
    /// Iterations a job's time is modelled with: the workload's, unless
    /// the simulator computes fewer for real than it models.
    pub modelled_iterations: Option<u32>,
    /// Seconds a job costs beyond the kernel (making its data, the memory
    /// it touches, keeping its result), spent before its computing starts
    /// and, as the real worker's, outside its throttle budget: at full
    /// throttle every job takes that much longer, throttled it fits in the
    /// periods' idle part.
    pub job_overhead: f64,
    /// Seconds a worker waits for its next job while the node has one
    /// (the round trip through the event loop), idle.
    pub job_wait: f64,
    /// Seconds from a job computed to the core taking it, the worker idle.
    pub job_handoff: f64,
    /// Each job's own cost on this node, as a real run measured it (a
    /// replay): in place of the modelled rate and overhead.
    pub measured: Option<std::sync::Arc<MeasuredJobs>>,
    /// Each worker's jobs, the first being computed.
    workers: Vec<ModelledWorker>,
    /// False once killed: it neither sends, receives nor computes.
    pub alive: bool,
    /// Every log line, with its virtual time.
    pub log: Vec<(Duration, String)>,
}

/// Each job's cost on one node, by job id, as a real run's trace gave it
/// (`loadbal simulate --replay`): the seconds its worker waited for it
/// while the node had it, making its data ready, computing it at full
/// throttle and handing it back. A job past the ends of the lists costs
/// what the node's model says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasuredJobs {
    /// Seconds from the worker's previous job taken by the core to this
    /// one reaching the worker (the round trip through the event loop),
    /// the worker idle.
    pub wait_s: Vec<f64>,
    /// Seconds preparing each job, outside the throttle's budget.
    pub prepare_s: Vec<f64>,
    /// Seconds computing each job at full throttle.
    pub compute_s: Vec<f64>,
    /// Seconds from a job's computing done to its node's core taking it
    /// (the worker's message waiting for the event loop), the worker idle.
    pub handoff_s: Vec<f64>,
}

/// The CPU the nodes' workers share with moving data: every byte a node
/// sends or receives costs `seconds_per_byte` of CPU (encoding, the tag,
/// decoding, copies), and when the workers that compute leave no core
/// free, that time comes out of theirs, shared evenly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuModel {
    /// Logical CPUs of a machine.
    pub cores: u32,
    /// CPU seconds a byte sent or received costs, at each end.
    pub seconds_per_byte: f64,
    /// Both nodes on one machine (sharing its cores), or one each.
    pub shared: bool,
}

/// `seconds` after `at`; `None` past what an `Instant` can hold (a job
/// that would take longer never ends, like a paused one).
fn later(at: Instant, seconds: f64) -> Option<Instant> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|d| at.checked_add(d))
}

/// A worker's place in its throttle periods, as the real worker's
/// [`crate::throttle::ThrottleSchedule`] keeps it: in each 100 ms period it
/// computes for `throttle × 100 ms` and sleeps the rest; a period that has
/// run out starts again when the worker next looks.
#[derive(Debug, Clone, Copy)]
struct Periods {
    start: Instant,
    used: f64,
}

impl Periods {
    fn new(now: Instant) -> Self {
        Periods {
            start: now,
            used: 0.0,
        }
    }

    /// Computes `work` seconds (at full speed) from `from` at `throttle`:
    /// when it is done (`None` at throttle 0, or past what an `Instant`
    /// holds), the periods left as they are then. Whole periods are crossed
    /// in one step, so a tiny throttle costs no more than a large one.
    fn compute(mut self, from: Instant, work: f64, throttle: f64) -> (Option<Instant>, Periods) {
        let period = crate::throttle::PERIOD.as_secs_f64();
        let budget = period * throttle.clamp(0.0, 1.0);
        if work <= 0.0 {
            return (Some(from), self);
        }
        if budget <= 0.0 {
            return (None, self);
        }
        let (mut now, mut left) = (from, work);
        for _ in 0..4 {
            if later(self.start, period).is_none_or(|end| now >= end) {
                self.start = now;
                self.used = 0.0;
            }
            let room = budget - self.used;
            if room > 0.0 {
                let slice = room.min(left);
                let Some(after) = later(now, slice) else {
                    return (None, self);
                };
                now = after;
                self.used += slice;
                left -= slice;
                // Less than a nanosecond (an `Instant`'s grain) is rounding.
                if left < 1e-9 {
                    return (Some(now), self);
                }
            }
            // The budget is spent: asleep to the period's end, where the
            // next begins; then every whole period the rest needs at once.
            let Some(end) = later(self.start, period) else {
                return (None, self);
            };
            now = now.max(end);
            let whole = (left / budget).floor();
            if whole >= 1.0 {
                // A remainder within rounding of nothing leaves the last
                // whole period to compute, not a sliver after it.
                let skip = if left - whole * budget > budget * 1e-9 {
                    whole
                } else {
                    whole - 1.0
                };
                let Some(after) = later(now, skip * period) else {
                    return (None, self);
                };
                now = after;
                left -= skip * budget;
            }
            self.start = now;
            self.used = 0.0;
        }
        // Past the steps above only with a budget so small that `left`
        // cannot shrink by it: a job that never ends, like a paused one.
        (None, self)
    }

    /// The work (full-speed seconds) done between `from` and `to` at
    /// `throttle`, the periods left as they are at `to`.
    fn computed(mut self, from: Instant, to: Instant, throttle: f64) -> (f64, Periods) {
        let period = crate::throttle::PERIOD.as_secs_f64();
        let budget = period * throttle.clamp(0.0, 1.0);
        let (mut now, mut done) = (from, 0.0);
        for _ in 0..4 {
            if now >= to {
                break;
            }
            if later(self.start, period).is_none_or(|end| now >= end) {
                self.start = now;
                self.used = 0.0;
            }
            let room = (budget - self.used).max(0.0);
            let until_to = to.saturating_duration_since(now).as_secs_f64();
            let slice = room.min(until_to);
            done += slice;
            self.used += slice;
            now = later(now, slice).unwrap_or(to);
            if now >= to {
                break;
            }
            // Asleep to the period's end, then the whole periods before
            // `to` at once.
            let Some(end) = later(self.start, period) else {
                break;
            };
            if end >= to {
                break;
            }
            now = end;
            let whole = (to.saturating_duration_since(now).as_secs_f64() / period).floor();
            if whole >= 1.0 {
                done += whole * budget;
                now = later(now, whole * period).unwrap_or(to);
            }
            self.start = now;
            self.used = 0.0;
        }
        (done, self)
    }
}

/// One modelled worker.
struct ModelledWorker {
    /// Its jobs, the first being computed.
    jobs: VecDeque<Job>,
    /// Its throttle periods, as of `running`'s instant (or of its last job's
    /// end, when idle).
    periods: Periods,
    /// The running job's seconds still to compute at full throttle, and
    /// since when it computes at the present throttle.
    running: Option<(f64, Instant)>,
    /// The running job's whole time at full throttle.
    full_seconds: f64,
    /// The running job's preparation.
    prepare_seconds: f64,
    /// The running job's handoff to the core after it is computed.
    handoff_seconds: f64,
    /// When the running job is computed at the present throttle (None:
    /// paused); its handoff to the core follows.
    computed: Option<Instant>,
    /// When the running job reaches the core (None: paused).
    ends: Option<Instant>,
    /// When the running job started.
    started: Option<Instant>,
}

impl ModelledWorker {
    /// The running job has `left` seconds of computing from `since` at
    /// `throttle`: when it is computed, and when it reaches the core.
    fn finish(&mut self, since: Instant, left: f64, throttle: f64) {
        self.computed = self.periods.compute(since, left, throttle).0;
        self.ends = self
            .computed
            .and_then(|computed| later(computed, self.handoff_seconds));
    }

    /// True while the worker computes at `now`: its job prepared and not
    /// yet computed (neither waiting for it, preparing it, handing it
    /// back, nor paused).
    fn computing(&self, now: Instant) -> bool {
        self.running.is_some_and(|(_, since)| since <= now)
            && self.computed.is_some_and(|computed| computed > now)
    }
}

impl SimNode {
    fn new(role: Role, config: &Config, now: Instant, rate: f64) -> Self {
        let settings = CoreSettings {
            window_chunks: 256,
            headless: true,
            random_bootstrap: false,
            memory_bytes: 0,
            work: None,
        };
        SimNode {
            core: NodeCore::new(role, config, settings, now),
            rate,
            modelled_iterations: None,
            job_overhead: 0.0,
            job_wait: 0.0,
            job_handoff: 0.0,
            measured: None,
            workers: (0..config.node(role).workers.max(1))
                .map(|_| ModelledWorker {
                    jobs: VecDeque::new(),
                    periods: Periods::new(now),
                    running: None,
                    full_seconds: 0.0,
                    prepare_seconds: 0.0,
                    handoff_seconds: 0.0,
                    computed: None,
                    ends: None,
                    started: None,
                })
                .collect(),
            alive: true,
            log: Vec::new(),
        }
    }

    /// The log as one text, a line each.
    pub fn log_text(&self) -> String {
        self.log.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// A job's seconds waiting, preparing, computing at full throttle and
    /// handing over.
    fn job_seconds(&self, job: &Job, iterations: u32) -> (f64, f64, f64, f64) {
        let index = job.id as usize;
        let measured = |list: fn(&MeasuredJobs) -> &Vec<f64>| {
            self.measured
                .as_ref()
                .and_then(|m| list(m).get(index).copied())
                .filter(|s| s.is_finite() && *s >= 0.0)
        };
        let iterations = self.modelled_iterations.unwrap_or(iterations);
        let work = job.data.len().max(1) as f64 * f64::from(iterations.max(1));
        (
            measured(|m| &m.wait_s).unwrap_or(self.job_wait),
            measured(|m| &m.prepare_s).unwrap_or(self.job_overhead),
            measured(|m| &m.compute_s).unwrap_or(work / self.rate),
            measured(|m| &m.handoff_s).unwrap_or(self.job_handoff),
        )
    }

    /// Starts the head job of each idle worker, at the present throttle.
    fn schedule(&mut self, now: Instant) {
        let Some(iterations) = self.core.params().map(|p| p.iterations) else {
            return;
        };
        let throttle = self.core.throttle();
        for i in 0..self.workers.len() {
            if self.workers[i].running.is_none()
                && let Some(job) = self.workers[i].jobs.front()
            {
                let (wait, prepare, seconds, handoff) = self.job_seconds(job, iterations);
                // It reaches the worker, then its preparation, outside the
                // throttle's budget.
                let starts = later(now, wait).unwrap_or(now);
                let since = later(starts, prepare).unwrap_or(starts);
                let w = &mut self.workers[i];
                w.running = Some((seconds, since));
                w.full_seconds = seconds;
                w.prepare_seconds = prepare;
                w.handoff_seconds = handoff;
                w.started = Some(starts);
                w.finish(since, seconds, throttle);
            }
        }
    }

    /// Sets the node's throttle at `now`: running jobs go on at the new pace.
    pub fn set_throttle(&mut self, now: Instant, throttle: f64) {
        let old = self.core.throttle();
        self.core.handle(now, Input::SetThrottle(throttle));
        let new = self.core.throttle();
        for w in &mut self.workers {
            // A job computed and being handed back goes on as it was.
            if w.computed.is_some_and(|computed| computed <= now) {
                continue;
            }
            if let Some((left, since)) = w.running {
                // A job still in its preparation starts computing after it.
                let at = now.max(since);
                let (done, periods) = w.periods.computed(since, at, old);
                let left = (left - done).max(0.0);
                w.periods = periods;
                w.running = Some((left, at));
                w.finish(at, left, new);
            }
        }
    }

    fn next_job_end(&self) -> Option<Instant> {
        self.workers.iter().filter_map(|w| w.ends).min()
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InTransit {
    at: Instant,
    order: u64,
    to_slave: bool,
    bytes: Vec<u8>,
}

/// Two nodes in virtual time. See the module documentation.
pub struct Pair {
    /// The master.
    pub master: SimNode,
    /// The slave.
    pub slave: SimNode,
    /// Virtual time now.
    pub now: Instant,
    start: Instant,
    /// Each node's config (master, slave): a restarted slave takes its own.
    configs: [Config; 2],
    links: [LinkModel; 2],
    transit: BinaryHeap<Reverse<InTransit>>,
    order: u64,
    /// Drops datagrams as it says, after the links.
    pub filter: Option<DropFilter>,
    /// Datagrams sent by each role (master, slave), and dropped by the filter.
    pub sent: [u64; 2],
    /// Their bytes.
    pub bytes_sent: [u64; 2],
    /// Datagrams delivered to each role (after the link and the filter).
    pub delivered: [u64; 2],
    /// The CPU moving data takes from the workers; none if `None`.
    pub cpu: Option<CpuModel>,
    /// Datagrams the filter dropped.
    pub filtered: u64,
    /// Datagrams each role's reader dropped as longer than its receive
    /// buffer (the real reader counts them unauthentic).
    pub cut: [u64; 2],
    /// Datagrams a node's emulated link still held when the node ended:
    /// its process exits and they are never sent (master, slave).
    pub lost_at_exit: [u64; 2],
    /// When set, every input and output of both cores goes into it (the
    /// datagrams sent and delivered, the jobs done, the log lines, each
    /// with its virtual time): two runs of one seed must hash the same.
    pub digest: Option<blake3::Hasher>,
    /// Check both cores' job accounting after every step (the swarm does;
    /// debug builds check it inside the core anyway).
    pub check_invariants: bool,
    /// Set when the pair stopped making progress: a timer due and never
    /// cleared, handled over and over at one instant. The run stops there
    /// (every later `run` returns false at once) and this says where.
    pub stuck: Option<String>,
    seed: u64,
}

/// A link that changes nothing.
fn plain() -> LinkConfig {
    LinkConfig {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        delay_ms: 0.0,
        jitter_ms: 0.0,
        bandwidth_mbit: 0.0,
        seed: 0,
    }
}

impl Pair {
    /// A pair under `config`: each node's datagrams go through its `link`
    /// (plain if none), and each worker updates `rate` elements a second.
    /// `seed` chooses the session id and nonces.
    pub fn new(config: &Config, rate: f64, seed: u64) -> Self {
        Self::with_configs(config, config, [rate, rate], seed)
    }

    /// A pair whose nodes run under configs of their own (as two machines'
    /// config.json files may differ), each node's workers at its own rate.
    /// Each node's datagrams go through the `link` its own config gives it.
    pub fn with_configs(master: &Config, slave: &Config, rates: [f64; 2], seed: u64) -> Self {
        let now = Instant::now();
        // Each way of the pair, and each run seed, draws its own values
        // from the link's seed.
        let link = |config: &Config, role: Role| {
            LinkModel::new(config.node(role).link.unwrap_or_else(plain))
                .for_stream(seed.wrapping_mul(2).wrapping_add(role as u64))
        };
        Pair {
            master: SimNode::new(Role::Master, master, now, rates[0]),
            slave: SimNode::new(Role::Slave, slave, now, rates[1]),
            now,
            start: now,
            configs: [master.clone(), slave.clone()],
            links: [link(master, Role::Master), link(slave, Role::Slave)],
            transit: BinaryHeap::new(),
            order: 0,
            filter: None,
            sent: [0, 0],
            bytes_sent: [0, 0],
            delivered: [0, 0],
            cpu: None,
            filtered: 0,
            cut: [0, 0],
            lost_at_exit: [0, 0],
            digest: None,
            check_invariants: false,
            stuck: None,
            seed,
        }
    }

    /// Adds a record to the digest, if one is kept: the role, the virtual
    /// time, then the bytes.
    fn record(&mut self, role: Role, what: u8, bytes: &[u8]) {
        let at = (self.now - self.start).as_nanos() as u64;
        if let Some(d) = self.digest.as_mut() {
            d.update(&[what, role as u8]);
            d.update(&at.to_le_bytes());
            d.update(&(bytes.len() as u64).to_le_bytes());
            d.update(bytes);
        }
    }

    /// The digest of everything recorded so far (all zeros when none is kept).
    pub fn digest_hex(&self) -> String {
        self.digest
            .as_ref()
            .map_or_else(|| "0".repeat(64), |d| d.finalize().to_hex().to_string())
    }

    /// The virtual instant the pair was made at.
    pub fn start_instant(&self) -> Instant {
        self.start
    }

    /// Virtual time since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The node of `role`.
    pub fn node(&mut self, role: Role) -> &mut SimNode {
        match role {
            Role::Master => &mut self.master,
            Role::Slave => &mut self.slave,
        }
    }

    /// The node of `role`, to read.
    pub fn node_ref(&self, role: Role) -> &SimNode {
        match role {
            Role::Master => &self.master,
            Role::Slave => &self.slave,
        }
    }

    /// Presses Start on both nodes, the slave first.
    pub fn start(&mut self) {
        let (m, s) = (self.random(), self.random());
        let now = self.now;
        self.slave.core.handle(now, Input::Start { random: s });
        self.master.core.handle(now, Input::Start { random: m });
    }

    fn random(&mut self) -> u64 {
        // SplitMix64: a fresh nonzero number per call, from the seed.
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).max(1)
    }

    /// Kills a node: from now on it neither sends, receives nor computes.
    pub fn kill(&mut self, role: Role) {
        self.node(role).alive = false;
    }

    /// Replaces the slave with a fresh one (a restarted process), started.
    pub fn restart_slave(&mut self) {
        let old = SimNode::new(Role::Slave, &self.configs[1], self.now, self.slave.rate);
        let old = std::mem::replace(&mut self.slave, old);
        // The restarted slave is the same machine: its jobs cost the same.
        self.slave.job_overhead = old.job_overhead;
        self.slave.job_wait = old.job_wait;
        self.slave.job_handoff = old.job_handoff;
        self.slave.measured = old.measured;
        self.slave.modelled_iterations = old.modelled_iterations;
        let random = self.random();
        let now = self.now;
        self.slave.core.handle(now, Input::Start { random });
    }

    /// Injects a datagram as if it arrived now at `to` (a replay, a forgery).
    pub fn inject(&mut self, to: Role, bytes: &[u8]) {
        let now = self.now;
        let node = self.node(to);
        if node.alive {
            node.core.handle_datagram(now, bytes);
        }
    }

    /// Moves outputs along: datagrams onto the links, jobs to the workers,
    /// events into the logs.
    fn flush(&mut self) {
        let mut buf = Vec::new();
        let start = self.start;
        for role in [Role::Master, Role::Slave] {
            let now = self.now;
            loop {
                let node = self.node(role);
                if !node.core.poll_transmit(now, &mut buf) {
                    break;
                }
                if !node.alive {
                    continue;
                }
                let i = usize::from(role == Role::Slave);
                let sent = std::mem::take(&mut buf);
                self.record(role, b's', &sent);
                buf = sent;
                self.sent[i] += 1;
                self.bytes_sent[i] += buf.len() as u64;
                self.charge(role, buf.len());
                if let Some(filter) = self.filter.as_mut()
                    && let Ok((_, message)) = protocol::decode(&buf)
                    && filter(role, &message)
                {
                    self.filtered += 1;
                    continue;
                }
                for at in self.links[i].admit(now, buf.len()) {
                    self.order += 1;
                    self.transit.push(Reverse(InTransit {
                        at,
                        order: self.order,
                        to_slave: role == Role::Master,
                        bytes: buf.clone(),
                    }));
                }
            }
            let node = self.node(role);
            while let Some(work) = node.core.poll_work() {
                let mut job = work.job;
                job.make_ready(&work.workload);
                // Computed for real now; it completes in virtual time.
                while !job.is_complete() {
                    workload::compute_slice(&mut job, usize::MAX, &work.workload);
                }
                node.workers[work.worker].jobs.push_back(job);
            }
            node.schedule(now);
            let mut lines = Vec::new();
            while let Some(event) = node.core.poll_event() {
                if let Event::Log { text, .. } = event {
                    lines.push(text);
                }
            }
            for text in lines {
                self.record(role, b'l', text.as_bytes());
                self.node(role).log.push((now - start, text));
            }
        }
    }

    /// Runs until both nodes have ended, or `limit` of virtual time has
    /// passed, or nothing is left to happen, or the pair is stuck (see
    /// [`Pair::stuck`]). Returns true if both ended.
    pub fn run(&mut self, limit: Duration) -> bool {
        self.run_while(limit, |_| true)
    }

    /// Runs until the master's bootstrap starts, stopping at that very
    /// instant, or as [`Pair::run`] stops; returns when it started.
    pub fn run_to_bootstrap(&mut self, limit: Duration) -> Option<Instant> {
        let started = |p: &Pair| p.master.core.phase_started()[protocol::Phase::Bootstrap as usize];
        self.run_while(limit, |p| started(p).is_none());
        started(self)
    }

    /// [`Pair::run`], stopping also at the first instant `go_on` says no.
    fn run_while(&mut self, limit: Duration, go_on: impl Fn(&Pair) -> bool) -> bool {
        let deadline = self.now + limit;
        // Steps at one instant: a timer that handling never clears would
        // spin here for ever; stop and say so instead.
        let (mut at, mut steps_here) = (self.now, 0u32);
        loop {
            if self.stuck.is_some() {
                return false;
            }
            if self.now == at {
                steps_here += 1;
                if steps_here >= 100_000 {
                    self.stuck = Some(format!(
                        "no progress after {:.6} s of virtual time: a timer is due and never \
                         cleared (master in phase {}, slave in phase {})",
                        self.elapsed().as_secs_f64(),
                        self.master.core.phase().name(),
                        self.slave.core.phase().name()
                    ));
                    return false;
                }
            } else {
                (at, steps_here) = (self.now, 0);
            }
            self.flush();
            self.exit_ended();
            let ended = |n: &SimNode| !n.alive || n.core.end().is_some();
            if ended(&self.master) && ended(&self.slave) {
                return true;
            }
            if !go_on(self) {
                return false;
            }
            let mut next: Option<Instant> = None;
            let mut consider = |t: Option<Instant>| {
                if let Some(t) = t {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            };
            consider(self.transit.peek().map(|Reverse(d)| d.at));
            for node in [&mut self.master, &mut self.slave] {
                if node.alive && node.core.end().is_none() {
                    consider(node.core.poll_timeout());
                    consider(node.next_job_end());
                }
            }
            let Some(next) = next else {
                return false;
            };
            if next > deadline {
                self.now = deadline;
                return false;
            }
            self.now = self.now.max(next);
            self.step();
        }
    }

    /// A node whose part has ended exits: what its emulated link (a thread
    /// of its process) still holds is never sent. Without an emulated link
    /// its datagrams are on the wire already and arrive.
    fn exit_ended(&mut self) {
        for (i, role) in [Role::Master, Role::Slave].into_iter().enumerate() {
            let ended = self.node(role).core.end().is_some();
            if !ended || self.configs[i].node(role).link.is_none() {
                continue;
            }
            let to_slave = role == Role::Master;
            let before = self.transit.len();
            self.transit.retain(|Reverse(d)| d.to_slave != to_slave);
            self.lost_at_exit[i] += (before - self.transit.len()) as u64;
        }
    }

    /// Runs until `at` of virtual time since the start, then stops there.
    pub fn run_until(&mut self, at: Duration) -> bool {
        let limit = (self.start + at).saturating_duration_since(self.now);
        self.run(limit)
    }

    /// Delivers everything due now: datagrams, finished jobs, timers.
    fn step(&mut self) {
        let now = self.now;
        while self.transit.peek().is_some_and(|Reverse(d)| d.at <= now) {
            let Some(Reverse(d)) = self.transit.pop() else {
                break;
            };
            let node = if d.to_slave {
                &mut self.slave
            } else {
                &mut self.master
            };
            if node.alive {
                let to = if d.to_slave {
                    Role::Slave
                } else {
                    Role::Master
                };
                // The reader's buffer: a datagram longer than it fails its
                // tag, as on a real socket.
                let sealed = d.bytes.len() + crate::auth::TAG_BYTES;
                if sealed > node.core.receive_bytes() {
                    self.cut[usize::from(d.to_slave)] += 1;
                    continue;
                }
                self.record(to, b'r', &d.bytes);
                self.delivered[usize::from(d.to_slave)] += 1;
                self.charge(to, d.bytes.len());
                let node = if d.to_slave {
                    &mut self.slave
                } else {
                    &mut self.master
                };
                node.core.handle_datagram(now, &d.bytes);
            }
        }
        for role in [Role::Master, Role::Slave] {
            if !self.node(role).alive {
                continue;
            }
            for worker in 0..self.node(role).workers.len() {
                let w = &mut self.node(role).workers[worker];
                if w.ends.is_none_or(|t| t > now) {
                    continue;
                }
                // The periods as the job leaves them.
                if let Some((left, since)) = w.running {
                    let throttle = self.node(role).core.throttle();
                    let w = &mut self.node(role).workers[worker];
                    w.periods = w.periods.compute(since, left, throttle).1;
                }
                let w = &mut self.node(role).workers[worker];
                w.ends = None;
                w.computed = None;
                w.running = None;
                let computing =
                    Duration::try_from_secs_f64(w.full_seconds).unwrap_or(Duration::MAX);
                let preparing =
                    Duration::try_from_secs_f64(w.prepare_seconds).unwrap_or(Duration::MAX);
                let started = w.started.take().unwrap_or(now);
                if let Some(job) = w.jobs.pop_front() {
                    let mut what = (worker as u64).to_le_bytes().to_vec();
                    what.extend_from_slice(&job.id.to_le_bytes());
                    self.record(role, b'j', &what);
                    self.node(role).core.handle(
                        now,
                        Input::JobDone {
                            worker,
                            job,
                            started,
                            preparing,
                            computing,
                        },
                    );
                }
            }
            let node = self.node(role);
            if node.core.poll_timeout().is_some_and(|t| t <= now) {
                node.core.handle_timeout(now);
            }
        }
        if self.check_invariants {
            for node in [&self.master, &self.slave] {
                if node.alive
                    && let Err(broken) = node.core.check_invariants()
                {
                    panic!("at {:?}: {broken}", self.elapsed());
                }
            }
        }
    }

    /// `role` moved `bytes`: its CPU time comes out of the computing
    /// workers' when they leave no core free.
    fn charge(&mut self, role: Role, bytes: usize) {
        if let Some(cpu) = self.cpu {
            self.charge_cpu(role, bytes as f64 * cpu.seconds_per_byte);
        }
    }

    /// `seconds` of CPU `role`'s node spends besides its workers: taken
    /// from the computing workers when they leave no core free.
    fn charge_cpu(&mut self, role: Role, seconds: f64) {
        let Some(cpu) = self.cpu else {
            return;
        };
        if seconds <= 0.0 {
            return;
        }
        let now = self.now;
        let computing = |n: &SimNode| n.workers.iter().filter(|w| w.computing(now)).count();
        let (mine, other) = match role {
            Role::Master => (computing(&self.master), computing(&self.slave)),
            Role::Slave => (computing(&self.slave), computing(&self.master)),
        };
        let running = if cpu.shared { mine + other } else { mine };
        if running == 0 || (running as u32) < cpu.cores {
            return;
        }
        let each = seconds / running as f64;
        let nodes: Vec<&mut SimNode> = if cpu.shared {
            vec![&mut self.master, &mut self.slave]
        } else {
            vec![self.node(role)]
        };
        for node in nodes {
            let throttle = node.core.throttle();
            for w in &mut node.workers {
                if let (true, Some((left, since))) = (w.computing(now), w.running) {
                    // The CPU taken is compute time the job still needs.
                    let left = left + each;
                    w.running = Some((left, since));
                    w.finish(since, left, throttle);
                }
            }
        }
    }

    /// Gives both directions' bottlenecks a queue of `datagrams`.
    pub fn set_queue_limit(&mut self, datagrams: usize) {
        for link in &mut self.links {
            *link = link.clone().with_queue_limit(datagrams);
        }
    }

    /// Datagrams the link of `role`'s outgoing direction dropped.
    pub fn link_dropped(&self, role: Role) -> u64 {
        self.links[usize::from(role == Role::Slave)].dropped
    }

    /// How the master's part ended.
    pub fn master_end(&self) -> Option<&End> {
        self.master.core.end()
    }

    /// How the slave's part ended.
    pub fn slave_end(&self) -> Option<&End> {
        self.slave.core.end()
    }
}

#[cfg(test)]
#[path = "harness_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "policy_runs.rs"]
mod policy_runs;

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod liveness_tests;
