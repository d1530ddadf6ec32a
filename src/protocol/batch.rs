//! The payload of a reassembled batch: a list of jobs with their data,
//! compressed when that pays.
//!
//! ```text
//! u8 encoding (0 raw, 1 LZ4), then
//!   raw:  u32 count, then count times: u32 job id, u32 element count, f64 LE data...
//!   LZ4:  u32 size of the raw form, then the raw form (from `count` on) as one LZ4 block
//! ```
//!
//! Compression is per batch and only when it pays ([`compress_if_it_pays`]):
//! the reference workload's jobs (one value repeated) and results shrink to
//! well under 1 %, random values not at all. On any real network a batch
//! LZ4 shrinks by half costs less to compress than to send; on a plain
//! loopback the link outruns LZ4's decompression, so there compression is
//! off unless the config asks for it (`network.compression`).
//!
//! Decoding checks every id and length against the run's parameters before
//! allocating anything (a compressed batch's stated size too), and rejects
//! duplicate ids within a batch.

use super::codec::{Reader, Writer};
use super::{DecodeError, RunParams};
use crate::workload::{Job, JobId};

/// Bytes one job takes in a batch.
pub fn job_bytes(elements_per_job: u32) -> usize {
    8 + elements_per_job as usize * 8
}

/// The most job data a sender puts in one batch (a policy transfer; the
/// bootstrap's and results' batches are about 2 MiB), unless a single job
/// is larger. A receiver reassembles and decompresses a batch in one buffer,
/// so this bounds its memory per batch.
pub const MAX_BATCH_DATA_BYTES: usize = 64 << 20;

/// The encoding byte of an uncompressed batch.
pub const RAW: u8 = 0;
/// The encoding byte of an LZ4-compressed batch.
pub const LZ4: u8 = 1;

/// Bytes of a batch compressed on trial before the whole is: enough to
/// judge, cheap to waste (about 5 µs when nothing compresses).
const SAMPLE_BYTES: usize = 64 << 10;

/// Batches smaller than this are never compressed.
const MIN_COMPRESSED_BYTES: usize = 4096;

/// Encodes jobs (their current data) into an uncompressed batch payload.
pub fn encode(jobs: &[Job]) -> Vec<u8> {
    let size = 5 + jobs.iter().map(|j| 8 + j.data.len() * 8).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let mut w = Writer(&mut out);
    w.u8(RAW);
    w.u32(jobs.len() as u32);
    for job in jobs {
        w.u32(job.id);
        w.u32(job.data.len() as u32);
        for &v in &job.data {
            w.f64(v);
        }
    }
    out
}

/// Encodes jobs not yet computed straight from the workload, without making
/// them first: the same bytes as [`encode`] of the jobs
/// [`crate::workload::make_job`] would make. The master's bootstrap sends
/// half the vector this way, a batch at a time, so it never holds that
/// half twice.
pub fn encode_fresh(ids: &[JobId], workload: &crate::config::WorkloadConfig) -> Vec<u8> {
    let elements = workload.elements_per_job as usize;
    let mut out = Vec::with_capacity(5 + ids.len() * job_bytes(workload.elements_per_job));
    let mut w = Writer(&mut out);
    w.u8(RAW);
    w.u32(ids.len() as u32);
    // One job's data, encoded once and copied for every job.
    let data: Vec<u8> = workload.initial.to_le_bytes().repeat(elements);
    for &id in ids {
        w.u32(id);
        w.u32(elements as u32);
        w.bytes(&data);
    }
    out
}

/// Compresses an uncompressed batch payload when that makes it at most half
/// its size, judged first on a sample so incompressible data costs next to
/// nothing; otherwise returns it as it is.
pub fn compress_if_it_pays(raw: Vec<u8>) -> Vec<u8> {
    let Some((&RAW, body)) = raw.split_first() else {
        return raw;
    };
    if body.len() < MIN_COMPRESSED_BYTES || u32::try_from(body.len()).is_err() {
        return raw;
    }
    let sample = &body[..body.len().min(SAMPLE_BYTES)];
    if lz4_flex::block::compress(sample).len() * 2 > sample.len() {
        return raw;
    }
    let packed = lz4_flex::block::compress(body);
    if packed.len() * 2 > body.len() {
        return raw;
    }
    let mut out = Vec::with_capacity(5 + packed.len());
    let mut w = Writer(&mut out);
    w.u8(LZ4);
    w.u32(body.len() as u32);
    w.bytes(&packed);
    out
}

/// True when a batch payload is compressed.
pub fn is_compressed(payload: &[u8]) -> bool {
    payload.first() == Some(&LZ4)
}

