//! The payload of a batch of digits or command jobs (encoding byte 2):
//! each job's bytes (its input, or its output with how the attempt went),
//! LZ4-compressed when that pays. The vector kind's batches
//! ([`super::batch`]) are unchanged.
//!
//! ```text
//! u8 2, u32 count, then count times:
//!   u32 job id, u8 flags (1: a result, 2: LZ4), u32 bytes, u32 stored bytes, stored
//!   a result then: i32 exit value, i32 signal, f64 start (Unix s), f64 runtime (s),
//!                  u64 bytes of input,
//!                  u16 length + why it failed (UTF-8; empty: it succeeded, flag 4 set),
//!                  u16 length + the stderr's tail, 32 bytes BLAKE3 of the bytes
//! ```
//!
//! Decoding checks every id against the run, every length against the
//! largest piece and the batch, and rejects duplicates, before allocating.

use super::codec::{Reader, Writer};
use super::{DecodeError, RunParams};
use crate::config::limits::MAX_PIECE_BYTES;
use crate::workload::{Job, JobId, Outcome};

/// The encoding byte.
pub const PIECES: u8 = 2;

const RESULT: u8 = 1;
const PACKED: u8 = 2;
const FAILED: u8 = 4;
/// A job not read from the input yet (a slave giving back a job whose
/// bytes it no longer has): the master reads it again.
const UNREAD: u8 = 8;

/// The most a failure's text or a stderr tail takes on the wire.
const MAX_TEXT: usize = 4096;

/// Bytes smaller than this go as they are.
const MIN_COMPRESSED_BYTES: usize = 4096;

/// The bytes a batch of these jobs carries (inputs or outputs).
pub fn data_bytes(jobs: &[Job]) -> usize {
    jobs.iter()
        .map(|j| j.piece.as_ref().map_or(0, |p| p.bytes.len()))
        .sum()
}

/// Encodes jobs that hold their bytes; `compress` tries LZ4 on each.
pub fn encode(jobs: &[Job], compress: bool) -> super::batch::Encoded {
    let raw_bytes = 5 + jobs.len() * 13 + data_bytes(jobs);
    let mut out = Vec::with_capacity(raw_bytes + 64);
    let mut w = Writer(&mut out);
    w.u8(PIECES);
    w.u32(jobs.len() as u32);
    for job in jobs {
        let empty = Vec::new();
        let (bytes, ran) = match &job.piece {
            Some(p) => (&p.bytes, p.ran.as_ref()),
            None => (&empty, None),
        };
        let packed = (compress && bytes.len() >= MIN_COMPRESSED_BYTES)
            .then(|| lz4_flex::block::compress(bytes))
            .filter(|p| p.len() * 10 < bytes.len() * 9);
        let mut flags = 0;
        if ran.is_some() {
            flags |= RESULT;
        }
        if packed.is_some() {
            flags |= PACKED;
        }
        if ran.is_some_and(|o| o.failed.is_some()) {
            flags |= FAILED;
        }
        if job.piece.is_none() {
            flags |= UNREAD;
        }
        w.u32(job.id);
        w.u8(flags);
        w.u32(bytes.len() as u32);
        let stored = packed.as_deref().unwrap_or(bytes);
        w.u32(stored.len() as u32);
        w.bytes(stored);
        if let Some(o) = ran {
            w.u32(o.exitval as u32);
            w.u32(o.signal as u32);
            w.f64(o.start_unix_s);
            w.f64(o.runtime_s);
            w.u64(o.input_bytes);
            put_text(&mut w, o.failed.as_deref().unwrap_or("").as_bytes());
            put_text(&mut w, &o.stderr_tail);
            w.bytes(&o.digest);
        }
    }
    super::batch::Encoded {
        payload: out,
        raw_bytes,
    }
}

/// True when any job of an encoded batch of pieces went compressed.
pub fn is_compressed(payload: &[u8]) -> bool {
    let mut r = Reader::new(payload);
    let (Ok(PIECES), Ok(count)) = (r.u8(), r.u32()) else {
        return false;
    };
    for _ in 0..count {
        let (Ok(_), Ok(flags), Ok(_), Ok(stored)) = (r.u32(), r.u8(), r.u32(), r.u32()) else {
            return false;
        };
        if flags & PACKED != 0 {
            return true;
        }
        if r.take(stored as usize).is_err() {
            return false;
        }
        if flags & RESULT != 0 && skip_outcome(&mut r).is_err() {
            return false;
        }
    }
    false
}

