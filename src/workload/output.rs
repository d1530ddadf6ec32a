//! A command run's output, kept on the master's disk as it arrives (issue
//! 21): each job's output is a part file in a spool directory beside the
//! output (`.NAME.loadbal-parts/`), written atomically, so a master that is
//! killed loses no job that had finished, and `--resume` finds those parts
//! again. When every part is in, the output is assembled (one file, the
//! parts in job order, as GNU parallel's `--keep-order`; or, for a
//! directory input, one file per input file) and the spool removed.
//!
//! The spool says which run it holds (its job count and the caller's
//! digest of the workload spec), so parts of another run are never mixed
//! into this one's output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::ids::JobId;

/// The spool file naming the run whose parts it holds.
const RUN_FILE: &str = "run";

/// A run's parts on disk. See the module documentation.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    jobs: u32,
    /// The lock beside the spool, held while the spool is open: a second
    /// run writing the same output is refused rather than mixed in.
    lock: (PathBuf, std::fs::File),
}

impl Spool {
    /// The spool directory of `output`.
    pub fn dir_of(output: &Path) -> PathBuf {
        let name = output
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
        let parent = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        parent.join(format!(".{name}.loadbal-parts"))
    }

    /// Opens the spool of `output` for a run of `jobs` jobs whose workload
    /// spec has digest `spec`. With `resume`, the parts a run of the same
    /// jobs and spec left are kept, and their ids returned; without it, a
    /// spool left by any run is emptied. A spool of another run is an
    /// error on resume (its parts would not belong in this output).
    pub fn open(
        output: &Path,
        jobs: u32,
        spec: &str,
        resume: bool,
    ) -> std::io::Result<(Spool, Vec<JobId>)> {
        let dir = Self::dir_of(output);
        let lock = lock_beside(&dir)?;
        let run = format!("{jobs} jobs, spec {spec}\n");
        let spool = Spool { dir, jobs, lock };
        let left = std::fs::read_to_string(spool.dir.join(RUN_FILE)).ok();
        if resume && let Some(left) = &left {
            if *left != run {
                return Err(std::io::Error::other(format!(
                    "{} holds the parts of another run ({}), not of this one ({}): the \
                     program, the split, or the input's files (names, sizes, times) changed \
                     since; remove it, or run without --resume",
                    spool.dir.display(),
                    left.trim(),
                    run.trim()
                )));
            }
            let done = spool.parts()?;
            return Ok((spool, done));
        }
        if spool.dir.exists() {
            std::fs::remove_dir_all(&spool.dir)?;
        }
        std::fs::create_dir_all(&spool.dir)?;
        crate::files::write_with(&spool.dir.join(RUN_FILE), |f| f.write_all(run.as_bytes()))?;
        Ok((spool, Vec::new()))
    }

