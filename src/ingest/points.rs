//! Stations and households: point tables from CSV, GeoJSON (stations) or Parquet.

use std::path::{Path, PathBuf};

use super::table::{
    csv_rows, geojson_features, json_val, parquet_rows, parquet_rows_parallel, parquet_rows_parallel_kept, ColSpec,
    RowError, Val, NOT_READ,
};
use super::ReadOptions;
use super::{file_name, IngestError};
use crate::crs::{Crs, ToWgs84};
use crate::model::{
    Bbox, Divisions, HouseholdRow, Households, Level, OptStrColumn, Reject, StationRow, Stations, StrColumn, UnitIdx,
};

/// How far beyond the boundaries' bounding box a point may lie, degrees.
pub const EXTENT_MARGIN_DEG: f64 = 1.0;

/// The one file among `names` that exists in `dir`.
fn pick_file(dir: &Path, what: &'static str, names: &[&str]) -> Result<PathBuf, IngestError> {
    let found: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).filter(|p| p.is_file()).collect();
    match found.len() {
        0 => Err(IngestError::MissingInput {
            dir: dir.to_path_buf(),
            what,
            expected: names.iter().map(|s| s.to_string()).collect(),
        }),
        1 => Ok(found.into_iter().next().expect("one")),
        _ => Err(IngestError::AmbiguousInput {
            dir: dir.to_path_buf(),
            what,
            found: found.iter().map(|p| file_name(p)).collect(),
        }),
    }
}

/// Converts and checks a point; the reason when it cannot be used.
struct Locator {
    t: ToWgs84,
    area: Option<Bbox>,
}

impl Locator {
    fn new(path: &Path, crs: &Crs, extent: Option<&Bbox>) -> Result<Self, IngestError> {
        let t = ToWgs84::new(crs).map_err(|source| IngestError::Crs { path: path.to_path_buf(), source })?;
        Ok(Locator { t, area: extent.map(|e| e.expanded(EXTENT_MARGIN_DEG)) })
    }

    fn inside(&self, lon: f64, lat: f64) -> bool {
        crate::model::rules::is_lon_lat(lon, lat) && self.area.is_none_or(|a| a.contains(lon, lat))
    }

    /// `x`, `y`: the lon and lat cells as read.
    fn locate(&self, x: Val<'_>, y: Val<'_>) -> Result<(f64, f64), String> {
        let x = x.finite("lon")?;
        let y = y.finite("lat")?;
        let (lon, lat) = if self.t.is_identity() {
            (x, y)
        } else {
            self.t.convert(x, y).map_err(|e| format!("cannot convert ({x}, {y}) from {}: {e}", self.t.crs()))?
        };
        if self.inside(lon, lat) {
            return Ok((lon, lat));
        }
        // Would the point make sense with lat and lon the other way round?
        let swapped = if self.t.is_identity() { Ok((y, x)) } else { self.t.convert(y, x) };
        if let Ok((slon, slat)) = swapped {
            if self.inside(slon, slat) && (self.area.is_some() || !crate::model::rules::is_lon_lat(lon, lat)) {
                return Err(format!(
                    "lat and lon look swapped: lon {x}, lat {y} lies outside the area, but lon {y}, lat {x} would lie inside (not fixed)"
                ));
            }
        }
        if !crate::model::rules::is_lon_lat(lon, lat) {
            return Err(format!(
                "coordinate out of range: lon {lon}, lat {lat} (longitude must be within -180..180, latitude within -90..90)"
            ));
        }
        let a = self.area.expect("in range and not inside means an area");
        Err(format!(
            "lon {lon}, lat {lat} lies outside the boundaries' bounding box expanded by {EXTENT_MARGIN_DEG}° (lon {:.3}..{:.3}, lat {:.3}..{:.3})",
            a.min_x, a.max_x, a.min_y, a.max_y
        ))
    }
}

