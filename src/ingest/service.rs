//! Service records from files (I/O): a ledger of contacts (台账) and a table of needs, as a
//! data folder holds them (`contacts.csv`, `needs.csv`, written by `gridcover generate`) or as
//! a station exports them.
//!
//! **Ledger** (`contacts.csv`): columns `household_id` (户编号), `date` (日期, `YYYY-MM-DD`),
//! `kind` (方式: `home`, `phone`, `station`, `other` or 入户, 电话, 来站, 其他; empty = home) and
//! `note` (情况, optional). **Needs** (`needs.csv`): `household_id` (户编号), `category`
//! (类别: employment, medical, housing, pension, legal, hardship, other), `date` (日期, the day
//! raised), `status` (状态: open, in_progress, resolved; empty = open), `status_date` (状态日期,
//! the day it took that status; empty = `date`), `note` (情况). Headers may be in either
//! language; a row naming an unknown household, a bad date, kind, category or status, a
//! status date before the day raised, or a note over [`MAX_NOTE_CHARS`] characters is a
//! [`Reject`] naming the file, line and reason.

use std::collections::HashMap;
use std::path::Path;

use super::table::{csv_rows, RowError};
use super::IngestError;
use crate::model::service::{parse_day, Day, MAX_NOTE_CHARS};
use crate::model::{ContactKind, Households, NeedCategory, NeedSpan, NeedStatus, Reject};

/// One contact of a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// Line in the file (the header is line 1).
    pub line: usize,
    /// The household's index in the data set.
    pub household: u32,
    /// Its id as written.
    pub household_id: String,
    /// Day of the contact.
    pub day: Day,
    /// How.
    pub kind: ContactKind,
    /// What was found or done.
    pub note: String,
}

/// One need of a needs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedRow {
    /// Line in the file.
    pub line: usize,
    /// The need, with its changes: raised (open) and, unless still open, its status since
    /// `status_date`.
    pub need: NeedSpan,
    /// Its household's id as written.
    pub household_id: String,
    /// Note.
    pub note: String,
}

fn ids(households: &Households) -> HashMap<&str, u32> {
    households.id.iter().enumerate().map(|(i, id)| (id.as_str(), i as u32)).collect()
}

fn note(v: Option<std::borrow::Cow<'_, str>>, id: &str) -> Result<String, RowError> {
    let n = v.map(|s| s.into_owned()).unwrap_or_default();
    if n.chars().count() > MAX_NOTE_CHARS {
        return Err(RowError::new(id, format!("note is longer than {MAX_NOTE_CHARS} characters")));
    }
    Ok(n)
}

/// Reads a ledger of contacts (CSV) against the households of a data set.
///
/// # Errors
/// The file cannot be read, or lacks the household id or date column.
pub fn read_ledger(
    path: &Path,
    households: &Households,
    rejects: &mut Vec<Reject>,
) -> Result<Vec<LedgerRow>, IngestError> {
    let by_id = ids(households);
    let cols = [("household_id|户编号", true), ("date|日期", true), ("kind|方式", false), ("note|情况", false)];
    let mut out = Vec::new();
    csv_rows(path, &cols, rejects, |line, v| {
        let id = v[0].text().map(|s| s.into_owned()).unwrap_or_default();
        let Some(&household) = by_id.get(id.as_str()) else {
            return Err(RowError::new(
                &id,
                if id.is_empty() { "household id is empty".into() } else { format!("unknown household {id}") },
            ));
        };
        let day = parse_day(&v[1].text().unwrap_or_default()).map_err(|e| RowError::new(&id, e))?;
        let kind = match v[2].text() {
            None => ContactKind::Home,
            Some(k) => ContactKind::parse(&k).ok_or_else(|| {
                RowError::new(
                    &id,
                    format!("kind {k:?} is none of home, phone, station, other (入户, 电话, 来站, 其他)"),
                )
            })?,
        };
        let note = note(v[3].text(), &id)?;
        out.push(LedgerRow { line, household, household_id: id, day, kind, note });
        Ok(())
    })?;
    Ok(out)
}

/// Reads a needs table (CSV) against the households of a data set.
///
/// # Errors
/// The file cannot be read, or lacks the household id, category or date column.
pub fn read_needs(
    path: &Path,
    households: &Households,
    rejects: &mut Vec<Reject>,
) -> Result<Vec<NeedRow>, IngestError> {
    let by_id = ids(households);
    let cols = [
        ("household_id|户编号", true),
        ("category|类别", true),
        ("date|日期", true),
        ("status|状态", false),
        ("status_date|状态日期", false),
        ("note|情况", false),
    ];
    let mut out = Vec::new();
    csv_rows(path, &cols, rejects, |line, v| {
        let id = v[0].text().map(|s| s.into_owned()).unwrap_or_default();
        let Some(&household) = by_id.get(id.as_str()) else {
            return Err(RowError::new(
                &id,
                if id.is_empty() { "household id is empty".into() } else { format!("unknown household {id}") },
            ));
        };
        let c = v[1].text().unwrap_or_default();
        let category = NeedCategory::parse(&c).ok_or_else(|| {
            RowError::new(
                &id,
                format!("category {c:?} is none of employment, medical, housing, pension, legal, hardship, other"),
            )
        })?;
        let raised = parse_day(&v[2].text().unwrap_or_default()).map_err(|e| RowError::new(&id, e))?;
        let status = match v[3].text() {
            None => NeedStatus::Open,
            Some(s) => NeedStatus::parse(&s)
                .ok_or_else(|| RowError::new(&id, format!("status {s:?} is none of open, in_progress, resolved")))?,
        };
        let since = match v[4].text() {
            None => raised,
            Some(d) => parse_day(&d).map_err(|e| RowError::new(&id, format!("status_date: {e}")))?,
        };
        if since < raised {
            return Err(RowError::new(&id, "status_date is before the day the need was raised"));
        }
        let mut changes = vec![(raised, NeedStatus::Open)];
        if status != NeedStatus::Open {
            changes.push((since, status));
        }
        let note = note(v[5].text(), &id)?;
        out.push(NeedRow { line, need: NeedSpan { household, category, changes }, household_id: id, note });
        Ok(())
    })?;
    Ok(out)
}

/// The service records of a data folder from its `contacts.csv` and `needs.csv` (either may be
/// missing; None when both are), against its households.
///
/// # Errors
/// As [`read_ledger`] and [`read_needs`].
pub fn read_folder_records(
    dir: &Path,
    households: &Households,
    rejects: &mut Vec<Reject>,
) -> Result<Option<crate::model::ServiceRecords>, IngestError> {
    let (c, n) = (dir.join("contacts.csv"), dir.join("needs.csv"));
    if !c.exists() && !n.exists() {
        return Ok(None);
    }
    let contacts = if c.exists() { read_ledger(&c, households, rejects)? } else { Vec::new() };
    let needs = if n.exists() { read_needs(&n, households, rejects)? } else { Vec::new() };
    let (records, _) = crate::model::ServiceRecords::new(
        households.len(),
        contacts.iter().map(|r| (r.household, r.day)),
        needs.into_iter().map(|r| r.need).collect(),
    );
    Ok(Some(records))
}
