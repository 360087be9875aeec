//! A cache of a data folder's service records files (I/O): `contacts.csv` and `needs.csv` as
//! read against the folder's households, kept beside them and read back instead of the files
//! while the files and the households' ids are unchanged.
//!
//! A folder without a store has its service records in these files, and `analyze` and `report`
//! read them for the effective coverage. A national `contacts.csv` holds 144 million contacts
//! (4.1 GB) and `needs.csv` 3.7 million needs: parsing them against 45 million household ids
//! (the ids' table, a lookup per row, the contacts sorted by household) was 80 s of a 135 s
//! `analyze --effective`. A hit costs a hash of the files and a read of their working form
//! (about 0.5 GB: 4 bytes a household and 2 a contact).
//!
//! - **Where:** `.gridcover-cache/contacts.csv.records` in the data folder (the name is the
//!   same when only `needs.csv` is there).
//! - **Key:** the SHA-256 of the format, gridcover's version, each file's presence and the
//!   xxh3-128 of its bytes, and the households' ids in their order
//!   ([`cache_file::ids_digest`]: the records are kept by household position). Any other key is
//!   a miss, and the next read replaces the file.
//! - **Content:** the contacts' days grouped by household (the same section as the store's
//!   contacts cache, [`cache_file::write_grouped_days`]), the needs in the order of the file
//!   (household position, category, status changes), and the rows the files' rules rejected
//!   (file, line, id, reason, as JSON): a hit gives the same [`ServiceRecords`] and the same
//!   warnings as the parse, tested.
//! - **Checks:** a file of the wrong size, days that do not fit their households, a need of a
//!   household out of range, a category or status byte that names none, or rejects that are not
//!   their JSON is a miss (the files are parsed as if there were no cache).
//! - **Writing:** only when neither file changed while it was hashed and parsed (length,
//!   modification time and inode before and after); into a temporary file, synced, renamed
//!   ([`cache_file::replace`]), with the permissions of the file it caches. A folder that cannot
//!   be written costs the next run the parse again, with a note on stderr.
//! - `GRIDCOVER_GEO_CACHE=off` (which turns the geometry cache off too) reads the files every
//!   time and writes no cache.
//!
//! Household personal data: contact days and needs by household position (no id, name or
//! note; the rejects name the rows' ids as the warnings on stderr do); it sits in the data
//! folder, beside the files it is made from, which hold all of that and more.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cache_file::{self, read_words, write_words};
use crate::ingest::cache::{enabled, stamp, Stamp};
use crate::ingest::service::read_folder_records;
use crate::ingest::IngestError;
use crate::model::service::Day;
use crate::model::{Households, NeedCategory, NeedSpan, NeedStatus, Reject, ServiceRecords, StrColumn};

/// Format of the file (its first eight bytes).
const MAGIC: &[u8; 8] = b"GCRECS01";

/// Head words: households, contacts, base day, bytes a day (the grouped days' four), then
/// needs, status changes, bytes of the rejects' JSON.
const WORDS: usize = 7;

/// Bytes of the head: the format, the key and the words.
const HEAD: usize = 8 + 32 + 8 * WORDS;

/// The service records of the data folder `dir` (its `contacts.csv` and `needs.csv`; None when
/// it has neither) against `households`, from the folder's cache when it is this key's, else
/// read by [`read_folder_records`] and then cached. The rows set aside are added to `rejects`,
/// hit or miss. `ahead`: the folder's files hashed beforehand ([`HashedFiles::of_folder`], e.g.
/// on another thread while the households were read and analysed), used when they are this
/// folder's and unchanged since.
///
/// # Errors
/// As [`read_folder_records`] (a cache that cannot be read or written is never an error).
pub fn folder_records(
    dir: &Path,
    households: &Households,
    rejects: &mut Vec<Reject>,
    ahead: Option<HashedFiles>,
) -> Result<Option<ServiceRecords>, IngestError> {
    let files = records_files(dir);
    if !enabled() || !files.iter().any(|f| f.exists()) {
        return read_folder_records(dir, households, rejects);
    }
    // Hashed ahead (while the caller did other work) unless a file changed since.
    let hashed = match ahead {
        Some(h) if h.files == files && h.unchanged() => h,
        _ => HashedFiles::of(files.clone()),
    };
    let cache = FolderCache::of(&hashed, &households.id);
    if let Some((records, kept)) = cache.as_ref().and_then(|c| c.load(households.len())) {
        rejects.extend(kept);
        return Ok(Some(records));
    }
    let mut read = Vec::new();
    let records = read_folder_records(dir, households, &mut read)?;
    if let (Some(cache), Some(records)) = (cache, &records) {
        if hashed.unchanged() {
            cache.save(records, &read);
        }
    }
    rejects.extend(read);
    Ok(records)
}

