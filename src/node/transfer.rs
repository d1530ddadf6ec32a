//! The transfer manager thread: the shell around the sans-IO
//! [`Endpoint`](crate::transfer::Endpoint). It encodes jobs and results into
//! batches, feeds the endpoint the chunks and acks the reader routes to it,
//! sends what the endpoint asks for, and acts on its events: jobs received
//! go into the queue, results into the master's store, and a batch
//! delivered changes the ownership of its jobs. Every job id sent or
//! received is logged.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::StateMsg;
use super::adaptor::AdaptorMsg;
use super::control::ControlMsg;
use super::shared::{Shared, TransferRecord};
use crate::config::Role;
use crate::protocol::{self, BatchKind, Header, Message, batch};
use crate::transfer::{Endpoint, Event, TransferConfig};
use crate::workload::{self, Insert, Job, JobId, format_id_ranges};

/// The transfer manager's inbox.
#[derive(Debug)]
pub enum TransferMsg {
    /// A chunk or ack datagram from the peer (already validated by the
    /// reader): the first `len` bytes of `buf`, which goes back to the
    /// reader for reuse once handled.
    Datagram {
        /// The reader's receive buffer.
        buf: Vec<u8>,
        /// The datagram's length, its tag removed.
        len: usize,
    },
    /// Send these jobs to the peer (a policy decision). They stay this
    /// node's until delivered.
    SendJobs(Vec<Job>),
    /// Master: send these jobs, not made yet, to the slave as the
    /// bootstrap. They are encoded straight from the workload a batch at a
    /// time, as the endpoint has room, so the master never holds the
    /// slave's half of the vector in memory.
    Bootstrap(Vec<JobId>),
    /// A worker finished a job (slave): consider sending results.
    ResultsReady,
    /// Aggregation began (slave): send every ready result now.
    Flush,
    /// The peer's receive window, from its hello.
    PeerWindow(u32),
    /// The peer was declared lost: give up every outbound batch and (on the
    /// master) reclaim the jobs lent to it.
    PeerLost,
    /// Stop the thread.
    Shutdown,
}

/// Settings of the transfer manager.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// The endpoint's tunables.
    pub endpoint: TransferConfig,
    /// Most jobs in one bootstrap or results batch (about 2 MiB of data).
    pub batch_jobs: usize,
    /// Most jobs in one policy transfer batch (at most [`MAX_TRANSFER_BYTES`]).
    pub transfer_jobs: usize,
    /// Compress batches that shrink by half or more.
    pub compress: bool,
    /// For the benchmark only: the bootstrap carries random values instead
    /// of the workload's (which compress to almost nothing), to measure a
    /// link with data that does not compress. Such a run cannot verify.
    pub random_bootstrap: bool,
}

/// The largest batch a policy transfer makes; the receiver reassembles a
/// batch in one buffer, so this bounds its memory per transfer.
pub const MAX_TRANSFER_BYTES: usize = 64 << 20;

/// Outbound batches the bootstrap keeps queued at the endpoint: enough to
/// keep every open batch's place filled, few enough to hold only a few
/// batches' bytes.
const BOOTSTRAP_QUEUED: usize = 6;

/// Most datagrams handled from the inbox before the thread transmits.
const INBOX_BURST: usize = 256;

/// Longest a computed result waits on the slave for its batch to fill.
const RESULTS_MAX_WAIT: Duration = Duration::from_millis(250);

struct Pending {
    kind: BatchKind,
    ids: Vec<JobId>,
}

struct Manager {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    settings: TransferSettings,
    pending: HashMap<u32, Pending>,
    /// Bootstrap jobs not yet encoded, in sending order.
    bootstrap: VecDeque<JobId>,
    /// When the oldest result waiting to be sent was first seen.
    results_waiting_since: Option<Instant>,
    flush_all: bool,
    buf: Vec<u8>,
    /// Receive buffers going back to the reader.
    recycle: Sender<Vec<u8>>,
    state: Sender<StateMsg>,
    adaptor: Sender<AdaptorMsg>,
    control: Sender<ControlMsg>,
}

