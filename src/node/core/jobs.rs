//! The transfer manager's part of the core: jobs finished by workers,
//! batches of jobs and results encoded for the endpoint and decoded from
//! it, the bootstrap fed a few batches at a time, and a lost slave's jobs
//! taken back. The job book moves the jobs; this records the timeline and
//! logs every job id sent or received.

use std::time::{Duration, Instant};

use super::book::{Finished, Outbound};
use super::{NodeCore, Origin, TransferRecord};
use crate::ids::Role;
use crate::protocol::batch::{self, Encoded, Source};
use crate::protocol::{BatchKind, RefuseReason};
use crate::transfer::Event as EndpointEvent;
use crate::workload::{self, Job, JobId, format_id_ranges};

/// Longest a computed result waits on the slave for its batch to fill.
pub const RESULTS_MAX_WAIT: Duration = Duration::from_millis(250);

/// Outbound batches the bootstrap keeps queued at the endpoint: enough to
/// keep every open batch's place filled, few enough to hold only a few
/// batches' bytes.
const BOOTSTRAP_QUEUED: usize = 6;

impl NodeCore {
    /// A worker finished a job: the master keeps the result, the slave
    /// holds it for the master. It counts as this node's only if its result
    /// is the one kept.
    pub(super) fn job_done(
        &mut self,
        now: Instant,
        worker: usize,
        job: Job,
        started: Instant,
        cost: super::JobCost,
    ) {
        self.adaptor.capacity.add(now, cost.compute_s);
        self.watchdog
            .job_took(now.saturating_duration_since(started));
        self.adaptor.departure_due = true;
        // The digits and command kinds: the master checks and keeps the
        // output, or sends a failed job again.
        let job = if self.role == Role::Master && self.settings.work.is_some() {
            match self.piece_back(now, job, Role::Master, Some(worker)) {
                Some(job) => job,
                None => return,
            }
        } else {
            job
        };
        let id = job.id;
        let (start_s, end_s) = (self.run_seconds(started), self.run_seconds(now));
        let finished = self.book.finished(worker, job, end_s);
        let worker_index = u16::try_from(worker).unwrap_or(u16::MAX);
        self.timeline
            .computed(id, worker_index, (start_s, end_s), cost, finished.kept());
        match finished {
            // Only a job computing here counts: this one was put back in
            // the queue (a pause) or was never given to a worker.
            Finished::NotHere => {
                return self.log(
                    now,
                    format!(
                        "job {id}: a worker returned it, but it is no longer computing here; dropped"
                    ),
                );
            }
            Finished::Late => self.log(
                now,
                format!("job {id}: the lost slave's result came back first; this one is dropped"),
            ),
            Finished::NotStored => self.log(
                now,
                format!("job {id}: result not stored (duplicate or unknown id)"),
            ),
            Finished::Stored | Finished::Computed => {}
        }
        // A node that has run dry says so at once rather than at the next
        // state interval, so the peer's policy can send it work before it
        // sits idle.
        if self.queued() == 0 {
            self.adaptor.state_due = true;
        }
    }

    /// Queues job `id` here, not made yet (a job's data before computing
    /// is the workload's initial value, so a worker makes it), noting in
    /// the timeline where it came from when `origin` says. The one way a
    /// job joins the queue at its back.
    pub(super) fn queue_unmade(&mut self, id: JobId, origin: Option<Origin>) {
        self.book.queue_unmade(id);
        if let Some(origin) = origin {
            self.timeline.arrived(id, origin);
        }
    }

