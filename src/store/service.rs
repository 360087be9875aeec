//! Needs (诉求) of households, and the service records the analysis reads.
//!
//! A need is raised by the grid worker of the household's grid, either with a visit (opened on
//! the visit's day, in the visit's transaction, see [`Store::add_visit`]) or on its own
//! ([`Store::add_need`], opened on the day given or today, UTC). It has a category
//! ([`NeedCategory`]), a note, a status ([`NeedStatus`], `open` when raised) and a version.
//! Every change of its status is a row of the append-only `need_changes` (date, status, note,
//! who, when; the first row is its raising), a `need_update` entry in the household's history
//! and an audit entry, all in one transaction ([`Store::update_need`]); the need's row keeps
//! only its current status and version. A change may be dated (default today, UTC) but never
//! before the need's previous change, so the changes of a need are in order of their days.
//!
//! [`Store::service_records`] reads every contact (visit days) and need (with its changes'
//! days) into the compact [`ServiceRecords`] the effective-coverage figures are computed from.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::contact_cache::ContactCache;
use super::ledger::TrailKey;
use super::records::{
    append_audit, append_history, check_note, check_version, commit, immediate, json, need_role, parse_date,
    present_household, HouseholdRecord,
};
use super::{Result, Role, Store, StoreError, User};
use crate::ingest::service::HouseholdIds;
use crate::model::service::{
    format_day, parse_day, ContactKind, Day, NeedCategory, NeedSpan, NeedStatus, ServiceRecords,
};
use crate::model::{Households, StrColumn};

/// Most needs one visit may raise.
pub const MAX_VISIT_NEEDS: usize = 20;

/// `kind` of a request: one of the four names exactly, else an error naming the field.
pub(crate) fn de_kind<'de, D: Deserializer<'de>>(d: D) -> Result<ContactKind, D::Error> {
    let s = String::deserialize(d)?;
    ContactKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| D::Error::custom(format!("kind {s:?} is not one of home, phone, station, other")))
}

fn de_category<'de, D: Deserializer<'de>>(d: D) -> Result<NeedCategory, D::Error> {
    let s = String::deserialize(d)?;
    NeedCategory::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
        D::Error::custom(format!(
            "category {s:?} is not one of employment, medical, housing, pension, legal, hardship, other"
        ))
    })
}

fn de_status<'de, D: Deserializer<'de>>(d: D) -> Result<NeedStatus, D::Error> {
    let s = String::deserialize(d)?;
    NeedStatus::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| D::Error::custom(format!("status {s:?} is not one of open, in_progress, resolved")))
}

/// A need raised in a visit (an item of the visit's `needs`): it is opened on the visit's day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitNeed {
    /// What it is about.
    #[serde(deserialize_with = "de_category")]
    pub category: NeedCategory,
    /// What is needed (at most [`super::MAX_NOTE_CHARS`] characters).
    #[serde(default)]
    pub note: String,
}

/// A need to raise on its own (the body of `POST /api/households/{id}/needs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNeed {
    /// What it is about.
    #[serde(deserialize_with = "de_category")]
    pub category: NeedCategory,
    /// What is needed (at most [`super::MAX_NOTE_CHARS`] characters).
    #[serde(default)]
    pub note: String,
    /// The day it was raised, `YYYY-MM-DD` (default: today, UTC).
    #[serde(default)]
    pub date: Option<String>,
}

/// A change of a need's status (the body of `PATCH /api/needs/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeedPatch {
    /// The status from this change on (the same status again records a note on it).
    #[serde(deserialize_with = "de_status")]
    pub status: NeedStatus,
    /// What was done (at most [`super::MAX_NOTE_CHARS`] characters).
    #[serde(default)]
    pub note: String,
    /// The day of the change, `YYYY-MM-DD` (default: today, UTC); never before the need's
    /// previous change.
    #[serde(default)]
    pub date: Option<String>,
}

/// A need with its changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    /// Row id.
    pub id: i64,
    /// Its household.
    pub household_id: String,
    /// What it is about.
    pub category: NeedCategory,
    /// What is needed, as raised.
    pub note: String,
    /// Where it stands now (the status of its last change).
    pub status: NeedStatus,
    /// The day it was raised, `YYYY-MM-DD`.
    pub opened: String,
    /// The visit it was raised in, if any.
    pub visit_id: Option<i64>,
    /// Who raised it (user id).
    pub user_id: i64,
    /// Their name.
    pub user: String,
    /// Version: 1 when raised, +1 at every change.
    pub version: i64,
    /// When it was recorded (UTC, RFC 3339).
    pub created_at: String,
    /// Its changes, oldest first; the first is its raising.
    pub changes: Vec<NeedChange>,
}

