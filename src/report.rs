//! The run report (`--report PATH`): one JSON object with the fields the
//! contract names, built by the master from what its node recorded, and
//! written atomically (a temporary file, then a rename).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::config::{PolicyConfig, Role};
use crate::node::core::{Failure, JobState, NodeCore};
use crate::protocol::Phase;
use crate::workload::Verification;

/// Jobs per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PerNode {
    /// The master's figure.
    pub master: u32,
    /// The slave's figure.
    pub slave: u32,
}

/// Jobs moved by the policy, each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobsMoved {
    /// From the master to the slave.
    pub to_slave: u32,
    /// From the slave to the master.
    pub to_master: u32,
}

/// One policy transfer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    /// Seconds since the run started, when the jobs changed owner.
    pub at_s: f64,
    /// The sending role.
    pub from: Role,
    /// The receiving role.
    pub to: Role,
    /// Jobs moved.
    pub jobs: u32,
}

/// Seconds spent in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Elapsed {
    /// Bootstrap start to done.
    pub total: f64,
    /// The bootstrap.
    pub bootstrap: f64,
    /// Processing.
    pub processing: f64,
    /// Aggregation.
    pub aggregation: f64,
}

/// Throttles at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Throttles {
    /// The master's.
    pub master: f64,
    /// The slave's (from its last state).
    pub slave: f64,
}

/// The master socket's datagram counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Network {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received and accepted.
    pub datagrams_received: u64,
    /// Chunks sent again.
    pub retransmitted: u64,
    /// Datagrams dropped: malformed, stale, duplicate or from an unknown source.
    pub rejected: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// `rejected`, broken down by reason.
    pub rejected_by_reason: crate::transport::Rejected,
    /// Datagrams the master's emulated link dropped (0 on a plain link).
    pub link_dropped: u64,
    /// Authentic datagrams the master dropped because its core's inbox was
    /// full (the transfer layer resent them).
    pub inbox_dropped: u64,
    /// The largest datagram the master sends (from the config, or the
    /// default for its addresses).
    pub datagram_bytes: u32,
    /// The master's batches and what compression did to them.
    pub batches: Batches,
}

/// The batches one node sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Batches {
    /// Batches sent.
    pub sent: u64,
    /// Of them, sent compressed.
    pub compressed: u64,
    /// Their bytes before compression.
    pub raw_bytes: u64,
    /// Their bytes on the wire (once each).
    pub wire_bytes: u64,
}

/// What verification found beyond the yes or no.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationDetail {
    /// Job ids with no result.
    pub missing_jobs: Vec<u32>,
    /// Job ids whose result arrived twice.
    pub duplicated_jobs: Vec<u32>,
    /// Elements not bit-equal to the expected value.
    pub wrong_elements: u64,
    /// Second results for reclaimed jobs, dropped without fault.
    pub late_results_dropped: u64,
}

/// The emulated links of the run (null where plain).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Links {
    /// The master's outgoing link.
    pub master: Option<crate::link::LinkConfig>,
    /// The slave's outgoing link.
    pub slave: Option<crate::link::LinkConfig>,
}

