//! The payload of a reassembled batch: a list of jobs with their data,
//! each job's data compressed when that pays.
//!
//! ```text
//! u8 encoding (0 raw, 1 LZ4 per job), u32 count, then count times:
//!   raw:  u32 job id, u32 element count, element count f64 LE
//!   LZ4:  u32 job id, u32 element count, u32 stored bytes, then
//!         stored 0:                    one f64 LE, the value of every element
//!         stored element count x 8:    the data as it is (it did not shrink)
//!         otherwise:                   the f64 LE data as one LZ4 block
//! ```
//!
//! A job whose elements are all one value (every job of the reference
//! workload, before and after computing) goes as that value: checking costs
//! a read at memory speed and filling a write, where LZ4 decompresses such
//! data at about 2 GB/s.
//!
//! Compression is per job, so a sender compresses straight from each job's
//! own memory and a receiver decompresses straight into the new job's
//! buffer: no batch-sized copy at either end. Whether a batch is
//! compressed is judged on a sample of its data ([`encode_batch`]):
//! the reference workload's jobs (one value repeated) and results shrink to
//! well under 1 %, random values not at all, and the trial costs a few
//! microseconds. Jobs not started yet ([`Source::Fresh`]) all hold the
//! workload's initial value, so their compressed form is made once per
//! batch.
//!
//! Decoding checks every id and length against the run's parameters before
//! allocating anything, and rejects duplicate ids within a batch.

use super::codec::{Reader, Writer};
use super::{DecodeError, RunParams};
use crate::workload::{Job, JobId};

/// Bytes one job takes in a raw batch.
pub fn job_bytes(elements_per_job: u32) -> usize {
    8 + elements_per_job as usize * 8
}

/// The most job data a sender puts in one batch (a policy transfer; the
/// bootstrap's and results' batches are about 2 MiB), unless a single job
/// is larger. A receiver reassembles a batch in one buffer, so this bounds
/// its memory per batch.
pub const MAX_BATCH_DATA_BYTES: usize = 64 << 20;

/// The encoding byte of an uncompressed batch.
pub const RAW: u8 = 0;
/// The encoding byte of a batch whose jobs are LZ4-compressed one by one.
pub const LZ4: u8 = 1;

/// Bytes of a batch's data compressed on trial before the batch is: enough
/// to judge, cheap to waste (about 5 µs when nothing compresses).
const SAMPLE_BYTES: usize = 64 << 10;

/// Batches with less data than this are never compressed.
const MIN_COMPRESSED_BYTES: usize = 4096;

/// Where a batch's jobs come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Jobs in memory, with their current data.
    Jobs(&'a [Job]),
    /// Jobs from a queue: those not made yet ([`Job::unmade`]) go as fresh
    /// ones, without being made, the others with their data. A policy's
    /// transfer takes jobs nobody started from the back of the queue, so
    /// the master does not fill in a job's 256 KiB only to send it.
    Queued(&'a [Job], &'a crate::config::WorkloadConfig),
    /// Jobs not made yet: every element the workload's initial value. The
    /// master's bootstrap sends half the vector this way, a batch at a
    /// time, so it never holds that half at all.
    Fresh(&'a [JobId], &'a crate::config::WorkloadConfig),
}

/// One job of a batch as the encoder sees it.
enum Entry<'a> {
    /// Its data.
    Made(JobId, &'a [f64]),
    /// A job not made yet: the workload's initial value throughout.
    Fresh(JobId),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Jobs(jobs) | Source::Queued(jobs, _) => jobs.len(),
            Source::Fresh(ids, _) => ids.len(),
        }
    }

    fn workload(&self) -> Option<&'a crate::config::WorkloadConfig> {
        match self {
            Source::Jobs(_) => None,
            Source::Queued(_, w) | Source::Fresh(_, w) => Some(w),
        }
    }

    /// The jobs in order.
    fn entries(&self) -> Box<dyn Iterator<Item = Entry<'a>> + 'a> {
        match *self {
            Source::Jobs(jobs) => Box::new(jobs.iter().map(|j| {
                // Jobs with their data: an unmade one would go with no
                // elements and the whole batch be refused at the other end.
                debug_assert!(!j.data.is_empty(), "job {} sent unmade", j.id);
                Entry::Made(j.id, &j.data)
            })),
            Source::Queued(jobs, _) => Box::new(jobs.iter().map(|j| {
                if j.data.is_empty() && j.done == 0 {
                    Entry::Fresh(j.id)
                } else {
                    Entry::Made(j.id, &j.data)
                }
            })),
            Source::Fresh(ids, _) => Box::new(ids.iter().map(|&id| Entry::Fresh(id))),
        }
    }

    fn elements(&self) -> usize {
        let fresh = self.workload().map_or(0, |w| w.elements_per_job as usize);
        self.entries()
            .map(|e| match e {
                Entry::Made(_, data) => data.len(),
                Entry::Fresh(_) => fresh,
            })
            .sum()
    }
}