/// Decodes a batch payload. `complete` marks the jobs as fully computed
/// (a results batch) or not started (a jobs batch).
pub fn decode(bytes: &[u8], params: &RunParams, complete: bool) -> Result<Vec<Job>, DecodeError> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        RAW => decode_raw(r.rest(), params, complete),
        LZ4 => {
            let size = r.u32()? as usize;
            // No batch holds more than a sender puts in one, nor more than
            // every job of the run: the decompressed size is capped before
            // anything is allocated.
            let per_job = job_bytes(params.elements_per_job);
            let largest = (params.jobs as usize)
                .saturating_mul(per_job)
                .min(MAX_BATCH_DATA_BYTES.max(per_job))
                .saturating_add(4);
            if size > largest {
                return Err(DecodeError::Invalid(
                    "compressed batch larger than any batch of the run",
                ));
            }
            let raw = lz4_flex::block::decompress(r.rest(), size)
                .map_err(|_| DecodeError::Invalid("corrupt compressed batch"))?;
            if raw.len() != size {
                return Err(DecodeError::Invalid(
                    "compressed batch size differs from its header",
                ));
            }
            decode_raw(&raw, params, complete)
        }
        _ => Err(DecodeError::Invalid("unknown batch encoding")),
    }
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
        if id >= params.jobs {
            return Err(DecodeError::Invalid("job id beyond the workload"));
        }
        if elements != params.elements_per_job {
            return Err(DecodeError::Invalid("job length differs from the workload"));
        }
        seen.push(id);
        let raw = r.take(elements as usize * 8)?;
        let data: Vec<f64> = raw
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a)
            })
            .collect();
        let done = if complete { data.len() } else { 0 };
        jobs.push(Job { id, data, done });
    }
    r.finish()?;
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::Invalid("a job appears twice in one batch"));
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RunParams {
        RunParams {
            jobs: 10,
            elements_per_job: 3,
            iterations: 5,
            initial: 1.5,
            addend: 0.25,
            threshold: 2,
            policy: 0,
        }
    }

    fn jobs() -> Vec<Job> {
        vec![
            Job {
                id: 7,
                data: vec![1.0, -2.5, f64::MIN_POSITIVE],
                done: 0,
            },
            Job {
                id: 0,
                data: vec![1e300, 0.1, -0.0],
                done: 0,
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
        }
    }

    #[test]
    fn compressible_batches_are_compressed_and_come_back_bit_for_bit() {
        let w = workload(8, 32768);
        let ids: Vec<JobId> = (0..8).collect();
        let raw = encode_fresh(&ids, &w);
        let packed = compress_if_it_pays(raw.clone());
        assert!(is_compressed(&packed));
        // One value repeated: LZ4 leaves well under 1 %.
        assert!(
            packed.len() * 100 < raw.len(),
            "{} of {}",
            packed.len(),
            raw.len()
        );
        let p = params_of(&w);
        assert_eq!(decode(&packed, &p, false), decode(&raw, &p, false));
        assert_eq!(decode(&packed, &p, false).unwrap().len(), 8);
        // Results with rounding differences between jobs still shrink.
        let mut results = decode(&raw, &p, true).unwrap();
        for (i, job) in results.iter_mut().enumerate() {
            job.data[i * 7] = 1112.222111 + i as f64;
        }
        let raw = encode(&results);
        let packed = compress_if_it_pays(raw.clone());
        assert!(is_compressed(&packed));
        assert_eq!(decode(&packed, &p, true).unwrap(), results);
    }

    #[test]
    fn incompressible_and_small_batches_go_as_they_are() {
        let w = workload(4, 8192);
        let jobs: Vec<Job> = (0..w.jobs)
            .map(|id| crate::workload::random_job(id, w.elements_per_job))
            .collect();
        let random = encode(&jobs);
        assert_eq!(compress_if_it_pays(random.clone()), random);
        let small = workload(2, 100);
        let raw = encode_fresh(&[0, 1], &small);
        assert_eq!(compress_if_it_pays(raw.clone()), raw);
        assert!(!is_compressed(&raw));
    }

    #[test]
    fn a_bad_compressed_batch_is_an_error_not_a_panic_or_an_allocation() {
        let w = workload(8, 4096);
        let p = params_of(&w);
        let ids: Vec<JobId> = (0..8).collect();
        let packed = compress_if_it_pays(encode_fresh(&ids, &w));
        assert!(is_compressed(&packed));
        // A stated size beyond any batch of the run.
        let mut huge = packed.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&huge, &p, false),
            Err(DecodeError::Invalid(
                "compressed batch larger than any batch of the run"
            ))
        );
        // Within the workload but beyond what a sender puts in one batch
        // (issue 11: the cap was the whole workload, up to 32 GiB).
        let big = workload(1 << 20, 64);
        let mut past = compress_if_it_pays(encode_fresh(&ids, &big));
        past[1..5].copy_from_slice(&((MAX_BATCH_DATA_BYTES + 5) as u32).to_le_bytes());
        assert_eq!(
            decode(&past, &params_of(&big), false),
            Err(DecodeError::Invalid(
                "compressed batch larger than any batch of the run"
            ))
        );
        // A stated size smaller than the data.
        let mut short = packed.clone();
        short[1..5].copy_from_slice(&100u32.to_le_bytes());
        assert!(decode(&short, &p, false).is_err());
        // Every truncation and every flipped byte of the block.
        for len in 0..packed.len() {
            assert!(decode(&packed[..len], &p, false).is_err(), "prefix {len}");
        }
        for i in 5..packed.len() {
            let mut bad = packed.clone();
            bad[i] ^= 0x55;
            // Either refused, or (a flipped literal) decoded into a batch of
            // the right shape: never a panic.
            if let Ok(jobs) = decode(&bad, &p, false) {
                assert_eq!(jobs.len(), 8);
            }
        }
        let mut unknown = packed;
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