/// The process's peak resident memory so far (`VmHWM` in
/// `/proc/self/status`); `None` where that file does not exist.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Every job came back once and every element equals the expected value.
    pub verified: bool,
    /// The value every element must hold.
    pub expected_value: f64,
    /// Jobs in the workload.
    pub jobs_total: u32,
    /// Which node computed how many jobs.
    pub jobs_done: PerNode,
    /// Jobs the master sent to the slave at bootstrap.
    pub bootstrap_jobs: u32,
    /// Jobs moved by the policy.
    pub jobs_moved: JobsMoved,
    /// Every policy transfer.
    pub transfers: Vec<Transfer>,
    /// Time per phase.
    pub elapsed_s: Elapsed,
    /// Throttles at the end.
    pub throttle: Throttles,
    /// The policy.
    pub policy: PolicyConfig,
    /// The master's socket.
    pub network: Network,
    /// Details of the verification.
    pub verification: VerificationDetail,
    /// The emulated links, when the config sets any.
    pub link: Links,
    /// Jobs the master took back from a lost slave and computed itself.
    pub jobs_reclaimed: u32,
    /// Seconds into the run when the slave was declared lost; null if never.
    pub peer_lost_at_s: Option<f64>,
    /// The process's peak resident memory when the report was made (in a
    /// demo, both nodes'); null where the system does not say.
    pub peak_rss_bytes: Option<u64>,
    /// Lines of this process's output dropped because stderr was not read
    /// as fast as the run wrote them (a pipe nobody reads): the run never
    /// waits on stderr.
    pub log_lines_dropped: u64,
    /// With `workload.arrivals` or Add jobs: the response times of the jobs
    /// that came during the run, from each one's coming to its result held
    /// by the master. Absent when every job was there from the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_s: Option<ResponseTimes>,
    /// A run that failed: the failure, as the node said it. Absent for a
    /// run that finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// A run that failed: where every job stood when it did, by the
    /// master's ledger. Absent for a run that finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerCounts>,
    /// The digits and command kinds: what ran and what came of it. Absent
    /// for the vector kind (whose report is unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work: Option<WorkReport>,
}

/// The digits and command kinds' part of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkReport {
    /// `"digits"` or `"command"`.
    pub kind: String,
    /// The program, as a shell would show it (digits: "digit sum").
    pub program: String,
    /// The input, the output and the pieces, in words.
    pub describe: String,
    /// Pieces the input makes.
    pub pieces: u32,
    /// Of them, those a killed run had finished (`--resume`); not run again.
    pub resumed: u32,
    /// Attempts made, both nodes', failed ones included.
    pub attempts: u32,
    /// The pieces (numbered from 0, as the joblog's Seq - 1) that failed
    /// for good; their output is not in the output.
    pub jobs_failed: Vec<u32>,
    /// Command: bytes written to the output.
    pub output_bytes: Option<u64>,
    /// Digits: the sum of the jobs' sums.
    pub digits_total: Option<u64>,
    /// Digits: a straight pass over the input's digits.
    pub straight_total: Option<u64>,
    /// Why the output could not be written, if it could not.
    pub output_error: Option<String>,
    /// `verify_sample`: the slave's jobs the master ran again to compare.
    pub verify_sampled: u32,
    /// Of them, the pieces whose two outputs differed (failed for good).
    pub verify_mismatches: Vec<u32>,
    /// The most jobs lent to the slave at once (their input held there):
    /// the memory budget bounds it.
    pub peak_lent_jobs: u32,
}

impl WorkReport {
    fn of(core: &NodeCore) -> Option<WorkReport> {
        let work = core.work()?;
        let (pieces, resumed) = work.pieces();
        let finish = core.pieces_finish();
        let done = finish.and_then(|f| f.as_ref().ok());
        Some(WorkReport {
            kind: work.kind().name().to_owned(),
            program: work.command_line(),
            describe: work.describe(),
            pieces,
            resumed,
            attempts: core.attempts(),
            jobs_failed: {
                let mut failed: Vec<u32> = core
                    .failed_jobs()
                    .iter()
                    .map(|&id| work.piece_of(id))
                    .collect();
                failed.sort_unstable();
                failed
            },
            output_bytes: done
                .filter(|_| work.kind() == crate::config::Kind::Command)
                .map(|f| f.output_bytes),
            digits_total: done.and_then(|f| f.digits_total).map(|t| t.0),
            straight_total: done.and_then(|f| f.digits_total).map(|t| t.1),
            output_error: finish.and_then(|f| f.as_ref().err().cloned()),
            verify_sampled: core.verify_counts().0,
            peak_lent_jobs: core.peak_lent(),
            verify_mismatches: {
                let mut m: Vec<u32> = core
                    .verify_counts()
                    .1
                    .iter()
                    .map(|&id| work.piece_of(id))
                    .collect();
                m.sort_unstable();
                m
            },
        })
    }

    /// True when jobs failed for good (exit code 4).
    pub fn has_failures(&self) -> bool {
        !self.jobs_failed.is_empty()
    }
}

