//! The files of the store's caches ([`super::contact_cache`], [`super::household_cache`],
//! [`super::assignment_cache`]) and of the data folder's service records
//! ([`super::records_cache`]): where they live, their arrays of little-endian words, the
//! section of contact days grouped by household both kinds of contact cache hold, and their
//! replacement whole.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::service::{Day, DayColumn, GroupedDays};
use crate::model::StrColumn;

/// Bytes converted at a time when reading or writing the arrays.
pub(super) const CHUNK: usize = 1 << 20;

/// The cache file `<file name>.<kind>` in the data folder's cache beside `file` (the store's
/// file, or an input file).
pub(super) fn path(file: &Path, kind: &str) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(".")).join(crate::ingest::cache::CACHE_DIR);
    let name = file.file_name().map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    dir.join(format!("{name}.{kind}"))
}

/// The SHA-256 of household ids in their order: a part of the key of a cache of contact days
/// grouped by household position.
pub(super) fn ids_digest(ids: &StrColumn) -> [u8; 32] {
    let (text, ends) = ids.parts();
    let mut h = Sha256::new();
    h.update((ends.len() as u64).to_le_bytes());
    for e in ends {
        h.update(e.to_le_bytes());
    }
    h.update(text.as_bytes());
    h.finalize().into()
}

/// The four head words of a section of grouped contact days ([`write_grouped_days`]): the
/// households, the contacts, the base day and the bytes a day (2: `u16` offsets from the base;
/// 4: `i32` days, base 0).
pub(super) fn grouped_days_words(start: &[u32], days: &DayColumn) -> [u64; 4] {
    let households = start.len().saturating_sub(1) as u64;
    let (base, width) = days.as_offsets().map_or((0, 4), |(base, _)| (base, 2));
    [households, days.len() as u64, i64::from(base) as u64, width]
}

/// The bytes of a section of grouped contact days whose head words are `words`
/// ([`grouped_days_words`]); None when they cannot be (a width other than 2 or 4, an overflow).
pub(super) fn grouped_days_len(words: [u64; 4]) -> Option<u64> {
    let [households, contacts, _, width] = words;
    if !matches!(width, 2 | 4) {
        return None;
    }
    width.checked_mul(contacts)?.checked_add(households.checked_add(1)?.checked_mul(4)?)
}

/// Writes the section of grouped contact days: `start` (households + 1 offsets, `u32`), then
/// the days as [`grouped_days_words`] says (`u16` offsets from the base, or `i32` days), as
/// [`crate::model::ServiceRecords::contact_days`] gives them.
pub(super) fn write_grouped_days(w: &mut impl Write, start: &[u32], days: &DayColumn) -> std::io::Result<()> {
    write_words(w, start, |x: u32| x.to_le_bytes())?;
    match days.as_offsets() {
        Some((_, offsets)) => write_words(w, offsets, |x: u16| x.to_le_bytes()),
        None => write_words(w, days.as_days().unwrap_or_default(), |x: Day| x.to_le_bytes()),
    }
}

/// Reads back what [`write_grouped_days`] wrote, with its head `words`: None when the reader
/// ends first, the base is not a day, or the offsets and days do not fit together.
pub(super) fn read_grouped_days(r: &mut impl Read, words: [u64; 4]) -> Option<GroupedDays> {
    let [households, contacts, base, width] = words;
    grouped_days_len(words)?;
    let households = usize::try_from(households).ok()?;
    let contacts = usize::try_from(contacts).ok()?;
    let base = Day::try_from(base as i64).ok()?;
    let start: Vec<u32> = read_words(r, households + 1, u32::from_le_bytes)?;
    let days = if width == 2 {
        DayColumn::from_offsets(base, read_words(r, contacts, u16::from_le_bytes)?)?
    } else {
        DayColumn::from_days(read_words(r, contacts, i32::from_le_bytes)?)
    };
    GroupedDays::of_column(start, days)
}

/// Opens the cache file at `path` and reads its head: the 8-byte format `magic`, the 32-byte
/// `key` and `W` little-endian `u64` words. None when the file is not there, or is of another
/// format or key; else a reader at the end of the head, the file's length and the words.
pub(super) fn open_head<const W: usize>(
    path: &Path,
    magic: &[u8; 8],
    key: &[u8; 32],
) -> Option<(std::io::BufReader<File>, u64, [u64; W])> {
    let f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut r = std::io::BufReader::with_capacity(CHUNK, f);
    let mut head = [0u8; 40];
    r.read_exact(&mut head).ok()?;
    if &head[..8] != magic || head[8..40] != *key {
        return None;
    }
    let mut words = [0u64; W];
    for w in &mut words {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).ok()?;
        *w = u64::from_le_bytes(b);
    }
    Some((r, len, words))
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

/// Replaces the file at `path` whole with what `write` writes, with the permissions of `like`
/// when given ([`crate::ingest::cache::replace_file`]: a temporary name, synced, renamed, so that
/// a crash leaves the old file or the new one, never a part). A cache that cannot be written
/// costs the next start its time, nothing else: the failure is a note on stderr naming `what`
/// the file holds and what the next start does `instead`.
pub(super) fn replace(
    path: &Path,
    like: Option<&Path>,
    (what, instead): (&str, &str),
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) {
    if let Err(e) = crate::ingest::cache::replace_file(path, like, write) {
        eprintln!("gridcover: note: {what} {} could not be written ({e}); the next start {instead}", path.display());
    }
}

/// The key of the code that computes a kept assignment: made by `build.rs` over the sources
/// the assignment is computed by, the dependencies and the toolchain (`src/store/source_key.rs`).
/// A cache of what the program computes (not a copy of stored data) is keyed by it as well as
/// by its inputs, so that a build whose assignment code differs computes afresh rather than
/// trusting what other code made, and a build that differs elsewhere uses it.
pub(super) const PROGRAM_KEY: &str = env!("GRIDCOVER_ASSIGNMENT_KEY");

/// The xxh3-128 of the bytes of the file at `path`, read a block at a time.
pub(super) fn xxh3_of_file(path: &Path) -> std::io::Result<[u8; 16]> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    crate::ingest::cache::each_block(path, |b| h.update(b))?;
    Ok(h.digest128().to_le_bytes())
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
