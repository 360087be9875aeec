//! Synthetic data folders from real boundaries and divisions.
//!
//! [`generate`] (pure) takes the real division table (all five levels) and real boundaries
//! (at least the counties) and makes everything else a data folder needs: township and
//! village polygons, stations, veteran households and service grids. [`write_data_folder`]
//! (I/O) writes the result as a data folder that `ingest` reads back.
//!
//! # What is generated, and how
//!
//! Every random choice is drawn from a [`ChaCha8Rng`] seeded from `(seed, unit code,
//! purpose)`, one per unit, so the output depends on the seed and the inputs only — not on
//! thread scheduling (counties and villages are processed in parallel with rayon).
//!
//! 1. **Seats.** Each county with a boundary gets a seat: the best of 24 random interior points,
//!    favouring points far from the border. A city's seat is the seat of its first county
//!    (lowest code, usually the seat district); the province's is its first city's.
//! 2. **Townships.** Seed points inside the county polygon: sub-districts (`…街道`) cluster
//!    around the seat (2-D normal, σ ≈ 8 % of the county's size, 1.5–6 km); in a county without
//!    any, the first township (the seat town) sits at the seat; the others are spread out by
//!    best-of-12 candidate sampling (each new seed is the candidate farthest from those placed).
//!    Township polygon = Voronoi cell of the county's township seeds clipped to the county.
//! 3. **Villages.** Seed points inside their township polygon the same way: communities
//!    (`社区`, `居委会`, `居民委员会`, `生活区`) cluster around the township seed (σ 0.3–2 km), villages
//!    spread out. Village polygon = Voronoi cell clipped to the township. So village ⊂ township
//!    ⊂ county, and the children tile their parent. Derived polygons are rounded to 7 decimals
//!    (about 1 cm) and checked with geo's `Validation`; those that fail are kept unrounded,
//!    empty ones are dropped; both are reported in the notes. If every child of a unit already
//!    has an input boundary, those are used instead of derived ones.
//! 4. **Pastoral counties** are found from the data, not from a list: a county is pastoral when
//!    its area per village is in the top [`GenerateParams::pastoral_share`] of counties and at
//!    least twice the provincial median.
//! 5. **Households.** [`GenerateParams::households`] households are shared among villages by
//!    a population weight (community 3, village 1, pastoral village 0.5, times log-normal noise,
//!    largest-remainder rounding). Rural households gather around 1–3 hamlet centres (the village
//!    seed first) with a 2-D normal spread of 0.3–2 km, communities around their seed
//!    (0.15–0.6 km); pastoral households (herders) are uniform over the whole village polygon.
//!    Every point is rejection-sampled to lie inside its village polygon (after rounding to 7
//!    decimals). Veterans per household: 1 (79 %), 2 (17 %), 3 (4 %), mean 1.25. About 8 % are
//!    in hardship (more in villages than in communities), 3 % are martyrs' families. Names are
//!    synthetic (common surnames); addresses read `XX县XX镇XX村N号`.
//! 6. **Grids.** A village with households gets grids of at most
//!    [`GenerateParams::max_grid_households`] households: the village polygon itself when it has
//!    no more, else the Voronoi cells of k-means centres of its households clipped to the
//!    village polygon (k grows until every cell, counted by point-in-polygon, is small enough).
//!    About [`GenerateParams::ungridded_share`] of villages have no grid (real gaps).
//! 7. **Stations.** One per unit, at all five levels, named like `XX村退役军人服务站` /
//!    `XX县退役军人服务中心`, id `S` + the unit's code. Province, city and county units always have
//!    one (at their seat, with a little jitter). About 2 % of townships and 3 % of villages lack
//!    one; the gaps grow with distance from the county seat and are far more frequent in pastoral
//!    counties (15 % of villages). About 9 % are demonstration (示范) stations, more likely higher
//!    up. In pastoral counties about 35 % of village stations are mobile (horseback) stations,
//!    which carry no radius of their own (the standard gives mobile stations theirs).
//!
//! 8. **Service history.** Contacts and needs over the half year before
//!    [`GenerateParams::history_until`] ([`contacts`]), from a random stream of their own.
//!
//! Counties without a boundary (e.g. 620171 兰州新区 in the Gansu bundle) get no derived
//! polygons, households or lower stations; their county station is placed inside the parent city.
//! Both are reported in [`Generated::notes`].

