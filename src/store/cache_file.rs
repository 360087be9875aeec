//! The files of the store's caches ([`super::contact_cache`], [`super::household_cache`],
//! [`super::assignment_cache`]):
//! where they live, their arrays of little-endian words, and their replacement whole.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes converted at a time when reading or writing the arrays.
pub(super) const CHUNK: usize = 1 << 20;

/// The cache file `<store file>.<kind>` in the data folder's cache beside the store file
/// `store`.
pub(super) fn path(store: &Path, kind: &str) -> PathBuf {
    let dir = store.parent().unwrap_or(Path::new(".")).join(crate::ingest::cache::CACHE_DIR);
    let name = store.file_name().map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    dir.join(format!("{name}.{kind}"))
}

/// `n` words of `N` bytes, converted a chunk at a time (no second copy of the array); `None`
/// when the reader ends first.
pub(super) fn read_words<const N: usize, T>(
    r: &mut impl Read,
    n: usize,
    from: impl Fn([u8; N]) -> T,
) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; CHUNK];
    let mut left = n;
    while left > 0 {
        let take = left.min(CHUNK / N);
        r.read_exact(&mut buf[..N * take]).ok()?;
        out.extend(buf[..N * take].chunks_exact(N).map(|c| from(c.try_into().unwrap_or([0; N]))));
        left -= take;
    }
    Some(out)
}

/// `len` bytes of UTF-8 text; `None` when the reader ends first or they are not UTF-8.
pub(super) fn read_text(r: &mut impl Read, len: usize) -> Option<String> {
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes).ok()?;
    String::from_utf8(bytes).ok()
}

/// Writes `xs` as words of `N` bytes, a chunk at a time.
pub(super) fn write_words<const N: usize, T: Copy>(
    w: &mut impl Write,
    xs: &[T],
    to: impl Fn(T) -> [u8; N],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK);
    for part in xs.chunks(CHUNK / N) {
        buf.clear();
        buf.extend(part.iter().flat_map(|&x| to(x)));
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Replaces the file at `path` whole with what `write` writes: to a temporary name (with the
/// permissions of `like`, when given), synced, then renamed, so that a crash leaves the old
/// file or the new one, never a part. A cache that cannot be written costs the next start its
/// time, nothing else: the failure is a note on stderr naming `what` the file holds and what
/// the next start does `instead`.
pub(super) fn replace(
    path: &Path,
    like: Option<&Path>,
    (what, instead): (&str, &str),
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) {
    if let Err(e) = try_replace(path, like, write) {
        eprintln!("gridcover: note: {what} {} could not be written ({e}); the next start {instead}", path.display());
    }
}

fn try_replace(
    path: &Path,
    like: Option<&Path>,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let f = File::create(&tmp)?;
        if let Some(like) = like {
            f.set_permissions(std::fs::metadata(like)?.permissions())?;
        }
        let mut w = BufWriter::with_capacity(CHUNK, f);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The xxh3-128 of the running program's own file. A cache of what the program computes (not
/// a copy of stored data) is keyed by it as well as by its inputs, so that a program whose code
/// changed (another build) computes afresh rather than trusting what another build's code made.
/// `None` when the file cannot be read: such caches are then neither read nor written.
pub(super) fn program_key() -> Option<[u8; 16]> {
    static KEY: std::sync::OnceLock<Option<[u8; 16]>> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut f = File::open(std::env::current_exe().ok()?).ok()?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => h.update(&buf[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(h.digest128().to_le_bytes())
    })
}

/// Feeds `xs` to `h` as little-endian words of `N` bytes, a chunk at a time.
pub(super) fn hash_words<const N: usize, T: Copy>(
    h: &mut xxhash_rust::xxh3::Xxh3,
    xs: &[T],
    to: impl Fn(T) -> [u8; N],
) {
    let mut buf = Vec::with_capacity(CHUNK);
    for part in xs.chunks(CHUNK / N) {
        buf.clear();
        buf.extend(part.iter().flat_map(|&x| to(x)));
        h.update(&buf);
    }
}

/// Feeds the households' count, longitudes and latitudes to `h` (the positions a cache of what
/// they give is keyed by).
pub(super) fn hash_positions(h: &mut xxhash_rust::xxh3::Xxh3, hh: &crate::model::Households) {
    h.update(&(hh.len() as u64).to_le_bytes());
    hash_words(h, &hh.lon, f64::to_le_bytes);
    hash_words(h, &hh.lat, f64::to_le_bytes);
}
