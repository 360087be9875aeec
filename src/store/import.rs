//! `gridcover import`: a data folder's stations, households and grids into the store, and the
//! [`Dataset`] back out of it for the server ([`Store::load_dataset`]).
//!
//! An import reads the folder's stations, households and grids first (any fatal input error
//! leaves the store untouched), then writes everything in one transaction (a failure part way —
//! a full disk, a crash, an unreadable `contacts.csv` — leaves the store as it was). A first
//! import (the store holds no import yet) writes with a rollback journal instead of the WAL
//! when it has the store to itself ([`Store::first_import_journal`]): its pages go straight
//! into the database, and a crash part way is rolled back from the journal when the store is
//! next opened. Importing the same files again changes nothing: the import
//! first compares the SHA-256 of the input files with the last import's, and beyond that every
//! record carries the SHA-256 of its imported fields, so that only records whose input really
//! changed are written. A record that changed in the input is updated (version + 1, a
//! `reimport` entry in its history with before and after); a record that disappeared from the
//! input is closed (station) or marked removed (household, grid), never deleted, with a
//! `removed` entry. Stations added through the server are not the import's and are left alone.
//! Households' statuses and visits are never touched by an import.
//!
//! The folder's service history — `contacts.csv` and `needs.csv`, as `gridcover generate`
//! writes them — is imported in the same transaction (see [`Store::import_contacts`]): a
//! contact or need already in the store is not added again, so importing the folder again adds
//! nothing, and contacts and needs recorded through the server meanwhile are kept. They are
//! read in the transaction: on a first import (the store holds no contact, or no need) each
//! file is counted while the stations, households and grids are written, then streamed into
//! the store a chunk of rows at a time, never held whole (`ledger::Streamed`); otherwise each is
//! read whole and compared with the store's records.
//!
//! # A store's first import
//! What only a first import writes is written the cheap way, with the same rows as a result:
//! the folder is read without the boundaries' geometries, which the store does not keep
//! ([`crate::ingest::ReadOptions::IMPORT`]); streamed contacts and needs go in with their
//! indexes dropped, which are made again from their own definitions after them in the same
//! transaction (one sort instead of an index insert per record), and contacts 64 to a
//! statement; a store with no import before runs its first without SQLite's foreign-key checks
//! (every reference it writes is to a row of its own transaction), on again after it. A
//! household's import hash is written from the columns, the same bytes as its JSON object.

use std::collections::HashMap;
use std::path::Path;

use geo::{Coord, LineString, MultiPolygon, Polygon};
use rusqlite::{params, Transaction, TransactionBehavior};
use serde::Serialize;
use serde_json::{json, Value};

use super::household_cache::{CellCache, HouseholdCache};
use super::ledger::{
    contacts_in, contacts_streamed, needs_in, needs_streamed, Households as Named, RecordSource, RecordsImported,
    Streamed,
};
use super::records::{append_history, insert_station, station_in as station_row, write_station, Actor, StationRecord};
use super::{hex, sha256, sha256_file, Result, Store, StoreError};
use crate::ingest::service::{
    each_ledger_row, each_need_row, read_ledger, read_needs, HouseholdIds, LedgerRow, NeedRow,
};
use crate::ingest::{read_boundaries, read_config, read_data_folder_with, read_divisions, CONFIG_FILE};
use crate::model::{Dataset, Divisions, Grids, HouseholdRow, Households, Reject, StationRow, Stations, UnitIdx};

/// The store's first and last imports (id, time, files' SHA-256), or NULL before any: the key
/// of the households' snapshot ([`HouseholdCache`]), since only an import changes the columns
/// it holds.
const IMPORTS_KEY: &str = "SELECT (SELECT id || ' ' || at || ' ' || files_sha256 FROM imports ORDER BY id LIMIT 1)
     || ' / ' || (SELECT id || ' ' || at || ' ' || files_sha256 FROM imports ORDER BY id DESC LIMIT 1)";

/// The input files an import fingerprints (those present).
const INPUT_FILES: [&str; 11] = [
    CONFIG_FILE,
    "divisions.csv",
    "boundaries.geojson",
    "stations.csv",
    "stations.geojson",
    "stations.parquet",
    "households.csv",
    "households.parquet",
    "grids.geojson",
    "contacts.csv",
    "needs.csv",
];

/// The input files read through the geometry cache ([`crate::ingest::cache`]).
const GEOMETRY_FILES: [&str; 2] = ["boundaries.geojson", "grids.geojson"];

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// True when the input files were those of the last import: nothing was written.
    pub unchanged: bool,
    /// SHA-256 of the input files (names and contents).
    pub files_sha256: String,
    /// Records added, per kind (`stations`, `households`, `grids`).
    pub added: [usize; 3],
    /// Records whose input changed, per kind.
    pub updated: [usize; 3],
    /// Records gone from the input (closed or marked removed), per kind.
    pub removed: [usize; 3],
    /// Records as they were, per kind.
    pub same: [usize; 3],
    /// The contacts of the folder's `contacts.csv` (none: it has none).
    pub contacts: Option<RecordsImported>,
    /// The needs of the folder's `needs.csv` (none: it has none).
    pub needs: Option<RecordsImported>,
    /// Rows set aside while reading (as in `rejects.csv` of `analyze`).
    pub rejects: Vec<Reject>,
}

/// A data folder's service history, read for its import: `contacts.csv` and `needs.csv` (each
/// optional) with their sources.
#[derive(Debug, Clone, Default)]
pub struct FolderHistory {
    /// The contacts and their file.
    pub contacts: Option<(RecordSource, Vec<LedgerRow>)>,
    /// The needs and their file.
    pub needs: Option<(RecordSource, Vec<NeedRow>)>,
}

impl FolderHistory {
    /// Reads `contacts.csv` and `needs.csv` of `dir` (those present) against the households of
    /// `ds`; the rows set aside are added to `rejects`.
    ///
    /// # Errors
    /// [`StoreError::Ingest`] when a file cannot be read or lacks a required column.
    pub fn read(dir: &Path, ds: &Dataset, rejects: &mut Vec<Reject>) -> Result<FolderHistory> {
        let mut out = FolderHistory::default();
        let c = dir.join("contacts.csv");
        if c.exists() {
            let before = rejects.len();
            let rows = read_ledger(&c, &ds.households, rejects)?;
            out.contacts = Some((RecordSource::of_file(&c, rejects.len() - before)?, rows));
        }
        let n = dir.join("needs.csv");
        if n.exists() {
            let before = rejects.len();
            let rows = read_needs(&n, &ds.households, rejects)?;
            out.needs = Some((RecordSource::of_file(&n, rejects.len() - before)?, rows));
        }
        Ok(out)
    }
}

