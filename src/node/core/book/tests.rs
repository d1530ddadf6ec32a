//! The job book's moves, each checked against its invariants.

use super::*;
use crate::workload::Job;

fn outbound(kind: BatchKind, ids: Vec<JobId>) -> Outbound {
    Outbound {
        kind,
        ids,
        sent_at: Instant::now(),
        wire_bytes: 0,
    }
}

fn result(id: JobId) -> Job {
    Job {
        id,
        data: vec![2.0],
        done: 1,
        piece: None,
    }
}

#[test]
fn the_bootstrap_splits_the_jobs_and_every_move_keeps_the_accounts() {
    let mut b = JobBook::new(Role::Master, 2);
    b.begin(8);
    b.begin_bootstrap(4, 8);
    assert_eq!((b.queued(), b.in_flight(), b.bootstrap_unsent()), (4, 4, 4));
    assert_eq!(b.check(), Ok(()));
    let ids = b.take_bootstrap(3);
    assert_eq!(ids, vec![4, 5, 6]);
    b.sent(1, outbound(BatchKind::Bootstrap, ids));
    // The policy keeps the last one not sent.
    assert_eq!(b.keep_bootstrap(1), vec![7]);
    assert_eq!((b.queued(), b.in_flight(), b.bootstrap_jobs()), (5, 3, 3));
    assert!(!b.bootstrap_done(1));
    let delivered = b.delivered(1).unwrap();
    assert_eq!(delivered.ids, vec![4, 5, 6]);
    assert!(b.bootstrap_done(3));
    assert_eq!(b.count(JobState::Lent), 3);
    assert_eq!((b.in_flight(), b.delivered_to_peer()), (0, 3));
    // Two workers take a job each; a third waits.
    assert_eq!(b.take_work().map(|(w, j)| (w, j.id)), Some((0, 0)));
    assert_eq!(b.take_work().map(|(w, j)| (w, j.id)), Some((1, 1)));
    assert!(b.take_work().is_none());
    assert_eq!(b.finished(0, result(0), 1.0), Finished::Stored);
    assert_eq!(b.finished(1, result(1), 1.5), Finished::Stored);
    assert_eq!((b.done(), b.count(JobState::Returned)), (2, 2));
    assert_eq!(b.result_at()[..2], [1.0, 1.5]);
    assert!(b.result_at()[2].is_nan());
    assert_eq!(b.check(), Ok(()));
}

#[test]
fn a_result_that_overtakes_its_queued_job_leaves_a_stale_entry_that_is_skipped() {
    let mut b = JobBook::new(Role::Master, 1);
    b.begin(4);
    b.begin_bootstrap(0, 4);
    let ids = b.take_bootstrap(4);
    b.sent(1, outbound(BatchKind::Bootstrap, ids));
    b.delivered(1);
    // The slave is lost: its four jobs queue here again.
    let (unsent, missing) = b.reclaim(0..0);
    assert_eq!((unsent, missing), (vec![], vec![0, 1, 2, 3]));
    assert_eq!(b.reclaimed(), 4);
    // Its result for job 1 arrives late, while job 1 waits here.
    assert_eq!(b.take_results(vec![result(1)], 2.0), (1, 0));
    assert_eq!((b.queued(), b.results_received()), (3, 1));
    assert_eq!(b.check(), Ok(()));
    let mut taken = Vec::new();
    while let Some((w, job)) = b.take_work() {
        taken.push(job.id);
        assert_eq!(b.finished(w, job, 3.0), Finished::Stored);
    }
    assert_eq!(taken, vec![0, 2, 3]);
    assert!(b.results().unwrap().is_complete());
    assert_eq!(b.check(), Ok(()));
}

#[test]
fn refused_batches_come_back_to_the_queue() {
    let mut b = JobBook::new(Role::Slave, 1);
    b.begin(6);
    let given: Vec<Job> = (0..6).map(Job::unmade).collect();
    assert_eq!(b.take_jobs(given, 0..0), vec![0, 1, 2, 3, 4, 5]);
    // Held already: taken once only.
    assert!(b.take_jobs(vec![Job::unmade(2)], 0..0).is_empty());
    assert_eq!(b.received(), 6);
    let jobs = b.take_for_transfer(2);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![4, 5]);
    b.sent(1, outbound(BatchKind::Jobs, vec![4, 5]));
    assert_eq!(b.in_flight(), 2);
    let (_, back) = b.refused(1).unwrap();
    assert_eq!((back, b.in_flight(), b.queued()), (vec![4, 5], 0, 6));
    // A result refused by the master is computed again.
    let (w, job) = b.take_work().unwrap();
    assert_eq!(b.finished(w, job, 1.0), Finished::Computed);
    let ready = b.take_ready(8);
    assert_eq!(ready.len(), 1);
    b.sent(2, outbound(BatchKind::Results, vec![0]));
    let (_, back) = b.refused(2).unwrap();
    assert_eq!((back, b.done(), b.queued()), (vec![0], 0, 6));
    assert!(b.refused(2).is_none(), "a batch is refused once");
    assert_eq!(b.check(), Ok(()));
}

#[test]
fn a_pause_puts_the_started_jobs_back_and_their_late_copies_are_dropped() {
    let mut b = JobBook::new(Role::Slave, 2);
    b.begin(3);
    b.take_jobs((0..3).map(Job::unmade).collect(), 0..0);
    let (w0, j0) = b.take_work().unwrap();
    let (w1, j1) = b.take_work().unwrap();
    assert_eq!(b.requeue_computing(), vec![0, 1]);
    assert_eq!(b.check(), Ok(()));
    assert_eq!(b.finished(w0, j0, 1.0), Finished::NotHere);
    assert_eq!(b.finished(w1, j1, 1.0), Finished::NotHere);
    // Back at the front, in id order.
    assert_eq!(b.take_work().map(|(_, j)| j.id), Some(0));
    assert_eq!(b.done(), 0);
    assert_eq!(b.check(), Ok(()));
}

#[test]
fn a_job_queued_twice_breaks_an_invariant() {
    let mut b = JobBook::new(Role::Master, 1);
    b.begin(2);
    b.queue_unmade(0);
    b.queue_unmade(0);
    assert_eq!(
        b.check(),
        Err("1 jobs queued in the ledger and 0 stale entries, 2 in the queue".to_owned())
    );
}

// Review of issue 20: a peer that sent back a bootstrap job the master had
// not sent yet got it queued on the master, which then sent it too: two
// queue entries for one job, and a stale count that could wrap.
#[test]
fn a_bootstrap_job_not_sent_yet_is_never_taken_from_the_peer() {
    let mut b = JobBook::new(Role::Master, 1);
    b.begin(8);
    b.begin_bootstrap(4, 8);
    let ids = b.take_bootstrap(2);
    assert_eq!(ids, vec![4, 5]);
    b.sent(1, outbound(BatchKind::Bootstrap, ids));
    // Job 5 is on its way and may come back before its ack; job 6 was
    // never sent.
    assert_eq!(
        b.take_jobs(vec![Job::unmade(5), Job::unmade(6)], 0..0),
        vec![5]
    );
    assert_eq!(b.check(), Ok(()));
    let rest = b.take_bootstrap(8);
    assert_eq!(rest, vec![6, 7]);
    b.sent(2, outbound(BatchKind::Bootstrap, rest));
    // Four queued here and 5 taken back; 4, 5, 6 and 7 in batches on
    // their way (5's ack may still come: it stays queued here then).
    assert_eq!((b.queued(), b.in_flight()), (5, 4));
    assert_eq!(b.check(), Ok(()));
}
