//! Service records from files (I/O): a ledger of contacts (台账) and a table of needs, as a
//! data folder holds them (`contacts.csv`, `needs.csv`, written by `gridcover generate`) or as
//! a station exports them.
//!
//! Either is a CSV file or the first sheet of an Excel workbook (`.xlsx`, read with calamine:
//! the first row is the header, and every cell is read as the text the CSV reader would see —
//! a date cell as `YYYY-MM-DD`, a whole number without `.0`), and both go through the same
//! per-row rules.
//!
//! **Ledger** (`contacts.csv`): columns `household_id` (户编号), `date` (日期, `YYYY-MM-DD`),
//! `kind` (方式: `home`, `phone`, `station`, `other` or 入户, 电话, 来站, 其他; empty = home) and
//! `note` (情况, optional). **Needs** (`needs.csv`): `household_id` (户编号), `category`
//! (类别: employment, medical, housing, pension, legal, hardship, other), `date` (日期, the day
//! raised), `status` (状态: open, in_progress, resolved; empty = open), `status_date` (状态日期,
//! the day it took that status; empty = `date`), `note` (情况). Headers may be in either
//! language; a row naming an unknown household, a bad date, kind, category or status, a
//! status date before the day raised, or a note over [`MAX_NOTE_CHARS`] characters is a
//! [`Reject`] naming the file, line (CSV) or sheet row (Excel; the header is 1 in both) and
//! reason.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use super::table::{csv_rows_while, locate_columns, ColSpec, RowError, Val};
use super::{file_name, IngestError};
use crate::model::service::{parse_day, Day, MAX_NOTE_CHARS};
use crate::model::{ContactKind, Households, NeedCategory, NeedSpan, NeedStatus, Reject, StrColumn};

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

/// The households' ids and indexes, which the rows of a ledger or needs table are read against:
/// made once for all the tables read against the same households.
///
/// An open-addressing table of household indexes (plus one; 0 is a free slot) at most half
/// full, keyed by the id's xxh3 and compared with the id column itself: 4 to 8 bytes a
/// household instead of a map entry holding the id's `&str` (about 40 bytes a household with
/// the map's spare room: 1.7 GB of a national import's peak).
#[derive(Debug, Default)]
pub struct HouseholdIds<'a> {
    ids: Option<&'a StrColumn>,
    slots: Vec<AtomicU32>,
}

impl<'a> HouseholdIds<'a> {
    /// The ids of `households`.
    pub fn new(households: &'a Households) -> Self {
        Self::of(&households.id)
    }