impl ImportReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        if self.unchanged {
            return format!(
                "store unchanged: the input files are those of the last import ({})",
                &self.files_sha256[..12]
            );
        }
        let kinds = ["stations", "households", "grids"];
        let mut parts: Vec<String> = (0..3)
            .map(|k| {
                format!(
                    "{}: {} added, {} updated, {} removed, {} unchanged",
                    kinds[k], self.added[k], self.updated[k], self.removed[k], self.same[k]
                )
            })
            .collect();
        for (what, r) in [("contacts", &self.contacts), ("needs", &self.needs)] {
            if let Some(r) = r {
                parts.push(format!("{what}: {} added, {} already there", r.added, r.same));
            }
        }
        format!("{}; {} rejects", parts.join("; "), self.rejects.len())
    }
}

/// SHA-256 over the names and contents of the folder's input files, and each file's own
/// SHA-256 (those present).
fn files_digest(dir: &Path) -> Result<(String, HashMap<&'static str, [u8; 32]>)> {
    let mut all = Vec::new();
    let mut each = HashMap::new();
    for name in INPUT_FILES {
        let p = dir.join(name);
        // The polygon layers' hashes are remembered for their geometry caches' keys, which the
        // read of the folder just after would compute again from the same bytes.
        let hashed =
            if GEOMETRY_FILES.contains(&name) { crate::ingest::cache::sha256_remembered(&p) } else { sha256_file(&p) };
        match hashed {
            Ok(digest) => {
                all.extend_from_slice(name.as_bytes());
                all.push(0);
                all.extend_from_slice(&digest);
                each.insert(name, digest);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(crate::ingest::IngestError::Io { path: p, source }.into()),
        }
    }
    Ok((hex(&sha256(&all)), each))
}

fn station_record(ds: &Dataset, r: StationRow) -> StationRecord {
    StationRecord {
        id: r.id,
        name: r.name,
        level: r.level,
        code: ds.divisions.get(r.unit).code.clone(),
        lon: r.lon,
        lat: r.lat,
        demonstration: r.demonstration,
        mobile: r.mobile,
        radius_m: r.radius_m,
        active: true,
        version: 1,
    }
}

/// The imported fields of a station, hashed (closed/version not included).
fn station_hash(s: &StationRecord) -> [u8; 32] {
    let v = json!([s.id, s.name, s.level.as_str(), s.code, s.lon, s.lat, s.demonstration, s.mobile, s.radius_m]);
    sha256(v.to_string().as_bytes())
}

/// A household's imported fields as the JSON object whose SHA-256 is its `import_sha256` (and
/// which its `reimport` history entry shows): keys in sorted order, as a `serde_json` map
/// holds them.
#[cfg_attr(not(test), allow(dead_code))]
fn household_json(ds: &Dataset, h: &HouseholdRow) -> Value {
    json!({
        "lon": h.lon, "lat": h.lat, "veterans": h.veterans,
        "code": h.code.map(|u| ds.divisions.get(u).code.clone()),
        "difficulty": h.difficulty, "martyr_family": h.martyr_family,
        "name": h.name, "address": h.address,
    })
}

/// Household `i`'s imported fields, borrowed from the columns: serialized, the text of
/// [`household_json`] byte for byte (its keys in the same sorted order; tested), written
/// without a JSON value or a `String` per field (a national import hashes 45 million).
#[derive(Serialize)]
struct HouseholdFields<'a> {
    address: Option<&'a str>,
    code: Option<&'a str>,
    difficulty: bool,
    lat: f64,
    lon: f64,
    martyr_family: bool,
    name: Option<&'a str>,
    veterans: u32,
}

impl<'a> HouseholdFields<'a> {
    fn of(ds: &'a Dataset, i: usize) -> HouseholdFields<'a> {
        let h = &ds.households;
        HouseholdFields {
            address: h.address.get(i),
            code: h.code.get(i).map(|u| ds.divisions.get(u).code.as_str()),
            difficulty: h.difficulty[i],
            lat: h.lat[i],
            lon: h.lon[i],
            martyr_family: h.martyr_family[i],
            name: h.name.get(i),
            veterans: h.veterans[i],
        }
    }

    /// SHA-256 of the fields' JSON text, written into `buf` (cleared first).
    fn sha256(&self, buf: &mut Vec<u8>) -> [u8; 32] {
        buf.clear();
        serde_json::to_writer(&mut *buf, self).expect("plain fields serialize");
        sha256(buf)
    }

    /// The fields as a JSON value (a history entry's `after`).
    fn json(&self) -> Value {
        serde_json::to_value(self).expect("plain fields serialize")
    }
}

#[cfg(test)]
fn household_row(h: &Households, i: usize) -> HouseholdRow {
    HouseholdRow {
        id: h.id[i].to_string(),
        lon: h.lon[i],
        lat: h.lat[i],
        veterans: h.veterans[i],
        code: h.code.get(i),
        difficulty: h.difficulty[i],
        martyr_family: h.martyr_family[i],
        name: h.name.get(i).map(str::to_string),
        address: h.address.get(i).map(str::to_string),
    }
}

/// A multipolygon's coordinates as the store keeps them: `[[[[x, y], …], …], …]`, the text of
/// [`geometry_json`] written straight from the coordinates (no JSON value per number: a
/// national import writes 550,000 grids), byte for byte (tested).
fn geometry_text(mp: &MultiPolygon<f64>) -> String {
    use serde::ser::Serializer;
    struct Ring<'a>(&'a LineString<f64>);
    impl Serialize for Ring<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0 .0.iter().map(|c| [c.x, c.y]))
        }
    }
    struct Rings<'a>(&'a Polygon<f64>);
    impl Serialize for Rings<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(std::iter::once(self.0.exterior()).chain(self.0.interiors()).map(Ring))
        }
    }
    struct Polygons<'a>(&'a MultiPolygon<f64>);
    impl Serialize for Polygons<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0 .0.iter().map(Rings))
        }
    }
    serde_json::to_string(&Polygons(mp)).unwrap_or_else(|_| geometry_json(mp).to_string())
}

