//! The digit sum of the seeds (`nums.txt`): a file of decimal digits, cut
//! into chunks of `chunk_bytes` (30,000 in the seed); each job sums the
//! digits of its chunk, and the master adds the sums and checks the total
//! against one straight pass over the file. Bytes that are not digits (a
//! newline) count for nothing.
//!
//! This file holds the pieces the job kind is built from: the file's
//! maker (`loadbal digits --make`), a chunk's sum and the straight pass;
//! the chunks are fixed pieces ([`super::split::fixed_piece`]). Reading goes a block at a time: a file of any size never
//! sits in memory whole.

use std::io::{Read, Write};
use std::path::Path;

/// The seed's chunk size, bytes.
pub const DEFAULT_CHUNK_BYTES: u64 = 30_000;

/// How much is read or written at a time.
const BLOCK: usize = 1 << 20;

/// Writes `count` decimal digits drawn from `seed` (uniform, the same
/// digits for the same seed on any machine) and a newline to `out`, and
/// returns their sum.
pub fn write_digits(out: &mut dyn Write, count: u64, seed: u64) -> std::io::Result<u64> {
    let mut rng = crate::arrivals::Rng(seed);
    let mut sum = 0;
    let mut block = Vec::with_capacity(BLOCK);
    let mut left = count;
    while left > 0 {
        block.clear();
        let n = left.min(BLOCK as u64) as usize;
        while block.len() < n {
            // Two digits from each 64 random bits: each 32-bit half scaled
            // to 0..10 (a bias of at most one part in 400 million).
            let bits = rng.next();
            for half in [bits >> 32, bits & 0xffff_ffff] {
                if block.len() < n {
                    block.push(b'0' + ((half * 10) >> 32) as u8);
                }
            }
        }
        out.write_all(&block)?;
        sum += sum_digits(&block);
        left -= n as u64;
    }
    out.write_all(b"\n")?;
    Ok(sum)
}

/// The sum of the decimal digits in `bytes`; other bytes count nothing.
pub fn sum_digits(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .map(|&b| {
            let d = b.wrapping_sub(b'0');
            if d < 10 { u64::from(d) } else { 0 }
        })
        .sum()
}

/// The straight pass: the sum of every digit of `reader`'s bytes, and how
/// many bytes it read.
pub fn total(mut reader: impl Read) -> std::io::Result<(u64, u64)> {
    let mut block = vec![0u8; BLOCK];
    let (mut sum, mut bytes) = (0u64, 0u64);
    loop {
        let n = match reader.read(&mut block) {
            Ok(0) => return Ok((sum, bytes)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sum += sum_digits(&block[..n]);
        bytes += n as u64;
    }
}

/// [`total`] of the file at `path`.
pub fn total_of(path: &Path) -> std::io::Result<(u64, u64)> {
    total(std::fs::File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::split::{fixed_count, fixed_piece};

    fn digits(count: u64, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let sum = write_digits(&mut out, count, seed).unwrap();
        assert_eq!(sum, sum_digits(&out));
        out
    }

    #[test]
    fn the_made_file_is_count_digits_and_a_newline_the_same_for_a_seed() {
        let a = digits(2_500_001, 7);
        assert_eq!(a.len(), 2_500_002);
        assert_eq!(a.last(), Some(&b'\n'));
        assert!(a[..a.len() - 1].iter().all(u8::is_ascii_digit));
        assert_eq!(a, digits(2_500_001, 7));
        assert_ne!(a, digits(2_500_001, 8));
        // Uniform enough: each digit within 1 % of a tenth.
        let mut seen = [0u64; 10];
        for &b in &a[..a.len() - 1] {
            seen[usize::from(b - b'0')] += 1;
        }
        for (d, n) in seen.iter().enumerate() {
            let share = *n as f64 / 2_500_001.0;
            assert!((share - 0.1).abs() < 0.001, "digit {d}: {share}");
        }
        assert_eq!(digits(0, 1), b"\n");
    }

    #[test]
    fn a_sum_skips_what_is_not_a_digit() {
        assert_eq!(sum_digits(b"0123456789"), 45);
        assert_eq!(sum_digits(b"9\n9 x/:9"), 27);
        assert_eq!(sum_digits(b""), 0);
    }

    #[test]
    fn the_chunks_cover_the_file_once_and_their_sums_add_up_to_the_straight_pass() {
        let file = digits(1_000_003, 3);
        let len = file.len() as u64;
        for chunk_bytes in [1, 7, 30_000, 1 << 20, len, len + 5] {
            let n = fixed_count(len, chunk_bytes);
            let mut next = 0;
            let mut sum = 0;
            for id in 0..n {
                let r = fixed_piece(id, len, chunk_bytes);
                assert_eq!(r.start, next, "{chunk_bytes}: chunk {id}");
                assert!(!r.is_empty() && r.end - r.start <= chunk_bytes);
                sum += sum_digits(&file[r.start as usize..r.end as usize]);
                next = r.end;
            }
            assert_eq!(next, len, "{chunk_bytes}");
            assert_eq!((sum, len), total(&file[..]).unwrap(), "{chunk_bytes}");
        }
        assert_eq!(fixed_count(0, 30_000), 0);
        assert_eq!(fixed_piece(5, 10, 4), 10..10);
    }
}