/// Remembers the ids claimed so far (by a 128-bit hash) and the row each was first seen on.
///
/// An id is kept as its 128-bit XXH3 hash, not its text: a national households file's ids
/// would otherwise be held twice while it is read (here and in the households' own column).
/// Two different ids share a hash with a probability of about n²/2¹²⁹: 3·10⁻²⁴ for 45 million
/// ids, far below the odds of a memory error. A claimed id that equals an earlier one is a
/// reject naming the earlier row, so even that would not go unseen.
///
/// The table is split into [`ID_SHARDS`] shards by the hash's top bits: equal ids always meet
/// in the same shard, so a batch of ids is claimed by every shard at once, each in row order
/// ([`Ids::claim_batch`]), with the verdicts of claiming them one by one.
struct Ids {
    shards: Vec<IdShard>,
}

/// Shards of [`Ids`] (a power of two).
const ID_SHARDS: usize = 64;

/// How many ids ahead [`Ids::claim_batch`] prefetches a shard's slot.
const PREFETCH_AHEAD: usize = 8;

/// One shard of [`Ids`].
struct IdShard {
    /// Per claimed id: its hash and its row.
    hashes: Vec<u128>,
    rows: Vec<u64>,
    /// Per slot, open addressing: 0 when empty, else the entry number + 1 in the low 32 bits
    /// and a tag of the hash in the high 32 bits, so that probing past other ids compares tags
    /// in this array instead of fetching their hashes (a cache miss each). The length is a
    /// power of two, at most three quarters full.
    slots: Vec<u64>,
}

impl IdShard {
    fn with_capacity(n: usize) -> Self {
        let slots = (n.max(8) * 4 / 3 + 1).next_power_of_two();
        IdShard { hashes: Vec::with_capacity(n), rows: Vec::with_capacity(n), slots: vec![0u64; slots] }
    }

    fn slot_of(h: u128, mask: usize) -> usize {
        (h as u64 ^ (h >> 64) as u64) as usize & mask
    }

    /// The bits of a slot that hold its tag; the others hold the entry number + 1.
    const TAG_BITS: u64 = 0xffff_ffff_0000_0000;

    /// Bits of the hash that [`IdShard::slot_of`] and the shard do not depend on alone.
    fn tag(h: u128) -> u64 {
        (h as u64) & Self::TAG_BITS
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let mut slots = vec![0u64; n];
        for (k, &h) in self.hashes.iter().enumerate() {
            let mut i = Self::slot_of(h, n - 1);
            while slots[i] != 0 {
                i = (i + 1) & (n - 1);
            }
            slots[i] = Self::tag(h) | (k as u64 + 1);
        }
        self.slots = slots;
    }

    /// Asks the processor to bring the first slot of hash `h` into its cache (a hint: no
    /// effect on any answer).
    #[inline]
    fn prefetch(&self, h: u128) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let i = Self::slot_of(h, self.slots.len() - 1);
            let at = self.slots.as_ptr().wrapping_add(i).cast::<i8>();
            // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 processor has (it is in the
            // target's baseline); a prefetch reads nothing into the program and never faults,
            // whatever the address (here one inside `slots`).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// Records the id of hash `h` as first seen on `row`; the row it was first seen on when it
    /// was already.
    fn insert(&mut self, h: u128, row: usize) -> Result<(), u64> {
        if (self.hashes.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let tag = Self::tag(h);
        let mut i = Self::slot_of(h, mask);
        while self.slots[i] != 0 {
            let slot = self.slots[i];
            if slot & Self::TAG_BITS == tag {
                let k = (slot & !Self::TAG_BITS) as usize - 1;
                if self.hashes[k] == h {
                    return Err(self.rows[k]);
                }
            }
            i = (i + 1) & mask;
        }
        let k = u32::try_from(self.hashes.len() + 1).expect("fewer than 4 billion ids in a shard");
        self.hashes.push(h);
        self.rows.push(row as u64);
        self.slots[i] = tag | u64::from(k);
        Ok(())
    }
}

impl Ids {
    fn with_capacity(n: usize) -> Self {
        Ids { shards: (0..ID_SHARDS).map(|_| IdShard::with_capacity(n / ID_SHARDS)).collect() }
    }

    fn hash(id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(id.as_bytes())
    }

    fn shard_of(h: u128) -> usize {
        (h >> (128 - ID_SHARDS.trailing_zeros())) as usize
    }

