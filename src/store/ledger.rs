//! Service records imported from files: a station's ledger of contacts (台账, `gridcover
//! contacts import`) and a data folder's own `contacts.csv` and `needs.csv` (brought in by the
//! folder's import, [`Store::import`]).
//!
//! An import is one transaction and is idempotent by content: a contact whose household, day,
//! kind and note are those of a contact already in the store (recorded through the server or
//! imported before) is not added again. Identical rows are counted, not merged: a file with the
//! same contact twice adds the second only when the store holds fewer than two such contacts, so
//! importing a file again adds nothing, and the store's contacts equal the file's. A need is
//! matched on its household, category, day raised and note in the same way; a need already there
//! is left as it is (later changes of its status are recorded through the server).
//!
//! Imported contacts and needs are recorded by the system user `import` (migration 5; it holds
//! no token) or by the user given, with one audit entry per import (`contacts.import`,
//! `needs.import`, naming the file) and one row of `record_imports` (who, when, file, SHA-256,
//! added, already there, rejected, the ids of the records added and where the import stands
//! in the history), which is the import's one entry in the trail.
//!
//! # Compact history (store version 6)
//! An imported record has no history row of its own (at national scale, 144 million contacts,
//! one JSON row each made the store ten times the size of the records): each visit, need and
//! need change names its import (`import_id`), and [`Store::history`] of a household makes
//! the `visit` and `need` entries from the records and their import, as the rows held them
//! (actor `import` or the importing user, the visit, the need with the changes it was imported
//! with, the household's version), with [`HistoryEntry::import`] naming the import. The ids an
//! import adds follow one another (checked as they are written), so `first_id..=last_id` finds
//! them too. Records imported before version 6 keep their history rows; records written through
//! the server keep theirs.

use std::collections::HashSet;

use rusqlite::{params, Connection, Transaction};
use serde::Serialize;
use serde_json::json;

use super::records::{commit, contact_kind, immediate, json as to_json, Actor, HistoryEntry, Visit};
use super::service::imported_needs;
use super::{hex, sha256_file, Result, Store, StoreError};
use crate::ingest::service::{each_ledger_row, each_need_row, HouseholdIds, LedgerRow, NeedRow};
use crate::model::service::format_day;

/// The file imported records come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordSource {
    /// Its name, as the rejects and the record of the import name it.
    pub file: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Rows of it set aside while reading.
    pub rejected: usize,
}

impl RecordSource {
    /// The source of the file at `path` (its name and the SHA-256 of its bytes).
    ///
    /// # Errors
    /// [`StoreError::Ingest`] when it cannot be read.
    pub fn of_file(path: &std::path::Path, rejected: usize) -> Result<RecordSource> {
        let digest =
            sha256_file(path).map_err(|source| crate::ingest::IngestError::Io { path: path.to_path_buf(), source })?;
        Ok(RecordSource::named(path, hex(&digest), rejected))
    }

    /// The source of the file at `path` whose SHA-256 (hex) is known already.
    pub(crate) fn named(path: &std::path::Path, sha256: String, rejected: usize) -> RecordSource {
        let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        RecordSource { file, sha256, rejected }
    }
}

/// What an import of service records did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RecordsImported {
    /// Records added.
    pub added: usize,
    /// Records of the file already in the store (not added again).
    pub same: usize,
    /// Rows of the file set aside while reading.
    pub rejected: usize,
}