/// A multipolygon's coordinates as a JSON value (what [`geometry_text`] writes).
fn geometry_json(mp: &MultiPolygon<f64>) -> Value {
    let ring = |ls: &LineString<f64>| Value::Array(ls.0.iter().map(|c| json!([c.x, c.y])).collect());
    Value::Array(
        mp.0.iter()
            .map(|p| {
                let mut rings = vec![ring(p.exterior())];
                rings.extend(p.interiors().iter().map(ring));
                Value::Array(rings)
            })
            .collect(),
    )
}

fn geometry_from_json(text: &str) -> Result<MultiPolygon<f64>, String> {
    let v: Vec<Vec<Vec<[f64; 2]>>> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let ls = |r: Vec<[f64; 2]>| LineString(r.into_iter().map(|[x, y]| Coord { x, y }).collect());
    Ok(MultiPolygon(
        v.into_iter()
            .map(|mut rings| {
                let ext = if rings.is_empty() { Vec::new() } else { rings.remove(0) };
                Polygon::new(ls(ext), rings.into_iter().map(ls).collect())
            })
            .collect(),
    ))
}

impl Store {
    /// Imports the data folder `dir` (see the module documentation).
    ///
    /// # Errors
    /// [`StoreError::Ingest`] when the folder cannot be read (the store is unchanged);
    /// [`StoreError::Db`] when writing fails (rolled back: the store is unchanged).
    pub fn import(&self, dir: &Path) -> Result<ImportReport> {
        let (digest, each) = files_digest(dir)?;
        let last: Option<String> = self.read(|c| {
            c.query_row("SELECT files_sha256 FROM imports ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
                .map(Some)
                .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })
                .map_err(StoreError::db("reading the last import"))
        })?;
        if last.as_deref() == Some(digest.as_str()) {
            return Ok(ImportReport { unchanged: true, files_sha256: digest, ..Default::default() });
        }
        // The import keeps no boundary: their geometries are not decoded (their rejects and
        // notes, and the extent points are checked against, are the same).
        let ds = read_data_folder_with(dir, crate::ingest::ReadOptions::IMPORT)?;
        let file = |name: &'static str| each.get(name).map(|d| (dir.join(name), hex(d)));
        let files = FolderFiles { contacts: file("contacts.csv"), needs: file("needs.csv") };
        self.import_with(&ds, &digest, History::Files(&files))
    }

    /// Imports an already-read data set whose input files have fingerprint `digest`.
    ///
    /// # Errors
    /// [`StoreError::Db`] (rolled back).
    pub fn import_dataset(&self, ds: &Dataset, digest: &str) -> Result<ImportReport> {
        self.import_dataset_with(ds, digest, &FolderHistory::default())
    }

    /// Imports an already-read data set whose input files have fingerprint `digest`, with its
    /// service history (contacts and needs, added unless already there: see
    /// [`Store::import_contacts`]), in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Db`] (rolled back).
    pub fn import_dataset_with(&self, ds: &Dataset, digest: &str, history: &FolderHistory) -> Result<ImportReport> {
        self.import_with(ds, digest, History::Read(history))
    }

    /// [`Store::import_dataset_with`] with the service history read already or to be read.
    fn import_with(&self, ds: &Dataset, digest: &str, history: History<'_>) -> Result<ImportReport> {
        self.write(|c| {
            // A bigger page cache while the import runs: with SQLite's 2 MB, a national import
            // spills dirty pages to the WAL long before its commit and reads them back through
            // the WAL index. Durability is the same (one transaction, fsynced at its commit).
            let cache: i64 =
                c.query_row("PRAGMA cache_size", [], |r| r.get(0)).map_err(StoreError::db("reading cache_size"))?;
            c.pragma_update(None, "cache_size", IMPORT_CACHE_KIB).map_err(StoreError::db("setting cache_size"))?;
            // A store's first import (no import before it) writes records that refer only to
            // rows its own transaction writes (its households, the system user `import`, its
            // rows of `record_imports`, its needs), by construction: SQLite's foreign-key checks,
            // a look-up of the parent row per record (144 million contacts nationally), are
            // left out for it (tested: `foreign_key_check` finds nothing after it). The setting
            // can change only outside a transaction; it is on again after the import.
            let first = !imported(c)?;
            if first {
                c.pragma_update(None, "foreign_keys", false).map_err(StoreError::db("setting foreign_keys"))?;
            }
            let rollback = first && self.first_import_journal(c)?;
            let done = import_in(c, ds, digest, history);
            let back = if rollback { wal_again(c, &self.inner.path) } else { Ok(()) };
            if first {
                c.pragma_update(None, "foreign_keys", true).map_err(StoreError::db("setting foreign_keys"))?;
            }
            c.pragma_update(None, "cache_size", cache).map_err(StoreError::db("setting cache_size"))?;
            release_heap();
            let rep = done?;
            back?;
            if !rollback {
                // The import's pages were copied into the database when it committed; a WAL as
                // big as the import would otherwise stay on disk beside it. A checkpoint that
                // cannot finish now (a reader) is finished by a later one, without waiting for
                // the reader: the import is committed either way.
                let _ = without_waiting(c, |c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())));
            }
            Ok(rep)
        })
    }

    /// Before a first import (the store holds no import), switches the writer from WAL to a
    /// rollback journal for the import's transaction, and says whether it did.
    ///
    /// In WAL mode a transaction's pages all go to the WAL first and are copied into the
    /// database at the checkpoint after the commit: a first import writes the whole store
    /// twice and, until that checkpoint, needs twice its size on disk (a national store of
    /// tens of GB). With a rollback journal the new pages are written once, into the database
    /// itself; the journal holds only the pages that existed before (the empty tables, the
    /// users), so a failed or killed import is rolled back all the same — by SQLite itself,
    /// from that journal, when the store is next opened. A rollback journal needs the
    /// database to itself: the pool's idle readers are closed first, and when another
    /// connection (another process) has the store open the switch is refused and the import
    /// runs in WAL mode as any other. The writer goes back to WAL after the commit
    /// ([`wal_again`]).
    pub(super) fn first_import_journal(&self, c: &rusqlite::Connection) -> Result<bool> {
        if imported(c)? {
            return Ok(false);
        }
        self.inner.readers.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // Another connection makes the switch fail at once (not after the busy timeout): the
        // import then keeps the WAL.
        match without_waiting(c, |c| c.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)))? {
            Ok(mode) => Ok(mode.eq_ignore_ascii_case("delete")),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(false),
            Err(e) => Err(StoreError::db("switching to a rollback journal for the first import")(e)),
        }
    }
}