/// The master's jobs in each state of its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LedgerCounts {
    /// Waiting in the master's queue.
    pub queued: u32,
    /// Given to one of its workers.
    pub computing: u32,
    /// In a batch to the slave not acknowledged yet.
    pub in_flight: u32,
    /// Delivered to the slave, the result not back.
    pub lent: u32,
    /// Result held.
    pub returned: u32,
    /// Not the master's: the slave's own arrivals, or not arrived yet.
    pub absent: u32,
}

/// Response times of the jobs that came during the run, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResponseTimes {
    /// Jobs measured (every such job whose result came in).
    pub jobs: u32,
    /// Their mean.
    pub mean: f64,
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
}

impl ResponseTimes {
    /// The figures of `times` (seconds); `None` for none.
    pub fn of(times: &[f64]) -> Option<ResponseTimes> {
        if times.is_empty() {
            return None;
        }
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        // The nearest-rank percentile: the smallest value with at least
        // p % of the values at or below it.
        let rank = |p: f64| {
            let r = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            sorted[r.clamp(1, sorted.len()) - 1]
        };
        Some(ResponseTimes {
            jobs: sorted.len() as u32,
            mean: round_micros(sorted.iter().sum::<f64>() / sorted.len() as f64),
            p50: round_micros(rank(50.0)),
            p99: round_micros(rank(99.0)),
        })
    }
}

/// What a node's socket counted, as the report shows it: the transport's
/// counters when the run was real, the link model's in a simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounts {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received with the right source and tag.
    pub datagrams_received: u64,
    /// Bytes sent (UDP payload).
    pub bytes_sent: u64,
    /// Datagrams the emulated link dropped.
    pub link_dropped: u64,
    /// Authentic datagrams dropped because the core's inbox was full.
    pub inbox_dropped: u64,
    /// Datagrams dropped for a missing or wrong tag.
    pub unauthentic: u64,
    /// Datagrams dropped as from an address other than the peer's.
    pub unknown_source: u64,
}

impl Report {
    /// Builds the report from the master's core at the end of a run, with
    /// the verification it made and its socket's counters.
    pub fn build(core: &NodeCore, net: &SocketCounts, verification: &Verification) -> Report {
        let config = core.config();
        let workload = config.workload.clone();
        let started = core.phase_started();
        let seconds = |from: Phase, to: Phase| -> f64 {
            match (started[from as usize], started[to as usize]) {
                (Some(a), Some(b)) => round_micros(b.saturating_duration_since(a).as_secs_f64()),
                _ => 0.0,
            }
        };
        let bootstrap = seconds(Phase::Bootstrap, Phase::Processing);
        let processing = seconds(Phase::Processing, Phase::Aggregation);
        let aggregation = seconds(Phase::Aggregation, Phase::Done);
        // The phases are contiguous: the total is their sum, so the report's
        // figures add up exactly whatever the rounding.
        let elapsed = Elapsed {
            total: round_micros(bootstrap + processing + aggregation),
            bootstrap,
            processing,
            aggregation,
        };
        let transfers: Vec<Transfer> = core
            .transfers()
            .iter()
            .map(|t| Transfer {
                at_s: (t.at_s * 1000.0).round() / 1000.0,
                from: t.from,
                to: t.from.peer(),
                jobs: t.jobs,
            })
            .collect();
        let moved = |from: Role| -> u32 {
            transfers
                .iter()
                .filter(|t| t.from == from)
                .map(|t| t.jobs)
                .sum()
        };
        let counters = core.counters();
        let mut rejected = counters.rejected;
        rejected.unauthentic += net.unauthentic;
        rejected.unknown_source += net.unknown_source;
        let late_results_dropped = core.results().map_or(0, |store| store.late_results());
        let slave_throttle = core
            .peer()
            .map_or(config.slave.throttle, |p| f64::from(p.state.throttle));
        Report {
            verified: verification.verified,
            expected_value: verification.expected,
            // Every job that was in the run: present, arrived or added.
            jobs_total: core.params().map_or(workload.jobs, |p| p.jobs),
            jobs_done: PerNode {
                master: core.jobs_done(),
                slave: core.results_received(),
            },
            bootstrap_jobs: core.bootstrap_jobs(),
            jobs_moved: JobsMoved {
                to_slave: moved(Role::Master),
                to_master: moved(Role::Slave),
            },
            transfers,
            elapsed_s: elapsed,
            throttle: Throttles {
                master: core.throttle(),
                slave: slave_throttle,
            },
            // The threshold in force, also when the config left it to the policy.
            policy: crate::config::PolicyConfig {
                threshold: Some(config.policy.threshold()),
                ..config.policy.clone()
            },
            network: Network {
                datagrams_sent: net.datagrams_sent,
                datagrams_received: net.datagrams_received,
                retransmitted: core.retransmitted(),
                rejected: rejected.total(),
                bytes_sent: net.bytes_sent,
                rejected_by_reason: rejected,
                link_dropped: net.link_dropped,
                inbox_dropped: net.inbox_dropped,
                datagram_bytes: config.datagram_bytes,
                batches: Batches {
                    sent: counters.batches_sent,
                    compressed: counters.batches_compressed,
                    raw_bytes: counters.batch_raw_bytes,
                    wire_bytes: counters.batch_wire_bytes,
                },
            },
            verification: VerificationDetail {
                missing_jobs: verification.missing.clone(),
                duplicated_jobs: verification.duplicated.clone(),
                wrong_elements: verification.wrong_elements,
                late_results_dropped,
            },
            link: Links {
                master: config.master.link,
                slave: config.slave.link,
            },
            jobs_reclaimed: core.jobs_reclaimed(),
            peer_lost_at_s: core.peer_lost_at_s(),
            peak_rss_bytes: peak_rss_bytes(),
            log_lines_dropped: crate::term::dropped(),
            response_s: if core.jobs_came_during_run() {
                ResponseTimes::of(&core.response_times())
            } else {
                None
            },
            failure: None,
            ledger: None,
            work: WorkReport::of(core),
        }
    }

