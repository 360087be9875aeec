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
//! Counties without a boundary (e.g. 620171 兰州新区 in the Gansu bundle) get no derived
//! polygons, households or lower stations; their county station is placed inside the parent city.
//! Both are reported in [`Generated::notes`].

mod geom;
mod names;
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

    Ok(Generated { boundaries: out_boundaries, stations, households, grids, pastoral, seed: params.seed, notes })
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

/// Counties whose area per village is in the top `share` and at least twice the median.
fn pastoral_counties(ctx: &Ctx, counties: &[UnitIdx], share: f64) -> Vec<UnitIdx> {
    let mut apv: Vec<(UnitIdx, f64)> = counties
        .iter()
        .filter_map(|&c| {
            let n: usize = ctx.div.children(c).iter().map(|&t| ctx.div.children(t).len()).sum();
            (n > 0).then(|| (c, geom::area_m2(ctx.areas[&c]) / n as f64))
        })
        .collect();
    if apv.is_empty() || share <= 0.0 {
        return Vec::new();
    }
    let mut v: Vec<f64> = apv.iter().map(|x| x.1).collect();
    v.sort_by(f64::total_cmp);
    let median = v[(v.len() - 1) / 2];
    let rank = ((1.0 - share) * v.len() as f64).ceil() as usize;
    let threshold = v[rank.min(v.len() - 1)];
    apv.retain(|&(_, a)| a >= threshold && a >= 2.0 * median);
    apv.into_iter().map(|x| x.0).collect()
}

/// Best of `k` candidates: the one farthest from every point in `placed`.
fn best_of<R: Rng>(rng: &mut R, k: usize, placed: &[P], mut candidate: impl FnMut(&mut R) -> Option<P>) -> Option<P> {
    let mut best: Option<(P, f64)> = None;
    for _ in 0..k {
        let Some(c) = candidate(rng) else { continue };
        let d = placed.iter().map(|&q| geom::dist2(c, q)).fold(f64::INFINITY, f64::min);
        if best.is_none_or(|(_, bd)| d > bd) {
            best = Some((c, d));
        }
        if placed.is_empty() {
            break;
        }
    }
    best.map(|b| b.0)
}

/// A point surely inside `mp` (geo's interior point), or the centre of its box.
fn fallback_point(mp: &MultiPolygon<f64>) -> Coord<f64> {
    mp.interior_point()
        .map(|p| p.0)
        .or_else(|| mp.bounding_rect().map(|r| r.center()))
        .unwrap_or(Coord { x: 0.0, y: 0.0 })
}