/// An encoded batch payload and the size of its raw form.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub payload: Vec<u8>,
    /// What the batch would take uncompressed.
    pub raw_bytes: usize,
}

impl Encoded {
    /// True when the jobs went compressed.
    pub fn is_compressed(&self) -> bool {
        is_compressed(&self.payload)
    }
}

/// Encodes a batch; with `compress`, each job's data compressed when a
/// trial on a sample of the batch shows that halves it.
pub fn encode_batch(source: Source<'_>, compress: bool) -> Encoded {
    let raw_bytes = 5 + source.len() * 8 + source.elements() * 8;
    // A fresh job's data, made once for the batch.
    let initial: Vec<f64> = source
        .workload()
        .map(|w| vec![w.initial; w.elements_per_job as usize])
        .unwrap_or_default();
    let payload = if compress && worth_compressing(source, &initial) {
        encode_packed(source, &initial, raw_bytes)
    } else {
        encode_raw(source, &initial, raw_bytes)
    };
    Encoded { payload, raw_bytes }
}

fn encode_raw(source: Source<'_>, initial: &[f64], raw_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw_bytes);
    let mut w = Writer(&mut out);
    w.u8(RAW);
    w.u32(source.len() as u32);
    let fresh = le_bytes(initial);
    for entry in source.entries() {
        let (id, data) = match entry {
            Entry::Made(id, data) => (id, le_bytes(data)),
            Entry::Fresh(id) => (id, std::borrow::Cow::Borrowed(&*fresh)),
        };
        w.u32(id);
        w.u32((data.len() / 8) as u32);
        w.bytes(&data);
    }
    out
}

/// True when the batch is large enough to bother and a sample of its data
/// (its first jobs', up to [`SAMPLE_BYTES`]) compresses to half or less.
fn worth_compressing(source: Source<'_>, initial: &[f64]) -> bool {
    if source.elements() * 8 < MIN_COMPRESSED_BYTES {
        return false;
    }
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    for entry in source.entries() {
        let room = (SAMPLE_BYTES - sample.len()) / 8;
        if room == 0 {
            break;
        }
        let data = match entry {
            Entry::Made(_, data) => data,
            Entry::Fresh(_) => initial,
        };
        sample.extend_from_slice(&le_bytes(&data[..data.len().min(room)]));
    }
    lz4_flex::block::compress(&sample).len() * 2 <= sample.len()
}

/// The value every element holds, bit for bit, if they all hold one.
fn constant(data: &[f64]) -> Option<f64> {
    let (&first, _) = data.split_first()?;
    let bits: &[u64] = bytemuck::cast_slice(data);
    let want = first.to_bits();
    // Eight at a time without an early exit, so the loop vectorises.
    let mut chunks = bits.chunks_exact(8);
    let same = chunks
        .by_ref()
        .all(|c| c.iter().fold(true, |all, &b| all & (b == want)));
    (same && chunks.remainder().iter().all(|&b| b == want)).then_some(first)
}

