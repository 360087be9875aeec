//! A file cache of the store's contacts, grouped by household, for the server's restart.
//!
//! Reading every contact's household id and date from SQLite is the longest step of a restart
//! at national scale (144 million contacts: about a minute). The contacts are append-only —
//! `visits` rows are never changed nor deleted, and their ids only grow — so the contact days
//! read up to a visit id stay true of that store for good. [`Store::service_records_cached`] keeps
//! them in `.gridcover-cache/<store file>.contacts` beside the store, and at the next start
//! reads the file and only the visits added since from the database.
//!
//! - **Key:** SHA-256 of the format (its first eight bytes), the store's identity (its first
//!   import: id, time and the files' SHA-256 — another store, even of the same folder, has
//!   another) and the household ids in their order (the days are grouped by position). Any
//!   other key is a miss.
//! - **Content:** the last visit id it holds, the number of those contacts whose household was
//!   not among the ids, the households, the contacts, the base day and the bytes a day (2 or
//!   4), then `start` (households + 1 offsets, `u32`) and the days: `u16` offsets from the base
//!   day, or `i32` days (base 0) when they span too much for offsets, little endian, as
//!   [`ServiceRecords::contact_days`] gives them. A file of an earlier format (`GCDAYS01`,
//!   `i32` days and no base) is a miss, and is replaced by the next write.
//! - **Checks:** a file of the wrong size, or whose offsets and days do not fit together, is a
//!   miss (the store is read as if there were no file); a file is written to a temporary name,
//!   synced and renamed, so a crash leaves the old file or the new one. Failing to write it
//!   costs the next start its time, nothing else: a note on stderr.
//!
//! Household personal data: the file holds contact days by household position, no id, name or
//! note; it sits beside the store, which holds all of them, with the same access.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::service::{DayColumn, GroupedDays};

use super::cache_file;

/// Format of the file (its first eight bytes).
const MAGIC: &[u8; 8] = b"GCDAYS02";

/// Bytes of the head: the format, the key and six words.
const HEAD: usize = 8 + 32 + 8 * 6;

/// The contact days of the visits up to `upto`, grouped by household (positions of the ids
/// the cache was made for).
#[derive(Debug, PartialEq)]
pub(super) struct ContactDays {
    /// Last visit id read.
    pub upto: i64,
    /// Contacts of those visits whose household was not among the ids.
    pub unknown: u64,
    /// The days, checked to fit together (a file whose days do not is a miss).
    pub days: GroupedDays,
}

/// The cache of one store for one order of household ids.
pub(super) struct ContactCache {
    path: PathBuf,
    /// The store's file, whose permissions the cache takes.
    store: PathBuf,
    key: [u8; 32],
}

impl ContactCache {
    /// The cache of the store at `store` (its file) whose identity is `identity`, for the
    /// households whose [`cache_file::ids_digest`] is `ids`.
    pub fn new(store: &Path, identity: &str, ids: &[u8; 32]) -> ContactCache {
        ContactCache {
            path: cache_file::path(store, "contacts"),
            store: store.to_path_buf(),
            key: key(MAGIC, identity, ids),
        }
    }

    /// The cached days, if the file is there, of this key and format, and whole.
    pub fn load(&self, households: usize) -> Option<ContactDays> {
        let (mut r, len, [upto, unknown, n, contacts, base, width]) =
            cache_file::open_head::<6>(&self.path, MAGIC, &self.key)?;
        if n != households as u64 {
            return None;
        }
        let days = [n, contacts, base, width];
        if cache_file::grouped_days_len(days)?.checked_add(HEAD as u64) != Some(len) {
            return None;
        }
        Some(ContactDays { upto: upto as i64, unknown, days: cache_file::read_grouped_days(&mut r, days)? })
    }

    /// Writes the days (replacing the file whole, with the store file's permissions); a failure
    /// is a note on stderr.
    pub fn save(&self, upto: i64, unknown: u64, start: &[u32], days: &DayColumn) {
        let note = ("the contacts' cache", "reads them from the store");
        cache_file::replace(&self.path, Some(&self.store), note, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&self.key)?;
            for word in [upto as u64, unknown].into_iter().chain(cache_file::grouped_days_words(start, days)) {
                w.write_all(&word.to_le_bytes())?;
            }
            cache_file::write_grouped_days(w, start, days)
        })
    }
}