/// Places the seat, townships and villages of one county.
fn place_county(ctx: &Ctx, county: UnitIdx) -> CountyOut {
    let div = ctx.div;
    let code = &div.get(county).code;
    let geom_c = ctx.areas[&county];
    let rect = geom_c.bounding_rect().expect("non-empty county");
    let frame = Frame::around(rect);
    let pip = Pip::new(geom_c).expect("non-empty county");
    let mut rng = unit_rng(ctx.seed, code, "place");
    let mut notes = Vec::new();

    // Seat: best of 24 interior points, far from the border (with some luck).
    let mut seat: Option<(Coord<f64>, f64)> = None;
    for _ in 0..24 {
        if let Some(c) = pip.sample_uniform(&mut rng, 500) {
            let score = geom::dist_to_boundary(&frame, geom_c, frame.fwd(c)) * (0.6 + 0.4 * rng.random::<f64>());
            if seat.is_none_or(|(_, s)| score > s) {
                seat = Some((c, score));
            }
        }
    }
    let seat = seat.map_or_else(|| fallback_point(geom_c), |s| s.0);
    let seat_p = frame.fwd(seat);
    let size = geom::area_m2(geom_c).sqrt();

    let towns = div.children(county);
    let town_sigma = Frame::units((0.08 * size).clamp(1_500.0, 6_000.0));
    let any_urban_town = towns.iter().any(|&t| names::is_urban_township(&div.get(t).name));
    let town_urban: Vec<bool> = towns.iter().map(|&t| names::is_urban_township(&div.get(t).name)).collect();
    let mut townships = place_children(
        ctx,
        &mut rng,
        &frame,
        geom_c,
        &pip,
        seat_p,
        towns,
        &town_urban,
        town_sigma,
        !any_urban_town,
        &mut notes,
    );

    let mut villages = Vec::new();
    for t in &townships {
        let Some(tpoly) = &t.polygon else { continue };
        let vs = div.children(t.unit);
        if vs.is_empty() {
            continue;
        }
        let tpip = Pip::new(tpoly).expect("non-empty township");
        let tsize = geom::area_m2(tpoly).sqrt();
        let sigma = Frame::units((0.15 * tsize).clamp(300.0, 2_000.0));
        let urban: Vec<bool> = vs.iter().map(|&v| names::is_urban_village(&div.get(v).name)).collect();
        let mut vrng = unit_rng(ctx.seed, &div.get(t.unit).code, "villages");
        let any_urban = urban.iter().any(|&u| u);
        let placed = place_children(
            ctx,
            &mut vrng,
            &frame,
            tpoly,
            &tpip,
            frame.fwd(t.point),
            vs,
            &urban,
            sigma,
            !any_urban,
            &mut notes,
        );
        villages.extend(placed);
    }

    set_remoteness(&frame, seat_p, &mut townships);
    set_remoteness(&frame, seat_p, &mut villages);
    CountyOut { county, frame, seat, townships, villages, notes }
}

/// Remoteness = rank of distance from the seat, scaled to 0..=1.
fn set_remoteness(frame: &Frame, seat: P, units: &mut [Placed]) {
    let mut order: Vec<(usize, f64)> =
        units.iter().enumerate().map(|(i, u)| (i, geom::dist2(frame.fwd(u.point), seat))).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = order.len().max(2) - 1;
    for (rank, (i, _)) in order.into_iter().enumerate() {
        units[i].remoteness = rank as f64 / n as f64;
    }
}

/// Places the children of one unit: seeds (urban ones near `centre`, the others spread out),
/// then polygons (input ones if every child has one, else clipped Voronoi cells).
#[allow(clippy::too_many_arguments)]
fn place_children(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    frame: &Frame,
    parent: &MultiPolygon<f64>,
    pip: &Pip,
    centre: P,
    children: &[UnitIdx],
    urban: &[bool],
    sigma: f64,
    first_at_centre: bool,
    notes: &mut Vec<String>,
) -> Vec<Placed> {
    let div = ctx.div;
    // Children that all have their own input boundaries keep them.
    if children.iter().all(|c| ctx.areas.get(c).is_some_and(|mp| !mp.0.is_empty())) {
        return children
            .iter()
            .zip(urban)
            .map(|(&c, &u)| {
                let mp = ctx.areas[&c];
                let cp = Pip::new(mp).expect("non-empty");
                let point = cp.sample_uniform(rng, 1000).unwrap_or_else(|| fallback_point(mp));
                Placed { unit: c, point, polygon: Some(mp.clone()), derived: false, urban: u, remoteness: 0.0 }
            })
            .collect();
    }
    let mut seeds: Vec<Option<P>> = vec![None; children.len()];
    let mut placed: Vec<P> = Vec::with_capacity(children.len() + 1);
    let inside = |c: Coord<f64>| pip.contains(c);
    // Urban ones first, around the centre.
    for (i, _) in urban.iter().enumerate().filter(|(_, &u)| u) {
        seeds[i] = best_of(rng, 8, &placed, |r| pip.sample_normal(r, frame, centre, sigma, 50).map(|c| frame.fwd(c)));
        if let Some(s) = seeds[i] {
            placed.push(s);
        }
    }
    if first_at_centre && !children.is_empty() && inside(frame.inv(centre)) {
        seeds[0] = Some(centre);
        placed.push(centre);
    }
    let n_urban = placed.len();
    if n_urban == 0 {
        placed.push(centre); // rural children keep clear of the centre too
    }
    for seed in seeds.iter_mut().filter(|s| s.is_none()) {
        *seed = best_of(rng, 12, &placed, |r| pip.sample_uniform(r, 200).map(|c| frame.fwd(c)));
        if let Some(s) = *seed {
            placed.push(s);
        }
    }
    let mut sites: Vec<P> = seeds.iter().map(|s| s.unwrap_or_else(|| frame.fwd(fallback_point(parent)))).collect();
    geom::make_distinct(&mut sites);

    // Voronoi cells in a box well around the parent, clipped to the parent.
    let rect = parent.bounding_rect().expect("non-empty parent");
    let (lo, hi) = frame_box(frame, rect, &sites);
    let cells = geom::voronoi_cells(&sites, lo, hi);
    let mut fallbacks = [0usize; 2];
    let placed: Vec<Placed> = children
        .iter()
        .zip(urban)
        .zip(sites.iter().zip(&cells))
        .map(|((&c, &u), (&site, cell))| {
            let polygon = derive_polygon(parent, &geom::cell_polygon(frame, cell), &mut fallbacks);
            if polygon.is_none() {
                notes.push(format!(
                    "{} {}: its Voronoi cell does not meet its parent; it has no area (and nothing below it)",
                    div.get(c).code,
                    div.get(c).name
                ));
            }
            Placed { unit: c, point: frame.inv(site), polygon, derived: true, urban: u, remoteness: 0.0 }
        })
        .collect();
    if let Some(parent_unit) = children.first().and_then(|&c| div.get(c).parent) {
        notes.extend(fallback_note(&div.get(parent_unit).code, fallbacks));
    }
    placed
}

