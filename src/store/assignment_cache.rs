//! The households' assignment kept beside the store, for the server's restart.
//!
//! Assigning 45 million households (each to its admin unit and grid by point in polygon, and
//! to its nearest station of each of the five levels) is the longest step of a national
//! restart: about 15 s on both cores. Its two parts depend on few inputs, which a restart
//! mostly finds unchanged:
//!
//! - **Located** ([`Located`]: unit, how it was found, grid, code mismatches) on the
//!   households' positions and given codes, the divisions (levels and parents), the
//!   boundaries and the grids' polygons. In `.gridcover-cache/<store file>.located`.
//! - **Nearest** ([`crate::analysis::Nearest`], level by level: [`LevelNearest`], each
//!   household's nearest station of the level, its distance, whether a station of the level
//!   covers it) on the positions and the level's stations (index, position, service radius as
//!   the standard gives it, open or closed). In `.gridcover-cache/<store file>.nearest`, one
//!   section and one key per level: a station edit misses its own level alone, the located
//!   part and the other levels are used.
//! - **Key:** xxh3-128 of the format, the key of the code that computes the assignment
//!   ([`cache_file::PROGRAM_KEY`], made at build time: a build whose assignment code,
//!   dependencies or toolchain differ computes afresh; one that differs elsewhere uses it) and
//!   every input above, as the start holds it. Any other key is a miss, and the part is made
//!   again (and kept).
//! - **Checks:** a file of the wrong size, a unit, grid or station index out of range (or a
//!   station of another level), an unknown source, a distance that is not a non-negative number
//!   where there is a station (or not NaN where there is none), a covered level without a
//!   station or mismatches out of order is a miss (of that part, or that level).
//! - Written whole to a temporary name, synced and renamed, with the store file's permissions;
//!   failing to write costs the next start its time, nothing else (a note on stderr).
//!
//! Household data: which unit, grid and stations each household (by its place in the store's
//! order, no id) is assigned to, and how far. The store and the households' snapshot beside it
//! hold the positions all of this is computed from; the file is never served.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3;

use crate::analysis::{Assignment, CodeMismatch, LevelNearest, Located, UnitSource};
use crate::model::{Dataset, Level, NONE, NO_UNIT};

use super::cache_file::{self, hash_positions, hash_words, read_words, write_words, CHUNK};

/// Formats of the two files (their first eight bytes).
const LOCATED_MAGIC: &[u8; 8] = b"GCLOCA01";
const NEAREST_MAGIC: &[u8; 8] = b"GCNEAR02";

/// Bytes of a header: magic, key, households, and (located) mismatches.
const HEAD: usize = 8 + 16 + 8 + 8;

/// The two kept parts of the assignment of one data set.
pub struct AssignmentCache {
    store: PathBuf,
    located: (PathBuf, [u8; 16]),
    /// The nearest part's file and each level's key.
    nearest: (PathBuf, [[u8; 16]; 5]),
}

/// The kept levels of the nearest part (each `None` when not kept for its inputs).
pub type KeptLevels = [Option<LevelNearest>; 5];

impl AssignmentCache {
    /// The files of `ds`'s assignment beside the store file `store`, keyed by `ds`'s inputs
    /// to each part (hashed here, on both cores).
    pub(super) fn new(store: &Path, ds: &Dataset) -> AssignmentCache {
        let hh = &ds.households;
        // The code and the positions, which both parts depend on, hashed once.
        let mut positions = Xxh3::new();
        positions.update(cache_file::PROGRAM_KEY.as_bytes());
        hash_positions(&mut positions, hh);
        let (located, nearest) = rayon::join(
            || {
                let mut h = positions.clone();
                h.update(LOCATED_MAGIC);
                hash_words(&mut h, hh.code.raw(), u32::to_le_bytes);
                let d = &ds.divisions;
                h.update(&(d.len() as u64).to_le_bytes());
                for u in 0..d.len() {
                    let unit = d.get(u as u32);
                    h.update(&[unit.level.index() as u8]);
                    h.update(&unit.parent.unwrap_or(NO_UNIT).to_le_bytes());
                }
                h.update(&(ds.boundaries.areas.len() as u64).to_le_bytes());
                for a in &ds.boundaries.areas {
                    h.update(&a.unit.to_le_bytes());
                    polygons(&mut h, &a.geometry);
                }
                h.update(&(ds.grids.len() as u64).to_le_bytes());
                for g in &ds.grids.geometry {
                    polygons(&mut h, g);
                }
                h.digest128().to_le_bytes()
            },
            || {
                // Each level on the positions and that level's stations, by their
                // index (which breaks ties): an edit of a station keeps the other levels.
                let mut h = positions.clone();
                h.update(NEAREST_MAGIC);
                let st = &ds.stations;
                Level::ALL.map(|level| {
                    let mut h = h.clone();
                    h.update(&[level.index() as u8]);
                    h.update(&(st.len() as u64).to_le_bytes());
                    for i in (0..st.len()).filter(|&i| st.level[i] == level) {
                        h.update(&(i as u64).to_le_bytes());
                        h.update(&st.lon[i].to_le_bytes());
                        h.update(&st.lat[i].to_le_bytes());
                        h.update(&[u8::from(st.active[i])]);
                        h.update(&st.radius_of(i as u32, &ds.standard).to_le_bytes());
                    }
                    h.digest128().to_le_bytes()
                })
            },
        );
        AssignmentCache {
            store: store.to_path_buf(),
            located: (cache_file::path(store, "located"), located),
            nearest: (cache_file::path(store, "nearest"), nearest),
        }
    }