    /// The ids of a column of household ids (row `i` is household `i`); of an id given twice,
    /// the later row.
    ///
    /// Made in parallel (45 million ids nationally: most of the time is waiting for memory,
    /// a slot of a 512 MB table per id): each id claims a free slot with a compare-and-swap,
    /// and the row of an id met twice is the larger (`fetch_max`), so the table answers the
    /// same whatever the order the rows were put in.
    ///
    /// # Panics
    /// More than `u32::MAX / 2` ids.
    pub fn of(ids: &'a StrColumn) -> Self {
        let n = ids.len();
        assert!(n < (u32::MAX / 2) as usize, "too many households");
        let slots: Vec<AtomicU32> =
            std::iter::repeat_with(|| AtomicU32::new(0)).take((2 * n).next_power_of_two().max(16)).collect();
        let mask = slots.len() - 1;
        (0..n).into_par_iter().with_min_len(1 << 14).for_each(|i| {
            let (id, me) = (&ids[i], i as u32 + 1);
            let mut at = Self::hash(id) & mask;
            loop {
                match slots[at].load(Ordering::Acquire) {
                    0 => match slots[at].compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return,
                        // Taken meanwhile: look at what took it.
                        Err(_) => continue,
                    },
                    // A slot holds the rows of one id only: the later row stays.
                    k if &ids[k as usize - 1] == id => {
                        slots[at].fetch_max(me, Ordering::AcqRel);
                        return;
                    }
                    _ => at = (at + 1) & mask,
                }
            }
        });
        HouseholdIds { ids: Some(ids), slots }
    }

    fn hash(id: &str) -> usize {
        xxhash_rust::xxh3::xxh3_64(id.as_bytes()) as usize
    }

    /// The index of the household with id `id`.
    pub fn get(&self, id: &str) -> Option<u32> {
        let ids = self.ids?;
        let mask = self.slots.len() - 1;
        let mut at = Self::hash(id) & mask;
        loop {
            match self.slots[at].load(Ordering::Relaxed) {
                0 => return None,
                k if &ids[k as usize - 1] == id => return Some(k - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }
}

fn note(v: Option<std::borrow::Cow<'_, str>>, id: &str) -> Result<String, RowError> {
    let n = v.map(|s| s.into_owned()).unwrap_or_default();
    if n.chars().count() > MAX_NOTE_CHARS {
        return Err(RowError::new(id, format!("note is longer than {MAX_NOTE_CHARS} characters")));
    }
    Ok(n)
}

/// The household of a row's id cell: its index and the id as written.
fn household(by_id: &HouseholdIds<'_>, v: Val<'_>) -> Result<(u32, String), RowError> {
    let id = v.text().map(|s| s.into_owned()).unwrap_or_default();
    match by_id.get(id.as_str()) {
        Some(h) => Ok((h, id)),
        None if id.is_empty() => Err(RowError::new(&id, "household id is empty")),
        None => Err(RowError::new(&id, format!("unknown household {id}"))),
    }
}

/// The columns of a ledger.
const LEDGER_COLS: [ColSpec; 4] =
    [("household_id|户编号", true), ("date|日期", true), ("kind|方式", false), ("note|情况", false)];

/// The columns of a needs table.
const NEED_COLS: [ColSpec; 6] = [
    ("household_id|户编号", true),
    ("category|类别", true),
    ("date|日期", true),
    ("status|状态", false),
    ("status_date|状态日期", false),
    ("note|情况", false),
];

/// One ledger row (cells as [`LEDGER_COLS`]) → a contact or the reason it is rejected: the one
/// rule for CSV and Excel alike.
fn ledger_row(by_id: &HouseholdIds<'_>, line: usize, v: &[Val<'_>; 4]) -> Result<LedgerRow, RowError> {
    let (household, id) = household(by_id, v[0])?;
    let day = parse_day(&v[1].text().unwrap_or_default()).map_err(|e| RowError::new(&id, e))?;
    let kind = match v[2].text() {
        None => ContactKind::Home,
        Some(k) => ContactKind::parse(&k).ok_or_else(|| {
            RowError::new(&id, format!("kind {k:?} is none of home, phone, station, other (入户, 电话, 来站, 其他)"))
        })?,
    };
    let note = note(v[3].text(), &id)?;
    Ok(LedgerRow { line, household, household_id: id, day, kind, note })
}

/// One needs-table row (cells as [`NEED_COLS`]) → a need or the reason it is rejected.
fn need_row(by_id: &HouseholdIds<'_>, line: usize, v: &[Val<'_>; 6]) -> Result<NeedRow, RowError> {
    let (household, id) = household(by_id, v[0])?;
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
    Ok(NeedRow { line, need: NeedSpan { household, category, changes }, household_id: id, note })
}

/// True for a file the Excel reader reads (`.xlsx`, any case); every other file is read as
/// CSV.
pub fn is_xlsx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