/// One change of a need's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeedChange {
    /// The day of the change, `YYYY-MM-DD`.
    pub date: String,
    /// The status from then on.
    pub status: NeedStatus,
    /// What was done.
    pub note: String,
    /// Who (user id).
    pub user_id: i64,
    /// Their name.
    pub user: String,
    /// When it was recorded (UTC, RFC 3339).
    pub at: String,
}

/// Today (UTC), `YYYY-MM-DD`.
fn today() -> String {
    format_day(crate::model::service::today())
}

/// Checks a need's note and its optional date, naming the field.
fn check_note_and_date(note: &str, date: Option<&str>) -> Result<()> {
    check_note("note", note)?;
    if let Some(d) = date {
        parse_date(d).map_err(StoreError::Invalid)?;
    }
    Ok(())
}

impl NewNeed {
    /// Checks the note's length and the date.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_note_and_date(&self.note, self.date.as_deref())
    }
}

impl NeedPatch {
    /// Checks the note's length and the date.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_note_and_date(&self.note, self.date.as_deref())
    }
}

fn parsed<T>(r: &Row<'_>, k: usize, what: &str, parse: impl Fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    // Read in place (no `String` per row: the country's needs are millions of rows).
    let v = r.get_ref(k)?;
    let s = v.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(k, v.data_type(), Box::new(e)))?;
    parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            k,
            rusqlite::types::Type::Text,
            format!("unknown {what} {s:?}").into(),
        )
    })
}

fn category_of(s: &str) -> Option<NeedCategory> {
    NeedCategory::ALL.into_iter().find(|c| c.as_str() == s)
}

fn status_of(s: &str) -> Option<NeedStatus> {
    NeedStatus::ALL.into_iter().find(|c| c.as_str() == s)
}

const NEED_COLS: &str = "n.id, n.household_id, n.category, n.note, n.status, n.opened, n.visit_id, n.user_id, u.name, \
                         n.version, n.created_at";

fn need_from_row(r: &Row<'_>) -> rusqlite::Result<Need> {
    Ok(Need {
        id: r.get(0)?,
        household_id: r.get(1)?,
        category: parsed(r, 2, "category", category_of)?,
        note: r.get(3)?,
        status: parsed(r, 4, "status", status_of)?,
        opened: r.get(5)?,
        visit_id: r.get(6)?,
        user_id: r.get(7)?,
        user: r.get(8)?,
        version: r.get(9)?,
        created_at: r.get(10)?,
        changes: Vec::new(),
    })
}

/// The changes of need `id`, oldest first.
fn changes_in(c: &Connection, id: i64) -> Result<Vec<NeedChange>> {
    c.prepare_cached(
        "SELECT c.date, c.status, c.note, c.user_id, u.name, c.at
         FROM need_changes c JOIN users u ON u.id = c.user_id WHERE c.need_id = ?1 ORDER BY c.id",
    )
    .and_then(|mut s| s.query_map([id], change_from_row)?.collect())
    .map_err(StoreError::db("reading a need's changes"))
}

/// A change read as `date, status, note, user_id, user's name, at`.
fn change_from_row(r: &Row<'_>) -> rusqlite::Result<NeedChange> {
    Ok(NeedChange {
        date: r.get(0)?,
        status: parsed(r, 1, "status", status_of)?,
        note: r.get(2)?,
        user_id: r.get(3)?,
        user: r.get(4)?,
        at: r.get(5)?,
    })
}

/// Need `id` with its changes, if it exists.
fn need_in(c: &Connection, id: i64) -> Result<Option<Need>> {
    let need = c
        .prepare_cached(&format!("SELECT {NEED_COLS} FROM needs n JOIN users u ON u.id = n.user_id WHERE n.id = ?1"))
        .and_then(|mut s| s.query_row([id], need_from_row).optional())
        .map_err(StoreError::db("reading a need"))?;
    need.map(|mut n| {
        n.changes = changes_in(c, id)?;
        Ok(n)
    })
    .transpose()
}