    /// The verdict on an id: itself, owned, or the reason it cannot be used.
    fn verdict(id: Option<String>, first: Option<u64>, unit: &str) -> Result<String, RowError> {
        match (id, first) {
            (None, _) => Err(RowError::new("", "id is empty")),
            (Some(id), Some(first)) => Err(RowError::new(&id, format!("duplicate id {id} (first on {unit} {first})"))),
            (Some(id), None) => Ok(id),
        }
    }

    /// The id as an owned string, or the reason it cannot be used.
    fn claim(&mut self, id: Val<'_>, row: usize, unit: &str) -> Result<String, RowError> {
        let id = id.text().filter(|t| !t.is_empty()).map(|t| t.into_owned());
        let first = id.as_deref().and_then(|t| {
            let h = Self::hash(t);
            self.shards[Self::shard_of(h)].insert(h, row).err()
        });
        Self::verdict(id, first, unit)
    }

    /// [`Ids::claim`] of the ids of rows `first_row..`, in order: the same verdicts (`Ok` for
    /// an id claimed, whose text the caller has), made by every shard at once.
    fn claim_batch(&mut self, first_row: usize, ids: &[Val<'_>], unit: &str) -> Vec<Result<(), RowError>> {
        use rayon::prelude::*;
        let read: Vec<Option<u128>> = ids
            .par_iter()
            .with_min_len(4096)
            .map(|v| v.text().filter(|t| !t.is_empty()).map(|t| Self::hash(&t)))
            .collect();
        // Each shard's rows, in row order.
        let mut of_shard: Vec<Vec<u32>> = vec![Vec::new(); ID_SHARDS];
        for (k, h) in read.iter().enumerate() {
            if let Some(h) = h {
                of_shard[Self::shard_of(*h)].push(k as u32);
            }
        }
        let firsts: Vec<Vec<(u32, u64)>> = self
            .shards
            .par_iter_mut()
            .zip(&of_shard)
            .map(|(shard, ks)| {
                ks.iter()
                    .enumerate()
                    .filter_map(|(j, &k)| {
                        // The slot of an id a few ahead is fetched while this one is claimed:
                        // the table is far bigger than the caches, so each claim would
                        // otherwise wait for memory.
                        if let Some(&ahead) = ks.get(j + PREFETCH_AHEAD) {
                            shard.prefetch(read[ahead as usize].expect("in a shard"));
                        }
                        let h = read[k as usize].expect("in a shard");
                        shard.insert(h, first_row + k as usize).err().map(|f| (k, f))
                    })
                    .collect()
            })
            .collect();
        let mut verdicts: Vec<Result<(), RowError>> = read
            .iter()
            .map(|h| if h.is_some() { Ok(()) } else { Self::verdict(None, None, unit).map(|_| ()) })
            .collect();
        for (k, f) in firsts.into_iter().flatten() {
            let id = ids[k as usize].text().map(|t| t.into_owned());
            verdicts[k as usize] = Self::verdict(id, Some(f), unit).map(|_| ());
        }
        verdicts
    }
}

fn unit_of(divisions: &Divisions, code: &str) -> Result<UnitIdx, String> {
    divisions.find(code).ok_or_else(|| format!("unknown admin code {code} (not among the divisions)"))
}

/// The last code a reader found among the divisions, and its unit: a households file comes in
/// runs of one village's households, so most rows repeat the code of the row before and need
/// no lookup among the country's 665,000 divisions.
#[derive(Debug, Default)]
struct LastCode {
    code: String,
    unit: UnitIdx,
}

impl LastCode {
    /// [`unit_of`], remembering the last code found.
    fn unit_of(&mut self, divisions: &Divisions, code: &str) -> Result<UnitIdx, String> {
        if self.code != code || self.code.is_empty() {
            self.unit = unit_of(divisions, code)?;
            code.clone_into(&mut self.code);
        }
        Ok(self.unit)
    }
}

const STATION_COLS: [ColSpec; 9] = [
    ("id", true),
    ("name", true),
    ("level", true),
    ("code", true),
    ("lon", true),
    ("lat", true),
    ("demonstration", true),
    ("mobile", true),
    ("radius_m", false),
];

/// Reads the stations of `dir`: `stations.csv`, `stations.geojson` (Point features) or
/// `stations.parquet`, exactly one of them.
///
/// Columns (properties in GeoJSON, where lon/lat come from the point): `id, name, level, code,
/// lon, lat, demonstration, mobile` and optional `radius_m`. Coordinates are converted from
/// `crs`; `extent` is the bounding box of the boundaries (points must lie within it, expanded
/// by 1°). A row becomes a [`Reject`] for an empty or duplicate id, an unknown level, an
/// unknown admin code or one of another level than the station's, a coordinate that is
/// unparsable, not finite, out of range, outside the area or apparently swapped, a yes/no
/// field that is none of true/false/1/0/yes/no/是/否 ([`crate::model::rules::parse_flag`]), or
/// a radius outside [`crate::model::rules::RADIUS_M`].
///
/// # Errors
/// No stations file or more than one; the file cannot be read or is not of its format; a
/// required column is missing; PROJ cannot handle `crs`.
pub fn read_stations(
    dir: &Path,
    crs: &Crs,
    divisions: &Divisions,
    extent: Option<&Bbox>,
    rejects: &mut Vec<Reject>,
) -> Result<Stations, IngestError> {
    let path = pick_file(dir, "stations", &["stations.csv", "stations.geojson", "stations.parquet"])?;
    let loc = Locator::new(&path, crs, extent)?;
    let mut out = Stations::default();
    let mut ids = Ids::with_capacity(1024);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let unit_word = if ext == "csv" {
        "line"
    } else if ext == "geojson" {
        "feature"
    } else {
        "row"
    };
    let mut row_fn = |row: usize, v: &[Val<'_>; 9]| -> Result<(), RowError> {
        let id = ids.claim(v[0], row, unit_word)?;
        let fail = |reason: String| RowError { id: id.clone(), reason };
        let name = v[1].text().map(|s| s.into_owned()).unwrap_or_default();
        let level: Level = match v[2].text() {
            Some(l) => l.parse().map_err(|e: crate::model::UnknownLevel| fail(e.to_string()))?,
            None => return Err(fail("level is empty".into())),
        };
        let code = v[3].text().ok_or_else(|| fail("code is empty".into()))?;
        let unit = unit_of(divisions, &code).map_err(&fail)?;
        let unit_level = divisions.get(unit).level;
        if unit_level != level {
            return Err(fail(format!("code {code} is a {unit_level}, but the station's level is {level}")));
        }
        let (lon, lat) = loc.locate(v[4], v[5]).map_err(&fail)?;
        let demonstration =
            v[6].flag("demonstration").map_err(&fail)?.ok_or_else(|| fail("demonstration is empty".into()))?;
        let mobile = v[7].flag("mobile").map_err(&fail)?.ok_or_else(|| fail("mobile is empty".into()))?;
        let radius_m = if v[8].is_null() {
            None
        } else {
            let r = v[8].finite("radius_m").map_err(&fail)?;
            crate::model::rules::check_radius(r)
                .map_err(|bound| fail(format!("radius_m must be a number of metres from {bound}, got {r}")))?;
            Some(r)
        };
        out.push(StationRow { id, name, level, unit, lon, lat, demonstration, mobile, radius_m });
        Ok(())
    };
    match ext {
        "csv" => csv_rows(&path, &STATION_COLS, rejects, row_fn)?,
        "parquet" => parquet_rows(&path, &STATION_COLS, rejects, row_fn)?,
        _ => {
            let features = geojson_features(&path)?;
            let file = file_name(&path);
            for (k, f) in features.iter().enumerate() {
                let row = k + 1;
                let props = f.get("properties").and_then(|p| p.as_object());
                let get = |name: &str| json_val(props.and_then(|p| p.get(name)));
                let geom = f.get("geometry");
                let coords = geom
                    .filter(|g| g.get("type").and_then(|t| t.as_str()) == Some("Point"))
                    .and_then(|g| g.get("coordinates"))
                    .and_then(|c| c.as_array());
                let (x, y) = match coords {
                    Some(c) if c.len() >= 2 => (json_val(c.first()), json_val(c.get(1))),
                    _ => {
                        let id = get("id").text().map(|s| s.into_owned()).unwrap_or_default();
                        let reason = match geom.and_then(|g| g.get("type")).and_then(|t| t.as_str()) {
                            Some("Point") => "Point has no valid coordinates".to_string(),
                            Some(t) => format!("geometry is a {t}, expected a Point"),
                            None => "feature has no geometry".to_string(),
                        };
                        rejects.push(Reject { file: file.clone(), row, id, reason });
                        continue;
                    }
                };
                let v = [
                    get("id"),
                    get("name"),
                    get("level"),
                    get("code"),
                    x,
                    y,
                    get("demonstration"),
                    get("mobile"),
                    get("radius_m"),
                ];
                if let Err(e) = row_fn(row, &v) {
                    rejects.push(Reject { file: file.clone(), row, id: e.id, reason: e.reason });
                }
            }
        }
    }
    Ok(out)
}

const HOUSEHOLD_COLS: [ColSpec; 9] = [
    ("id", true),
    ("lon", true),
    ("lat", true),
    ("veterans", true),
    ("code", false),
    ("difficulty", false),
    ("martyr_family", false),
    ("name", false),
    ("address", false),
];

/// Which households a read keeps, from the position and given code of a row whose position,
/// veterans and code could be read (the rest of a row not kept is not read).
pub(crate) type KeepHousehold<'a> = &'a (dyn Fn(f64, f64, Option<UnitIdx>) -> bool + Sync);

/// The cells of a household row but its id (left empty), checked: the reason when one is bad;
/// `None` for a row `keep` does not keep.
fn household_fields(
    loc: &Locator,
    divisions: &Divisions,
    keep: KeepHousehold<'_>,
    last: &mut LastCode,
    v: &[Val<'_>; 9],
) -> Result<Option<HouseholdRow>, String> {
    let (lon, lat) = loc.locate(v[1], v[2])?;
    let veterans = v[3].positive_count("veterans")?;
    let code = match v[4].text() {
        None => None,
        Some(c) if c.is_empty() => None,
        Some(c) => Some(last.unit_of(divisions, &c)?),
    };
    if !keep(lon, lat, code) {
        return Ok(None);
    }
    let difficulty = v[5].flag("difficulty")?.unwrap_or(false);
    let martyr_family = v[6].flag("martyr_family")?.unwrap_or(false);
    let name = v[7].text().map(|s| s.into_owned());
    let address = v[8].text().map(|s| s.into_owned());
    Ok(Some(HouseholdRow { id: String::new(), lon, lat, veterans, code, difficulty, martyr_family, name, address }))
}

/// The household columns read when names and addresses are not ([`ReadOptions`]).
const HOUSEHOLD_COLS_NO_TEXT: [ColSpec; 9] = {
    let mut c = HOUSEHOLD_COLS;
    c[7] = NOT_READ;
    c[8] = NOT_READ;
    c
};

/// Reads the households of `dir` with their names and addresses: [`read_households_with`] and
/// [`ReadOptions::ALL`].
///
/// # Errors
/// As [`read_households_with`].
pub fn read_households(
    dir: &Path,
    crs: &Crs,
    divisions: &Divisions,
    extent: Option<&Bbox>,
    rejects: &mut Vec<Reject>,
) -> Result<Households, IngestError> {
    read_households_with(dir, crs, divisions, extent, ReadOptions::ALL, rejects)
}

/// Reads the households of `dir`: `households.csv` or `households.parquet`, exactly one.
///
/// Columns: `id, lon, lat, veterans` and optional `code, difficulty, martyr_family, name,
/// address`. Coordinates are converted from `crs` (not at all for WGS84/CGCS2000). A row
/// becomes a [`Reject`] for an empty or duplicate id, a coordinate that is unparsable, not
/// finite, out of range, outside the boundaries' bounding box expanded by 1° or apparently
/// swapped, a `veterans` that is not a positive integer, an unknown `code`, or a yes/no field
/// that cannot be read. Without [`ReadOptions::names_and_addresses`], those two columns are
/// not read (not even decoded) and the households' `name` and `address` are all absent.
///
/// # Errors
/// No households file or more than one; the file cannot be read or is not of its format; a
/// required column is missing; PROJ cannot handle `crs`.
pub fn read_households_with(
    dir: &Path,
    crs: &Crs,
    divisions: &Divisions,
    extent: Option<&Bbox>,
    opts: ReadOptions,
    rejects: &mut Vec<Reject>,
) -> Result<Households, IngestError> {
    read_households_where(dir, crs, divisions, extent, opts, rejects, None)
}

/// [`read_households_with`], keeping only the rows `keep` wants (all of them without it).
/// Every row is checked up to its position, veterans and code; a row not kept is not read
/// further and gives no reject for its other cells. A row kept is refused when a row before
/// it, kept or not, has its id (as in a whole read); from Parquet, the ids are then not claimed
/// one by one ([`parquet_rows_parallel_kept`]).
///
/// # Errors
/// As [`read_households_with`].
pub(crate) fn read_households_where(
    dir: &Path,
    crs: &Crs,
    divisions: &Divisions,
    extent: Option<&Bbox>,
    opts: ReadOptions,
    rejects: &mut Vec<Reject>,
    keep: Option<KeepHousehold<'_>>,
) -> Result<Households, IngestError> {
    let cols = if opts.names_and_addresses { &HOUSEHOLD_COLS } else { &HOUSEHOLD_COLS_NO_TEXT };
    let scoped = keep.is_some();
    let keep = keep.unwrap_or(&|_, _, _| true);
    let path = pick_file(dir, "households", &["households.csv", "households.parquet"])?;
    let loc = Locator::new(&path, crs, extent)?;
    let is_csv = path.extension().is_some_and(|e| e == "csv");
    // A guess of the row count from the file size, to size the columns once.
    let guess = std::fs::metadata(&path).map_or(0, |m| m.len() as usize / if is_csv { 40 } else { 12 });
    let guess = guess.min(50_000_000);
    let text_guess = if opts.names_and_addresses { guess } else { 0 };
    let mut out = Households {
        id: StrColumn::with_capacity(guess, guess * 12),
        lon: Vec::with_capacity(guess),
        lat: Vec::with_capacity(guess),
        veterans: Vec::with_capacity(guess),
        code: crate::model::UnitColumn::with_capacity(guess),
        difficulty: Vec::with_capacity(guess),
        martyr_family: Vec::with_capacity(guess),
        name: OptStrColumn::with_capacity(text_guess, text_guess * 9),
        address: OptStrColumn::with_capacity(text_guess, text_guess * 40),
    };
    let mut ids = Ids::with_capacity(guess);
    if is_csv {
        let mut last = LastCode::default();
        let row_fn = |row: usize, v: &[Val<'_>; 9]| -> Result<(), RowError> {
            let id = ids.claim(v[0], row, "line")?;
            let r = household_fields(&loc, divisions, keep, &mut last, v)
                .map_err(|reason| RowError { id: id.clone(), reason })?;
            if let Some(r) = r {
                out.push(HouseholdRow { id, ..r });
            }
            Ok(())
        };
        csv_rows(&path, cols, rejects, row_fn)?;
    } else if scoped {
        parquet_rows_parallel_kept(
            &path,
            cols,
            rejects,
            || {
                let loc = Locator::new(&path, crs, extent)?;
                let mut last = LastCode::default();
                Ok(move |v: &[Val<'_>; 9]| household_fields(&loc, divisions, keep, &mut last, v))
            },
            |id, r: HouseholdRow| {
                out.push(HouseholdRow { id, ..r });
            },
        )?;
    } else {
        // Ids are claimed in row order (duplicates); the rest of each row is read in parallel.
        parquet_rows_parallel(
            &path,
            cols,
            rejects,
            |first_row, batch| ids.claim_batch(first_row, batch, "row"),
            || {
                let loc = Locator::new(&path, crs, extent)?;
                let mut last = LastCode::default();
                Ok(move |v: &[Val<'_>; 9]| household_fields(&loc, divisions, keep, &mut last, v))
            },
            |id, r| {
                if let Some(r) = r {
                    out.push_with_id(id, r);
                }
            },
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod id_tests {
    use super::*;

    /// The remembered code gives the lookup's answers: a repeat, a change, an unknown code (an
    /// error, then the code before it again) and an empty text.
    #[test]
    fn the_last_code_answers_as_the_lookup() {
        use crate::model::Level;
        let mut divisions = Divisions::new();
        divisions.add("62", "甘肃省", Level::Province, None).unwrap();
        divisions.add("6201", "兰州市", Level::City, Some("62")).unwrap();
        divisions.add("6202", "嘉峪关市", Level::City, Some("62")).unwrap();
        let mut last = LastCode::default();
        for code in ["6201", "6201", "6202", "6299", "6202", "", "62", "6201", "6299", "6299"] {
            assert_eq!(last.unit_of(&divisions, code), unit_of(&divisions, code), "code {code:?}");
        }
    }

    /// Hashes that share a tag and a first slot (they differ only in bits neither looks at) are
    /// still told apart, through growth too, and each one's second claim names its first row.
    #[test]
    fn a_shared_tag_and_slot_are_told_apart() {
        let mut shard = IdShard::with_capacity(4);
        let same_tag_and_slot = |k: u128| (k << 100) | (0xdead_beef_u128 << 32) | 5;
        let hashes: Vec<u128> = (1..=40).map(same_tag_and_slot).collect();
        assert!(hashes.iter().all(|&h| IdShard::tag(h) == IdShard::tag(hashes[0])));
        for (row, &h) in hashes.iter().enumerate() {
            assert_eq!(shard.insert(h, row + 1), Ok(()), "hash {row} is new");
        }
        for (row, &h) in hashes.iter().enumerate() {
            assert_eq!(shard.insert(h, 1_000), Err(row as u64 + 1));
        }
        assert_eq!(shard.hashes.len(), 40);
    }

    /// Claimed a batch at a time (every shard at once), ids get the verdicts of claiming them one
    /// by one in row order: duplicates within a batch and across batches name the first row,
    /// empty ids are refused, and the rest come back as they were.
    #[test]
    fn a_batch_claims_as_one_by_one() {
        // 20,000 ids over 10,000 distinct texts (so every shard sees duplicates), and empties.
        let texts: Vec<String> = (0..20_000u64)
            .map(|i| if i % 997 == 0 { String::new() } else { format!("H{:05}", (i * 7_919) % 10_000) })
            .collect();
        let vals: Vec<Val<'_>> = texts.iter().map(|t| if t.is_empty() { Val::Null } else { Val::Text(t) }).collect();
        let mut one = Ids::with_capacity(16);
        let want: Vec<Result<String, RowError>> =
            vals.iter().enumerate().map(|(i, v)| one.claim(*v, i + 1, "row")).collect();
        let mut batch = Ids::with_capacity(16);
        let mut got = Vec::new();
        for (b, chunk) in vals.chunks(3_001).enumerate() {
            got.extend(batch.claim_batch(b * 3_001 + 1, chunk, "row"));
        }
        // A batch's `Ok` stands for the row's own text, which the caller has.
        let show = |r: Result<String, &RowError>| match r {
            Ok(id) => format!("ok {id}"),
            Err(e) => format!("{} / {}", e.id, e.reason),
        };
        let got: Vec<String> =
            got.iter().zip(&vals).map(|(r, v)| show(r.as_ref().map(|()| v.text().unwrap().into_owned()))).collect();
        let want_shown: Vec<String> = want.iter().map(|r| show(r.as_ref().cloned())).collect();
        assert_eq!(got, want_shown);
        assert_eq!(want.iter().filter(|r| r.is_ok()).count(), 10_000);
        assert!(matches!(&want[10_001], Err(e) if e.reason == "duplicate id H07919 (first on row 2)"));
        assert!(batch.shards.iter().filter(|s| !s.hashes.is_empty()).count() == ID_SHARDS);
    }
}