    /// The report of a master's run that failed: the results held so far,
    /// verified (the missing ones listed), the failure, and where every job
    /// stood. None on a slave, or when the run failed before it began (no
    /// slave, configs that differ: nothing was run).
    pub fn build_failed(core: &NodeCore, net: &SocketCounts, failure: &Failure) -> Option<Report> {
        let started = core.phase_started();
        let began = started[Phase::Bootstrap as usize]?;
        // The phase the run failed in lasted until it failed; those it
        // never reached took no time.
        let end = core.failed_at().unwrap_or(began);
        let at = |p: Phase| started[p as usize].unwrap_or(end).min(end);
        let (processing, aggregation) = (at(Phase::Processing), at(Phase::Aggregation));
        let seconds = |from: Instant, to: Instant| {
            round_micros(to.saturating_duration_since(from).as_secs_f64())
        };
        let (bootstrap, processing, aggregation) = (
            seconds(began, processing),
            seconds(processing, aggregation),
            seconds(aggregation, end),
        );
        let elapsed_s = Elapsed {
            total: round_micros(bootstrap + processing + aggregation),
            bootstrap,
            processing,
            aggregation,
        };
        let workload = core.config().workload.clone();
        let verification = if core.work().is_some() {
            core.results()?.verify_present()
        } else {
            core.results()?.verify(&workload)
        };
        let ledger = core.ledger();
        let count = |state| ledger.count(state);
        Some(Report {
            failure: Some(failure.to_string()),
            ledger: Some(LedgerCounts {
                queued: count(JobState::Queued),
                computing: count(JobState::Computing),
                in_flight: count(JobState::InFlight),
                lent: count(JobState::Lent),
                returned: count(JobState::Returned),
                absent: count(JobState::Absent),
            }),
            elapsed_s,
            ..Report::build(core, net, &verification)
        })
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers, strings and vectors cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the report to `path` by the rules of [`crate::files::write`]:
    /// `-` is stdout, a regular file is replaced atomically, a device is
    /// written in place.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::files::write(path, self.to_json().as_bytes())
    }
}

fn round_micros(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e6
}