/// Runs the transfer manager until told to stop.
pub fn run(
    shared: Arc<Shared>,
    inbox: Receiver<TransferMsg>,
    settings: TransferSettings,
    recycle: Sender<Vec<u8>>,
    state: Sender<StateMsg>,
    adaptor: Sender<AdaptorMsg>,
    control: Sender<ControlMsg>,
) {
    // Until the peer's hello says otherwise, a window that fits any socket.
    let endpoint = Endpoint::new(settings.endpoint.clone(), 32);
    let mut m = Manager {
        shared,
        endpoint,
        settings,
        pending: HashMap::new(),
        bootstrap: VecDeque::new(),
        results_waiting_since: None,
        flush_all: false,
        buf: Vec::with_capacity(65536),
        recycle,
        state,
        adaptor,
        control,
    };
    loop {
        let results_due = m.results_waiting_since.map(|t| t + RESULTS_MAX_WAIT);
        let deadline = match (m.endpoint.poll_timeout(), results_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let first = match deadline {
            Some(deadline) => inbox.recv_deadline(deadline),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let mut msg = match first {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut handled = 0;
        while let Some(current) = msg.take() {
            if !m.handle(current) {
                return;
            }
            handled += 1;
            if handled < INBOX_BURST {
                msg = inbox.try_recv().ok();
            }
        }
        let now = Instant::now();
        m.endpoint.handle_timeout(now);
        m.drain_events();
        m.feed_bootstrap();
        m.send_ready_results(now);
        m.transmit(now);
        m.publish_stats();
    }
}

impl Manager {
    /// Handles one inbox message; false means stop.
    fn handle(&mut self, msg: TransferMsg) -> bool {
        match msg {
            TransferMsg::Datagram { buf, len } => {
                let now = Instant::now();
                match protocol::decode(&buf[..len.min(buf.len())]) {
                    Ok((_, Message::Chunk(c))) => self.endpoint.handle_chunk(now, &c),
                    Ok((_, Message::Ack(a))) => self.endpoint.handle_ack(now, &a),
                    _ => {
                        self.shared
                            .transport
                            .stats
                            .rejected_malformed
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Back to the reader; a full pool just frees it.
                let _ = self.recycle.try_send(buf);
            }
            TransferMsg::SendJobs(jobs) => self.send_jobs(jobs),
            TransferMsg::Bootstrap(ids) => self.bootstrap.extend(ids),
            TransferMsg::ResultsReady => {}
            TransferMsg::Flush => self.flush_all = true,
            TransferMsg::PeerWindow(w) => self.endpoint.set_peer_window(w),
            TransferMsg::PeerLost => self.peer_lost(),
            TransferMsg::Shutdown => return false,
        }
        true
    }

    /// Sends jobs to the peer as the policy decided: one batch (one
    /// transfer in the report), split only past [`MAX_TRANSFER_BYTES`].
    fn send_jobs(&mut self, jobs: Vec<Job>) {
        if self.shared.peer_lost.load(Ordering::Relaxed) {
            // Taken for the peer just before it was declared lost: they stay.
            let n = jobs.len() as u32;
            self.shared.push_jobs(jobs, false);
            self.shared.in_flight_jobs.fetch_sub(n, Ordering::Relaxed);
            let _ = self.control.send(ControlMsg::Progress);
            return;
        }
        let mut jobs = jobs;
        while !jobs.is_empty() {
            let rest = jobs.split_off(jobs.len().min(self.settings.transfer_jobs.max(1)));
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            self.send_batch(BatchKind::Jobs, ids, batch::encode(&jobs));
            jobs = rest;
        }
    }

    /// Master: encodes the next bootstrap batches while the endpoint has
    /// fewer than [`BOOTSTRAP_QUEUED`] outbound; batches of about 2 MiB, so
    /// the slave starts computing after the first.
    fn feed_bootstrap(&mut self) {
        if self.bootstrap.is_empty() || self.shared.peer_lost.load(Ordering::Relaxed) {
            return;
        }
        let Some(params) = self.shared.params() else {
            return;
        };
        let workload = params.workload();
        while !self.bootstrap.is_empty() && self.endpoint.outbound_batches() < BOOTSTRAP_QUEUED {
            let n = self.bootstrap.len().min(self.settings.batch_jobs.max(1));
            let ids: Vec<JobId> = self.bootstrap.drain(..n).collect();
            let payload = if self.settings.random_bootstrap {
                let jobs: Vec<Job> = ids
                    .iter()
                    .map(|&id| workload::random_job(id, workload.elements_per_job))
                    .collect();
                batch::encode(&jobs)
            } else {
                batch::encode_fresh(&ids, &workload)
            };
            self.send_batch(BatchKind::Bootstrap, ids, payload);
        }
    }

    /// The peer is gone: nothing more goes to it. On the master, every job
    /// lent to the slave whose result has not come back, and every
    /// bootstrap job not sent yet, is queued here unmade (a job's data
    /// before computing is the initial value, so it is made as a worker
    /// takes it, like the master's own); results of the slave's that still
    /// arrive are kept once.
    fn peer_lost(&mut self) {
        let shared = &self.shared;
        let abandoned = self.endpoint.abandon_outbound();
        // Bootstrap jobs not encoded yet never left: they are the master's.
        let unsent: Vec<JobId> = self.bootstrap.drain(..).collect();
        if !unsent.is_empty() {
            shared.push_jobs(unsent.iter().map(|&id| Job::unmade(id)).collect(), false);
            shared
                .in_flight_jobs
                .fetch_sub(unsent.len() as u32, Ordering::Relaxed);
            // Meant for the slave and taken back: the report counts them
            // with the reclaimed jobs.
            shared.run.lock().jobs_reclaimed += unsent.len() as u32;
            shared.log.push(format!(
                "{} bootstrap jobs [{}] were not sent yet: the master computes them itself",
                unsent.len(),
                format_id_ranges(&unsent)
            ));
        }
        let mut abandoned_jobs = 0;
        for id in abandoned {
            if let Some(p) = self.pending.remove(&id)
                && p.kind != BatchKind::Results
            {
                abandoned_jobs += p.ids.len() as u32;
            }
        }
        // The master's parameters are set at Start: before it nothing was lent.
        if shared.role == Role::Master && shared.params().is_some() {
            let lent = std::mem::take(&mut *shared.lent.lock());
            let missing = match shared.results.lock().as_mut() {
                Some(store) => store.reclaim(lent),
                None => Vec::new(),
            };
            let n = missing.len() as u32;
            shared.push_jobs(missing.iter().map(|&id| Job::unmade(id)).collect(), false);
            {
                let at_s = shared.run_seconds();
                let mut run = shared.run.lock();
                run.jobs_reclaimed += n;
                run.peer_lost_at_s = Some((at_s * 1000.0).round() / 1000.0);
            }
            shared.log.push(format!(
                "reclaimed {n} jobs lent to the slave [{}]: the master computes them itself",
                format_id_ranges(&missing)
            ));
        }
        // Only now, with the reclaimed jobs queued, can the master see that
        // nothing is left in flight.
        shared
            .in_flight_jobs
            .fetch_sub(abandoned_jobs, Ordering::Relaxed);
        let _ = self.state.send(StateMsg::LocalChanged);
        let _ = self.control.send(ControlMsg::Progress);
        shared.wake();
    }

    fn send_batch(&mut self, kind: BatchKind, ids: Vec<JobId>, payload: Vec<u8>) {
        let raw_bytes = payload.len();
        let payload = if self.settings.compress {
            batch::compress_if_it_pays(payload)
        } else {
            payload
        };
        let net = &self.shared.transport.stats;
        net.batches_sent.fetch_add(1, Ordering::Relaxed);
        net.batch_raw_bytes
            .fetch_add(raw_bytes as u64, Ordering::Relaxed);
        net.batch_wire_bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        if batch::is_compressed(&payload) {
            net.batches_compressed.fetch_add(1, Ordering::Relaxed);
        }
        if self.shared.role == Role::Master && kind != BatchKind::Results {
            self.shared.lent.lock().extend(ids.iter().copied());
        }
        let id = self.endpoint.send_batch(kind, payload);
        let what = match kind {
            BatchKind::Bootstrap => "bootstrap jobs",
            BatchKind::Jobs => "jobs",
            BatchKind::Results => "results",
        };
        self.shared.log.push(format!(
            "sending {} {what} [{}] to {} (batch {id})",
            ids.len(),
            format_id_ranges(&ids),
            self.shared.role.peer()
        ));
        self.pending.insert(id, Pending { kind, ids });
    }

    /// Sends the slave's computed jobs to the master: full batches at once;
    /// a partial batch when its oldest result has waited long enough, when
    /// no more results are coming (queue empty, no job running) or once
    /// aggregation has begun.
    fn send_ready_results(&mut self, now: Instant) {
        if self.shared.role != Role::Slave {
            return;
        }
        let tail = {
            let q = self.shared.queue.lock();
            q.jobs.is_empty() && q.busy == 0
        };
        loop {
            let mut ready = self.shared.ready_results.lock();
            if ready.is_empty() {
                self.results_waiting_since = None;
                return;
            }
            let since = *self.results_waiting_since.get_or_insert(now);
            let full = ready.len() >= self.settings.batch_jobs;
            let waited = now.saturating_duration_since(since) >= RESULTS_MAX_WAIT;
            if !(full || waited || tail || self.flush_all) {
                return;
            }
            let n = ready.len().min(self.settings.batch_jobs);
            let jobs: Vec<Job> = ready.drain(..n).collect();
            drop(ready);
            self.results_waiting_since = None;
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            let payload = batch::encode(&jobs);
            drop(jobs);
            self.send_batch(BatchKind::Results, ids, payload);
        }
    }

    fn transmit(&mut self, now: Instant) {
        let session = self.shared.session.load(Ordering::Relaxed);
        if session == 0 {
            return;
        }
        while let Some(message) = self.endpoint.poll_transmit(now) {
            let header = Header {
                session,
                seq: self.shared.next_seq(),
            };
            protocol::encode(&header, &message, &mut self.buf);
            self.shared.transport.send(&mut self.buf);
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Received {
                    transfer,
                    kind,
                    payload,
                } => self.received(transfer, kind, &payload),
                Event::Delivered { transfer } => self.delivered(transfer),
            }
        }
    }

    fn received(&mut self, transfer: u32, kind: BatchKind, payload: &[u8]) {
        let shared = &self.shared;
        let peer = shared.role.peer();
        let Some(params) = shared.params() else {
            shared.log.push(format!(
                "batch {transfer} from {peer} dropped: the run's parameters are not known yet"
            ));
            return;
        };
        let is_results = kind == BatchKind::Results;
        let jobs = match batch::decode(payload, &params, is_results) {
            Ok(jobs) => jobs,
            Err(e) => {
                shared.log.push(format!(
                    "batch {transfer} from {peer} is malformed ({e}); dropped"
                ));
                shared
                    .transport
                    .stats
                    .rejected_malformed
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        let n = jobs.len() as u32;
        let ranges = format_id_ranges(&ids);
        match kind {
            BatchKind::Results => {
                if shared.role != Role::Master {
                    shared
                        .log
                        .push(format!("results batch {transfer} from {peer} ignored: only the master collects results"));
                    return;
                }
                let (mut stored, mut late) = (0, 0);
                if let Some(store) = shared.results.lock().as_mut() {
                    for job in jobs {
                        match store.insert(job.id, job.data) {
                            Insert::Stored => stored += 1,
                            Insert::Late => late += 1,
                            Insert::Duplicate | Insert::OutOfRange => {}
                        }
                    }
                }
                shared.returned(&ids);
                shared.run.lock().results_received += stored;
                shared
                    .log
                    .push(format!("received {n} results [{ranges}] from {peer}"));
                if late > 0 {
                    shared.log.push(format!(
                        "{late} of them were reclaimed and already computed here: dropped"
                    ));
                }
            }
            BatchKind::Bootstrap | BatchKind::Jobs
                if shared.role == Role::Master && shared.peer_lost.load(Ordering::Relaxed) =>
            {
                shared.log.push(format!(
                    "{n} jobs [{ranges}] from the lost {peer} arrived late: already \
                     reclaimed, dropped"
                ));
                return;
            }
            BatchKind::Bootstrap | BatchKind::Jobs => {
                shared.returned(&ids);
                shared.push_jobs(jobs, true);
                if kind == BatchKind::Jobs {
                    let at_s = shared.run_seconds();
                    shared.run.lock().transfers.push(TransferRecord {
                        at_s,
                        from: peer,
                        jobs: n,
                    });
                }
                let what = if kind == BatchKind::Bootstrap {
                    "bootstrap jobs"
                } else {
                    "jobs"
                };
                shared
                    .log
                    .push(format!("received {n} {what} [{ranges}] from {peer}"));
                let _ = self.state.send(StateMsg::LocalChanged);
            }
        }
        let _ = self.control.send(ControlMsg::Progress);
        shared.wake();
    }

    fn delivered(&mut self, transfer: u32) {
        let Some(p) = self.pending.remove(&transfer) else {
            return;
        };
        let shared = &self.shared;
        let n = p.ids.len() as u32;
        let peer = shared.role.peer();
        match p.kind {
            BatchKind::Results => {
                shared.log.push(format!(
                    "{peer} acknowledged {n} results [{}]",
                    format_id_ranges(&p.ids)
                ));
            }
            BatchKind::Bootstrap | BatchKind::Jobs => {
                shared.in_flight_jobs.fetch_sub(n, Ordering::Relaxed);
                shared.delivered_to_peer.fetch_add(n, Ordering::Relaxed);
                if p.kind == BatchKind::Jobs {
                    let at_s = shared.run_seconds();
                    shared.run.lock().transfers.push(TransferRecord {
                        at_s,
                        from: shared.role,
                        jobs: n,
                    });
                }
                shared.log.push(format!(
                    "{peer} acknowledged {n} jobs [{}]: they are its own now",
                    format_id_ranges(&p.ids)
                ));
                if p.kind == BatchKind::Bootstrap {
                    let _ = self.control.send(ControlMsg::BootstrapDelivered(n));
                }
                let _ = self.adaptor.send(AdaptorMsg::Evaluate);
                let _ = self.state.send(StateMsg::LocalChanged);
            }
        }
        let _ = self.control.send(ControlMsg::Progress);
        shared.wake();
    }

    fn publish_stats(&self) {
        let s = self.endpoint.stats();
        let net = &self.shared.transport.stats;
        net.retransmitted.store(s.retransmitted, Ordering::Relaxed);
        net.duplicates.store(s.duplicate_chunks, Ordering::Relaxed);
        net.refused.store(s.refused_chunks, Ordering::Relaxed);
    }
}