/// The needs of a household imported since migration 6 (see
/// [`imported_history`](super::ledger::imported_history)), each as it was imported (with the
/// changes of its import only, its version and status then), with its place in the trail
/// (`history_seq` of its import, the import, its id) and whether its recorder is a system user.
pub(crate) fn imported_needs(c: &Connection, household_id: &str) -> Result<Vec<(TrailKey, bool, Need)>> {
    let needs: Vec<(TrailKey, bool, Need)> = c
        .prepare_cached(&format!(
            "SELECT {NEED_COLS}, n.import_id, i.history_seq, u.system
             FROM needs n JOIN users u ON u.id = n.user_id JOIN record_imports i ON i.id = n.import_id
             WHERE n.household_id = ?1 AND n.import_id IS NOT NULL ORDER BY n.id"
        ))
        .and_then(|mut s| {
            s.query_map([household_id], |r| {
                let n = need_from_row(r)?;
                Ok(((r.get(12)?, r.get(11)?, n.id), r.get(13)?, n))
            })?
            .collect()
        })
        .map_err(StoreError::db("reading imported needs"))?;
    needs
        .into_iter()
        .map(|(key, system, mut n)| {
            let (_, import, id) = key;
            n.changes = c
                .prepare_cached(
                    "SELECT c.date, c.status, c.note, c.user_id, u.name, c.at
                     FROM need_changes c JOIN users u ON u.id = c.user_id
                     WHERE c.need_id = ?1 AND c.import_id = ?2 ORDER BY c.id",
                )
                .and_then(|mut s| s.query_map([id, import], change_from_row)?.collect())
                .map_err(StoreError::db("reading a need's changes"))?;
            if let Some(last) = n.changes.last() {
                n.status = last.status;
            }
            n.version = n.changes.len() as i64;
            Ok((key, system, n))
        })
        .collect()
}

/// Appends a change of need `need` recorded by the user `(id, name)`, in the caller's
/// transaction (a status set through the API, a need raised, or one imported with its history).
pub(crate) fn append_change(
    tx: &Transaction<'_>,
    (user_id, user_name): (i64, &str),
    need: i64,
    date: &str,
    status: NeedStatus,
    note: &str,
) -> Result<NeedChange> {
    let at: String = tx
        .prepare_cached(
            "INSERT INTO need_changes (need_id, date, status, note, user_id) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING at",
        )
        .and_then(|mut s| s.query_row(params![need, date, status.as_str(), note, user_id], |r| r.get(0)))
        .map_err(StoreError::db("recording a need's change"))?;
    Ok(NeedChange { date: date.to_string(), status, note: note.to_string(), user_id, user: user_name.to_string(), at })
}

/// The household's history entry of a need raised (in a visit or on its own), in `tx`.
pub(crate) fn append_need_history(
    tx: &Transaction<'_>,
    user: &User,
    household_id: &str,
    version: i64,
    n: &Need,
) -> Result<()> {
    append_history(tx, &user.into(), "household", household_id, "need", Some(version), None, Some(&json(n)))
}