/// The service records files of the folder `dir`: `contacts.csv`, `needs.csv`.
fn records_files(dir: &Path) -> [PathBuf; 2] {
    [dir.join("contacts.csv"), dir.join("needs.csv")]
}

/// A data folder's service records files and the xxh3-128 of each (the part of their cache's
/// key that does not depend on the households), with what told each file apart when it was
/// hashed (length, modification time, inode).
pub struct HashedFiles {
    files: [PathBuf; 2],
    stamps: [Option<Stamp>; 2],
    /// Each file's digest (None: no such file); an error when one could not be read.
    digests: std::io::Result<[Option<[u8; 16]>; 2]>,
}

impl HashedFiles {
    /// The service records files of the data folder `dir`, hashed. Hashing a national
    /// `contacts.csv` (4 GB) takes a second or more: `analyze` starts it on a thread of its own
    /// while it reads and analyses the folder.
    pub fn of_folder(dir: &Path) -> HashedFiles {
        HashedFiles::of(records_files(dir))
    }

    fn of(files: [PathBuf; 2]) -> HashedFiles {
        let stamps = files.each_ref().map(|f| stamp(f).ok());
        // On this thread (not rayon's pool, which the caller may keep busy meanwhile).
        let digests = file_digest(&files[0]).and_then(|c| Ok([c, file_digest(&files[1])?]));
        HashedFiles { files, stamps, digests }
    }

    /// True while neither file changed since it was hashed.
    fn unchanged(&self) -> bool {
        self.files.each_ref().map(|f| stamp(f).ok()) == self.stamps
    }
}

/// The cache of one folder's files for one order of household ids.
struct FolderCache {
    path: PathBuf,
    /// The file whose permissions it takes.
    like: PathBuf,
    key: [u8; 32],
}

/// The xxh3-128 of a file's bytes, None when there is no such file. Not SHA-256: the key tells
/// a changed file from the one cached (who can write the folder can write the cache too), and
/// a national `contacts.csv` (4 GB) hashes in about a second instead of three.
fn file_digest(path: &Path) -> std::io::Result<Option<[u8; 16]>> {
    if !path.exists() {
        return Ok(None);
    }
    cache_file::xxh3_of_file(path).map(Some)
}

impl FolderCache {
    /// The cache of the `hashed` files (at least one exists) read against the households of
    /// `ids`. None when a file could not be read (its parse then says why).
    fn of(hashed: &HashedFiles, ids: &StrColumn) -> Option<FolderCache> {
        let files = &hashed.files;
        let digests = hashed.digests.as_ref().ok()?;
        let ids = cache_file::ids_digest(ids);
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for digest in digests {
            match digest {
                Some(d) => {
                    h.update([1]);
                    h.update(d);
                }
                None => h.update([0]),
            }
        }
        h.update(ids);
        let like = files.iter().find(|f| f.exists())?.clone();
        Some(FolderCache { path: cache_file::path(&files[0], "records"), like, key: h.finalize().into() })
    }