pub mod contacts;
mod geom;
mod grids;
mod households;
mod names;
mod seats;
mod stations;
mod write;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use geo::{BoundingRect, Coord, InteriorPoint, MultiPolygon, Rect, Validation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, StandardNormal};
use rayon::prelude::*;

use crate::model::{
    AdminArea, Boundaries, Divisions, Grids, HouseholdRow, Households, Level, StationRow, Stations, UnitIdx,
};
use geom::{Frame, Pip, P};

pub use write::write_data_folder;

use grids::*;
use households::*;
use seats::*;
use stations::*;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Seed of every random choice; the same seed and inputs give the same output.
    pub seed: u64,
    /// Number of veteran households in all.
    pub households: usize,
    /// Most households one grid may hold (the standard's grid worker load, 300).
    pub max_grid_households: usize,
    /// Share of counties (those with the most area per village) that may count as pastoral.
    pub pastoral_share: f64,
    /// Share of villages left without any grid.
    pub ungridded_share: f64,
    /// Last day of the service history ([`contacts`]).
    pub history_until: crate::model::Day,
}

impl GenerateParams {
    /// The defaults with this seed and number of households.
    pub fn new(seed: u64, households: usize) -> Self {
        GenerateParams { seed, households, ..Self::default() }
    }
}

impl Default for GenerateParams {
    /// Seed 1, 800 000 households (about a million veterans, Gansu's scale), grids of at most
    /// 300 households, 10 % of counties may be pastoral, 5 % of villages without a grid.
    fn default() -> Self {
        GenerateParams {
            seed: 1,
            households: 800_000,
            max_grid_households: 300,
            pastoral_share: 0.10,
            ungridded_share: 0.05,
            history_until: crate::model::service::day_from_ymd(2026, 11, 30),
        }
    }
}

/// A generated data set, ready for [`write_data_folder`].
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// The input areas (unchanged, unless replaced as noted) and then the derived township and
    /// village areas (`derived = true`), in division order.
    pub boundaries: Boundaries,
    /// The stations, in division order of the unit they serve.
    pub stations: Stations,
    /// The households, grouped by village in division order.
    pub households: Households,
    /// The grids, grouped by village.
    pub grids: Grids,
    /// The counties judged pastoral.
    pub pastoral: Vec<UnitIdx>,
    /// The seed it was made with.
    pub seed: u64,
    /// What is worth telling: units without geometry, fallbacks, counts.
    pub notes: Vec<String>,
    /// The grid workers' contacts with the households ([`contacts`]).
    pub contacts: Vec<contacts::ContactRow>,
    /// The needs the households raised.
    pub needs: Vec<contacts::NeedRow>,
}

/// Why a data folder could not be generated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A parameter is out of range; fix the parameter.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParams {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A boundary names a unit index the division table does not have: the boundaries were read
    /// against another table.
    #[error("boundary number {index} refers to unit index {unit}, which is not in the division table")]
    UnknownUnit {
        /// Position of the area in the boundaries (0-based).
        index: usize,
        /// The unit index it names.
        unit: UnitIdx,
    },
    /// No county-level unit has a boundary, so nothing can be placed; supply county boundaries.
    #[error("no county-level unit has a boundary; township and village areas cannot be derived")]
    NoCountyBoundaries,
    /// Households were asked for but no village ended up with an area (no villages below the
    /// counties that have boundaries).
    #[error("{households} households requested but no village has an area to put them in")]
    NoVillageAreas {
        /// The households requested.
        households: usize,
    },
    /// The output folder holds input files that were not generated (no `.generated` marker);
    /// choose another folder, or remove them if they really are disposable.
    #[error(
        "{path} exists and was not generated by gridcover (no .generated marker beside it); refusing to overwrite it"
    )]
    WouldOverwriteInput {
        /// The file that would have been overwritten.
        path: PathBuf,
    },
    /// A file or folder could not be created, written or renamed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file could not be written.
    #[error("cannot write CSV {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// The households Parquet file could not be written.
    #[error("cannot write Parquet {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A unit index in the generated data is not in the division table passed to the writer:
    /// pass the table the data was generated from.
    #[error("generated data refers to unit index {unit}, which is not in the division table given to the writer")]
    UnitNotInDivisions {
        /// The unit index.
        unit: UnitIdx,
    },
}

