//! Rows of a table, whatever file they come from (CSV, GeoJSON properties, Parquet), as typed
//! cells, with the parsing rules shared by all inputs.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use geo::MultiPolygon;
use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::geom::{check_multipolygon_fast, feature_multipolygon, rings_to_multipolygon};
use crate::crs::{Crs, ToWgs84};

use super::{file_name, IngestError};
use crate::model::Reject;

/// One cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    /// Absent: an optional column the file lacks, an empty CSV field, a null.
    Null,
    /// Text as written (trimmed).
    Text(&'a str),
    /// A floating-point number.
    Num(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Something that is not a scalar (a JSON array or object).
    Other,
}

/// A row that cannot be used: the id read (if any) and the reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowError {
    pub id: String,
    pub reason: String,
}

impl RowError {
    pub fn new(id: &str, reason: impl Into<String>) -> Self {
        RowError { id: id.to_string(), reason: reason.into() }
    }
}

impl<'a> Val<'a> {
    /// True when absent or empty text.
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null | Val::Text(""))
    }

    /// The cell as text (numbers are written out); `None` when absent.
    pub fn text(&self) -> Option<std::borrow::Cow<'a, str>> {
        match *self {
            Val::Null => None,
            Val::Text(s) => Some(s.into()),
            Val::Int(i) => Some(i.to_string().into()),
            Val::Num(f) => Some(f.to_string().into()),
            Val::Bool(b) => Some(b.to_string().into()),
            Val::Other => None,
        }
    }

    /// A finite number.
    pub fn finite(&self, col: &str) -> Result<f64, String> {
        let v = match *self {
            Val::Null | Val::Text("") => return Err(format!("{col} is empty")),
            Val::Text(s) => s.parse::<f64>().map_err(|_| format!("{col} {s:?} is not a number"))?,
            Val::Num(f) => f,
            Val::Int(i) => i as f64,
            Val::Bool(_) | Val::Other => return Err(format!("{col} is not a number")),
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("{col} is not a finite number ({v})"))
        }
    }

    /// A yes/no value ([`crate::model::rules::parse_flag`]'s words, or a boolean or 0/1
    /// number); `None` when absent.
    pub fn flag(&self, col: &str) -> Result<Option<bool>, String> {
        match *self {
            Val::Null | Val::Text("") => Ok(None),
            Val::Bool(b) => Ok(Some(b)),
            Val::Int(0) => Ok(Some(false)),
            Val::Int(1) => Ok(Some(true)),
            Val::Num(0.0) => Ok(Some(false)),
            Val::Num(1.0) => Ok(Some(true)),
            Val::Text(s) => crate::model::rules::parse_flag(col, s),
            Val::Int(_) | Val::Num(_) | Val::Other => {
                Err(format!("{col} is not a yes/no value (true/false, 1/0, yes/no, 是/否)"))
            }
        }
    }

    /// A positive whole number that fits in 32 bits.
    pub fn positive_count(&self, col: &str) -> Result<u32, String> {
        let bad = |shown: String| format!("{col} must be a positive integer, got {shown}");
        match *self {
            Val::Null | Val::Text("") => Err(format!("{col} is empty")),
            Val::Text(s) => match s.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(format!("{s:?}"))),
            },
            Val::Int(i) => u32::try_from(i).ok().filter(|&n| n > 0).ok_or_else(|| bad(i.to_string())),
            Val::Num(f) if f.fract() == 0.0 && f >= 1.0 && f <= f64::from(u32::MAX) => Ok(f as u32),
            Val::Num(f) => Err(bad(f.to_string())),
            Val::Bool(_) | Val::Other => Err(bad("a non-number".into())),
        }
    }
}

/// A column a reader asks for: its name and whether the file must have it. An empty name
/// ([`NOT_READ`]) is a column the reader leaves out: its cells are `Val::Null`.
pub(crate) type ColSpec = (&'static str, bool);

/// The [`ColSpec`] of a column left out.
pub(crate) const NOT_READ: ColSpec = ("", false);

/// Finds each requested column among `found`; a missing required one is fatal.
pub(crate) fn locate_columns<const N: usize>(
    path: &Path,
    cols: &[ColSpec; N],
    found: &[String],
) -> Result<[Option<usize>; N], IngestError> {
    let mut idx = [None; N];
    for (k, (name, required)) in cols.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        // A name may list the header's other spellings after `|` (`household_id|户编号`).
        idx[k] = found.iter().position(|h| name.split('|').any(|n| h.eq_ignore_ascii_case(n)));
        if idx[k].is_none() && *required {
            return Err(IngestError::MissingColumn {
                path: path.to_path_buf(),
                column: (*name).to_string(),
                found: found.to_vec(),
            });
        }
    }
    Ok(idx)
}