/// A frame box containing `rect` and every site, with a wide margin.
fn frame_box(frame: &Frame, rect: Rect<f64>, sites: &[P]) -> (P, P) {
    let a = frame.fwd(rect.min());
    let b = frame.fwd(rect.max());
    let mut lo = [a[0].min(b[0]), a[1].min(b[1])];
    let mut hi = [a[0].max(b[0]), a[1].max(b[1])];
    for s in sites {
        lo = [lo[0].min(s[0]), lo[1].min(s[1])];
        hi = [hi[0].max(s[0]), hi[1].max(s[1])];
    }
    let m = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-6);
    ([lo[0] - m, lo[1] - m], [hi[0] + m, hi[1] + m])
}

/// `cell ∩ parent`, rounded to 7 decimals when that stays valid; None when empty.
/// `fallbacks` counts those kept unrounded (`[0]`) and those invalid even so (`[1]`).
fn derive_polygon(
    parent: &MultiPolygon<f64>,
    cell: &geo::Polygon<f64>,
    fallbacks: &mut [usize; 2],
) -> Option<MultiPolygon<f64>> {
    let raw = geom::clip(parent, cell);
    if raw.0.is_empty() {
        return None;
    }
    let rounded = geom::round_mp(&raw);
    if !rounded.0.is_empty() && rounded.is_valid() {
        return Some(rounded);
    }
    fallbacks[0] += 1;
    if !raw.is_valid() {
        fallbacks[1] += 1;
    }
    Some(raw)
}

/// A note on polygons that could not be rounded or are invalid, if any.
fn fallback_note(what: &str, fallbacks: [usize; 2]) -> Option<String> {
    (fallbacks[0] > 0).then(|| {
        format!(
            "{what}: {} derived polygons kept unrounded (rounding made them invalid), {} of them invalid even so",
            fallbacks[0], fallbacks[1]
        )
    })
}

/// One village ready for households.
struct VillageJob<'a> {
    county: &'a CountyOut,
    township: UnitIdx,
    village: &'a Placed,
    polygon: &'a MultiPolygon<f64>,
    pastoral: bool,
    count: usize,
}

