//! Households (status, visits), stations, and the history of every change.
//!
//! Every write here is one immediate transaction that checks the record's version (when the
//! caller sends one), changes the record, bumps its version and appends the change to
//! `history` with who and when, before and after; a household write by a grid worker also
//! appends its `audit` entry in that same transaction (a failed audit write leaves the record
//! unchanged, and a failed write leaves no audit entry). It returns only after the commit, i.e.
//! once the change is durable (see the module above on `synchronous = FULL`).
//!
//! A household status is a JSON object of at most [`MAX_STATUS_BYTES`] (compact) and
//! [`MAX_STATUS_DEPTH`] levels of nesting, checked before anything is written.
//!
//! Roles are checked here as a second line of defence (stations: planners; household edits:
//! grid workers); whether the household lies in one of the worker's grids is the caller's check,
//! since the grid of a household comes from the analysis (point in grid polygon).

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ledger::imported_history;
use super::service::{append_need_history, insert_need, VisitNeed, MAX_VISIT_NEEDS};
use super::{merge_patch, Result, Role, Store, StoreError, User};
pub use crate::model::rules::parse_date;
use crate::model::service::ContactKind;
use crate::model::{Divisions, Level};

/// Largest household status, in bytes of compact JSON.
pub const MAX_STATUS_BYTES: usize = 16 * 1024;
/// Deepest household status: objects and arrays nested at most this many levels (`{"a": 1}`
/// is 1 deep, `{"a": {"b": [1]}}` 3). Checked, with [`MAX_STATUS_BYTES`], before anything is
/// stored, on the patch and on the status it makes.
pub const MAX_STATUS_DEPTH: usize = 8;
/// Longest note of a visit, of a need and of a need's change, in characters (the one bound,
/// shared with the ledgers read from files).
pub use crate::model::service::MAX_NOTE_CHARS;
/// Longest id or name of a station, in characters.
const MAX_NAME_CHARS: usize = 200;

/// Who made a change, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user of the server.
    User {
        /// Their id.
        id: i64,
        /// Their name.
        name: String,
    },
    /// `gridcover import`.
    Import,
}

impl Actor {
    fn id(&self) -> Option<i64> {
        match self {
            Actor::User { id, .. } => Some(*id),
            Actor::Import => None,
        }
    }

    fn name(&self) -> &str {
        match self {
            Actor::User { name, .. } => name,
            Actor::Import => "import",
        }
    }
}

impl From<&User> for Actor {
    fn from(u: &User) -> Self {
        Actor::User { id: u.id, name: u.name.clone() }
    }
}

/// A household's editable record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseholdRecord {
    /// Own id.
    pub id: String,
    /// Free-form status (needs, hardship, phone, …): always a JSON object.
    pub status: Value,
    /// Version, 1 at import, +1 at every status change.
    pub version: i64,
}

/// Households' names and addresses by id ([`Store::names_and_addresses`]).
pub type NamesAndAddresses = std::collections::HashMap<String, (Option<String>, Option<String>)>;

/// A visit to record (the body of `POST /api/households/{id}/visits`): `date` alone is
/// required; `kind` defaults to a home visit, `needs` to none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVisit {
    /// Day of the visit, `YYYY-MM-DD`.
    pub date: String,
    /// What was found or done.
    #[serde(default)]
    pub note: String,
    /// How the household was contacted (default: a home visit).
    #[serde(default, deserialize_with = "super::service::de_kind")]
    pub kind: ContactKind,
    /// Needs raised in the visit (at most [`MAX_VISIT_NEEDS`]), each stored as a need opened
    /// on the visit's day, in the visit's transaction.
    #[serde(default)]
    pub needs: Vec<VisitNeed>,
}

/// A recorded visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visit {
    /// Row id.
    pub id: i64,
    /// The household visited.
    pub household_id: String,
    /// Day of the visit, `YYYY-MM-DD`.
    pub date: String,
    /// How the household was contacted.
    pub kind: ContactKind,
    /// Note.
    pub note: String,
    /// The ids of the needs raised in the visit.
    pub needs: Vec<i64>,
    /// Who recorded it (user id).
    pub user_id: i64,
    /// Their name.
    pub user: String,
    /// When it was recorded (UTC, RFC 3339).
    pub at: String,
}