fn io_err(path: &Path, source: std::io::Error) -> IngestError {
    IngestError::Io { path: path.to_path_buf(), source }
}

/// Reads a CSV file and calls `f(line, cells)` for every record, with the cells of `cols` in
/// order (`Val::Null` for an absent optional column or an empty field). A record `f` refuses,
/// or one with the wrong number of fields or invalid UTF-8, becomes a [`Reject`]. `cap`
/// receives a guess of the number of records (from the file size) before the first call.
///
/// # Errors
/// The file cannot be opened or its header read; a required column is missing; an I/O error
/// part way.
pub(crate) fn csv_rows<const N: usize>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(usize, &[Val<'_>; N]) -> Result<(), RowError>,
) -> Result<(), IngestError> {
    csv_rows_while(path, cols, rejects, |line, v| f(line, v).map(|()| true))
}

/// [`csv_rows`], stopping after the record for which `f` answers `Ok(false)` (the rest of the
/// file is not read).
///
/// # Errors
/// As [`csv_rows`].
pub(crate) fn csv_rows_while<const N: usize>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(usize, &[Val<'_>; N]) -> Result<bool, RowError>,
) -> Result<(), IngestError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let csv_err = |e: csv::Error| IngestError::Csv { path: path.to_path_buf(), message: e.to_string() };
    let headers: Vec<String> =
        rdr.headers().map_err(csv_err)?.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect();
    if headers.iter().all(String::is_empty) {
        return Err(IngestError::Csv { path: path.to_path_buf(), message: "the header line is empty".into() });
    }
    let idx = locate_columns(path, cols, &headers)?;
    let name = file_name(path);
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line() as usize);
                let vals: [Val<'_>; N] = std::array::from_fn(|k| match idx[k] {
                    Some(c) => match rec.get(c) {
                        Some("") | None => Val::Null,
                        Some(s) => Val::Text(s),
                    },
                    None => Val::Null,
                });
                match f(line, &vals) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => rejects.push(Reject { file: name.clone(), row: line, id: e.id, reason: e.reason }),
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!("wrong number of fields: {len}, expected {expected_len} as in the header")
                    }
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
                    _ => return Err(csv_err(e)),
                };
                rejects.push(Reject { file: name.clone(), row: line, id: String::new(), reason });
            }
        }
    }
    Ok(())
}

/// A Parquet column, typed for reading cell by cell.
enum PqCol {
    Absent,
    F64(Float64Chunked),
    I64(Int64Chunked),
    Str(StringChunked),
    Bool(BooleanChunked),
}

impl PqCol {
    fn get(&self, i: usize) -> Val<'_> {
        let v = match self {
            PqCol::Absent => None,
            PqCol::F64(c) => c.get(i).map(Val::Num),
            PqCol::I64(c) => c.get(i).map(Val::Int),
            PqCol::Str(c) => c.get(i).map(|s| Val::Text(s.trim())),
            PqCol::Bool(c) => c.get(i).map(Val::Bool),
        };
        v.unwrap_or(Val::Null)
    }
}

/// A Parquet file opened for reading the columns `cols` a slice of rows at a time: only the
/// row groups of the slice and the columns asked for are decoded, so a national households
/// file (45 million rows) never stands in memory whole.
struct PqFile<'a, const N: usize> {
    path: &'a Path,
    cols: &'a [ColSpec; N],
    /// The file's name of each requested column that it has.
    names: [Option<String>; N],
    /// The file's indexes of those columns, ascending.
    projection: Vec<usize>,
    metadata: polars::io::parquet::metadata::FileMetadataRef,
    height: usize,
}