/// The user id and name imported records are recorded with.
fn recorder(tx: &Transaction<'_>, actor: &Actor) -> Result<(i64, String)> {
    match actor {
        Actor::User { id, name } => Ok((*id, name.clone())),
        Actor::Import => tx
            .query_row("SELECT id, name FROM users WHERE system = 1 AND name = 'import' ORDER BY id LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(StoreError::db("finding the system user import")),
    }
}

/// The households present in the store.
fn present_households(tx: &Transaction<'_>) -> Result<HashSet<String>> {
    let mut st =
        tx.prepare("SELECT id FROM households WHERE present = 1").map_err(StoreError::db("reading households"))?;
    let rows = st.query_map([], |r| r.get(0)).map_err(StoreError::db("reading households"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(StoreError::db("reading households"))
}

/// Which households an import's rows may name.
pub(crate) enum Households {
    /// Those present in the store (a ledger read against the store's households earlier, in
    /// another transaction): checked.
    Present,
    /// The rows were read against the households this same transaction has just imported (a
    /// data folder's own `contacts.csv` and `needs.csv`): every one is present.
    JustImported,
}

/// Households with at least one record in `table` (visits or needs): only theirs need looking up.
fn households_with(tx: &Transaction<'_>, table: &str) -> Result<HashSet<String>> {
    let mut st = tx
        .prepare(&format!("SELECT DISTINCT household_id FROM {table}"))
        .map_err(StoreError::db(format!("reading {table}")))?;
    let rows = st.query_map([], |r| r.get(0)).map_err(StoreError::db(format!("reading {table}")))?;
    rows.collect::<rusqlite::Result<_>>().map_err(StoreError::db(format!("reading {table}")))
}

/// Which rows to add: rows of equal content (`key`) are a group, and a group adds the rows
/// beyond the `stored(first row)` records of that content the store holds already (the later
/// ones, in file order). With nothing stored yet (`none_stored`: a first import) that is every
/// row, found without sorting them.
fn to_add<'a, T, K: Ord>(
    rows: &'a [T],
    none_stored: bool,
    key: impl Fn(&'a T) -> K,
    mut stored: impl FnMut(&T) -> Result<usize>,
) -> Result<Vec<bool>> {
    if none_stored {
        return Ok(vec![true; rows.len()]);
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| key(&rows[a]).cmp(&key(&rows[b])).then(a.cmp(&b)));
    let mut add = vec![false; rows.len()];
    let mut k = 0;
    while k < order.len() {
        let first = &rows[order[k]];
        let mut end = k + 1;
        while end < order.len() && key(&rows[order[end]]) == key(first) {
            end += 1;
        }
        let there = stored(first)?;
        for &i in &order[(k + there).min(end)..end] {
            add[i] = true;
        }
        k = end;
    }
    Ok(add)
}

fn missing(id: &str) -> StoreError {
    StoreError::NotFound { what: "household", id: id.to_string() }
}

/// An import under way: its row of `record_imports` (written first, since its counts are known
/// before any record is written, so that every record can name it), the id its first record
/// gets, and its time (every record's `at`).
struct Started {
    id: i64,
    first_id: i64,
    at: String,
}

/// Records an import in `record_imports` (with the ids its `done.added` records of `table` will
/// have, and its place in the history) and in the audit log.
fn begin_import(
    tx: &Transaction<'_>,
    user: i64,
    what: &str,
    table: &str,
    source: &RecordSource,
    done: &RecordsImported,
) -> Result<Started> {
    let first_id: i64 = tx
        .query_row(&format!("SELECT coalesce(max(id), 0) + 1 FROM {table}"), [], |r| r.get(0))
        .map_err(StoreError::db(format!("reading {table}")))?;
    let (first, last) =
        if done.added > 0 { (Some(first_id), Some(first_id + done.added as i64 - 1)) } else { (None, None) };
    let (id, at) = tx
        .query_row(
            "INSERT INTO record_imports (user_id, what, file, sha256, added, same, rejected, history_seq, first_id, last_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT coalesce(max(id), 0) FROM history), ?8, ?9)
             RETURNING id, at",
            params![
                user,
                what,
                source.file,
                source.sha256,
                done.added as i64,
                done.same as i64,
                done.rejected as i64,
                first,
                last
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(StoreError::db("recording the import"))?;
    tx.execute(
        "INSERT INTO audit (user_id, action, target) VALUES (?1, ?2, ?3)",
        params![user, format!("{what}.import"), source.file],
    )
    .map_err(StoreError::db("appending to the audit log"))?;
    Ok(Started { id, first_id, at })
}

/// Checks that the `k`-th record added (from 0) got the id its import announced.
fn check_id(tx: &Transaction<'_>, started: &Started, k: usize, what: &str) -> Result<()> {
    let got = tx.last_insert_rowid();
    if got == started.first_id + k as i64 {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "import {}: {what} {k} got id {got}, not {}: the ids of an import must follow one another",
            started.id,
            started.first_id + k as i64
        )))
    }
}

/// Imports contacts in the caller's transaction (see the module documentation).
pub(crate) fn contacts_in(
    tx: &Transaction<'_>,
    actor: &Actor,
    source: &RecordSource,
    rows: &[LedgerRow],
    households: Households,
) -> Result<RecordsImported> {
    let (user_id, _) = recorder(tx, actor)?;
    let present = match households {
        Households::Present => Some(present_households(tx)?),
        Households::JustImported => None,
    };
    let visited = households_with(tx, "visits")?;
    let add = {
        let mut count = tx
            .prepare("SELECT count(*) FROM visits WHERE household_id = ?1 AND date = ?2 AND kind = ?3 AND note = ?4")
            .map_err(StoreError::db("reading visits"))?;
        to_add(
            rows,
            visited.is_empty(),
            |r| (r.household_id.as_str(), r.day, r.kind.as_str(), r.note.as_str()),
            |r| {
                if !visited.contains(&r.household_id) {
                    return Ok(0);
                }
                count
                    .query_row(params![r.household_id, format_day(r.day), r.kind.as_str(), r.note], |x| {
                        x.get::<_, i64>(0)
                    })
                    .map(|n| n as usize)
                    .map_err(StoreError::db("reading visits"))
            },
        )?
    };
    let added = add.iter().filter(|&&a| a).count();
    let done = RecordsImported { added, same: rows.len() - added, rejected: source.rejected };
    let started = begin_import(tx, user_id, "contacts", "visits", source, &done)?;
    let mut insert = tx
        .prepare(
            "INSERT INTO visits (household_id, date, kind, note, user_id, at, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(StoreError::db("recording a visit"))?;
    let mut k = 0;
    for (r, add) in rows.iter().zip(add) {
        if !add {
            continue;
        }
        if present.as_ref().is_some_and(|p| !p.contains(&r.household_id)) {
            return Err(missing(&r.household_id));
        }
        insert
            .execute(params![
                r.household_id,
                format_day(r.day),
                r.kind.as_str(),
                r.note,
                user_id,
                started.at,
                started.id
            ])
            .map_err(StoreError::db(format!("recording a visit of household {}", r.household_id)))?;
        check_id(tx, &started, k, "visit")?;
        k += 1;
    }
    Ok(done)
}

/// Imports needs in the caller's transaction (see the module documentation).
pub(crate) fn needs_in(
    tx: &Transaction<'_>,
    actor: &Actor,
    source: &RecordSource,
    rows: &[NeedRow],
    households: Households,
) -> Result<RecordsImported> {
    let (user_id, _) = recorder(tx, actor)?;
    let present = match households {
        Households::Present => Some(present_households(tx)?),
        Households::JustImported => None,
    };
    let with_needs = households_with(tx, "needs")?;
    let opened = |r: &NeedRow| r.need.opened().map(format_day).unwrap_or_default();
    let add = {
        let mut count = tx
            .prepare(
                "SELECT count(*) FROM needs WHERE household_id = ?1 AND category = ?2 AND opened = ?3 AND note = ?4",
            )
            .map_err(StoreError::db("reading needs"))?;
        to_add(
            rows,
            with_needs.is_empty(),
            |r| (r.household_id.as_str(), r.need.category.as_str(), r.need.opened(), r.note.as_str()),
            |r| {
                if !with_needs.contains(&r.household_id) {
                    return Ok(0);
                }
                count
                    .query_row(params![r.household_id, r.need.category.as_str(), opened(r), r.note], |x| {
                        x.get::<_, i64>(0)
                    })
                    .map(|n| n as usize)
                    .map_err(StoreError::db("reading needs"))
            },
        )?
    };
    for (r, _) in rows.iter().zip(&add).filter(|(_, &a)| a) {
        if r.need.changes.is_empty() {
            return Err(StoreError::Invalid(format!("{} row {}: a need without a day raised", source.file, r.line)));
        }
    }
    let added = add.iter().filter(|&&a| a).count();
    let done = RecordsImported { added, same: rows.len() - added, rejected: source.rejected };
    let started = begin_import(tx, user_id, "needs", "needs", source, &done)?;
    let mut insert = tx
        .prepare(
            "INSERT INTO needs (household_id, category, note, status, opened, visit_id, user_id, version, created_at, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9)",
        )
        .map_err(StoreError::db("recording a need"))?;
    let mut change = tx
        .prepare(
            "INSERT INTO need_changes (need_id, date, status, note, user_id, at, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(StoreError::db("recording a need's change"))?;
    let mut k = 0;
    for (r, add) in rows.iter().zip(add) {
        if !add {
            continue;
        }
        if present.as_ref().is_some_and(|p| !p.contains(&r.household_id)) {
            return Err(missing(&r.household_id));
        }
        let status = r.need.changes.last().map(|&(_, s)| s).expect("checked above");
        insert
            .execute(params![
                r.household_id,
                r.need.category.as_str(),
                r.note,
                status.as_str(),
                opened(r),
                user_id,
                r.need.changes.len() as i64,
                started.at,
                started.id
            ])
            .map_err(StoreError::db(format!("recording a need of household {}", r.household_id)))?;
        check_id(tx, &started, k, "need")?;
        let id = started.first_id + k as i64;
        for (j, &(day, st)) in r.need.changes.iter().enumerate() {
            let note = if j == 0 { r.note.as_str() } else { "" };
            change
                .execute(params![id, format_day(day), st.as_str(), note, user_id, started.at, started.id])
                .map_err(StoreError::db("recording a need's change"))?;
        }
        k += 1;
    }
    Ok(done)
}

/// A first import's file of records, streamed into the store instead of read whole first (a
/// national `contacts.csv` holds 144 million contacts: about 11 GB as rows in memory): the file
/// is read twice, first to count what it adds and rejects (beside the import's other writes:
/// the import's row of `record_imports`, which every record names, is written first with its
/// counts), then to write each record as it is read, the reading a chunk ahead of the writing
/// on a thread of its own (contacts [`VISITS_PER_INSERT`] to a statement). Only when the store
/// holds no record of the kind yet (a first import), so that every row the file holds is
/// added, as [`to_add`] would find.
pub(crate) struct Streamed<'a> {
    /// The file.
    pub path: &'a std::path::Path,
    /// Its name and SHA-256, and the rows rejected by the count.
    pub source: RecordSource,
    /// The rows the count found to add.
    pub rows: usize,
}

impl<'a> Streamed<'a> {
    /// Counts the contacts of the ledger at `path` against `ids` (its first reading), with the
    /// file's SHA-256 (hex) as already computed; its rejects are appended to `rejects`.
    ///
    /// # Errors
    /// [`StoreError::Ingest`] when it cannot be read.
    pub(crate) fn contacts(
        path: &'a std::path::Path,
        sha256: String,
        ids: &HouseholdIds<'_>,
        rejects: &mut Vec<crate::model::Reject>,
    ) -> Result<Streamed<'a>> {
        Self::counted(path, sha256, rejects, |rejects, count| each_ledger_row(path, ids, rejects, |_| count()))
    }

    /// Counts the needs of the table at `path`, as [`Streamed::contacts`] counts contacts.
    ///
    /// # Errors
    /// [`StoreError::Ingest`] when it cannot be read.
    pub(crate) fn needs(
        path: &'a std::path::Path,
        sha256: String,
        ids: &HouseholdIds<'_>,
        rejects: &mut Vec<crate::model::Reject>,
    ) -> Result<Streamed<'a>> {
        Self::counted(path, sha256, rejects, |rejects, count| each_need_row(path, ids, rejects, |_| count()))
    }

    /// The file at `path` counted by `read`, which reads its rows (appending its rejects) and
    /// calls `count` for each row to add.
    fn counted(
        path: &'a std::path::Path,
        sha256: String,
        rejects: &mut Vec<crate::model::Reject>,
        read: impl FnOnce(
            &mut Vec<crate::model::Reject>,
            &mut dyn FnMut() -> Result<(), std::convert::Infallible>,
        ) -> Result<Result<(), std::convert::Infallible>, crate::ingest::IngestError>,
    ) -> Result<Streamed<'a>> {
        let before = rejects.len();
        let mut rows = 0;
        read(rejects, &mut || {
            rows += 1;
            Ok(())
        })?
        .unwrap_or_else(|never| match never {});
        Ok(Streamed { path, source: RecordSource::named(path, sha256, rejects.len() - before), rows })
    }
}