/// Runs `f` with the connection's busy timeout at zero: a lock another connection holds is
/// an error at once (`SQLITE_BUSY`) instead of a wait.
fn without_waiting<T>(
    c: &rusqlite::Connection,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<rusqlite::Result<T>> {
    let busy = |d| c.busy_timeout(d).map_err(StoreError::db("setting the busy timeout"));
    busy(std::time::Duration::ZERO)?;
    let r = f(c);
    busy(super::BUSY_TIMEOUT)?;
    Ok(r)
}

/// True when the store of connection `c` holds an import (a later one is not a first import).
fn imported(c: &rusqlite::Connection) -> Result<bool> {
    c.query_row("SELECT EXISTS (SELECT 1 FROM imports)", [], |r| r.get::<_, bool>(0))
        .map_err(StoreError::db("reading the imports"))
}

/// Puts the writer back in WAL mode after a first import's rollback journal
/// ([`Store::first_import_journal`]); a store that cannot go back is an error, since the
/// server's readers rely on WAL.
fn wal_again(c: &rusqlite::Connection, path: &Path) -> Result<()> {
    let mode: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(StoreError::db("switching back to WAL after the first import"))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Open {
            path: path.to_path_buf(),
            message: format!(
                "SQLite could not switch back to WAL mode after the first import (journal_mode is {mode})"
            ),
        })
    }
}

/// Gives the import's page cache back to the system. SQLite frees the pages when the cache
/// is made small again (after the import), into the C allocator (SQLite's, not the program's),
/// which keeps them in its heap: 0.37 GB after the bundled Gansu's first import, about 0.7 GB
/// after the country's, held for as long as `serve` then runs. glibc returns the free pages of
/// its heap when asked to trim it (at Gansu's first start: 0.75 GB resident when ready
/// without, 0.40 GB with, as after a restart); elsewhere nothing is done.
fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only hands free pages of glibc's heap back to the system (madvise);
    // no memory in use is touched and no pointer is given or taken.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Page cache of an import, KiB (SQLite's negative `cache_size`): 512 MiB.
const IMPORT_CACHE_KIB: i64 = -512 * 1024;

/// A folder's service history for its import: read already, or the files to read (each with
/// its SHA-256, hex, computed for the import's fingerprint), read in the import's transaction
/// and, on a first import, streamed into the store ([`Streamed`]).
enum History<'a> {
    /// Read already.
    Read(&'a FolderHistory),
    /// To read.
    Files(&'a FolderFiles),
}

/// A folder's `contacts.csv` and `needs.csv` (those present) with their SHA-256 (hex).
struct FolderFiles {
    contacts: Option<(std::path::PathBuf, String)>,
    needs: Option<(std::path::PathBuf, String)>,
}

/// A file of service records as its import's transaction takes it: streamed, or read whole
/// (the store holds records of its kind already, which its rows are compared with).
enum Taken<'a, R> {
    Streamed(Streamed<'a>),
    Read(RecordSource, Vec<R>),
}

/// True when the store holds a row of `table`.
fn any_in(tx: &Transaction<'_>, table: &str) -> Result<bool> {
    tx.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| r.get(0))
        .map_err(StoreError::db(format!("reading {table}")))
}

/// The folder's service history as the transaction takes it (see [`Taken`]), its rejects
/// appended to `rejects`, contacts first.
#[allow(clippy::type_complexity)]
fn take_history<'a>(
    files: &'a FolderFiles,
    (stream_contacts, stream_needs): (bool, bool),
    ids: &HouseholdIds<'_>,
    rejects: &mut Vec<Reject>,
) -> Result<(Option<Taken<'a, LedgerRow>>, Option<Taken<'a, NeedRow>>)> {
    let contacts = match &files.contacts {
        None => None,
        Some((path, sha)) if stream_contacts => {
            Some(Taken::Streamed(Streamed::contacts(path, sha.clone(), ids, rejects)?))
        }
        Some((path, sha)) => {
            let before = rejects.len();
            let mut rows = Vec::new();
            each_ledger_row(path, ids, rejects, |r| {
                rows.push(r);
                Ok::<_, std::convert::Infallible>(())
            })?
            .unwrap_or_else(|never| match never {});
            Some(Taken::Read(RecordSource::named(path, sha.clone(), rejects.len() - before), rows))
        }
    };
    let needs = match &files.needs {
        None => None,
        Some((path, sha)) if stream_needs => Some(Taken::Streamed(Streamed::needs(path, sha.clone(), ids, rejects)?)),
        Some((path, sha)) => {
            let before = rejects.len();
            let mut rows = Vec::new();
            each_need_row(path, ids, rejects, |r| {
                rows.push(r);
                Ok::<_, std::convert::Infallible>(())
            })?
            .unwrap_or_else(|never| match never {});
            Some(Taken::Read(RecordSource::named(path, sha.clone(), rejects.len() - before), rows))
        }
    };
    Ok((contacts, needs))
}

/// Runs `f` (a first import's streamed records) with the indexes `names` dropped, and makes
/// them again after it from their own definitions, in the caller's transaction: SQLite builds
/// an index over the rows there are (a sort) faster than it keeps one up to date row by row
/// (a national folder's 144 million contacts), and the store ends with the same indexes, or,
/// when the transaction does not commit, as it was.
fn with_indexes_built_after<T>(tx: &Transaction<'_>, names: &[&str], f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut made = Vec::with_capacity(names.len());
    for name in names {
        let sql: String = tx
            .query_row("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1", [name], |r| r.get(0))
            .map_err(StoreError::db(format!("reading index {name}")))?;
        tx.execute_batch(&format!("DROP INDEX \"{name}\""))
            .map_err(StoreError::db(format!("dropping index {name}")))?;
        made.push((name, sql));
    }
    let done = f()?;
    for (name, sql) in made {
        tx.execute_batch(&sql).map_err(StoreError::db(format!("building index {name}")))?;
    }
    Ok(done)
}