impl<'a, const N: usize> PqFile<'a, N> {
    /// # Errors
    /// As [`parquet_rows`].
    fn open(path: &'a Path, cols: &'a [ColSpec; N]) -> Result<Self, IngestError> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let mut reader = ParquetReader::new(file);
        let schema = reader.schema().map_err(|e| pq_err(path, e))?;
        let found: Vec<String> = schema.iter_names().map(|s| s.to_string()).collect();
        let idx = locate_columns(path, cols, &found)?;
        let metadata = reader.get_metadata().map_err(|e| pq_err(path, e))?.clone();
        let mut projection: Vec<usize> = idx.iter().flatten().copied().collect();
        projection.sort_unstable();
        projection.dedup();
        Ok(PqFile {
            path,
            cols,
            names: idx.map(|i| i.map(|i| found[i].clone())),
            projection,
            height: metadata.num_rows,
            metadata,
        })
    }

    /// The requested columns of rows `lo..lo + len`, typed for reading cell by cell (index 0
    /// is row `lo`).
    ///
    /// # Errors
    /// As [`parquet_rows`].
    fn read(&self, lo: usize, len: usize) -> Result<Vec<PqCol>, IngestError> {
        let path = self.path;
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let mut reader = ParquetReader::new(file)
            .with_projection(Some(self.projection.clone()))
            .with_slice(Some((lo, len)))
            .set_rechunk(true);
        reader.set_metadata(self.metadata.clone());
        let df = reader.finish().map_err(|e| pq_err(path, e))?;
        let mut typed = Vec::with_capacity(N);
        for ((name, _), found) in self.cols.iter().zip(&self.names) {
            let Some(found) = found else {
                typed.push(PqCol::Absent);
                continue;
            };
            let column = df.column(found).map_err(|e| pq_err(path, e))?;
            let err = |e| pq_err(path, e);
            let dtype = column.dtype().clone();
            let col = if dtype.is_float() {
                PqCol::F64(column.cast(&DataType::Float64).map_err(err)?.f64().map_err(err)?.clone())
            } else if dtype.is_integer() {
                PqCol::I64(column.cast(&DataType::Int64).map_err(err)?.i64().map_err(err)?.clone())
            } else if dtype.is_string() {
                PqCol::Str(column.str().map_err(err)?.clone())
            } else if dtype.is_bool() {
                PqCol::Bool(column.bool().map_err(err)?.clone())
            } else {
                return Err(IngestError::ColumnType {
                    path: path.to_path_buf(),
                    column: (*name).to_string(),
                    dtype: dtype.to_string(),
                    expected: "an integer, float, string or boolean",
                });
            };
            typed.push(col);
        }
        Ok(typed)
    }
}

fn pq_err(path: &Path, e: PolarsError) -> IngestError {
    IngestError::Parquet { path: path.to_path_buf(), message: e.to_string() }
}

