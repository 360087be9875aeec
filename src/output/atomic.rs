//! Writing a file whole or not at all (I/O): the one atomic write of every command's outputs
//! (analysis results, plans, scenarios, grid designs, generated data folders).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary file `path` is written to before it is renamed into place: `.NAME.tmp` beside
/// it (hidden, so a reader of the folder never takes it for an output).
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `path` atomically: `write` fills a temporary file beside it through a buffer; the file
/// is flushed and fsynced, renamed over `path`, and the folder fsynced, so that after a crash
/// `path` holds the old content or the new, never a part. On any failure the temporary file is
/// removed and `path` is left as it was. `io_err` names the file in the caller's error type.
///
/// # Errors
/// `write`'s error, or `io_err` of the step that failed (create, flush, fsync, rename).
pub fn write_atomic_with<E>(
    path: &Path,
    io_err: impl Fn(&Path, io::Error) -> E,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temporary(path);
    let done = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(|e| io_err(&tmp, e))?);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| io_err(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return done;
    }
    // The rename is durable once the folder's entry is on disk (best effort: not every
    // platform lets a folder be opened and synced).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// [`write_atomic_with`] for bytes already in memory, with a plain I/O error.
///
/// # Errors
/// The step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |_, e| e, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.csv")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"old").unwrap();
        let r: Result<(), String> = write_atomic_with(
            &p,
            |_, e| e.to_string(),
            |w| {
                w.write_all(b"half").map_err(|e| e.to_string())?;
                Err("encoder failed".into())
            },
        );
        assert_eq!(r.unwrap_err(), "encoder failed");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert!(!dir.path().join(".a.json.tmp").exists());
    }

    #[test]
    fn a_folder_that_does_not_exist_is_an_error_naming_the_temporary() {
        let p = Path::new("/nonexistent-gridcover-dir/x.csv");
        let e = write_atomic_with(p, |path, e| format!("{}: {e}", path.display()), |_| Ok(())).unwrap_err();
        assert!(e.starts_with("/nonexistent-gridcover-dir/.x.csv.tmp"), "{e}");
    }
}