fn put_text(w: &mut Writer<'_>, text: &[u8]) {
    let text = &text[text.len().saturating_sub(MAX_TEXT)..];
    w.u16(text.len() as u16);
    w.bytes(text);
}

fn skip_outcome(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    r.take(4 + 4 + 8 + 8 + 8)?;
    let n = r.u16()?;
    r.take(usize::from(n))?;
    let n = r.u16()?;
    r.take(usize::from(n))?;
    r.take(32)?;
    Ok(())
}

/// Decodes a batch of pieces (the encoding byte already read) for a run
/// of `params`; `results` says whether it is a batch of results (each job
/// must carry its outcome) or of jobs (none may).
pub fn decode(bytes: &[u8], params: &RunParams, results: bool) -> Result<Vec<Job>, DecodeError> {
    if params.is_vector() {
        return Err(DecodeError::Invalid("a batch of pieces in a vector run"));
    }
    let mut r = Reader::new(bytes);
    let count = r.u32()?;
    if count > params.jobs {
        return Err(DecodeError::Invalid("more jobs in a batch than in the run"));
    }
    // Every entry takes at least its 13-byte header.
    if (count as usize).saturating_mul(13) > bytes.len().saturating_sub(4) {
        return Err(DecodeError::Truncated {
            needed: 4 + count as usize * 13,
            got: bytes.len(),
        });
    }
    let largest = (super::batch::MAX_BATCH_DATA_BYTES as u64).max(MAX_PIECE_BYTES);
    let mut total = 0u64;
    let mut seen: Vec<JobId> = Vec::with_capacity(count as usize);
    let mut jobs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = r.u32()?;
        if id >= params.jobs {
            return Err(DecodeError::Invalid("job id beyond the workload"));
        }
        let flags = r.u8()?;
        if flags & !(RESULT | PACKED | FAILED | UNREAD) != 0 {
            return Err(DecodeError::Invalid("unknown piece flags"));
        }
        if (flags & RESULT != 0) != results {
            return Err(DecodeError::Invalid(if results {
                "a result without its outcome"
            } else {
                "a job carrying an outcome"
            }));
        }
        let len = r.u32()?;
        let stored = r.u32()? as usize;
        total += u64::from(len);
        if u64::from(len) > MAX_PIECE_BYTES || total > largest {
            return Err(DecodeError::Invalid("piece larger than any job of the run"));
        }
        let raw = r.take(stored)?;
        let data = if flags & PACKED != 0 {
            if stored >= len as usize {
                return Err(DecodeError::Invalid(
                    "compressed piece larger than its bytes",
                ));
            }
            let mut data = vec![0u8; len as usize];
            match lz4_flex::block::decompress_into(raw, &mut data) {
                Ok(n) if n == len as usize => data,
                _ => return Err(DecodeError::Invalid("corrupt compressed piece")),
            }
        } else {
            if stored != len as usize {
                return Err(DecodeError::Invalid("piece length differs from its bytes"));
            }
            raw.to_vec()
        };
        if flags & UNREAD != 0 {
            if results || len != 0 || flags != UNREAD {
                return Err(DecodeError::Invalid("an unread job with bytes"));
            }
            seen.push(id);
            jobs.push(Job::unmade(id));
            continue;
        }
        let mut job = Job::with_input(id, data);
        if results {
            let exitval = r.u32()? as i32;
            let signal = r.u32()? as i32;
            let start_unix_s = r.f64()?;
            let runtime_s = r.f64()?;
            let input_bytes = r.u64()?;
            if !start_unix_s.is_finite() || !runtime_s.is_finite() || runtime_s < 0.0 {
                return Err(DecodeError::Invalid("non-finite time"));
            }
            let failed = text(&mut r)?;
            let stderr_tail = text(&mut r)?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(r.take(32)?);
            let failed = if flags & FAILED != 0 {
                Some(String::from_utf8_lossy(&failed).into_owned())
            } else if failed.is_empty() {
                None
            } else {
                return Err(DecodeError::Invalid("a failure's text on a job done"));
            };
            if let Some(p) = job.piece.as_mut() {
                p.ran = Some(Outcome {
                    exitval,
                    signal,
                    failed,
                    start_unix_s,
                    runtime_s,
                    input_bytes,
                    stderr_tail,
                    digest,
                });
            }
        } else if flags & FAILED != 0 {
            return Err(DecodeError::Invalid("a job carrying an outcome"));
        }
        seen.push(id);
        jobs.push(job);
    }
    r.finish()?;
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::Invalid("a job appears twice in one batch"));
    }
    Ok(jobs)
}