/// The key of a file of format `magic` for the store whose identity is `identity` and the
/// households whose [`cache_file::ids_digest`] is `ids`.
fn key(magic: &[u8; 8], identity: &str, ids: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(magic);
    h.update((identity.len() as u64).to_le_bytes());
    h.update(identity.as_bytes());
    h.update(ids);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service::{Day, MAX_OFFSET_SPAN};

    const IDENTITY: &str = "import 1 at 2026-11-30 of files 0123";

    /// A cache of a store in a fresh folder.
    fn cache() -> (tempfile::TempDir, ContactCache) {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("gridcover.sqlite");
        std::fs::write(&store, b"").unwrap();
        let c = ContactCache::new(&store, IDENTITY, &[7; 32]);
        (dir, c)
    }

    /// The days are household data: the file is no more open than the store beside it.
    #[cfg(unix)]
    #[test]
    fn the_file_takes_the_store_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, c) = cache();
        let (start, days) = grouped(20_000, 20_100);
        for mode in [0o600, 0o640] {
            std::fs::set_permissions(&c.store, std::fs::Permissions::from_mode(mode)).unwrap();
            c.save(9, 1, &start, &DayColumn::from_days(days.clone()));
            assert_eq!(std::fs::metadata(&c.path).unwrap().permissions().mode() & 0o777, mode, "{mode:o}");
            assert_eq!(c.load(3).unwrap().upto, 9);
        }
    }

    /// Days of three households: household 0's from `first`, household 2's up to `last`.
    fn grouped(first: Day, last: Day) -> (Vec<u32>, Vec<Day>) {
        (vec![0, 2, 2, 5], vec![first, first + 3, first, 20_000, last])
    }

    #[test]
    fn days_come_back_as_written_in_either_width() {
        let (_dir, c) = cache();
        let edge = 20_000 + MAX_OFFSET_SPAN;
        // Up to the widest span of offsets, and past it (then kept as days).
        for (first, last, width) in [(20_000, 20_100, 2), (20_000, edge, 2), (20_000, edge + 1, 4), (-5, i32::MAX, 4)] {
            let (start, days) = grouped(first, last);
            let column = DayColumn::from_days(days.clone());
            assert_eq!(column.as_offsets().is_some(), width == 2, "{first}..={last}");
            c.save(9, 1, &start, &column);
            let len = std::fs::metadata(&c.path).unwrap().len();
            assert_eq!(len, HEAD as u64 + 4 * 4 + width * 5, "{first}..={last}");
            let back = c.load(3).unwrap();
            assert_eq!((back.upto, back.unknown), (9, 1));
            assert_eq!(back.days, GroupedDays::new(start, days).unwrap(), "{first}..={last}");
            // For another number of households, it is a miss.
            assert!(c.load(4).is_none());
        }
    }

    #[test]
    fn a_file_of_the_earlier_format_is_a_miss() {
        let (_dir, c) = cache();
        // What the first format wrote for this store and these households: its key (of its
        // own magic), four words, the offsets and the days as `i32`.
        let (start, days) = grouped(20_000, 20_100);
        let mut old = b"GCDAYS01".to_vec();
        old.extend_from_slice(&key(b"GCDAYS01", IDENTITY, &[7; 32]));
        for word in [9u64, 1, 3, 5] {
            old.extend_from_slice(&word.to_le_bytes());
        }
        old.extend(start.iter().flat_map(|x| x.to_le_bytes()));
        old.extend(days.iter().flat_map(|x| x.to_le_bytes()));
        std::fs::create_dir_all(c.path.parent().unwrap()).unwrap();
        std::fs::write(&c.path, &old).unwrap();
        assert!(c.load(3).is_none());
        // Even given this format's magic and key, the earlier layout does not pass.
        old[..8].copy_from_slice(MAGIC);
        old[8..40].copy_from_slice(&c.key);
        std::fs::write(&c.path, &old).unwrap();
        assert!(c.load(3).is_none());
        // The next write replaces it.
        c.save(9, 1, &start, &DayColumn::from_days(days.clone()));
        assert_eq!(c.load(3).unwrap().days, GroupedDays::new(start, days).unwrap());
    }

    #[test]
    fn a_file_with_a_bad_width_or_base_is_a_miss() {
        let (_dir, c) = cache();
        let (start, days) = grouped(20_000, 20_100);
        c.save(9, 1, &start, &DayColumn::from_days(days));
        let file = std::fs::read(&c.path).unwrap();
        let word = |i: usize| 40 + 8 * i..48 + 8 * i;
        let huge = [(3, u64::MAX / 2), (3, u64::MAX)];
        for (i, value) in
            [(5, 3u64), (5, 4), (4, 1 << 40), (4, (i64::from(i32::MAX) - 10) as u64)].into_iter().chain(huge)
        {
            let mut bad = file.clone();
            bad[word(i)].copy_from_slice(&value.to_le_bytes());
            std::fs::write(&c.path, &bad).unwrap();
            assert!(c.load(3).is_none(), "word {i} = {value}");
        }
    }
}