    /// Removes the spool and its lock: the output is whole.
    fn finish(self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.dir)?;
        // Unlinked while held: a run that opens it anew gets a new lock.
        let _ = std::fs::remove_file(&self.lock.0);
        Ok(())
    }

    /// The ids of the parts held, in order (a part being written when the
    /// master was killed is not one: parts are renamed into place whole).
    pub fn parts(&self) -> std::io::Result<Vec<JobId>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.parse::<JobId>().ok())
                && id < self.jobs
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    fn part(&self, id: JobId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Keeps job `id`'s output, whole or not at all.
    pub fn put(&self, id: JobId, bytes: &[u8]) -> std::io::Result<()> {
        if id >= self.jobs {
            return Err(std::io::Error::other(format!(
                "job {id} is not in this run of {} jobs",
                self.jobs
            )));
        }
        crate::files::write_with(&self.part(id), |f| f.write_all(bytes))
    }

    /// The jobs whose part is not held yet.
    fn missing(&self) -> std::io::Result<Vec<JobId>> {
        let held = self.parts()?;
        Ok((0..self.jobs)
            .filter(|id| held.binary_search(id).is_err())
            .collect())
    }

    /// Writes `output`: every part in job order, atomically; then removes
    /// the spool. Returns the bytes written. Missing parts are an error
    /// naming them, and the spool is kept.
    pub fn assemble(self, output: &Path) -> std::io::Result<u64> {
        self.check_complete()?;
        let mut written = 0u64;
        crate::files::write_with(output, |out| {
            for id in 0..self.jobs {
                let mut part = std::fs::File::open(self.part(id))?;
                written += std::io::copy(&mut part, out)?;
            }
            Ok(())
        })?;
        self.finish()?;
        Ok(written)
    }

    /// For a directory input: writes one file per job into directory
    /// `output` (made if need be), named as job `id`'s input file
    /// `names[id]`, each atomically; then removes the spool.
    pub fn assemble_dir(self, output: &Path, names: &[OsString]) -> std::io::Result<u64> {
        if names.len() != self.jobs as usize {
            return Err(std::io::Error::other(format!(
                "{} names for {} jobs",
                names.len(),
                self.jobs
            )));
        }
        self.check_complete()?;
        std::fs::create_dir_all(output)?;
        let mut written = 0u64;
        for (id, name) in (0..self.jobs).zip(names) {
            written += self.move_part(id, &output.join(name))?;
        }
        self.finish()?;
        Ok(written)
    }

    /// Writes the parts held (a run whose failed jobs have none): the
    /// file of them in job order, or one file per job held, each
    /// atomically. The spool stays, for a run with `--resume`. Returns the
    /// bytes written.
    pub fn write_present(&self, output: &Path, names: Option<&[OsString]>) -> std::io::Result<u64> {
        let held = self.parts()?;
        let mut written = 0u64;
        match names {
            None => crate::files::write_with(output, |out| {
                for &id in &held {
                    let mut part = std::fs::File::open(self.part(id))?;
                    written += std::io::copy(&mut part, out)?;
                }
                Ok(())
            })?,
            Some(names) => {
                std::fs::create_dir_all(output)?;
                for &id in &held {
                    let name = names
                        .get(id as usize)
                        .ok_or_else(|| std::io::Error::other(format!("no name for job {id}")))?;
                    let mut part = std::fs::File::open(self.part(id))?;
                    crate::files::write_with(&output.join(name), |out| {
                        written += std::io::copy(&mut part, out)?;
                        Ok(())
                    })?;
                }
            }
        }
        Ok(written)
    }

    /// Puts part `id` at `to`: renamed there (whole, atomically, with no
    /// copy) when both are on one filesystem, copied atomically otherwise.
    /// Returns its bytes.
    fn move_part(&self, id: JobId, to: &Path) -> std::io::Result<u64> {
        let part = self.part(id);
        let bytes = std::fs::metadata(&part)?.len();
        if std::fs::metadata(to).is_ok_and(|m| !m.is_file()) {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file",
                to.display()
            )));
        }
        if std::fs::rename(&part, to).is_ok() {
            return Ok(bytes);
        }
        let mut from = std::fs::File::open(&part)?;
        crate::files::write_with(to, |out| std::io::copy(&mut from, out).map(drop))?;
        Ok(bytes)
    }

    fn check_complete(&self) -> std::io::Result<()> {
        let missing = self.missing()?;
        if missing.is_empty() {
            return Ok(());
        }
        Err(std::io::Error::other(format!(
            "{} of {} jobs have no output yet ({}); their parts are kept in {}",
            missing.len(),
            self.jobs,
            crate::workload::format_id_ranges(&missing),
            self.dir.display()
        )))
    }
}