/// The writes of [`Store::import_dataset_with`], in one transaction.
fn import_in(c: &mut rusqlite::Connection, ds: &Dataset, digest: &str, history: History<'_>) -> Result<ImportReport> {
    let tx =
        c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::db("starting the import"))?;
    let mut rep = ImportReport { files_sha256: digest.to_string(), rejects: ds.rejects.clone(), ..Default::default() };
    match history {
        History::Read(history) => {
            import_stations(&tx, ds, &mut rep)?;
            import_households(&tx, ds, &mut rep)?;
            import_grids(&tx, ds, &mut rep)?;
            if let Some((source, rows)) = &history.contacts {
                rep.contacts = Some(contacts_in(&tx, &Actor::Import, source, rows, Named::JustImported)?);
            }
            if let Some((source, rows)) = &history.needs {
                rep.needs = Some(needs_in(&tx, &Actor::Import, source, rows, Named::JustImported)?);
            }
        }
        History::Files(files) => {
            let stream = (!any_in(&tx, "visits")?, !any_in(&tx, "needs")?);
            let ids = HouseholdIds::new(&ds.households);
            // The files are read (counted, when streamed) while the folder's stations,
            // households and grids are written.
            let mut rejects = Vec::new();
            let (taken, written) = std::thread::scope(|s| {
                let reading = s.spawn(|| take_history(files, stream, &ids, &mut rejects));
                let written = import_stations(&tx, ds, &mut rep)
                    .and_then(|()| import_households(&tx, ds, &mut rep))
                    .and_then(|()| import_grids(&tx, ds, &mut rep));
                (reading.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), written)
            });
            let (contacts, needs) = taken?;
            written?;
            rep.rejects.extend(rejects);
            rep.contacts = match contacts {
                None => None,
                Some(Taken::Streamed(f)) => Some(with_indexes_built_after(&tx, &["visits_household"], || {
                    contacts_streamed(&tx, &Actor::Import, &f, &ids)
                })?),
                Some(Taken::Read(source, rows)) => {
                    Some(contacts_in(&tx, &Actor::Import, &source, &rows, Named::JustImported)?)
                }
            };
            rep.needs = match needs {
                None => None,
                Some(Taken::Streamed(f)) => {
                    Some(with_indexes_built_after(&tx, &["needs_household", "need_changes_need"], || {
                        needs_streamed(&tx, &Actor::Import, &f, &ids)
                    })?)
                }
                Some(Taken::Read(source, rows)) => {
                    Some(needs_in(&tx, &Actor::Import, &source, &rows, Named::JustImported)?)
                }
            };
        }
    }
    tx.execute("DELETE FROM import_rejects", []).map_err(StoreError::db("replacing the rejects"))?;
    {
        let mut st = tx
            .prepare("INSERT INTO import_rejects (file, row, record_id, reason) VALUES (?1, ?2, ?3, ?4)")
            .map_err(StoreError::db("storing the rejects"))?;
        for r in &rep.rejects {
            st.execute(params![r.file, r.row as i64, r.id, r.reason]).map_err(StoreError::db("storing a reject"))?;
        }
    }
    let summary = json!({
        "added": rep.added, "updated": rep.updated, "removed": rep.removed, "same": rep.same,
        "contacts": rep.contacts, "needs": rep.needs, "rejects": rep.rejects.len(),
    });
    tx.execute("INSERT INTO imports (files_sha256, summary) VALUES (?1, ?2)", params![digest, summary.to_string()])
        .map_err(StoreError::db("recording the import"))?;
    tx.commit().map_err(StoreError::db("committing the import"))?;
    Ok(rep)
}