/// A station as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationRecord {
    /// Own id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Statistical code of the unit it serves.
    pub code: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Demonstration station.
    pub demonstration: bool,
    /// Mobile station.
    pub mobile: bool,
    /// Own radius, metres.
    pub radius_m: Option<f64>,
    /// False once closed.
    pub active: bool,
    /// Version, +1 at every change.
    pub version: i64,
}

/// A station to add (the body of `POST /api/stations`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStation {
    /// Own id; made up (`new-N`) when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Statistical code of the unit it serves (of the same level).
    pub code: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Demonstration station.
    #[serde(default)]
    pub demonstration: bool,
    /// Mobile station.
    #[serde(default)]
    pub mobile: bool,
    /// Own radius, metres.
    #[serde(default)]
    pub radius_m: Option<f64>,
}

/// A change to a station (the body of `PATCH /api/stations/{id}`): move, rename, re-flag.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationPatch {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New longitude (WGS84).
    #[serde(default)]
    pub lon: Option<f64>,
    /// New latitude (WGS84).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Demonstration flag.
    #[serde(default)]
    pub demonstration: Option<bool>,
    /// Mobile flag.
    #[serde(default)]
    pub mobile: Option<bool>,
    /// Own radius, metres.
    #[serde(default)]
    pub radius_m: Option<f64>,
}

/// One change in the history of a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Sequence number (ascending in time).
    pub seq: i64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who: the user id, none for an import.
    pub user_id: Option<i64>,
    /// Who: the user's name, or `import`.
    pub actor: String,
    /// `household`, `station` or `grid`.
    pub kind: String,
    /// The record's id.
    pub record_id: String,
    /// What: `import`, `reimport`, `removed`, `status`, `visit`, `add`, `update`, `close`.
    pub action: String,
    /// The record's version after the change.
    pub version: Option<i64>,
    /// The record (or the changed part) before.
    pub before: Option<Value>,
    /// The record (or the changed part, or the visit) after.
    pub after: Option<Value>,
    /// For a contact or need imported from a file (since store version 6): the import it came
    /// with (`id` of [`Store::record_imports`]: who imported which file, its SHA-256, when). Such
    /// an entry is not a row of the history: it is made from the record and its import, `seq`
    /// is that of the last entry written before the import and `at` the import's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<i64>,
}

fn check_text(what: &str, s: &str, max: usize) -> Result<()> {
    if s.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{what} is empty")));
    }
    if s.chars().count() > max {
        return Err(StoreError::Invalid(format!("{what} is longer than {max} characters")));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(StoreError::Invalid(format!("{what} contains control characters")));
    }
    Ok(())
}

/// How deeply `v` nests objects and arrays (a scalar: 0), counting no further than `limit + 1`.
fn depth(v: &Value, limit: usize) -> usize {
    let inner = |it: &mut dyn Iterator<Item = &Value>| {
        if limit == 0 {
            return 1;
        }
        1 + it.map(|c| depth(c, limit - 1)).max().unwrap_or(0)
    };
    match v {
        Value::Object(m) => inner(&mut m.values()),
        Value::Array(a) => inner(&mut a.iter()),
        _ => 0,
    }
}

/// Refuses a status (or a patch of one, `what`) nested deeper than [`MAX_STATUS_DEPTH`].
fn check_depth(what: &str, v: &Value) -> Result<()> {
    if depth(v, MAX_STATUS_DEPTH) > MAX_STATUS_DEPTH {
        return Err(StoreError::Invalid(format!(
            "{what} nests objects or arrays more than {MAX_STATUS_DEPTH} levels deep (the most a status may; e.g. {{\"a\": {{\"b\": 1}}}} is 2)"
        )));
    }
    Ok(())
}