/// Reads a Parquet file and calls `f(row, cells)` for every row (1-based), like [`csv_rows`].
/// Integer, float, string and boolean columns are accepted; the cell parsers decide what
/// each column may hold.
///
/// # Errors
/// The file cannot be opened or is not Parquet; a required column is missing or of a type that
/// is none of these.
pub(crate) fn parquet_rows<const N: usize>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    mut f: impl FnMut(usize, &[Val<'_>; N]) -> Result<(), RowError>,
) -> Result<(), IngestError> {
    let file = PqFile::open(path, cols)?;
    let name = file_name(path);
    for lo in (0..file.height).step_by(PARALLEL_BATCH) {
        let hi = (lo + PARALLEL_BATCH).min(file.height);
        let typed = file.read(lo, hi - lo)?;
        for i in lo..hi {
            let vals: [Val<'_>; N] = std::array::from_fn(|k| typed[k].get(i - lo));
            if let Err(e) = f(i + 1, &vals) {
                rejects.push(Reject { file: name.clone(), row: i + 1, id: e.id, reason: e.reason });
            }
        }
    }
    Ok(())
}

/// Rows per piece of work when a Parquet file's rows are read in parallel.
const PARALLEL_CHUNK: usize = 32_768;

/// Rows claimed, read and pushed at a time (32 pieces of work).
#[cfg(not(test))]
const PARALLEL_BATCH: usize = 32 * PARALLEL_CHUNK;
/// In unit tests, a batch that is not a whole number of pieces, so that the test of
/// [`parquet_rows_parallel`] crosses batches and uneven pieces.
#[cfg(test)]
const PARALLEL_BATCH: usize = PARALLEL_CHUNK + 4_321;

/// As [`parquet_rows`], for large files: a batch of rows at a time (so the rows waiting to be
/// pushed are a batch's, not the file's), in three steps: `claim(first row, first cells)` on
/// the batch's cells of the id column, `cols[0]` (the duplicate-id check: per row, in order,
/// `Ok` or the reject, as if claimed one by one in row order); then, in parallel over chunks of
/// rows, the rest of each claimed row with a reader `make()` gives per chunk (`Err(reason)`: a
/// reject); then `push(id, value)` and the rejects in row order, exactly as [`parquet_rows`]
/// would have met them.
///
/// The steps overlap: while a batch is claimed and read, the next one is decoded (on a thread
/// of its own, one batch ahead) and the one before is pushed (beside the claim, in the thread
/// pool). The order of claims, pushes and rejects is the file's.
///
/// # Errors
/// As [`parquet_rows`], and an error of `make`; the first in row order.
pub(crate) fn parquet_rows_parallel<const N: usize, T: Send, R: FnMut(&[Val<'_>; N]) -> Result<T, String>>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    mut claim: impl FnMut(usize, &[Val<'_>]) -> Vec<Result<(), RowError>> + Send,
    make: impl Fn() -> Result<R, IngestError> + Sync,
    mut push: impl FnMut(&str, T) + Send,
) -> Result<(), IngestError> {
    use rayon::prelude::*;
    /// A batch decoded, claimed and read, waiting to be pushed.
    struct Done<T> {
        lo: usize,
        typed: Vec<PqCol>,
        claimed: Vec<Result<(), RowError>>,
        rest: Vec<Option<Result<T, String>>>,
    }
    let file = PqFile::open(path, cols)?;
    let name = file_name(path);
    let mut push_batch = |d: Done<T>| {
        for (k, (c, r)) in d.claimed.into_iter().zip(d.rest).enumerate() {
            let row = d.lo + k + 1;
            match (c, r) {
                (Ok(()), Some(Ok(v))) => push(&d.typed[0].get(k).text().expect("a claimed id has text"), v),
                (Ok(()), Some(Err(reason))) => {
                    let id = d.typed[0].get(k).text().map(|t| t.into_owned()).unwrap_or_default();
                    rejects.push(Reject { file: name.clone(), row, id, reason });
                }
                (Err(e), _) => rejects.push(Reject { file: name.clone(), row, id: e.id, reason: e.reason }),
                (Ok(()), None) => unreachable!("every claimed row is read"),
            }
        }
    };
    // Claims and reads a decoded batch (its rows waiting in memory only until pushed: the
    // intermediate rows of a national file, 45 million, never exist all at once).
    let mut claim_and_read = |lo: usize, hi: usize, typed: Vec<PqCol>| -> Result<Done<T>, IngestError> {
        let ids: Vec<Val<'_>> = (0..hi - lo).map(|k| typed[0].get(k)).collect();
        let claimed = claim(lo + 1, &ids);
        drop(ids);
        let chunks: Vec<usize> = (lo..hi).step_by(PARALLEL_CHUNK).collect();
        let rest: Vec<Vec<Option<Result<T, String>>>> = chunks
            .par_iter()
            .map(|&start| {
                let mut read = make()?;
                let end = (start + PARALLEL_CHUNK).min(hi);
                Ok((start..end)
                    .map(|i| {
                        claimed[i - lo].is_ok().then(|| {
                            let vals: [Val<'_>; N] = std::array::from_fn(|k| typed[k].get(i - lo));
                            read(&vals)
                        })
                    })
                    .collect())
            })
            .collect::<Result<_, IngestError>>()?;
        Ok(Done { lo, typed, claimed, rest: rest.into_iter().flatten().collect() })
    };
    std::thread::scope(|s| -> Result<(), IngestError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let file = &file;
        s.spawn(move || {
            for lo in (0..file.height).step_by(PARALLEL_BATCH) {
                let hi = (lo + PARALLEL_BATCH).min(file.height);
                let decoded = file.read(lo, hi - lo).map(|typed| (lo, hi, typed));
                let failed = decoded.is_err();
                // The receiver gone (an error downstream) or this one failed: stop.
                if tx.send(decoded).is_err() || failed {
                    break;
                }
            }
        });
        let mut pending: Option<Done<T>> = None;
        for decoded in rx {
            let (lo, hi, typed) = decoded?;
            let (pushed, done) = rayon::join(|| pending.take().map(&mut push_batch), || claim_and_read(lo, hi, typed));
            let _: Option<()> = pushed;
            pending = Some(done?);
        }
        if let Some(d) = pending.take() {
            push_batch(d);
        }
        Ok(())
    })
}

/// As [`parquet_rows_parallel`] for a read that keeps a few of the rows: no id is claimed one
/// by one. Every row is read in parallel by a reader `make()` gives per chunk, whose `Ok(None)`
/// leaves the row out; a row kept (or refused) with an empty id is a reject; then the ids of
/// the rows kept are looked for among all rows (in parallel), and a kept row is pushed only
/// when no row before it — kept or not — has its id, else it is rejected as that id's duplicate,
/// naming the first row: what claiming every id in row order decides for it. Pushes and rejects
/// come in row order; a row left out gives no reject.
///
/// # Errors
/// As [`parquet_rows`], and an error of `make`.
pub(crate) fn parquet_rows_parallel_kept<
    const N: usize,
    T: Send,
    R: FnMut(&[Val<'_>; N]) -> Result<Option<T>, String>,
>(
    path: &Path,
    cols: &[ColSpec; N],
    rejects: &mut Vec<Reject>,
    make: impl Fn() -> Result<R, IngestError> + Sync,
    mut push: impl FnMut(String, T),
) -> Result<(), IngestError> {
    use std::collections::HashMap;
    // The whole file's requested columns at once: the ids of every row are looked at twice.
    let file = PqFile::open(path, cols)?;
    let height = file.height;
    let typed = file.read(0, height)?;
    let name = file_name(path);
    let id_of = |i: usize| typed[0].get(i).text().filter(|t| !t.is_empty());
    // The rows kept or refused, in row order: (row index, id, value or reason).
    type Met<T> = (usize, Option<String>, Result<T, String>);
    let chunks: Vec<usize> = (0..height).step_by(PARALLEL_CHUNK).collect();
    let met: Vec<Vec<Met<T>>> = chunks
        .par_iter()
        .map(|&start| {
            let mut read = make()?;
            let end = (start + PARALLEL_CHUNK).min(height);
            Ok((start..end)
                .filter_map(|i| {
                    let vals: [Val<'_>; N] = std::array::from_fn(|k| typed[k].get(i));
                    match read(&vals) {
                        Ok(None) => None,
                        Ok(Some(v)) => Some((i, id_of(i).map(|t| t.into_owned()), Ok(v))),
                        Err(reason) => Some((i, id_of(i).map(|t| t.into_owned()), Err(reason))),
                    }
                })
                .collect())
        })
        .collect::<Result<_, IngestError>>()?;
    let met: Vec<Met<T>> = met.into_iter().flatten().collect();
    // The first row of each id of a kept row, among all rows.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, id, r) in &met {
        if let (Some(id), Ok(_)) = (id, r) {
            first.entry(id.as_str()).or_insert(*i);
        }
    }
    // Rows before the first kept one of their id.
    let earlier: Vec<Vec<usize>> = chunks
        .par_iter()
        .map(|&start| {
            let end = (start + PARALLEL_CHUNK).min(height);
            (start..end)
                .filter(|&i| id_of(i).is_some_and(|id| first.get(id.as_ref()).is_some_and(|&f| i < f)))
                .collect()
        })
        .collect();
    for i in earlier.into_iter().flatten() {
        if let Some(f) = id_of(i).and_then(|id| first.get_mut(id.as_ref())) {
            *f = (*f).min(i);
        }
    }
    // Per row met, the first row of its id when that is an earlier one.
    let duplicate: Vec<Option<usize>> =
        met.iter().map(|(i, id, _)| id.as_deref().and_then(|id| first.get(id)).copied().filter(|f| f < i)).collect();
    drop(first);
    for ((i, id, r), dup) in met.into_iter().zip(duplicate) {
        let row = i + 1;
        let reject = |id: String, reason: String| Reject { file: name.clone(), row, id, reason };
        match (id, r, dup) {
            (None, _, _) => rejects.push(reject(String::new(), "id is empty".into())),
            (Some(id), Err(reason), _) => rejects.push(reject(id, reason)),
            (Some(id), Ok(_), Some(f)) => {
                let reason = format!("duplicate id {id} (first on row {})", f + 1);
                rejects.push(reject(id, reason));
            }
            (Some(id), Ok(v), None) => push(id, v),
        }
    }
    Ok(())
}

/// The cell of a GeoJSON property.
pub(crate) fn json_val(v: Option<&serde_json::Value>) -> Val<'_> {
    match v {
        None | Some(serde_json::Value::Null) => Val::Null,
        Some(serde_json::Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Val::Null
            } else {
                Val::Text(s)
            }
        }
        Some(serde_json::Value::Bool(b)) => Val::Bool(*b),
        Some(serde_json::Value::Number(n)) => {
            n.as_i64().map_or_else(|| Val::Num(n.as_f64().unwrap_or(f64::NAN)), Val::Int)
        }
        Some(_) => Val::Other,
    }
}

/// The features of a GeoJSON FeatureCollection, each still as JSON (so that one bad feature
/// is a reject, not a fatal error).
///
/// # Errors
/// The file cannot be read, is not JSON, or is not a FeatureCollection.
pub(crate) fn geojson_features(path: &Path) -> Result<Vec<serde_json::Value>, IngestError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let gj = |message: String| IngestError::GeoJson { path: path.to_path_buf(), message };
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| gj(format!("not valid JSON: {e}")))?;
    match v.get("type").and_then(|t| t.as_str()) {
        Some("FeatureCollection") => {}
        Some(t) => return Err(gj(format!("the top-level object is a {t}"))),
        None => return Err(gj("the top-level value has no \"type\"".into())),
    }
    match v.get_mut("features").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(a)) => Ok(a),
        _ => Err(gj("\"features\" is not an array".into())),
    }
}