/// The households and grids of one village.
struct VillageOut {
    households: Vec<HouseholdRow>,
    grids: Vec<(String, String, MultiPolygon<f64>)>,
    /// Grid polygons kept unrounded, and invalid even so.
    fallbacks: [usize; 2],
}

fn households_and_grids(
    ctx: &Ctx,
    outs: &[CountyOut],
    pastoral: &HashSet<UnitIdx>,
    params: &GenerateParams,
) -> Result<(Households, Grids, Vec<String>), GenerateError> {
    let div = ctx.div;
    let mut jobs: Vec<VillageJob> = Vec::new();
    let mut weights = Vec::new();
    for o in outs {
        let is_pastoral = pastoral.contains(&o.county);
        for v in &o.villages {
            let Some(polygon) = &v.polygon else { continue };
            let mut rng = unit_rng(ctx.seed, &div.get(v.unit).code, "weight");
            let base = if v.urban {
                3.0
            } else if is_pastoral {
                0.5
            } else {
                1.0
            };
            let noise: f64 = LogNormal::new(0.0, 0.45).expect("valid").sample(&mut rng);
            weights.push(base * noise);
            let township = div.get(v.unit).parent.expect("a village has a parent");
            jobs.push(VillageJob { county: o, township, village: v, polygon, pastoral: is_pastoral, count: 0 });
        }
    }
    if jobs.is_empty() {
        if params.households > 0 {
            return Err(GenerateError::NoVillageAreas { households: params.households });
        }
        return Ok((Households::default(), Grids::default(), Vec::new()));
    }
    for (j, n) in jobs.iter_mut().zip(largest_remainder(&weights, params.households)) {
        j.count = n;
    }

    let results: Vec<VillageOut> = jobs.par_iter().map(|j| village_households(ctx, j, params)).collect();

    let mut households = Households::default();
    let mut grids = Grids::default();
    let mut ungridded = 0usize;
    let mut next_id = 1usize;
    let mut fallbacks = [0usize; 2];
    for (j, r) in jobs.iter().zip(results) {
        fallbacks[0] += r.fallbacks[0];
        fallbacks[1] += r.fallbacks[1];
        if j.count > 0 && r.grids.is_empty() {
            ungridded += 1;
        }
        for mut h in r.households {
            h.id = format!("H{next_id:09}");
            next_id += 1;
            households.push(h);
        }
        for (id, worker, mp) in r.grids {
            grids.id.push(id);
            grids.worker.push(worker);
            grids.unit.push(Some(j.village.unit));
            grids.geometry.push(mp);
        }
    }
    let with_hh = jobs.iter().filter(|j| j.count > 0).count();
    let mut notes = vec![format!("{ungridded} of {with_hh} villages with households have no grid")];
    notes.extend(fallback_note("grids", fallbacks));
    Ok((households, grids, notes))
}

/// Splits `total` in proportion to `weights` (largest remainders; ties to the lower index).
fn largest_remainder(weights: &[f64], total: usize) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let given: usize = out.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in order.iter().cycle().take(total.saturating_sub(given)) {
        out[i] += 1;
    }
    out
}