impl Store {
    /// True when the store holds an import.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn is_imported(&self) -> Result<bool> {
        self.read(imported)
    }

    /// The data set to serve: the folder's reference data (config, divisions, boundaries) with
    /// the store's stations (as edited: moved, added, closed — in store order, see
    /// [`Store::stations`]), households (those present) and grids, and the last import's
    /// rejects. A store never imported is imported from `dir` first.
    ///
    /// # Errors
    /// [`StoreError::Ingest`] when the folder's reference files cannot be read;
    /// [`StoreError::Invalid`] when a stored code is not among the folder's divisions (the
    /// folder changed since the import: run `gridcover import` again); [`StoreError::Db`].
    pub fn load_dataset(&self, dir: &Path) -> Result<Dataset> {
        self.load_dataset_with(dir, crate::ingest::ReadOptions::ALL)
    }

    /// As [`Store::load_dataset`], the households' names and addresses only if `opts` asks
    /// for them (the server reads them from the store per page: [`Store::names_and_addresses`]).
    ///
    /// # Errors
    /// As [`Store::load_dataset`].
    pub fn load_dataset_with(&self, dir: &Path, opts: crate::ingest::ReadOptions) -> Result<Dataset> {
        if !self.is_imported()? {
            self.import(dir)?;
        }
        let config = read_config(dir)?;
        let mut rejects = Vec::new();
        let mut notes = Vec::new();
        let divisions = read_divisions(&dir.join("divisions.csv"), &mut rejects)?;
        let unit = |code: &str| {
            divisions.find(code).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "the store names admin code {code}, which is not among {}'s divisions; run `gridcover import --data {}` again",
                    dir.display(),
                    dir.display()
                ))
            })
        };
        // The boundaries (a file), the households (the store, or their snapshot) and the
        // stations and grids (the store) are read side by side; a missing or stale snapshot of
        // the households is written while the others are read.
        let (boundaries, households, (stations, grids)) = std::thread::scope(|s| {
            let boundaries = s.spawn(|| {
                let (mut rejects, mut notes) = (Vec::new(), Vec::new());
                let b = read_boundaries(
                    &dir.join("boundaries.geojson"),
                    &config.crs.boundaries,
                    &divisions,
                    &mut rejects,
                    &mut notes,
                );
                b.map(|b| (b, rejects, notes))
            });
            let rest = s.spawn(|| Ok::<_, StoreError>((self.load_stations(&unit)?, self.load_grids(&unit)?)));
            let (households, snapshot) = self.households_to_load(&divisions, opts, &unit)?;
            if let Some(cache) = &snapshot {
                cache.save(&households, &divisions, &self.inner.path);
            }
            let boundaries = boundaries.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            let rest = rest.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            Ok::<_, StoreError>((boundaries, households, rest))
        })?;
        let (boundaries, boundary_rejects, boundary_notes) = boundaries;
        rejects.extend(boundary_rejects);
        notes.extend(boundary_notes);
        let stored_rejects = self.read(|c| {
            c.prepare("SELECT file, row, record_id, reason FROM import_rejects ORDER BY rowid")
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        Ok(Reject {
                            file: r.get(0)?,
                            row: r.get::<_, i64>(1)? as usize,
                            id: r.get(2)?,
                            reason: r.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
                })
                .map_err(StoreError::db("reading the rejects"))
        })?;
        // Rejects of divisions and boundaries come from reading them now; the others from the import.
        let mut all_rejects = rejects;
        let reread: std::collections::HashSet<&str> = ["divisions.csv", "boundaries.geojson"].into_iter().collect();
        all_rejects.extend(stored_rejects.into_iter().filter(|r| !reread.contains(r.file.as_str())));
        Ok(Dataset {
            divisions: divisions.into(),
            boundaries: boundaries.into(),
            stations,
            households,
            grids: grids.into(),
            privacy: config.policy().map_err(|m| StoreError::Invalid(format!("gridcover.toml: {m}")))?,
            standard: config.standard,
            service: config.service,
            rejects: all_rejects,
            notes,
        })
    }

    /// The households' cells at `resolution` ([`crate::privacy::groups::household_cells`] of
    /// `hh`): as kept beside the store for the same positions (in any state of any store) when
    /// they are there, whole and `usable`
    /// ([`crate::privacy::groups::cells_of_resolution`]); else found by `find` and kept for
    /// the next start (a failure to write them is a note on stderr).
    pub fn household_cells(
        &self,
        hh: &Households,
        resolution: u8,
        usable: impl FnOnce(&[u64]) -> bool,
        find: impl FnOnce() -> Vec<u64>,
    ) -> Vec<u64> {
        let cache = CellCache::new(&self.inner.path, hh, resolution);
        if let Some(kept) = cache.load(hh.len()).filter(|c| usable(c)) {
            return kept;
        }
        let cells = find();
        cache.save(&cells, &self.inner.path);
        cells
    }

    /// The kept parts of the assignment of `ds` (a data set this store gave) beside the store:
    /// [`super::AssignmentCache::load`] reads those kept for `ds`'s inputs, [`super::AssignmentCache::save`]
    /// keeps the others once made.
    pub fn assignment_cache(&self, ds: &Dataset) -> super::AssignmentCache {
        super::AssignmentCache::new(&self.inner.path, ds)
    }

    /// The store's stations (as edited), with their codes matched by `unit`.
    fn load_stations(&self, unit: &(dyn Fn(&str) -> Result<UnitIdx> + Sync)) -> Result<Stations> {
        let mut stations = Stations::default();
        for s in self.stations()? {
            let i = stations.push(StationRow {
                id: s.id,
                name: s.name,
                level: s.level,
                unit: unit(&s.code)?,
                lon: s.lon,
                lat: s.lat,
                demonstration: s.demonstration,
                mobile: s.mobile,
                radius_m: s.radius_m,
            });
            stations.active[i as usize] = s.active;
        }
        Ok(stations)
    }

    /// The store's grids present, in store order, with their codes matched by `unit`.
    fn load_grids(&self, unit: &(dyn Fn(&str) -> Result<UnitIdx> + Sync)) -> Result<Grids> {
        self.read(|c| {
            let mut out = Grids::default();
            let mut st = c
                .prepare("SELECT id, worker, code, geometry FROM grids WHERE present = 1 ORDER BY seq")
                .map_err(StoreError::db("reading grids"))?;
            // A row at a time: the country's grids' GeoJSON text is never all in memory.
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(StoreError::db("reading grids"))?;
            for row in rows {
                let (id, worker, code, geometry): (String, String, Option<String>, String) =
                    row.map_err(StoreError::db("reading grids"))?;
                let g = geometry_from_json(&geometry)
                    .map_err(|e| StoreError::Invalid(format!("grid {id}: stored geometry unreadable: {e}")))?;
                out.unit.push(code.as_deref().map(unit).transpose()?);
                out.id.push(id);
                out.worker.push(worker);
                out.geometry.push(g);
            }
            Ok(out)
        })
    }

    /// The households present, in store order, with their codes matched by `unit`: without
    /// names and addresses (unless `opts` asks for them), from the snapshot of this store state
    /// when there is one ([`HouseholdCache`]), else from the store, with the snapshot to write
    /// (`Some`) when this read can make one.
    fn households_to_load(
        &self,
        divisions: &Divisions,
        opts: crate::ingest::ReadOptions,
        unit: &(dyn Fn(&str) -> Result<UnitIdx> + Sync),
    ) -> Result<(Households, Option<HouseholdCache>)> {
        let snapshot = !opts.names_and_addresses;
        if snapshot {
            let imports: Option<String> = self
                .read(|c| c.query_row(IMPORTS_KEY, [], |r| r.get(0)).map_err(StoreError::db("reading the imports")))?;
            if let Some(hh) = imports.and_then(|k| HouseholdCache::new(&self.inner.path, &k).load(divisions)) {
                return Ok((hh, None));
            }
        }
        self.read(|c| {
            // One read transaction: the households and the imports that made them, of one moment.
            let tx = c.unchecked_transaction().map_err(StoreError::db("starting a read"))?;
            let imports: Option<String> =
                tx.query_row(IMPORTS_KEY, [], |r| r.get(0)).map_err(StoreError::db("reading the imports"))?;
            // Each row's text is read in place (no `String` per field) straight into the
            // columns, and the columns are trimmed to their length at the end.
            let mut out = Households::default();
            let personal = if opts.names_and_addresses { "name, address" } else { "NULL, NULL" };
            let mut st = tx
                .prepare(&format!(
                    "SELECT id, lon, lat, veterans, code, difficulty, martyr_family, {personal}
                     FROM households WHERE present = 1 ORDER BY seq",
                ))
                .map_err(StoreError::db("reading households"))?;
            let mut rows = st.query([]).map_err(StoreError::db("reading households"))?;
            let text = super::text_in_place;
            let db = || StoreError::db("reading a household");
            while let Some(r) = rows.next().map_err(StoreError::db("reading households"))? {
                let id = text(r, 0)
                    .and_then(|id| {
                        id.ok_or(rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Null))
                    })
                    .map_err(db())?;
                let code = text(r, 4).map_err(db())?.map(unit).transpose()?;
                out.id.push(id);
                out.lon.push(r.get(1).map_err(db())?);
                out.lat.push(r.get(2).map_err(db())?);
                out.veterans.push(r.get(3).map_err(db())?);
                out.code.push(code);
                out.difficulty.push(r.get(5).map_err(db())?);
                out.martyr_family.push(r.get(6).map_err(db())?);
                out.name.push(text(r, 7).map_err(db())?);
                out.address.push(text(r, 8).map_err(db())?);
            }
            out.shrink_to_fit();
            let cache = imports.filter(|_| snapshot).map(|k| HouseholdCache::new(&self.inner.path, &k));
            Ok((out, cache))
        })
    }

    /// Opens the store of `dir` and loads the data set to serve from it (importing the folder
    /// first when the store is new); see [`Store::load_dataset`].
    ///
    /// # Errors
    /// As [`Store::open`] and [`Store::load_dataset`].
    pub fn open_dataset(dir: &Path) -> Result<(Store, Dataset)> {
        let store = Store::open(dir)?;
        let ds = store.load_dataset(dir)?;
        Ok((store, ds))
    }
}