/// Rows handed from the reading thread to the writing one at a time.
const CHUNK: usize = 8192;

/// Reads with `read` on a thread of its own, handing its rows a chunk at a time to `write` on
/// this one. An error of `write` stops the reading; the first error (of `write`, else of the
/// reading) is returned.
fn pipelined<R: Send>(
    read: impl FnOnce(&mut dyn FnMut(R) -> Result<(), ()>) -> Result<Result<(), ()>, crate::ingest::IngestError> + Send,
    mut write: impl FnMut(R) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<R>>(4);
        let reader = s.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let done = read(&mut |r| {
                chunk.push(r);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    tx.send(full).map_err(|_| ())?;
                }
                Ok(())
            })?;
            if done.is_ok() && !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            Ok(())
        });
        let mut written = Ok(());
        'all: for chunk in &rx {
            for r in chunk {
                if let Err(e) = write(r) {
                    written = Err(e);
                    break 'all;
                }
            }
        }
        drop(rx);
        let read: Result<(), crate::ingest::IngestError> =
            reader.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        written?;
        Ok(read?)
    })
}

/// The error of a streamed file that gave another count the second time it was read.
fn changed(source: &RecordSource, what: &str, counted: usize, written: usize) -> StoreError {
    StoreError::Invalid(format!(
        "{}: {counted} {what} counted but {written} read to be written: the file changed while it was imported (nothing was imported; import it again)",
        source.file
    ))
}