/// Stores a need of household `h`, opened on `opened` by `user` (in a visit: `visit`), with
/// its first change (status open), in the caller's transaction. The caller appends the
/// history and audit entries.
pub(crate) fn insert_need(
    tx: &Transaction<'_>,
    user: &User,
    h: &HouseholdRecord,
    category: NeedCategory,
    note: &str,
    opened: &str,
    visit: Option<i64>,
) -> Result<Need> {
    let (id, created_at): (i64, String) = tx
        .prepare_cached(
            "INSERT INTO needs (household_id, category, note, status, opened, visit_id, user_id)
             VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6) RETURNING id, created_at",
        )
        .and_then(|mut s| {
            s.query_row(params![h.id, category.as_str(), note, opened, visit, user.id], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .map_err(StoreError::db("recording a need"))?;
    let first = append_change(tx, (user.id, &user.name), id, opened, NeedStatus::Open, note)?;
    Ok(Need {
        id,
        household_id: h.id.clone(),
        category,
        note: note.to_string(),
        status: NeedStatus::Open,
        opened: opened.to_string(),
        visit_id: visit,
        user_id: user.id,
        user: user.name.clone(),
        version: 1,
        created_at,
        changes: vec![first],
    })
}

impl Store {
    /// Raises a need of a household by `user` (a grid worker; the caller checks the grid),
    /// opened on `need.date` (default today, UTC), with its first change, a `need` history
    /// entry and the audit entry `households.need`, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad note or date (or a user who is not a grid worker),
    /// [`StoreError::NotFound`], [`StoreError::Db`].
    pub fn add_need(&self, user: &User, household_id: &str, need: &NewNeed) -> Result<Need> {
        need_role(user, Role::GridWorker, "raise a need")?;
        need.validate()?;
        let opened = need.date.clone().unwrap_or_else(today);
        self.write(|c| {
            let tx = immediate(c)?;
            let h = present_household(&tx, household_id)?;
            let n = insert_need(&tx, user, &h, need.category, &need.note, &opened, None)?;
            append_need_history(&tx, user, household_id, h.version, &n)?;
            append_audit(&tx, user, "households.need", household_id)?;
            commit(tx)?;
            Ok(n)
        })
    }

    /// The needs of a household with their changes, oldest first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Db`].
    pub fn needs(&self, household_id: &str) -> Result<Vec<Need>> {
        self.read(|c| {
            present_household(c, household_id)?;
            let mut needs: Vec<Need> = c
                .prepare_cached(&format!(
                    "SELECT {NEED_COLS} FROM needs n JOIN users u ON u.id = n.user_id WHERE n.household_id = ?1 ORDER BY n.id"
                ))
                .and_then(|mut s| s.query_map([household_id], need_from_row)?.collect())
                .map_err(StoreError::db("reading needs"))?;
            for n in &mut needs {
                n.changes = changes_in(c, n.id)?;
            }
            Ok(needs)
        })
    }

    /// The household of need `id` (none: no such need). Whoever may see that household may
    /// see and change the need.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn need_household(&self, id: i64) -> Result<Option<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT household_id FROM needs WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .map_err(StoreError::db("reading a need"))
        })
    }

    /// Changes a need's status (by `user`, a grid worker; the caller checks the household's
    /// grid): appends the change (dated `patch.date`, default today, UTC), bumps the need's
    /// version, and appends a `need_update` history entry of its household and the audit entry
    /// `households.need_update`, in one transaction. `if_match`, when given, must be the
    /// need's current version.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], [`StoreError::Invalid`] (a bad note
    /// or date, a date before the need's last change, a user who is not a grid worker),
    /// [`StoreError::Db`].
    pub fn update_need(&self, user: &User, id: i64, patch: &NeedPatch, if_match: Option<i64>) -> Result<Need> {
        need_role(user, Role::GridWorker, "change a need")?;
        patch.validate()?;
        let date = patch.date.clone().unwrap_or_else(today);
        self.write(|c| {
            let tx = immediate(c)?;
            let Some(mut need) = need_in(&tx, id)? else {
                return Err(StoreError::NotFound { what: "need", id: id.to_string() });
            };
            check_version("need", &id.to_string(), if_match, need.version)?;
            if let Some(last) = need.changes.last().filter(|l| l.date > date) {
                return Err(StoreError::Invalid(format!(
                    "date {date} is before the need's last change ({}); a change is dated on or after it",
                    last.date
                )));
            }
            let h = present_household(&tx, &need.household_id)?;
            let before = json!({"need": id, "status": need.status, "version": need.version});
            let change = append_change(&tx, (user.id, &user.name), id, &date, patch.status, &patch.note)?;
            let version = need.version + 1;
            let n = tx
                .prepare_cached("UPDATE needs SET status = ?1, version = ?2 WHERE id = ?3 AND version = ?4")
                .and_then(|mut s| s.execute(params![patch.status.as_str(), version, id, need.version]))
                .map_err(StoreError::db("updating a need"))?;
            if n != 1 {
                return Err(StoreError::Conflict {
                    what: "need",
                    id: id.to_string(),
                    expected: need.version,
                    current: -1,
                });
            }
            let after = json!({"need": id, "status": patch.status, "version": version, "change": change});
            append_history(
                &tx,
                &user.into(),
                "household",
                &h.id,
                "need_update",
                Some(h.version),
                Some(&before),
                Some(&after),
            )?;
            append_audit(&tx, user, "households.need_update", &h.id)?;
            commit(tx)?;
            need.status = patch.status;
            need.version = version;
            need.changes.push(change);
            Ok(need)
        })
    }

    /// Every contact (the day of each visit, of any kind) and every need (with the days of
    /// its status changes) of the store, by index of `households` (matched by id), read in
    /// one snapshot: what the effective-coverage figures are computed from.
    ///
    /// The second value counts the records (contacts and needs) left out because their
    /// household is not among `households` (e.g. removed by a later import): none is dropped
    /// silently.
    ///
    /// # Errors
    /// [`StoreError::Db`]; [`StoreError::Invalid`] for a stored date that is not one (which
    /// the tables' checks should make impossible).
    pub fn service_records(&self, households: &Households) -> Result<(ServiceRecords, usize)> {
        self.service_records_of(&households.id).map(|(r, _, left)| (r, left))
    }

    /// As [`Store::service_records`] for the households of these ids, with the store's id of
    /// each need (in the order of [`ServiceRecords::needs`]): what the server keeps up to date
    /// as needs change.
    ///
    /// # Errors
    /// As [`Store::service_records`].
    pub fn service_records_of(&self, ids: &StrColumn) -> Result<(ServiceRecords, Vec<i64>, usize)> {
        self.records_of(ids, false)
    }

    /// As [`Store::service_records_of`], with the contacts read up to the last start kept in
    /// a file beside the store (`contact_cache`): only the visits added since are read from
    /// the database, and the file is rewritten when it was missing or more than 1 % of the
    /// contacts were not in it. The server's start; the same records either way.
    ///
    /// # Errors
    /// As [`Store::service_records`].
    pub fn service_records_cached(&self, ids: &StrColumn) -> Result<(ServiceRecords, Vec<i64>, usize)> {
        self.records_of(ids, true)
    }

    fn records_of(&self, ids: &StrColumn, cached: bool) -> Result<(ServiceRecords, Vec<i64>, usize)> {
        self.records_read(ids, cached, FEW_CONTACTS)
    }

    /// [`Store::records_of`], fewer than `few` contacts to read being read on this thread.
    pub(super) fn records_read(
        &self,
        ids: &StrColumn,
        cached: bool,
        few: i64,
    ) -> Result<(ServiceRecords, Vec<i64>, usize)> {
        // The store's identity (its first import, which never changes once made) keys the
        // contacts' cache, which is loaded (with the ids' part of its key) beside the index of
        // the ids and the read of the needs.
        let identity = if cached { self.first_import()? } else { None };
        let (index, read, cache) = std::thread::scope(|s| {
            let cache = identity.map(|i| {
                s.spawn(move || {
                    let c = ContactCache::new(&self.inner.path, &i, &super::cache_file::ids_digest(ids));
                    let kept = c.load(ids.len());
                    (c, kept)
                })
            });
            // An open-addressing table keyed by the ids' xxh3 (4 to 8 bytes a household): a
            // `HashMap` of every id was most of this step at national scale (45 M inserts).
            let index = s.spawn(|| HouseholdIds::of(ids));
            let read = self.needs_and_last_contact();
            fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
            (join(index), read, cache.map(join))
        });
        let NeedsRead { upto, mut needs, households, mut need_ids } = read?;
        // Each need's household by its id, in parallel; a need of a household not among `ids`
        // is left out (and counted), its store id with it.
        let at: Vec<Option<u32>> = {
            use rayon::prelude::*;
            (0..needs.len()).into_par_iter().with_min_len(1 << 12).map(|k| index.get(&households[k])).collect()
        };
        drop(households);
        let unknown_needs = at.iter().filter(|a| a.is_none()).count();
        let mut placed = at.iter();
        needs.retain_mut(|n| placed.next().copied().flatten().inspect(|&h| n.household = h).is_some());
        let mut placed = at.iter();
        need_ids.retain(|_| placed.next().is_some_and(Option::is_some));
        let (cache, kept) = match cache {
            Some((c, kept)) => (Some(c), kept.filter(|d| d.upto <= upto)),
            None => (None, None),
        };
        let from = kept.as_ref().map_or(1, |d| d.upto + 1);
        // The contacts up to the last one of that moment: visits are append-only (never
        // changed nor deleted, their ids only grow), so these are the contacts of the same
        // snapshot, whichever connection reads them. Many are read a range of ids per task,
        // each on a reader connection of its own, in parallel, and put back in the order of
        // their ids; a few (those added since the cache was written) on this thread, not
        // queued behind whatever else the thread pool is doing at the server's start.
        let read: Vec<Result<ContactsRead>> = if upto - from < few {
            vec![self.read(|c| contacts_between(c, from, upto, &index))]
        } else {
            let parts = (rayon::current_num_threads() * 2).clamp(1, 8) as i64;
            let step = (upto - from + 1) / parts + 1;
            let ranges: Vec<(i64, i64)> =
                (0..parts).map(|k| (from + k * step, (from + (k + 1) * step - 1).min(upto))).collect();
            use rayon::prelude::*;
            ranges.into_par_iter().map(|(from, to)| self.read(|c| contacts_between(c, from, to, &index))).collect()
        };
        let read = read.into_iter().collect::<Result<Vec<_>>>()?;
        // Exactly the room they need (a vector grown a row at a time keeps up to twice that).
        let mut contacts = Vec::with_capacity(read.iter().map(|(some, _)| some.len()).sum());
        let mut unknown = 0;
        for (some, left) in read {
            contacts.extend_from_slice(&some);
            unknown += left;
        }
        // Every need here has its household in range and a change: none is left out, so
        // the ids stay in step with the needs.
        let added = contacts.len();
        let (records, left) = match kept {
            None => ServiceRecords::new(ids.len(), contacts, needs),
            Some(d) => {
                unknown += d.unknown as usize;
                ServiceRecords::with_added(d.days, contacts, needs)
                    .ok_or_else(|| StoreError::Invalid("more contacts than the records can count".into()))?
            }
        };
        debug_assert_eq!(records.needs.len(), need_ids.len());
        if let Some(c) = cache {
            let all = records.contact_count();
            if from == 1 || added * 100 > all {
                let (start, days) = records.contact_days();
                c.save(upto, unknown as u64, start, days);
            }
        }
        Ok((records, need_ids, unknown_needs + unknown + left))
    }

    /// The store's identity, for the contacts' cache: its first import (none before one).
    fn first_import(&self) -> Result<Option<String>> {
        self.read(|c| {
            c.query_row("SELECT id || ' ' || at || ' ' || files_sha256 FROM imports ORDER BY id LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::db("reading the first import"))
        })
    }

    /// In one read transaction: the last visit id and the needs (each with its household's id
    /// as stored, placed by the caller), all of one moment.
    fn needs_and_last_contact(&self) -> Result<NeedsRead> {
        let day = |what: &str, s: &str| parse_day(s).map_err(|e| StoreError::Invalid(format!("stored {what}: {e}")));
        self.read(|c| {
            // One read transaction: the needs, and the last contact, of one moment.
            let tx = c.unchecked_transaction().map_err(StoreError::db("starting a read"))?;
            let upto: i64 = tx
                .query_row("SELECT coalesce(max(id), 0) FROM visits", [], |r| r.get(0))
                .map_err(StoreError::db("reading contacts"))?;
            let mut needs: Vec<NeedSpan> = Vec::new();
            let mut households = StrColumn::default();
            let mut need_ids: Vec<i64> = Vec::new();
            {
                let mut s = tx
                    .prepare(
                        "SELECT n.id, n.household_id, n.category, c.date, c.status
                         FROM needs n JOIN need_changes c ON c.need_id = n.id ORDER BY n.id, c.id",
                    )
                    .map_err(StoreError::db("reading needs"))?;
                let mut rows = s.query([]).map_err(StoreError::db("reading needs"))?;
                let mut last: Option<i64> = None;
                while let Some(r) = rows.next().map_err(StoreError::db("reading needs"))? {
                    let read = |r: &Row<'_>| -> rusqlite::Result<(i64, NeedCategory, NeedStatus)> {
                        Ok((r.get(0)?, parsed(r, 2, "category", category_of)?, parsed(r, 4, "status", status_of)?))
                    };
                    let (id, category, status) = read(r).map_err(StoreError::db("reading needs"))?;
                    let text = |k: usize| -> Result<&str> {
                        super::text_in_place(r, k)
                            .map_err(StoreError::db("reading needs"))?
                            .ok_or_else(|| StoreError::Invalid(format!("need {id}: an empty column {k}")))
                    };
                    let change = (day("need change date", text(3)?)?, status);
                    if last == Some(id) {
                        if let Some(n) = needs.last_mut() {
                            n.changes.push(change);
                        }
                    } else {
                        households.push(text(1)?);
                        needs.push(NeedSpan { household: 0, category, changes: vec![change] });
                        need_ids.push(id);
                        last = Some(id);
                    }
                }
            }
            drop(tx);
            Ok(NeedsRead { upto, needs, households, need_ids })
        })
    }
}

