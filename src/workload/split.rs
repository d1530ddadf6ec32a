//! Cutting a user's input into jobs (issue 21's `"input"` and `"split"`):
//! a file into pieces of N lines, or of N bytes (cut at the next newline
//! when aligned to lines), or a directory into its files, one job each.
//! A piece is a byte range of the file, never its bytes: the master reads
//! a piece when its job is made, so an input of any size never sits in
//! memory. Bytes pieces are found by seeking to each boundary; line pieces
//! by one pass over the file, a block at a time.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

/// How a file is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Pieces of this many lines (the last may have fewer; a last line
    /// without its newline counts).
    Lines(u64),
    /// Pieces of this many bytes; aligned, each is cut at the first
    /// newline at or after that many bytes (so no line is split).
    Bytes {
        /// Bytes a piece holds, at least.
        bytes: u64,
        /// Cut at line ends.
        align_lines: bool,
    },
}

/// Why an input could not be cut.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Reading it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// It makes more jobs than a run may have.
    #[error("it makes more than {0} jobs; split it into larger pieces")]
    TooManyJobs(u64),
    /// A split of zero lines or bytes.
    #[error("a split of 0 makes no pieces")]
    Zero,
}

/// How much is read at a time.
const BLOCK: usize = 1 << 20;

/// The pieces of a file of `len` bytes read through `file`, in order; at
/// most `max_jobs` of them. An empty file makes none.
pub fn pieces<F: Read + Seek>(
    file: &mut F,
    len: u64,
    split: Split,
    max_jobs: u64,
) -> Result<Vec<Range<u64>>, SplitError> {
    let mut out = Vec::new();
    let push = |piece: Range<u64>, out: &mut Vec<Range<u64>>| {
        if out.len() as u64 >= max_jobs {
            return Err(SplitError::TooManyJobs(max_jobs));
        }
        out.push(piece);
        Ok(())
    };
    match split {
        Split::Lines(0) | Split::Bytes { bytes: 0, .. } => return Err(SplitError::Zero),
        Split::Bytes {
            bytes,
            align_lines: false,
        } => {
            for id in 0..fixed_count(len, bytes) {
                push(fixed_piece(id, len, bytes), &mut out)?;
            }
        }
        Split::Bytes {
            bytes,
            align_lines: true,
        } => {
            let mut start = 0;
            while start < len {
                let at = start.saturating_add(bytes);
                let end = if at >= len {
                    len
                } else {
                    // Just past the first newline at or after the mark (the
                    // byte before it may be one, ending the piece there).
                    next_line_end(file, at - 1, len)?
                };
                push(start..end, &mut out)?;
                start = end;
            }
        }
        Split::Lines(lines) => {
            file.seek(SeekFrom::Start(0))?;
            // Only the `len` bytes the run was sized for: a file that grows
            // meanwhile does not add pieces.
            let mut file = file.by_ref().take(len);
            let mut block = vec![0u8; BLOCK];
            let (mut start, mut at, mut seen) = (0u64, 0u64, 0u64);
            loop {
                let n = read_some(&mut file, &mut block)?;
                if n == 0 {
                    break;
                }
                for (i, _) in block[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
                    seen += 1;
                    if seen == lines {
                        let end = at + i as u64 + 1;
                        push(start..end, &mut out)?;
                        (start, seen) = (end, 0);
                    }
                }
                at += n as u64;
            }
            if at < len {
                return Err(shrank(at, len));
            }
            // What the file holds past its last full piece.
            if start < len {
                push(start..len, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// The pieces a file of `len` bytes makes in fixed pieces of `bytes`
/// (not aligned): one per `bytes`, the last one shorter (none for an
/// empty file). Arithmetic only: the file is not read.
pub fn fixed_count(len: u64, bytes: u64) -> u64 {
    len.div_ceil(bytes.max(1))
}

/// Piece `id` of a file of `len` bytes in fixed pieces of `bytes`.
pub fn fixed_piece(id: u64, len: u64, bytes: u64) -> Range<u64> {
    let bytes = bytes.max(1);
    let start = id.saturating_mul(bytes).min(len);
    start..start.saturating_add(bytes).min(len)
}

/// A file shorter than the `len` it was sized by.
fn shrank(at: u64, len: u64) -> SplitError {
    SplitError::Io(std::io::Error::other(format!(
        "it ended at byte {at} of the {len} it had: it shrank while it was read"
    )))
}

/// The offset just past the first newline at or after `from`, or `len`.
fn next_line_end<F: Read + Seek>(file: &mut F, from: u64, len: u64) -> Result<u64, SplitError> {
    file.seek(SeekFrom::Start(from))?;
    let mut block = vec![0u8; 64 << 10];
    let mut at = from;
    while at < len {
        let n = read_some(file, &mut block)?;
        if n == 0 {
            return Err(shrank(at, len));
        }
        if let Some(i) = block[..n].iter().position(|&b| b == b'\n') {
            return Ok((at + i as u64 + 1).min(len));
        }
        at += n as u64;
    }
    Ok(len)
}

fn read_some(file: &mut impl Read, block: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(block) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The files of directory `dir`, one job each, in byte order of their
/// names: regular files only (a subdirectory, a socket or a link to a
/// directory is not a job); at most `max_jobs`.
pub fn files_of(dir: &Path, max_jobs: u64) -> Result<Vec<OsString>, SplitError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Followed through a link: a link to a file is that file.
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            if names.len() as u64 >= max_jobs {
                return Err(SplitError::TooManyJobs(max_jobs));
            }
            names.push(entry.file_name());
        }
    }
    names.sort_unstable_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn cut(text: &[u8], split: Split) -> Vec<&[u8]> {
        let mut file = Cursor::new(text);
        pieces(&mut file, text.len() as u64, split, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|r| &text[r.start as usize..r.end as usize])
            .collect()
    }

    fn bytes(bytes: u64, align_lines: bool) -> Split {
        Split::Bytes { bytes, align_lines }
    }

    #[test]
    fn lines_make_pieces_of_n_lines_the_last_one_shorter() {
        let text = b"a\nbb\nccc\ndddd\ne";
        assert_eq!(
            cut(text, Split::Lines(2)),
            [&b"a\nbb\n"[..], b"ccc\ndddd\n", b"e"]
        );
        assert_eq!(cut(text, Split::Lines(1)).len(), 5);
        assert_eq!(cut(text, Split::Lines(10)), [&text[..]]);
        assert_eq!(cut(b"a\nb\n", Split::Lines(2)), [&b"a\nb\n"[..]]);
        assert!(cut(b"", Split::Lines(3)).is_empty());
    }

    #[test]
    fn bytes_make_pieces_of_n_bytes_aligned_ones_end_at_a_newline() {
        let text = b"a\nbb\nccc\ndddd\ne";
        assert_eq!(
            cut(text, bytes(4, false)),
            [&b"a\nbb"[..], b"\nccc", b"\nddd", b"d\ne"]
        );
        // Aligned: at least 4 bytes, then to the line's end.
        assert_eq!(
            cut(text, bytes(4, true)),
            [&b"a\nbb\n"[..], b"ccc\n", b"dddd\n", b"e"]
        );
        // A piece whose mark falls just after a newline ends there.
        assert_eq!(cut(b"ab\ncd\n", bytes(3, true)), [&b"ab\n"[..], b"cd\n"]);
        // One long line is one piece.
        assert_eq!(cut(b"abcdefgh", bytes(2, true)), [&b"abcdefgh"[..]]);
        assert!(cut(b"", bytes(4, true)).is_empty());
    }

    #[test]
    fn every_split_covers_the_file_once_in_order() {
        // Lines of 0 to 99 bytes, more than a block in all.
        let mut text = Vec::new();
        let mut x = 7u64;
        while text.len() < 3 * BLOCK {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.extend(std::iter::repeat_n(b'x', (x >> 57) as usize));
            text.push(b'\n');
        }
        text.extend_from_slice(b"no newline at the end");
        for split in [
            Split::Lines(1),
            Split::Lines(1000),
            bytes(1, false),
            bytes(65_536, false),
            bytes(1 << 20, true),
            bytes(1, true),
        ] {
            let parts = cut(&text, split);
            assert_eq!(parts.concat(), text, "{split:?}");
            assert!(parts.iter().all(|p| !p.is_empty()), "{split:?}");
            if let Split::Bytes {
                align_lines: true, ..
            }
            | Split::Lines(_) = split
            {
                let last = parts.len() - 1;
                assert!(
                    parts[..last].iter().all(|p| p.ends_with(b"\n")),
                    "{split:?}"
                );
            }
        }
    }

    #[test]
    fn too_many_pieces_and_a_zero_split_are_refused() {
        let text = b"a\nb\nc\n";
        let mut file = Cursor::new(&text[..]);
        let too_many = pieces(&mut file, 6, Split::Lines(1), 2).unwrap_err();
        assert_eq!(
            too_many.to_string(),
            "it makes more than 2 jobs; split it into larger pieces"
        );
        assert!(pieces(&mut file, 6, Split::Lines(1), 3).is_ok());
        let zero = pieces(&mut file, 6, bytes(0, true), 3).unwrap_err();
        assert_eq!(zero.to_string(), "a split of 0 makes no pieces");
    }

    // Review of issue 21: a file read to its end, not to the length it was
    // sized by, gave pieces past that length.
    #[test]
    fn only_the_length_counts_and_a_file_that_shrank_is_an_error() {
        let text = b"aaa\nbbb\nccc\n";
        let mut file = Cursor::new(&text[..]);
        assert_eq!(
            pieces(&mut file, 5, Split::Lines(1), 9).unwrap(),
            [0..4, 4..5]
        );
        let two = pieces(&mut file, 5, Split::Lines(2), 9).unwrap();
        assert_eq!((two.len(), two[0].clone()), (1, 0..5));
        let shrank = pieces(&mut file, 20, Split::Lines(1), 9).unwrap_err();
        assert_eq!(
            shrank.to_string(),
            "it ended at byte 12 of the 20 it had: it shrank while it was read"
        );
        let mut short = Cursor::new(&b"abcdef"[..]);
        assert!(pieces(&mut short, 9, bytes(2, true), 9).is_err());
    }

    #[test]
    fn a_directory_gives_its_regular_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("loadbal-split-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.txt", "a.txt", "B.txt", "empty"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        std::fs::write(dir.join("empty"), b"").unwrap();
        let names = files_of(&dir, 10).unwrap();
        assert_eq!(names, ["B.txt", "a.txt", "b.txt", "empty"]);
        assert!(matches!(files_of(&dir, 3), Err(SplitError::TooManyJobs(3))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