/// Contacts a first import's stream writes with one statement: SQLite runs a statement's
/// once-only parts — the list of kinds its `CHECK` looks a contact's kind up in, which it builds
/// as a small table of its own and frees again — and its calls once per statement, not per
/// contact.
const VISITS_PER_INSERT: usize = 64;

/// The insert of `n` visits: the recorder, time and import (`?1` to `?3`) shared, then each
/// visit's household, date, kind and note.
fn visits_insert(n: usize) -> String {
    let mut sql = String::from("INSERT INTO visits (household_id, date, kind, note, user_id, at, import_id) VALUES ");
    for k in 0..n {
        let p = 4 + 4 * k;
        let sep = if k == 0 { "" } else { ", " };
        sql.push_str(&format!("{sep}(?{p}, ?{}, ?{}, ?{}, ?1, ?2, ?3)", p + 1, p + 2, p + 3));
    }
    sql
}

/// Writes `rows` with `insert` ([`visits_insert`] of their number), the first of them the
/// `k`-th visit of the import (from 0), and checks their ids.
fn write_visits(
    tx: &Transaction<'_>,
    insert: &mut rusqlite::Statement<'_>,
    rows: &[LedgerRow],
    user_id: i64,
    started: &Started,
    k: usize,
) -> Result<()> {
    let first = || format!("recording a visit of household {}", rows[0].household_id);
    let bind = |insert: &mut rusqlite::Statement<'_>| -> rusqlite::Result<()> {
        insert.raw_bind_parameter(1, user_id)?;
        insert.raw_bind_parameter(2, &started.at)?;
        insert.raw_bind_parameter(3, started.id)?;
        for (j, r) in rows.iter().enumerate() {
            let p = 4 + 4 * j;
            insert.raw_bind_parameter(p, &r.household_id)?;
            insert.raw_bind_parameter(p + 1, format_day(r.day))?;
            insert.raw_bind_parameter(p + 2, r.kind.as_str())?;
            insert.raw_bind_parameter(p + 3, &r.note)?;
        }
        Ok(())
    };
    bind(insert).map_err(|e| StoreError::db(first())(e))?;
    insert.raw_execute().map_err(|e| StoreError::db(first())(e))?;
    // The rows of one statement get ids one after the other: the last one's id checks them all.
    check_id(tx, started, k + rows.len() - 1, "visit")
}