fn village_households(ctx: &Ctx, job: &VillageJob, params: &GenerateParams) -> VillageOut {
    let div = ctx.div;
    let v = job.village;
    let code = &div.get(v.unit).code;
    let frame = &job.county.frame;
    let pip = Pip::new(job.polygon).expect("non-empty village");
    let mut rng = unit_rng(ctx.seed, code, "households");
    let size = geom::area_m2(job.polygon).sqrt();
    let centre = frame.fwd(v.point);

    // Hamlet centres and their spreads.
    let mut hamlets: Vec<(P, f64, f64)> = Vec::new(); // centre, sigma, weight
    if v.urban {
        hamlets.push((centre, Frame::units((0.25 * size).clamp(150.0, 600.0)), 1.0));
    } else {
        let sigma = Frame::units((0.2 * size).clamp(300.0, 2_000.0));
        hamlets.push((centre, sigma, 0.6));
        let extra = rng.random_range(0..=2usize);
        for _ in 0..extra {
            if let Some(c) = pip.sample_uniform(&mut rng, 200) {
                hamlets.push((frame.fwd(c), 0.5 * sigma, 0.4 / extra as f64));
            }
        }
    }
    let total_w: f64 = hamlets.iter().map(|h| h.2).sum();

    let address_prefix = format!(
        "{}{}{}",
        div.get(job.county.county).name,
        div.get(job.township).name,
        names::short(&div.get(v.unit).name)
    );
    let hardship = if v.urban { 0.05 } else { 0.09 };
    let mut households = Vec::with_capacity(job.count);
    let mut points = Vec::with_capacity(job.count);
    for _ in 0..job.count {
        let c = loop {
            let raw = if job.pastoral {
                pip.sample_uniform(&mut rng, 2_000)
            } else {
                let mut u = rng.random::<f64>() * total_w;
                let mut h = hamlets[0];
                for &x in &hamlets {
                    h = x;
                    if u < x.2 {
                        break;
                    }
                    u -= x.2;
                }
                pip.sample_normal(&mut rng, frame, h.0, h.1, 30).or_else(|| pip.sample_uniform(&mut rng, 2_000))
            };
            let c = raw.unwrap_or(v.point);
            let r = Coord { x: geom::round7(c.x), y: geom::round7(c.y) };
            if pip.contains(r) {
                break r;
            }
            if raw.is_none() {
                break c; // a sliver village: the seed point is the best there is
            }
        };
        let u: f64 = rng.random();
        let veterans = if u < 0.79 {
            1
        } else if u < 0.96 {
            2
        } else {
            3
        };
        let address = if v.urban {
            format!("{address_prefix}{}号楼{}单元", rng.random_range(1..=40u32), rng.random_range(1..=6u32))
        } else {
            format!("{address_prefix}{}号", rng.random_range(1..=(job.count as u32 * 2 + 20)))
        };
        points.push(frame.fwd(c));
        households.push(HouseholdRow {
            id: String::new(),
            lon: c.x,
            lat: c.y,
            veterans,
            code: Some(v.unit),
            difficulty: rng.random_bool(hardship),
            martyr_family: rng.random_bool(0.03),
            name: Some(names::person(&mut rng)),
            address: Some(address),
        });
    }

    let mut grng = unit_rng(ctx.seed, code, "grids");
    let skip = if v.urban { params.ungridded_share * 0.4 } else { params.ungridded_share * 1.15 };
    let mut fallbacks = [0usize; 2];
    let grids = if job.count == 0 || grng.random_bool(skip.min(1.0)) {
        Vec::new()
    } else {
        make_grids(
            &mut grng,
            code,
            frame,
            job.polygon,
            &households,
            &points,
            params.max_grid_households,
            &mut fallbacks,
        )
    };
    VillageOut { households, grids, fallbacks }
}

/// Splits a village into grids of at most `cap` households (see the module docs).
#[allow(clippy::too_many_arguments)]
fn make_grids(
    rng: &mut ChaCha8Rng,
    code: &str,
    frame: &Frame,
    polygon: &MultiPolygon<f64>,
    households: &[HouseholdRow],
    points: &[P],
    cap: usize,
    fallbacks: &mut [usize; 2],
) -> Vec<(String, String, MultiPolygon<f64>)> {
    let n = households.len();
    let mut k = n.div_ceil(cap);
    // Households stacked on one spot cannot be split; stop growing k at some point.
    let k_max = (4 * k + 8).min(n);
    let polys: Vec<MultiPolygon<f64>> = if k <= 1 {
        vec![polygon.clone()]
    } else {
        loop {
            let mut centres = kmeans(rng, points, k);
            geom::make_distinct(&mut centres);
            let rect = polygon.bounding_rect().expect("non-empty village");
            let (lo, hi) = frame_box(frame, rect, &centres);
            let cells = geom::voronoi_cells(&centres, lo, hi);
            let polys: Vec<MultiPolygon<f64>> = cells
                .iter()
                .filter_map(|c| derive_polygon(polygon, &geom::cell_polygon(frame, c), fallbacks))
                .collect();
            let pips: Vec<Pip> = polys.iter().filter_map(Pip::new).collect();
            let mut counts = vec![0usize; pips.len()];
            for h in households {
                for (i, p) in pips.iter().enumerate() {
                    if p.contains(Coord { x: h.lon, y: h.lat }) {
                        counts[i] += 1;
                    }
                }
            }
            if counts.iter().all(|&c| c <= cap) || k >= k_max {
                break polys;
            }
            k += 1;
        }
    };
    polys.into_iter().enumerate().map(|(i, mp)| (format!("G{code}-{}", i + 1), names::person(rng), mp)).collect()
}