/// One job's entry of a compressed batch after its id: the element count,
/// then its one value, an LZ4 block, or its data as it is when that is no
/// larger.
fn put_packed(w: &mut Writer<'_>, data: &[f64]) {
    w.u32(data.len() as u32);
    if let Some(value) = constant(data).filter(|_| data.len() > 1) {
        w.u32(0);
        w.f64(value);
        return;
    }
    let bytes = le_bytes(data);
    let packed = lz4_flex::block::compress(&bytes);
    let stored: &[u8] = if packed.len() < bytes.len() {
        &packed
    } else {
        &bytes
    };
    w.u32(stored.len() as u32);
    w.bytes(stored);
}

fn encode_packed(source: Source<'_>, initial: &[f64], raw_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((raw_bytes / 16).max(64));
    let mut w = Writer(&mut out);
    w.u8(LZ4);
    w.u32(source.len() as u32);
    // Every fresh job is the same: encoded once, copied.
    let mut fresh: Option<Vec<u8>> = None;
    for entry in source.entries() {
        match entry {
            Entry::Made(id, data) => {
                w.u32(id);
                put_packed(&mut w, data);
            }
            Entry::Fresh(id) => {
                w.u32(id);
                let one = fresh.get_or_insert_with(|| {
                    let mut one = Vec::new();
                    put_packed(&mut Writer(&mut one), initial);
                    one
                });
                w.bytes(one);
            }
        }
    }
    out
}

/// True when a batch payload is compressed.
pub fn is_compressed(payload: &[u8]) -> bool {
    payload.first() == Some(&LZ4) || super::pieces::is_compressed(payload)
}

/// Decodes a batch payload. `complete` marks the jobs as fully computed
/// (a results batch) or not started (a jobs batch).
pub fn decode(bytes: &[u8], params: &RunParams, complete: bool) -> Result<Vec<Job>, DecodeError> {
    let mut r = Reader::new(bytes);
    let encoding = r.u8()?;
    if encoding == super::pieces::PIECES {
        return super::pieces::decode(r.rest(), params, complete);
    }
    if !params.is_vector() {
        return Err(DecodeError::Invalid("a vector batch in a run of pieces"));
    }
    match encoding {
        RAW => decode_raw(r.rest(), params, complete),
        LZ4 => decode_packed(r.rest(), params, complete),
        _ => Err(DecodeError::Invalid("unknown batch encoding")),
    }
}

/// Checks a job's header against the run.
fn check_job(id: JobId, elements: u32, params: &RunParams) -> Result<(), DecodeError> {
    if id >= params.jobs {
        return Err(DecodeError::Invalid("job id beyond the workload"));
    }
    if elements != params.elements_per_job {
        return Err(DecodeError::Invalid("job length differs from the workload"));
    }
    Ok(())
}

fn no_duplicates(mut seen: Vec<JobId>) -> Result<(), DecodeError> {
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::Invalid("a job appears twice in one batch"));
    }
    Ok(())
}

fn decode_packed(
    bytes: &[u8],
    params: &RunParams,
    complete: bool,
) -> Result<Vec<Job>, DecodeError> {
    let mut r = Reader::new(bytes);
    let count = r.u32()?;
    let raw_job = params.elements_per_job as usize * 8;
    // No batch holds more jobs than the run, nor more data than a sender
    // puts in one; and every entry takes at least its 12-byte header. All
    // checked before anything is allocated.
    let largest = MAX_BATCH_DATA_BYTES.max(job_bytes(params.elements_per_job));
    if count > params.jobs
        || (count as usize).saturating_mul(job_bytes(params.elements_per_job)) > largest
    {
        return Err(DecodeError::Invalid(
            "compressed batch larger than any batch of the run",
        ));
    }
    if (count as usize).saturating_mul(12) > bytes.len().saturating_sub(4) {
        return Err(DecodeError::Truncated {
            needed: 4 + count as usize * 12,
            got: bytes.len(),
        });
    }
    let mut seen = Vec::with_capacity(count as usize);
    let mut jobs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = r.u32()?;
        let elements = r.u32()?;
        check_job(id, elements, params)?;
        let stored = r.u32()? as usize;
        if stored > raw_job {
            return Err(DecodeError::Invalid("compressed job larger than its data"));
        }
        seen.push(id);
        let data = if stored == 0 {
            let value = r.f64()?;
            if !complete && value.to_bits() == params.initial.to_bits() {
                // A job nobody has computed yet, sent as the workload's
                // initial value: it stays unmade here too, and the worker
                // that takes it fills it in, in its own cache, just before
                // computing it (not this thread, all at once, on arrival).
                jobs.push(Job::unmade(id));
                continue;
            }
            vec![value; elements as usize]
        } else if stored == raw_job {
            f64s_from_le(r.take(stored)?)
        } else {
            let block = r.take(stored)?;
            let mut data = vec![0.0f64; elements as usize];
            let out = bytemuck::cast_slice_mut::<f64, u8>(&mut data);
            match lz4_flex::block::decompress_into(block, out) {
                Ok(n) if n == raw_job => {}
                _ => return Err(DecodeError::Invalid("corrupt compressed job")),
            }
            #[cfg(target_endian = "big")]
            for v in &mut data {
                *v = f64::from_bits(u64::from_le(v.to_bits()));
            }
            data
        };
        let done = if complete { data.len() } else { 0 };
        jobs.push(Job {
            id,
            data,
            done,
            piece: None,
        });
    }
    r.finish()?;
    no_duplicates(seen)?;
    Ok(jobs)
}

