//! The payload of a reassembled batch: a list of jobs with their data.
//!
//! ```text
//! u32 count, then count times: u32 job id, u32 element count, f64 LE data...
//! ```
//!
//! Decoding checks every id and length against the run's parameters before
//! allocating anything, and rejects duplicate ids within a batch.

use super::codec::{Reader, Writer};
use super::{DecodeError, RunParams};
use crate::workload::{Job, JobId};

/// Bytes one job takes in a batch.
pub fn job_bytes(elements_per_job: u32) -> usize {
    8 + elements_per_job as usize * 8
}

/// Encodes jobs (their current data) into a batch payload.
pub fn encode(jobs: &[Job]) -> Vec<u8> {
    let size = 4 + jobs.iter().map(|j| 8 + j.data.len() * 8).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let mut w = Writer(&mut out);
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

/// Decodes a batch payload. `complete` marks the jobs as fully computed
/// (a results batch) or not started (a jobs batch).
pub fn decode(bytes: &[u8], params: &RunParams, complete: bool) -> Result<Vec<Job>, DecodeError> {
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
        assert_eq!(bytes.len(), 4 + 2 * job_bytes(3));
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
        lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
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