/// A few rounds of Lloyd's k-means from a k-means++ start; empty clusters restart at the
/// point farthest from its centre.
fn kmeans(rng: &mut ChaCha8Rng, points: &[P], k: usize) -> Vec<P> {
    let mut centres = vec![points[rng.random_range(0..points.len())]];
    let mut d2: Vec<f64> = points.iter().map(|&p| geom::dist2(p, centres[0])).collect();
    while centres.len() < k {
        let sum: f64 = d2.iter().sum();
        let next = if sum > 0.0 {
            let mut u = rng.random::<f64>() * sum;
            let mut idx = points.len() - 1;
            for (i, &d) in d2.iter().enumerate() {
                if u < d {
                    idx = i;
                    break;
                }
                u -= d;
            }
            points[idx]
        } else {
            points[rng.random_range(0..points.len())]
        };
        centres.push(next);
        for (d, &p) in d2.iter_mut().zip(points) {
            *d = d.min(geom::dist2(p, next));
        }
    }
    let mut assign = vec![0usize; points.len()];
    for _ in 0..15 {
        for (a, &p) in assign.iter_mut().zip(points) {
            *a = (0..k).min_by(|&x, &y| geom::dist2(p, centres[x]).total_cmp(&geom::dist2(p, centres[y]))).unwrap_or(0);
        }
        let mut sums = vec![[0.0f64; 3]; k];
        for (&a, &p) in assign.iter().zip(points) {
            sums[a][0] += p[0];
            sums[a][1] += p[1];
            sums[a][2] += 1.0;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[2] > 0.0 {
                *c = [s[0] / s[2], s[1] / s[2]];
            }
        }
        for ci in 0..k {
            if sums[ci][2] == 0.0 {
                let far = (0..points.len())
                    .max_by(|&x, &y| {
                        geom::dist2(points[x], centres[assign[x]])
                            .total_cmp(&geom::dist2(points[y], centres[assign[y]]))
                    })
                    .unwrap_or(0);
                centres[ci] = points[far];
                assign[far] = ci;
            }
        }
    }
    centres
}