/// Imports a first import's contacts streamed (see [`Streamed`]) in the caller's transaction;
/// the store must hold no visit yet.
pub(crate) fn contacts_streamed(
    tx: &Transaction<'_>,
    actor: &Actor,
    file: &Streamed<'_>,
    ids: &HouseholdIds<'_>,
) -> Result<RecordsImported> {
    let (user_id, _) = recorder(tx, actor)?;
    let source = &file.source;
    let done = RecordsImported { added: file.rows, same: 0, rejected: source.rejected };
    let started = begin_import(tx, user_id, "contacts", "visits", source, &done)?;
    let mut insert = tx.prepare(&visits_insert(VISITS_PER_INSERT)).map_err(StoreError::db("recording a visit"))?;
    let mut k = 0;
    let mut rejects = Vec::new();
    let mut batch: Vec<LedgerRow> = Vec::with_capacity(VISITS_PER_INSERT);
    pipelined(
        |give| each_ledger_row(file.path, ids, &mut rejects, give),
        |r: LedgerRow| {
            batch.push(r);
            if batch.len() == VISITS_PER_INSERT {
                write_visits(tx, &mut insert, &batch, user_id, &started, k)?;
                k += batch.len();
                batch.clear();
            }
            Ok(())
        },
    )?;
    if !batch.is_empty() {
        let mut last = tx.prepare(&visits_insert(batch.len())).map_err(StoreError::db("recording a visit"))?;
        write_visits(tx, &mut last, &batch, user_id, &started, k)?;
        k += batch.len();
    }
    if k != file.rows || rejects.len() != source.rejected {
        return Err(changed(source, "contacts", file.rows, k));
    }
    Ok(done)
}