    /// The kept parts of `ds`'s assignment (each `None` when not kept for these inputs; the
    /// nearest part level by level), read side by side.
    pub fn load(&self, ds: &Dataset) -> (Option<Located>, KeptLevels) {
        rayon::join(
            || load_located(&self.located.0, &self.located.1, ds),
            || load_nearest(&self.nearest.0, &self.nearest.1, ds),
        )
    }

    /// Keeps the parts of `a` asked for (`located`, `nearest`: those that were not kept, or
    /// not whole); a failure is a note on stderr.
    pub fn save(&self, a: &Assignment, (located, nearest): (bool, bool)) {
        rayon::join(
            || {
                if located {
                    let (path, key) = &self.located;
                    let note = ("the households' located units and grids", "locates them again");
                    cache_file::replace(path, Some(&self.store), note, |w| write_located(w, key, a));
                }
            },
            || {
                if nearest {
                    let (path, key) = &self.nearest;
                    let note = ("the households' nearest stations", "finds them again");
                    cache_file::replace(path, Some(&self.store), note, |w| write_nearest(w, key, a));
                }
            },
        );
    }
}

/// Feeds a multipolygon's rings, with their lengths, to `h`.
fn polygons(h: &mut Xxh3, mp: &geo::MultiPolygon<f64>) {
    h.update(&(mp.0.len() as u64).to_le_bytes());
    for p in &mp.0 {
        h.update(&(p.interiors().len() as u64).to_le_bytes());
        for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
            h.update(&(ring.0.len() as u64).to_le_bytes());
            for c in &ring.0 {
                h.update(&c.x.to_le_bytes());
                h.update(&c.y.to_le_bytes());
            }
        }
    }
}

/// Opens a kept file and reads its header: the reader after it and the mismatches' count, if
/// the magic, key and households' count are these and the file is `size(mismatches)` long.
fn open(
    path: &Path,
    magic: &[u8; 8],
    key: &[u8; 16],
    households: usize,
    size: impl Fn(u64) -> u64,
) -> Option<(BufReader<std::fs::File>, usize)> {
    let f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut r = BufReader::with_capacity(CHUNK, f);
    let mut head = [0u8; HEAD];
    r.read_exact(&mut head).ok()?;
    let n = u64::from_le_bytes(head[24..32].try_into().ok()?);
    let m = u64::from_le_bytes(head[32..40].try_into().ok()?);
    if &head[..8] != magic || head[8..24] != *key || n != households as u64 || len != HEAD as u64 + size(m) {
        return None;
    }
    Some((r, usize::try_from(m).ok()?))
}

fn write_head(w: &mut impl Write, magic: &[u8; 8], key: &[u8; 16], n: usize, m: usize) -> std::io::Result<()> {
    w.write_all(magic)?;
    w.write_all(key)?;
    w.write_all(&(n as u64).to_le_bytes())?;
    w.write_all(&(m as u64).to_le_bytes())
}