/// One element of a FeatureCollection's `features` as a GeoJSON feature, or why it is not one.
pub(crate) fn parse_feature(value: serde_json::Value) -> Result<geojson::Feature, String> {
    serde_json::from_value(value).map_err(|e| format!("not a valid GeoJSON feature: {e}"))
}

/// One feature of a polygon layer (boundaries, grids), read: its properties and its checked
/// WGS84 multipolygon or the reason it has none; `Err` when it is not a GeoJSON feature at all.
pub(crate) type PolygonFeature =
    Result<(serde_json::Map<String, serde_json::Value>, Result<MultiPolygon<f64>, String>), String>;

/// The features of a GeoJSON FeatureCollection of polygons, each read and checked (in
/// parallel) into a [`PolygonFeature`], in file order, each geometry decoded only when asked
/// for ([`LazyFeatures::geometries`](super::cache::LazyFeatures::geometries): from the cache;
/// the GeoJSON's are all decoded), so that a read limited to a region skips the rest.
///
/// Gives exactly what [`geojson_features`], [`parse_feature`] and
/// [`feature_multipolygon`] give, faster: the plain shape of a feature (only `type`,
/// `properties` and a Polygon or MultiPolygon `geometry` of 2-number positions) is read
/// straight into coordinates; anything else (foreign members, `id`, `bbox`, other geometry
/// types, bad shapes) takes that general path, so verdicts and messages are the same. The
/// result is kept in the input's [cache](super::cache) and read from there while the input is
/// unchanged.
///
/// # Errors
/// As [`geojson_features`].
pub(crate) fn polygon_features_lazy(path: &Path, crs: &Crs) -> Result<super::cache::LazyFeatures, IngestError> {
    super::cache::cached(
        path,
        crs,
        || std::fs::read(path).map_err(|e| io_err(path, e)),
        |bytes| {
            let text = String::from_utf8(bytes).map_err(|_| {
                io_err(path, std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
            })?;
            parse_polygon_features(path, &text, crs)
        },
    )
}

/// [`polygon_features_lazy`] of the text of `path`, parsed.
fn parse_polygon_features(path: &Path, text: &str, crs: &Crs) -> Result<Vec<PolygonFeature>, IngestError> {
    // A converter per worker thread (PROJ's is not shareable); the caller has already made one,
    // so making another does not fail in practice, and would be a reason per feature if it did.
    let init = || ToWgs84::new(crs).map_err(|e| format!("cannot convert coordinates: {e}"));
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(rename = "type")]
        ty: Option<serde_json::Value>,
        #[serde(borrow)]
        features: Option<&'a RawValue>,
    }
    let gj = |message: String| IngestError::GeoJson { path: path.to_path_buf(), message };
    let raws: Vec<&RawValue> = match serde_json::from_str::<Top<'_>>(text) {
        Ok(top) => {
            match top.ty.as_ref().and_then(|t| t.as_str()) {
                Some("FeatureCollection") => {}
                Some(t) => return Err(gj(format!("the top-level object is a {t}"))),
                None => return Err(gj("the top-level value has no \"type\"".into())),
            }
            match top.features.map(|f| serde_json::from_str::<Vec<&RawValue>>(f.get())) {
                Some(Ok(v)) => v,
                _ => return Err(gj("\"features\" is not an array".into())),
            }
        }
        // Anything unusual at the top (not an object, a repeated key): the general path, for
        // its verdict and message.
        Err(_) => {
            let values = geojson_features(path)?;
            return Ok(values
                .into_par_iter()
                .with_min_len(64)
                .map_init(init, |t, v| slow_polygon_feature(v, t.as_ref().map_err(Clone::clone)?))
                .collect());
        }
    };
    Ok(raws
        .par_iter()
        .with_min_len(64)
        .map_init(init, |t, raw| fast_polygon_feature(raw.get(), t.as_ref().map_err(Clone::clone)?))
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastFeature<'a> {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    ty: FeatureTag,
    properties: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow)]
    geometry: Option<FastGeometry<'a>>,
}