/// Imports a first import's needs streamed (see [`Streamed`]) in the caller's transaction; the
/// store must hold no need yet.
pub(crate) fn needs_streamed(
    tx: &Transaction<'_>,
    actor: &Actor,
    file: &Streamed<'_>,
    ids: &HouseholdIds<'_>,
) -> Result<RecordsImported> {
    let (user_id, _) = recorder(tx, actor)?;
    let source = &file.source;
    let done = RecordsImported { added: file.rows, same: 0, rejected: source.rejected };
    let started = begin_import(tx, user_id, "needs", "needs", source, &done)?;
    let mut insert = tx
        .prepare(
            "INSERT INTO needs (household_id, category, note, status, opened, visit_id, user_id, version, created_at, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9)",
        )
        .map_err(StoreError::db("recording a need"))?;
    let mut change = tx
        .prepare(
            "INSERT INTO need_changes (need_id, date, status, note, user_id, at, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(StoreError::db("recording a need's change"))?;
    let mut k = 0;
    let mut rejects = Vec::new();
    pipelined(
        |give| each_need_row(file.path, ids, &mut rejects, give),
        |r: NeedRow| {
            let Some(&(_, status)) = r.need.changes.last() else {
                return Err(StoreError::Invalid(format!(
                    "{} row {}: a need without a day raised",
                    source.file, r.line
                )));
            };
            let opened = r.need.opened().map(format_day).unwrap_or_default();
            insert
                .execute(params![
                    r.household_id,
                    r.need.category.as_str(),
                    r.note,
                    status.as_str(),
                    opened,
                    user_id,
                    r.need.changes.len() as i64,
                    started.at,
                    started.id
                ])
                .map_err(|e| StoreError::db(format!("recording a need of household {}", r.household_id))(e))?;
            check_id(tx, &started, k, "need")?;
            let id = started.first_id + k as i64;
            for (j, &(day, st)) in r.need.changes.iter().enumerate() {
                let note = if j == 0 { r.note.as_str() } else { "" };
                change
                    .execute(params![id, format_day(day), st.as_str(), note, user_id, started.at, started.id])
                    .map_err(StoreError::db("recording a need's change"))?;
            }
            k += 1;
            Ok(())
        },
    )?;
    if k != file.rows || rejects.len() != source.rejected {
        return Err(changed(source, "needs", file.rows, k));
    }
    Ok(done)
}

/// Where an imported record stands in the history: the last history row before its import
/// (`history_seq`), the import, and the record's id.
pub(crate) type TrailKey = (i64, i64, i64);

/// A household's history entries made from its imported records (those imported since
/// migration 6, which have no history rows of their own), each with its place in the trail:
/// the last history row before its import, the import, and the record's id (visits before
/// needs within one import: contacts and needs are separate imports anyway).
pub(crate) fn imported_history(c: &Connection, household_id: &str) -> Result<Vec<(TrailKey, HistoryEntry)>> {
    let mut out = Vec::new();
    let actor = |system: bool, id: i64, name: String| (if system { None } else { Some(id) }, name);
    c.prepare_cached(
        "SELECT v.id, v.date, v.kind, v.note, v.user_id, u.name, v.at, v.import_id, i.history_seq, u.system
         FROM visits v JOIN users u ON u.id = v.user_id JOIN record_imports i ON i.id = v.import_id
         WHERE v.household_id = ?1 AND v.import_id IS NOT NULL ORDER BY v.id",
    )
    .and_then(|mut s| {
        let rows = s.query_map([household_id], |r| {
            let id: i64 = r.get(0)?;
            let v = Visit {
                id,
                household_id: household_id.to_string(),
                date: r.get(1)?,
                kind: contact_kind(r, 2)?,
                note: r.get(3)?,
                needs: Vec::new(),
                user_id: r.get(4)?,
                user: r.get(5)?,
                at: r.get(6)?,
            };
            let import: i64 = r.get(7)?;
            let seq: i64 = r.get(8)?;
            let (user_id, name) = actor(r.get(9)?, v.user_id, v.user.clone());
            Ok(((seq, import, id), v.at.clone(), user_id, name, to_json(&v)))
        })?;
        for row in rows {
            let (key, at, user_id, actor, after) = row?;
            out.push((key, entry(key, at, user_id, actor, household_id, "visit", after)));
        }
        Ok(())
    })
    .map_err(StoreError::db("reading imported visits"))?;
    let needs = imported_needs(c, household_id)?;
    for (key, system, n) in needs {
        let (user_id, name) = actor(system, n.user_id, n.user.clone());
        out.push((key, entry(key, n.created_at.clone(), user_id, name, household_id, "need", to_json(&n))));
    }
    Ok(out)
}

fn entry(
    (seq, import, _): TrailKey,
    at: String,
    user_id: Option<i64>,
    actor: String,
    household_id: &str,
    action: &str,
    after: serde_json::Value,
) -> HistoryEntry {
    HistoryEntry {
        seq,
        at,
        user_id,
        actor,
        kind: "household".into(),
        record_id: household_id.to_string(),
        action: action.into(),
        version: None,
        before: None,
        after: Some(after),
        import: Some(import),
    }
}

impl Store {
    /// Imports the contacts of a ledger (`rows`, read with
    /// [`read_ledger`](crate::ingest::service::read_ledger) against the store's households) from
    /// `source`, recorded by `actor` ([`Actor::Import`]: the system user `import`), in one
    /// transaction; a contact already in the store is not added again (see the module
    /// documentation).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a row whose household is not in the store;
    /// [`StoreError::Db`] (rolled back: nothing is added).
    pub fn import_contacts(&self, actor: &Actor, source: &RecordSource, rows: &[LedgerRow]) -> Result<RecordsImported> {
        self.write(|c| {
            let tx = immediate(c)?;
            let done = contacts_in(&tx, actor, source, rows, Households::Present)?;
            commit(tx)?;
            Ok(done)
        })
    }

    /// Imports the needs of a needs table, as [`Store::import_contacts`] imports contacts.
    ///
    /// # Errors
    /// As [`Store::import_contacts`].
    pub fn import_needs(&self, actor: &Actor, source: &RecordSource, rows: &[NeedRow]) -> Result<RecordsImported> {
        self.write(|c| {
            let tx = immediate(c)?;
            let done = needs_in(&tx, actor, source, rows, Households::Present)?;
            commit(tx)?;
            Ok(done)
        })
    }

    /// The ids of the households present in the store, in store order (what a ledger is read
    /// against).
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn household_ids(&self) -> Result<Vec<String>> {
        self.read(|c| {
            c.prepare("SELECT id FROM households WHERE present = 1 ORDER BY seq")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(StoreError::db("reading households"))
        })
    }

    /// The imports of service records, oldest first: what, file, SHA-256, added, already
    /// there, rejected, as JSON objects with `id`, `at` and `user`; since store version 6 also
    /// the ids of the records added (`first_id` to `last_id` of the visits or needs, none when
    /// nothing was added) and `history_seq`, the last history entry before the import (both
    /// none for imports before version 6, whose records have history rows of their own).
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn record_imports(&self) -> Result<Vec<serde_json::Value>> {
        self.read(|c| {
            c.prepare(
                "SELECT i.at, u.name, i.what, i.file, i.sha256, i.added, i.same, i.rejected,
                        i.id, i.first_id, i.last_id, i.history_seq
                 FROM record_imports i JOIN users u ON u.id = i.user_id ORDER BY i.id",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(json!({
                        "at": r.get::<_, String>(0)?, "user": r.get::<_, String>(1)?, "what": r.get::<_, String>(2)?,
                        "file": r.get::<_, String>(3)?, "sha256": r.get::<_, String>(4)?,
                        "added": r.get::<_, i64>(5)?, "same": r.get::<_, i64>(6)?, "rejected": r.get::<_, i64>(7)?,
                        "id": r.get::<_, i64>(8)?, "first_id": r.get::<_, Option<i64>>(9)?,
                        "last_id": r.get::<_, Option<i64>>(10)?, "history_seq": r.get::<_, Option<i64>>(11)?,
                    }))
                })?
                .collect()
            })
            .map_err(StoreError::db("reading the record imports"))
        })
    }
}