fn check_position(lon: f64, lat: f64) -> Result<()> {
    crate::model::rules::check_lon_lat(lon, lat)
        .map_err(|why| StoreError::Invalid(format!("position lon {lon}, lat {lat} is out of range (WGS84): {why}")))
}

/// A station's own radius: the one radius policy ([`crate::model::rules::RADIUS_M`]).
fn check_radius(r: Option<f64>) -> Result<()> {
    match r {
        Some(r) => crate::model::rules::check_radius(r)
            .map_err(|bound| StoreError::Invalid(format!("radius_m must be a number of metres from {bound}, got {r}"))),
        None => Ok(()),
    }
}

impl NewStation {
    /// Checks the station against the divisions: non-empty id (when given) and name, a known
    /// code of the station's level, a WGS84 position in range, a positive radius.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the first field at fault.
    pub fn validate(&self, divisions: &Divisions) -> Result<()> {
        if let Some(id) = &self.id {
            check_text("id", id, MAX_NAME_CHARS)?;
        }
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        let Some(unit) = divisions.find(&self.code) else {
            return Err(StoreError::Invalid(format!("unknown admin code {:?} (not among the divisions)", self.code)));
        };
        let l = divisions.get(unit).level;
        if l != self.level {
            return Err(StoreError::Invalid(format!(
                "code {} is a {l}, but the station's level is {}",
                self.code, self.level
            )));
        }
        check_position(self.lon, self.lat)?;
        check_radius(self.radius_m)
    }
}

impl StationPatch {
    /// Checks the fields given: a non-empty name, a position in range, a positive radius, and
    /// at least one field.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the first field at fault.
    pub fn validate(&self) -> Result<()> {
        if *self == StationPatch::default() {
            return Err(StoreError::Invalid(
                "the patch changes nothing (fields: name, lon, lat, demonstration, mobile, radius_m)".into(),
            ));
        }
        if let Some(n) = &self.name {
            check_text("name", n, MAX_NAME_CHARS)?;
        }
        check_position(self.lon.unwrap_or(0.0), self.lat.unwrap_or(0.0))?;
        check_radius(self.radius_m)
    }
}

impl NewVisit {
    /// Checks the date, the note's length and the needs (at most [`MAX_VISIT_NEEDS`], each
    /// note bounded as a visit's).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] saying what is wrong, naming the field.
    pub fn validate(&self) -> Result<()> {
        parse_date(&self.date).map_err(StoreError::Invalid)?;
        check_note("note", &self.note)?;
        if self.needs.len() > MAX_VISIT_NEEDS {
            return Err(StoreError::Invalid(format!(
                "needs: {} needs in one visit, more than the {MAX_VISIT_NEEDS} allowed",
                self.needs.len()
            )));
        }
        for (k, n) in self.needs.iter().enumerate() {
            check_note(&format!("needs[{k}].note"), &n.note)?;
        }
        Ok(())
    }
}

/// Refuses a note (field `what`) longer than [`MAX_NOTE_CHARS`].
pub(crate) fn check_note(what: &str, note: &str) -> Result<()> {
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(StoreError::Invalid(format!("{what} is longer than {MAX_NOTE_CHARS} characters")));
    }
    Ok(())
}

/// The contact kind in column `k` of a row (the table's CHECK admits only the four names).
pub(crate) fn contact_kind(r: &Row<'_>, k: usize) -> rusqlite::Result<ContactKind> {
    let s: String = r.get(k)?;
    ContactKind::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(k, rusqlite::types::Type::Text, format!("unknown kind {s:?}").into())
    })
}

/// The households whose status was edited, through their partial index `households_edited`.
pub(crate) const EDITED_HOUSEHOLDS: &str =
    concat!("SELECT id, status, version FROM households WHERE ", super::edited_households!());

const STATION_COLS: &str = "id, name, level, code, lon, lat, demonstration, mobile, radius_m, active, version";