/// A random generator for one purpose of one unit, independent of every other.
fn unit_rng(seed: u64, code: &str, purpose: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in code.bytes().chain([0xff]).chain(purpose.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(splitmix(seed ^ splitmix(h)))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Everything the per-county work needs to read.
struct Ctx<'a> {
    div: &'a Divisions,
    areas: HashMap<UnitIdx, &'a MultiPolygon<f64>>,
    seed: u64,
}

/// A placed township or village.
#[derive(Debug, Clone)]
struct Placed {
    unit: UnitIdx,
    /// Seed point (lon/lat).
    point: Coord<f64>,
    /// Its polygon (derived or input); None when it came out empty.
    polygon: Option<MultiPolygon<f64>>,
    derived: bool,
    urban: bool,
    /// Rank of the distance from the county seat within the county, 0 (nearest) to 1.
    remoteness: f64,
}

/// The output of one county.
struct CountyOut {
    county: UnitIdx,
    frame: Frame,
    seat: Coord<f64>,
    townships: Vec<Placed>,
    villages: Vec<Placed>,
    notes: Vec<String>,
}

/// Builds a complete synthetic data set: see the [module docs](self) for what and how.
///
/// # Errors
/// [`GenerateError::InvalidParams`] for out-of-range parameters, [`GenerateError::UnknownUnit`]
/// when a boundary names a unit the table lacks, [`GenerateError::NoCountyBoundaries`] when no
/// county has a boundary, [`GenerateError::NoVillageAreas`] when households are asked for but no
/// village could be given an area.
pub fn generate(
    divisions: &Divisions,
    boundaries: &Boundaries,
    params: &GenerateParams,
) -> Result<Generated, GenerateError> {
    check_params(params)?;
    let mut notes = Vec::new();
    let mut areas: HashMap<UnitIdx, &MultiPolygon<f64>> = HashMap::new();
    for (index, a) in boundaries.areas.iter().enumerate() {
        if a.unit as usize >= divisions.len() {
            return Err(GenerateError::UnknownUnit { index, unit: a.unit });
        }
        if let std::collections::hash_map::Entry::Vacant(e) = areas.entry(a.unit) {
            e.insert(&a.geometry);
        } else {
            notes.push(format!("unit {} has more than one boundary; the first is used", divisions.get(a.unit).code));
        }
    }
    let ctx = Ctx { div: divisions, areas, seed: params.seed };

    // Counties with and without a boundary.
    let mut counties = Vec::new();
    for c in divisions.at_level(Level::County) {
        let d = divisions.get(c);
        match ctx.areas.get(&c) {
            Some(mp) if !mp.0.is_empty() => counties.push(c),
            _ => {
                let towns = divisions.children(c);
                let villages: usize = towns.iter().map(|&t| divisions.children(t).len()).sum();
                notes.push(format!(
                    "county {} {} has no boundary: no township or village areas, households or lower \
                     stations were generated for its {} townships and {} villages",
                    d.code,
                    d.name,
                    towns.len(),
                    villages
                ));
            }
        }
    }
    if counties.is_empty() {
        return Err(GenerateError::NoCountyBoundaries);
    }
    let pastoral = pastoral_counties(&ctx, &counties, params.pastoral_share);
    let pastoral_set: HashSet<UnitIdx> = pastoral.iter().copied().collect();

    // 1–3: seats, townships and villages, county by county.
    let outs: Vec<CountyOut> = counties.par_iter().map(|&c| place_county(&ctx, c)).collect();
    for o in &outs {
        notes.extend(o.notes.iter().cloned());
    }

    // Output boundaries: input areas (less those replaced by derived ones), then derived ones.
    let replaced: HashSet<UnitIdx> = outs
        .iter()
        .flat_map(|o| o.townships.iter().chain(&o.villages))
        .filter(|p| p.derived && ctx.areas.contains_key(&p.unit))
        .map(|p| p.unit)
        .collect();
    if !replaced.is_empty() {
        notes.push(format!(
            "{} input township/village boundaries were replaced by derived ones (their siblings had none)",
            replaced.len()
        ));
    }
    let mut out_boundaries =
        Boundaries { areas: boundaries.areas.iter().filter(|a| !replaced.contains(&a.unit)).cloned().collect() };
    for o in &outs {
        for p in o.townships.iter().chain(&o.villages) {
            if let (true, Some(mp)) = (p.derived, &p.polygon) {
                out_boundaries.areas.push(AdminArea { unit: p.unit, geometry: mp.clone(), derived: true });
            }
        }
    }

    // 5–6: households and grids, village by village.
    let (households, grids, hh_notes) = households_and_grids(&ctx, &outs, &pastoral_set, params)?;
    notes.extend(hh_notes);

    // 7: stations.
    let stations = make_stations(&ctx, &outs, &pastoral_set, &mut notes);

    let pastoral_names: Vec<String> =
        pastoral.iter().map(|&c| format!("{} {}", divisions.get(c).code, divisions.get(c).name)).collect();
    notes.push(format!("pastoral counties ({}): {}", pastoral.len(), pastoral_names.join(", ")));
    let per_level: Vec<String> = Level::ALL
        .iter()
        .map(|&l| {
            let n = stations.level.iter().filter(|&&x| x == l).count();
            format!("{l} {n}/{}", divisions.count(l))
        })
        .collect();
    notes.push(format!(
        "{} stations ({}; {} demonstration, {} mobile), {} households with {} veterans, {} grids",
        stations.len(),
        per_level.join(", "),
        stations.demonstration.iter().filter(|&&b| b).count(),
        stations.mobile.iter().filter(|&&b| b).count(),
        households.len(),
        households.total_veterans(),
        grids.len()
    ));

    // The service history, from its own random stream: nothing above depends on it.
    let remote: Vec<bool> = households
        .code
        .iter()
        .map(|c| c.and_then(|u| divisions.ancestor(u, Level::County)).is_some_and(|c| pastoral_set.contains(&c)))
        .collect();
    let (contacts, needs) = contacts::history(&households, &remote, params.seed, params.history_until);
    notes.push(format!(
        "service history to {}: {} contacts, {} needs",
        crate::model::service::format_day(params.history_until),
        contacts.len(),
        needs.len()
    ));
    Ok(Generated {
        boundaries: out_boundaries,
        stations,
        households,
        grids,
        pastoral,
        seed: params.seed,
        notes,
        contacts,
        needs,
    })
}

fn check_params(p: &GenerateParams) -> Result<(), GenerateError> {
    let bad = |name, reason: &str| Err(GenerateError::InvalidParams { name, reason: reason.into() });
    if p.households > u32::MAX as usize {
        return bad("households", "must be below 2^32");
    }
    if p.max_grid_households == 0 {
        return bad("max_grid_households", "must be at least 1");
    }
    if !(0.0..=1.0).contains(&p.pastoral_share) {
        return bad("pastoral_share", "must be between 0 and 1");
    }
    if !(0.0..=1.0).contains(&p.ungridded_share) {
        return bad("ungridded_share", "must be between 0 and 1");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