fn decode_raw(bytes: &[u8], params: &RunParams, complete: bool) -> Result<Vec<Job>, DecodeError> {
    let mut r = Reader::new(bytes);
    let count = r.u32()?;
    let per_job = job_bytes(params.elements_per_job);
    // The count must match the payload's size exactly before anything is
    // allocated for it.
    let expected = (count as usize)
        .checked_mul(per_job)
        .and_then(|n| n.checked_add(4));
    match expected {
        Some(n) if n == bytes.len() => {}
        Some(n) if n > bytes.len() => {
            return Err(DecodeError::Truncated {
                needed: n,
                got: bytes.len(),
            });
        }
        _ => {
            return Err(DecodeError::Invalid(
                "batch size does not match its job count",
            ));
        }
    }
    if count > params.jobs {
        return Err(DecodeError::Invalid("more jobs in a batch than in the run"));
    }
    let mut seen: Vec<JobId> = Vec::with_capacity(count as usize);
    let mut jobs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = r.u32()?;
        let elements = r.u32()?;
        check_job(id, elements, params)?;
        seen.push(id);
        let data = f64s_from_le(r.take(elements as usize * 8)?);
        let done = if complete { data.len() } else { 0 };
        jobs.push(Job {
            id,
            data,
            done,
            piece: None,
        });
    }
    r.finish()?;
    no_duplicates(seen)?;
    Ok(jobs)
}

/// Little-endian doubles from bytes (a multiple of 8 long): one copy into
/// zeroed memory, not a loop over values.
pub fn f64s_from_le(raw: &[u8]) -> Vec<f64> {
    let n = raw.len() / 8;
    let mut data = vec![0.0f64; n];
    bytemuck::cast_slice_mut::<f64, u8>(&mut data).copy_from_slice(&raw[..n * 8]);
    #[cfg(target_endian = "big")]
    for v in &mut data {
        *v = f64::from_bits(u64::from_le(v.to_bits()));
    }
    data
}