fn load_located(path: &Path, key: &[u8; 16], ds: &Dataset) -> Option<Located> {
    let n = ds.households.len() as u64;
    let (mut r, m) = open(path, LOCATED_MAGIC, key, ds.households.len(), |m| 9 * n + 12 * m)?;
    let n = n as usize;
    let unit = read_words(&mut r, n, u32::from_le_bytes)?;
    let source = read_words(&mut r, n, |[b]: [u8; 1]| match b {
        0 => Some(UnitSource::Position),
        1 => Some(UnitSource::Code),
        2 => Some(UnitSource::None),
        _ => None,
    })?;
    let source: Vec<UnitSource> = source.into_iter().collect::<Option<_>>()?;
    let grid = read_words(&mut r, n, u32::from_le_bytes)?;
    let triples = read_words(&mut r, 3 * m, u32::from_le_bytes)?;
    let mismatches: Vec<CodeMismatch> =
        triples.chunks_exact(3).map(|t| CodeMismatch { household: t[0], given: t[1], located: t[2] }).collect();
    let units = ds.divisions.len() as u32;
    let grids = ds.grids.len() as u32;
    let unit_ok = |u: u32| u < units || u == NO_UNIT;
    let ok = unit.par_iter().all(|&u| unit_ok(u))
        && grid.par_iter().all(|&g| g < grids || g == NONE)
        && mismatches.iter().all(|c| (c.household as usize) < n && unit_ok(c.given) && unit_ok(c.located))
        && mismatches.windows(2).all(|w| w[0].household < w[1].household);
    ok.then_some(Located { unit, source, grid, mismatches })
}

fn write_located(w: &mut impl Write, key: &[u8; 16], a: &Assignment) -> std::io::Result<()> {
    write_head(w, LOCATED_MAGIC, key, a.len(), a.mismatches.len())?;
    write_words(w, &a.unit, u32::to_le_bytes)?;
    write_words(w, &a.source, |s: UnitSource| [s as u8])?;
    write_words(w, &a.grid, u32::to_le_bytes)?;
    let triples: Vec<u32> = a.mismatches.iter().flat_map(|c| [c.household, c.given, c.located]).collect();
    write_words(w, &triples, u32::to_le_bytes)
}

/// Bytes of the nearest part's header: magic, five keys, households.
const NEAREST_HEAD: usize = 8 + 5 * 16 + 8;

/// The levels of the nearest part kept for their keys: the file's levels whose key is the one
/// asked, whole and in range.
fn load_nearest(path: &Path, keys: &[[u8; 16]; 5], ds: &Dataset) -> KeptLevels {
    let mut out = KeptLevels::default();
    let n = ds.households.len();
    let Ok(f) = std::fs::File::open(path) else { return out };
    let Ok(len) = f.metadata().map(|m| m.len()) else { return out };
    let mut r = BufReader::with_capacity(CHUNK, f);
    let mut head = [0u8; NEAREST_HEAD];
    if r.read_exact(&mut head).is_err()
        || &head[..8] != NEAREST_MAGIC
        || head[88..96] != (n as u64).to_le_bytes()
        || len != NEAREST_HEAD as u64 + 45 * n as u64
    {
        return out;
    }
    let st = &ds.stations;
    for level in Level::ALL {
        let l = level.index();
        let matches = head[8 + 16 * l..24 + 16 * l] == keys[l];
        if !matches {
            // Passed over (the reader stays at the next level's section).
            if std::io::copy(&mut (&mut r).take(9 * n as u64), &mut std::io::sink()).is_err() {
                return KeptLevels::default();
            }
            continue;
        }
        let read = (|| {
            let nearest = read_words(&mut r, n, u32::from_le_bytes)?;
            let nearest_m = read_words(&mut r, n, f32::from_le_bytes)?;
            let covered = read_words(&mut r, n, |[b]: [u8; 1]| b)?;
            Some((nearest, nearest_m, covered))
        })();
        // A read that failed leaves the reader anywhere: no level after it is read.
        let Some((nearest, nearest_m, covered)) = read else { return out };
        let part = {
            let ok = (0..n).into_par_iter().with_min_len(1 << 12).all(|h| {
                let (s, m, c) = (nearest[h], nearest_m[h], covered[h]);
                if s == NONE {
                    m.is_nan() && c == 0
                } else {
                    (s as usize) < st.len() && st.level[s as usize] == level && m >= 0.0 && m.is_finite() && c <= 1
                }
            });
            let covered = covered.into_iter().map(|c| c == 1).collect();
            ok.then_some(LevelNearest { nearest, nearest_m, covered })
        };
        // Read whole but not usable: a miss of that level (the reader is past it all the same).
        out[l] = part;
    }
    out
}

fn write_nearest(w: &mut impl Write, keys: &[[u8; 16]; 5], a: &Assignment) -> std::io::Result<()> {
    w.write_all(NEAREST_MAGIC)?;
    for k in keys {
        w.write_all(k)?;
    }
    w.write_all(&(a.len() as u64).to_le_bytes())?;
    for l in 0..5 {
        write_words(w, &a.nearest[l], u32::to_le_bytes)?;
        write_words(w, &a.nearest_m[l], f32::to_le_bytes)?;
        write_words(w, &a.covered, |c: u8| [(c >> l) & 1])?;
    }
    Ok(())
}
