//! A file cache of the store's contacts, grouped by household, for the server's restart.
//!
//! Reading every contact's household id and date from SQLite is the longest step of a restart
//! at national scale (144 million contacts: about a minute). The contacts are append-only —
//! `visits` rows are never changed nor deleted, and their ids only grow — so the contact days
//! read up to a visit id stay true of that store for good. [`Store::service_records_cached`] keeps
//! them in `.gridcover-cache/<store file>.contacts` beside the store, and at the next start
//! reads the file and only the visits added since from the database.
//!
//! - **Key:** SHA-256 of the format, the store's identity (its first import: id, time and the
//!   files' SHA-256 — another store, even of the same folder, has another) and the household
//!   ids in their order (the days are grouped by position). Any other key is a miss.
//! - **Content:** the last visit id it holds, the number of those contacts whose household was
//!   not among the ids, then `start` (households + 1 offsets, `u32`) and `days` (`i32`), little
//!   endian, as [`ServiceRecords::contact_days`] gives them.
//! - **Checks:** a file of the wrong size, or whose offsets and days do not fit together, is a
//!   miss (the store is read as if there were no file); a file is written to a temporary name,
//!   synced and renamed, so a crash leaves the old file or the new one. Failing to write it
//!   costs the next start its time, nothing else: a note on stderr.
//!
//! Household personal data: the file holds contact days by household position, no id, name or
//! note; it sits beside the store, which holds all of them, with the same access.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::service::{Day, GroupedDays};
use crate::model::StrColumn;

use super::cache_file::{self, read_words, write_words, CHUNK};

/// Format of the file (its first eight bytes).
const MAGIC: &[u8; 8] = b"GCDAYS01";

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
    key: [u8; 32],
}

impl ContactCache {
    /// The SHA-256 of the household ids in their order (a part of the key, taken while the
    /// store is read).
    pub fn ids_digest(ids: &StrColumn) -> [u8; 32] {
        let (text, ends) = ids.parts();
        let mut h = Sha256::new();
        h.update((ends.len() as u64).to_le_bytes());
        for e in ends {
            h.update(e.to_le_bytes());
        }
        h.update(text.as_bytes());
        h.finalize().into()
    }

    /// The cache of the store at `store` (its file) whose identity is `identity`, for the
    /// households whose [`ContactCache::ids_digest`] is `ids`.
    pub fn new(store: &Path, identity: &str, ids: &[u8; 32]) -> ContactCache {
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update((identity.len() as u64).to_le_bytes());
        h.update(identity.as_bytes());
        h.update(ids);
        ContactCache { path: cache_file::path(store, "contacts"), key: h.finalize().into() }
    }

    /// The cached days, if the file is there, of this key, and whole.
    pub fn load(&self, households: usize) -> Option<ContactDays> {
        let f = std::fs::File::open(&self.path).ok()?;
        let len = f.metadata().ok()?.len();
        let mut r = BufReader::with_capacity(CHUNK, f);
        let mut head = [0u8; 8 + 32 + 8 * 4];
        r.read_exact(&mut head).ok()?;
        let word = |i: usize| u64::from_le_bytes(head[40 + 8 * i..48 + 8 * i].try_into().unwrap_or_default());
        if &head[..8] != MAGIC || head[8..40] != self.key || word(2) != households as u64 {
            return None;
        }
        let (upto, unknown, contacts) = (word(0) as i64, word(1), word(3));
        let want = head.len() as u64 + 4 * (households as u64 + 1) + 4 * contacts;
        if len != want {
            return None;
        }
        let start: Vec<u32> = read_words(&mut r, households + 1, u32::from_le_bytes)?;
        let days: Vec<Day> = read_words(&mut r, usize::try_from(contacts).ok()?, i32::from_le_bytes)?;
        Some(ContactDays { upto, unknown, days: GroupedDays::new(start, days)? })
    }

    /// Writes the days (replacing the file whole); a failure is a note on stderr.
    pub fn save(&self, upto: i64, unknown: u64, start: &[u32], days: &[Day]) {
        let note = ("the contacts' cache", "reads them from the store");
        cache_file::replace(&self.path, None, note, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&self.key)?;
            let households = start.len().saturating_sub(1) as u64;
            for word in [upto as u64, unknown, households, days.len() as u64] {
                w.write_all(&word.to_le_bytes())?;
            }
            write_words(w, start, |x: u32| x.to_le_bytes())?;
            write_words(w, days, |x: Day| x.to_le_bytes())
        })
    }
}