/// The little-endian bytes of doubles: the doubles' own memory on a
/// little-endian machine, a converted copy elsewhere.
pub fn le_bytes(data: &[f64]) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(data))
    }
    #[cfg(target_endian = "big")]
    {
        std::borrow::Cow::Owned(data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs (their current data) as an uncompressed batch payload.
    fn encode(jobs: &[Job]) -> Vec<u8> {
        encode_batch(Source::Jobs(jobs), false).payload
    }

    /// The same bytes as [`encode`] of the jobs
    /// [`crate::workload::make_job`] would make, without making them.
    fn encode_fresh(ids: &[JobId], workload: &crate::config::WorkloadConfig) -> Vec<u8> {
        encode_batch(Source::Fresh(ids, workload), false).payload
    }

    fn params() -> RunParams {
        RunParams {
            jobs: 10,
            elements_per_job: 3,
            iterations: 5,
            initial: 1.5,
            addend: 0.25,
            threshold: 2,
            policy: 0,
            present: 10,
            arrivals: None,
            kind: 0,
            spec: Default::default(),
        }
    }

    fn jobs() -> Vec<Job> {
        vec![
            Job {
                id: 7,
                data: vec![1.0, -2.5, f64::MIN_POSITIVE],
                done: 0,
                piece: None,
            },
            Job {
                id: 0,
                data: vec![1e300, 0.1, -0.0],
                done: 0,
                piece: None,
            },
        ]
    }

    #[test]
    fn round_trip_keeps_every_bit() {
        let bytes = encode(&jobs());
        assert_eq!(bytes.len(), 5 + 2 * job_bytes(3));
        let back = decode(&bytes, &params(), false).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in back.iter().zip(jobs()) {
            assert_eq!(a.id, b.id);
            let a: Vec<u64> = a.data.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u64> = b.data.iter().map(|v| v.to_bits()).collect();
            assert_eq!(a, b);
        }
        let results = decode(&bytes, &params(), true).unwrap();
        assert!(results.iter().all(Job::is_complete));
    }

    fn workload(jobs: u32, elements_per_job: u32) -> crate::config::WorkloadConfig {
        crate::config::WorkloadConfig {
            jobs,
            elements_per_job,
            iterations: 3,
            initial: 1.111111,
            addend: 1.0,
            arrivals: None,
            ..Default::default()
        }
    }

    fn params_of(w: &crate::config::WorkloadConfig) -> RunParams {
        RunParams {
            jobs: w.jobs,
            elements_per_job: w.elements_per_job,
            iterations: w.iterations,
            initial: w.initial,
            addend: w.addend,
            threshold: 2,
            policy: 0,
            present: w.jobs,
            arrivals: None,
            kind: 0,
            spec: Default::default(),
        }
    }

    /// Jobs as a worker computes them: unmade ones filled in.
    fn made(mut jobs: Vec<Job>, w: &crate::config::WorkloadConfig) -> Vec<Job> {
        for j in &mut jobs {
            j.make_ready(w);
        }
        jobs
    }

    fn packed(source: Source<'_>) -> Vec<u8> {
        let e = encode_batch(source, true);
        assert!(e.is_compressed());
        e.payload
    }

    #[test]
    fn compressible_batches_are_compressed_and_come_back_bit_for_bit() {
        let w = workload(8, 32768);
        let ids: Vec<JobId> = (0..8).collect();
        let raw = encode_fresh(&ids, &w);
        let fresh = encode_batch(Source::Fresh(&ids, &w), true);
        assert!(fresh.is_compressed());
        assert_eq!(fresh.raw_bytes, raw.len());
        // One value repeated: LZ4 leaves well under 1 %.
        assert!(
            fresh.payload.len() * 100 < raw.len(),
            "{} of {}",
            fresh.payload.len(),
            raw.len()
        );
        let p = params_of(&w);
        // Fresh jobs arrive unmade: nothing allocated until a worker takes
        // them, and then the same data as sent raw.
        let arrived = decode(&fresh.payload, &p, false).unwrap();
        assert_eq!(
            arrived,
            ids.iter().map(|&id| Job::unmade(id)).collect::<Vec<_>>()
        );
        assert_eq!(made(arrived, &w), decode(&raw, &p, false).unwrap());
        // Made jobs compress to the same bytes as fresh ones.
        let made: Vec<Job> = ids
            .iter()
            .map(|&id| crate::workload::make_job(&w, id))
            .collect();
        assert_eq!(packed(Source::Jobs(&made)), fresh.payload);
        // Results with rounding differences between jobs still shrink.
        let mut results = decode(&raw, &p, true).unwrap();
        for (i, job) in results.iter_mut().enumerate() {
            job.data[i * 7] = 1112.222111 + i as f64;
        }
        let bytes = packed(Source::Jobs(&results));
        assert!(bytes.len() * 100 < raw.len());
        assert_eq!(decode(&bytes, &p, true).unwrap(), results);
    }

    #[test]
    fn queued_jobs_not_made_go_as_fresh_ones_and_made_ones_with_their_data() {
        let w = workload(6, 8192);
        let p = params_of(&w);
        let mut queued: Vec<Job> = (0..6).map(Job::unmade).collect();
        // Job 2 is made, job 4 holds other data (a reclaimed, restarted one).
        queued[2].make_ready(&w);
        queued[4] = crate::workload::random_job(4, w.elements_per_job);
        let made: Vec<Job> = queued
            .iter()
            .map(|j| {
                let mut j = j.clone();
                j.make_ready(&w);
                j
            })
            .collect();
        for compress in [false, true] {
            let from_queue = encode_batch(Source::Queued(&queued, &w), compress);
            let from_made = encode_batch(Source::Jobs(&made), compress);
            assert_eq!(from_queue, from_made, "compress {compress}");
            let arrived = decode(&from_queue.payload, &p, false).unwrap();
            // Compressed, the fresh ones arrive unmade; job 4 with its data.
            assert_eq!(arrived[0].data.is_empty(), compress);
            assert_eq!(arrived[2].data.is_empty(), compress);
            assert_eq!(arrived[4], made[4]);
            assert_eq!(self::made(arrived, &w), made);
        }
        // The queue's jobs are left as they were.
        assert!(queued[0].data.is_empty());
    }

    #[test]
    fn a_job_that_does_not_shrink_goes_as_it_is_within_a_compressed_batch() {
        let w = workload(3, 8192);
        let p = params_of(&w);
        let mut jobs: Vec<Job> = (0..3).map(|id| crate::workload::make_job(&w, id)).collect();
        jobs[1] = crate::workload::random_job(1, w.elements_per_job);
        let bytes = packed(Source::Jobs(&jobs));
        // Job 0 as its one value, job 1 stored whole, job 2 as its value.
        let stored = |at: usize| u32::from_le_bytes(bytes[at + 8..][..4].try_into().unwrap());
        assert_eq!(stored(5), 0);
        assert_eq!(stored(5 + 20), 8192 * 8);
        assert_eq!(stored(5 + 20 + 12 + 8192 * 8), 0);
        assert_eq!(bytes.len(), 5 + 20 + 12 + 8192 * 8 + 20);
        assert_eq!(made(decode(&bytes, &p, false).unwrap(), &w), jobs);
        // As results, every job comes back whole.
        let results = decode(&bytes, &p, true).unwrap();
        assert!(
            results
                .iter()
                .all(|j| j.data.len() == 8192 && j.is_complete())
        );
    }

    #[test]
    fn incompressible_and_small_batches_go_as_they_are() {
        let w = workload(4, 8192);
        let jobs: Vec<Job> = (0..w.jobs)
            .map(|id| crate::workload::random_job(id, w.elements_per_job))
            .collect();
        let random = encode_batch(Source::Jobs(&jobs), true);
        assert!(!random.is_compressed());
        assert_eq!(random.payload, encode(&jobs));
        assert_eq!(random.raw_bytes, random.payload.len());
        let small = workload(2, 100);
        let raw = encode_batch(Source::Fresh(&[0, 1], &small), true);
        assert!(!raw.is_compressed());
        assert_eq!(raw.payload, encode_fresh(&[0, 1], &small));
        assert!(!encode_batch(Source::Jobs(&[]), true).is_compressed());
    }

    #[test]
    fn a_bad_compressed_batch_is_an_error_not_a_panic_or_an_allocation() {
        let w = workload(8, 4096);
        let p = params_of(&w);
        let ids: Vec<JobId> = (0..8).collect();
        // Jobs that are not one value, so they go as LZ4 blocks.
        let mut jobs: Vec<Job> = ids
            .iter()
            .map(|&id| crate::workload::make_job(&w, id))
            .collect();
        for job in &mut jobs {
            job.data[job.id as usize] = 2.5;
        }
        let bytes = packed(Source::Jobs(&jobs));
        assert_ne!(bytes[5 + 8..5 + 12], [0; 4]);
        // A count beyond the run.
        let mut huge = bytes.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&huge, &p, false),
            Err(DecodeError::Invalid(
                "compressed batch larger than any batch of the run"
            ))
        );
        // Within the workload but beyond what a sender puts in one batch
        // (issue 11: the cap was the whole workload, up to 32 GiB).
        let big = workload(1 << 20, 512);
        let mut past = packed(Source::Fresh(&ids, &big));
        let too_many = (MAX_BATCH_DATA_BYTES / job_bytes(512) + 1) as u32;
        past[1..5].copy_from_slice(&too_many.to_le_bytes());
        assert_eq!(
            decode(&past, &params_of(&big), false),
            Err(DecodeError::Invalid(
                "compressed batch larger than any batch of the run"
            ))
        );
        // More jobs stated than the bytes could hold: refused before any
        // job's memory is allocated.
        let mut many = bytes[..5].to_vec();
        many[1..5].copy_from_slice(&8u32.to_le_bytes());
        assert!(matches!(
            decode(&many, &p, false),
            Err(DecodeError::Truncated { .. })
        ));
        // A stored size beyond the job's data.
        let mut long = bytes.clone();
        long[5 + 8..5 + 12].copy_from_slice(&(4096 * 8 + 1u32).to_le_bytes());
        assert_eq!(
            decode(&long, &p, false),
            Err(DecodeError::Invalid("compressed job larger than its data"))
        );
        // Every truncation and every flipped byte of the batch, of LZ4
        // blocks and of jobs sent as one value.
        let fill = packed(Source::Fresh(&ids, &w));
        assert_eq!(fill.len(), 5 + 8 * 20);
        for bytes in [&bytes, &fill] {
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len], &p, false).is_err(), "prefix {len}");
            }
        }
        for (batch, i) in (5..bytes.len())
            .map(|i| (&bytes, i))
            .chain((5..fill.len()).map(|i| (&fill, i)))
        {
            let mut bad = batch.clone();
            bad[i] ^= 0x55;
            // Either refused, or (a flipped literal) decoded into a batch of
            // the right shape: never a panic.
            if let Ok(jobs) = decode(&bad, &p, false) {
                assert_eq!(jobs.len(), 8);
            }
        }
        let mut unknown = bytes;
        unknown[0] = 7;
        assert_eq!(
            decode(&unknown, &p, false),
            Err(DecodeError::Invalid("unknown batch encoding"))
        );
    }

    #[test]
    fn fresh_jobs_encode_as_the_jobs_made_would() {
        let w = crate::config::WorkloadConfig {
            jobs: 10,
            elements_per_job: 5,
            iterations: 3,
            initial: -1.25e-3,
            addend: 1.0,
            arrivals: None,
            ..Default::default()
        };
        for ids in [vec![], vec![4], vec![9, 0, 3]] {
            let made: Vec<Job> = ids
                .iter()
                .map(|&id| crate::workload::make_job(&w, id))
                .collect();
            assert_eq!(encode_fresh(&ids, &w), encode(&made), "{ids:?}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&jobs());
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len], &params(), false).is_err(),
                "prefix {len}"
            );
        }
    }

    #[test]
    fn bad_batches_are_rejected() {
        let p = params();
        let mut dup = jobs();
        dup[1].id = 7;
        assert_eq!(
            decode(&encode(&dup), &p, false),
            Err(DecodeError::Invalid("a job appears twice in one batch"))
        );
        let mut far = jobs();
        far[0].id = 10;
        assert_eq!(
            decode(&encode(&far), &p, false),
            Err(DecodeError::Invalid("job id beyond the workload"))
        );
        let mut short = jobs();
        short[0].data.pop();
        short[1].data.push(0.0);
        assert_eq!(
            decode(&encode(&short), &p, false),
            Err(DecodeError::Invalid("job length differs from the workload"))
        );
        // A count that promises far more than the bytes hold allocates nothing.
        let mut lying = encode(&jobs());
        lying[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&lying, &p, false),
            Err(DecodeError::Truncated { .. })
        ));
        let mut extra = encode(&jobs());
        extra.push(0);
        assert_eq!(
            decode(&extra, &p, false),
            Err(DecodeError::Invalid(
                "batch size does not match its job count"
            ))
        );
    }
}