/// Read in one transaction ([`Store::needs_and_last_contact`]): the last visit id, the needs
/// (their households not yet placed), each one's household id as stored, their store ids.
struct NeedsRead {
    upto: i64,
    needs: Vec<NeedSpan>,
    households: StrColumn,
    need_ids: Vec<i64>,
}

/// Fewer contacts than this are read on the caller's thread, not in parallel.
const FEW_CONTACTS: i64 = 1_000_000;

/// Contacts read: `(household, day)` in the order of their ids, and how many named a household
/// not asked for.
type ContactsRead = (Vec<(u32, Day)>, usize);

/// The contacts of the visits with ids `from..=to` (the day of each, by index of its household
/// in `index`), in the order of their ids, and the number whose household is not in `index`.
fn contacts_between(c: &Connection, from: i64, to: i64, index: &HouseholdIds<'_>) -> Result<(Vec<(u32, Day)>, usize)> {
    let mut contacts = Vec::new();
    let mut unknown = 0;
    if from > to {
        return Ok((contacts, unknown));
    }
    let day = |s: &str| parse_day(s).map_err(|e| StoreError::Invalid(format!("stored visit date: {e}")));
    let mut s = c
        .prepare("SELECT household_id, date FROM visits WHERE id BETWEEN ?1 AND ?2 ORDER BY id")
        .map_err(StoreError::db("reading contacts"))?;
    let mut rows = s.query(params![from, to]).map_err(StoreError::db("reading contacts"))?;
    // Read in place: no `String` per field of the country's 144 million contacts.
    fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
        super::text_in_place(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(
            i,
            String::new(),
            rusqlite::types::Type::Null,
        ))
    }
    // A household's contacts mostly follow one another (a ledger is written household by
    // household): its index is looked up once for them.
    let mut last: Option<(String, Option<u32>)> = None;
    while let Some(r) = rows.next().map_err(StoreError::db("reading contacts"))? {
        let h = text(r, 0).map_err(StoreError::db("reading contacts"))?;
        let d = text(r, 1).map_err(StoreError::db("reading contacts"))?;
        let i = match &last {
            Some((id, i)) if id == h => *i,
            _ => {
                let i = index.get(h);
                match &mut last {
                    Some((id, known)) => {
                        id.clear();
                        id.push_str(h);
                        *known = i;
                    }
                    None => last = Some((h.to_string(), i)),
                }
                i
            }
        };
        match i {
            Some(i) => contacts.push((i, day(d)?)),
            None => unknown += 1,
        }
    }
    Ok((contacts, unknown))
}