fn station_from_row(r: &Row<'_>) -> rusqlite::Result<StationRecord> {
    let level: String = r.get(2)?;
    Ok(StationRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        level: level.parse().map_err(|e: crate::model::UnknownLevel| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown level {}", e.0).into(),
            )
        })?,
        code: r.get(3)?,
        lon: r.get(4)?,
        lat: r.get(5)?,
        demonstration: r.get(6)?,
        mobile: r.get(7)?,
        radius_m: r.get(8)?,
        active: r.get(9)?,
        version: r.get(10)?,
    })
}

pub(crate) fn station_in(c: &Connection, id: &str) -> Result<Option<StationRecord>> {
    c.prepare_cached(&format!("SELECT {STATION_COLS} FROM stations WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], station_from_row).optional())
        .map_err(StoreError::db("reading a station"))
}

/// The present household `id`, or [`StoreError::NotFound`].
pub(crate) fn present_household(c: &Connection, id: &str) -> Result<HouseholdRecord> {
    household_in(c, id)?.ok_or_else(|| StoreError::NotFound { what: "household", id: id.to_string() })
}

pub(crate) fn household_in(c: &Connection, id: &str) -> Result<Option<HouseholdRecord>> {
    let row: Option<(String, String, i64)> = c
        .prepare_cached("SELECT id, status, version FROM households WHERE id = ?1 AND present = 1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(StoreError::db("reading a household"))?;
    row.map(|(id, status, version)| {
        let status = serde_json::from_str(&status)
            .map_err(|e| StoreError::Invalid(format!("household {id}: stored status is not JSON: {e}")))?;
        Ok(HouseholdRecord { id, status, version })
    })
    .transpose()
}

/// Appends one change to `history`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_history(
    tx: &Transaction<'_>,
    actor: &Actor,
    kind: &str,
    record_id: &str,
    action: &str,
    version: Option<i64>,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO history (user_id, actor, kind, record_id, action, version, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            actor.id(),
            actor.name(),
            kind,
            record_id,
            action,
            version,
            before.map(Value::to_string),
            after.map(Value::to_string),
        ])
    })
    .map_err(StoreError::db("appending to the history"))?;
    Ok(())
}

/// Appends the audit entry of a write to the write's own transaction.
pub(crate) fn append_audit(tx: &Transaction<'_>, user: &User, action: &str, target: &str) -> Result<()> {
    tx.prepare_cached("INSERT INTO audit (user_id, action, target) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![user.id, action, target]))
        .map_err(StoreError::db("appending to the audit log"))?;
    Ok(())
}

pub(crate) fn immediate(c: &mut Connection) -> Result<Transaction<'_>> {
    c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::db("starting a transaction"))
}

pub(crate) fn commit(tx: Transaction<'_>) -> Result<()> {
    tx.commit().map_err(StoreError::db("committing"))
}

pub(crate) fn need_role(user: &User, role: Role, what: &str) -> Result<()> {
    if user.role == role {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("only a {role} may {what}; {} is a {}", user.name, user.role)))
    }
}

pub(crate) fn check_version(what: &'static str, id: &str, if_match: Option<i64>, current: i64) -> Result<()> {
    match if_match {
        Some(expected) if expected != current => {
            Err(StoreError::Conflict { what, id: id.to_string(), expected, current })
        }
        _ => Ok(()),
    }
}

pub(crate) fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("records serialise")
}

impl Store {
    /// The household's record, if it exists (and was not removed by a later import).
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn household(&self, id: &str) -> Result<Option<HouseholdRecord>> {
        self.read(|c| household_in(c, id))
    }

