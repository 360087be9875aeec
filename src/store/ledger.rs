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
//! no token) or by the user given, each with its history entry (`visit`, `need`; actor
//! `import`), one audit entry per import (`contacts.import`, `needs.import`, naming the file)
//! and one row of `record_imports` (who, when, file, SHA-256, added, already there, rejected).

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Transaction};
use serde::Serialize;
use serde_json::json;

use super::records::{append_history, commit, immediate, json as to_json, Actor, Visit};
use super::service::{append_change, Need};
use super::{hex, sha256, Result, Store, StoreError};
use crate::ingest::service::{LedgerRow, NeedRow};
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
        let bytes = std::fs::read(path)
            .map_err(|source| crate::ingest::IngestError::Io { path: path.to_path_buf(), source })?;
        let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(RecordSource { file, sha256: hex(&sha256(&bytes)), rejected })
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

/// Versions of the households present in the store, by id.
fn household_versions(tx: &Transaction<'_>) -> Result<HashMap<String, i64>> {
    let mut st = tx
        .prepare("SELECT id, version FROM households WHERE present = 1")
        .map_err(StoreError::db("reading households"))?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(StoreError::db("reading households"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(StoreError::db("reading households"))
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
/// ones, in file order).
fn to_add<'a, T, K: Ord>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> K,
    mut stored: impl FnMut(&T) -> Result<usize>,
) -> Result<Vec<bool>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| key(&rows[a]).cmp(&key(&rows[b])));
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

/// Records an import in `record_imports` and the audit log.
fn record_import(
    tx: &Transaction<'_>,
    user: i64,
    what: &str,
    source: &RecordSource,
    done: &RecordsImported,
) -> Result<()> {
    tx.execute(
        "INSERT INTO record_imports (user_id, what, file, sha256, added, same, rejected)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![user, what, source.file, source.sha256, done.added as i64, done.same as i64, done.rejected as i64],
    )
    .map_err(StoreError::db("recording the import"))?;
    tx.execute(
        "INSERT INTO audit (user_id, action, target) VALUES (?1, ?2, ?3)",
        params![user, format!("{what}.import"), source.file],
    )
    .map_err(StoreError::db("appending to the audit log"))?;
    Ok(())
}

/// Imports contacts in the caller's transaction (see the module documentation).
pub(crate) fn contacts_in(
    tx: &Transaction<'_>,
    actor: &Actor,
    source: &RecordSource,
    rows: &[LedgerRow],
) -> Result<RecordsImported> {
    let (user_id, user) = recorder(tx, actor)?;
    let versions = household_versions(tx)?;
    let visited = households_with(tx, "visits")?;
    let add = {
        let mut count = tx
            .prepare("SELECT count(*) FROM visits WHERE household_id = ?1 AND date = ?2 AND kind = ?3 AND note = ?4")
            .map_err(StoreError::db("reading visits"))?;
        to_add(
            rows,
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
    let mut insert = tx
        .prepare(
            "INSERT INTO visits (household_id, date, kind, note, user_id) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id, at",
        )
        .map_err(StoreError::db("recording a visit"))?;
    let mut done = RecordsImported { rejected: source.rejected, ..Default::default() };
    for (r, add) in rows.iter().zip(add) {
        if !add {
            done.same += 1;
            continue;
        }
        let version = *versions.get(&r.household_id).ok_or_else(|| missing(&r.household_id))?;
        let date = format_day(r.day);
        let (id, at): (i64, String) = insert
            .query_row(params![r.household_id, date, r.kind.as_str(), r.note, user_id], |x| Ok((x.get(0)?, x.get(1)?)))
            .map_err(StoreError::db(format!("recording a visit of household {}", r.household_id)))?;
        let v = Visit {
            id,
            household_id: r.household_id.clone(),
            date,
            kind: r.kind,
            note: r.note.clone(),
            needs: Vec::new(),
            user_id,
            user: user.clone(),
            at,
        };
        append_history(tx, actor, "household", &r.household_id, "visit", Some(version), None, Some(&to_json(&v)))?;
        done.added += 1;
    }
    record_import(tx, user_id, "contacts", source, &done)?;
    Ok(done)
}

/// Imports needs in the caller's transaction (see the module documentation).
pub(crate) fn needs_in(
    tx: &Transaction<'_>,
    actor: &Actor,
    source: &RecordSource,
    rows: &[NeedRow],
) -> Result<RecordsImported> {
    let (user_id, user) = recorder(tx, actor)?;
    let versions = household_versions(tx)?;
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
    let mut insert = tx
        .prepare(
            "INSERT INTO needs (household_id, category, note, status, opened, visit_id, user_id, version)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7) RETURNING id, created_at",
        )
        .map_err(StoreError::db("recording a need"))?;
    let mut done = RecordsImported { rejected: source.rejected, ..Default::default() };
    for (r, add) in rows.iter().zip(add) {
        if !add {
            done.same += 1;
            continue;
        }
        let version = *versions.get(&r.household_id).ok_or_else(|| missing(&r.household_id))?;
        let Some(&(_, status)) = r.need.changes.last() else {
            return Err(StoreError::Invalid(format!("{} row {}: a need without a day raised", source.file, r.line)));
        };
        let opened = opened(r);
        let (id, created_at): (i64, String) = insert
            .query_row(
                params![
                    r.household_id,
                    r.need.category.as_str(),
                    r.note,
                    status.as_str(),
                    opened,
                    user_id,
                    r.need.changes.len() as i64
                ],
                |x| Ok((x.get(0)?, x.get(1)?)),
            )
            .map_err(StoreError::db(format!("recording a need of household {}", r.household_id)))?;
        let mut changes = Vec::with_capacity(r.need.changes.len());
        for (k, &(day, st)) in r.need.changes.iter().enumerate() {
            let note = if k == 0 { r.note.as_str() } else { "" };
            changes.push(append_change(tx, (user_id, &user), id, &format_day(day), st, note)?);
        }
        let n = Need {
            id,
            household_id: r.household_id.clone(),
            category: r.need.category,
            note: r.note.clone(),
            status,
            opened,
            visit_id: None,
            user_id,
            user: user.clone(),
            version: r.need.changes.len() as i64,
            created_at,
            changes,
        };
        append_history(tx, actor, "household", &r.household_id, "need", Some(version), None, Some(&to_json(&n)))?;
        done.added += 1;
    }
    record_import(tx, user_id, "needs", source, &done)?;
    Ok(done)
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
            let done = contacts_in(&tx, actor, source, rows)?;
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
            let done = needs_in(&tx, actor, source, rows)?;
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
    /// there, rejected, as JSON objects with `at` and `user`.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn record_imports(&self) -> Result<Vec<serde_json::Value>> {
        self.read(|c| {
            c.prepare(
                "SELECT i.at, u.name, i.what, i.file, i.sha256, i.added, i.same, i.rejected
                 FROM record_imports i JOIN users u ON u.id = i.user_id ORDER BY i.id",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(json!({
                        "at": r.get::<_, String>(0)?, "user": r.get::<_, String>(1)?, "what": r.get::<_, String>(2)?,
                        "file": r.get::<_, String>(3)?, "sha256": r.get::<_, String>(4)?,
                        "added": r.get::<_, i64>(5)?, "same": r.get::<_, i64>(6)?, "rejected": r.get::<_, i64>(7)?,
                    }))
                })?
                .collect()
            })
            .map_err(StoreError::db("reading the record imports"))
        })
    }
}