    /// The cached records and rejects, if the file is there, of this key and format, and whole.
    fn load(&self, households: usize) -> Option<(ServiceRecords, Vec<Reject>)> {
        let (mut r, len, [n, contacts, base, width, needs, changes, json]) =
            cache_file::open_head::<WORDS>(&self.path, MAGIC, &self.key)?;
        if n != households as u64 {
            return None;
        }
        let days = [n, contacts, base, width];
        let want = cache_file::grouped_days_len(days)?
            .checked_add(needs.checked_mul(9)?)?
            .checked_add(changes.checked_mul(5)?)?
            .checked_add(json)?
            .checked_add(HEAD as u64)?;
        if want != len {
            return None;
        }
        let grouped = cache_file::read_grouped_days(&mut r, days)?;
        let (needs, changes) = (usize::try_from(needs).ok()?, usize::try_from(changes).ok()?);
        let household: Vec<u32> = read_words(&mut r, needs, u32::from_le_bytes)?;
        let category: Vec<u8> = read_words(&mut r, needs, |[b]: [u8; 1]| b)?;
        let count: Vec<u32> = read_words(&mut r, needs, u32::from_le_bytes)?;
        let day: Vec<Day> = read_words(&mut r, changes, i32::from_le_bytes)?;
        let status: Vec<u8> = read_words(&mut r, changes, |[b]: [u8; 1]| b)?;
        let mut spans = Vec::with_capacity(needs);
        let mut at = 0usize;
        for k in 0..needs {
            let end = at.checked_add(count[k] as usize).filter(|&e| e <= changes)?;
            let changes = (at..end)
                .map(|i| NeedStatus::ALL.get(usize::from(status[i])).map(|&s| (day[i], s)))
                .collect::<Option<Vec<_>>>()?;
            let category = *NeedCategory::ALL.get(usize::from(category[k]))?;
            if household[k] as usize >= households {
                return None;
            }
            spans.push(NeedSpan { household: household[k], category, changes });
            at = end;
        }
        if at != changes {
            return None;
        }
        let mut text = vec![0u8; usize::try_from(json).ok()?];
        r.read_exact(&mut text).ok()?;
        let rejects: Vec<Reject> = serde_json::from_slice(&text).ok()?;
        let (records, _) = ServiceRecords::with_added(grouped, Vec::new(), spans)?;
        Some((records, rejects))
    }