/// Writes the imported `rec` over the stored `before` as its next version, with the input's
/// hash, and keeps the change in the history.
fn reimport_station(tx: &Transaction<'_>, before: StationRecord, rec: StationRecord, hash: &[u8]) -> Result<()> {
    let after = StationRecord { version: before.version + 1, ..rec };
    write_station(tx, &after, before.version)?;
    tx.execute("UPDATE stations SET import_sha256 = ?1 WHERE id = ?2", params![hash, after.id])
        .map_err(StoreError::db("updating a station"))?;
    let (b, a) = (serde_json::to_value(&before), serde_json::to_value(&after));
    append_history(
        tx,
        &Actor::Import,
        "station",
        &after.id,
        "reimport",
        Some(after.version),
        b.ok().as_ref(),
        a.ok().as_ref(),
    )
}

fn import_stations(tx: &Transaction<'_>, ds: &Dataset, rep: &mut ImportReport) -> Result<()> {
    let mut existing: HashMap<String, Vec<u8>> = HashMap::new();
    {
        let mut st = tx
            .prepare("SELECT id, import_sha256 FROM stations WHERE import_sha256 IS NOT NULL")
            .map_err(StoreError::db("reading stations"))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(StoreError::db("reading stations"))?;
        for row in rows {
            let (id, h): (String, Vec<u8>) = row.map_err(StoreError::db("reading stations"))?;
            existing.insert(id, h);
        }
    }
    for i in 0..ds.stations.len() {
        let rec = station_record(ds, ds.stations.row(i as u32));
        let h = station_hash(&rec);
        match existing.remove(&rec.id) {
            Some(old) if old == h => rep.same[0] += 1,
            Some(_) => {
                let before = station_row(tx, &rec.id)?.expect("listed above");
                reimport_station(tx, before, rec, &h)?;
                rep.updated[0] += 1;
            }
            // A station of the same id added through the server: the import takes it over.
            None => match station_row(tx, &rec.id)? {
                Some(before) => {
                    reimport_station(tx, before, rec, &h)?;
                    rep.updated[0] += 1;
                }
                None => {
                    insert_station(tx, &rec, Some(&h))?;
                    rep.added[0] += 1;
                }
            },
        }
    }
    // Imported stations gone from the input: closed.
    let mut gone: Vec<String> = existing.into_keys().collect();
    gone.sort();
    for id in gone {
        let before = station_row(tx, &id)?.expect("listed above");
        if before.active {
            let after = StationRecord { active: false, version: before.version + 1, ..before.clone() };
            write_station(tx, &after, before.version)?;
            let (b, a) = (serde_json::to_value(&before), serde_json::to_value(&after));
            append_history(
                tx,
                &Actor::Import,
                "station",
                &id,
                "removed",
                Some(after.version),
                b.ok().as_ref(),
                a.ok().as_ref(),
            )?;
            rep.removed[0] += 1;
        }
        tx.execute("UPDATE stations SET import_sha256 = NULL WHERE id = ?1", [&id])
            .map_err(StoreError::db("updating a station"))?;
    }
    Ok(())
}

/// A household's columns as `import_households`' insert and update take them (`?1` to `?10`:
/// id, lon, lat, veterans, code, difficulty, martyr_family, name, address, import_sha256).
fn household_columns<'a>(
    id: &'a &'a str,
    f: &'a HouseholdFields<'_>,
    sha256: &'a [u8; 32],
) -> [&'a dyn rusqlite::ToSql; 10] {
    [id, &f.lon, &f.lat, &f.veterans, &f.code, &f.difficulty, &f.martyr_family, &f.name, &f.address, sha256]
}