impl Store {
    /// The last contact on or before `as_of` (`YYYY-MM-DD`) of each of `household_ids` that
    /// has one: its date and kind (of two on the same day, the one recorded last). For a grid
    /// worker's list of households to visit (`GET /api/me/to-visit`); one indexed look-up per
    /// household, in one read transaction.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn last_contacts(&self, household_ids: &[&str], as_of: &str) -> Result<HashMap<String, (String, ContactKind)>> {
        let kind_of = |s: &str| ContactKind::ALL.into_iter().find(|k| k.as_str() == s);
        self.read(|c| {
            let tx = c.unchecked_transaction().map_err(StoreError::db("starting a read"))?;
            let mut out = HashMap::new();
            {
                let mut s = tx
                    .prepare_cached(
                        "SELECT date, kind FROM visits WHERE household_id = ?1 AND date <= ?2
                         ORDER BY date DESC, id DESC LIMIT 1",
                    )
                    .map_err(StoreError::db("reading last contacts"))?;
                for &id in household_ids {
                    let last = s
                        .query_row(params![id, as_of], |r| Ok((r.get::<_, String>(0)?, parsed(r, 1, "kind", kind_of)?)))
                        .optional()
                        .map_err(StoreError::db("reading last contacts"))?;
                    if let Some(l) = last {
                        out.insert(id.to_string(), l);
                    }
                }
            }
            drop(tx);
            Ok(out)
        })
    }
}