    /// Records of many households at once (those that exist), for pages of features.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn households(&self, ids: &[&str]) -> Result<Vec<HouseholdRecord>> {
        self.read(|c| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(h) = household_in(c, id)? {
                    out.push(h);
                }
            }
            Ok(out)
        })
    }

    /// The names and addresses (personal data) of the households `ids`, by id, as stored now:
    /// one indexed query for a page of a grid worker's households (the server keeps no names in
    /// memory). A household the store lacks is left out; one removed by a later import keeps
    /// its last name and address.
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn names_and_addresses(&self, ids: &[&str]) -> Result<NamesAndAddresses> {
        if ids.is_empty() {
            return Ok(NamesAndAddresses::new());
        }
        let list = Value::from(ids.to_vec()).to_string();
        self.read(|c| {
            let mut s = c
                .prepare_cached(
                    "SELECT h.id, h.name, h.address FROM json_each(?1) AS j JOIN households AS h ON h.id = j.value",
                )
                .map_err(StoreError::db("reading names and addresses"))?;
            let rows = s
                .query_map([list], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
                .map_err(StoreError::db("reading names and addresses"))?;
            rows.collect::<rusqlite::Result<_>>().map_err(StoreError::db("reading names and addresses"))
        })
    }

    /// The households whose status was ever edited (version above 1 or a non-empty status),
    /// read through their partial index (no scan of every household).
    ///
    /// # Errors
    /// [`StoreError::Db`] on a database error.
    pub fn edited_households(&self) -> Result<Vec<HouseholdRecord>> {
        self.read(|c| {
            let rows: Vec<(String, String, i64)> = c
                .prepare(EDITED_HOUSEHOLDS)
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
                .map_err(StoreError::db("reading edited households"))?;
            rows.into_iter()
                .map(|(id, status, version)| {
                    let status = serde_json::from_str(&status)
                        .map_err(|e| StoreError::Invalid(format!("household {id}: stored status is not JSON: {e}")))?;
                    Ok(HouseholdRecord { id, status, version })
                })
                .collect()
        })
    }

    /// Applies a JSON merge patch (RFC 7396) to a household's `status`, by `user` (a grid
    /// worker; the caller checks the household is in one of their grids). `if_match`, when
    /// given, must be the household's current version.
    ///
    /// The audit entry `households.patch` (the grid worker's access) is written in the same
    /// transaction as the change, also when the patch changes nothing: either both are
    /// stored or neither.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], [`StoreError::Invalid`] when the
    /// patch is not an object, the user is not a grid worker, or the patch or the status would
    /// exceed [`MAX_STATUS_DEPTH`] or [`MAX_STATUS_BYTES`]; [`StoreError::Db`].
    pub fn patch_household_status(
        &self,
        user: &User,
        id: &str,
        patch: &Value,
        if_match: Option<i64>,
    ) -> Result<HouseholdRecord> {
        need_role(user, Role::GridWorker, "edit a household")?;
        if !patch.is_object() {
            return Err(StoreError::Invalid(
                "the body must be a JSON merge patch object of the household's status, e.g. {\"needs\": \"…\"}".into(),
            ));
        }
        check_depth("the patch", patch)?;
        self.write(|c| {
            let tx = immediate(c)?;
            let before = present_household(&tx, id)?;
            check_version("household", id, if_match, before.version)?;
            let mut status = before.status.clone();
            merge_patch(&mut status, patch);
            check_depth("the status", &status)?;
            let text = status.to_string();
            if text.len() > MAX_STATUS_BYTES {
                return Err(StoreError::Invalid(format!(
                    "the status would be {} bytes, more than the {MAX_STATUS_BYTES} allowed ({} KiB)",
                    text.len(),
                    MAX_STATUS_BYTES / 1024
                )));
            }
            append_audit(&tx, user, "households.patch", id)?;
            if status == before.status {
                commit(tx)?;
                return Ok(before);
            }
            let version = before.version + 1;
            tx.prepare_cached("UPDATE households SET status = ?1, version = ?2 WHERE id = ?3 AND version = ?4")
                .and_then(|mut s| s.execute(params![text, version, id, before.version]))
                .map_err(StoreError::db("updating a household"))?;
            append_history(
                &tx,
                &user.into(),
                "household",
                id,
                "status",
                Some(version),
                Some(&before.status),
                Some(&status),
            )?;
            commit(tx)?;
            Ok(HouseholdRecord { id: id.to_string(), status, version })
        })
    }

    /// Records a visit to a household by `user` (a grid worker; the caller checks the grid),
    /// with the needs raised in it (each opened on the visit's day, with its first change and
    /// a `need` history entry), the visit's history entry and its audit entry
    /// `households.visit`, all in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad date, note or list of needs, [`StoreError::NotFound`],
    /// [`StoreError::Db`].
    pub fn add_visit(&self, user: &User, household_id: &str, visit: &NewVisit) -> Result<Visit> {
        need_role(user, Role::GridWorker, "record a visit")?;
        visit.validate()?;
        self.write(|c| {
            let tx = immediate(c)?;
            let h = present_household(&tx, household_id)?;
            let (id, at): (i64, String) = tx
                .prepare_cached(
                    "INSERT INTO visits (household_id, date, kind, note, user_id) VALUES (?1, ?2, ?3, ?4, ?5)
                     RETURNING id, at",
                )
                .and_then(|mut s| {
                    s.query_row(params![household_id, visit.date, visit.kind.as_str(), visit.note, user.id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .map_err(StoreError::db("recording a visit"))?;
            let mut needs = Vec::with_capacity(visit.needs.len());
            for n in &visit.needs {
                needs.push(insert_need(&tx, user, &h, n.category, &n.note, &visit.date, Some(id))?);
            }
            let v = Visit {
                id,
                household_id: household_id.to_string(),
                date: visit.date.clone(),
                kind: visit.kind,
                note: visit.note.clone(),
                needs: needs.iter().map(|n| n.id).collect(),
                user_id: user.id,
                user: user.name.clone(),
                at,
            };
            append_history(
                &tx,
                &user.into(),
                "household",
                household_id,
                "visit",
                Some(h.version),
                None,
                Some(&json(&v)),
            )?;
            for n in &needs {
                append_need_history(&tx, user, household_id, h.version, n)?;
            }
            append_audit(&tx, user, "households.visit", household_id)?;
            commit(tx)?;
            Ok(v)
        })
    }

    /// The visits of a household, oldest first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Db`].
    pub fn visits(&self, household_id: &str) -> Result<Vec<Visit>> {
        self.read(|c| {
            present_household(c, household_id)?;
            let mut raised: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
            c.prepare_cached(
                "SELECT visit_id, id FROM needs WHERE household_id = ?1 AND visit_id IS NOT NULL ORDER BY id",
            )
            .and_then(|mut s| {
                for row in s.query_map([household_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
                    let (visit, need) = row?;
                    raised.entry(visit).or_default().push(need);
                }
                Ok(())
            })
            .map_err(StoreError::db("reading the needs of visits"))?;
            c.prepare_cached(
                "SELECT v.id, v.household_id, v.date, v.kind, v.note, v.user_id, u.name, v.at
                 FROM visits v JOIN users u ON u.id = v.user_id WHERE v.household_id = ?1 ORDER BY v.id",
            )
            .and_then(|mut s| {
                s.query_map([household_id], |r| {
                    let id = r.get(0)?;
                    Ok(Visit {
                        id,
                        household_id: r.get(1)?,
                        date: r.get(2)?,
                        kind: contact_kind(r, 3)?,
                        note: r.get(4)?,
                        needs: raised.remove(&id).unwrap_or_default(),
                        user_id: r.get(5)?,
                        user: r.get(6)?,
                        at: r.get(7)?,
                    })
                })?
                .collect()
            })
            .map_err(StoreError::db("reading visits"))
        })
    }

    /// One station.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn station(&self, id: &str) -> Result<Option<StationRecord>> {
        self.read(|c| station_in(c, id))
    }

    /// Every station (closed ones too), in the order they were first stored: imported ones in
    /// file order, then added ones. This order is stable, so station indexes built from it
    /// stay valid from one start to the next.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn stations(&self) -> Result<Vec<StationRecord>> {
        self.read(|c| {
            c.prepare(&format!("SELECT {STATION_COLS} FROM stations ORDER BY seq"))
                .and_then(|mut s| s.query_map([], station_from_row)?.collect())
                .map_err(StoreError::db("reading stations"))
        })
    }

    /// Adds a station (by a planner). The caller validates it first
    /// ([`NewStation::validate`]).
    ///
    /// # Errors
    /// [`StoreError::Exists`] when the id is taken, [`StoreError::Invalid`] when the user is
    /// not a planner, [`StoreError::Db`].
    pub fn add_station(&self, user: &User, s: &NewStation) -> Result<StationRecord> {
        need_role(user, Role::Planner, "add a station")?;
        self.write(|c| {
            let tx = immediate(c)?;
            let id = match &s.id {
                Some(id) => id.trim().to_string(),
                None => {
                    let next: i64 = tx
                        .query_row("SELECT coalesce(max(seq), 0) + 1 FROM stations", [], |r| r.get(0))
                        .map_err(StoreError::db("numbering a station"))?;
                    format!("new-{next}")
                }
            };
            if station_in(&tx, &id)?.is_some() {
                return Err(StoreError::Exists { what: "station", id });
            }
            let rec = StationRecord {
                id: id.clone(),
                name: s.name.trim().to_string(),
                level: s.level,
                code: s.code.clone(),
                lon: s.lon,
                lat: s.lat,
                demonstration: s.demonstration,
                mobile: s.mobile,
                radius_m: s.radius_m,
                active: true,
                version: 1,
            };
            insert_station(&tx, &rec, None)?;
            append_history(&tx, &user.into(), "station", &id, "add", Some(1), None, Some(&json(&rec)))?;
            commit(tx)?;
            Ok(rec)
        })
    }

    /// Moves, renames or re-flags a station (by a planner); returns it before and after.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], [`StoreError::Invalid`] (not a
    /// planner, a closed station, a bad patch), [`StoreError::Db`].
    pub fn update_station(
        &self,
        user: &User,
        id: &str,
        patch: &StationPatch,
        if_match: Option<i64>,
    ) -> Result<(StationRecord, StationRecord)> {
        need_role(user, Role::Planner, "change a station")?;
        patch.validate()?;
        self.edit_open_station(user, id, if_match, "update", "is closed; add a new station instead", |after| {
            if let Some(n) = &patch.name {
                after.name = n.trim().to_string();
            }
            after.lon = patch.lon.unwrap_or(after.lon);
            after.lat = patch.lat.unwrap_or(after.lat);
            after.demonstration = patch.demonstration.unwrap_or(after.demonstration);
            after.mobile = patch.mobile.unwrap_or(after.mobile);
            if patch.radius_m.is_some() {
                after.radius_m = patch.radius_m;
            }
        })
    }

    /// Closes a station (by a planner); it stays in the store, inactive, with its history.
    /// Returns it before and after.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], [`StoreError::Invalid`] (not a
    /// planner, already closed), [`StoreError::Db`].
    pub fn close_station(
        &self,
        user: &User,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(StationRecord, StationRecord)> {
        need_role(user, Role::Planner, "close a station")?;
        self.edit_open_station(user, id, if_match, "close", "is closed already", |after| after.active = false)
    }

    /// One transaction that changes an open station: checks the version, applies `change`,
    /// and, if anything changed, writes the next version and its history entry (`action`).
    /// `if_closed` ends the error for a closed station (`station ID …`).
    fn edit_open_station(
        &self,
        user: &User,
        id: &str,
        if_match: Option<i64>,
        action: &str,
        if_closed: &str,
        change: impl FnOnce(&mut StationRecord),
    ) -> Result<(StationRecord, StationRecord)> {
        self.write(|c| {
            let tx = immediate(c)?;
            let Some(before) = station_in(&tx, id)? else {
                return Err(StoreError::NotFound { what: "station", id: id.to_string() });
            };
            check_version("station", id, if_match, before.version)?;
            if !before.active {
                return Err(StoreError::Invalid(format!("station {id} {if_closed}")));
            }
            let mut after = before.clone();
            change(&mut after);
            if after == before {
                return Ok((before, after));
            }
            after.version += 1;
            write_station(&tx, &after, before.version)?;
            append_history(
                &tx,
                &user.into(),
                "station",
                id,
                action,
                Some(after.version),
                Some(&json(&before)),
                Some(&json(&after)),
            )?;
            commit(tx)?;
            Ok((before, after))
        })
    }

    /// The history of one record (`kind`: `household`, `station` or `grid`), oldest first.
    ///
    /// A household's contacts and needs imported from files since store version 6 have no
    /// history row each: their entries (`visit`, `need`, with [`HistoryEntry::import`]) are made
    /// from the records and their import, with what the row used to hold (the visit, the need
    /// with the changes it was imported with, the household's version then), and placed where
    /// the import stands in the trail.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn history(&self, kind: &str, record_id: &str) -> Result<Vec<HistoryEntry>> {
        self.read(|c| {
            let stored = stored_history(c, kind, record_id)?;
            if kind != "household" {
                return Ok(stored);
            }
            let imported = imported_history(c, record_id)?;
            if imported.is_empty() {
                return Ok(stored);
            }
            let mut all: Vec<((i64, u8, i64, i64), HistoryEntry)> = stored
                .into_iter()
                .map(|e| ((e.seq, 0, 0, 0), e))
                .chain(imported.into_iter().map(|((seq, import, id), e)| ((seq, 1, import, id), e)))
                .collect();
            all.sort_by_key(|(k, _)| *k);
            // A household's version changes only with an entry of its own (status, reimport, …),
            // from 1 when first imported: an imported record's is the last one before it.
            let mut version = 1;
            Ok(all
                .into_iter()
                .map(|(_, mut e)| {
                    match (e.import, e.version) {
                        (Some(_), _) => e.version = Some(version),
                        (None, Some(v)) => version = v,
                        (None, None) => {}
                    }
                    e
                })
                .collect())
        })
    }
}

/// The rows of `history` of one record, oldest first.
fn stored_history(c: &Connection, kind: &str, record_id: &str) -> Result<Vec<HistoryEntry>> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    c.prepare_cached(
        "SELECT id, at, user_id, actor, kind, record_id, action, version, before, after
                 FROM history WHERE kind = ?1 AND record_id = ?2 ORDER BY id",
    )
    .and_then(|mut s| {
        s.query_map([kind, record_id], |r| {
            Ok(HistoryEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                user_id: r.get(2)?,
                actor: r.get(3)?,
                kind: r.get(4)?,
                record_id: r.get(5)?,
                action: r.get(6)?,
                version: r.get(7)?,
                before: parse(r.get(8)?),
                after: parse(r.get(9)?),
                import: None,
            })
        })?
        .collect()
    })
    .map_err(StoreError::db("reading the history"))
}

/// Inserts a new station row.
pub(crate) fn insert_station(tx: &Transaction<'_>, s: &StationRecord, import_sha256: Option<&[u8]>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO stations (id, name, level, code, lon, lat, demonstration, mobile, radius_m, active, version, import_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.id,
            s.name,
            s.level.as_str(),
            s.code,
            s.lon,
            s.lat,
            s.demonstration,
            s.mobile,
            s.radius_m,
            s.active,
            s.version,
            import_sha256
        ])
    })
    .map_err(StoreError::db(format!("storing station {}", s.id)))?;
    Ok(())
}

/// Overwrites a station's row with `s` if its version is still `was`.
pub(crate) fn write_station(tx: &Transaction<'_>, s: &StationRecord, was: i64) -> Result<()> {
    let n = tx
        .prepare_cached(
            "UPDATE stations SET name = ?2, level = ?3, code = ?4, lon = ?5, lat = ?6, demonstration = ?7, mobile = ?8,
             radius_m = ?9, active = ?10, version = ?11 WHERE id = ?1 AND version = ?12",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.id,
                s.name,
                s.level.as_str(),
                s.code,
                s.lon,
                s.lat,
                s.demonstration,
                s.mobile,
                s.radius_m,
                s.active,
                s.version,
                was
            ])
        })
        .map_err(StoreError::db(format!("updating station {}", s.id)))?;
    if n != 1 {
        return Err(StoreError::Conflict { what: "station", id: s.id.clone(), expected: was, current: -1 });
    }
    Ok(())
}