#[derive(Deserialize)]
enum FeatureTag {
    Feature,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastGeometry<'a> {
    #[serde(rename = "type")]
    ty: FastGeometryType,
    #[serde(borrow)]
    coordinates: &'a RawValue,
}

#[derive(Deserialize)]
enum FastGeometryType {
    Polygon,
    MultiPolygon,
}

fn fast_polygon_feature(raw: &str, t: &ToWgs84) -> PolygonFeature {
    if let Ok(f) = serde_json::from_str::<FastFeature<'_>>(raw) {
        let geometry = match &f.geometry {
            None => Some(Err("feature has no geometry".to_string())),
            Some(g) => {
                let c = g.coordinates.get();
                let mp = match g.ty {
                    FastGeometryType::Polygon => serde_json::from_str::<Vec<Vec<[f64; 2]>>>(c)
                        .ok()
                        .map(|rings| rings_to_multipolygon(&[&rings], false, t, |p| p.as_slice())),
                    FastGeometryType::MultiPolygon => {
                        serde_json::from_str::<Vec<Vec<Vec<[f64; 2]>>>>(c).ok().map(|polys| {
                            let refs: Vec<&Vec<Vec<[f64; 2]>>> = polys.iter().collect();
                            rings_to_multipolygon(&refs, true, t, |p| p.as_slice())
                        })
                    }
                };
                mp.map(|r| r.and_then(checked))
            }
        };
        if let Some(geometry) = geometry {
            return Ok((f.properties.unwrap_or_default(), geometry));
        }
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) => slow_polygon_feature(v, t),
        Err(e) => Err(format!("not a valid GeoJSON feature: {e}")),
    }
}

