//! Writing the files a user asked for (the run report, the bench's JSON,
//! the window's Save report and Save config) without ever destroying
//! something else at the path:
//!
//! - `-` means standard output;
//! - a regular file, or a path where nothing is yet, is replaced
//!   atomically (a temporary file beside it, synced, then renamed), so a
//!   reader never sees half a file; through a symbolic link, the file it
//!   points to is replaced and the link stays;
//! - anything else (a device such as `/dev/null` or `/dev/stdout`, a FIFO)
//!   is opened and written in place, never replaced.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What a path names, for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: standard output.
    Stdout,
    /// A regular file or nothing yet: replaced atomically at this path (a
    /// symbolic link resolved).
    Replace(PathBuf),
    /// A device, FIFO or socket: written in place.
    InPlace(PathBuf),
}

/// Decides how `path` is written. A directory is an error.
pub fn target(path: &Path) -> std::io::Result<Target> {
    if path.as_os_str() == "-" {
        return Ok(Target::Stdout);
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        )),
        Ok(meta) if meta.is_file() => Ok(Target::Replace(std::fs::canonicalize(path)?)),
        Ok(_) => Ok(Target::InPlace(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symbolic link: write where it points.
            match std::fs::read_link(path) {
                Ok(to) if to.is_absolute() => Ok(Target::Replace(to)),
                Ok(to) => Ok(Target::Replace(
                    path.parent().unwrap_or(Path::new(".")).join(to),
                )),
                Err(_) => Ok(Target::Replace(path.to_owned())),
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes `bytes` and a final newline to `path` by the rules above.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match target(path)? {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.write_all(b"\n")?;
            out.flush()
        }
        Target::InPlace(path) => {
            let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
            // One buffer, one write where the device allows it.
            let mut all = Vec::with_capacity(bytes.len() + 1);
            all.extend_from_slice(bytes);
            all.push(b'\n');
            file.write_all(&all)?;
            file.flush()
        }
        Target::Replace(path) => write_atomically(&path, bytes),
    }
}

/// Writes `bytes` and a newline to a temporary file beside `path`, then
/// renames it over `path`. On failure the temporary file is removed and
/// whatever was at `path` is untouched.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// True when `a` and `b` are the same existing file (same device and
/// inode), however each is spelled.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("loadbal-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_is_replaced_and_a_missing_one_made() {
        let dir = scratch("regular");
        let path = dir.join("r.json");
        write(&path, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        write(&path, b"[1]").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]\n");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn a_symbolic_link_stays_and_its_file_is_replaced() {
        let dir = scratch("link");
        let real = dir.join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
    }

    #[test]
    fn a_device_is_written_in_place_never_replaced() {
        let null = Path::new("/dev/null");
        assert_eq!(target(null).unwrap(), Target::InPlace(null.to_owned()));
        write(null, b"{}").unwrap();
        let meta = std::fs::metadata(null).unwrap();
        assert!(!meta.is_file(), "/dev/null must stay a device");
        assert_eq!(target(Path::new("-")).unwrap(), Target::Stdout);
    }

    #[test]
    fn a_directory_is_refused_and_the_same_file_is_recognised() {
        let dir = scratch("dir");
        assert_eq!(
            write(&dir, b"{}").unwrap_err().kind(),
            std::io::ErrorKind::IsADirectory
        );
        let a = dir.join("a");
        std::fs::write(&a, "x").unwrap();
        assert!(same_file(&a, &dir.join(".").join("a")));
        assert!(!same_file(&a, &dir.join("b")));
    }
}