fn import_households(tx: &Transaction<'_>, ds: &Dataset, rep: &mut ImportReport) -> Result<()> {
    let mut existing: HashMap<String, (Vec<u8>, bool, i64)> = HashMap::new();
    {
        let mut st = tx
            .prepare("SELECT id, import_sha256, present, version FROM households")
            .map_err(StoreError::db("reading households"))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
            .map_err(StoreError::db("reading households"))?;
        for row in rows {
            let (id, v): (String, (Vec<u8>, bool, i64)) = row.map_err(StoreError::db("reading households"))?;
            existing.insert(id, v);
        }
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO households (id, lon, lat, veterans, code, difficulty, martyr_family, name, address, import_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(StoreError::db("storing households"))?;
    let mut update = tx
        .prepare_cached(
            "UPDATE households SET lon = ?2, lat = ?3, veterans = ?4, code = ?5, difficulty = ?6, martyr_family = ?7,
             name = ?8, address = ?9, import_sha256 = ?10, present = 1, version = ?11 WHERE id = ?1",
        )
        .map_err(StoreError::db("updating households"))?;
    let hh = &ds.households;
    let mut buf = Vec::with_capacity(256);
    for i in 0..hh.len() {
        let id = &hh.id[i];
        let fields = HouseholdFields::of(ds, i);
        let h = fields.sha256(&mut buf);
        match existing.remove(id) {
            Some((old, true, _)) if old == h => rep.same[1] += 1,
            Some((old, present, version)) => {
                let before: Value = tx
                    .query_row(
                        "SELECT json_object('lon', lon, 'lat', lat, 'veterans', veterans, 'code', code,
                         'difficulty', json(CASE difficulty WHEN 1 THEN 'true' ELSE 'false' END),
                         'martyr_family', json(CASE martyr_family WHEN 1 THEN 'true' ELSE 'false' END),
                         'name', name, 'address', address) FROM households WHERE id = ?1",
                        [id],
                        |r| r.get::<_, String>(0),
                    )
                    .map_err(StoreError::db("reading a household"))
                    .map(|s| serde_json::from_str(&s).unwrap_or(Value::Null))?;
                let changed = old != h;
                let version = if changed { version + 1 } else { version };
                let columns = household_columns(&id, &fields, &h).into_iter();
                update
                    .execute(rusqlite::params_from_iter(columns.chain([&version as &dyn rusqlite::ToSql])))
                    .map_err(StoreError::db(format!("updating household {id}")))?;
                let action = if present { "reimport" } else { "restored" };
                append_history(
                    tx,
                    &Actor::Import,
                    "household",
                    id,
                    action,
                    Some(version),
                    Some(&before),
                    Some(&fields.json()),
                )?;
                rep.updated[1] += 1;
            }
            None => {
                insert
                    .execute(rusqlite::params_from_iter(household_columns(&id, &fields, &h)))
                    .map_err(|e| StoreError::db(format!("storing household {id}"))(e))?;
                rep.added[1] += 1;
            }
        }
    }
    let mut gone: Vec<(String, i64)> =
        existing.into_iter().filter(|(_, (_, present, _))| *present).map(|(id, (_, _, v))| (id, v)).collect();
    gone.sort();
    for (id, version) in gone {
        tx.execute("UPDATE households SET present = 0 WHERE id = ?1", [&id])
            .map_err(StoreError::db("marking a household removed"))?;
        append_history(tx, &Actor::Import, "household", &id, "removed", Some(version), None, None)?;
        rep.removed[1] += 1;
    }
    Ok(())
}

fn import_grids(tx: &Transaction<'_>, ds: &Dataset, rep: &mut ImportReport) -> Result<()> {
    let grids = &ds.grids;
    let mut existing: HashMap<String, (Vec<u8>, bool)> = HashMap::new();
    {
        let mut st =
            tx.prepare("SELECT id, import_sha256, present FROM grids").map_err(StoreError::db("reading grids"))?;
        let rows =
            st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))).map_err(StoreError::db("reading grids"))?;
        for row in rows {
            let (id, v): (String, (Vec<u8>, bool)) = row.map_err(StoreError::db("reading grids"))?;
            existing.insert(id, v);
        }
    }
    for i in 0..grids.len() {
        let id = &grids.id[i];
        let geometry = geometry_text(&grids.geometry[i]);
        let code = grids.unit[i].map(|u| ds.divisions.get(u).code.as_str());
        let fields =
            json!({"worker": grids.worker[i], "code": code, "geometry_sha256": hex(&sha256(geometry.as_bytes()))});
        let h = sha256(fields.to_string().as_bytes());
        match existing.remove(id) {
            Some((old, true)) if old == h => rep.same[2] += 1,
            Some((_, present)) => {
                tx.execute(
                    "UPDATE grids SET worker = ?2, code = ?3, geometry = ?4, import_sha256 = ?5, present = 1 WHERE id = ?1",
                    params![id, grids.worker[i], code, geometry, &h[..]],
                )
                .map_err(StoreError::db(format!("updating grid {id}")))?;
                let action = if present { "reimport" } else { "restored" };
                append_history(tx, &Actor::Import, "grid", id, action, None, None, Some(&fields))?;
                rep.updated[2] += 1;
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO grids (id, worker, code, geometry, import_sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| st.execute(params![id, grids.worker[i], code, geometry, &h[..]]))
                .map_err(|e| StoreError::db(format!("storing grid {id}"))(e))?;
                rep.added[2] += 1;
            }
        }
    }
    let mut gone: Vec<String> = existing.into_iter().filter(|(_, (_, p))| *p).map(|(id, _)| id).collect();
    gone.sort();
    for id in gone {
        tx.execute("UPDATE grids SET present = 0 WHERE id = ?1", [&id])
            .map_err(StoreError::db("marking a grid removed"))?;
        append_history(tx, &Actor::Import, "grid", &id, "removed", None, None, None)?;
        rep.removed[2] += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use geo::{Coord, LineString, MultiPolygon, Polygon};

    use super::{geometry_json, geometry_text, household_json, household_row, HouseholdFields};
    use crate::model::HouseholdRow;

    #[test]
    fn a_geometrys_text_is_that_of_its_json_value() {
        let ls = |v: &[(f64, f64)]| LineString(v.iter().map(|&(x, y)| Coord { x, y }).collect());
        let mp = MultiPolygon(vec![
            Polygon::new(
                ls(&[(103.123456789012, 36.1), (104.0, 36.0), (1e-7, -0.0), (103.123456789012, 36.1)]),
                vec![ls(&[(103.5, 36.05), (103.6, 36.05), (103.55, 36.07), (103.5, 36.05)])],
            ),
            Polygon::new(ls(&[(1.0 / 3.0, 2.0 / 3.0), (180.0, -90.0), (1.0 / 3.0, 2.0 / 3.0)]), vec![]),
            Polygon::new(LineString(vec![]), vec![]),
        ]);
        assert_eq!(geometry_text(&mp), geometry_json(&mp).to_string());
        assert_eq!(geometry_text(&MultiPolygon(vec![])), "[]");
    }

    #[test]
    fn a_households_fields_hash_the_text_of_its_json_value() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small");
        let mut ds = crate::ingest::read_data_folder(&dir).unwrap();
        let n = ds.households.len();
        assert!(n > 0);
        let unit = ds.households.code.iter().flatten().next();
        assert!(unit.is_some(), "the fixture gives some household a code");
        let odd = [
            ("a \"quoted\" \\ name\n\t\u{1}", "甘肃省兰州市城关区 1号 🏠", 103.123456789012, 36.1, unit),
            ("", "", -0.0, 1e-7, None),
            ("张三", "\u{7f}\u{2028}</script>", 1.0 / 3.0, -89.99999999999999, unit),
        ];
        for (k, (name, address, lon, lat, code)) in odd.into_iter().enumerate() {
            ds.households.push(HouseholdRow {
                id: format!("odd-{k}"),
                lon,
                lat,
                veterans: 7 + k as u32,
                code,
                difficulty: k % 2 == 0,
                martyr_family: k == 1,
                name: (k != 1).then(|| name.to_string()),
                address: (k != 2).then(|| address.to_string()),
            });
        }
        let mut buf = Vec::new();
        for i in 0..ds.households.len() {
            let want = household_json(&ds, &household_row(&ds.households, i));
            let fields = HouseholdFields::of(&ds, i);
            assert_eq!(fields.json(), want);
            let h = fields.sha256(&mut buf);
            assert_eq!(String::from_utf8(buf.clone()).unwrap(), want.to_string(), "household {i}");
            assert_eq!(h, crate::store::sha256(want.to_string().as_bytes()));
        }
    }
}