fn text(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let n = usize::from(r.u16()?);
    if n > MAX_TEXT {
        return Err(DecodeError::Invalid("text longer than any sent"));
    }
    Ok(r.take(n)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(jobs: u32) -> RunParams {
        RunParams {
            kind: crate::config::Kind::Command.code(),
            jobs,
            present: jobs,
            ..crate::sim::swarm::SMALL_PARAMS
        }
    }

    fn result(id: JobId, bytes: Vec<u8>, failed: Option<&str>) -> Job {
        let mut job = Job::with_input(id, bytes);
        let digest = *blake3::hash(&job.piece.as_ref().unwrap().bytes).as_bytes();
        job.piece.as_mut().unwrap().ran = Some(Outcome {
            exitval: if failed.is_some() { 3 } else { 0 },
            signal: 0,
            failed: failed.map(str::to_owned),
            start_unix_s: 1.8e9,
            runtime_s: 0.25,
            input_bytes: 1234,
            stderr_tail: b"last words\n".to_vec(),
            digest,
        });
        job
    }

    #[test]
    fn jobs_and_results_come_back_as_they_went_compressed_or_not() {
        let text: Vec<u8> = b"the same line again\n".repeat(1000);
        let noise: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let jobs = vec![
            Job::with_input(3, text.clone()),
            Job::with_input(0, noise.clone()),
            Job::with_input(7, Vec::new()),
            Job::unmade(5),
        ];
        for compress in [false, true] {
            let e = encode(&jobs, compress);
            assert_eq!(e.is_compressed(), compress, "only the text shrinks");
            let back = decode(&e.payload[1..], &params(10), false).unwrap();
            assert_eq!(back, jobs);
        }
        let results = vec![
            result(1, text, None),
            result(2, noise, Some("exited with status 3")),
        ];
        for compress in [false, true] {
            let e = encode(&results, compress);
            let back = decode(&e.payload[1..], &params(10), true).unwrap();
            assert_eq!(back, results);
        }
    }

    #[test]
    fn forged_batches_are_refused_before_anything_is_allocated() {
        let jobs = vec![Job::with_input(3, b"abc".to_vec())];
        let results = vec![result(1, b"xyz".to_vec(), None)];
        let job_bytes = encode(&jobs, false).payload;
        let result_bytes = encode(&results, false).payload;
        let err = |bytes: &[u8], params: &RunParams, results: bool| {
            decode(&bytes[1..], params, results)
                .unwrap_err()
                .to_string()
        };
        // Every cut short is an error, never a panic.
        for bytes in [&job_bytes, &result_bytes] {
            for len in 1..bytes.len() {
                assert!(decode(&bytes[1..len], &params(10), bytes == &result_bytes).is_err());
            }
        }
        assert!(err(&job_bytes, &params(3), false).contains("beyond the workload"));
        assert!(err(&job_bytes, &params(10), true).contains("a result without its outcome"));
        assert!(err(&result_bytes, &params(10), false).contains("a job carrying an outcome"));
        let vector = RunParams {
            kind: 0,
            ..params(10)
        };
        assert!(err(&job_bytes, &vector, false).contains("a batch of pieces in a vector run"));
        // A length past any piece, a count past the run, a duplicate.
        let mut huge = job_bytes.clone();
        huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&huge, &params(10), false).contains("larger than any job"));
        let mut many = job_bytes.clone();
        many[1..5].copy_from_slice(&11u32.to_le_bytes());
        assert!(err(&many, &params(10), false).contains("more jobs in a batch"));
        let twice = encode(&[jobs[0].clone(), jobs[0].clone()], false).payload;
        assert!(err(&twice, &params(10), false).contains("twice"));
        // The wire's dispatch: a vector batch in a run of pieces.
        let w = crate::config::WorkloadConfig {
            jobs: 10,
            elements_per_job: 4,
            ..Default::default()
        };
        let vector_batch =
            super::super::batch::encode_batch(super::super::batch::Source::Fresh(&[1], &w), false);
        let e = super::super::batch::decode(&vector_batch.payload, &params(10), false).unwrap_err();
        assert!(
            e.to_string().contains("a vector batch in a run of pieces"),
            "{e}"
        );
    }
}
