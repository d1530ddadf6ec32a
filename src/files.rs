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

/// Writes what `fill` writes to `path` by the rules above, as it comes:
/// a large output never has to sit in memory whole.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match target(path)? {
        Target::Stdout => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            fill(&mut out)?;
            out.flush()
        }
        Target::InPlace(path) => {
            let file = std::fs::OpenOptions::new().write(true).open(path)?;
            let mut out = std::io::BufWriter::new(file);
            fill(&mut out)?;
            out.flush()
        }
        Target::Replace(path) => replace_with(&path, fill),
    }
}

/// Writes `bytes` and a newline atomically over `path` (see
/// [`replace_with`]).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_with(path, |file| {
        file.write_all(bytes)?;
        file.write_all(b"\n")
    })
}

/// Writes what `fill` writes to a temporary file beside `path`, then
/// renames it over `path`. The temporary file is made new (never through
/// a link planted at its name); replacing a file, it is the owner's only
/// until it takes that file's permissions, and a new file gets the usual
/// ones (the umask's). On failure it is removed and
/// whatever was at `path` is untouched. (A hard link to the old file keeps
/// the old contents: a rename cannot write through it.)
fn replace_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let old = std::fs::metadata(path).ok();
    let mode = if old.is_some() { 0o600 } else { 0o666 };
    let (tmp, file) = create_temporary(dir, &name, mode)?;
    let result = (|| {
        let mut out = std::io::BufWriter::new(file);
        fill(&mut out)?;
        let file = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        if let Some(old) = &old {
            file.set_permissions(old.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new file `.NAME.RANDOM.tmp` in `dir`, created exclusively (an existing
/// file or link at that name is an error, and another name is tried).
fn create_temporary(
    dir: &Path,
    name: &str,
    mode: u32,
) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for _ in 0..8 {
        let suffix = getrandom::u64().unwrap_or_else(|_| {
            u64::from(std::process::id())
                ^ std::time::UNIX_EPOCH
                    .elapsed()
                    .map_or(0, |d| d.as_nanos() as u64)
        });
        let tmp = dir.join(format!(".{name}.{suffix:016x}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name free")))
}

/// Refuses an output path that is the config file (or, with none yet,
/// where the config would be read from): writing there would replace it.
pub fn check_not_config(path: &Path, config: &Path) -> Result<(), String> {
    let absolute = |p: &Path| std::path::absolute(p).ok();
    if path.as_os_str() == "-" {
        return Ok(());
    }
    if same_file(path, config) {
        return Err(format!(
            "{} is the config file: writing there would overwrite it; name another file, or - \
             for standard output",
            path.display()
        ));
    }
    if !config.exists() && absolute(path).is_some() && absolute(path) == absolute(config) {
        return Err(format!(
            "{} is where the config is read from: a file written there would be taken for the \
             config by the next run; name another file, or - for standard output",
            path.display()
        ));
    }
    Ok(())
}

/// True when `a` and `b` name the same file: the same existing file (same
/// device and inode), or the same absolute path (neither there yet).
pub fn same_path(a: &Path, b: &Path) -> bool {
    same_file(a, b)
        || matches!(
            (std::path::absolute(a), std::path::absolute(b)),
            (Ok(x), Ok(y)) if normal(&x) == normal(&y)
        )
}

/// True when `path` is `dir` or lies inside it, by their absolute paths
/// (with the longest existing ancestor of each resolved through links, so
/// that neither needs to exist).
pub fn within(path: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| -> Option<std::path::PathBuf> {
        let abs = normal(&std::path::absolute(p).ok()?);
        let mut base = abs.clone();
        let mut rest = Vec::new();
        loop {
            if let Ok(real) = base.canonicalize() {
                let mut out = real;
                out.extend(rest.iter().rev());
                return Some(out);
            }
            rest.push(base.file_name()?.to_owned());
            if !base.pop() {
                return Some(abs);
            }
        }
    };
    match (resolve(path), resolve(dir)) {
        (Some(p), Some(d)) => p.starts_with(d),
        _ => false,
    }
}

/// A path with its `.` components dropped (`./r.json` is `r.json`).
fn normal(p: &Path) -> std::path::PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
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
    fn a_replaced_file_keeps_its_permissions_and_no_temporary_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let path = dir.join("private.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write(&path, b"newer").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn the_config_path_is_refused_existing_or_not() {
        let dir = scratch("config");
        let config = dir.join("config.json");
        assert!(
            check_not_config(&config, &config)
                .unwrap_err()
                .ends_with("is where the config is read from: a file written there would be taken for the config by the next run; name another file, or - for standard output")
        );
        std::fs::write(&config, "{}").unwrap();
        assert!(
            check_not_config(&dir.join(".").join("config.json"), &config)
                .unwrap_err()
                .ends_with("is the config file: writing there would overwrite it; name another file, or - for standard output")
        );
        assert_eq!(check_not_config(&dir.join("r.json"), &config), Ok(()));
        // Two outputs: the same file however spelled, existing or not.
        assert!(same_path(
            &dir.join("r.json"),
            &dir.join(".").join("r.json")
        ));
        assert!(same_path(&config, &dir.join(".").join("config.json")));
        assert!(!same_path(&dir.join("r.json"), &dir.join("t.json")));
        assert_eq!(check_not_config(Path::new("-"), &config), Ok(()));
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