/// The rows of a table, CSV or Excel ([`is_xlsx`]), each given to `f` with its line or sheet
/// row (1-based, the header being 1); a row `f` refuses becomes a [`Reject`]. After `f`
/// answers `Ok(false)` no further row is given to it (a CSV file is not read further).
fn table_rows<const N: usize>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(usize, &[Val<'_>; N]) -> Result<bool, RowError>,
) -> Result<(), IngestError> {
    if is_xlsx(path) {
        let mut going = true;
        xlsx_rows(path, cols, rejects, |line, v| {
            if going {
                going = f(line, v)?;
            }
            Ok(())
        })
    } else {
        csv_rows_while(path, cols, rejects, f)
    }
}

/// A sheet cell as the text the CSV reader would see in its place (none: empty). Whole numbers
/// are written as integers (a household id typed as a number, `10023`, not `10023.0`); a cell
/// stored as an Excel date is `YYYY-MM-DD` (with its time, `YYYY-MM-DD HH:MM:SS`, when it has
/// one, which the date rule then refuses); an error cell is its code (`#N/A`).
fn cell_text(d: &calamine::Data) -> Option<String> {
    use calamine::Data;
    let text = match d {
        Data::Empty => return None,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (*f as i64).to_string(),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, m, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{m:02}-{d:02}")
            } else {
                format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            }
        }
        Data::DateTime(dt) => dt.as_f64().to_string(),
        Data::Error(e) => e.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// Reads the first sheet of an Excel workbook like [`csv_rows_while`](super::table::csv_rows_while) reads a CSV file: the first
/// row of the sheet is the header, every cell is turned into text ([`cell_text`]), rows are
/// numbered as the sheet numbers them (the header is row 1) and a row with no cell at all is
/// skipped, as a blank line of a CSV file is.
///
/// # Errors
/// The file cannot be read or is not a workbook; it has no sheet, or its first row is empty; a
/// required column is missing.
fn xlsx_rows<const N: usize>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(usize, &[Val<'_>; N]) -> Result<(), RowError>,
) -> Result<(), IngestError> {
    use calamine::{HeaderRow, Reader, Xlsx};
    let file = std::fs::File::open(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    let err = |message: String| IngestError::Xlsx { path: path.to_path_buf(), message };
    let mut wb = Xlsx::new(std::io::BufReader::new(file)).map_err(|e| err(e.to_string()))?;
    wb.with_header_row(HeaderRow::Row(0));
    let range =
        wb.worksheet_range_at(0).ok_or_else(|| err("it has no sheet".into()))?.map_err(|e| err(e.to_string()))?;
    let empty_header = || err("the first row of the first sheet (the header) is empty".into());
    let Some((first_row, _)) = range.start() else { return Err(empty_header()) };
    let mut rows = range.rows();
    let headers: Vec<String> = match rows.next() {
        Some(h) if first_row == 0 => {
            h.iter().map(|c| cell_text(c).unwrap_or_default().trim_start_matches('\u{feff}').to_string()).collect()
        }
        _ => Vec::new(),
    };
    if headers.iter().all(String::is_empty) {
        return Err(empty_header());
    }
    let idx = locate_columns(path, cols, &headers)?;
    let name = file_name(path);
    for (i, row) in rows.enumerate() {
        let texts: [Option<String>; N] = std::array::from_fn(|k| idx[k].and_then(|c| row.get(c)).and_then(cell_text));
        if row.iter().all(|c| cell_text(c).is_none()) {
            continue;
        }
        let vals: [Val<'_>; N] = std::array::from_fn(|k| texts[k].as_deref().map_or(Val::Null, Val::Text));
        let line = i + 2;
        if let Err(e) = f(line, &vals) {
            rejects.push(Reject { file: name.clone(), row: line, id: e.id, reason: e.reason });
        }
    }
    Ok(())
}

/// Reads a ledger of contacts (CSV, or the first sheet of an `.xlsx` workbook) against the
/// households of a data set.
///
/// # Errors
/// The file cannot be read, or lacks the household id or date column.
pub fn read_ledger(
    path: &Path,
    households: &Households,
    rejects: &mut Vec<Reject>,
) -> Result<Vec<LedgerRow>, IngestError> {
    let mut out = Vec::new();
    each_ledger_row(path, &HouseholdIds::new(households), rejects, |r| {
        out.push(r);
        Ok::<_, std::convert::Infallible>(())
    })?
    .unwrap_or_else(|never| match never {});
    Ok(out)
}

/// Reads a ledger like [`read_ledger`], giving each contact to `f` in the order of the file
/// instead of keeping them (a national `contacts.csv` holds 144 million): the rows `f` is given
/// and the rejects are those [`read_ledger`] gives. The first error of `f` stops the reading and
/// is returned (inside the `Ok`: the file itself was readable so far).
///
/// # Errors
/// As [`read_ledger`].
pub fn each_ledger_row<E>(
    path: &Path,
    ids: &HouseholdIds<'_>,
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(LedgerRow) -> Result<(), E>,
) -> Result<Result<(), E>, IngestError> {
    let mut stopped = Ok(());
    table_rows(path, &LEDGER_COLS, rejects, |line, v| {
        let row = ledger_row(ids, line, v)?;
        stopped = f(row);
        Ok(stopped.is_ok())
    })?;
    Ok(stopped)
}

/// Reads a needs table (CSV, or the first sheet of an `.xlsx` workbook) against the households
/// of a data set.
///
/// # Errors
/// The file cannot be read, or lacks the household id, category or date column.
pub fn read_needs(
    path: &Path,
    households: &Households,
    rejects: &mut Vec<Reject>,
) -> Result<Vec<NeedRow>, IngestError> {
    let mut out = Vec::new();
    each_need_row(path, &HouseholdIds::new(households), rejects, |r| {
        out.push(r);
        Ok::<_, std::convert::Infallible>(())
    })?
    .unwrap_or_else(|never| match never {});
    Ok(out)
}

/// Reads a needs table like [`read_needs`], giving each need to `f` in the order of the file,
/// as [`each_ledger_row`] does.
///
/// # Errors
/// As [`read_needs`].
pub fn each_need_row<E>(
    path: &Path,
    ids: &HouseholdIds<'_>,
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(NeedRow) -> Result<(), E>,
) -> Result<Result<(), E>, IngestError> {
    let mut stopped = Ok(());
    table_rows(path, &NEED_COLS, rejects, |line, v| {
        let row = need_row(ids, line, v)?;
        stopped = f(row);
        Ok(stopped.is_ok())
    })?;
    Ok(stopped)
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
    let ids = HouseholdIds::new(households);
    let mut contacts = Vec::new();
    if c.exists() {
        each_ledger_row(&c, &ids, rejects, |r| {
            contacts.push((r.household, r.day));
            Ok::<_, std::convert::Infallible>(())
        })?
        .unwrap_or_else(|never| match never {});
    }
    let mut needs = Vec::new();
    if n.exists() {
        each_need_row(&n, &ids, rejects, |r| {
            needs.push(r.need);
            Ok::<_, std::convert::Infallible>(())
        })?
        .unwrap_or_else(|never| match never {});
    }
    let (records, _) = crate::model::ServiceRecords::new(households.len(), contacts, needs);
    Ok(Some(records))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::HouseholdIds;
    use crate::model::StrColumn;

    /// The table answers as a map of the ids to their rows would: every id its row (of an id
    /// given twice, the later), any other text none, at sizes around each growth of the table.
    #[test]
    fn household_ids_answer_as_a_map() {
        for n in [0usize, 1, 7, 8, 9, 1_000, 40_000] {
            let mut col = StrColumn::default();
            let mut want = HashMap::new();
            for i in 0..n {
                let id = if i % 97 == 5 { format!("H{:07}", i - 5) } else { format!("H{i:07}") };
                col.push(&id);
                want.insert(id, i as u32);
            }
            let ids = HouseholdIds::of(&col);
            for (id, &i) in &want {
                assert_eq!(ids.get(id), Some(i), "{id} of {n}");
            }
            for other in ["", "H", "h0000001", "H00000001", "H0000001 ", "户1"] {
                assert_eq!(ids.get(other), want.get(other).copied(), "{other:?} of {n}");
            }
            for i in n..n + 50 {
                assert_eq!(ids.get(&format!("H{i:07}")), None);
            }
        }
        assert_eq!(HouseholdIds::default().get("H1"), None);
    }

    /// Made in parallel, every id given three times (far apart, in chunks the threads take
    /// apart) answers its last row, however the rows were interleaved.
    #[test]
    fn household_ids_given_thrice_answer_the_last_row() {
        let (n, k) = (300_000usize, 100_000usize);
        let mut col = StrColumn::default();
        for i in 0..n {
            col.push(&format!("户{}", i % k));
        }
        for _ in 0..3 {
            let ids = HouseholdIds::of(&col);
            for j in 0..k {
                assert_eq!(ids.get(&format!("户{j}")), Some((2 * k + j) as u32), "户{j}");
            }
            assert_eq!(ids.get(&format!("户{k}")), None);
        }
    }
}