/// Takes the lock file beside spool `dir` (`DIR.lock`), without waiting:
/// another run holding it is an error naming the output's spool.
fn lock_beside(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut path = dir.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; the lock goes with it.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !taken {
            return Err(std::io::Error::other(format!(
                "another run is writing this output (it holds {})",
                path.display()
            )));
        }
    }
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("loadbal-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn parts_that_come_in_any_order_make_the_output_in_job_order() {
        let dir = place("order");
        let output = dir.join("big.log.gz");
        let (spool, done) = Spool::open(&output, 4, "s1", false).unwrap();
        assert!(done.is_empty());
        for id in [2, 0, 3, 1] {
            spool.put(id, format!("part {id};").as_bytes()).unwrap();
        }
        assert_eq!(spool.parts().unwrap(), [0, 1, 2, 3]);
        assert!(spool.put(4, b"x").is_err());
        let spool_dir = Spool::dir_of(&output);
        assert_eq!(spool.assemble(&output).unwrap(), 28);
        assert_eq!(
            std::fs::read(&output).unwrap(),
            b"part 0;part 1;part 2;part 3;"
        );
        assert!(!spool_dir.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_killed_master_resumes_with_the_parts_it_had_and_only_those() {
        let dir = place("resume");
        let output = dir.join("out");
        let (spool, _) = Spool::open(&output, 5, "s1", false).unwrap();
        spool.put(1, b"one").unwrap();
        spool.put(3, b"three").unwrap();
        // A part being written when the master died is not a part.
        std::fs::write(Spool::dir_of(&output).join(".4.1234.tmp"), b"half").unwrap();
        let missing = spool.assemble(&output).unwrap_err().to_string();
        assert!(
            missing.starts_with("3 of 5 jobs have no output yet (0, 2, 4)"),
            "{missing}"
        );

        // Resumed: the two parts are done, the rest still to do.
        let (spool, done) = Spool::open(&output, 5, "s1", true).unwrap();
        assert_eq!(done, [1, 3]);
        for id in [0, 2, 4] {
            spool.put(id, id.to_string().as_bytes()).unwrap();
        }
        spool.assemble(&output).unwrap();
        assert_eq!(std::fs::read(&output).unwrap(), b"0one2three4");
        // Another run's parts are never taken; without --resume they go.
        let (spool, _) = Spool::open(&output, 5, "s1", false).unwrap();
        spool.put(0, b"old").unwrap();
        // (Its run is over: a master killed, say.)
        drop(spool);
        let other = Spool::open(&output, 5, "s2", true).unwrap_err().to_string();
        assert!(
            other.contains("holds the parts of another run (5 jobs, spec s1)"),
            "{other}"
        );
        let (_, done) = Spool::open(&output, 6, "s2", false).unwrap();
        assert!(done.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // Review of issue 21: a second run writing the same output emptied the
    // first one's spool and mixed their parts.
    #[test]
    fn a_second_run_on_the_same_output_is_refused_while_the_first_holds_it() {
        let dir = place("lock");
        let output = dir.join("out");
        let (first, _) = Spool::open(&output, 2, "s", false).unwrap();
        first.put(0, b"first").unwrap();
        let second = Spool::open(&output, 2, "s", false).unwrap_err().to_string();
        assert!(
            second.starts_with("another run is writing this output"),
            "{second}"
        );
        assert_eq!(first.parts().unwrap(), [0]);
        first.put(1, b" run").unwrap();
        first.assemble(&output).unwrap();
        assert_eq!(std::fs::read(&output).unwrap(), b"first run");
        // Done: the next run may write it.
        assert!(Spool::open(&output, 2, "s", false).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_input_gets_one_output_file_per_input_file() {
        let dir = place("dir");
        let output = dir.join("sums");
        let names: Vec<OsString> = ["a.txt", "b.txt"].iter().map(OsString::from).collect();
        let (spool, _) = Spool::open(&output, 2, "s", false).unwrap();
        spool.put(1, b"sum of b\n").unwrap();
        spool.put(0, b"sum of a\n").unwrap();
        spool.assemble_dir(&output, &names).unwrap();
        assert_eq!(std::fs::read(output.join("a.txt")).unwrap(), b"sum of a\n");
        assert_eq!(std::fs::read(output.join("b.txt")).unwrap(), b"sum of b\n");
        assert!(!Spool::dir_of(&output).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