/// Stations for every unit (see the module docs for the rules).
fn make_stations(ctx: &Ctx, outs: &[CountyOut], pastoral: &HashSet<UnitIdx>, notes: &mut Vec<String>) -> Stations {
    let div = ctx.div;
    let by_county: HashMap<UnitIdx, &CountyOut> = outs.iter().map(|o| (o.county, o)).collect();
    let mut placed: HashMap<UnitIdx, (&Placed, UnitIdx)> = HashMap::new();
    for o in outs {
        for p in o.townships.iter().chain(&o.villages) {
            placed.insert(p.unit, (p, o.county));
        }
    }
    // Seats of cities and the province: those of their first county / city with one.
    let mut seats: HashMap<UnitIdx, Coord<f64>> = outs.iter().map(|o| (o.county, o.seat)).collect();
    for level in [Level::City, Level::Province] {
        for u in div.at_level(level) {
            let child_seat = div.children(u).iter().find_map(|c| seats.get(c).copied());
            if let Some(s) = child_seat.or_else(|| ctx.areas.get(&u).map(|mp| fallback_point(mp))) {
                seats.insert(u, s);
            }
        }
    }

    let mut st = Stations::default();
    let mut outside = 0usize;
    let mut missing_area = 0usize;
    for (u, d) in div.iter() {
        let mut rng = unit_rng(ctx.seed, &d.code, "station");
        let (at, jitter_m, missing_p, demo_p, mobile) = match d.level {
            Level::Province | Level::City | Level::County => {
                let at = seats.get(&u).copied().or_else(|| {
                    // A county without a boundary: somewhere inside the nearest ancestor with one.
                    let mp = std::iter::successors(d.parent, |&p| div.get(p).parent).find_map(|p| ctx.areas.get(&p))?;
                    outside += 1;
                    let pip = Pip::new(mp)?;
                    Some(pip.sample_uniform(&mut rng, 5_000).unwrap_or_else(|| fallback_point(mp)))
                });
                let demo = match d.level {
                    Level::Province => 1.0,
                    Level::City => 0.5,
                    _ => 0.35,
                };
                (at, if d.level == Level::County { 150.0 } else { 300.0 }, 0.0, demo, false)
            }
            Level::Township | Level::Village => {
                let Some(&(p, county)) = placed.get(&u).filter(|(p, _)| p.polygon.is_some()) else {
                    missing_area += 1;
                    continue;
                };
                let is_pastoral = pastoral.contains(&county);
                let town = d.level == Level::Township;
                let missing = match (p.urban, is_pastoral, town) {
                    (true, _, _) => 0.005,
                    (false, true, true) => 0.08,
                    (false, true, false) => 0.12,
                    (false, false, true) => 0.022 * (0.4 + 1.2 * p.remoteness),
                    (false, false, false) => 0.022 * (0.4 + 1.2 * p.remoteness),
                };
                let mobile = !town && is_pastoral && rng.random_bool(0.35);
                (Some(p.point), if town { 100.0 } else { 60.0 }, missing, if town { 0.20 } else { 0.08 }, mobile)
            }
        };
        let Some(at) = at else { continue };
        if rng.random_bool(missing_p) {
            continue;
        }
        let demonstration = rng.random_bool(demo_p);
        // A little jitter, kept inside the unit's own polygon when it has one.
        let poly = placed.get(&u).and_then(|(p, _)| p.polygon.as_ref()).or_else(|| ctx.areas.get(&u).copied());
        let pip = poly.and_then(Pip::new);
        let frame = by_county
            .get(&div.ancestor(u, Level::County).unwrap_or(u))
            .map(|o| o.frame)
            .unwrap_or_else(|| Frame::around(Rect::new(at, at)));
        let mut pos = at;
        for _ in 0..20 {
            let dx: f64 = StandardNormal.sample(&mut rng);
            let dy: f64 = StandardNormal.sample(&mut rng);
            let p0 = frame.fwd(at);
            let s = Frame::units(jitter_m);
            let c = frame.inv([p0[0] + s * dx, p0[1] + s * dy]);
            let c = Coord { x: geom::round7(c.x), y: geom::round7(c.y) };
            if pip.as_ref().is_none_or(|p| p.contains(c)) {
                pos = c;
                break;
            }
        }
        st.push(StationRow {
            id: format!("S{}", d.code),
            name: names::station(d.level, &d.name, mobile),
            level: d.level,
            unit: u,
            lon: pos.x,
            lat: pos.y,
            demonstration,
            mobile,
            radius_m: None,
        });
    }
    if outside > 0 {
        notes.push(format!(
            "{outside} county stations of counties without a boundary were placed inside their parent area"
        ));
    }
    if missing_area > 0 {
        notes.push(format!("{missing_area} township and village units have no area and got no station"));
    }
    st
}

#[cfg(test)]
mod tests;