    /// Acts on what the endpoint delivered or received.
    pub(super) fn drain_endpoint(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                EndpointEvent::Received {
                    transfer,
                    kind,
                    payload,
                    since,
                } => self.received(now, transfer, kind, &payload, since),
                EndpointEvent::Delivered { transfer } => self.delivered(now, transfer),
                EndpointEvent::Refused { transfer, reason } => {
                    self.on_refuse(now, transfer, reason);
                }
            }
        }
    }

    fn received(
        &mut self,
        now: Instant,
        transfer: u32,
        kind: BatchKind,
        payload: &[u8],
        since: Instant,
    ) {
        let peer = self.role.peer();
        let Some(params) = self.session.params else {
            return self.refuse(now, transfer, RefuseReason::NotReady);
        };
        if self.refusal_injected() {
            return self.refuse(now, transfer, self.refusals.injected_reason);
        }
        if kind == BatchKind::Results && self.role != Role::Master {
            return self.refuse(now, transfer, RefuseReason::WrongRole);
        }
        let is_results = kind == BatchKind::Results;
        // The master may add jobs while the run goes: a slave takes ids
        // past the run's length it knows (up to the largest workload) and
        // grows to hold them.
        let bound = if self.role == Role::Slave && kind == BatchKind::Jobs {
            crate::protocol::RunParams {
                jobs: params.jobs.max(crate::config::limits::MAX_JOBS),
                ..params
            }
        } else {
            params
        };
        let jobs = match batch::decode(payload, &bound, is_results) {
            Ok(jobs) => jobs,
            Err(e) => {
                self.log(
                    now,
                    format!("batch {transfer} from {peer} is malformed: {e}"),
                );
                self.counters.rejected.malformed += 1;
                return self.refuse(now, transfer, RefuseReason::Malformed);
            }
        };
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        if let Some(&last) = ids.iter().max()
            && last >= params.jobs
        {
            self.grow_to(last + 1);
            self.log(
                now,
                format!(
                    "the master added jobs: the run has at least {} now",
                    last + 1
                ),
            );
        }
        let n = jobs.len() as u32;
        let ranges = format_id_ranges(&ids);
        // Recorded only once something in it was taken: a peer sending
        // the same jobs again and again must not grow what is kept here.
        let span = super::BatchSpan {
            transfer,
            kind,
            outbound: false,
            jobs: n,
            bytes: payload.len(),
            start_s: self.run_seconds(since),
            end_s: self.run_seconds(now),
        };
        match kind {
            BatchKind::Results => {
                let jobs = if self.settings.work.is_some() {
                    let mut kept = Vec::with_capacity(jobs.len());
                    for job in jobs {
                        if let Some(job) = self.piece_back(now, job, Role::Slave, None) {
                            kept.push(job);
                        }
                    }
                    kept
                } else {
                    jobs
                };
                let (stored, late) = self.book.take_results(jobs, self.run_seconds(now));
                if stored > 0 {
                    self.timeline.batch(span);
                }
                self.log_detail(now, format!("received {n} results [{ranges}] from {peer}"));
                if late > 0 {
                    self.log(
                        now,
                        format!("{late} of them were reclaimed and already computed here: dropped"),
                    );
                }
            }
            BatchKind::Bootstrap | BatchKind::Jobs
                if self.role == Role::Master && self.session.peer_lost =>
            {
                self.log(
                    now,
                    format!(
                        "{n} jobs [{ranges}] from the lost {peer} arrived late: already reclaimed, dropped"
                    ),
                );
            }
            BatchKind::Bootstrap | BatchKind::Jobs => {
                let (first, _) = self.schedule.arrivals(Role::Slave);
                let taken = self.book.take_jobs(jobs, first..self.schedule.total());
                let origin = if kind == BatchKind::Bootstrap {
                    Origin::Bootstrap
                } else {
                    Origin::Moved
                };
                for &id in &taken {
                    self.timeline.arrived(id, origin);
                }
                let taken = taken.len() as u32;
                if taken < n {
                    self.log(
                        now,
                        format!(
                            "{} jobs of batch {transfer} from {peer} were already held here; dropped",
                            n - taken
                        ),
                    );
                }
                if taken > 0 {
                    self.timeline.batch(span);
                }
                if kind == BatchKind::Jobs {
                    // Whatever was asked of the peer, this is its answer.
                    self.adaptor.requested = 0;
                    self.adaptor.request_expires = None;
                }
                if kind == BatchKind::Jobs && taken > 0 {
                    let at_s = self.run_seconds(now);
                    self.transfers.push(TransferRecord {
                        at_s,
                        from: peer,
                        jobs: taken,
                    });
                }
                let what = if kind == BatchKind::Bootstrap {
                    "bootstrap jobs"
                } else {
                    "jobs"
                };
                let text = format!("received {n} {what} [{ranges}] from {peer}");
                if kind == BatchKind::Bootstrap {
                    self.log_detail(now, text);
                } else {
                    self.log(now, text);
                }
                self.adaptor.state_due = true;
            }
        }
    }

    fn delivered(&mut self, now: Instant, transfer: u32) {
        let Some(p) = self.book.delivered(transfer) else {
            return;
        };
        self.refusals.in_a_row = 0;
        let n = p.ids.len() as u32;
        self.timeline.batch(super::BatchSpan {
            transfer,
            kind: p.kind,
            outbound: true,
            jobs: n,
            bytes: p.wire_bytes,
            start_s: self.run_seconds(p.sent_at),
            end_s: self.run_seconds(now),
        });
        if let (Some(rate), Some(rtt), _) = self.endpoint.path_estimate() {
            self.timeline.set_path(super::PathEstimate {
                rate_bytes_per_s: rate,
                min_rtt_s: rtt.as_secs_f64(),
            });
        }
        let peer = self.role.peer();
        // The link's rate: this batch's bytes over the time it took, from
        // its sending to its ack (an underestimate while batches queue
        // behind each other, which is what a sender can count on), less
        // one round trip: that is latency, not rate, and the policies add
        // it once per move. A batch delivered within a microsecond of that
        // (a link in virtual time with no delay) counts as taking one.
        let rtt = self.endpoint.rtt().srtt().map_or(0.0, |r| r.as_secs_f64());
        // Never below a quarter of the whole time: a batch acknowledged
        // within about a round trip says little about the rate.
        let elapsed = now.saturating_duration_since(p.sent_at).as_secs_f64();
        let took = (elapsed - rtt).max(elapsed / 4.0).max(1e-6);
        let sample = p.wire_bytes as f64 / took;
        self.adaptor.link_rate = if self.adaptor.link_rate == 0.0 {
            sample
        } else {
            0.3 * sample + 0.7 * self.adaptor.link_rate
        };
        match p.kind {
            BatchKind::Results => {
                self.log_detail(
                    now,
                    format!(
                        "{peer} acknowledged {n} results [{}]",
                        format_id_ranges(&p.ids)
                    ),
                );
            }
            BatchKind::Bootstrap | BatchKind::Jobs => {
                if p.kind == BatchKind::Jobs {
                    let at_s = self.run_seconds(now);
                    self.transfers.push(TransferRecord {
                        at_s,
                        from: self.role,
                        jobs: n,
                    });
                }
                let text = format!(
                    "{peer} acknowledged {n} jobs [{}]: they are its own now",
                    format_id_ranges(&p.ids)
                );
                if p.kind == BatchKind::Bootstrap {
                    self.log_detail(now, text);
                } else {
                    self.log(now, text);
                }
                if p.kind == BatchKind::Bootstrap {
                    self.bootstrap_delivered(now, n);
                }
                self.adaptor.evaluate_due = true;
                self.adaptor.state_due = true;
            }
        }
    }

    /// Master: encodes the next bootstrap batches while the endpoint has
    /// fewer than [`BOOTSTRAP_QUEUED`] outbound; batches of about 2 MiB, so
    /// the slave starts computing after the first.
    pub(super) fn feed_bootstrap(&mut self, now: Instant) {
        if self.book.bootstrap_unsent() == 0 || self.session.peer_lost {
            return;
        }
        let Some(params) = self.session.params else {
            return;
        };
        let workload = params.workload();
        while self.book.bootstrap_unsent() > 0
            && self.endpoint.outbound_batches() < BOOTSTRAP_QUEUED
        {
            let room = self.within_budget(u32::try_from(self.batch_jobs).unwrap_or(u32::MAX));
            if room == 0 {
                self.bootstrap_waits_for_room(now);
                break;
            }
            let ids = self.book.take_bootstrap(room as usize);
            let compress = self.config.compression;
            if self.settings.work.is_some() {
                let unread = ids.iter().map(|&id| Job::unmade(id)).collect();
                let Some(jobs) = self.read_pieces(now, unread) else {
                    return;
                };
                self.send_pieces(now, BatchKind::Bootstrap, jobs);
                continue;
            }
            let encoded = if self.settings.random_bootstrap {
                let jobs: Vec<Job> = ids
                    .iter()
                    .map(|&id| workload::random_job(id, workload.elements_per_job))
                    .collect();
                batch::encode_batch(Source::Jobs(&jobs), compress)
            } else {
                batch::encode_batch(Source::Fresh(&ids, &workload), compress)
            };
            self.send_batch(now, BatchKind::Bootstrap, ids, encoded);
            self.note_lent();
        }
    }

    /// Sends jobs to the peer as the policy decided: one batch (one
    /// transfer in the report), split only past the transfer size limit.
    pub(super) fn send_jobs(&mut self, now: Instant, mut jobs: Vec<Job>) {
        let Some(workload) = self.session.params.map(|p| p.workload()) else {
            return;
        };
        while !jobs.is_empty() {
            let rest = jobs.split_off(jobs.len().min(self.transfer_jobs));
            if self.settings.work.is_some() {
                let Some(read) = self.read_pieces(now, jobs) else {
                    return;
                };
                self.send_pieces(now, BatchKind::Jobs, read);
                jobs = rest;
                continue;
            }
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            // Jobs not made yet go as fresh ones, never filled in here.
            let encoded =
                batch::encode_batch(Source::Queued(&jobs, &workload), self.config.compression);
            self.send_batch(now, BatchKind::Jobs, ids, encoded);
            jobs = rest;
        }
    }

    pub(super) fn send_batch(
        &mut self,
        now: Instant,
        kind: BatchKind,
        ids: Vec<JobId>,
        encoded: Encoded,
    ) {
        let c = &mut self.counters;
        c.batches_sent += 1;
        c.batch_raw_bytes += encoded.raw_bytes as u64;
        c.batch_wire_bytes += encoded.payload.len() as u64;
        if encoded.is_compressed() {
            c.batches_compressed += 1;
        }
        let payload = encoded.payload;
        let wire_bytes = payload.len();
        let id = self.endpoint.send_batch(kind, payload);
        let what = match kind {
            BatchKind::Bootstrap => "bootstrap jobs",
            BatchKind::Jobs => "jobs",
            BatchKind::Results => "results",
        };
        let text = format!(
            "sending {} {what} [{}] to {} (batch {id})",
            ids.len(),
            format_id_ranges(&ids),
            self.role.peer()
        );
        if kind == BatchKind::Jobs {
            self.log(now, text);
        } else {
            self.log_detail(now, text);
        }
        self.book.sent(
            id,
            Outbound {
                kind,
                ids,
                sent_at: now,
                wire_bytes,
            },
        );
    }

    /// Slave: sends computed jobs to the master: full batches at once; a
    /// partial batch when its oldest result has waited long enough, when no
    /// more results are coming (queue empty, no job running) or once
    /// aggregation has begun.
    pub(super) fn send_ready_results(&mut self, now: Instant) {
        if self.role != Role::Slave || !self.session.connected {
            return;
        }
        let tail = self.queued() == 0 && self.book.count(super::JobState::Computing) == 0;
        loop {
            if self.book.ready_results() == 0 {
                self.results_waiting_since = None;
                return;
            }
            let since = *self.results_waiting_since.get_or_insert(now);
            let full = self.book.ready_results() >= self.batch_jobs;
            let waited = now.saturating_duration_since(since) >= RESULTS_MAX_WAIT;
            if !(full || waited || tail || self.flush_results) {
                return;
            }
            let jobs = self.book.take_ready(self.batch_jobs);
            self.results_waiting_since = None;
            if self.settings.work.is_some() {
                self.send_pieces(now, BatchKind::Results, jobs);
                continue;
            }
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            let encoded = batch::encode_batch(Source::Jobs(&jobs), self.config.compression);
            drop(jobs);
            self.send_batch(now, BatchKind::Results, ids, encoded);
        }
    }

    /// Master, the slave lost: every outbound batch is given up; every job
    /// lent to the slave (or on its way) whose result has not come back,
    /// and every bootstrap job not sent yet, is queued here unmade (a job's
    /// data before computing is the initial value, so a worker makes it).
    /// Results of the slave's that still arrive are kept once.
    pub(super) fn reclaim_jobs(&mut self, now: Instant) {
        self.endpoint.abandon_outbound();
        // The slave's own arrivals not come back: those already due the
        // master computes now; the rest it takes on as they arrive, on the
        // slave's schedule (so their response times stay true).
        let (first, times) = self.schedule.arrivals(Role::Slave);
        let due = times.partition_point(|&t| t <= self.run_seconds(now));
        self.adopted = Some(due);
        let (unsent, missing) = self.book.reclaim(first..first + due as u32);
        for &id in unsent.iter().chain(&missing) {
            self.timeline.arrived(id, Origin::Reclaimed);
        }
        if !unsent.is_empty() {
            self.log(
                now,
                format!(
                    "{} bootstrap jobs [{}] were not sent yet: the master computes them itself",
                    unsent.len(),
                    format_id_ranges(&unsent)
                ),
            );
        }
        let at_s = self.run_seconds(now);
        self.session.peer_lost_at_s = Some((at_s * 1000.0).round() / 1000.0);
        self.log(
            now,
            format!(
                "reclaimed {} jobs lent to the slave [{}]: the master computes them itself",
                missing.len(),
                format_id_ranges(&missing)
            ),
        );
    }
}