fn checked(mp: MultiPolygon<f64>) -> Result<MultiPolygon<f64>, String> {
    check_multipolygon_fast(&mp).map_err(|e| format!("invalid geometry: {e}"))?;
    Ok(mp)
}

fn slow_polygon_feature(value: serde_json::Value, t: &ToWgs84) -> PolygonFeature {
    let feature = parse_feature(value)?;
    let geometry = feature_multipolygon(&feature, t);
    Ok((feature.properties.unwrap_or_default(), geometry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse() {
        assert_eq!(Val::Text("1.5").finite("lon"), Ok(1.5));
        assert_eq!(Val::Int(3).finite("lon"), Ok(3.0));
        assert!(Val::Text("abc").finite("lon").unwrap_err().contains("\"abc\" is not a number"));
        assert!(Val::Text("NaN").finite("lon").unwrap_err().contains("not a finite number"));
        assert!(Val::Text("inf").finite("lat").unwrap_err().contains("not a finite number"));
        assert!(Val::Null.finite("lat").unwrap_err().contains("lat is empty"));
        for (s, b) in [
            ("true", true),
            ("FALSE", false),
            ("1", true),
            ("0", false),
            ("yes", true),
            ("No", false),
            ("是", true),
            ("否", false),
        ] {
            assert_eq!(Val::Text(s).flag("mobile"), Ok(Some(b)), "{s}");
        }
        assert_eq!(Val::Int(1).flag("m"), Ok(Some(true)));
        assert_eq!(Val::Null.flag("m"), Ok(None));
        assert!(Val::Text("maybe").flag("mobile").is_err());
        assert_eq!(Val::Text("3").positive_count("veterans"), Ok(3));
        assert_eq!(Val::Num(2.0).positive_count("veterans"), Ok(2));
        for bad in [Val::Text("0"), Val::Text("-1"), Val::Text("1.5"), Val::Int(0), Val::Num(1.5), Val::Null] {
            assert!(bad.positive_count("veterans").is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod parallel_tests {
    use std::collections::HashMap;

    use polars::prelude::*;

    use super::*;

    /// Reading a Parquet file's rows in parallel chunks (two batches here) gives the very rows
    /// and rejects, in the same order, as reading them one after the other: ids claimed in order (a duplicate
    /// across chunks is caught), bad values in every chunk, rows at chunk edges.
    #[test]
    fn parallel_read_equals_the_sequential_one() {
        let n = 2 * PARALLEL_CHUNK + 1000;
        let ids: Vec<String> = (0..n)
            .map(|i| match i {
                // Duplicates of earlier ids, in a later chunk and at a chunk's edge.
                _ if i == PARALLEL_CHUNK + 5 => "r3".to_string(),
                _ if i == 2 * PARALLEL_CHUNK => format!("r{}", PARALLEL_CHUNK - 1),
                _ if i == 17 => String::new(),
                _ => format!("r{i}"),
            })
            .collect();
        let xs: Vec<f64> =
            (0..n).map(|i| if i % 9_999 == 0 || i == PARALLEL_CHUNK { f64::NAN } else { i as f64 / 10.0 }).collect();
        let mut df = df!("id" => ids, "x" => xs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        const COLS: [ColSpec; 2] = [("id", true), ("x", true)];

        let claim = |seen: &mut HashMap<String, usize>, row: usize, v: Val<'_>| -> Result<String, RowError> {
            let id = v.text().filter(|s| !s.is_empty()).ok_or_else(|| RowError::new("", "id is empty"))?.into_owned();
            if let Some(first) = seen.get(&id) {
                return Err(RowError::new(&id, format!("duplicate of row {first}")));
            }
            seen.insert(id.clone(), row);
            Ok(id)
        };
        let rest = |v: &[Val<'_>; 2]| v[1].finite("x");

        let (mut seq_rows, mut seq_rejects, mut seen) = (Vec::new(), Vec::new(), HashMap::new());
        parquet_rows(&path, &COLS, &mut seq_rejects, |row, v| {
            let id = claim(&mut seen, row, v[0])?;
            let x = rest(v).map_err(|reason| RowError { id: id.clone(), reason })?;
            seq_rows.push((id, x));
            Ok(())
        })
        .unwrap();

        let (mut par_rows, mut par_rejects, mut seen) = (Vec::new(), Vec::new(), HashMap::new());
        parquet_rows_parallel(
            &path,
            &COLS,
            &mut par_rejects,
            |first, vals| vals.iter().enumerate().map(|(k, v)| claim(&mut seen, first + k, *v).map(|_| ())).collect(),
            || Ok(rest),
            |id, x| par_rows.push((id.to_string(), x)),
        )
        .unwrap();

        assert_eq!(par_rows, seq_rows);
        assert_eq!(par_rejects, seq_rejects);
        // The rejects are the ones planted: 2 duplicates, 1 empty id, the NaNs.
        let nans = (0..n).filter(|&i| (i % 9_999 == 0 || i == PARALLEL_CHUNK) && i != 17).count();
        assert_eq!(seq_rejects.len(), 3 + nans);
        assert_eq!(seq_rows.len(), n - seq_rejects.len());
    }

    /// Reading only the rows a reader keeps, without claiming ids one by one, pushes exactly the
    /// kept rows a whole read pushes: a kept row whose id an earlier row has — kept or not, in
    /// another chunk — is refused naming that row.
    #[test]
    fn a_read_of_kept_rows_equals_the_whole_read_filtered() {
        let n = 2 * PARALLEL_CHUNK + 1000;
        let (dup_of_unkept, dup_of_kept) = (PARALLEL_CHUNK + 6, 2 * PARALLEL_CHUNK + 4);
        let ids: Vec<String> = (0..n)
            .map(|i| match i {
                _ if i == dup_of_unkept => "r1".to_string(),
                _ if i == dup_of_kept => "r3".to_string(),
                _ if i == 17 => String::new(),
                _ if i == 41 => "r9".to_string(),
                _ => format!("r{i}"),
            })
            .collect();
        let xs: Vec<f64> = (0..n).map(|i| if i % 9_999 == 0 { f64::NAN } else { i as f64 }).collect();
        let mut df = df!("id" => ids, "x" => xs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        const COLS: [ColSpec; 2] = [("id", true), ("x", true)];
        // Rows whose x is 1 mod 3 are left out: r1 (the first of a kept duplicate) among them.
        let kept = |x: f64| (x as usize) % 3 != 1;
        let rest =
            |v: &[Val<'_>; 2]| -> Result<Option<f64>, String> { Ok(Some(v[1].finite("x")?).filter(|&x| kept(x))) };

        let (mut whole, mut seen) = (Vec::new(), HashMap::new());
        parquet_rows(&path, &COLS, &mut Vec::new(), |row, v| {
            let id =
                v[0].text().filter(|s| !s.is_empty()).ok_or_else(|| RowError::new("", "id is empty"))?.into_owned();
            if seen.contains_key(&id) {
                return Err(RowError::new(&id, "duplicate"));
            }
            seen.insert(id.clone(), row);
            let x = v[1].finite("x").map_err(|reason| RowError { id: id.clone(), reason })?;
            whole.push((id, x));
            Ok(())
        })
        .unwrap();
        whole.retain(|&(_, x)| kept(x));

        let (mut rows, mut rejects) = (Vec::new(), Vec::new());
        parquet_rows_parallel_kept(&path, &COLS, &mut rejects, || Ok(rest), |id, x| rows.push((id, x))).unwrap();
        assert_eq!(rows, whole);
        let reasons: Vec<(usize, &str)> = rejects.iter().map(|r| (r.row, r.reason.as_str())).collect();
        assert!(reasons.contains(&(dup_of_unkept + 1, "duplicate id r1 (first on row 2)")), "{reasons:?}");
        assert!(reasons.contains(&(dup_of_kept + 1, "duplicate id r3 (first on row 4)")), "{reasons:?}");
        assert!(reasons.contains(&(42, "duplicate id r9 (first on row 10)")), "{reasons:?}");
        assert!(reasons.contains(&(18, "id is empty")), "{reasons:?}");
        assert!(rejects.windows(2).all(|w| w[0].row < w[1].row), "in row order");
        assert!(rows.len() < n * 3 / 4 && rows.len() > n / 2);
    }
}