    /// Writes the records and the rejects of their read (replacing the file whole); a failure
    /// is a note on stderr.
    fn save(&self, records: &ServiceRecords, rejects: &[Reject]) {
        let Ok(json) = serde_json::to_vec(rejects) else { return };
        let (start, days) = records.contact_days();
        let needs = &records.needs;
        let changes: usize = needs.iter().map(|n| n.changes.len()).sum();
        let note = ("the service records' cache", "reads contacts.csv and needs.csv again");
        cache_file::replace(&self.path, Some(&self.like), note, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&self.key)?;
            let words = cache_file::grouped_days_words(start, days);
            for word in words.into_iter().chain([needs.len() as u64, changes as u64, json.len() as u64]) {
                w.write_all(&word.to_le_bytes())?;
            }
            cache_file::write_grouped_days(w, start, days)?;
            let category = |c: NeedCategory| NeedCategory::ALL.iter().position(|&x| x == c).unwrap_or(0) as u8;
            let status = |s: NeedStatus| NeedStatus::ALL.iter().position(|&x| x == s).unwrap_or(0) as u8;
            let counts: Vec<u32> = needs.iter().map(|n| n.changes.len() as u32).collect();
            write_words(w, &needs.iter().map(|n| n.household).collect::<Vec<_>>(), u32::to_le_bytes)?;
            w.write_all(&needs.iter().map(|n| category(n.category)).collect::<Vec<_>>())?;
            write_words(w, &counts, u32::to_le_bytes)?;
            let all = || needs.iter().flat_map(|n| n.changes.iter());
            write_words(w, &all().map(|&(d, _)| d).collect::<Vec<_>>(), i32::to_le_bytes)?;
            w.write_all(&all().map(|&(_, s)| status(s)).collect::<Vec<_>>())?;
            w.write_all(&json)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HouseholdRow;

    fn households(ids: &[&str]) -> Households {
        let mut hh = Households::default();
        for id in ids {
            hh.push(HouseholdRow { id: (*id).into(), veterans: 1, ..Default::default() });
        }
        hh
    }

    const CONTACTS: &str = "household_id,date,kind,note\nH2,2026-11-01,,\nH1,2026-11-29,电话,血压正常\n\
        H9,2026-11-01,home,\nH1,2026-02-30,home,\nH1,2026-10-03,home,\"a note, quoted\"\nH3,2026-11-02,fax,\n\
        H2,2026-09-01,station,\n";
    const NEEDS: &str = "household_id,category,date,status,status_date,note\n\
        H1,medical,2026-10-01,resolved,2026-10-20,\nH2,housing,2026-11-01,,,\nH2,food,2026-11-01,,,\n\
        H3,legal,2026-08-01,in_progress,2026-08-05,\nH1,legal,2026-11-01,resolved,2026-10-01,\n";

    /// A folder with `contacts` and `needs` (None: no such file).
    fn folder(contacts: Option<&str>, needs: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("contacts.csv", contacts), ("needs.csv", needs)] {
            if let Some(text) = text {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
        }
        dir
    }

    fn cache_file(dir: &Path) -> PathBuf {
        dir.join(crate::ingest::cache::CACHE_DIR).join("contacts.csv.records")
    }

    /// What the files give, parsed.
    fn parsed(dir: &Path, hh: &Households) -> (Option<ServiceRecords>, Vec<Reject>) {
        let mut rejects = Vec::new();
        let r = read_folder_records(dir, hh, &mut rejects).unwrap();
        (r, rejects)
    }

    /// What the cached read gives.
    fn cached(dir: &Path, hh: &Households) -> (Option<ServiceRecords>, Vec<Reject>) {
        let mut rejects = Vec::new();
        let r = folder_records(dir, hh, &mut rejects, None).unwrap();
        (r, rejects)
    }

    #[test]
    fn a_hit_gives_what_the_files_give_and_is_what_is_read() {
        let hh = households(&["H1", "H2", "H3"]);
        // Contacts within a few days of each other (u16 offsets), and over centuries (i32 days).
        let wide = format!("{CONTACTS}H3,1900-01-01,home,\nH2,2100-01-01,home,\n");
        for contacts in [CONTACTS, wide.as_str()] {
            let f = folder(Some(contacts), Some(NEEDS));
            let want = parsed(f.path(), &hh);
            let width = want.0.as_ref().unwrap().contact_days().1.as_offsets().map_or(4, |_| 2);
            assert_eq!(width, if contacts == CONTACTS { 2 } else { 4 });
            assert_eq!(want.1.len(), 5, "{:?}", want.1);
            assert!(!cache_file(f.path()).exists());
            assert_eq!(cached(f.path(), &hh), want, "a miss gives the parse");
            let file = std::fs::read(cache_file(f.path())).unwrap();
            assert_eq!(cached(f.path(), &hh), want, "a hit gives the same records and rejects");
            assert_eq!(std::fs::read(cache_file(f.path())).unwrap(), file, "a hit writes nothing");
            // The cache is what a hit reads: a reason changed in it shows.
            let from = b"unknown household H9";
            let at = file.windows(from.len()).position(|w| w == from).unwrap();
            let mut changed = file.clone();
            changed[at + from.len() - 1] = b'8';
            std::fs::write(cache_file(f.path()), &changed).unwrap();
            let (records, rejects) = cached(f.path(), &hh);
            assert_eq!(records, want.0);
            assert!(rejects.iter().any(|r| r.reason.contains("unknown household H8")), "{rejects:?}");
        }
    }

    #[test]
    fn a_changed_file_or_other_households_are_a_miss_and_the_cache_is_replaced() {
        let hh = households(&["H1", "H2", "H3"]);
        let f = folder(Some(CONTACTS), Some(NEEDS));
        cached(f.path(), &hh);
        let first = std::fs::read(cache_file(f.path())).unwrap();
        let more = format!("{CONTACTS}H3,2026-11-30,home,\n");
        std::fs::write(f.path().join("contacts.csv"), &more).unwrap();
        let want = parsed(f.path(), &hh);
        assert_eq!(want.0.as_ref().unwrap().contacts(2), [crate::model::service::day_from_ymd(2026, 11, 30)]);
        assert_eq!(cached(f.path(), &hh), want);
        assert_ne!(std::fs::read(cache_file(f.path())).unwrap(), first, "replaced");
        assert_eq!(cached(f.path(), &hh), want);
        // A need changed.
        std::fs::write(f.path().join("needs.csv"), NEEDS.replace("2026-10-20", "2026-10-21")).unwrap();
        assert_eq!(cached(f.path(), &hh), parsed(f.path(), &hh));
        // The same ids in another order: the records are by position.
        let other = households(&["H3", "H2", "H1"]);
        let want = parsed(f.path(), &other);
        assert_eq!(want.0.as_ref().unwrap().contacts(0), [crate::model::service::day_from_ymd(2026, 11, 30)]);
        assert_eq!(cached(f.path(), &other), want);
        // One file gone: only the needs.
        std::fs::remove_file(f.path().join("contacts.csv")).unwrap();
        let want = parsed(f.path(), &other);
        assert_eq!(want.0.as_ref().unwrap().contact_count(), 0);
        assert_eq!(cached(f.path(), &other), want);
        assert_eq!(cached(f.path(), &other), want);
        // Neither: no records, and nothing read from the cache.
        std::fs::remove_file(f.path().join("needs.csv")).unwrap();
        assert_eq!(cached(f.path(), &other), (None, Vec::new()));
    }

    #[test]
    fn a_damaged_cache_is_a_miss() {
        let hh = households(&["H1", "H2", "H3"]);
        let f = folder(Some(CONTACTS), Some(NEEDS));
        let want = parsed(f.path(), &hh);
        cached(f.path(), &hh);
        let file = std::fs::read(cache_file(f.path())).unwrap();
        let word = |file: &[u8], i: usize| u64::from_le_bytes(file[40 + 8 * i..48 + 8 * i].try_into().unwrap());
        let (contacts, needs, changes, json) =
            (word(&file, 1) as usize, word(&file, 4) as usize, word(&file, 5) as usize, word(&file, 6) as usize);
        assert_eq!((contacts, needs, changes), (4, 3, 5));
        let needs_at = HEAD + 4 * 4 + 2 * contacts;
        let (category_at, count_at) = (needs_at + 4 * needs, needs_at + 5 * needs);
        let status_at = count_at + 4 * needs + 4 * changes;
        assert_eq!(status_at + changes + json, file.len());
        let mut damages: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut with = |what, at: usize, bytes: &[u8]| {
            let mut bad = file.clone();
            bad[at..at + bytes.len()].copy_from_slice(bytes);
            damages.push((what, bad));
        };
        with("format", 0, b"GCRECS00");
        with("key", 8, &[file[8] ^ 1]);
        with("households", 40, &4u64.to_le_bytes());
        with("a need of no household", needs_at, &3u32.to_le_bytes());
        with("a category of none", category_at, &[7]);
        with("a status of none", status_at, &[3]);
        with("changes that do not add up", count_at, &3u32.to_le_bytes());
        with("days out of order", HEAD + 4 * 4, &u16::MAX.to_le_bytes());
        with("rejects not their JSON", status_at + changes, b"{");
        let cut = file[..file.len() - 1].to_vec();
        damages.push(("cut", cut));
        let mut longer = file.clone();
        longer.push(b' ');
        damages.push(("longer", longer));
        for (what, bad) in damages {
            std::fs::write(cache_file(f.path()), &bad).unwrap();
            assert_eq!(cached(f.path(), &hh), want, "{what}");
            assert_eq!(std::fs::read(cache_file(f.path())).unwrap(), file, "{what}: replaced");
        }
    }
}
